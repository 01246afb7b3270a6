"""The vectorised LMC encoder (``codec.job_to_words``) against the scalar one it replaced
(``tests/_lmc_reference.py``, the oracle): the same entries, the same errors, the same packets,
and the array timing model against ListClock."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _lmc_reference import reference_job_to_entries
from markstation.devices.lmc import codec
from markstation.devices.lmc.timing import list_seconds, list_seconds_array
from markstation.errors import MarkstationError
from markstation.job.ir import Dot, Job, Layer, MarkParams, Polyline
from markstation.job.layout import build_job
from markstation.profiles import load_layout, load_machine, load_material

# the encoder against its scalar oracle over many jobs: the full run, not the quick loop
pytestmark = pytest.mark.slow

MACHINE = load_machine("lmc-fiber-110")
#: the list opcodes the timing model distinguishes, EndOfList and a setting it ignores
LIST_OPS = [
    0x8001,
    0x8002,
    0x8003,
    0x8004,
    0x8005,
    0x8006,
    0x8007,
    0x8008,
    0x800C,
    0x800D,
    0x800F,
    0x8051,
]
HALF = max(MACHINE.field_width_mm, MACHINE.field_height_mm) / 2

# coordinates on a coarse grid (many exact duplicates, sub-unit strokes) and free floats, some
# just past the galvo range so the range refusal is exercised too
coord = st.one_of(
    st.integers(-20, 20).map(lambda i: i * 0.005),
    st.floats(-HALF * 1.01, HALF * 1.01, allow_nan=False),
)
point = st.tuples(coord, coord)
polyline = st.lists(point, min_size=2, max_size=6).map(lambda p: Polyline(tuple(p)))
dot = st.builds(
    Dot,
    coord,
    coord,
    st.one_of(st.floats(0.0, 0.002), st.sampled_from([0.0, 1e-6, 0.6, 0.6000049, 1.3])),
)
params = st.builds(
    MarkParams,
    speed_mm_s=st.sampled_from([5.0, 1000.0, 2500.0]),
    power_pct=st.sampled_from([0.0, 40.0, 100.0]),
    frequency_khz=st.sampled_from([20.0, 30.0]),
    passes=st.integers(1, 3),
    laser_on_delay_s=st.sampled_from([0.0, 100e-6, -50e-6]),
    laser_off_delay_s=st.sampled_from([0.0, 120e-6, -20e-6]),
    polygon_delay_s=st.sampled_from([0.0, 50e-6]),
    jump_delay_s=st.sampled_from([0.0, 200e-6]),
)
layer = st.builds(
    Layer,
    st.sampled_from(["text", "datamatrix"]),
    params,
    st.lists(st.one_of(polyline, dot), min_size=0, max_size=8).map(tuple),
)
jobs = st.lists(layer, min_size=0, max_size=3).map(lambda ls: Job(tuple(ls)))


def _outcome(fn, job: Job):  # type: ignore[no-untyped-def]
    try:
        return ("ok", fn(job, MACHINE))
    except MarkstationError as exc:
        return (type(exc).__name__, str(exc))


@settings(max_examples=200)
@given(jobs)
def test_vectorised_entries_are_the_reference_entries(job: Job) -> None:
    assert _outcome(codec.job_to_entries, job) == _outcome(reference_job_to_entries, job)


@given(jobs)
def test_packets_and_time_are_the_reference_ones(job: Job) -> None:
    try:
        reference = reference_job_to_entries(job, MACHINE)
    except MarkstationError:
        return
    words = codec.job_to_words(job, MACHINE)
    assert codec.pack_words(words) == codec.pack_list(reference)
    scalar = list_seconds((e.op, e.w1, e.w2) for e in reference)
    assert codec.words_seconds(words) == pytest.approx(scalar, rel=1e-12, abs=1e-15)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(LIST_OPS),
            st.integers(0, 0xFFFF),
            st.sampled_from([0, 0x8000, 0x1234]),
        ),
        max_size=60,
    )
)
def test_array_clock_is_the_list_clock(entries: list[tuple[int, int, int]]) -> None:
    """Any entry sequence (EndOfList in the middle, settings in any order, signed delays)."""
    ops, w1, w2 = (list(c) for c in zip(*entries, strict=True)) if entries else ([], [], [])
    got = list_seconds_array(ops, w1, w2)  # type: ignore[arg-type]
    assert math.isclose(got, list_seconds(entries), rel_tol=1e-12, abs_tol=1e-15)


@pytest.mark.parametrize("layout", ["secondary-mark", "import-mark", "text-only"])
def test_shipped_layouts_encode_as_the_reference(layout: str) -> None:
    lay = load_layout(layout)
    material = load_material(MACHINE.default_material, machine=MACHINE)
    job = build_job(lay.code_example, layout=lay, material=material, machine=MACHINE)
    assert codec.job_to_entries(job, MACHINE) == reference_job_to_entries(job, MACHINE)


def test_words_are_read_only_and_memoised_per_job() -> None:
    job = Job((Layer("t", MarkParams(1000.0, 50.0, 30.0), (Polyline(((0, 0), (1, 1))),)),))
    words = codec.job_to_words(job, MACHINE)
    assert codec.job_to_words(job, MACHINE) is words
    with pytest.raises(ValueError):
        words[0, 0] = 0
    other = Job(job.layers)  # equal, not the same object: encoded again, same words
    assert codec.job_to_words(other, MACHINE) is not words
    assert (codec.job_to_words(other, MACHINE) == words).all()
