"""What the journal proves: every item's state, serial, code and attempts, derived from the records.

The items table is a cache of the journal, and a cache can be edited by anyone holding the file
(``sqlite3 m.db "update items set state='pending' …"``). The journal is the evidence, so the commands
that act on an item (the runner's claim, resolve, skip, requeue, void) and ``log verify`` compare
the row with what the journal proves, and refuse or report the first item that differs.

This module reads records (their ``seq``, ``type`` and ``payload``) in order and nothing else: it
does not depend on how records are hashed or signed (that is :mod:`markstation.queue.journal`'s
business, checked separately). A record moves an item only along a transition of
:data:`markstation.queue.states.TRANSITIONS`; a journal that asks for any other move is reported.

What each record type proves about the item named by its ``code``:

* ``batch-imported`` — every code in ``codes`` exists, ``pending``, 0 attempts, in ``batch``; with
  ``rows`` (stores since this module) also serial, make, model, caliber, owner, layout, line, extra.
* ``item-started`` — to ``marking``; one more attempt; ``job_sha256``; the reason is cleared;
  serial/make/model when the import record did not carry them.
* ``device-outcome`` — out of ``marking`` to ``to``; ``reason``; ``inspection`` when given.
* ``recovery`` — to ``interrupted`` with the store's recovery reason.
* ``resolution`` — to ``to`` with ``reason``; ``--marked`` sets inspection ``resolved-marked``.
* ``skipped``, ``requeued``, ``voided`` — to ``to`` with ``reason``.
* ``inspection`` — only on a ``marked`` item: inspection result and note.
* anything else naming a ``code`` and a ``to``: the move, and ``reason`` when given.

Since this module, the store journals what a change set: a record whose payload holds ``set``
(the fields written) and ``count_attempt`` is replayed exactly from those; the rules above are for
records written before.

An item that ever reached ``marked`` (a completed device outcome or a ``marked`` resolution) is
``burned``: it is never markable again, whatever any table says.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from markstation.errors import JournalError
from markstation.i18n import _
from markstation.queue.journal import Record
from markstation.queue.models import Item
from markstation.queue.states import RUNNABLE, TRANSITIONS, State

#: the reason a ``recovery`` record gives the item (the same constant the store writes)
RECOVERED_REASON = "runner stopped while marking (crash, kill or power loss)"

#: row fields a ``batch-imported`` record's ``rows`` carry
IMPORT_FIELDS = ("serial", "make", "model", "caliber", "owner", "layout", "line", "extra")

#: item fields a store change may set (models.UPDATABLE), as journaled in a record's ``set``
_SETTABLE = frozenset({"inspection", "inspection_note", "reason", "job_sha256"})

#: record types that change an item's fields without moving it
_ANNOTATIONS = frozenset({"inspection", "job-refused", "serial-refused"})


@dataclass
class Proven:
    """One item as its journal records prove it (None: the journal says nothing about the field)."""

    code: str
    batch_id: int | None
    state: State = State.PENDING
    attempts: int = 0
    serial: str | None = None
    make: str | None = None
    model: str | None = None
    caliber: str | None = None
    owner: str | None = None
    layout: str | None = None
    line: int | None = None
    extra: dict[str, str] | None = None
    job_sha256: str | None = None
    reason: str | None = None
    inspection: str | None = None
    inspection_note: str | None = None
    #: reached ``marked`` at least once: never markable again
    burned: bool = False
    #: seq of every record about this item, in order
    seqs: list[int] = field(default_factory=list)

    @property
    def markable(self) -> bool:
        return not self.burned and self.state in RUNNABLE


def _where(rec: Record) -> str:
    return _("journal record seq {seq} ({type})").format(seq=rec.seq, type=rec.type)


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


class Replay:
    """Feed records in seq order; :attr:`items` holds what they prove, by code."""

    def __init__(self) -> None:
        self.items: dict[str, Proven] = {}

    def feed(self, records: Iterable[Record]) -> Replay:
        for rec in records:
            self.apply(rec)
        return self

    def apply(self, rec: Record) -> None:
        payload = rec.payload
        if rec.type == "batch-imported":
            self._imported(rec)
            return
        code = payload.get("code")
        if not isinstance(code, str):
            return  # run-started, run-finished, export: about no single item
        item = self.items.get(code)
        if item is None:
            raise JournalError(
                _("{where}: item '{code}' was never imported").format(where=_where(rec), code=code)
            )
        item.seqs.append(rec.seq)
        if isinstance(payload.get("set"), Mapping):
            self._exact(rec, item)
            return
        if rec.type in _ANNOTATIONS:
            if rec.type == "inspection":
                if item.state is not State.MARKED:
                    raise JournalError(
                        _("{where}: item '{code}' inspected while {state}").format(
                            where=_where(rec), code=code, state=item.state.value
                        )
                    )
                item.inspection = _text(payload.get("result"))
                item.inspection_note = str(payload.get("note", "") or "")
            return
        to_value = payload.get("to")
        if to_value is None and rec.type == "recovery":
            to_value = State.INTERRUPTED.value
        if to_value is None:
            return
        try:
            to = State(to_value)
        except ValueError as exc:
            raise JournalError(
                _("{where}: item '{code}': unknown state '{to_value}'").format(
                    where=_where(rec), code=code, to_value=to_value
                )
            ) from exc
        if (item.state, to) not in TRANSITIONS:
            raise JournalError(
                _("{where}: item '{code}' cannot go from {old} to {new}").format(
                    where=_where(rec), code=code, old=item.state.value, new=to.value
                )
            )
        item.state = to
        if rec.type == "item-started":
            item.attempts += 1
            item.job_sha256 = _text(payload.get("job_sha256"))
            item.reason = None
            for name in ("serial", "make", "model"):
                if getattr(item, name) is None and name in payload:
                    setattr(item, name, str(payload[name]))
        elif rec.type == "recovery":
            item.reason = RECOVERED_REASON
        else:
            if "reason" in payload:
                item.reason = _text(payload.get("reason"))
            if rec.type == "device-outcome" and "inspection" in payload:
                item.inspection = _text(payload.get("inspection"))
            if rec.type == "resolution" and to is State.MARKED:
                item.inspection = "resolved-marked"
        if to is State.MARKED:
            item.burned = True

    def _exact(self, rec: Record, item: Proven) -> None:
        """A record the store wrote with what it set (``set``, ``count_attempt``): no guessing."""
        payload = rec.payload
        to_value = payload.get("to")
        if to_value is not None:
            try:
                to = State(to_value)
            except ValueError as exc:
                raise JournalError(
                    _("{where}: item '{code}': unknown state '{to_value}'").format(
                        where=_where(rec), code=item.code, to_value=to_value
                    )
                ) from exc
            if (item.state, to) not in TRANSITIONS:
                raise JournalError(
                    _("{where}: item '{code}' cannot go from {old} to {new}").format(
                        where=_where(rec), code=item.code, old=item.state.value, new=to.value
                    )
                )
            item.state = to
            if to is State.MARKED:
                item.burned = True
        if payload.get("count_attempt"):
            item.attempts += 1
        for name, value in dict(payload["set"]).items():
            if name in _SETTABLE:
                setattr(item, name, None if value is None else str(value))

    def _imported(self, rec: Record) -> None:
        payload = rec.payload
        batch = payload.get("batch")
        batch_id = batch if isinstance(batch, int) else None
        codes = payload.get("codes") or []
        rows = payload.get("rows")
        by_code: dict[str, Mapping[str, Any]] = {}
        if isinstance(rows, list):
            by_code = {str(r["code"]): r for r in rows if isinstance(r, Mapping) and "code" in r}
        for code in codes:
            if not isinstance(code, str):
                raise JournalError(
                    _("{where}: a code that is not text ({code!r})").format(
                        where=_where(rec), code=code
                    )
                )
            if code in self.items:
                raise JournalError(
                    _("{where}: item '{code}' imported twice (first at seq {first})").format(
                        where=_where(rec), code=code, first=self.items[code].seqs[0]
                    )
                )
            item = Proven(code, batch_id, seqs=[rec.seq])
            row = by_code.get(code)
            if row is not None:
                for name in IMPORT_FIELDS:
                    if name not in row:
                        continue
                    value = row[name]
                    if name == "line":
                        item.line = int(value)
                    elif name == "extra":
                        item.extra = {str(k): str(v) for k, v in dict(value).items()}
                    else:
                        setattr(item, name, str(value))
            self.items[code] = item


def replay(records: Iterable[Record]) -> dict[str, Proven]:
    """Every item the journal knows, as it proves it, by code."""
    return Replay().feed(records).items


#: fields compared between a row and its replay, in the order a difference is reported
_COMPARED = (
    "state",
    "attempts",
    "serial",
    "make",
    "model",
    "caliber",
    "owner",
    "layout",
    "line",
    "extra",
    "batch_id",
    "job_sha256",
    "reason",
    "inspection",
    "inspection_note",
)


#: fields the journal always proves (None there means None in the row)
_ALWAYS = frozenset({"job_sha256", "reason", "inspection", "inspection_note"})


def difference(item: Item, proven: Proven) -> str | None:
    """The first field where the row differs from the journal, as words; None when they agree."""
    if proven.burned and item.state is not State.MARKED:
        return _("state is {old} but the journal proves it marked (burned)").format(
            old=item.state.value
        )
    for name in _COMPARED:
        want = getattr(proven, name)
        have = getattr(item, name)
        if want is None and name not in _ALWAYS:
            continue  # the journal does not say (a store from before import rows were journaled)
        if isinstance(want, State):
            want, have = want.value, have.value
        if have != want:
            return _("{name} is {have!r} but the journal proves {want!r}").format(
                name=name, have=have, want=want
            )
    return None


def check_item(item: Item | None, proven: Proven | None, *, code: str) -> None:
    """Raise JournalError naming ``code`` when its row and its journal disagree (or one is missing)."""
    if proven is None:
        if item is not None:
            raise JournalError(
                _(
                    "item '{code}': in the items table but no journal record imports it (row added outside markstation)"
                ).format(code=code)
            )
        return
    if item is None:
        raise JournalError(
            _(
                "item '{code}': imported at journal seq {seq} but missing from the items table (row deleted outside markstation)"
            ).format(code=code, seq=proven.seqs[0])
        )
    diff = difference(item, proven)
    if diff is not None:
        raise JournalError(
            _(
                "item '{code}': the items table differs from the journal: {diff} (journal seqs {seqs}; edited outside markstation)"
            ).format(code=code, diff=diff, seqs=" ".join(map(str, proven.seqs)))
        )


def check_items(items: Iterable[Item], proven: Mapping[str, Proven]) -> int:
    """Every row against the replay, in import order; JournalError names the first that differs.

    Returns the number of items checked.
    """
    rows = {it.code: it for it in items}
    order = list(proven) + [c for c in rows if c not in proven]
    for code in order:
        check_item(rows.get(code), proven.get(code), code=code)
    return len(order)


def import_cut_to(rec: Record, codes: Sequence[str]) -> Record | None:
    """A ``batch-imported`` record cut down to ``codes`` (None when it imported none of them).

    Replaying only the records about one item (its import, cut down, and every record naming it)
    proves that item exactly as a replay of the whole journal does, in time that does not grow
    with the journal: the check before every claim uses it.
    """
    imported = set(rec.payload.get("codes") or [])
    mine = [c for c in codes if c in imported]
    if not mine:
        return None
    rows = {str(r.get("code")): r for r in rec.payload.get("rows") or [] if isinstance(r, dict)}
    payload = {
        **{k: v for k, v in rec.payload.items() if k not in ("codes", "rows")},
        "codes": mine,
        "rows": [rows[c] for c in mine if c in rows],
    }
    return Record(rec.seq, rec.type, rec.time, rec.operator, rec.station, payload, "", rec.hash)
