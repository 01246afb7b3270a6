"""GRBL 1.1 laser markers over a serial port (``serial://PORT?protocol=grbl``) or simulated (``sim://grbl``).

The conversation: soft-reset (0x18) and wait for the banner (opening a port flushes anything
printed before), ``$I`` for the receive-buffer size where the firmware reports it, ``$$`` for the
settings, compared once with the profile (:mod:`.settings_check`): a job is refused when a
setting would change its power or speed (``$32``, ``$30``, ``$31``, ``$110``/``$111`` below its
feeds); time-only differences are adopted for the estimate (:attr:`GrblDriver.estimate_settings`). Streaming is in :mod:`.stream`; an alarm leaves the controller locked until the operator
calls :meth:`GrblDriver.unlock` (``$X``).

Layers: :mod:`.transport` opens real serial ports (a ``sim://grbl`` port comes from the registry's
simulated transport, so this package never imports the simulator), :mod:`.link` reads and parses
replies in a thread of its own, :mod:`.stream` sends programs. ``abort()`` writes 0x18 from any
thread.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from markstation.devices.base import DeviceInfo, DeviceState, Driver, Inputs, RunListener, RunResult
from markstation.devices.grbl.codec import (
    CYCLE_START,
    FEED_HOLD,
    SOFT_RESET,
    BuildOptions,
    ErrorReply,
    Geometry,
    Ok,
    Program,
    VersionInfo,
    encode_frame,
    encode_job,
    settings_from,
)
from markstation.devices.grbl.link import GrblLink, Restarted
from markstation.devices.grbl.settings_check import SettingsCheck, check_settings
from markstation.devices.grbl.stream import STREAMING, Streamer
from markstation.devices.grbl.transport import Port, open_serial
from markstation.devices.registry import simulated_transport
from markstation.devices.url import DeviceURL, parse_int_option
from markstation.errors import (
    ConfigError,
    DeviceAlarm,
    DeviceDisconnected,
    DeviceError,
    DeviceProtocolError,
    DeviceReset,
    InterlockOpen,
    SafetyLimitError,
)
from markstation.i18n import _
from markstation.job.ir import Job
from markstation.profiles import MachineProfile

log = logging.getLogger(__name__)

SERIAL_KEYS = ("protocol", "baud", "streaming")
#: the driver's own options on a sim:// URL (the simulator adds its own)
SIM_DRIVER_KEYS = ("streaming", "baud")
#: pins letters of a status report, in bit order for Inputs.raw
PINS = "XYZPDHRS"


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
        sim_options: dict[str, str] | None = None,
    ) -> None:
        super().__init__(url, machine)
        opts = machine.options
        self.geometry = Geometry.from_machine(machine)
        self.port_url = port_url
        self.baud = baud
        self.simulated = simulated
        self.streaming = streaming
        self.sim_options = dict(sim_options or {})
        self.rx_buffer = int(opts.get("rx_buffer_bytes", 128))
        self.status_interval_s = float(opts.get("status_interval_s", 0.2))
        self.response_timeout_s = float(opts.get("response_timeout_s", 5.0))
        self._link: GrblLink | None = None
        self._simulator: Any = None
        # identity and settings, from the handshake
        self.version: VersionInfo | None = None
        self.build: BuildOptions | None = None
        self.settings: dict[int, str] = {}
        #: the settings against the profile (refusal, adopted time-only values), from the handshake
        self.settings_check: SettingsCheck | None = None
        self.planner_blocks: int | None = None
        #: the number of lines and bytes the last run streamed
        self.last_stream: dict[str, Any] = {}
        #: a device error met on another thread (the e-stop watcher) during the current run
        self._run_fault: DeviceError | None = None

    # --- construction ----------------------------------------------------------------------------

    @classmethod
    def from_url(cls, url: DeviceURL, machine: MachineProfile) -> GrblDriver:
        sim = simulated_transport("grbl") if url.scheme == "sim" else None
        keys = (*SIM_DRIVER_KEYS, *sim.options) if sim is not None else SERIAL_KEYS
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
        if sim is not None:
            sim.check_options(url, opts)
            return cls(
                url.raw,
                machine,
                port_url=url.raw,
                baud=baud,
                simulated=True,
                streaming=streaming,
                sim_options=opts,
            )
        port = url.path or url.host
        if not port:
            raise ConfigError(
                _(
                    "device URL '{raw}': no serial port; e.g. serial:///dev/ttyUSB0?protocol=grbl"
                ).format(raw=url.raw)
            )
        return cls(url.raw, machine, port_url=port, baud=baud, simulated=False, streaming=streaming)

    @property
    def simulator(self) -> Any:
        """The simulated controller behind a ``sim://grbl`` port (None for real hardware)."""
        return self._simulator

    @property
    def locked(self) -> bool:
        """The controller is in an alarm lock (only ``$X`` or homing clears it)."""
        return self._link is not None and self._link.locked

    # --- life cycle ------------------------------------------------------------------------------

    def _open_port(self) -> Port:
        if not self.simulated:
            return open_serial(self.port_url, self.baud, url=self.url)
        sim_link = simulated_transport("grbl").open(
            DeviceURL.parse(self.url), self.sim_options, self.machine
        )
        port = sim_link.transport
        # the same settings a real port gets (the modelled link reads the baud rate)
        port.baudrate, port.timeout, port.write_timeout = self.baud, 0.05, 5.0
        self._simulator = sim_link.simulator
        opened: Port = port
        return opened

    def _open(self) -> None:
        port = self._open_port()
        self._link = GrblLink(
            port,
            url=self.url,
            where=f"{self.port_url} at {self.baud} baud",
            response_timeout_s=self.response_timeout_s,
        )
        try:
            self._handshake()
        except BaseException:
            self._close()
            raise

    def _close(self) -> None:
        link, self._link = self._link, None
        self._simulator = None
        if link is not None:
            link.close()

    def _line(self, emitted: bool = False) -> GrblLink:
        link = self._link
        if link is None:
            raise DeviceDisconnected(
                _("{url}: port is closed").format(url=self.url), may_have_emitted=emitted
            )
        return link

    def state(self) -> DeviceState:
        if self._state is DeviceState.IDLE and self.locked:
            return DeviceState.ALARM
        return self._state

    # --- handshake -------------------------------------------------------------------------------

    def _handshake(self) -> None:
        link = self._line()
        for _attempt in range(3):
            link.soft_reset(emitted=False)
            try:
                reply, pushes = link.command("$I")
                if isinstance(reply, Ok):
                    for msg in pushes:
                        if isinstance(msg, VersionInfo):
                            self.version = msg
                        elif isinstance(msg, BuildOptions):
                            self.build = msg
                reply, pushes = link.command("$$")
                if isinstance(reply, ErrorReply):
                    raise DeviceProtocolError(
                        _("{url}: '$$' refused with error:{code} ({text})").format(
                            url=self.url, code=reply.code, text=reply.text
                        ),
                        may_have_emitted=False,
                    )
                self.settings = settings_from(pushes)
                self.settings_check = check_settings(self.settings, self.machine, url=self.url)
                link.query_status()
            except Restarted:
                continue  # the board rebooted after our reset (DTR on open): start over
            break
        else:
            raise DeviceReset(
                _("{url}: the controller kept restarting during the handshake").format(
                    url=self.url
                ),
                may_have_emitted=False,
            )
        if self.build is not None:
            if self.build.rx_bytes:
                self.rx_buffer = self.build.rx_bytes
            self.planner_blocks = self.build.blocks
        with link.cv:
            link.garbage.clear()

    def settings_problem(self, job: Job | None = None) -> str | None:
        """Why the controller's settings disagree with the machine profile (for ``job``: also a
        feed GRBL would clamp), or None (see :mod:`.settings_check`)."""
        check = self.settings_check
        if check is None:
            return _("{url}: the controller's settings ($$) have not been read").format(
                url=self.url
            )
        return check.refusal if job is None else check.job_problem(job, self.geometry)

    @property
    def estimate_settings(self) -> dict[int, float]:
        """The time-only settings ($110/$111/$120/$121/$11) the controller holds where they
        differ from the profile: pass them to ``device_estimate(..., settings=)``."""
        return dict(self.settings_check.adopted) if self.settings_check else {}

    def _check_ready(self, job: Job | None = None) -> None:
        problem = self.settings_problem(job)
        if problem:
            raise SafetyLimitError(problem)
        status = self._line().query_status()
        if status.state in ("Alarm", "Sleep") or self.locked:
            raise DeviceAlarm(
                _(
                    "{url}: the controller is in {state} (locked); inspect the machine, "
                    "then unlock it ($X: GrblDriver.unlock()) or home it"
                ).format(url=self.url, state=status.state),
                may_have_emitted=False,
            )
        if status.state == "Door":
            raise InterlockOpen(
                _("{url}: the safety door is open").format(url=self.url), may_have_emitted=False
            )
        if status.state not in ("Idle", "Check"):
            raise DeviceError(
                _("{url}: the controller is busy ({state}); wait until it is Idle").format(
                    url=self.url, state=status.state
                ),
                may_have_emitted=False,
            )

    # --- operations --------------------------------------------------------------------------------

    def _info(self) -> DeviceInfo:
        link = self._line()
        banner, status = link.banner, link.status
        firmware = banner.firmware if banner else "Grbl"
        version = banner.version if banner else "?"
        model = ("grblHAL" if firmware == "GrblHAL" else "GRBL") + f" {version}"
        extra = {
            "rx_buffer": str(self.rx_buffer),
            "laser_mode ($32)": self.settings.get(32, "?"),
            "max_s ($30)": self.settings.get(30, "?"),
            "state": status.state if status else "?",
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
        try:
            status = self._line().query_status()
        except DeviceError as exc:
            if self._state is DeviceState.RUNNING and self._run_fault is None:
                # e.g. the e-stop watcher's query: the run must not end as complete after it
                self._run_fault = exc
            raise
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
        link = self._line()
        reply, _pushes = link.command("$X")
        if isinstance(reply, ErrorReply):
            cls = InterlockOpen if reply.code == 13 else DeviceError
            raise cls(
                _("{url}: '$X' refused: error:{code} ({text})").format(
                    url=self.url, code=reply.code, text=reply.text
                ),
                may_have_emitted=False,
            )
        status = link.query_status()
        with link.cv:
            said = [m for m in link.messages if m.startswith("Caution")]
        return said[-1] if said else f"state {status.state}"

    def hold(self) -> None:
        """Feed hold (``!``): decelerate and stop; in laser mode GRBL switches the beam off."""
        self._line(True).write(FEED_HOLD)

    def resume(self) -> None:
        """Cycle start (``~``): continue after a feed hold."""
        self._line(True).write(CYCLE_START)

    def _run(self, job: Job, listener: RunListener) -> RunResult:
        self._run_fault = None
        self._check_ready(job)
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
        self._run_fault = None
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
                _(
                    "{url}: a G-code line of {longest} bytes does not fit the controller's "
                    "{rx_buffer}-byte receive buffer"
                ).format(url=self.url, longest=longest, rx_buffer=self.rx_buffer),
                may_have_emitted=False,
            )

    def _abort(self) -> None:
        link = self._link
        if link is None:
            return
        with link.cv:
            banner0 = link.banner_seq
        try:
            link.write(SOFT_RESET)
        except DeviceError as exc:
            log.warning("abort: %s", exc)
            return
        if not link.streaming:
            # nobody else waits for the banner; do it here so the next run starts clean
            link.wait_banner(banner0)

    def _emission_off(self) -> None:
        link = self._link
        if link is None:
            return
        with link.cv:
            link.check(True)
            locked = link.locked
        if locked:
            return  # a reset already switched the output off, and M5 is refused in Alarm
        if self._door_open(link):
            return  # the door state de-energises the laser; an M5 would wait in the hold
        with contextlib.suppress(Restarted):  # a banner means the output is off anyway
            link.command("M5", timeout=self.response_timeout_s)

    def _door_open(self, link: GrblLink) -> bool:
        """The controller is in its Door state now (the last report said so, and a fresh ``?``
        confirms it): GRBL has switched the laser off and holds every line until the door closes
        and a cycle start, so no ``ok`` would come for an ``M5``."""
        last = link.status
        if last is None or last.state != "Door":
            return False
        try:
            return link.query_status().state == "Door"
        except DeviceError:
            return False

    def _streamer(self) -> Streamer:
        return Streamer(
            self._line(),
            rx_buffer=self.rx_buffer,
            status_interval_s=self.status_interval_s,
            response_timeout_s=self.response_timeout_s,
            mode=self.streaming,
            aborted=lambda: self.abort_requested,
            fault=lambda: self._run_fault,
        )

    def _stream(self, program: Program, listener: RunListener | None) -> None:
        self.last_stream = self._streamer().stream(program, listener)


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
