"""Machine, material and layout profiles: TOML files with ``schema = 1``, strictly validated.

Unknown keys, missing keys, wrong types and out-of-range values are :class:`ConfigError` naming the
file and the dotted key. Profiles are searched in order: directories in ``MARKSTATION_PROFILES``
(``os.pathsep``-separated), the user's config directory (``<config>/profiles``), then the profiles
shipped with markstation. A user adds a registry's code format by adding a layout file there.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

from markstation.errors import ConfigError, ProfileNotFound
from markstation.job.ir import MarkParams

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
            raise ConfigError(f"{where}: unknown key '{prefix}{key}'")
    for key, rule in spec.items():
        dotted = f"{prefix}{key}"
        if not isinstance(rule, F):  # nested table
            sub = data.get(key, {})
            if not isinstance(sub, Mapping):
                raise ConfigError(f"{where}: '{dotted}' must be a table")
            out[key] = validate(sub, rule, where, dotted + ".")
            continue
        if key not in data:
            if rule.default is ...:
                raise ConfigError(f"{where}: missing key '{dotted}'")
            out[key] = rule.default
            continue
        value = data[key]
        if not _type_ok(value, rule.type):
            raise ConfigError(f"{where}: '{dotted}' must be {_type_name(rule.type)}, got {value!r}")
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and rule.type in (float, (float,))
        ):
            value = float(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if rule.min is not None and value < rule.min:
                raise ConfigError(f"{where}: '{dotted}' = {value} is below the minimum {rule.min}")
            if rule.max is not None and value > rule.max:
                raise ConfigError(f"{where}: '{dotted}' = {value} is above the maximum {rule.max}")
        if rule.choices is not None and value not in rule.choices:
            allowed = ", ".join(repr(c) for c in rule.choices)
            raise ConfigError(f"{where}: '{dotted}' = {value!r} is not one of {allowed}")
        if rule.check is not None and (problem := rule.check(value)):
            raise ConfigError(f"{where}: '{dotted}' {problem}")
        out[key] = value
    return out


def _regex_check(value: str) -> str | None:
    try:
        re.compile(value)
    except re.error as exc:
        return f"is not a valid regular expression ({exc})"
    return None


# --- the profile types -----------------------------------------------------------------------------


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
    #: protocol-specific settings (the [lmc] or [grbl] table), validated
    options: Mapping[str, Any]
    path: Path
    sha256: str

    @property
    def field(self) -> Rect:
        hw, hh = self.field_width_mm / 2, self.field_height_mm / 2
        return Rect(-hw, -hh, hw, hh)


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

    def code_regex(self) -> re.Pattern[str]:
        return re.compile(self.code_pattern)


Profile = MachineProfile | MaterialProfile | LayoutProfile

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
    "lmc": {
        "correction_file": F(str, default=""),
        "red_pointer_bit": F(int, default=8, min=0, max=15),
        "laser_enable_bit": F(int, default=0, min=0, max=15),
        "pedal_bit": F(int, default=15, min=0, max=15),
        "pedal_active_low": F(bool, default=True),
        "interlock_bit": F(int, default=-1, min=-1, max=15),
        "interlock_active_low": F(bool, default=True),
        "red_pointer_speed_mm_s": F(float, default=3000.0, min=1, max=100000),
        "poll_interval_s": F(float, default=0.01, min=0.001, max=1.0),
        "usb_timeout_s": F(float, default=0.1, min=0.01, max=10.0),
        "usb_retries": F(int, default=5, min=0, max=50),
    },
    "grbl": {
        "baud": F(int, default=115200, min=300, max=4000000),
        "max_s": F(float, default=1000.0, min=1, max=100000),
        "rx_buffer_bytes": F(int, default=128, min=16, max=100000),
        "origin": F(str, default="center", choices=("center", "lower-left")),
        "pointer_power_pct": F(float, default=0.0, min=0, max=5),
        "status_interval_s": F(float, default=0.2, min=0.01, max=5.0),
        "response_timeout_s": F(float, default=5.0, min=0.1, max=300.0),
    },
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
        "dot_dwell_ms": F(float, default=0.5, min=0.01, max=1000),
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
        "quiet_zone_modules": F(int, default=1, min=0, max=10),
    },
    "qr": {
        **_ELEMENT_COMMON,
        "data": F(str),
        "module_mm": F(float, min=0.05, max=10),
        "ec": F(str, default="M", choices=("L", "M", "Q", "H")),
        "fill": F(str, default="hatch", choices=_FILL_STYLES),
        "quiet_zone_modules": F(int, default=4, min=0, max=10),
    },
    "microqr": {
        **_ELEMENT_COMMON,
        "data": F(str),
        "module_mm": F(float, min=0.05, max=10),
        "ec": F(str, default="L", choices=("L", "M", "Q")),
        "fill": F(str, default="hatch", choices=_FILL_STYLES),
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
    "code": {"pattern": F(str, check=_regex_check), "example": F(str)},
    "safe_area": _RECT_SPEC,
    "element": F(list),
}


# --- loading -----------------------------------------------------------------------------------------


def _shipped_dir() -> Path:
    here = Path(__file__).resolve().parent
    packaged = here / "_profiles"
    if packaged.is_dir():
        return packaged
    return (
        here.parents[1] / "profiles"
    )  # a source checkout: <repo>/src/markstation -> <repo>/profiles


def search_path() -> list[Path]:
    """Directories searched for profiles, first match wins."""
    dirs: list[Path] = []
    env = os.environ.get("MARKSTATION_PROFILES", "")
    dirs.extend(Path(p) for p in env.split(os.pathsep) if p)
    from platformdirs import user_config_path

    dirs.append(user_config_path("markstation", appauthor=False) / "profiles")
    dirs.append(_shipped_dir())
    return dirs


def _read_toml(path: Path) -> tuple[dict[str, Any], str]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    schema = data.get("schema")
    if isinstance(schema, int) and schema > SCHEMA_VERSION:
        raise ConfigError(
            f"{path}: schema = {schema} is newer than this markstation understands ({SCHEMA_VERSION})"
        )
    return data, hashlib.sha256(raw).hexdigest()


def _params(section: Mapping[str, Any], delays: Mapping[str, Any]) -> MarkParams:
    pw = section["pulse_width_ns"]
    return MarkParams(
        speed_mm_s=section["speed_mm_s"],
        power_pct=section["power_pct"],
        frequency_khz=section["frequency_khz"],
        pulse_width_ns=pw if pw > 0 else None,
        passes=section["passes"],
        jump_speed_mm_s=delays["jump_speed_mm_s"],
        laser_on_delay_s=delays["laser_on_us"] * 1e-6,
        laser_off_delay_s=delays["laser_off_us"] * 1e-6,
        polygon_delay_s=delays["polygon_us"] * 1e-6,
        jump_delay_s=delays["jump_us"] * 1e-6,
    )


def _rect(d: Mapping[str, float], where: str, key: str) -> Rect:
    r = Rect(d["x_min"], d["y_min"], d["x_max"], d["y_max"])
    if r.x_min >= r.x_max or r.y_min >= r.y_max:
        raise ConfigError(f"{where}: '{key}' is empty (x_min must be < x_max and y_min < y_max)")
    return r


def parse_machine(path: Path) -> MachineProfile:
    data, digest = _read_toml(path)
    where = str(path)
    d = validate(data, MACHINE_SPEC, where)
    lim = d["limits"]
    for lo, hi in (
        ("speed_mm_s_min", "speed_mm_s_max"),
        ("frequency_khz_min", "frequency_khz_max"),
    ):
        if lim[lo] > lim[hi]:
            raise ConfigError(f"{where}: 'limits.{lo}' is above 'limits.{hi}'")
    widths = lim["pulse_width_ns"]
    if not all(isinstance(w, (int, float)) and not isinstance(w, bool) and w > 0 for w in widths):
        raise ConfigError(f"{where}: 'limits.pulse_width_ns' must be a list of positive numbers")
    safe = _rect(d["safe_area"], where, "safe_area")
    hw, hh = d["field"]["width_mm"] / 2, d["field"]["height_mm"] / 2
    if safe.x_min < -hw or safe.x_max > hw or safe.y_min < -hh or safe.y_max > hh:
        raise ConfigError(
            f"{where}: 'safe_area' reaches outside the {2 * hw:g} × {2 * hh:g} mm field"
        )
    return MachineProfile(
        name=d["name"],
        description=d["description"],
        protocol=d["protocol"],
        field_width_mm=d["field"]["width_mm"],
        field_height_mm=d["field"]["height_mm"],
        swap_xy=d["field"]["swap_xy"],
        flip_x=d["field"]["flip_x"],
        flip_y=d["field"]["flip_y"],
        spot_mm=d["beam"]["spot_mm"],
        safe_area=safe,
        power_pct_max=lim["power_pct_max"],
        speed_mm_s_min=lim["speed_mm_s_min"],
        speed_mm_s_max=lim["speed_mm_s_max"],
        frequency_khz_min=lim["frequency_khz_min"],
        frequency_khz_max=lim["frequency_khz_max"],
        pulse_width_ns=tuple(float(w) for w in widths),
        jump_speed_mm_s_max=lim["jump_speed_mm_s_max"],
        default_material=d["default_material"],
        options=d[d["protocol"]],
        path=path,
        sha256=digest,
    )


def parse_material(path: Path) -> MaterialProfile:
    data, digest = _read_toml(path)
    d = validate(data, MATERIAL_SPEC, str(path))
    fill = d["fill"]
    return MaterialProfile(
        name=d["name"],
        description=d["description"],
        text=_params(d["text"], d["delays"]),
        fill=_params(fill, d["delays"]),
        hatch_spacing_mm=fill["hatch_spacing_mm"],
        hatch_angle_deg=fill["hatch_angle_deg"],
        dot_dwell_s=fill["dot_dwell_ms"] * 1e-3,
        raster_line_spacing_mm=fill["raster_line_spacing_mm"],
        path=path,
        sha256=digest,
    )


def parse_layout(path: Path) -> LayoutProfile:
    data, digest = _read_toml(path)
    where = str(path)
    d = validate(data, LAYOUT_SPEC, where)
    elements: list[Mapping[str, Any]] = []
    for i, raw in enumerate(d["element"]):
        key = f"element[{i}]"
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: '{key}' must be a table")
        kind = raw.get("kind")
        if kind not in ELEMENT_SPECS:
            kinds = ", ".join(ELEMENT_SPECS)
            raise ConfigError(f"{where}: '{key}.kind' = {kind!r} is not one of {kinds}")
        el = validate(raw, ELEMENT_SPECS[kind], where, key + ".")
        if (
            kind == "datamatrix"
            and el["size"] != "auto"
            and not re.fullmatch(r"\d+x\d+", el["size"])
        ):
            raise ConfigError(f"{where}: '{key}.size' must be 'auto' or like '18x18'")
        if kind == "image":
            el["path"] = str((path.parent / el["path"]).resolve())
        elements.append(el)
    if not elements:
        raise ConfigError(f"{where}: a layout needs at least one [[element]]")
    pattern = d["code"]["pattern"]
    if not re.fullmatch(pattern, d["code"]["example"]):
        raise ConfigError(f"{where}: 'code.example' does not match 'code.pattern'")
    return LayoutProfile(
        name=d["name"],
        description=d["description"],
        code_pattern=pattern,
        code_example=d["code"]["example"],
        min_char_height_mm=d["min_char_height_mm"],
        safe_area=_rect(d["safe_area"], where, "safe_area"),
        elements=tuple(elements),
        path=path,
        sha256=digest,
    )


_PARSERS: dict[Kind, Callable[[Path], Any]] = {
    "machines": parse_machine,
    "materials": parse_material,
    "layouts": parse_layout,
}


def available(kind: Kind) -> dict[str, Path]:
    """Profile name -> file, for every profile of this kind on the search path (first one wins)."""
    found: dict[str, Path] = {}
    for directory in search_path():
        sub = directory / kind
        if not sub.is_dir():
            continue
        for p in sorted(sub.glob("*.toml")):
            found.setdefault(p.stem, p)
    return found


def _resolve(kind: Kind, name_or_path: str) -> Path:
    candidate = Path(name_or_path)
    if name_or_path.endswith(".toml") or os.sep in name_or_path:
        if not candidate.is_file():
            raise ProfileNotFound(f"{name_or_path}: no such {kind[:-1]} profile file")
        return candidate
    found = available(kind)
    if name_or_path not in found:
        names = ", ".join(sorted(found)) or "none"
        raise ProfileNotFound(f"unknown {kind[:-1]} '{name_or_path}' (known: {names})")
    return found[name_or_path]


@cache
def _load_cached(kind: Kind, path: Path, mtime_ns: int) -> Any:
    profile = _PARSERS[kind](path)
    if profile.name != path.stem:
        raise ConfigError(
            f"{path}: 'name' = {profile.name!r} must match the file name {path.stem!r}"
        )
    return profile


def _load(kind: Kind, name_or_path: str) -> Any:
    path = _resolve(kind, name_or_path)
    return _load_cached(kind, path, path.stat().st_mtime_ns)


def load_machine(name_or_path: str) -> MachineProfile:
    result: MachineProfile = _load("machines", name_or_path)
    return result


def load_material(
    name_or_path: str | None = None, *, machine: MachineProfile | None = None
) -> MaterialProfile:
    """The named material; without a name, the machine's default material (or blued-steel)."""
    if name_or_path is None:
        name_or_path = machine.default_material if machine is not None else DEFAULT_MATERIAL
    result: MaterialProfile = _load("materials", name_or_path)
    return result


def load_layout(name_or_path: str = DEFAULT_LAYOUT) -> LayoutProfile:
    result: LayoutProfile = _load("layouts", name_or_path)
    return result


def default_machine_for(protocol: str) -> MachineProfile:
    return load_machine(DEFAULT_MACHINE[protocol])


def check_all() -> list[tuple[str, str, str | None]]:
    """Load every profile on the search path: (kind, name, error message or None)."""
    results: list[tuple[str, str, str | None]] = []
    for kind in KINDS:
        for name, path in available(kind).items():
            try:
                _load_cached(kind, path, path.stat().st_mtime_ns)
            except ConfigError as exc:
                results.append((kind, name, str(exc)))
            else:
                results.append((kind, name, None))
    return results


@dataclass
class ProfileSet:
    """The three profiles a job is built from."""

    machine: MachineProfile
    material: MaterialProfile
    layout: LayoutProfile
    extra: dict[str, str] = field(default_factory=dict)
