"""Machine, material and layout profiles: TOML files with ``schema = 1``, strictly validated.

- :mod:`~markstation.profiles.schema` — key tables (types, bounds, defaults) and the validator;
- :mod:`~markstation.profiles.models` — the profile dataclasses;
- :mod:`~markstation.profiles.options` — typed ``[lmc]`` / ``[grbl]`` machine options;
- :mod:`~markstation.profiles.params` — the laser parameter set (:class:`MarkParams`);
- :mod:`~markstation.profiles.loader` — search path, reading, ``load_*``.

This package imports nothing from :mod:`markstation.job`; the job package builds on it.
"""

from markstation.profiles.loader import (
    available,
    check_all,
    default_machine_for,
    load_layout,
    load_machine,
    load_material,
    parse_layout,
    parse_machine,
    parse_material,
    search_path,
)
from markstation.profiles.models import (
    LayoutProfile,
    MachineProfile,
    MaterialProfile,
    Profile,
    ProfileSet,
    Rect,
)
from markstation.profiles.options import GrblOptions, LmcOptions, MachineOptions
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
    F,
    Kind,
    Spec,
    validate,
)

__all__ = [
    "DEFAULT_LAYOUT",
    "DEFAULT_MACHINE",
    "DEFAULT_MATERIAL",
    "ELEMENT_SPECS",
    "KINDS",
    "LAYOUT_SPEC",
    "MACHINE_SPEC",
    "MATERIAL_SPEC",
    "SCHEMA_VERSION",
    "F",
    "GrblOptions",
    "Kind",
    "LayoutProfile",
    "LmcOptions",
    "MachineOptions",
    "MachineProfile",
    "MarkParams",
    "MaterialProfile",
    "Profile",
    "ProfileSet",
    "Rect",
    "Spec",
    "available",
    "check_all",
    "default_machine_for",
    "load_layout",
    "load_machine",
    "load_material",
    "parse_layout",
    "parse_machine",
    "parse_material",
    "search_path",
    "validate",
]
