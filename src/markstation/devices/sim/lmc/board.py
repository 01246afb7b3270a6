"""A simulated BJJCZ LMC board: what the host sees over USB, and what it would have burned.

The model is at the level of transfers: :meth:`LmcBoard.command` takes a 12-byte single command
and returns its 8-byte reply (or None for WriteCorLine), :meth:`LmcBoard.packet` takes a 3072-byte
list packet. :mod:`markstation.devices.sim.lmc.backend` puts it under pyusb;
:mod:`markstation.devices.sim.lmc.replay` feeds it a capture directly.

What is modelled (from ``shared/reference/lmc_protocol.md`` and the ThreeOvals capture):

- status word (reply r3): 0x0200 always (set in every captured reply), READY 0x20 when the list
  buffer has room and no packet is being taken in, BUSY 0x04 while a list executes;
- READY drops after each packet while the board takes it in: for ``ingest_s`` of clock time
  (realtime / F), or for the next reply only (instant);
- ExecuteList runs the buffered list; more packets may follow while it runs; it ends at the first
  EndOfList entry (then READY set, BUSY clear); StopExecute aborts; ResetList clears;
- the list runs for the time its speeds, delays and lengths give (timing ``realtime``), F times
  faster (``F``), or completes at the next host transfer (``instant``): entry by entry against
  the clock (:meth:`ListExecutor.step`) when there is a clock to keep, whole buffers at once
  (:meth:`ListExecutor.run_words`, numpy, the same burn) when there is none (instant, run out);
- r1/r2 of non-query commands repeat the last query's answer, as the real board does;
- outputs (WritePort, list WritePort; red pointer bit), inputs for ReadPort (idle 0xFFFA, pedal and
  interlock bits from the machine profile, settable by tests), laser enable, master oscillator;
- emission only while a MarkTo / LaserOnPoint executes with the laser enabled, the master
  oscillator open and power above zero (or never set): a list of JumpTo alone never burns;
- the burn record (strokes in mm with their settings), a PNG of it, and the simulator ledger
  (``start`` before the first emission of a list, ``end`` when it finishes or is stopped).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from markstation.devices.lmc.codec import (
    ENTRY_BYTES,
    PACKET_BYTES,
    STATUS_BUSY,
    STATUS_READY,
    Cmd,
    DecodedBurn,
    Entry,
    Geometry,
    ListExecutor,
    ListOp,
    Reply,
    StrokeSettings,
    Words,
    packet_words,
)
from markstation.devices.lmc.timing import held_before
from markstation.devices.sim.ledger import Ledger
from markstation.devices.sim.render import render_strokes
from markstation.devices.sim.timing import INSTANT
from markstation.errors import DeviceProtocolError
from markstation.profiles import LmcOptions, MachineProfile, MaterialProfile

log = logging.getLogger(__name__)

#: set in every reply of the captured board (meaning unknown)
STATUS_BASE = 0x0200
#: set while a list is paused by StopList (MeerK40t's reading of GetListStatus)
STATUS_PAUSED = 0x08
#: ReadPort with nothing pressed on the captured board
IDLE_INPUTS = 0xFFFA
#: answers of Bryce's LMCV4-FIBER-M in the captures
VERSION_WORDS = (0x4C02, 0x0009)
ST_MO_AP_WORD = 0x0241
#: how long the board takes in one list packet (READY low meanwhile): between 0.95 and 0.99 ms
#: in the ThreeOvals capture
INGEST_S = 0.00097
#: packets the list buffer holds before READY stays low (the real size is not known)
BUFFER_PACKETS = 8
#: cap on the recorded red-pointer path, so an endless frame loop cannot eat memory
POINTER_PATH_MAX = 100_000

#: single commands whose r1/r2 carry an answer (the others repeat the last answer)
_QUERIES = frozenset(
    {
        Cmd.GET_VERSION,
        Cmd.GET_SERIAL_NO,
        Cmd.GET_POSITION_XY,
        Cmd.READ_PORT,
        Cmd.FIBER_GET_ST_MO_AP,
        Cmd.GET_MARK_TIME,
        Cmd.GET_LIST_STATUS,
        Cmd.GET_MARK_COUNT,
        Cmd.GET_FLY_WAIT_COUNT,
        Cmd.GET_AXIS_POS,
        Cmd.GET_USER_DATA,
        Cmd.GET_FLY_PULSE_COUNT,
        Cmd.GET_FLY_SPEED,
        Cmd.FIBER_GET_CONFIG_EXTEND,
        Cmd.IS_LITE_VERSION,
    }
)


def serial_words(serial: str) -> tuple[int, int]:
    """GetSerialNo's two words for a simulated serial string (stable, different per serial)."""
    crc = zlib.crc32(serial.encode())
    return (crc & 0xFFFF, crc >> 16)


@dataclass
class RunRecord:
    """One ExecuteList: what it burned and how it ended."""

    burn: DecodedBurn
    complete: bool = False
    stopped: bool = False
    ledger_job: int | None = None

    @property
    def strokes(self) -> list[list[tuple[float, float]]]:
        return self.burn.strokes


@dataclass
class ManualClock:
    """A clock the caller sets (replay uses the capture's timestamps; tests step it)."""

    t: float = 0.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class ListBuffer:
    """The board's list buffer: the entries received and not yet executed, in order, kept as the
    packets' words arrays (:func:`packet_words`); entries are made only for those executed one at
    a time."""

    __slots__ = ("_chunks", "_entries", "_head", "_len")

    def __init__(self) -> None:
        self._chunks: deque[Words] = deque()
        self._entries: list[Entry] | None = None  # the first chunk's entries, once popped from
        self._head = 0  # entries of the first chunk already taken
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ListBuffer):
            return NotImplemented
        return len(self) == len(other) and bool((self.peek() == other.peek()).all())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ListBuffer({self._len} entries)"

    def extend(self, words: Words) -> None:
        if len(words):
            self._chunks.append(words)
            self._len += len(words)

    def clear(self) -> None:
        self._chunks.clear()
        self._entries = None
        self._head = 0
        self._len = 0

    def first_op(self) -> int | None:
        return int(self._chunks[0][self._head, 0]) if self._len else None

    def popleft(self) -> Entry:
        """The next entry (IndexError when empty)."""
        if not self._len:
            raise IndexError("pop from an empty list buffer")
        if self._entries is None:
            self._entries = [Entry(*row) for row in self._chunks[0].tolist()]
        e = self._entries[self._head]
        self._head += 1
        self._len -= 1
        if self._head == len(self._entries):
            self._chunks.popleft()
            self._entries = None
            self._head = 0
        return e

    def peek(self) -> Words:
        """Every entry left, one array (nothing taken)."""
        if not self._chunks:
            return np.zeros((0, 6), dtype=np.uint16)
        first = self._chunks[0][self._head :]
        if len(self._chunks) == 1:
            return first
        return np.concatenate([first, *list(self._chunks)[1:]])

    def take(self, count: int) -> None:
        """Drop the first ``count`` entries (executed)."""
        count = min(count, self._len)
        self._len -= count
        while count:
            left = len(self._chunks[0]) - self._head
            if count < left:
                self._head += count
                return
            count -= left
            self._chunks.popleft()
            self._entries = None
            self._head = 0


@dataclass
class _Run:
    record: RunRecord
    anchor_wall: float
    anchor_sim: float = 0.0
    sim_s: float = 0.0
    starved: bool = False
    paused: bool = False


class LmcBoard:
    """One simulated board. Thread-safe; every public method takes the board's lock."""

    def __init__(
        self,
        machine: MachineProfile | None = None,
        *,
        serial: str = "SIM0001",
        speed: float = INSTANT,
        clock: Callable[[], float] = time.monotonic,
        ledger: Ledger | None = None,
        geometry: Geometry | None = None,
        laser_enabled: bool = True,
        buffer_packets: int = BUFFER_PACKETS,
        ingest_s: float = INGEST_S,
        vectorised: bool = True,
    ) -> None:
        if geometry is None:
            geometry = Geometry.from_machine(machine) if machine else Geometry(65535 / 110.0)
        opts = machine.lmc if machine else LmcOptions()
        self.geometry = geometry
        self.serial = serial
        self.speed = speed
        self.clock = clock
        self.ledger = ledger
        self.buffer_packets = buffer_packets
        self.ingest_s = ingest_s
        #: execute whole buffers at once when there is no clock to keep (instant timing, run out);
        #: False: always entry by entry (the oracle the property tests compare with)
        self.vectorised = vectorised
        self.pointer_bit = _bit(opts.red_pointer_bit)
        self.pedal_mask = _bit(opts.pedal_bit)
        self.pedal_active_low = opts.pedal_active_low
        self.interlock_mask = _bit(opts.interlock_bit)
        self.interlock_active_low = opts.interlock_active_low
        self._lock = threading.RLock()
        self._initial_laser_enabled = laser_enabled
        #: everything the host got wrong (packet while not READY, list without ReadyMark, …)
        self.violations: list[str] = []
        #: every ExecuteList, oldest first
        self.runs: list[RunRecord] = []
        #: red-pointer trace: field mm of every jump executed with the pointer bit on
        self.pointer_path: list[tuple[float, float]] = []
        self.commands = 0
        self.packets_received = 0
        self.correction_lines = 0
        self._pedal_pressed = False
        self._interlock_open = False
        self._power_on()

    # --- state -----------------------------------------------------------------------------------

    def _power_on(self) -> None:
        self.executor = ListExecutor(
            self.geometry, mo_open=False, laser_enabled=self._initial_laser_enabled
        )
        self.buffer = ListBuffer()
        self.outputs = 0
        self.correction_enabled = False
        self._run: _Run | None = None
        self._stale = (0, 0)
        self._ingest_until = -math.inf
        self._ingest_replies = 0
        self._mark_ticks = 0
        self.control_mode = 0

    @property
    def running(self) -> bool:
        with self._lock:
            return self._run is not None

    @property
    def mo_open(self) -> bool:
        return self.executor.mo_open

    @property
    def laser_enabled(self) -> bool:
        return self.executor.laser_enabled

    @property
    def red_pointer_on(self) -> bool:
        return bool(self.pointer_bit and self.outputs & self.pointer_bit)

    @property
    def emitting(self) -> bool:
        """True while the last executed entry fired the source and the list is still running."""
        with self._lock:
            run = self._run
            return (
                run is not None
                and not run.paused
                and self.executor.stroke_open
                and self.executor.emitting_now()
            )

    @property
    def position_mm(self) -> tuple[float, float]:
        return self.geometry.to_mm(*self.executor.pos)

    def burned_strokes(self) -> list[list[tuple[float, float]]]:
        """Every stroke of every run so far (mm, field frame)."""
        with self._lock:
            return [s for r in self.runs for s in r.burn.strokes]

    def burned_settings(self) -> list[StrokeSettings]:
        with self._lock:
            return [s for r in self.runs for s in r.burn.settings]

    def inputs(self) -> int:
        """The 16 input bits ReadPort answers."""
        with self._lock:
            value = IDLE_INPUTS
            value = _set_level(value, self.pedal_mask, self._pedal_pressed, self.pedal_active_low)
            # "active" for the interlock is the closed (safe) state
            value = _set_level(
                value, self.interlock_mask, not self._interlock_open, self.interlock_active_low
            )
            return value

    # --- what tests do to the board ----------------------------------------------------------------

    def press_pedal(self, pressed: bool = True) -> None:
        with self._lock:
            self._pedal_pressed = pressed

    def release_pedal(self) -> None:
        self.press_pedal(False)

    def set_interlock(self, *, open: bool) -> None:
        with self._lock:
            if self.interlock_mask == 0 and open:
                log.warning(
                    "the machine profile wires no interlock input; opening it changes nothing"
                )
            self._interlock_open = open

    def reset(self) -> None:
        """A board reset (power glitch, watchdog): the running list stops, all state is lost."""
        with self._lock:
            self._end_run(complete=False, stopped=True)
            self._power_on()

    def unplug(self) -> None:
        """USB gone but the board still powered: it runs out whatever list it holds."""
        with self._lock:
            self.run_out()

    def run_out(self) -> None:
        """Execute everything buffered now, as a board left alone would (ledger ``end`` follows)."""
        with self._lock:
            run = self._run
            if run is None:
                return
            run.paused = False
            self._execute(math.inf)
            if self._run is not None:  # the list never got its end: it stops where the data stops
                self._end_run(complete=False, stopped=True)

    # --- host transfers ----------------------------------------------------------------------------

    def status(self) -> int:
        """The status word as the next reply would carry it (without consuming an ingest reply)."""
        with self._lock:
            return self._status(consume=False)

    def _status(self, *, consume: bool) -> int:
        word = STATUS_BASE
        ingesting = self._ingest_replies > 0 or self.clock() < self._ingest_until
        if consume and self._ingest_replies > 0:
            self._ingest_replies -= 1
        if not ingesting and len(self.buffer) < self.buffer_packets * 256:
            word |= STATUS_READY
        if self._run is not None:
            word |= STATUS_BUSY
            if self._run.paused:
                word |= STATUS_PAUSED
        return word

    def packet(self, data: bytes) -> None:
        """A 3072-byte list packet on EP 0x02 (no reply)."""
        with self._lock:
            self.advance()
            words = packet_words(data)  # DeviceProtocolError on a wrong length
            self.packets_received += 1
            if not self._status(consume=False) & STATUS_READY:
                self.violations.append(
                    f"list packet {self.packets_received} sent while the board was not READY"
                )
                if len(self.buffer) >= self.buffer_packets * 256:
                    log.warning("simulated LMC: list buffer full, packet dropped")
                    return
            self.buffer.extend(words)
            if math.isinf(self.speed):
                self._ingest_replies = 1
            else:
                self._ingest_until = self.clock() + self.ingest_s / self.speed
            run = self._run
            if run is not None and run.starved:
                run.starved = False
                run.anchor_wall, run.anchor_sim = self.clock(), run.sim_s

    def command(self, data: bytes) -> bytes | None:
        """A 12-byte single command on EP 0x02; returns the 8-byte reply (None: no reply)."""
        if len(data) != ENTRY_BYTES:
            raise DeviceProtocolError(
                f"the LMC board takes {ENTRY_BYTES}-byte commands or {PACKET_BYTES}-byte packets, "
                f"got {len(data)} bytes"
            )
        with self._lock:
            self.commands += 1
            e = Entry.decode(data)
            self.advance()  # the board has been running until this moment
            answer = self._do(e)
            if e.op == Cmd.WRITE_COR_LINE:
                return None
            if answer is not None:
                self._stale = answer
            r1, r2 = self._stale
            return Reply(0, r1, r2, self._status(consume=True)).encode()

    def _do(self, e: Entry) -> tuple[int, int] | None:
        """Carry out one single command; return (r1, r2) for a query."""
        op = e.op
        if op == Cmd.GET_VERSION:
            return VERSION_WORDS
        if op == Cmd.GET_SERIAL_NO:
            return serial_words(self.serial)
        if op == Cmd.READ_PORT:
            return (self.inputs(), 0)
        if op == Cmd.GET_POSITION_XY:
            return self.executor.pos
        if op == Cmd.FIBER_GET_ST_MO_AP:
            return (ST_MO_AP_WORD, 0)
        if op == Cmd.GET_MARK_TIME:
            return (self._mark_ticks & 0xFFFF, (self._mark_ticks >> 16) & 0xFFFF)
        if op in _QUERIES:
            return (0, 0)
        if op == Cmd.EXECUTE_LIST:
            self._start_run()
        elif op in (Cmd.STOP_EXECUTE, Cmd.RESET_LIST, Cmd.RESET):
            self._end_run(complete=False, stopped=True)
            self.buffer.clear()
        elif op == Cmd.STOP_LIST:
            if self._run is not None:
                self._run.paused = True
        elif op == Cmd.RESTART_LIST:
            if self._run is not None and self._run.paused:
                self._run.paused = False
                self._run.anchor_wall, self._run.anchor_sim = self.clock(), self._run.sim_s
        elif op == Cmd.WRITE_PORT:
            self.outputs = e.w1
        elif op == Cmd.FIBER_SET_MO:
            self.executor.mo_open = bool(e.w1)
        elif op == Cmd.ENABLE_LASER:
            self.executor.laser_enabled = True
        elif op == Cmd.DISABLE_LASER:
            self.executor.laser_enabled = False
        elif op == Cmd.GOTO_XY:
            self.executor.pos = (e.w1, e.w2)
        elif op == Cmd.WRITE_COR_TABLE:
            self.correction_enabled = bool(e.w1)
            self.correction_lines = 0
        elif op == Cmd.WRITE_COR_LINE:
            self.correction_lines += 1
        elif op == Cmd.SET_CONTROL_MODE:
            self.control_mode = e.w1
        return None

    # --- execution ---------------------------------------------------------------------------------

    def _start_run(self) -> None:
        if self._run is not None:
            return  # already running: the real board ignores a second start as far as we know
        if self.buffer and self.buffer.first_op() != ListOp.READY_MARK:
            self.violations.append("list does not begin with ReadyMark (0x8051)")
        self.executor.new_burn()
        record = RunRecord(burn=self.executor.burn)
        self.runs.append(record)
        self._run = _Run(record=record, anchor_wall=self.clock())
        self._mark_ticks = 0

    def advance(self) -> None:
        """Execute the list up to the present moment of the board's clock."""
        with self._lock:
            run = self._run
            if run is None or run.paused:
                return
            if math.isinf(self.speed):
                target = math.inf
            else:
                target = run.anchor_sim + (self.clock() - run.anchor_wall) * self.speed
            self._execute(target)

    def _execute(self, target_sim_s: float) -> None:
        if self.vectorised and math.isinf(target_sim_s):
            self._execute_buffer()
            return
        run = self._run
        assert run is not None
        ex = self.executor
        while run.sim_s < target_sim_s:
            if not self.buffer:
                if not run.starved:
                    run.starved = True
                return
            e = self.buffer.popleft()
            if e.op in (ListOp.MARK_TO, ListOp.LASER_ON_POINT) and ex.emitting_now():
                self._ledger_start(run.record)
            elif e.op == ListOp.WRITE_PORT:
                self.outputs = e.w1
            elif (
                e.op == ListOp.JUMP_TO
                and self.red_pointer_on
                and len(self.pointer_path) < POINTER_PATH_MAX
            ):
                self.pointer_path.append(self.geometry.to_mm(e.w1, e.w2))
            run.sim_s += ex.step(e)
            self._mark_ticks = round(run.sim_s * 1e5)
            if ex.burn.ended:
                self._end_run(complete=True, stopped=False)
                return

    def _execute_buffer(self) -> None:
        """:meth:`_execute` with no time bound: everything buffered, up to and with the first
        EndOfList, in one :meth:`ListExecutor.run_words` call; the same outcome as entry by entry
        (ledger ``start`` before the end, outputs, pointer path, mark time, end of the run)."""
        run = self._run
        assert run is not None
        if not self.buffer:
            run.starved = True
            return
        words = self.buffer.peek()
        done = self.executor.run_words(words)
        self.buffer.take(done.count)
        if done.fired:
            self._ledger_start(run.record)
        executed = words[: done.count]
        ops = executed[:, 0]
        ports = np.flatnonzero(ops == ListOp.WRITE_PORT)
        lit_before = self.outputs & self.pointer_bit
        if (lit_before or len(ports)) and len(self.pointer_path) < POINTER_PATH_MAX:
            jumps = ops == ListOp.JUMP_TO
            # the outputs when each entry runs: the last list WritePort before it, or as they were
            outputs = held_before(ports, executed[:, 1].astype(np.int64), self.outputs)
            lit = np.flatnonzero(jumps & ((outputs & self.pointer_bit) != 0))
            room = POINTER_PATH_MAX - len(self.pointer_path)
            to_mm = self.geometry.to_mm
            self.pointer_path.extend(
                to_mm(int(executed[i, 1]), int(executed[i, 2])) for i in lit[:room]
            )
        if len(ports):
            self.outputs = int(executed[ports[-1], 1])
        run.sim_s = float(np.cumsum(np.concatenate(([run.sim_s], done.seconds)))[-1])
        self._mark_ticks = round(run.sim_s * 1e5)
        if self.executor.burn.ended:
            self._end_run(complete=True, stopped=False)
            return
        run.starved = True

    def _ledger_start(self, record: RunRecord) -> None:
        if self.ledger is not None and record.ledger_job is None:
            record.ledger_job = self.ledger.start()

    def _end_run(self, *, complete: bool, stopped: bool) -> None:
        run = self._run
        if run is None:
            return
        self._run = None
        self.executor.finish()
        record = run.record
        record.complete = complete
        record.stopped = stopped
        if complete:
            self.buffer.clear()  # the fill after EndOfList
        if self.ledger is not None and record.ledger_job is not None:
            self.ledger.end(record.ledger_job, complete=complete, polylines=record.burn.strokes)

    # --- output ------------------------------------------------------------------------------------

    def render_png(
        self,
        path: str | Path,
        *,
        spot_mm: float = 0.03,
        px_per_mm: float = 0,
        material: MaterialProfile | None = None,
    ) -> Path:
        """Draw every burned stroke (at the spot size) into a PNG; returns the path. Each dot is
        as wide as the job's dot model makes it for the dwell and power it burned with, on
        ``material`` (see :mod:`markstation.devices.sim.render`)."""
        with self._lock:
            strokes, settings = self.burned_strokes(), self.burned_settings()
        dots = [(s.dwell_s, s.power_pct) for s in settings]
        return render_strokes(
            strokes, path, spot_mm=spot_mm, px_per_mm=px_per_mm, dots=dots, material=material
        )


def _bit(n: int) -> int:
    return 1 << n if n >= 0 else 0


def _set_level(value: int, mask: int, active: bool, active_low: bool) -> int:
    if not mask:
        return value
    high = active != active_low
    return value | mask if high else value & ~mask
