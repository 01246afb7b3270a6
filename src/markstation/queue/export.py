"""The registry report: every item's final state with its journal evidence, and the chain head.

CSV (one row per item, a header, then a last line ``# chain head: records=N sha256=H``) or JSON Lines
(one object per item, then ``{"chain_head": {"records": N, "hash": H}}``). The export itself is
journaled first (with the sha256 of the rows), so the head in the file covers the export record:
the registry can later ask the station for ``log verify`` and compare heads.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from markstation.errors import ConfigError
from markstation.queue.journal import ChainHead, Record, canonical_json
from markstation.queue.models import Actor, Item
from markstation.queue.states import State
from markstation.queue.store import Store

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


def export_report(
    store: Store, path: str | os.PathLike[str], *, fmt: Format, actor: Actor
) -> ChainHead:
    """Write the report to ``path`` (atomically) and journal an ``export`` record; return the head."""
    if fmt not in ("csv", "jsonl"):
        raise ConfigError(f"unknown export format '{fmt}' (csv or jsonl)")
    out = Path(path)
    evidence = _evidence(store.records())
    rows = [item_row(it, evidence.get(it.code, [])) for it in store.items()]
    rows_sha = hashlib.sha256(canonical_json(rows).encode()).hexdigest()
    counts = {s.value: n for s, n in store.counts().items() if n}
    store.append(
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
    head = store.head()
    buf = io.StringIO()
    if fmt == "csv":
        w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        buf.write(f"# chain head: records={head.records} sha256={head.hash}\n")
    else:
        for row in rows:
            buf.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
        buf.write(json.dumps({"chain_head": {"records": head.records, "hash": head.hash}}) + "\n")
    tmp = out.with_name(out.name + ".tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            fh.write(buf.getvalue())
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(out)
    except OSError as exc:
        raise ConfigError(f"{out}: cannot write the report ({exc.strerror})") from exc
    return head
