"""The one Driver base class every protocol implements, and what it reports.

The base owns what must be the same for every marker: the safety limit check of a job against the
machine profile (before a single byte goes out), listener dispatch, the open/close life cycle, and the
rule that emission is switched off after any error. A protocol implements the ``_hooks``.

Threading: ``run()`` and ``frame()`` block the calling thread; ``abort()`` may be called from any
other thread (a signal handler's helper thread, the pedal watcher, the UI) at any time and must make
the device stop emitting as fast as the protocol allows.
"""

from __future__ import annotations

import logging
import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from types import TracebackType
from typing import Any, Protocol

from markstation.errors import DeviceError, SafetyLimitError
from markstation.i18n import _
from markstation.job.ir import Job
from markstation.profiles import MachineProfile

log = logging.getLogger(__name__)


class DeviceState(Enum):
    CLOSED = "closed"
    IDLE = "idle"
    RUNNING = "running"
    FRAMING = "framing"
    ALARM = "alarm"
    ERROR = "error"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True)
class DeviceInfo:
    """Identity of a device: recorded in the journal with every outcome."""

    url: str
    protocol: str  # "lmc" | "grbl"
    model: str
    firmware: str
    serial: str
    simulated: bool
    extra: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "protocol": self.protocol,
            "model": self.model,
            "firmware": self.firmware,
            "serial": self.serial,
            "simulated": self.simulated,
            **{f"extra.{k}": v for k, v in self.extra.items()},
        }


@dataclass(frozen=True)
class Inputs:
    """Input port reading. ``interlock_closed`` is None when the machine has no interlock wired."""

    raw: int
    pedal_pressed: bool
    interlock_closed: bool | None
    #: e-stop / abort input where the protocol has one
    estop: bool = False


@dataclass(frozen=True)
class RunResult:
    """What the device reported at the end of a run that completed."""

    complete: bool
    elapsed_s: float
    #: the device's own mark time where it reports one (LMC GetMarkTime), else None
    device_mark_time_s: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class RunListener(Protocol):
    """Receives progress from a running job. Every method is optional in spirit: see NullListener."""

    def on_started(self, job: Job) -> None: ...

    def on_progress(self, fraction: float, elapsed_s: float) -> None: ...

    def on_emission_possible(self) -> None:
        """Called just before the first byte that could fire the laser is sent."""

    def on_finished(self, result: RunResult) -> None: ...


class NullListener:
    """A listener that ignores everything: adapters subclass it and override what they need."""

    def on_started(self, job: Job) -> None:
        pass

    def on_progress(self, fraction: float, elapsed_s: float) -> None:
        pass

    def on_emission_possible(self) -> None:
        pass

    def on_finished(self, result: RunResult) -> None:
        pass


class FanOut:
    """One listener that hands every event to several, in the order given."""

    def __init__(self, *listeners: RunListener) -> None:
        self.listeners = listeners

    def on_started(self, job: Job) -> None:
        for each in self.listeners:
            each.on_started(job)

    def on_progress(self, fraction: float, elapsed_s: float) -> None:
        for each in self.listeners:
            each.on_progress(fraction, elapsed_s)

    def on_emission_possible(self) -> None:
        for each in self.listeners:
            each.on_emission_possible()

    def on_finished(self, result: RunResult) -> None:
        for each in self.listeners:
            each.on_finished(result)


def check_job_limits(job: Job, machine: MachineProfile) -> None:
    """Refuse (SafetyLimitError, nothing sent) a job outside the machine's power, speed or field limits."""
    fld = machine.field
    for layer in job.layers:
        p = layer.params
        where = f"layer '{layer.name}'"
        if not (0 <= p.power_pct <= machine.power_pct_max):
            raise SafetyLimitError(
                _("{where}: power {power} is outside 0..{power_max} of machine '{name}'").format(
                    where=where,
                    power=f"{p.power_pct:g} %",  # the "%" outside the msgid: not a %-format
                    power_max=f"{machine.power_pct_max:g} %",
                    name=machine.name,
                )
            )
        if not (machine.speed_mm_s_min <= p.speed_mm_s <= machine.speed_mm_s_max):
            raise SafetyLimitError(
                _(
                    "{where}: speed {speed_mm_s:g} mm/s is outside {speed_mm_s_min:g}..{speed_mm_s_max:g} mm/s of machine '{name}'"
                ).format(
                    where=where,
                    speed_mm_s=p.speed_mm_s,
                    speed_mm_s_min=machine.speed_mm_s_min,
                    speed_mm_s_max=machine.speed_mm_s_max,
                    name=machine.name,
                )
            )
        if not (0 < p.jump_speed_mm_s <= machine.jump_speed_mm_s_max):
            raise SafetyLimitError(
                _(
                    "{where}: jump speed {jump_speed_mm_s:g} mm/s is above {jump_speed_mm_s_max:g} mm/s of machine '{name}'"
                ).format(
                    where=where,
                    jump_speed_mm_s=p.jump_speed_mm_s,
                    jump_speed_mm_s_max=machine.jump_speed_mm_s_max,
                    name=machine.name,
                )
            )
        if not (machine.frequency_khz_min <= p.frequency_khz <= machine.frequency_khz_max):
            raise SafetyLimitError(
                _(
                    "{where}: frequency {frequency_khz:g} kHz is outside {frequency_khz_min:g}..{frequency_khz_max:g} kHz of machine '{name}'"
                ).format(
                    where=where,
                    frequency_khz=p.frequency_khz,
                    frequency_khz_min=machine.frequency_khz_min,
                    frequency_khz_max=machine.frequency_khz_max,
                    name=machine.name,
                )
            )
        if p.pulse_width_ns is not None and p.pulse_width_ns not in machine.pulse_width_ns:
            allowed = (
                ", ".join(f"{w:g}" for w in machine.pulse_width_ns) or "none (not a MOPA source)"
            )
            raise SafetyLimitError(
                _(
                    "{where}: pulse width {pulse_width_ns:g} ns is not one of machine '{name}' ({allowed})"
                ).format(
                    where=where, pulse_width_ns=p.pulse_width_ns, name=machine.name, allowed=allowed
                )
            )
        for prim in layer.primitives:
            for x, y in prim.points:
                if not (math.isfinite(x) and math.isfinite(y) and fld.contains(x, y)):
                    raise SafetyLimitError(
                        _(
                            "{where}: point ({x:.3f}, {y:.3f}) mm is outside the {field_width_mm:g} × {field_height_mm:g} mm field of machine '{name}'"
                        ).format(
                            where=where,
                            x=x,
                            y=y,
                            field_width_mm=machine.field_width_mm,
                            field_height_mm=machine.field_height_mm,
                            name=machine.name,
                        )
                    )


class Driver(ABC):
    """A marker. Use as a context manager; ``open()``/``close()`` are idempotent.

    Subclasses implement the hooks below; the public methods are defined here once.
    """

    protocol: str = ""

    def __init__(self, url: str, machine: MachineProfile) -> None:
        self.url = url
        self.machine = machine
        self._state = DeviceState.CLOSED
        self._lock = threading.RLock()
        self._abort_requested = threading.Event()

    # --- life cycle ------------------------------------------------------------------------------

    def __enter__(self) -> Driver:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> None:
        if self._state is not DeviceState.CLOSED:
            return
        self._open()
        self._state = DeviceState.IDLE

    def close(self) -> None:
        if self._state is DeviceState.CLOSED:
            return
        try:
            self._safe_off()
        finally:
            self._close()
            self._state = DeviceState.CLOSED

    def state(self) -> DeviceState:
        return self._state

    # --- operations --------------------------------------------------------------------------------

    def info(self) -> DeviceInfo:
        return self._info()

    def read_inputs(self) -> Inputs:
        return self._read_inputs()

    def run(self, job: Job, listener: RunListener | None = None) -> RunResult:
        """Mark ``job``; return only once the device itself reports completion.

        Raises SafetyLimitError (nothing sent) for a job outside the machine's limits, Aborted when
        ``abort()`` was called, and other DeviceErrors; after any error emission is switched off.
        """
        check_job_limits(job, self.machine)
        lst: RunListener = listener if listener is not None else NullListener()
        self._abort_requested.clear()
        self._state = DeviceState.RUNNING
        try:
            lst.on_started(job)
            result = self._run(job, lst)
        except BaseException:
            self._state = DeviceState.ERROR
            self._safe_off()
            raise
        self._state = DeviceState.IDLE
        lst.on_finished(result)
        return result

    def frame(self, job: Job, stop: Callable[[], bool]) -> int:
        """Trace the outline of ``job`` with the red pointer (beam never fires) until ``stop()``.

        Returns the number of traces completed.
        """
        check_job_limits(job, self.machine)
        self._abort_requested.clear()
        self._state = DeviceState.FRAMING
        try:
            count = self._frame(job, stop)
        except BaseException:
            self._state = DeviceState.ERROR
            self._safe_off()
            raise
        self._state = DeviceState.IDLE
        return count

    def abort(self) -> None:
        """Stop emission now. Safe from any thread, at any time, also when idle."""
        self._abort_requested.set()
        self._abort()

    @property
    def abort_requested(self) -> bool:
        return self._abort_requested.is_set()

    def _safe_off(self) -> None:
        """Switch emission off, never raising (the device may already be gone)."""
        try:
            self._emission_off()
        except (DeviceError, OSError) as exc:
            log.warning("could not confirm emission off on %s: %s", self.url, exc)

    # --- hooks -------------------------------------------------------------------------------------

    @abstractmethod
    def _open(self) -> None: ...

    @abstractmethod
    def _close(self) -> None: ...

    @abstractmethod
    def _info(self) -> DeviceInfo: ...

    @abstractmethod
    def _read_inputs(self) -> Inputs: ...

    @abstractmethod
    def _run(self, job: Job, listener: RunListener) -> RunResult: ...

    @abstractmethod
    def _frame(self, job: Job, stop: Callable[[], bool]) -> int: ...

    @abstractmethod
    def _abort(self) -> None: ...

    @abstractmethod
    def _emission_off(self) -> None: ...
