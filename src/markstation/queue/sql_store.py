"""What the SQL backends share: every query on items, the journal, its Merkle tree, the
checkpoints and the operators, written once in :class:`SqlStore`.

A backend (:mod:`~markstation.queue.sqlite`, :mod:`~markstation.queue.postgres`) keeps what is
truly its own:

* a :class:`Dialect`, how its SQL spells what the shared queries need (the parameter mark, a
  match against a list of values, a case-insensitive operator name, a NULL-safe comparison, the
  item code of a journal record);
* its connection and transactions: :meth:`SqlStore._write` (one change with its journal
  record, the backend's locking included), :meth:`SqlStore._snapshot`, :meth:`SqlStore._read`,
  :meth:`SqlStore._execute_many`;
* its error translation (:meth:`SqlStore._failure` and the few hooks beside it);
* its schema, its runner lock and which ``marking`` items crash recovery may touch.

The shared queries are written with ``?`` parameters; :meth:`Dialect.sql` turns them into the
backend's paramstyle. A backend's own statements use its native paramstyle and go to its
connection directly.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, fields
from typing import Any, Literal, Protocol

from markstation.errors import BatchError, JournalError, StoreCorrupt, StoreError, StoreReadOnly
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
from markstation.queue.merkle import EMPTY_ROOT, node_hash, root_hash
from markstation.queue.models import Actor, Item, ItemChange, NewItem
from markstation.queue.replay import check_item, import_cut_to, replay
from markstation.queue.states import TRANSITIONS, State
from markstation.queue.store import OperatorInsert, OperatorRow, Store

#: the state names, for a CHECK constraint
STATES_SQL = ", ".join(f"'{s.value}'" for s in State)

#: the allowed (from, to) pairs, written into the transition guard itself: the guard reads no
#: table, so editing a table cannot widen them
ALLOWED_SQL = " OR ".join(
    f"(OLD.state = '{a.value}' AND NEW.state = '{b.value}')" for a, b in sorted(TRANSITIONS)
)

#: the columns of ``items`` that both schemas declare alike: all but ``id`` and ``batch_id``
#: (whose types differ) and what a backend adds after them
ITEM_COLUMN_DEFS = (
    "code TEXT NOT NULL UNIQUE",
    "serial TEXT NOT NULL",
    "make TEXT NOT NULL",
    "model TEXT NOT NULL",
    "caliber TEXT NOT NULL",
    "owner TEXT NOT NULL",
    "layout TEXT NOT NULL",
    "extra TEXT NOT NULL",
    "line INTEGER NOT NULL",
    f"state TEXT NOT NULL CHECK (state IN ({STATES_SQL}))",
    "attempts INTEGER NOT NULL DEFAULT 0",
    "inspection TEXT",
    "inspection_note TEXT",
    "reason TEXT",
    "job_sha256 TEXT",
    "created_at TEXT NOT NULL",
    "updated_at TEXT NOT NULL",
)


def column_defs(defs: Iterable[str], indent: str) -> str:
    """Column definitions for a CREATE TABLE, one a line, comma-separated (no trailing comma)."""
    return ",\n".join(indent + d for d in defs)


#: the items columns, named and ordered like the fields of :class:`Item`
ITEM_FIELDS = tuple(f.name for f in fields(Item))
ITEM_COLUMNS = ", ".join(ITEM_FIELDS)
#: the journal's columns, named and ordered like the fields of :class:`Record`
RECORD_FIELDS = tuple(f.name for f in fields(Record))
RECORD_COLUMNS = ", ".join(RECORD_FIELDS)
#: the columns of ``journal`` that both schemas declare alike: all but ``seq`` (whose type
#: differs) and what a backend adds after them
JOURNAL_COLUMN_DEFS = (
    "type TEXT NOT NULL",
    "time TEXT NOT NULL",
    "operator TEXT NOT NULL",
    "station TEXT NOT NULL",
    "payload TEXT NOT NULL",
    "prev_hash TEXT NOT NULL",
    "hash TEXT NOT NULL",
)
#: the operators columns, in OperatorRow's order
OPERATOR_COLUMNS = "name, role, pin_hash, disabled, failed_attempts, locked_until"


def item_of(row: Sequence[Any]) -> Item:
    """An :class:`Item` from a row that starts with :data:`ITEM_COLUMNS`."""
    values = dict(zip(ITEM_FIELDS, row[: len(ITEM_FIELDS)], strict=True))
    values["extra"] = json.loads(values["extra"])
    values["state"] = State(values["state"])
    values["id"] = int(values["id"])
    values["batch_id"] = int(values["batch_id"])
    return Item(**values)


def record_of(row: Sequence[Any]) -> Record:
    """A journal :class:`Record` from a row of :data:`RECORD_COLUMNS`."""
    try:
        payload = json.loads(row[5])
        if not isinstance(payload, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        raise JournalError(
            _("journal record seq {seq} ({type}): payload is not readable JSON (edited)").format(
                seq=row[0], type=row[1]
            )
        ) from exc
    return Record(int(row[0]), row[1], row[2], row[3], row[4], payload, row[6], row[7])


def operator_of(row: Sequence[Any]) -> OperatorRow:
    """An :class:`OperatorRow` from a row of :data:`OPERATOR_COLUMNS`."""
    return OperatorRow(row[0], row[1], row[2], bool(row[3]), int(row[4]), row[5])


#: how a store is opened: ``create`` (a missing store is made; the library default), ``write``
#: (the store must exist), ``read`` (must exist; read-write when it can be written, else
#: read-only) and ``readonly`` (never written: SQLite ``mode=ro`` or ``immutable=1``, a
#: read-only PostgreSQL session)
OpenMode = Literal["create", "write", "read", "readonly"]


class Cursor(Protocol):
    """What the shared code uses of a DB-API cursor (sqlite3's and psycopg's alike)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> Sequence[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What the shared code uses of a connection: ``execute`` in the backend's paramstyle."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Cursor: ...

    def close(self) -> None: ...


def schema_version(conn: Connection) -> int | None:
    """The schema number a store's ``meta`` table holds (None: none, or not a number)."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    try:
        return int(row[0]) if row is not None else None
    except (TypeError, ValueError):
        return None


def check_schema_version(path: object, version: int | None, supported: int) -> int:
    """``version``; StoreCorrupt when it is missing or newer than ``supported``. An older schema
    is for the backend to answer (SQLite cannot upgrade one, PostgreSQL names ``db migrate``)."""
    if version is None:
        raise StoreCorrupt(
            _("not a markstation store: {path} has no schema version").format(path=path)
        )
    if version > supported:
        raise StoreCorrupt(
            _(
                "wrong schema: {path}: store schema {version} is newer than this "
                "markstation understands ({supported}); use a newer markstation"
            ).format(path=path, version=version, supported=supported)
        )
    return version


def check_schema(
    conn: Connection,
    path: object,
    tables: set[str],
    required: frozenset[str],
    supported: int,
    *,
    lacking: str,
    older: str,
) -> None:
    """Refuse (StoreCorrupt) a database that is not a markstation store of schema ``supported``.

    ``tables`` are the database's tables; ``lacking`` ({path}, {tables}) says that some of
    ``required`` are missing, ``older`` ({path}, {version}, {supported}) that the store's schema
    is older, each the backend's own words (translated, not yet formatted).
    """
    missing = required - tables
    if missing:
        raise StoreCorrupt(lacking.format(path=path, tables=", ".join(sorted(missing))))
    version = check_schema_version(path, schema_version(conn), supported)
    if version < supported:
        raise StoreCorrupt(older.format(path=path, version=version, supported=supported))


@dataclass(frozen=True)
class Dialect:
    """How one database's SQL spells what the shared queries of :class:`SqlStore` need."""

    #: the DB-API paramstyle of the driver: ``qmark`` (``?``) or ``format`` (``%s``)
    paramstyle: Literal["qmark", "format"]
    #: a list of values is one array parameter (``col = ANY(?)``), else one ``?`` a value
    array_params: bool
    #: at most this many values in one :meth:`one_of` (below the driver's parameter limit)
    chunk: int
    #: the operators row of the name given as the one parameter, ignoring case
    same_name: str
    #: the NULL-safe equality operator (``IS``, ``IS NOT DISTINCT FROM``)
    null_safe_eq: str
    #: a journal row's item code (NULL when it has none), an indexed column or expression
    record_code: str

    def sql(self, query: str) -> str:
        """``query``, written with ``?`` parameters, in this driver's paramstyle (the shared
        queries hold no other ``?`` and no ``%``: every value is a parameter)."""
        return query if self.paramstyle == "qmark" else query.replace("?", "%s")

    def one_of(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """``column`` equals one of ``values``: the condition (``?`` parameters) and its args."""
        if self.array_params:
            return f"{column} = ANY(?)", [list(values)]
        return f"{column} IN ({', '.join('?' * len(values))})", list(values)


class Lost(Exception):
    """The connection to the database broke inside a change (the cause is the driver's error).

    Raised by a backend's :meth:`SqlStore._write` (a server store; an SQLite file is never lost);
    each change reports it as what was not done (:meth:`SqlStore._change`)."""


class SqlStore(Store):
    """The store on an SQL database: the queries; the backend gives the rest (see the module)."""

    #: how the backend's SQL spells things
    dialect: Dialect
    #: the database connection (in the backend's paramstyle)
    _conn: Connection
    #: the driver's error for a refused constraint or trigger (UNIQUE, the transition guard)
    _integrity_error: type[Exception]
    #: import records by seq, parsed once (the journal is append-only)
    _import_records: dict[int, Record]
    #: how the store was opened
    mode: OpenMode
    #: this object created the store
    created: bool
    #: what the user should know about how the store was opened (e.g. a WAL file ignored)
    notes: list[str]

    # --- the backend's part ------------------------------------------------------------------

    @abstractmethod
    def _write(self) -> AbstractContextManager[None]:
        """One transaction, with the backend's write lock: commit, or roll back on any exception.

        The driver's integrity error (a trigger or a UNIQUE refused the write) is re-raised as it
        is, for the caller to turn into a BatchError; a broken connection raises :class:`Lost`;
        any other database error becomes a StoreError subclass naming what happened.
        """

    @abstractmethod
    def _snapshot(self) -> AbstractContextManager[None]:
        """One read transaction, so that several reads agree while another process appends."""

    @abstractmethod
    def _read(self, sql: str, args: Sequence[Any] = ()) -> Iterable[Any]:
        """The rows of a read (native SQL) outside a change, its errors mapped the backend's way."""

    @abstractmethod
    def _execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run ``sql`` (native SQL) once for each of ``rows``, inside the caller's transaction."""

    @abstractmethod
    def _failure(self, exc: BaseException, doing: str = "") -> StoreError:
        """One line for a database failure, as the right StoreError."""

    @abstractmethod
    def _import_seqs(self, codes: Sequence[str]) -> Iterable[int]:
        """The seqs of the ``batch-imported`` records that may have imported one of ``codes``."""

    def _db_detail(self, exc: BaseException) -> str:
        """The database's own words for ``exc``, as a message may quote them."""
        return str(exc)

    def _guard_detail(self, exc: BaseException) -> str:
        """The words of a refusal by the transition guard (or another constraint)."""
        return self._db_detail(exc)

    def _cause(self, exc: BaseException) -> BaseException | None:
        """What a StoreError or BatchError made from ``exc`` is chained to (None: nothing)."""
        return exc

    def _journal_values(self, rec: Record) -> dict[str, Any]:
        """The journal row of ``rec``, by column (a backend may store more, e.g. its code)."""
        values = {name: getattr(rec, name) for name in RECORD_FIELDS}
        values["payload"] = canonical_json(rec.payload)
        return values

    def _imported(self, batch_id: int, rec: Record) -> None:
        """Inside the import's transaction, after its ``batch-imported`` record ``rec``."""
        del batch_id, rec  # nothing more to store by default

    def _state_columns(self, change: ItemChange) -> list[tuple[str, Any]]:
        """More columns that a change of state sets (beside ``state`` and ``updated_at``)."""
        del change
        return []

    def _before_claim(self, actor: Actor) -> None:
        """Before the transaction that claims an item (moves it to ``marking``) for ``actor``."""
        del actor

    def _lost_change(self, change: ItemChange, lost: Lost) -> StoreError:
        """What to raise when the connection broke while applying ``change``."""
        del change
        return self._lost(lost, _("the change was not stored"))

    # --- helpers -----------------------------------------------------------------------------

    def _exec(self, sql: str, args: Sequence[Any] = ()) -> Cursor:
        """A shared statement (``?`` parameters), inside the caller's transaction."""
        return self._conn.execute(self.dialect.sql(sql), args)

    def _query(self, sql: str, args: Sequence[Any] = ()) -> Iterable[Any]:
        """A shared read (``?`` parameters) outside a change, through :meth:`_read`."""
        return self._read(self.dialect.sql(sql), args)

    def _lost(self, lost: Lost, doing: str) -> StoreError:
        return self._failure(lost.__cause__ or lost, doing)

    @contextmanager
    def _change(self, doing: str) -> Iterator[None]:
        """:meth:`_write`, a broken connection reported as ``doing`` (what was not done)."""
        try:
            with self._write():
                yield
        except Lost as lost:
            raise self._lost(lost, doing) from None

    def _readonly_refusal(self) -> StoreReadOnly:
        """A write on a store opened read-only."""
        return StoreReadOnly(
            _("read-only: {path} was opened read-only; this command needs to write to it").format(
                path=self.location
            )
        )

    def _check_can_run(self) -> None:
        """StoreReadOnly when this store was opened read-only (a runner writes)."""
        if self.readonly:
            raise StoreReadOnly(
                _("read-only: {path} was opened read-only; marking needs to write to it").format(
                    path=self.location
                )
            )

    def _another_runner(self, who: Mapping[str, Any] | None, *, also: str = "") -> StoreError:
        """The refusal to run while the runner ``who`` (its row, if known) holds the lock."""
        detail = (
            " "
            + _("(pid {pid} on {host}, operator {operator}, since {since})").format(
                pid=who["pid"], host=who["host"], operator=who["operator"], since=who["since"]
            )
            if who
            else ""
        )
        return StoreError(
            _("{path}: another runner is marking from this store").format(path=self.location)
            + also
            + detail
        )

    def _recover_on_open(self, actor: Actor, tolerated: tuple[type[StoreError], ...]) -> None:
        """Crash recovery as the store opens; a reading command (``mode="read"``) still reads
        when it fails with one of ``tolerated`` (the items stay in marking until a write can)."""
        try:
            self.recovered = self.recover(actor)
        except tolerated as exc:
            if self.mode != "read":
                self._conn.close()
                raise
            self.notes.append(_("crash recovery not done: {error}").format(error=exc))

    # --- journal -----------------------------------------------------------------------------

    def _append_in_tx(self, record_type: str, actor: Actor, payload: Mapping[str, Any]) -> Record:
        row = self._exec("SELECT COALESCE(MAX(seq), 0) FROM journal").fetchone()
        seq = int(row[0] if row else 0) + 1
        rec = new_record(
            seq, record_type, operator=actor.operator, station=actor.station, payload=payload
        )
        values = self._journal_values(rec)
        self._exec(
            f"INSERT INTO journal ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
            list(values.values()),
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
        self._exec(f"INSERT INTO journal_nodes (level, idx, hash) VALUES {marks}", args)

    def append(self, record_type: str, *, actor: Actor, payload: Mapping[str, Any]) -> Record:
        with self._change(_("the record was not stored")):
            return self._append_in_tx(record_type, actor, payload)

    def records(self) -> Iterator[Record]:
        for row in self._query(f"SELECT {RECORD_COLUMNS} FROM journal ORDER BY seq"):
            yield record_of(row)

    def head(self) -> ChainHead:
        # one read transaction, so size and nodes agree even while another process appends
        with self._snapshot():
            row = self._exec("SELECT COUNT(*) FROM journal_nodes WHERE level = 0").fetchone()
            size = int(row[0]) if row else 0
            root = root_hash(self.tree_node, size) if size else EMPTY_ROOT
        return ChainHead(size, root.hex())

    # --- Merkle tree and checkpoints -----------------------------------------------------------

    def tree_node(self, level: int, index: int) -> bytes:
        row = self._exec(
            "SELECT hash FROM journal_nodes WHERE level = ? AND idx = ?", (level, index)
        ).fetchone()
        if row is None:
            raise JournalError(
                _("{location}: tree node ({level}, {index}) is missing (edited)").format(
                    location=self.location, level=level, index=index
                )
            )
        return bytes(row[0])

    def tree_nodes(self) -> Iterator[tuple[int, int, bytes]]:
        for level, index, h in self._query(
            "SELECT level, idx, hash FROM journal_nodes ORDER BY level, idx"
        ):
            yield int(level), int(index), bytes(h)

    def add_checkpoint(self, text: str, *, reason: str) -> StoredCheckpoint:
        when = utc_now()
        with self._change(_("the checkpoint was not stored")):
            row = self._exec(
                "INSERT INTO checkpoints (time, reason, note) VALUES (?, ?, ?) RETURNING id",
                (when, reason, text),
            ).fetchone()
        return StoredCheckpoint(int(row[0]) if row else 0, when, reason, text)

    def checkpoints(self) -> list[StoredCheckpoint]:
        rows = self._query("SELECT id, time, reason, note FROM checkpoints ORDER BY id")
        return [StoredCheckpoint(int(r[0]), r[1], r[2], r[3]) for r in rows]

    # --- items -------------------------------------------------------------------------------

    def import_batch(
        self, *, file: str, sha256: str, items: Sequence[NewItem], actor: Actor
    ) -> int:
        now = utc_now()
        try:
            with self._change(_("nothing imported")):
                row = self._exec(
                    "INSERT INTO batches (file, sha256, items, imported_at, operator, station) "
                    "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                    (file, sha256, len(items), now, actor.operator, actor.station),
                ).fetchone()
                batch_id = int(row[0]) if row else 0
                self._execute_many(
                    self.dialect.sql(
                        "INSERT INTO items (batch_id, code, serial, make, model, caliber, owner, "
                        "layout, extra, line, state, created_at, updated_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)"
                    ),
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
                rec = self._append_in_tx(
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
                self._imported(batch_id, rec)
        except self._integrity_error as exc:
            # another import won a race for one of the codes; the transaction rolled back
            raise BatchError(
                _("{file}: nothing imported, a code is already in the store ({error})").format(
                    file=file, error=self._db_detail(exc)
                )
            ) from self._cause(exc)
        return batch_id

    def find_codes(self, codes: Iterable[str]) -> dict[str, Item]:
        wanted = list(dict.fromkeys(codes))
        found: dict[str, Item] = {}
        step = self.dialect.chunk
        for i in range(0, len(wanted), step):
            match, args = self.dialect.one_of("code", wanted[i : i + step])
            for row in self._query(f"SELECT {ITEM_COLUMNS} FROM items WHERE {match}", args):
                it = item_of(row)
                found[it.code] = it
        return found

    def find_firearms(self) -> dict[tuple[str, str], Item]:
        result: dict[tuple[str, str], Item] = {}
        for row in self._query(
            f"SELECT {ITEM_COLUMNS} FROM items WHERE state <> 'voided' ORDER BY id"
        ):
            it = item_of(row)
            result.setdefault(firearm_key(it.make, it.serial), it)
        return result

    def item(self, code: str) -> Item | None:
        for row in self._query(f"SELECT {ITEM_COLUMNS} FROM items WHERE code = ?", (code,)):
            return item_of(row)
        return None

    def items(self, states: Iterable[State] | None = None) -> list[Item]:
        if states is None:
            rows = self._query(f"SELECT {ITEM_COLUMNS} FROM items ORDER BY id")
        else:
            match, args = self.dialect.one_of("state", [s.value for s in states])
            rows = self._query(f"SELECT {ITEM_COLUMNS} FROM items WHERE {match} ORDER BY id", args)
        return [item_of(r) for r in rows]

    def counts(self) -> dict[State, int]:
        result = {s: 0 for s in State}
        for state, n in self._query("SELECT state, COUNT(*) FROM items GROUP BY state"):
            result[State(state)] = int(n)
        return result

    def _apply(self, change: ItemChange) -> Item | None:
        if change.to is State.MARKING:
            self._before_claim(change.actor)
        try:
            # when the guard matched no row nothing was written: the commit is empty
            with self._write():
                if State.MARKING not in change.allowed_from:
                    # acting on an item: the journal decides; leaving marking records what the
                    # device did, which is evidence and is never refused
                    self._check_against_journal(change.code)
                return self._apply_in_tx(change)
        except self._integrity_error as exc:
            # the SQL transition guard refused it: nothing changed
            to = change.to.value if change.to else _("unchanged")
            raise BatchError(
                _("item '{code}': {detail} (to {state})").format(
                    code=change.code, detail=self._guard_detail(exc), state=to
                )
            ) from self._cause(exc)
        except Lost as lost:
            raise self._lost_change(change, lost) from None

    def _records_about(self, codes: Sequence[str]) -> list[Record]:
        """The journal records that prove ``codes``: their import records (each cut down to
        those codes) and every record naming one of them, in seq order — indexed, so a claim
        costs the same in a long campaign."""
        match, args = self.dialect.one_of(self.dialect.record_code, codes)
        found = [
            record_of(row)
            for row in self._exec(
                f"SELECT {RECORD_COLUMNS} FROM journal WHERE {match} ORDER BY seq", args
            ).fetchall()
        ]
        for seq in self._import_seqs(codes):
            rec = self._import_records.get(seq)
            if rec is None:
                row = self._exec(
                    f"SELECT {RECORD_COLUMNS} FROM journal WHERE seq = ?", (seq,)
                ).fetchone()
                if row is None:
                    continue
                rec = self._import_records[seq] = record_of(row)
            cut = import_cut_to(rec, codes)
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
            proven = replay(self._records_about([code])).get(code)
            check_item(self.item(code), proven, code=code)
        except JournalError as exc:
            raise StoreError(
                _("{path}: refused, the journal decides: {error}").format(
                    path=self.location, error=exc
                )
            ) from exc

    def _apply_in_tx(self, change: ItemChange) -> Item | None:
        """The guarded UPDATE plus its record, inside the caller's transaction."""
        cols = sorted(change.updates)
        sets = ["updated_at = ?", *(f"{c} = ?" for c in cols)]
        args: list[Any] = [utc_now(), *(change.updates[c] for c in cols)]
        if change.to is not None:
            sets.insert(0, "state = ?")
            args.insert(0, change.to.value)
            for column, value in self._state_columns(change):
                sets.append(f"{column} = ?")
                args.append(value)
        if change.count_attempt:
            sets.append("attempts = attempts + 1")
        match, match_args = self.dialect.one_of("state", [s.value for s in change.allowed_from])
        row = self._exec(
            f"UPDATE items SET {', '.join(sets)} WHERE code = ? AND {match} "
            f"RETURNING {ITEM_COLUMNS}",
            [*args, change.code, *match_args],
        ).fetchone()
        if row is None:
            return None
        self._append_in_tx(change.record_type, change.actor, self.journaled_payload(change))
        return item_of(row)

    def _recover_in_tx(
        self,
        candidates: Sequence[Item],
        actor: Actor,
        proof: Callable[[], Iterable[Record]],
    ) -> list[str]:
        """Inside the caller's write: those of ``candidates`` (items found in ``marking`` whose
        runner is gone) that the journal (``proof()``) also shows in marking -> ``interrupted``,
        journaled, all in the one transaction (recovery is all or nothing); their codes.

        A row edited into marking is left alone (log verify names it, and every command refuses
        to act on it).
        """
        try:
            proven = replay(proof()) if candidates else {}
        except JournalError:
            proven = {}  # a journal that does not replay proves nothing: recover nothing
        codes: list[str] = []
        for item in candidates:
            known = proven.get(item.code)
            if known is None or known.state is not State.MARKING:
                continue
            if self._apply_in_tx(self.recovery_change(item, actor)) is not None:
                codes.append(item.code)
        return codes

    # --- operators ---------------------------------------------------------------------------

    def _operator_query(self, where: str, args: Sequence[Any]) -> list[OperatorRow]:
        rows = self._query(f"SELECT {OPERATOR_COLUMNS} FROM operators {where}", args)
        return [operator_of(r) for r in rows]

    def operator_rows(self) -> list[OperatorRow]:
        return self._operator_query("ORDER BY id", ())

    def operator_row(self, name: str) -> OperatorRow | None:
        found = self._operator_query(f"WHERE {self.dialect.same_name}", (name,))
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
        with self._change(_("the operator was not stored")):
            if self._exec(
                f"SELECT 1 FROM operators WHERE {self.dialect.same_name}", (row.name,)
            ).fetchone():
                return "name-taken"
            empty = self._exec("SELECT 1 FROM operators LIMIT 1").fetchone() is None
            if empty and row.role != first_role:
                return "first-role"
            self._exec(
                "INSERT INTO operators (name, role, pin_hash, disabled, failed_attempts, "
                "locked_until, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.name,
                    row.role,
                    row.pin_hash,
                    row.disabled,
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
        with self._change(_("the operator was not updated")):
            cur = self._exec(
                "UPDATE operators SET role = ?, pin_hash = ?, disabled = ?, failed_attempts = ?, "
                "locked_until = ?, updated_at = ? WHERE name = ? AND role = ? AND pin_hash = ? "
                "AND disabled = ? AND failed_attempts = ? "
                f"AND locked_until {self.dialect.null_safe_eq} ?",
                (
                    new.role,
                    new.pin_hash,
                    new.disabled,
                    new.failed_attempts,
                    new.locked_until,
                    utc_now(),
                    expected.name,
                    expected.role,
                    expected.pin_hash,
                    expected.disabled,
                    expected.failed_attempts,
                    expected.locked_until,
                ),
            )
            if cur.rowcount != 1:
                return None
            for record_type, payload in records:
                self._append_in_tx(record_type, actor, payload)
        return self.operator_row(expected.name)
