"""The registry report: every item's final state with its journal evidence, and a checkpoint.

The export itself is journaled first (with the sha256 of the rows), then a checkpoint of the tree
up to and including that record is made (signed when the station has a key) and kept in the store,
so the checkpoint covers the export record and, through its ``rows_sha256``, the rows themselves.

CSV: a header and one row per item, nothing else; the checkpoint travels as its own file next to
it (``report.csv`` + ``report.checkpoint``). JSON Lines, one object per line, every line a single
key naming what it is::

    {"item": {...}}                 one per item (the CSV row, typed)
    {"record": {"seq", "type", "time", "operator", "station", "payload",
                "leaf": base64 of the exact leaf bytes, "proof": [base64 inclusion proof]}}
    {"consistency": {"size": m, "root": base64, "proof": [...]}}   from each earlier stored checkpoint
    {"checkpoint": {"origin", "size", "root", "note": the signed note text}}   last

(``report.checkpoint`` is written next to a JSON Lines export too). Every journal record up to the
checkpoint is in the file, so a registry can recompute the tree with any RFC 9162 tool;
:mod:`markstation.audit` is that check.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from markstation.errors import ConfigError
from markstation.i18n import _
from markstation.queue.checkpoint import SignedNote, b64
from markstation.queue.journal import (
    ChainHead,
    Record,
    StoredCheckpoint,
    canonical_json,
    checkpoint_json,
    rebuild,
    record_json,
    seal,
)
from markstation.queue.models import Actor, Item
from markstation.queue.states import State
from markstation.queue.store import Store

if TYPE_CHECKING:
    from markstation.queue.keys import StationKey

Format = Literal["csv", "jsonl"]

COLUMNS = (
    "mark_code",
    "serial",
    "make",
    "model",
    "caliber",
    "owner",
    "batch",
    "layout",
    "state",
    "marked_at",
    "operator",
    "station",
    "attempts",
    "inspection",
    "inspection_note",
    "resolution",
    "reason",
    "device_model",
    "device_firmware",
    "device_serial",
    "device_url",
    "device_mark_time_s",
    "machine",
    "machine_sha256",
    "material",
    "material_sha256",
    "layout_sha256",
    "job_sha256",
    "journal_seqs",
    "extra",
)


def _evidence(records: Iterable[Record]) -> dict[str, list[Record]]:
    by_code: dict[str, list[Record]] = {}
    for rec in records:
        code = rec.payload.get("code")
        if isinstance(code, str):
            by_code.setdefault(code, []).append(rec)
    return by_code


def item_row(item: Item, evidence: list[Record]) -> dict[str, Any]:
    """One report row: the item and what its journal records prove."""
    started = [r for r in evidence if r.type == "item-started"]
    last_start = started[-1].payload if started else {}
    device = last_start.get("device") or {}
    profiles = last_start.get("profiles") or {}
    marked_by: Record | None = None
    resolution = ""
    for rec in evidence:
        if rec.payload.get("to") == State.MARKED.value:
            marked_by = rec
        if rec.type == "resolution":
            resolution = str(rec.payload.get("resolution", ""))
    outcome = next(
        (r.payload for r in reversed(evidence) if r.type == "device-outcome"),
        {},
    )
    return {
        "mark_code": item.code,
        "serial": item.serial,
        "make": item.make,
        "model": item.model,
        "caliber": item.caliber,
        "owner": item.owner,
        "batch": item.batch_id,
        "layout": item.layout,
        "state": item.state.value,
        "marked_at": marked_by.time if marked_by else "",
        "operator": marked_by.operator if marked_by else "",
        "station": marked_by.station if marked_by else "",
        "attempts": item.attempts,
        "inspection": item.inspection or "",
        "inspection_note": item.inspection_note or "",
        "resolution": resolution,
        "reason": item.reason or "",
        "device_model": device.get("model", ""),
        "device_firmware": device.get("firmware", ""),
        "device_serial": device.get("serial", ""),
        "device_url": device.get("url", ""),
        "device_mark_time_s": outcome.get("device_mark_time_s") or "",
        "machine": (profiles.get("machine") or {}).get("name", ""),
        "machine_sha256": (profiles.get("machine") or {}).get("sha256", ""),
        "material": (profiles.get("material") or {}).get("name", ""),
        "material_sha256": (profiles.get("material") or {}).get("sha256", ""),
        "layout_sha256": (profiles.get("layout") or {}).get("sha256", ""),
        "job_sha256": item.job_sha256 or "",
        "journal_seqs": " ".join(str(r.seq) for r in evidence),
        "extra": json.dumps(item.extra, sort_keys=True, ensure_ascii=False) if item.extra else "",
    }


def csv_cell(value: Any) -> Any:
    """A CSV report cell, neutralised against formula injection (OWASP; text policy rule)."""
    from markstation.queue.textpolicy import spreadsheet_safe

    return spreadsheet_safe(value) if isinstance(value, str) else value


def checkpoint_path(report: str | os.PathLike[str]) -> Path:
    """``report.csv`` -> ``report.checkpoint``: where an export's checkpoint is written."""
    return Path(report).with_suffix(".checkpoint")


def jsonl_lines(
    rows: list[dict[str, Any]],
    records: list[Record],
    note: SignedNote,
    earlier: Iterable[StoredCheckpoint] = (),
) -> Iterable[str]:
    """The JSON Lines export (see the module docstring), one line at a time."""
    size = note.checkpoint.size
    wanted = [r for r in records if r.seq <= size]
    tree = rebuild(wanted)
    if tree.size != size or tree.root() != note.checkpoint.root:
        raise ConfigError(_("the journal does not match its tree; run 'markstation log verify'"))

    def dump(obj: dict[str, Any]) -> str:
        return json.dumps(obj, ensure_ascii=False, sort_keys=True) + "\n"

    for row in rows:
        yield dump({"item": row})
    for rec in wanted:
        yield dump({"record": record_json(rec, tree, size)})
    seen: set[int] = set()
    for cp in earlier:
        m = cp.note().checkpoint
        if 0 < m.size < size and m.size not in seen and tree.root(m.size) == m.root:
            seen.add(m.size)
            proof = tree.consistency_proof(m.size, size)
            yield dump(
                {
                    "consistency": {
                        "size": m.size,
                        "root": b64(m.root),
                        "proof": [b64(h) for h in proof],
                    }
                }
            )
    yield dump({"checkpoint": checkpoint_json(note)})


def journal_export(
    store: Store,
    out: Path,
    rows: list[dict[str, Any]],
    *,
    fmt: str,
    actor: Actor,
    key: StationKey | None,
) -> tuple[SignedNote, int | None]:
    """Journal an ``export`` record for ``rows`` and keep its checkpoint (signed with ``key``).

    Every export format goes through here, so each one is journaled and sealed alike. Returns the
    checkpoint and its stored id (None on a read-only copy: the export cannot be journaled there,
    and the checkpoint is of the copy as it is). Private ``_`` keys of a row are not hashed.
    """
    plain = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    rows_sha = hashlib.sha256(canonical_json(plain).encode()).hexdigest()
    counts = {s.value: n for s, n in store.counts().items() if n}
    if store.readonly:
        from markstation.queue.journal import make_note

        return make_note(store, key, actor.station), None
    exported = store.append(
        "export",
        actor=actor,
        payload={
            "format": fmt,
            "file": str(out),
            "items": len(rows),
            "states": counts,
            "rows_sha256": rows_sha,
        },
    )
    stored = seal(store, key, station=actor.station, reason="export", size=exported.seq)
    return stored.note(), stored.id


def export_report(
    store: Store,
    path: str | os.PathLike[str],
    *,
    fmt: Format,
    actor: Actor,
    key: StationKey | None = None,
) -> ChainHead:
    """Write the report to ``path`` (atomically), journal an ``export`` record, keep a checkpoint
    (signed with ``key`` when given) and write it to :func:`checkpoint_path`; return the head."""
    if fmt not in ("csv", "jsonl"):
        raise ConfigError(_("unknown export format '{fmt}' (csv or jsonl)").format(fmt=fmt))
    out = Path(path)
    evidence = _evidence(store.records())
    rows = [item_row(it, evidence.get(it.code, [])) for it in store.items()]
    note, stored_id = journal_export(store, out, rows, fmt=fmt, actor=actor, key=key)
    head = ChainHead(note.checkpoint.size, note.checkpoint.root.hex())
    buf = io.StringIO()
    if fmt == "csv":
        w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
        w.writeheader()
        # a cell starting with = + - @ TAB or CR gets a ' prefix: no spreadsheet evaluates it
        w.writerows({k: csv_cell(v) for k, v in row.items()} for row in rows)
    else:
        earlier = [cp for cp in store.checkpoints() if cp.id != stored_id]
        buf.writelines(jsonl_lines(rows, list(store.records()), note, earlier))
    tmp = out.with_name(out.name + ".tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            fh.write(buf.getvalue())
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(out)
    except OSError as exc:
        raise ConfigError(
            _("{path}: cannot write the report ({error})").format(path=out, error=exc.strerror)
        ) from exc
    write_atomic(checkpoint_path(out), note.text())
    return head


def write_atomic(path: Path, text: str) -> None:
    """Write a text file through a fsynced temporary beside it; ConfigError naming the file."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
    except OSError as exc:
        raise ConfigError(
            _("{path}: cannot write it ({error})").format(path=path, error=exc.strerror)
        ) from exc
