"""render_text / missing_glyphs: exact cap height, alignment, rotation, refusals, OCR legibility."""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from markstation.errors import ConfigError, GlyphError, JobError
from markstation.job.fonts import load_font
from markstation.job.ir import Point
from markstation.job.text import (
    DOT_STROKE_CAPS,
    SIMPLIFY_MM,
    TextShape,
    _simplify_glyph,
    missing_glyphs,
    render_text,
    simplify,
)

COVERAGE = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -/.:#ÑÁÉÍÓÚÜÇ"
#: characters whose ink stays between the baseline and the cap line
FLAT = "ABCDEFGHIJKLMNOPRSTUVWXYZ0123456789-/.:#"
FLAT_TOPPED = "EFHITZ57"
CODE = "PE-SUCAMEC-2016-000123"

cap_heights = st.floats(0.2, 25.0, allow_nan=False)
angles = st.floats(-720.0, 720.0, allow_nan=False)
coords = st.floats(-60.0, 60.0, allow_nan=False)
aligns = st.sampled_from(["left", "center", "right"])
texts = st.text(alphabet=COVERAGE, min_size=1, max_size=24)


def _points(shape: TextShape) -> list[Point]:
    return [p for line in shape.polylines for p in line.points]


def _ys(shape: TextShape) -> list[float]:
    return [y for _, y in _points(shape)]


# --- exact cap height ----------------------------------------------------------------------------


def test_h_at_2mm_spans_exactly_2mm() -> None:
    shape = render_text("H", cap_height_mm=2.0)
    assert min(_ys(shape)) == 0.0
    assert max(_ys(shape)) == 2.0
    assert shape.bbox[1] == 0.0 and shape.bbox[3] == 2.0


@given(st.text(alphabet=FLAT, max_size=10), st.text(alphabet=FLAT, max_size=10), cap_heights)
def test_cap_height_is_exact_for_text_containing_h(before: str, after: str, cap: float) -> None:
    shape = render_text(before + "H" + after, cap_height_mm=cap, align="left")
    assert max(_ys(shape)) == pytest.approx(cap, rel=1e-12, abs=1e-12)
    assert min(_ys(shape)) >= -1e-12


@pytest.mark.parametrize("ch", FLAT_TOPPED)
@pytest.mark.parametrize("cap", [1.6, 2.0, 3.5, 10.0])
def test_flat_topped_characters_reach_the_cap_height_exactly(ch: str, cap: float) -> None:
    shape = render_text(ch, cap_height_mm=cap)
    assert max(_ys(shape)) == pytest.approx(cap, rel=1e-12)


@pytest.mark.parametrize("font", ["hershey:futural", "hershey:rowmans", "hershey:timesr"])
@given(text=st.text(alphabet="EFHILT", max_size=8), cap=cap_heights)
def test_hershey_cap_height_is_exact(font: str, text: str, cap: float) -> None:
    shape = render_text("H" + text, cap_height_mm=cap, font=font)
    assert max(_ys(shape)) == pytest.approx(cap, rel=1e-12)
    assert min(_ys(shape)) == pytest.approx(0.0, abs=1e-12)


def test_svg_font_cap_height_is_exact(tmp_path: Path) -> None:
    path = tmp_path / "f.svg"
    path.write_text(
        "<svg><font horiz-adv-x='600'><font-face units-per-em='1000' cap-height='500'/>"
        "<glyph unicode='H' d='M100 0L100 660M500 0L500 660M100 330L500 330'/>"
        "<glyph unicode='.' d='M300 40 L300 40'/></font></svg>"
    )
    shape = render_text("H.H", cap_height_mm=2.0, font=str(path))
    assert max(_ys(shape)) == pytest.approx(2.0, rel=1e-12)
    # the one-point '.' became a short horizontal stroke, never a one-point polyline
    dot = shape.polylines[3]
    assert len(dot.points) == 2
    assert dot.length() == pytest.approx(DOT_STROKE_CAPS * 2.0)


# --- geometry properties -------------------------------------------------------------------------


@given(texts, cap_heights, angles, st.tuples(coords, coords), aligns, st.floats(0.5, 2.0))
def test_bbox_contains_every_point(
    text: str, cap: float, angle: float, origin: Point, align: str, spacing: float
) -> None:
    shape = render_text(
        text, cap_height_mm=cap, rotation_deg=angle, origin=origin, align=align, spacing=spacing
    )
    x0, y0, x1, y1 = shape.bbox
    points = _points(shape)
    for x, y in points:
        assert x0 <= x <= x1 and y0 <= y <= y1
    if points:  # the bbox is tight on the ink
        assert x0 == min(x for x, _ in points) and y1 == max(y for _, y in points)


@given(texts, cap_heights, angles, st.tuples(coords, coords), st.floats(0.5, 2.0))
def test_alignment_places_the_anchor(
    text: str, cap: float, angle: float, origin: Point, spacing: float
) -> None:
    kwargs = {"cap_height_mm": cap, "rotation_deg": angle, "origin": origin, "spacing": spacing}
    left = render_text(text, align="left", **kwargs)  # type: ignore[arg-type]
    direction = (math.cos(math.radians(angle)), math.sin(math.radians(angle)))
    for align, fraction in (("center", 0.5), ("right", 1.0)):
        other = render_text(text, align=align, **kwargs)  # type: ignore[arg-type]
        assert other.width_mm == left.width_mm
        shift = fraction * left.width_mm
        for p, q in zip(_points(left), _points(other), strict=True):
            assert q[0] == pytest.approx(p[0] - shift * direction[0], abs=1e-9)
            assert q[1] == pytest.approx(p[1] - shift * direction[1], abs=1e-9)


def test_left_alignment_starts_the_advance_box_at_the_origin() -> None:
    # 'H' (6 units wide, advance (6 + 2) × 1.1 tracking = 8.8 units) is centred in its advance
    # box: 1.4 grid units (0.14 cap height) of bearing on each side
    shape = render_text("HH", cap_height_mm=5.0, align="left", origin=(10.0, -3.0))
    assert shape.bbox[0] == pytest.approx(10.0 + 0.7)
    assert shape.bbox[1] == pytest.approx(-3.0)
    assert shape.width_mm == pytest.approx(2 * 8.8 * 0.5)
    right = render_text("HH", cap_height_mm=5.0, align="right", origin=(10.0, -3.0))
    assert right.bbox[2] == pytest.approx(10.0 - 0.7)
    centre = render_text("HH", cap_height_mm=5.0, origin=(0.0, 0.0))
    assert centre.bbox[0] == pytest.approx(-centre.bbox[2])


@given(texts, cap_heights, angles, st.tuples(coords, coords))
def test_rotation_preserves_strokes_and_distances_to_the_origin(
    text: str, cap: float, angle: float, origin: Point
) -> None:
    flat = render_text(text, cap_height_mm=cap, origin=origin)
    turned = render_text(text, cap_height_mm=cap, origin=origin, rotation_deg=angle)
    assert len(flat.polylines) == len(turned.polylines)
    for a, b in zip(flat.polylines, turned.polylines, strict=True):
        assert b.length() == pytest.approx(a.length(), rel=1e-9, abs=1e-9)
        for p, q in zip(a.points, b.points, strict=True):
            assert math.dist(q, origin) == pytest.approx(math.dist(p, origin), abs=1e-9)


def test_rotation_is_counter_clockwise_about_the_origin() -> None:
    shape = render_text("I", cap_height_mm=10.0, align="left", rotation_deg=90.0, origin=(1, 2))
    # upright 'I' grows up (+y); turned 90° CCW it grows to -x
    assert shape.bbox[2] == pytest.approx(1.0)
    assert shape.bbox[0] == pytest.approx(1.0 - 10.0)


@given(texts, st.floats(0.3, 3.0))
def test_spacing_multiplies_each_advance(text: str, spacing: float) -> None:
    one = render_text(text, cap_height_mm=2.0, align="left")
    spaced = render_text(text, cap_height_mm=2.0, align="left", spacing=spacing)
    assert spaced.width_mm == pytest.approx(one.width_mm * spacing)
    # the first character does not move
    if text[0] != " ":
        assert spaced.polylines[0] == one.polylines[0]


@pytest.mark.parametrize("ch", [c for c in COVERAGE if c != " "])
def test_every_supported_character_renders_strokes(ch: str) -> None:
    shape = render_text(ch, cap_height_mm=1.6)
    assert shape.polylines
    for line in shape.polylines:
        assert len(line.points) >= 2 and line.length() > 0


def test_space_renders_no_ink_but_advances() -> None:
    shape = render_text("  ", cap_height_mm=2.0, align="left", origin=(1.0, 1.0))
    assert shape.polylines == ()
    assert shape.width_mm > 0
    assert shape.bbox == pytest.approx((1.0, 1.0, 1.0 + shape.width_mm, 3.0))
    assert (
        render_text("A A", cap_height_mm=2.0).width_mm
        > render_text("AA", cap_height_mm=2.0).width_mm
    )


def test_empty_text_is_an_empty_shape() -> None:
    shape = render_text("", cap_height_mm=2.0, origin=(3.0, 4.0))
    assert shape.polylines == () and shape.width_mm == 0.0 and shape.bbox == (3.0, 4.0, 3.0, 6.0)


def test_hershey_dot_is_never_a_one_point_polyline() -> None:
    for font in ("hershey:futural", "hershey:timesr"):
        for line in render_text("A.B:", cap_height_mm=1.6, font=font).polylines:
            assert len(line.points) >= 2 and line.length() > 0


# --- refusals ------------------------------------------------------------------------------------


def test_missing_glyph_is_refused_by_name() -> None:
    with pytest.raises(GlyphError) as info:
        render_text("ABß", cap_height_mm=2.0)
    assert str(info.value) == "font 'markstation' has no glyph for 'ß' (U+00DF) in \"ABß\""


def test_lowercase_is_refused_not_upper_cased() -> None:
    with pytest.raises(
        GlyphError, match=r"'u' \(U\+0075\), 'c' \(U\+0063\), 'a'.*never upper-cased"
    ):
        render_text("PE-Sucamec-2016", cap_height_mm=2.0)
    with pytest.raises(GlyphError, match="'ñ'"):
        render_text("ñ", cap_height_mm=2.0)


@pytest.mark.parametrize("text", ["A\nB", "AB\r", "A\u2028B"])
def test_line_breaks_are_refused(text: str) -> None:
    with pytest.raises(GlyphError, match="one line"):
        render_text(text, cap_height_mm=2.0)


def test_hershey_missing_character_is_refused_not_dropped() -> None:
    assert missing_glyphs("PEÑA-2016", "hershey:futural") == ["Ñ"]
    with pytest.raises(GlyphError, match=r"'hershey:futural' has no glyph for 'Ñ' \(U\+00D1\)"):
        render_text("PEÑA-2016", cap_height_mm=2.0, font="hershey:futural")


def test_hershey_lowercase_is_accepted() -> None:
    assert render_text("abc", cap_height_mm=2.0, font="hershey:futural").polylines


@pytest.mark.parametrize("font", ["times", "hershey:", "hershey:nope", "/no/such/font.svg", ""])
def test_bad_font_spec_is_refused(font: str) -> None:
    with pytest.raises(ConfigError):
        render_text("A", cap_height_mm=2.0, font=font)
    with pytest.raises(ConfigError):
        missing_glyphs("A", font)


def test_malformed_svg_font_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.svg"
    path.write_text("<svg><font><glyph unicode='H' d='M0 0 L0 7'></font></svg>")
    with pytest.raises(ConfigError, match=r"broken\.svg: line 1"):
        render_text("H", cap_height_mm=2.0, font=str(path))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cap_height_mm": 0.0}, "cap height"),
        ({"cap_height_mm": -1.0}, "cap height"),
        ({"cap_height_mm": math.nan}, "cap height"),
        ({"cap_height_mm": math.inf}, "cap height"),
        ({"cap_height_mm": 2.0, "spacing": 0.0}, "spacing"),
        ({"cap_height_mm": 2.0, "align": "middle"}, "align"),
        ({"cap_height_mm": 2.0, "rotation_deg": math.inf}, "rotation"),
        ({"cap_height_mm": 2.0, "origin": (math.nan, 0.0)}, "origin"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(JobError, match=message):
        render_text("A", **kwargs)  # type: ignore[arg-type]


def test_missing_glyphs_lists_each_character_once_in_order() -> None:
    assert missing_glyphs("PE-Sucamec ß ß\n") == ["u", "c", "a", "m", "e", "ß", "\n"]
    assert missing_glyphs(CODE) == []
    assert missing_glyphs("ÑÁÉÍÓÚÜÇ") == []


def test_render_text_uses_the_cached_font() -> None:
    assert load_font() is load_font("markstation")


# --- legibility ----------------------------------------------------------------------------------


def _draw_png(shape: TextShape, path: Path, cap_px: float, width_px: int) -> None:
    from PIL import Image, ImageDraw

    x0, y0, x1, y1 = shape.bbox
    margin = 40
    img = Image.new("L", (int(x1 - x0) + 2 * margin, int(y1 - y0) + 2 * margin), 255)
    draw = ImageDraw.Draw(img)
    radius = width_px / 2
    for line in shape.polylines:
        pts = [(x - x0 + margin, y1 - y + margin) for x, y in line.points]
        draw.line(pts, fill=0, width=width_px, joint="curve")
        for px, py in (pts[0], pts[-1]):  # round caps
            draw.ellipse((px - radius, py - radius, px + radius, py + radius), fill=0)
    img.save(path)


@pytest.mark.timeout(60)
def test_ocr_reads_the_code_back_exactly(tmp_path: Path) -> None:
    tesseract = shutil.which("tesseract")
    if tesseract is None:
        pytest.skip(
            "tesseract is not installed (apt-get install tesseract-ocr) - OCR check skipped"
        )
    cap_px = 80.0
    shape = render_text(CODE, cap_height_mm=cap_px, align="left")  # 1 unit = 1 px here
    png = tmp_path / "code.png"
    _draw_png(shape, png, cap_px, width_px=4)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"
    result = subprocess.run(
        [tesseract, str(png), "-", "--psm", "7", "-c", f"tessedit_char_whitelist={alphabet}"],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == CODE


# --- render_text's memoised simplification (issue 13) ----------------------------------------------


@given(
    st.lists(
        st.tuples(
            st.floats(-5, 5) | st.sampled_from([0.0, -0.0]),
            st.floats(-5, 5) | st.sampled_from([0.0, -0.0]),
        ),
        max_size=12,
    ),
    st.sampled_from([SIMPLIFY_MM, 0.0, 0.5]),
)
def test_memoised_glyph_simplify_is_simplify(points: list[Point], tolerance: float) -> None:
    """The same points as the plain simplify, the caller's own floats (signed zeros included),
    asked once or twice."""
    for _ in range(2):
        got = _simplify_glyph(points, tolerance)
        want = simplify(points, tolerance)
        assert [tuple(map(repr, p)) for p in got] == [tuple(map(repr, p)) for p in want]


def test_memoised_glyph_simplify_keeps_the_callers_zeros() -> None:
    line = [(0.0, 0.0), (0.5, 1e-9), (1.0, 0.0)]
    assert _simplify_glyph(line, SIMPLIFY_MM) == [(0.0, 0.0), (1.0, 0.0)]
    mirrored = [(-0.0, -0.0), (0.5, 1e-9), (1.0, -0.0)]  # equal to line: the same cache entry
    got = _simplify_glyph(mirrored, SIMPLIFY_MM)
    assert [math.copysign(1.0, c) for p in got for c in p] == [-1.0, -1.0, 1.0, -1.0]
