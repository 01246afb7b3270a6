"""The dots fill: the burned-dot model, the dwell it picks, and decode round trips on every galvo material."""

from __future__ import annotations

import dataclasses
import io
import math
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _paths import REPO
from markstation.devices.sim.lmc.board import LmcBoard
from markstation.errors import SymbolError
from markstation.job.fill import dot_diameter_mm, dot_plan
from markstation.job.ir import Dot, Job, Layer, MarkParams, Polyline
from markstation.job.layout import build_job
from markstation.preview import burn_mask, check_codes, job_strokes
from markstation.profiles import LayoutProfile, load_layout, load_machine, load_material
from markstation.queue.models import Item
from markstation.queue.states import State

MACHINE = load_machine("lmc-fiber-110")
#: every shipped material for a galvo (LMC) machine
GALVO_MATERIALS = ("blued-steel", "stainless", "anodised-aluminium", "polymer-frame-tag")

CODES = st.builds(
    lambda country, auth, year, number: f"{country}-{auth}-{year}-{number}",
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=2),
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=12),
    st.integers(1950, date.today().year + 1).map(str),  # inside the layout's year window
    st.integers(0, 99_999_999).map(lambda n: f"{n:08d}"[-6:]),
)


def dots_layout(module_mm: float = 0.3) -> LayoutProfile:
    layout = load_layout("secondary-mark")
    elements = list(layout.elements)
    elements[1] = {**elements[1], "fill": "dots", "module_mm": module_mm}
    return dataclasses.replace(layout, elements=tuple(elements))


def test_dot_model_and_its_inverse() -> None:
    # d = spot + growth * P/100 * sqrt(t / ms)
    assert dot_diameter_mm(4e-3, 50.0, spot_mm=0.03, growth_mm=0.2) == pytest.approx(0.03 + 0.2)
    dwell, diameter = dot_plan(
        0.3, spot_mm=0.03, power_pct=80.0, growth_mm=0.25, max_mm=0.4, min_dwell_s=1e-4
    )
    assert diameter == 0.3
    assert dot_diameter_mm(dwell, 80.0, spot_mm=0.03, growth_mm=0.25) == pytest.approx(0.3)
    # a longer minimum dwell wins, and the dot it burns is drawn as wide as it grows (so the
    # decode check sees the overlap), up to the material's largest dot
    dwell2, diameter2 = dot_plan(
        0.3, spot_mm=0.03, power_pct=80.0, growth_mm=0.25, max_mm=0.4, min_dwell_s=0.002
    )
    assert dwell2 == 0.002
    assert diameter2 == pytest.approx(0.03 + 0.25 * 0.8 * math.sqrt(2.0)) and diameter2 > 0.3
    dwell3, diameter3 = dot_plan(
        0.3, spot_mm=0.03, power_pct=80.0, growth_mm=0.25, max_mm=0.4, min_dwell_s=0.01
    )
    assert dwell3 == 0.01 and diameter3 == 0.4


def test_a_module_wider_than_the_largest_dot_is_refused() -> None:
    with pytest.raises(SymbolError, match=r"largest clean dot is 0.4 mm \(dot_max_mm\)"):
        dot_plan(0.5, spot_mm=0.03, power_pct=80, growth_mm=0.25, max_mm=0.4, min_dwell_s=1e-4)
    # dots that do not grow stay spot-sized (the decode check then refuses them)
    assert dot_plan(
        0.3, spot_mm=0.03, power_pct=80, growth_mm=0.0, max_mm=0.4, min_dwell_s=1e-4
    ) == (1e-4, 0.03)
    with pytest.raises(SymbolError, match=r"material .blued-steel.*dot_max_mm"):
        build_job(
            "PE-SUCAMEC-2016-000123",
            layout=dots_layout(0.5),
            material=load_material("blued-steel"),
            machine=MACHINE,
        )


def test_the_raster_draws_the_modelled_diameter() -> None:
    job = Job(layers=(Layer("dots", MarkParams(500.0, 50.0, 30.0), (Dot(0.0, 0.0, 1e-3, 0.3),)),))
    bounds = (-0.5, -0.5, 0.5, 0.5)
    mask = burn_mask(job_strokes(job, 0.03), spot_mm=0.03, bounds=bounds, px_per_mm=100) > 0
    area_mm2 = mask.sum() / 100**2
    assert area_mm2 == pytest.approx(math.pi * 0.15**2, rel=0.05)
    # nothing outside the disc
    yy, xx = np.mgrid[0:100, 0:100]
    r = np.hypot(xx + 0.5 - 50, yy + 0.5 - 50) / 100
    assert not mask[r > 0.151].any()
    # without the spot the dot is the plain point (the simulators' ledgers draw it so)
    assert job_strokes(job) == [[(0.0, 0.0)]]


@pytest.mark.slow  # hypothesis over whole files or jobs: the full run
@pytest.mark.parametrize("material", GALVO_MATERIALS)
@settings(deadline=None, max_examples=8)
@given(code=CODES)
def test_dots_decode_on_every_galvo_material(material: str, code: str) -> None:
    job = build_job(code, layout=dots_layout(), material=load_material(material), machine=MACHINE)
    dots = [p for layer in job.layers for p in layer.primitives if isinstance(p, Dot)]
    assert dots and all(d.diameter_mm == pytest.approx(0.3) for d in dots)
    (check,) = check_codes(job, MACHINE)
    assert check.ok, check.describe()
    assert check.grade is not None and check.grade.letter in "AB"


# --- what the report and the simulators draw: dots as wide as the model burns them -----------------


def _dots_item(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str) -> Item:
    """A marked item of ``layout``; "dots-mark" is the secondary mark with a dots Data Matrix."""
    shipped = (REPO / "profiles" / "layouts" / "secondary-mark.toml").read_text(encoding="utf-8")
    text = shipped.replace('name = "secondary-mark"', 'name = "dots-mark"')
    (tmp_path / "layouts").mkdir()
    (tmp_path / "layouts" / "dots-mark.toml").write_text(
        text.replace('fill = "hatch"', 'fill = "dots"'), encoding="utf-8"
    )
    monkeypatch.setenv("MARKSTATION_PROFILES", str(tmp_path))
    code = "PE-SUCAMEC-2016-000123"
    return Item(1, 1, code, "S1", "make", "model", "9mm", "owner", layout, {}, 2,
                State.MARKED, 1, None, None, None, None, "2026-01-01T00:00:00+00:00")  # fmt: skip


def _thumbnail(item: Item) -> tuple[np.ndarray, Job, float, tuple[float, float]]:
    """The report's thumbnail (how dark, 0 … 1), its job, px/mm and the raster's top-left (mm)."""
    from PIL import Image

    from markstation.queue.report_pdf import THUMB_PX, _Thumbnails

    png = _Thumbnails().png(item)
    assert png is not None
    with Image.open(io.BytesIO(png)) as image:
        dark = 1.0 - np.asarray(image.convert("L")) / 255.0  # the thumbnail is dark on light
    job = build_job(
        item.code, layout=load_layout(item.layout), material=load_material("blued-steel"),
        machine=MACHINE, optimize=False,
    )  # fmt: skip
    bounds = job.bounds()
    assert bounds is not None
    x0, y0, x1, y1 = bounds
    ppm = THUMB_PX / (max(x1 - x0, y1 - y0) + 1.6)  # the thumbnail's 0.8 mm pad each side
    return dark, job, ppm, (x0 - 0.8, y1 + 0.8)


def _crop(mask: np.ndarray, box: tuple[float, float, float, float], ppm: float,
          top_left: tuple[float, float]) -> np.ndarray:  # fmt: skip
    c0, c1 = round((box[0] - top_left[0]) * ppm), round((box[2] - top_left[0]) * ppm)
    r0, r1 = round((top_left[1] - box[3]) * ppm), round((top_left[1] - box[1]) * ppm)
    return mask[r0:r1, c0:c1]


def test_the_report_thumbnail_draws_dots_at_the_modelled_diameter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dark, job, ppm, top_left = _thumbnail(_dots_item(tmp_path, monkeypatch, "dots-mark"))
    dots = [p for _, p in job.primitives() if isinstance(p, Dot)]
    (code,) = job.codes
    assert dots and all(d.diameter_mm == pytest.approx(0.3) for d in dots)
    # the code's area holds only its dots: its dark area is theirs, at the modelled 0.3 mm (a
    # 2 px disc at thumbnail scale, anti-aliased), not the spot (0.03 mm: drawn one pixel wide
    # when pixel centres fall in it at all; on this grid they mostly do not) nor the preview's
    # rings (each widened to its half-pixel minimum: over twice the area)
    dark_mm2 = _crop(dark, code.bbox, ppm, top_left).sum() / ppm**2
    assert dark_mm2 == pytest.approx(len(dots) * math.pi * 0.15**2, rel=0.03)


def test_the_report_thumbnail_of_strokes_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from markstation.preview import rasterize

    dark, job, ppm, _ = _thumbnail(_dots_item(tmp_path, monkeypatch, "secondary-mark"))
    assert not any(isinstance(p, Dot) for _, p in job.primitives())
    x0, y0, x1, y1 = job.bounds() or (0, 0, 0, 0)
    box = (x0 - 0.8, y0 - 0.8, x1 + 0.8, y1 + 0.8)
    old = rasterize(job_strokes(job), spot_mm=MACHINE.spot_mm, bounds=box, px_per_mm=ppm)
    assert np.array_equal(dark, np.asarray(old) / 255.0)  # what the thumbnail always drew


def _board_burn(job: Job) -> LmcBoard:
    """``job`` run on a simulated board the way the driver talks to it."""
    from markstation.devices.lmc.codec import Cmd, Reply, command, job_to_entries, pack_list

    board = LmcBoard(MACHINE)
    board.command(command(Cmd.FIBER_SET_MO, 1))
    for n, packet in enumerate(pack_list(job_to_entries(job, MACHINE)), start=1):
        while not Reply.decode(board.command(command(Cmd.READ_PORT)) or b"").ready:
            pass
        board.packet(packet)
        board.command(command(Cmd.SET_END_OF_LIST))
        if n == 1:
            board.command(command(Cmd.EXECUTE_LIST))
    for _ in range(100):
        r = Reply.decode(board.command(command(Cmd.READ_PORT)) or b"")
        if r.ready and not r.busy:
            break
    assert board.runs and board.runs[-1].complete
    return board


def _render(board: LmcBoard, path: Path, **kwargs: Any) -> tuple[np.ndarray, tuple[float, float]]:
    """The board's render (burned = True, px/mm 200) and the mm of its top-left corner."""
    from PIL import Image

    board.render_png(path, spot_mm=MACHINE.spot_mm, px_per_mm=200, **kwargs)
    pts = [p for s in board.burned_strokes() for p in s]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    margin = max(1.0, 0.05 * max(max(xs) - min(xs), max(ys) - min(ys)))
    with Image.open(path) as image:
        return np.asarray(image) > 127, (min(xs) - margin, max(ys) + margin)


def test_the_simulated_board_burns_a_dot_as_wide_as_the_model(tmp_path: Path) -> None:
    from markstation.devices.sim.render import burned_dot_mm

    blued = load_material("blued-steel")
    params = MarkParams(500.0, 60.0, 30.0)
    job = Job((Layer("dot", params, (Dot(0.0, 0.0, 2e-3), Dot(2.0, 0.0, 0.2e-3))),))
    board = _board_burn(job)
    s_long, _ = board.burned_settings()
    assert s_long.dwell_s == pytest.approx(2e-3) and s_long.power_pct == pytest.approx(60, abs=0.05)

    def width_mm(mask: np.ndarray, left: float, top: float, x: float) -> float:
        row = mask[round(top * 200)]  # the row through y = 0
        c = round((x - left) * 200)
        near = np.flatnonzero(row[c - 200 : c + 200])
        return len(near) / 200

    for material, growth in ((blued, blued.dot_growth_mm), (None, 0.25)):
        mask, (left, top) = _render(board, tmp_path / "burn.png", material=material)
        for x, dwell in ((0.0, 2e-3), (2.0, 0.2e-3)):
            model = MACHINE.spot_mm + growth * 0.6 * math.sqrt(dwell * 1e3)
            assert burned_dot_mm(dwell, 60.0, spot_mm=MACHINE.spot_mm, material=material) == (
                pytest.approx(model)
            )
            assert width_mm(mask, left, top, x) == pytest.approx(model, abs=2 / 200)
    # the model stops at the material's largest clean dot
    long_dwell = burned_dot_mm(1.0, 100.0, spot_mm=MACHINE.spot_mm, material=blued)
    assert long_dwell == blued.dot_max_mm


def test_the_simulated_board_renders_a_dots_code_as_the_preview_does(tmp_path: Path) -> None:
    job = build_job(
        "PE-SUCAMEC-2016-000123", layout=dots_layout(), material=load_material("blued-steel"),
        machine=MACHINE,
    )  # fmt: skip
    board = _board_burn(job)
    dots = [p for _, p in job.primitives() if isinstance(p, Dot)]
    (code,) = job.codes
    mask, top_left = _render(board, tmp_path / "burn.png", material=load_material("blued-steel"))
    dark_mm2 = _crop(mask, code.bbox, 200, top_left).sum() / 200**2
    # the preview draws each dot 0.3 mm wide (the dwell dot_plan chose); the board burned that
    # dwell, rounded to its 10 µs ticks, at that power, rounded to its 12-bit current word
    assert dark_mm2 == pytest.approx(len(dots) * math.pi * 0.15**2, rel=0.03)
    preview = burn_mask(
        job_strokes(job, MACHINE.spot_mm), spot_mm=MACHINE.spot_mm,
        bounds=code.bbox, px_per_mm=200,
    ) > 0  # fmt: skip
    assert dark_mm2 == pytest.approx(preview.sum() / 200**2, rel=0.03)


def test_the_simulated_board_renders_strokes_as_before(tmp_path: Path) -> None:
    from markstation.devices.sim.render import render_strokes

    square = Polyline(((0, 0), (10, 0), (10, 10), (0, 10), (0, 0)))
    board = _board_burn(Job((Layer("l", MarkParams(1000.0, 50.0, 30.0), (square,)),)))
    new = board.render_png(tmp_path / "new.png", spot_mm=MACHINE.spot_mm)
    old = render_strokes(board.burned_strokes(), tmp_path / "old.png", spot_mm=MACHINE.spot_mm)
    assert new.read_bytes() == old.read_bytes()
