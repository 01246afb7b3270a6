"""The runner against a scripted fake driver: intent before emission, outcome mapping, operator flow."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from _queue_fakes import (
    FakeDriver,
    dump_db,
    fast_builder,
    fast_estimator,
    sample_rows,
    state_of,
    write_csv,
)
from markstation.errors import JobError, StoreError
from markstation.job.ir import Job
from markstation.profiles import LayoutProfile, MachineProfile, MaterialProfile
from markstation.queue.batch import import_batch
from markstation.queue.decisions import resolve
from markstation.queue.identity import serial_matches
from markstation.queue.journal import verify
from markstation.queue.models import Actor, Item
from markstation.queue.operator import Action, Inspection, QuietUI, RunSummary
from markstation.queue.runner import run_batch
from markstation.queue.sqlite import SqliteStore
from markstation.queue.states import State

ACTOR = Actor("J. Quispe", "station-1")


def _store(tmp_path: Path, n: int = 3) -> SqliteStore:
    store = SqliteStore(tmp_path / "m.db", actor=ACTOR)
    import_batch(write_csv(tmp_path / "b.csv", sample_rows(n)), store, actor=ACTOR)
    return store


def _run(store: SqliteStore, driver: FakeDriver, ui: object = None, **kw: object) -> RunSummary:
    return run_batch(
        store,
        lambda: driver,
        operator=ACTOR.operator,
        station=ACTOR.station,
        ui=ui or QuietUI(),  # type: ignore[arg-type]
        auto=kw.pop("auto", True),  # type: ignore[arg-type]
        build=kw.pop("build", fast_builder),  # type: ignore[arg-type]
        estimator=fast_estimator,
        **kw,  # type: ignore[arg-type]
    )


class ScriptedUI(QuietUI):
    """Answers from lists, in order; records what it was shown."""

    def __init__(
        self,
        serials: list[str | Action] | None = None,
        ready: list[Action] | None = None,
        inspections: list[Inspection] | None = None,
        after_failure: list[Action] | None = None,
        use_pedal: bool = False,
    ) -> None:
        super().__init__()
        self.serials = serials or []
        self.readies = ready or []
        self.inspections = inspections or []
        self.failures = after_failure or []
        self.use_pedal = use_pedal
        self.shown: list[str] = []
        self.progress_calls: list[tuple[float, float]] = []

    def show_item(self, item: Item, position: int, total: int) -> None:
        self.shown.append(item.code)

    def ask_serial(self, item: Item) -> str | Action:
        return self.serials.pop(0) if self.serials else item.serial

    def ready(self, item: Item, estimate_s: float, pedal: Callable[[], bool]) -> Action:
        if self.use_pedal:
            for _ in range(100):
                if pedal():
                    return Action.START
            return Action.QUIT
        return self.readies.pop(0) if self.readies else Action.START

    def progress(self, fraction: float, elapsed_s: float, remaining_s: float) -> None:
        self.progress_calls.append((fraction, remaining_s))

    def inspect(self, item: Item) -> Inspection:
        return self.inspections.pop(0) if self.inspections else Inspection("pass")

    def after_failure(self, item: Item, reason: str) -> Action:
        return self.failures.pop(0) if self.failures else Action.QUIT


def test_auto_run_marks_everything_with_intent_on_disk_first(tmp_path: Path) -> None:
    store = _store(tmp_path)
    seen: list[str | None] = []

    def check(job: Job) -> None:
        # another connection (another process, after a power cut) already sees the intent
        seen.append(state_of(store.path, job.meta_dict()["mark_code"]))

    driver = FakeDriver(before_run=check)
    summary = _run(store, driver)
    assert seen == ["marking"] * 3
    assert len(summary.marked) == 3 and summary.remaining == 0 and summary.stopped is None
    assert all(
        it.state is State.MARKED and it.inspection == "not-inspected" for it in store.items()
    )
    types = [r.type for r in store.records()]
    assert types == ["batch-imported", "run-started"] + ["item-started", "device-outcome"] * 3 + [
        "run-finished"
    ]
    head = verify(store.records())
    assert head.records == len(types)
    started = next(r for r in store.records() if r.type == "item-started").payload
    assert started["device"]["serial"] == "FAKE-0001"
    assert set(started["profiles"]) == {"machine", "material", "layout"}
    assert started["profiles"]["layout"]["name"] == "secondary-mark"
    assert len(started["job_sha256"]) == 64
    outcome = next(r for r in store.records() if r.type == "device-outcome").payload
    assert outcome["device_mark_time_s"] == 0.018 and outcome["outcome"] == "marked"
    assert driver.burned == [(it.code, True) for it in store.items()]


def test_second_run_has_nothing_to_do(tmp_path: Path) -> None:
    store = _store(tmp_path, 2)
    _run(store, FakeDriver())
    driver = FakeDriver()
    summary = _run(store, driver)
    assert driver.runs == 0 and summary.marked == []


def test_refusal_before_emission_is_failed_and_retried_next_run(tmp_path: Path) -> None:
    store = _store(tmp_path, 2)
    summary = _run(store, FakeDriver(["refuse"]))
    first = store.items()[0]
    assert first.state is State.FAILED and "InterlockOpen" in (first.reason or "")
    assert summary.failed == [first.code] and summary.stopped  # auto mode stops on a refusal
    assert store.items()[1].state is State.PENDING
    driver = FakeDriver()
    _run(store, driver)
    assert [it.state for it in store.items()] == [State.MARKED, State.MARKED]
    assert store.items()[0].attempts == 2


@pytest.mark.parametrize("outcome", ["abort", "timeout", "disconnect", "incomplete"])
def test_unclear_outcomes_are_interrupted_and_never_retried(tmp_path: Path, outcome: str) -> None:
    store = _store(tmp_path, 3)
    summary = _run(store, FakeDriver([outcome]))
    code = store.items()[0].code
    assert summary.interrupted == [code] and summary.stopped
    assert store.item(code).state is State.INTERRUPTED  # type: ignore[union-attr]
    # the next run goes on with the others and leaves the interrupted one alone
    driver = FakeDriver()
    _run(store, driver)
    assert [c for c, _ in driver.burned] == [it.code for it in store.items()[1:]]
    assert store.item(code).state is State.INTERRUPTED  # type: ignore[union-attr]


def test_resolution_paths(tmp_path: Path) -> None:
    store = _store(tmp_path, 2)
    _run(store, FakeDriver(["timeout"]))
    a = store.items()[0].code
    resolve(store, a, marked=False, reason="no trace on the slide", actor=ACTOR)
    assert store.item(a).state is State.PENDING  # type: ignore[union-attr]
    _run(store, FakeDriver(["disconnect"]))
    resolve(store, a, marked=True, reason="mark complete under the loupe", actor=ACTOR)
    item = store.item(a)
    assert item is not None and item.state is State.MARKED
    driver = FakeDriver()
    _run(store, driver)
    assert a not in [c for c, _ in driver.burned]
    kinds = [r.type for r in store.records() if r.payload.get("code") == a]
    assert kinds.count("resolution") == 2
    verify(store.records())


def test_interactive_flow_serial_frame_inspection(tmp_path: Path) -> None:
    store = _store(tmp_path, 2)
    items = store.items()
    ui = ScriptedUI(
        serials=["WRONG", items[0].serial.lower(), items[1].serial],
        ready=[Action.FRAME, Action.START, Action.START],
        inspections=[Inspection("fail", "shallow on the left"), Inspection("pass")],
    )
    driver = FakeDriver()
    summary = _run(store, driver, ui, auto=False)
    assert any("serial mismatch: WRONG" in m for m in ui.messages)
    assert driver.frames >= 1
    first, second = store.items()
    assert first.state is State.MARKED and first.inspection == "fail"
    assert first.inspection_note == "shallow on the left"
    assert second.inspection == "pass"
    assert summary.inspection_failed == [first.code]
    assert [r.type for r in store.records()].count("inspection") == 2
    assert ui.progress_calls and ui.progress_calls[-1][0] == 1.0


def test_operator_skip_and_quit_leave_items_pending(tmp_path: Path) -> None:
    store = _store(tmp_path, 3)
    ui = ScriptedUI(serials=[Action.SKIP, Action.QUIT])
    driver = FakeDriver()
    summary = _run(store, driver, ui, auto=False)
    assert driver.runs == 0
    assert summary.stopped == "operator quit" and len(summary.passed_over) == 1
    assert all(it.state is State.PENDING for it in store.items())


def test_pedal_starts_the_mark(tmp_path: Path) -> None:
    store = _store(tmp_path, 1)
    driver = FakeDriver()
    driver.pedal = True
    _run(store, driver, ScriptedUI(use_pedal=True), auto=False)
    assert store.items()[0].state is State.MARKED


def test_failure_retry_in_interactive_mode(tmp_path: Path) -> None:
    store = _store(tmp_path, 1)
    ui = ScriptedUI(after_failure=[Action.RETRY])
    _run(store, FakeDriver(["refuse", "ok"]), ui, auto=False)
    item = store.items()[0]
    assert item.state is State.MARKED and item.attempts == 2


@pytest.mark.timeout(30)
def test_ctrl_c_aborts_emission_and_leaves_interrupted(tmp_path: Path) -> None:
    store = _store(tmp_path, 2)

    class CtrlC(FakeDriver):
        def _run(self, job: Job, listener: object) -> object:  # type: ignore[override]
            self.emission_on = True
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(400):  # a real board keeps going until told to stop
                if self.aborts:
                    break
                time.sleep(0.005)
            from markstation.errors import Aborted

            raise Aborted("stopped")

    driver = CtrlC()
    summary = _run(store, driver)
    assert driver.aborts >= 1 and not driver.emission_on
    assert summary.interrupted == [store.items()[0].code]
    assert summary.stopped and "Ctrl-C" in summary.stopped
    assert store.items()[1].state is State.PENDING
    # the default SIGINT handler is back
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.timeout(30)
def test_estop_input_aborts(tmp_path: Path) -> None:
    store = _store(tmp_path, 1)
    driver = FakeDriver(estop_after_progress=True)
    summary = _run(store, driver)
    assert driver.aborts >= 1
    assert summary.stopped == "aborted by e-stop input"
    assert store.items()[0].state is State.INTERRUPTED


def test_bug_in_driver_is_interrupted_and_reraised(tmp_path: Path) -> None:
    store = _store(tmp_path, 1)

    class Buggy(FakeDriver):
        def _run(self, job: Job, listener: object) -> object:  # type: ignore[override]
            raise RuntimeError("oops")

    with pytest.raises(RuntimeError):
        _run(store, Buggy())
    assert store.items()[0].state is State.INTERRUPTED
    assert store.runner_info() is None  # the lock was released


def test_job_refused_leaves_item_pending(tmp_path: Path) -> None:
    store = _store(tmp_path, 2)

    def picky(
        code: str, layout: LayoutProfile, material: MaterialProfile, machine: MachineProfile
    ) -> Job:
        if code.endswith("1"):
            raise JobError("text leaves the safe area")
        return fast_builder(code, layout, material, machine)

    summary = _run(store, FakeDriver(), build=picky)
    first, second = store.items()
    assert first.state is State.PENDING and second.state is State.MARKED
    assert summary.refused == [first.code]
    assert any(r.type == "job-refused" for r in store.records())


def test_item_changed_by_another_command_is_passed_over(tmp_path: Path) -> None:
    store = _store(tmp_path, 2)
    other = SqliteStore(store.path, actor=ACTOR)
    victim = store.items()[1].code

    def skip_second(job: Job) -> None:
        if job.meta_dict()["mark_code"] != victim:
            from markstation.queue.decisions import skip

            skip(other, victim, reason="firearm not in the armoury", actor=ACTOR)

    driver = FakeDriver(before_run=skip_second)
    summary = _run(store, driver)
    other.close()
    assert victim not in summary.marked and victim not in [c for c, _ in driver.burned]
    assert store.item(victim).state is State.SKIPPED  # type: ignore[union-attr]


def test_only_one_runner(tmp_path: Path) -> None:
    store = _store(tmp_path, 1)
    holder = SqliteStore(store.path, actor=ACTOR)
    holder.acquire_runner(ACTOR)
    before = dump_db(store.path)
    with pytest.raises(StoreError, match="another runner"):
        _run(store, FakeDriver())
    assert dump_db(store.path) == before
    holder.close()


def test_real_job_builder_hash_is_journaled(tmp_path: Path) -> None:
    from markstation.job.layout import build_job
    from markstation.profiles import load_layout, load_machine, load_material

    store = _store(tmp_path, 1)
    code = store.items()[0].code
    run_batch(store, lambda: FakeDriver(), operator="a", station="b", ui=QuietUI(), auto=True)
    expected = build_job(
        code,
        layout=load_layout("secondary-mark"),
        material=load_material("blued-steel"),
        machine=load_machine("lmc-fiber-110"),
    ).sha256()
    assert store.items()[0].job_sha256 == expected
    started = next(r for r in store.records() if r.type == "item-started")
    assert started.payload["job_sha256"] == expected


def test_serial_matching() -> None:
    assert serial_matches("AB-123", "ab 123")
    assert not serial_matches("AB-123", "AB-124")
    assert not serial_matches("AB-123", "  ")


def _twin_store(tmp_path: Path) -> SqliteStore:
    """Two rows for one weapon (an ASCII '-' and a U+2010 hyphen), plus an honest third row."""
    from markstation.queue.models import NewItem

    store = SqliteStore(tmp_path / "m.db", actor=ACTOR)
    rows = [("0001", "AB-123"), ("0002", "AB\u2010123"), ("0003", "ZZ-999")]
    store.import_batch(
        file="b.csv",
        sha256="0" * 64,
        items=[
            NewItem(
                code=f"PE-SUCAMEC-2026-00{n}",
                serial=s,
                make="Glock",
                layout="secondary-mark",
                line=i,
            )
            for i, (n, s) in enumerate(rows, 2)
        ],
        actor=ACTOR,
    )
    return store


@pytest.mark.parametrize("auto", [True, False])
def test_one_weapon_for_two_rows_is_refused_and_journaled(tmp_path: Path, auto: bool) -> None:
    store = _twin_store(tmp_path)
    driver = FakeDriver()
    ui = ScriptedUI(serials=["\uff3a\uff3a\u2010999"])  # fullwidth ＺＺ‐999 for the third row
    summary = _run(store, driver, ui=ui, auto=auto)
    assert [c for c, _ in driver.burned] == ["PE-SUCAMEC-2026-000003"]
    assert summary.refused == ["PE-SUCAMEC-2026-000001", "PE-SUCAMEC-2026-000002"]
    refused = [r for r in store.records() if r.type == "serial-refused"]
    assert [r.payload["code"] for r in refused] == [
        "PE-SUCAMEC-2026-000001",
        "PE-SUCAMEC-2026-000002",
    ]
    assert "same firearm as item PE-SUCAMEC-2026-000002" in refused[0].payload["reason"]
    assert state_of(store.path, "PE-SUCAMEC-2026-000001") == "pending"
    store.check_items_against_journal()


def test_typed_serial_of_another_row_is_a_journaled_mismatch(tmp_path: Path) -> None:
    store = _store(tmp_path, 2)
    first, second = store.items()
    ui = ScriptedUI(serials=[second.serial.lower(), Action.SKIP])
    summary = _run(store, FakeDriver(), ui=ui, auto=False, limit=1)
    assert summary.passed_over == [first.code]
    rec = next(r for r in store.records() if r.type == "serial-refused")
    assert rec.payload["code"] == first.code and rec.payload["typed"] == second.serial.lower()
    assert f"that of item {second.code}" in rec.payload["reason"]
    assert any(second.code in m for m in ui.messages)


def test_look_alike_typed_serial_is_accepted(tmp_path: Path) -> None:
    store = _store(tmp_path, 1)
    item = store.items()[0]
    fancy = "\u200b" + "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else c for c in item.serial)
    summary = _run(store, FakeDriver(), ui=ScriptedUI(serials=[fancy]), auto=False)
    assert summary.marked == [item.code]


@pytest.mark.timeout(30)
def test_a_device_error_on_the_watcher_thread_is_never_marked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the driver reports completion, but the e-stop watcher's poll failed meanwhile (issue 16:
    # a board reset that lands on the watcher's poll): completion is unproven -> interrupted
    from markstation.devices.abort import AbortGuard
    from markstation.devices.base import Driver, Inputs, RunListener, RunResult
    from markstation.errors import DeviceReset

    class ResetOnPoll(FakeDriver):
        running = False

        def _read_inputs(self) -> Inputs:
            if self.running:
                raise DeviceReset("the board reset itself")
            return super()._read_inputs()

        def _run(self, job: Job, listener: RunListener) -> RunResult:
            self.running = True
            listener.on_emission_possible()
            time.sleep(0.1)  # the watcher polls (every 1 ms here) while the list "runs"
            return super()._run(job, listener)

    class FastGuard(AbortGuard):
        def __init__(self, driver: Driver, **kw: object) -> None:
            super().__init__(driver, estop=True, poll_s=0.001)

    monkeypatch.setattr("markstation.queue.runner.AbortGuard", FastGuard)
    store = _store(tmp_path, 2)
    summary = _run(store, ResetOnPoll())
    first = store.items()[0]
    assert first.state is State.INTERRUPTED
    assert first.reason is not None and "watcher" in first.reason
    assert summary.interrupted == [first.code] and store.items()[1].state is State.PENDING
