"""Raster images to scan lines: runs exactly over dark pixels, bidirectional, and every refusal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from markstation.errors import ConfigError, JobError
from markstation.job.ir import Polyline
from markstation.job.raster import MAX_PIXELS, raster_image

PITCH = 0.1


def save(tmp: Path, dark: np.ndarray, name: str = "img.png", mode: str = "L") -> Path:
    img = Image.fromarray(np.where(dark, 0, 255).astype(np.uint8)).convert(mode)
    path = tmp / name
    img.save(path)
    return path


def expected_runs(dark: np.ndarray) -> list[tuple[int, int, int]]:
    """(row, first col, one past last col) of every run of dark pixels, row-major, left to right."""
    runs = []
    for r, row in enumerate(dark.tolist()):
        c = 0
        while c < len(row):
            if row[c]:
                start = c
                while c < len(row) and row[c]:
                    c += 1
                runs.append((r, start, c))
            else:
                c += 1
    return runs


def as_runs(strokes: tuple[Polyline, ...], x0: float, y0: float) -> list[tuple[int, int, int]]:
    out = []
    for s in strokes:
        (ax, ay), (bx, by) = s.points
        assert ay == by
        row = (y0 - ay) / PITCH - 0.5
        assert row == pytest.approx(round(row), abs=1e-9)
        lo, hi = sorted(((ax - x0) / PITCH, (bx - x0) / PITCH))
        out.append((round(row), round(lo), round(hi)))
        assert (lo, hi) == pytest.approx((round(lo), round(hi)), abs=1e-9)
    return sorted(out)


images = st.integers(1, 12).flatmap(
    lambda w: st.lists(st.lists(st.booleans(), min_size=w, max_size=w), min_size=1, max_size=10)
)


@pytest.mark.timeout(60)
@given(
    grid=images,
    mode=st.sampled_from(["threshold", "dither"]),
    corner=st.tuples(st.floats(-30, 30), st.floats(-30, 30)),
)
def test_runs_exactly_over_dark_pixels_alternating(
    tmp_path_factory: pytest.TempPathFactory,
    grid: list[list[bool]],
    mode: str,
    corner: tuple[float, float],
) -> None:
    dark = np.array(grid, dtype=bool)
    path = save(tmp_path_factory.mktemp("img"), dark)
    width = dark.shape[1] * PITCH
    if not dark.any():
        with pytest.raises(JobError, match="nothing to mark"):
            raster_image(path, width_mm=width, line_spacing_mm=PITCH, mode=mode, top_left=corner)
        return
    strokes = raster_image(path, width_mm=width, line_spacing_mm=PITCH, mode=mode, top_left=corner)
    assert as_runs(strokes, *corner) == expected_runs(dark)
    # bidirectional: every stroke of one scan line runs one way, consecutive lines alternate
    last_y: float | None = None
    sign = 0
    for s in strokes:
        (ax, ay), (bx, _) = s.points
        this = 1 if bx > ax else -1
        if ay == last_y:
            assert this == sign
        else:
            if last_y is not None:
                assert ay < last_y and this == -sign
            last_y, sign = ay, this
    assert strokes[0].points[1][0] > strokes[0].points[0][0]  # the first line runs left to right


def test_reference_picture(tmp_path: Path) -> None:
    dark = np.array(
        [
            [1, 1, 0, 0, 1],
            [0, 0, 0, 0, 0],
            [0, 1, 1, 1, 0],
            [1, 0, 1, 0, 1],
        ],
        dtype=bool,
    )
    strokes = raster_image(
        save(tmp_path, dark), width_mm=0.5, line_spacing_mm=0.1, mode="threshold", top_left=(1, 2)
    )
    got = [tuple((round(x, 9), round(y, 9)) for x, y in s.points) for s in strokes]
    assert got == [
        ((1.0, 1.95), (1.2, 1.95)),
        ((1.4, 1.95), (1.5, 1.95)),
        ((1.4, 1.75), (1.1, 1.75)),  # row 1 is empty: the next marked row turns round
        ((1.0, 1.65), (1.1, 1.65)),
        ((1.2, 1.65), (1.3, 1.65)),
        ((1.4, 1.65), (1.5, 1.65)),
    ]


def test_resampled_to_the_line_spacing_keeping_aspect(tmp_path: Path) -> None:
    dark = np.zeros((20, 40), dtype=bool)
    dark[:, :20] = True  # left half black
    path = save(tmp_path, dark, mode="RGB")
    strokes = raster_image(path, width_mm=4.0, line_spacing_mm=0.2, mode="threshold")
    # 4 mm at 0.2 mm: 20 columns; the 2:1 image is 2 mm tall: 10 lines
    assert len(strokes) == 10
    ys = sorted({s.points[0][1] for s in strokes})
    assert ys == pytest.approx([-1.9 + 0.2 * i for i in range(10)])
    for s in strokes:
        assert sorted(x for x, _ in s.points) == pytest.approx([0.0, 2.0])


def test_transparent_pixels_are_not_marked(tmp_path: Path) -> None:
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)  # black everywhere
    rgba[..., 3] = 255
    rgba[0, 1, 3] = 0  # ...but this pixel is fully transparent
    rgba[1, :, 3] = 0
    rgba[1, 2, 3] = 255
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, "RGBA").save(path)
    strokes = raster_image(path, width_mm=0.3, line_spacing_mm=0.1, mode="threshold")
    assert as_runs(strokes, 0.0, 0.0) == [(0, 0, 1), (0, 2, 3), (1, 2, 3)]


def test_threshold_level_and_dither_of_mid_gray(tmp_path: Path) -> None:
    gray = np.full((16, 16), 100, dtype=np.uint8)
    path = tmp_path / "gray.png"
    Image.fromarray(gray).save(path)
    width = 16 * PITCH
    assert len(raster_image(path, width_mm=width, line_spacing_mm=PITCH, mode="threshold")) == 16
    with pytest.raises(JobError, match="every pixel is light"):
        raster_image(path, width_mm=width, line_spacing_mm=PITCH, mode="threshold", threshold=100)
    # error diffusion of gray 100 burns about 1 - 100/255 of the pixels
    dithered = raster_image(path, width_mm=width, line_spacing_mm=PITCH, mode="dither")
    burned = sum(s.length() for s in dithered) / PITCH
    assert 0.5 < burned / 256 < 0.7


# --- refusals ----------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.png: image file not found"):
        raster_image(tmp_path / "nope.png", width_mm=1, line_spacing_mm=0.1)


def test_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "logo.png"
    path.write_text("this is not a picture\n")
    with pytest.raises(ConfigError, match=r"logo\.png: not a readable image"):
        raster_image(path, width_mm=1, line_spacing_mm=0.1)


def test_truncated_image(tmp_path: Path) -> None:
    good = save(tmp_path, np.eye(64, dtype=bool), name="good.png")
    path = tmp_path / "cut.png"
    path.write_bytes(good.read_bytes()[:80])
    with pytest.raises(
        ConfigError, match=r"cut\.png: cannot read the image \(image file is truncated"
    ):
        raster_image(path, width_mm=1, line_spacing_mm=0.1)


def test_directory(tmp_path: Path) -> None:
    # Linux says "is a directory"; Windows refuses with a permission error instead
    with pytest.raises(
        ConfigError, match=r"is a directory, not an image file|cannot read the image"
    ):
        raster_image(tmp_path, width_mm=1, line_spacing_mm=0.1)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"mode": "halftone"}, r"raster mode 'halftone' is not one of threshold, dither"),
        ({"threshold": 256}, r"threshold = 256 must be an integer 0..255"),
        ({"threshold": -1}, r"threshold = -1"),
        ({"width_mm": 0.0}, r"width_mm = 0.0 must be a number greater than 0"),
        ({"line_spacing_mm": -0.1}, r"line_spacing_mm = -0.1"),
        ({"line_spacing_mm": float("nan")}, r"line_spacing_mm = nan"),
        ({"top_left": (float("inf"), 0.0)}, r"top_left .* is not a finite point"),
    ],
)
def test_bad_options(tmp_path: Path, kwargs: dict[str, object], pattern: str) -> None:
    path = save(tmp_path, np.eye(4, dtype=bool))
    args: dict[str, object] = {"width_mm": 1.0, "line_spacing_mm": 0.1, **kwargs}
    with pytest.raises(ConfigError, match=pattern):
        raster_image(path, **args)  # type: ignore[arg-type]


def test_all_white_image_is_a_job_error(tmp_path: Path) -> None:
    path = save(tmp_path, np.zeros((5, 5), dtype=bool))
    with pytest.raises(JobError, match=r"img\.png: nothing to mark"):
        raster_image(path, width_mm=1, line_spacing_mm=0.1)


def test_too_many_pixels_is_refused_before_resampling(tmp_path: Path) -> None:
    path = save(tmp_path, np.eye(4, dtype=bool))
    with pytest.raises(JobError, match=f"more than {MAX_PIXELS}"):
        raster_image(path, width_mm=500, line_spacing_mm=0.05)
