#!/usr/bin/env python3
"""Habitat bridge: serves a habitat-sim scene to a v4s-nav agent over the wire protocol v4s.sim.v1.

Run it inside the Python environment that has habitat-sim (see README.md):

    python bridge.py --scene data/scene_datasets/habitat-test-scenes/skokloster-castle.glb
    python bridge.py --dataset data/datasets/pointnav/habitat-test-scenes/v1/val/val.json.gz \
                     --scenes-dir data/scene_datasets

then, on the agent side: `await connectSimulator('ws://127.0.0.1:8765')`.

The protocol lives in v4s_protocol.py (no habitat-sim there). This file holds the habitat-sim calls
(`HabitatBackend`), episode-dataset loading and the command line. The calls it makes on the simulator are few,
so a stand-in can replace habitat-sim in tests: `sim.reset()`, `sim.step(name)`, `sim.get_sensor_observations()`,
`sim.get_agent(0)` (`.agent_config.action_space`, `.get_state()`, `.set_state(...)`), `sim.pathfinder`
(`is_loaded`, `find_path`, `get_random_navigable_point`), `sim.seed`, `sim.config`, `sim.reconfigure` and,
for the oracle, `sim.semantic_scene`.
"""
from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import math
import os
import random
import signal
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from v4s_protocol import (  # noqa: E402
    CLOSE_TRY_AGAIN_LATER,
    Backend,
    Frame,
    Goal,
    Observation,
    Pose,
    ProtocolError,
    Rollout,
    SessionOptions,
    StepResult,
    authorize,
    default_encodings,
    has_jpeg,
    refuse_connection,
    serve_session,
)

DEFAULT_PORT = 8765
#: How long a second agent waits for the session before it is refused with E_TOO_MANY_CONNECTIONS.
BUSY_WAIT_S = 2.0
#: habitat-lab's success distances: PointNav 0.2 m, ObjectNav 0.1 m (to a view point), ImageNav 1.0 m.
SUCCESS_DISTANCE = {"pointnav": 0.2, "objectnav": 0.1, "imagenav": 1.0}


def log(msg: str) -> None:
    print("[v4s habitat bridge] %s" % msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------------------
# Poses


def quat_xyzw(q: Any) -> List[float]:
    """habitat-sim's rotation as [x, y, z, w]. `get_state().rotation` is a numpy-quaternion (w-first storage,
    `.w .x .y .z`); a magnum Quaternion has `.vector` and `.scalar`; a plain sequence is habitat's coefficient
    order, already [x, y, z, w] (`quat_to_coeffs`)."""
    if all(hasattr(q, a) for a in ("w", "x", "y", "z")):
        return [float(q.x), float(q.y), float(q.z), float(q.w)]
    if hasattr(q, "scalar") and hasattr(q, "vector"):
        v = q.vector
        return [float(v[0]), float(v[1]), float(v[2]), float(q.scalar)]
    c = [float(v) for v in q]
    if len(c) != 4:
        raise ProtocolError("E_SIMULATOR", "agent rotation has %d components" % len(c))
    return c


def yaw_quat_xyzw(yaw: float) -> List[float]:
    """Rotation by `yaw` radians about +Y (a left turn), as [x, y, z, w]."""
    return [0.0, math.sin(yaw / 2), 0.0, math.cos(yaw / 2)]


# ----------------------------------------------------------------------------------------------------------
# Episode datasets (habitat-lab format)


@dataclass
class Episode:
    episode_id: str
    scene_id: str
    start_position: List[float]
    start_rotation: List[float]  # [x, y, z, w], habitat-lab's order
    task: str  # objectnav when the episode has an object_category, else pointnav
    goal_positions: List[List[float]] = field(default_factory=list)
    target_positions: List[List[float]] = field(default_factory=list)  # what distance is measured to
    category: Optional[str] = None
    geodesic_distance: Optional[float] = None


def _read_json(path: str) -> Any:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:  # type: ignore[operator]
        return json.load(f)


def load_episode_dataset(path: str, scenes_dir: Optional[str] = None) -> List[Episode]:
    """Reads a habitat-lab episode dataset (`.json` or `.json.gz`): PointNav/ImageNav episodes with `goals`
    positions, ObjectNav episodes with `object_category` and the file's `goals_by_category` (view points are
    the targets, as in habitat-lab). A split file with no episodes and a `content/` folder beside it (the v1
    layout) loads every file in `content/`."""
    data = _read_json(path)
    docs = [data]
    content = os.path.join(os.path.dirname(path), "content")
    if not data.get("episodes") and os.path.isdir(content):
        docs = [_read_json(os.path.join(content, n)) for n in sorted(os.listdir(content)) if n.endswith((".json", ".json.gz"))]
    episodes: List[Episode] = []
    for doc in docs:
        by_cat = doc.get("goals_by_category") or {}
        for raw in doc.get("episodes") or []:
            scene = str(raw["scene_id"])
            if scenes_dir and not os.path.isabs(scene):
                scene = os.path.join(scenes_dir, scene)
            category = raw.get("object_category")
            goals = list(raw.get("goals") or [])
            if category is not None and not goals:
                goals = list(by_cat.get("%s_%s" % (os.path.basename(str(raw["scene_id"])), category)) or [])
            goal_positions = [[float(v) for v in g["position"]] for g in goals if "position" in g]
            targets: List[List[float]] = []
            for g in goals:
                for vp in g.get("view_points") or []:
                    st = vp.get("agent_state", vp)
                    if "position" in st:
                        targets.append([float(v) for v in st["position"]])
            info = raw.get("info") or {}
            gd = info.get("geodesic_distance")
            episodes.append(
                Episode(
                    episode_id=str(raw["episode_id"]),
                    scene_id=scene,
                    start_position=[float(v) for v in raw["start_position"]],
                    start_rotation=[float(v) for v in raw["start_rotation"]],
                    task="objectnav" if category is not None else "pointnav",
                    goal_positions=goal_positions,
                    target_positions=targets or goal_positions,
                    category=category,
                    geodesic_distance=float(gd) if isinstance(gd, (int, float)) else None,
                )
            )
    if not episodes:
        raise ValueError("%s holds no episodes" % path)
    return episodes


# ----------------------------------------------------------------------------------------------------------
# The habitat-sim backend


@dataclass
class BridgeConfig:
    forward_step: float = 0.25
    #: habitat-sim's default is 10°; Habitat's ObjectNav/ImageNav benchmarks (and the shipped model) use 30°.
    turn_angle: float = 30.0
    tilt_angle: float = 30.0
    look_actions: bool = True
    rgb_uuid: str = "rgb"
    semantic_uuid: Optional[str] = None
    hfov: float = 90.0
    max_steps: int = 500
    success_distance: Optional[float] = None
    name: str = "habitat"


class HabitatBackend(Backend):
    """Drives one habitat-sim `Simulator` for the protocol session (one agent at a time).

    `hs` is the habitat_sim module (classes ActionSpec, ActuationSpec, AgentState, ShortestPath,
    MultiGoalShortestPath come from it). `reconfigure_scene(scene_path)` switches scenes for dataset
    episodes in other scenes.
    """

    def __init__(
        self,
        sim: Any,
        hs: Any,
        config: Optional[BridgeConfig] = None,
        episodes: Optional[List[Episode]] = None,
        reconfigure_scene: Optional[Callable[[str], None]] = None,
        current_scene: Optional[str] = None,
    ):
        import numpy as np  # habitat-sim needs numpy; imported here so v4s_protocol stays numpy-free

        self.np = np
        self.sim = sim
        self.hs = hs
        self.cfg = config or BridgeConfig()
        self.episodes = episodes
        self.by_id = {e.episode_id: e for e in episodes or []}
        self.reconfigure_scene = reconfigure_scene
        self.scene = current_scene
        self.next_index = 0
        self.episode: Optional[Episode] = None
        self.task = "pointnav"
        self.step_count = 0
        self.path_length = 0.0
        self.shortest = None  # type: Optional[float]
        self.ended = True
        self.prev_position: Optional[List[float]] = None
        self.warned_no_navmesh = False
        self._set_action_space()
        self.width, self.height, self.hfov = self._camera()

    # -- configuration --------------------------------------------------------------------------------------

    def action_amounts(self) -> Dict[str, Tuple[str, float]]:
        acts = {
            "move_forward": ("move", self.cfg.forward_step),
            "turn_left": ("turn", self.cfg.turn_angle),
            "turn_right": ("turn", self.cfg.turn_angle),
        }
        if self.cfg.look_actions:
            acts["look_up"] = ("look", self.cfg.tilt_angle)
            acts["look_down"] = ("look", self.cfg.tilt_angle)
        return acts

    def _set_action_space(self) -> None:
        """Sets the amounts on the agent config (habitat-sim reads them on every act), so what is advertised is
        what happens."""
        space = self.sim.get_agent(0).agent_config.action_space
        for name, (_kind, amount) in self.action_amounts().items():
            space[name] = self.hs.ActionSpec(name, self.hs.ActuationSpec(amount=float(amount)))

    def _camera(self) -> Tuple[int, int, float]:
        try:
            for spec in self.sim.config.agents[0].sensor_specifications:
                if spec.uuid == self.cfg.rgb_uuid:
                    res = spec.resolution  # [height, width]
                    return int(res[1]), int(res[0]), float(getattr(spec, "hfov", self.cfg.hfov))
        except (AttributeError, IndexError, TypeError):
            pass
        obs = self.sim.get_sensor_observations()
        arr = self._rgb_array(obs)
        return int(arr.shape[1]), int(arr.shape[0]), self.cfg.hfov

    def capabilities(self) -> Dict[str, Any]:
        actions: Dict[str, Any] = {n: {"kind": k, "amount": a} for n, (k, a) in self.action_amounts().items()}
        actions["stop"] = {"kind": "stop", "amount": 0}
        if self.episodes:
            tasks = sorted({e.task for e in self.episodes} | ({"imagenav"} if any(e.task == "pointnav" for e in self.episodes) else set()))
        else:
            tasks = ["pointnav", "imagenav"]
        return {
            "actions": actions,
            "camera": {"width": self.width, "height": self.height, "hfov": self.hfov},
            "mode": "lockstep",
            "tasks": tasks,
            "name": self.cfg.name,
        }

    def supports_oracle(self) -> bool:
        return self.cfg.semantic_uuid is not None

    # -- observations ---------------------------------------------------------------------------------------

    def _rgb_array(self, obs: Dict[str, Any]) -> Any:
        if self.cfg.rgb_uuid not in obs:
            keys = ", ".join(str(k) for k in obs.keys())
            raise ProtocolError("E_SIMULATOR", 'no sensor "%s" in the observations (sensors: %s); set --rgb-uuid' % (self.cfg.rgb_uuid, keys))
        arr = obs[self.cfg.rgb_uuid]
        if hasattr(arr, "cpu"):  # a torch tensor (gpu2gpu transfer)
            arr = arr.cpu().numpy()
        arr = self.np.asarray(arr)
        if arr.dtype != self.np.uint8 or arr.ndim != 3 or arr.shape[2] not in (3, 4):
            raise ProtocolError("E_SIMULATOR", "sensor %s gave %s %s; expected uint8 (H, W, 4) RGBA" % (self.cfg.rgb_uuid, arr.dtype, arr.shape))
        return arr

    def _frame(self, obs: Dict[str, Any]) -> Frame:
        arr = self._rgb_array(obs)
        rgb = self.np.ascontiguousarray(arr[:, :, :3])  # RGBA -> RGB
        return Frame(int(rgb.shape[1]), int(rgb.shape[0]), rgb.tobytes())

    def _position(self) -> List[float]:
        return [float(v) for v in self.sim.get_agent(0).get_state().position]

    def _pose(self) -> Pose:
        st = self.sim.get_agent(0).get_state()
        return Pose([float(v) for v in st.position], quat_xyzw(st.rotation))

    def _geodesic(self, start: Sequence[float], targets: Sequence[Sequence[float]]) -> float:
        """Geodesic distance on the navmesh to the nearest target; Euclidean when no navmesh is loaded."""
        if not targets:
            return math.inf
        pf = getattr(self.sim, "pathfinder", None)
        if pf is None or not getattr(pf, "is_loaded", False):
            if not self.warned_no_navmesh:
                log("no navmesh loaded: distances are straight-line, not geodesic")
                self.warned_no_navmesh = True
            return min(math.dist(start, t) for t in targets)
        np = self.np
        if len(targets) == 1:
            path = self.hs.ShortestPath()
            path.requested_end = np.array(targets[0], dtype=np.float32)
        else:
            path = self.hs.MultiGoalShortestPath()
            path.requested_ends = [np.array(t, dtype=np.float32) for t in targets]
        path.requested_start = np.array(start, dtype=np.float32)
        found = pf.find_path(path)
        d = float(path.geodesic_distance)
        return d if found and math.isfinite(d) else math.inf

    def _success_distance(self) -> float:
        return self.cfg.success_distance if self.cfg.success_distance is not None else SUCCESS_DISTANCE[self.task]

    def _info(self, success: bool = False) -> Dict[str, Any]:
        assert self.episode is not None
        d = self._geodesic(self._position(), self.episode.target_positions)
        return {
            "distanceToGoal": d if math.isfinite(d) else None,
            "success": bool(success),
            "shortestPathLength": self.shortest if self.shortest is not None and math.isfinite(self.shortest) else None,
            "pathLength": self.path_length,
            "episode": self.episode.episode_id,
        }

    # -- episodes -------------------------------------------------------------------------------------------

    def _pick_episode(self, seed: Optional[int], task: Optional[str], episode_id: Optional[str]) -> Episode:
        if self.episodes:
            if episode_id is not None:
                ep = self.by_id.get(episode_id)
                if ep is None:
                    raise ProtocolError("E_CONFIG", 'unknown episode id "%s" (%d episodes loaded)' % (episode_id[:64], len(self.episodes)))
                return ep
            pool = [e for e in self.episodes if task is None or e.task == task or (task == "imagenav" and e.task == "pointnav")]
            if not pool:
                raise ProtocolError("E_CONFIG", "the dataset has no %s episodes" % task)
            if seed is not None:
                return pool[seed % len(pool)]
            ep = pool[self.next_index % len(pool)]
            self.next_index += 1
            return ep
        if episode_id is not None:
            raise ProtocolError("E_CONFIG", "episode ids need an episode dataset (start the bridge with --dataset)")
        return self._random_episode(seed, task or "pointnav")

    def _random_episode(self, seed: Optional[int], task: str) -> Episode:
        """A PointNav/ImageNav episode drawn from the navmesh, reproducible from the seed."""
        if task == "objectnav":
            raise ProtocolError("E_CONFIG", "objectnav needs an episode dataset with object goals (--dataset)")
        pf = getattr(self.sim, "pathfinder", None)
        if pf is None or not pf.is_loaded:
            raise ProtocolError("E_SIMULATOR", "the scene has no navmesh, so no random episode can be drawn; load an episode dataset (--dataset)")
        s = seed if seed is not None else self.next_index
        self.next_index += 1
        self.sim.seed(s)
        rng = random.Random(s)
        for _ in range(100):
            start = [float(v) for v in pf.get_random_navigable_point()]
            goal = [float(v) for v in pf.get_random_navigable_point()]
            d = self._geodesic(start, [goal])
            if math.isfinite(d) and 1.0 <= d <= 30.0:
                return Episode(
                    episode_id="habitat:%s:%d" % (task, s),
                    scene_id=self.scene or "",
                    start_position=start,
                    start_rotation=yaw_quat_xyzw(rng.uniform(0, 2 * math.pi)),
                    task="pointnav",
                    goal_positions=[goal],
                    target_positions=[goal],
                    geodesic_distance=d,
                )
        raise ProtocolError("E_SIMULATOR", "no start/goal pair 1-30 m apart found in 100 draws (seed %d)" % s)

    def _ensure_scene(self, scene: str) -> None:
        if not scene or scene == self.scene:
            return
        if self.reconfigure_scene is None:
            raise ProtocolError("E_CONFIG", "the episode is in scene %s but the bridge has %s loaded and cannot switch scenes" % (scene, self.scene))
        log("loading scene %s" % scene)
        self.reconfigure_scene(scene)
        self.scene = scene
        self._set_action_space()

    def _set_agent(self, position: Sequence[float], rotation_xyzw: Sequence[float]) -> None:
        np = self.np
        q = [float(v) for v in rotation_xyzw]
        n = math.sqrt(sum(v * v for v in q))
        if not (math.isfinite(n) and n > 1e-9):
            raise ProtocolError("E_CONFIG", "start rotation %r is not a quaternion" % (rotation_xyzw,))
        # habitat-sim's set_state turns a list of [x, y, z, w] coefficients into its quaternion (quat_from_coeffs).
        state = self.hs.AgentState(position=np.array(position, dtype=np.float32), rotation=[v / n for v in q])
        self.sim.get_agent(0).set_state(state)

    def _render_at(self, position: Sequence[float], rotation_xyzw: Sequence[float]) -> Frame:
        """The RGB view from another pose (ImageNav goal image), restoring the agent afterwards."""
        agent = self.sim.get_agent(0)
        saved = agent.get_state()
        try:
            self._set_agent(position, rotation_xyzw)
            return self._frame(self.sim.get_sensor_observations())
        finally:
            agent.set_state(saved, reset_sensors=True, infer_sensor_states=False)

    def reset(self, seed: Optional[int], task: Optional[str], episode_id: Optional[str]) -> Tuple[Observation, Optional[Goal]]:
        ep = self._pick_episode(seed, task, episode_id)
        task = task or ep.task
        if task == "objectnav" and ep.category is None:
            raise ProtocolError("E_CONFIG", "episode %s has no object_category; it cannot be an objectnav episode" % ep.episode_id)
        if task in ("pointnav", "imagenav") and not ep.goal_positions:
            raise ProtocolError("E_CONFIG", "episode %s has no goal position; it cannot be a %s episode" % (ep.episode_id, task))
        self._ensure_scene(ep.scene_id)
        self.sim.reset()
        self._set_agent(ep.start_position, ep.start_rotation)
        self.episode, self.task = ep, task
        self.step_count, self.path_length, self.ended = 0, 0.0, False
        self.prev_position = self._position()
        self.shortest = ep.geodesic_distance if ep.geodesic_distance is not None else self._geodesic(ep.start_position, ep.target_positions)
        if task == "objectnav":
            goal = Goal(task, category=ep.category)
        elif task == "pointnav":
            goal = Goal(task, position=ep.goal_positions[0])
        else:
            # ImageNav: the view from the goal with a yaw drawn from the episode id, as habitat-lab's
            # ImageGoalSensor does (seeded by the episode).
            yaw = random.Random(ep.episode_id).uniform(0, 2 * math.pi)
            goal = Goal(task, image=self._render_at(ep.goal_positions[0], yaw_quat_xyzw(yaw)))
        obs = self.sim.get_sensor_observations()
        return Observation(0, self._frame(obs), self._info(), self._pose(), collided=False), goal

    def step(self, name: str, amount: Optional[float]) -> StepResult:
        if self.episode is None or self.ended:
            raise ProtocolError("E_NO_EPISODE", "no episode is running; send reset first")
        if name == "stop":
            self.ended = True
            obs = self.sim.get_sensor_observations()
            info = self._info()
            d = info["distanceToGoal"]
            info["success"] = d is not None and d <= self._success_distance()
            return StepResult(Observation(self.step_count, self._frame(obs), info, self._pose(), collided=False), terminated=True)
        spec = self.sim.get_agent(0).agent_config.action_space[name]
        default = spec.actuation.amount
        if amount is not None:
            spec.actuation.amount = float(amount)
        try:
            obs = self.sim.step(name)
        finally:
            spec.actuation.amount = default
        self.step_count += 1
        position = self._position()
        if self.prev_position is not None:
            self.path_length += math.dist(self.prev_position, position)
        self.prev_position = position
        truncated = self.step_count >= self.cfg.max_steps
        if truncated:
            self.ended = True
        collided = bool(obs.get("collided", False))
        return StepResult(Observation(self.step_count, self._frame(obs), self._info(), self._pose(), collided=collided), truncated=truncated)

    # -- oracle ---------------------------------------------------------------------------------------------

    def _instance_ids(self, category: Optional[str]) -> List[int]:
        scene = getattr(self.sim, "semantic_scene", None)
        ids = []
        for obj in getattr(scene, "objects", None) or []:
            if obj is None or obj.category is None:
                continue
            name = obj.category.name()
            if (category is None and name) or name == category:
                sid = getattr(obj, "semantic_id", None)
                ids.append(int(sid) if sid is not None else int(str(obj.id).split("_")[-1]))
        return ids

    def _mask(self, obs: Dict[str, Any], ids: List[int]) -> bytes:
        sem = self.np.asarray(obs[self.cfg.semantic_uuid])
        return self.np.isin(sem, ids).astype(self.np.uint8).tobytes()

    def oracle(self, sequences: List[List[str]], category: Optional[str]) -> List[Rollout]:
        """True futures: step each sequence from the current state, then restore the agent (sensors included)."""
        if self.cfg.semantic_uuid is None:
            raise ProtocolError("E_ORACLE_DISABLED", "the oracle needs a semantic sensor (start the bridge with --oracle)")
        if self.episode is None or self.ended:
            raise ProtocolError("E_NO_EPISODE", "no episode is running; send reset first")
        ids = self._instance_ids(category if category is not None else self.episode.category)
        agent = self.sim.get_agent(0)
        saved = agent.get_state()
        rollouts = []
        try:
            for seq in sequences:
                frames, masks, poses = [], [], []
                for a in seq:
                    obs = self.sim.get_sensor_observations() if a == "stop" else self.sim.step(a)
                    frames.append(self._frame(obs))
                    masks.append(self._mask(obs, ids))
                    poses.append(self._pose())
                rollouts.append(Rollout(frames, masks, poses))
                agent.set_state(saved, reset_sensors=True, infer_sensor_states=False)
        finally:
            agent.set_state(saved, reset_sensors=True, infer_sensor_states=False)
        return rollouts

    def end_session(self) -> None:
        self.ended = True
        self.episode = None


# ----------------------------------------------------------------------------------------------------------
# Creating the habitat-sim Simulator


def make_habitat_simulator(args: argparse.Namespace, scene: str, hs: Any) -> Tuple[Any, Callable[[str], None]]:
    """A habitat_sim.Simulator with one agent, an RGB camera (and a semantic one with --oracle), and a scene
    switcher."""
    sim_cfg = hs.SimulatorConfiguration()
    sim_cfg.scene_id = scene
    if args.scene_dataset_config:
        sim_cfg.scene_dataset_config_file = args.scene_dataset_config
    sim_cfg.gpu_device_id = args.gpu
    sim_cfg.enable_physics = False
    sim_cfg.allow_sliding = True  # habitat-lab's default

    def camera(uuid: str, kind: Any) -> Any:
        spec = hs.CameraSensorSpec()
        spec.uuid = uuid
        spec.sensor_type = kind
        spec.resolution = [args.height, args.width]
        spec.hfov = args.hfov
        spec.position = [0.0, args.sensor_height, 0.0]
        return spec

    sensors = [camera("rgb", hs.SensorType.COLOR)]
    if args.oracle:
        sensors.append(camera("semantic", hs.SensorType.SEMANTIC))
    agent_cfg = hs.AgentConfiguration()
    agent_cfg.height = args.agent_height
    agent_cfg.radius = args.agent_radius
    agent_cfg.sensor_specifications = sensors
    config = hs.Configuration(sim_cfg, [agent_cfg])
    sim = hs.Simulator(config)

    def reconfigure(new_scene: str) -> None:
        config.sim_cfg.scene_id = new_scene
        sim.reconfigure(config)

    return sim, reconfigure


# ----------------------------------------------------------------------------------------------------------
# Serving


def _is_loopback(host: str) -> bool:
    h = host.strip().lower().strip("[]")
    return h in ("localhost", "::1") or h.startswith("127.")


async def serve(backend: Backend, args: argparse.Namespace, on_listening: Callable[[str], None]) -> None:
    """Listens (agent dials in) or dials the agent, and serves one session at a time."""
    import websockets  # python3-websockets 10.x or websockets >= 14

    options = SessionOptions(
        encodings=args.encodings,
        jpeg_quality=args.jpeg_quality,
        oracle=args.oracle,
        log=log,
    )
    if args.dial:
        options.hello_token = args.token
        async with websockets.connect(args.dial, max_size=1024 * 1024, compression=None) as ws:
            log("dialed %s" % args.dial)
            await serve_session(ws, backend, options)
        return

    one_session = asyncio.Lock()  # one simulator, so one agent at a time

    async def handler(ws: Any) -> None:  # one argument: websockets >= 10.1
        if not await authorize(ws, args.token):
            return
        try:
            # A new connection may overlap the previous one's closing handshake: wait a moment for it.
            await asyncio.wait_for(one_session.acquire(), timeout=BUSY_WAIT_S)
        except asyncio.TimeoutError:
            await refuse_connection(ws, "E_TOO_MANY_CONNECTIONS", "the Habitat bridge serves one agent at a time; try again later", CLOSE_TRY_AGAIN_LATER)
            return
        try:
            await serve_session(ws, backend, options)
        finally:
            one_session.release()

    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
            pass
    # max_size bounds what the agent may send (JSON control messages: 1 MiB, docs/protocol.md §8).
    async with websockets.serve(handler, args.host, args.port, max_size=1024 * 1024, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        host = "[%s]" % args.host if ":" in args.host else args.host
        on_listening("ws://%s:%d" % (host, port))
        await stop
    log("stopped")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Serve a habitat-sim scene to a v4s-nav agent (protocol v4s.sim.v1).")
    src = p.add_argument_group("scene and episodes")
    src.add_argument("--scene", help="scene file (.glb/.ply) or scene id of --scene-dataset-config")
    src.add_argument("--scene-dataset-config", help="scene dataset config (.scene_dataset_config.json), e.g. for HM3D")
    src.add_argument("--dataset", help="habitat-lab episode dataset (.json or .json.gz): PointNav, ImageNav or ObjectNav")
    src.add_argument("--scenes-dir", help="folder the dataset's scene_id paths are relative to (e.g. data/scene_datasets)")
    net = p.add_argument_group("network")
    net.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1); others need --token")
    net.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default 8765; 0 picks a free one)")
    net.add_argument("--token", default=os.environ.get("V4S_TOKEN"), help="shared token (default: $V4S_TOKEN)")
    net.add_argument("--dial", metavar="URL", help="dial a listening agent (ws://host:8766) instead of listening")
    cam = p.add_argument_group("camera")
    cam.add_argument("--width", type=int, default=640)
    cam.add_argument("--height", type=int, default=480)
    cam.add_argument("--hfov", type=float, default=90.0)
    cam.add_argument("--sensor-height", type=float, default=1.25, help="camera height above the agent base, m (habitat-lab: 1.25)")
    cam.add_argument("--rgb-uuid", default="rgb", help="uuid of the RGB sensor (default rgb)")
    cam.add_argument("--encoding", choices=["jpeg", "png", "raw"], help="default image encoding (default: jpeg with Pillow, else png)")
    cam.add_argument("--jpeg-quality", type=int, default=90)
    act = p.add_argument_group("actions and episodes")
    act.add_argument("--forward-step", type=float, default=0.25, help="move_forward, m (default 0.25)")
    act.add_argument("--turn-angle", type=float, default=30.0, help="turn_left/turn_right, degrees (default 30; habitat-sim's own default is 10)")
    act.add_argument("--tilt-angle", type=float, default=30.0, help="look_up/look_down, degrees (default 30)")
    act.add_argument("--no-look", action="store_true", help="do not offer look_up/look_down")
    act.add_argument("--max-steps", type=int, default=500, help="steps before an episode is truncated (default 500)")
    act.add_argument("--success-distance", type=float, help="m; default habitat-lab's: PointNav 0.2, ObjectNav 0.1, ImageNav 1.0")
    act.add_argument("--agent-height", type=float, default=1.5)
    act.add_argument("--agent-radius", type=float, default=0.1)
    p.add_argument("--oracle", action="store_true", help="serve the oracle op (adds a semantic sensor; needs a semantic scene)")
    p.add_argument("--gpu", type=int, default=0, help="GPU device id for rendering")
    return p


SimulatorFactory = Callable[[argparse.Namespace, str], Tuple[Any, Optional[Callable[[str], None]]]]


def main(argv: Optional[List[str]] = None, simulator_factory: Optional[SimulatorFactory] = None, hs: Any = None) -> int:
    """The command line. Tests pass `simulator_factory` and `hs` to run the bridge on a stand-in."""
    args = build_parser().parse_args(argv)
    if not args.scene and not args.dataset:
        log("give --scene and/or --dataset")
        return 2
    if not args.dial and not _is_loopback(args.host) and not args.token:
        log("E_INSECURE_BIND: refusing to listen on %s without a token: anyone who can reach it could drive the "
            "agent's session. Pass --token (or $V4S_TOKEN), or bind 127.0.0.1 and use an SSH tunnel." % args.host)
        return 2
    encodings = default_encodings()
    if args.encoding:
        if args.encoding == "jpeg" and not has_jpeg():
            log("--encoding jpeg needs Pillow (pip install pillow)")
            return 2
        encodings = [args.encoding] + [e for e in encodings if e != args.encoding]
    args.encodings = encodings

    episodes = None
    if args.dataset:
        try:
            episodes = load_episode_dataset(args.dataset, args.scenes_dir)
        except (OSError, ValueError, KeyError, TypeError) as e:
            log("cannot load the episode dataset %s: %s" % (args.dataset, e))
            return 2
        log("%d episodes from %s" % (len(episodes), args.dataset))
    scene = args.scene or (episodes[0].scene_id if episodes else "")

    if hs is None:
        try:
            import habitat_sim as hs  # noqa: F811
        except ImportError:
            log("habitat_sim is not importable here: run the bridge in your habitat-sim environment (see README.md)")
            return 2
    factory = simulator_factory or (lambda a, s: make_habitat_simulator(a, s, hs))
    sim, reconfigure = factory(args, scene)
    config = BridgeConfig(
        forward_step=args.forward_step,
        turn_angle=args.turn_angle,
        tilt_angle=args.tilt_angle,
        look_actions=not args.no_look,
        rgb_uuid=args.rgb_uuid,
        semantic_uuid="semantic" if args.oracle else None,
        hfov=args.hfov,
        max_steps=args.max_steps,
        success_distance=args.success_distance,
    )
    backend = HabitatBackend(sim, hs, config, episodes, reconfigure, scene)

    def on_listening(url: str) -> None:
        # The first line on stdout says where to connect (tests and scripts read it).
        print("v4s habitat bridge listening on %s" % url, flush=True)

    try:
        asyncio.run(serve(backend, args, on_listening))
    except OSError as e:
        log("E_LISTEN: cannot listen on %s:%d (%s)" % (args.host, args.port, e))
        return 1
    finally:
        close = getattr(sim, "close", None)
        if callable(close):
            close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
