"""The store contract on both backends (SQLite and PostgreSQL, the ``store_factory`` fixture):
guarded transitions, runner lock and crash recovery; plus SQLite's durability settings."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from _stores import RawRefused, StoreFactory
from markstation.errors import BatchError, StoreError
from markstation.queue.identity import firearm_key
from markstation.queue.journal import verify
from markstation.queue.models import Actor, NewItem
from markstation.queue.sqlite import SqliteStore, default_db_path
from markstation.queue.states import TRANSITIONS, State
from markstation.queue.store import Store

ACTOR = Actor("J. Quispe", "station-1")


def _items(n: int) -> list[NewItem]:
    return [
        NewItem(code=f"PE-X-2026-{i:04d}", serial=f"S{i}", layout="secondary-mark", line=i + 1)
        for i in range(n)
    ]


@pytest.fixture
def store(store_factory: StoreFactory) -> Iterator[Store]:
    s = store_factory.open(actor=ACTOR)
    s.import_batch(file="b.csv", sha256="0" * 64, items=_items(3), actor=ACTOR)
    yield s
    s.close()


def test_default_path_from_env_and_platformdirs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MARKSTATION_DB", str(tmp_path / "x.db"))
    assert default_db_path() == tmp_path / "x.db"
    monkeypatch.delenv("MARKSTATION_DB")
    assert default_db_path() == Path(os.environ["XDG_DATA_HOME"]) / "markstation" / "markstation.db"


def test_wal_and_full_sync(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "m.db", actor=ACTOR)
    conn = store._conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.isolation_level is None
    store.close()


def test_import_journals_and_counts(store: Store) -> None:
    assert store.counts()[State.PENDING] == 3
    recs = list(store.records())
    assert [r.type for r in recs] == ["batch-imported"]
    assert recs[0].payload["items"] == 3


def test_duplicate_code_import_is_atomic(store: Store, store_factory: StoreFactory) -> None:
    before = store_factory.dump()
    with pytest.raises(BatchError, match="nothing imported"):
        store.import_batch(file="c.csv", sha256="1" * 64, items=_items(5), actor=ACTOR)
    assert store_factory.dump() == before


def test_claim_is_exclusive(store: Store) -> None:
    code = "PE-X-2026-0000"
    it = store.transition(
        code,
        [State.PENDING, State.FAILED],
        State.MARKING,
        record_type="item-started",
        actor=ACTOR,
        payload={},
        count_attempt=True,
    )
    assert it.state is State.MARKING and it.attempts == 1
    with pytest.raises(BatchError, match="is marking, not pending or failed"):
        store.transition(
            code,
            [State.PENDING, State.FAILED],
            State.MARKING,
            record_type="item-started",
            actor=ACTOR,
            payload={},
        )
    assert [r.type for r in store.records()].count("item-started") == 1


def test_unknown_code_refused(store: Store) -> None:
    with pytest.raises(BatchError, match="no item with code 'NOPE'"):
        store.transition(
            "NOPE", [State.PENDING], State.SKIPPED, record_type="skipped", actor=ACTOR, payload={}
        )


@pytest.mark.parametrize("to", [State.MARKED, State.INTERRUPTED, State.FAILED])
def test_sql_guard_refuses_illegal_pairs_even_when_python_allows(
    store: Store, store_factory: StoreFactory, to: State
) -> None:
    # pending -> marked/interrupted/failed skips the intent: the trigger refuses it
    before = store_factory.dump()
    with pytest.raises(BatchError, match="illegal item state transition"):
        store.transition(
            "PE-X-2026-0001",
            [State.PENDING],
            to,
            record_type="device-outcome",
            actor=ACTOR,
            payload={},
        )
    assert store_factory.dump() == before


def test_sql_guard_covers_raw_updates(store: Store, store_factory: StoreFactory) -> None:
    raw = store_factory.raw
    raw("UPDATE items SET state = 'marking' WHERE code = 'PE-X-2026-0000'")
    with pytest.raises(RawRefused, match="illegal"):
        raw("UPDATE items SET state = 'marking' WHERE code = 'PE-X-2026-0000'")
    with pytest.raises(RawRefused, match="illegal"):
        raw("UPDATE items SET state = 'pending' WHERE code = 'PE-X-2026-0000'")
    with pytest.raises(RawRefused, match="never deleted"):
        raw("DELETE FROM items")


@pytest.mark.parametrize("table", ["journal", "journal_nodes", "checkpoints"])
def test_journal_tables_are_append_only(
    store: Store, store_factory: StoreFactory, table: str
) -> None:
    store.add_checkpoint("note", reason="test")
    for sql in (
        f"UPDATE {table} SET {'level' if table == 'journal_nodes' else 'time'} = "
        f"{'level' if table == 'journal_nodes' else 'time'}",
        f"DELETE FROM {table}",
    ):
        with pytest.raises(RawRefused, match="append-only"):
            store_factory.raw(sql)


def test_transition_table_matches_python() -> None:
    # every pair in the table is legal; a few that must never be
    assert (State.MARKING, State.MARKING) not in TRANSITIONS
    assert (State.INTERRUPTED, State.MARKING) not in TRANSITIONS
    assert (State.MARKED, State.PENDING) not in TRANSITIONS
    assert (State.MARKED, State.VOIDED) not in TRANSITIONS


def test_recovery_on_open_when_no_runner(store_factory: StoreFactory) -> None:
    with store_factory.open(actor=ACTOR) as s:
        s.import_batch(file="b", sha256="0" * 64, items=_items(2), actor=ACTOR)
        s.transition(
            "PE-X-2026-0000",
            [State.PENDING],
            State.MARKING,
            record_type="item-started",
            actor=ACTOR,
            payload={},
        )
    with store_factory.open(actor=Actor("tech", "st")) as s2:
        assert s2.recovered == ["PE-X-2026-0000"]
        assert s2.item("PE-X-2026-0000").state is State.INTERRUPTED  # type: ignore[union-attr]
        rec = list(s2.records())[-1]
        assert rec.type == "recovery" and rec.payload["code"] == "PE-X-2026-0000"
        verify(s2.records())


def test_no_recovery_while_a_live_runner_holds_the_lock(store_factory: StoreFactory) -> None:
    runner = store_factory.open(actor=ACTOR)
    runner.import_batch(file="b", sha256="0" * 64, items=_items(2), actor=ACTOR)
    runner.acquire_runner(ACTOR)
    runner.transition(
        "PE-X-2026-0000",
        [State.PENDING],
        State.MARKING,
        record_type="item-started",
        actor=ACTOR,
        payload={},
    )
    with store_factory.open(actor=ACTOR) as other:
        assert other.recovered == []
        assert other.item("PE-X-2026-0000").state is State.MARKING  # type: ignore[union-attr]
        info = other.runner_info()
        assert info is not None and info["pid"] == os.getpid()
        with pytest.raises(StoreError, match="another runner is marking"):
            other.acquire_runner(ACTOR)
    runner.close()
    with store_factory.open(actor=ACTOR) as later:
        assert later.recovered == ["PE-X-2026-0000"]
        assert later.runner_info() is None


@pytest.mark.timeout(60)
def test_lock_of_a_killed_runner_is_released(store_factory: StoreFactory) -> None:
    db = store_factory.location
    with store_factory.open(actor=ACTOR) as s:
        s.import_batch(file="b", sha256="0" * 64, items=_items(1), actor=ACTOR)
    code = (
        "import os, sys\n"
        "from markstation.queue.location import open_store\n"
        "from markstation.queue.models import Actor\n"
        "from markstation.queue.states import State\n"
        "a = Actor('x', 'y')\n"
        f"s = open_store({str(db)!r}, actor=a)\n"
        "s.acquire_runner(a)\n"
        "s.transition('PE-X-2026-0000', [State.PENDING], State.MARKING, record_type='item-started', actor=a, payload={})\n"
        "os.kill(os.getpid(), 9)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=50)
    assert proc.returncode == -9, proc.stderr
    with store_factory.open(actor=ACTOR) as s:
        assert s.recovered == ["PE-X-2026-0000"]
        assert s.runner_info() is None  # the lease row is stale and reported as no runner
        s.acquire_runner(ACTOR)
        s.release_runner()


def test_annotate_requires_state(store: Store) -> None:
    with pytest.raises(BatchError, match="is pending, not marked"):
        store.annotate(
            "PE-X-2026-0000",
            State.MARKED,
            record_type="inspection",
            actor=ACTOR,
            payload={},
            updates={"inspection": "pass"},
        )


def test_not_a_store(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match=r"bad\.db"):
        SqliteStore(bad)


def test_newer_schema_refused(store_factory: StoreFactory) -> None:
    store_factory.open().close()
    store_factory.raw("UPDATE meta SET value = '99' WHERE key = 'schema'")
    with pytest.raises(StoreError, match="schema 99 is newer"):
        store_factory.open()


def test_firearm_key_ignores_case_and_punctuation() -> None:
    assert firearm_key("Glock", "ab-12 3") == firearm_key("GLOCK", "AB123")
    assert firearm_key("Glock", "AB123") != firearm_key("CZ", "AB123")
