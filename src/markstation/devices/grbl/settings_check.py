"""A GRBL controller's ``$$`` settings against the machine profile, pure: refuse or adopt.

The driver reads ``$$`` on connect and hands the table to :func:`check_settings` once; the result
says what to do with each setting the profile cares about:

* **refused** — a setting that changes the power or the speed a job is marked with:

  - ``$32`` (laser mode) must be 1: without it the beam stays on during ``G0`` travel and at rest;
  - ``$30`` (max spindle speed) must equal the profile's ``grbl.max_s``: ``S`` is scaled to it,
    so any other value marks at the wrong power;
  - ``$31`` (min spindle speed) must be 0: GRBL maps ``S`` linearly from ``$31`` to ``$30``, so a
    minimum above 0 raises every power below 100 %;
  - ``$110``/``$111`` (X/Y max rate) must not be below a job's ``G1`` feeds: GRBL would clamp the
    feed and mark slower than the material says (checked per job, :meth:`SettingsCheck.job_problem`).

* **adopted** — a setting that only changes how long a job takes: ``$110``/``$111`` above the job's
  feeds (they set the ``G0`` travel rate), ``$120``/``$121`` (accelerations; under ``M4`` the
  power follows the actual speed, so the energy per mm does not change) and ``$11`` (junction
  deviation). The controller's values replace the profile's in the planner the estimate uses
  (:meth:`markstation.devices.grbl.planner.PlannerSettings.adopt`).

No I/O, no clock: the messages are made with :func:`markstation.i18n._` when the check runs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from markstation.devices.grbl.codec import DOT_MOVE_MM, Geometry
from markstation.devices.grbl.planner import PlannerSettings, limit_by_axis
from markstation.i18n import _
from markstation.job.ir import Dot, Job
from markstation.profiles import MachineProfile

#: the settings that only change time: adopted for the estimate when they differ
TIME_ONLY = (110, 111, 120, 121, 11)
#: relative tolerance of a comparison (GRBL prints three decimals)
REL_TOL = 1e-6


def parse_number(text: str | None) -> float | None:
    """A ``$$`` value as a number (None when missing or not a number)."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _differs(a: float, b: float) -> bool:
    return not math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-9)


@dataclass(frozen=True, slots=True)
class SettingsCheck:
    """What a connect found: a refusal (one line, or None), what was adopted, the planner."""

    url: str
    #: why no job may run (a setting that changes power), or None
    refusal: str | None
    #: the time-only settings whose controller value differs from the profile's: {n: value}
    adopted: Mapping[int, float] = field(default_factory=dict)
    #: the profile's motion settings with the adopted values in place: what the estimate plans with
    planner: PlannerSettings = field(default_factory=PlannerSettings)

    def job_problem(self, job: Job, geometry: Geometry) -> str | None:
        """Why ``job`` may not run with these settings (a ``G1`` feed above ``$110``/``$111``,
        which GRBL would clamp), or None. The refusal of the connect comes first."""
        if self.refusal is not None:
            return self.refusal
        return _feed_problem(self.url, job, geometry, self.planner)


def check_settings(
    reported: Mapping[int, str], machine: MachineProfile, *, url: str
) -> SettingsCheck:
    """Compare a ``$$`` table (``{32: "1", 30: "1000", …}``) with ``machine``'s ``[grbl]``."""
    g = machine.grbl
    values = {n: v for n, v in ((n, parse_number(t)) for n, t in reported.items()) if v is not None}
    profile = PlannerSettings.from_machine(machine)
    refusal = _power_problem(url, reported, values, machine)
    wanted = {
        110: g.max_rate_x_mm_min,
        111: g.max_rate_y_mm_min,
        120: g.accel_x_mm_s2,
        121: g.accel_y_mm_s2,
        11: g.junction_deviation_mm,
    }
    adopted = {n: values[n] for n in TIME_ONLY if n in values and _differs(values[n], wanted[n])}
    return SettingsCheck(url, refusal, adopted, profile.adopt(adopted))


def _power_problem(
    url: str, reported: Mapping[int, str], values: Mapping[int, float], machine: MachineProfile
) -> str | None:
    if values.get(32) != 1.0:
        return _(
            "{url}: laser mode is off ($32={value}); without it the beam stays on during G0 "
            "travel and at rest. Set it on the controller ('$32=1') and retry"
        ).format(url=url, value=reported.get(32, "missing"))
    want = float(machine.grbl.max_s)
    have = values.get(30)
    if have is None or _differs(have, want):
        return _(
            "{url}: the controller's $30={value} but machine '{machine}' has grbl.max_s = "
            "{want} (the S of 100 % power); power would be wrong. Set '$30={want}' on the "
            "controller or max_s in {path}"
        ).format(
            url=url,
            value=reported.get(30, "missing"),
            machine=machine.name,
            want=f"{want:g}",
            path=machine.path,
        )
    low = values.get(31, 0.0)
    if low != 0.0:
        return _(
            "{url}: the controller's $31={value} (min spindle speed) raises every power below "
            "100 %; power would be wrong. Set '$31=0' on the controller"
        ).format(url=url, value=reported.get(31, "?"))
    return None


def _feed_problem(url: str, job: Job, geometry: Geometry, planner: PlannerSettings) -> str | None:
    """The first ``G1`` feed of ``job`` that GRBL would clamp below its programmed value."""
    rates = planner.max_rate_mm_min
    floor = min(rates[0], rates[1])
    for layer in job.layers:
        feed = layer.params.speed_mm_s * 60.0
        for prim in layer.primitives:
            if isinstance(prim, Dot):
                # a dot is a DOT_MOVE_MM move along machine X lasting the dwell
                dot_feed = DOT_MOVE_MM / max(prim.dwell_s, 1e-6) * 60.0
                if dot_feed > rates[0] * (1 + REL_TOL):
                    return _clamped(url, 110, rates[0], dot_feed, layer.name)
                continue
            if feed <= floor * (1 + REL_TOL):
                continue  # no direction can clamp it
            pts = [geometry.to_machine(x, y) for x, y in prim.points]
            for (x0, y0), (x1, y1) in itertools.pairwise(pts):
                length = math.hypot(x1 - x0, y1 - y0)
                if length <= 0.0:
                    continue
                unit = ((x1 - x0) / length, (y1 - y0) / length, 0.0)
                if feed > limit_by_axis(rates, unit) * (1 + REL_TOL):
                    axis = 110 if abs(unit[0]) * feed > rates[0] * (1 + REL_TOL) else 111
                    return _clamped(url, axis, rates[axis - 110], feed, layer.name)
    return None


def _clamped(url: str, setting: int, rate: float, feed: float, layer: str) -> str:
    return _(
        "{url}: the controller's ${setting}={rate} mm/min is below the feed of {feed} mm/min "
        "in layer '{layer}'; GRBL would mark slower than the material says. Raise ${setting} "
        "on the controller or lower the speed in the material"
    ).format(url=url, setting=setting, rate=f"{rate:g}", feed=f"{feed:g}", layer=layer)
