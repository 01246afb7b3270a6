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
import errno
import json
import os
import sqlite3
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, Literal

from markstation.errors import (
    BatchError,
    JournalError,
    StoreCorrupt,
    StoreError,
    StoreFull,
    StoreLocked,
    StoreNotFound,
    StoreReadOnly,
)
from markstation.i18n import _
from markstation.queue.identity import firearm_key
from markstation.queue.journal import (
    ChainHead,
    Record,
    StoredCheckpoint,
    canonical_json,
    new_record,
    utc_now,
)
from markstation.queue.lock import FileLock, hostname
from markstation.queue.merkle import EMPTY_ROOT, MerkleTree, leaf_hash, node_hash, root_hash
from markstation.queue.models import Actor, Item, ItemChange, NewItem
from markstation.queue.replay import check_item, import_cut_to, replay
from markstation.queue.states import TRANSITIONS, State
from markstation.queue.store import OperatorInsert, OperatorRow, Store

SCHEMA_VERSION = 1
DB_ENV = "MARKSTATION_DB"


def default_db_path() -> Path:
    """``$MARKSTATION_DB`` or ``<user data dir>/markstation.db``."""
    env = os.environ.get(DB_ENV)
    if env:
        return Path(env)
    from platformdirs import user_data_path

    return user_data_path("markstation", appauthor=False) / "markstation.db"


def _sidecars(path: Path) -> tuple[Path, ...]:
    return tuple(Path(str(path) + suffix) for suffix in ("-wal", "-shm", "-journal"))


_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_READONLY_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM}


def _filesystem_state(path: Path) -> str | None:
    """'read-only' or 'full' when the filesystem under ``path`` is, else None (or unknown)."""
    try:
        vfs = os.statvfs(path.parent if not path.is_dir() else path)
    except (OSError, AttributeError):
        return None
    if vfs.f_flag & os.ST_RDONLY:
        return "read-only"
    if vfs.f_bavail * vfs.f_frsize < 64 * 1024:
        return "full"
    # a filesystem that failed (ext4 errors=remount-ro) answers EROFS before its flags say so
    probe = path.parent / f".{path.name}.probe-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        return "read-only" if exc.errno == errno.EROFS else None
    try:
        os.write(fd, b"\0" * 4096)
        os.fsync(fd)
    except OSError as exc:
        if exc.errno in _FULL_ERRNOS:
            return "full"
        return "read-only" if exc.errno == errno.EROFS else None
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            probe.unlink()
    return None


def store_failure(path: Path, exc: BaseException, doing: str = "") -> StoreError:
    """One line for an SQLite or OS failure on the store at ``path``, as the right StoreError.

    SQLite's own result code decides where it is clear (SQLITE_FULL, SQLITE_READONLY, SQLITE_BUSY,
    SQLITE_NOTADB, SQLITE_CORRUPT); for an I/O error or a file that cannot be opened the
    filesystem is asked (mounted read-only? no space left?), because SQLite reports a write that
    failed with ENOSPC or EROFS during fsync as a bare "disk I/O error".
    """
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    code = exc.errno if isinstance(exc, OSError) else None
    detail = (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc)
    what = f" ({doing})" if doing else ""
    kind: str | None = None
    if name.startswith("SQLITE_FULL") or code in _FULL_ERRNOS:
        kind = "full"
    elif name.startswith("SQLITE_READONLY") or code in _READONLY_ERRNOS:
        kind = "read-only"
    elif name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StoreLocked(
            _("locked: {path}: another process holds the store{what}: {detail}").format(
                path=path, what=what, detail=detail
            )
        )
    elif name.startswith("SQLITE_NOTADB"):
        return StoreCorrupt(
            _("not a markstation store: {path} is not an SQLite database: {detail}").format(
                path=path, detail=detail
            )
        )
    elif name.startswith("SQLITE_CORRUPT"):
        return StoreCorrupt(
            _("corrupt: {path}: the store file is damaged{what}: {detail}").format(
                path=path, what=what, detail=detail
            )
        )
    else:
        kind = _filesystem_state(path)
    if kind == "full":
        return StoreFull(
            _("disk full: {path}{what}: {detail}; free space, then run it again").format(
                path=path, what=what, detail=detail
            )
        )
    if kind == "read-only":
        return StoreReadOnly(
            _("read-only: {path} cannot be written{what}: {detail}").format(
                path=path, what=what, detail=detail
            )
        )
    if name.startswith("SQLITE_CANTOPEN"):
        return StoreError(
            _("cannot open: {path}{what}: {detail}").format(path=path, what=what, detail=detail)
        )
    return StoreError(f"{path}{what}: {detail}")


_STATES_SQL = ", ".join(f"'{s.value}'" for s in State)

#: the allowed (from, to) pairs written into the trigger itself: the trigger reads no table, so
#: editing a table cannot widen them (the ``transitions`` table is kept for reference only)
_ALLOWED_SQL = " OR ".join(
    f"(OLD.state = '{a.value}' AND NEW.state = '{b.value}')" for a, b in sorted(TRANSITIONS)
)
_TRANSITION_GUARD = (
    "CREATE TRIGGER items_transition_guard BEFORE UPDATE OF state ON items\n"
    f"WHEN NOT ({_ALLOWED_SQL})\n"
    "BEGIN SELECT RAISE(ABORT, 'illegal item state transition'); END"
)

#: the journal's columns, in Record's order
_RECORD_COLUMNS = "seq, type, time, operator, station, payload, prev_hash, hash"

#: a record's item code, or NULL; never an error, so an edited payload is found by the replay
#: (log verify names it) instead of failing every query
_CODE_OF = "(CASE WHEN json_valid(payload) THEN json_extract(payload, '$.code') END)"

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
-- the records about one item, found without reading the whole journal (see _records_about)
CREATE INDEX IF NOT EXISTS journal_code ON journal ({_CODE_OF});
CREATE TABLE IF NOT EXISTS runner (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    operator TEXT NOT NULL,
    since TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS operators (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    role TEXT NOT NULL CHECK (role IN ('technician', 'supervisor')),
    pin_hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    locked_until TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS operators_no_delete BEFORE DELETE ON operators
BEGIN SELECT RAISE(ABORT, 'operators are never deleted (disable them)'); END;
{_TRANSITION_GUARD.replace("CREATE TRIGGER", "CREATE TRIGGER IF NOT EXISTS", 1)};
CREATE TRIGGER IF NOT EXISTS items_no_delete BEFORE DELETE ON items
BEGIN SELECT RAISE(ABORT, 'items are never deleted'); END;
CREATE TRIGGER IF NOT EXISTS journal_no_update BEFORE UPDATE ON journal
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER IF NOT EXISTS journal_no_delete BEFORE DELETE ON journal
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TABLE IF NOT EXISTS journal_nodes (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    id INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    reason TEXT NOT NULL,
    note TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS journal_nodes_no_update BEFORE UPDATE ON journal_nodes
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER IF NOT EXISTS journal_nodes_no_delete BEFORE DELETE ON journal_nodes
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_update BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_delete BEFORE DELETE ON checkpoints
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


#: how a store is opened: ``create`` (a missing file becomes a new store; the library default),
#: ``write`` (the store must exist), ``read`` (must exist; read-write when the file can be written,
#: else read-only) and ``readonly`` (never written: SQLite ``mode=ro``, or ``immutable=1``)
OpenMode = Literal["create", "write", "read", "readonly"]

_SQLITE_MAGIC = b"SQLite format 3\x00"
#: tables every markstation store has (a newer markstation may add more)
_REQUIRED_TABLES = frozenset({"meta", "batches", "items", "journal", "runner"})


class SqliteStore(Store):
    """The embedded store. Opening it runs crash recovery (see :meth:`recover`) unless ``recover=False``.

    Nothing is ever initialised over an existing file: a 0-byte file, a file that is not SQLite, or
    an SQLite database without markstation's tables is refused (StoreCorrupt); only
    ``mode="create"`` makes a new store, and only where no file exists (``created`` says it did).
    Every SQLite or OS failure becomes one StoreError subclass: StoreFull ("disk full: …"),
    StoreReadOnly ("read-only: …"), StoreLocked ("locked: …"), StoreCorrupt, StoreNotFound
    ("missing: …").
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        actor: Actor | None = None,
        recover: bool = True,
        mode: OpenMode = "create",
    ) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.mode: OpenMode = mode
        #: opened read-only (``mode=ro`` or ``immutable=1``): every write raises StoreReadOnly
        self.readonly = False
        #: this object created the store file
        self.created = False
        #: what the user should know about how the store was opened (e.g. a WAL file ignored)
        self.notes: list[str] = []
        self._lock = FileLock(Path(str(self.path) + ".lock"))
        #: import records by seq, parsed once (the journal is append-only)
        self._import_records: dict[int, Record] = {}
        self._conn = self._open()
        if not self.readonly:
            self._migrate_tree()
        self.recovered: list[str] = []
        if recover and not self.readonly:
            try:
                self.recovered = self.recover(actor or Actor("markstation", hostname()))
            except (StoreFull, StoreReadOnly) as exc:
                if mode != "read":
                    self._conn.close()
                    raise
                # a reading command still reads; the items stay in marking until a write can
                self.notes.append(_("crash recovery not done: {error}").format(error=exc))

    @property
    def location(self) -> str:
        return str(self.path)

    # --- connection and schema ---------------------------------------------------------------

    def _failure(self, exc: BaseException, doing: str = "") -> StoreError:
        return store_failure(self.path, exc, doing)

    def _open(self) -> sqlite3.Connection:
        try:
            st: os.stat_result | None = self.path.stat()
        except FileNotFoundError:
            st = None
        except OSError as exc:
            raise self._failure(exc, _("cannot look at the store")) from exc
        if st is None:
            if self.mode != "create":
                raise StoreNotFound(
                    _(
                        "missing: no store at {path} (a new store is only created by "
                        "'markstation batch import')"
                    ).format(path=self.path)
                )
            return self._create()
        self._check_file(st)
        if self.mode == "readonly":
            return self._open_readonly()
        try:
            return self._open_readwrite()
        except (StoreReadOnly, StoreFull):
            if self.mode != "read":
                raise
            # a reading command reads what it can: read-only, without crash recovery
            return self._open_readonly()

    def _check_file(self, st: os.stat_result) -> None:
        where = self.path
        if stat.S_ISDIR(st.st_mode):
            raise StoreCorrupt(
                _("not a markstation store: {path} is a directory").format(path=where)
            )
        if st.st_size == 0:
            raise StoreCorrupt(
                _(
                    "empty file: {path} is 0 bytes, not a markstation store; refusing to "
                    "initialise over it (restore the store from a backup, or give a path that "
                    "does not exist for a new store)"
                ).format(path=where)
            )
        try:
            with self.path.open("rb") as fh:
                header = fh.read(len(_SQLITE_MAGIC))
        except OSError as exc:
            raise StoreError(
                _("cannot read: {path}: {error}").format(path=where, error=exc.strerror or exc)
            ) from exc
        if header != _SQLITE_MAGIC:
            raise StoreCorrupt(
                _(
                    "not a markstation store: {path} is not an SQLite database "
                    "({size} bytes; left untouched)"
                ).format(path=where, size=st.st_size)
            )

    @staticmethod
    def _configure(conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA foreign_keys=ON")

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        """Refuse an SQLite file that is not a markstation store, or one of another schema."""
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = _REQUIRED_TABLES - tables
        if missing:
            raise StoreCorrupt(
                _(
                    "not a markstation store: {path} is an SQLite database without "
                    "markstation's tables ({tables} missing)"
                ).format(path=self.path, tables=", ".join(sorted(missing)))
            )
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        try:
            version = int(row[0]) if row is not None else None
        except (TypeError, ValueError):
            version = None
        if version is None:
            raise StoreCorrupt(
                _("not a markstation store: {path} has no schema version").format(path=self.path)
            )
        if version > SCHEMA_VERSION:
            raise StoreCorrupt(
                _(
                    "wrong schema: {path}: store schema {version} is newer than this "
                    "markstation understands ({supported}); use a newer markstation"
                ).format(path=self.path, version=version, supported=SCHEMA_VERSION)
            )
        if version < SCHEMA_VERSION:
            raise StoreCorrupt(
                _(
                    "wrong schema: {path}: store schema {version} is older than "
                    "{supported} and cannot be upgraded by this markstation"
                ).format(path=self.path, version=version, supported=SCHEMA_VERSION)
            )

    def _create(self) -> sqlite3.Connection:
        """A new store where no file exists; a failure leaves no file behind (never a 0-byte one)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            # created by another process in between: open it like any existing store
            self.mode = "write"
            return self._open()
        except OSError as exc:
            raise self._failure(exc, _("cannot create the store")) from exc
        os.close(fd)
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
            self._configure(conn)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("BEGIN IMMEDIATE")
            for statement in _split_sql(_SCHEMA):
                conn.execute(statement)
            conn.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            conn.executemany(
                "INSERT OR IGNORE INTO transitions VALUES (?, ?)",
                [(a.value, b.value) for a, b in sorted(TRANSITIONS)],
            )
            conn.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            if conn is not None:
                conn.close()
            for leftover in (self.path, *_sidecars(self.path)):
                with contextlib.suppress(OSError):
                    leftover.unlink()
            raise self._failure(exc, _("cannot create the store")) from exc
        self.created = True
        return conn

    def _open_readwrite(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
        except sqlite3.Error as exc:
            raise self._failure(exc, _("cannot open the store")) from exc
        try:
            self._configure(conn)
            self._check_schema(conn)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                # tables and triggers a newer markstation added; the transition guard as code
                for statement in _split_sql(_SCHEMA):
                    conn.execute(statement)
                self._restore_guards(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise
        except StoreError:
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            raise self._failure(exc, _("cannot open the store")) from exc
        return conn

    @staticmethod
    def _restore_guards(conn: sqlite3.Connection) -> None:
        """The transition trigger and table as this code says, whatever was there (older or edited)."""
        row = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' "
            "AND name = 'items_transition_guard'"
        ).fetchone()
        if row is None or row[0] != _TRANSITION_GUARD:
            conn.execute("DROP TRIGGER IF EXISTS items_transition_guard")
            conn.execute(_TRANSITION_GUARD)
        stored = {(a, b) for a, b in conn.execute("SELECT from_state, to_state FROM transitions")}
        wanted = {(a.value, b.value) for a, b in TRANSITIONS}
        if stored != wanted:
            conn.execute("DELETE FROM transitions")
            conn.executemany("INSERT INTO transitions VALUES (?, ?)", sorted(wanted))

    def _open_readonly(self) -> sqlite3.Connection:
        """SQLite ``mode=ro``; where even that cannot work (no -shm can be created beside a WAL
        store in a read-only directory), ``immutable=1``."""
        base = self.path.absolute().as_uri()
        last: BaseException | None = None
        for query in ("mode=ro", "mode=ro&immutable=1"):
            try:
                conn = sqlite3.connect(f"{base}?{query}", uri=True, isolation_level=None)
            except sqlite3.Error as exc:
                last = exc
                continue
            try:
                self._configure(conn)
                conn.execute("PRAGMA query_only=ON")
                self._check_schema(conn)
            except StoreError:
                conn.close()
                raise
            except sqlite3.Error as exc:
                conn.close()
                last = exc
                continue
            self.readonly = True
            wal = Path(str(self.path) + "-wal")
            if "immutable" in query and wal.exists() and wal.stat().st_size > 0:
                self.notes.append(
                    _(
                        "{wal} cannot be read on this read-only copy: changes still in it are "
                        "not shown (copy the store with its -wal and -shm files to a writable "
                        "place)"
                    ).format(wal=wal)
                )
            return conn
        assert last is not None
        raise self._failure(last, _("cannot open the store read-only"))

    def close(self) -> None:
        self.release_runner()
        self._conn.close()

    def _rollback(self) -> None:
        """ROLLBACK if a transaction is still open (SQLite ends one itself after a failed COMMIT)."""
        if self._conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (fsynced); rollback on any exception.

        An IntegrityError (a trigger or a UNIQUE refused the write) is re-raised as it is, for
        the caller to turn into a BatchError; any other SQLite error becomes a StoreError
        subclass naming what happened (disk full, read-only, locked, …).
        """
        if self.readonly:
            raise StoreReadOnly(
                _(
                    "read-only: {path} was opened read-only; this command needs to write to it"
                ).format(path=self.path)
            )
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._failure(exc, _("cannot start a change")) from exc
        try:
            yield
        except sqlite3.IntegrityError:
            self._rollback()
            raise
        except sqlite3.Error as exc:
            self._rollback()
            raise self._failure(exc, _("the change was not stored")) from exc
        except BaseException:
            self._rollback()
            raise
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as err:
            self._rollback()
            raise self._failure(err, _("commit failed, the change was not stored")) from err

    # --- journal -----------------------------------------------------------------------------------

    def _append_in_tx(self, record_type: str, actor: Actor, payload: Mapping[str, Any]) -> Record:
        row = self._conn.execute("SELECT MAX(seq) FROM journal").fetchone()
        seq = (row[0] or 0) + 1
        rec = new_record(
            seq, record_type, operator=actor.operator, station=actor.station, payload=payload
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
        self._add_leaf_in_tx(seq - 1, bytes.fromhex(rec.hash))
        return rec

    def _add_leaf_in_tx(self, index: int, leaf: bytes) -> None:
        """Store the leaf and every subtree it completes (no rehash of the rest of the tree)."""
        args: list[Any] = [0, index, leaf]
        level, h = 0, leaf
        while index & 1:
            h = node_hash(self.tree_node(level, index - 1), h)
            level, index = level + 1, index >> 1
            args += (level, index, h)
        marks = ", ".join(["(?, ?, ?)"] * (len(args) // 3))
        self._conn.execute(f"INSERT INTO journal_nodes (level, idx, hash) VALUES {marks}", args)

    def append(self, record_type: str, *, actor: Actor, payload: Mapping[str, Any]) -> Record:
        with self._write():
            return self._append_in_tx(record_type, actor, payload)

    def records(self) -> Iterator[Record]:
        cur = self._conn.execute(f"SELECT {_RECORD_COLUMNS} FROM journal ORDER BY seq")
        for row in cur:
            yield self._row_record(row)

    @staticmethod
    def _row_record(row: Sequence[Any]) -> Record:
        try:
            payload = json.loads(row[5])
            if not isinstance(payload, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            raise JournalError(
                f"journal record seq {row[0]} ({row[1]}): payload is not readable JSON (edited)"
            ) from exc
        return Record(row[0], row[1], row[2], row[3], row[4], payload, row[6], row[7])

    def head(self) -> ChainHead:
        # one read transaction, so size and nodes agree even while another process appends
        outer = self._conn.in_transaction
        if not outer:
            self._conn.execute("BEGIN")
        try:
            row = self._conn.execute(
                "SELECT COUNT(*) FROM journal_nodes WHERE level = 0"
            ).fetchone()
            size = int(row[0])
            root = root_hash(self.tree_node, size) if size else EMPTY_ROOT
        finally:
            if not outer:
                self._conn.execute("COMMIT")
        return ChainHead(size, root.hex())

    # --- Merkle tree and checkpoints ---------------------------------------------------------------

    def tree_node(self, level: int, index: int) -> bytes:
        row = self._conn.execute(
            "SELECT hash FROM journal_nodes WHERE level = ? AND idx = ?", (level, index)
        ).fetchone()
        if row is None:
            raise JournalError(f"{self.path}: tree node ({level}, {index}) is missing (edited)")
        return bytes(row[0])

    def tree_nodes(self) -> Iterator[tuple[int, int, bytes]]:
        for level, index, h in self._conn.execute(
            "SELECT level, idx, hash FROM journal_nodes ORDER BY level, idx"
        ):
            yield int(level), int(index), bytes(h)

    def add_checkpoint(self, text: str, *, reason: str) -> StoredCheckpoint:
        when = utc_now()
        with self._write():
            cur = self._conn.execute(
                "INSERT INTO checkpoints (time, reason, note) VALUES (?, ?, ?)",
                (when, reason, text),
            )
        return StoredCheckpoint(int(cur.lastrowid or 0), when, reason, text)

    def checkpoints(self) -> list[StoredCheckpoint]:
        rows = self._conn.execute("SELECT id, time, reason, note FROM checkpoints ORDER BY id")
        return [StoredCheckpoint(int(r[0]), r[1], r[2], r[3]) for r in rows]

    def _migrate_tree(self) -> None:
        """A store from before the tree: add the leaves of its (hash-chained) records, once."""
        if self._conn.execute("SELECT 1 FROM journal_nodes LIMIT 1").fetchone() is not None:
            return
        if self._conn.execute("SELECT 1 FROM journal LIMIT 1").fetchone() is None:
            return
        tree = MerkleTree(leaf_hash(rec.leaf_bytes()) for rec in self.records())
        with self._write():
            if self._conn.execute("SELECT 1 FROM journal_nodes LIMIT 1").fetchone() is None:
                self._conn.executemany(
                    "INSERT INTO journal_nodes (level, idx, hash) VALUES (?, ?, ?)", tree.nodes()
                )

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
                        # what the row holds, so the journal proves every field (queue.replay)
                        "rows": [
                            {
                                "code": it.code,
                                "serial": it.serial,
                                "make": it.make,
                                "model": it.model,
                                "caliber": it.caliber,
                                "owner": it.owner,
                                "layout": it.layout,
                                "line": it.line,
                                "extra": dict(it.extra),
                            }
                            for it in items
                        ],
                    },
                )
        except sqlite3.IntegrityError as exc:
            # another import won a race for one of the codes; the transaction rolled back
            raise BatchError(
                _("{file}: nothing imported, a code is already in the store ({error})").format(
                    file=file, error=exc
                )
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
                if State.MARKING not in change.allowed_from:
                    # acting on an item: the journal decides; leaving marking records what the
                    # device did, which is evidence and is never refused
                    self._check_against_journal(change.code)
                item = self._apply_in_tx(change)
        except sqlite3.IntegrityError as exc:
            # the SQL transition guard refused it: nothing changed
            to = change.to.value if change.to else "unchanged"
            raise BatchError(f"item '{change.code}': {exc} (to {to})") from exc
        return item

    def _records_about(self, code: str) -> list[Record]:
        """The journal records that prove ``code``: its import record (cut down to it) and every
        record naming it, in seq order — indexed, so a claim costs the same in a long campaign."""
        found = [
            self._row_record(row)
            for row in self._conn.execute(
                f"SELECT {_RECORD_COLUMNS} FROM journal WHERE {_CODE_OF} = ? ORDER BY seq",
                (code,),
            )
        ]
        for (seq,) in self._conn.execute(
            "SELECT seq FROM journal WHERE type = 'batch-imported' ORDER BY seq"
        ).fetchall():
            rec = self._import_records.get(seq)
            if rec is None:
                row = self._conn.execute(
                    f"SELECT {_RECORD_COLUMNS} FROM journal WHERE seq = ?", (seq,)
                ).fetchone()
                rec = self._import_records[seq] = self._row_record(row)
            cut = import_cut_to(rec, [code])
            if cut is not None:
                found.append(cut)
        return sorted(found, key=lambda r: r.seq)

    def _check_against_journal(self, code: str) -> None:
        """Inside the write: refuse to act on an item whose row is not what its journal proves.

        The journal decides (:mod:`markstation.queue.replay`): a row edited outside markstation
        (state, serial, attempts, …) or a journal record about the item that does not replay is
        refused with StoreError naming the item, and nothing is changed.
        """
        try:
            proven = replay(self._records_about(code)).get(code)
            check_item(self.item(code), proven, code=code)
        except JournalError as exc:
            raise StoreError(
                _("{path}: refused, the journal decides: {error}").format(path=self.path, error=exc)
            ) from exc

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
        self._append_in_tx(change.record_type, change.actor, self.journaled_payload(change))
        return _item(row)

    # --- operators ---------------------------------------------------------------------------------------

    _OPERATOR_COLUMNS = "name, role, pin_hash, disabled, failed_attempts, locked_until"

    @staticmethod
    def _operator(row: Sequence[Any]) -> OperatorRow:
        return OperatorRow(row[0], row[1], row[2], bool(row[3]), int(row[4]), row[5])

    def _operator_query(self, where: str, args: Sequence[Any]) -> list[OperatorRow]:
        try:
            rows = self._conn.execute(
                f"SELECT {self._OPERATOR_COLUMNS} FROM operators {where}", args
            ).fetchall()
        except sqlite3.OperationalError:
            # a store opened read-only that was made before operators existed has no table
            if self._conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'operators'"
            ).fetchone():
                raise
            return []
        return [self._operator(r) for r in rows]

    def operator_rows(self) -> list[OperatorRow]:
        return self._operator_query("ORDER BY id", ())

    def operator_row(self, name: str) -> OperatorRow | None:
        found = self._operator_query("WHERE name = ?", (name,))
        return found[0] if found else None

    def insert_operator(
        self,
        row: OperatorRow,
        *,
        first_role: str,
        record_type: str,
        actor: Actor,
        payload: Mapping[str, Any],
    ) -> OperatorInsert:
        now = utc_now()
        with self._write():
            if self._conn.execute("SELECT 1 FROM operators WHERE name = ?", (row.name,)).fetchone():
                return "name-taken"
            empty = self._conn.execute("SELECT 1 FROM operators LIMIT 1").fetchone() is None
            if empty and row.role != first_role:
                return "first-role"
            self._conn.execute(
                "INSERT INTO operators (name, role, pin_hash, disabled, failed_attempts, "
                "locked_until, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.name,
                    row.role,
                    row.pin_hash,
                    int(row.disabled),
                    row.failed_attempts,
                    row.locked_until,
                    now,
                    now,
                ),
            )
            self._append_in_tx(record_type, actor, payload)
        return "added"

    def update_operator(
        self,
        expected: OperatorRow,
        new: OperatorRow,
        *,
        actor: Actor,
        records: Sequence[tuple[str, Mapping[str, Any]]],
    ) -> OperatorRow | None:
        if new.name.casefold() != expected.name.casefold():
            raise ValueError("update_operator cannot rename an operator")
        with self._write():
            cur = self._conn.execute(
                "UPDATE operators SET role = ?, pin_hash = ?, disabled = ?, failed_attempts = ?, "
                "locked_until = ?, updated_at = ? WHERE name = ? AND role = ? AND pin_hash = ? "
                "AND disabled = ? AND failed_attempts = ? AND locked_until IS ?",
                (
                    new.role,
                    new.pin_hash,
                    int(new.disabled),
                    new.failed_attempts,
                    new.locked_until,
                    utc_now(),
                    expected.name,
                    expected.role,
                    expected.pin_hash,
                    int(expected.disabled),
                    expected.failed_attempts,
                    expected.locked_until,
                ),
            )
            if cur.rowcount != 1:
                return None
            for record_type, payload in records:
                self._append_in_tx(record_type, actor, payload)
        return self.operator_row(expected.name)

    # --- runner lock and recovery ---------------------------------------------------------------------

    def acquire_runner(self, actor: Actor) -> list[str]:
        if self.readonly:
            raise StoreReadOnly(
                _("read-only: {path} was opened read-only; marking needs to write to it").format(
                    path=self.path
                )
            )
        try:
            got = self._lock.try_acquire()
        except OSError as exc:
            raise self._failure(
                exc, _("cannot take the runner lock {path}").format(path=self._lock.path)
            ) from exc
        if not got:
            who = self.runner_info()
            detail = (
                " "
                + _("(pid {pid} on {host}, operator {operator}, since {since})").format(
                    pid=who["pid"], host=who["host"], operator=who["operator"], since=who["since"]
                )
                if who
                else ""
            )
            raise StoreError(
                _("{path}: another runner is marking from this store").format(path=self.path)
                + detail
            )
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
            # a lease row left behind (disk full, read-only now) is harmless: the free lock
            # says it is stale (runner_info), and the next runner replaces it
            with contextlib.suppress(StoreError), self._write():
                self._conn.execute("DELETE FROM runner WHERE pid = ?", (os.getpid(),))
        finally:
            self._lock.release()

    def runner_info(self) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT pid, host, operator, since FROM runner").fetchone()
        if row is None:
            return None
        try:
            free = self._lock.is_free()  # a free lock: the lease row is stale
        except OSError:
            free = self.readonly  # a read-only copy has no live runner
        if free:
            return None
        return {"pid": row[0], "host": row[1], "operator": row[2], "since": row[3]}

    def recover(self, actor: Actor) -> list[str]:
        if self._lock.held:
            return self._recover_locked(actor)
        # hold the lock while recovering so no runner can start in between
        probe = FileLock(self._lock.path)
        try:
            got = probe.try_acquire()
        except OSError as exc:
            raise self._failure(
                exc, _("cannot take the runner lock {path}").format(path=self._lock.path)
            ) from exc
        if not got:
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
            # only what the journal also shows in marking: a row edited into marking is left
            # alone (log verify names it, and every command refuses to act on it)
            try:
                proven = replay(self.records()) if rows else {}
            except JournalError:
                proven = {}  # a journal that does not replay proves nothing: recover nothing
            # one transaction for all of them: recovery is all or nothing
            for row in rows:
                item = _item(row)
                known = proven.get(item.code)
                if known is None or known.state is not State.MARKING:
                    continue
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
