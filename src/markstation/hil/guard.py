"""The emission guard the hardware-in-the-loop suite hands out instead of a bare driver.

Rule: on a device that is not a simulator (any URL whose scheme is not ``sim``), nothing that can
emit runs unless the engineer passed ``--allow-emission``. Without it the guard lets through only

* ``run()`` of a *held-off* job — every layer at ``power_pct == 0`` (see
  :func:`markstation.hil.jobs.is_held_off`): the driver streams the whole job, the source is
  commanded to zero power;
* ``frame()`` when the machine's red pointer cannot fire the source (a GRBL gantry with
  ``pointer_power_pct > 0`` frames with the beam itself, so it counts as emission);
* everything that never moves the beam (info, inputs, abort, state).

Anything else raises :class:`EmissionNotAllowed` before the driver is called. The decision rests on
the URL the engineer typed, never on what the device says about itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from markstation.devices.base import DeviceInfo, DeviceState, Driver, Inputs, RunListener, RunResult
from markstation.devices.url import DeviceURL
from markstation.errors import DeviceError, EmissionNotAllowed
from markstation.hil.jobs import is_held_off
from markstation.i18n import _
from markstation.job.ir import Job
from markstation.profiles import MachineProfile


def is_simulated_url(url: str) -> bool:
    """True only for ``sim://…`` URLs: the one kind of device that cannot fire a real source."""
    return DeviceURL.parse(url).scheme == "sim"


def frame_can_emit(machine: MachineProfile) -> bool:
    """Whether framing on ``machine`` fires the source (a GRBL head framing at low power)."""
    if machine.protocol != "grbl":
        return False
    return machine.grbl.pointer_power_pct > 0.0


class GuardedDriver:
    """A :class:`~markstation.devices.base.Driver` behind the emission rule above.

    Only the driver's public surface is forwarded; the wrapped driver itself is not reachable, so a
    check cannot step around the guard by accident.
    """

    def __init__(self, driver: Driver, *, allow_emission: bool) -> None:
        self._driver = driver
        self.url = driver.url
        self.machine = driver.machine
        self.simulated_url = is_simulated_url(driver.url)
        #: True when run() and frame() may emit: a simulator, or the engineer allowed it
        self.may_emit = self.simulated_url or allow_emission

    # --- life cycle ------------------------------------------------------------------------------

    def __enter__(self) -> GuardedDriver:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()  # whatever happened in the block: the driver is closed

    def open(self) -> None:
        self._driver.open()

    def close(self) -> None:
        self._driver.close()

    # --- the guarded operations ------------------------------------------------------------------

    def run(self, job: Job, listener: RunListener | None = None) -> RunResult:
        if not self.may_emit and not is_held_off(job):
            powers = sorted({layer.params.power_pct for layer in job.layers} - {0.0})
            raise EmissionNotAllowed(
                _(
                    "{url}: refusing a job with power {power} on real hardware; pass --allow-emission to let the suite emit (held-off jobs at {off} run without it)"
                ).format(url=self.url, power=f"{powers[0]:g} %", off="0 %")
            )
        return self._driver.run(job, listener)

    def frame(self, job: Job, stop: Callable[[], bool]) -> int:
        if not self.may_emit and frame_can_emit(self.machine):
            raise EmissionNotAllowed(
                _(
                    "{url}: machine '{name}' frames with the beam (pointer_power_pct > 0); pass --allow-emission to frame on real hardware"
                ).format(url=self.url, name=self.machine.name)
            )
        return self._driver.frame(job, stop)

    # --- forwarded as is -------------------------------------------------------------------------

    def info(self) -> DeviceInfo:
        return self._driver.info()

    def read_inputs(self) -> Inputs:
        return self._driver.read_inputs()

    def state(self) -> DeviceState:
        return self._driver.state()

    def abort(self) -> None:
        self._driver.abort()

    def unlock(self) -> str:
        """Clear a controller's alarm lock (GRBL ``$X``) where the driver has one; never emits."""
        unlock = getattr(self._driver, "unlock", None)
        if unlock is None:
            raise DeviceError(
                _("{url}: this driver has no alarm lock to clear").format(url=self.url)
            )
        return str(unlock())

    @property
    def estimate_settings(self) -> dict[int, float]:
        """The time-only settings a controller reported on connect (GRBL ``$110``, ``$120``, …)
        that the device estimate adopts; empty where the driver has none."""
        return dict(getattr(self._driver, "estimate_settings", None) or {})

    @property
    def simulator(self) -> Any:
        """The simulated device behind a ``sim://`` URL (its inputs, faults, burn record); None else."""
        return getattr(self._driver, "simulator", None) if self.simulated_url else None
