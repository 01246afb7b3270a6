"""The burn raster: strokes drawn at the real spot width, as the laser would burn them.

:func:`rasterize` gives a mode-"L" image (255 = burned). Both device simulators render their burn
ledgers with it, so a simulated burn and a preview can be compared pixel for pixel with
:func:`overlap`. numpy and Pillow load inside the functions, when a raster is actually drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from markstation.errors import ConfigError
from markstation.job.ir import Dot, Job, Point

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from PIL import Image

Bounds = tuple[float, float, float, float]

#: largest raster the preview functions will allocate (pixels per side), a guard against typos
MAX_RASTER_PX = 12000


def raster_size(bounds: Bounds, px_per_mm: float) -> tuple[int, int]:
    """(width, height) in pixels of a raster covering ``bounds`` at ``px_per_mm``."""
    x0, y0, x1, y1 = bounds
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"empty raster bounds {bounds}")
    if not (px_per_mm > 0 and math.isfinite(px_per_mm)):
        raise ValueError(f"px_per_mm must be a positive number, got {px_per_mm}")
    width = max(1, math.ceil((x1 - x0) * px_per_mm - 1e-9))
    height = max(1, math.ceil((y1 - y0) * px_per_mm - 1e-9))
    if width > MAX_RASTER_PX or height > MAX_RASTER_PX:
        raise ConfigError(
            f"a {width} × {height} px raster is too large (limit {MAX_RASTER_PX} px per side); "
            f"lower --px-per-mm"
        )
    return width, height


def rasterize(
    polylines: Sequence[Sequence[Point]],
    *,
    spot_mm: float,
    bounds: Bounds,
    px_per_mm: float,
) -> Image.Image:
    """Draw strokes as the laser burns them: mode "L", 255 = burned, 0 = untouched.

    ``bounds`` = (x_min, y_min, x_max, y_max) in mm; image row 0 is ``y_max`` (y points up in mm,
    down in the image). Each stroke is the set of points within ``spot_mm / 2`` of its path (round
    caps and joins); a one-point stroke is a disc of the spot diameter. A pixel is burned when its
    centre lies inside. A spot narrower than one pixel is drawn one pixel wide, so thin strokes stay
    visible and connected at coarse scales.
    """
    from PIL import Image

    width, height = raster_size(bounds, px_per_mm)
    mask = burn_mask(polylines, spot_mm=spot_mm, bounds=bounds, px_per_mm=px_per_mm)
    return Image.frombytes("L", (width, height), mask.tobytes())


def burn_mask(
    polylines: Sequence[Sequence[Point]],
    *,
    spot_mm: float,
    bounds: Bounds,
    px_per_mm: float,
) -> npt.NDArray[np.uint8]:
    """The raster of :func:`rasterize` as a (height, width) uint8 array (255 = burned).

    Vectorised scanline fill: every stroke segment widened by the spot radius is a convex capsule,
    so each pixel row cuts it in one interval; intervals become +1/-1 marks in a difference array
    whose running sum along the row gives the coverage. No per-stroke drawing calls.
    """
    import numpy as np

    width, height = raster_size(bounds, px_per_mm)
    x0, _, _, y1 = bounds
    r = max(spot_mm / 2 * px_per_mm, 0.5)
    ax_l: list[float] = []
    ay_l: list[float] = []
    bx_l: list[float] = []
    by_l: list[float] = []
    for stroke in polylines:
        n = len(stroke)
        if n == 0:
            continue
        if n == 1:
            ax_l.append(stroke[0][0])
            ay_l.append(stroke[0][1])
            bx_l.append(stroke[0][0])
            by_l.append(stroke[0][1])
            continue
        for i in range(n - 1):
            ax_l.append(stroke[i][0])
            ay_l.append(stroke[i][1])
            bx_l.append(stroke[i + 1][0])
            by_l.append(stroke[i + 1][1])
    out = np.zeros((height, width), dtype=np.uint8)
    if not ax_l:
        return out
    # image coordinates, continuous: pixel (i, j) spans [i, i+1] x [j, j+1], its centre at +0.5
    ax = (np.asarray(ax_l, dtype=np.float64) - x0) * px_per_mm
    bx = (np.asarray(bx_l, dtype=np.float64) - x0) * px_per_mm
    ay = (y1 - np.asarray(ay_l, dtype=np.float64)) * px_per_mm
    by = (y1 - np.asarray(by_l, dtype=np.float64)) * px_per_mm

    # rows whose centre may meet each capsule
    row_lo = np.ceil(np.minimum(ay, by) - r - 0.5)
    row_hi = np.floor(np.maximum(ay, by) + r - 0.5)
    keep = (
        (row_hi >= 0)
        & (row_lo <= height - 1)
        & (np.maximum(ax, bx) + r >= 0)
        & (np.minimum(ax, bx) - r <= width)
    )
    if not keep.any():
        return out
    ax, ay, bx, by = ax[keep], ay[keep], bx[keep], by[keep]
    row_lo = np.clip(row_lo[keep], 0, height - 1).astype(np.int64)
    row_hi = np.clip(row_hi[keep], 0, height - 1).astype(np.int64)
    counts = row_hi - row_lo + 1
    seg = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    rows = row_lo[seg] + (np.arange(len(seg)) - starts[seg])
    yc = rows + 0.5
    sax, say, sbx, sby = ax[seg], ay[seg], bx[seg], by[seg]

    r2 = r * r
    inf = np.inf
    left = np.full(len(seg), inf)
    right = np.full(len(seg), -inf)
    # the end discs
    for cx, cy in ((sax, say), (sbx, sby)):
        d2 = r2 - (yc - cy) ** 2
        ok = d2 >= 0
        h = np.sqrt(np.where(ok, d2, 0.0))
        left = np.where(ok, np.minimum(left, cx - h), left)
        right = np.where(ok, np.maximum(right, cx + h), right)
    # the rectangle between them: 0 <= (p-a).u <= L and |(p-a).n| <= r, linear in x on the row
    dx, dy = sbx - sax, sby - say
    length = np.hypot(dx, dy)
    has_body = length > 1e-12
    safe_len = np.where(has_body, length, 1.0)
    ux, uy = dx / safe_len, dy / safe_len
    nx, ny = -uy, ux
    lo_x = np.full(len(seg), -inf)
    hi_x = np.full(len(seg), inf)
    valid = has_body.copy()
    for slope, const, lo, hi in (
        (ux, (yc - say) * uy - sax * ux, 0.0, length),
        (nx, (yc - say) * ny - sax * nx, -r, r),
    ):
        steep = np.abs(slope) > 1e-12
        safe_slope = np.where(steep, slope, 1.0)
        e1 = (lo - const) / safe_slope
        e2 = (hi - const) / safe_slope
        lo_x = np.where(steep, np.maximum(lo_x, np.minimum(e1, e2)), lo_x)
        hi_x = np.where(steep, np.minimum(hi_x, np.maximum(e1, e2)), hi_x)
        # a constraint flat along the row holds for the whole row or for none of it
        valid &= steep | ((const >= lo) & (const <= hi))
    valid &= lo_x <= hi_x
    left = np.where(valid, np.minimum(left, lo_x), left)
    right = np.where(valid, np.maximum(right, hi_x), right)

    # pixel i is burned when xl <= i + 0.5 <= xr
    i0 = np.ceil(left - 0.5)
    i1 = np.floor(right - 0.5)
    i0 = np.clip(np.nan_to_num(i0, posinf=width, neginf=0), 0, width).astype(np.int64)
    i1 = np.clip(np.nan_to_num(i1, posinf=width - 1, neginf=-1), -1, width - 1).astype(np.int64)
    hit = i0 <= i1
    rows, i0, i1 = rows[hit], i0[hit], i1[hit]
    stride = width + 1
    marks = np.bincount(rows * stride + i0, minlength=height * stride) - np.bincount(
        rows * stride + i1 + 1, minlength=height * stride
    )
    cover = np.cumsum(marks.reshape(height, stride)[:, :width], axis=1)
    out[cover > 0] = 255
    return out


def overlap(a: Image.Image, b: Image.Image) -> float:
    """Intersection over union of the burned pixels (> 127) of two same-size rasters.

    1.0 for identical burns (and for two empty ones), 0.0 for disjoint ones.
    """
    import numpy as np

    if a.size != b.size:
        raise ValueError(f"cannot compare rasters of different sizes {a.size} and {b.size}")
    aa = np.asarray(a.convert("L")) > 127
    bb = np.asarray(b.convert("L")) > 127
    union = int(np.count_nonzero(aa | bb))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(aa & bb)) / union


def job_strokes(job: Job, spot_mm: float = 0.0) -> list[list[Point]]:
    """Every primitive of the job in order as a list of points (a Dot is one point), one pass.

    With ``spot_mm``, a dot whose modelled diameter (``Dot.diameter_mm``) is wider than the spot
    becomes concentric rings drawn at that spot width, which burn exactly its disc: the picture and
    the decode check then show the dot as large as the dot model says it burns.
    """
    out: list[list[Point]] = []
    for _, prim in job.primitives():
        if spot_mm > 0 and isinstance(prim, Dot) and prim.diameter_mm > spot_mm:
            out.extend(dot_rings(prim.x, prim.y, prim.diameter_mm, spot_mm))
        else:
            out.append(list(prim.points))
    return out


def dot_rings(x: float, y: float, diameter_mm: float, spot_mm: float) -> list[list[Point]]:
    """Closed rings (and the centre) whose burn at ``spot_mm`` is the disc of ``diameter_mm``."""
    outer = (diameter_mm - spot_mm) / 2
    count = max(1, math.ceil(outer / (0.9 * spot_mm)))
    step = outer / count
    rings: list[list[Point]] = [[(x, y)]]
    for k in range(1, count + 1):
        radius = k * step
        n = max(8, math.ceil(2 * math.pi * radius / spot_mm))
        ring = [
            (x + radius * math.cos(2 * math.pi * i / n), y + radius * math.sin(2 * math.pi * i / n))
            for i in range(n)
        ]
        ring.append(ring[0])
        rings.append(ring)
    return rings
