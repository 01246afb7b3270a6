"""The verification grade (ISO/IEC TR 29158 ideas) of a rendered 2D code: clean is best, damage lowers it."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFilter

from markstation.errors import ConfigError, VerifyError
from markstation.job.ir import CodeRegion
from markstation.job.layout import build_job
from markstation.preview.grade import (
    Grid,
    _centroid_error,
    design_grid,
    fixed_segments,
    grade_value,
    letter,
)
from markstation.preview.raster import job_strokes
from markstation.preview.verify import CodeCheck, code_raster, read_raster
from markstation.profiles import load_layout, load_machine, load_material
from markstation.verify import build_verified_job

CODE = "PE-SUCAMEC-2016-000123"
MACHINE = load_machine("lmc-fiber-110")


def _raster() -> tuple[np.ndarray, CodeRegion, float, int]:
    job = build_job(
        CODE,
        layout=load_layout("secondary-mark"),
        material=load_material("blued-steel"),
        machine=MACHINE,
    )
    code = job.codes[0]
    gray, ppm, pad = code_raster(job_strokes(job), code, spot_mm=MACHINE.spot_mm)
    return gray, code, ppm, pad


def _read(gray: np.ndarray, code: CodeRegion, ppm: float, pad: int) -> CodeCheck:
    return read_raster(np.ascontiguousarray(gray.astype(np.uint8)), code, px_per_mm=ppm, pad=pad)


def test_letters_and_values() -> None:
    assert [letter(v) for v in (4.0, 3.5, 3.49, 2.5, 1.5, 0.5, 0.49)] == list("AABBCDF")
    assert grade_value("b") == 2.5 and grade_value("F") == 0.0
    with pytest.raises(ConfigError, match="not one of"):
        grade_value("E")


def test_clean_render_gets_the_best_grade() -> None:
    gray, code, ppm, pad = _raster()
    check = _read(gray, code, ppm, pad)
    assert check.ok and check.grade is not None
    assert check.grade.letter == "A" and check.grade.score == pytest.approx(4.0)
    assert check.describe() == f"Data Matrix decodes: {CODE} ✓ grade A (4.0)"


def test_removing_a_tenth_of_the_finder_lowers_the_grade() -> None:
    gray, code, ppm, pad = _raster()
    clean = _read(gray, code, ppm, pad).grade
    rows, cols = len(code.matrix), len(code.matrix[0])
    finder = fixed_segments("datamatrix", cols, rows, 1)
    cells = finder["finder L (left)"] + finder["finder L (bottom)"]
    step = code.module_mm * ppm
    damaged = gray.copy()
    # erase every 10th finder module (light paint over the burn)
    for c, r in cells[::10]:
        x, y = pad + (1 + c) * step, pad + (1 + r) * step
        damaged[round(y) : round(y + step), round(x) : round(x + step)] = 255
    hurt = _read(damaged, code, ppm, pad).grade
    assert clean is not None and hurt is not None
    assert hurt.fixed_pattern_damage < clean.fixed_pattern_damage
    assert hurt.score < clean.score and hurt.letter != "A"


def test_blur_lowers_the_grade() -> None:
    gray, code, ppm, pad = _raster()
    clean = _read(gray, code, ppm, pad).grade
    radius = 0.45 * code.module_mm * ppm
    blurred = np.asarray(Image.fromarray(gray).filter(ImageFilter.GaussianBlur(radius)))
    hurt = _read(blurred, code, ppm, pad).grade
    assert clean is not None and hurt is not None
    assert hurt.cell_modulation < clean.cell_modulation
    assert hurt.score < clean.score


def test_lower_contrast_lowers_the_grade() -> None:
    gray, code, ppm, pad = _raster()
    # dark modules at 55 % reflectance, light at 70 %: CC = 0.21, a C
    dull = 140 + gray.astype(np.float64) * (179 - 140) / 255
    hurt = _read(dull, code, ppm, pad)
    assert hurt.grade is not None
    assert hurt.grade.cc == pytest.approx(0.218, abs=0.01)
    assert hurt.grade.letter == "C" and hurt.grade.weakest == "cell contrast"


def test_layout_min_grade_refuses_below_it(monkeypatch: pytest.MonkeyPatch) -> None:
    layout = load_layout("secondary-mark")
    material = load_material("blued-steel")
    strict = dataclasses.replace(layout, min_grade="B")
    # a clean burn grades A: it passes a B floor
    assert build_verified_job(CODE, layout=strict, material=material, machine=MACHINE).codes
    # the same job seen at low contrast grades C: refused in one line naming the layout key
    gray, code, ppm, pad = _raster()
    dull = _read(140 + gray.astype(np.float64) * (179 - 140) / 255, code, ppm, pad)
    assert dull.ok
    monkeypatch.setattr("markstation.verify.verify_codes", lambda job, machine: [dull])
    with pytest.raises(VerifyError) as info:
        build_verified_job(CODE, layout=strict, material=material, machine=MACHINE)
    text = str(info.value)
    assert "\n" not in text
    assert "grades C (1." in text and "below the minimum grade B (min_grade" in text
    assert "cell contrast" in text
    # without a floor, decoding is enough
    assert build_verified_job(CODE, layout=layout, material=material, machine=MACHINE).codes


def test_min_grade_is_checked_by_the_profile_loader(tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = load_layout("secondary-mark").path.read_text()
    bad = tmp_path / "secondary-mark.toml"
    bad.write_text(
        src.replace("min_char_height_mm = 1.6", 'min_grade = "E"\nmin_char_height_mm = 1.6', 1)
    )
    with pytest.raises(ConfigError, match="min_grade"):
        load_layout(str(bad))
    good = tmp_path / "graded.toml"
    good.write_text(
        src.replace('name = "secondary-mark"', 'name = "graded"').replace(
            "min_char_height_mm = 1.6", 'min_grade = "B"\nmin_char_height_mm = 1.6', 1
        )
    )
    assert load_layout(str(good)).min_grade == "B"


# --- the grid non-uniformity, every cell at once, against the cell-by-cell loop (issue 13) --------


def _centroid_error_cell_by_cell(
    gray: np.ndarray, grid: Grid, cells: list[tuple[int, int]]
) -> float:
    """``grade._centroid_error`` as it was, one cell at a time: the oracle of the array version."""
    m = grid.module_px
    k = max(1, math.ceil(0.75 * m))
    dy, dx = np.mgrid[-k : k + 1, -k : k + 1]
    h, w = gray.shape
    worst = 0.0
    for c, r in cells:
        cx, cy = grid.centre(c, r)
        ix, iy = math.floor(cx), math.floor(cy)
        xs, ys = ix + dx, iy + dy
        inside = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
        px, py = xs + 0.5 - cx, ys + 0.5 - cy
        along_u = (px * grid.u[0] + py * grid.u[1]) / (m * m)
        along_v = (px * grid.v[0] + py * grid.v[1]) / (m * m)
        window = inside & (np.abs(along_u) <= 0.5) & (np.abs(along_v) <= 0.5)
        weight = np.where(window, 1.0 - gray[np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)], 0.0)
        total = float(weight.sum())
        if total <= 1e-9:
            worst = max(worst, 1.0)
            continue
        ex = float((weight * px).sum()) / total
        ey = float((weight * py).sum()) / total
        worst = max(worst, math.hypot(ex, ey) / m)
    return worst


@settings(max_examples=100)
@given(
    st.integers(0, 2**32 - 1),
    st.floats(1.5, 14.0),
    st.floats(-180.0, 180.0),
    st.tuples(st.floats(-20.0, 60.0), st.floats(-20.0, 60.0)),
    st.lists(st.tuples(st.integers(-3, 20), st.integers(-3, 20)), max_size=40),
    st.booleans(),
)
def test_centroid_error_is_the_cell_by_cell_one(
    seed: int,
    module_px: float,
    angle: float,
    origin: tuple[float, float],
    cells: list[tuple[int, int]],
    blank: bool,
) -> None:
    """Any grid (turned, off the image edges), any cells, noisy or blank images."""
    rng = np.random.default_rng(seed)
    gray = np.ones((90, 110)) if blank else rng.random((90, 110))
    a = math.radians(angle)
    u = (math.cos(a) * module_px, -math.sin(a) * module_px)
    v = (math.sin(a) * module_px, math.cos(a) * module_px)
    grid = Grid(origin, u, v)
    assert _centroid_error(gray, grid, cells) == _centroid_error_cell_by_cell(gray, grid, cells)


def test_centroid_error_of_the_real_raster_is_the_cell_by_cell_one() -> None:
    gray_u8, code, ppm, pad = _raster()
    gray = np.asarray(gray_u8, dtype=np.float64) / 255.0
    rows, cols = len(code.matrix), len(code.matrix[0])
    grid = design_grid(
        code.bbox, code.module_mm, cols, rows, px_per_mm=ppm, pad_px=pad, angle_deg=0.0
    )
    dark = [(c, r) for r in range(rows) for c in range(cols) if code.matrix[r][c] == "1"]
    value = _centroid_error(gray, grid, dark)
    assert value == _centroid_error_cell_by_cell(gray, grid, dark) and 0 < value < 0.5
