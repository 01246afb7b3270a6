"""The embedded store: one SQLite file (WAL) plus ``<file>.lock`` for the runner lock.

SQLite specifics: WAL, ``synchronous=FULL`` (every commit is fsynced before it returns: the
``marking`` intent is on disk before the driver is called), ``BEGIN IMMEDIATE`` for every write.
The transition table of :mod:`~markstation.queue.states` is copied into the database and a trigger
refuses any state change not in it, so even a raw ``UPDATE`` cannot skip the intent; two more
triggers keep items undeletable and the journal append-only.

The runner lock is an exclusive ``flock`` on ``<db>.lock`` (:mod:`~markstation.queue.lock`), plus
a one-row ``runner`` table saying who holds it.

The queries themselves are shared with the server store (:mod:`~markstation.queue.sql_store`);
this module holds the file, the schema, the transactions, the lock and the error translation.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import stat
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from markstation.errors import (
    StoreCorrupt,
    StoreError,
    StoreFull,
    StoreLocked,
    StoreNotFound,
    StoreReadOnly,
)
from markstation.i18n import _
from markstation.queue.journal import utc_now
from markstation.queue.lock import FileLock, hostname
from markstation.queue.merkle import MerkleTree, leaf_hash
from markstation.queue.models import Actor
from markstation.queue.sql_store import (
    ALLOWED_SQL,
    ITEM_COLUMN_DEFS,
    ITEM_COLUMNS,
    JOURNAL_COLUMN_DEFS,
    Dialect,
    SqlStore,
    check_schema,
    column_defs,
    item_of,
)
from markstation.queue.sql_store import OpenMode as OpenMode
from markstation.queue.states import TRANSITIONS
from markstation.queue.store import OperatorRow

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


#: the allowed (from, to) pairs written into the trigger itself: the trigger reads no table, so
#: editing a table cannot widen them (the ``transitions`` table is kept for reference only)
_TRANSITION_GUARD = (
    "CREATE TRIGGER items_transition_guard BEFORE UPDATE OF state ON items\n"
    f"WHEN NOT ({ALLOWED_SQL})\n"
    "BEGIN SELECT RAISE(ABORT, 'illegal item state transition'); END"
)

#: a record's item code, or NULL; never an error, so an edited payload is found by the replay
#: (log verify names it) instead of failing every query
_CODE_OF = "(CASE WHEN json_valid(payload) THEN json_extract(payload, '$.code') END)"


def _refuse(name: str, event: str, table: str, message: str) -> str:
    """A trigger that refuses every ``event`` (UPDATE, DELETE) on ``table`` with ``message``."""
    return (
        f"CREATE TRIGGER IF NOT EXISTS {name} BEFORE {event} ON {table}\n"
        f"BEGIN SELECT RAISE(ABORT, '{message}'); END;"
    )


def _append_only(table: str) -> str:
    """The triggers that keep ``table`` append-only (the journal, its tree, the checkpoints)."""
    return "\n".join(
        _refuse(f"{table}_no_{event.lower()}", event, table, "the journal is append-only")
        for event in ("UPDATE", "DELETE")
    )


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
{column_defs(ITEM_COLUMN_DEFS, "    ")}
);
CREATE INDEX IF NOT EXISTS items_state ON items(state);
CREATE TABLE IF NOT EXISTS transitions (
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    PRIMARY KEY (from_state, to_state)
);
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY,
{column_defs(JOURNAL_COLUMN_DEFS, "    ")}
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
{_refuse("operators_no_delete", "DELETE", "operators", "operators are never deleted (disable them)")}
{_TRANSITION_GUARD.replace("CREATE TRIGGER", "CREATE TRIGGER IF NOT EXISTS", 1)};
{_refuse("items_no_delete", "DELETE", "items", "items are never deleted")}
{_append_only("journal")}
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
{_append_only("journal_nodes")}
{_append_only("checkpoints")}
"""

#: how SQLite spells the shared queries (:mod:`~markstation.queue.sql_store`)
DIALECT = Dialect(
    paramstyle="qmark",
    array_params=False,
    chunk=500,  # stay below SQLite's bound-parameter limit
    same_name="name = ?",  # the column is COLLATE NOCASE (and so is its UNIQUE index)
    null_safe_eq="IS",
    record_code=_CODE_OF,  # indexed (journal_code)
)

_SQLITE_MAGIC = b"SQLite format 3\x00"
#: tables every markstation store has (a newer markstation may add more)
_REQUIRED_TABLES = frozenset({"meta", "batches", "items", "journal", "runner"})


class SqliteStore(SqlStore):
    """The embedded store. Opening it runs crash recovery (see :meth:`recover`) unless ``recover=False``.

    Nothing is ever initialised over an existing file: a 0-byte file, a file that is not SQLite, or
    an SQLite database without markstation's tables is refused (StoreCorrupt); only
    ``mode="create"`` makes a new store, and only where no file exists (``created`` says it did).
    Every SQLite or OS failure becomes one StoreError subclass: StoreFull ("disk full: …"),
    StoreReadOnly ("read-only: …"), StoreLocked ("locked: …"), StoreCorrupt, StoreNotFound
    ("missing: …").
    """

    dialect = DIALECT
    _integrity_error = sqlite3.IntegrityError
    _conn: sqlite3.Connection

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        actor: Actor | None = None,
        recover: bool = True,
        mode: OpenMode = "create",
    ) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.mode = mode
        #: opened read-only (``mode=ro`` or ``immutable=1``): every write raises StoreReadOnly
        self.readonly = False
        #: this object created the store file
        self.created = False
        #: what the user should know about how the store was opened (e.g. a WAL file ignored)
        self.notes = []
        self._lock = FileLock(Path(str(self.path) + ".lock"))
        self._import_records = {}
        self._conn = self._open()
        if not self.readonly:
            self._migrate_tree()
        self.recovered = []
        if recover and not self.readonly:
            actor = actor or Actor("markstation", hostname())
            self._recover_on_open(actor, (StoreFull, StoreReadOnly))

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
        check_schema(
            conn,
            self.path,
            tables,
            _REQUIRED_TABLES,
            SCHEMA_VERSION,
            lacking=_(
                "not a markstation store: {path} is an SQLite database without "
                "markstation's tables ({tables} missing)"
            ),
            older=_(
                "wrong schema: {path}: store schema {version} is older than "
                "{supported} and cannot be upgraded by this markstation"
            ),
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

    # --- transactions and reads --------------------------------------------------------------

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
            raise self._readonly_refusal()
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

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[None]:
        """One read transaction (or the caller's), so reads agree while another process appends."""
        outer = self._conn.in_transaction
        if not outer:
            self._conn.execute("BEGIN")
        try:
            yield
        finally:
            if not outer:
                self._conn.execute("COMMIT")

    def _read(self, sql: str, args: Sequence[Any] = ()) -> Iterable[Any]:
        return self._conn.execute(sql, args)

    def _execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)

    def _import_seqs(self, codes: Sequence[str]) -> Iterable[int]:
        # every import: each is parsed once (_import_records) and cut down to the codes
        del codes
        rows = self._conn.execute(
            "SELECT seq FROM journal WHERE type = 'batch-imported' ORDER BY seq"
        ).fetchall()
        return [int(seq) for (seq,) in rows]

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

    # --- operators ---------------------------------------------------------------------------------------

    def _operator_query(self, where: str, args: Sequence[Any]) -> list[OperatorRow]:
        try:
            return super()._operator_query(where, args)
        except sqlite3.OperationalError:
            # a store opened read-only that was made before operators existed has no table
            if self._conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'operators'"
            ).fetchone():
                raise
            return []

    # --- runner lock and recovery ---------------------------------------------------------------------

    def acquire_runner(self, actor: Actor) -> list[str]:
        self._check_can_run()
        try:
            got = self._lock.try_acquire()
        except OSError as exc:
            raise self._failure(
                exc, _("cannot take the runner lock {path}").format(path=self._lock.path)
            ) from exc
        if not got:
            raise self._another_runner(self.runner_info())
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
        """With the runner lock held: every item in marking is a dead runner's."""
        with self._write():
            rows = self._conn.execute(
                f"SELECT {ITEM_COLUMNS} FROM items WHERE state = 'marking' ORDER BY id"
            ).fetchall()
            # the proof is the whole journal: one that does not replay recovers nothing
            return self._recover_in_tx([item_of(r) for r in rows], actor, self.records)


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
