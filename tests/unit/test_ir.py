"""The job IR: immutability, canonical hash, geometry helpers."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from markstation.job.ir import Affine, Dot, Job, Layer, MarkParams, Polyline

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
