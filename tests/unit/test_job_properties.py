"""Properties of built jobs over random codes from each scheme's alphabet (hypothesis).

* every point lies inside the machine's field and the layout's safe area;
* the rendered cap height equals the requested height;
* 2D codes (Data Matrix, QR, Micro QR where the code fits) decode back exactly from the burn;
* the burn covers every dark module and leaves every light module untouched (reverse for inverse);
* optimisation keeps the multiset of strokes and never lengthens the jump path.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from markstation.errors import VerifyError
from markstation.job.ir import Dot, Job, Point
from markstation.job.layout import build_job
from markstation.job.optimize import optimize
from markstation.preview import burn_mask, job_strokes, verify_codes
from markstation.profiles import LayoutProfile, load_layout, load_machine, load_material

# property tests that build and decode many whole jobs: the full run, not the quick loop
pytestmark = pytest.mark.slow

MACHINE = load_machine("lmc-fiber-110")
MATERIAL = load_material("blued-steel")
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"


def upper(lo: int, hi: int) -> st.SearchStrategy[str]:
    return st.text(UPPER, min_size=lo, max_size=hi)


def digits(lo: int, hi: int) -> st.SearchStrategy[str]:
    return st.text(DIGITS, min_size=lo, max_size=hi)


#: a year inside the layouts' window (code.year_min 1900 … the current year + 1)
years = st.integers(1900, date.today().year + 1).map(str)
#: COUNTRY-AUTHORITY-YEAR-NUMBER, the shipped secondary-mark / text-only scheme
secondary_codes = st.builds(
    lambda c, a, y, n: f"{c}-{a}-{y}-{n}", upper(2, 2), upper(2, 12), years, digits(4, 8)
)
#: a shorter registry scheme that fits Micro QR M4-L
SHORT_PATTERN = r"^(?P<country>[A-Z]{2})-(?P<year>[0-9]{4})-(?P<number>[0-9]{6})$"
short_codes = st.builds(lambda c, y, n: f"{c}-{y}-{n}", upper(2, 2), years, digits(6, 6))


def build(code: str, layout: LayoutProfile, material: str = "blued-steel") -> Job:
    return build_job(code, layout=layout, material=load_material(material), machine=MACHINE)


def code_layout(
    directory: Path, kind: str, module: float, extra: str = "", short: bool = False
) -> LayoutProfile:
    pattern = SHORT_PATTERN if short else load_layout("secondary-mark").code_pattern
    example = "PE-2016-000123" if short else "PE-SUCAMEC-2016-000123"
    name = f"{kind}-{abs(hash((module, extra, short))) % 10**8}"
    path = directory / f"{name}.toml"
    if not path.exists():
        path.write_text(
            f"schema = 1\nname = '{name}'\n[code]\npattern = '{pattern}'\nexample = '{example}'\n"
            "[safe_area]\nx_min = -25.0\ny_min = -25.0\nx_max = 25.0\ny_max = 25.0\n"
            f"[[element]]\nkind = '{kind}'\ndata = '{{code}}'\nx_mm = 0.0\ny_mm = 0.0\n"
            f"module_mm = {module}\n{extra}",
            encoding="utf-8",
        )
    return load_layout(str(path))


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, LayoutProfile]:
    d = tmp_path_factory.mktemp("layouts")
    return {
        "datamatrix": code_layout(d, "datamatrix", 0.3),
        "qr": code_layout(d, "qr", 0.25, "ec = 'M'\n"),
        "microqr": code_layout(d, "microqr", 0.3, short=True),
        "dots": code_layout(d, "datamatrix", 0.12, "fill = 'dots'\n"),
        "outline": code_layout(d, "datamatrix", 0.3, "fill = 'outline-hatch'\n"),
        "inverse": code_layout(d, "datamatrix", 0.3, "fill = 'inverse'\nquiet_zone_modules = 2\n"),
        "rotated": code_layout(d, "datamatrix", 0.3, "rotation_deg = 30.0\n"),
    }


# --- geometry -----------------------------------------------------------------------------------


@given(secondary_codes)
def test_every_point_is_inside_the_field_and_the_safe_area(code: str) -> None:
    for name in ("secondary-mark", "text-only"):
        layout = load_layout(name)
        job = build(code, layout)
        safe, fld = layout.safe_area, MACHINE.field
        for x, y in job.points():
            assert fld.contains(x, y) and safe.contains(x, y, tol=1e-6)


@given(secondary_codes)
def test_rendered_cap_height_equals_the_requested_height(code: str) -> None:
    job = build(code, load_layout("text-only"))
    (text,) = job.texts
    assert text.cap_height_mm == 1.8
    # the layout's baseline is y = -0.9 mm; capitals and digits reach exactly the cap line
    # (only the tail of a Q may go below the baseline)
    _, y0, _, y1 = text.bbox
    assert y1 == pytest.approx(-0.9 + 1.8, abs=1e-6)
    if "Q" not in code:
        assert y0 == pytest.approx(-0.9, abs=1e-6)


@given(secondary_codes)
def test_optimisation_keeps_the_strokes_and_shortens_the_path(code: str) -> None:
    raw = build_job(
        code, layout=load_layout("secondary-mark"), material=MATERIAL, machine=MACHINE,
        optimize=False,
    )  # fmt: skip
    opt = optimize(raw)

    def strokes(job: Job) -> Counter[tuple[Point, ...]]:
        return Counter(min(p.points, p.points[::-1]) for _, p in job.primitives())

    assert strokes(opt) == strokes(raw)
    assert opt.jump_length() <= raw.jump_length()


# --- decode round trips --------------------------------------------------------------------------


@settings(max_examples=25)
@given(
    code=secondary_codes,
    kind=st.sampled_from(["datamatrix", "qr", "outline", "inverse", "rotated"]),
)
def test_codes_decode_back_exactly_from_the_burn(
    layouts: dict[str, LayoutProfile], code: str, kind: str
) -> None:
    job = build(code, layouts[kind])
    (check,) = verify_codes(job, MACHINE)
    assert check.decoded == code


@settings(max_examples=15)
@given(secondary_codes)
def test_dot_codes_decode_when_the_dots_fill_the_modules(
    layouts: dict[str, LayoutProfile], code: str
) -> None:
    # one dwell per module burns a disc of the spot; zxing reads dotted symbols from ~0.9 module.
    # The material's shortest dwell must not grow the 0.11 mm spot past the 0.12 mm module (the
    # default would, and the decode check then rightly sees the dots run together)
    wide = dataclasses.replace(MACHINE, spot_mm=0.11)
    brief = dataclasses.replace(MATERIAL, dot_dwell_s=1e-6)
    job = build_job(code, layout=layouts["dots"], material=brief, machine=wide)
    (check,) = verify_codes(job, wide)
    assert check.decoded == code


def test_a_shortest_dwell_that_grows_dots_into_each_other_fails_the_decode_check(
    layouts: dict[str, LayoutProfile],
) -> None:
    wide = dataclasses.replace(MACHINE, spot_mm=0.11)
    slow = dataclasses.replace(MATERIAL, dot_dwell_s=2e-3)  # 0.11 + 0.2 * sqrt(2) = 0.39 mm dots
    job = build_job("PE-SUCAMEC-2016-000123", layout=layouts["dots"], material=slow, machine=wide)
    dot = next(p for layer in job.layers for p in layer.primitives if isinstance(p, Dot))
    assert dot.diameter_mm > 3 * 0.12
    with pytest.raises(VerifyError):
        verify_codes(job, wide)


def test_dots_far_smaller_than_their_modules_are_refused(layouts: dict[str, LayoutProfile]) -> None:
    # dots that do not grow (dot_growth_mm = 0): the 0.03 mm spot leaves 0.12 mm modules mostly
    # bare, and the decode check must not let that pass
    flat = dataclasses.replace(MATERIAL, dot_growth_mm=0.0)
    job = build_job(
        "PE-SUCAMEC-2016-000123", layout=layouts["dots"], material=flat, machine=MACHINE
    )
    with pytest.raises(VerifyError, match="nothing decoded"):
        verify_codes(job, MACHINE)


@settings(max_examples=25)
@given(short_codes)
def test_micro_qr_decodes_back_exactly(layouts: dict[str, LayoutProfile], code: str) -> None:
    job = build(code, layouts["microqr"])
    assert job.codes[0].symbology == "microqr"
    (check,) = verify_codes(job, MACHINE)
    assert check.decoded == code


# --- module coverage ---------------------------------------------------------------------------------


@settings(max_examples=15)
@given(code=secondary_codes, kind=st.sampled_from(["datamatrix", "outline", "inverse"]))
def test_burn_covers_dark_modules_and_spares_light_ones(
    layouts: dict[str, LayoutProfile], code: str, kind: str
) -> None:
    job = build(code, layouts[kind])
    (region,) = job.codes
    m = region.module_mm
    px = 40  # pixels per module
    mask = (
        burn_mask(job_strokes(job), spot_mm=MACHINE.spot_mm, bounds=region.bbox, px_per_mm=px / m)
        > 0
    )
    # what should burn, module by module, quiet zone included: the dark modules, or for an
    # inverse code the light modules and the whole quiet-zone ring
    rows = region.matrix
    q = (round((region.bbox[2] - region.bbox[0]) / m) - len(rows[0])) // 2
    ring = "1" if region.inverse else "0"
    body = [row.translate(str.maketrans("01", "10")) if region.inverse else row for row in rows]
    grid = [ring * (len(rows[0]) + 2 * q)] * q
    grid = grid + [ring * q + row + ring * q for row in body] + grid
    for r, line in enumerate(grid):
        for c, ch in enumerate(line):
            cell = mask[r * px + 1 : (r + 1) * px - 1, c * px + 1 : (c + 1) * px - 1]
            if ch == "1":
                assert cell.mean() > 0.97, (r, c, cell.mean())
            else:
                assert not cell.any(), (r, c)
