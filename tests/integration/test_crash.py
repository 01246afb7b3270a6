"""Crash test: a runner process on the simulated LMC board is SIGKILLed at random moments, resumed,
and its interrupted items are resolved from the simulator ledger (what was really burned).

The proof, from the ledger alone: no code was burned twice, and every burn has a journal
``item-started`` record before it (the intent was on disk before the laser could fire).

Runs on both backends (``store_factory``): on SQLite the kill frees the file lock, on PostgreSQL
the server ends the killed runner's session and with it the station's advisory lock.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from _queue_fakes import sample_rows, write_csv
from _stores import StoreFactory
from markstation.devices.sim.ledger import read_jobs
from markstation.queue.batch import import_batch
from markstation.queue.decisions import resolve
from markstation.queue.journal import Record, verify
from markstation.queue.models import Actor
from markstation.queue.states import State
from markstation.queue.store import Store

ACTOR = Actor("crash-test", "ci")
ITEMS = 8
ROUNDS = 6
SEED = 20261128


def _runner(db: str | Path, ledger: Path) -> subprocess.Popen[bytes]:
    url = f"sim://lmc?timing=10&ledger={quote(str(ledger), safe='/')}"
    cmd = [
        sys.executable,
        "-c",
        "from markstation.cli import main; main()",
        "batch",
        "run",
        "--db",
        str(db),
        "--device",
        url,
        "--auto",
        "--operator",
        "crash-test",
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _attribute(records: list[Record], ledger: Path) -> dict[int, str]:
    """Ledger job -> the code whose item-started record is the latest one before the job started."""
    starts = sorted((r.time, r.payload["code"]) for r in records if r.type == "item-started")
    owner: dict[int, str] = {}
    for job in read_jobs(ledger):
        before = [code for t, code in starts if t <= job.started]
        assert before, f"ledger job {job.job} burned with no journal record before it"
        owner[job.job] = before[-1]
    return owner


def _resolve_from_ledger(store: Store, ledger: Path) -> list[tuple[str, bool]]:
    """What a technician does after a crash, with the ledger standing in for the loupe."""
    records = list(store.records())
    owner = _attribute(records, ledger)
    decisions = []
    for item in store.items([State.INTERRUPTED]):
        last_start = max(
            r.time for r in records if r.type == "item-started" and r.payload["code"] == item.code
        )
        burned = any(
            code == item.code and job.started >= last_start
            for job in read_jobs(ledger)
            for j, code in owner.items()
            if j == job.job
        )
        resolve(
            store,
            item.code,
            marked=burned,
            reason="ledger shows a burn" if burned else "ledger shows no burn",
            actor=ACTOR,
        )
        decisions.append((item.code, burned))
    return decisions


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sigkill_at_random_moments_never_burns_a_code_twice(
    store_factory: StoreFactory, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    db = store_factory.location
    ledger = tmp_path / "ledger.jsonl"
    with store_factory.open(actor=ACTOR) as store:
        import_batch(write_csv(tmp_path / "b.csv", sample_rows(ITEMS)), store, actor=ACTOR)

    kills = 0
    resolved: list[tuple[str, bool]] = []
    deadline = time.monotonic() + 60
    for _ in range(ROUNDS):
        proc = _runner(db, ledger)
        time.sleep(rng.uniform(0.6, 2.2))  # startup takes ~0.5-1 s, a job ~0.2 s
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait(timeout=30)
        store_factory.settle()  # the server has ended the killed runner's session
        with store_factory.open(actor=ACTOR) as store:  # opening recovers items left marking
            resolved += _resolve_from_ledger(store, ledger)
            if not store.items([State.PENDING, State.FAILED]):
                break
        assert time.monotonic() < deadline

    # finish the batch without interruption
    proc = _runner(db, ledger)
    assert proc.wait(timeout=60) == 0

    with store_factory.open(actor=ACTOR) as store:
        assert all(it.state is State.MARKED for it in store.items())
        records = list(store.records())
        verify(records)
        owner = _attribute(records, ledger)
    print(f"kills={kills} resolved={resolved} ledger_jobs={len(owner)}")
    assert kills >= 2, "the test must actually kill the runner"
    assert resolved, "at least one kill must land while an item was marking"

    burns_per_code: dict[str, int] = {}
    for code in owner.values():
        burns_per_code[code] = burns_per_code.get(code, 0) + 1
    assert set(burns_per_code) == {r["mark_code"] for r in sample_rows(ITEMS)}
    assert max(burns_per_code.values()) == 1, burns_per_code
    # what the ledger says was burned: every code at most once complete, with strokes; a code the
    # runner never lost track of has exactly that one complete burn; a burn that did not end
    # complete (killed mid-job) belongs to an item a kill interrupted and the ledger resolved
    interrupted = {code for code, _ in resolved}
    complete_per_code: dict[str, int] = {}
    for job in read_jobs(ledger):
        code = owner[job.job]
        if job.complete:
            assert job.polylines, f"ledger job {job.job} ({code}) complete but burned nothing"
            complete_per_code[code] = complete_per_code.get(code, 0) + 1
        else:
            assert code in interrupted, f"ledger job {job.job} ({code}) did not complete"
    assert all(n == 1 for n in complete_per_code.values()), complete_per_code
    never_interrupted = set(burns_per_code) - interrupted
    assert never_interrupted <= set(complete_per_code), never_interrupted - set(complete_per_code)
    # and the recoveries are journaled
    assert sum(1 for r in records if r.type == "recovery") >= len(resolved)
