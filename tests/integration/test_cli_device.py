"""``markstation devices | info | frame | mark`` on the simulated LMC board, and their refusals."""

from __future__ import annotations

import _thread
import threading
import time
from pathlib import Path

import pytest

from markstation.cli import main
from markstation.cli.device import count_stop
from markstation.cli.progress import run_with_progress
from markstation.devices.lmc.driver import LmcDriver
from markstation.devices.registry import open_device
from markstation.devices.sim.ledger import read_jobs
from markstation.errors import Aborted
from markstation.job.ir import Job, Layer, MarkParams, Polyline
from markstation.profiles import load_machine

CODE = "PE-SUCAMEC-2016-000123"


def run_cli(
    args: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    stdin: str = "",
) -> tuple[int, str, str]:
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    with pytest.raises(SystemExit) as info:
        main(args)
    out, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 1), out, err


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_devices_lists_the_simulators(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run_cli(["devices"], capsys, monkeypatch)
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["URL", "MODEL", "FIRMWARE", "SERIAL", "SIMULATED"]
    lmc = [r.split() for r in rows if r.startswith("sim://lmc ")]
    assert lmc == [["sim://lmc", "LMC", "(BJJCZ)", "4C02.0009", "SIM0001", "yes"]]
    assert any(r.startswith("sim://grbl ") for r in rows)  # listed by the GRBL driver
    real = [r for r in rows if not r.rstrip().endswith("yes")]
    assert ("no real marker found" in err) == (not real)


@pytest.mark.timeout(30)
def test_info_on_the_simulated_board(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run_cli(["info", "--device", "sim://lmc?serial=XY7"], capsys, monkeypatch)
    assert code == 0
    rows = dict(line.split(None, 1) for line in out.splitlines())
    assert rows["model"] == "LMC (BJJCZ)"
    assert rows["firmware"] == "4C02.0009"
    assert rows["serial"] == "XY7"
    assert rows["simulated"] == "yes"
    assert rows["machine"] == "lmc-fiber-110"
    assert rows["pedal"] == "released" and rows["interlock"] == "closed"


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["info", "--device", "sim://lmc?bogus=1"], 1, "unknown option 'bogus'"),
        (["info", "--device", "lmc"], 1, "expected scheme://"),
        (["info", "--device", "sim://lmc", "--machine", "nope"], 1, "unknown machine 'nope'"),
        (["info", "--device", "usb://lmc"], 2, "no LMC board (USB 9588:9899) found"),
        (["info", "--device", "sim://lmc?fault=disconnect@3"], 2, "the board went away"),
        (["mark", "XX-1", "--device", "sim://lmc", "--yes"], 1, "does not match"),
        (
            ["mark", CODE, "--device", "sim://lmc", "--material", "unobtainium", "--yes"],
            1,
            "unobtainium",
        ),
        (["frame", CODE, "--device", "sim://lmc?x=1", "--count", "1"], 1, "unknown option 'x'"),
    ],
)
@pytest.mark.timeout(60)
def test_refusals_are_one_line(
    args: list[str],
    status: int,
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, _, err = run_cli(args, capsys, monkeypatch)
    assert code == status
    assert message in one_line_error(err)


@pytest.mark.timeout(60)
def test_mark_yes_marks_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    code, out, _ = run_cli(
        ["mark", CODE, "--device", f"sim://lmc?ledger={ledger}", "--yes"], capsys, monkeypatch
    )
    assert code == 0, out
    rows = dict(line.split(None, 1) for line in out.splitlines() if not line.startswith("marked"))
    assert rows["code"] == CODE and rows["layout"] == "secondary-mark"
    assert rows["estimate"].endswith(" s") and "×" in rows["size"]
    assert "LMC (BJJCZ)" in rows["device"] and "(simulated)" in rows["device"]
    assert f"marked {CODE}: device mark time" in out
    jobs = read_jobs(ledger)
    assert len(jobs) == 1 and jobs[0].complete and jobs[0].polylines


@pytest.mark.timeout(60)
def test_mark_asks_first_and_no_means_nothing_fires(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    url = f"sim://lmc?ledger={ledger}"
    code, _, err = run_cli(["mark", CODE, "--device", url], capsys, monkeypatch, stdin="n\n")
    assert code == 1 and "not confirmed; nothing was marked" in err
    assert read_jobs(ledger) == []
    code, out, _ = run_cli(["mark", CODE, "--device", url], capsys, monkeypatch, stdin="y\n")
    assert code == 0 and "marked" in out
    assert len(read_jobs(ledger)) == 1


@pytest.mark.timeout(60)
def test_mark_device_failure_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run_cli(
        ["mark", CODE, "--device", "sim://lmc?fault=reset@60", "--yes"], capsys, monkeypatch
    )
    assert code == 2
    assert "the board reset itself" in one_line_error(err)


@pytest.mark.timeout(60)
def test_frame_count(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run_cli(
        ["frame", CODE, "--device", "sim://lmc", "--count", "2"], capsys, monkeypatch
    )
    assert code == 0
    assert f"framed {CODE}: 2 trace(s)" in out


@pytest.mark.timeout(60)
def test_frame_until_enter(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # stdin already holds the Enter: at least one trace, then stop
    code, out, err = run_cli(["frame", CODE, "--device", "sim://lmc"], capsys, monkeypatch, "\n")
    assert code == 0 and "press Enter to stop" in err
    assert "trace(s)" in out


def test_count_stop_counts_calls() -> None:
    stop = count_stop(3)
    assert [stop(), stop(), stop()] == [False, False, True]


def slow_job() -> Job:
    lines = tuple(Polyline(tuple((-5.0 + k / 6, -5.0 + i) for k in range(61))) for i in range(10))
    return Job(layers=(Layer("lines", MarkParams(20, 50, 30), lines),))


@pytest.mark.timeout(60)
def test_ctrl_c_during_mark_aborts_with_emission_off() -> None:
    driver = open_device("sim://lmc?timing=realtime", load_machine("lmc-fiber-110"))
    assert isinstance(driver, LmcDriver)
    with driver:
        board = driver.simulator

        def press_ctrl_c() -> None:
            deadline = time.monotonic() + 10
            while not board.emitting and time.monotonic() < deadline:
                time.sleep(0.002)
            _thread.interrupt_main()

        threading.Thread(target=press_ctrl_c, daemon=True).start()
        with pytest.raises(Aborted, match=r"Ctrl-C.*partly marked") as info:
            run_with_progress(driver, slow_job(), show_bar=False)
        assert info.value.may_have_emitted is True
        assert not board.running and not board.emitting and not board.mo_open
        assert board.runs[-1].complete is False


def test_unlock_clears_grbl_and_refuses_lmc(capsys: pytest.CaptureFixture[str]) -> None:
    from markstation.cli import main

    with pytest.raises(SystemExit) as info:
        main(["unlock", "--device", "sim://grbl?link=ideal", "--yes"])
    assert info.value.code == 0
    assert "unlocked" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        main(["unlock", "--device", "sim://lmc", "--yes"])
    assert info.value.code == 1
    assert "has no alarm lock" in capsys.readouterr().err
