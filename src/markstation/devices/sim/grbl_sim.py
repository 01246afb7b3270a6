"""A simulated GRBL 1.1h laser controller: what a host sees on the serial line, and what it burns.

The model runs in its own thread, like the microcontroller. Bytes arrive through :meth:`GrblSim.feed`
(optionally spaced in time like a UART) and replies leave through the ``output`` callback; the
pyserial URL handler (``sim://grbl``) and the pty server put a link in between.

Modelled, as on the real firmware: real-time bytes picked off on arrival (``?`` ``!`` ``~`` 0x18,
overrides, door, jog cancel — also inside comments); a 128-byte receive ring whose overflow is
*lost* (and counted in :attr:`GrblSim.overflow_bytes`, so tests can assert it stays 0); the
79-character line buffer; a 15-block planner that holds the ``ok`` while full; G4 and M3/M4/M5
synchronisation; laser mode ($32=1: beam only in G1/G2/G3 with M3/M4 and S>0; M4 gives nothing at
rest); alarms, ``$X``, ``$H``, ``$C`` check mode, ``$$``, ``$I``, ``$G``, ``$#``, ``$N``, jogs,
feed hold/resume and soft reset (ALARM:3 when it interrupts motion, then the banner).

Simplified: constant speed per block (no acceleration), homing sets the position to 0, G38 probing
and G93 inverse time answer ``error:20`` (not modelled). Burns are recorded in millimetres of the
field frame and written to the ledger: a job starts at the first burning move after the controller
was idle with the laser off and ends at ``M5``/``M2``/``M30`` (complete) or at a reset, alarm,
disconnect or stall (incomplete).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from markstation.devices.grbl.codec import DOT_MOVE_MM, Geometry, WordError, fmt, split_words
from markstation.devices.sim.faults import Fault
from markstation.devices.sim.ledger import Ledger
from markstation.devices.sim.timing import INSTANT, scaled
from markstation.job.ir import Point

log = logging.getLogger(__name__)

FAULT_KINDS = ("disconnect", "reset", "alarm", "stall")
VERSION = "1.1h"
BUILD = "20190830"
BANNER = f"Grbl {VERSION} ['$' for help]"
HELP = "[HLP:$$ $# $G $I $N $x=val $Nx=line $J=line $SLP $C $X $H ~ ! ? ctrl-x]"
RX_BUFFER = 128
#: returned by a command that already wrote its own reply (or none, as after an alarm)
HANDLED = -1
PLANNER_BLOCKS = 15
LINE_CHARS = 79

#: GRBL 1.1h generic defaults ($N -> value)
DEFAULT_SETTINGS: dict[int, float] = {
    0: 10, 1: 25, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0, 10: 1, 11: 0.010, 12: 0.002, 13: 0,
    20: 0, 21: 0, 22: 0, 23: 0, 24: 25.0, 25: 500.0, 26: 250, 27: 1.0,
    30: 1000, 31: 0, 32: 0,
    100: 250.0, 101: 250.0, 102: 250.0, 110: 500.0, 111: 500.0, 112: 500.0,
    120: 10.0, 121: 10.0, 122: 10.0, 130: 200.0, 131: 200.0, 132: 200.0,
}  # fmt: skip
#: settings printed without decimals by ``$$`` (integers and masks, and $30/$31 with 0 decimals)
_INT_SETTINGS = {0, 1, 2, 3, 4, 5, 6, 10, 13, 20, 21, 22, 23, 26, 30, 31, 32}
_BOOL_SETTINGS = {4, 5, 6, 13, 20, 21, 22, 32}

_MODAL_GROUPS: dict[str, int] = {
    # G non-modal (0), motion (1), plane (2), distance (3), arc distance (4), feed mode (5),
    # units (6), cutter comp (7), tool length (8), coordinate system (12), control mode (13)
    **{k: 0 for k in ("4", "10", "28", "28.1", "30", "30.1", "53", "92", "92.1")},
    **{k: 1 for k in ("0", "1", "2", "3", "38.2", "38.3", "38.4", "38.5", "80")},
    **{k: 2 for k in ("17", "18", "19")},
    "90": 3, "91": 3, "91.1": 4, "93": 5, "94": 5, "20": 6, "21": 6, "40": 7,
    "43.1": 8, "49": 8, **{str(n): 12 for n in range(54, 60)}, "61": 13,
}  # fmt: skip
_M_GROUPS = {0: 4, 1: 4, 2: 4, 30: 4, 3: 7, 4: 7, 5: 7, 8: 8, 9: 8}
_VALUE_WORDS = set("FIJKLNPRSTXYZ")


def _gkey(value: float) -> str:
    return fmt(value, 1)


@dataclass
class Block:
    """One planned straight move in machine coordinates (mm)."""

    start: tuple[float, float, float]
    end: tuple[float, float, float]
    feed_mm_min: float
    rapid: bool
    #: effective S while this block runs (0 = beam off)
    burn_s: float
    jog: bool = False
    queued_at: float = 0.0

    def length(self) -> float:
        return math.dist(self.start, self.end)

    def at(self, frac: float) -> tuple[float, float, float]:
        f = min(1.0, max(0.0, frac))
        s, e = self.start, self.end
        return (s[0] + (e[0] - s[0]) * f, s[1] + (e[1] - s[1]) * f, s[2] + (e[2] - s[2]) * f)


Step = tuple[str, object]


@dataclass
class Pending:
    """A line that waits before its reply: planner room, a sync (motion drained), a dwell."""

    steps: list[Step]
    reply: bool = True


def _v3(seq: list[float] | tuple[float, ...]) -> tuple[float, float, float]:
    return (float(seq[0]), float(seq[1]), float(seq[2]))


@dataclass
class Modal:
    """The G-code parser state that survives between lines (reset by a soft reset)."""

    motion: str = "0"
    plane: str = "17"
    absolute: bool = True
    inches: bool = False
    coord: int = 0  # 0 = G54
    feed: float = 0.0  # mm/min
    s: float = 0.0
    spindle: str = "M5"
    coolant: set[str] = field(default_factory=set)
    tool: int = 0
    tlo: float = 0.0


class GrblSim:
    """A GRBL 1.1h laser controller model; see the module docstring."""

    def __init__(
        self,
        geometry: Geometry,
        *,
        speed: float = INSTANT,
        ledger: Ledger | None = None,
        fault: Fault | None = None,
        settings: Mapping[int, float] | None = None,
        line_time_s: float = 0.0,
        output: Callable[[bytes], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.geometry = geometry
        self.speed = speed
        self.ledger = ledger
        self.fault = fault
        self.line_time_s = line_time_s
        self._output = output or (lambda data: None)
        self._clock = clock
        self.settings: dict[int, float] = dict(DEFAULT_SETTINGS)
        # a correctly set-up marker for this machine profile, then the caller's overrides
        # (max rates of 12000 mm/min = 200 mm/s, the grbl-marker profile's speed limit)
        self.settings.update(
            {
                30: geometry.max_s,
                32: 1,
                110: 12000.0,
                111: 12000.0,
                120: 1000.0,
                121: 1000.0,
                130: geometry.width_mm,
                131: geometry.height_mm,
            }
        )
        if settings:
            self.settings.update(settings)
        self.startup_lines: dict[int, str] = {0: "", 1: ""}
        self.offsets: dict[int, list[float]] = {n: [0.0, 0.0, 0.0] for n in range(6)}
        self.stored = {28: [0.0, 0.0, 0.0], 30: [0.0, 0.0, 0.0]}
        #: bytes lost because the receive ring was full (the real controller drops them silently)
        self.overflow_bytes = 0
        #: the fullest the receive ring has been (bytes): shows how far a sender streams ahead
        self.max_ring_bytes = 0
        #: the highest S that burned (after override and the $30 clamp)
        self.max_burn_s = 0.0
        #: G-code lines taken from the ring so far (fault=KIND@N counts these; `$` lines excluded)
        self.gcode_lines = 0
        #: every line taken from the ring, any kind
        self.lines_received = 0
        self.disconnected = False
        self.stalled = False
        self.resets = 0
        self.alarms: list[int] = []
        self.errors: list[tuple[str, int]] = []
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stop = False
        self._outbox: list[bytes] = []
        self._inbound: deque[tuple[float, float, bytes]] = deque()
        self._booted = False
        self._power_up()

    # --- life cycle ------------------------------------------------------------------------------

    def _power_up(self) -> None:
        self.pos = [0.0, 0.0, 0.0]
        self.modal = Modal()
        self.g92 = [0.0, 0.0, 0.0]
        self.ring: deque[int] = deque()
        self.line = bytearray()
        self._line_overflow = False
        self._comment: str | None = None
        self.planner: deque[Block] = deque()
        self._cur: Block | None = None
        self._cur_t0 = 0.0
        self._cur_frac0 = 0.0
        self._cur_dur = 0.0
        self._motion_free_at = 0.0
        self._pending: Pending | None = None
        self._busy_until = 0.0
        self.hold = False
        self.door = False
        self.check_mode = False
        self.sleeping = False
        self.critical = False
        # 0 = locked at power-up because homing is enabled (no ALARM:N is printed for it)
        self.alarm: int | None = 0 if self.settings[22] else None
        self.overrides = [100, 100, 100]
        self._report_count = 0
        self._wco_due = True
        self._ov_due = True
        self._strokes: list[list[Point]] = []  # machine mm, closed strokes of the current job
        self._stroke: list[Point] | None = None
        self.all_strokes: list[list[Point]] = []  # machine mm, every stroke since creation
        self._job: int | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="grbl-sim", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Power off: the thread ends; an open ledger job ends incomplete."""
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._cv:
            self._interrupt_motion(self._clock())
            self._end_job(complete=False)

    # --- host side -------------------------------------------------------------------------------

    def feed(self, data: bytes, *, start_at: float | None = None, byte_time: float = 0.0) -> None:
        """Bytes reach the controller's UART: byte k at ``start_at + (k+1)·byte_time``."""
        if not data:
            return
        with self._cv:
            t = self._clock() if start_at is None else start_at
            self._inbound.append((t, byte_time, bytes(data)))
            self._cv.notify_all()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Test helper: wait until nothing is queued, moving or unparsed."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while time.monotonic() < deadline:
                if (
                    not self._inbound
                    and not self.ring
                    and self._cur is None
                    and not self.planner
                    and self._pending is None
                ):
                    return True
                self._cv.wait(0.01)
        return False

    def burns(self) -> list[list[Point]]:
        """Every stroke burned since the simulator started, in mm of the field frame."""
        with self._cv:
            strokes = [*self.all_strokes]
            if self._stroke:
                strokes.append(list(self._stroke))
            return [self._to_field(s) for s in strokes]

    def state_text(self) -> str:
        with self._cv:
            return self._state_text()

    # --- the controller thread -------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cv:
                if self._stop:
                    return
                now = self._clock()
                try:
                    self._step(now)
                except Exception:  # a model bug must not hang the host: report and halt
                    log.exception("simulated GRBL crashed")
                    self.stalled = True
                wake = self._next_wake(now)
                out, self._outbox = self._outbox, []
                if not out:
                    self._cv.wait(None if wake is None else max(0.0, wake - now))
            if out:
                self._output(b"".join(out))

    def _emit(self, text: str) -> None:
        if not (self.disconnected or self.stalled):
            self._outbox.append(text.encode("ascii") + b"\r\n")

    def _next_wake(self, now: float) -> float | None:
        times: list[float] = []
        if self._inbound:
            t0, bt, _data = self._inbound[0]
            times.append(t0 + bt)
        if self._cur is not None and not self.hold:
            times.append(self._cur_t0 + self._cur_dur * (1 - self._cur_frac0))
        if self._busy_until > now:
            times.append(self._busy_until)
        if not times:
            return None
        return min(times)

    def _step(self, now: float) -> None:
        self._deliver(now)
        if self.stalled or self.disconnected:
            return
        self._advance(now)
        self._protocol(now)
        self._advance(now)
        self._check_job_end()

    # --- UART and real-time bytes ----------------------------------------------------------------

    def _deliver(self, now: float) -> None:
        while self._inbound:
            t0, bt, data = self._inbound[0]
            if bt > 0:
                n = min(len(data), int((now - t0) / bt + 1e-9))
            else:
                n = len(data) if now >= t0 else 0
            if n <= 0:
                return
            for k in range(n):
                self._on_byte(data[k], t0 + (k + 1) * bt)
            if n == len(data):
                self._inbound.popleft()
            else:
                self._inbound[0] = (t0 + n * bt, bt, data[n:])

    def _on_byte(self, b: int, t: float) -> None:
        if self.disconnected or self.stalled:
            return
        if not self._booted:
            # the host's open() flushed anything sent earlier: greet on its first byte
            self._booted = True
            if b != 0x18:
                self._banner()
        if b == 0x18:
            self._advance(t)
            self._soft_reset(t)
        elif b == 0x3F:  # ?
            self._advance(t)
            if not (self.critical or self.sleeping):
                self._emit(self._status())
        elif b == 0x21:  # !
            self._advance(t)
            self._feed_hold(t)
        elif b == 0x7E:  # ~
            self._advance(t)
            self._cycle_start(t)
        elif b == 0x84:
            self._advance(t)
            if not self.door:
                self.door = True
                self._feed_hold(t)
                self._emit("[MSG:Check Door]")
        elif b == 0x85:
            self._advance(t)
            self._jog_cancel(t)
        elif 0x90 <= b <= 0x9D:
            self._override(b)
        elif b >= 0x80:
            pass  # other extended bytes: discarded, as on the real controller
        elif len(self.ring) >= RX_BUFFER:
            self.overflow_bytes += 1
        else:
            self.ring.append(b)
            self.max_ring_bytes = max(self.max_ring_bytes, len(self.ring))

    def _override(self, b: int) -> None:
        feed, rapid, spindle = self.overrides
        if b == 0x90:
            feed = 100
        elif b in (0x91, 0x92, 0x93, 0x94):
            feed += {0x91: 10, 0x92: -10, 0x93: 1, 0x94: -1}[b]
        elif b == 0x95:
            rapid = 100
        elif b == 0x96:
            rapid = 50
        elif b == 0x97:
            rapid = 25
        elif b == 0x99:
            spindle = 100
        elif b in (0x9A, 0x9B, 0x9C, 0x9D):
            spindle += {0x9A: 10, 0x9B: -10, 0x9C: 1, 0x9D: -1}[b]
        new = [min(200, max(10, feed)), rapid, min(200, max(10, spindle))]
        if new != self.overrides:
            self.overrides = new
            self._ov_due = True

    def _moving(self) -> bool:
        return self._cur is not None or bool(self.planner)

    def _feed_hold(self, t: float) -> None:
        if self.alarm is not None or self.sleeping or self.hold:
            return
        self._interrupt_motion(t)  # decelerates at once in this model: Hold:0 right away
        self.hold = True

    def _cycle_start(self, t: float) -> None:
        if not self.hold:
            return
        if self.door:
            self.door = False
        self.hold = False
        if self._cur is not None:
            self._cur_t0 = t

    def _jog_cancel(self, t: float) -> None:
        if self._cur is not None and self._cur.jog:
            self._interrupt_motion(t)
            self.pos = list(self._cur.at(self._cur_frac0))
            self._cur = None
            self._motion_free_at = t
            self.planner = deque(b for b in self.planner if not b.jog)

    # --- motion ------------------------------------------------------------------------------------

    def _duration(self, block: Block) -> float:
        pct = self.overrides[1] if block.rapid else self.overrides[0]
        rate = block.feed_mm_min * pct / 100.0 / 60.0
        if rate <= 0:
            return 0.0
        return scaled(block.length() / rate, self.speed)

    def _advance(self, now: float) -> None:
        if self.hold or self.critical:
            return
        while True:
            if self._cur is None:
                if not self.planner:
                    return
                block = self.planner.popleft()
                self._cur = block
                self._cur_t0 = max(self._motion_free_at, block.queued_at)
                self._cur_frac0 = 0.0
                self._cur_dur = self._duration(block)
                if block.burn_s > 0:
                    self._open_job()
            block = self._cur
            end = self._cur_t0 + self._cur_dur * (1 - self._cur_frac0)
            if end > now:
                return
            self._record(block, self._cur_frac0, 1.0)
            self.pos = list(block.end)
            self._motion_free_at = end
            self._cur = None

    def _current_frac(self, t: float) -> float:
        if self._cur is None:
            return 0.0
        if self.hold or self._cur_dur <= 0:
            return self._cur_frac0
        return min(1.0, self._cur_frac0 + (t - self._cur_t0) / self._cur_dur)

    def _interrupt_motion(self, t: float) -> None:
        """Stop the running block where it is now (burn recorded up to here)."""
        if self._cur is None:
            self._close_stroke()
            return
        frac = self._current_frac(t)
        self._record(self._cur, self._cur_frac0, frac)
        self._cur_frac0 = frac
        self._cur_t0 = t
        self.pos = list(self._cur.at(frac))
        self._close_stroke()

    def _machine_pos(self, t: float) -> tuple[float, float, float]:
        if self._cur is None:
            return (self.pos[0], self.pos[1], self.pos[2])
        return self._cur.at(self._current_frac(t))

    # --- burn record -------------------------------------------------------------------------------

    def _record(self, block: Block, f0: float, f1: float) -> None:
        if block.burn_s <= 0 or f1 <= f0:
            self._close_stroke()
            return
        self.max_burn_s = max(self.max_burn_s, block.burn_s)
        a, b = block.at(f0), block.at(f1)
        pa, pb = (a[0], a[1]), (b[0], b[1])
        if self._stroke and math.dist(self._stroke[-1], pa) < 1e-6:
            self._stroke.append(pb)
        else:
            self._close_stroke()
            self._stroke = [pa, pb]

    def _dot(self) -> None:
        self._close_stroke()
        self._open_job()
        dot = [(self.pos[0], self.pos[1])]
        self._strokes.append(dot)
        self.all_strokes.append(dot)

    def _close_stroke(self) -> None:
        if not self._stroke:
            self._stroke = None
            return
        stroke = self._stroke
        self._stroke = None
        length = sum(math.dist(stroke[i], stroke[i + 1]) for i in range(len(stroke) - 1))
        if length <= DOT_MOVE_MM * 1.5:  # a dot marked as a tiny move (see codec) is a dot
            xs = [p[0] for p in stroke]
            ys = [p[1] for p in stroke]
            stroke = [((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2)]
        self._strokes.append(stroke)
        self.all_strokes.append(stroke)

    def _to_field(self, stroke: list[Point]) -> list[Point]:
        return [self.geometry.to_field(x, y) for x, y in stroke]

    def _open_job(self) -> None:
        if self._job is not None:
            return
        self._strokes = []
        self._job = self.ledger.start() if self.ledger is not None else 0

    def _end_job(self, *, complete: bool) -> None:
        self._close_stroke()
        if self._job is None:
            return
        job, self._job = self._job, None
        if self.ledger is not None:
            self.ledger.end(
                job, complete=complete, polylines=[self._to_field(s) for s in self._strokes]
            )
        self._strokes = []

    def _check_job_end(self) -> None:
        if (
            self._job is not None
            and self.modal.spindle == "M5"
            and not self._moving()
            and self._pending is None
        ):
            self._end_job(complete=True)

    # --- resets and alarms -------------------------------------------------------------------------

    def _banner(self) -> None:
        self._outbox.append(b"\r\n")
        self._emit(BANNER)
        if self.alarm is not None:
            self._emit("[MSG:'$H'|'$X' to unlock]")

    def _clear_buffers(self) -> None:
        self.planner.clear()
        self._cur = None
        self.ring.clear()
        self.line.clear()
        self._line_overflow = False
        self._comment = None
        self._pending = None
        self._busy_until = 0.0
        self.hold = False
        self.door = False

    def _soft_reset(self, t: float) -> None:
        self.resets += 1
        moving = self._cur is not None and not self.hold
        self._interrupt_motion(t)
        self.pos = list(self._machine_pos(t))
        self._end_job(complete=False)
        self._clear_buffers()
        self._motion_free_at = t
        self.modal = Modal()
        self.g92 = [0.0, 0.0, 0.0]
        self.overrides = [100, 100, 100]
        self._wco_due = self._ov_due = True
        if self.check_mode:
            self.check_mode = False
            moving = False
        if self.sleeping:
            self.sleeping = False
            self.alarm = self.alarm or 3
        self.critical = False
        if moving:
            self.alarm = 3
            self.alarms.append(3)
            self._emit("ALARM:3")
        self._banner()
        if self.alarm is None:
            self._run_startup_lines(t)

    def _raise_alarm(self, code: int, t: float, *, critical: bool) -> None:
        self._interrupt_motion(t)
        self.pos = list(self._machine_pos(t))
        self._clear_buffers()
        self._cur = None
        self._motion_free_at = t
        self._end_job(complete=False)
        self.alarm = code
        self.alarms.append(code)
        self.critical = critical
        self._emit(f"ALARM:{code}")
        if critical:
            self._emit("[MSG:Reset to continue]")

    def _run_startup_lines(self, t: float) -> None:
        for n in (0, 1):
            text = self.startup_lines.get(n, "")
            if text:
                err = self._gcode(text, t)
                if self._pending is not None:
                    self._pending.reply = False
                self._emit(f">{text}:ok" if err is None else f">{text}:error:{err}")

    def _apply_fault(self, t: float) -> bool:
        """Fire the configured fault at G-code line N; True when the line must not be executed."""
        fault = self.fault
        if fault is None or self.gcode_lines != fault.at:
            return False
        log.info("simulated GRBL: fault %s at line %d", fault.kind, fault.at)
        if fault.kind == "alarm":
            self._raise_alarm(1, t, critical=True)  # hard limit
        elif fault.kind == "reset":
            # the controller rebooted by itself (brown-out, watchdog): everything in flight is lost
            self._interrupt_motion(t)
            self._end_job(complete=False)
            self._clear_buffers()
            self._motion_free_at = t
            self.modal = Modal()
            self.resets += 1
            self._banner()
        elif fault.kind == "disconnect":
            self._interrupt_motion(t)
            self._end_job(complete=False)
            self._clear_buffers()
            self.disconnected = True
        elif fault.kind == "stall":
            self._interrupt_motion(t)
            self.stalled = True
        return True

    # --- the protocol main loop --------------------------------------------------------------------

    def _protocol(self, now: float) -> None:
        while not (self.hold or self.critical or self.sleeping or self.stalled):
            if self.disconnected or self._busy_until > now:
                return
            if self._pending is not None and not self._resume_pending(now):
                return
            taken = self._take_line()
            if taken is None:
                return
            text, overflow = taken
            self.lines_received += 1
            if not text.startswith("$"):
                self.gcode_lines += 1
                if self._apply_fault(now):
                    return
            self._busy_until = now + self.line_time_s
            if overflow:
                err: int | None = 11
            elif text == "":
                err = None
            elif text.startswith("$"):
                err = self._system_command(text, now)
            elif self.alarm is not None or self._jogging():
                err = 9
            else:
                err = self._gcode(text, now)
            if err == HANDLED:
                continue
            if err is not None:
                self._pending = None
                self._reply(text, err)
            elif self._pending is None:
                self._reply(text, None)
            else:
                self._resume_pending(now)

    def _jogging(self) -> bool:
        return (self._cur is not None and self._cur.jog) or any(b.jog for b in self.planner)

    def _take_line(self) -> tuple[str, bool] | None:
        """Move bytes from the ring into the line buffer, GRBL's way; (line, too long) or None."""
        while self.ring:
            c = self.ring.popleft()
            if c in (0x0A, 0x0D):
                text = self.line.decode("ascii")
                overflow = self._line_overflow
                self.line.clear()
                self._line_overflow = False
                self._comment = None
                return text, overflow
            ch = chr(c)
            if self._comment == "(":
                if ch == ")":
                    self._comment = None
                continue
            if self._comment == ";":
                continue
            if c <= 0x20 or ch in "/%":
                continue
            if ch == "(":
                self._comment = "("
            elif ch == ";":
                self._comment = ";"
            elif len(self.line) >= LINE_CHARS:
                self._line_overflow = True
            else:
                self.line.append(ord(ch.upper()))
        return None

    def _reply(self, text: str, err: int | None) -> None:
        if err is None:
            self._emit("ok")
        else:
            self.errors.append((text, err))
            self._emit(f"error:{err}")

    def _resume_pending(self, now: float) -> bool:
        """Continue a line that waits (planner full, sync, dwell); True once it is done."""
        pending = self._pending
        assert pending is not None
        while pending.steps:
            kind, data = pending.steps[0]
            if kind == "plan":
                assert isinstance(data, list)
                while data and len(self.planner) + (self._cur is not None) < PLANNER_BLOCKS:
                    block = data.pop(0)
                    block.queued_at = now
                    self.planner.append(block)
                    self._advance(now)
                if data:
                    return False
            elif kind == "sync":
                if self._moving():
                    return False
                assert callable(data)
                data(now)
            elif kind == "dwell":
                assert isinstance(data, float)
                if now < data:
                    self._busy_until = data
                    return False
            pending.steps.pop(0)
        self._pending = None
        if pending.reply:
            self._emit("ok")
        return True

    # --- $ commands ----------------------------------------------------------------------------------

    def _idle_or_alarm(self) -> bool:
        if self.alarm is not None:
            return True
        return not (self._moving() or self.hold or self.check_mode)

    def _system_command(self, text: str, now: float) -> int | None:
        if text == "$":
            self._emit(HELP)
            return None
        key = text[1]
        if key == "J":
            if self.alarm is not None or self.hold or (self._moving() and not self._jogging()):
                return 8
            if text[2:3] != "=":
                return 3
            return self._jog(text[3:], now)
        if key in "$GCX":
            if len(text) != 2:
                return 3
            if key == "$":
                if self._moving() or self.hold:
                    return 8
                for n in sorted(self.settings):
                    self._emit(f"${n}={self._setting_text(n)}")
            elif key == "G":
                self._emit(self._gc_report())
            elif key == "C":
                if self.check_mode:
                    self._emit("[MSG:Disabled]")
                    self._emit("ok")
                    self.check_mode = False
                    self._soft_reset(now)
                    return HANDLED
                if self.alarm is not None or self._moving() or self.hold:
                    return 8
                self.check_mode = True
                self._emit("[MSG:Enabled]")
            elif key == "X" and self.alarm is not None:
                if self.door:
                    return 13
                self.critical = False
                self._emit("[MSG:Caution: Unlocked]")
                self.alarm = None
            return None
        if not self._idle_or_alarm():
            return 8
        if key == "#":
            if len(text) != 2:
                return 3
            for n in range(6):
                self._emit(f"[G{54 + n}:{self._triple(self.offsets[n])}]")
            self._emit(f"[G28:{self._triple(self.stored[28])}]")
            self._emit(f"[G30:{self._triple(self.stored[30])}]")
            self._emit(f"[G92:{self._triple(self.g92)}]")
            self._emit(f"[TLO:{self.modal.tlo:.3f}]")
            self._emit("[PRB:0.000,0.000,0.000:0]")
            return None
        if key == "H":
            if not self.settings[22]:
                return 5
            if len(text) != 2:
                return 3  # single-axis homing is not in this build
            self.pos = [0.0, 0.0, 0.0]
            self._motion_free_at = now
            self.alarm = None
            self._run_startup_lines(now)
            return None
        if key == "S":
            if text != "$SLP":
                return 3
            self._end_job(complete=False)
            self._clear_buffers()
            self.sleeping = True
            self._emit("[MSG:Sleeping]")
            return None
        if key == "I":
            if len(text) == 2:
                self._emit(f"[VER:{VERSION}.{BUILD}:]")
                self._emit(f"[OPT:V,{PLANNER_BLOCKS},{RX_BUFFER}]")
                return None
            return None if text[2] == "=" else 3
        if key == "R":
            if text[:5] != "$RST=" or len(text) != 6 or text[5] not in "$#*":
                return 3
            if text[5] in "$*":
                self.settings = dict(DEFAULT_SETTINGS)
            if text[5] in "#*":
                self.offsets = {n: [0.0, 0.0, 0.0] for n in range(6)}
            self._emit("[MSG:Restoring defaults]")
            self._emit("ok")
            self._soft_reset(now)
            return HANDLED
        if key == "N":
            if len(text) == 2:
                for n in (0, 1):
                    self._emit(f"$N{n}={self.startup_lines.get(n, '')}")
                return None
            num, sep, rest = text[2:].partition("=")
            if not sep or num not in ("0", "1"):
                return 3
            if rest:
                err = self._gcode(rest, now)
                if err is not None:
                    return err
            self.startup_lines[int(num)] = rest
            return None
        return self._store_setting(text[1:])

    def _store_setting(self, body: str) -> int | None:
        num, sep, value = body.partition("=")
        try:
            n = float(num)
        except ValueError:
            return 2
        if not sep:
            return 3
        try:
            v = float(value)
        except ValueError:
            return 2
        if n != int(n) or int(n) not in DEFAULT_SETTINGS:
            return 3
        key = int(n)
        if v < 0:
            return 4
        if key == 0 and v < 3:
            return 6
        if key == 20 and v and not self.settings[22]:
            return 10
        if key in _BOOL_SETTINGS:
            v = 1.0 if v else 0.0
        elif key in _INT_SETTINGS:
            v = float(int(v))
        self.settings[key] = v
        return None

    def _setting_text(self, n: int) -> str:
        v = self.settings[n]
        return str(int(v)) if n in _INT_SETTINGS else f"{v:.3f}"

    def _triple(self, v: list[float]) -> str:
        return ",".join(f"{x:.3f}" for x in v)

    def _gc_report(self) -> str:
        m = self.modal
        words = [
            f"G{m.motion}",
            f"G{54 + m.coord}",
            f"G{m.plane}",
            "G20" if m.inches else "G21",
            "G90" if m.absolute else "G91",
            "G94",
            m.spindle,
            "M8" if "M8" in m.coolant else "M9",
            f"T{m.tool}",
            f"F{fmt(m.feed / 25.4 if m.inches else m.feed, 0)}",
            f"S{fmt(m.s, 0)}",
        ]
        return f"[GC:{' '.join(words)}]"

    # --- status reports ------------------------------------------------------------------------------

    def _state_text(self) -> str:
        if self.sleeping:
            return "Sleep"
        if self.alarm is not None:
            return "Alarm"
        if self.door:
            return "Door:0"
        if self.hold:
            return "Hold:0"
        if self._cur is not None and self._cur.jog:
            return "Jog"
        if self._moving():
            return "Run"
        if self.check_mode:
            return "Check"
        return "Idle"

    def _wco(self) -> list[float]:
        off = self.offsets[self.modal.coord]
        return [off[i] + self.g92[i] + (self.modal.tlo if i == 2 else 0.0) for i in range(3)]

    def _status(self) -> str:
        t = self._clock()
        mpos = self._machine_pos(t)
        wco = self._wco()
        mask = int(self.settings[10])
        fields = [self._state_text()]
        if mask & 1:
            fields.append("MPos:" + self._triple(list(mpos)))
        else:
            fields.append("WPos:" + self._triple([mpos[i] - wco[i] for i in range(3)]))
        if mask & 2:
            used = len(self.planner) + (self._cur is not None)
            fields.append(f"Bf:{PLANNER_BLOCKS - used},{RX_BUFFER - len(self.ring)}")
        running = self._cur is not None and not self.hold
        feed = 0.0
        power = 0.0
        if running and self._cur is not None:
            pct = self.overrides[1] if self._cur.rapid else self.overrides[0]
            feed = self._cur.feed_mm_min * pct / 100
            power = self._cur.burn_s
        elif self.modal.spindle == "M3" and self.modal.motion in ("1", "2", "3"):
            power = self._laser_s()  # M3 with G1 modal keeps the output on at rest
        fields.append(f"FS:{fmt(feed, 0)},{fmt(power, 0)}")
        if self.door:
            fields.append("Pn:D")
        busy = self._moving()
        self._report_count += 1
        if self._wco_due or self._report_count % (30 if busy else 10) == 0:
            fields.append("WCO:" + self._triple(wco))
            self._wco_due = False
        elif self._ov_due or self._report_count % (20 if busy else 10) == 1:
            fields.append("Ov:" + ",".join(str(v) for v in self.overrides))
            acc = {"M3": "S", "M4": "C"}.get(self.modal.spindle, "")
            acc += "F" if "M8" in self.modal.coolant else ""
            if acc:
                fields.append("A:" + acc)
            self._ov_due = False
        return "<" + "|".join(fields) + ">"

    # --- G-code --------------------------------------------------------------------------------------

    def _laser_s(self) -> float:
        """The S the output would carry now (0 when the spindle/laser is off)."""
        m = self.modal
        if m.spindle == "M5" or m.s <= 0 or self.check_mode:
            return 0.0
        return min(m.s * self.overrides[2] / 100, self.settings[30])

    def _burn_for(self, motion: str, *, jog: bool = False) -> float:
        s = self._laser_s()
        if s <= 0:
            return 0.0
        if not self.settings[32]:
            return s  # not a laser build: the output is on whenever the spindle runs
        return s if (motion in ("1", "2", "3") or jog) else 0.0

    def _to_mm(self, value: float) -> float:
        return value * 25.4 if self.modal.inches else value

    def _gcode(self, text: str, now: float) -> int | None:
        """Execute one G-code line; an error code, or None (then maybe ``self._pending``)."""
        try:
            words = split_words(text)
        except WordError as exc:
            return exc.code
        gs: dict[int, str] = {}
        ms: dict[int, int] = {}
        values: dict[str, float] = {}
        for letter, value, _ in words:
            if letter == "G":
                key = _gkey(value)
                if key not in _MODAL_GROUPS:
                    return 23 if value != int(value) and _gkey(int(value)) in _MODAL_GROUPS else 20
                group = _MODAL_GROUPS[key]
                if group in gs:
                    return 21
                gs[group] = key
            elif letter == "M":
                if value != int(value):
                    return 23
                code = int(value)
                if code not in _M_GROUPS:
                    return 20
                if _M_GROUPS[code] in ms:
                    return 21
                ms[_M_GROUPS[code]] = code
            elif letter in _VALUE_WORDS:
                if letter in values:
                    return 25
                if letter in "FNPST" and value < 0:
                    return 4
                values[letter] = value
            else:
                return 20
        if "N" in values and not (0 <= values["N"] <= 9999999):
            return 27
        if "T" in values and (values["T"] != int(values["T"]) or values["T"] > 255):
            return 23 if values["T"] != int(values["T"]) else 38
        nonmodal = gs.get(0)
        motion_word = gs.get(1)
        if nonmodal in ("38.2", "38.3", "38.4", "38.5") or motion_word in (
            "38.2",
            "38.3",
            "38.4",
            "38.5",
        ):
            return 20  # probing: not modelled
        if gs.get(5) == "93":
            return 20  # inverse-time feed: not modelled
        axis_words = {a for a in "XYZ" if a in values}
        uses_axes = nonmodal in ("10", "28", "30", "92")
        if uses_axes and motion_word is not None and axis_words:
            return 24
        m = self.modal
        # resolve the block against the modal state (nothing is committed until it is valid)
        inches = {"20": True, "21": False}.get(gs.get(6, ""), m.inches)
        unit = 25.4 if inches else 1.0
        absolute = {"90": True, "91": False}.get(gs.get(3, ""), m.absolute)
        plane = gs.get(2, m.plane)
        motion = motion_word if motion_word is not None else m.motion
        feed = values["F"] * unit if "F" in values else m.feed
        used = {"N", "F", "S", "T"}
        err: int | None = None
        if nonmodal == "4":
            if "P" not in values:
                return 28
            used.add("P")
        if nonmodal == "10":
            if "L" not in values or "P" not in values:
                return 28
            if values["L"] not in (2, 20):
                return 20
            if values["P"] != int(values["P"]) or values["P"] > 6:
                return 29
            if not axis_words:
                return 26
            used |= {"L", "P"}
        if nonmodal == "92" and not axis_words:
            return 26
        if nonmodal == "53" and motion not in ("0", "1"):
            return 30
        coord = int(gs[12]) - 54 if 12 in gs else m.coord
        wco_now = [
            self.offsets[coord][i] + self.g92[i] + (m.tlo if i == 2 else 0.0) for i in range(3)
        ]
        start = self._planned_end()
        target = list(start)
        if axis_words and not uses_axes:
            for i, a in enumerate("XYZ"):
                if a in values:
                    v = values[a] * unit
                    if nonmodal == "53":
                        target[i] = v
                    elif absolute:
                        target[i] = v + wco_now[i]
                    else:
                        target[i] = start[i] + v
        blocks: list[Block] = []
        motion_cmd = axis_words and not uses_axes
        if motion == "80":
            if axis_words:
                return 31
            motion_cmd = False
        elif motion_cmd or motion_word is not None:
            if motion != "0" and feed <= 0:
                return 22
            if motion in ("2", "3"):
                err = self._arc_check(values, plane, start, target, axis_words)
                if err is not None:
                    return err
                used |= {"I", "J", "K", "R"}
        leftover = set(values) - used - axis_words
        if leftover:
            return 36
        if "S" in values and values["S"] < 0:
            return 4
        # --- commit --------------------------------------------------------------------------------
        m.inches, m.absolute, m.plane, m.coord = inches, absolute, plane, coord
        if motion_word is not None:
            m.motion = motion_word
        if "F" in values:
            m.feed = feed
        if "T" in values:
            m.tool = int(values["T"])
        spindle_change = False
        if "S" in values:
            m.s = values["S"]
        if 7 in ms and f"M{ms[7]}" != m.spindle:
            # the planner carries the laser state with each block, so it changes here; the line
            # still waits for the motion before it (laser mode syncs on M3/M4/M5 changes)
            m.spindle = f"M{ms[7]}"
            spindle_change = True
        if 8 in ms:
            if ms[8] == 9:
                m.coolant.clear()
            else:
                m.coolant.add(f"M{ms[8]}")
        if gs.get(8) == "43.1":
            m.tlo = values.get("Z", 0.0) * unit
        elif gs.get(8) == "49":
            m.tlo = 0.0
        if nonmodal == "10":
            p = int(values["P"])
            idx = m.coord if p == 0 else p - 1
            for i, a in enumerate("XYZ"):
                if a in values:
                    v = values[a] * unit
                    if values["L"] == 2:
                        self.offsets[idx][i] = v
                    else:
                        self.offsets[idx][i] = start[i] - v - self.g92[i]
            self._wco_due = True
        elif nonmodal == "92":
            for i, a in enumerate("XYZ"):
                if a in values:
                    self.g92[i] = start[i] - self.offsets[coord][i] - values[a] * unit
            self._wco_due = True
        elif nonmodal == "92.1":
            self.g92 = [0.0, 0.0, 0.0]
            self._wco_due = True
        elif nonmodal in ("28.1", "30.1"):
            self.stored[int(float(nonmodal))] = list(start)
        elif nonmodal in ("28", "30"):
            via = list(start)
            for i, a in enumerate("XYZ"):
                if a in values:
                    via[i] = values[a] * unit + (wco_now[i] if absolute else start[i])
            home = self.stored[int(nonmodal)]
            rate = self._rapid_rate(start, home)
            blocks += [
                Block(_v3(start), _v3(via), rate, True, 0.0),
                Block(_v3(via), _v3(home), rate, True, 0.0),
            ]
        if motion_cmd and motion != "80" and not uses_axes:
            if self._soft_limit_hit(target):
                self._raise_alarm(2, now, critical=True)
                return HANDLED
            if motion == "0":
                rate = self._rapid_rate(start, target)
                burn = self._burn_for("0")
                blocks.append(Block(_v3(start), _v3(target), rate, True, burn))
            elif motion == "1":
                rate = self._clamp_feed(start, target, feed)
                blocks.append(Block(_v3(start), _v3(target), rate, False, self._burn_for("1")))
            else:
                blocks.extend(self._arc_blocks(values, plane, start, target, feed, unit, motion))
        if self.check_mode:
            blocks = []
        dwell = values.get("P", 0.0) if nonmodal == "4" else None
        steps: list[Step] = []
        if spindle_change or dwell is not None:

            def before_motion(t: float) -> None:
                if dwell is None or self.check_mode:
                    return
                if self._laser_s() > 0 and (
                    not self.settings[32] or (m.spindle == "M3" and m.motion in ("1", "2", "3"))
                ):
                    self._dot()  # the output is on at rest: the dwell burns a spot
                    self.max_burn_s = max(self.max_burn_s, self._laser_s())
                end = t + scaled(dwell, self.speed)
                if end > t and self._pending is not None:
                    self._pending.steps.insert(1, ("dwell", end))

            steps.append(("sync", before_motion))
        if blocks:
            steps.append(("plan", blocks))
        if ms.get(4) in (2, 30):

            def program_end(t: float) -> None:
                m.spindle = "M5"
                m.coolant.clear()
                m.motion, m.absolute, m.coord, m.plane = "1", True, 0, "17"
                self.g92 = [0.0, 0.0, 0.0]
                self._emit("[MSG:Pgm End]")

            steps.append(("sync", program_end))
        if steps:
            self._pending = Pending(steps)
        return None

    def _planned_end(self) -> list[float]:
        if self.planner:
            return list(self.planner[-1].end)
        if self._cur is not None:
            return list(self._cur.end)
        return list(self.pos)

    def _rapid_rate(
        self, a: list[float] | tuple[float, ...], b: list[float] | tuple[float, ...]
    ) -> float:
        return self._clamp_feed(a, b, math.inf)

    def _clamp_feed(
        self, a: list[float] | tuple[float, ...], b: list[float] | tuple[float, ...], feed: float
    ) -> float:
        length = math.dist(a, b)
        rate = feed
        if length <= 0:
            return min(rate, self.settings[110])
        for i in range(3):
            d = abs(b[i] - a[i])
            if d > 0:
                rate = min(rate, self.settings[110 + i] * length / d)
        return rate

    def _soft_limit_hit(self, target: list[float]) -> bool:
        if not self.settings[20]:
            return False
        return any(not (-self.settings[130 + i] <= target[i] <= 0) for i in range(3))

    def _plane_axes(self, plane: str) -> tuple[int, int, str]:
        return {"17": (0, 1, "IJ"), "18": (2, 0, "KI"), "19": (1, 2, "JK")}[plane]

    def _arc_check(
        self,
        values: dict[str, float],
        plane: str,
        start: list[float],
        target: list[float],
        axis_words: set[str],
    ) -> int | None:
        a0, a1, offs = self._plane_axes(plane)
        if not axis_words:
            return 26
        if "XYZ"[a0] not in axis_words and "XYZ"[a1] not in axis_words:
            return 32
        if "R" in values:
            if start[a0] == target[a0] and start[a1] == target[a1]:
                return 33
            x, y = target[a0] - start[a0], target[a1] - start[a1]
            r = self._to_mm(values["R"])
            if 4 * r * r - x * x - y * y < 0:
                return 34
            return None
        if offs[0] not in values and offs[1] not in values:
            return 35
        ci = start[a0] + self._to_mm(values.get(offs[0], 0.0))
        cj = start[a1] + self._to_mm(values.get(offs[1], 0.0))
        r0 = math.hypot(start[a0] - ci, start[a1] - cj)
        r1 = math.hypot(target[a0] - ci, target[a1] - cj)
        delta = abs(r1 - r0)
        if delta > 0.005 and (delta > 0.5 or delta > 0.001 * r0):
            return 33
        return None

    def _arc_blocks(
        self,
        values: dict[str, float],
        plane: str,
        start: list[float],
        target: list[float],
        feed: float,
        unit: float,
        motion: str,
    ) -> list[Block]:
        a0, a1, offs = self._plane_axes(plane)
        cw = motion == "2"
        if "R" in values:
            r = values["R"] * unit
            x, y = target[a0] - start[a0], target[a1] - start[a1]
            h = -math.sqrt(max(0.0, 4 * r * r - x * x - y * y)) / math.hypot(x, y)
            if not cw:
                h = -h
            if r < 0:
                h, r = -h, -r
            ci = start[a0] + 0.5 * (x - y * h)
            cj = start[a1] + 0.5 * (y + x * h)
        else:
            ci = start[a0] + values.get(offs[0], 0.0) * unit
            cj = start[a1] + values.get(offs[1], 0.0) * unit
            r = math.hypot(start[a0] - ci, start[a1] - cj)
        t0 = math.atan2(start[a1] - cj, start[a0] - ci)
        t1 = math.atan2(target[a1] - cj, target[a0] - ci)
        sweep = t1 - t0
        if cw and sweep >= -1e-9:
            sweep -= 2 * math.pi
        elif not cw and sweep <= 1e-9:
            sweep += 2 * math.pi
        tol = self.settings[12] or 0.002
        seg_angle = 2 * math.acos(max(-1.0, 1 - tol / r)) if r > tol else math.pi / 4
        n = max(1, math.ceil(abs(sweep) / max(seg_angle, 1e-3)))
        blocks: list[Block] = []
        prev = list(start)
        burn = self._burn_for(motion)
        for k in range(1, n + 1):
            if k == n:
                nxt = list(target)
            else:
                ang = t0 + sweep * k / n
                nxt = list(prev)
                nxt[a0] = ci + r * math.cos(ang)
                nxt[a1] = cj + r * math.sin(ang)
                lin = 3 - a0 - a1
                nxt[lin] = start[lin] + (target[lin] - start[lin]) * k / n
            rate = self._clamp_feed(prev, nxt, feed)
            blocks.append(Block(_v3(prev), _v3(nxt), rate, False, burn))
            prev = nxt
        return blocks

    def _jog(self, body: str, now: float) -> int | None:
        try:
            words = split_words(body)
        except WordError as exc:
            return exc.code
        values: dict[str, float] = {}
        inches, absolute, machine = self.modal.inches, self.modal.absolute, False
        for letter, value, _ in words:
            if letter == "G":
                key = _gkey(value)
                if key == "20":
                    inches = True
                elif key == "21":
                    inches = False
                elif key == "90":
                    absolute = True
                elif key == "91":
                    absolute = False
                elif key == "53":
                    machine = True
                else:
                    return 16
            elif letter in "XYZFN":
                if letter in values:
                    return 25
                values[letter] = value
            else:
                return 16
        if "F" not in values:
            return 22
        axes = [a for a in "XYZ" if a in values]
        if not axes:
            return 26
        unit = 25.4 if inches else 1.0
        start = self._planned_end()
        wco = self._wco()
        target = list(start)
        for i, a in enumerate("XYZ"):
            if a in values:
                v = values[a] * unit
                target[i] = v if machine else (v + wco[i] if absolute else start[i] + v)
        if self._soft_limit_hit(target):
            return 15
        rate = self._clamp_feed(start, target, values["F"] * unit)
        burn = self._burn_for("1", jog=True)
        if not self.check_mode:
            block = Block(_v3(start), _v3(target), rate, False, burn, jog=True)
            self._pending = Pending([("plan", [block])])
        return None


# --- building one from URL options --------------------------------------------------------------

#: options a ``sim://grbl`` URL may carry at the serial level (the driver adds ``machine``)
SIM_OPTIONS = ("timing", "ledger", "fault", "settings", "link", "machine")
#: the modelled USB-serial link for ``link=real``: one-way latency and per-line parse/plan time
LINK_LATENCY_S = 0.001
LINE_TIME_S = 0.0002


def parse_settings(text: str, where: str) -> dict[int, float]:
    """``32:0,30:255`` -> {32: 0.0, 30: 255.0}; ConfigError naming ``where`` otherwise."""
    from markstation.errors import ConfigError

    result: dict[int, float] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = item.partition(":")
        try:
            number = int(key.strip().lstrip("$"))
            result[number] = float(value)
        except ValueError:
            number = -1
        if not sep or number not in DEFAULT_SETTINGS:
            raise ConfigError(
                f"{where}: option 'settings={text}': expected N:V pairs such as 32:1,30:1000 "
                f"with N a GRBL 1.1 setting number"
            )
    return result


def sim_from_options(
    options: Mapping[str, str],
    where: str,
    *,
    output: Callable[[bytes], None] | None = None,
    machine: str | None = None,
) -> tuple[GrblSim, bool]:
    """A simulator configured from URL-style options; also whether the link is modelled (real).

    ``machine`` (or the ``machine`` option) names the machine profile whose geometry the burn
    record uses; default the protocol's default machine.
    """
    from markstation.devices.sim.faults import parse_fault
    from markstation.devices.sim.timing import parse_timing
    from markstation.errors import ConfigError
    from markstation.profiles import default_machine_for, load_machine

    name = options.get("machine") or machine
    profile = load_machine(name) if name else default_machine_for("grbl")
    if profile.protocol != "grbl":
        raise ConfigError(f"{where}: machine '{profile.name}' is not a GRBL machine")
    speed = parse_timing(options.get("timing", "instant"))
    fault = parse_fault(options["fault"], FAULT_KINDS) if options.get("fault") else None
    ledger = Ledger(options["ledger"]) if options.get("ledger") else None
    settings = parse_settings(options.get("settings", ""), where)
    link = options.get("link", "real")
    if link not in ("real", "ideal"):
        raise ConfigError(f"{where}: option 'link={link}': expected real or ideal")
    real = link == "real"
    sim = GrblSim(
        Geometry.from_machine(profile),
        speed=speed,
        ledger=ledger,
        fault=fault,
        settings=settings,
        line_time_s=LINE_TIME_S if real else 0.0,
        output=output,
    )
    return sim, real
