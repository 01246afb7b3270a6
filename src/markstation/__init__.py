"""markstation: controller for laser-marking workstations.

The library in one import::

    import markstation

    machine = markstation.load_machine("lmc-fiber-110")
    job = markstation.build_verified_job(
        "PE-SUCAMEC-2016-000123",
        layout=markstation.load_layout("secondary-mark"),
        material=markstation.load_material(machine=machine),
        machine=machine,
    )
    with markstation.open_device("sim://lmc", machine) as device:
        result = device.run(job)

Every name loads its module on first access (PEP 562), so ``import markstation`` stays cheap: no
numpy, Pillow, zxing-cpp, pyusb or pyserial until a name that needs them is used. The subpackages
(``markstation.job``, ``markstation.devices``, ``markstation.queue``, ...) hold the rest; the CLI in
``markstation.cli`` is a thin layer over them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# the exception tree is pure and cheap: it is imported at once, every class public here
from markstation import errors as _errors
from markstation.errors import *  # noqa: F403

# a literal: packaging reads the version from this line
__version__ = "0.1.0"

if TYPE_CHECKING:
    from markstation.devices.base import (
        DeviceInfo as DeviceInfo,
    )
    from markstation.devices.base import (
        Driver as Driver,
    )
    from markstation.devices.base import (
        RunResult as RunResult,
    )
    from markstation.devices.registry import (
        discover as list_devices,  # noqa: F401 (public under another name)
    )
    from markstation.devices.registry import (
        open_device as open_device,
    )
    from markstation.job.ir import (
        Job as Job,
    )
    from markstation.job.layout import (
        build_job as build_job,
    )
    from markstation.preview.png import (
        render_png as render_png,
    )
    from markstation.preview.svg import (
        render_svg as render_svg,
    )
    from markstation.preview.verify import (
        verify_codes as verify_codes,
    )
    from markstation.profiles.loader import (
        available as list_profiles,  # noqa: F401 (public under another name)
    )
    from markstation.profiles.loader import (
        load_layout as load_layout,
    )
    from markstation.profiles.loader import (
        load_machine as load_machine,
    )
    from markstation.profiles.loader import (
        load_material as load_material,
    )
    from markstation.profiles.models import (
        LayoutProfile as LayoutProfile,
    )
    from markstation.profiles.models import (
        MachineProfile as MachineProfile,
    )
    from markstation.profiles.models import (
        MaterialProfile as MaterialProfile,
    )
    from markstation.profiles.params import (
        MarkParams as MarkParams,
    )
    from markstation.verify import (
        build_verified_job as build_verified_job,
    )

#: public name -> (module, attribute) it is loaded from
_HOME: dict[str, tuple[str, str]] = {
    "open_device": ("markstation.devices.registry", "open_device"),
    "list_devices": ("markstation.devices.registry", "discover"),
    "Driver": ("markstation.devices.base", "Driver"),
    "DeviceInfo": ("markstation.devices.base", "DeviceInfo"),
    "RunResult": ("markstation.devices.base", "RunResult"),
    "build_job": ("markstation.job.layout", "build_job"),
    "build_verified_job": ("markstation.verify", "build_verified_job"),
    "Job": ("markstation.job.ir", "Job"),
    "MarkParams": ("markstation.profiles.params", "MarkParams"),
    "load_machine": ("markstation.profiles.loader", "load_machine"),
    "load_material": ("markstation.profiles.loader", "load_material"),
    "load_layout": ("markstation.profiles.loader", "load_layout"),
    "list_profiles": ("markstation.profiles.loader", "available"),
    "MachineProfile": ("markstation.profiles.models", "MachineProfile"),
    "MaterialProfile": ("markstation.profiles.models", "MaterialProfile"),
    "LayoutProfile": ("markstation.profiles.models", "LayoutProfile"),
    "render_png": ("markstation.preview.png", "render_png"),
    "render_svg": ("markstation.preview.svg", "render_svg"),
    "verify_codes": ("markstation.preview.verify", "verify_codes"),
}

__all__ = sorted([*_HOME, *_errors.__all__, "__version__"])


def __getattr__(name: str) -> Any:
    try:
        module, attr = _HOME[name]
    except KeyError:
        raise AttributeError(f"module 'markstation' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # cache: later look-ups do not come back here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME))
