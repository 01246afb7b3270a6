"""Device URLs, the driver registry, the limit check and the simulator ledger."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from markstation.devices.base import check_job_limits
from markstation.devices.registry import open_device, protocol_of
from markstation.devices.sim.ledger import Ledger, read_jobs
from markstation.devices.url import DeviceURL, parse_float_option
from markstation.errors import ConfigError, SafetyLimitError
from markstation.job.ir import Job, Layer, MarkParams, Polyline
from markstation.profiles import load_machine


def test_url_parse() -> None:
    u = DeviceURL.parse("serial:///dev/ttyUSB0?protocol=grbl&baud=115200")
    assert (u.scheme, u.host, u.path) == ("serial", "", "/dev/ttyUSB0")
    assert u.options == {"protocol": "grbl", "baud": "115200"}
    assert protocol_of(u) == "grbl"
    assert protocol_of(DeviceURL.parse("sim://lmc?timing=instant")) == "lmc"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lmc", "expected scheme://"),
        ("sim://lmc?timing=1&timing=2", "given twice"),
        ("ftp://lmc", "unknown scheme 'ftp'"),
        ("usb://laser", "no driver"),
    ],
)
def test_url_refusals(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        open_device(text)


def test_unknown_option_is_named() -> None:
    u = DeviceURL.parse("sim://lmc?ledgr=x")
    with pytest.raises(ConfigError, match="unknown option 'ledgr'"):
        u.check_keys(["ledger", "timing"])
    with pytest.raises(ConfigError, match="'timing=fast' is not a number"):
        parse_float_option(u, "timing", "fast")


def test_machine_protocol_mismatch() -> None:
    with pytest.raises(ConfigError, match="speaks grbl"):
        open_device("sim://lmc", machine="grbl-marker")


def _job(params: MarkParams, *pts: tuple[float, float]) -> Job:
    return Job(layers=(Layer("text", params, (Polyline(tuple(pts)),)),))


GOOD = MarkParams(speed_mm_s=300, power_pct=50, frequency_khz=30)


@pytest.mark.parametrize(
    ("params", "points", "message"),
    [
        (GOOD, ((0, 0), (56, 0)), "outside the 110 × 110 mm field"),
        (MarkParams(300, 95, 30), ((0, 0), (1, 0)), "power 95 %"),
        (MarkParams(9000, 50, 30), ((0, 0), (1, 0)), "speed 9000 mm/s"),
        (MarkParams(300, 50, 5), ((0, 0), (1, 0)), "frequency 5 kHz"),
        (MarkParams(300, 50, 30, pulse_width_ns=4), ((0, 0), (1, 0)), "not a MOPA source"),
        (MarkParams(300, 50, 30, jump_speed_mm_s=50000), ((0, 0), (1, 0)), "jump speed"),
        (GOOD, ((0, 0), (float("nan"), 0)), "outside"),
    ],
)
def test_limits_refused(
    params: MarkParams, points: tuple[tuple[float, float], ...], message: str
) -> None:
    machine = load_machine("lmc-fiber-110")
    with pytest.raises(SafetyLimitError, match=message) as info:
        check_job_limits(_job(params, *points), machine)
    assert info.value.may_have_emitted is False


def test_limits_accept_a_good_job() -> None:
    check_job_limits(_job(GOOD, (-50, -50), (50, 50)), load_machine("lmc-fiber-110"))


def _writer(path: str, n: int) -> None:
    ledger = Ledger(path)
    for _ in range(n):
        job = ledger.start()
        ledger.end(job, complete=True, polylines=[[(0.0, 0.0), (1.0, 1.0)]])


def test_ledger_numbers_jobs_across_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "ledger.jsonl")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, 10)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    jobs = read_jobs(path)
    assert [j.job for j in jobs] == list(range(1, 31))
    assert all(j.complete for j in jobs)


def test_ledger_survives_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(path)
    first = ledger.start()
    with path.open("a") as fh:
        fh.write('{"event": "end", "job": 1, "comp')  # a writer killed mid-line
    second = ledger.start()
    assert (first, second) == (1, 2)
    jobs = read_jobs(path)
    assert [(j.job, j.ended) for j in jobs] == [(1, None), (2, None)]


def test_ledger_numbers_jobs_after_records_longer_than_a_read_chunk(tmp_path: Path) -> None:
    """The job number comes from the last start line, found reading backwards in chunks: end
    records far longer than one chunk, and a torn start line, must not lose or repeat a number."""
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(path)
    big = [[(i * 0.001, -i * 0.002) for i in range(4000)] for _ in range(5)]  # ~300 kB a record
    for n in range(1, 4):
        assert ledger.start() == n
        ledger.end(n, complete=True, polylines=big)
    with path.open("a") as fh:
        fh.write('{"event":"start","job":4,"ti')  # killed mid-line: number 4 was never issued
    assert ledger.start() == 4
    assert [j.job for j in read_jobs(path)] == [1, 2, 3, 4]


def test_ledger_points_read_back_as_rounded_to_six_places(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(path)
    pts = [(1 / 3, -2 / 3), (12.3456785, -0.0000004), (54.999999951, 0.0)]
    ledger.end(ledger.start(), complete=False, polylines=[pts, pts[:1]])
    (job,) = read_jobs(path)
    assert job.polylines == [
        [(round(x, 6), round(y, 6)) for x, y in pts],
        [(round(1 / 3, 6), round(-2 / 3, 6))],
    ]
    assert job.complete is False
