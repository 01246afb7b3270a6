"""The tamper-evident journal: hash-chained records and their verification.

Every record carries the hash of the one before it; its own hash is
``sha256(prev_hash + canonical_json({type, time, operator, station, payload}))``. The sequence
number is *not* hashed: order is proven by the links, so a record edited in place breaks its own
hash, and a record removed, inserted or moved breaks the link of the record that follows.

This module is pure (no database); the store appends and reads rows, :func:`verify` checks them.
Truncating the tail cannot be seen from the journal alone; that is what the chain head printed by
``log verify`` and written at the end of every export is for: keep it outside the station.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from markstation.errors import JournalError

#: prev_hash of the first record
GENESIS = "0" * 64

#: record types, in the order they usually appear for one item
RECORD_TYPES = (
    "batch-imported",
    "run-started",
    "item-started",
    "device-outcome",
    "inspection",
    "job-refused",
    "recovery",
    "resolution",
    "skipped",
    "voided",
    "requeued",
    "run-finished",
    "export",
)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def canonical_json(value: Any) -> str:
    """The one JSON spelling that is hashed: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_hash(
    prev_hash: str,
    *,
    type: str,
    time: str,
    operator: str,
    station: str,
    payload: Mapping[str, Any],
) -> str:
    body = canonical_json(
        {
            "type": type,
            "time": time,
            "operator": operator,
            "station": station,
            "payload": payload,
        }
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


@dataclass(frozen=True)
class Record:
    """One journal record as stored."""

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


@dataclass(frozen=True)
class ChainHead:
    """Number of records and the hash of the last one: what a registry keeps to detect truncation."""

    records: int
    hash: str

    def __str__(self) -> str:
        return f"{self.records} records, head {self.hash}"


def new_record(
    seq: int,
    prev_hash: str,
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
    digest = record_hash(
        prev_hash, type=type, time=when, operator=operator, station=station, payload=clean
    )
    return Record(seq, type, when, operator, station, clean, prev_hash, digest)


def verify(records: Iterable[Record]) -> ChainHead:
    """Check the whole chain in seq order; raise JournalError naming the first bad record."""
    prev_hash = GENESIS
    prev_seq = 0
    count = 0
    for rec in records:
        where = f"journal record seq {rec.seq} ({rec.type})"
        if rec.seq != prev_seq + 1:
            missing = (
                f"seq {prev_seq + 1}"
                if rec.seq == prev_seq + 2
                else f"seq {prev_seq + 1}..{rec.seq - 1}"
            )
            raise JournalError(f"{where}: {missing} before it was removed")
        expected = record_hash(
            rec.prev_hash,
            type=rec.type,
            time=rec.time,
            operator=rec.operator,
            station=rec.station,
            payload=rec.payload,
        )
        if expected != rec.hash:
            raise JournalError(f"{where}: its content does not match its hash (edited)")
        if rec.prev_hash != prev_hash:
            raise JournalError(
                f"{where}: it does not follow seq {prev_seq} (a record was removed, inserted "
                "or reordered here)"
            )
        prev_hash = rec.hash
        prev_seq = rec.seq
        count += 1
    return ChainHead(count, prev_hash)
