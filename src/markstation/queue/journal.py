"""The journal: append-only records, the Merkle tree over them, checkpoints, and their verification.

**Records.** Each record's *leaf bytes* are ``canonical_json({type, time, operator, station,
payload})`` in UTF-8 — exactly the bytes a JSON Lines export carries base64-encoded as ``leaf`` —
and its hash is the RFC 9162 leaf hash ``SHA-256(0x00 ‖ leaf bytes)``. The records are the leaves
of an RFC 9162 Merkle tree (:mod:`~markstation.queue.merkle`), in seq order: leaf index = seq − 1.
A record edited in place no longer matches its hash; a record removed, inserted or moved no longer
matches the leaf the tree holds at its position; a tree recomputed after such an edit no longer
matches the root of any checkpoint signed before it.

**Checkpoints** (:mod:`~markstation.queue.checkpoint`) are signed tree heads. The station stores one
at the end of every run, at every export and on request (:func:`seal`); one kept outside the
station (in an export, on paper, at the registry) pins the history before it: ``log verify
--checkpoint`` proves by an RFC 9162 consistency proof that the store still extends it.

**No more hash chain.** Stores written before the tree carry a SHA-256 chain (each record hashed
with the hash of the one before it). New records do not: the tree commits to every record's content
*and* position just as the chain did, and in addition gives inclusion and consistency proofs of
log₂ n hashes; the chain proved nothing the tree does not, and neither proves anything against
someone who can rewrite the file — only a signature or an outside checkpoint does. Old records keep
their chain (``prev_hash`` non-empty) and it is still checked; their leaves are added to the tree
when such a store is first opened.

This module is pure (no database); a :class:`~markstation.queue.store.Store` provides the rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from markstation.errors import JournalError
from markstation.i18n import _, ngettext
from markstation.queue import merkle
from markstation.queue.checkpoint import Checkpoint, SignedNote, VerifierKey, b64

if TYPE_CHECKING:
    from markstation.queue.keys import StationKey
    from markstation.queue.store import Store

#: prev_hash of the first record of a legacy (hash-chained) journal
GENESIS = "0" * 64

#: record types, in the order they usually appear for one item
RECORD_TYPES = (
    "batch-imported",
    "run-started",
    "item-started",
    "device-outcome",
    "inspection",
    "job-refused",
    "serial-refused",
    "recovery",
    "resolution",
    "skipped",
    "voided",
    "requeued",
    "run-finished",
    "export",
    "operator-added",
    "operator-disabled",
    "signed-in",
    "sign-in-failed",
    "operator-locked",
    "operator-unlocked",
)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def canonical_json(value: Any) -> str:
    """The one JSON spelling that is hashed: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def leaf_bytes(
    *, type: str, time: str, operator: str, station: str, payload: Mapping[str, Any]
) -> bytes:
    """The bytes hashed as a record's Merkle leaf (without the 0x00 prefix)."""
    return canonical_json(
        {"type": type, "time": time, "operator": operator, "station": station, "payload": payload}
    ).encode("utf-8")


def record_hash(
    prev_hash: str,
    *,
    type: str,
    time: str,
    operator: str,
    station: str,
    payload: Mapping[str, Any],
) -> str:
    """The legacy chain hash (records written before the tree): sha256(prev_hash + leaf bytes)."""
    body = leaf_bytes(type=type, time=time, operator=operator, station=station, payload=payload)
    return hashlib.sha256(prev_hash.encode() + body).hexdigest()


@dataclass(frozen=True)
class Record:
    """One journal record as stored.

    ``hash`` is the hex RFC 9162 leaf hash; ``prev_hash`` is empty, except on legacy records,
    where ``hash`` is the chain hash and ``prev_hash`` the chain link.
    """

    seq: int
    type: str
    time: str
    operator: str
    station: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)  # every field under its own name (payload copied)

    def leaf_bytes(self) -> bytes:
        return leaf_bytes(
            type=self.type,
            time=self.time,
            operator=self.operator,
            station=self.station,
            payload=self.payload,
        )

    @property
    def where(self) -> str:
        return _("journal record seq {seq} ({type})").format(seq=self.seq, type=self.type)


@dataclass(frozen=True)
class TreeHead:
    """Number of records and the hex Merkle root over them."""

    records: int
    hash: str

    @property
    def root(self) -> bytes:
        return bytes.fromhex(self.hash)

    def __str__(self) -> str:
        return ngettext(
            "{records} record, tree root {hash}",
            "{records} records, tree root {hash}",
            self.records,
        ).format(records=self.records, hash=self.hash)


#: the old name, from the hash-chain days
ChainHead = TreeHead


def new_record(
    seq: int,
    type: str,
    *,
    operator: str,
    station: str,
    payload: Mapping[str, Any],
    time: str | None = None,
) -> Record:
    if type not in RECORD_TYPES:
        raise JournalError(f"unknown journal record type '{type}'")
    when = time or utc_now()
    # round-trip through JSON so what is hashed is exactly what is stored and read back
    clean = json.loads(canonical_json(dict(payload)))
    data = leaf_bytes(type=type, time=when, operator=operator, station=station, payload=clean)
    return Record(seq, type, when, operator, station, clean, "", merkle.leaf_hash(data).hex())


# --- rebuilding and verifying ------------------------------------------------------------------


def rebuild(records: Iterable[Record]) -> merkle.MerkleTree:
    """Check every record against its own hash (and legacy chain) and build the tree over them.

    Raises JournalError naming the first record removed from the middle, edited, or out of the
    legacy chain. A record that is self-consistent but moved is only seen against the stored tree
    (:func:`verify_store`).
    """
    tree = merkle.MerkleTree()
    prev_seq, prev_chain, legacy = 0, GENESIS, True
    for rec in records:
        if rec.seq != prev_seq + 1:
            missing = (
                f"seq {prev_seq + 1}"
                if rec.seq == prev_seq + 2
                else f"seq {prev_seq + 1}..{rec.seq - 1}"
            )
            raise JournalError(
                _("{where}: {missing} before it was removed").format(
                    where=rec.where, missing=missing
                )
            )
        data = rec.leaf_bytes()
        leaf = merkle.leaf_hash(data)
        if rec.prev_hash:
            if not legacy:
                raise JournalError(
                    _("{where}: a chained record after unchained ones (edited)").format(
                        where=rec.where
                    )
                )
            expected = hashlib.sha256(rec.prev_hash.encode() + data).hexdigest()
            if expected != rec.hash:
                raise JournalError(
                    _("{where}: its content does not match its hash (edited)").format(
                        where=rec.where
                    )
                )
            if rec.prev_hash != prev_chain:
                raise JournalError(
                    _(
                        "{where}: it does not follow seq {prev_seq} (a record was removed, inserted or reordered here)"
                    ).format(where=rec.where, prev_seq=prev_seq)
                )
            prev_chain = rec.hash
        else:
            legacy = False
            if leaf.hex() != rec.hash:
                raise JournalError(
                    _("{where}: its content does not match its hash (edited)").format(
                        where=rec.where
                    )
                )
        tree.append(leaf)
        prev_seq = rec.seq
    return tree


def verify(records: Iterable[Record]) -> TreeHead:
    """Check the records on their own (see :func:`rebuild`); return the head of their tree."""
    tree = rebuild(records)
    return TreeHead(tree.size, tree.root().hex())


@dataclass(frozen=True)
class StoredCheckpoint:
    """A checkpoint as the store keeps it: when, why, and the note text exactly as written."""

    id: int
    time: str
    reason: str
    text: str

    @property
    def where(self) -> str:
        return _("stored checkpoint {id} ({reason}, {time})").format(
            id=self.id, reason=self.reason, time=self.time
        )

    def note(self) -> SignedNote:
        return SignedNote.parse(self.text, self.where)


@dataclass
class VerifyReport:
    head: TreeHead
    checkpoints: int = 0
    signed: int = 0
    signatures_checked: bool = False
    outside: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [
            ngettext(
                "journal ok: {records} record, tree root {hash}",
                "journal ok: {records} records, tree root {hash}",
                self.head.records,
            ).format(records=self.head.records, hash=self.head.hash)
        ]
        sig = (
            _("signatures verified")
            if self.signatures_checked
            else _("signatures NOT checked: no station key")
        )
        if self.checkpoints:
            parts.append(
                _("{checkpoints} stored checkpoints ({signed} signed; {sig})").format(
                    checkpoints=self.checkpoints, signed=self.signed, sig=sig
                )
            )
        parts.extend(self.outside)
        return "; ".join(parts)


def _record_at(records: Sequence[Record], index: int) -> str:
    return (
        records[index].where if index < len(records) else _("tree leaf {index}").format(index=index)
    )


def verify_store(
    store: Store,
    *,
    key: VerifierKey | None = None,
    outside: Sequence[tuple[str, str]] = (),
) -> tuple[VerifyReport, merkle.MerkleTree]:
    """Full check of a store: records, tree tables, stored checkpoints, checkpoints from outside.

    ``key`` verifies the signatures (the station key's verifier, or one given by the user);
    ``outside`` is ``(where, note text)`` of checkpoints kept elsewhere. Raises JournalError naming
    the first problem.
    """
    records = list(store.records())
    tree = rebuild(records)
    n = tree.size
    # the stored tree must be exactly the rebuilt one: same leaves in the same places
    stored_leaves = 0
    for level, index, h in store.tree_nodes():
        if level == 0:
            stored_leaves += 1
        if level >= len(tree.levels) or index >= len(tree.levels[level]):
            if level == 0:
                raise JournalError(
                    _(
                        "the tree holds leaf {index} but the journal ends at seq {n}: records were removed from the end"
                    ).format(index=index, n=n)
                )
            raise JournalError(
                _("tree node ({level}, {index}) beyond the journal (edited)").format(
                    level=level, index=index
                )
            )
        if tree.levels[level][index] != h:
            if level == 0:
                raise JournalError(
                    _(
                        "{record}: it is not the record the tree holds at this position (a record was removed, inserted or reordered here)"
                    ).format(record=_record_at(records, index))
                )
            raise JournalError(
                _("tree node ({level}, {index}) does not match the journal (edited)").format(
                    level=level, index=index
                )
            )
    if stored_leaves != n:
        raise JournalError(
            _("the tree holds {stored_leaves} leaves for {n} records (edited)").format(
                stored_leaves=stored_leaves, n=n
            )
        )
    report = VerifyReport(TreeHead(n, tree.root().hex()), signatures_checked=key is not None)

    good_size = 0
    for cp in store.checkpoints():
        note = cp.note()
        _check_against(note, cp.where, tree, records, key, good_size)
        good_size = max(good_size, note.checkpoint.size)
        report.checkpoints += 1
        report.signed += note.signed
    for where, text in outside:
        note = SignedNote.parse(text, where)
        if note.signed and key is None:
            raise JournalError(
                _(
                    "{where}: cannot check its signature: no station key here (give --key station.pub)"
                ).format(where=where)
            )
        _check_against(note, where, tree, records, key, 0, proof=True)
        state = _("signed by the station") if note.signed else _("UNSIGNED")
        report.outside.append(
            _("{where} ({state}, {size} records) is contained in the journal").format(
                where=where, state=state, size=note.checkpoint.size
            )
        )
    return report, tree


def _check_against(
    note: SignedNote,
    where: str,
    tree: merkle.MerkleTree,
    records: Sequence[Record],
    key: VerifierKey | None,
    good_size: int,
    *,
    proof: bool = False,
) -> None:
    cp = note.checkpoint
    if key is not None and note.signed:  # unsigned ones (made before the key) only pin roots
        note.verify(key, where)
    n = tree.size
    if cp.size > n:
        raise JournalError(
            _(
                "{where}: it covers {size} records but the journal holds only {n}: records after seq {n} were removed from the end (truncated)"
            ).format(where=where, size=cp.size, n=n)
        )
    ok = (
        merkle.verify_consistency(cp.size, n, cp.root, tree.root(), tree.consistency_proof(cp.size))
        if proof
        else tree.root(cp.size) == cp.root
    )
    if not ok:
        span = f"seq {good_size + 1}..{cp.size}" if good_size < cp.size else f"seq ≤ {cp.size}"
        first = _record_at(records, good_size) if good_size < cp.size else ""
        raise JournalError(
            _(
                "{where}: the journal no longer extends this checkpoint of {size} records — a record in {span} was changed, removed, inserted or reordered"
            ).format(where=where, size=cp.size, span=span)
            + (_(" (first suspect: {first})").format(first=first) if first else "")
        )


# --- making checkpoints -------------------------------------------------------------------------


def origin_for(key: StationKey | None, station: str) -> str:
    from markstation.queue.keys import default_key_name

    return key.name if key is not None else default_key_name(station)


def make_note(
    store: Store, key: StationKey | None, station: str, size: int | None = None
) -> SignedNote:
    head = store.head()
    n = head.records if size is None else size
    root = head.root if size is None else store.root(n)
    cp = Checkpoint(origin_for(key, station), n, root)
    return key.sign(cp) if key is not None else SignedNote(cp)


def seal(
    store: Store,
    key: StationKey | None,
    *,
    station: str,
    reason: str,
    size: int | None = None,
) -> StoredCheckpoint:
    """Make a checkpoint of the journal as it is now (or at ``size``), sign it if there is a key,
    and keep it in the store."""
    note = make_note(store, key, station, size)
    return store.add_checkpoint(note.text(), reason=reason)


def checkpoint_json(note: SignedNote) -> dict[str, Any]:
    cp = note.checkpoint
    return {"origin": cp.origin, "size": cp.size, "root": b64(cp.root), "note": note.text()}


def record_json(rec: Record, tree: merkle.MerkleTree, size: int) -> dict[str, Any]:
    """A record as exports and proof bundles carry it: fields, leaf bytes, inclusion proof."""
    return {
        "seq": rec.seq,
        "type": rec.type,
        "time": rec.time,
        "operator": rec.operator,
        "station": rec.station,
        "payload": rec.payload,
        "leaf": b64(rec.leaf_bytes()),
        "proof": [b64(h) for h in tree.inclusion_proof(rec.seq - 1, size)],
    }


def latest_checkpoint_text(store: Store) -> str | None:
    """The note text of the newest stored checkpoint (for a QR code on a printed report)."""
    cps = store.checkpoints()
    return cps[-1].text if cps else None
