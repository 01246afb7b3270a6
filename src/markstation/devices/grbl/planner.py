"""GRBL 1.1's motion planner as a timing model, pure: how long a G-code program moves.

One model, two users: the device estimate (:func:`program_seconds`, over the lines
:func:`markstation.devices.grbl.codec.encode_job` writes) and the simulated GRBL, which times
every block it executes with :func:`block_time` over what its planner buffer holds.

What it follows from GRBL 1.1 (``planner.c``, ``stepper.c``, as documented):

* a block's nominal speed is its feed (G1) or the rapid rate (G0), limited so that no axis
  exceeds its max rate (``$110``/``$111``/``$112``, mm/min);
* its acceleration is the largest that keeps every axis within ``$120``/``$121``/``$122``
  (mm/s²) along the block's direction;
* the junction between two blocks allows ``v² = a·δ·sin(θ/2) / (1 − sin(θ/2))`` (``$11`` = δ,
  θ the angle between the reversed incoming and the outgoing direction, a limited per axis along
  the junction vector), capped by both blocks' nominal speeds; a straight continuation is not
  limited, a reversal stops;
* a backward pass from a full stop at the end of the buffer and a forward pass from the entry
  speed, then a trapezoidal (or triangular) profile per block;
* a full stop wherever GRBL synchronises: G4 dwells (their time is added), M3/M4/M5 changes, and S
  changes outside laser mode (``$32=0``); in laser mode (``$32=1``) S changes ride with the motion;
* zero-length moves are dropped, as GRBL does.

Not modelled: the stepper's segment quantisation and AMASS (well under 1 % at marking feeds).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from markstation.devices.grbl.codec import split_words
from markstation.errors import WordError

if TYPE_CHECKING:
    from markstation.profiles import MachineProfile

#: GRBL's MINIMUM_JUNCTION_SPEED (mm/min → 0); a reversal stops
MINIMUM_JUNCTION_SPEED = 0.0
#: GRBL 1.1 plans over 15 blocks (BLOCK_BUFFER_SIZE 16, one kept free): the running one and 14
LOOKAHEAD_BLOCKS = 14
#: below this a length counts as zero (GRBL: a move of no whole step)
ZERO_MM = 1e-9

Vec = tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class PlannerSettings:
    """The settings the planner reads: max rates (mm/min), accelerations (mm/s²), ``$11``, ``$32``."""

    max_rate_mm_min: Vec = (12000.0, 12000.0, 500.0)
    accel_mm_s2: Vec = (1000.0, 1000.0, 10.0)
    junction_deviation_mm: float = 0.01
    laser_mode: bool = True

    @staticmethod
    def from_grbl(settings: Mapping[int, float]) -> PlannerSettings:
        """From a ``$$`` table (``{110: 12000.0, …}``); missing values take GRBL's defaults."""
        d = PlannerSettings()

        def get(n: int, default: float) -> float:
            return float(settings.get(n, default))

        return PlannerSettings(
            max_rate_mm_min=(get(110, 500.0), get(111, 500.0), get(112, 500.0)),
            accel_mm_s2=(get(120, 10.0), get(121, 10.0), get(122, 10.0)),
            junction_deviation_mm=get(11, d.junction_deviation_mm),
            laser_mode=bool(get(32, 0.0)),
        )

    @staticmethod
    def from_machine(machine: MachineProfile) -> PlannerSettings:
        """What the machine profile says the controller holds (``[grbl]`` motion settings)."""
        g = machine.grbl
        d = PlannerSettings()
        return PlannerSettings(
            max_rate_mm_min=(g.max_rate_x_mm_min, g.max_rate_y_mm_min, d.max_rate_mm_min[2]),
            accel_mm_s2=(g.accel_x_mm_s2, g.accel_y_mm_s2, d.accel_mm_s2[2]),
            junction_deviation_mm=g.junction_deviation_mm,
            laser_mode=True,
        )

    def adopt(self, settings: Mapping[int, float]) -> PlannerSettings:
        """These settings with the time-only values a controller reported (``$110``, ``$111``,
        ``$120``, ``$121``, ``$11``) in place of the profile's."""
        rate = list(self.max_rate_mm_min)
        accel = list(self.accel_mm_s2)
        for i in range(3):
            rate[i] = float(settings.get(110 + i, rate[i]))
            accel[i] = float(settings.get(120 + i, accel[i]))
        return replace(
            self,
            max_rate_mm_min=(rate[0], rate[1], rate[2]),
            accel_mm_s2=(accel[0], accel[1], accel[2]),
            junction_deviation_mm=float(settings.get(11, self.junction_deviation_mm)),
        )


def limit_by_axis(limits: Vec, unit: Vec) -> float:
    """The largest value along ``unit`` that keeps every axis within its limit (GRBL's
    ``limit_value_by_axis_maximum``)."""
    value = math.inf
    for lim, u in zip(limits, unit, strict=True):
        if u != 0.0:
            value = min(value, lim / abs(u))
    return value


@dataclass(frozen=True, slots=True)
class Move:
    """One straight block: from, to (mm), and its programmed rate (mm/min; inf = rapid)."""

    start: Vec
    end: Vec
    rate_mm_min: float

    @property
    def length(self) -> float:
        return math.dist(self.start, self.end)


@dataclass(frozen=True, slots=True)
class _Block:
    length: float
    unit: Vec
    nominal: float  # mm/s
    accel: float  # mm/s²


def _block(move: Move, s: PlannerSettings, override: float = 1.0) -> _Block | None:
    length = move.length
    if length <= ZERO_MM:
        return None
    unit = (
        (move.end[0] - move.start[0]) / length,
        (move.end[1] - move.start[1]) / length,
        (move.end[2] - move.start[2]) / length,
    )
    max_rate = limit_by_axis(s.max_rate_mm_min, unit)
    if math.isfinite(move.rate_mm_min):  # G1: the feed override scales the feed, then the clamp
        rate = min(move.rate_mm_min * override, max_rate)
    else:  # G0: the rapid override scales the rapid rate
        rate = max_rate * override
    return _Block(length, unit, max(rate, 0.0) / 60.0, limit_by_axis(s.accel_mm_s2, unit))


def junction_speed_sqr(prev: Vec, cur: Vec, s: PlannerSettings) -> float:
    """GRBL's max junction speed² (mm²/s²) between directions ``prev`` and ``cur``."""
    cos_theta = -sum(p * c for p, c in zip(prev, cur, strict=True))
    if cos_theta > 0.999999:
        return MINIMUM_JUNCTION_SPEED**2  # reversal
    if cos_theta < -0.999999:
        return math.inf  # straight on
    jv = [c - p for p, c in zip(prev, cur, strict=True)]
    norm = math.sqrt(sum(v * v for v in jv))
    junit = (jv[0] / norm, jv[1] / norm, jv[2] / norm)
    accel = limit_by_axis(s.accel_mm_s2, junit)
    sin_half = math.sqrt(0.5 * (1.0 - cos_theta))
    return max(
        MINIMUM_JUNCTION_SPEED**2,
        accel * s.junction_deviation_mm * sin_half / (1.0 - sin_half),
    )


def profile_time(length: float, v0: float, v1: float, vn: float, accel: float) -> float:
    """Seconds for a trapezoidal move of ``length`` mm entering at v0, leaving at v1 (mm/s),
    cruising at most at vn with ``accel`` (mm/s²)."""
    if length <= 0:
        return 0.0
    if vn <= 0 or accel <= 0:
        return math.inf
    v0 = min(v0, vn)
    v1 = min(v1, vn)
    d_acc = (vn * vn - v0 * v0) / (2 * accel)
    d_dec = (vn * vn - v1 * v1) / (2 * accel)
    if d_acc + d_dec <= length:
        return (vn - v0) / accel + (vn - v1) / accel + (length - d_acc - d_dec) / vn
    peak = math.sqrt(max(0.0, (2 * accel * length + v0 * v0 + v1 * v1) / 2))
    peak = max(peak, v0, v1)
    return max(0.0, (peak - v0) / accel) + max(0.0, (peak - v1) / accel)


def _plan(blocks: Sequence[_Block], entry_v: float, s: PlannerSettings) -> list[float]:
    """Entry speeds² of each block plus the final exit (0), by GRBL's backward and forward
    passes; block 0 enters at ``entry_v``."""
    n = len(blocks)
    max_entry = [0.0] * n
    max_entry[0] = entry_v * entry_v
    for i in range(1, n):
        prev, cur = blocks[i - 1], blocks[i]
        max_entry[i] = min(
            junction_speed_sqr(prev.unit, cur.unit, s), prev.nominal**2, cur.nominal**2
        )
    entry = [0.0] * (n + 1)
    for i in range(n - 1, -1, -1):  # backward: every block can stop by the end of the buffer
        b = blocks[i]
        entry[i] = min(max_entry[i], entry[i + 1] + 2 * b.accel * b.length)
    entry[0] = max_entry[0] if n else 0.0
    for i in range(n):  # forward: what acceleration allows from the entry
        b = blocks[i]
        entry[i + 1] = min(entry[i + 1], entry[i] + 2 * b.accel * b.length)
    return entry


def block_time(
    current: Move,
    queued: Iterable[Move],
    entry_v: float,
    prev_unit: Vec | None,
    s: PlannerSettings,
    *,
    override: float = 1.0,
) -> tuple[float, float, Vec | None]:
    """Time (s) of ``current`` entered at ``entry_v`` (mm/s) with ``queued`` behind it in the
    buffer, ending at rest after the last; returns (seconds, exit speed, its direction)."""
    first = _block(current, s, override)
    if first is None:
        return 0.0, entry_v, prev_unit
    if prev_unit is not None and entry_v > 0:
        v_max = math.sqrt(
            min(junction_speed_sqr(prev_unit, first.unit, s), first.nominal**2, entry_v**2)
        )
        entry_v = min(entry_v, v_max)
    else:
        entry_v = 0.0
    blocks = [first]
    for m in queued:
        b = _block(m, s, override)
        if b is not None:
            blocks.append(b)
    speeds = _plan(blocks, entry_v, s)
    v0, v1 = math.sqrt(speeds[0]), math.sqrt(speeds[1])
    return profile_time(first.length, v0, v1, first.nominal, first.accel), v1, first.unit


def segment_seconds(
    moves: Sequence[Move], s: PlannerSettings, *, lookahead: int = LOOKAHEAD_BLOCKS
) -> float:
    """Seconds for ``moves`` from rest to rest, each block planned when it starts with the
    ``lookahead`` blocks behind it in the buffer (a host that keeps GRBL's buffer full), as the
    simulated GRBL plans them with :func:`block_time`."""
    blocks = [b for b in (_block(m, s) for m in moves) if b is not None]
    total = 0.0
    entry_v = 0.0
    prev: _Block | None = None
    for i, first in enumerate(blocks):
        if prev is not None and entry_v > 0:
            entry_v = min(
                entry_v,
                math.sqrt(
                    min(junction_speed_sqr(prev.unit, first.unit, s), first.nominal**2, entry_v**2)
                ),
            )
        else:
            entry_v = 0.0
        speeds = _plan(blocks[i : i + 1 + lookahead], entry_v, s)
        v1 = math.sqrt(speeds[1])
        total += profile_time(first.length, entry_v, v1, first.nominal, first.accel)
        entry_v, prev = v1, first
    return total


@dataclass(frozen=True, slots=True)
class ProgramTime:
    """How long a program moves: motion, dwells, and the number of full stops."""

    motion_s: float
    dwell_s: float
    stops: int

    @property
    def total_s(self) -> float:
        return self.motion_s + self.dwell_s


def program_time(
    lines: Iterable[str], s: PlannerSettings, start: Vec = (0.0, 0.0, 0.0)
) -> ProgramTime:
    """Time a G-code program the way GRBL plans it (the words our codec writes: G0 G1 G4 G20/21
    G90/91 G94 M3/M4/M5 F S X Y Z; other words are ignored, arcs are not timed)."""
    pos = list(start)
    absolute = True
    unit = 1.0
    feed = 0.0
    spindle = "M5"
    s_value = 0.0
    motion = "0"
    segment: list[Move] = []
    motion_s = dwell_s = 0.0
    stops = 0

    def flush() -> None:
        nonlocal motion_s, stops
        if segment:
            motion_s += segment_seconds(segment, s)
            stops += 1
            segment.clear()

    for raw in lines:
        try:
            words = split_words(raw.strip().upper().replace(" ", ""))
        except WordError:
            continue
        axes: dict[str, float] = {}
        dwell: float | None = None
        new_spindle = spindle
        new_s = s_value
        for letter, value, _ in words:
            if letter == "G":
                if value == 0:
                    motion = "0"
                elif value == 1:
                    motion = "1"
                elif value == 4:
                    dwell = 0.0
                elif value == 20:
                    unit = 25.4
                elif value == 21:
                    unit = 1.0
                elif value == 90:
                    absolute = True
                elif value == 91:
                    absolute = False
            elif letter == "M" and value in (3, 4, 5):
                new_spindle = f"M{int(value)}"
            elif letter == "F":
                feed = value * unit
            elif letter == "S":
                new_s = value
            elif letter == "P" and dwell is not None:
                dwell = value
            elif letter in "XYZ":
                axes[letter] = value * unit
        if new_spindle != spindle or (new_s != s_value and not s.laser_mode):
            flush()
        spindle, s_value = new_spindle, new_s
        if dwell is not None:
            flush()
            dwell_s += dwell
            continue
        if axes:
            target = list(pos)
            for i, letter in enumerate("XYZ"):
                if letter in axes:
                    target[i] = axes[letter] if absolute else pos[i] + axes[letter]
            rate = math.inf if motion == "0" else feed
            if rate > 0:
                segment.append(
                    Move((pos[0], pos[1], pos[2]), (target[0], target[1], target[2]), rate)
                )
            pos = target
    flush()
    return ProgramTime(motion_s, dwell_s, stops)
