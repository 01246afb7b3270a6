"""The journal: verification passes on an honest journal and names the first edited, removed or
reordered record when the SQLite rows are changed behind the store's back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from markstation.errors import JournalError
from markstation.queue.journal import new_record, verify, verify_store
from markstation.queue.merkle import EMPTY_ROOT
from markstation.queue.models import Actor
from markstation.queue.sqlite import SqliteStore

ACTOR = Actor("J. Quispe", "station-1")


def _store_with_records(tmp_path: Path, n: int = 6) -> Path:
    db = tmp_path / "s.db"
    with SqliteStore(db, actor=ACTOR) as store:
        for i in range(n):
            store.append("inspection", actor=ACTOR, payload={"code": f"C{i}", "result": "pass"})
    return db


def _tamper(db: Path, *statements: str) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    # the store refuses updates and deletes with triggers; an attacker drops them first
    conn.execute("DROP TRIGGER journal_no_update")
    conn.execute("DROP TRIGGER journal_no_delete")
    for sql in statements:
        conn.execute(sql)
    conn.close()


def _verify(db: Path) -> str:
    with SqliteStore(db, actor=ACTOR) as store:
        verify_store(store)
    return "ok"


def test_honest_journal_verifies_and_reports_head(tmp_path: Path) -> None:
    db = _store_with_records(tmp_path)
    with SqliteStore(db, actor=ACTOR) as store:
        head = verify(store.records())
        assert head == store.head()
    assert head.records == 6
    assert head.hash != EMPTY_ROOT.hex()


def test_edited_record_is_named(tmp_path: Path) -> None:
    db = _store_with_records(tmp_path)
    _tamper(db, "UPDATE journal SET payload = replace(payload, 'pass', 'fail') WHERE seq = 3")
    with pytest.raises(JournalError, match=r"seq 3 \(inspection\).*edited"):
        _verify(db)


def test_edited_operator_is_named(tmp_path: Path) -> None:
    db = _store_with_records(tmp_path)
    _tamper(db, "UPDATE journal SET operator = 'someone else' WHERE seq = 5")
    with pytest.raises(JournalError, match=r"seq 5 .*edited"):
        _verify(db)


def test_unreadable_payload_is_named(tmp_path: Path) -> None:
    db = _store_with_records(tmp_path)
    _tamper(db, "UPDATE journal SET payload = '{broken' WHERE seq = 2")
    with pytest.raises(JournalError, match=r"seq 2 .*edited"):
        _verify(db)


def test_deleted_record_is_named(tmp_path: Path) -> None:
    db = _store_with_records(tmp_path)
    _tamper(db, "DELETE FROM journal WHERE seq = 4")
    with pytest.raises(JournalError, match=r"seq 5 .*seq 4 before it was removed"):
        _verify(db)


def test_deleted_and_renumbered_record_is_named(tmp_path: Path) -> None:
    db = _store_with_records(tmp_path)
    _tamper(
        db,
        "DELETE FROM journal WHERE seq = 4",
        "UPDATE journal SET seq = seq - 1 WHERE seq > 4",
    )
    with pytest.raises(JournalError, match=r"seq 4 .*removed, inserted or reordered"):
        _verify(db)


def test_swapped_records_are_named(tmp_path: Path) -> None:
    db = _store_with_records(tmp_path)
    _tamper(
        db,
        "UPDATE journal SET seq = -1 WHERE seq = 3",
        "UPDATE journal SET seq = 3 WHERE seq = 4",
        "UPDATE journal SET seq = 4 WHERE seq = -1",
    )
    with pytest.raises(JournalError, match=r"seq 3 .*reordered"):
        _verify(db)


def test_store_refuses_journal_update_and_delete(tmp_path: Path) -> None:
    db = _store_with_records(tmp_path)
    conn = sqlite3.connect(db)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE journal SET operator = 'x' WHERE seq = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM journal WHERE seq = 1")
    conn.close()


def test_unknown_record_type_refused() -> None:
    with pytest.raises(JournalError, match="unknown journal record type"):
        new_record(1, "made-up", operator="a", station="b", payload={})


@given(
    payloads=st.lists(
        st.dictionaries(
            st.text(min_size=1, max_size=5),
            st.one_of(st.text(max_size=8), st.integers(), st.booleans(), st.none()),
            max_size=4,
        ),
        min_size=1,
        max_size=8,
    ),
    victim=st.integers(min_value=0, max_value=7),
    field=st.sampled_from(["type", "time", "operator", "station", "payload"]),
)
def test_any_single_field_edit_is_caught(
    payloads: list[dict[str, object]], victim: int, field: str
) -> None:
    records = [
        new_record(i, "inspection", operator="op", station="st", payload=p)
        for i, p in enumerate(payloads, 1)
    ]
    assert verify(records).records == len(records)
    k = victim % len(records)
    original = records[k]
    changed = {
        "type": {"type": "voided"},
        "time": {"time": original.time + "0"},
        "operator": {"operator": original.operator + "x"},
        "station": {"station": original.station + "x"},
        "payload": {"payload": {**original.payload, "extra": 1}},
    }[field]
    from dataclasses import replace

    records[k] = replace(original, **changed)  # type: ignore[arg-type]
    with pytest.raises(JournalError, match=f"seq {k + 1} "):
        verify(records)
