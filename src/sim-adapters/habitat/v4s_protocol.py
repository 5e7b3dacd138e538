"""The simulator side of the wire protocol v4s.sim.v1 (docs/protocol.md), in plain Python.

This module knows nothing about habitat-sim: it validates what the agent sends, builds `hello`, observation
and oracle messages, encodes images (raw, PNG with zlib, JPEG with Pillow when it is installed), and runs one
session over any WebSocket object that has `send`, `recv`, `close` and async iteration (the `websockets`
package, classic 10.x or current). A *backend* supplies the simulator: see `Backend` below; bridge.py has the
habitat-sim one.

Runs on Python 3.8+ and the standard library; Pillow is optional.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import math
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

PROTOCOL_VERSION = "v4s.sim.v1"

MIB = 1024 * 1024
#: Limits of docs/protocol.md §8 that the simulator side enforces.
LIMITS = {
    "simulator_max_payload": 1 * MIB,  # agent -> simulator (JSON control only)
    "agent_max_payload": 64 * MIB,  # default maxPayload of the agent
    "min_agent_max_payload": 64 * 1024,
    "max_request_id": 2**31 - 1,
    "max_seed": 2**53 - 1,
    "max_name_length": 256,
    "max_error_message_length": 4096,
    "max_token_length": 1024,
    "max_oracle_sequences": 64,
    "max_oracle_sequence_length": 64,
    "max_oracle_frames": 256,
    "max_image_side": 8192,
    "handshake_timeout_s": 10.0,
}

#: WebSocket close codes (docs/protocol.md §7).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_POLICY_VIOLATION = 1008
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TRY_AGAIN_LATER = 1013

TASK_NAMES = ("objectnav", "imagenav", "pointnav")
IMAGE_ENCODINGS = ("raw", "png", "jpeg")
ACTION_KINDS = ("move", "turn", "look", "stop")

import os

try:  # Pillow is optional: PNG needs only zlib (Pillow is faster), JPEG needs Pillow.
    from PIL import Image as _PILImage  # type: ignore
except ImportError:  # pragma: no cover - depends on the environment
    _PILImage = None
if os.environ.get("V4S_NO_PILLOW") == "1":  # tests the zlib-only path where Pillow is installed
    _PILImage = None


def has_jpeg() -> bool:
    """True when Pillow is importable, so JPEG can be offered."""
    return _PILImage is not None


def default_encodings() -> List[str]:
    """Encodings this process can send, default first: JPEG when Pillow is there (small, what cameras send),
    else PNG; raw is always offered (fastest on loopback)."""
    return ["jpeg", "png", "raw"] if has_jpeg() else ["png", "raw"]


class ProtocolError(Exception):
    """An error with a stable code (docs/protocol.md §6), sent to the agent as an `error` message."""

    def __init__(self, code: str, message: str, req_id: Optional[int] = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.req_id = req_id


# ----------------------------------------------------------------------------------------------------------
# Data handed over by a backend


@dataclass
class Frame:
    """An RGB image: `rgb` is width*height*3 bytes, row-major, top row first, no padding."""

    width: int
    height: int
    rgb: bytes

    def __post_init__(self) -> None:
        if not (1 <= self.width <= LIMITS["max_image_side"] and 1 <= self.height <= LIMITS["max_image_side"]):
            raise ProtocolError("E_SIMULATOR", "frame is %dx%d, outside 1...8192" % (self.width, self.height))
        if len(self.rgb) != self.width * self.height * 3:
            raise ProtocolError(
                "E_SIMULATOR",
                "frame data has %d bytes; %dx%d RGB needs %d" % (len(self.rgb), self.width, self.height, self.width * self.height * 3),
            )


@dataclass
class Pose:
    """Habitat frame: metres, +Y up, -Z forward; rotation as [x, y, z, w]."""

    position: Sequence[float]
    rotation: Sequence[float]

    def to_wire(self) -> Dict[str, List[float]]:
        return {"position": [_finite(v, "pose.position") for v in self.position], "rotation": [_finite(v, "pose.rotation") for v in self.rotation]}


@dataclass
class Observation:
    step: int
    frame: Frame
    info: Dict[str, Any] = field(default_factory=dict)
    pose: Optional[Pose] = None
    collided: Optional[bool] = None


@dataclass
class Goal:
    task: str
    category: Optional[str] = None
    position: Optional[Sequence[float]] = None
    image: Optional[Frame] = None


@dataclass
class StepResult:
    observation: Observation
    terminated: bool = False
    truncated: bool = False


@dataclass
class Rollout:
    """The true future of one action sequence: a frame, a mask (width*height bytes, 1 = target) and a pose per action."""

    frames: List[Frame]
    masks: List[bytes]
    poses: List[Pose]


class Backend:
    """What a session needs from a simulator. Subclass it (bridge.py: HabitatBackend).

    Raise ProtocolError for refusals with a code (E_CONFIG for an unknown episode, ...); any other exception
    becomes E_SIMULATOR. Methods are called one at a time, on the event loop's thread.
    """

    def capabilities(self) -> Dict[str, Any]:
        """`actions`, `camera`, `mode`, `tasks`, `name` (encodings and ops are added by the session)."""
        raise NotImplementedError

    def reset(self, seed: Optional[int], task: Optional[str], episode: Optional[str]) -> Tuple[Observation, Optional[Goal]]:
        raise NotImplementedError

    def step(self, name: str, amount: Optional[float]) -> StepResult:
        raise NotImplementedError

    def oracle(self, sequences: List[List[str]], category: Optional[str]) -> List[Rollout]:
        raise ProtocolError("E_ORACLE_DISABLED", "oracle: this bridge was not started with the oracle enabled")

    def supports_oracle(self) -> bool:
        return False

    def end_session(self) -> None:
        """The agent left (close op, or the socket dropped): end the episode. A robot stops here."""


# ----------------------------------------------------------------------------------------------------------
# Images


def encode_png(frame: Frame, level: int = 6) -> bytes:
    """An 8-bit RGB PNG: with Pillow when installed (filtered, faster), else with zlib only (filter 0 on every row)."""
    if _PILImage is not None:
        import io

        out = io.BytesIO()
        _PILImage.frombytes("RGB", (frame.width, frame.height), frame.rgb).save(out, format="PNG", compress_level=int(level))
        return out.getvalue()
    return encode_png_zlib(frame, level)


def encode_png_zlib(frame: Frame, level: int = 6) -> bytes:
    """An 8-bit RGB PNG (colour type 2, filter 0 on every row), with zlib only."""
    stride = frame.width * 3
    raw = b"".join(b"\x00" + frame.rgb[r * stride : (r + 1) * stride] for r in range(frame.height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", frame.width, frame.height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, level)) + chunk(b"IEND", b"")


def encode_jpeg(frame: Frame, quality: int = 90) -> bytes:
    """A baseline JPEG with Pillow, 4:4:4 (no chroma subsampling)."""
    if _PILImage is None:
        raise ProtocolError("E_CONFIG", "JPEG needs Pillow (pip install pillow, or apt-get install python3-pil)")
    import io

    img = _PILImage.frombytes("RGB", (frame.width, frame.height), frame.rgb)
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=int(quality), subsampling=0)
    return out.getvalue()


def encode_image(frame: Frame, encoding: str, jpeg_quality: int = 90, png_level: int = 6) -> bytes:
    if encoding == "raw":
        return bytes(frame.rgb)
    if encoding == "png":
        return encode_png(frame, png_level)
    if encoding == "jpeg":
        return encode_jpeg(frame, jpeg_quality)
    raise ProtocolError("E_CONFIG", "unknown encoding %r" % (encoding,))


def _descriptor(frame: Frame, encoding: str, data: bytes) -> Dict[str, Any]:
    return {"width": frame.width, "height": frame.height, "encoding": encoding, "byteLength": len(data)}


# ----------------------------------------------------------------------------------------------------------
# Messages


def _finite(v: Any, what: str) -> float:
    f = float(v)
    if not math.isfinite(f):
        raise ProtocolError("E_SIMULATOR", "%s is not finite (%r)" % (what, v))
    return f


def _json(obj: Any) -> str:
    return json.dumps(obj, allow_nan=False, separators=(",", ":"), ensure_ascii=False)


def wire_info(info: Dict[str, Any]) -> Dict[str, Any]:
    """Episode measures for the wire: a non-finite distance (unreachable) becomes null (JSON has no Infinity)."""
    out: Dict[str, Any] = {}
    for k, v in info.items():
        if isinstance(v, float) and not math.isfinite(v):
            out[k] = None
        elif hasattr(v, "item") and not isinstance(v, (str, bytes)):  # numpy scalars
            item = v.item()
            out[k] = None if isinstance(item, float) and not math.isfinite(item) else item
        else:
            out[k] = v
    return out


def error_message(code: str, message: str, req_id: Optional[int] = None) -> str:
    """An `error` text message; the message is cut to 4096 characters."""
    m = LIMITS["max_error_message_length"]
    text = message if len(message) <= m else message[: m - 1] + "\u2026"
    return _json({"op": "error", "id": req_id, "code": code, "message": text})


def hello_message(capabilities: Dict[str, Any], token: Optional[str] = None) -> str:
    msg: Dict[str, Any] = {"op": "hello", "protocol": PROTOCOL_VERSION, "capabilities": capabilities}
    if token is not None:
        msg["token"] = token
    return _json(msg)


def binary_message(header: Dict[str, Any], blobs: Sequence[bytes]) -> bytes:
    """uint32 LE header length | UTF-8 JSON header | blobs back to back (docs/protocol.md §4.1)."""
    head = _json(header).encode("utf-8")
    if len(head) > MIB:
        raise ProtocolError("E_SIMULATOR", "binary header of %d bytes is over 1 MiB" % len(head))
    return struct.pack("<I", len(head)) + head + b"".join(blobs)


def observation_message(
    req_id: Optional[int],
    result: StepResult,
    encoding: str,
    goal: Optional[Goal] = None,
    jpeg_quality: int = 90,
    png_level: int = 6,
) -> bytes:
    """One binary observation message: the frame, then the goal image when there is one."""
    obs = result.observation
    image = encode_image(obs.frame, encoding, jpeg_quality, png_level)
    header: Dict[str, Any] = {
        "op": "observation",
        "id": req_id,
        "step": int(obs.step),
        "info": wire_info(obs.info),
        "terminated": bool(result.terminated),
        "truncated": bool(result.truncated),
        "image": _descriptor(obs.frame, encoding, image),
    }
    if obs.pose is not None:
        header["pose"] = obs.pose.to_wire()
    if obs.collided is not None:
        header["collided"] = bool(obs.collided)
    blobs = [image]
    if goal is not None:
        g: Dict[str, Any] = {"task": goal.task}
        if goal.category is not None:
            g["category"] = goal.category
        if goal.position is not None:
            g["position"] = [_finite(v, "goal.position") for v in goal.position]
        if goal.image is not None:
            gi = encode_image(goal.image, encoding, jpeg_quality, png_level)
            g["image"] = _descriptor(goal.image, encoding, gi)
            blobs.append(gi)
        header["goal"] = g
    return binary_message(header, blobs)


def oracle_message(req_id: int, rollouts: Sequence[Rollout], encoding: str, jpeg_quality: int = 90, png_level: int = 6) -> bytes:
    """One binary oracle message: per rollout, per step, the image then the mask."""
    blobs: List[bytes] = []
    out = []
    for i, r in enumerate(rollouts):
        if not (len(r.frames) == len(r.masks) == len(r.poses)):
            raise ProtocolError("E_SIMULATOR", "oracle rollout %d: %d frames, %d masks, %d poses" % (i, len(r.frames), len(r.masks), len(r.poses)))
        steps = []
        for t, (frame, mask, pose) in enumerate(zip(r.frames, r.masks, r.poses)):
            if len(mask) != frame.width * frame.height:
                raise ProtocolError("E_SIMULATOR", "oracle rollout %d step %d: mask has %d bytes for %dx%d" % (i, t, len(mask), frame.width, frame.height))
            data = encode_image(frame, encoding, jpeg_quality, png_level)
            blobs.append(data)
            blobs.append(bytes(mask))
            steps.append(
                {
                    "image": _descriptor(frame, encoding, data),
                    "mask": {"width": frame.width, "height": frame.height, "byteLength": len(mask)},
                    "pose": pose.to_wire(),
                }
            )
        out.append({"steps": steps})
    return binary_message({"op": "oracle", "id": req_id, "rollouts": out}, blobs)


# ----------------------------------------------------------------------------------------------------------
# Parsing what the agent sends


def _reject_constant(name: str) -> Any:
    raise ValueError("%s is not JSON" % name)


def _is_int(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return True
    return isinstance(v, float) and math.isfinite(v) and v.is_integer()


def _peek_id(o: Dict[str, Any]) -> Optional[int]:
    v = o.get("id")
    return int(v) if _is_int(v) and 0 <= v <= LIMITS["max_request_id"] else None


class _Check:
    def __init__(self, where: str, req_id: Optional[int]):
        self.where = where
        self.req_id = req_id

    def fail(self, path: str, expected: str) -> None:
        raise ProtocolError("E_PROTOCOL_FIELD", '%s: field "%s" %s' % (self.where, path, expected), self.req_id)

    def int_(self, v: Any, path: str, lo: int, hi: int) -> int:
        if not _is_int(v) or not (lo <= v <= hi):
            self.fail(path, "must be an integer in %d...%d" % (lo, hi))
        return int(v)

    def string(self, v: Any, path: str, max_length: int = LIMITS["max_name_length"], min_length: int = 1) -> str:
        if not isinstance(v, str):
            self.fail(path, "must be a string")
        if not (min_length <= len(v) <= max_length):
            self.fail(path, "must be a string of %d...%d characters, has %d" % (min_length, max_length, len(v)))
        return v

    def one_of(self, v: Any, path: str, allowed: Sequence[str]) -> str:
        if not isinstance(v, str) or v not in allowed:
            self.fail(path, "must be one of %s" % ", ".join('"%s"' % a for a in allowed))
        return v

    def finite(self, v: Any, path: str) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            self.fail(path, "must be a finite number")
        return float(v)

    def obj(self, v: Any, path: str) -> Dict[str, Any]:
        if not isinstance(v, dict):
            self.fail(path, "must be a JSON object")
        return v

    def array(self, v: Any, path: str, lo: int, hi: int) -> List[Any]:
        if not isinstance(v, list):
            self.fail(path, "must be an array")
        if not (lo <= len(v) <= hi):
            self.fail(path, "must have %d...%d entries, has %d" % (lo, hi, len(v)))
        return v


def parse_agent_message(text: str) -> Dict[str, Any]:
    """Validates a text message from the agent (docs/protocol.md §3) and returns it as a dict.

    Raises ProtocolError: E_PROTOCOL_JSON, E_PROTOCOL_OP, E_PROTOCOL_VERSION or E_PROTOCOL_FIELD, with the
    request id when one was readable.
    """
    try:
        o = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        excerpt = text[:60] + ("\u2026" if len(text) > 60 else "")
        raise ProtocolError("E_PROTOCOL_JSON", "text message is not valid JSON (%s): %s" % (e, json.dumps(excerpt)))
    if not isinstance(o, dict):
        raise ProtocolError("E_PROTOCOL_FIELD", "text message must be a JSON object")
    req_id = _peek_id(o)
    op = o.get("op")
    if not isinstance(op, str):
        raise ProtocolError("E_PROTOCOL_FIELD", 'text message has no "op" string', req_id)
    c = _Check(op if req_id is None else "%s (id %d)" % (op, req_id), req_id)
    if op == "welcome":
        if o.get("protocol") != PROTOCOL_VERSION:
            raise ProtocolError("E_PROTOCOL_VERSION", "welcome: protocol %r is not %s" % (o.get("protocol"), PROTOCOL_VERSION))
        msg: Dict[str, Any] = {"op": op}
        if o.get("encoding") is not None:
            msg["encoding"] = c.one_of(o["encoding"], "encoding", IMAGE_ENCODINGS)
        if o.get("maxPayload") is not None:
            msg["maxPayload"] = c.int_(o["maxPayload"], "maxPayload", LIMITS["min_agent_max_payload"], 2**32)
        return msg
    if op == "reset":
        msg = {"op": op, "id": c.int_(o.get("id"), "id", 0, LIMITS["max_request_id"])}
        if o.get("seed") is not None:
            msg["seed"] = c.int_(o["seed"], "seed", 0, LIMITS["max_seed"])
        if o.get("task") is not None:
            msg["task"] = c.one_of(o["task"], "task", TASK_NAMES)
        if o.get("episode") is not None:
            msg["episode"] = c.string(o["episode"], "episode")
        return msg
    if op == "step":
        rid = c.int_(o.get("id"), "id", 0, LIMITS["max_request_id"])
        a = c.obj(o.get("action"), "action")
        action: Dict[str, Any] = {"name": c.string(a.get("name"), "action.name")}
        if a.get("amount") is not None:
            action["amount"] = c.finite(a["amount"], "action.amount")
        return {"op": op, "id": rid, "action": action}
    if op == "oracle":
        rid = c.int_(o.get("id"), "id", 0, LIMITS["max_request_id"])
        seqs = c.array(o.get("sequences"), "sequences", 1, LIMITS["max_oracle_sequences"])
        total = 0
        sequences = []
        for i, s in enumerate(seqs):
            seq = c.array(s, "sequences[%d]" % i, 1, LIMITS["max_oracle_sequence_length"])
            total += len(seq)
            sequences.append([c.string(a, "sequences[%d][%d]" % (i, j)) for j, a in enumerate(seq)])
        if total > LIMITS["max_oracle_frames"]:
            c.fail("sequences", "must hold at most %d actions in all, holds %d" % (LIMITS["max_oracle_frames"], total))
        msg = {"op": op, "id": rid, "sequences": sequences}
        if o.get("category") is not None:
            msg["category"] = c.string(o["category"], "category")
        return msg
    if op == "close":
        return {"op": op}
    if op == "error":
        return {"op": op, "id": req_id, "code": str(o.get("code")), "message": str(o.get("message"))}
    if op in ("hello", "observation"):
        raise ProtocolError("E_PROTOCOL_OP", 'op "%s" is sent by the simulator, not the agent' % op, req_id)
    raise ProtocolError("E_PROTOCOL_OP", "unknown op %s" % json.dumps(op[:64]), req_id)


# ----------------------------------------------------------------------------------------------------------
# Tokens


def token_matches(expected: str, given: Optional[str]) -> bool:
    """Constant-time comparison of SHA-256 digests (the lengths never leak)."""
    a = hashlib.sha256(expected.encode("utf-8")).digest()
    b = hashlib.sha256((given or "").encode("utf-8")).digest()
    return hmac.compare_digest(a, b) and given is not None


def bearer_token(authorization: Optional[str]) -> Optional[str]:
    """The token of an `Authorization: Bearer <token>` header value."""
    if not authorization:
        return None
    parts = authorization.strip().split(None, 1)
    if len(parts) == 2 and parts[0].lower() == "bearer":
        return parts[1].strip()
    return None


def request_authorization(ws: Any) -> Optional[str]:
    """The Authorization header of the upgrade request, for websockets 10.x (legacy) and >= 14 (new API)."""
    headers = getattr(ws, "request_headers", None)  # legacy implementation
    if headers is None:
        request = getattr(ws, "request", None)  # new implementation
        headers = getattr(request, "headers", None)
    if headers is None:
        return None
    return headers.get("Authorization")


# ----------------------------------------------------------------------------------------------------------
# A session over one WebSocket


@dataclass
class SessionOptions:
    #: Required token (direction a: checked in the Authorization header before hello).
    token: Optional[str] = None
    #: Token to put in hello (direction b: the simulator dialed an agent that requires one).
    hello_token: Optional[str] = None
    encodings: Optional[List[str]] = None
    jpeg_quality: int = 90
    png_level: int = 6
    handshake_timeout_s: float = LIMITS["handshake_timeout_s"]
    oracle: bool = False
    log: Callable[[str], None] = lambda _m: None


def _closed_errors() -> Tuple[type, ...]:
    try:
        from websockets.exceptions import ConnectionClosed  # type: ignore

        return (ConnectionClosed,)
    except ImportError:  # pragma: no cover
        return (ConnectionError,)


class Session:
    """One v4s.sim.v1 session: sends hello, waits for welcome, answers requests in arrival order."""

    def __init__(self, ws: Any, backend: Backend, options: SessionOptions):
        self.ws = ws
        self.backend = backend
        self.opts = options
        caps = dict(backend.capabilities())
        offered = options.encodings or default_encodings()
        for e in offered:
            if e not in IMAGE_ENCODINGS or (e == "jpeg" and not has_jpeg()):
                raise ProtocolError("E_CONFIG", "encoding %r cannot be offered (jpeg needs Pillow)" % (e,))
        caps["encodings"] = list(offered)
        caps["ops"] = ["oracle"] if options.oracle and backend.supports_oracle() else []
        self.capabilities = caps
        self.encoding = offered[0]
        self.max_payload = LIMITS["agent_max_payload"]
        self.episode_open = False

    async def _send_error(self, code: str, message: str, req_id: Optional[int] = None) -> None:
        await self.ws.send(error_message(code, message, req_id))

    async def _refuse(self, code: str, message: str, close_code: int) -> None:
        self.opts.log("refused: %s: %s" % (code, message))
        try:
            await self._send_error(code, message)
            await self.ws.close(code=close_code, reason=("%s: %s" % (code, message))[:120])
        except _closed_errors():
            pass

    async def run(self) -> None:
        """Serves the connection until it closes. Never raises for anything the peer does."""
        try:
            if not await authorize(self.ws, self.opts.token):
                return
            await self.ws.send(hello_message(self.capabilities, self.opts.hello_token))
            if not await self._handshake():
                return
            async for raw in self.ws:
                if not await self._on_message(raw):
                    return
        except _closed_errors():
            pass
        finally:
            try:
                self.backend.end_session()
            except Exception as e:  # noqa: BLE001 - a failing backend must not take the server down
                self.opts.log("end_session failed: %r" % (e,))

    async def _handshake(self) -> bool:
        try:
            raw = await asyncio.wait_for(self.ws.recv(), timeout=self.opts.handshake_timeout_s)
        except asyncio.TimeoutError:
            await self._refuse("E_TIMEOUT", "no welcome within %g s after hello" % self.opts.handshake_timeout_s, CLOSE_POLICY_VIOLATION)
            return False
        if isinstance(raw, (bytes, bytearray, memoryview)):
            await self._refuse("E_PROTOCOL_BINARY", "expected welcome (a text message), got a binary message", CLOSE_PROTOCOL_ERROR)
            return False
        try:
            msg = parse_agent_message(raw)
        except ProtocolError as e:
            await self._refuse(e.code, "expected welcome: %s" % e.message, CLOSE_PROTOCOL_ERROR)
            return False
        if msg["op"] == "error":
            self.opts.log("the agent refused the session: %s: %s" % (msg["code"], msg["message"]))
            await self.ws.close(code=CLOSE_NORMAL, reason="refused by the agent")
            return False
        if msg["op"] != "welcome":
            await self._refuse("E_PROTOCOL_OP", "expected welcome, got %s" % msg["op"], CLOSE_PROTOCOL_ERROR)
            return False
        if "encoding" in msg:
            if msg["encoding"] not in self.capabilities["encodings"]:
                await self._refuse(
                    "E_PROTOCOL_FIELD",
                    'welcome: encoding "%s" is not offered (offered: %s)' % (msg["encoding"], ", ".join(self.capabilities["encodings"])),
                    CLOSE_PROTOCOL_ERROR,
                )
                return False
            self.encoding = msg["encoding"]
        if "maxPayload" in msg:
            self.max_payload = msg["maxPayload"]
        self.opts.log("session open (encoding %s)" % self.encoding)
        return True

    async def _on_message(self, raw: Any) -> bool:
        """Handles one message after the handshake; False when the session is over."""
        if isinstance(raw, (bytes, bytearray, memoryview)):
            await self._send_error("E_PROTOCOL_BINARY", "the agent sent a %d-byte binary message; in %s agents send only text" % (len(raw), PROTOCOL_VERSION))
            return True
        try:
            msg = parse_agent_message(raw)
        except ProtocolError as e:
            await self._send_error(e.code, e.message, e.req_id)
            return True
        op = msg["op"]
        if op == "close":
            self.episode_open = False
            await self.ws.close(code=CLOSE_NORMAL, reason="agent closed the session")
            return False
        if op == "error":
            self.opts.log("agent reported %s: %s" % (msg["code"], msg["message"]))
            return True
        if op == "welcome":
            await self._send_error("E_PROTOCOL_OP", "welcome: the handshake is already complete")
            return True
        req_id = msg["id"]
        try:
            data = self._serve(msg)
            if len(data) > self.max_payload:
                raise ProtocolError("E_PROTOCOL_TOO_LARGE", "reply to id %d is %d bytes, over the agent's maxPayload %d" % (req_id, len(data), self.max_payload))
            await self.ws.send(data)
        except ProtocolError as e:
            await self._send_error(e.code, e.message, req_id)
        except _closed_errors():
            raise
        except Exception as e:  # noqa: BLE001 - the simulator failed: report it, keep serving
            self.opts.log("%s (id %d) failed: %r" % (op, req_id, e))
            await self._send_error("E_SIMULATOR", "%s (id %d) failed in the simulator: %s: %s" % (op, req_id, type(e).__name__, e), req_id)
        return True

    def _check_action(self, name: str, where: str) -> None:
        actions = self.capabilities["actions"]
        if name not in actions:
            raise ProtocolError("E_UNKNOWN_ACTION", '%s: unknown action "%s" (actions: %s)' % (where, name[:64], ", ".join(actions)))

    def _serve(self, msg: Dict[str, Any]) -> bytes:
        op, req_id = msg["op"], msg["id"]
        where = "%s (id %d)" % (op, req_id)
        enc = dict(encoding=self.encoding, jpeg_quality=self.opts.jpeg_quality, png_level=self.opts.png_level)
        if op == "reset":
            tasks = self.capabilities.get("tasks", list(TASK_NAMES))
            if "task" in msg and msg["task"] not in tasks:
                raise ProtocolError("E_PROTOCOL_FIELD", '%s: task "%s" is not served (tasks: %s)' % (where, msg["task"], ", ".join(tasks)))
            obs, goal = self.backend.reset(msg.get("seed"), msg.get("task"), msg.get("episode"))
            self.episode_open = True
            return observation_message(req_id, StepResult(obs), goal=goal, **enc)
        if op == "step":
            self._check_action(msg["action"]["name"], where)
            if not self.episode_open:
                raise ProtocolError("E_NO_EPISODE", "%s: no episode is running; send reset first" % where)
            result = self.backend.step(msg["action"]["name"], msg["action"].get("amount"))
            if result.terminated or result.truncated:
                self.episode_open = False
            return observation_message(req_id, result, **enc)
        # oracle
        if "oracle" not in self.capabilities["ops"]:
            raise ProtocolError("E_ORACLE_DISABLED", "%s: this bridge was not started with the oracle enabled (--oracle)" % where)
        for seq in msg["sequences"]:
            for a in seq:
                self._check_action(a, where)
        if not self.episode_open:
            raise ProtocolError("E_NO_EPISODE", "%s: no episode is running; send reset first" % where)
        rollouts = self.backend.oracle(msg["sequences"], msg.get("category"))
        if len(rollouts) != len(msg["sequences"]):
            raise ProtocolError("E_SIMULATOR", "%s: %d rollouts for %d sequences" % (where, len(rollouts), len(msg["sequences"])))
        return oracle_message(req_id, rollouts, **enc)


async def serve_session(ws: Any, backend: Backend, options: Optional[SessionOptions] = None) -> None:
    """Runs one session on an accepted (or dialed) WebSocket until it closes."""
    opts = options or SessionOptions()
    try:
        session = Session(ws, backend, opts)
    except ProtocolError as e:
        try:
            await ws.send(error_message(e.code, e.message))
            await ws.close(code=CLOSE_INTERNAL_ERROR, reason=e.code)
        except _closed_errors():
            pass
        return
    await session.run()


async def authorize(ws: Any, token: Optional[str]) -> bool:
    """Direction (a): checks `Authorization: Bearer <token>` of the upgrade request (constant time). On a
    missing or wrong token it sends `error` E_AUTH and closes with 1008, before any hello, and returns False."""
    if token is None:
        return True
    given = bearer_token(request_authorization(ws))
    if token_matches(token, given):
        return True
    reason = "a token is required: send the header Authorization: Bearer <token>" if given is None else "wrong token"
    await refuse_connection(ws, "E_AUTH", reason, CLOSE_POLICY_VIOLATION)
    return False


async def refuse_connection(ws: Any, code: str, message: str, close_code: int) -> None:
    """Sends `error` then closes; for connections refused before any session (too many connections)."""
    try:
        await ws.send(error_message(code, message))
        await ws.close(code=close_code, reason=("%s: %s" % (code, message))[:120])
    except _closed_errors():
        pass


__all__ = [
    "PROTOCOL_VERSION",
    "LIMITS",
    "ProtocolError",
    "Frame",
    "Pose",
    "Observation",
    "Goal",
    "StepResult",
    "Rollout",
    "Backend",
    "SessionOptions",
    "Session",
    "serve_session",
    "refuse_connection",
    "authorize",
    "parse_agent_message",
    "observation_message",
    "oracle_message",
    "hello_message",
    "error_message",
    "binary_message",
    "encode_png",
    "encode_png_zlib",
    "encode_jpeg",
    "encode_image",
    "default_encodings",
    "has_jpeg",
    "token_matches",
    "bearer_token",
    "request_authorization",
]
