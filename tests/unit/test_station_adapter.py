"""The browser operator adapter driving the real runner (run_batch) over a real store, fake device."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from _queue_fakes import FakeDriver, fast_builder, fast_estimator, sample_rows, write_csv
from markstation.devices.base import RunListener, RunResult
from markstation.errors import Aborted
from markstation.job.ir import Job
from markstation.queue.batch import import_batch
from markstation.queue.models import Actor
from markstation.queue.runner import AbortButton, run_batch
from markstation.queue.sqlite import SqliteStore
from markstation.queue.states import State
from markstation.station.adapter import BrowserOperator, CommandRefused, Phase, StationClosing

ACTOR = Actor("Juan", "bench")


class SlowDriver(FakeDriver):
    """Marks until aborted (at most 5 s), like a long job on a real board."""

    def _run(self, job: Job, listener: RunListener) -> RunResult:
        self.runs += 1
        listener.on_emission_possible()
        self.emission_on = True
        listener.on_progress(0.1, 0.01)
        deadline = time.monotonic() + 5.0
        while not self.abort_requested and time.monotonic() < deadline:
            time.sleep(0.002)
        code = job.meta_dict().get("mark_code", "")
        self.burned.append((code, False))
        raise Aborted("aborted")


def wait_phase(ui: BrowserOperator, phase: Phase, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    version = -1
    while ui.phase is not phase:
        left = deadline - time.monotonic()
        assert left > 0, f"phase {ui.phase}, wanted {phase}"
        version = ui.wait_version(version, left)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "c.db"
    with SqliteStore(path) as store:
        import_batch(write_csv(tmp_path / "b.csv", sample_rows(2)), store, actor=ACTOR)
    return path


def run_in_thread(db: Path, ui: BrowserOperator, driver: FakeDriver) -> Iterator[threading.Thread]:
    def work() -> None:
        with SqliteStore(db) as store, contextlib.suppress(StationClosing):
            run_batch(
                store,
                lambda: driver,
                operator=ACTOR.operator,
                station=ACTOR.station,
                ui=ui,
                build=fast_builder,
                estimator=fast_estimator,
                poll_estop=False,
            )

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    yield thread
    ui.close()
    thread.join(10)
    assert not thread.is_alive()


def test_adapter_is_an_abort_button() -> None:
    assert isinstance(BrowserOperator(), AbortButton)


def test_one_item_through_the_runner(db: Path) -> None:
    ui = BrowserOperator()
    driver = FakeDriver()
    for _thread in run_in_thread(db, ui, driver):
        wait_phase(ui, Phase.SERIAL)
        assert ui.item is not None
        code = ui.item.code
        with pytest.raises(CommandRefused):
            ui.submit("mark", code)  # not before the serial
        with pytest.raises(CommandRefused):
            ui.submit("serial", "PE-SUCAMEC-2026-999999", "SN00001")  # not the item on screen
        ui.submit("serial", code, "WRONG")
        with pytest.raises(CommandRefused):
            ui.submit("serial", code, "WRONG")  # one command at a time
        wait_phase(ui, Phase.SERIAL)
        assert ui.error == "mismatch:WRONG"
        assert driver.runs == 0
        ui.submit("serial", code, "SN00001")
        wait_phase(ui, Phase.READY)
        assert ui.estimate_s == 0.5
        ui.submit("frame", code)  # the fake traces a few times and stops by itself
        wait_phase(ui, Phase.READY)
        assert driver.frames >= 1 and driver.runs == 0
        ui.submit("mark", code)
        wait_phase(ui, Phase.INSPECT)
        assert driver.runs == 1
        ui.submit("pass", code, "clean mark")
        wait_phase(ui, Phase.SERIAL)
        assert ui.item.code != code
    with SqliteStore(db, recover=False) as store:
        item = store.item(code)
        assert item is not None and item.state is State.MARKED
        assert item.inspection == "pass" and item.inspection_note == "clean mark"


def test_abort_triggers_the_runs_guard(db: Path) -> None:
    ui = BrowserOperator()
    driver = SlowDriver()
    for _thread in run_in_thread(db, ui, driver):
        wait_phase(ui, Phase.SERIAL)
        assert ui.item is not None
        code = ui.item.code
        assert ui.abort("too early") is False  # nothing can emit yet
        ui.submit("serial", code, "SN00001")
        wait_phase(ui, Phase.READY)
        ui.submit("mark", code)
        wait_phase(ui, Phase.MARKING)
        started = time.monotonic()
        assert ui.abort("Abort button") is True
        deadline = time.monotonic() + 5
        while ui.outcome != "interrupted":
            assert time.monotonic() < deadline
            ui.wait_version(ui.version, 0.5)
        assert time.monotonic() - started < 2.0
        assert driver.burned == [(code, False)]
        assert not driver.emission_on
    with SqliteStore(db, recover=False) as store:
        item = store.item(code)
        assert item is not None and item.state is State.INTERRUPTED
    assert ui.summary_data is not None
    assert "Abort button" in str(ui.summary_data["stopped"])


def test_pedal_starts_the_mark(db: Path) -> None:
    ui = BrowserOperator()
    driver = FakeDriver()
    for _thread in run_in_thread(db, ui, driver):
        wait_phase(ui, Phase.SERIAL)
        assert ui.item is not None
        ui.submit("serial", ui.item.code, "SN00001")
        wait_phase(ui, Phase.READY)
        driver.pedal = True
        wait_phase(ui, Phase.INSPECT)
        driver.pedal = False
        assert driver.runs == 1


def test_closing_the_station_stops_the_run(db: Path) -> None:
    ui = BrowserOperator()
    driver = FakeDriver()
    threads = run_in_thread(db, ui, driver)
    next(threads)
    wait_phase(ui, Phase.SERIAL)
    ui.close()
    with pytest.raises(StopIteration):
        next(threads)
    assert driver.runs == 0
