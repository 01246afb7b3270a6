"""Module fills: coverage of marked modules, nothing burned outside them, every style and refusal.

The checks are independent of fill.py: the grid a style must burn is recomputed here, strokes are
rasterised at 20 px/module with their spot, and outlines are counted against a flood fill.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from markstation.errors import JobError, SymbolError
from markstation.job.fill import FILL_STYLES, code_bbox, fill_modules, scan_offsets
from markstation.job.ir import Dot, Polyline, Primitive
from markstation.job.symbols import ModuleMatrix, encode_symbol

PX = 20  # raster samples per module
EPS = 1e-9


@st.composite
def matrices(draw: st.DrawFn) -> ModuleMatrix:
    cols = draw(st.integers(1, 9))
    rows = draw(st.integers(1, 9))
    grid = draw(
        st.lists(
            st.lists(st.booleans(), min_size=cols, max_size=cols), min_size=rows, max_size=rows
        )
    )
    return ModuleMatrix.from_bools("datamatrix", "test", grid)


@dataclass(frozen=True)
class Geo:
    module_mm: float
    spot_mm: float
    hatch_spacing_mm: float
    top_left: tuple[float, float]


@st.composite
def geometry(draw: st.DrawFn) -> Geo:
    module = draw(st.floats(0.1, 1.0))
    spot = module * draw(st.floats(0.02, 0.9))
    spacing = module * draw(st.floats(0.08, 1.5))
    corner = (draw(st.floats(-40, 40)), draw(st.floats(-40, 40)))
    return Geo(module, spot, spacing, corner)


def burn_grid(matrix: ModuleMatrix, style: str, quiet: int) -> tuple[np.ndarray, int]:
    """What the style must burn (True) and how many modules the grid extends beyond the symbol."""
    dark = np.array(matrix.bools(), dtype=bool)
    if style != "inverse":
        return dark, 0
    return np.pad(~dark, quiet, constant_values=True), quiet


Segment = tuple[tuple[float, float], tuple[float, float]]


def segments(prims: tuple[Primitive, ...]) -> list[Segment]:
    out: list[Segment] = []
    for p in prims:
        assert isinstance(p, Polyline)
        out.extend(itertools.pairwise(p.points))
    return out


def check_inside(
    prims: tuple[Primitive, ...], grid: np.ndarray, gx0: float, gy0: float, m: float, r: float
) -> None:
    """Every segment grown by the spot radius (as a rectangle, a superset of the burn) stays in
    burned modules; the round burn itself is also rasterised and must not touch a kept module."""
    nrows, ncols = grid.shape
    for (ax, ay), (bx, by) in segments(prims):
        assert ax == bx or ay == by, "strokes are axis-aligned"
        # module index ranges overlapped by the grown rectangle, shrunk by a hair for touching edges
        c_lo = math.floor((min(ax, bx) - r - gx0) / m + EPS)
        c_hi = math.ceil((max(ax, bx) + r - gx0) / m - EPS)
        r_lo = math.floor((gy0 - (max(ay, by) + r)) / m + EPS)
        r_hi = math.ceil((gy0 - (min(ay, by) - r)) / m - EPS)
        assert c_lo >= 0 and c_hi <= ncols and r_lo >= 0 and r_hi <= nrows, "burn leaves the grid"
        assert grid[r_lo:r_hi, c_lo:c_hi].all(), "burn enters a module that must stay unmarked"
    burned = rasterise_round(prims, grid.shape, gx0, gy0, m, r)
    assert not (burned & ~np.kron(grid, np.ones((PX, PX), dtype=bool))).any()


def sample_centres(
    shape: tuple[int, int], gx0: float, gy0: float, m: float
) -> tuple[np.ndarray, np.ndarray]:
    nrows, ncols = shape
    xs = gx0 + (np.arange(ncols * PX) + 0.5) * (m / PX)
    ys = gy0 - (np.arange(nrows * PX) + 0.5) * (m / PX)
    return xs, ys


def rasterise_round(
    prims: tuple[Primitive, ...], shape: tuple[int, int], gx0: float, gy0: float, m: float, r: float
) -> np.ndarray:
    """Pixels whose centre lies within r of a segment: the burn of a round spot."""
    xs, ys = sample_centres(shape, gx0, gy0, m)
    out = np.zeros((len(ys), len(xs)), dtype=bool)
    for (ax, ay), (bx, by) in segments(prims):
        # only the window around the segment can be burned by it
        cols = np.nonzero((xs >= min(ax, bx) - r) & (xs <= max(ax, bx) + r))[0]
        rows = np.nonzero((ys >= min(ay, by) - r) & (ys <= max(ay, by) + r))[0]
        if not len(cols) or not len(rows):
            continue
        X, Y = np.meshgrid(xs[cols], ys[rows])
        dx, dy = bx - ax, by - ay
        length2 = dx * dx + dy * dy
        t = (
            np.zeros_like(X)
            if length2 == 0
            else np.clip(((X - ax) * dx + (Y - ay) * dy) / length2, 0, 1)
        )
        hit = (X - (ax + t * dx)) ** 2 + (Y - (ay + t * dy)) ** 2 <= (r - EPS) ** 2
        out[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] |= hit
    return out


def coverage(
    prims: tuple[Primitive, ...],
    shape: tuple[int, int],
    gx0: float,
    gy0: float,
    m: float,
    along: float,
    across: float,
) -> np.ndarray:
    """Pixels within ``along`` of a stroke's span along it and ``across`` across it."""
    xs, ys = sample_centres(shape, gx0, gy0, m)
    out = np.zeros((len(ys), len(xs)), dtype=bool)
    for (ax, ay), (bx, by) in segments(prims):
        if ay == by:  # horizontal
            gx, gy = along, across
        else:
            gx, gy = across, along
        cols = (xs >= min(ax, bx) - gx - EPS) & (xs <= max(ax, bx) + gx + EPS)
        rows = (ys >= min(ay, by) - gy - EPS) & (ys <= max(ay, by) + gy + EPS)
        out[np.ix_(rows, cols)] = True
    return out


def run(
    matrix: ModuleMatrix, style: str, geo: Geo, quiet: int = 2, direction: str = "horizontal"
) -> tuple[Primitive, ...]:
    return fill_modules(
        matrix,
        module_mm=geo.module_mm,
        top_left=geo.top_left,
        style=style,
        hatch_spacing_mm=geo.hatch_spacing_mm,
        dot_dwell_s=0.0005,
        quiet_zone_modules=quiet,
        spot_mm=geo.spot_mm,
        direction=direction,
    )


# --- hatch, inverse, outline-hatch: coverage and containment ---------------------------------


@pytest.mark.timeout(120)
@given(
    matrix=matrices(),
    geo=geometry(),
    style=st.sampled_from(["hatch", "inverse", "outline-hatch"]),
    quiet=st.integers(0, 3),
    direction=st.sampled_from(["horizontal", "vertical"]),
)
def test_hatch_covers_marked_modules_and_never_leaves_them(
    matrix: ModuleMatrix, geo: Geo, style: str, quiet: int, direction: str
) -> None:
    prims = run(matrix, style, geo, quiet, direction)
    m, spot, spacing, (x0, y0) = geo.module_mm, geo.spot_mm, geo.hatch_spacing_mm, geo.top_left
    grid, q = burn_grid(matrix, style, quiet)
    gx0, gy0 = x0 - q * m, y0 + q * m
    if not grid.any():
        assert prims == ()
        return
    check_inside(prims, grid, gx0, gy0, m, spot / 2)
    hatch = [p for p in prims if isinstance(p, Polyline) and len(p.points) == 2]
    # the guarantee: within spot/2 along a scan line and max(spot, spacing)/2 across it
    covered = coverage(tuple(hatch), grid.shape, gx0, gy0, m, spot / 2, max(spot, spacing) / 2)
    assert covered[np.kron(grid, np.ones((PX, PX), dtype=bool))].all()
    if spacing <= spot:
        # dense hatch: the round burn covers all but the corners the spot cannot reach at run ends
        burned = rasterise_round(tuple(hatch), grid.shape, gx0, gy0, m, spot / 2)
        want = np.kron(grid, np.ones((PX, PX), dtype=bool))
        # per run end and row the spot misses at most (1 - pi/4) of a strip spot/2 wide
        assert burned[want].mean() >= 1 - (1 - math.pi / 4) * spot / m - 0.03


@pytest.mark.timeout(60)
@given(matrix=matrices(), geo=geometry(), direction=st.sampled_from(["horizontal", "vertical"]))
def test_hatch_is_serpentine_and_merges_runs(
    matrix: ModuleMatrix, geo: Geo, direction: str
) -> None:
    prims = run(matrix, "hatch", geo, direction=direction)
    axis = 0 if direction == "horizontal" else 1
    lines: list[tuple[float, int, list[Polyline]]] = []  # (scan coordinate, sign, strokes)
    for p in prims:
        assert isinstance(p, Polyline) and len(p.points) == 2
        (a, b) = p.points
        assert a[1 - axis] == b[1 - axis] and a[axis] != b[axis]
        sign = 1 if b[axis] > a[axis] else -1
        key = a[1 - axis]
        if lines and lines[-1][0] == key:
            assert lines[-1][1] == sign, "one direction per scan line"
            assert (p.points[0][axis] - lines[-1][2][-1].points[1][axis]) * sign > 0, (
                "runs in order"
            )
            lines[-1][2].append(p)
        else:
            if lines:
                assert lines[-1][1] == -sign, "direction alternates between scan lines"
            lines.append((key, sign, [p]))
    # one stroke per run of adjacent dark modules on every scan line
    m, spot, spacing = geo.module_mm, geo.spot_mm, geo.hatch_spacing_mm
    per_row = len(scan_offsets(m, spot, spacing))
    rows = (
        matrix.rows
        if axis == 0
        else tuple("".join(r[c] for r in matrix.rows) for c in range(matrix.size[0]))
    )
    runs = sum(len([s for s in row.split("0") if s]) for row in rows)
    assert len(prims) == runs * per_row


@given(
    module=st.floats(0.05, 2.0),
    spot_frac=st.floats(0.01, 0.99),
    spacing_frac=st.floats(0.01, 2.0),
)
def test_scan_offsets_pitch_never_exceeds_spacing(
    module: float, spot_frac: float, spacing_frac: float
) -> None:
    spot, spacing = module * spot_frac, module * spacing_frac
    offs = scan_offsets(module, spot, spacing)
    assert len(offs) >= 2
    assert offs[0] == pytest.approx(spot / 2) and offs[-1] == pytest.approx(module - spot / 2)
    gaps = np.diff(offs)
    assert (gaps <= spacing * (1 + 1e-9)).all() and np.allclose(gaps, gaps[0])
    # the fewest lines that achieve it: one fewer gap would be wider than the spacing
    if len(offs) > 2:
        assert (module - spot) / (len(offs) - 2) > spacing * (1 - 1e-9)


def test_material_numbers_give_ten_lines_per_row() -> None:
    # 0.3 mm modules, 0.03 mm spot and spacing: 0.27 mm in 9 gaps; float noise must not add a 10th
    assert len(scan_offsets(0.3, 0.03, 0.03)) == 10


# --- dots --------------------------------------------------------------------------------------


@given(matrix=matrices(), geo=geometry())
def test_dots_sit_at_dark_module_centres(matrix: ModuleMatrix, geo: Geo) -> None:
    prims = run(matrix, "dots", geo)
    m, (x0, y0) = geo.module_mm, geo.top_left
    assert all(isinstance(p, Dot) and p.dwell_s == 0.0005 for p in prims)
    got = sorted((round((p.x - x0) / m - 0.5, 9), round((y0 - p.y) / m - 0.5, 9)) for p in prims)  # type: ignore[union-attr]
    want = sorted((float(c), float(r)) for c, r in matrix.dark_modules())
    assert got == want


# --- inverse -----------------------------------------------------------------------------------


def test_inverse_marks_the_quiet_ring_and_light_modules_only() -> None:
    matrix = ModuleMatrix.from_bools("qr", "t", [[1, 0], [0, 1]])
    prims = run(matrix, "inverse", Geo(1.0, 0.2, 0.2, (0.0, 0.0)), quiet=1)
    ys = {p.points[0][1] for p in prims}
    # the ring starts one module above the symbol's top edge; the hatch spans rows -1..2
    assert max(ys) == pytest.approx(0.9) and min(ys) == pytest.approx(-2.9)
    xs = [x for p in prims for x, _ in p.points]
    assert min(xs) == pytest.approx(-0.9) and max(xs) == pytest.approx(2.9)
    # the middle scan lines of row 0 cross the light module (1, 0) and the ring, not (0, 0)
    row0 = [p for p in prims if -1 < p.points[0][1] < 0]
    spans = sorted(
        tuple(sorted(x for x, _ in p.points))
        for p in row0
        if p.points[0][1] == row0[0].points[0][1]
    )
    assert spans == [pytest.approx((-0.9, -0.1)), pytest.approx((1.1, 2.9))]


def test_inverse_without_quiet_zone_of_an_all_dark_symbol_is_empty() -> None:
    matrix = ModuleMatrix.from_bools("qr", "t", [[1, 1], [1, 1]])
    assert run(matrix, "inverse", Geo(1.0, 0.1, 0.1, (0.0, 0.0)), quiet=0) == ()


# --- outlines ----------------------------------------------------------------------------------


def components(grid: np.ndarray, diagonal: bool) -> int:
    seen = np.zeros_like(grid)
    steps = [(1, 0), (-1, 0), (0, 1), (0, -1)]
    if diagonal:
        steps += [(1, 1), (1, -1), (-1, 1), (-1, -1)]
    count = 0
    for start in zip(*np.nonzero(grid & ~seen), strict=True):
        if seen[start]:
            continue
        count += 1
        stack = [start]
        seen[start] = True
        while stack:
            r, c = stack.pop()
            for dr, dc in steps:
                rr, cc = r + dr, c + dc
                if (
                    0 <= rr < grid.shape[0]
                    and 0 <= cc < grid.shape[1]
                    and grid[rr, cc]
                    and not seen[rr, cc]
                ):
                    seen[rr, cc] = True
                    stack.append((rr, cc))
    return count


def signed_area(points: tuple[tuple[float, float], ...]) -> float:
    return sum(a[0] * b[1] - b[0] * a[1] for a, b in itertools.pairwise(points)) / 2


@pytest.mark.timeout(60)
@given(matrix=matrices(), geo=geometry())
def test_outlines_one_per_region_and_hole_inset_by_half_the_spot(
    matrix: ModuleMatrix, geo: Geo
) -> None:
    m, spot, (x0, y0) = geo.module_mm, geo.spot_mm, geo.top_left
    hatch = run(matrix, "hatch", geo)
    both = run(matrix, "outline-hatch", geo)
    assert both[: len(hatch)] == hatch
    rings = [p for p in both[len(hatch) :] if isinstance(p, Polyline)]
    for ring in rings:
        assert ring.points[0] == ring.points[-1] and len(ring.points) >= 5
        for x, y in ring.points:  # every vertex spot/2 off a module grid line, on the inside
            for offset in ((x - x0) / m, (y0 - y) / m):
                frac = offset - math.floor(offset)
                assert min(abs(frac - spot / 2 / m), abs(frac - (1 - spot / 2 / m))) < 1e-6
    dark = np.array(matrix.bools(), dtype=bool)
    outer = [r for r in rings if signed_area(r.points) > 0]  # counter-clockwise (y up)
    holes = [r for r in rings if signed_area(r.points) < 0]
    assert len(outer) == components(dark, diagonal=False)
    # holes of 4-connected regions are the 8-connected light areas that do not reach the outside
    light = np.pad(~dark, 1, constant_values=True)
    assert len(holes) == components(light, diagonal=True) - 1
    covered = sum(abs(signed_area(r.points)) * (1 if r in outer else -1) for r in rings)
    assert covered <= dark.sum() * m * m + 1e-9


def test_outline_of_a_single_module_and_a_diagonal_pair() -> None:
    matrix = ModuleMatrix.from_bools("datamatrix", "t", [[1, 0], [0, 1]])
    prims = run(matrix, "outline-hatch", Geo(1.0, 0.2, 0.4, (0.0, 0.0)))
    rings = [p.points for p in prims if isinstance(p, Polyline) and len(p.points) == 5]
    assert sorted(sorted(set(r)) for r in rings) == [
        [(0.1, -0.9), (0.1, -0.1), (0.9, -0.9), (0.9, -0.1)],
        [(1.1, -1.9), (1.1, -1.1), (1.9, -1.9), (1.9, -1.1)],
    ]


def test_outline_of_a_ring_has_a_hole() -> None:
    matrix = ModuleMatrix.from_bools("datamatrix", "t", [[1, 1, 1], [1, 0, 1], [1, 1, 1]])
    prims = run(matrix, "outline-hatch", Geo(1.0, 0.2, 0.4, (0.0, 0.0)))
    rings = [p.points for p in prims if isinstance(p, Polyline) and len(p.points) == 5]
    areas = sorted(signed_area(r) for r in rings)
    assert areas == [pytest.approx(-(1.2**2)), pytest.approx(2.8**2)]


# --- a real symbol ------------------------------------------------------------------------------


@pytest.mark.parametrize("style", FILL_STYLES)
def test_real_datamatrix_every_style(style: str) -> None:
    matrix = encode_symbol("datamatrix", "PE-SUCAMEC-2016-000123")
    prims = run(matrix, style, Geo(0.3, 0.03, 0.03, (-2.7, 2.7)), quiet=1)
    assert prims
    bbox = code_bbox(matrix, module_mm=0.3, top_left=(-2.7, 2.7), quiet_zone_modules=1)
    assert bbox == pytest.approx((-3.0, -3.0, 3.0, 3.0))
    for p in prims:
        for x, y in p.points:
            assert bbox[0] < x < bbox[2] and bbox[1] < y < bbox[3]


# --- refusals ----------------------------------------------------------------------------------

GOOD: dict[str, Any] = {
    "module_mm": 0.3,
    "top_left": (0.0, 0.0),
    "style": "hatch",
    "hatch_spacing_mm": 0.03,
    "dot_dwell_s": 0.001,
    "quiet_zone_modules": 1,
    "spot_mm": 0.03,
}


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ({"style": "zigzag"}, r"fill style 'zigzag' is not one of hatch, dots"),
        ({"direction": "diagonal"}, r"hatch direction 'diagonal'"),
        ({"spot_mm": 0.3}, r"spot \(0.3 mm\) is not smaller than the module \(0.3 mm\)"),
        ({"spot_mm": 0.5, "style": "dots"}, r"spot \(0.5 mm\) is not smaller"),
        ({"module_mm": 0.0}, r"module_mm = 0.0 must be greater than 0"),
        ({"module_mm": -1.0}, r"module_mm = -1.0 must be greater than 0"),
        ({"spot_mm": 0.0}, r"spot_mm = 0.0 must be greater than 0"),
        ({"hatch_spacing_mm": 0.0}, r"hatch_spacing_mm = 0.0 must be greater than 0"),
        ({"hatch_spacing_mm": math.nan}, r"hatch_spacing_mm = nan is not a finite number"),
        ({"dot_dwell_s": 0.0, "style": "dots"}, r"dot_dwell_s = 0.0 must be greater than 0"),
        ({"top_left": (math.inf, 0.0)}, r"top_left x = inf is not a finite number"),
        (
            {"quiet_zone_modules": -1, "style": "inverse"},
            r"quiet_zone_modules = -1 must be 0 or more",
        ),
    ],
)
def test_refusals(change: dict[str, object], pattern: str) -> None:
    matrix = ModuleMatrix.from_bools("qr", "t", [[1, 0], [0, 1]])
    with pytest.raises(SymbolError, match=pattern) as info:
        fill_modules(matrix, **{**GOOD, **change})
    assert isinstance(info.value, JobError)


def test_unused_parameters_are_not_checked_for_other_styles() -> None:
    # a dots fill needs no hatch spacing, a hatch no dwell: a zero there must not be an error
    matrix = ModuleMatrix.from_bools("qr", "t", [[1]])
    assert fill_modules(matrix, **{**GOOD, "style": "dots", "hatch_spacing_mm": 0.0})
    assert fill_modules(matrix, **{**GOOD, "dot_dwell_s": 0.0})
