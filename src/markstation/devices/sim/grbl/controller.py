"""A simulated GRBL 1.1h laser controller: what a host sees on the serial line, and what it burns.

The model runs in its own thread, like the microcontroller. Bytes arrive through
:meth:`GrblController.feed` (optionally spaced in time like a UART) and replies leave through the
``output`` callback; the pyserial-compatible port (:mod:`.serial_handler`) and the pty server
(:mod:`.pty`) put a link in between.

Modelled, as on the real firmware: real-time bytes picked off on arrival (``?`` ``!`` ``~`` 0x18,
overrides, door, jog cancel — also inside comments); a 128-byte receive ring whose overflow is
*lost* (and counted in :attr:`GrblController.overflow_bytes`, so tests can assert it stays 0); the
79-character line buffer; a 15-block planner that holds the ``ok`` while full; G4 and M3/M4/M5
synchronisation; laser mode ($32=1: beam only in G1/G2/G3 with M3/M4 and S>0; M4 gives nothing at
rest); alarms, ``$X``, ``$H``, ``$C`` check mode, ``$$``, ``$I``, ``$G``, ``$#``, ``$N``, jogs,
feed hold/resume and soft reset (ALARM:3 when it interrupts motion, then the banner).

Motion time follows GRBL 1.1's planner (:mod:`markstation.devices.grbl.planner`, the model the
time estimate uses too): trapezoidal acceleration per axis ($120…), max rates ($110…), junction
deviation ($11), replanned over what the 15-block buffer holds when each block starts; the burn
position within a block is interpolated linearly in time. Homing sets the position to 0. This module
is the core (UART, line buffer, planner and motion, resets, alarms, faults); the interpreter is in
:mod:`.gcode`, the ``$`` commands in :mod:`.settings`, real-time bytes and status reports in
:mod:`.status`, the burn record in :mod:`.burn`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from markstation.devices.grbl.codec import Geometry
from markstation.devices.grbl.planner import Move, PlannerSettings, Vec, block_time
from markstation.devices.sim.faults import Fault
from markstation.devices.sim.grbl import status
from markstation.devices.sim.grbl.burn import BurnRecorder
from markstation.devices.sim.grbl.gcode import HANDLED, Block, Modal, Pending, execute
from markstation.devices.sim.grbl.settings import (
    PLANNER_BLOCKS,
    RX_BUFFER,
    VERSION,
    marker_settings,
    system_command,
)
from markstation.devices.sim.ledger import Ledger
from markstation.devices.sim.render import render_strokes
from markstation.devices.sim.timing import INSTANT, scaled
from markstation.job.ir import Point

if TYPE_CHECKING:
    from markstation.profiles import MaterialProfile

log = logging.getLogger(__name__)

BANNER = f"Grbl {VERSION} ['$' for help]"
LINE_CHARS = 79
SOFT_RESET = 0x18


class GrblController:
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
        self.fault = fault
        self.line_time_s = line_time_s
        self._output = output or (lambda data: None)
        self.clock = clock
        self.settings = marker_settings(geometry, dict(settings) if settings else None)
        self.burn = BurnRecorder(geometry, ledger)
        self.startup_lines: dict[int, str] = {0: "", 1: ""}
        self.offsets: dict[int, list[float]] = {n: [0.0, 0.0, 0.0] for n in range(6)}
        self.stored = {28: [0.0, 0.0, 0.0], 30: [0.0, 0.0, 0.0]}
        #: bytes lost because the receive ring was full (the real controller drops them silently)
        self.overflow_bytes = 0
        #: the fullest the receive ring has been (bytes): shows how far a sender streams ahead
        self.max_ring_bytes = 0
        #: G-code lines taken from the ring so far (fault=KIND@N counts these; `$` lines excluded)
        self.gcode_lines = 0
        #: every line taken from the ring, any kind
        self.lines_received = 0
        self.disconnected = False
        self.stalled = False
        #: ``ok`` replies still to be swallowed (fault ``lost-ok``)
        self.lose_oks = 0
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

    def _power_up(self) -> None:
        self.pos = [0.0, 0.0, 0.0]
        self.modal = Modal()
        self.g92 = [0.0, 0.0, 0.0]
        self.ring: deque[int] = deque()
        self.line = bytearray()
        self._line_overflow = False
        self._comment: str | None = None
        self.planner: deque[Block] = deque()
        self.cur: Block | None = None
        self.cur_t0 = 0.0
        self.cur_frac0 = 0.0
        self._cur_dur = 0.0
        self._exit_v = 0.0
        self._exit_unit: Vec | None = None
        #: simulated seconds of motion executed (planner-timed, all blocks), and when the first
        #: block of the current motion began / the last one ended (clock time)
        self.motion_s = 0.0
        self.first_motion_at: float | None = None
        self.last_motion_end = 0.0
        self.motion_free_at = 0.0
        self.pending: Pending | None = None
        self._busy_until = 0.0
        self.hold = False
        self.door = False
        self.check_mode = False
        self.sleeping = False
        self.critical = False
        # 0 = locked at power-up because homing is enabled (no ALARM:N is printed for it)
        self.alarm: int | None = 0 if self.settings[22] else None
        self.overrides = [100, 100, 100]
        self.report_count = 0
        self.wco_due = True
        self.ov_due = True

    # --- life cycle ------------------------------------------------------------------------------

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
            self.interrupt_motion(self.clock())
            self.burn.end_job(complete=False)

    # --- host side -------------------------------------------------------------------------------

    def feed(self, data: bytes, *, start_at: float | None = None, byte_time: float = 0.0) -> None:
        """Bytes reach the controller's UART: byte k at ``start_at + (k+1)·byte_time``."""
        if not data:
            return
        with self._cv:
            t = self.clock() if start_at is None else start_at
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
                    and self.cur is None
                    and not self.planner
                    and self.pending is None
                ):
                    return True
                self._cv.wait(0.01)
        return False

    def burns(self) -> list[list[Point]]:
        """Every stroke burned since the simulator started, in mm of the field frame."""
        with self._cv:
            return self.burn.burns()

    def render_png(
        self,
        path: str | Path,
        *,
        spot_mm: float,
        px_per_mm: float = 0,
        material: MaterialProfile | None = None,
    ) -> Path:
        """Draw every burned stroke into a PNG; returns the path.

        Strokes at ``spot_mm``; each dot as wide as the dot model makes it for the time the beam
        was on it (the dot move at its programmed feed, or the ``G4`` dwell) and its S as a share
        of ``$30``, on ``material`` (the job's, when the caller knows it; else the profile
        defaults, see :mod:`markstation.devices.sim.render`).
        """
        with self._cv:
            strokes = self.burn.burns()
            burned = self.burn.dots()
            max_s = self.settings[30]
        dots = [
            None if dot is None else (dot[0], 100.0 * dot[1] / max_s if max_s > 0 else None)
            for dot in burned
        ]
        return render_strokes(
            strokes, path, spot_mm=spot_mm, px_per_mm=px_per_mm, dots=dots, material=material
        )

    @property
    def max_burn_s(self) -> float:
        """The highest S that burned (after override and the $30 clamp)."""
        return self.burn.max_burn_s

    def state_text(self) -> str:
        with self._cv:
            return status.state_text(self)

    # --- the controller thread -------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cv:
                if self._stop:
                    return
                now = self.clock()
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

    def emit(self, text: str) -> None:
        if not (self.disconnected or self.stalled):
            self._outbox.append(text.encode("ascii") + b"\r\n")

    def _next_wake(self, now: float) -> float | None:
        times: list[float] = []
        if self._inbound:
            t0, bt, _data = self._inbound[0]
            times.append(t0 + bt)
        if self.cur is not None and not self.hold:
            times.append(self.cur_t0 + self._cur_dur * (1 - self.cur_frac0))
        if self._busy_until > now:
            times.append(self._busy_until)
        return min(times) if times else None

    def _step(self, now: float) -> None:
        self._deliver(now)
        if self.stalled or self.disconnected:
            return
        self._advance(now)
        self._protocol(now)
        self._advance(now)
        self._check_job_end()

    # --- UART ------------------------------------------------------------------------------------

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
            if b != SOFT_RESET:
                self._banner()
        realtime = status.REALTIME.get(b)
        if b == SOFT_RESET:
            self._advance(t)
            self.soft_reset(t)
        elif realtime is not None:
            self._advance(t)
            realtime(self, b, t)
        elif b in status.OVERRIDES:
            status.OVERRIDES[b](self, b, t)
        elif b >= 0x80:
            pass  # other extended bytes: discarded, as on the real controller
        elif len(self.ring) >= RX_BUFFER:
            self.overflow_bytes += 1
        else:
            self.ring.append(b)
            self.max_ring_bytes = max(self.max_ring_bytes, len(self.ring))

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

    # --- motion ----------------------------------------------------------------------------------

    def moving(self) -> bool:
        return self.cur is not None or bool(self.planner)

    def jogging(self) -> bool:
        return (self.cur is not None and self.cur.jog) or any(b.jog for b in self.planner)

    def idle_or_alarm(self) -> bool:
        if self.alarm is not None:
            return True
        return not (self.moving() or self.hold or self.check_mode)

    def _duration(self, block: Block) -> float:
        """Clock seconds of ``block``, from the planner model over what the buffer holds now."""
        pct = self.overrides[1] if block.rapid else self.overrides[0]
        if block.feed_mm_min <= 0 or block.length() <= 0:
            return 0.0
        seconds, self._exit_v, self._exit_unit = block_time(
            _move(block),
            (_move(b) for b in self.planner),
            self._exit_v,
            self._exit_unit,
            PlannerSettings.from_grbl(self.settings),
            override=pct / 100.0,
        )
        if not math.isfinite(seconds):
            return 0.0
        self.motion_s += seconds
        return scaled(seconds, self.speed)

    def _advance(self, now: float) -> None:
        if self.hold or self.critical:
            return
        while True:
            if self.cur is None:
                if not self.planner:
                    return
                block = self.planner.popleft()
                self.cur = block
                self.cur_t0 = max(self.motion_free_at, block.queued_at)
                self.cur_frac0 = 0.0
                if self.cur_t0 > self.motion_free_at:  # the buffer ran dry: it started from rest
                    self._exit_v, self._exit_unit = 0.0, None
                self._cur_dur = self._duration(block)
                if self.first_motion_at is None:
                    self.first_motion_at = self.cur_t0
                if block.burn_s > 0:
                    self.burn.open_job()
            block = self.cur
            end = self.cur_t0 + self._cur_dur * (1 - self.cur_frac0)
            if end > now:
                return
            self.burn.record(block, self.cur_frac0, 1.0)
            self.pos = list(block.end)
            self.motion_free_at = end
            self.last_motion_end = end
            self.cur = None

    def _current_frac(self, t: float) -> float:
        if self.cur is None:
            return 0.0
        if self.hold or self._cur_dur <= 0:
            return self.cur_frac0
        return min(1.0, self.cur_frac0 + (t - self.cur_t0) / self._cur_dur)

    def interrupt_motion(self, t: float) -> None:
        """Stop the running block where it is now (burn recorded up to here)."""
        if self.cur is None:
            self.burn.close_stroke()
            return
        frac = self._current_frac(t)
        self._exit_v, self._exit_unit = 0.0, None  # stopped (hold, reset, alarm): from rest again
        self.burn.record(self.cur, self.cur_frac0, frac)
        self.cur_frac0 = frac
        self.cur_t0 = t
        self.pos = list(self.cur.at(frac))
        self.burn.close_stroke()

    def machine_pos(self, t: float) -> tuple[float, float, float]:
        if self.cur is None:
            return (self.pos[0], self.pos[1], self.pos[2])
        return self.cur.at(self._current_frac(t))

    def wco(self) -> list[float]:
        off = self.offsets[self.modal.coord]
        return [off[i] + self.g92[i] + (self.modal.tlo if i == 2 else 0.0) for i in range(3)]

    def planned_end(self) -> list[float]:
        if self.planner:
            return list(self.planner[-1].end)
        if self.cur is not None:
            return list(self.cur.end)
        return list(self.pos)

    def rapid_rate(
        self, a: list[float] | tuple[float, ...], b: list[float] | tuple[float, ...]
    ) -> float:
        return self.clamp_feed(a, b, math.inf)

    def clamp_feed(
        self, a: list[float] | tuple[float, ...], b: list[float] | tuple[float, ...], feed: float
    ) -> float:
        """``feed`` limited by each axis's max rate ($110…$112)."""
        length = math.dist(a, b)
        rate = feed
        if length <= 0:
            return min(rate, self.settings[110])
        for i in range(3):
            d = abs(b[i] - a[i])
            if d > 0:
                rate = min(rate, self.settings[110 + i] * length / d)
        return rate

    def soft_limit_hit(self, target: list[float]) -> bool:
        if not self.settings[20]:
            return False
        return any(not (-self.settings[130 + i] <= target[i] <= 0) for i in range(3))

    # --- laser -----------------------------------------------------------------------------------

    def laser_s(self) -> float:
        """The S the output would carry now (0 when the spindle/laser is off)."""
        m = self.modal
        if m.spindle == "M5" or m.s <= 0 or self.check_mode:
            return 0.0
        return min(m.s * self.overrides[2] / 100, self.settings[30])

    # the name the driver tests have always used
    _laser_s = laser_s

    def burn_for(self, motion: str, *, jog: bool = False) -> float:
        s = self.laser_s()
        if s <= 0:
            return 0.0
        if not self.settings[32]:
            return s  # not a laser build: the output is on whenever the spindle runs
        return s if (motion in ("1", "2", "3") or jog) else 0.0

    def _check_job_end(self) -> None:
        if (
            self.burn.job_open
            and self.modal.spindle == "M5"
            and not self.moving()
            and self.pending is None
        ):
            self.burn.end_job(complete=True)

    # --- resets, alarms, faults ------------------------------------------------------------------

    def _banner(self) -> None:
        self._outbox.append(b"\r\n")
        self.emit(BANNER)
        if self.alarm is not None:
            self.emit("[MSG:'$H'|'$X' to unlock]")

    def clear_buffers(self) -> None:
        self.planner.clear()
        self.cur = None
        self.ring.clear()
        self.line.clear()
        self._line_overflow = False
        self._comment = None
        self.pending = None
        self._busy_until = 0.0
        self.hold = False
        self.door = False

    def soft_reset(self, t: float) -> None:
        self.resets += 1
        moving = self.cur is not None and not self.hold
        self.interrupt_motion(t)
        self.pos = list(self.machine_pos(t))
        self.burn.end_job(complete=False)
        self.clear_buffers()
        self.motion_free_at = t
        self.modal = Modal()
        self.g92 = [0.0, 0.0, 0.0]
        self.overrides = [100, 100, 100]
        self.wco_due = self.ov_due = True
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
            self.emit("ALARM:3")
        self._banner()
        if self.alarm is None:
            self.run_startup_lines(t)

    def raise_alarm(self, code: int, t: float, *, critical: bool) -> None:
        self.interrupt_motion(t)
        self.pos = list(self.machine_pos(t))
        self.clear_buffers()
        self.motion_free_at = t
        self.burn.end_job(complete=False)
        self.alarm = code
        self.alarms.append(code)
        self.critical = critical
        self.emit(f"ALARM:{code}")
        if critical:
            self.emit("[MSG:Reset to continue]")

    def run_startup_lines(self, t: float) -> None:
        for n in (0, 1):
            text = self.startup_lines.get(n, "")
            if text:
                err = execute(self, text, t)
                if self.pending is not None:
                    self.pending.reply = False
                self.emit(f">{text}:ok" if err is None else f">{text}:error:{err}")

    def _apply_fault(self, t: float) -> bool:
        """Fire the configured fault at G-code line N; True when the line must not be executed."""
        fault = self.fault
        if fault is None or self.gcode_lines != fault.at:
            return False
        log.info("simulated GRBL: fault %s at line %d", fault.kind, fault.at)
        if fault.kind == "lost-ok":
            # the line runs, but its ``ok`` never reaches the host (a noisy link dropped it)
            self.lose_oks += 1
            return False
        if fault.kind == "alarm":
            self.raise_alarm(1, t, critical=True)  # hard limit
            return True
        self.interrupt_motion(t)
        if fault.kind == "stall":
            self.stalled = True
            return True
        self.burn.end_job(complete=False)
        self.clear_buffers()
        if fault.kind == "reset":
            # the controller rebooted by itself (brown-out, watchdog): everything in flight is lost
            self.motion_free_at = t
            self.modal = Modal()
            self.resets += 1
            self._banner()
        else:  # disconnect
            self.disconnected = True
        return True

    # --- the protocol main loop ------------------------------------------------------------------

    def _protocol(self, now: float) -> None:
        while not (self.hold or self.critical or self.sleeping or self.stalled):
            if self.disconnected or self._busy_until > now:
                return
            if self.pending is not None and not self._resume_pending(now):
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
                err = system_command(self, text, now)
            elif self.alarm is not None or self.jogging():
                err = 9
            else:
                err = execute(self, text, now)
            if err == HANDLED:
                continue
            if err is not None:
                self.pending = None
                self._reply(text, err)
            elif self.pending is None:
                self._reply(text, None)
            else:
                self._resume_pending(now)

    def _ok(self) -> None:
        if self.lose_oks:
            self.lose_oks -= 1
            return
        self.emit("ok")

    def _reply(self, text: str, err: int | None) -> None:
        if err is None:
            self._ok()
        else:
            self.errors.append((text, err))
            self.emit(f"error:{err}")

    def _resume_pending(self, now: float) -> bool:
        """Continue a line that waits (planner full, sync, dwell); True once it is done."""
        pending = self.pending
        assert pending is not None
        while pending.steps:
            kind, data = pending.steps[0]
            if kind == "plan":
                assert isinstance(data, list)
                while data and len(self.planner) + (self.cur is not None) < PLANNER_BLOCKS:
                    block = data.pop(0)
                    block.queued_at = now
                    self.planner.append(block)
                    self._advance(now)
                if data:
                    return False
            elif kind == "sync":
                if self.moving():
                    return False
                assert callable(data)
                data(now)
            elif kind == "dwell":
                assert isinstance(data, float)
                if now < data:
                    self._busy_until = data
                    return False
            pending.steps.pop(0)
        self.pending = None
        if pending.reply:
            self._ok()
        return True


def _move(block: Block) -> Move:
    return Move(block.start, block.end, math.inf if block.rapid else block.feed_mm_min)
