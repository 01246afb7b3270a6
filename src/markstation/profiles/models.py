"""The profile types: what a validated machine, material or layout file becomes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markstation.profiles.options import GrblOptions, LmcOptions, MachineOptions, options_for
from markstation.profiles.params import MarkParams


@dataclass(frozen=True)
class Rect:
    """Axis-aligned rectangle in mm of the field frame."""

    x_min: float
    y_min: float
    x_max: float
    y_max: float

    def contains(self, x: float, y: float, tol: float = 1e-9) -> bool:
        return (
            self.x_min - tol <= x <= self.x_max + tol and self.y_min - tol <= y <= self.y_max + tol
        )

    @property
    def width(self) -> float:
        return self.x_max - self.x_min

    @property
    def height(self) -> float:
        return self.y_max - self.y_min


@dataclass(frozen=True)
class MachineProfile:
    name: str
    description: str
    protocol: str  # "lmc" | "grbl"
    field_width_mm: float
    field_height_mm: float
    swap_xy: bool
    flip_x: bool
    flip_y: bool
    spot_mm: float
    safe_area: Rect
    power_pct_max: float
    speed_mm_s_min: float
    speed_mm_s_max: float
    frequency_khz_min: float
    frequency_khz_max: float
    pulse_width_ns: tuple[float, ...]  # allowed MOPA pulse widths; empty = not a MOPA source
    jump_speed_mm_s_max: float
    default_material: str
    #: protocol-specific settings (the [lmc] or [grbl] table), typed
    options: MachineOptions
    path: Path
    sha256: str

    def __post_init__(self) -> None:
        # dataclasses.replace(machine, options={**machine.options, key: value}) hands a plain
        # table; keep the attribute typed whatever the caller passed
        if not isinstance(self.options, (LmcOptions, GrblOptions)):
            table: Mapping[str, Any] = self.options
            object.__setattr__(self, "options", options_for(self.protocol, table))

    @property
    def field(self) -> Rect:
        hw, hh = self.field_width_mm / 2, self.field_height_mm / 2
        return Rect(-hw, -hh, hw, hh)

    @property
    def lmc(self) -> LmcOptions:
        """The LMC options; the defaults for a machine of another protocol."""
        return self.options if isinstance(self.options, LmcOptions) else LmcOptions()

    @property
    def grbl(self) -> GrblOptions:
        """The GRBL options; the defaults for a machine of another protocol."""
        return self.options if isinstance(self.options, GrblOptions) else GrblOptions()


@dataclass(frozen=True)
class MaterialProfile:
    name: str
    description: str
    text: MarkParams  # strokes (text, outlines)
    fill: MarkParams  # hatch fills (2D codes, raster)
    hatch_spacing_mm: float
    hatch_angle_deg: float
    dot_dwell_s: float
    raster_line_spacing_mm: float
    path: Path
    sha256: str
    #: burned-dot model: diameter = spot + dot_growth_mm * power/100 * sqrt(dwell / 1 ms)
    dot_growth_mm: float = 0.25
    #: the largest clean dot the material takes (mm); a dots fill needing more is refused
    dot_max_mm: float = 0.4
    #: a second hatch at this angle (symbol frame) when set; None = no cross-hatch
    cross_hatch_angle_deg: float | None = None
    #: join each run of dark modules into one serpentine polyline (job.fill.serpentine_blocks)
    hatch_join: bool = True


@dataclass(frozen=True)
class LayoutProfile:
    name: str
    description: str
    code_pattern: str
    code_example: str
    min_char_height_mm: float
    safe_area: Rect
    elements: tuple[Mapping[str, Any], ...]
    path: Path
    sha256: str
    #: a code's ``year`` field must lie in year_min..year_max; year_max 0 = the current year + 1
    year_min: int = 1900
    year_max: int = 0
    #: lowest verification grade ("A".."D") a 2D code must reach to be marked; "" = decoding is enough
    min_grade: str = ""

    def code_regex(self) -> re.Pattern[str]:
        return re.compile(self.code_pattern)


Profile = MachineProfile | MaterialProfile | LayoutProfile


@dataclass
class ProfileSet:
    """The three profiles a job is built from."""

    machine: MachineProfile
    material: MaterialProfile
    layout: LayoutProfile
    extra: dict[str, str] = field(default_factory=dict)
