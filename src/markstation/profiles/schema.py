"""The profile schema: key tables with types, bounds and defaults, and the validator that applies them.

Unknown keys, missing keys, wrong types and out-of-range values are :class:`ConfigError` naming the
file and the dotted key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal, get_type_hints

from markstation.errors import ConfigError
from markstation.i18n import _
from markstation.profiles.options import GrblOptions, LmcOptions, ProtocolOptions

SCHEMA_VERSION = 1
Kind = Literal["machines", "materials", "layouts"]
KINDS: tuple[Kind, ...] = ("machines", "materials", "layouts")

#: the machine used when neither --machine nor the device's protocol says otherwise
DEFAULT_MACHINE = {"lmc": "lmc-fiber-110", "grbl": "grbl-marker"}
DEFAULT_MATERIAL = "blued-steel"
DEFAULT_LAYOUT = "secondary-mark"


# --- a small declarative validator ---------------------------------------------------------------


@dataclass(frozen=True)
class F:
    """Spec of one key: its type, bounds, default (``...`` = required) and allowed choices."""

    type: type | tuple[type, ...]
    default: Any = ...
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    check: Callable[[Any], str | None] | None = None


Spec = Mapping[str, "F | Mapping[str, Any]"]


def _type_ok(value: Any, want: type | tuple[type, ...]) -> bool:
    wants = want if isinstance(want, tuple) else (want,)
    if isinstance(value, bool):
        return bool in wants
    if float in wants and isinstance(value, int):
        return True
    return isinstance(value, wants)


def _type_name(want: type | tuple[type, ...]) -> str:
    wants = want if isinstance(want, tuple) else (want,)
    names = {
        int: "an integer",
        float: "a number",
        str: "a string",
        bool: "true or false",
        list: "a list",
    }
    return " or ".join(names.get(w, w.__name__) for w in wants)


def validate(data: Mapping[str, Any], spec: Spec, where: str, prefix: str = "") -> dict[str, Any]:
    """Check ``data`` against ``spec``; return a dict with defaults filled in (floats as float)."""
    out: dict[str, Any] = {}
    for key in data:
        if key not in spec:
            raise ConfigError(
                _("{where}: unknown key '{prefix}{key}'").format(
                    where=where, prefix=prefix, key=key
                )
            )
    for key, rule in spec.items():
        dotted = f"{prefix}{key}"
        if not isinstance(rule, F):  # nested table
            sub = data.get(key, {})
            if not isinstance(sub, Mapping):
                raise ConfigError(
                    _("{where}: '{dotted}' must be a table").format(where=where, dotted=dotted)
                )
            out[key] = validate(sub, rule, where, dotted + ".")
            continue
        if key not in data:
            if rule.default is ...:
                raise ConfigError(
                    _("{where}: missing key '{dotted}'").format(where=where, dotted=dotted)
                )
            out[key] = rule.default
            continue
        value = data[key]
        if not _type_ok(value, rule.type):
            raise ConfigError(
                _("{where}: '{dotted}' must be {type_name}, got {value!r}").format(
                    where=where, dotted=dotted, type_name=_type_name(rule.type), value=value
                )
            )
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and rule.type in (float, (float,))
        ):
            value = float(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if rule.min is not None and value < rule.min:
                raise ConfigError(
                    _("{where}: '{dotted}' = {value} is below the minimum {min}").format(
                        where=where, dotted=dotted, value=value, min=rule.min
                    )
                )
            if rule.max is not None and value > rule.max:
                raise ConfigError(
                    _("{where}: '{dotted}' = {value} is above the maximum {max}").format(
                        where=where, dotted=dotted, value=value, max=rule.max
                    )
                )
        if rule.choices is not None and value not in rule.choices:
            allowed = ", ".join(repr(c) for c in rule.choices)
            raise ConfigError(
                _("{where}: '{dotted}' = {value!r} is not one of {allowed}").format(
                    where=where, dotted=dotted, value=value, allowed=allowed
                )
            )
        if rule.check is not None and (problem := rule.check(value)):
            raise ConfigError(
                _("{where}: '{dotted}' {problem}").format(
                    where=where, dotted=dotted, problem=problem
                )
            )
        out[key] = value
    return out


def _regex_check(value: str) -> str | None:
    try:
        re.compile(value)
    except re.error as exc:
        return f"is not a valid regular expression ({exc})"
    return None


def options_spec(cls: type[ProtocolOptions]) -> dict[str, F]:
    """The key table of a protocol's options, from the fields of its dataclass."""
    hints = get_type_hints(cls)
    return {
        f.name: F(
            hints[f.name],
            default=f.default,
            min=f.metadata.get("min"),
            max=f.metadata.get("max"),
            choices=f.metadata.get("choices"),
        )
        for f in fields(cls)
    }


# --- specs -------------------------------------------------------------------------------------------

_RECT_SPEC: Spec = {
    "x_min": F(float, min=-1000, max=1000),
    "y_min": F(float, min=-1000, max=1000),
    "x_max": F(float, min=-1000, max=1000),
    "y_max": F(float, min=-1000, max=1000),
}

MACHINE_SPEC: Spec = {
    "schema": F(int, min=1, max=1),
    "name": F(str),
    "description": F(str, default=""),
    "protocol": F(str, choices=("lmc", "grbl")),
    # the material used when none is named: parameters must fit this machine's limits
    "default_material": F(str, default=DEFAULT_MATERIAL),
    "field": {
        "width_mm": F(float, min=1, max=1000),
        "height_mm": F(float, min=1, max=1000),
        "swap_xy": F(bool, default=False),
        "flip_x": F(bool, default=False),
        "flip_y": F(bool, default=False),
    },
    "beam": {"spot_mm": F(float, min=0.001, max=2.0)},
    "safe_area": _RECT_SPEC,
    "limits": {
        "power_pct_max": F(float, min=0, max=100),
        "speed_mm_s_min": F(float, min=0.01, max=100000),
        "speed_mm_s_max": F(float, min=0.01, max=100000),
        "frequency_khz_min": F(float, min=0, max=10000),
        "frequency_khz_max": F(float, min=0, max=10000),
        "pulse_width_ns": F(list, default=[]),
        "jump_speed_mm_s_max": F(float, min=1, max=100000),
    },
    # protocol tables: validated loosely here (types and bounds), used by the drivers
    # protocol tables: keys, defaults and bounds come from the typed options (written once there)
    "lmc": options_spec(LmcOptions),
    "grbl": options_spec(GrblOptions),
}

_PARAMS_SPEC: Spec = {
    "speed_mm_s": F(float, min=0.01, max=100000),
    "power_pct": F(float, min=0, max=100),
    "frequency_khz": F(float, min=0, max=10000),
    "pulse_width_ns": F(float, default=0.0, min=0, max=10000),
    "passes": F(int, default=1, min=1, max=100),
}

MATERIAL_SPEC: Spec = {
    "schema": F(int, min=1, max=1),
    "name": F(str),
    "description": F(str, default=""),
    "text": _PARAMS_SPEC,
    "fill": {
        **_PARAMS_SPEC,
        "hatch_spacing_mm": F(float, min=0.005, max=2.0),
        "hatch_angle_deg": F(float, default=0.0, min=-180, max=180),
        # a second hatch at cross_hatch_angle_deg (symbol frame) over the first; off by default
        "cross_hatch": F(bool, default=False),
        "cross_hatch_angle_deg": F(float, default=90.0, min=-180, max=180),
        # join each run of dark modules into one serpentine polyline (fewer strokes, less time)
        "hatch_join": F(bool, default=True),
        "dot_dwell_ms": F(float, default=0.5, min=0.01, max=1000),
        # burned-dot model (job.fill): diameter = spot + dot_growth_mm * power/100 * sqrt(dwell/ms)
        "dot_growth_mm": F(float, default=0.25, min=0.0, max=5.0),
        # the largest clean dot; a dots fill needing a wider one is refused
        "dot_max_mm": F(float, default=0.4, min=0.001, max=10.0),
        "raster_line_spacing_mm": F(float, default=0.05, min=0.005, max=2.0),
    },
    "delays": {
        "jump_speed_mm_s": F(float, default=2000.0, min=1, max=100000),
        "laser_on_us": F(float, default=100.0, min=-10000, max=10000),
        "laser_off_us": F(float, default=100.0, min=-10000, max=10000),
        "polygon_us": F(float, default=100.0, min=0, max=100000),
        "jump_us": F(float, default=200.0, min=0, max=100000),
    },
}

_FILL_STYLES = ("hatch", "dots", "outline-hatch", "inverse")
# outline-hatch: outlines among the hatch strokes (path order decides), or all before / after it
_OUTLINE_ORDERS = ("mixed", "first", "last")
_ELEMENT_COMMON: dict[str, F] = {
    "kind": F(str),
    "x_mm": F(float, min=-500, max=500),
    "y_mm": F(float, min=-500, max=500),
    "rotation_deg": F(float, default=0.0, min=-360, max=360),
}
ELEMENT_SPECS: dict[str, Spec] = {
    "text": {
        **_ELEMENT_COMMON,
        "text": F(str),  # a format string over the code's named fields, e.g. "{code}"
        "height_mm": F(float, min=0.1, max=200),
        "font": F(str, default="markstation"),
        "align": F(str, default="center", choices=("left", "center", "right")),
        "spacing": F(float, default=1.0, min=0.5, max=3.0),  # × the font's own advance
    },
    "datamatrix": {
        **_ELEMENT_COMMON,
        "data": F(str),
        "module_mm": F(float, min=0.05, max=10),
        "size": F(str, default="auto"),  # "auto" or "NxN" (square only)
        "fill": F(str, default="hatch", choices=_FILL_STYLES),
        "outline_order": F(str, default="mixed", choices=_OUTLINE_ORDERS),
        "quiet_zone_modules": F(int, default=1, min=0, max=10),
    },
    "qr": {
        **_ELEMENT_COMMON,
        "data": F(str),
        "module_mm": F(float, min=0.05, max=10),
        "ec": F(str, default="M", choices=("L", "M", "Q", "H")),
        "fill": F(str, default="hatch", choices=_FILL_STYLES),
        "outline_order": F(str, default="mixed", choices=_OUTLINE_ORDERS),
        "quiet_zone_modules": F(int, default=4, min=0, max=10),
    },
    "microqr": {
        **_ELEMENT_COMMON,
        "data": F(str),
        "module_mm": F(float, min=0.05, max=10),
        "ec": F(str, default="L", choices=("L", "M", "Q")),
        "fill": F(str, default="hatch", choices=_FILL_STYLES),
        "outline_order": F(str, default="mixed", choices=_OUTLINE_ORDERS),
        "quiet_zone_modules": F(int, default=2, min=0, max=10),
    },
    "image": {
        **_ELEMENT_COMMON,
        "path": F(str),  # relative to the layout file
        "width_mm": F(float, min=0.1, max=500),
        "mode": F(str, default="dither", choices=("threshold", "dither")),
        "threshold": F(int, default=128, min=0, max=255),
        "line_spacing_mm": F(float, default=0.0, min=0, max=2),  # 0 = the material's
    },
}

LAYOUT_SPEC: Spec = {
    "schema": F(int, min=1, max=1),
    "name": F(str),
    "description": F(str, default=""),
    "min_char_height_mm": F(float, default=1.6, min=0.1, max=100),
    # the lowest verification grade (preview.grade) a 2D code may have to be marked; "" = any
    "min_grade": F(str, default="", choices=("", "A", "B", "C", "D")),
    "code": {
        "pattern": F(str, check=_regex_check),
        "example": F(str),
        # the window a code's named field "year" must fall in (batch import); 0 = this year + 1
        "year_min": F(int, default=1900, min=0, max=9999),
        "year_max": F(int, default=0, min=0, max=9999),
    },
    "safe_area": _RECT_SPEC,
    "element": F(list),
}
