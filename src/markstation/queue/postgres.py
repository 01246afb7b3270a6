"""The server store: one PostgreSQL database shared by several marking stations.

Needs psycopg 3 (``pip install 'markstation[postgres]'``); it is imported only when a
``postgresql://`` store is opened. Credentials come from the URL, ``PGPASSFILE`` or the libpq
environment (``PGPASSWORD``, ``PGUSER``, …) and are never shown: :attr:`PostgresStore.location`
and every message carry the URL without its password.

What is the same as on SQLite (:mod:`markstation.queue.sqlite`): the schema holds the transition
table as a trigger (no ``UPDATE`` can skip the intent), items are undeletable, the journal, its
Merkle nodes and the checkpoints are append-only (triggers refuse ``UPDATE``, ``DELETE`` and
``TRUNCATE``), every change is one transaction with its journal record, and the claim (the
``marking`` intent) is committed before the runner calls the device.

What several stations need:

* **Journal appends are serialised** by ``pg_advisory_xact_lock`` on one key, taken first by
  every writing transaction, so ``seq`` and the Merkle tree stay one sequence, and no two writers
  ever wait on each other in another order (no deadlock).
* **Claiming.** A runner *reserves* the next item before it shows it: ``SELECT … FOR UPDATE SKIP
  LOCKED`` on the runnable row plus a session-level advisory lock on that item, so two stations
  never work the same firearm and never wait for each other; the claim itself is the guarded
  ``UPDATE … WHERE state IN (pending, failed)`` under the journal lock — the exactly-once
  guarantee does not depend on the reservation.
* **Liveness.** A runner holds a session-level advisory lock keyed on its station
  (``pg_try_advisory_lock``); the server drops it when the session ends (SIGKILL, power loss, a
  cut network). An item in ``marking`` records its station; any open or claim turns the
  ``marking`` items of stations whose lock is free into ``interrupted`` (a ``recovery`` record),
  holding that station's lock for the transaction, and never touches a live station's item.
* **Lost server mid-mark.** The outcome goes to the station's spool (:mod:`~markstation.queue.spool`)
  first; the station refuses to claim another item until the spool has been written centrally.

The queries themselves are shared with SQLite (:mod:`~markstation.queue.sql_store`); this module
holds the connection, the schema, the locks, the spool and the error translation.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from markstation.errors import (
    StoreCorrupt,
    StoreError,
    StoreNotFound,
    StoreReadOnly,
    StoreUnreachable,
)
from markstation.i18n import _
from markstation.queue.journal import Record, utc_now
from markstation.queue.location import public_location, redact
from markstation.queue.lock import hostname
from markstation.queue.models import Actor, ItemChange
from markstation.queue.spool import Spool
from markstation.queue.sql_store import (
    ALLOWED_SQL,
    ITEM_COLUMN_DEFS,
    ITEM_COLUMNS,
    JOURNAL_COLUMN_DEFS,
    Dialect,
    Lost,
    OpenMode,
    SqlStore,
    check_schema,
    check_schema_version,
    column_defs,
    item_of,
)
from markstation.queue.states import RUNNABLE, State

if TYPE_CHECKING:
    import psycopg

SCHEMA_VERSION = 1

#: advisory-lock namespaces (the first int4 of the two-key form); item reservations use the
#: one-bigint form, a separate lock space on the server
LOCK_JOURNAL = 0x4D530001
LOCK_STATION = 0x4D530002
LOCK_SCHEMA = 0x4D530003
_ITEM_LOCK_BASE = 0x4D53 << 40

_RUNNABLE = [s.value for s in RUNNABLE]

#: the transition guard's body, written into the database; compared on every open and restored
#: when it differs (an older markstation, or an edit)
_GUARD_BODY = f"""
BEGIN
    IF NOT ({ALLOWED_SQL}) THEN
        RAISE EXCEPTION 'illegal item state transition' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
"""


def _refuse(name: str, message: str) -> str:
    return (
        f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"BEGIN RAISE EXCEPTION '{message}' USING ERRCODE = 'check_violation'; END\n$$"
    )


_SCHEMA: list[str] = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS batches (
        id BIGSERIAL PRIMARY KEY,
        file TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        items INTEGER NOT NULL,
        imported_at TEXT NOT NULL,
        operator TEXT NOT NULL,
        station TEXT NOT NULL,
        journal_seq BIGINT
    )""",
    f"""CREATE TABLE IF NOT EXISTS items (
        id BIGSERIAL PRIMARY KEY,
        batch_id BIGINT NOT NULL REFERENCES batches(id),
{column_defs(ITEM_COLUMN_DEFS, "        ")},
        marking_station TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS items_state ON items(state)",
    f"""CREATE TABLE IF NOT EXISTS journal (
        seq BIGINT PRIMARY KEY,
{column_defs(JOURNAL_COLUMN_DEFS, "        ")},
        code TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS journal_code ON journal(code)",
    """CREATE TABLE IF NOT EXISTS journal_nodes (
        level INTEGER NOT NULL,
        idx BIGINT NOT NULL,
        hash BYTEA NOT NULL,
        PRIMARY KEY (level, idx)
    )""",
    """CREATE TABLE IF NOT EXISTS checkpoints (
        id BIGSERIAL PRIMARY KEY,
        time TEXT NOT NULL,
        reason TEXT NOT NULL,
        note TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS operators (
        id BIGSERIAL PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('technician', 'supervisor')),
        pin_hash TEXT NOT NULL,
        disabled BOOLEAN NOT NULL DEFAULT FALSE,
        failed_attempts INTEGER NOT NULL DEFAULT 0,
        locked_until TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    "CREATE UNIQUE INDEX IF NOT EXISTS operators_name ON operators (lower(name))",
    "CREATE TABLE IF NOT EXISTS stations (id SERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
    """CREATE TABLE IF NOT EXISTS runners (
        station TEXT PRIMARY KEY,
        pid INTEGER NOT NULL,
        host TEXT NOT NULL,
        operator TEXT NOT NULL,
        since TEXT NOT NULL
    )""",
    _refuse("ms_append_only", "the journal is append-only"),
    _refuse("ms_items_no_delete", "items are never deleted"),
    _refuse("ms_operators_no_delete", "operators are never deleted (disable them)"),
    "CREATE OR REPLACE FUNCTION ms_items_transition_guard() RETURNS trigger "
    f"LANGUAGE plpgsql AS $${_GUARD_BODY}$$",
]
for _table in ("journal", "journal_nodes", "checkpoints"):
    _SCHEMA += [
        f"DROP TRIGGER IF EXISTS {_table}_append_only ON {_table}",
        f"CREATE TRIGGER {_table}_append_only BEFORE UPDATE OR DELETE ON {_table} "
        "FOR EACH ROW EXECUTE FUNCTION ms_append_only()",
        f"DROP TRIGGER IF EXISTS {_table}_no_truncate ON {_table}",
        f"CREATE TRIGGER {_table}_no_truncate BEFORE TRUNCATE ON {_table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION ms_append_only()",
    ]
_SCHEMA += [
    "DROP TRIGGER IF EXISTS items_no_delete ON items",
    "CREATE TRIGGER items_no_delete BEFORE DELETE ON items "
    "FOR EACH ROW EXECUTE FUNCTION ms_items_no_delete()",
    "DROP TRIGGER IF EXISTS items_no_truncate ON items",
    "CREATE TRIGGER items_no_truncate BEFORE TRUNCATE ON items "
    "FOR EACH STATEMENT EXECUTE FUNCTION ms_items_no_delete()",
    "DROP TRIGGER IF EXISTS operators_no_delete ON operators",
    "CREATE TRIGGER operators_no_delete BEFORE DELETE ON operators "
    "FOR EACH ROW EXECUTE FUNCTION ms_operators_no_delete()",
    "DROP TRIGGER IF EXISTS items_transition_guard ON items",
    "CREATE TRIGGER items_transition_guard BEFORE UPDATE OF state ON items "
    "FOR EACH ROW EXECUTE FUNCTION ms_items_transition_guard()",
]

#: schema upgrades: MIGRATIONS[n] takes a store from schema n to n + 1 (none yet)
MIGRATIONS: dict[int, list[str]] = {}

_REQUIRED_TABLES = frozenset({"meta", "batches", "items", "journal", "journal_nodes", "runners"})

#: how PostgreSQL spells the shared queries (:mod:`~markstation.queue.sql_store`)
DIALECT = Dialect(
    paramstyle="format",
    array_params=True,
    chunk=5000,
    same_name="lower(name) = lower(?)",  # the UNIQUE index is on lower(name)
    null_safe_eq="IS NOT DISTINCT FROM",
    record_code="code",  # a column, written with the record (indexed: journal_code)
)


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise StoreError(
            _("a postgresql:// store needs psycopg: pip install 'markstation[postgres]'")
        ) from exc
    return psycopg


def _one_line(exc: BaseException, url: str) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    password = _password_of(url)
    if password:
        text = text.replace(password, "***")
    return redact(text)


def _password_of(url: str) -> str | None:
    from urllib.parse import parse_qsl, unquote, urlsplit

    parts = urlsplit(url)
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        if ":" in userinfo:
            return unquote(userinfo.split(":", 1)[1]) or None
    for k, v in parse_qsl(parts.query):
        if k.lower() == "password":
            return v or None
    return None


def connect_failure(url: str, exc: BaseException) -> StoreError:
    """One line for a failure to connect to the server at ``url`` (never with the password)."""
    where = public_location(url)
    detail = _one_line(exc, url)
    low = detail.lower()
    if "authentication failed" in low or "no password supplied" in low or "password" in low:
        return StoreUnreachable(
            _(
                "authentication failed: {where}: the server refused the credentials (give them "
                "in the URL, PGPASSFILE or PGPASSWORD): {detail}"
            ).format(where=where, detail=detail)
        )
    if "does not exist" in low and "database" in low:
        return StoreNotFound(
            _("missing: {where}: the database does not exist on the server").format(where=where)
        )
    return StoreUnreachable(
        _("cannot reach the server: {where}: {detail}").format(where=where, detail=detail)
    )


class PostgresStore(SqlStore):
    """Batches, items and the journal of one campaign in a PostgreSQL database."""

    dialect = DIALECT
    _conn: psycopg.Connection[Any]

    def __init__(
        self,
        url: str,
        *,
        actor: Actor | None = None,
        recover: bool = True,
        mode: OpenMode = "create",
        connect_timeout: int = 10,
    ) -> None:
        self.url = url
        self.mode = mode
        self.readonly = False
        self.created = False
        self.notes = []
        self.recovered = []
        self.connect_timeout = connect_timeout
        self._location = public_location(url)
        self._actor = actor or Actor("markstation", hostname())
        self._pg = _psycopg()
        self._integrity_error = self._pg.errors.IntegrityError
        #: the station whose runner lock this object holds, and that station's id
        self._station: str | None = None
        self._station_id: int | None = None
        self._reserved: dict[str, int] = {}
        self._import_records = {}
        self._conn = self._connect()
        try:
            self._open_schema()
        except BaseException:
            self._conn.close()
            raise
        if recover and not self.readonly:
            self._recover_on_open(self._actor, (StoreError,))

    @property
    def location(self) -> str:
        return self._location

    @property
    def path(self) -> str:
        """For messages that name the store (the same as :attr:`location`)."""
        return self._location

    # --- connection and schema ---------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        pg = self._pg
        try:
            conn: psycopg.Connection[Any] = pg.connect(
                self.url,
                autocommit=True,
                connect_timeout=self.connect_timeout,
                application_name="markstation",
            )
        except pg.Error as exc:
            raise connect_failure(self.url, exc) from None
        try:
            # the intent must be on the server's disk before the device is called
            conn.execute("SET synchronous_commit = on")
            if self.mode == "readonly":
                conn.execute("SET default_transaction_read_only = on")
                self.readonly = True
        except pg.Error as exc:
            conn.close()
            raise connect_failure(self.url, exc) from None
        return conn

    def _failure(self, exc: BaseException, doing: str = "") -> StoreError:
        pg = self._pg
        what = f" ({doing})" if doing else ""
        detail = _one_line(exc, self.url)
        if isinstance(exc, pg.errors.ReadOnlySqlTransaction | pg.errors.InsufficientPrivilege):
            return StoreReadOnly(
                _("read-only: {path} cannot be written{what}: {detail}").format(
                    path=self.location, what=what, detail=detail
                )
            )
        if isinstance(exc, pg.OperationalError) or self._conn.broken:
            return StoreUnreachable(
                _(
                    "lost the server: {path}{what}: {detail}; nothing more is done until the "
                    "station reconnects"
                ).format(path=self.location, what=what, detail=detail)
            )
        return StoreError(f"{self.location}{what}: {detail}")

    def _tables(self) -> set[str]:
        rows = self._conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        ).fetchall()
        return {str(r[0]) for r in rows}

    def _open_schema(self) -> None:
        pg = self._pg
        try:
            tables = self._tables()
            if not tables & _REQUIRED_TABLES:
                if self.mode != "create":
                    raise StoreNotFound(
                        _(
                            "missing: no store at {path} (a new store is only created by "
                            "'markstation batch import') or 'markstation db migrate'"
                        ).format(path=self.location)
                    )
                self.created = install_schema(self._conn)
                return
            check_schema(
                self._conn,
                self.location,
                tables,
                _REQUIRED_TABLES,
                SCHEMA_VERSION,
                lacking=_(
                    "not a markstation store: {path} lacks markstation's tables ({tables} missing)"
                ),
                older=_(
                    "wrong schema: {path}: store schema {version}, this markstation "
                    "needs {supported}: run 'markstation db migrate --db URL'"
                ),
            )
            if not self.readonly:
                self._restore_guard()
        except pg.Error as exc:
            raise self._failure(exc, _("cannot open the store")) from None

    def _restore_guard(self) -> None:
        """The transition trigger as this code says it, whatever the database holds."""
        row = self._conn.execute(
            "SELECT p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE p.proname = 'ms_items_transition_guard' AND n.nspname = current_schema()"
        ).fetchone()
        trig = self._conn.execute(
            "SELECT 1 FROM pg_trigger WHERE tgname = 'items_transition_guard' "
            "AND tgrelid = 'items'::regclass AND tgenabled <> 'D'"
        ).fetchone()
        if row is not None and row[0] == _GUARD_BODY and trig is not None:
            return
        try:
            with self._conn.transaction():
                self._conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (LOCK_SCHEMA,))
                for statement in _SCHEMA:
                    self._conn.execute(statement)
        except self._pg.errors.InsufficientPrivilege:
            raise StoreCorrupt(
                _(
                    "{path}: the transition guard was changed and this role may not "
                    "restore it: run 'markstation db migrate' as the database owner"
                ).format(path=self.location)
            ) from None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.release_runner()
        with contextlib.suppress(Exception):
            self._conn.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        """One transaction that starts by taking the journal lock (every writer does, first)."""
        pg = self._pg
        if self.readonly:
            raise self._readonly_refusal()
        try:
            with self._conn.transaction():
                self._conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (LOCK_JOURNAL,))
                yield
        except pg.errors.IntegrityError:
            raise
        except pg.Error as exc:
            if isinstance(exc, pg.OperationalError) or self._conn.broken:
                raise Lost(str(exc)) from exc
            raise self._failure(exc, _("the change was not stored")) from None

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._conn.execute(sql, args).fetchall()
        except self._pg.Error as exc:
            raise self._failure(exc, _("cannot read the store")) from None

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[None]:
        """One REPEATABLE READ snapshot, so reads agree even while another station appends."""
        pg = self._pg
        try:
            with self._conn.transaction():
                self._conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                yield
        except pg.Error as exc:
            raise self._failure(exc, _("cannot read the journal")) from None

    def _execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._conn.cursor() as cur:
            cur.executemany(sql, rows)

    def _import_seqs(self, codes: Sequence[str]) -> Iterable[int]:
        rows = self._conn.execute(
            "SELECT DISTINCT b.journal_seq FROM items i JOIN batches b ON b.id = i.batch_id "
            "WHERE i.code = ANY(%s) AND b.journal_seq IS NOT NULL",
            (list(codes),),
        ).fetchall()
        return [int(seq) for (seq,) in rows]

    # --- what the server store stores beside the shared columns --------------------------------

    def _journal_values(self, rec: Record) -> dict[str, Any]:
        # the record's item code as a column, for _records_about (indexed: journal_code)
        code = rec.payload.get("code")
        return {**super()._journal_values(rec), "code": code if isinstance(code, str) else None}

    def _imported(self, batch_id: int, rec: Record) -> None:
        # the import record of the batch, for _import_seqs
        self._conn.execute("UPDATE batches SET journal_seq = %s WHERE id = %s", (rec.seq, batch_id))

    def _state_columns(self, change: ItemChange) -> list[tuple[str, Any]]:
        # which station holds an item in marking, for recovery (a dead station's items only)
        return [("marking_station", change.actor.station if change.to is State.MARKING else None)]

    # --- errors ----------------------------------------------------------------------------------

    def _db_detail(self, exc: BaseException) -> str:
        return _one_line(exc, self.url)

    def _guard_detail(self, exc: BaseException) -> str:
        # without the trigger's CONTEXT (the plpgsql line it was raised from)
        return self._db_detail(exc).split(" CONTEXT:")[0]

    def _cause(self, exc: BaseException) -> BaseException | None:
        del exc  # a server error is not chained: its text may name the URL
        return None

    def _lost_change(self, change: ItemChange, lost: Lost) -> StoreError:
        if change.allowed_from == (State.MARKING,) and change.to not in (None, State.MARKING):
            return self._spool_outcome(change, lost)
        return super()._lost_change(change, lost)

    # --- the station's spool -------------------------------------------------------------------

    def spool(self, station: str | None = None) -> Spool:
        return Spool.for_station(self.location, station or self._station or self._actor.station)

    def _spool_outcome(self, change: ItemChange, lost: Lost) -> StoreError:
        spool = self.spool(change.actor.station)
        spool.add(
            {
                "code": change.code,
                "to": change.to.value if change.to else None,
                "record_type": change.record_type,
                "operator": change.actor.operator,
                "station": change.actor.station,
                "payload": dict(change.payload),
                "updates": dict(change.updates),
                "spooled_at": utc_now(),
            }
        )
        cause = _one_line(lost.__cause__ or lost, self.url)
        written = False
        with contextlib.suppress(StoreError):
            self._reconnect()
            written = not self.flush_spool(change.actor.station)
        where = (
            _("written to the server after reconnecting")
            if written
            else _("kept in {path}").format(path=spool.path)
        )
        return StoreUnreachable(
            _(
                "lost the server: {location}: {cause}; the outcome of {code} ({state}) is {where}; no new item starts until the station is back on the server (run again)"
            ).format(
                location=self.location,
                cause=cause,
                code=change.code,
                state=change.to.value if change.to else "?",
                where=where,
            )
        )

    def _reconnect(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()
        self._conn = self._connect()
        self._station, self._station_id = None, None  # the session locks went with the session
        self._reserved.clear()

    def flush_spool(self, station: str | None = None) -> list[dict[str, Any]]:
        """Write the spooled outcomes of ``station`` to the server; return those still undelivered.

        An item still ``marking`` gets its outcome as the ``device-outcome`` record it would have
        had. An item some other station already turned ``interrupted`` (this station's lock was
        gone) keeps that state, and the outcome is journaled as evidence beside it, for whoever
        resolves it.
        """
        spool = self.spool(station)
        pending = spool.entries()
        left: list[dict[str, Any]] = []
        for entry in pending:
            try:
                self._deliver(entry)
            except (StoreError, Lost, self._pg.Error):
                left.append(entry)
        if len(left) != len(pending):
            spool.keep_only(left)
        return left

    def _deliver(self, entry: dict[str, Any]) -> None:
        code = str(entry["code"])
        actor = Actor(str(entry["operator"]), str(entry["station"]))
        payload = {**entry["payload"], "spooled_at": entry.get("spooled_at")}
        change = ItemChange(
            code,
            (State.MARKING,),
            State(entry["to"]),
            str(entry["record_type"]),
            actor,
            payload,
            dict(entry.get("updates") or {}),
        )
        with self._write():
            current = self.item(code)
            if current is None:
                raise StoreError(
                    _("{location}: spooled outcome for unknown item '{code}'").format(
                        location=self.location, code=code
                    )
                )
            if (
                current is not None
                and current.state is State.MARKING
                and self._apply_in_tx(change) is not None
            ):
                return
            # already recovered (or resolved): the outcome is evidence, not a move
            evidence = {
                "code": code,
                "outcome": entry["to"],
                "spooled": True,
                "note": "device outcome written after the station lost the server; the item "
                "had already left marking",
                **{k: v for k, v in entry["payload"].items() if k not in ("code", "to")},
            }
            self._append_in_tx("device-outcome", actor, evidence)

    def _before_claim(self, actor: Actor) -> None:
        left = self.flush_spool(actor.station)
        if left:
            codes = ", ".join(str(e.get("code")) for e in left)
            raise StoreUnreachable(
                _(
                    "{path}: the outcome of {codes} is not yet written to the server "
                    "(spool {spool}); no new item starts until it is"
                ).format(path=self.location, codes=codes, spool=self.spool(actor.station).path)
            )
        # the claiming station is alive (it is this process), whether or not it holds its lock
        self.recovered.extend(self._recover(actor, own_dead=False, alive=actor.station))

    # --- stations: runner locks, reservations and recovery ------------------------------------------

    def _station_key(self, name: str, *, create: bool) -> int | None:
        if create:
            self._conn.execute(
                "INSERT INTO stations (name) VALUES (%s) ON CONFLICT (name) DO NOTHING", (name,)
            )
        row = self._conn.execute("SELECT id FROM stations WHERE name = %s", (name,)).fetchone()
        return int(row[0]) if row else None

    def acquire_runner(self, actor: Actor) -> list[str]:
        """Become the runner of ``actor.station`` (one live runner per station; several stations
        run at once). Writes this station's spooled outcomes first, then recovers."""
        self._check_can_run()
        pg = self._pg
        if self._station == actor.station:
            return []
        try:
            sid = self._station_key(actor.station, create=True)
            got = False
            deadline = time.monotonic() + 3.0  # a recovering station holds the lock briefly
            while True:
                row = self._conn.execute(
                    "SELECT pg_try_advisory_lock(%s, %s)", (LOCK_STATION, sid)
                ).fetchone()
                got = bool(row and row[0])
                if got or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        except pg.Error as exc:
            raise self._failure(exc, _("cannot take the runner lock")) from None
        if not got:
            who = self._runner_row(actor.station)
            raise self._another_runner(
                who, also=_(" as station {station}").format(station=actor.station)
            )
        self._station, self._station_id = actor.station, sid
        try:
            with self._write():
                self._conn.execute(
                    "INSERT INTO runners (station, pid, host, operator, since) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (station) DO UPDATE SET "
                    "pid = EXCLUDED.pid, host = EXCLUDED.host, operator = EXCLUDED.operator, "
                    "since = EXCLUDED.since",
                    (actor.station, os.getpid(), hostname(), actor.operator, utc_now()),
                )
        except Lost as lost:
            raise self._lost(lost, _("cannot register the runner")) from None
        left = self.flush_spool(actor.station)
        if left:
            self.release_runner()
            raise StoreUnreachable(
                _("{path}: spooled outcomes could not be written ({codes}); not starting").format(
                    path=self.location, codes=", ".join(str(e.get("code")) for e in left)
                )
            )
        # we hold the station's lock: anything still marking as this station is from a runner
        # of it that died; other stations' items only if their lock is free
        codes = self._recover(actor, own_dead=True)
        self.recovered.extend(codes)
        return codes

    def release_runner(self) -> None:
        if self._station is None:
            return
        station, sid = self._station, self._station_id
        self._station, self._station_id = None, None
        for code in list(self._reserved):
            self.unreserve(code)
        if self._conn.broken or self._conn.closed:
            return
        with contextlib.suppress(StoreError, Lost, self._pg.Error), self._write():
            self._conn.execute(
                "DELETE FROM runners WHERE station = %s AND pid = %s", (station, os.getpid())
            )
        with contextlib.suppress(self._pg.Error):
            self._conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_STATION, sid))

    def _live_stations(self) -> set[str]:
        rows = self._read(
            "SELECT s.name FROM stations s JOIN pg_locks l ON l.locktype = 'advisory' "
            "AND l.classid = %s AND l.objid = s.id AND l.objsubid = 2 AND l.granted "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (LOCK_STATION,),
        )
        return {str(r[0]) for r in rows}

    def _runner_row(self, station: str) -> dict[str, Any] | None:
        rows = self._read(
            "SELECT pid, host, operator, since, station FROM runners WHERE station = %s",
            (station,),
        )
        if not rows:
            return None
        r = rows[0]
        return {"pid": r[0], "host": r[1], "operator": r[2], "since": r[3], "station": r[4]}

    def runners(self) -> list[dict[str, Any]]:
        """Every live runner (one per station), by when it started."""
        live = self._live_stations()
        rows = self._read("SELECT pid, host, operator, since, station FROM runners ORDER BY since")
        return [
            {"pid": r[0], "host": r[1], "operator": r[2], "since": r[3], "station": r[4]}
            for r in rows
            if r[4] in live
        ]

    def runner_info(self) -> dict[str, Any] | None:
        found = self.runners()
        if not found:
            return None
        return {**found[0], "stations": found}

    def reserve(self, code: str) -> bool:
        if self._station is None:
            return True
        pg = self._pg
        try:
            with self._conn.transaction():
                row = self._conn.execute(
                    "SELECT id FROM items WHERE code = %s AND state = ANY(%s) "
                    "FOR UPDATE SKIP LOCKED",
                    (code, _RUNNABLE),
                ).fetchone()
                if row is None:
                    return False
                key = _ITEM_LOCK_BASE + int(row[0])
                got = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        except pg.Error as exc:
            raise self._failure(exc, _("cannot reserve the item")) from None
        if got and got[0]:
            self._reserved[code] = key
            return True
        return False

    def unreserve(self, code: str) -> None:
        key = self._reserved.pop(code, None)
        if key is None or self._conn.broken or self._conn.closed:
            return
        with contextlib.suppress(self._pg.Error):
            self._conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def recover(self, actor: Actor) -> list[str]:
        return self._recover(actor, own_dead=False)

    def _recover(self, actor: Actor, *, own_dead: bool, alive: str | None = None) -> list[str]:
        """``marking`` items of stations with no live runner -> ``interrupted`` (journaled).

        Runs in one transaction that holds, for each such station, its runner lock (so it cannot
        start meanwhile); a station whose lock is held (by a live runner) is not touched. This
        object's own station counts as dead only when ``own_dead`` (right after taking its lock).
        """
        if self.readonly:
            return []
        with self._change(_("crash recovery not done")):
            rows = self._conn.execute(
                f"SELECT {ITEM_COLUMNS}, marking_station FROM items WHERE state = 'marking' "
                "ORDER BY id FOR UPDATE"
            ).fetchall()
            dead: dict[str | None, bool] = {}
            for row in rows:
                station = row[-1]
                if station in dead:
                    continue
                if station is not None and station == self._station:
                    dead[station] = own_dead
                    continue
                if station is not None and station == alive:
                    dead[station] = False
                    continue
                sid = self._station_key(station, create=False) if station else None
                if sid is None:
                    dead[station] = True
                    continue
                got = self._conn.execute(
                    "SELECT pg_try_advisory_xact_lock(%s, %s)", (LOCK_STATION, sid)
                ).fetchone()
                dead[station] = bool(got and got[0])
            candidates = [item_of(r) for r in rows if dead[r[-1]]]
            # the proof is what the journal says about these items only
            return self._recover_in_tx(
                candidates, actor, lambda: self._records_about([it.code for it in candidates])
            )


def install_schema(conn: psycopg.Connection[Any]) -> bool:
    """Create markstation's tables in the connection's schema if there are none; True if it did."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (LOCK_SCHEMA,))
        if conn.execute("SELECT to_regclass('meta')").fetchone() not in (None, (None,)):
            return False  # created by another process in between
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.execute("INSERT INTO meta VALUES ('schema', %s)", (str(SCHEMA_VERSION),))
    return True


def migrate(url: str) -> str:
    """Bring the store at ``url`` to :data:`SCHEMA_VERSION` (creating it when the database is
    empty); return what was done, in one line."""
    pg = _psycopg()
    where = public_location(url)
    try:
        conn = pg.connect(url, autocommit=True, application_name="markstation")
    except pg.Error as exc:
        raise connect_failure(url, exc) from None
    try:
        if install_schema(conn):
            return _("{where}: created a new store (schema {version})").format(
                where=where, version=SCHEMA_VERSION
            )
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (LOCK_SCHEMA,))
            conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (LOCK_JOURNAL,))
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            version = check_schema_version(where, int(row[0]) if row else 0, SCHEMA_VERSION)
            start = version
            while version < SCHEMA_VERSION:
                steps = MIGRATIONS.get(version)
                if steps is None:
                    raise StoreCorrupt(
                        _(
                            "wrong schema: {path}: no upgrade from schema {version} to {supported}"
                        ).format(path=where, version=version, supported=SCHEMA_VERSION)
                    )
                for statement in steps:
                    conn.execute(statement)
                version += 1
            for statement in _SCHEMA:  # triggers and the guard as this code says
                conn.execute(statement)
            conn.execute("UPDATE meta SET value = %s WHERE key = 'schema'", (str(SCHEMA_VERSION),))
        if start == SCHEMA_VERSION:
            return _("{where}: schema {version}, up to date (guards checked)").format(
                where=where, version=SCHEMA_VERSION
            )
        return _("{where}: upgraded schema {start} -> {version}").format(
            where=where, start=start, version=SCHEMA_VERSION
        )
    except pg.Error as exc:
        raise StoreError(
            _("{where}: migration failed, nothing changed: {detail}").format(
                where=where, detail=_one_line(exc, url)
            )
        ) from None
    finally:
        conn.close()
