"""Preview: the burn raster's geometry, overlap, decode check, PNG/SVG output and OCR legibility."""

from __future__ import annotations

import dataclasses
import itertools
import math
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from markstation.errors import ConfigError, VerifyError
from markstation.job.ir import Dot, Job, Layer, MarkParams, Polyline
from markstation.job.layout import build_job
from markstation.preview import (
    burn_mask,
    check_codes,
    job_strokes,
    overlap,
    rasterize,
    render_png,
    render_svg,
    surface_for,
    svg_text,
    verify_codes,
)
from markstation.preview.raster import burn_coverage
from markstation.profiles import load_layout, load_machine, load_material

CODE = "PE-SUCAMEC-2016-000123"
MACHINE = load_machine("lmc-fiber-110")
PARAMS = MarkParams(speed_mm_s=500.0, power_pct=50.0, frequency_khz=30.0)


def secondary(code: str = CODE, material: str = "blued-steel") -> Job:
    return build_job(
        code,
        layout=load_layout("secondary-mark"),
        material=load_material(material),
        machine=MACHINE,
    )


def burned(img: Image.Image) -> np.ndarray:
    return np.asarray(img) > 127


# --- rasterize -------------------------------------------------------------------------------------


def test_image_geometry_row_zero_is_y_max() -> None:
    # a dot near the top-left corner of the bounds lands in the image's top-left
    img = rasterize([[(0.5, 9.5)]], spot_mm=0.4, bounds=(0.0, 0.0, 10.0, 10.0), px_per_mm=10)
    assert img.mode == "L" and img.size == (100, 100)
    ys, xs = np.nonzero(burned(img))
    assert xs.min() >= 3 and xs.max() <= 6 and ys.min() >= 3 and ys.max() <= 6


def test_stroke_width_is_the_spot_with_round_caps() -> None:
    ppm = 20.0
    img = rasterize(
        [[(2.0, 5.0), (8.0, 5.0)]], spot_mm=1.0, bounds=(0.0, 0.0, 10.0, 10.0), px_per_mm=ppm
    )
    mask = burned(img)
    column = mask[:, 100]  # x = 5 mm
    assert column.sum() == pytest.approx(1.0 * ppm, abs=1)
    row = mask[100]  # y = 5 mm: the caps add a spot radius at each end
    assert row.sum() == pytest.approx((6.0 + 1.0) * ppm, abs=1)
    # the corner of a square cap would be burned; a round cap is not
    corner_x, corner_y = int((8.0 + 0.45) * ppm), int((10.0 - 5.45) * ppm)
    assert not mask[corner_y, corner_x]


def test_one_point_stroke_is_a_disc_of_the_spot() -> None:
    ppm = 40.0
    img = rasterize([[(5.0, 5.0)]], spot_mm=0.5, bounds=(0.0, 0.0, 10.0, 10.0), px_per_mm=ppm)
    area_px = burned(img).sum()
    assert area_px == pytest.approx(math.pi * (0.25 * ppm) ** 2, rel=0.05)


def test_thin_strokes_stay_connected() -> None:
    img = rasterize(
        [[(0.0, 0.0), (10.0, 7.0)]], spot_mm=0.001, bounds=(0.0, 0.0, 10.0, 7.0), px_per_mm=5
    )
    mask = burned(img)
    assert mask.any(axis=1).all()  # every row is touched: no gaps along the stroke


def _brute(strokes: list[list[tuple[float, float]]], spot: float, ppm: float) -> np.ndarray:
    """Reference: a pixel is burned when its centre is within the radius of some segment."""
    bounds = (-3.0, -3.0, 3.0, 3.0)
    r = max(spot / 2, 0.5 / ppm)
    n = math.ceil(6.0 * ppm - 1e-9)
    jj, ii = np.mgrid[0:n, 0:n]
    px = bounds[0] + (ii + 0.5) / ppm
    py = bounds[3] - (jj + 0.5) / ppm
    mask = np.zeros((n, n), dtype=bool)
    for s in strokes:
        segs = [(s[0], s[0])] if len(s) == 1 else list(itertools.pairwise(s))
        for (ax, ay), (bx, by) in segs:
            dx, dy = bx - ax, by - ay
            length2 = dx * dx + dy * dy
            t = np.clip(((px - ax) * dx + (py - ay) * dy) / length2, 0, 1) if length2 else 0.0
            mask |= np.hypot(px - (ax + t * dx), py - (ay + t * dy)) <= r + 1e-9
    return mask


coord = st.floats(min_value=-3, max_value=3, allow_nan=False)
stroke = st.lists(st.tuples(coord, coord), min_size=1, max_size=4)


@given(
    st.lists(stroke, min_size=1, max_size=5),
    st.floats(min_value=0.02, max_value=0.6),
    st.floats(min_value=4, max_value=30),
)
def test_raster_matches_the_distance_definition(
    strokes: list[list[tuple[float, float]]], spot: float, ppm: float
) -> None:
    fast = burn_mask(strokes, spot_mm=spot, bounds=(-3.0, -3.0, 3.0, 3.0), px_per_mm=ppm) > 0
    reference = _brute(strokes, spot, ppm)
    # only pixels whose centre sits on a boundary (float rounding) may differ
    assert np.count_nonzero(fast != reference) <= 2


def test_strokes_outside_the_bounds_are_clipped() -> None:
    img = rasterize(
        [[(-50.0, 0.0), (50.0, 0.0)], [(100.0, 100.0)]],
        spot_mm=0.2,
        bounds=(-1.0, -1.0, 1.0, 1.0),
        px_per_mm=10,
    )
    mask = burned(img)
    assert mask[9:11].all(axis=1).any() and mask.sum() < 20 * 5


def test_bad_bounds_and_scale_are_refused() -> None:
    with pytest.raises(ValueError, match="empty raster bounds"):
        rasterize([], spot_mm=0.1, bounds=(1.0, 0.0, 1.0, 1.0), px_per_mm=10)
    with pytest.raises(ValueError, match="px_per_mm"):
        rasterize([], spot_mm=0.1, bounds=(0.0, 0.0, 1.0, 1.0), px_per_mm=0)
    with pytest.raises(ConfigError, match="too large"):
        rasterize([], spot_mm=0.1, bounds=(0.0, 0.0, 1000.0, 1.0), px_per_mm=100)


def test_overlap_is_intersection_over_union() -> None:
    a = Image.new("L", (10, 10), 0)
    b = Image.new("L", (10, 10), 0)
    assert overlap(a, b) == 1.0
    a.paste(255, (0, 0, 4, 10))  # 40 px
    b.paste(255, (2, 0, 6, 10))  # 40 px, 20 shared
    assert overlap(a, b) == pytest.approx(20 / 60)
    assert overlap(a, a) == 1.0
    with pytest.raises(ValueError, match="different sizes"):
        overlap(a, Image.new("L", (5, 5), 0))


def test_job_strokes_flattens_every_primitive() -> None:
    job = Job(
        (
            Layer("a", PARAMS, (Polyline(((0.0, 0.0), (1.0, 1.0))), Dot(2.0, 2.0, 1e-3))),
            Layer("b", PARAMS, (Polyline(((3.0, 3.0), (4.0, 4.0), (5.0, 3.0))),)),
        )
    )
    assert job_strokes(job) == [
        [(0.0, 0.0), (1.0, 1.0)],
        [(2.0, 2.0)],
        [(3.0, 3.0), (4.0, 4.0), (5.0, 3.0)],
    ]


def test_the_same_burn_twice_overlaps_fully() -> None:
    job = secondary()
    bounds = (-20.0, -8.0, 20.0, 8.0)
    a = rasterize(job_strokes(job), spot_mm=0.03, bounds=bounds, px_per_mm=20)
    b = rasterize(job_strokes(job)[::-1], spot_mm=0.03, bounds=bounds, px_per_mm=20)
    assert overlap(a, b) == 1.0
    c = rasterize(job_strokes(job)[:-200], spot_mm=0.03, bounds=bounds, px_per_mm=20)
    assert overlap(a, c) < 0.95


# --- decode check ---------------------------------------------------------------------------------


def test_verify_reads_the_exact_code() -> None:
    (check,) = verify_codes(secondary(), MACHINE)
    assert check.ok and check.decoded == CODE
    assert check.describe() == f"Data Matrix decodes: {CODE} ✓ grade A (4.0)"
    assert check.grade is not None and check.grade.letter == "A"


def test_verify_fails_when_the_burn_is_damaged() -> None:
    job = secondary()
    text, code = job.layers
    damaged = job.with_layers([text, dataclasses.replace(code, primitives=code.primitives[::3])])
    with pytest.raises(VerifyError, match=r"Data Matrix does not decode to .*: nothing decoded"):
        verify_codes(damaged, MACHINE)
    (check,) = check_codes(damaged, MACHINE)
    assert not check.ok and check.decoded is None


def test_verify_names_what_was_read_on_a_mismatch() -> None:
    job = secondary()
    wrong = dataclasses.replace(
        job, codes=(dataclasses.replace(job.codes[0], payload="PE-SUCAMEC-2016-000124"),)
    )
    with pytest.raises(VerifyError) as info:
        verify_codes(wrong, MACHINE)
    assert f"read '{CODE}'" in str(info.value)


def test_verify_refuses_an_unknown_symbology() -> None:
    job = secondary()
    odd = dataclasses.replace(job, codes=(dataclasses.replace(job.codes[0], symbology="aztec"),))
    with pytest.raises(VerifyError, match="cannot verify a 'aztec' code"):
        verify_codes(odd, MACHINE)


def test_a_job_without_codes_verifies_trivially() -> None:
    job = build_job(
        CODE,
        layout=load_layout("text-only"),
        material=load_material("stainless"),
        machine=MACHINE,
    )
    assert verify_codes(job, MACHINE) == []


# --- the picture -------------------------------------------------------------------------------------


def test_png_preview_shows_the_burn_in_material_colours(tmp_path: Path) -> None:
    job = secondary()
    out = render_png(job, MACHINE, tmp_path / "p.png", layout=load_layout("secondary-mark"))
    with Image.open(out) as img:
        # a palette PNG: flat colours plus the shades of the burn's and the text's edges
        assert img.format == "PNG" and img.mode == "P"
        assert 900 <= img.width <= 2400 and 500 <= img.height <= 1400
        colours = {c for _, c in img.convert("RGB").getcolors(maxcolors=1 << 20) or []}
    surface = surface_for("blued-steel")
    assert surface.dark and surface.background in colours and surface.mark in colours


def test_the_burn_coverage_counts_the_sub_pixels_of_the_fine_burn() -> None:
    # the preview's anti-aliased burn: each pixel counts its burned sub-pixels of the burn drawn
    # SUPERSAMPLE x finer on the same grid, exactly
    strokes = job_strokes(secondary(), MACHINE.spot_mm)
    origin, size, ppm = (-4.0, 1.0), (90, 70), 11.0
    for ss in (1, 2, 3):
        cover = burn_coverage(
            strokes, spot_mm=MACHINE.spot_mm, origin=origin, size=size, px_per_mm=ppm,
            supersample=ss,
        )  # fmt: skip
        fine = burn_mask(
            strokes,
            spot_mm=MACHINE.spot_mm,
            bounds=(origin[0], origin[1] - size[1] / ppm, origin[0] + size[0] / ppm, origin[1]),
            px_per_mm=ppm * ss,
        )
        assert fine.shape == (size[1] * ss, size[0] * ss)
        expected = (fine > 127).reshape(size[1], ss, size[0], ss).sum(axis=(1, 3))
        assert cover.shape == (size[1], size[0]) and 0 < cover.max() <= ss * ss
        assert np.array_equal(cover, expected)


def test_png_scale_follows_px_per_mm(tmp_path: Path) -> None:
    job = secondary()
    small = render_png(job, MACHINE, tmp_path / "s.png", px_per_mm=5)
    large = render_png(job, MACHINE, tmp_path / "l.png", px_per_mm=40)
    with Image.open(small) as a, Image.open(large) as b:
        assert b.width > a.width and b.height > a.height


def test_light_metal_gets_dark_marks() -> None:
    assert not surface_for("stainless").dark
    assert surface_for("anodised-aluminium").dark


def test_png_into_a_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot write the preview"):
        render_png(secondary(), MACHINE, tmp_path / "no" / "such" / "dir.png")


def test_svg_preview_is_in_millimetres_with_the_spot_width(tmp_path: Path) -> None:
    job = secondary()
    out = render_svg(job, MACHINE, tmp_path / "p.svg", layout=load_layout("secondary-mark"))
    root = ET.parse(out).getroot()
    ns = {"s": "http://www.w3.org/2000/svg"}
    assert root.get("width", "").endswith("mm")
    vb = [float(v) for v in root.get("viewBox", "").split()]
    assert vb[0] < -25 and vb[2] > 50  # the 50 mm safe area is in view
    burn = root.find("s:g[@id='burn']", ns)
    assert burn is not None and burn.get("stroke-width") == "0.03"
    assert burn.get("stroke-linecap") == "round" and burn.get("stroke-linejoin") == "round"
    polylines = burn.findall(".//s:polyline", ns)
    assert len(polylines) == job.primitive_count()
    # y is flipped: the text (y > 0 in the field) has negative SVG y
    first_text = burn.find("s:g[@id='layer-text']/s:polyline", ns)
    assert first_text is not None
    ys = [float(p.split(",")[1]) for p in (first_text.get("points") or "").split()]
    assert all(y < 0 for y in ys)
    assert root.find("s:rect[@id='safe-area']", ns) is not None
    assert root.find("s:rect[@id='field']", ns) is not None
    assert CODE in "".join(root.itertext())


def test_svg_draws_dots_as_spot_discs() -> None:
    job = Job((Layer("d", PARAMS, (Dot(1.0, 2.0, 1e-3),)),), meta=(("mark_code", "X"),))
    text = svg_text(job, MACHINE)
    assert '<circle cx="1" cy="-2" r="0.015"' in text


# --- legibility --------------------------------------------------------------------------------------

TESSERACT = shutil.which("tesseract")


@pytest.mark.skipif(
    TESSERACT is None, reason="tesseract is not installed (apt-get install tesseract-ocr)"
)
@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "code", [CODE, "SV-ABC-2013-4567", "CO-INDUMIL-2024-98765432", "GT-DIGECAM-1999-0001"]
)
def test_ocr_reads_the_human_line_from_the_burn(tmp_path: Path, code: str) -> None:
    job = secondary(code)
    (text,) = job.texts
    x0, y0, x1, y1 = text.bbox
    # about 32 px cap height, the size OCR engines are tuned for; the real spot width
    ppm = 32 / text.cap_height_mm
    img = rasterize(
        job_strokes(job),
        spot_mm=MACHINE.spot_mm,
        bounds=(x0 - 1.0, y0 - 1.0, x1 + 1.0, y1 + 1.0),
        px_per_mm=ppm,
    )
    path = tmp_path / "line.png"
    Image.eval(img, lambda v: 255 - v).save(path)  # dark burn on a light background
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"
    assert TESSERACT is not None
    result = subprocess.run(
        [TESSERACT, str(path), "-", "--psm", "7", "-c", f"tessedit_char_whitelist={alphabet}"],
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert result.stdout.strip() == code


def test_labels_keep_their_accents_or_fold_to_plain_letters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Spanish labels are drawn in a system font with accents; without one, the built-in font
    (no accented letters) gets them folded, never as empty boxes."""
    from markstation.preview import png, ui_font

    assert ui_font.ascii_fold("diseño · código · máquina") == "diseno · codigo · maquina"
    found = ui_font.system_sans()
    if found is not None:
        assert png._shown("diseño") == "diseño"
        assert found[0].is_file() and found[1].is_file()
    monkeypatch.setattr(png, "system_sans", lambda: None)
    assert png._shown("diseño") == "diseno"
