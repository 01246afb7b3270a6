"""Burned strokes as a PNG: what a simulated laser would have left on the part.

Shared by the simulators (and ``markstation sim replay``); it draws with the preview's rasterizer,
so a simulator never carries its own drawing code.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def render_strokes(
    strokes: Sequence[Sequence[tuple[float, float]]],
    path: str | Path,
    *,
    spot_mm: float = 0.03,
    px_per_mm: float = 0,
) -> Path:
    """Strokes (mm) → PNG via the preview's rasterizer; ``px_per_mm`` 0 = about 1000 px wide."""
    # imported here: the preview (and Pillow) loads only when a PNG is asked for
    from markstation.preview import rasterize

    pts = [p for s in strokes for p in s]
    if pts:
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        margin = max(1.0, 0.05 * max(max(xs) - min(xs), max(ys) - min(ys)))
        bounds = (min(xs) - margin, min(ys) - margin, max(xs) + margin, max(ys) + margin)
    else:
        bounds = (-5.0, -5.0, 5.0, 5.0)
    if px_per_mm <= 0:
        px_per_mm = min(200.0, 1000.0 / max(bounds[2] - bounds[0], bounds[3] - bounds[1]))
    image = rasterize(strokes, spot_mm=spot_mm, bounds=bounds, px_per_mm=px_per_mm)
    out = Path(path)
    image.save(out, format="PNG")
    return out
