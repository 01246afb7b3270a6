"""The BJJCZ LMC wire format, pure: opcodes, 12-byte entries, 8-byte replies, list packets,
millimetres ↔ galvo units, Job → list entries and list entries → what they would burn.

No I/O here. Facts (opcode values, word meanings, units) come from
``shared/reference/lmc_protocol.md``; where that sheet marks a unit as unverified the choice made
here is named at the function that makes it.

Words are unsigned 16-bit little-endian. A list entry or a single command is six words
``(op, w1, w2, w3, w4, w5)``; a reply is four words ``(r0, r1, r2, status)``.
"""

from __future__ import annotations

import math
import struct
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from markstation.devices.lmc.timing import (
    CLOCK_SETTINGS,
    ListClock,
    held_before,
    list_seconds,
    list_seconds_array,
    settings_at,
)
from markstation.errors import DeviceProtocolError, JobError, SafetyLimitError
from markstation.i18n import _
from markstation.job.ir import Dot, Job, Layer, MarkParams
from markstation.profiles import MachineProfile


class ListOp(IntEnum):
    """Buffered list opcodes (≥ 0x8000), executed in order after ExecuteList."""

    JUMP_TO = 0x8001
    END_OF_LIST = 0x8002
    LASER_ON_POINT = 0x8003
    DELAY_TIME = 0x8004
    MARK_TO = 0x8005
    JUMP_SPEED = 0x8006
    LASER_ON_DELAY = 0x8007
    LASER_OFF_DELAY = 0x8008
    MARK_FREQ = 0x800A
    MARK_POWER_RATIO = 0x800B
    MARK_SPEED = 0x800C
    JUMP_DELAY = 0x800D
    POLYGON_DELAY = 0x800F
    WRITE_PORT = 0x8011
    MARK_CURRENT = 0x8012
    MARK_FREQ_2 = 0x8013
    FLY_ENABLE = 0x801A
    Q_SWITCH_PERIOD = 0x801B
    DIRECT_LASER_SWITCH = 0x801C
    FLY_DELAY = 0x801D
    SET_CO2_FPK = 0x801E
    FLY_WAIT_INPUT = 0x801F
    FIBER_OPEN_MO = 0x8021
    WAIT_FOR_INPUT = 0x8022
    CHANGE_MARK_COUNT = 0x8023
    SET_WELD_POWER_WAVE = 0x8024
    ENABLE_WELD_POWER_WAVE = 0x8025
    FIBER_YLPM_PULSE_WIDTH = 0x8026
    FLY_ENCODER_COUNT = 0x8028
    SET_DA_Z_WORD = 0x8029
    JPT_SET_PARAM = 0x8050
    READY_MARK = 0x8051


class Cmd(IntEnum):
    """Single ("immediate") command opcodes (< 0x8000); each is answered by a Reply except
    WRITE_COR_LINE."""

    DISABLE_LASER = 0x0002
    RESET = 0x0003
    ENABLE_LASER = 0x0004
    EXECUTE_LIST = 0x0005
    SET_PWM_PULSE_WIDTH = 0x0006
    GET_VERSION = 0x0007
    GET_SERIAL_NO = 0x0009
    GET_LIST_STATUS = 0x000A
    GET_POSITION_XY = 0x000C
    GOTO_XY = 0x000D
    LASER_SIGNAL_OFF = 0x000E
    LASER_SIGNAL_ON = 0x000F
    WRITE_COR_LINE = 0x0010
    RESET_LIST = 0x0012
    RESTART_LIST = 0x0013
    WRITE_COR_TABLE = 0x0015
    SET_CONTROL_MODE = 0x0016
    SET_DELAY_MODE = 0x0017
    SET_MAX_POLY_DELAY = 0x0018
    SET_END_OF_LIST = 0x0019
    SET_FIRST_PULSE_KILLER = 0x001A
    SET_LASER_MODE = 0x001B
    SET_TIMING = 0x001C
    SET_STANDBY = 0x001D
    SET_PWM_HALF_PERIOD = 0x001E
    STOP_EXECUTE = 0x001F
    STOP_LIST = 0x0020
    WRITE_PORT = 0x0021
    WRITE_ANALOG_PORT_1 = 0x0022
    WRITE_ANALOG_PORT_2 = 0x0023
    WRITE_ANALOG_PORT_X = 0x0024
    READ_PORT = 0x0025
    SET_AXIS_MOTION_PARAM = 0x0026
    SET_AXIS_ORIGIN_PARAM = 0x0027
    AXIS_GO_ORIGIN = 0x0028
    MOVE_AXIS_TO = 0x0029
    GET_AXIS_POS = 0x002A
    GET_FLY_WAIT_COUNT = 0x002B
    GET_MARK_COUNT = 0x002D
    SET_FPK_PARAM_2 = 0x002E
    FIBER_CONFIG_1 = 0x002F  # galvoplotter: FiberPulseWidth
    FIBER_GET_CONFIG_EXTEND = 0x0030
    INPUT_PORT = 0x0031  # latch: w1 4 clear, 2 enable, 1 read
    SET_FLY_RES = 0x0032
    FIBER_SET_MO = 0x0033
    FIBER_GET_ST_MO_AP = 0x0034
    GET_USER_DATA = 0x0036
    GET_FLY_PULSE_COUNT = 0x0037
    GET_FLY_SPEED = 0x0038
    DISABLE_Z = 0x0039
    ENABLE_Z = 0x003A
    SET_Z_DATA = 0x003B
    SET_SPI_SIMMER_CURRENT = 0x003C
    IS_LITE_VERSION = 0x0040  # galvoplotter / MeerK40t send it as their "reset"
    GET_MARK_TIME = 0x0041
    SET_FPK_PARAM = 0x0062


#: status word (reply r3) bits
STATUS_READY = 0x20
STATUS_BUSY = 0x04
STATUS_AXIS = 0x40

PACKET_ENTRIES = 256
ENTRY_BYTES = 12
REPLY_BYTES = 8
PACKET_BYTES = PACKET_ENTRIES * ENTRY_BYTES

GALVO_CENTRE = 0x8000
GALVO_MAX = 0xFFFF
#: sign word of the delay entries: set for a negative delay
SIGN_NEGATIVE = 0x8000
#: one LaserOnPoint entry fires at most this many 10 µs ticks (MeerK40t's split)
MAX_DWELL_TICKS = 60000
#: DelayTime after each marked path so the last segment is fully burned (EzCad: 0x001E)
END_DELAY_S = 300e-6

_ENTRY = struct.Struct("<6H")
_REPLY = struct.Struct("<4H")

#: a (N, 6) array of list entries, one row ``(op, w1, w2, w3, w4, w5)`` of 16-bit words
Words = npt.NDArray[np.uint16]


def op_name(op: int) -> str:
    """The opcode's enum name in CamelCase, or ``op_XXXX`` when unknown."""
    try:
        member: IntEnum = ListOp(op) if op >= 0x8000 else Cmd(op)
    except ValueError:
        return f"op_{op:04x}"
    return "".join(part.capitalize() for part in member.name.split("_"))


@dataclass(frozen=True, slots=True)
class Entry:
    """One 12-byte entry: a list entry (op ≥ 0x8000) or a single command (op < 0x8000)."""

    op: int
    w1: int = 0
    w2: int = 0
    w3: int = 0
    w4: int = 0
    w5: int = 0

    def encode(self) -> bytes:
        try:
            return _ENTRY.pack(self.op, self.w1, self.w2, self.w3, self.w4, self.w5)
        except struct.error as exc:
            raise ValueError(f"{self!r}: every word must be 0..0xFFFF ({exc})") from None

    @staticmethod
    def decode(b: bytes) -> Entry:
        if len(b) != ENTRY_BYTES:
            raise DeviceProtocolError(f"an LMC entry is {ENTRY_BYTES} bytes, got {len(b)}")
        return Entry(*_ENTRY.unpack(b))

    @property
    def words(self) -> tuple[int, int, int, int, int]:
        return (self.w1, self.w2, self.w3, self.w4, self.w5)

    def describe(self) -> str:
        """``8001 JumpTo            8000 8000 0000 0000 0000`` — opcode, name, the five words."""
        words = " ".join(f"{w:04x}" for w in self.words)
        return f"{self.op:04x} {op_name(self.op):<20} {words}"


def command(op: int, w1: int = 0, w2: int = 0, w3: int = 0, w4: int = 0, w5: int = 0) -> bytes:
    """The 12 bytes of a single command."""
    return Entry(op, w1, w2, w3, w4, w5).encode()


@dataclass(frozen=True, slots=True)
class Reply:
    """The 8-byte answer to a single command; ``status`` is the r3 word."""

    r0: int = 0
    r1: int = 0
    r2: int = 0
    status: int = 0

    @property
    def ready(self) -> bool:
        return bool(self.status & STATUS_READY)

    @property
    def busy(self) -> bool:
        return bool(self.status & STATUS_BUSY)

    @property
    def axis_moving(self) -> bool:
        return bool(self.status & STATUS_AXIS)

    @property
    def value32(self) -> int:
        """r1 low, r2 high: how GetMarkTime (and 32-bit queries) answer."""
        return self.r1 | (self.r2 << 16)

    def encode(self) -> bytes:
        try:
            return _REPLY.pack(self.r0, self.r1, self.r2, self.status)
        except struct.error as exc:
            raise ValueError(f"{self!r}: every word must be 0..0xFFFF ({exc})") from None

    @staticmethod
    def decode(b: bytes) -> Reply:
        if len(b) != REPLY_BYTES:
            raise DeviceProtocolError(f"an LMC reply is {REPLY_BYTES} bytes, got {len(b)}")
        return Reply(*_REPLY.unpack(b))


_FILL = Entry(ListOp.END_OF_LIST).encode()


def pack_list(entries: Sequence[Entry]) -> list[bytes]:
    """Cut a list into 3072-byte packets; the last one is tail-filled with EndOfList (0x8002).

    The list always ends with at least one EndOfList: a list that fills its last packet exactly
    gets one more packet of fill, so the board never waits for a tail that is not coming.
    """
    packets: list[bytes] = []
    pack_into = _ENTRY.pack_into
    n = len(entries)
    for start in range(0, n + 1, PACKET_ENTRIES):
        chunk = entries[start : start + PACKET_ENTRIES]
        buf = bytearray(_FILL * PACKET_ENTRIES)
        try:
            for i, e in enumerate(chunk):
                pack_into(buf, i * ENTRY_BYTES, e.op, e.w1, e.w2, e.w3, e.w4, e.w5)
        except struct.error as exc:
            raise ValueError(
                f"list entry {start + i}: every word must be 0..0xFFFF ({exc})"
            ) from None
        packets.append(bytes(buf))
    return packets


def packet_words(data: bytes) -> Words:
    """The 256 entries of one list packet (filler included) as a read-only words array (one row
    an entry, :data:`Words`); refuses any other length, as :func:`unpack_packet` does."""
    if len(data) != PACKET_BYTES:
        raise DeviceProtocolError(f"an LMC list packet is {PACKET_BYTES} bytes, got {len(data)}")
    return np.frombuffer(data, dtype="<u2").reshape(PACKET_ENTRIES, 6)


def unpack_packet(data: bytes) -> list[Entry]:
    """The 256 entries of one list packet (filler included); refuses any other length."""
    if len(data) != PACKET_BYTES:
        raise DeviceProtocolError(f"an LMC list packet is {PACKET_BYTES} bytes, got {len(data)}")
    return [Entry(*words) for words in _ENTRY.iter_unpack(data)]


# --- units --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Geometry:
    """Field millimetres (+x right, +y up, centre origin) ↔ galvo words (w1, w2).

    The field point is first mirrored (``flip_x``: x → −x, ``flip_y``: y → −y), then, with
    ``swap_xy``, its y goes to w1 and its x to w2; galvo = 0x8000 + mm × units_per_mm.
    """

    units_per_mm: float
    swap_xy: bool = False
    flip_x: bool = False
    flip_y: bool = False

    @staticmethod
    def from_machine(m: MachineProfile) -> Geometry:
        # one scale for both axes: the larger field side spans the full 16-bit range
        field_mm = max(m.field_width_mm, m.field_height_mm)
        return Geometry(GALVO_MAX / field_mm, m.swap_xy, m.flip_x, m.flip_y)

    def to_galvo(self, x_mm: float, y_mm: float) -> tuple[int, int]:
        """Galvo words for a field point; SafetyLimitError when it falls outside 0..0xFFFF."""
        u = -x_mm if self.flip_x else x_mm
        v = -y_mm if self.flip_y else y_mm
        if self.swap_xy:
            u, v = v, u
        return (self._word(u, x_mm, y_mm), self._word(v, x_mm, y_mm))

    def _word(self, mm: float, x_mm: float, y_mm: float) -> int:
        exact = GALVO_CENTRE + mm * self.units_per_mm
        if not math.isfinite(exact) or not (-0.5 <= exact <= GALVO_MAX + 0.5):
            raise SafetyLimitError(
                _("point ({x_mm:.3f}, {y_mm:.3f}) mm is outside the galvo range 0..0xFFFF").format(
                    x_mm=x_mm, y_mm=y_mm
                )
            )
        # the field edge itself rounds half a unit past the range: that is quantisation, not clipping
        return min(GALVO_MAX, max(0, math.floor(exact + 0.5)))

    def to_mm(self, gx: int, gy: int) -> tuple[float, float]:
        u = (gx - GALVO_CENTRE) / self.units_per_mm
        v = (gy - GALVO_CENTRE) / self.units_per_mm
        if self.swap_xy:
            u, v = v, u
        x = -u if self.flip_x else u
        y = -v if self.flip_y else v
        return (x + 0.0, y + 0.0)


def _round(value: float) -> int:
    return math.floor(value + 0.5)


def speed_word(mm_s: float, g: Geometry) -> int:
    """JumpSpeed / MarkSpeed word: galvo units per millisecond (truncated, 1..0xFFFF)."""
    if not (math.isfinite(mm_s) and mm_s > 0):
        raise SafetyLimitError(f"speed {mm_s} mm/s cannot be encoded (must be > 0)")
    return max(1, min(GALVO_MAX, int(mm_s * g.units_per_mm / 1000.0)))


def speed_mm_s(word: int, g: Geometry) -> float:
    return word * 1000.0 / g.units_per_mm


def power_word(pct: float) -> int:
    """MarkCurrent word: 0x0FFF = 100 % of the fiber source."""
    if not (math.isfinite(pct) and 0.0 <= pct <= 100.0):
        raise SafetyLimitError(f"power {pct} % cannot be encoded (0..100 %)")
    return _round(pct * 0x0FFF / 100.0)


def power_pct(word: int) -> float:
    return word * 100.0 / 0x0FFF


def qswitch_word(khz: float) -> int:
    """QSwitchPeriod word: the pulse period in 50 ns ticks (20 kHz → 0x03E8)."""
    if not (math.isfinite(khz) and khz > 0):
        raise SafetyLimitError(f"frequency {khz} kHz cannot be encoded (must be > 0)")
    word = _round(20000.0 / khz)
    if not 1 <= word <= GALVO_MAX:
        raise SafetyLimitError(
            f"frequency {khz} kHz is outside what the Q-switch period word holds"
        )
    return word


def frequency_khz(word: int) -> float:
    return 20000.0 / word if word else 0.0


def delay_words(seconds: float) -> tuple[int, int]:
    """(|µs|, sign) for LaserOnDelay / LaserOffDelay: sign 0x8000 when negative, 0 otherwise."""
    if not math.isfinite(seconds):
        raise SafetyLimitError(f"delay {seconds} s cannot be encoded")
    us = _round(abs(seconds) * 1e6)
    if us > GALVO_MAX:
        raise SafetyLimitError(
            f"delay {seconds * 1e6:g} µs is longer than the 65535 µs a word holds"
        )
    return (us, SIGN_NEGATIVE if seconds < 0 and us else 0)


def delay_seconds(w1: int, sign: int) -> float:
    return (-w1 if sign & SIGN_NEGATIVE else w1) * 1e-6


def ticks_10us(seconds: float) -> int:
    """A duration in the 10 µs ticks of DelayTime, LaserOnPoint, PolygonDelay and JumpDelay."""
    if not (math.isfinite(seconds) and seconds >= 0):
        raise SafetyLimitError(f"duration {seconds} s cannot be encoded (must be ≥ 0)")
    return _round(seconds * 1e5)


def distance_word(a: tuple[int, int], b: tuple[int, int]) -> int:
    """Straight-line galvo distance for w4 of JumpTo / MarkTo, capped at 0xFFFF."""
    return min(GALVO_MAX, _round(math.hypot(b[0] - a[0], b[1] - a[1])))


# --- Job → entries ------------------------------------------------------------------------------


def layer_settings(params: MarkParams, machine: MachineProfile, g: Geometry) -> list[Entry]:
    """The settings entries of one layer, in EzCad's order; all precede the layer's first MarkTo.

    PolygonDelay and JumpDelay go out in 10 µs ticks (MeerK40t's current reading of 0x800F; the
    unit of 0x800D is unverified, the same tick is assumed).
    """
    out = [
        Entry(ListOp.JUMP_SPEED, speed_word(params.jump_speed_mm_s, g)),
        Entry(ListOp.Q_SWITCH_PERIOD, qswitch_word(params.frequency_khz)),
        Entry(ListOp.MARK_CURRENT, power_word(params.power_pct)),
    ]
    if params.pulse_width_ns is not None:
        if not machine.pulse_width_ns:
            raise SafetyLimitError(
                _(
                    "pulse width {pulse_width_ns:g} ns asked, but machine '{name}' is not a MOPA source"
                ).format(pulse_width_ns=params.pulse_width_ns, name=machine.name)
            )
        ns = _round(params.pulse_width_ns)
        if not 1 <= ns <= GALVO_MAX:
            raise SafetyLimitError(f"pulse width {params.pulse_width_ns:g} ns cannot be encoded")
        out.append(Entry(ListOp.FIBER_YLPM_PULSE_WIDTH, ns))
    on = delay_words(params.laser_on_delay_s)
    off = delay_words(params.laser_off_delay_s)
    out += [
        Entry(ListOp.MARK_SPEED, speed_word(params.speed_mm_s, g)),
        Entry(ListOp.LASER_ON_DELAY, *on),
        Entry(ListOp.LASER_OFF_DELAY, *off),
        Entry(ListOp.POLYGON_DELAY, _word16(ticks_10us(params.polygon_delay_s), "polygon delay")),
        Entry(ListOp.JUMP_DELAY, _word16(ticks_10us(params.jump_delay_s), "jump delay")),
    ]
    return out


def _word16(value: int, what: str) -> int:
    if not 0 <= value <= GALVO_MAX:
        raise SafetyLimitError(f"{what} of {value} ticks does not fit a 16-bit word")
    return value


class _Emitter:
    """Appends JumpTo entries, tracking the galvo position for the distance words (framing)."""

    def __init__(self, g: Geometry) -> None:
        self.g = g
        self.pos = (GALVO_CENTRE, GALVO_CENTRE)
        self.out: list[Entry] = []

    def jump(self, p: tuple[int, int]) -> None:
        self.out.append(Entry(ListOp.JUMP_TO, p[0], p[1], 0, distance_word(self.pos, p)))
        self.pos = p


def job_to_entries(job: Job, machine: MachineProfile) -> list[Entry]:
    """The list for ``job``, as :class:`Entry` objects: :func:`job_to_words`, one entry a row."""
    return entries_from_words(job_to_words(job, machine))


_WORDS_CACHE: dict[int, tuple[weakref.ref[Job], str, Words]] = {}
_WORDS_CACHE_SIZE = 8


def job_to_words(job: Job, machine: MachineProfile) -> Words:
    """The list for ``job``: ReadyMark, per layer its settings then every pass of its primitives,
    and a final jump back to the field centre. No EndOfList: :func:`pack_words` adds the fill.

    Per polyline: a JumpTo to its first point, a MarkTo to every later point that moves the galvo
    (a zero-distance MarkTo makes the board mark in pieces), a single MarkTo of distance 1 when
    none does (shorter than one galvo unit: still burnt), then a DelayTime of ``END_DELAY_S``. Per
    dot: a JumpTo and LaserOnPoint entries of at most ``MAX_DWELL_TICKS`` each. Distances (w4) are
    from the previous position, capped at 0xFFFF.

    Points outside the galvo range raise SafetyLimitError (never clipped); the machine's power,
    speed and field limits are the driver's to check before this is called.

    Vectorised with numpy; ``tests/_lmc_reference.py`` keeps the scalar encoder it replaced, and a
    property test checks that both write the same entries. The result is read-only and memoised
    for the last few jobs (a job is immutable): the estimate and the driver encode the same job.
    """
    key = id(job)
    hit = _WORDS_CACHE.get(key)
    ident = f"{machine.name}\0{machine.sha256}"
    if hit is not None and hit[0]() is job and hit[1] == ident:
        return hit[2]
    words = _encode_job(job, machine)
    words.flags.writeable = False
    if len(_WORDS_CACHE) >= _WORDS_CACHE_SIZE:
        _WORDS_CACHE.pop(next(iter(_WORDS_CACHE)))
    _WORDS_CACHE[key] = (weakref.ref(job), ident, words)
    return words


def entries_from_words(words: Words) -> list[Entry]:
    """:class:`Entry` objects for the rows of ``words``."""
    return [Entry(*row) for row in words.tolist()]


def _encode_job(job: Job, machine: MachineProfile) -> Words:
    g = Geometry.from_machine(machine)
    blocks: list[npt.NDArray[np.int64]] = [np.array([[ListOp.READY_MARK, 0, 0, 0, 0, 0]])]
    pos = (GALVO_CENTRE, GALVO_CENTRE)
    for layer in job.layers:
        if not layer.primitives:
            continue
        if layer.params.passes < 1:
            raise JobError(f"layer '{layer.name}': passes must be ≥ 1")
        settings = layer_settings(layer.params, machine, g)
        blocks.append(np.array([(e.op, *e.words) for e in settings], dtype=np.int64))
        one_pass, first, last = _pass_words(layer, g)
        passes = layer.params.passes
        body = np.tile(one_pass, (passes, 1))
        # the first JumpTo of each pass starts where the one before left the galvo
        starts = [pos] + [last] * (passes - 1)
        rows = np.arange(passes) * len(one_pass)
        body[rows, 4] = [distance_word(p, first) for p in starts]
        blocks.append(body)
        pos = last
    centre = (GALVO_CENTRE, GALVO_CENTRE)
    blocks.append(
        np.array([[ListOp.JUMP_TO, centre[0], centre[1], 0, distance_word(pos, centre), 0]])
    )
    return np.concatenate(blocks).astype(np.uint16)


def _pass_words(
    layer: Layer, g: Geometry
) -> tuple[npt.NDArray[np.int64], tuple[int, int], tuple[int, int]]:
    """One pass of ``layer``'s primitives as entry rows (the first JumpTo's distance left 0),
    its first and its last galvo point."""
    pts: list[tuple[float, float]] = []
    counts: list[int] = []
    dwells: list[float] = []
    is_dot: list[bool] = []
    for prim in layer.primitives:
        if isinstance(prim, Dot):
            pts.append((prim.x, prim.y))
            counts.append(1)
            dwells.append(prim.dwell_s)
            is_dot.append(True)
        else:
            pts.extend(prim.points)
            counts.append(len(prim.points))
            dwells.append(0.0)
            is_dot.append(False)
    xy = np.array(pts, dtype=np.float64).reshape(-1, 2)
    x, y = xy[:, 0], xy[:, 1]
    count = np.array(counts, dtype=np.int64)
    dot = np.array(is_dot, dtype=bool)
    dwell = np.array(dwells, dtype=np.float64)
    start = np.concatenate(([0], np.cumsum(count)[:-1]))
    last_index = start + count - 1

    gx, gy, bad_point = _galvo_words(x, y, g)
    # a dot's dwell is converted right after its point: the first failure in list order wins
    ticks_exact = dwell * 1e5
    bad_dwell = dot & ~(np.isfinite(dwell) & (dwell >= 0))
    if bad_point is not None or bad_dwell.any():
        dwell_at = int(start[np.argmax(bad_dwell)]) if bad_dwell.any() else None
        if bad_point is not None and (dwell_at is None or bad_point <= dwell_at):
            raise SafetyLimitError(
                _("point ({x:.3f}, {y:.3f}) mm is outside the galvo range 0..0xFFFF").format(
                    x=x[bad_point], y=y[bad_point]
                )
            )
        assert dwell_at is not None
        ticks_10us(float(dwell[np.argmax(bad_dwell)]))  # raises the scalar message
    n = len(x)
    first_of_prim = np.zeros(n, dtype=bool)
    first_of_prim[start] = True
    prev_x = np.empty(n, dtype=np.int64)
    prev_y = np.empty(n, dtype=np.int64)
    prev_x[1:], prev_y[1:] = gx[:-1], gy[:-1]
    prev_x[0], prev_y[0] = gx[0], gy[0]  # the pass's first JumpTo: its distance is set later
    dx, dy = gx - prev_x, gy - prev_y
    dist = np.minimum(GALVO_MAX, np.floor(np.sqrt(dx * dx + dy * dy) + 0.5)).astype(np.int64)
    moves = (dx != 0) | (dy != 0)
    mark = ~first_of_prim & moves
    keep = first_of_prim | mark

    point_rows = np.zeros((n, 6), dtype=np.int64)
    point_rows[:, 0] = np.where(first_of_prim, ListOp.JUMP_TO, ListOp.MARK_TO)
    point_rows[:, 1] = gx
    point_rows[:, 2] = gy
    point_rows[:, 4] = dist
    kept = np.flatnonzero(keep)
    parts = [point_rows[kept]]
    keys = [kept * 3]

    line = ~dot
    marked = np.add.reduceat(mark, start) > 0 if n else np.zeros(0, dtype=bool)
    unmarked = np.flatnonzero(line & ~marked)
    if len(unmarked):
        fill = np.zeros((len(unmarked), 6), dtype=np.int64)
        fill[:, 0] = ListOp.MARK_TO
        fill[:, 1] = gx[start[unmarked]]
        fill[:, 2] = gy[start[unmarked]]
        fill[:, 4] = 1
        parts.append(fill)
        keys.append(last_index[unmarked] * 3 + 1)
    lines = np.flatnonzero(line)
    delay = np.zeros((len(lines), 6), dtype=np.int64)
    delay[:, 0] = ListOp.DELAY_TIME
    delay[:, 1] = ticks_10us(END_DELAY_S)
    parts.append(delay)
    keys.append(last_index[lines] * 3 + 2)
    dots = np.flatnonzero(dot)
    if len(dots):
        ticks = np.maximum(1, np.floor(ticks_exact[dots] + 0.5)).astype(np.int64)
        chunks = (ticks + MAX_DWELL_TICKS - 1) // MAX_DWELL_TICKS
        owner = np.repeat(np.arange(len(dots)), chunks)
        nth = np.arange(len(owner)) - np.repeat(np.cumsum(chunks) - chunks, chunks)
        value = np.minimum(ticks[owner] - nth * MAX_DWELL_TICKS, MAX_DWELL_TICKS)
        on = np.zeros((len(owner), 6), dtype=np.int64)
        on[:, 0] = ListOp.LASER_ON_POINT
        on[:, 1] = value
        parts.append(on)
        keys.append(start[dots][owner] * 3 + 1)
    rows = np.concatenate(parts)
    order = np.argsort(np.concatenate(keys), kind="stable")
    first = (int(gx[0]), int(gy[0]))
    last = (int(gx[-1]), int(gy[-1]))
    return rows[order], first, last


def _galvo_words(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], g: Geometry
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], int | None]:
    """:meth:`Geometry.to_galvo` over arrays: the words, and the index of the first point outside
    the galvo range (or None)."""
    u = -x if g.flip_x else x
    v = -y if g.flip_y else y
    if g.swap_xy:
        u, v = v, u
    eu = GALVO_CENTRE + u * g.units_per_mm
    ev = GALVO_CENTRE + v * g.units_per_mm
    with np.errstate(invalid="ignore"):
        ok = (
            np.isfinite(eu)
            & np.isfinite(ev)
            & (eu >= -0.5)
            & (eu <= GALVO_MAX + 0.5)
            & (ev >= -0.5)
            & (ev <= GALVO_MAX + 0.5)
        )
    bad = None if ok.all() else int(np.argmin(ok))
    eu = np.where(ok, eu, GALVO_CENTRE)
    ev = np.where(ok, ev, GALVO_CENTRE)
    wu = np.clip(np.floor(eu + 0.5), 0, GALVO_MAX).astype(np.int64)
    wv = np.clip(np.floor(ev + 0.5), 0, GALVO_MAX).astype(np.int64)
    return wu, wv, bad


def pack_words(words: Words) -> list[bytes]:
    """:func:`pack_list` for a words array: 3072-byte packets, the last one tail-filled with
    EndOfList, and one packet of fill more when the list fills its last packet exactly."""
    n = len(words)
    packets = n // PACKET_ENTRIES + 1
    buf = np.zeros((packets * PACKET_ENTRIES, 6), dtype="<u2")
    buf[:, 0] = ListOp.END_OF_LIST
    buf[:n] = words
    data = buf.tobytes()
    return [data[i : i + PACKET_BYTES] for i in range(0, len(data), PACKET_BYTES)]


def words_seconds(words: Words) -> float:
    """:func:`entries_seconds` for a words array (the same timing model, over arrays)."""
    return list_seconds_array(words[:, 0], words[:, 1], words[:, 2])


def frame_entries(job: Job, machine: MachineProfile, repeats: int) -> list[Entry]:
    """A red-pointer trace of the job's bounding box, ``repeats`` times round, ending at its first
    corner: ReadyMark, JumpSpeed (the machine's red-pointer speed), JumpDelay and JumpTo entries
    only — nothing that can fire the source. The driver sets the red-pointer output bit.
    """
    if repeats < 1:
        raise ValueError("repeats must be ≥ 1")
    box = job.bounds()
    if box is None:
        raise JobError(_("nothing to frame: the job has no marked points"))
    g = Geometry.from_machine(machine)
    x0, y0, x1, y1 = box
    corners = [g.to_galvo(x, y) for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))]
    red_speed = machine.lmc.red_pointer_speed_mm_s
    em = _Emitter(g)
    em.out += [
        Entry(ListOp.READY_MARK),
        Entry(ListOp.JUMP_SPEED, speed_word(red_speed, g)),
        Entry(ListOp.JUMP_DELAY, 1),
    ]
    for _pass in range(repeats):
        for p in corners:
            em.jump(p)
    em.jump(corners[0])
    return em.out


# --- entries → burn -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StrokeSettings:
    """What a stroke was burned with. ``power_pct`` None = no MarkCurrent seen (source default)."""

    power_pct: float | None
    speed_mm_s: float
    frequency_khz: float
    dwell_s: float = 0.0  # LaserOnPoint time, dots only


@dataclass
class DecodedBurn:
    """Strokes (mm, field frame) that fired, each with its settings; a dot is a one-point stroke."""

    strokes: list[list[tuple[float, float]]] = field(default_factory=list)
    settings: list[StrokeSettings] = field(default_factory=list)
    #: how long the list runs, from its speeds, delays and lengths
    duration_s: float = 0.0
    #: True when an EndOfList entry was reached
    ended: bool = False

    def burned_length_mm(self) -> float:
        return sum(math.dist(s[i], s[i + 1]) for s in self.strokes for i in range(len(s) - 1))


_MARK_TO = int(ListOp.MARK_TO)
_JUMP_TO = int(ListOp.JUMP_TO)


#: settings entries that end the stroke in progress (a stroke is drawn with one setting)
_BREAKS_STROKE = frozenset((ListOp.MARK_CURRENT, ListOp.Q_SWITCH_PERIOD, ListOp.FIBER_OPEN_MO))


class ListExecutor:
    """Steps through list entries as the board does: position, settings, MO state, elapsed time,
    and the strokes that fired. The simulated board feeds it one entry at a time against its
    clock (:meth:`step`, the reference) or, with no clock to keep, whole packets at once
    (:meth:`run_words`, the same result); with the whole list at once, :func:`decode_entries`
    does the same.

    Emission happens on MarkTo / LaserOnPoint when the laser is enabled, the master oscillator is
    open (single Fiber_SetMo or list FiberOpenMO) and the power is above zero — or was never set,
    since the source then fires at whatever current it holds.
    """

    def __init__(self, g: Geometry, *, mo_open: bool = True, laser_enabled: bool = True) -> None:
        self.g = g
        self.burn = DecodedBurn()
        self.mo_open = mo_open
        self.laser_enabled = laser_enabled
        self.pos = (GALVO_CENTRE, GALVO_CENTRE)
        self.power_word: int | None = None
        self.mark_speed = 0
        self.jump_speed = 0
        self.qswitch = 0
        self.jump_delay_ticks = 0
        self.polygon_delay_ticks = 0
        self.laser_on_delay_s = 0.0
        self.laser_off_delay_s = 0.0
        #: the board's timing model (:mod:`markstation.devices.lmc.timing`): every duration
        self.clock = ListClock()
        self.output_port: int | None = None  # last list WritePort
        self._open: list[tuple[float, float]] | None = None
        self._open_settings: StrokeSettings | None = None
        #: the settings of a stroke now (no dwell), for the (power, speed, frequency) words
        self._now: StrokeSettings | None = None
        self._now_key: tuple[int | None, int, int] | None = None

    def emitting_now(self) -> bool:
        return (
            self.laser_enabled and self.mo_open and (self.power_word is None or self.power_word > 0)
        )

    def new_burn(self) -> None:
        """Start a fresh burn record (a new ExecuteList); settings and position carry over."""
        self._close()
        self.burn = DecodedBurn()

    @property
    def stroke_open(self) -> bool:
        """True while a marked path is being drawn (the last entry fired and nothing broke it)."""
        return self._open is not None

    def _settings(self, dwell_s: float = 0.0) -> StrokeSettings:
        return self._settings_for(self._key(), dwell_s)

    def _key(self) -> tuple[int, int, int]:
        """(power word or -1 for None, mark speed, Q-switch): what a stroke's settings depend on."""
        pw = self.power_word
        return (-1 if pw is None else pw, self.mark_speed, self.qswitch)

    def _close(self) -> None:
        if self._open is not None and self._open_settings is not None:
            self.burn.strokes.append(self._open)
            self.burn.settings.append(self._open_settings)
        self._open = None
        self._open_settings = None

    def finish(self) -> DecodedBurn:
        """Close the stroke in progress and return the burn so far."""
        self._close()
        return self.burn

    def step(self, e: Entry) -> float:
        """Execute one entry; return its duration in seconds (from :class:`ListClock`, the one
        timing model). EndOfList sets ``burn.ended``."""
        op = e.op
        seconds = self.clock.step(op, e.w1, e.w2)
        if op == _MARK_TO:  # the most frequent entry first, the emission test inlined
            pw = self.power_word
            if self.laser_enabled and self.mo_open and (pw is None or pw > 0):
                settings = self._settings()
                opened = self._open_settings
                stroke = self._open
                if stroke is None or (opened is not settings and opened != settings):
                    self._close()
                    stroke = [self.g.to_mm(*self.pos)]
                    self._open, self._open_settings = stroke, settings
                stroke.append(self.g.to_mm(e.w1, e.w2))
            else:
                self._close()
            self.pos = (e.w1, e.w2)
        elif op == _JUMP_TO:
            self._close()
            self.pos = (e.w1, e.w2)
        elif op == ListOp.LASER_ON_POINT:
            self._close()
            if self.emitting_now():
                self._dot(self.pos[0], self.pos[1], self._key(), seconds)
        elif op == ListOp.END_OF_LIST:
            self._close()
            self.burn.ended = True
        else:
            if op in _BREAKS_STROKE:  # a new power, frequency or oscillator state ends a stroke
                self._close()
            self._set(op, e.w1, e.w2)
        self.burn.duration_s += seconds
        return seconds

    def run_words(self, words: Words) -> ExecutedWords:
        """:meth:`step` over the rows of ``words`` up to and with the first EndOfList (all of them
        without one), at once, with numpy: the same burn (strokes, their settings, dots, duration,
        ``ended``) and the same state after, bit for bit; the board executes whole packets with it
        when it has no clock to keep. ``tests/unit/test_lmc_vector_board.py`` checks it against
        :meth:`step` (the oracle) on random lists and real jobs."""
        ops = words[:, 0].astype(np.int64)
        ends = np.flatnonzero(ops == _END_OF_LIST)
        n = int(ends[0]) + 1 if len(ends) else len(ops)
        if n == 0:
            return ExecutedWords(0, np.zeros(0, dtype=np.float64), False)
        op = ops[:n]
        w1 = words[:n, 1].astype(np.int64)
        w2 = words[:n, 2].astype(np.int64)
        at = settings_at(op, _SETTINGS)
        seconds = self.clock.step_array(op, w1, w2, at)

        # the settings in force when each entry runs (power None as -1)
        power0 = -1 if self.power_word is None else self.power_word
        power = held_before(at[_MARK_CURRENT], w1, power0)
        speed = held_before(at[_MARK_SPEED], w1, self.mark_speed)
        qswitch = held_before(at[_Q_SWITCH_PERIOD], w1, self.qswitch)
        is_mark = op == _MARK_TO
        if not self.laser_enabled:
            emitting = np.zeros(n, dtype=bool)
        elif len(at[_MARK_CURRENT]) or len(at[_FIBER_OPEN_MO]):
            mo = held_before(at[_FIBER_OPEN_MO], w1 != 0, self.mo_open)
            emitting = mo & (power != 0)
        else:
            emitting = np.full(n, self.mo_open and power0 != 0)
        marks = is_mark & emitting
        dots = np.flatnonzero((op == _LASER_ON_POINT) & emitting)
        fired = bool(len(dots)) or bool(marks.any())
        # what ends a stroke in progress: every entry step closes on
        closer = (is_mark & ~emitting) | _CLOSES[op]
        relevant = np.flatnonzero(marks | closer)
        moves = np.flatnonzero(is_mark | (op == _JUMP_TO))

        def galvo_before(
            i: npt.NDArray[np.intp],
        ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
            """The galvo position when entries ``i`` run: the last move before each."""
            if not len(moves):
                return np.full(len(i), self.pos[0]), np.full(len(i), self.pos[1])
            k = np.searchsorted(moves, i) - 1
            j = moves[np.maximum(k, 0)]
            gx = np.where(k >= 0, w1[j], self.pos[0])
            gy = np.where(k >= 0, w2[j], self.pos[1])
            return gx, gy

        starts: list[int] = []
        strokes: list[list[tuple[float, float]]] = []
        keys: list[tuple[int, int, int]] = []
        open_at_end = self._open is not None
        if len(relevant):
            rel_mark = marks[relevant]
            mark_idx = relevant[rel_mark]
            # a mark opens a stroke unless the entry that last touched strokes was a mark with
            # the same (power, speed, frequency) words (the stroke in progress, at the start)
            follows = np.empty(len(relevant), dtype=bool)
            follows[1:] = rel_mark[:-1]
            if len(at[_MARK_SPEED]):  # the only setting that changes them without a close
                follows[1:] &= speed[relevant[1:]] == speed[relevant[:-1]]
            if rel_mark[0] and self._open is not None:
                i0 = int(relevant[0])
                key0 = (int(power[i0]), int(speed[i0]), int(qswitch[i0]))
                follows[0] = self._settings_for(key0) == self._open_settings
            else:
                follows[0] = False
            new = ~follows[rel_mark]
            open_at_end = bool(rel_mark[-1])
            if len(mark_idx):
                # flat points: each stroke's start (the galvo before its first mark), its marks
                shift = np.cumsum(new)
                at_mark = np.arange(len(mark_idx)) + shift
                flat = len(mark_idx) + int(shift[-1])
                gx = np.empty(flat, dtype=np.int64)
                gy = np.empty(flat, dtype=np.int64)
                gx[at_mark], gy[at_mark] = w1[mark_idx], w2[mark_idx]
                first = mark_idx[new]
                at_start = at_mark[new] - 1
                gx[at_start], gy[at_start] = galvo_before(first)
                xs, ys = _mm_arrays(gx, gy, self.g)
                points = list(zip(xs.tolist(), ys.tolist(), strict=True))
                bounds = [*at_start.tolist(), flat]
                if bounds[0]:  # the stroke in progress goes on
                    assert self._open is not None
                    self._open.extend(points[: bounds[0]])
                strokes = [points[bounds[k] : bounds[k + 1]] for k in range(len(bounds) - 1)]
                starts = first.tolist()
                keys = list(
                    zip(
                        power[first].tolist(),
                        speed[first].tolist(),
                        qswitch[first].tolist(),
                        strict=True,
                    )
                )
        if len(dots):
            # strokes and dots in list order: each closes the one before
            dot_x, dot_y = galvo_before(dots)
            events = sorted(
                [(i, k) for k, i in enumerate(starts)]
                + [(i, -1 - k) for k, i in enumerate(dots.tolist())]
            )
            for i, k in events:
                self._close()
                if k >= 0:
                    self._open = strokes[k]
                    self._open_settings = self._settings_for(keys[k])
                else:
                    d = -1 - k
                    key = (int(power[i]), int(speed[i]), int(qswitch[i]))
                    self._dot(int(dot_x[d]), int(dot_y[d]), key, float(seconds[i]))
        elif starts:
            # strokes only: each new one closes the one before, the last may stay open
            self._close()
            burn = self.burn
            made = {key: self._settings_for(key) for key in dict.fromkeys(keys)}
            burn.strokes.extend(strokes[:-1])
            burn.settings.extend(made[key] for key in keys[:-1])
            self._open, self._open_settings = strokes[-1], made[keys[-1]]
        if not open_at_end:
            self._close()

        # the state the last entries leave, set from their words as step sets it
        if len(moves):
            last = int(moves[-1])
            self.pos = (int(w1[last]), int(w2[last]))
        for code in _EXECUTOR_SETTINGS:
            where = at[code]
            if len(where):
                i = int(where[-1])
                self._set(code, int(w1[i]), int(w2[i]))
        burn = self.burn
        burn.duration_s = float(np.cumsum(np.concatenate(([burn.duration_s], seconds)))[-1])
        if op[-1] == _END_OF_LIST:
            burn.ended = True
        return ExecutedWords(n, seconds, fired)

    def _settings_for(self, key: tuple[int, int, int], dwell_s: float = 0.0) -> StrokeSettings:
        """What :meth:`_settings` gives with (power word or -1 for None, speed, Q-switch)."""
        pw, speed, qswitch = key
        if dwell_s == 0.0:
            now_key = (None if pw < 0 else pw, speed, qswitch)
            if self._now is None or now_key != self._now_key:
                self._now_key = now_key
                self._now = StrokeSettings(
                    power_pct=None if pw < 0 else power_pct(pw),
                    speed_mm_s=speed_mm_s(speed, self.g),
                    frequency_khz=frequency_khz(qswitch),
                )
            return self._now
        return StrokeSettings(
            power_pct=None if pw < 0 else power_pct(pw),
            speed_mm_s=speed_mm_s(speed, self.g),
            frequency_khz=frequency_khz(qswitch),
            dwell_s=dwell_s,
        )

    def _dot(self, gx: int, gy: int, key: tuple[int, int, int], seconds: float) -> None:
        """An emitting LaserOnPoint at (gx, gy), the stroke in progress already closed."""
        burn = self.burn
        here = self.g.to_mm(gx, gy)
        last = burn.strokes[-1] if burn.strokes else None
        if last is not None and len(last) == 1 and last[0] == here:
            prev = burn.settings[-1]  # one dot split over several entries
            burn.settings[-1] = StrokeSettings(
                prev.power_pct, prev.speed_mm_s, prev.frequency_khz, prev.dwell_s + seconds
            )
        else:
            burn.strokes.append([here])
            burn.settings.append(self._settings_for(key, seconds))

    def _set(self, op: int, w1: int, w2: int) -> None:
        """A setting entry's effect on the executor (its clock is set by the clock)."""
        if op == ListOp.JUMP_SPEED:
            self.jump_speed = w1
        elif op == ListOp.MARK_SPEED:
            self.mark_speed = w1
        elif op == ListOp.MARK_CURRENT:
            self.power_word = w1
        elif op == ListOp.Q_SWITCH_PERIOD:
            self.qswitch = w1
        elif op == ListOp.LASER_ON_DELAY:
            self.laser_on_delay_s = delay_seconds(w1, w2)
        elif op == ListOp.LASER_OFF_DELAY:
            self.laser_off_delay_s = delay_seconds(w1, w2)
        elif op == ListOp.POLYGON_DELAY:
            self.polygon_delay_ticks = w1
        elif op == ListOp.JUMP_DELAY:
            self.jump_delay_ticks = w1
        elif op == ListOp.FIBER_OPEN_MO:
            self.mo_open = bool(w1)
        elif op == ListOp.WRITE_PORT:
            self.output_port = w1


@dataclass(frozen=True, slots=True)
class ExecutedWords:
    """What :meth:`ListExecutor.run_words` executed: how many rows (EndOfList included), each
    one's seconds, and whether a MarkTo or LaserOnPoint ran while the source could fire."""

    count: int
    seconds: npt.NDArray[np.float64]
    fired: bool


_END_OF_LIST = int(ListOp.END_OF_LIST)
_LASER_ON_POINT = int(ListOp.LASER_ON_POINT)
_MARK_CURRENT = int(ListOp.MARK_CURRENT)
_MARK_SPEED = int(ListOp.MARK_SPEED)
_Q_SWITCH_PERIOD = int(ListOp.Q_SWITCH_PERIOD)
_FIBER_OPEN_MO = int(ListOp.FIBER_OPEN_MO)
#: the entries whose last value the executor keeps
_EXECUTOR_SETTINGS = tuple(
    int(op)
    for op in (
        ListOp.JUMP_SPEED,
        ListOp.MARK_SPEED,
        ListOp.MARK_CURRENT,
        ListOp.Q_SWITCH_PERIOD,
        ListOp.LASER_ON_DELAY,
        ListOp.LASER_OFF_DELAY,
        ListOp.POLYGON_DELAY,
        ListOp.JUMP_DELAY,
        ListOp.FIBER_OPEN_MO,
        ListOp.WRITE_PORT,
    )
)
#: the entries whose last value the executor or its clock keeps
_SETTINGS = tuple(sorted({*_EXECUTOR_SETTINGS, *CLOCK_SETTINGS}))
#: by opcode: True for the entries on which step closes the stroke in progress (besides a MarkTo
#: that does not fire)
_CLOSES = np.zeros(0x10000, dtype=bool)
_CLOSES[
    [
        ListOp.JUMP_TO,
        ListOp.LASER_ON_POINT,
        ListOp.MARK_CURRENT,
        ListOp.Q_SWITCH_PERIOD,
        ListOp.FIBER_OPEN_MO,
        ListOp.END_OF_LIST,
    ]
] = True


def _mm_arrays(
    gx: npt.NDArray[np.int64], gy: npt.NDArray[np.int64], g: Geometry
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """:meth:`Geometry.to_mm` over arrays (the same operations, so the same floats)."""
    u = (gx - GALVO_CENTRE) / g.units_per_mm
    v = (gy - GALVO_CENTRE) / g.units_per_mm
    if g.swap_xy:
        u, v = v, u
    x = -u if g.flip_x else u
    y = -v if g.flip_y else v
    return x + 0.0, y + 0.0


def decode_entries(
    entries: Iterable[Entry], geometry: Geometry, *, mo_open: bool = True
) -> DecodedBurn:
    """What a list burns, up to its first EndOfList, with the laser enabled and the master
    oscillator open at the start unless ``mo_open`` is False (list FiberOpenMO entries count)."""
    ex = ListExecutor(geometry, mo_open=mo_open)
    for e in entries:
        ex.step(e)
        if ex.burn.ended:
            break
    return ex.finish()


def entries_seconds(entries: Iterable[Entry]) -> float:
    """How long the board runs ``entries`` (up to the first EndOfList), from the one timing model
    (:mod:`markstation.devices.lmc.timing`) the simulated board uses too."""
    return list_seconds((e.op, e.w1, e.w2) for e in entries)


def dump_entries(entries: Iterable[Entry], geometry: Geometry) -> str:
    """Readable text, one entry a line; positions annotated in field millimetres."""
    lines = []
    for e in entries:
        text = e.describe()
        if e.op in (ListOp.JUMP_TO, ListOp.MARK_TO):
            x, y = geometry.to_mm(e.w1, e.w2)
            text += f"  ; ({x:.3f}, {y:.3f}) mm"
        lines.append(text)
    return "\n".join(lines) + "\n"
