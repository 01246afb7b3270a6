"""How long an LMC list runs: the board's timing model, pure, in one place.

The simulated board (through :class:`markstation.devices.lmc.codec.ListExecutor`) and the device
estimate (:func:`markstation.devices.estimate.device_estimate`) both clock a list with
:class:`ListClock`, so what the estimate says is what the simulator does.

The model, per list entry (speeds are galvo units per millisecond, delays in the units the codec
writes them):

* **JumpTo**: straight-line distance / jump speed, then the JumpDelay (10 µs ticks);
* **MarkTo**: straight-line distance / mark speed, then the PolygonDelay (10 µs ticks); the first
  MarkTo of a run of marks also costs a positive LaserOnDelay (µs; a negative one overlaps the
  motion), and the first entry after a run of marks costs a positive LaserOffDelay;
* **DelayTime**, **LaserOnPoint**: w1 × 10 µs;
* everything else (settings, ports, ReadyMark, FiberOpenMO): no time;
* **EndOfList** ends the list.

An unset speed counts as the slowest (1 unit/ms). What this model does *not* explain on the one
real capture we have (ThreeOvals.pcap, 14.4 ms of 226.4 ms) is written in
``firmware_notes/lmc.md``; no correction factor is applied for it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TypeVar

import numpy as np
import numpy.typing as npt

# list opcodes (the same values as markstation.devices.lmc.codec.ListOp, which imports this module)
JUMP_TO = 0x8001
END_OF_LIST = 0x8002
LASER_ON_POINT = 0x8003
DELAY_TIME = 0x8004
MARK_TO = 0x8005
JUMP_SPEED = 0x8006
LASER_ON_DELAY = 0x8007
LASER_OFF_DELAY = 0x8008
MARK_SPEED = 0x800C
JUMP_DELAY = 0x800D
POLYGON_DELAY = 0x800F

#: one tick of DelayTime, LaserOnPoint, JumpDelay and PolygonDelay, and of GetMarkTime
TICK_S = 10e-6
_SIGN_NEGATIVE = 0x8000
_CENTRE = 0x8000

_N = TypeVar("_N", bound=np.generic)


class ListClock:
    """The time each list entry takes, as the board executes it (see the module docstring)."""

    __slots__ = (
        "jump_delay_s",
        "jump_speed",
        "laser_off_delay_s",
        "laser_on_delay_s",
        "mark_speed",
        "marking",
        "polygon_delay_s",
        "pos",
    )

    def __init__(self) -> None:
        self.pos = (_CENTRE, _CENTRE)
        self.jump_speed = 0
        self.mark_speed = 0
        self.jump_delay_s = 0.0
        self.polygon_delay_s = 0.0
        self.laser_on_delay_s = 0.0
        self.laser_off_delay_s = 0.0
        self.marking = False

    def step(self, op: int, w1: int, w2: int) -> float:
        """Seconds the entry ``(op, w1, w2, …)`` takes; updates position and settings."""
        seconds = 0.0
        if op == MARK_TO:
            dist = math.hypot(w1 - self.pos[0], w2 - self.pos[1])
            seconds = dist / max(1, self.mark_speed) * 1e-3 + self.polygon_delay_s
            if not self.marking:
                seconds += max(0.0, self.laser_on_delay_s)
                self.marking = True
            self.pos = (w1, w2)
            return seconds
        if self.marking:
            seconds += max(0.0, self.laser_off_delay_s)
            self.marking = False
        if op == JUMP_TO:
            dist = math.hypot(w1 - self.pos[0], w2 - self.pos[1])
            seconds += dist / max(1, self.jump_speed) * 1e-3 + self.jump_delay_s
            self.pos = (w1, w2)
        elif op in (DELAY_TIME, LASER_ON_POINT):
            seconds += w1 * TICK_S
        else:
            self._set(op, w1, w2)
        return seconds

    def step_array(
        self,
        op: npt.NDArray[np.int64],
        w1: npt.NDArray[np.int64],
        w2: npt.NDArray[np.int64],
        at: Mapping[int, npt.NDArray[np.intp]] | None = None,
    ) -> npt.NDArray[np.float64]:
        """:meth:`step` over a run of entries ``(op, w1, w2)``: each entry's seconds, bit for bit
        what stepping them one by one gives (the same operations on the same values, distances
        with ``math.hypot`` as :meth:`step` takes them), and the clock left as that leaves it.
        EndOfList is not special here: the caller ends the run with it. ``at``: the indices of
        each setting entry (:func:`settings_at`), when the caller has them already."""
        n = len(op)
        if n == 0:
            return np.zeros(0, dtype=np.float64)
        if at is None:
            at = settings_at(op, CLOCK_SETTINGS)
        af = w1.astype(np.float64)
        moves = np.flatnonzero((op == JUMP_TO) | (op == MARK_TO))
        dist = np.zeros(n, dtype=np.float64)
        if len(moves):
            gx, gy = w1[moves], w2[moves]
            px = np.empty_like(gx)
            py = np.empty_like(gy)
            px[0], py[0] = self.pos
            px[1:], py[1:] = gx[:-1], gy[:-1]
            dist[moves] = np.fromiter(
                map(math.hypot, (gx - px).tolist(), (gy - py).tolist()),
                dtype=np.float64,
                count=len(moves),
            )
        marking_before = np.empty(n, dtype=bool)
        marking_before[0] = self.marking
        marking_before[1:] = op[:-1] == MARK_TO
        # the delays' values, computed only when an entry sets one (read only where one does)
        delays = len(at[JUMP_DELAY]) or len(at[POLYGON_DELAY])
        ticks = af * TICK_S if delays else af
        laser_delays = len(at[LASER_ON_DELAY]) or len(at[LASER_OFF_DELAY])
        signed = np.where(w2 & _SIGN_NEGATIVE, -af, af) * 1e-6 if laser_delays else af
        seconds = _entry_seconds(
            op,
            af,
            dist,
            marking_before,
            _held_or(at[JUMP_SPEED], af, float(self.jump_speed)),
            _held_or(at[MARK_SPEED], af, float(self.mark_speed)),
            _held_or(at[JUMP_DELAY], ticks, self.jump_delay_s),
            _held_or(at[POLYGON_DELAY], ticks, self.polygon_delay_s),
            _held_or(at[LASER_ON_DELAY], signed, self.laser_on_delay_s),
            _held_or(at[LASER_OFF_DELAY], signed, self.laser_off_delay_s),
        )
        # the state the last entries leave, set as step sets it (from the words, not the arrays)
        if len(moves):
            last = int(moves[-1])
            self.pos = (int(w1[last]), int(w2[last]))
        for code in CLOCK_SETTINGS:
            where = at[code]
            if len(where):
                i = int(where[-1])
                self._set(code, int(w1[i]), int(w2[i]))
        self.marking = bool(op[-1] == MARK_TO)
        return seconds

    def _set(self, op: int, w1: int, w2: int) -> None:
        if op == JUMP_SPEED:
            self.jump_speed = w1
        elif op == MARK_SPEED:
            self.mark_speed = w1
        elif op == JUMP_DELAY:
            self.jump_delay_s = w1 * TICK_S
        elif op == POLYGON_DELAY:
            self.polygon_delay_s = w1 * TICK_S
        elif op == LASER_ON_DELAY:
            self.laser_on_delay_s = _signed_us(w1, w2)
        elif op == LASER_OFF_DELAY:
            self.laser_off_delay_s = _signed_us(w1, w2)


#: the settings entries the clock keeps
CLOCK_SETTINGS = (
    JUMP_SPEED,
    MARK_SPEED,
    JUMP_DELAY,
    POLYGON_DELAY,
    LASER_ON_DELAY,
    LASER_OFF_DELAY,
)
_NOWHERE = np.zeros(0, dtype=np.intp)


def settings_at(op: npt.NDArray[np.int64], codes: Iterable[int]) -> dict[int, npt.NDArray[np.intp]]:
    """For each opcode of ``codes``, the sorted indices of its entries in ``op``, in one pass
    over ``op`` (settings are rare: most packets hold none)."""
    codes = tuple(codes)
    found = np.flatnonzero((op >= min(codes)) & (op <= max(codes)))
    if len(found) == 0:
        return dict.fromkeys(codes, _NOWHERE)
    there = op[found]
    return {code: found[there == code] for code in codes}


def _signed_us(w1: int, sign: int) -> float:
    return (-w1 if sign & _SIGN_NEGATIVE else w1) * 1e-6


def list_seconds(entries: Iterable[tuple[int, int, int]]) -> float:
    """Seconds a list of ``(op, w1, w2)`` runs on the board, up to and with its first EndOfList
    (a list without one runs to its last entry)."""
    clock = ListClock()
    total = 0.0
    step = clock.step
    for op, w1, w2 in entries:
        total += step(op, w1, w2)
        if op == END_OF_LIST:
            break
    return total


def _last_before(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """For each index i, the largest j < i with ``mask[j]`` (-1 where there is none)."""
    at = np.where(mask, np.arange(len(mask)), -1)
    acc = np.maximum.accumulate(at) if len(at) else at
    return np.concatenate(([-1], acc[:-1])).astype(np.int64)


def _held(
    mask: npt.NDArray[np.bool_], values: npt.NDArray[np.float64], default: float
) -> npt.NDArray[np.float64]:
    """The value the last entry before each index set (``default`` before any)."""
    j = _last_before(mask)
    return np.where(j >= 0, values[np.maximum(j, 0)], default)


def held_before(
    at: npt.NDArray[np.intp], values: npt.NDArray[_N], initial: float | int
) -> npt.NDArray[_N]:
    """For each index i of ``values``, ``values[j]`` of the last j < i in ``at`` (the sorted
    indices of the entries that set something), ``initial`` where there is none: the setting in
    force when entry i executes. Cheap when ``at`` is empty (most packets hold no setting)."""
    n = len(values)
    if len(at) == 0:
        return np.full(n, initial, dtype=values.dtype)
    k = np.searchsorted(at, np.arange(n), side="left") - 1
    held: npt.NDArray[_N] = np.where(k >= 0, values[at[np.maximum(k, 0)]], initial)
    return held


def _held_or(
    at: npt.NDArray[np.intp], values: npt.NDArray[np.float64], initial: float
) -> npt.NDArray[np.float64] | float:
    """:func:`held_before`, or just ``initial`` when nothing sets it (numpy broadcasts it)."""
    return held_before(at, values, initial) if len(at) else initial


_Held = npt.NDArray[np.float64] | float


def _entry_seconds(
    op: npt.NDArray[np.int64],
    af: npt.NDArray[np.float64],
    dist: npt.NDArray[np.float64],
    marking_before: npt.NDArray[np.bool_],
    jump_speed: _Held,
    mark_speed: _Held,
    jump_delay: _Held,
    polygon_delay: _Held,
    on_delay: _Held,
    off_delay: _Held,
) -> npt.NDArray[np.float64]:
    """Each entry's seconds, from the settings in force before it (arrays, or one value for the
    whole run): :meth:`ListClock.step`'s operations, in its order, over arrays."""
    is_mark = op == MARK_TO
    mark_s = dist / np.maximum(1.0, mark_speed) * 1e-3 + polygon_delay
    mark_s = np.where(marking_before, mark_s, mark_s + np.maximum(0.0, on_delay))
    other = np.where(marking_before, 0.0 + np.maximum(0.0, off_delay), 0.0)
    jump_s = other + (dist / np.maximum(1.0, jump_speed) * 1e-3 + jump_delay)
    wait_s = other + af * TICK_S
    seconds: npt.NDArray[np.float64] = np.where(
        is_mark,
        mark_s,
        np.where(
            op == JUMP_TO,
            jump_s,
            np.where((op == DELAY_TIME) | (op == LASER_ON_POINT), wait_s, other),
        ),
    )
    return seconds


def list_seconds_array(
    ops: npt.NDArray[np.integer], w1: npt.NDArray[np.integer], w2: npt.NDArray[np.integer]
) -> float:
    """:func:`list_seconds` over arrays of ops and words: the same model (:class:`ListClock`),
    each entry's time computed with the same operations, summed in list order. For the long lists
    of the estimate; ``tests/unit/test_lmc_vector_encoder.py`` checks it against ListClock."""
    op = np.asarray(ops, dtype=np.int64)
    a = np.asarray(w1, dtype=np.int64)
    b = np.asarray(w2, dtype=np.int64)
    ends = np.flatnonzero(op == END_OF_LIST)
    if len(ends):  # up to and with the first EndOfList
        stop = int(ends[0]) + 1
        op, a, b = op[:stop], a[:stop], b[:stop]
    n = len(op)
    if n == 0:
        return 0.0
    af = a.astype(np.float64)
    signed = np.where(b & _SIGN_NEGATIVE, -af, af) * 1e-6
    moves = (op == JUMP_TO) | (op == MARK_TO)
    j = _last_before(moves)
    px = np.where(j >= 0, a[np.maximum(j, 0)], _CENTRE)
    py = np.where(j >= 0, b[np.maximum(j, 0)], _CENTRE)
    dx, dy = a - px, b - py
    dist = np.sqrt((dx * dx + dy * dy).astype(np.float64))
    seconds = _entry_seconds(
        op,
        af,
        dist,
        np.concatenate(([False], op[:-1] == MARK_TO)),
        _held(op == JUMP_SPEED, af, 0.0),
        _held(op == MARK_SPEED, af, 0.0),
        _held(op == JUMP_DELAY, af * TICK_S, 0.0),
        _held(op == POLYGON_DELAY, af * TICK_S, 0.0),
        _held(op == LASER_ON_DELAY, signed, 0.0),
        _held(op == LASER_OFF_DELAY, signed, 0.0),
    )
    return float(np.cumsum(seconds)[-1])
