"""Finding and reading profiles: the search path, TOML files with ``schema = 1``, cached loads.

Profiles are searched in order: directories in ``MARKSTATION_PROFILES`` (``os.pathsep``-separated),
the user's config directory (``<config>/profiles``), then the profiles shipped with markstation. A
user adds a registry's code format by adding a layout file there.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from markstation.errors import ConfigError, ProfileNotFound
from markstation.i18n import _
from markstation.profiles.models import LayoutProfile, MachineProfile, MaterialProfile, Rect
from markstation.profiles.options import options_for
from markstation.profiles.params import MarkParams
from markstation.profiles.schema import (
    DEFAULT_LAYOUT,
    DEFAULT_MACHINE,
    DEFAULT_MATERIAL,
    ELEMENT_SPECS,
    KINDS,
    LAYOUT_SPEC,
    MACHINE_SPEC,
    MATERIAL_SPEC,
    SCHEMA_VERSION,
    Kind,
    validate,
)

# --- loading -----------------------------------------------------------------------------------------


def _shipped_dir() -> Path:
    package = Path(__file__).resolve().parents[1]  # .../markstation
    packaged = package / "_profiles"  # a wheel: force-included there
    if packaged.is_dir():
        return packaged
    return package.parents[1] / "profiles"  # a source checkout: <repo>/src/markstation


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
        raise ConfigError(
            _("{path}: cannot read ({strerror})").format(path=path, strerror=exc.strerror)
        ) from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(_("{path}: not valid TOML ({exc})").format(path=path, exc=exc)) from exc
    schema = data.get("schema")
    if isinstance(schema, int) and schema > SCHEMA_VERSION:
        raise ConfigError(
            _(
                "{path}: schema = {schema} is newer than this markstation understands ({SCHEMA_VERSION})"
            ).format(path=path, schema=schema, SCHEMA_VERSION=SCHEMA_VERSION)
        )
    return data, hashlib.sha256(raw).hexdigest()


def _params(section: Mapping[str, Any], delays: Mapping[str, Any]) -> MarkParams:
    # the profile keeps delays in µs and pulse width 0 for "leave alone"; the IR wants s and None
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
        raise ConfigError(
            _("{where}: '{key}' is empty (x_min must be < x_max and y_min < y_max)").format(
                where=where, key=key
            )
        )
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
            raise ConfigError(
                _("{where}: 'limits.{lo}' is above 'limits.{hi}'").format(where=where, lo=lo, hi=hi)
            )
    widths = lim["pulse_width_ns"]
    if not all(isinstance(w, (int, float)) and not isinstance(w, bool) and w > 0 for w in widths):
        raise ConfigError(
            _("{where}: 'limits.pulse_width_ns' must be a list of positive numbers").format(
                where=where
            )
        )
    safe = _rect(d["safe_area"], where, "safe_area")
    hw, hh = d["field"]["width_mm"] / 2, d["field"]["height_mm"] / 2
    if safe.x_min < -hw or safe.x_max > hw or safe.y_min < -hh or safe.y_max > hh:
        raise ConfigError(
            _("{where}: 'safe_area' reaches outside the {width:g} × {height:g} mm field").format(
                where=where, width=2 * hw, height=2 * hh
            )
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
        options=options_for(d["protocol"], d[d["protocol"]]),
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
        dot_growth_mm=fill["dot_growth_mm"],
        dot_max_mm=fill["dot_max_mm"],
        cross_hatch_angle_deg=fill["cross_hatch_angle_deg"] if fill["cross_hatch"] else None,
        hatch_join=fill["hatch_join"],
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
            raise ConfigError(_("{where}: '{key}' must be a table").format(where=where, key=key))
        kind = raw.get("kind")
        if kind not in ELEMENT_SPECS:
            kinds = ", ".join(ELEMENT_SPECS)
            raise ConfigError(
                _("{where}: '{key}.kind' = {kind!r} is not one of {kinds}").format(
                    where=where, key=key, kind=kind, kinds=kinds
                )
            )
        el = validate(raw, ELEMENT_SPECS[kind], where, key + ".")
        if (
            kind == "datamatrix"
            and el["size"] != "auto"
            and not re.fullmatch(r"\d+x\d+", el["size"])
        ):
            raise ConfigError(
                _("{where}: '{key}.size' must be 'auto' or like '18x18'").format(
                    where=where, key=key
                )
            )
        if kind == "image":
            el["path"] = str((path.parent / el["path"]).resolve())
        elements.append(el)
    if not elements:
        raise ConfigError(_("{where}: a layout needs at least one [[element]]").format(where=where))
    pattern = d["code"]["pattern"]
    if not re.fullmatch(pattern, d["code"]["example"]):
        raise ConfigError(
            _("{where}: 'code.example' does not match 'code.pattern'").format(where=where)
        )
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
        year_min=d["code"]["year_min"],
        year_max=d["code"]["year_max"],
        min_grade=d["min_grade"],
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
            raise ProfileNotFound(
                _("{name_or_path}: no such {kind} profile file").format(
                    name_or_path=name_or_path, kind=kind[:-1]
                )
            )
        return candidate
    found = available(kind)
    if name_or_path not in found:
        names = ", ".join(sorted(found)) or "none"
        raise ProfileNotFound(
            _("unknown {kind} '{name_or_path}' (known: {names})").format(
                kind=kind[:-1], name_or_path=name_or_path, names=names
            )
        )
    return found[name_or_path]


@cache
def _load_cached(kind: Kind, path: Path, mtime_ns: int) -> Any:
    profile = _PARSERS[kind](path)
    if profile.name != path.stem:
        raise ConfigError(
            _("{path}: 'name' = {name!r} must match the file name {stem!r}").format(
                path=path, name=profile.name, stem=path.stem
            )
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
