"""The batch runner: one firearm after another, exactly once each.

Per item: show the firearm, confirm its factory serial, build the job, (frame), wait for Enter or the
pedal, **commit the ``marking`` intent (fsynced)**, then call ``driver.run()``, then record what the
device reported. The mapping from what happened to the item's state is the heart of exactly-once:

* the device reported completion                        -> ``marked`` (inspection recorded after)
* a DeviceError with ``may_have_emitted`` False
  (refused limits, interlock open before start, …)     -> ``failed``: nothing fired, safe to retry
* anything else: Aborted (Ctrl-C, e-stop), timeout or
  disconnect mid-run, reset, incomplete, a crash        -> ``interrupted``: never retried
  automatically, an operator inspects the firearm and runs ``batch resolve``.

A process killed between the intent and the outcome leaves ``marking``; the next store open turns it
into ``interrupted`` (see :meth:`Store.recover`). After ``interrupted`` the run stops, so the
technician deals with that firearm before the next one; in ``--auto`` mode it also stops after
``failed`` (a device that refuses once usually refuses again).
"""

from __future__ import annotations

import contextlib
import csv
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from markstation.devices.base import Driver, RunResult
from markstation.errors import BatchError, ConfigError, DeviceError, JobError, MarkstationError
from markstation.job.ir import Job
from markstation.profiles import (
    DEFAULT_MACHINE,
    LayoutProfile,
    MachineProfile,
    MaterialProfile,
    load_layout,
    load_machine,
    load_material,
)
from markstation.queue.operator import Action, Inspection, OperatorUI, RunSummary
from markstation.queue.states import RUNNABLE, State
from markstation.queue.store import Actor, Item, Store

#: (code, layout, material, machine) -> Job; the job builder, injectable for tests
JobBuilder = Callable[[str, LayoutProfile, MaterialProfile, MachineProfile], Job]
#: Job -> estimated seconds
Estimator = Callable[[Job], float]

#: how often the e-stop input is polled while a job runs
ESTOP_POLL_S = 0.05


def default_builder(
    code: str, layout: LayoutProfile, material: MaterialProfile, machine: MachineProfile
) -> Job:
    from markstation.job.layout import build_verified_job

    return build_verified_job(code, layout=layout, material=material, machine=machine)


def default_estimator(job: Job) -> float:
    from markstation.job.estimate import estimate

    return float(estimate(job).total_s)


def serial_matches(expected: str, typed: str) -> bool:
    """A typed or scanned serial matches ignoring case, spaces and dashes (scanners differ)."""

    def norm(s: str) -> str:
        return "".join(ch for ch in s if ch.isalnum()).casefold()

    return bool(norm(typed)) and norm(typed) == norm(expected)


def profile_ref(profile: MachineProfile | MaterialProfile | LayoutProfile) -> dict[str, str]:
    return {"name": profile.name, "sha256": profile.sha256}


@dataclass
class _Outcome:
    state: State
    reason: str
    result: RunResult | None = None
    stop: str | None = None  # set when the run must stop after this item


class _Gone(Exception):
    """The item left the runnable states before it could be claimed (another command changed it)."""


class _AbortGuard:
    """While a job runs: Ctrl-C and the e-stop input call ``driver.abort()`` at once.

    The signal handler itself only starts a thread, so the abort reaches the device even while the
    main thread sits inside a blocking USB or serial call.
    """

    def __init__(self, driver: Driver, poll_estop: bool) -> None:
        self.driver = driver
        self.poll_estop = poll_estop
        self.reason: str | None = None
        self._done = threading.Event()
        self._old_handler: Any = None
        self._watcher: threading.Thread | None = None

    def _abort(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        threading.Thread(target=self.driver.abort, name="markstation-abort", daemon=True).start()

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self._abort("Ctrl-C")

    def _watch(self) -> None:
        while not self._done.wait(ESTOP_POLL_S):
            try:
                pressed = self.driver.read_inputs().estop
            except (DeviceError, OSError):
                return  # the run itself will report the device's trouble
            if pressed:
                self._abort("e-stop input")
                return

    def __enter__(self) -> _AbortGuard:
        if threading.current_thread() is threading.main_thread():
            self._old_handler = signal.signal(signal.SIGINT, self._on_sigint)
        if self.poll_estop:
            self._watcher = threading.Thread(
                target=self._watch, name="markstation-estop", daemon=True
            )
            self._watcher.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._watcher is not None:
            self._watcher.join(timeout=1.0)
        if self._old_handler is not None:
            signal.signal(signal.SIGINT, self._old_handler)


class _Listener:
    def __init__(self, ui: OperatorUI, estimate_s: float) -> None:
        self.ui = ui
        self.estimate_s = estimate_s

    def on_started(self, job: Job) -> None:
        pass

    def on_progress(self, fraction: float, elapsed_s: float) -> None:
        f = min(max(fraction, 0.0), 1.0)
        self.ui.progress(f, elapsed_s, max(self.estimate_s * (1.0 - f), 0.0))

    def on_emission_possible(self) -> None:
        pass

    def on_finished(self, result: RunResult) -> None:
        pass


class Runner:
    """One run over the store's runnable items with one opened driver."""

    def __init__(
        self,
        store: Store,
        driver: Driver,
        *,
        actor: Actor,
        ui: OperatorUI,
        auto: bool,
        material: MaterialProfile,
        build: JobBuilder,
        estimator: Estimator,
        poll_estop: bool,
    ) -> None:
        self.store = store
        self.driver = driver
        self.actor = actor
        self.ui = ui
        self.auto = auto
        self.material = material
        self.build = build
        self.estimator = estimator
        self.poll_estop = poll_estop
        self.summary = RunSummary()
        self.device: dict[str, Any] = {}
        self._layouts: dict[str, LayoutProfile] = {}

    def _layout(self, name: str) -> LayoutProfile:
        if name not in self._layouts:
            self._layouts[name] = load_layout(name)
        return self._layouts[name]

    def _pedal(self) -> bool:
        try:
            return self.driver.read_inputs().pedal_pressed
        except DeviceError:
            return False

    def run(self, items: list[Item]) -> RunSummary:
        started = time.monotonic()
        self.device = self.driver.info().as_dict()
        self.store.append(
            "run-started",
            actor=self.actor,
            payload={
                "device": self.device,
                "machine": profile_ref(self.driver.machine),
                "material": profile_ref(self.material),
                "auto": self.auto,
                "queued": len(items),
            },
        )
        try:
            for position, item in enumerate(items, 1):
                fresh = self.store.item(item.code)
                if fresh is None or fresh.state not in RUNNABLE:
                    continue  # changed by someone else since the queue was read
                stop = self._one(fresh, position, len(items))
                if stop:
                    self.summary.stopped = stop
                    break
        finally:
            self.summary.elapsed_s = time.monotonic() - started
            counts = self.store.counts()
            self.summary.remaining = sum(counts[s] for s in RUNNABLE)
            self.store.append("run-finished", actor=self.actor, payload=self.summary.as_dict())
        return self.summary

    # --- one item ------------------------------------------------------------------------------------

    def _one(self, item: Item, position: int, total: int) -> str | None:
        """Work one item; return why the whole run must stop, or None to go on."""
        ui = self.ui
        ui.show_item(item, position, total)
        try:
            layout = self._layout(item.layout)
            job = self.build(item.code, layout, self.material, self.driver.machine)
        except (JobError, ConfigError) as exc:
            self.store.append(
                "job-refused", actor=self.actor, payload={"code": item.code, "reason": str(exc)}
            )
            self.summary.refused.append(item.code)
            ui.message(f"{item.code}: job refused, item left pending: {exc}")
            return None
        estimate_s = self.estimator(job)
        if not self.auto:
            decision = self._confirm(item, job, estimate_s)
            if decision is Action.SKIP:
                self.summary.passed_over.append(item.code)
                return None
            if decision is Action.QUIT:
                return "operator quit"
        while True:
            try:
                outcome = self._mark(item, layout, job, estimate_s)
            except _Gone as gone:
                self.summary.passed_over.append(item.code)
                ui.message(f"{item.code}: not marked, {gone}")
                return None
            if outcome.state is State.MARKED:
                self.summary.marked.append(item.code)
                if not self.auto:
                    self._inspect(item)
                return None
            if outcome.state is State.INTERRUPTED:
                self.summary.interrupted.append(item.code)
                ui.message(
                    f"{item.code} is INTERRUPTED ({outcome.reason}). Inspect the firearm, then run "
                    f"'markstation batch resolve {item.code} --marked|--not-marked --reason TEXT'."
                )
                return outcome.stop or "interrupted item needs an operator"
            self.summary.failed.append(item.code)
            ui.message(f"{item.code} failed before emission could start: {outcome.reason}")
            if outcome.stop:
                return outcome.stop
            if self.auto:
                return "device refused a job (auto mode stops)"
            choice = ui.after_failure(item, outcome.reason)
            if choice is Action.RETRY:
                continue
            if choice is Action.QUIT:
                return "operator quit"
            return None

    def _confirm(self, item: Item, job: Job, estimate_s: float) -> Action:
        ui = self.ui
        while True:
            answer = ui.ask_serial(item)
            if isinstance(answer, Action):
                return answer
            if serial_matches(item.serial, answer):
                break
            ui.serial_mismatch(item, answer)
        while True:
            action = ui.ready(item, estimate_s, self._pedal)
            if action is not Action.FRAME:
                return action
            stop = ui.framing(item)
            try:
                self.driver.frame(job, stop)
            except DeviceError as exc:
                ui.message(f"framing failed: {exc}")

    def _inspect(self, item: Item) -> None:
        result: Inspection = self.ui.inspect(item)
        if result.result == "fail":
            self.summary.inspection_failed.append(item.code)
        self.store.annotate(
            item.code,
            State.MARKED,
            record_type="inspection",
            actor=self.actor,
            payload={"result": result.result, "note": result.note, "serial": item.serial},
            updates={"inspection": result.result, "inspection_note": result.note},
        )
        if result.result == "fail":
            self.ui.message(
                f"{item.code}: inspection failed and recorded. The code stays used "
                "(the metal is marked); report the firearm to the registry."
            )

    def _mark(self, item: Item, layout: LayoutProfile, job: Job, estimate_s: float) -> _Outcome:
        job_sha = job.sha256()
        base = {
            "serial": item.serial,
            "make": item.make,
            "model": item.model,
            "device": self.device,
            "job_sha256": job_sha,
        }
        # the intent: committed and fsynced before any byte that could fire the laser
        try:
            claimed = self._claim(item, layout, job_sha, base, estimate_s)
        except BatchError as exc:
            raise _Gone(str(exc)) from exc
        outcome = self._run_device(job, estimate_s, claimed)
        return self._record(item, claimed, outcome, base)

    def _claim(
        self,
        item: Item,
        layout: LayoutProfile,
        job_sha: str,
        base: dict[str, Any],
        estimate_s: float,
    ) -> Item:
        return self.store.transition(
            item.code,
            RUNNABLE,
            State.MARKING,
            record_type="item-started",
            actor=self.actor,
            payload={
                **base,
                "attempt": item.attempts + 1,
                "batch": item.batch_id,
                "profiles": {
                    "machine": profile_ref(self.driver.machine),
                    "material": profile_ref(self.material),
                    "layout": profile_ref(layout),
                },
                "estimate_s": round(estimate_s, 3),
            },
            updates={"job_sha256": job_sha, "reason": None},
            count_attempt=True,
        )

    def _record(
        self, item: Item, claimed: Item, outcome: _Outcome, base: dict[str, Any]
    ) -> _Outcome:
        result = outcome.result
        payload: dict[str, Any] = {
            **base,
            "attempt": claimed.attempts,
            "outcome": outcome.state.value,
            "reason": outcome.reason,
            "elapsed_s": round(result.elapsed_s, 3) if result else None,
            "device_mark_time_s": (
                round(result.device_mark_time_s, 3)
                if result and result.device_mark_time_s is not None
                else None
            ),
        }
        updates: dict[str, Any] = {"reason": outcome.reason or None}
        if outcome.state is State.MARKED and self.auto:
            payload["inspection"] = "not-inspected"
            updates["inspection"] = "not-inspected"
        self.store.transition(
            item.code,
            [State.MARKING],
            outcome.state,
            record_type="device-outcome",
            actor=self.actor,
            payload=payload,
            updates=updates,
        )
        return outcome

    def _run_device(self, job: Job, estimate_s: float, item: Item) -> _Outcome:
        ui = self.ui
        guard = _AbortGuard(self.driver, self.poll_estop)
        ui.start_progress(item, estimate_s)
        try:
            with guard:
                result = self.driver.run(job, _Listener(ui, estimate_s))
        except DeviceError as exc:
            stop = f"aborted by {guard.reason}" if guard.reason else None
            if not exc.may_have_emitted:
                return _Outcome(State.FAILED, f"{type(exc).__name__}: {exc}", stop=stop)
            return _Outcome(State.INTERRUPTED, f"{type(exc).__name__}: {exc}", stop=stop)
        except BaseException as exc:
            # a bug or KeyboardInterrupt mid-run: the device state is unknown; record it, then re-raise
            with contextlib.suppress(MarkstationError):
                self.store.transition(
                    item.code,
                    [State.MARKING],
                    State.INTERRUPTED,
                    record_type="device-outcome",
                    actor=self.actor,
                    payload={
                        "outcome": State.INTERRUPTED.value,
                        "reason": f"{type(exc).__name__}: {exc}",
                        "job_sha256": job.sha256(),
                        "device": self.device,
                    },
                    updates={"reason": f"{type(exc).__name__}: {exc}"},
                )
            raise
        finally:
            ui.end_progress()
        if guard.reason and not result.complete:
            return _Outcome(State.INTERRUPTED, f"aborted by {guard.reason}", result, "aborted")
        if not result.complete:
            return _Outcome(State.INTERRUPTED, "device reported the job incomplete", result)
        stop = (
            f"aborted by {guard.reason} (the job had already completed)" if guard.reason else None
        )
        return _Outcome(State.MARKED, "", result, stop)


def run_batch(
    store: Store,
    driver_factory: Callable[[], Driver],
    *,
    operator: str,
    station: str,
    ui: OperatorUI,
    auto: bool = False,
    material: str | MaterialProfile | None = None,
    limit: int | None = None,
    build: JobBuilder | None = None,
    estimator: Estimator | None = None,
    poll_estop: bool = True,
) -> RunSummary:
    """Mark the store's pending (and previously failed) items, in import order.

    ``driver_factory`` returns an unopened driver (e.g. ``lambda: open_device(url, machine)``).
    Holds the store's runner lock for the whole run (StoreError if another runner holds it).
    """
    actor = Actor(operator, station)
    # a named material is checked before the lock is taken; without one, the machine's default
    mat = (
        material
        if material is None or isinstance(material, MaterialProfile)
        else load_material(material)
    )
    recovered = store.acquire_runner(actor)
    try:
        for code in recovered:
            ui.message(f"{code}: found in marking after a crash, now interrupted; resolve it")
        items = store.items(RUNNABLE)
        if limit is not None:
            items = items[:limit]
        if not items:
            summary = RunSummary(remaining=0)
            ui.message("nothing to mark: no pending or failed items")
            ui.summary(summary)
            return summary
        with driver_factory() as driver:
            runner = Runner(
                store,
                driver,
                actor=actor,
                ui=ui,
                auto=auto,
                material=mat if mat is not None else load_material(machine=driver.machine),
                build=build or default_builder,
                estimator=estimator or default_estimator,
                poll_estop=poll_estop,
            )
            summary = runner.run(items)
        ui.summary(summary)
        return summary
    finally:
        store.release_runner()


# --- dry run -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DryRunItem:
    code: str
    serial: str
    preview: Path | None
    estimate_s: float | None
    decode: str  # "ok", "no 2D code", or the problem
    error: str | None = None


def _safe_name(code: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in code)


def dry_run(
    store: Store,
    out_dir: str | Path,
    *,
    machine: str | MachineProfile | None = None,
    material: str | MaterialProfile | None = None,
    limit: int | None = None,
    build: JobBuilder | None = None,
    estimator: Estimator | None = None,
    progress: Callable[[DryRunItem], None] | None = None,
) -> list[DryRunItem]:
    """A PNG preview, time estimate and decode check of every runnable item; no device, no state change.

    Writes ``<code>.png`` per item and ``dry-run.csv`` listing all of them into ``out_dir``.
    """
    from markstation.preview import render_png, verify_codes

    mach = (
        machine
        if isinstance(machine, MachineProfile)
        else load_machine(machine or DEFAULT_MACHINE["lmc"])
    )
    mat = (
        material if isinstance(material, MaterialProfile) else load_material(material, machine=mach)
    )
    make_job = build or default_builder
    est = estimator or default_estimator
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{out}: cannot create the dry-run directory ({exc.strerror})") from exc
    layouts: dict[str, LayoutProfile] = {}
    items = store.items(RUNNABLE)
    if limit is not None:
        items = items[:limit]
    results: list[DryRunItem] = []
    for item in items:
        try:
            layout = layouts.get(item.layout) or load_layout(item.layout)
            layouts[item.layout] = layout
            job = make_job(item.code, layout, mat, mach)
        except (JobError, ConfigError) as exc:
            entry = DryRunItem(item.code, item.serial, None, None, "not built", str(exc))
        else:
            png = out / f"{_safe_name(item.code)}.png"
            render_png(job, mach, png)
            decode = "ok" if job.codes else "no 2D code"
            try:
                verify_codes(job, mach)
            except JobError as exc:
                decode = str(exc)
            entry = DryRunItem(item.code, item.serial, png, est(job), decode)
        results.append(entry)
        if progress:
            progress(entry)
    with (out / "dry-run.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["mark_code", "serial", "preview", "estimate_s", "decode", "error"])
        for r in results:
            w.writerow(
                [
                    r.code,
                    r.serial,
                    r.preview.name if r.preview else "",
                    f"{r.estimate_s:.3f}" if r.estimate_s is not None else "",
                    r.decode,
                    r.error or "",
                ]
            )
    return results
