"""The journal decides: edits to the items table made outside markstation are named and refused.

Each test marks a small batch on sim://lmc, edits the store the way an insider with the store's
credentials could (the sqlite3 shell on the file, psql on the server: ``StoreFactory.raw``), then
checks that ``log verify`` names the item (exit 1) and that ``batch run`` refuses to go on
(exit 2) without burning anything again. Every test but the one about SQLite's ``transitions``
table runs on both backends (the ``store_factory`` fixture).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from _cli import run
from _queue_fakes import sample_rows, write_csv
from _stores import RawRefused, StoreFactory
from markstation.errors import StoreError
from markstation.queue.models import Actor
from markstation.queue.states import RUNNABLE, State

A, B, C = "PE-SUCAMEC-2026-000001", "PE-SUCAMEC-2026-000002", "PE-SUCAMEC-2026-000003"


def _marked(
    store: StoreFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> StoreFactory:
    """Three items in ``store``: A and B marked on sim://lmc, C still pending."""
    monkeypatch.setenv("MARKSTATION_DB", str(store.location))
    monkeypatch.setenv("MARKSTATION_OPERATOR", "J. Quispe")
    write_csv(tmp_path / "b.csv", sample_rows(3))
    assert run(capsys, "batch", "import", str(tmp_path / "b.csv"))[0] == 0
    code, _, err = run(capsys, "batch", "run", "--device", "sim://lmc", "--auto", "--limit", "2")
    assert code == 0, err
    code, out, err = run(capsys, "log", "verify")
    assert code == 0 and "items ok: 3 rows" in out, err
    return store


@pytest.fixture
def store(
    store_factory: StoreFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> StoreFactory:
    """A and B marked, C pending, on each backend in turn."""
    return _marked(store_factory, tmp_path, monkeypatch, capsys)


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Path:
    """The same on SQLite only: the file."""
    path = tmp_path / "m.db"
    _marked(StoreFactory("sqlite", path), tmp_path, monkeypatch, capsys)
    return path


def _drop_trigger(store: StoreFactory, name: str, table: str) -> None:
    on = f" ON {table}" if store.backend == "postgres" else ""
    store.raw(f"DROP TRIGGER {name}{on}")


def _starts(store: StoreFactory, code: str) -> int:
    with store.open(mode="readonly") as s:
        return sum(1 for r in s.records() if r.type == "item-started" and r.payload["code"] == code)


def _caught(
    capsys: pytest.CaptureFixture[str], store: StoreFactory, tmp_path: Path, code: str, words: str
) -> None:
    rc, out, err = run(capsys, "log", "verify")
    assert rc == 1, (out, err)
    assert f"item '{code}'" in err and words in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    before = {c: _starts(store, c) for c in (A, B, C)}
    rc, out, err = run(capsys, "batch", "run", "--device", "sim://lmc", "--auto")
    assert rc == 2, (out, err)
    assert f"item '{code}'" in err and "refusing to mark" in err
    assert {c: _starts(store, c) for c in (A, B, C)} == before  # nothing started, nothing burned
    rc, _, err = run(capsys, "log", "export", "-o", str(tmp_path / "r.csv"))
    assert rc == 1 and f"item '{code}'" in err


def test_transition_table_edit_no_longer_widens_the_guard(db: Path) -> None:
    # the exact edit: the trigger no longer reads the table, so the flip is refused
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO transitions VALUES ('marked', 'pending')")
    with pytest.raises(sqlite3.IntegrityError, match="illegal item state transition"):
        conn.execute(f"UPDATE items SET state = 'pending' WHERE code = '{A}'")
    conn.rollback()
    conn.close()


def test_state_flip_with_the_trigger_dropped(
    capsys: pytest.CaptureFixture[str], store: StoreFactory, tmp_path: Path
) -> None:
    if store.backend == "sqlite":  # the reference table says the flip is fine: it is not read
        store.raw("INSERT INTO transitions VALUES ('marked', 'pending')")
    _drop_trigger(store, "items_transition_guard", "items")
    store.raw(f"UPDATE items SET state = 'pending', attempts = 0 WHERE code = '{A}'")
    if store.backend == "sqlite":
        store.raw("DELETE FROM transitions WHERE from_state = 'marked'")
    _caught(capsys, store, tmp_path, A, "proves it marked")
    # opening for writing restored the guard as code, whatever the table says
    with pytest.raises(RawRefused, match="illegal"):
        store.raw(f"UPDATE items SET state = 'marked' WHERE code = '{C}'")


def test_marked_item_is_never_claimed_even_when_only_its_row_lies(store: StoreFactory) -> None:
    # the store's own claim check: a lying row for the next item is refused at claim time
    _drop_trigger(store, "items_transition_guard", "items")
    store.raw(f"UPDATE items SET state = 'pending' WHERE code = '{B}'")
    with store.open() as s, pytest.raises(StoreError, match=f"item '{B}'.*proves it marked"):
        s.transition(
            B,
            RUNNABLE,
            State.MARKING,
            record_type="item-started",
            actor=Actor("x", "y"),
            payload={},
            count_attempt=True,
        )
    assert _starts(store, B) == 1


def test_serial_edit(
    capsys: pytest.CaptureFixture[str], store: StoreFactory, tmp_path: Path
) -> None:
    store.raw(f"UPDATE items SET serial = 'XX99999' WHERE code = '{C}'")
    _caught(capsys, store, tmp_path, C, "serial is 'XX99999'")


def test_serial_edit_of_a_marked_item_changes_no_report_unseen(
    capsys: pytest.CaptureFixture[str], store: StoreFactory, tmp_path: Path
) -> None:
    store.raw(f"UPDATE items SET serial = 'XX99999' WHERE code = '{A}'")
    _caught(capsys, store, tmp_path, A, "serial is 'XX99999'")


def test_attempts_edit(
    capsys: pytest.CaptureFixture[str], store: StoreFactory, tmp_path: Path
) -> None:
    store.raw(f"UPDATE items SET attempts = 0 WHERE code = '{B}'")
    _caught(capsys, store, tmp_path, B, "attempts is 0 but the journal proves 1")


def test_deleted_row(
    capsys: pytest.CaptureFixture[str], store: StoreFactory, tmp_path: Path
) -> None:
    _drop_trigger(store, "items_no_delete", "items")
    store.raw(f"DELETE FROM items WHERE code = '{A}'")
    _caught(capsys, store, tmp_path, A, "missing from the items table")


def test_added_row(capsys: pytest.CaptureFixture[str], store: StoreFactory, tmp_path: Path) -> None:
    store.raw(
        "INSERT INTO items (batch_id, code, serial, make, model, caliber, owner, layout, extra, "
        "line, state, created_at, updated_at) VALUES (1, 'PE-SUCAMEC-2026-000999', 'Z1', 'Glock', "
        "'17', '', '', 'secondary-mark', '{}', 9, 'pending', 'now', 'now')",
    )
    _caught(capsys, store, tmp_path, "PE-SUCAMEC-2026-000999", "no journal record imports it")
