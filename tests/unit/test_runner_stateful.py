"""Stateful model test of runner + store: imports, runs with scripted device outcomes, crashes with
recovery, resolutions, skip/requeue/void, against a plain model of the item states.

Invariants: the store's states equal the model's, the journal chain verifies, and no code reaches
``marking`` again unless the attempt before it provably did not emit (failed) or an operator
resolved it as not marked.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from _queue_fakes import FakeDriver, fast_builder, fast_estimator, sample_rows, write_csv
from markstation.errors import BatchError
from markstation.queue import decisions
from markstation.queue.batch import import_batch
from markstation.queue.journal import verify
from markstation.queue.models import Actor
from markstation.queue.operator import QuietUI
from markstation.queue.runner import run_batch
from markstation.queue.sqlite import SqliteStore
from markstation.queue.states import RUNNABLE, State

ACTOR = Actor("model", "test")
RESULT = {
    "ok": State.MARKED,
    "refuse": State.FAILED,
    "abort": State.INTERRUPTED,
    "timeout": State.INTERRUPTED,
    "disconnect": State.INTERRUPTED,
    "incomplete": State.INTERRUPTED,
}


class QueueMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="ms-stateful-"))
        self.db = self.dir / "m.db"
        self.store = SqliteStore(self.db, actor=ACTOR)
        self.model: dict[str, State] = {}
        self.order: list[str] = []
        self.next_number = 1
        self.imports = 0
        #: code -> attempts that may have emitted since the last "not marked" resolution
        self.exposure: dict[str, int] = {}

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _pick(self, states: tuple[State, ...], index: int) -> str | None:
        codes = [c for c in self.order if self.model[c] in states]
        return codes[index % len(codes)] if codes else None

    @rule(n=st.integers(min_value=1, max_value=3))
    def import_items(self, n: int) -> None:
        rows = sample_rows(n, start=self.next_number)
        self.next_number += n
        self.imports += 1
        path = write_csv(self.dir / f"b{self.imports}.csv", rows)
        import_batch(path, self.store, actor=ACTOR, code_checker=lambda code, layout: None)
        for r in rows:
            self.model[r["mark_code"]] = State.PENDING
            self.order.append(r["mark_code"])
            self.exposure[r["mark_code"]] = 0

    @rule(outcome=st.sampled_from(sorted(RESULT)))
    def run_one(self, outcome: str) -> None:
        target = self._pick(RUNNABLE, 0)  # the runner takes items in import order
        driver = FakeDriver([outcome])
        run_batch(
            self.store,
            lambda: driver,
            operator=ACTOR.operator,
            station=ACTOR.station,
            ui=QuietUI(),
            auto=True,
            limit=1,
            build=fast_builder,
            estimator=fast_estimator,
            poll_estop=False,
        )
        if target is None:
            assert driver.runs == 0
            return
        self.model[target] = RESULT[outcome]
        if outcome != "refuse":
            self.exposure[target] += 1

    @precondition(lambda self: any(s in RUNNABLE for s in self.model.values()))
    @rule()
    def crash_while_marking(self) -> None:
        """The runner commits the intent and the process dies before the outcome is written."""
        target = self._pick(RUNNABLE, 0)
        assert target is not None
        self.store.acquire_runner(ACTOR)
        self.store.transition(
            target,
            RUNNABLE,
            State.MARKING,
            record_type="item-started",
            actor=ACTOR,
            payload={},
            count_attempt=True,
        )
        # no release: the OS drops the lock with the process; here we close the handle instead
        self.store._lock.release()
        self.store._conn.close()
        self.store = SqliteStore(self.db, actor=ACTOR)
        assert self.store.recovered == [target]
        self.model[target] = State.INTERRUPTED
        self.exposure[target] += 1

    @rule(index=st.integers(0, 50), marked=st.booleans())
    def resolve(self, index: int, marked: bool) -> None:
        code = self._pick((State.INTERRUPTED,), index)
        if code is None:
            return
        decisions.resolve(self.store, code, marked=marked, reason="inspected", actor=ACTOR)
        self.model[code] = State.MARKED if marked else State.PENDING
        if not marked:
            self.exposure[code] = 0

    @rule(index=st.integers(0, 50), action=st.sampled_from(["skip", "void", "requeue", "resolve"]))
    def operator_decision_anywhere(self, index: int, action: str) -> None:
        if not self.order:
            return
        code = self.order[index % len(self.order)]
        allowed = {
            "skip": ((State.PENDING, State.FAILED), State.SKIPPED),
            "void": ((State.PENDING, State.FAILED, State.SKIPPED), State.VOIDED),
            "requeue": ((State.SKIPPED,), State.PENDING),
            "resolve": ((State.INTERRUPTED,), State.PENDING),
        }[action]
        fn = getattr(decisions, action)
        kwargs = {"marked": False} if action == "resolve" else {}
        if self.model[code] in allowed[0]:
            fn(self.store, code, reason="operator", actor=ACTOR, **kwargs)
            self.model[code] = allowed[1]
            if action == "resolve":
                self.exposure[code] = 0
        else:
            with pytest.raises(BatchError):
                fn(self.store, code, reason="operator", actor=ACTOR, **kwargs)

    @invariant()
    def states_match_model(self) -> None:
        actual = {it.code: it.state for it in self.store.items()}
        assert actual == self.model

    @invariant()
    def never_exposed_twice_without_resolution(self) -> None:
        assert all(n <= 1 for n in self.exposure.values()), self.exposure

    @invariant()
    def journal_never_starts_a_code_twice_without_resolution(self) -> None:
        """From the journal alone: a start that may have emitted is followed by another start only
        after a 'not marked' resolution."""
        open_starts: dict[str, int] = {}
        for rec in self.store.records():
            code = rec.payload.get("code")
            if rec.type == "item-started":
                open_starts[code] = open_starts.get(code, 0) + 1
                assert open_starts[code] == 1, f"{code} started again without a resolution"
            elif rec.type == "device-outcome" and rec.payload.get("outcome") == "failed":
                open_starts[code] -= 1  # provably nothing fired
            elif rec.type == "resolution" and rec.payload.get("resolution") == "not-marked":
                open_starts[code] = 0

    @invariant()
    def journal_verifies(self) -> None:
        head = verify(self.store.records())
        assert head == self.store.head()


QueueMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=25, deadline=None)
test_queue_state_machine = pytest.mark.timeout(300)(QueueMachine.TestCase)
