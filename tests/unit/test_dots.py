"""The dots fill: the burned-dot model, the dwell it picks, and decode round trips on every galvo material."""

from __future__ import annotations

import dataclasses
import math
from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from markstation.errors import SymbolError
from markstation.job.fill import dot_diameter_mm, dot_plan
from markstation.job.ir import Dot, Job, Layer, MarkParams
from markstation.job.layout import build_job
from markstation.preview import burn_mask, check_codes, job_strokes
from markstation.profiles import LayoutProfile, load_layout, load_machine, load_material

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
    # a longer minimum dwell wins, the drawn dot never exceeds the module
    dwell2, diameter2 = dot_plan(
        0.3, spot_mm=0.03, power_pct=80.0, growth_mm=0.25, max_mm=0.4, min_dwell_s=0.01
    )
    assert dwell2 == 0.01 and diameter2 == 0.3


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
