"""Burned strokes as a PNG: what a simulated laser would have left on the part.

Shared by the simulators (and ``markstation sim replay``); it draws with the preview's rasterizer,
so a simulator never carries its own drawing code.

A stroke burns at the spot width. A dot (a one-point stroke) burns wider the longer and harder the
beam dwells: the simulator knows the dwell and the power it executed, and :func:`burned_dot_mm`
turns them into a diameter with the job builder's dot model
(:func:`markstation.job.fill.dot_diameter_mm`, the same formula the preview's ``Dot.diameter_mm``
comes from). The model's growth and largest clean dot are material keys (``dot_growth_mm``,
``dot_max_mm``), and nothing on the wire names the material: the caller that knows it passes it;
without one the defaults a material profile gets for keys it leaves out are used.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from markstation.profiles import MaterialProfile


def dot_growth(material: MaterialProfile | None) -> tuple[float, float]:
    """(``dot_growth_mm``, ``dot_max_mm``) of ``material``; the profile defaults without one."""
    if material is not None:
        return material.dot_growth_mm, material.dot_max_mm
    from markstation.profiles.models import MaterialProfile

    # the dataclass's defaults: the one place each key's default is written
    return MaterialProfile.dot_growth_mm, MaterialProfile.dot_max_mm


def burned_dot_mm(
    dwell_s: float,
    power_pct: float | None,
    *,
    spot_mm: float,
    material: MaterialProfile | None = None,
) -> float:
    """The diameter of a dot burned for ``dwell_s`` at ``power_pct`` % (the job's dot model).

    ``power_pct`` None (no power setting seen, the source's default power unknown): the spot, as
    nothing can be said about how far the dot grew.
    """
    from markstation.job.fill import dot_diameter_mm

    if power_pct is None:
        return spot_mm
    growth_mm, max_mm = dot_growth(material)
    return dot_diameter_mm(dwell_s, power_pct, spot_mm=spot_mm, growth_mm=growth_mm, max_mm=max_mm)


def render_strokes(
    strokes: Sequence[Sequence[tuple[float, float]]],
    path: str | Path,
    *,
    spot_mm: float = 0.03,
    px_per_mm: float = 0,
    dots: Sequence[tuple[float, float | None] | None] | None = None,
    material: MaterialProfile | None = None,
) -> Path:
    """Strokes (mm) → PNG via the preview's rasterizer; ``px_per_mm`` 0 = about 1000 px wide.

    ``dots``, one per stroke: the (dwell s, power %) a one-point stroke was burned with (ignored
    for longer strokes; None = unknown), drawn :func:`burned_dot_mm` wide on ``material``.
    Without ``dots`` every dot is drawn at the spot.
    """
    # imported here: the preview (and Pillow) loads only when a PNG is asked for
    from markstation.preview.raster import rasterize_dots

    sizes = [0.0] * len(strokes)
    for i, (stroke, dot) in enumerate(zip(strokes, dots or sizes, strict=True)):
        if len(stroke) == 1 and isinstance(dot, tuple):
            sizes[i] = burned_dot_mm(dot[0], dot[1], spot_mm=spot_mm, material=material)
    pts = [p for s in strokes for p in s]
    if pts:
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        margin = max(1.0, 0.05 * max(max(xs) - min(xs), max(ys) - min(ys)))
        if sizes:  # room for the widest dot (a 1 mm margin holds any clean one)
            margin = max(margin, max(sizes) / 2 + spot_mm)
        bounds = (min(xs) - margin, min(ys) - margin, max(xs) + margin, max(ys) + margin)
    else:
        bounds = (-5.0, -5.0, 5.0, 5.0)
    if px_per_mm <= 0:
        px_per_mm = min(200.0, 1000.0 / max(bounds[2] - bounds[0], bounds[3] - bounds[1]))
    image = rasterize_dots(strokes, sizes, spot_mm=spot_mm, bounds=bounds, px_per_mm=px_per_mm)
    out = Path(path)
    image.save(out, format="PNG")
    return out
