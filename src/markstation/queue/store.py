"""Where batches, items and the journal live: an abstract :class:`Store` and its SQLite implementation.

The interface is small on purpose so a server database can implement it later (several stations
marking from one central batch). Every state change is one transaction that also appends its journal
record, and the transition is guarded in SQL (``WHERE state IN …`` plus a trigger that refuses any
pair not in :data:`~markstation.queue.states.TRANSITIONS`), so a code cannot reach ``marking`` twice
even if the Python above it is wrong.

SQLite specifics: WAL, ``synchronous=FULL`` (every commit is fsynced before it returns: the
``marking`` intent is on disk before the driver is called), ``BEGIN IMMEDIATE`` for every write.
The runner lock is an exclusive ``flock`` on ``<db>.lock``: the OS drops it when the runner dies,
which is how any later command knows an item left in ``marking`` has no live runner.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from markstation.errors import BatchError, JournalError, StoreError
from markstation.queue.journal import GENESIS, ChainHead, Record, new_record, utc_now
from markstation.queue.states import TRANSITIONS, State

SCHEMA_VERSION = 1
DB_ENV = "MARKSTATION_DB"


def default_db_path() -> Path:
    """``$MARKSTATION_DB`` or ``<user data dir>/markstation.db``."""
    env = os.environ.get(DB_ENV)
    if env:
        return Path(env)
    from platformdirs import user_data_path

    return user_data_path("markstation", appauthor=False) / "markstation.db"


def firearm_key(make: str, serial: str) -> tuple[str, str]:
    """Make + factory serial compared without case, spaces or punctuation."""

    def norm(s: str) -> str:
        return re.sub(r"[\s\-_./]", "", s).casefold()

    return norm(make), norm(serial)


@dataclass(frozen=True)
class NewItem:
    """One validated row of a registry batch, ready to store."""

    code: str
    serial: str
    layout: str
    line: int
    make: str = ""
    model: str = ""
    caliber: str = ""
    owner: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Item:
    """An item as stored."""

    id: int
    batch_id: int
    code: str
    serial: str
    make: str
    model: str
    caliber: str
    owner: str
    layout: str
    extra: dict[str, str]
    line: int
    state: State
    attempts: int
    inspection: str | None
    inspection_note: str | None
    reason: str | None
    job_sha256: str | None
    updated_at: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "batch": self.batch_id,
            "serial": self.serial,
            "make": self.make,
            "model": self.model,
            "caliber": self.caliber,
            "owner": self.owner,
            "layout": self.layout,
            "state": self.state.value,
            "attempts": self.attempts,
            "inspection": self.inspection,
            "inspection_note": self.inspection_note,
            "reason": self.reason,
            "job_sha256": self.job_sha256,
            "updated_at": self.updated_at,
            "extra": dict(self.extra),
        }


@dataclass(frozen=True)
class Actor:
    """Who does something, and where: stamped on every journal record."""

    operator: str
    station: str


class Store(ABC):
    """What the importer, the runner and the log commands need from a store."""

    #: codes this object moved from marking to interrupted (on open or when becoming the runner)
    recovered: list[str]

    # --- items -------------------------------------------------------------------------------

    @abstractmethod
    def import_batch(
        self, *, file: str, sha256: str, items: Sequence[NewItem], actor: Actor
    ) -> int:
        """Store all items and journal ``batch-imported``, in one transaction; return the batch id."""

    @abstractmethod
    def find_codes(self, codes: Iterable[str]) -> dict[str, Item]:
        """Those of ``codes`` already in the store (any state: a code is never reused)."""

    @abstractmethod
    def find_firearms(self) -> dict[tuple[str, str], Item]:
        """Every stored item not voided, by :func:`firearm_key` (make, serial)."""

    @abstractmethod
    def item(self, code: str) -> Item | None: ...

    @abstractmethod
    def items(self, states: Iterable[State] | None = None) -> list[Item]:
        """Items in import order, optionally only those in ``states``."""

    @abstractmethod
    def transition(
        self,
        code: str,
        allowed_from: Iterable[State],
        to: State,
        *,
        record_type: str,
        actor: Actor,
        payload: Mapping[str, Any],
        updates: Mapping[str, Any] | None = None,
        count_attempt: bool = False,
    ) -> Item:
        """Move one item from one of ``allowed_from`` to ``to`` and journal it, atomically.

        Raises BatchError (nothing changed) when the item is unknown or in another state.
        """

    @abstractmethod
    def annotate(
        self,
        code: str,
        in_state: State,
        *,
        record_type: str,
        actor: Actor,
        payload: Mapping[str, Any],
        updates: Mapping[str, Any],
    ) -> Item:
        """Change item fields without changing its state (e.g. the inspection result), journaled."""

    # --- journal -----------------------------------------------------------------------------

    @abstractmethod
    def append(self, record_type: str, *, actor: Actor, payload: Mapping[str, Any]) -> Record: ...

    @abstractmethod
    def records(self) -> Iterator[Record]:
        """Every journal record in seq order (JournalError for a row that cannot even be read)."""

    @abstractmethod
    def head(self) -> ChainHead: ...

    # --- runner exclusivity and crash recovery ----------------------------------------------------

    @abstractmethod
    def acquire_runner(self, actor: Actor) -> list[str]:
        """Become the one runner of this store (StoreError if another live runner is).

        Returns the codes recovered on the way (left in marking by a runner that died).
        """

    @abstractmethod
    def release_runner(self) -> None: ...

    @abstractmethod
    def runner_info(self) -> dict[str, Any] | None:
        """pid/host/operator/since of the live runner, or None."""

    @abstractmethod
    def recover(self, actor: Actor) -> list[str]:
        """Items left in ``marking`` with no live runner -> ``interrupted`` (journaled); their codes."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- conveniences built on the primitives ------------------------------------------------------

    def counts(self) -> dict[State, int]:
        result = {s: 0 for s in State}
        for it in self.items():
            result[it.state] += 1
        return result


# --- SQLite ---------------------------------------------------------------------------------------

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

_ITEM_COLUMNS = (
    "id, batch_id, code, serial, make, model, caliber, owner, layout, extra, line, state, "
    "attempts, inspection, inspection_note, reason, job_sha256, updated_at"
)
#: item fields a transition or annotation may set
_UPDATABLE = frozenset({"inspection", "inspection_note", "reason", "job_sha256"})


def _item(row: Sequence[Any]) -> Item:
    return Item(
        id=row[0],
        batch_id=row[1],
        code=row[2],
        serial=row[3],
        make=row[4],
        model=row[5],
        caliber=row[6],
        owner=row[7],
        layout=row[8],
        extra=json.loads(row[9]),
        line=row[10],
        state=State(row[11]),
        attempts=row[12],
        inspection=row[13],
        inspection_note=row[14],
        reason=row[15],
        job_sha256=row[16],
        updated_at=row[17],
    )


class _FileLock:
    """An exclusive, non-blocking OS lock on a file; released by the OS when the process dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
                import msvcrt

                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        if sys.platform == "win32":  # pragma: no cover
            import msvcrt

            with contextlib.suppress(OSError):
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        # closing drops a flock
        os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None


class SqliteStore(Store):
    """The embedded store: one SQLite file (WAL) plus ``<file>.lock`` for the runner lock.

    Opening it runs crash recovery (see :meth:`recover`) unless ``recover=False``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        actor: Actor | None = None,
        recover: bool = True,
    ) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self._lock = _FileLock(Path(str(self.path) + ".lock"))
        self._conn = self._connect()
        self.recovered: list[str] = []
        if recover:
            self.recovered = self.recover(actor or Actor("markstation", _hostname()))

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

    def _write(self) -> _Tx:
        return _Tx(self._conn, self.path)

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
                json.dumps(rec.payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
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
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            marks = ", ".join("?" * len(chunk))
            for row in self._conn.execute(
                f"SELECT {_ITEM_COLUMNS} FROM items WHERE code IN ({marks})", chunk
            ):
                found[row[2]] = _item(row)
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

    def _set_clause(self, updates: Mapping[str, Any]) -> tuple[str, list[Any]]:
        unknown = set(updates) - _UPDATABLE
        if unknown:
            raise ValueError(f"cannot update item fields {sorted(unknown)}")
        cols = sorted(updates)
        return "".join(f", {c} = ?" for c in cols), [updates[c] for c in cols]

    def _refuse(self, code: str, allowed: Sequence[State], to: State) -> BatchError:
        row = self._conn.execute("SELECT state FROM items WHERE code = ?", (code,)).fetchone()
        if row is None:
            return BatchError(f"no item with code '{code}' in {self.path}")
        wanted = " or ".join(s.value for s in allowed)
        return BatchError(f"item '{code}' is {row[0]}, not {wanted}: cannot make it {to.value}")

    def transition(
        self,
        code: str,
        allowed_from: Iterable[State],
        to: State,
        *,
        record_type: str,
        actor: Actor,
        payload: Mapping[str, Any],
        updates: Mapping[str, Any] | None = None,
        count_attempt: bool = False,
    ) -> Item:
        allowed = list(allowed_from)
        extra_sql, extra_args = self._set_clause(updates or {})
        if count_attempt:
            extra_sql += ", attempts = attempts + 1"
        marks = ", ".join("?" * len(allowed))
        try:
            with self._write() as tx:
                row = self._conn.execute(
                    f"UPDATE items SET state = ?, updated_at = ?{extra_sql} "
                    f"WHERE code = ? AND state IN ({marks}) RETURNING {_ITEM_COLUMNS}",
                    [to.value, utc_now(), *extra_args, code, *(s.value for s in allowed)],
                ).fetchone()
                if row is None:
                    tx.rollback()
                    raise self._refuse(code, allowed, to)
                item = _item(row)
                body = {"code": code, "to": to.value, **payload}
                self._append_in_tx(record_type, actor, body)
        except sqlite3.IntegrityError as exc:
            # the SQL transition guard refused it: nothing changed
            raise BatchError(f"item '{code}': {exc} (to {to.value})") from exc
        return item

    def annotate(
        self,
        code: str,
        in_state: State,
        *,
        record_type: str,
        actor: Actor,
        payload: Mapping[str, Any],
        updates: Mapping[str, Any],
    ) -> Item:
        extra_sql, extra_args = self._set_clause(updates)
        with self._write() as tx:
            row = self._conn.execute(
                f"UPDATE items SET updated_at = ?{extra_sql} WHERE code = ? AND state = ? "
                f"RETURNING {_ITEM_COLUMNS}",
                [utc_now(), *extra_args, code, in_state.value],
            ).fetchone()
            if row is None:
                tx.rollback()
                raise self._refuse(code, [in_state], in_state)
            self._append_in_tx(record_type, actor, {"code": code, **payload})
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
                (os.getpid(), _hostname(), actor.operator, utc_now()),
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
        if row is None:
            return None
        if not self._lock.held:
            probe = _FileLock(self._lock.path)
            if probe.try_acquire():  # the lease row is stale: its runner died
                probe.release()
                return None
        return {"pid": row[0], "host": row[1], "operator": row[2], "since": row[3]}

    def recover(self, actor: Actor) -> list[str]:
        if self._lock.held:
            return self._recover_locked(actor)
        probe = _FileLock(self._lock.path)
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
                "SELECT code, attempts, job_sha256 FROM items WHERE state = 'marking' ORDER BY id"
            ).fetchall()
            for code, attempts, job_sha in rows:
                self._conn.execute(
                    "UPDATE items SET state = 'interrupted', updated_at = ?, reason = ? "
                    "WHERE code = ? AND state = 'marking'",
                    (utc_now(), "runner stopped while marking (crash, kill or power loss)", code),
                )
                self._append_in_tx(
                    "recovery",
                    actor,
                    {
                        "code": code,
                        "to": State.INTERRUPTED.value,
                        "attempt": attempts,
                        "job_sha256": job_sha,
                        "reason": "found in marking with no live runner holding the store lock",
                    },
                )
                codes.append(code)
        return codes


class _Tx:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (fsynced); rollback on any exception."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self._done = False

    def __enter__(self) -> _Tx:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"{self.path}: store is busy or read-only ({exc})") from exc
        return self

    def rollback(self) -> None:
        if not self._done:
            self._done = True
            self.conn.execute("ROLLBACK")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._done:
            return
        self._done = True
        if exc_type is None:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error as err:
                self.conn.execute("ROLLBACK")
                raise StoreError(f"{self.path}: commit failed ({err})") from err
        else:
            self.conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.IntegrityError):
                return  # the caller turns it into a BatchError
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"{self.path}: {exc}") from exc


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


def _hostname() -> str:
    import socket

    return socket.gethostname()
