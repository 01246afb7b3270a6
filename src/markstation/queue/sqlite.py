"""The embedded store: one SQLite file (WAL) plus ``<file>.lock`` for the runner lock.

SQLite specifics: WAL, ``synchronous=FULL`` (every commit is fsynced before it returns: the
``marking`` intent is on disk before the driver is called), ``BEGIN IMMEDIATE`` for every write.
The transition table of :mod:`~markstation.queue.states` is copied into the database and a trigger
refuses any state change not in it, so even a raw ``UPDATE`` cannot skip the intent; two more
triggers keep items undeletable and the journal append-only.

The runner lock is an exclusive ``flock`` on ``<db>.lock`` (:mod:`~markstation.queue.lock`), plus
a one-row ``runner`` table saying who holds it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from markstation.errors import BatchError, JournalError, StoreError
from markstation.queue.identity import firearm_key
from markstation.queue.journal import (
    GENESIS,
    ChainHead,
    Record,
    canonical_json,
    new_record,
    utc_now,
)
from markstation.queue.lock import FileLock, hostname
from markstation.queue.models import Actor, Item, ItemChange, NewItem
from markstation.queue.states import TRANSITIONS, State
from markstation.queue.store import Store

SCHEMA_VERSION = 1
DB_ENV = "MARKSTATION_DB"


def default_db_path() -> Path:
    """``$MARKSTATION_DB`` or ``<user data dir>/markstation.db``."""
    env = os.environ.get(DB_ENV)
    if env:
        return Path(env)
    from platformdirs import user_data_path

    return user_data_path("markstation", appauthor=False) / "markstation.db"


_STATES_SQL = ", ".join(f"'{s.value}'" for s in State)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY,
    file TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    items INTEGER NOT NULL,
    imported_at TEXT NOT NULL,
    operator TEXT NOT NULL,
    station TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    batch_id INTEGER NOT NULL REFERENCES batches(id),
    code TEXT NOT NULL UNIQUE,
    serial TEXT NOT NULL,
    make TEXT NOT NULL,
    model TEXT NOT NULL,
    caliber TEXT NOT NULL,
    owner TEXT NOT NULL,
    layout TEXT NOT NULL,
    extra TEXT NOT NULL,
    line INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ({_STATES_SQL})),
    attempts INTEGER NOT NULL DEFAULT 0,
    inspection TEXT,
    inspection_note TEXT,
    reason TEXT,
    job_sha256 TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS items_state ON items(state);
CREATE TABLE IF NOT EXISTS transitions (
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    PRIMARY KEY (from_state, to_state)
);
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    time TEXT NOT NULL,
    operator TEXT NOT NULL,
    station TEXT NOT NULL,
    payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runner (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    operator TEXT NOT NULL,
    since TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS items_transition_guard BEFORE UPDATE OF state ON items
WHEN NOT EXISTS (SELECT 1 FROM transitions WHERE from_state = OLD.state AND to_state = NEW.state)
BEGIN SELECT RAISE(ABORT, 'illegal item state transition'); END;
CREATE TRIGGER IF NOT EXISTS items_no_delete BEFORE DELETE ON items
BEGIN SELECT RAISE(ABORT, 'items are never deleted'); END;
CREATE TRIGGER IF NOT EXISTS journal_no_update BEFORE UPDATE ON journal
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER IF NOT EXISTS journal_no_delete BEFORE DELETE ON journal
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
"""


#: the items columns, named and ordered like the fields of :class:`Item`
_ITEM_FIELDS = tuple(f.name for f in fields(Item))
_ITEM_COLUMNS = ", ".join(_ITEM_FIELDS)


def _item(row: Sequence[Any]) -> Item:
    values = dict(zip(_ITEM_FIELDS, row, strict=True))
    values["extra"] = json.loads(values["extra"])
    values["state"] = State(values["state"])
    return Item(**values)


class SqliteStore(Store):
    """The embedded store. Opening it runs crash recovery (see :meth:`recover`) unless ``recover=False``."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        actor: Actor | None = None,
        recover: bool = True,
    ) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self._lock = FileLock(Path(str(self.path) + ".lock"))
        self._conn = self._connect()
        self.recovered: list[str] = []
        if recover:
            self.recovered = self.recover(actor or Actor("markstation", hostname()))

    @property
    def location(self) -> str:
        return str(self.path)

    # --- connection and schema ---------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{self.path}: cannot open the store ({exc})") from exc
        try:
            conn.execute("PRAGMA busy_timeout=10000")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("BEGIN IMMEDIATE")
            for statement in _split_sql(_SCHEMA):
                conn.execute(statement)
            row = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                conn.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
                conn.executemany(
                    "INSERT OR IGNORE INTO transitions VALUES (?, ?)",
                    [(a.value, b.value) for a, b in sorted(TRANSITIONS)],
                )
            elif int(row[0]) > SCHEMA_VERSION:
                conn.execute("ROLLBACK")
                raise StoreError(
                    f"{self.path}: store schema {row[0]} is newer than this markstation "
                    f"understands ({SCHEMA_VERSION})"
                )
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(f"{self.path}: not a markstation store ({exc})") from exc
        return conn

    def close(self) -> None:
        self.release_runner()
        self._conn.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (fsynced); rollback on any exception.

        An IntegrityError (a trigger or a UNIQUE refused the write) is re-raised as it is, for
        the caller to turn into a BatchError; any other SQLite error becomes a StoreError.
        """
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"{self.path}: store is busy or read-only ({exc})") from exc
        try:
            yield
        except sqlite3.IntegrityError:
            self._conn.execute("ROLLBACK")
            raise
        except sqlite3.Error as exc:
            self._conn.execute("ROLLBACK")
            raise StoreError(f"{self.path}: {exc}") from exc
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as err:
            self._conn.execute("ROLLBACK")
            raise StoreError(f"{self.path}: commit failed ({err})") from err

    # --- journal -----------------------------------------------------------------------------------

    def _append_in_tx(self, record_type: str, actor: Actor, payload: Mapping[str, Any]) -> Record:
        row = self._conn.execute(
            "SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
        rec = new_record(
            seq, prev, record_type, operator=actor.operator, station=actor.station, payload=payload
        )
        self._conn.execute(
            "INSERT INTO journal (seq, type, time, operator, station, payload, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                rec.seq,
                rec.type,
                rec.time,
                rec.operator,
                rec.station,
                canonical_json(rec.payload),
                rec.prev_hash,
                rec.hash,
            ),
        )
        return rec

    def append(self, record_type: str, *, actor: Actor, payload: Mapping[str, Any]) -> Record:
        with self._write():
            return self._append_in_tx(record_type, actor, payload)

    def records(self) -> Iterator[Record]:
        cur = self._conn.execute(
            "SELECT seq, type, time, operator, station, payload, prev_hash, hash "
            "FROM journal ORDER BY seq"
        )
        for row in cur:
            try:
                payload = json.loads(row[5])
                if not isinstance(payload, dict):
                    raise ValueError("not an object")
            except ValueError as exc:
                raise JournalError(
                    f"journal record seq {row[0]} ({row[1]}): payload is not readable JSON (edited)"
                ) from exc
            yield Record(row[0], row[1], row[2], row[3], row[4], payload, row[6], row[7])

    def head(self) -> ChainHead:
        row = self._conn.execute(
            "SELECT COUNT(*), (SELECT hash FROM journal ORDER BY seq DESC LIMIT 1) FROM journal"
        ).fetchone()
        return ChainHead(int(row[0]), row[1] or GENESIS)

    # --- items -----------------------------------------------------------------------------------------

    def import_batch(
        self, *, file: str, sha256: str, items: Sequence[NewItem], actor: Actor
    ) -> int:
        now = utc_now()
        try:
            with self._write():
                cur = self._conn.execute(
                    "INSERT INTO batches (file, sha256, items, imported_at, operator, station) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (file, sha256, len(items), now, actor.operator, actor.station),
                )
                batch_id = int(cur.lastrowid or 0)
                self._conn.executemany(
                    "INSERT INTO items (batch_id, code, serial, make, model, caliber, owner, layout, "
                    "extra, line, state, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                    [
                        (
                            batch_id,
                            it.code,
                            it.serial,
                            it.make,
                            it.model,
                            it.caliber,
                            it.owner,
                            it.layout,
                            json.dumps(dict(it.extra), sort_keys=True, ensure_ascii=False),
                            it.line,
                            now,
                            now,
                        )
                        for it in items
                    ],
                )
                self._append_in_tx(
                    "batch-imported",
                    actor,
                    {
                        "batch": batch_id,
                        "file": file,
                        "sha256": sha256,
                        "items": len(items),
                        "codes": [it.code for it in items],
                    },
                )
        except sqlite3.IntegrityError as exc:
            # another import won a race for one of the codes; the transaction rolled back
            raise BatchError(
                f"{file}: nothing imported, a code is already in the store ({exc})"
            ) from exc
        return batch_id

    def find_codes(self, codes: Iterable[str]) -> dict[str, Item]:
        wanted = list(dict.fromkeys(codes))
        found: dict[str, Item] = {}
        for i in range(0, len(wanted), 500):  # stay below SQLite's bound-parameter limit
            chunk = wanted[i : i + 500]
            marks = ", ".join("?" * len(chunk))
            for row in self._conn.execute(
                f"SELECT {_ITEM_COLUMNS} FROM items WHERE code IN ({marks})", chunk
            ):
                it = _item(row)
                found[it.code] = it
        return found

    def find_firearms(self) -> dict[tuple[str, str], Item]:
        result: dict[tuple[str, str], Item] = {}
        for row in self._conn.execute(
            f"SELECT {_ITEM_COLUMNS} FROM items WHERE state <> 'voided' ORDER BY id"
        ):
            it = _item(row)
            result.setdefault(firearm_key(it.make, it.serial), it)
        return result

    def item(self, code: str) -> Item | None:
        row = self._conn.execute(
            f"SELECT {_ITEM_COLUMNS} FROM items WHERE code = ?", (code,)
        ).fetchone()
        return _item(row) if row else None

    def items(self, states: Iterable[State] | None = None) -> list[Item]:
        if states is None:
            rows = self._conn.execute(f"SELECT {_ITEM_COLUMNS} FROM items ORDER BY id")
        else:
            wanted = [s.value for s in states]
            marks = ", ".join("?" * len(wanted))
            rows = self._conn.execute(
                f"SELECT {_ITEM_COLUMNS} FROM items WHERE state IN ({marks}) ORDER BY id", wanted
            )
        return [_item(r) for r in rows]

    def counts(self) -> dict[State, int]:
        result = {s: 0 for s in State}
        for state, n in self._conn.execute("SELECT state, COUNT(*) FROM items GROUP BY state"):
            result[State(state)] = int(n)
        return result

    def _apply(self, change: ItemChange) -> Item | None:
        try:
            # when the guard matched no row nothing was written: the commit is empty
            with self._write():
                item = self._apply_in_tx(change)
        except sqlite3.IntegrityError as exc:
            # the SQL transition guard refused it: nothing changed
            to = change.to.value if change.to else "unchanged"
            raise BatchError(f"item '{change.code}': {exc} (to {to})") from exc
        return item

    def _apply_in_tx(self, change: ItemChange) -> Item | None:
        """The guarded UPDATE plus its record, inside the caller's transaction."""
        cols = sorted(change.updates)
        sets = ["updated_at = ?", *(f"{c} = ?" for c in cols)]
        args: list[Any] = [utc_now(), *(change.updates[c] for c in cols)]
        if change.to is not None:
            sets.insert(0, "state = ?")
            args.insert(0, change.to.value)
        if change.count_attempt:
            sets.append("attempts = attempts + 1")
        marks = ", ".join("?" * len(change.allowed_from))
        row = self._conn.execute(
            f"UPDATE items SET {', '.join(sets)} WHERE code = ? AND state IN ({marks}) "
            f"RETURNING {_ITEM_COLUMNS}",
            [*args, change.code, *(s.value for s in change.allowed_from)],
        ).fetchone()
        if row is None:
            return None
        self._append_in_tx(change.record_type, change.actor, change.payload)
        return _item(row)

    # --- runner lock and recovery ---------------------------------------------------------------------

    def acquire_runner(self, actor: Actor) -> list[str]:
        if not self._lock.try_acquire():
            who = self.runner_info()
            detail = (
                f" (pid {who['pid']} on {who['host']}, operator {who['operator']}, since {who['since']})"
                if who
                else ""
            )
            raise StoreError(f"{self.path}: another runner is marking from this store{detail}")
        with self._write():
            self._conn.execute("DELETE FROM runner")
            self._conn.execute(
                "INSERT INTO runner (id, pid, host, operator, since) VALUES (1, ?, ?, ?, ?)",
                (os.getpid(), hostname(), actor.operator, utc_now()),
            )
        # we hold the lock: anything still in marking belongs to a runner that died
        codes = self._recover_locked(actor)
        self.recovered.extend(codes)
        return codes

    def release_runner(self) -> None:
        if not self._lock.held:
            return
        try:
            with self._write():
                self._conn.execute("DELETE FROM runner WHERE pid = ?", (os.getpid(),))
        finally:
            self._lock.release()

    def runner_info(self) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT pid, host, operator, since FROM runner").fetchone()
        if row is None or self._lock.is_free():  # a free lock: the lease row is stale
            return None
        return {"pid": row[0], "host": row[1], "operator": row[2], "since": row[3]}

    def recover(self, actor: Actor) -> list[str]:
        if self._lock.held:
            return self._recover_locked(actor)
        # hold the lock while recovering so no runner can start in between
        probe = FileLock(self._lock.path)
        if not probe.try_acquire():
            return []  # a live runner owns its marking item
        try:
            return self._recover_locked(actor)
        finally:
            probe.release()

    def _recover_locked(self, actor: Actor) -> list[str]:
        codes: list[str] = []
        with self._write():
            rows = self._conn.execute(
                f"SELECT {_ITEM_COLUMNS} FROM items WHERE state = 'marking' ORDER BY id"
            ).fetchall()
            # one transaction for all of them: recovery is all or nothing
            for row in rows:
                item = _item(row)
                if self._apply_in_tx(self.recovery_change(item, actor)) is not None:
                    codes.append(item.code)
        return codes


def _split_sql(script: str) -> list[str]:
    """Statements of the schema script (triggers contain ';' inside BEGIN … END)."""
    statements: list[str] = []
    buf = ""
    for part in script.split(";"):
        buf += part
        if sqlite3.complete_statement(buf + ";"):
            if buf.strip():
                statements.append(buf.strip())
            buf = ""
        else:
            buf += ";"
    return statements
