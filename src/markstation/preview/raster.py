"""The burn raster: strokes drawn at the real spot width, as the laser would burn them.

:func:`rasterize` gives a mode-"L" image (255 = burned). Both device simulators render their burn
ledgers with it, so a simulated burn and a preview can be compared pixel for pixel with
:func:`overlap`. numpy and Pillow load inside the functions, when a raster is actually drawn.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from markstation.errors import ConfigError
from markstation.i18n import _
from markstation.job.ir import Dot, Job, Point

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from PIL import Image

Bounds = tuple[float, float, float, float]

#: largest raster the preview functions will allocate (pixels per side), a guard against typos
MAX_RASTER_PX = 12000
#: a modelled dot narrower than this many pixels is drawn anti-aliased (:func:`rasterize_dots`)
DOT_SAMPLE_PX = 16


def raster_size(bounds: Bounds, px_per_mm: float) -> tuple[int, int]:
    """(width, height) in pixels of a raster covering ``bounds`` at ``px_per_mm``."""
    x0, y0, x1, y1 = bounds
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"empty raster bounds {bounds}")
    if not (px_per_mm > 0 and math.isfinite(px_per_mm)):
        raise ValueError(
            _("px_per_mm must be a positive number, got {px_per_mm}").format(px_per_mm=px_per_mm)
        )
    width = max(1, math.ceil((x1 - x0) * px_per_mm - 1e-9))
    height = max(1, math.ceil((y1 - y0) * px_per_mm - 1e-9))
    if width > MAX_RASTER_PX or height > MAX_RASTER_PX:
        raise ConfigError(
            _(
                "a {width} × {height} px raster is too large (limit {MAX_RASTER_PX} px per side); lower --px-per-mm"
            ).format(width=width, height=height, MAX_RASTER_PX=MAX_RASTER_PX)
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
    so each pixel row cuts it in one interval; the union of the intervals, as runs of the
    row-major raster, is written in one pass over the box the burn touches. No per-stroke drawing
    calls, and no work for the untouched rest of the raster.
    """
    import numpy as np

    width, height = raster_size(bounds, px_per_mm)
    origin = (bounds[0], bounds[3])
    rows, i0, i1 = _intervals(
        polylines, spot_mm=spot_mm, origin=origin, size=(width, height), px_per_mm=px_per_mm
    )
    out = np.zeros((height, width), dtype=np.uint8)
    if len(rows):
        r0, r1, c0, c1 = int(rows.min()), int(rows.max()) + 1, int(i0.min()), int(i1.max()) + 1
        out[r0:r1, c0:c1] = _paint(rows - r0, i0 - c0, i1 - c0, (c1 - c0, r1 - r0), 255)
    return out


def burn_coverage(
    polylines: Sequence[Sequence[Point]],
    *,
    spot_mm: float,
    origin: tuple[float, float],
    size: tuple[int, int],
    px_per_mm: float,
    supersample: int,
) -> npt.NDArray[np.uint8]:
    """How many of each pixel's ``supersample``² sub-pixels the burn covers (0 … supersample²).

    The (width, height) = ``size`` raster has its top-left corner at ``origin`` = (x_min, y_max)
    mm; the burn is :func:`burn_mask` drawn ``supersample`` × finer on exactly its pixel grid, so
    each pixel counts its own sub-pixels: the anti-aliased burn of a preview.
    """
    import numpy as np

    ss = supersample
    (x0, y1), (width, height) = origin, size
    fine = ss * px_per_mm
    raster_size((x0, y1 - height / px_per_mm, x0 + width / px_per_mm, y1), fine)  # the size guard
    rows, i0, i1 = _intervals(
        polylines, spot_mm=spot_mm, origin=origin, size=(width * ss, height * ss), px_per_mm=fine
    )
    out = np.zeros((height, width), dtype=np.uint8)
    if len(rows):
        # the box the burn touches, in whole pixels
        r0, r1 = int(rows.min()) // ss, int(rows.max()) // ss + 1
        c0, c1 = int(i0.min()) // ss, int(i1.max()) // ss + 1
        sub = _paint(
            rows - r0 * ss, i0 - c0 * ss, i1 - c0 * ss, ((c1 - c0) * ss, (r1 - r0) * ss), 1
        )
        count = sub[0::ss, 0::ss].copy()
        for dy in range(ss):
            for dx in range(ss):
                if dx or dy:
                    count += sub[dy::ss, dx::ss]
        out[r0:r1, c0:c1] = count
    return out


def _intervals(
    polylines: Sequence[Sequence[Point]],
    *,
    spot_mm: float,
    origin: tuple[float, float],
    size: tuple[int, int],
    px_per_mm: float,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(row, first, last): the pixel runs each stroke segment burns, row by row, of the (width,
    height) raster whose top-left corner is ``origin``; runs of different segments may overlap.

    A pixel is burned when its centre is within the spot radius of the segment (a capsule); the
    radius is never narrower than half a pixel.
    """
    import numpy as np

    x0, y1 = origin
    width, height = size
    r = max(spot_mm / 2 * px_per_mm, 0.5)
    none = np.zeros(0, dtype=np.int64)
    ax, ay, bx, by = _segments(polylines)
    if not len(ax):
        return none, none, none
    # image coordinates, continuous: pixel (i, j) spans [i, i+1] x [j, j+1], its centre at +0.5
    ax = (ax - x0) * px_per_mm
    bx = (bx - x0) * px_per_mm
    ay = (y1 - ay) * px_per_mm
    by = (y1 - by) * px_per_mm

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
        return none, none, none
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
    return rows[hit], i0[hit], i1[hit]


def _paint(
    rows: npt.NDArray[np.int64],
    first: npt.NDArray[np.int64],
    last: npt.NDArray[np.int64],
    size: tuple[int, int],
    value: int,
) -> npt.NDArray[np.uint8]:
    """A (height, width) raster, ``value`` on the union of the runs of :func:`_intervals`, else 0."""
    import numpy as np

    width, height = size
    # the union as runs of the row-major raster: sorted by start, a run goes on while the next
    # interval starts at most one pixel past the furthest end so far
    start = rows * width + first
    end = rows * width + last
    order = np.argsort(start, kind="stable")
    start, end = start[order], end[order]
    reach = np.maximum.accumulate(end)
    new = np.empty(len(start), dtype=bool)
    new[0] = True
    np.greater(start[1:], reach[:-1] + 1, out=new[1:])
    head = np.flatnonzero(new)
    run_start = start[head]
    run_end = np.append(reach[head[1:] - 1], reach[-1])
    # the raster is gap, run, gap, run, ..., gap: one repeat writes it, at memory speed (a
    # running sum over every pixel cost ten times as much as the strokes themselves)
    lengths = np.empty(2 * len(run_start) + 1, dtype=np.int64)
    lengths[0] = run_start[0]
    lengths[1::2] = run_end - run_start + 1
    lengths[2:-1:2] = run_start[1:] - run_end[:-1] - 1
    lengths[-1] = height * width - 1 - run_end[-1]
    values = np.zeros(len(lengths), dtype=np.uint8)
    values[1::2] = value
    return np.repeat(values, lengths).reshape(height, width)


def _segments(
    polylines: Sequence[Sequence[Point]],
) -> tuple[npt.NDArray[np.float64], ...]:
    """(ax, ay, bx, by): every segment of every stroke, in order; a one-point stroke is the
    segment from its point to itself, an empty one is skipped."""
    import numpy as np

    counts = np.fromiter((len(s) for s in polylines), dtype=np.int64, count=len(polylines))
    total = int(counts.sum())
    if total == 0:
        empty = np.zeros(0, dtype=np.float64)
        return empty, empty, empty, empty
    flat = np.fromiter(
        itertools.chain.from_iterable(itertools.chain.from_iterable(polylines)),
        dtype=np.float64,
        count=2 * total,
    ).reshape(total, 2)
    last = np.cumsum(counts) - 1  # the last point of each stroke
    # a segment starts at every point but the last of a stroke of two or more points
    starts = np.ones(total, dtype=bool)
    starts[last[counts >= 2]] = False
    a = np.flatnonzero(starts)
    lone = np.zeros(total, dtype=bool)
    lone[last[counts == 1]] = True
    b = a + ~lone[a]
    return flat[a, 0], flat[a, 1], flat[b, 0], flat[b, 1]


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
    for _group, prim in job.primitives():
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


def rasterize_dots(
    polylines: Sequence[Sequence[Point]],
    dot_mm: Sequence[float],
    *,
    spot_mm: float,
    bounds: Bounds,
    px_per_mm: float,
) -> Image.Image:
    """:func:`rasterize`, with each dot (a one-point stroke) drawn as wide as it burns.

    ``dot_mm[i]`` is the burned diameter of ``polylines[i]`` when that is a dot (the dot model,
    :func:`markstation.job.fill.dot_diameter_mm`; ``Dot.diameter_mm`` for a job). Strokes, and
    dots of 0 or at most the spot, are drawn exactly as :func:`rasterize` draws them. A wider dot
    is the disc of its diameter at any scale; where it spans fewer than :data:`DOT_SAMPLE_PX`
    pixels it is anti-aliased (the share of each pixel it covers, :func:`burn_coverage`), as
    pixel-centre sampling of a grid of dots about as wide as two pixels can miss or double them
    all. (The rings of :func:`job_strokes` need a raster fine enough for the spot: a coarse one,
    a thumbnail, widens each ring to its half-pixel minimum, and the dot with it.)
    """
    import numpy as np
    from PIL import Image

    width, height = raster_size(bounds, px_per_mm)
    plain: list[Sequence[Point]] = []
    wide: dict[float, list[Sequence[Point]]] = {}
    quantum = 100 * px_per_mm  # diameters to 1/100 px: a raster per size, and few sizes
    for stroke, diameter in zip(polylines, dot_mm, strict=True):
        if len(stroke) == 1 and diameter > spot_mm:
            wide.setdefault(round(diameter * quantum) / quantum, []).append(stroke)
        else:
            plain.append(stroke)
    mask = burn_mask(plain, spot_mm=spot_mm, bounds=bounds, px_per_mm=px_per_mm)
    for diameter, dots in wide.items():
        ss = min(
            max(1, math.ceil(DOT_SAMPLE_PX / (diameter * px_per_mm))),
            15,  # a count of 15² sub-pixels still fits a byte
            MAX_RASTER_PX // max(width, height),
        )
        if ss <= 1:
            disc = burn_mask(dots, spot_mm=diameter, bounds=bounds, px_per_mm=px_per_mm)
        else:
            count = burn_coverage(
                dots,
                spot_mm=diameter,
                origin=(bounds[0], bounds[3]),
                size=(width, height),
                px_per_mm=px_per_mm,
                supersample=ss,
            )
            disc = ((count.astype(np.uint16) * 255 + ss * ss // 2) // (ss * ss)).astype(np.uint8)
        np.maximum(mask, disc, out=mask)
    return Image.frombytes("L", (width, height), mask.tobytes())
