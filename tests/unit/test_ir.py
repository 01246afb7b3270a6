"""The job IR: immutability, canonical hash, geometry helpers."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from markstation.job.ir import Affine, Dot, Job, Layer, MarkParams, Polyline, _rounded
from markstation.job.layout import build_job
from markstation.profiles import load_layout, load_machine, load_material
from markstation.profiles.params import MM_DIGITS, S_DIGITS

PARAMS = MarkParams(speed_mm_s=300, power_pct=50, frequency_khz=30)
coord = st.floats(min_value=-50, max_value=50, allow_nan=False)
point = st.tuples(coord, coord)


def _job(*prims: Polyline | Dot, meta: dict[str, str] | None = None) -> Job:
    return Job(layers=(Layer("l", PARAMS, prims),), meta=Job.make_meta(meta or {}))


def test_polyline_needs_two_points() -> None:
    with pytest.raises(ValueError, match="at least two points"):
        Polyline(((0.0, 0.0),))


def test_job_is_immutable() -> None:
    job = _job(Polyline(((0, 0), (1, 1))))
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.layers = ()  # type: ignore[misc]


def test_hash_is_stable_and_sensitive() -> None:
    a = _job(Polyline(((0, 0), (1, 1))), meta={"mark_code": "X"})
    b = _job(Polyline(((0, 0), (1, 1))), meta={"mark_code": "X"})
    assert a.sha256() == b.sha256()
    assert a.sha256() != _job(Polyline(((0, 0), (1, 1.001))), meta={"mark_code": "X"}).sha256()
    assert a.sha256() != _job(Polyline(((0, 0), (1, 1))), meta={"mark_code": "Y"}).sha256()
    # rounding below a nanometre does not change the hash: the canonical form is what is hashed
    assert a.sha256() == _job(Polyline(((0, 0), (1, 1 + 1e-12))), meta={"mark_code": "X"}).sha256()


def test_lengths_and_bounds() -> None:
    job = _job(Polyline(((0, 0), (3, 4))), Dot(10, 0, 0.001))
    assert job.marked_length() == pytest.approx(5.0)
    assert job.jump_length() == pytest.approx(0 + math.dist((3, 4), (10, 0)))
    assert job.bounds() == (0, 0, 10, 4)
    assert Job(layers=()).bounds() is None
    assert job.primitive_count() == 2


@given(st.lists(point, min_size=2, max_size=8), st.floats(-360, 360), point)
def test_affine_rotation_preserves_length(
    pts: list[tuple[float, float]], deg: float, shift: tuple[float, float]
) -> None:
    line = Polyline(tuple(pts))
    moved = Affine.rotate(deg).then(Affine.translate(*shift)).apply_primitive(line)
    assert moved.length() == pytest.approx(line.length(), rel=1e-9, abs=1e-9)


@given(point, st.floats(0.1, 10), st.floats(-180, 180))
def test_affine_composition_order(p: tuple[float, float], s: float, deg: float) -> None:
    a, b = Affine.scale(s), Affine.rotate(deg)
    x1, y1 = a.then(b).apply(p)
    x2, y2 = b.apply(a.apply(p))
    assert x1 == pytest.approx(x2, abs=1e-9)
    assert y1 == pytest.approx(y2, abs=1e-9)


# --- the canonical bytes: the numpy rounding against the plain one (issue 13) --------------------


def _plain_bytes(job: Job) -> bytes:
    """What ``canonical_bytes`` was before its rounding went to numpy: JSON of ``canonical()``."""
    return json.dumps(job.canonical(), sort_keys=True, separators=(",", ":")).encode()


# every kind of number a coordinate may be: free floats, decimal ties and values a hair either
# side of one (where a product rounded to a double could round the other way), grid values,
# sub-nanometre ones, signed zeros, integers, huge and non-finite values
tie = st.integers(-(10**9), 10**9).map(lambda k: (k + 0.5) / 1e6)
near_tie = st.tuples(tie, st.sampled_from([-1, 1]), st.integers(1, 8)).map(
    lambda t: math.nextafter(t[0], t[1] * math.inf) if t[2] == 1 else t[0] + t[1] * t[2] * 1e-16
)
number = st.one_of(
    st.floats(-500, 500),
    tie,
    near_tie,
    st.integers(-400, 400).map(lambda i: i * 0.005),
    st.floats(-1e-6, 1e-6),
    st.sampled_from([0.0, -0.0, 5e-7, -5e-7, 5e-10, 1e300, -1e300, math.inf, -math.inf, math.nan]),
    st.integers(-1000, 1000),
    st.floats(allow_nan=True, allow_infinity=True),
)
any_point = st.tuples(number, number)
prim = st.one_of(
    st.lists(any_point, min_size=2, max_size=8).map(lambda p: Polyline(tuple(p))),
    st.builds(Dot, number, number, number, st.one_of(st.just(0.0), number)),
)
any_job = st.lists(
    st.builds(Layer, st.sampled_from(["a", "b"]), st.just(PARAMS), st.lists(prim).map(tuple)),
    max_size=3,
).map(lambda layers: Job(tuple(layers), meta=Job.make_meta({"mark_code": "X"})))


@given(any_job)
def test_canonical_bytes_are_the_plain_json(job: Job) -> None:
    assert job.canonical_bytes() == _plain_bytes(job)


@settings(max_examples=200)  # cheap: many values near a decimal tie
@given(st.lists(number, max_size=50), st.sampled_from([MM_DIGITS, S_DIGITS]))
def test_numpy_rounding_is_round(values: list[float], digits: int) -> None:
    got = _rounded(values, digits)
    want = [round(float(v), digits) + 0.0 for v in values]
    assert [repr(v) for v in got] == [repr(v) for v in want]  # NaN too, and no -0.0


@pytest.mark.parametrize("layout", ["secondary-mark", "import-mark", "text-only"])
def test_shipped_layouts_hash_as_the_plain_json(layout: str) -> None:
    machine = load_machine("lmc-fiber-110")
    lay = load_layout(layout)
    material = load_material(machine.default_material, machine=machine)
    job = build_job(lay.code_example, layout=lay, material=material, machine=machine)
    assert job.canonical_bytes() == _plain_bytes(job)


def test_odd_primitives_take_the_plain_path() -> None:
    class Curve(Polyline):
        __slots__ = ()

    job = _job(Curve(((0.1234567, 0), (1, 1))), Dot(0.5, 0.5, 1e-3, 0.04))
    assert job.canonical_fast() is None
    assert job.canonical_bytes() == _plain_bytes(job)
    bad = _job(Polyline(((0, 0, 0), (1, 1, 1))))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        bad.canonical_bytes()
    uneven = _job(Polyline(((0, 0, 0), (1,))))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        uneven.canonical_bytes()
