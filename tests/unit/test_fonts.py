"""Stroke fonts: our own font's coverage and shapes, the Hershey adapter, the SVG font loader."""

from __future__ import annotations

import itertools
import math
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from markstation.errors import ConfigError
from markstation.job.fonts import load_font
from markstation.job.fonts.base import Glyph, TableFont
from markstation.job.fonts.svgpath import flatten_arc, flatten_bezier, path_to_polylines
from markstation.job.ir import Point

COVERAGE = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -/.:#ÑÁÉÍÓÚÜÇ"
ACCENTED = "ÑÁÉÍÓÚÜ"

# --- our font -----------------------------------------------------------------------------------


def _ours() -> TableFont:
    font = load_font("markstation")
    assert isinstance(font, TableFont)
    return font


def test_markstation_covers_exactly_the_specified_characters() -> None:
    assert set(_ours().characters()) == set(COVERAGE)
    assert len(_ours().characters()) == len(COVERAGE)


def test_markstation_has_capitals_only() -> None:
    font = _ours()
    for ch in "abcxyzñáéíóúüç":
        assert font.glyph(ch) is None


def test_markstation_cap_height_is_the_height_of_h() -> None:
    font = _ours()
    box = font.glyph("H").bounds()  # type: ignore[union-attr]
    assert box is not None
    assert box[1] == 0.0
    assert box[3] == font.cap_height == 10.0


@pytest.mark.parametrize("ch", [c for c in COVERAGE if c != " "])
def test_every_glyph_has_ink_inside_its_advance_box(ch: str) -> None:
    glyph = _ours().glyph(ch)
    assert glyph is not None
    box = glyph.bounds()
    assert box is not None and glyph.strokes
    assert box[0] > 0.0 and box[2] < glyph.advance  # side bearings on both sides
    for stroke in glyph.strokes:
        assert len(stroke) >= 2
        assert all(math.isfinite(v) for p in stroke for v in p)


@pytest.mark.parametrize("ch", [c for c in COVERAGE if c not in ACCENTED + "QÇ "])
def test_plain_glyphs_stay_between_baseline_and_cap_line(ch: str) -> None:
    box = _ours().glyph(ch).bounds()  # type: ignore[union-attr]
    assert box is not None
    assert box[1] >= -1e-9 and box[3] <= 10.0 + 1e-9


@pytest.mark.parametrize("ch", ACCENTED)
def test_accents_sit_above_the_cap_line_over_their_base_letter(ch: str) -> None:
    font = _ours()
    base = {"Ñ": "N", "Á": "A", "É": "E", "Í": "I", "Ó": "O", "Ú": "U", "Ü": "U"}[ch]
    accented, plain = font.glyph(ch), font.glyph(base)
    assert accented is not None and plain is not None
    assert accented.advance == plain.advance
    extra = [s for s in accented.strokes if s not in plain.strokes]
    assert extra and all(y > 10.5 for s in extra for _, y in s)
    assert set(plain.strokes) <= set(accented.strokes)


def test_cedilla_hangs_below_the_baseline() -> None:
    font = _ours()
    c, cedilla = font.glyph("C"), font.glyph("Ç")
    assert c is not None and cedilla is not None
    extra = [s for s in cedilla.strokes if s not in c.strokes]
    assert extra and min(y for s in extra for _, y in s) < -1.0


def _raster(glyph: Glyph, cap_px: int = 24) -> list[list[bool]]:
    from PIL import Image, ImageDraw

    scale = cap_px / 10
    img = Image.new("1", (cap_px + 8, int(cap_px * 1.6)), 0)
    draw = ImageDraw.Draw(img)
    for stroke in glyph.strokes:
        draw.line([(4 + x * scale, cap_px * 1.3 - y * scale) for x, y in stroke], fill=1, width=2)
    w, h = img.size
    px = img.load()
    assert px is not None
    return [[bool(px[x, y]) for x in range(w)] for y in range(h)]


def _difference(a: list[list[bool]], b: list[list[bool]]) -> float:
    """Smallest fraction of differing ink pixels over small horizontal shifts."""
    best = 1.0
    for dx in range(-3, 4):
        diff = union = 0
        for row_a, row_b in zip(a, b, strict=True):
            w = len(row_a)
            for x in range(w):
                pa, pb = row_a[x], row_b[(x - dx) % w]
                diff += pa != pb
                union += pa or pb
        best = min(best, diff / union)
    return best


@pytest.mark.parametrize(
    "pair", ["O0", "I1", "S5", "Z2", "B8", "G6", "D0", "71", "/1", "Q0", "U0", "T1"]
)
def test_easily_confused_characters_look_different(pair: str) -> None:
    font = _ours()
    a, b = (font.glyph(ch) for ch in pair)
    assert a is not None and b is not None
    assert _difference(_raster(a), _raster(b)) > 0.12


def test_no_two_glyphs_rasterise_alike() -> None:
    font = _ours()
    rasters = {ch: _raster(font.glyph(ch)) for ch in COVERAGE if ch != " "}  # type: ignore[arg-type]
    worst = min(
        (_difference(rasters[a], rasters[b]), a, b)
        for a, b in itertools.combinations("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 2)
    )
    assert worst[0] > 0.08, worst


def test_load_font_caches() -> None:
    assert load_font("markstation") is load_font("markstation")
    assert load_font(" markstation ") is load_font("markstation")


@pytest.mark.parametrize("spec", ["", "helvetica", "markstation2", "font.ttf", "hershey:"])
def test_bad_font_spec_is_refused_naming_it(spec: str) -> None:
    with pytest.raises(ConfigError, match="font"):
        load_font(spec)


# --- Hershey -------------------------------------------------------------------------------------


def test_hershey_glyphs_are_moved_to_our_frame() -> None:
    font = load_font("hershey:futural")
    assert font.name == "hershey:futural"
    h = font.glyph("H")
    assert h is not None
    box = h.bounds()
    assert box is not None
    assert box[1] == 0.0 and box[3] == font.cap_height == 21.0
    assert 0 < box[0] < box[2] < h.advance


def test_hershey_coverage_is_reported_not_dropped() -> None:
    font = load_font("hershey:rowmans")
    assert font.glyph("A") is not None and font.glyph("a") is not None
    for ch in "ÑÁÇ€":
        assert font.glyph(ch) is None


def test_unknown_hershey_font_is_refused_with_the_known_names() -> None:
    with pytest.raises(ConfigError, match=r"hershey:nosuch.*futural"):
        load_font("hershey:nosuch")


# --- SVG fonts -----------------------------------------------------------------------------------

SVG_FONT = """<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" version="1.1">
 <defs>
  <font id="tiny" horiz-adv-x="600">
   <font-face font-family="Tiny" units-per-em="1000" cap-height="500" ascent="800" descent="-200"/>
   <missing-glyph horiz-adv-x="500" d="M 0 0 L 400 0"/>
   <glyph unicode="H" horiz-adv-x="700" d="M 100 0 L 100 700 M 600 0 L 600 700 M 100 350 L 600 350"/>
   <glyph unicode="O" d="M 350 0 C 100 0 100 700 350 700 C 600 700 600 0 350 0 Z"/>
   <glyph unicode="A" d="m 50 0 l 250 700 l 250 -700 m -400 250 h 300"/>
   <glyph unicode="L" d="M100 700V0H500"/>
   <glyph unicode="S" d="M 500 600 Q 300 750 150 550 T 300 350 T 450 100 T 100 100"/>
   <glyph unicode="C" d="M 500 600 A 300 350 0 1 1 500 100"/>
   <glyph unicode="." horiz-adv-x="200" d="M 100 50 L 100 50"/>
   <glyph unicode="ff" horiz-adv-x="900" d="M 0 0 L 900 700"/>
  </font>
 </defs>
</svg>
"""


def _write(tmp_path: Path, text: str, name: str = "tiny.svg") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_svg_font_loads_glyphs_in_font_units(tmp_path: Path) -> None:
    font = load_font(str(_write(tmp_path, SVG_FONT)))
    # the declared cap-height (500) is ignored: the H measures 700
    assert font.cap_height == 700.0
    h, a, o = font.glyph("H"), font.glyph("A"), font.glyph("O")
    assert h is not None and a is not None and o is not None
    assert h.advance == 700.0 and a.advance == 600.0  # per-glyph, else the font default
    assert h.strokes == (((100, 0), (100, 700)), ((600, 0), (600, 700)), ((100, 350), (600, 350)))
    # relative commands and the implicit lineto after a moveto
    assert a.strokes == (((50, 0), (300, 700), (550, 0)), ((150, 250), (450, 250)))
    o_box = o.bounds()
    assert o_box is not None and o_box[1] == 0 and o_box[3] == 700
    assert o.strokes[0][0] == o.strokes[0][-1]  # Z closes the outline
    assert len(o.strokes[0]) > 10  # curves flattened
    assert font.glyph("ff") is None  # ligatures are not characters
    assert font.glyph(" ") is not None  # a missing space advances by the default width


def test_svg_path_shorthands_and_arcs(tmp_path: Path) -> None:
    font = load_font(str(_write(tmp_path, SVG_FONT)))
    ell, s, c = font.glyph("L"), font.glyph("S"), font.glyph("C")
    assert ell is not None and s is not None and c is not None
    assert ell.strokes == (((100, 700), (100, 0), (500, 0)),)
    assert s.strokes[0][-1] == (100, 100) and len(s.strokes[0]) > 8
    box = c.bounds()
    assert box is not None
    # the large counter-clockwise (sweep 1, y-up) arc bulges left of its chord (x = 500)
    assert box[0] < 0 and box[2] <= 500 + 1e-9


def test_svg_zero_length_glyph_keeps_one_point(tmp_path: Path) -> None:
    font = load_font(str(_write(tmp_path, SVG_FONT)))
    dot = font.glyph(".")
    assert dot is not None and dot.strokes == (((100, 50),),)


def test_svg_font_is_reloaded_when_the_file_changes(tmp_path: Path) -> None:
    path = _write(tmp_path, SVG_FONT)
    first = load_font(str(path))
    assert load_font(str(path)) is first
    path.write_text(SVG_FONT.replace('horiz-adv-x="700"', 'horiz-adv-x="750"'), encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    second = load_font(str(path))
    assert second is not first and second.glyph("H").advance == 750.0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<svg><font><glyph unicode='H'", r"line 1, column \d+: not a well-formed"),
        ("<svg xmlns='http://www.w3.org/2000/svg'><path d='M0 0'/></svg>", "no SVG <font>"),
        ("<svg><font horiz-adv-x='500'></font></svg>", "no <glyph"),
        ("<svg><font><glyph unicode='H' d='M0 0 L0 700'/></font></svg>", "glyph 'H' has no horiz"),
        (
            "<svg><font horiz-adv-x='5'><glyph unicode='H' d='M0 0 L0 7 Q'/></font></svg>",
            "glyph 'H': bad path data",
        ),
        (
            "<svg><font horiz-adv-x='5'><glyph unicode='H' d='L0 0 L0 7'/></font></svg>",
            "glyph 'H': bad path data: path data must start with a moveto",
        ),
        (
            "<svg><font horiz-adv-x='wide'><glyph unicode='H' d='M0 0 L0 7'/></font></svg>",
            "horiz-adv-x='wide' is not a number",
        ),
        (
            "<svg><font horiz-adv-x='5'><glyph unicode='x' d='M0 0 L0 7'/></font></svg>",
            "no capital H, E, I or T",
        ),
        (
            "<svg><font horiz-adv-x='5'><font-face units-per-em='0'/>"
            "<glyph unicode='H' d='M0 0 L0 7'/></font></svg>",
            "units-per-em must be positive",
        ),
    ],
)
def test_malformed_svg_fonts_are_refused_naming_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    path = _write(tmp_path, text, "bad.svg")
    with pytest.raises(ConfigError, match=message) as info:
        load_font(str(path))
    assert str(path) in str(info.value)


def test_missing_svg_file_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nowhere\.svg"):
        load_font(str(tmp_path / "nowhere.svg"))


# --- SVG path flattening -------------------------------------------------------------------------

coord = st.floats(-1000, 1000, allow_nan=False, allow_infinity=False)
point = st.tuples(coord, coord)


def _distance_to_polyline(p: Point, line: list[Point]) -> float:
    best = math.inf
    for (x0, y0), (x1, y1) in itertools.pairwise(line):
        dx, dy = x1 - x0, y1 - y0
        seg = dx * dx + dy * dy
        t = 0.0 if seg == 0 else max(0.0, min(1.0, ((p[0] - x0) * dx + (p[1] - y0) * dy) / seg))
        best = min(best, math.dist(p, (x0 + t * dx, y0 + t * dy)))
    return best


@given(st.tuples(point, point, point, point), st.sampled_from([0.05, 0.5, 2.0]))
def test_flattened_cubic_stays_within_tolerance(ctrl: tuple[Point, ...], tol: float) -> None:
    line = [ctrl[0], *flatten_bezier(ctrl, tol)]
    assert line[-1] == ctrl[-1]
    for i in range(41):
        t = i / 40
        mt = 1 - t
        on_curve = (
            mt**3 * ctrl[0][0]
            + 3 * mt * mt * t * ctrl[1][0]
            + 3 * mt * t * t * ctrl[2][0]
            + t**3 * ctrl[3][0],
            mt**3 * ctrl[0][1]
            + 3 * mt * mt * t * ctrl[1][1]
            + 3 * mt * t * t * ctrl[2][1]
            + t**3 * ctrl[3][1],
        )
        assert _distance_to_polyline(on_curve, line) <= tol * 1.01 + 1e-6


@given(
    st.floats(1, 500),
    st.floats(0, 360),
    st.floats(0.01, 359.0),
    st.booleans(),
    st.sampled_from([0.01, 0.5]),
)
def test_arc_points_lie_on_the_circle(
    radius: float, start_deg: float, span_deg: float, sweep: bool, tol: float
) -> None:
    a0 = math.radians(start_deg)
    a1 = a0 + (1 if sweep else -1) * math.radians(span_deg)
    start = (radius * math.cos(a0), radius * math.sin(a0))
    end = (radius * math.cos(a1), radius * math.sin(a1))
    points = flatten_arc(start, (radius, radius), 0.0, span_deg > 180, sweep, end, tol)
    assert points[-1] == end
    for p in points:
        assert math.hypot(*p) == pytest.approx(radius, rel=1e-6, abs=1e-6)
    # chords stay within the tolerance of the arc
    line = [start, *points]
    for a, b in itertools.pairwise(line):
        mid = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
        assert radius - math.hypot(*mid) <= tol * 1.01 + 1e-9


@given(st.lists(point, min_size=2, max_size=8))
def test_relative_and_absolute_paths_agree(points: list[Point]) -> None:
    absolute = "M " + " L ".join(f"{x!r} {y!r}" for x, y in points)
    parts = [f"m {points[0][0]!r} {points[0][1]!r}"]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        parts.append(f"l {x1 - x0!r} {y1 - y0!r}")
    (abs_line,) = path_to_polylines(absolute, 0.1) or [[]]
    rel_lines = path_to_polylines(" ".join(parts), 0.1)
    assert len(rel_lines) == 1
    for p, q in zip(abs_line, rel_lines[0], strict=True):
        assert p == pytest.approx(q, abs=1e-6)


def test_path_parser_details() -> None:
    assert path_to_polylines("M0,0 10,0 10,10z", 0.1) == [[(0, 0), (10, 0), (10, 10), (0, 0)]]
    assert path_to_polylines("M1 2", 0.1) == []  # a bare moveto draws nothing
    assert path_to_polylines("M0 0h10v5H0V0", 0.1) == [[(0, 0), (10, 0), (10, 5), (0, 5), (0, 0)]]
    assert path_to_polylines("M-.5.5L1e1-2", 0.1) == [[(-0.5, 0.5), (10.0, -2.0)]]
    # compact arc flags
    (arc,) = path_to_polylines("M0 0a5 5 0 0010 0", 0.01)
    assert arc[-1] == (10, 0) and max(y for _, y in arc) > 4.9  # sweep 0: angle decreasing
    (arc,) = path_to_polylines("M0 0a5 5 0 0110 0", 0.01)
    assert arc[-1] == (10, 0) and min(y for _, y in arc) < -4.9
    # S reflects the previous control point
    (smooth,) = path_to_polylines("M0 0 C0 10 10 10 10 0 S20 -10 20 0", 0.01)
    assert min(y for _, y in smooth) < -7
    for bad in ("M0 0 L5", "M0 0 X5 5", "M0 0 A5 5 0 2 0 10 0", "Z"):
        with pytest.raises(ValueError):
            path_to_polylines(bad, 0.1)
