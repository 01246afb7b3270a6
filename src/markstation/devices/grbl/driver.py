"""GRBL 1.1 laser markers over a serial port (``serial://PORT?protocol=grbl``) or simulated (``sim://grbl``).

The conversation: open the port through ``serial_for_url`` (never ``serial.Serial``, which ignores
URL handlers), soft-reset (0x18) and wait for the banner (opening a port flushes anything printed
before), ``$I`` for the receive-buffer size where the firmware reports it, ``$$`` for the settings.
A job is refused unless laser mode is on (``$32=1``) and ``$30`` equals the profile's ``max_s``.

Streaming uses character counting: a line is written only while the bytes of all unanswered lines
plus its own fit the controller's receive buffer, and one entry leaves the count per ``ok`` or
``error:N``; bytes beyond the buffer would be silently lost by the controller. ``?`` is polled for
liveness and state. A run is complete only when every line has its ``ok`` and a status report that
arrived after the last ``ok`` says Idle. Any error, alarm, reset banner, disconnect or abort ends the
run with a soft reset (the laser off at once) and the matching DeviceError; an alarm leaves the
controller locked until the operator calls :meth:`GrblDriver.unlock` (``$X``).

A reader thread owns the port's input; ``abort()`` writes 0x18 from any thread.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from markstation.devices.base import DeviceInfo, DeviceState, Driver, Inputs, RunListener, RunResult
from markstation.devices.grbl.codec import (
    CYCLE_START,
    FEED_HOLD,
    SOFT_RESET,
    STATUS_QUERY,
    AlarmMessage,
    Banner,
    BuildOptions,
    ErrorReply,
    Feedback,
    Geometry,
    LineSplitter,
    Message,
    Ok,
    Program,
    Status,
    VersionInfo,
    alarm_text,
    encode_frame,
    encode_job,
    parse_line,
    settings_from,
)
from markstation.devices.url import DeviceURL, parse_int_option
from markstation.errors import (
    Aborted,
    BackendUnavailable,
    ConfigError,
    DeviceAlarm,
    DeviceDisconnected,
    DeviceError,
    DeviceNotFound,
    DevicePermissionError,
    DeviceProtocolError,
    DeviceReset,
    DeviceTimeout,
    InterlockOpen,
    SafetyLimitError,
)
from markstation.job.ir import Job
from markstation.profiles import MachineProfile

if TYPE_CHECKING:
    import serial

    from markstation.devices.sim.grbl_sim import GrblSim

log = logging.getLogger(__name__)

SERIAL_KEYS = ("protocol", "baud", "streaming")
SIM_KEYS = ("timing", "ledger", "fault", "settings", "link", "streaming", "baud")
STREAMING = ("counting", "send-response")
#: how long to wait for the banner after a soft reset (an Arduino may also be rebooting on open)
BANNER_TIMEOUT_S = 5.0
#: pins letters of a status report, in bit order for Inputs.raw
PINS = "XYZPDHRS"


class _Restarted(Exception):
    """A banner arrived while waiting for a reply: the controller restarted under us."""


class GrblDriver(Driver):
    """A GRBL 1.1 (or grblHAL) controller in laser mode."""

    protocol = "grbl"

    def __init__(
        self,
        url: str,
        machine: MachineProfile,
        *,
        port_url: str,
        baud: int,
        simulated: bool,
        streaming: str = "counting",
    ) -> None:
        super().__init__(url, machine)
        opts = machine.options
        self.geometry = Geometry.from_machine(machine)
        self.port_url = port_url
        self.baud = baud
        self.simulated = simulated
        self.streaming = streaming
        self.rx_buffer = int(opts.get("rx_buffer_bytes", 128))
        self.status_interval_s = float(opts.get("status_interval_s", 0.2))
        self.response_timeout_s = float(opts.get("response_timeout_s", 5.0))
        self._port: serial.SerialBase | None = None
        self._reader: threading.Thread | None = None
        self._closing = False
        self._write_lock = threading.Lock()
        self._cv = threading.Condition()
        # shared with the reader thread, guarded by _cv
        self._responses: deque[Ok | ErrorReply] = deque()
        self._pushes: list[Message] = []
        self._messages: list[str] = []
        self._alarms: list[AlarmMessage] = []
        self._status: Status | None = None
        self._status_seq = 0
        self._banner: Banner | None = None
        self._banner_seq = 0
        self._link_error: BaseException | None = None
        self._garbage: list[str] = []
        self._streaming = False
        # identity and settings, from the handshake
        self.version: VersionInfo | None = None
        self.build: BuildOptions | None = None
        self.settings: dict[int, str] = {}
        self.planner_blocks: int | None = None
        self.locked = False
        #: the number of lines and bytes the last run streamed
        self.last_stream: dict[str, Any] = {}

    # --- construction ----------------------------------------------------------------------------

    @classmethod
    def from_url(cls, url: DeviceURL, machine: MachineProfile) -> GrblDriver:
        keys = SIM_KEYS if url.scheme == "sim" else SERIAL_KEYS
        opts = url.check_keys(keys)
        streaming = opts.pop("streaming", "counting")
        if streaming not in STREAMING:
            raise ConfigError(
                f"device URL '{url.raw}': option 'streaming={streaming}' is not one of "
                + ", ".join(STREAMING)
            )
        baud_text = opts.pop("baud", None)
        baud = int(machine.options.get("baud", 115200))
        if baud_text is not None:
            baud = parse_int_option(url, "baud", baud_text, minimum=300)
        if url.scheme == "sim":
            _check_sim_options(url, opts)
            port_url = "sim://grbl?" + urlencode({**opts, "machine": str(machine.path)})
            return cls(
                url.raw, machine, port_url=port_url, baud=baud, simulated=True, streaming=streaming
            )
        port = url.path or url.host
        if not port:
            raise ConfigError(
                f"device URL '{url.raw}': no serial port; e.g. serial:///dev/ttyUSB0?protocol=grbl"
            )
        return cls(url.raw, machine, port_url=port, baud=baud, simulated=False, streaming=streaming)

    @property
    def simulator(self) -> GrblSim | None:
        """The simulated controller behind a ``sim://grbl`` port (None for real hardware)."""
        return getattr(self._port, "simulator", None)

    # --- life cycle ------------------------------------------------------------------------------

    def _open(self) -> None:
        try:
            import serial
        except ImportError as exc:
            raise BackendUnavailable(f"{self.url}: pyserial is not installed ({exc})") from exc
        from markstation.devices.sim.serialsim import open_port

        try:
            self._port = open_port(
                self.port_url, baudrate=self.baud, timeout=0.05, write_timeout=5.0
            )
        except serial.SerialException as exc:
            errno = getattr(exc, "errno", None)
            text = str(exc)
            if errno == 13 or "Permission denied" in text:
                raise DevicePermissionError(
                    f"{self.url}: permission denied on {self.port_url} (add yourself to the "
                    "'dialout' group, or see drivers/)"
                ) from exc
            raise DeviceNotFound(f"{self.url}: cannot open {self.port_url} ({text})") from exc
        except ValueError as exc:
            raise ConfigError(f"device URL '{self.url}': {exc}") from exc
        self._closing = False
        self._reader = threading.Thread(target=self._read_loop, name="grbl-reader", daemon=True)
        self._reader.start()
        try:
            self._handshake()
        except BaseException:
            self._close()
            raise

    def _close(self) -> None:
        self._closing = True
        port, self._port = self._port, None
        if self._reader is not None:
            self._reader.join(timeout=2.0)
            self._reader = None
        if port is not None:
            try:
                port.close()
            except Exception as exc:  # closing a vanished port must not hide the real error
                log.debug("closing %s: %s", self.port_url, exc)

    def state(self) -> DeviceState:
        if self._state is DeviceState.IDLE and self.locked:
            return DeviceState.ALARM
        return self._state

    # --- reading ---------------------------------------------------------------------------------

    def _read_loop(self) -> None:
        splitter = LineSplitter()
        port = self._port
        assert port is not None
        while not self._closing:
            try:
                data = port.read(max(1, int(getattr(port, "in_waiting", 0))))
            except Exception as exc:  # pyserial raises SerialException, OSError, TypeError…
                if not self._closing:
                    with self._cv:
                        self._link_error = exc
                        self._cv.notify_all()
                return
            if not data:
                continue
            try:
                lines = splitter.feed(data)
            except DeviceProtocolError as exc:
                lines = []
                self._note_garbage(str(exc))
            for raw in lines:
                try:
                    msg = parse_line(raw)
                except DeviceProtocolError as exc:
                    self._note_garbage(str(exc))
                    continue
                log.debug("%s <- %r", self.url, msg)
                self._dispatch(msg)

    def _note_garbage(self, text: str) -> None:
        log.warning("%s: %s", self.url, text)
        with self._cv:
            self._garbage.append(text)
            self._cv.notify_all()

    def _dispatch(self, msg: Message) -> None:
        with self._cv:
            if isinstance(msg, (Ok, ErrorReply)):
                self._responses.append(msg)
            elif isinstance(msg, Status):
                self._status = msg
                self._status_seq += 1
                self.locked = msg.state == "Alarm"
            elif isinstance(msg, AlarmMessage):
                self._alarms.append(msg)
                self.locked = True
            elif isinstance(msg, Banner):
                self._banner = msg
                self._banner_seq += 1
            elif isinstance(msg, Feedback) and msg.kind == "MSG":
                self._messages.append(msg.text)
                if "to unlock" in msg.text:
                    self.locked = True
                elif msg.text.startswith("Caution: Unlocked"):
                    self.locked = False
            else:
                self._pushes.append(msg)
            self._cv.notify_all()

    # --- writing ---------------------------------------------------------------------------------

    def _write(self, data: bytes, *, emitted: bool = True) -> None:
        port = self._port
        if port is None:
            raise DeviceDisconnected(f"{self.url}: port is closed", may_have_emitted=emitted)
        log.debug("%s -> %r", self.url, data)
        try:
            with self._write_lock:
                port.write(data)
        except Exception as exc:
            raise DeviceDisconnected(
                f"{self.url}: write failed ({exc}); the controller is gone",
                may_have_emitted=emitted,
            ) from exc

    def _check_link(self, emitted: bool) -> None:
        """Raise for a dead link (caller holds _cv)."""
        if self._link_error is not None:
            raise DeviceDisconnected(
                f"{self.url}: connection lost ({self._link_error})", may_have_emitted=emitted
            )

    def _command(
        self, line: str, *, timeout: float | None = None
    ) -> tuple[Ok | ErrorReply, list[Message]]:
        """Send one line and wait for its reply (send-response); the push messages it produced."""
        limit = self.response_timeout_s if timeout is None else timeout
        with self._cv:
            self._responses.clear()
            self._pushes.clear()
            banner0 = self._banner_seq
        self._write(line.encode("ascii") + b"\n", emitted=False)
        deadline = time.monotonic() + limit
        with self._cv:
            while not self._responses:
                self._check_link(False)
                if self._banner_seq != banner0:
                    raise _Restarted()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DeviceTimeout(
                        f"{self.url}: no reply to '{line}' within {limit:g} s",
                        may_have_emitted=False,
                    )
                self._cv.wait(min(left, 0.1))
            reply = self._responses.popleft()
            return reply, list(self._pushes)

    def _soft_reset(self, *, emitted: bool, timeout: float = BANNER_TIMEOUT_S) -> None:
        """0x18 and wait for the banner: laser off, buffers empty (position kept unless moving)."""
        with self._cv:
            banner0 = self._banner_seq
        self._write(SOFT_RESET, emitted=emitted)
        deadline = time.monotonic() + timeout
        with self._cv:
            while self._banner_seq == banner0:
                self._check_link(emitted)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DeviceTimeout(
                        f"{self.url}: no GRBL banner within {timeout:g} s after a soft reset "
                        f"(is a GRBL controller at {self.port_url} at {self.baud} baud?)",
                        may_have_emitted=emitted,
                    )
                self._cv.wait(min(left, 0.1))
            self._responses.clear()

    def _query_status(self, *, emitted: bool = False) -> Status:
        with self._cv:
            seq0 = self._status_seq
        self._write(STATUS_QUERY, emitted=emitted)
        deadline = time.monotonic() + self.response_timeout_s
        with self._cv:
            while self._status_seq == seq0:
                self._check_link(emitted)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DeviceTimeout(
                        f"{self.url}: no status report within {self.response_timeout_s:g} s",
                        may_have_emitted=emitted,
                    )
                self._cv.wait(min(left, 0.1))
            assert self._status is not None
            return self._status

    # --- handshake -------------------------------------------------------------------------------

    def _handshake(self) -> None:
        for _attempt in range(3):
            self._soft_reset(emitted=False)
            try:
                reply, pushes = self._command("$I")
                if isinstance(reply, Ok):
                    for msg in pushes:
                        if isinstance(msg, VersionInfo):
                            self.version = msg
                        elif isinstance(msg, BuildOptions):
                            self.build = msg
                reply, pushes = self._command("$$")
                if isinstance(reply, ErrorReply):
                    raise DeviceProtocolError(
                        f"{self.url}: '$$' refused with error:{reply.code} ({reply.text})",
                        may_have_emitted=False,
                    )
                self.settings = settings_from(pushes)
                self._query_status()
            except _Restarted:
                continue  # the board rebooted after our reset (DTR on open): start over
            break
        else:
            raise DeviceReset(
                f"{self.url}: the controller kept restarting during the handshake",
                may_have_emitted=False,
            )
        if self.build is not None:
            if self.build.rx_bytes:
                self.rx_buffer = self.build.rx_bytes
            self.planner_blocks = self.build.blocks
        with self._cv:
            self._garbage.clear()

    def settings_problem(self) -> str | None:
        """Why the controller's settings disagree with the machine profile, or None."""
        laser = _number(self.settings.get(32))
        if laser != 1:
            shown = self.settings.get(32, "missing")
            return (
                f"{self.url}: laser mode is off ($32={shown}); without it the beam stays on "
                "during G0 travel and at rest. Set it on the controller ('$32=1') and retry"
            )
        want = float(self.machine.options.get("max_s", 1000.0))
        have = _number(self.settings.get(30))
        if have is None or abs(have - want) > 1e-6:
            return (
                f"{self.url}: the controller's $30={self.settings.get(30, 'missing')} but machine "
                f"'{self.machine.name}' has grbl.max_s = {want:g} (the S of 100 % power); power "
                f"would be wrong. Set '$30={want:g}' on the controller or max_s in "
                f"{self.machine.path}"
            )
        return None

    def _check_ready(self) -> None:
        problem = self.settings_problem()
        if problem:
            raise SafetyLimitError(problem)
        status = self._query_status()
        if status.state in ("Alarm", "Sleep") or self.locked:
            raise DeviceAlarm(
                f"{self.url}: the controller is in {status.state} (locked); inspect the machine, "
                "then unlock it ($X: GrblDriver.unlock()) or home it",
                may_have_emitted=False,
            )
        if status.state == "Door":
            raise InterlockOpen(f"{self.url}: the safety door is open", may_have_emitted=False)
        if status.state not in ("Idle", "Check"):
            raise DeviceError(
                f"{self.url}: the controller is busy ({status.state}); wait until it is Idle",
                may_have_emitted=False,
            )

    # --- operations --------------------------------------------------------------------------------

    def _info(self) -> DeviceInfo:
        firmware = self._banner.firmware if self._banner else "Grbl"
        version = self._banner.version if self._banner else "?"
        model = ("grblHAL" if firmware == "GrblHAL" else "GRBL") + f" {version}"
        extra = {
            "rx_buffer": str(self.rx_buffer),
            "laser_mode ($32)": self.settings.get(32, "?"),
            "max_s ($30)": self.settings.get(30, "?"),
            "state": self._status.state if self._status else "?",
        }
        if self.planner_blocks is not None:
            extra["planner_blocks"] = str(self.planner_blocks)
        if self.build is not None:
            extra["options"] = self.build.flags
        build = self.version
        return DeviceInfo(
            url=self.url,
            protocol="grbl",
            model=model,
            firmware=f"{build.version}.{build.build}" if build and build.build else version,
            serial=build.user if build else "",
            simulated=self.simulated,
            extra=extra,
        )

    def _read_inputs(self) -> Inputs:
        status = self._query_status()
        raw = sum(1 << i for i, c in enumerate(PINS) if c in status.pins)
        return Inputs(
            raw=raw,
            pedal_pressed="S" in status.pins,  # the cycle-start input
            interlock_closed=False if ("D" in status.pins or status.state == "Door") else None,
        )

    def unlock(self) -> str:
        """Clear an alarm lock with ``$X`` — only on the operator's explicit request.

        The position may be wrong after an alarm; the operator must check the machine first.
        Returns GRBL's message.
        """
        reply, _ = self._command("$X")
        if isinstance(reply, ErrorReply):
            cls = InterlockOpen if reply.code == 13 else DeviceError
            raise cls(
                f"{self.url}: '$X' refused: error:{reply.code} ({reply.text})",
                may_have_emitted=False,
            )
        status = self._query_status()
        with self._cv:
            said = [m for m in self._messages if m.startswith("Caution")]
        return said[-1] if said else f"state {status.state}"

    def hold(self) -> None:
        """Feed hold (``!``): decelerate and stop; in laser mode GRBL switches the beam off."""
        self._write(FEED_HOLD)

    def resume(self) -> None:
        """Cycle start (``~``): continue after a feed hold."""
        self._write(CYCLE_START)

    def _run(self, job: Job, listener: RunListener) -> RunResult:
        self._check_ready()
        program = encode_job(job, self.geometry)
        self._check_program(program)
        started = time.monotonic()
        self._stream(program, listener)
        elapsed = time.monotonic() - started
        return RunResult(
            complete=True,
            elapsed_s=elapsed,
            device_mark_time_s=None,
            detail={**self.last_stream},
        )

    def _frame(self, job: Job, stop: Callable[[], bool]) -> int:
        self._check_ready()
        bounds = job.bounds()
        if bounds is None:
            return 0
        pointer_pct = min(float(self.machine.options.get("pointer_power_pct", 0.0)), 5.0)
        program = encode_frame(
            bounds,
            self.geometry,
            pointer_s=self.geometry.s_value(pointer_pct),
            feed_mm_min=self.machine.speed_mm_s_max * 60.0,
        )
        self._check_program(program)
        traces = 0
        while True:
            self._stream(program, None)
            traces += 1
            if self.abort_requested or stop():
                return traces

    def _check_program(self, program: Program) -> None:
        longest = max((len(w) for w in program.wire()), default=0)
        if longest > self.rx_buffer:
            raise DeviceProtocolError(
                f"{self.url}: a G-code line of {longest} bytes does not fit the controller's "
                f"{self.rx_buffer}-byte receive buffer",
                may_have_emitted=False,
            )

    def _abort(self) -> None:
        if self._port is None:
            return
        with self._cv:
            banner0 = self._banner_seq
        try:
            self._write(SOFT_RESET)
        except DeviceError as exc:
            log.warning("abort: %s", exc)
            return
        if not self._streaming:
            # nobody else waits for the banner; do it here so the next run starts clean
            self._wait_banner(banner0)

    def _emission_off(self) -> None:
        if self._port is None:
            return
        with self._cv:
            self._check_link(True)
            locked = self.locked
        if locked:
            return  # a reset already switched the output off, and M5 is refused in Alarm
        with contextlib.suppress(_Restarted):  # a banner means the output is off anyway
            self._command("M5", timeout=self.response_timeout_s)

    # --- streaming ----------------------------------------------------------------------------------

    def _stream(self, program: Program, listener: RunListener | None) -> None:
        """Send ``program``; return once every line has its ``ok`` and the controller is Idle."""
        wire = program.wire()
        total = len(wire)
        counting = self.streaming == "counting"
        rx = self.rx_buffer
        inflight: deque[int] = deque()  # byte counts of lines not yet answered
        in_bytes = sent = acked = 0
        emitted = False
        started = time.monotonic()
        last_poll = poll_at = 0.0
        poll_seq: int | None = None  # status count when the outstanding '?' went out
        done_seq: int | None = None  # status count when the last 'ok' arrived
        checked_seq = shown = -1
        with self._cv:
            self._responses.clear()
            self._alarms.clear()
            self._garbage.clear()
            banner0 = self._banner_seq
            self._streaming = True
        try:
            while True:
                # 1. what came back
                with self._cv:
                    replies = list(self._responses)
                    self._responses.clear()
                    failure = self._event(banner0, emitted, acked, total)
                    status, status_seq = self._status, self._status_seq
                for reply in replies:
                    if not inflight:
                        failure = failure or (
                            DeviceProtocolError(
                                f"{self.url}: got '{_reply_text(reply)}' with no line waiting "
                                "for it (the byte count drifted)",
                                may_have_emitted=emitted,
                            ),
                            True,
                        )
                        break
                    in_bytes -= inflight.popleft()
                    acked += 1
                    if isinstance(reply, ErrorReply):
                        failure = failure or (
                            DeviceProtocolError(
                                f"{self.url}: line {acked} of {total} "
                                f"'{program.lines[acked - 1]}' refused: error:{reply.code} "
                                f"({reply.text}); the run was stopped with a soft reset",
                                may_have_emitted=emitted,
                            ),
                            True,
                        )
                        break
                if failure is None and status is not None and status_seq != checked_seq:
                    checked_seq = status_seq
                    failure = self._status_failure(status, emitted, acked, total)
                if failure is not None:
                    exc, reset = failure
                    if reset:
                        self._fail_reset(emitted)
                    elif isinstance(exc, Aborted):
                        self._wait_banner(banner0)  # abort() sent the reset; let it land
                    raise exc
                # 2. completion: all answered, and a status sent after the last ok says Idle
                now = time.monotonic()
                if poll_seq is not None and status_seq > poll_seq:
                    poll_seq = None
                if acked == total:
                    if done_seq is None:
                        done_seq = status_seq
                        last_poll = 0.0  # ask now
                    elif status_seq > done_seq and status is not None:
                        if status.state == "Idle":
                            break
                        done_seq = status_seq  # still moving: ask again at the next interval
                # 3. send what fits the receive buffer (or one line at a time)
                while sent < total and (
                    (counting and in_bytes + len(wire[sent]) <= rx) or not inflight
                ):
                    if sent >= program.first_emission and not emitted:
                        if listener is not None:
                            listener.on_emission_possible()
                        emitted = True
                    self._write(wire[sent], emitted=emitted)
                    inflight.append(len(wire[sent]))
                    in_bytes += len(wire[sent])
                    sent += 1
                # 4. status polling: liveness, state, completion
                if poll_seq is not None and now - poll_at > self.response_timeout_s:
                    self._fail_reset(emitted, quiet=True)
                    raise DeviceTimeout(
                        f"{self.url}: the controller stopped answering (no status report for "
                        f"{self.response_timeout_s:g} s) at line {acked} of {total}",
                        may_have_emitted=emitted,
                    )
                if poll_seq is None and now - last_poll >= self.status_interval_s:
                    poll_seq, poll_at, last_poll = status_seq, now, now
                    self._write(STATUS_QUERY, emitted=emitted)
                if listener is not None and acked != shown:
                    shown = acked
                    listener.on_progress(acked / total if total else 1.0, now - started)
                # 5. sleep until something arrives (or the next poll is due)
                with self._cv:
                    if not self._responses and self._status_seq == status_seq:
                        due = last_poll + self.status_interval_s - time.monotonic()
                        self._cv.wait(min(max(due, 0.001), 0.25))
        finally:
            with self._cv:
                self._streaming = False
        self.last_stream = {
            "lines": total,
            "bytes": sum(len(w) for w in wire),
            "rx_buffer": rx,
            "streaming": self.streaming,
            "elapsed_s": round(time.monotonic() - started, 6),
        }

    def _event(
        self, banner0: int, emitted: bool, acked: int, total: int
    ) -> tuple[DeviceError, bool] | None:
        """A failure to raise (and whether to soft-reset first), from what the reader saw.

        The caller holds ``_cv``.
        """
        if self._link_error is not None:
            return DeviceDisconnected(
                f"{self.url}: connection lost at line {acked} of {total} ({self._link_error})",
                may_have_emitted=emitted,
            ), False
        if self.abort_requested:
            return Aborted(
                f"{self.url}: aborted at line {acked} of {total}; the laser was switched off by a "
                "soft reset" + ("; the part may be partly marked" if emitted else ""),
                may_have_emitted=emitted,
            ), False
        if self._alarms:
            alarm = self._alarms[-1]
            return DeviceAlarm(
                self._alarm_message(alarm, acked, total), may_have_emitted=emitted
            ), True
        if self._banner_seq != banner0:
            return DeviceReset(
                f"{self.url}: the controller reset itself at line {acked} of {total} (banner "
                "received); every line in flight was lost",
                may_have_emitted=emitted,
            ), False
        if self._garbage:
            return DeviceProtocolError(
                f"{self.url}: {self._garbage[-1]}", may_have_emitted=emitted
            ), True
        return None

    def _status_failure(
        self, status: Status, emitted: bool, acked: int, total: int
    ) -> tuple[DeviceError, bool] | None:
        if status.state == "Door":
            return InterlockOpen(
                f"{self.url}: safety door opened at line {acked} of {total}; the run was stopped "
                "with a soft reset",
                may_have_emitted=emitted,
            ), True
        if status.state in ("Alarm", "Sleep"):
            return DeviceAlarm(
                self._alarm_message(None, acked, total), may_have_emitted=emitted
            ), True
        return None

    def _alarm_message(self, alarm: AlarmMessage | None, acked: int, total: int) -> str:
        what = f"ALARM:{alarm.code} ({alarm_text(alarm.code)})" if alarm else "an alarm state"
        return (
            f"{self.url}: GRBL raised {what} at line {acked} of {total}; the laser is off and "
            "the controller is locked: inspect the machine, then unlock ($X: GrblDriver.unlock()) "
            "or home it"
        )

    def _fail_reset(self, emitted: bool, *, quiet: bool = False) -> None:
        """Soft reset after a failure so nothing buffered keeps running; never raises."""
        try:
            self._soft_reset(emitted=emitted, timeout=1.0 if quiet else BANNER_TIMEOUT_S)
        except DeviceError as exc:
            log.warning("%s: reset after failure not confirmed: %s", self.url, exc)

    def _wait_banner(self, banner0: int) -> bool:
        """Wait until a banner after ``banner0`` arrived (the abort's reset took effect)."""
        deadline = time.monotonic() + BANNER_TIMEOUT_S
        with self._cv:
            while self._banner_seq == banner0 and self._link_error is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    log.warning("%s: no banner after the soft reset", self.url)
                    return False
                self._cv.wait(min(left, 0.05))
        return True


def _reply_text(reply: Ok | ErrorReply) -> str:
    return "ok" if isinstance(reply, Ok) else f"error:{reply.code}"


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _check_sim_options(url: DeviceURL, opts: dict[str, str]) -> None:
    """Refuse bad simulator options before anything is opened (ConfigError naming the URL)."""
    from markstation.devices.sim.faults import parse_fault
    from markstation.devices.sim.grbl_sim import FAULT_KINDS, parse_settings
    from markstation.devices.sim.timing import parse_timing

    where = f"device URL '{url.raw}'"
    try:
        if "timing" in opts:
            parse_timing(opts["timing"])
        if "fault" in opts:
            parse_fault(opts["fault"], FAULT_KINDS)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    parse_settings(opts.get("settings", ""), where)
    if opts.get("link", "real") not in ("real", "ideal"):
        raise ConfigError(f"{where}: option 'link={opts['link']}': expected real or ideal")


def discover() -> list[DeviceInfo]:
    """The simulated GRBL, and every serial port as a possible GRBL (never raises)."""
    found = [
        DeviceInfo(
            url="sim://grbl",
            protocol="grbl",
            model="GRBL 1.1h (simulated)",
            firmware="1.1h.20190830",
            serial="",
            simulated=True,
        )
    ]
    try:
        from serial.tools import list_ports

        ports = list(list_ports.comports())
    except Exception as exc:  # no pyserial, no sysfs, a platform quirk: list what we can
        log.debug("serial port discovery failed: %s", exc)
        return found
    for p in ports:
        device = str(getattr(p, "device", "") or "")
        if not device:
            continue
        description = str(getattr(p, "description", "") or "")
        extra = {}
        if getattr(p, "vid", None) is not None:
            extra["usb"] = f"{p.vid:04x}:{p.pid or 0:04x}"
        found.append(
            DeviceInfo(
                url=f"serial://{device}?protocol=grbl&baud=115200",
                protocol="grbl",
                model=description if description not in ("", "n/a") else "serial port",
                firmware="",
                serial=str(getattr(p, "serial_number", "") or ""),
                simulated=False,
                extra=extra,
            )
        )
    return found
