"""The batch runner: one firearm after another, exactly once each.

Per item: show the firearm, confirm its factory serial, build the job, (frame), wait for Enter or the
pedal, **commit the ``marking`` intent (fsynced)**, then call ``driver.run()``, then record what the
device reported. The mapping from what happened to the item's state is the heart of exactly-once:

* the device reported completion                        -> ``marked`` (inspection recorded after)
* a DeviceError with ``may_have_emitted`` False
  (refused limits, interlock open before start, …)     -> ``failed``: nothing fired, safe to retry
* anything else: Aborted (Ctrl-C, e-stop), timeout or
  disconnect mid-run, reset, incomplete, an error on
  the e-stop watcher's thread, a crash                  -> ``interrupted``: never retried
  automatically, an operator inspects the firearm and runs ``batch resolve``.

A process killed between the intent and the outcome leaves ``marking``; the next store open turns it
into ``interrupted`` (see :meth:`Store.recover`). After ``interrupted`` the run stops, so the
technician deals with that firearm before the next one; in ``--auto`` mode it also stops after
``failed`` (a device that refuses once usually refuses again).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from markstation.devices.abort import AbortGuard
from markstation.devices.base import Driver, NullListener, RunResult
from markstation.errors import (
    BatchError,
    ConfigError,
    DeviceError,
    JobError,
    JournalError,
    MarkstationError,
    StoreError,
)
from markstation.i18n import _
from markstation.job.estimate import estimate_seconds
from markstation.job.ir import Job
from markstation.profiles import (
    LayoutProfile,
    MachineProfile,
    MaterialProfile,
    load_layout,
    load_material,
)
from markstation.queue.identity import firearm_key, serial_matches
from markstation.queue.journal import seal
from markstation.queue.models import Actor, Item
from markstation.queue.operator import Action, Inspection, OperatorUI, RunSummary
from markstation.queue.states import RUNNABLE, State
from markstation.queue.store import Store

if TYPE_CHECKING:
    from markstation.queue.keys import StationKey

#: (code, layout, material, machine) -> Job; the job builder, injectable for tests
JobBuilder = Callable[[str, LayoutProfile, MaterialProfile, MachineProfile], Job]
#: Job -> estimated seconds
Estimator = Callable[[Job], float]


def _or_quick(device_seconds: Estimator) -> Estimator:
    """``device_seconds``, or the quick device-independent :func:`estimate_seconds` where the
    protocol has no timing model (ConfigError)."""

    def estimate(job: Job) -> float:
        try:
            return device_seconds(job)
        except ConfigError:
            return estimate_seconds(job)

    return estimate


def machine_estimator(machine: MachineProfile) -> Estimator:
    """The device's own timing model for ``machine`` (no device open: the profile's settings)."""
    from markstation.devices.estimate import device_estimate

    return _or_quick(lambda job: device_estimate(job, machine).seconds)


def driver_estimator(driver: Driver) -> Estimator:
    """The estimate of a job on the open ``driver``
    (:func:`markstation.devices.estimate.driver_estimate`: its machine, with the time-only
    settings its controller reported on connect), as ``mark`` estimates. What ``batch run`` and
    the station show and journal."""
    from markstation.devices.estimate import driver_estimate

    return _or_quick(lambda job: driver_estimate(job, driver).seconds)


def default_builder(
    code: str, layout: LayoutProfile, material: MaterialProfile, machine: MachineProfile
) -> Job:
    from markstation.verify import build_verified_job

    return build_verified_job(code, layout=layout, material=material, machine=machine)


def profile_ref(profile: MachineProfile | MaterialProfile | LayoutProfile) -> dict[str, str]:
    return {"name": profile.name, "sha256": profile.sha256}


@dataclass
class _Outcome:
    state: State
    reason: str
    result: RunResult | None = None
    stop: str | None = None  # set when the run must stop after this item


@runtime_checkable
class AbortButton(Protocol):
    """An operator UI with its own Abort control (the station): it gets each run's guard.

    ``arm_abort(guard)`` is called before the device is asked to run, ``arm_abort(None)`` after
    emission is off again; the UI calls ``guard.trigger(reason)`` from any thread. The CLI needs
    none of this: Ctrl-C reaches the same guard through SIGINT.
    """

    def arm_abort(self, guard: AbortGuard | None) -> None: ...


class _Gone(Exception):
    """The item left the runnable states before it could be claimed (another command changed it)."""


class _UIProgress(NullListener):
    """The run's progress on the operator UI, with the time left by the estimate."""

    def __init__(self, ui: OperatorUI, estimate_s: float) -> None:
        self.ui = ui
        self.estimate_s = estimate_s

    def on_progress(self, fraction: float, elapsed_s: float) -> None:
        f = min(max(fraction, 0.0), 1.0)
        self.ui.progress(f, elapsed_s, max(self.estimate_s * (1.0 - f), 0.0))


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
        key: StationKey | None = None,
    ) -> None:
        #: signs the checkpoint kept at the end of the run (None: kept unsigned)
        self.key = key
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
        #: live rows by folded firearm key, read once per run (see _twin)
        self._firearms: dict[tuple[str, str], list[Item]] | None = None

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
                if not self.store.reserve(fresh.code):
                    continue  # another station works it (a shared server store)
                try:
                    stop = self._one(fresh, position, len(items))
                finally:
                    self.store.unreserve(fresh.code)
                if stop:
                    self.summary.stopped = stop
                    break
        except StoreError:
            # the store failed (disk full, read-only, …): say that, not that run-finished failed
            self.summary.elapsed_s = time.monotonic() - started
            with contextlib.suppress(StoreError):
                self._finish()
            raise
        self.summary.elapsed_s = time.monotonic() - started
        self._finish()
        return self.summary

    def _finish(self) -> None:
        counts = self.store.counts()
        self.summary.remaining = sum(counts[s] for s in RUNNABLE)
        self.store.append("run-finished", actor=self.actor, payload=self.summary.as_dict())
        # every run ends with a checkpoint of the journal, signed when the station has a key
        seal(self.store, self.key, station=self.actor.station, reason="run-finished")

    # --- one item ------------------------------------------------------------------------------------

    def _one(self, item: Item, position: int, total: int) -> str | None:
        """Work one item; return why the whole run must stop, or None to go on."""
        ui = self.ui
        ui.show_item(item, position, total)
        twin = self._twin(item)
        if twin is not None:
            # one weapon for two rows: marking either would give that firearm a second code
            why = _(
                "same firearm as item {twin} (line {line}, {state}): {make} {serial!r} and "
                "{twin_make} {twin_serial!r} fold to the same make and serial; ask the registry "
                "which row to void"
            ).format(
                twin=twin.code,
                line=twin.line,
                state=twin.state.value,
                make=item.make,
                serial=item.serial,
                twin_make=twin.make,
                twin_serial=twin.serial,
            )
            self._serial_refused(item, typed=None, why=why)
            self.summary.refused.append(item.code)
            ui.message(
                _("{code}: refused, left {state}: {why}").format(
                    code=item.code, state=item.state.value, why=why
                )
            )
            return None
        try:
            layout = self._layout(item.layout)
            job = self.build(item.code, layout, self.material, self.driver.machine)
        except (JobError, ConfigError) as exc:
            self.store.append(
                "job-refused", actor=self.actor, payload={"code": item.code, "reason": str(exc)}
            )
            self.summary.refused.append(item.code)
            ui.message(
                _("{code}: job refused, item left pending: {error}").format(
                    code=item.code, error=exc
                )
            )
            return None
        estimate_s = self.estimator(job)
        if not self.auto:
            decision = self._confirm(item, job, estimate_s)
            if decision is Action.SKIP:
                self.summary.passed_over.append(item.code)
                return None
            if decision is Action.QUIT:
                return _("operator quit")
        while True:
            try:
                outcome = self._mark(item, layout, job, estimate_s)
            except _Gone as gone:
                self.summary.passed_over.append(item.code)
                ui.message(_("{code}: not marked, {why}").format(code=item.code, why=gone))
                return None
            if outcome.state is State.MARKED:
                self.summary.marked.append(item.code)
                if not self.auto:
                    self._inspect(item)
                return None
            if outcome.state is State.INTERRUPTED:
                self.summary.interrupted.append(item.code)
                ui.message(
                    _(
                        "{code} is INTERRUPTED ({reason}). Inspect the firearm, then run "
                        "'markstation batch resolve {code} --marked|--not-marked --reason TEXT'."
                    ).format(code=item.code, reason=outcome.reason)
                )
                return outcome.stop or _("interrupted item needs an operator")
            self.summary.failed.append(item.code)
            ui.message(
                _("{code} failed before emission could start: {reason}").format(
                    code=item.code, reason=outcome.reason
                )
            )
            if outcome.stop:
                return outcome.stop
            if self.auto:
                return _("device refused a job (auto mode stops)")
            choice = ui.after_failure(item, outcome.reason)
            if choice is Action.RETRY:
                continue
            if choice is Action.QUIT:
                return _("operator quit")
            return None

    def _confirm(self, item: Item, job: Job, estimate_s: float) -> Action:
        ui = self.ui
        while True:
            answer = ui.ask_serial(item)
            if isinstance(answer, Action):
                return answer
            if serial_matches(item.serial, answer):
                break
            owner = next((o for o in self._others(item) if serial_matches(o.serial, answer)), None)
            why = (
                f"typed serial is that of item {owner.code} (line {owner.line}), not this row's"
                if owner is not None
                else "typed serial does not match the row's"
            )
            self._serial_refused(item, typed=answer, why=why)
            ui.serial_mismatch(item, answer)
            if owner is not None:
                ui.message(
                    _(
                        "'{answer}' is the serial of {code} (line {line}): "
                        "this is not the firearm of this row"
                    ).format(answer=answer, code=owner.code, line=owner.line)
                )
        while True:
            action = ui.ready(item, estimate_s, self._pedal)
            if action is not Action.FRAME:
                return action
            stop = ui.framing(item)
            try:
                self.driver.frame(job, stop)
            except DeviceError as exc:
                ui.message(_("framing failed: {error}").format(error=exc))

    def _others(self, item: Item) -> list[Item]:
        """Every other item whose firearm still counts (voided rows are withdrawn)."""
        return [
            o for o in self.store.items() if o.code != item.code and o.state is not State.VOIDED
        ]

    def _twin(self, item: Item) -> Item | None:
        """Another live row for the same firearm (make and serial folded: look-alikes included).

        The rows by firearm are read once per run, not once per item (a campaign has thousands):
        rows only appear by import, which refuses a firearm the store already holds, and a row
        voided during the run can only make this refuse more, never less.
        """
        if self._firearms is None:
            self._firearms = {}
            for other in self.store.items():
                if other.state is not State.VOIDED:
                    key = firearm_key(other.make, other.serial)
                    self._firearms.setdefault(key, []).append(other)
        rows = self._firearms.get(firearm_key(item.make, item.serial), [])
        return next((o for o in rows if o.code != item.code), None)

    def _serial_refused(self, item: Item, *, typed: str | None, why: str) -> None:
        self.store.append(
            "serial-refused",
            actor=self.actor,
            payload={"code": item.code, "serial": item.serial, "typed": typed, "reason": why},
        )

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
                _(
                    "{code}: inspection failed and recorded. The code stays used "
                    "(the metal is marked); report the firearm to the registry."
                ).format(code=item.code)
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
        self._outcome(item.code, outcome.state, payload, updates)
        return outcome

    def _outcome(
        self, code: str, state: State, payload: dict[str, Any], updates: dict[str, Any]
    ) -> None:
        """Journal what the device did and leave ``marking``: the one way out of the intent."""
        try:
            self.store.transition(
                code,
                [State.MARKING],
                state,
                record_type="device-outcome",
                actor=self.actor,
                payload=payload,
                updates=updates,
            )
        except StoreError as exc:
            raise type(exc)(
                _(
                    "{error} -- {code} ({state}) could not be recorded: it stays marking and "
                    "becomes interrupted when the store can be written again; inspect that firearm"
                ).format(error=exc, code=code, state=state.value)
            ) from exc

    def _run_device(self, job: Job, estimate_s: float, item: Item) -> _Outcome:
        ui = self.ui
        # Ctrl-C and the e-stop input abort at once (devices.abort: the one guard)
        guard = AbortGuard(self.driver, estop=self.poll_estop)
        button = ui if isinstance(ui, AbortButton) else None
        if button is not None:
            button.arm_abort(guard)
        ui.start_progress(item, estimate_s)
        try:
            with guard:
                result = self.driver.run(job, guard.listener(_UIProgress(ui, estimate_s)))
                # read inside the guard: a poll failing after completion was proven does not
                # unprove it
                watcher_error = guard.error
        except DeviceError as exc:
            stop = _("aborted by {reason}").format(reason=guard.reason) if guard.reason else None
            # once the guard heard "emission possible" it is never "nothing fired"
            if not exc.may_have_emitted and not guard.emission_possible:
                return _Outcome(State.FAILED, f"{type(exc).__name__}: {exc}", stop=stop)
            return _Outcome(State.INTERRUPTED, f"{type(exc).__name__}: {exc}", stop=stop)
        except BaseException as exc:
            # a bug or KeyboardInterrupt mid-run: the device state is unknown; record it, then re-raise
            reason = f"{type(exc).__name__}: {exc}"
            with contextlib.suppress(MarkstationError):
                self._outcome(
                    item.code,
                    State.INTERRUPTED,
                    {
                        "outcome": State.INTERRUPTED.value,
                        "reason": reason,
                        "job_sha256": job.sha256(),
                        "device": self.device,
                    },
                    {"reason": reason},
                )
            raise
        finally:
            if button is not None:
                button.arm_abort(None)
            ui.end_progress()
        if guard.reason and not result.complete:
            why = _("aborted by {reason}").format(reason=guard.reason)
            return _Outcome(State.INTERRUPTED, why, result, _("aborted"))
        if not result.complete:
            return _Outcome(State.INTERRUPTED, _("device reported the job incomplete"), result)
        if watcher_error is not None:
            # any error on any thread during the run leaves completion unproven
            why = _("completion unproven: the e-stop watcher failed during the run ({error})")
            return _Outcome(
                State.INTERRUPTED,
                why.format(error=f"{type(watcher_error).__name__}: {watcher_error}"),
                result,
                _("device error during the run"),
            )
        stop = (
            _("aborted by {reason} (the job had already completed)").format(reason=guard.reason)
            if guard.reason
            else None
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
    key: StationKey | None = None,
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
        try:
            # the journal decides: a store whose rows are not what the journal proves is refused
            store.check_items_against_journal()
        except JournalError as exc:
            raise StoreError(
                _("{location}: refusing to mark: {error}").format(
                    location=store.location, error=exc
                )
            ) from exc
        for code in recovered:
            ui.message(
                _("{code}: found in marking after a crash, now interrupted; resolve it").format(
                    code=code
                )
            )
        items = store.items(RUNNABLE)
        if limit is not None:
            items = items[:limit]
        if not items:
            summary = RunSummary(remaining=0)
            ui.message(_("nothing to mark: no pending or failed items"))
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
                estimator=estimator or driver_estimator(driver),
                poll_estop=poll_estop,
                key=key,
            )
            summary = runner.run(items)
        ui.summary(summary)
        return summary
    finally:
        store.release_runner()
