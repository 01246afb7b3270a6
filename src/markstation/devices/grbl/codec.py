"""GRBL 1.1 codec, pure: a Job becomes G-code lines, and every line GRBL sends becomes a message.

Nothing here does I/O. The driver streams what :func:`encode_job` returns and feeds what it reads
to :class:`LineSplitter` and :func:`parse_line`; the simulator interprets G-code with the same
word tokenizer (:func:`split_words`) and number format.

Program shape (laser mode, ``$32=1``): ``G21 G90 G94 M5``, then ``M4 S0`` (dynamic power: the
output scales with the actual speed and is zero at rest), then per primitive a ``G0`` travel (laser
mode forces the beam off in G0) and ``G1`` marks; ``F`` and ``S`` are written only when they change.
A dot is a short ``G1`` move (see :data:`DOT_MOVE_MM`): under M4 the energy delivered over a move
of length L at programmed feed L/dwell is S × dwell whatever the acceleration, and nothing stays
lit at rest. The program ends with ``M5``, a ``G0`` back to the field centre and ``G4 P0.01``,
whose ``ok`` arrives only once all motion has finished.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from markstation.errors import DeviceProtocolError, JobError, WordError
from markstation.job.ir import Dot, Job, Point

if TYPE_CHECKING:
    from markstation.profiles import MachineProfile

#: GRBL 1.1 keeps at most 79 characters of a line (after removing spaces); grblHAL 256
MAX_LINE_CHARS = 79
#: length of the G1 move that marks a dot (mm): a few steps at common step sizes, well below a spot
DOT_MOVE_MM = 0.02
#: a dwell whose ``ok`` comes only after all motion before it has finished
SYNC = "G4P0.01"
#: how many decimals coordinates, feeds and powers are written with
DECIMALS = 3

# --- code tables (data; wording ours, codes and meanings from the GRBL 1.1 docs) ----------------

ERRORS: dict[int, str] = {
    1: "a word letter was expected but not found",
    2: "number missing or malformed",
    3: "'$' command not recognised or not supported",
    4: "negative value where a positive one is required",
    5: "homing is disabled ($22=0)",
    6: "step pulse time must be at least 3 µs",
    7: "EEPROM read failed; settings restored to defaults",
    8: "'$' command allowed only when idle",
    9: "G-code locked out during alarm or jog",
    10: "soft limits need homing enabled",
    11: "line too long for the line buffer; line discarded",
    12: "setting exceeds the maximum step rate",
    13: "safety door open",
    14: "startup line or build string too long for EEPROM",
    15: "jog target outside machine travel; jog ignored",
    16: "jog command without '=' or with forbidden words",
    17: "laser mode needs a PWM (variable spindle) output",
    18: "reset asserted (grblHAL)",
    19: "non-positive value (grblHAL)",
    20: "unsupported or invalid G-code command",
    21: "two commands of the same modal group in one block",
    22: "feed rate not set",
    23: "command needs an integer value",
    24: "two commands in the block both need the axis words",
    25: "the same word repeated in the block",
    26: "command needs axis words but none were given",
    27: "line number outside 1..9,999,999",
    28: "required P or L value word missing",
    29: "only G54..G59 work coordinate systems exist",
    30: "G53 needs G0 or G1 motion mode",
    31: "axis words present but no command uses them",
    32: "arc without any axis word in the selected plane",
    33: "invalid motion target",
    34: "radius-format arc cannot be computed",
    35: "offset-format arc lacks its offsets in the plane",
    36: "leftover words not used by any command",
    37: "tool-length offset applied to an axis other than the tool axis",
    38: "tool number above the supported maximum",
    39: "value out of range (grblHAL)",
    40: "tool change pending (grblHAL)",
    41: "spindle not running (grblHAL)",
    42: "illegal plane (grblHAL)",
    43: "maximum feed rate exceeded (grblHAL)",
    44: "spindle speed out of range (grblHAL)",
    45: "only homing allowed while a limit switch is engaged (grblHAL)",
    46: "homing required (grblHAL)",
    47: "tool error (grblHAL)",
    48: "value word conflict (grblHAL)",
    49: "self-test failed (grblHAL)",
    50: "E-stop active (grblHAL)",
    51: "motor fault (grblHAL)",
    52: "setting value out of range (grblHAL)",
    53: "setting not available (grblHAL)",
}

ALARMS: dict[int, str] = {
    1: "hard limit switch hit; position probably lost, re-home",
    2: "soft limit: target outside machine travel; position kept",
    3: "reset while moving; position probably lost, re-home",
    4: "probe not in the expected state before the probe cycle",
    5: "probe did not trigger within the programmed distance",
    6: "homing aborted by a reset",
    7: "homing aborted because the safety door opened",
    8: "homing pull-off did not clear the limit switch",
    9: "homing could not find the limit switch",
    10: "second switch of a dual-motor axis not found (grblHAL: E-stop asserted)",
    11: "homing required (grblHAL)",
    12: "limit switch engaged (grblHAL)",
    13: "probe protection (grblHAL)",
    14: "spindle at-speed timeout (grblHAL)",
    15: "second switch of an auto-squared axis not found (grblHAL)",
    16: "self-test failed (grblHAL)",
    17: "motor fault (grblHAL)",
    18: "homing configuration invalid (grblHAL)",
    22: "buffer overflow (grblHAL)",
}

#: $N -> (meaning, unit); the GRBL 1.1 settings a laser driver reads or the simulator reports
SETTINGS: dict[int, tuple[str, str]] = {
    0: ("step pulse time", "µs"),
    1: ("step idle delay", "ms"),
    2: ("step pulse invert mask", "mask"),
    3: ("step direction invert mask", "mask"),
    4: ("invert step enable pin", "bool"),
    5: ("invert limit pins", "bool"),
    6: ("invert probe pin", "bool"),
    10: ("status report options", "mask"),
    11: ("junction deviation", "mm"),
    12: ("arc tolerance", "mm"),
    13: ("report in inches", "bool"),
    20: ("soft limits enable", "bool"),
    21: ("hard limits enable", "bool"),
    22: ("homing cycle enable", "bool"),
    23: ("homing direction invert mask", "mask"),
    24: ("homing locate feed rate", "mm/min"),
    25: ("homing search seek rate", "mm/min"),
    26: ("homing switch debounce delay", "ms"),
    27: ("homing switch pull-off distance", "mm"),
    30: ("maximum spindle speed (S for 100 % power)", "S"),
    31: ("minimum spindle speed", "S"),
    32: ("laser mode enable", "bool"),
    100: ("X steps per mm", "steps/mm"),
    101: ("Y steps per mm", "steps/mm"),
    102: ("Z steps per mm", "steps/mm"),
    110: ("X maximum rate", "mm/min"),
    111: ("Y maximum rate", "mm/min"),
    112: ("Z maximum rate", "mm/min"),
    120: ("X acceleration", "mm/s²"),
    121: ("Y acceleration", "mm/s²"),
    122: ("Z acceleration", "mm/s²"),
    130: ("X maximum travel", "mm"),
    131: ("Y maximum travel", "mm"),
    132: ("Z maximum travel", "mm"),
}

#: single-byte real-time commands (never stored in the receive buffer, need no terminator)
SOFT_RESET = b"\x18"
STATUS_QUERY = b"?"
FEED_HOLD = b"!"
CYCLE_START = b"~"
SAFETY_DOOR = b"\x84"
JOG_CANCEL = b"\x85"


def error_text(code: int) -> str:
    return ERRORS.get(code, f"unknown error {code}")


def alarm_text(code: int) -> str:
    return ALARMS.get(code, f"unknown alarm {code}")


# --- numbers -----------------------------------------------------------------------------------


def fmt(value: float, decimals: int = DECIMALS) -> str:
    """Compact, deterministic decimal: at most ``decimals`` places, no trailing zeros, no -0."""
    if not math.isfinite(value):
        raise JobError(f"cannot write the non-finite number {value!r} as G-code")
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


# --- geometry: field frame <-> GRBL work coordinates ------------------------------------------


@dataclass(frozen=True)
class Geometry:
    """How the IR's field frame maps to the coordinates sent to GRBL (and back, for the simulator).

    Order: swap x/y, then flip, then shift by half the field when the machine's origin is its
    lower-left corner. ``max_s`` is the S value of 100 % power (GRBL ``$30``).
    """

    width_mm: float
    height_mm: float
    swap_xy: bool = False
    flip_x: bool = False
    flip_y: bool = False
    origin: str = "center"
    max_s: float = 1000.0

    @staticmethod
    def from_machine(machine: MachineProfile) -> Geometry:
        opts = machine.options
        return Geometry(
            width_mm=machine.field_width_mm,
            height_mm=machine.field_height_mm,
            swap_xy=machine.swap_xy,
            flip_x=machine.flip_x,
            flip_y=machine.flip_y,
            origin=str(opts.get("origin", "center")),
            max_s=float(opts.get("max_s", 1000.0)),
        )

    def _offset(self) -> tuple[float, float]:
        if self.origin != "lower-left":
            return (0.0, 0.0)
        w, h = (self.height_mm, self.width_mm) if self.swap_xy else (self.width_mm, self.height_mm)
        return (w / 2, h / 2)

    def to_machine(self, x: float, y: float) -> Point:
        if self.swap_xy:
            x, y = y, x
        if self.flip_x:
            x = -x
        if self.flip_y:
            y = -y
        ox, oy = self._offset()
        return (x + ox, y + oy)

    def to_field(self, mx: float, my: float) -> Point:
        ox, oy = self._offset()
        x, y = mx - ox, my - oy
        if self.flip_x:
            x = -x
        if self.flip_y:
            y = -y
        if self.swap_xy:
            x, y = y, x
        return (x, y)

    def s_value(self, power_pct: float) -> float:
        return self.max_s * power_pct / 100.0


# --- encoding ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Program:
    """G-code lines without terminators, and where emission first becomes possible."""

    lines: tuple[str, ...]
    #: index of the first line that can fire the laser (a G1 with S > 0); len(lines) if none
    first_emission: int
    #: the number of primitives marked (passes counted)
    marked_primitives: int = 0

    def wire(self) -> list[bytes]:
        """Each line as the exact bytes to write: ASCII, terminated by LF only (CR LF gives two oks)."""
        return [(line + "\n").encode("ascii") for line in self.lines]


class _Writer:
    """Accumulates G-code lines, writing F and S only when they change (both are modal)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.feed: str | None = None
        self.power: str | None = None
        self.first_emission: int | None = None

    def add(self, line: str) -> None:
        if len(line) > MAX_LINE_CHARS:  # cannot happen with field-sized coordinates; guard anyway
            raise JobError(f"G-code line longer than {MAX_LINE_CHARS} characters: {line!r}")
        self.lines.append(line)

    def travel(self, p: Point) -> None:
        self.add(f"G0X{fmt(p[0])}Y{fmt(p[1])}")

    def mark(self, p: Point, feed_mm_min: float, s: float) -> None:
        words = f"G1X{fmt(p[0])}Y{fmt(p[1])}"
        f_text, s_text = fmt(feed_mm_min), fmt(s)
        if f_text != self.feed:
            words += f"F{f_text}"
            self.feed = f_text
        if s_text != self.power:
            words += f"S{s_text}"
            self.power = s_text
        if self.first_emission is None and s > 0:
            self.first_emission = len(self.lines)
        self.add(words)


def encode_job(job: Job, geometry: Geometry) -> Program:
    """The G-code program that marks ``job`` (limits are the driver's business, checked before)."""
    out = _Writer()
    for header in ("G21", "G90", "G94", "M5", "M4S0"):
        out.add(header)
    out.power = "0"
    marked = 0
    for layer in job.layers:
        p = layer.params
        feed = p.speed_mm_s * 60.0
        s = geometry.s_value(p.power_pct)
        for _ in range(p.passes):
            for prim in layer.primitives:
                marked += 1
                if isinstance(prim, Dot):
                    mx, my = geometry.to_machine(prim.x, prim.y)
                    half = DOT_MOVE_MM / 2
                    out.travel((mx - half, my))
                    dwell = max(prim.dwell_s, 1e-6)
                    out.mark((mx + half, my), DOT_MOVE_MM / dwell * 60.0, s)
                    continue
                pts = [geometry.to_machine(x, y) for x, y in prim.points]
                out.travel(pts[0])
                for q in pts[1:]:
                    out.mark(q, feed, s)
    out.add("M5")
    out.travel(geometry.to_machine(0.0, 0.0))
    out.add(SYNC)
    first = out.first_emission if out.first_emission is not None else len(out.lines)
    return Program(lines=tuple(out.lines), first_emission=first, marked_primitives=marked)


def encode_frame(
    bounds: tuple[float, float, float, float],
    geometry: Geometry,
    *,
    pointer_s: float = 0.0,
    feed_mm_min: float = 6000.0,
) -> Program:
    """One trace of the bounding box: G0 with the beam off, or G1 at ``pointer_s`` when > 0.

    GRBL has no red pointer; a diode laser at a few percent can serve as one, never more.
    """
    x0, y0, x1, y1 = bounds
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]
    pts = [geometry.to_machine(x, y) for x, y in corners]
    out = _Writer()
    out.add("G21")
    out.add("G90")
    out.add("M5")
    out.travel(pts[0])
    if pointer_s > 0:
        out.add("M4S0")
        out.power = "0"
        for q in pts[1:]:
            out.mark(q, feed_mm_min, pointer_s)
        out.add("M5")
    else:
        for q in pts[1:]:
            out.travel(q)
    out.add(SYNC)
    first = out.first_emission if out.first_emission is not None else len(out.lines)
    return Program(lines=tuple(out.lines), first_emission=first)


# --- G-code words (shared with the simulator) --------------------------------------------------

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)")


def split_words(line: str) -> list[tuple[str, float, str]]:
    """Split a pre-cleaned line (upper case, no spaces or comments) into (letter, value, text).

    Raises :class:`WordError` with GRBL's code: 1 when a letter is expected, 2 for a bad number.
    """
    words: list[tuple[str, float, str]] = []
    i = 0
    while i < len(line):
        letter = line[i]
        if not ("A" <= letter <= "Z"):
            raise WordError(1)
        m = _NUMBER.match(line, i + 1)
        if m is None:
            raise WordError(2)
        words.append((letter, float(m.group(0)), m.group(0)))
        i = m.end()
    return words


# --- parsing what GRBL sends -------------------------------------------------------------------


@dataclass(frozen=True)
class Ok:
    pass


@dataclass(frozen=True)
class ErrorReply:
    code: int

    @property
    def text(self) -> str:
        return error_text(self.code)


@dataclass(frozen=True)
class AlarmMessage:
    code: int

    @property
    def text(self) -> str:
        return alarm_text(self.code)


@dataclass(frozen=True)
class Banner:
    """``Grbl 1.1h ['$' for help]`` or ``GrblHAL 1.1f ['$' or '$HELP' for help]``: a (re)start."""

    firmware: str  # "Grbl" | "GrblHAL"
    version: str
    note: str = ""


@dataclass(frozen=True)
class Status:
    """A ``<…>`` real-time status report, parsed by key (fields come and go)."""

    state: str
    substate: int | None = None
    mpos: tuple[float, ...] | None = None
    wpos: tuple[float, ...] | None = None
    wco: tuple[float, ...] | None = None
    #: (free planner blocks, free receive-buffer bytes)
    buffer: tuple[int, int] | None = None
    line_number: int | None = None
    feed: float | None = None
    speed: float | None = None
    #: (feed %, rapid %, spindle %)
    overrides: tuple[int, int, int] | None = None
    pins: str = ""
    accessories: str = ""
    #: fields this parser does not interpret (grblHAL extras), in order
    extra: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Feedback:
    """A bracketed push message: ``[MSG:…]``, ``[GC:…]``, ``[HLP:…]``, ``[G54:…]``, ``[echo:…]``…"""

    kind: str
    text: str


@dataclass(frozen=True)
class VersionInfo:
    """``[VER:1.1h.20190830:user string]``."""

    version: str
    build: str
    user: str


@dataclass(frozen=True)
class BuildOptions:
    """``[OPT:V,15,128]``: option letters, planner blocks and receive-buffer bytes where reported."""

    flags: str
    blocks: int | None
    rx_bytes: int | None
    extra: tuple[str, ...] = ()


@dataclass(frozen=True)
class Probe:
    """``[PRB:x,y,z:1]``."""

    position: tuple[float, ...]
    success: bool


@dataclass(frozen=True)
class Setting:
    """``$N=V`` in reply to ``$$``; ``value`` is the text (grblHAL has string settings)."""

    number: int
    value: str

    @property
    def number_value(self) -> float | None:
        try:
            return float(self.value)
        except ValueError:
            return None


@dataclass(frozen=True)
class StartupBlock:
    """``$N0=G21G90`` in reply to ``$N``."""

    number: int
    line: str


@dataclass(frozen=True)
class StartupResult:
    """``>G21G90:ok`` / ``>G99:error:20``: a startup block ran after a reset (not a response)."""

    line: str
    error: int | None


Message: TypeAlias = (
    Ok
    | ErrorReply
    | AlarmMessage
    | Banner
    | Status
    | Feedback
    | VersionInfo
    | BuildOptions
    | Probe
    | Setting
    | StartupBlock
    | StartupResult
)

#: states a status report may start with (grblHAL adds Tool)
STATES = ("Idle", "Run", "Hold", "Jog", "Alarm", "Door", "Check", "Home", "Sleep", "Tool")

_BANNER = re.compile(r"(GrblHAL|Grbl) (\S+)(?: \[(.*)\])?")
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)")
_TAG = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_LINE_END = re.compile(rb"[\r\n]")


def _bad(line: str, why: str) -> DeviceProtocolError:
    shown = line if len(line) <= 80 else line[:77] + "..."
    return DeviceProtocolError(f"GRBL sent {shown!r}: {why}")


def _int(text: str, line: str) -> int:
    if not _INT.fullmatch(text):
        raise _bad(line, f"'{text}' is not a whole number")
    return int(text)


def _floats(text: str, line: str) -> tuple[float, ...]:
    parts = text.split(",")
    for part in parts:
        if not _FLOAT.fullmatch(part):
            raise _bad(line, f"'{text}' is not a list of numbers")
    return tuple(float(p) for p in parts)


def _ints(text: str, line: str, count: int) -> tuple[int, ...]:
    parts = text.split(",")
    if len(parts) != count:
        raise _bad(line, f"'{text}' should have {count} values")
    return tuple(_int(p, line) for p in parts)


def parse_line(raw: bytes | str) -> Message:
    """Parse one line GRBL sent (terminator stripped). Anything else is DeviceProtocolError."""
    if isinstance(raw, bytes):
        try:
            line = raw.decode("ascii")
        except UnicodeDecodeError:
            raise DeviceProtocolError(f"GRBL sent non-ASCII bytes {raw[:40]!r}") from None
    else:
        line = raw
    line = line.rstrip("\r\n")
    if not line:
        raise _bad(line, "empty line")
    if not line.isprintable():
        raise _bad(line, "control characters in a line")
    if line == "ok":
        return Ok()
    if line.startswith("error:"):
        return ErrorReply(_int(line[6:], line))
    if line.startswith("ALARM:"):
        return AlarmMessage(_int(line[6:], line))
    if line.startswith("<"):
        return _parse_status(line)
    if line.startswith("["):
        return _parse_bracket(line)
    if line.startswith("$"):
        return _parse_dollar(line)
    if line.startswith(">"):
        return _parse_startup(line)
    m = _BANNER.fullmatch(line)
    if m:
        return Banner(firmware=m.group(1), version=m.group(2), note=m.group(3) or "")
    raise _bad(line, "not a GRBL 1.1 message")


def _parse_status(line: str) -> Status:
    if not line.endswith(">") or len(line) < 3:
        raise _bad(line, "status report without a closing '>'")
    fields = line[1:-1].split("|")
    state_text = fields[0]
    name, _, sub = state_text.partition(":")
    if name not in STATES:
        raise _bad(line, f"unknown machine state '{state_text}'")
    values: dict[str, object] = {"state": name}
    if sub:
        values["substate"] = _int(sub, line)
    pins = accessories = ""
    extra: list[tuple[str, str]] = []
    for item in fields[1:]:
        key, sep, value = item.partition(":")
        if not key:
            raise _bad(line, "empty field in a status report")
        if key == "MPos" and sep:
            values["mpos"] = _floats(value, line)
        elif key == "WPos" and sep:
            values["wpos"] = _floats(value, line)
        elif key == "WCO" and sep:
            values["wco"] = _floats(value, line)
        elif key == "Bf" and sep:
            blocks, rx = _ints(value, line, 2)
            values["buffer"] = (blocks, rx)
        elif key == "Ln" and sep:
            values["line_number"] = _int(value, line)
        elif key == "FS" and sep:
            nums = _floats(value, line)
            if len(nums) != 2:
                raise _bad(line, "FS needs feed and speed")
            values["feed"], values["speed"] = nums
        elif key == "F" and sep:
            nums = _floats(value, line)
            if len(nums) != 1:
                raise _bad(line, "F needs one value")
            values["feed"] = nums[0]
        elif key == "Ov" and sep:
            f, r, s = _ints(value, line, 3)
            values["overrides"] = (f, r, s)
        elif key == "Pn" and sep:
            pins = value
        elif key == "A" and sep:
            accessories = value
        else:
            extra.append((key, value))
    return Status(
        pins=pins,
        accessories=accessories,
        extra=tuple(extra),
        **values,  # type: ignore[arg-type]
    )


def _parse_bracket(line: str) -> Message:
    if not line.endswith("]"):
        raise _bad(line, "push message without a closing ']'")
    body = line[1:-1]
    tag, sep, text = body.partition(":")
    if not sep or not _TAG.fullmatch(tag):
        raise _bad(line, "push message without a 'TAG:' prefix")
    if tag == "VER":
        version, _, user = text.partition(":")
        base, _, build = version.rpartition(".")
        if not base:
            base, build = version, ""
        return VersionInfo(version=base, build=build, user=user)
    if tag == "OPT":
        parts = text.split(",")
        blocks = _int(parts[1], line) if len(parts) > 1 else None
        rx = _int(parts[2], line) if len(parts) > 2 else None
        return BuildOptions(flags=parts[0], blocks=blocks, rx_bytes=rx, extra=tuple(parts[3:]))
    if tag == "PRB":
        coords, sep2, ok = text.rpartition(":")
        if not sep2 or ok not in ("0", "1"):
            raise _bad(line, "probe report without ':0' or ':1'")
        return Probe(position=_floats(coords, line), success=ok == "1")
    return Feedback(kind=tag, text=text)


def _parse_dollar(line: str) -> Setting | StartupBlock:
    key, sep, value = line[1:].partition("=")
    if not sep:
        raise _bad(line, "setting without '='")
    if key.startswith("N"):
        return StartupBlock(number=_int(key[1:], line), line=value)
    return Setting(number=_int(key, line), value=value)


def _parse_startup(line: str) -> StartupResult:
    body = line[1:]
    if body.endswith(":ok"):
        return StartupResult(line=body[:-3], error=None)
    head, sep, code = body.rpartition(":error:")
    if sep:
        return StartupResult(line=head, error=_int(code, line))
    raise _bad(line, "startup block result without ':ok' or ':error:N'")


class LineSplitter:
    """Cuts the byte stream from GRBL into lines (CR LF, LF or CR), dropping empty ones."""

    def __init__(self, max_line: int = 4096) -> None:
        self._buf = bytearray()
        self._max = max_line

    def feed(self, data: bytes) -> list[bytes]:
        self._buf.extend(data)
        *lines, rest = _LINE_END.split(bytes(self._buf))
        self._buf = bytearray(rest)
        if len(self._buf) > self._max:
            junk = bytes(self._buf[:40])
            self._buf.clear()
            raise DeviceProtocolError(
                f"GRBL sent more than {self._max} bytes without a line end ({junk!r}…)"
            )
        return [line for line in lines if line]

    def clear(self) -> None:
        self._buf.clear()


def settings_from(messages: Iterable[Message]) -> dict[int, str]:
    """The ``$N=V`` settings among ``messages`` (a ``$$`` reply)."""
    return {m.number: m.value for m in messages if isinstance(m, Setting)}
