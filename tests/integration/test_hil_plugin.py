"""Tests of the hardware-in-the-loop machinery itself: the emission guard, the bench jobs, the report
model and CLI, and the pytest plugin in hil_tests/conftest.py (run inside ``pytester``).

No hardware: a "real" device here is a fake Driver registered under a real URL, so the tests can
prove what the suite would have sent to a marker.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _paths import REPO
from markstation import __version__
from markstation.devices.base import (
    DeviceInfo,
    Driver,
    Inputs,
    RunListener,
    RunResult,
    check_job_limits,
)
from markstation.errors import (
    ConfigError,
    EmissionNotAllowed,
    LimitError,
    OutOfFieldError,
    SafetyLimitError,
)
from markstation.hil.guard import (
    GuardedDriver,
    frame_can_emit,
    is_simulated_url,
)
from markstation.hil.jobs import (
    bench_params,
    grid_axes,
    is_held_off,
    layout_job,
    material_grid,
    square_job,
    stream_job,
    timed_job,
)
from markstation.hil.report import (
    CheckRecord,
    HilReport,
    load_report,
    parse_rig,
    render_summary,
    report_from_dict,
    write_report,
)
from markstation.job.ir import Job, Layer, Polyline
from markstation.profiles import MachineProfile, default_machine_for

pytest_plugins = ["pytester"]


HIL_DIR = REPO / "hil_tests"
LMC = default_machine_for("lmc")
GRBL = default_machine_for("grbl")


class FakeDriver(Driver):
    """A driver that records what it was asked to do and never talks to anything."""

    protocol = "lmc"

    def __init__(self, url: str, machine: MachineProfile) -> None:
        super().__init__(url, machine)
        self.protocol = machine.protocol
        self.runs: list[Job] = []
        self.frames = 0
        self.simulator = object()

    def _open(self) -> None:
        pass

    def _close(self) -> None:
        pass

    def _info(self) -> DeviceInfo:
        return DeviceInfo(self.url, self.protocol, "fake", "1.0", "F1", simulated=False)

    def _read_inputs(self) -> Inputs:
        return Inputs(raw=0, pedal_pressed=False, interlock_closed=True)

    def _run(self, job: Job, listener: RunListener) -> RunResult:
        self.runs.append(job)
        return RunResult(complete=True, elapsed_s=0.0)

    def _frame(self, job: Job, stop: Callable[[], bool]) -> int:
        self.frames += 1
        return 1

    def _abort(self) -> None:
        pass

    def _emission_off(self) -> None:
        pass


def one_layer_job(power_pct: float, machine: MachineProfile = LMC) -> Job:
    params = bench_params(machine, power_pct=power_pct)
    return Job(layers=(Layer("l", params, (Polyline(((0.0, 0.0), (1.0, 0.0))),)),))


# --- the emission guard ---------------------------------------------------------------------------

REAL_URLS = [("usb://lmc", LMC), ("usb://lmc?serial=ABC", LMC), ("serial:///dev/ttyUSB0", GRBL)]


@pytest.mark.parametrize(("url", "machine"), REAL_URLS)
def test_guard_refuses_emission_on_real_hardware(url: str, machine: MachineProfile) -> None:
    fake = FakeDriver(url, machine)
    with GuardedDriver(fake, allow_emission=False) as guarded:
        with pytest.raises(EmissionNotAllowed, match="--allow-emission") as refused:
            guarded.run(one_layer_job(5.0, machine))
        assert refused.value.may_have_emitted is False
        assert isinstance(refused.value, SafetyLimitError)
    assert fake.runs == [], "the refused job reached the driver"


@given(
    powers=st.lists(st.floats(min_value=0.0, max_value=90.0), min_size=1, max_size=4),
)
def test_guard_lets_through_exactly_the_held_off_jobs(powers: list[float]) -> None:
    params = bench_params(LMC)
    stroke = (Polyline(((0.0, 0.0), (1.0, 1.0))),)
    job = Job(
        layers=tuple(
            Layer(f"l{i}", dataclasses.replace(params, power_pct=p), stroke)
            for i, p in enumerate(powers)
        )
    )
    fake = FakeDriver("usb://lmc", LMC)
    guarded = GuardedDriver(fake, allow_emission=False)
    if all(p == 0 for p in powers):
        assert guarded.run(job).complete
        assert fake.runs == [job]
    else:
        with pytest.raises(EmissionNotAllowed):
            guarded.run(job)
        assert fake.runs == []


def test_guard_allows_emission_when_asked_and_on_simulators() -> None:
    job = one_layer_job(5.0)
    allowed = FakeDriver("usb://lmc", LMC)
    assert GuardedDriver(allowed, allow_emission=True).run(job).complete
    sim = FakeDriver("sim://lmc?timing=instant", LMC)
    assert GuardedDriver(sim, allow_emission=False).run(job).complete
    assert allowed.runs == [job] and sim.runs == [job]


def test_guard_frames_with_the_pointer_but_not_with_the_beam() -> None:
    fake = FakeDriver("usb://lmc", LMC)
    assert GuardedDriver(fake, allow_emission=False).frame(one_layer_job(5.0), lambda: True) == 1
    beam = dataclasses.replace(GRBL, options={**GRBL.options, "pointer_power_pct": 2.0})
    assert frame_can_emit(beam) and not frame_can_emit(GRBL) and not frame_can_emit(LMC)
    grbl = FakeDriver("serial:///dev/ttyUSB0?protocol=grbl", beam)
    with pytest.raises(EmissionNotAllowed, match="pointer_power_pct"):
        GuardedDriver(grbl, allow_emission=False).frame(one_layer_job(0.0, GRBL), lambda: True)
    assert grbl.frames == 0
    assert GuardedDriver(grbl, allow_emission=True).frame(one_layer_job(0.0, GRBL), lambda: True)


def test_guard_trusts_the_url_not_the_device() -> None:
    assert is_simulated_url("sim://lmc") and is_simulated_url("SIM://grbl?timing=realtime")
    assert not is_simulated_url("usb://lmc") and not is_simulated_url("usb://sim")
    # a real driver exposing a "simulator" attribute still gets no sim-only helpers
    assert GuardedDriver(FakeDriver("usb://lmc", LMC), allow_emission=True).simulator is None
    assert GuardedDriver(FakeDriver("sim://lmc", LMC), allow_emission=False).simulator is not None


# --- bench jobs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("machine", [LMC, GRBL], ids=["lmc", "grbl"])
def test_bench_jobs_fit_the_machine(machine: MachineProfile) -> None:
    for job in (square_job(machine), stream_job(machine), timed_job(machine, seconds=2.0)):
        check_job_limits(job, machine)
        assert is_held_off(job)
        assert all(machine.safe_area.contains(x, y) for x, y in job.points())
    square = square_job(machine, size_mm=10.0, power_pct=5.0)
    (outline,) = [p for _, p in square.primitives()]
    assert outline.points[0] == outline.points[-1] and outline.length() == pytest.approx(40.0)
    assert not is_held_off(square)


@pytest.mark.parametrize("machine", [LMC, GRBL], ids=["lmc", "grbl"])
def test_layout_job_is_the_real_mark_held_off(machine: MachineProfile) -> None:
    from markstation.devices.estimate import device_estimate
    from markstation.job.layout import build_job
    from markstation.profiles import load_layout, load_material

    job = layout_job(machine)
    assert is_held_off(job)
    check_job_limits(job, machine)
    layout = load_layout("secondary-mark")
    material = load_material(machine.default_material, machine=machine)
    real = build_job(layout.code_example, layout=layout, material=material, machine=machine)
    assert [ly.primitives for ly in job.layers] == [ly.primitives for ly in real.layers]
    assert [dataclasses.replace(ly.params, power_pct=0.0) for ly in real.layers] == [
        ly.params for ly in job.layers
    ]
    # the power does not change the time: the same list / program at zero
    assert device_estimate(job, machine).seconds == pytest.approx(
        device_estimate(real, machine).seconds, rel=1e-9
    )


def test_stream_job_needs_several_lmc_packets() -> None:
    from markstation.devices.lmc import codec

    packets = codec.pack_list(codec.job_to_entries(stream_job(LMC), LMC))
    assert len(packets) >= 3


def test_timed_job_takes_about_the_time_asked() -> None:
    from markstation.job.estimate import estimate

    job = timed_job(LMC, seconds=4.0, speed_mm_s=50.0)
    assert 4.0 <= estimate(job).mark_s <= 4.0 + 20.0 / 50.0 + 1e-9


def test_bench_params_clamp_speed_and_refuse_power() -> None:
    assert bench_params(GRBL, speed_mm_s=5000.0).speed_mm_s == GRBL.speed_mm_s_max
    assert bench_params(LMC, speed_mm_s=0.001).speed_mm_s == LMC.speed_mm_s_min
    with pytest.raises(LimitError, match="lmc-fiber-110"):
        bench_params(LMC, power_pct=LMC.power_pct_max + 1)


@pytest.mark.parametrize("machine", [LMC, GRBL], ids=["lmc", "grbl"])
def test_material_grid_cells_and_labels(machine: MachineProfile) -> None:
    powers, speeds = grid_axes(machine)
    assert len(powers) >= 3 and len(speeds) >= 3
    job = material_grid(machine, powers_pct=powers, speeds_mm_s=speeds)
    check_job_limits(job, machine)
    cells = {layer.name: layer for layer in job.layers if layer.name != "labels"}
    assert len(cells) == len(powers) * len(speeds)
    for p in powers:
        for s in speeds:
            params = cells[f"P{p:g} S{s:g}"].params
            assert (params.power_pct, params.speed_mm_s) == (p, s)
    labels = [layer for layer in job.layers if layer.name == "labels"]
    assert len(labels) == 1 and labels[0].primitives
    assert sorted(t.text for t in job.texts) == sorted(
        [f"P{p:g}" for p in powers] + [f"S{s:g}" for s in speeds]
    )
    # cells do not overlap: their boxes are disjoint
    boxes = [Job(layers=(layer,)).bounds() for layer in cells.values()]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a is not None and b is not None
            assert a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1]


def test_material_grid_refusals() -> None:
    with pytest.raises(LimitError, match="power 95 %"):
        material_grid(LMC, powers_pct=[95.0], speeds_mm_s=[100.0])
    with pytest.raises(LimitError, match="speed 9000 mm/s"):
        material_grid(LMC, powers_pct=[10.0], speeds_mm_s=[9000.0])
    with pytest.raises(LimitError, match="frequency 200 kHz"):
        material_grid(LMC, powers_pct=[10.0], speeds_mm_s=[100.0], frequency_khz=200.0)
    with pytest.raises(LimitError, match="at least one"):
        material_grid(LMC, powers_pct=[], speeds_mm_s=[100.0])
    with pytest.raises(OutOfFieldError, match="safe area"):
        material_grid(LMC, powers_pct=[10.0] * 3, speeds_mm_s=[100.0] * 30, cell_mm=5.0)


# --- the report model -----------------------------------------------------------------------------


def sample_report(outcome: str = "passed") -> HilReport:
    return HilReport(
        markstation=__version__,
        started="2026-11-28T17:00:00+00:00",
        finished="2026-11-28T17:01:00+00:00",
        options={
            "devices": ["sim://lmc"],
            "allow_emission": False,
            "operator": False,
            "repeat": 20,
        },
        rig={"source": "simulator (no physical rig)", "fields": {}},
        devices={"sim://lmc": {"model": "LMC (BJJCZ)", "firmware": "4C02.0009"}},
        checks=[
            CheckRecord(
                "sim://lmc", "abort_latency", "passed", figures={"abort_latency_s": 0.0123}
            ),
            CheckRecord("sim://lmc", "back_to_back", outcome, reason="job 3 | did not complete"),
            CheckRecord(
                "sim://lmc",
                "material_grid",
                "skipped",
                reason="needs --allow-emission",
                markers=["emission"],
            ),
        ],
    )


def test_report_round_trip_and_summary(tmp_path: Path) -> None:
    report = sample_report("failed")
    json_path, md_path = write_report(report, tmp_path / "out" / "hil-report.json")
    assert md_path == tmp_path / "out" / "hil-report.md"
    assert load_report(json_path).as_dict() == report.as_dict()
    summary = md_path.read_text()
    assert summary == render_summary(report)
    assert summary.startswith("# Hardware-in-the-loop report — FAIL")
    assert "1 passed, 1 failed, 1 skipped" in summary
    assert "**abort_latency_s** = 0.0123 s" in summary
    assert "job 3 \\| did not complete" in summary  # a pipe cannot break the table
    assert "| material_grid [emission] | skipped |" in summary
    assert render_summary(sample_report()).startswith("# Hardware-in-the-loop report — PASS")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(format="other"), "not a markstation HIL report"),
        (lambda d: d.update(version=9), "version 9 is not supported"),
        (lambda d: d.pop("started"), "missing field 'started'"),
        (lambda d: d["checks"][1].update(outcome="maybe"), "checks\\[1\\]: outcome 'maybe'"),
        (lambda d: d["checks"][0].update(figures={"x": [1]}), "checks\\[0\\]: figure 'x'"),
        (lambda d: d["checks"][0].update(duration_s="1"), "checks\\[0\\]: field 'duration_s'"),
    ],
)
def test_report_refusals_name_the_field(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], Any], message: str
) -> None:
    data = sample_report().as_dict()
    mutate(data)
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=re.escape(str(path)) + ": .*" + message):
        load_report(path)


def test_report_refuses_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such report file"):
        load_report(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"format":\n  oops}')
    with pytest.raises(ConfigError, match=re.escape(f"{bad}:2:3: not valid JSON")):
        load_report(bad)
    with pytest.raises(ConfigError, match="expected a JSON object"):
        report_from_dict([1, 2], "x.json")


def test_rig_description() -> None:
    fields = parse_rig((HIL_DIR / "RIG.md").read_text(), "RIG.md")
    assert {"board", "lens", "source", "firmware"} <= set(fields)
    assert fields["board"] == "none"  # the comment after the value is not part of it
    with pytest.raises(ConfigError, match=r"RIG\.md: no ```rig block"):
        parse_rig("# nothing here\n", "RIG.md")
    with pytest.raises(ConfigError, match=r"RIG\.md:3: expected 'key: value'"):
        parse_rig("text\n```rig\nboard LMC\n```\n", "RIG.md")


def test_cli_hil_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from markstation.cli import main

    json_path, _ = write_report(sample_report("failed"), tmp_path / "hil-report.json")
    with pytest.raises(SystemExit) as done:
        main(["hil", "report", str(json_path)])
    assert done.value.code == 0
    assert capsys.readouterr().out == render_summary(sample_report("failed"))

    out = tmp_path / "summary.md"
    with pytest.raises(SystemExit) as done:
        main(["hil", "report", str(json_path), "-o", str(out), "--strict"])
    assert done.value.code == 2
    assert out.read_text().startswith("# Hardware-in-the-loop report — FAIL")
    assert "1 passed, 1 failed, 1 skipped" in capsys.readouterr().out

    with pytest.raises(SystemExit) as done:
        main(["hil", "report", str(tmp_path / "nope.json")])
    assert done.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no such report file" in err and err.count("\n") == 1


# --- the plugin, run inside pytester --------------------------------------------------------------


def plugin(pytester: pytest.Pytester) -> None:
    """Install the real hil_tests plugin (conftest + RIG.md) into the pytester directory."""
    pytester.makeconftest((HIL_DIR / "conftest.py").read_text())
    (pytester.path / "RIG.md").write_text((HIL_DIR / "RIG.md").read_text())


GATED = """
import pytest

@pytest.mark.emission
def test_fire(hil_url):
    pass

@pytest.mark.operator
def test_hand(hil_url):
    pass

def test_plain(hil_url, figures):
    figures("answer", 42)
"""


def run_report(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    report = pytester.path / "r" / "hil.json"
    result = pytester.runpytest("-p", "no:cacheprovider", "--hil-report", str(report), *args)
    return result, json.loads(report.read_text())


def test_plugin_defaults_to_both_simulators(pytester: pytest.Pytester) -> None:
    plugin(pytester)
    pytester.makepyfile(GATED)
    result, report = run_report(pytester)
    # on a simulator every check runs, emission and operator ones included
    result.assert_outcomes(passed=6)
    assert report["options"]["devices"] == ["sim://lmc", "sim://grbl"]
    assert {(c["device"], c["check"]) for c in report["checks"]} == {
        (d, c) for d in ("sim://lmc", "sim://grbl") for c in ("fire", "hand", "plain")
    }
    plain = [c for c in report["checks"] if c["check"] == "plain"]
    assert all(c["figures"] == {"answer": 42} for c in plain)
    assert report["rig"]["source"].startswith("simulator")


def test_plugin_skips_emission_and_operator_checks_on_real_hardware(
    pytester: pytest.Pytester,
) -> None:
    plugin(pytester)
    pytester.makepyfile(GATED)
    result, report = run_report(pytester, "--device", "usb://lmc")
    result.assert_outcomes(passed=1, skipped=2)
    by_check = {c["check"]: c for c in report["checks"]}
    assert by_check["fire"]["outcome"] == "skipped"
    assert "--allow-emission" in by_check["fire"]["reason"]
    assert by_check["fire"]["markers"] == ["emission"]
    assert "--operator" in by_check["hand"]["reason"]
    assert report["rig"]["fields"]["status"].startswith("template")  # a real run records RIG.md

    result, report = run_report(pytester, "--device", "usb://lmc", "--allow-emission", "--operator")
    result.assert_outcomes(passed=3)


def test_plugin_records_failures_and_setup_errors(pytester: pytest.Pytester) -> None:
    plugin(pytester)
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def broken():
            raise RuntimeError("cable on fire")

        def test_fails(hil_url, figures):
            figures("measured", 1.5)
            assert 1 == 2, "numbers disagree"

        def test_errors(hil_url, broken):
            pass

        def test_skips(hil_url):
            pytest.skip("not on this bench")
        """
    )
    result, report = run_report(pytester, "--device", "sim://lmc")
    result.assert_outcomes(failed=1, errors=1, skipped=1)
    by_check = {c["check"]: c for c in report["checks"]}
    assert by_check["fails"]["outcome"] == "failed"
    assert "numbers disagree" in by_check["fails"]["reason"]
    assert by_check["fails"]["figures"] == {"measured": 1.5}
    assert by_check["errors"]["outcome"] == "failed"
    assert by_check["errors"]["reason"].startswith("error in setup: RuntimeError: cable on fire")
    assert by_check["skips"] == {
        **by_check["skips"],
        "outcome": "skipped",
        "reason": "not on this bench",
    }
    summary = (pytester.path / "r" / "hil.md").read_text()
    assert "FAIL" in summary.splitlines()[0]


def test_plugin_default_report_path(pytester: pytest.Pytester) -> None:
    plugin(pytester)
    pytester.makepyfile("def test_plain(hil_url):\n    pass\n")
    result = pytester.runpytest("--device", "sim://lmc")
    result.assert_outcomes(passed=1)
    # a simulator-only run keeps the checkout clean: the report goes to pytest's cache
    assert not (pytester.path / "hil-report.json").exists()
    cached = pytester.path / ".pytest_cache" / "d" / "hil" / "hil-report.json"
    assert json.loads(cached.read_text())["checks"][0]["outcome"] == "passed"
    assert cached.with_suffix(".md").exists()
    result.stdout.fnmatch_lines(["*report: *hil-report.json*"])
    # a run against a real device leaves the report where the engineer stands
    result = pytester.runpytest("--device", "usb://lmc")
    assert (pytester.path / "hil-report.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--device", "lmc"], "hil: device URL 'lmc': expected scheme://"),
        (["--device", "ftp://lmc"], "unknown scheme 'ftp'"),
        (["--hil-repeat", "0"], "--hil-repeat 0: must be at least 1"),
        (["--hil-machine", "no-such-machine"], "no-such-machine"),
        (["--device", "sim://lmc", "--hil-machine", "grbl-marker"], "fits none of the devices"),
        (["--device", "usb://lmc", "--hil-rig", "absent.md"], "absent.md: cannot read"),
    ],
)
def test_plugin_usage_errors(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    plugin(pytester)
    pytester.makepyfile("def test_plain(hil_url):\n    pass\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_bench_hands_out_only_guarded_drivers(pytester: pytest.Pytester) -> None:
    plugin(pytester)
    pytester.makepyfile(
        """
        import sys
        import pytest
        from markstation.errors import EmissionNotAllowed
        from markstation.hil.guard import GuardedDriver
        from markstation.hil.jobs import square_job

        def test_guard(bench, monkeypatch):
            from test_hil_plugin import FakeDriver

            made = []

            def fake_open(url, machine):
                made.append(FakeDriver(url, machine))
                return made[-1]

            monkeypatch.setattr(sys.modules[type(bench).__module__], "open_device", fake_open)
            driver = bench.open()
            assert isinstance(driver, GuardedDriver)
            with pytest.raises(EmissionNotAllowed):
                driver.run(square_job(bench.machine, power_pct=5.0))
            assert driver.run(square_job(bench.machine, power_pct=0.0)).complete
            assert [j.layers[0].params.power_pct for j in made[0].runs] == [0.0]
        """
    )
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--device", "usb://lmc", "--hil-report", "r.json"
    )
    result.assert_outcomes(passed=1)


def _read_all(fd: int) -> bytes:
    """Everything the terminal holds: the echo of what was typed comes first, the prompt after it."""
    import select

    out = b""
    while select.select([fd], [], [], 0.5)[0]:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        out += chunk
    return out


@pytest.mark.timeout(60)
def test_operator_prompts_on_the_terminal(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin(pytester)
    pytester.makepyfile(
        """
        def test_ask(operator):
            assert operator.confirm("Did the pointer trace a square?")
        """
    )
    master, slave = os.openpty()
    try:
        os.write(master, b"y\n")
        monkeypatch.setenv("MARKSTATION_HIL_TTY", os.ttyname(slave))
        result = pytester.runpytest("-p", "no:cacheprovider", "--operator")
        result.assert_outcomes(passed=1)
        assert b"Did the pointer trace a square? [y/N]" in _read_all(master)
    finally:
        os.close(master)
        os.close(slave)

    # nobody at a terminal: the check is skipped with the reason, never hangs
    monkeypatch.setenv("MARKSTATION_HIL_TTY", str(pytester.path / "no-tty"))
    result = pytester.runpytest("-p", "no:cacheprovider", "--operator", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no terminal for operator prompts*"])
    # without --operator nobody is asked at all
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*needs an operator at the bench: pass --operator*"])


FAKE_MARKER = """
import json
import os
import time

from markstation.devices import registry
from markstation.devices.base import DeviceInfo, Driver, Inputs, RunResult
from markstation.errors import Aborted


class FakeMarker(Driver):
    \"\"\"Stands in for a real board on usb://lmc and logs every job it is asked to run.\"\"\"

    def __init__(self, url, machine):
        super().__init__(url, machine)
        self.protocol = machine.protocol

    @classmethod
    def from_url(cls, url, machine):
        return cls(url.raw, machine)

    def _log(self, kind, job):
        powers = [layer.params.power_pct for layer in job.layers]
        with open(os.environ["HIL_FAKE_LOG"], "a") as f:
            f.write(json.dumps({"kind": kind, "powers": powers}) + "\\n")

    def _open(self):
        pass

    def _close(self):
        pass

    def _info(self):
        return DeviceInfo(self.url, self.protocol, "fake marker", "0.0", "FAKE", simulated=False)

    def _read_inputs(self):
        return Inputs(raw=0, pedal_pressed=False, interlock_closed=True)

    def _run(self, job, listener):
        self._log("run", job)
        listener.on_emission_possible()
        for step in range(20):
            if self.abort_requested:
                raise Aborted("aborted", may_have_emitted=True)
            listener.on_progress(step / 20, 0.0)
            time.sleep(0.005)
        return RunResult(complete=True, elapsed_s=0.1)

    def _frame(self, job, stop):
        self._log("frame", job)
        traces = 1
        while not stop():
            traces += 1
        return traces

    def _abort(self):
        pass

    def _emission_off(self):
        pass


def pytest_configure(config):
    registry.DRIVERS[("usb", "lmc")] = "fakehw:FakeMarker"
"""


@pytest.mark.timeout(300)
def test_whole_suite_never_emits_on_real_hardware_without_permission(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("conftest.py", "test_contract.py", "RIG.md"):
        (pytester.path / name).write_text((HIL_DIR / name).read_text())
    (pytester.path / "fakehw.py").write_text(FAKE_MARKER)
    log = pytester.path / "sent.jsonl"
    monkeypatch.setenv("HIL_FAKE_LOG", str(log))
    common = (
        "-p",
        "fakehw",
        "-p",
        "no:cacheprovider",
        "--device",
        "usb://lmc",
        "--hil-repeat",
        "3",
    )

    pytester.runpytest_subprocess(*common, "--hil-report", "plain.json", timeout=240)
    sent = [json.loads(line) for line in log.read_text().splitlines()]
    report = load_report(pytester.path / "plain.json")
    assert any(s["kind"] == "run" for s in sent) and any(s["kind"] == "frame" for s in sent)
    assert all(p == 0 for s in sent if s["kind"] == "run" for p in s["powers"]), sent
    emission_checks = [c for c in report.checks if "emission" in c.markers]
    assert len(emission_checks) == 2
    assert all(c.outcome == "skipped" for c in emission_checks)
    assert report.devices["usb://lmc"]["model"] == "fake marker"

    # the log is not blind: with permission the emission checks do send power
    log.unlink()
    pytester.runpytest_subprocess(
        *common, "--allow-emission", "-k", "minimal_power or material_grid", timeout=240
    )
    sent = [json.loads(line) for line in log.read_text().splitlines()]
    assert any(p > 0 for s in sent for p in s["powers"])


def test_cli_hil_grid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from markstation.cli import main

    out = tmp_path / "grid.svg"
    with pytest.raises(SystemExit) as done:
        main(["hil", "grid", "--machine", "grbl-marker", "--powers", "5,50", "-o", str(out)])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "2 powers × 5 speeds" in text and "P5, P50" in text and "S200" in text
    assert out.read_text().lstrip().startswith("<")

    for args, message in [
        (["--powers", "99"], "power 99 % is outside 0..90 %"),
        (["--speeds", "fast"], "--speeds 'fast': expected numbers"),
        (["--powers", ","], "--powers ',': give at least one number"),
        (["-o", str(tmp_path / "grid.gif")], "must be a .png or .svg file"),
    ]:
        with pytest.raises(SystemExit) as done:
            main(["hil", "grid", *args])
        assert done.value.code == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_guard_forwards_unlock_only_where_the_driver_has_one() -> None:
    from markstation.errors import DeviceError

    class Lockable(FakeDriver):
        def unlock(self) -> str:
            return "[MSG:Caution: Unlocked]"

    assert GuardedDriver(Lockable("usb://x", GRBL), allow_emission=False).unlock().endswith("ed]")
    with pytest.raises(DeviceError, match="no alarm lock"):
        GuardedDriver(FakeDriver("usb://lmc", LMC), allow_emission=False).unlock()
