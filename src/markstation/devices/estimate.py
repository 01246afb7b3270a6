"""The time a job takes on a device, from the device's own command stream: the one estimate that
``preview``, ``mark``, the queue (runner and dry run) and the station call.

* **LMC**: the list :func:`markstation.devices.lmc.codec.job_to_entries` writes, clocked by the
  board's timing model (:mod:`markstation.devices.lmc.timing`, the same model the simulated board
  runs): every delay the codec adds is in it (the 300 µs DelayTime after every stroke included).
* **GRBL**: the program :func:`markstation.devices.grbl.codec.encode_job` writes, timed by GRBL
  1.1's planner (:mod:`markstation.devices.grbl.planner`, the model the simulated GRBL runs), with
  the machine profile's motion settings or the ones a connected controller reported.

:func:`markstation.job.estimate.estimate_seconds` stays the quick, device-independent figure (no
device delays, no acceleration), labelled as such where it is shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from markstation.errors import ConfigError
from markstation.i18n import _
from markstation.job.ir import Job
from markstation.profiles import MachineProfile

if TYPE_CHECKING:
    from markstation.devices.base import Driver


@dataclass(frozen=True, slots=True)
class DeviceEstimate:
    """Seconds a job takes on a machine, and which model said so (``lmc-list``, ``grbl-planner``)."""

    seconds: float
    protocol: str
    model: str


def device_estimate(
    job: Job, machine: MachineProfile, *, settings: Mapping[int, float] | None = None
) -> DeviceEstimate:
    """How long ``job`` runs on ``machine`` (see the module docstring). ``settings`` are GRBL
    ``$$`` values read from the controller (time-only ones are adopted); ignored for LMC.

    Raises what the codec raises for a job it cannot encode (SafetyLimitError, JobError)."""
    protocol = machine.protocol
    if protocol == "lmc":
        from markstation.devices.lmc.codec import job_to_words, words_seconds

        return DeviceEstimate(words_seconds(job_to_words(job, machine)), "lmc", "lmc-list")
    if protocol == "grbl":
        from markstation.devices.grbl.codec import Geometry, encode_job
        from markstation.devices.grbl.planner import PlannerSettings, program_time

        planner = PlannerSettings.from_machine(machine)
        if settings:
            planner = planner.adopt(settings)
        geometry = Geometry.from_machine(machine)
        start = geometry.to_machine(0.0, 0.0)
        program = encode_job(job, geometry)
        t = program_time(program.lines, planner, start=(start[0], start[1], 0.0))
        return DeviceEstimate(t.total_s, "grbl", "grbl-planner")
    raise ConfigError(
        _("machine '{name}': no timing model for protocol '{protocol}'").format(
            name=machine.name, protocol=protocol
        )
    )


def driver_estimate(job: Job, driver: Driver) -> DeviceEstimate:
    """:func:`device_estimate` on an open ``driver``: its machine, with the time-only settings its
    controller reported on connect (a GRBL driver's ``estimate_settings``, read now). What
    ``mark``, ``batch run`` and the station show."""
    return device_estimate(job, driver.machine, settings=getattr(driver, "estimate_settings", None))
