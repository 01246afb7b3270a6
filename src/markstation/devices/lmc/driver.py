"""The LMC (BJJCZ) galvo board driver: the protocol conversation on top of codec and transport.

What goes over the wire is built by :mod:`markstation.devices.lmc.codec` (pure); bytes move through
:mod:`markstation.devices.lmc.transport` (pyusb on libusb, or for ``sim://lmc``
the pyusb backend the registry's simulated transport returns — the same code path). This module
decides what to send when:

* open: find + claim the board, the vendor init sequence, the lens correction table;
* run: arm (laser-enable output bit, master oscillator open), stream list packets only when the
  board reports READY, read the interlock again and start the list once, poll until the board
  itself reports READY and not BUSY, disarm, read the board's mark time — and complete only when
  the run's board session is proven unbroken (see :meth:`LmcDriver._prove_complete`);
* abort (any thread): stop execution, close the oscillator, clear the list, drop the enable bit;
* frame: red pointer on, oscillator closed, jump-only lists traced until told to stop.

``may_have_emitted`` on every error is False only while nothing that could fire has been sent in
this run (before the enable bit / Fiber_SetMo(1)); from then on it is True.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from markstation.devices.base import DeviceInfo, Driver, Inputs, RunListener, RunResult
from markstation.devices.lmc import codec
from markstation.devices.lmc.codec import Cmd, Entry, Reply
from markstation.devices.lmc.correction import CorrectionTable, read_cor_file
from markstation.devices.lmc.transport import (
    LmcTransport,
    find_boards,
    libusb_backend,
    usb_serial,
)
from markstation.devices.registry import simulated_transport
from markstation.devices.url import DeviceURL, parse_int_option
from markstation.errors import (
    Aborted,
    ConfigError,
    DeviceDisconnected,
    DeviceError,
    DeviceReset,
    DeviceTimeout,
    InterlockOpen,
)
from markstation.i18n import _
from markstation.job.estimate import estimate_seconds
from markstation.job.ir import Job
from markstation.profiles import MachineProfile

log = logging.getLogger(__name__)

MODEL = "LMC (BJJCZ)"
USB_KEYS = ("serial", "index")

#: GetMarkTime counts in 10 µs ticks (one-capture inference, see firmware_notes/lmc.md)
MARK_TIME_TICK_S = 10e-6
#: the board needs a moment after the init sequence before it takes lists (open drivers: 50 ms)
SETTLE_AFTER_INIT_S = 0.05
#: a run that takes this much longer than estimated is declared hung
WATCHDOG_FACTOR = 4.0
WATCHDOG_MARGIN_S = 60.0
#: how long the board may stay not-READY before a packet is declared refused
READY_TIMEOUT_S = 30.0
#: a board mark time below this share of the estimate means the list did not run through (a reset
#: zeroes the counter; the one capture ran 1.07 x its estimate, the simulator ~1.0 x) ...
MARK_TIME_MIN_RATIO = 0.5
#: ... checked for lists estimated above this (shorter ones are dominated by fixed delays)
MARK_TIME_CHECK_ABOVE_S = 0.1
#: a broken session is reported as the kind of transfer error that broke it
_SESSION_ERRORS = (DeviceReset, DeviceDisconnected, DeviceTimeout)


def _bit(n: int) -> int:
    return 1 << n if n >= 0 else 0


def _correction_path(machine: MachineProfile) -> Path | None:
    raw = machine.lmc.correction_file
    if not raw:
        return None
    path = Path(raw).expanduser()
    return path if path.is_absolute() else machine.path.parent / path


class LmcDriver(Driver):
    """A BJJCZ LMC board on USB (``usb://lmc[?serial=S|index=N]``) or simulated (``sim://lmc?…``)."""

    protocol = "lmc"

    def __init__(
        self,
        url: str,
        machine: MachineProfile,
        *,
        backend: Any = None,
        simulator: Any = None,
        serial: str | None = None,
        index: int | None = None,
    ) -> None:
        super().__init__(url, machine)
        opts = machine.lmc
        self._backend = backend
        #: the simulated board (tests press its pedal, open its interlock); None on real USB
        self.simulator = simulator
        self._serial = serial
        self._index = index
        self._timeout_s = opts.usb_timeout_s
        self._retries = opts.usb_retries
        self._poll_s = opts.poll_interval_s
        self._laser_bit = _bit(opts.laser_enable_bit)
        self._pointer_bit = _bit(opts.red_pointer_bit)
        self._pedal_bit = _bit(opts.pedal_bit)
        self._pedal_low = opts.pedal_active_low
        self._interlock_bit = _bit(opts.interlock_bit)
        self._interlock_low = opts.interlock_active_low
        cor = _correction_path(machine)
        # read (and refuse) a bad table now, before the board is touched
        self._correction: CorrectionTable | None = read_cor_file(cor) if cor else None
        if self._correction is not None:
            self._warn_field_mismatch(self._correction)
        self._transport: LmcTransport | None = None
        #: shadow of the 16 output bits (the board only takes them all at once)
        self._ports = 0
        #: set just before the first byte of this run that could fire
        self._armed = False
        #: the board session of the current run: open from arming to the mark-time read; the
        #: first transfer error on any thread (e-stop watcher included) while it is open
        self._session_open = False
        self._session_fault: DeviceError | None = None
        self._session_fault_thread = ""
        #: ExecuteList was sent in this run / a reply since then carried BUSY
        self._executing = False
        self._seen_busy = False
        self._usb_serial = ""

    # --- construction ----------------------------------------------------------------------------

    @classmethod
    def from_url(cls, url: DeviceURL, machine: MachineProfile) -> LmcDriver:
        if url.scheme == "usb":
            opts = url.check_keys(USB_KEYS)
            if "serial" in opts and "index" in opts:
                raise ConfigError(
                    _("device URL '{raw}': give serial= or index=, not both").format(raw=url.raw)
                )
            index = parse_int_option(url, "index", opts["index"]) if "index" in opts else None
            return cls(url.raw, machine, serial=opts.get("serial") or None, index=index)
        if url.scheme == "sim":
            # the simulated board comes from the registry: this module never imports a simulator
            sim = simulated_transport("lmc")
            opts = url.check_keys((*sim.options, "index"))
            index = parse_int_option(url, "index", opts.pop("index")) if "index" in opts else None
            sim.check_options(url, opts)
            link = sim.open(url, opts, machine)
            return cls(
                url.raw, machine, backend=link.transport, simulator=link.simulator, index=index
            )
        raise ConfigError(
            _("device URL '{raw}': the LMC driver takes usb://lmc or sim://lmc").format(raw=url.raw)
        )

    def _warn_field_mismatch(self, table: CorrectionTable) -> None:
        field = self.machine.field_width_mm
        if abs(table.field_mm - field) > 0.02 * field:
            log.warning(
                "%s: calibrated for a %.1f mm field, machine '%s' says %.1f mm; marks will be "
                "scaled by the machine's field",
                table.source,
                table.field_mm,
                self.machine.name,
                field,
            )

    # --- low level -------------------------------------------------------------------------------

    @property
    def transport(self) -> LmcTransport:
        if self._transport is None:
            raise DeviceError(
                _("{url}: the device is not open").format(url=self.url), may_have_emitted=False
            )
        return self._transport

    def _cmd(self, op: int, *words: int, retry: bool = True, reply: bool = True) -> Reply | None:
        payload = Entry(op, *words).encode()
        try:
            raw = self.transport.command(
                payload, reply=reply, retry=retry, on_retry=self._note_transfer_error
            )
        except DeviceError as exc:
            self._note_transfer_error(exc)
            raise
        if raw is None:
            return None
        answer = Reply.decode(raw)
        if self._executing and answer.busy:
            self._seen_busy = True
        return answer

    def _packet(self, packet: bytes) -> None:
        try:
            self.transport.write_packet(packet)
        except DeviceError as exc:
            self._note_transfer_error(exc)
            raise

    def _note_transfer_error(self, exc: DeviceError) -> None:
        """Any thread: a failed (or retried) transfer while a run is armed breaks its session.

        After it nobody knows what the board holds (it may have reset, a reply may be out of step),
        so the run can only end as unknown, however well the board's status looks afterwards.
        """
        with self._lock:
            if self._session_open and self._session_fault is None:
                self._session_fault = exc
                self._session_fault_thread = threading.current_thread().name

    def _ask(self, op: int, *words: int, retry: bool = True) -> Reply:
        answer = self._cmd(op, *words, retry=retry)
        assert answer is not None
        return answer

    def _run_cmd(self, op: int, *words: int, retry: bool = True) -> Reply:
        """A command of the run thread: refused once an abort was asked (checked under the lock)."""
        with self._lock:
            self._check_abort()
            return self._ask(op, *words, retry=retry)

    def _check_abort(self) -> None:
        if self.abort_requested:
            raise Aborted(
                _("{url}: aborted on request").format(url=self.url), may_have_emitted=self._armed
            )
        self._check_session()

    def _check_session(self) -> None:
        """Raise (and stop the board) once a transfer of this run failed on any thread."""
        fault = self._session_fault
        if fault is None:
            return
        self._session_fault = None  # raised once; the session stays closed until the next run
        self._session_open = False
        self._abort()
        cls = type(fault) if type(fault) in _SESSION_ERRORS else DeviceError
        raise cls(
            _(
                "{url}: a transfer failed during the run (on thread '{thread}': {fault}); the "
                "board's list may have stopped or the board reset: whether the mark is complete "
                "is unknown"
            ).format(url=self.url, thread=self._session_fault_thread, fault=fault),
            may_have_emitted=True,
        )

    def _write_ports(self, value: int) -> None:
        self._ports = value & 0xFFFF
        self._ask(Cmd.WRITE_PORT, self._ports)

    @contextmanager
    def _emission_context(self) -> Iterator[None]:
        """Stamp every DeviceError leaving the block with what this run may have fired."""
        try:
            yield
        except DeviceError as exc:
            exc.may_have_emitted = self._armed
            raise

    # --- life cycle -----------------------------------------------------------------------------

    def _open(self) -> None:
        backend = self._backend if self._backend is not None else libusb_backend()
        self._transport = LmcTransport.open(
            backend,
            where=self.url,
            serial=self._serial,
            index=self._index,
            timeout_s=self._timeout_s,
            retries=self._retries,
        )
        self._usb_serial = usb_serial(self._transport.device)
        self._armed = False
        try:
            with self._emission_context():
                self._init_sequence()
        except BaseException:
            self._transport.close()
            self._transport = None
            raise

    def _init_sequence(self) -> None:
        # the vendor program's order (fact sheet §7); every reply is read, so a dead board shows now
        self._ask(Cmd.GET_SERIAL_NO)
        self._ask(Cmd.GET_VERSION, 1)
        self._ask(Cmd.FIBER_GET_ST_MO_AP)
        self._ask(Cmd.RESET)
        self._upload_correction()
        self._ask(Cmd.ENABLE_LASER)
        self._ask(Cmd.SET_CONTROL_MODE, 0)
        self._ask(Cmd.SET_LASER_MODE, 1)
        self._ask(Cmd.SET_DELAY_MODE, 1)
        self._ask(Cmd.SET_TIMING, 1)
        self._ask(Cmd.SET_STANDBY, 2000, 20)
        self._ask(Cmd.SET_FIRST_PULSE_KILLER, 200)
        self._ask(Cmd.SET_PWM_HALF_PERIOD, 125)
        self._ask(Cmd.SET_PWM_PULSE_WIDTH, 125)
        self._ask(Cmd.FIBER_SET_MO, 0)
        self._ask(Cmd.GET_VERSION, 0)
        self._ask(Cmd.SET_FPK_PARAM_2, 0x0FFB, 1, 0x0199, 0x0064)
        self._ask(Cmd.SET_FLY_RES, 0, 0x63, 0x3E8, 0x19)
        self._write_ports(0)
        self._ask(Cmd.ENABLE_Z)
        self._ask(Cmd.WRITE_ANALOG_PORT_1, 0x07FF)
        self._ask(Cmd.ENABLE_Z)
        if self.simulator is None:  # the simulated board has no race to wait out
            time.sleep(SETTLE_AFTER_INIT_S)

    def _upload_correction(self) -> None:
        table = self._correction
        if table is None:
            self._ask(Cmd.WRITE_COR_TABLE, 0)
            return
        words = table.board_words()
        attempts = 1 + self._retries
        for attempt in range(1, attempts + 1):
            try:
                self._ask(Cmd.WRITE_COR_TABLE, 1)
                # the board answers none of these; a repeated line would shift the whole table,
                # so a failure restarts the upload from WriteCorTable(1) instead of retrying a line
                for i, (dx, dy) in enumerate(words):
                    self._cmd(
                        Cmd.WRITE_COR_LINE, dx, dy, 0 if i == 0 else 1, retry=False, reply=False
                    )
                return
            except DeviceTimeout:
                if attempt == attempts:
                    raise
                log.warning("%s: correction upload timed out, restarting it", self.url)

    def _close(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()
        if self.simulator is not None and hasattr(self._backend, "close"):
            # the simulated board runs out whatever it still holds, and its capture is closed
            self._backend.close()

    # --- identity and inputs ----------------------------------------------------------------------

    def _info(self) -> DeviceInfo:
        with self._emission_context():
            sn = self._ask(Cmd.GET_SERIAL_NO)
            ver = self._ask(Cmd.GET_VERSION, 0)
        board_serial = f"{sn.r1:04X}{sn.r2:04X}"
        table = self._correction
        extra = {
            "board_serial": board_serial,
            "usb_serial": self._usb_serial or "-",
            "correction": (
                f"{table.source} (v{table.version}, {table.field_mm:.1f} mm field)"
                if table
                else "off"
            ),
        }
        return DeviceInfo(
            url=self.url,
            protocol=self.protocol,
            model=MODEL,
            firmware=f"{ver.r1:04X}.{ver.r2:04X}",
            serial=self._usb_serial or board_serial,
            simulated=self.simulator is not None,
            extra=extra,
        )

    def _inputs_from(self, raw: int) -> Inputs:
        pedal_high = bool(raw & self._pedal_bit)
        interlock: bool | None = None
        if self._interlock_bit:
            high = bool(raw & self._interlock_bit)
            interlock = (not high) if self._interlock_low else high
        return Inputs(
            raw=raw,
            pedal_pressed=(not pedal_high) if self._pedal_low else pedal_high,
            interlock_closed=interlock,
        )

    def _read_inputs(self) -> Inputs:
        # under the driver lock: a watcher's transfer never lands between the run thread's
        # session check and its next transfer
        with self._lock, self._emission_context():
            return self._inputs_from(self._ask(Cmd.READ_PORT).r1)

    # --- run ----------------------------------------------------------------------------------------

    def _poll(self) -> tuple[Reply, Inputs]:
        reply = self._run_cmd(Cmd.READ_PORT)
        return reply, self._inputs_from(reply.r1)

    def _check_interlock(self, inputs: Inputs) -> None:
        if inputs.interlock_closed is False:
            if self._armed:
                self._abort()
            raise InterlockOpen(
                (
                    _("{url}: interlock input open during the run; marking stopped")
                    if self._armed
                    else _("{url}: interlock input open; nothing was fired")
                ).format(url=self.url),
                may_have_emitted=self._armed,
            )

    def _wait(
        self,
        done: Callable[[Reply], bool],
        *,
        limit_s: float,
        what: str,
        tick: Callable[[], None],
        interlock: bool = True,
    ) -> None:
        deadline = time.monotonic() + limit_s
        while True:
            reply, inputs = self._poll()
            if interlock:
                self._check_interlock(inputs)
            if done(reply):
                return
            tick()
            if time.monotonic() > deadline:
                raise DeviceTimeout(
                    _("{url}: {what} (waited {limit_s:.0f} s)").format(
                        url=self.url, what=what, limit_s=limit_s
                    )
                )
            time.sleep(self._poll_s)

    def _run(self, job: Job, listener: RunListener) -> RunResult:
        with self._lock:
            self._armed = False
            self._session_open = False
            self._session_fault = None
            self._executing = self._seen_busy = False
        try:
            with self._emission_context():
                return self._run_armed(job, listener)
        finally:
            with self._lock:
                self._session_open = False
                self._executing = False

    def _run_armed(self, job: Job, listener: RunListener) -> RunResult:
        # everything that can refuse the job happens before a byte goes out
        words = codec.job_to_words(job, self.machine)  # memoised: the estimate encoded it too
        packets = codec.pack_words(words)
        expected_s = estimate_seconds(job)
        started = time.monotonic()

        def progress(sent: int) -> None:
            elapsed = time.monotonic() - started
            by_time = elapsed / expected_s if expected_s > 0 else 0.0
            by_packets = (sent - 2) / len(packets) if sent > 2 else 0.0
            listener.on_progress(min(0.99, max(by_time, by_packets)), elapsed)

        self._run_cmd(Cmd.RESET_LIST)
        with self._lock:
            # the interlock is read as late as possible: right before the first byte that can fire
            _reply, inputs = self._poll()
            self._check_interlock(inputs)
            listener.on_emission_possible()
            self._armed = True
            self._session_open = True
            self._write_ports((self._ports | self._laser_bit) & ~self._pointer_bit)
            self._ask(Cmd.FIBER_SET_MO, 1)

        for n, packet in enumerate(packets, start=1):
            self._wait(
                lambda r: bool(r.ready),
                limit_s=READY_TIMEOUT_S,
                what=_("the board did not take list packet {n} of {total}").format(
                    n=n, total=len(packets)
                ),
                tick=functools.partial(progress, n - 1),
            )
            with self._lock:
                self._check_abort()
                self._packet(packet)
                self._ask(Cmd.SET_END_OF_LIST, 0)
                if not self._executing and (n == 2 or n == len(packets)):
                    # the interlock again, immediately before the list can start (same lock)
                    _reply, inputs = self._poll()
                    self._check_interlock(inputs)
                    self._executing = True
                    self._ask(Cmd.EXECUTE_LIST, retry=False)  # may fire: never repeated blindly
            progress(n)

        limit = expected_s * WATCHDOG_FACTOR + WATCHDOG_MARGIN_S
        self._wait(
            lambda r: bool(r.ready) and not r.busy,
            limit_s=limit,
            what=_("the board did not report the list finished"),
            tick=lambda: progress(len(packets)),
        )
        with self._lock:
            self._check_session()
            self._ask(Cmd.FIBER_SET_MO, 0)
            self._write_ports(self._ports & ~self._laser_bit)
            mark_time = self._ask(Cmd.GET_MARK_TIME, 3)
            self._check_session()
            self._session_open = False
        elapsed = time.monotonic() - started
        ticks = mark_time.r1 + (mark_time.r2 << 16)
        mark_time_s = ticks * MARK_TIME_TICK_S
        self._prove_complete(mark_time_s, expected_s)
        listener.on_progress(1.0, elapsed)
        return RunResult(
            complete=True,
            elapsed_s=elapsed,
            device_mark_time_s=mark_time_s,
            detail={"packets": len(packets), "entries": len(words), "estimate_s": expected_s},
        )

    def _prove_complete(self, mark_time_s: float, expected_s: float) -> None:
        """READY-and-not-BUSY ends the list only on the board session it was started on.

        Raise a DeviceError with ``may_have_emitted`` (unknown, never complete) unless: no transfer
        failed on any thread since arming (checked by the caller), a reply since ExecuteList showed
        BUSY (a freshly reset board is READY and never BUSY), and the board's own mark time is not
        zero nor below MARK_TIME_MIN_RATIO of the estimate (a reset zeroes the counter).
        """
        why = ""
        if not self._seen_busy:
            why = _("the board went READY without ever reporting BUSY after ExecuteList")
        elif expected_s > 0 and mark_time_s <= 0:
            why = _("the board reports a mark time of 0 s")
        elif (
            expected_s > MARK_TIME_CHECK_ABOVE_S and mark_time_s < MARK_TIME_MIN_RATIO * expected_s
        ):
            why = _(
                "the board reports {mark_time_s:.3f} s of marking for a list estimated at "
                "{expected_s:.3f} s (below {ratio:.0%})"
            ).format(mark_time_s=mark_time_s, expected_s=expected_s, ratio=MARK_TIME_MIN_RATIO)
        if why:
            raise DeviceReset(
                _(
                    "{url}: {why}; it may have reset mid-list: whether the mark is complete is "
                    "unknown"
                ).format(url=self.url, why=why),
                may_have_emitted=True,
            )

    # --- abort and emission off ----------------------------------------------------------------------

    def _abort(self) -> None:
        if self._transport is None:
            return
        with self._lock:
            off = self._ports & ~self._laser_bit & ~self._pointer_bit
            steps: Sequence[tuple[int, tuple[int, ...]]] = (
                (Cmd.STOP_EXECUTE, ()),
                (Cmd.FIBER_SET_MO, (0,)),
                (Cmd.RESET_LIST, ()),
                (Cmd.WRITE_PORT, (off,)),
            )
            for op, words in steps:
                try:
                    self._ask(op, *words)
                except DeviceError as exc:
                    log.warning("abort step %s failed: %s", Cmd(op).name, exc)
            self._ports = off

    def _emission_off(self) -> None:
        if self._transport is None:
            return
        with self._lock:
            for op, words in (
                (Cmd.FIBER_SET_MO, (0,)),
                (Cmd.WRITE_PORT, (self._ports & ~self._laser_bit,)),
            ):
                try:
                    self._ask(op, *words)
                except DeviceError as exc:
                    log.warning("could not confirm %s: %s", Cmd(op).name, exc)
            self._ports &= ~self._laser_bit

    # --- frame ---------------------------------------------------------------------------------------

    def _frame(self, job: Job, stop: Callable[[], bool]) -> int:
        """One list per trace; ``stop()`` is consulted once after each complete trace."""
        self._armed = False
        packets = codec.pack_list(codec.frame_entries(job, self.machine, 1))
        traces = 0
        with self._emission_context():
            with self._lock:
                self._ask(Cmd.FIBER_SET_MO, 0)
                self._write_ports((self._ports | self._pointer_bit) & ~self._laser_bit)
            try:
                while True:
                    self._run_cmd(Cmd.RESET_LIST)
                    self._trace_once(packets)
                    traces += 1
                    if stop():
                        return traces
            finally:
                with self._lock:
                    for op, words in (
                        (Cmd.STOP_EXECUTE, ()),
                        (Cmd.WRITE_PORT, (self._ports & ~self._pointer_bit,)),
                        (Cmd.RESET_LIST, ()),
                    ):
                        try:
                            self._ask(op, *words)
                        except DeviceError as exc:
                            log.warning("ending the trace: %s", exc)
                    self._ports &= ~self._pointer_bit

    def _trace_once(self, packets: Sequence[bytes]) -> None:
        started = False
        for n, packet in enumerate(packets, start=1):
            self._wait(
                lambda r: bool(r.ready),
                limit_s=READY_TIMEOUT_S,
                what=_("the board did not take the trace"),
                tick=lambda: None,
                interlock=False,  # the pointer cannot burn; framing with the door open is normal
            )
            with self._lock:
                self._check_abort()
                self._packet(packet)
                self._ask(Cmd.SET_END_OF_LIST, 0)
                if not started and (n == 2 or n == len(packets)):
                    self._ask(Cmd.EXECUTE_LIST, retry=False)
                    started = True
        self._wait(
            lambda r: bool(r.ready) and not r.busy,
            limit_s=READY_TIMEOUT_S + 10.0 * len(packets),
            what=_("the board did not finish the trace"),
            tick=lambda: None,
            interlock=False,
        )


# --- discovery ---------------------------------------------------------------------------------------


def discover() -> list[DeviceInfo]:
    """Real LMC boards on USB (none when libusb or a USB bus is missing), then sim://lmc."""
    found: list[DeviceInfo] = []
    try:
        boards = find_boards(libusb_backend(), where="usb://lmc")
    except DeviceError as exc:
        log.info("no USB scan: %s", exc)
        boards = []
    for i, dev in enumerate(boards):
        serial = usb_serial(dev)
        url = f"usb://lmc?serial={serial}" if serial else f"usb://lmc?index={i}"
        found.append(
            DeviceInfo(
                url=url,
                protocol="lmc",
                model=MODEL,
                firmware="",
                serial=serial,
                simulated=False,
                extra={"bus": f"{getattr(dev, 'bus', '?')}.{getattr(dev, 'address', '?')}"},
            )
        )
    found.append(_simulator_info())
    return found


def _simulator_info() -> DeviceInfo:
    """sim://lmc as the driver sees it (the simulated GRBL is listed by the GRBL driver)."""
    from markstation.profiles import default_machine_for

    try:
        with LmcDriver.from_url(DeviceURL.parse("sim://lmc"), default_machine_for("lmc")) as sim:
            info = sim.info()
    except (DeviceError, ConfigError, ImportError) as exc:
        log.info("simulated LMC board unavailable: %s", exc)
        return DeviceInfo("sim://lmc", "lmc", MODEL, "", "", True)
    return dataclasses.replace(info, extra={})


__all__ = ["MODEL", "LmcDriver", "discover"]
