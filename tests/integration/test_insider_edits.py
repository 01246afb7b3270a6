"""The journal decides: edits to the items table made outside markstation are named and refused.

Each test marks a small batch on sim://lmc, edits the store the way an insider with the file and
the sqlite3 shell could, then checks that ``log verify`` names the item (exit 1) and that
``batch run`` refuses to go on (exit 2) without burning anything again.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from _cli import run
from _queue_fakes import sample_rows, write_csv
from markstation.queue.sqlite import SqliteStore

A, B, C = "PE-SUCAMEC-2026-000001", "PE-SUCAMEC-2026-000002", "PE-SUCAMEC-2026-000003"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Path:
    """Three items: A and B marked on sim://lmc, C still pending."""
    path = tmp_path / "m.db"
    monkeypatch.setenv("MARKSTATION_DB", str(path))
    monkeypatch.setenv("MARKSTATION_OPERATOR", "J. Quispe")
    write_csv(tmp_path / "b.csv", sample_rows(3))
    assert run(capsys, "batch", "import", str(tmp_path / "b.csv"))[0] == 0
    code, _, err = run(capsys, "batch", "run", "--device", "sim://lmc", "--auto", "--limit", "2")
    assert code == 0, err
    code, out, err = run(capsys, "log", "verify")
    assert code == 0 and "items ok: 3 rows" in out, err
    return path


def _sql(db: Path, *statements: str) -> None:
    conn = sqlite3.connect(db)
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def _starts(db: Path, code: str) -> int:
    with SqliteStore(db, mode="readonly") as store:
        return sum(
            1 for r in store.records() if r.type == "item-started" and r.payload["code"] == code
        )


def _caught(capsys: pytest.CaptureFixture[str], db: Path, code: str, words: str) -> None:
    rc, out, err = run(capsys, "log", "verify")
    assert rc == 1, (out, err)
    assert f"item '{code}'" in err and words in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    before = {c: _starts(db, c) for c in (A, B, C)}
    rc, out, err = run(capsys, "batch", "run", "--device", "sim://lmc", "--auto")
    assert rc == 2, (out, err)
    assert f"item '{code}'" in err and "refusing to mark" in err
    assert {c: _starts(db, c) for c in (A, B, C)} == before  # nothing started, nothing burned
    rc, _, err = run(capsys, "log", "export", "-o", str(db.parent / "r.csv"))
    assert rc == 1 and f"item '{code}'" in err


def test_transition_table_edit_no_longer_widens_the_guard(db: Path) -> None:
    # the exact edit: the trigger no longer reads the table, so the flip is refused
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO transitions VALUES ('marked', 'pending')")
    with pytest.raises(sqlite3.IntegrityError, match="illegal item state transition"):
        conn.execute(f"UPDATE items SET state = 'pending' WHERE code = '{A}'")
    conn.rollback()
    conn.close()


def test_state_flip_with_the_trigger_dropped(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    _sql(
        db,
        "INSERT INTO transitions VALUES ('marked', 'pending')",
        "DROP TRIGGER items_transition_guard",
        f"UPDATE items SET state = 'pending', attempts = 0 WHERE code = '{A}'",
        "DELETE FROM transitions WHERE from_state = 'marked'",
    )
    _caught(capsys, db, A, "proves it marked")
    # opening for writing restored the guard as code, whatever the table says
    conn = sqlite3.connect(db)
    with pytest.raises(sqlite3.IntegrityError, match="illegal"):
        conn.execute(f"UPDATE items SET state = 'marked' WHERE code = '{C}'")
    conn.close()


def test_marked_item_is_never_claimed_even_when_only_its_row_lies(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path
) -> None:
    # the store's own claim check: a lying row for the next item is refused at claim time
    _sql(db, "DROP TRIGGER items_transition_guard")
    _sql(db, f"UPDATE items SET state = 'pending' WHERE code = '{B}'")
    with SqliteStore(db) as store:
        from markstation.errors import StoreError
        from markstation.queue.models import Actor
        from markstation.queue.states import RUNNABLE, State

        with pytest.raises(StoreError, match=f"item '{B}'.*proves it marked"):
            store.transition(
                B,
                RUNNABLE,
                State.MARKING,
                record_type="item-started",
                actor=Actor("x", "y"),
                payload={},
                count_attempt=True,
            )
    assert _starts(db, B) == 1


def test_serial_edit(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    _sql(db, f"UPDATE items SET serial = 'XX99999' WHERE code = '{C}'")
    _caught(capsys, db, C, "serial is 'XX99999'")


def test_serial_edit_of_a_marked_item_changes_no_report_unseen(
    capsys: pytest.CaptureFixture[str], db: Path
) -> None:
    _sql(db, f"UPDATE items SET serial = 'XX99999' WHERE code = '{A}'")
    _caught(capsys, db, A, "serial is 'XX99999'")


def test_attempts_edit(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    _sql(db, f"UPDATE items SET attempts = 0 WHERE code = '{B}'")
    _caught(capsys, db, B, "attempts is 0 but the journal proves 1")


def test_deleted_row(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    _sql(db, "DROP TRIGGER items_no_delete", f"DELETE FROM items WHERE code = '{A}'")
    _caught(capsys, db, A, "missing from the items table")


def test_added_row(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    _sql(
        db,
        "INSERT INTO items (batch_id, code, serial, make, model, caliber, owner, layout, extra, "
        "line, state, created_at, updated_at) VALUES (1, 'PE-SUCAMEC-2026-000999', 'Z1', 'Glock', "
        "'17', '', '', 'secondary-mark', '{}', 9, 'pending', 'now', 'now')",
    )
    _caught(capsys, db, "PE-SUCAMEC-2026-000999", "no journal record imports it")
