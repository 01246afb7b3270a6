"""The time estimate: each term of the documented model, checked against hand arithmetic."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from markstation.job.estimate import estimate, format_duration
from markstation.job.ir import Dot, Job, Layer, MarkParams, Polyline
from markstation.job.layout import build_job
from markstation.profiles import load_layout, load_machine, load_material


def params(**kw: float) -> MarkParams:
    base = {
        "speed_mm_s": 100.0,
        "power_pct": 50.0,
        "frequency_khz": 30.0,
        "jump_speed_mm_s": 1000.0,
        "laser_on_delay_s": 1e-3,
        "laser_off_delay_s": 2e-3,
        "polygon_delay_s": 5e-3,
        "jump_delay_s": 10e-3,
    }
    base.update(kw)
    passes = int(base.pop("passes", 1))
    return MarkParams(**base, passes=passes)  # type: ignore[arg-type]


def test_one_stroke_every_term() -> None:
    # from the centre jump 10 mm to (10, 0), mark an L of 20 + 10 mm with one corner
    stroke = Polyline(((10.0, 0.0), (30.0, 0.0), (30.0, 10.0)))
    est = estimate(Job((Layer("a", params(), (stroke,)),)))
    assert est.mark_s == pytest.approx(30.0 / 100.0)
    assert est.jump_s == pytest.approx(10.0 / 1000.0)
    # on + off per stroke, one corner, one jump
    assert est.delay_s == pytest.approx(1e-3 + 2e-3 + 5e-3 + 10e-3)
    assert est.dwell_s == 0.0
    assert est.total_s == pytest.approx(0.3 + 0.01 + 0.018)
    assert est.marked_mm == pytest.approx(30.0) and est.jump_mm == pytest.approx(10.0)


def test_passes_repeat_marking_and_jump_back() -> None:
    stroke = Polyline(((0.0, 0.0), (10.0, 0.0)))
    est = estimate(Job((Layer("a", params(passes=3), (stroke,)),)))
    assert est.layers[0].passes == 3
    assert est.mark_s == pytest.approx(3 * 0.1)
    # no jump to start (already at the centre), then 10 mm back before passes 2 and 3
    assert est.jump_mm == pytest.approx(20.0)
    assert est.delay_s == pytest.approx(3 * 3e-3 + 2 * 10e-3)


def test_dots_dwell_and_contiguous_strokes_skip_the_jump_delay() -> None:
    layer = Layer(
        "d",
        params(laser_on_delay_s=-1e-3),  # a negative delay overlaps the motion: costs nothing
        (
            Dot(1.0, 0.0, 0.5e-3),
            Dot(1.0, 0.0, 0.5e-3),  # same place: no jump, no jump delay
            Polyline(((1.0, 0.0), (2.0, 0.0))),
        ),
    )
    est = estimate(Job((layer,)))
    assert est.dwell_s == pytest.approx(1e-3)
    assert est.mark_s == pytest.approx(0.01)
    assert est.delay_s == pytest.approx(3 * 2e-3 + 1 * 10e-3)


def test_layers_continue_from_where_the_previous_ended() -> None:
    a = Layer("a", params(), (Polyline(((0.0, 0.0), (5.0, 0.0))),))
    b = Layer("b", params(jump_speed_mm_s=500.0), (Polyline(((5.0, 3.0), (6.0, 3.0))),))
    est = estimate(Job((a, b)))
    assert [layer.name for layer in est.layers] == ["a", "b"]
    assert est.layers[1].jump_mm == pytest.approx(3.0)
    assert est.layers[1].jump_s == pytest.approx(3.0 / 500.0)
    assert est.total_s == pytest.approx(sum(layer.total_s for layer in est.layers))


def test_empty_job_takes_no_time() -> None:
    assert estimate(Job(())).total_s == 0.0


@given(st.integers(min_value=1, max_value=8))
def test_time_grows_linearly_with_passes_when_the_path_is_closed(passes: int) -> None:
    square = Polyline(((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.0, 0.0)))
    one = estimate(Job((Layer("a", params(), (square,)),))).total_s
    many = estimate(Job((Layer("a", params(passes=passes), (square,)),))).total_s
    assert many == pytest.approx(passes * one)


def test_secondary_mark_estimate_is_plausible() -> None:
    job = build_job(
        "PE-SUCAMEC-2016-000123",
        layout=load_layout("secondary-mark"),
        material=load_material("blued-steel"),
        machine=load_machine("lmc-fiber-110"),
    )
    est = estimate(job)
    text, code = est.layers
    assert text.passes == 4 and code.passes == 3
    assert text.mark_s == pytest.approx(text.marked_mm / 300.0)
    assert text.marked_mm == pytest.approx(4 * sum(p.length() for p in job.layers[0].primitives))
    assert 1.0 < est.total_s < 60.0


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.8412, "0.84 s"), (12.34, "12.3 s"), (125.0, "2 min 05 s")]
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
