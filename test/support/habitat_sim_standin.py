"""TEST STAND-IN for habitat-sim. NOT habitat-sim, and no simulation worth the name.

habitat-sim cannot be installed here (conda, a GPU/EGL context, scene assets), so the system test runs the real
bridge (src/sim-adapters/habitat/bridge.py) against this module instead. It implements only the calls the bridge
makes, with habitat-sim's names and data layouts (read from habitat-sim's src_python/habitat_sim):

- `Simulator.step(name)` / `reset()` / `get_sensor_observations()` return a dict keyed by sensor uuid: the
  colour sensor is a uint8 (H, W, 4) RGBA numpy array, the semantic sensor uint32 (H, W); `step` adds
  `"collided": bool` (simulator.py).
- `get_agent(0).get_state()` returns an AgentState whose `position` is a float32 numpy array and whose
  `rotation` is a numpy-quaternion-like object, w first (`.w .x .y .z`, `.components` = [w, x, y, z]);
  `set_state` takes a list of [x, y, z, w] coefficients, as habitat's `quat_from_coeffs` does (agent.py).
- `agent_config.action_space` maps names to ActionSpec(name, ActuationSpec(amount)); the defaults are
  habitat-sim's (move_forward 0.25 m, turn_left/turn_right 10°), read on every act, so whatever the bridge sets
  is what moves the agent (agent.py).
- `pathfinder` (is_loaded, find_path(ShortestPath | MultiGoalShortestPath), get_random_navigable_point, seed).
- `semantic_scene.objects[i].id` like "0_0_<instance>", `.category.name()`.

The world: a square room (half-size 4 m; 1 m when the scene path contains "small"), no obstacles, so geodesic =
straight-line distance. move_forward goes along -Z rotated by the agent's rotation and is clamped at the walls
(then `collided` is True). The colour frame is a pure function of the state, so the TypeScript test can
predict every pixel (see `render`).
"""
from __future__ import annotations

import math
import random
from typing import Any, Dict, List, Optional

import numpy as np


class quaternion:  # noqa: N801 - named like numpy-quaternion's class it stands in for
    """Stands in for numpy-quaternion's `quaternion` (w-first storage)."""

    def __init__(self, w: float, x: float, y: float, z: float):
        self.w, self.x, self.y, self.z = float(w), float(x), float(y), float(z)

    @property
    def components(self) -> np.ndarray:
        return np.array([self.w, self.x, self.y, self.z])

    def __mul__(self, o: "quaternion") -> "quaternion":
        return quaternion(
            self.w * o.w - self.x * o.x - self.y * o.y - self.z * o.z,
            self.w * o.x + self.x * o.w + self.y * o.z - self.z * o.y,
            self.w * o.y - self.x * o.z + self.y * o.w + self.z * o.x,
            self.w * o.z + self.x * o.y - self.y * o.x + self.z * o.w,
        )

    def rotate(self, v: np.ndarray) -> np.ndarray:
        p = self * quaternion(0, v[0], v[1], v[2]) * quaternion(self.w, -self.x, -self.y, -self.z)
        return np.array([p.x, p.y, p.z])


def quat_from_coeffs(c: Any) -> quaternion:
    """habitat_sim.utils.common.quat_from_coeffs: [x, y, z, w] -> quaternion."""
    return quaternion(c[3], c[0], c[1], c[2])


def quat_about_y(deg: float) -> quaternion:
    h = math.radians(deg) / 2
    return quaternion(math.cos(h), 0, math.sin(h), 0)


class ActuationSpec:
    def __init__(self, amount: float, constraint: Optional[float] = None):
        self.amount = amount
        self.constraint = constraint


class ActionSpec:
    def __init__(self, name: str, actuation: Optional[ActuationSpec] = None):
        self.name = name
        self.actuation = actuation


class AgentState:
    def __init__(self, position: Any = None, rotation: Any = None, sensor_states: Optional[Dict[str, Any]] = None):
        self.position = np.zeros(3, dtype=np.float32) if position is None else position
        self.rotation = quaternion(1, 0, 0, 0) if rotation is None else rotation
        self.sensor_states = sensor_states if sensor_states is not None else {}


class ShortestPath:
    def __init__(self) -> None:
        self.requested_start = np.zeros(3)
        self.requested_end = np.zeros(3)
        self.geodesic_distance = math.inf
        self.points: List[np.ndarray] = []


class MultiGoalShortestPath:
    def __init__(self) -> None:
        self.requested_start = np.zeros(3)
        self.requested_ends: List[np.ndarray] = []
        self.geodesic_distance = math.inf
        self.points: List[np.ndarray] = []


class CameraSensorSpec:
    def __init__(self, uuid: str, sensor_type: str, resolution: List[int], hfov: float):
        self.uuid = uuid
        self.sensor_type = sensor_type
        self.resolution = resolution  # [height, width], as habitat-sim orders it
        self.hfov = hfov


def _default_action_space() -> Dict[str, ActionSpec]:
    # habitat-sim's defaults (agent.py): turns of 10 degrees, not the 30 of Habitat's benchmarks.
    return {
        "move_forward": ActionSpec("move_forward", ActuationSpec(amount=0.25)),
        "turn_left": ActionSpec("turn_left", ActuationSpec(amount=10.0)),
        "turn_right": ActionSpec("turn_right", ActuationSpec(amount=10.0)),
    }


class AgentConfiguration:
    def __init__(self, sensor_specifications: Optional[List[CameraSensorSpec]] = None):
        self.height = 1.5
        self.radius = 0.1
        self.sensor_specifications = sensor_specifications or []
        self.action_space = _default_action_space()


class SimulatorConfiguration:
    def __init__(self, scene_id: str = "none"):
        self.scene_id = scene_id


class Configuration:
    def __init__(self, sim_cfg: SimulatorConfiguration, agents: List[AgentConfiguration]):
        self.sim_cfg = sim_cfg
        self.agents = agents


def make_configuration(scene: str, width: int, height: int, hfov: float, semantic: bool) -> Configuration:
    sensors = [CameraSensorSpec("rgb", "COLOR", [height, width], hfov)]
    if semantic:
        sensors.append(CameraSensorSpec("semantic", "SEMANTIC", [height, width], hfov))
    return Configuration(SimulatorConfiguration(scene), [AgentConfiguration(sensors)])


class _Category:
    def __init__(self, name: str):
        self._name = name

    def name(self) -> str:
        return self._name


class _SemanticObject:
    def __init__(self, instance: int, category: str):
        self.id = "0_0_%d" % instance
        self.category = _Category(category)


class _SemanticScene:
    def __init__(self) -> None:
        self.objects = [_SemanticObject(1, "chair"), _SemanticObject(2, "table")]


def _yaw_deg(q: quaternion) -> float:
    return math.degrees(2 * math.atan2(q.y, q.w)) % 360.0


def render(width: int, height: int, position: np.ndarray, rotation: quaternion, tilt: float) -> np.ndarray:
    """The colour frame of a state, uint8 (H, W, 4) RGBA. Pixel (row r, column c):
    R = (7c + round(yaw°)) mod 256, G = (5r + round(tilt°) + 128) mod 256,
    B = (round(20x) + 3 round(20z)) mod 256, A = 200 (never 255, so a leaked alpha channel shows)."""
    yaw = int(round(_yaw_deg(rotation))) % 360
    cols = (7 * np.arange(width) + yaw) % 256
    rows = (5 * np.arange(height) + int(round(tilt)) + 128) % 256
    out = np.empty((height, width, 4), dtype=np.uint8)
    out[:, :, 0] = cols[None, :]
    out[:, :, 1] = rows[:, None]
    out[:, :, 2] = (int(round(20 * float(position[0]))) + 3 * int(round(20 * float(position[2])))) % 256
    out[:, :, 3] = 200
    return out


class Agent:
    def __init__(self, config: AgentConfiguration, room: float):
        self.agent_config = config
        self.room = room
        self.position = np.zeros(3, dtype=np.float32)
        self.rotation = quaternion(1, 0, 0, 0)
        self.tilt = 0.0  # sensor pitch, degrees (look_up/look_down move only the sensors, as in habitat-sim)
        self.initial_state: Optional[AgentState] = None

    def get_state(self) -> AgentState:
        return AgentState(
            self.position.copy(),
            quaternion(self.rotation.w, self.rotation.x, self.rotation.y, self.rotation.z),
            {s.uuid: {"tilt": self.tilt} for s in self.agent_config.sensor_specifications},
        )

    def set_state(self, state: AgentState, reset_sensors: bool = True, infer_sensor_states: bool = True, is_initial: bool = False) -> None:
        rot = state.rotation
        if isinstance(rot, (list, np.ndarray)):
            rot = quat_from_coeffs(rot)
        self.position = np.array(state.position, dtype=np.float32)
        self.rotation = quaternion(rot.w, rot.x, rot.y, rot.z)
        if reset_sensors:
            self.tilt = 0.0
        if not infer_sensor_states:
            for v in state.sensor_states.values():
                self.tilt = float(v["tilt"])
        if is_initial:
            self.initial_state = state

    def act(self, action_id: str) -> bool:
        assert action_id in self.agent_config.action_space, "No action %s in action space" % action_id
        spec = self.agent_config.action_space[action_id]
        amount = float(spec.actuation.amount)
        if spec.name == "move_forward":
            target = self.position + self.rotation.rotate(np.array([0.0, 0.0, -amount])).astype(np.float32)
            lim = self.room - self.agent_config.radius
            clamped = np.array([min(max(target[0], -lim), lim), target[1], min(max(target[2], -lim), lim)], dtype=np.float32)
            self.position = clamped
            return bool(np.any(np.abs(clamped - target) > 1e-6))
        if spec.name == "turn_left":
            self.rotation = quat_about_y(amount) * self.rotation
        elif spec.name == "turn_right":
            self.rotation = quat_about_y(-amount) * self.rotation
        elif spec.name == "look_up":
            self.tilt += amount
        elif spec.name == "look_down":
            self.tilt -= amount
        else:
            raise KeyError("stand-in has no control %s" % spec.name)
        return False


class PathFinder:
    def __init__(self, room: float):
        self.room = room
        self.is_loaded = True
        self._rng = random.Random(0)

    def seed(self, s: int) -> None:
        self._rng = random.Random(s)

    def get_random_navigable_point(self) -> np.ndarray:
        lim = self.room - 0.2
        return np.array([self._rng.uniform(-lim, lim), 0.0, self._rng.uniform(-lim, lim)], dtype=np.float32)

    def find_path(self, path: Any) -> bool:
        start = np.asarray(path.requested_start, dtype=np.float64)
        ends = path.requested_ends if isinstance(path, MultiGoalShortestPath) else [path.requested_end]
        path.geodesic_distance = min(float(np.linalg.norm(np.asarray(e, dtype=np.float64) - start)) for e in ends)
        return True


class Simulator:
    """Stands in for habitat_sim.Simulator."""

    def __init__(self, config: Configuration):
        self.config = config
        self.scene_loads: List[str] = []
        self._load(config)

    def _load(self, config: Configuration) -> None:
        scene = config.sim_cfg.scene_id
        self.scene_loads.append(scene)
        room = 1.0 if "small" in scene else 4.0
        self.agents = [Agent(config.agents[0], room)]
        self.agents[0].initial_state = self.agents[0].get_state()
        self.pathfinder = PathFinder(room)
        self.semantic_scene = _SemanticScene()

    def reconfigure(self, config: Configuration) -> None:
        self.config = config
        self._load(config)

    def seed(self, new_seed: int) -> None:
        self.pathfinder.seed(new_seed)

    def get_agent(self, agent_id: int) -> Agent:
        return self.agents[agent_id]

    def get_sensor_observations(self) -> Dict[str, Any]:
        a = self.agents[0]
        obs: Dict[str, Any] = {}
        for spec in a.agent_config.sensor_specifications:
            h, w = spec.resolution
            if spec.sensor_type == "COLOR":
                obs[spec.uuid] = render(w, h, a.position, a.rotation, a.tilt)
            else:
                # instance 1 (chair) on the left half and 2 (table) on the right while facing yaw < 180°; swapped after
                left, right = (1, 2) if _yaw_deg(a.rotation) < 180 else (2, 1)
                sem = np.full((h, w), right, dtype=np.uint32)
                sem[:, : w // 2] = left
                obs[spec.uuid] = sem
        return obs

    def reset(self) -> Dict[str, Any]:
        a = self.agents[0]
        if a.initial_state is not None:
            a.set_state(a.initial_state)
        return self.get_sensor_observations()

    def step(self, action: str, dt: float = 1.0 / 60.0) -> Dict[str, Any]:
        collided = self.agents[0].act(action)
        obs = self.get_sensor_observations()
        obs["collided"] = collided
        return obs

    def close(self) -> None:
        pass
