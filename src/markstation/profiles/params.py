"""The laser parameter set a material profile defines and every job layer carries.

It lives here, not in :mod:`markstation.job.ir`, so that profiles never import the job package:
``job`` depends on ``profiles`` (layouts, machines, materials), never the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: canonical rounding of the job hash: 1 nm for lengths (and other plain numbers), 1 ns for times
MM_DIGITS = 6
S_DIGITS = 9


def round_mm(value: float) -> float:
    """A length (or plain number) rounded for the canonical form; ``+ 0.0`` turns -0.0 into 0.0."""
    return round(float(value), MM_DIGITS) + 0.0


def round_s(value: float) -> float:
    """A duration in seconds rounded for the canonical form."""
    return round(float(value), S_DIGITS) + 0.0


@dataclass(frozen=True, slots=True)
class MarkParams:
    """One laser parameter set. Speeds mm/s, power % of the source's maximum, times in seconds."""

    speed_mm_s: float
    power_pct: float
    frequency_khz: float
    #: MOPA sources only; None leaves the source's pulse width alone
    pulse_width_ns: float | None = None
    passes: int = 1
    jump_speed_mm_s: float = 2000.0
    laser_on_delay_s: float = 100e-6
    laser_off_delay_s: float = 100e-6
    #: pause at each corner of a polyline so the mirrors settle
    polygon_delay_s: float = 100e-6
    #: settle time after every jump before marking starts
    jump_delay_s: float = 200e-6

    def canonical(self) -> dict[str, Any]:
        return {
            "speed_mm_s": round_mm(self.speed_mm_s),
            "power_pct": round_mm(self.power_pct),
            "frequency_khz": round_mm(self.frequency_khz),
            "pulse_width_ns": None
            if self.pulse_width_ns is None
            else round_mm(self.pulse_width_ns),
            "passes": self.passes,
            "jump_speed_mm_s": round_mm(self.jump_speed_mm_s),
            "laser_on_delay_s": round_s(self.laser_on_delay_s),
            "laser_off_delay_s": round_s(self.laser_off_delay_s),
            "polygon_delay_s": round_s(self.polygon_delay_s),
            "jump_delay_s": round_s(self.jump_delay_s),
        }
