"""Hatching at any angle, cross-hatch, serpentine joins and outline order (issue 14, scope 3)."""

from __future__ import annotations

import dataclasses
import itertools
import math
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from markstation.job.fill import fill_modules, hatch_direction
from markstation.job.ir import Polyline, Primitive
from markstation.job.layout import build_job
from markstation.job.symbols import ModuleMatrix, encode_symbol
from markstation.preview.verify import verify_codes
from markstation.profiles import LayoutProfile, load_layout, load_machine, load_material
from markstation.verify import build_verified_job

# decode + grade round trips on every material and angle: the full run, not the quick loop
pytestmark = pytest.mark.slow

MACHINE = load_machine("lmc-fiber-110")
GALVO_MATERIALS = ("blued-steel", "stainless", "anodised-aluminium", "polymer-frame-tag")
M, SPOT, SPACING, TOP_LEFT = 0.3, 0.03, 0.03, (-1.0, 2.0)
CODE = "PE-SUCAMEC-2016-000123"


def matrices() -> st.SearchStrategy[ModuleMatrix]:
    return st.integers(1, 9).flatmap(
        lambda w: st.lists(
            st.lists(st.integers(0, 1), min_size=w, max_size=w), min_size=1, max_size=9
        ).map(lambda rows: ModuleMatrix.from_bools("qr", "t", rows))
    )


def fill(matrix: ModuleMatrix, **kw: object) -> tuple[Primitive, ...]:
    args: dict[str, object] = {
        "module_mm": M,
        "top_left": TOP_LEFT,
        "style": "hatch",
        "hatch_spacing_mm": SPACING,
        "dot_dwell_s": 0.001,
        "quiet_zone_modules": 1,
        "spot_mm": SPOT,
        **kw,
    }
    return fill_modules(matrix, **args)  # type: ignore[arg-type]


def dark(matrix: ModuleMatrix, x: float, y: float) -> bool:
    c = math.floor((x - TOP_LEFT[0]) / M)
    r = math.floor((TOP_LEFT[1] - y) / M)
    return 0 <= r < len(matrix.rows) and 0 <= c < matrix.size[0] and matrix.rows[r][c] == "1"


def assert_contained(matrix: ModuleMatrix, prims: tuple[Primitive, ...]) -> None:
    """Every point of every stroke carries a spot-sized square that stays on dark modules."""
    h = SPOT / 2 - 1e-7
    for prim in prims:
        assert isinstance(prim, Polyline)
        pts = prim.points
        for (ax, ay), (bx, by) in itertools.pairwise(pts):
            for k in range(11):
                x, y = ax + (bx - ax) * k / 10, ay + (by - ay) * k / 10
                for sx in (-h, h):
                    for sy in (-h, h):
                        assert dark(matrix, x + sx, y + sy), (prim, (x, y))


def segment_distance(
    p: tuple[float, float], a: tuple[float, float], b: tuple[float, float]
) -> float:
    ax, ay = a
    vx, vy = b[0] - ax, b[1] - ay
    n2 = vx * vx + vy * vy
    t = 0.0 if n2 == 0 else max(0.0, min(1.0, ((p[0] - ax) * vx + (p[1] - ay) * vy) / n2))
    return math.dist(p, (ax + t * vx, ay + t * vy))


@settings(max_examples=25, deadline=None)
@given(matrix=matrices(), angle=st.floats(-180, 180), cross=st.none() | st.floats(-180, 180))
def test_angled_hatch_stays_on_dark_modules_and_reaches_every_one(
    matrix: ModuleMatrix, angle: float, cross: float | None
) -> None:
    prims = fill(matrix, angle_deg=angle, cross_angle_deg=cross)
    assert_contained(matrix, prims)
    segments = [(p.points[i], p.points[i + 1]) for p in prims for i in range(len(p.points) - 1)]
    for r, row in enumerate(matrix.rows):
        for c, ch in enumerate(row):
            if ch == "1":  # the centre of every dark module lies within half a pitch of a stroke
                centre = (TOP_LEFT[0] + (c + 0.5) * M, TOP_LEFT[1] - (r + 0.5) * M)
                near = min(segment_distance(centre, a, b) for a, b in segments)
                assert near <= SPACING / 2 + 1e-6


@settings(max_examples=25, deadline=None)
@given(matrix=matrices(), vertical=st.booleans())
def test_serpentine_join_burns_the_same_hatch_in_fewer_strokes(
    matrix: ModuleMatrix, vertical: bool
) -> None:
    direction = "vertical" if vertical else "horizontal"
    plain = fill(matrix, direction=direction)
    joined = fill(matrix, direction=direction, join=True)
    assert_contained(matrix, joined)
    # every scan stroke of the plain hatch is a segment of a joined polyline
    segs = {
        frozenset((p.points[i], p.points[i + 1])) for p in joined for i in range(len(p.points) - 1)
    }
    assert all(frozenset(p.points) in segs for p in plain)
    runs = sum(len([s for s in row.split("0") if s]) for row in matrix.rows) if not vertical else 0
    if not vertical:
        assert len(joined) <= runs  # at most one polyline per run of a row
    # the joins between scan lines are single steps no longer than a pitch or a spot
    for p in joined:
        for a, b in itertools.pairwise(p.points):
            if (a[1] != b[1]) if not vertical else (a[0] != b[0]):
                assert math.dist(a, b) <= max(SPACING, SPOT) + 1e-9


def test_angles_along_the_grid_use_the_axis_aligned_hatch() -> None:
    assert hatch_direction(0.0) == hatch_direction(180.0) == hatch_direction(-180.0)
    assert hatch_direction(90.0) == hatch_direction(-90.0) == "vertical"
    assert hatch_direction(30.0) is None
    matrix = encode_symbol("datamatrix", CODE)
    assert fill(matrix, angle_deg=90.0) == fill(matrix, direction="vertical")
    assert fill(matrix, angle_deg=0.0) == fill(matrix)


def outline_layout(order: str) -> LayoutProfile:
    layout = load_layout("secondary-mark")
    elements = list(layout.elements)
    elements[1] = {**elements[1], "fill": "outline-hatch", "outline_order": order}
    return dataclasses.replace(layout, elements=tuple(elements))


@pytest.mark.parametrize(
    ("order", "names"),
    [
        ("mixed", ["text", "datamatrix"]),
        ("first", ["text", "datamatrix-outline", "datamatrix"]),
        ("last", ["text", "datamatrix", "datamatrix-outline"]),
    ],
)
def test_outline_order_puts_the_contours_before_or_after_the_hatch(
    order: str, names: list[str]
) -> None:
    material = load_material("blued-steel")
    job = build_verified_job(CODE, layout=outline_layout(order), material=material, machine=MACHINE)
    assert [layer.name for layer in job.layers] == names
    total = sum(len(layer.primitives) for layer in job.layers if layer.name != "text")
    mixed = build_job(CODE, layout=outline_layout("mixed"), material=material, machine=MACHINE)
    assert total == len(mixed.layers[1].primitives)  # the same strokes, only the order differs


def a_grade_layout() -> LayoutProfile:
    return dataclasses.replace(load_layout("secondary-mark"), min_grade="A")


CODES = st.builds(
    lambda auth, year, number: f"PE-{auth}-{year}-{number:06d}",
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=12),
    st.integers(1950, date.today().year + 1),  # inside the layout's year window
    st.integers(0, 999_999),
)


@pytest.mark.parametrize("material_name", GALVO_MATERIALS)
@settings(max_examples=3, deadline=None, derandomize=True)
@given(code=CODES, angle=st.floats(-180, 180).map(lambda a: round(a, 1)))
def test_any_angle_decodes_with_grade_a(material_name: str, code: str, angle: float) -> None:
    material = dataclasses.replace(load_material(material_name), hatch_angle_deg=angle)
    job = build_verified_job(code, layout=a_grade_layout(), material=material, machine=MACHINE)
    (check,) = verify_codes(job, MACHINE)
    assert check.grade is not None and check.grade.short().startswith("A")


@pytest.mark.parametrize("material_name", GALVO_MATERIALS)
@settings(max_examples=2, deadline=None, derandomize=True)
@given(code=CODES, angle=st.sampled_from([0.0, 30.0, 90.0]), turn=st.sampled_from([90.0, 60.0]))
def test_cross_hatch_decodes_with_grade_a(
    material_name: str, code: str, angle: float, turn: float
) -> None:
    material = dataclasses.replace(
        load_material(material_name), hatch_angle_deg=angle, cross_hatch_angle_deg=angle + turn
    )
    job = build_verified_job(code, layout=a_grade_layout(), material=material, machine=MACHINE)
    (check,) = verify_codes(job, MACHINE)
    assert check.grade is not None and check.grade.short().startswith("A")
