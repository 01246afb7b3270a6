"""Dry-run preview: what the laser would burn, as a picture, and whether its 2D codes read back.

- :mod:`~markstation.preview.raster` — :func:`rasterize` / :func:`burn_mask`, the burn raster (also
  used by the simulators), :func:`overlap` to compare two burns;
- :mod:`~markstation.preview.verify` — :func:`verify_codes` / :func:`check_codes`, the decode check;
- :mod:`~markstation.preview.scene` — what to draw: view, surface colours, caption figures;
- :mod:`~markstation.preview.png` — :func:`render_png`, the operator's picture (Pillow);
- :mod:`~markstation.preview.svg` — :func:`render_svg` / :func:`svg_text`.

The names below load their module on first access, so ``import markstation.preview`` pulls in
neither numpy, Pillow nor zxing-cpp (the CLI's start-up stays fast).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from markstation.preview.png import render_png
    from markstation.preview.raster import (
        MAX_RASTER_PX,
        Bounds,
        burn_mask,
        job_strokes,
        overlap,
        raster_size,
        rasterize,
    )
    from markstation.preview.scene import (
        PreviewInfo,
        Surface,
        preview_info,
        safe_area_of,
        surface_for,
        symbology_name,
        view_bounds,
    )
    from markstation.preview.svg import render_svg, svg_text
    from markstation.preview.verify import CodeCheck, check_codes, decode_region, verify_codes

#: public name -> the submodule that defines it
_HOME = {
    "render_png": "png",
    "MAX_RASTER_PX": "raster",
    "Bounds": "raster",
    "burn_mask": "raster",
    "job_strokes": "raster",
    "overlap": "raster",
    "raster_size": "raster",
    "rasterize": "raster",
    "PreviewInfo": "scene",
    "Surface": "scene",
    "preview_info": "scene",
    "safe_area_of": "scene",
    "surface_for": "scene",
    "symbology_name": "scene",
    "view_bounds": "scene",
    "render_svg": "svg",
    "svg_text": "svg",
    "CodeCheck": "verify",
    "check_codes": "verify",
    "decode_region": "verify",
    "verify_codes": "verify",
}

__all__ = [
    "MAX_RASTER_PX",
    "Bounds",
    "CodeCheck",
    "PreviewInfo",
    "Surface",
    "burn_mask",
    "check_codes",
    "decode_region",
    "job_strokes",
    "overlap",
    "preview_info",
    "raster_size",
    "rasterize",
    "render_png",
    "render_svg",
    "safe_area_of",
    "surface_for",
    "svg_text",
    "symbology_name",
    "verify_codes",
    "view_bounds",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'markstation.preview' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"markstation.preview.{home}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME))
