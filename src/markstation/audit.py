"""Registry-side verification of a station's export: no store, no station, only the files.

A registry (or an auditor, years later) holds the station's verifier key (``station.pub``) and
the checkpoints it was sent before. :func:`verify_export` checks a JSON Lines export (or a
``log prove`` bundle) against them and raises :class:`~markstation.errors.JournalError` naming the
file, line and field of the first problem:

1. the checkpoint (the last line) is signed by the station's key, and its origin is the station;
2. every record's fields are exactly its ``leaf`` bytes, and its inclusion proof places
   ``SHA-256(0x00 ‖ leaf)`` at index ``seq − 1`` under the checkpoint's root (RFC 9162 §2.1.3.2);
   when the file holds every record, the root is also recomputed from all the leaves;
3. the item rows hash to the ``rows_sha256`` of the export record, and every seq an item cites is
   a record about that item;
4. with a previous checkpoint: it is signed by the same key, and the new tree extends it (an RFC
   9162 consistency proof from the file, or the recomputed tree) — an older export presented as
   newer, or a rewritten history, fails here.

Usable as a library::

    from markstation.audit import read_verifier, verify_export
    report = verify_export("report.jsonl", read_verifier("station.pub"), previous="last.checkpoint")
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markstation.errors import JournalError
from markstation.i18n import _
from markstation.queue import merkle
from markstation.queue.checkpoint import SignedNote, VerifierKey, unb64
from markstation.queue.journal import canonical_json

_RECORD_FIELDS = ("type", "time", "operator", "station", "payload")


def read_verifier(source: str | os.PathLike[str]) -> VerifierKey:
    """A verifier key from a file (``station.pub``) or given inline (``name+hash+key``)."""
    text = str(source)
    path = Path(source)
    if "+" in text and not path.exists():
        return VerifierKey.parse(text, "--key")
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise JournalError(
            _("{path}: cannot read the verifier key ({exc})").format(path=path, exc=exc)
        ) from exc
    lines = [ln for ln in content.splitlines() if ln.strip()]
    if len(lines) != 1:
        raise JournalError(
            _("{path}: expected one line, a verifier key <name>+<hash>+<key>").format(path=path)
        )
    return VerifierKey.parse(lines[0], f"{path}:1")


def read_checkpoint(path: str | os.PathLike[str]) -> SignedNote:
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise JournalError(
            _("{p}: cannot read the checkpoint ({exc})").format(p=p, exc=exc)
        ) from exc
    return SignedNote.parse(text, str(p))


@dataclass
class RegistryReport:
    origin: str
    size: int
    root: bytes
    records: int = 0
    items: int = 0
    complete: bool = False
    previous: str | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        root = base64.b64encode(self.root).decode()
        what = "every record" if self.complete else f"{self.records} records (inclusion proofs)"
        parts = [
            f"export ok: {self.origin}, tree of {self.size} records, root {root}",
            f"signature verified; {what} and {self.items} item rows checked",
        ]
        if self.previous:
            parts.append(f"extends {self.previous}")
        return "; ".join(parts + self.notes)


@dataclass
class _Parsed:
    items: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    records: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    consistency: dict[int, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    checkpoint: tuple[int, dict[str, Any]] | None = None


def _parse(path: Path) -> _Parsed:
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise JournalError(
            _("{path}: cannot read the export ({exc})").format(path=path, exc=exc)
        ) from exc
    out = _Parsed()
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if isinstance(whole, dict) and "records" in whole:  # a 'log prove' bundle
        if not isinstance(whole["records"], list) or not isinstance(whole.get("checkpoint"), dict):
            raise JournalError(
                _("{path}: a proof bundle needs 'records' and 'checkpoint'").format(path=path)
            )
        out.records = [(i, r) for i, r in enumerate(whole["records"], 1)]
        out.checkpoint = (0, whole["checkpoint"])
        for c in whole.get("consistency") or []:
            out.consistency[int(c.get("size", -1))] = (0, c)
        return out
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        if out.checkpoint is not None:
            raise JournalError(
                _("{path}:{n}: a line after the checkpoint (the checkpoint is last)").format(
                    path=path, n=n
                )
            )
        try:
            obj = json.loads(line)
        except ValueError as exc:
            message = (
                _(
                    "{path}:{n}: not JSON ({error}); registry verify reads the JSON Lines export "
                    "(log export --format jsonl), which carries the records and their proofs"
                )
                if n == 1
                else _("{path}:{n}: not JSON ({error})")
            )
            raise JournalError(message.format(path=path, n=n, error=exc.args[0])) from exc
        if not isinstance(obj, dict) or len(obj) != 1:
            raise JournalError(
                _("{path}:{n}: expected one of item, record, consistency, checkpoint").format(
                    path=path, n=n
                )
            )
        ((kind, value),) = obj.items()
        if not isinstance(value, dict):
            raise JournalError(
                _("{path}:{n}: '{kind}' is not an object").format(path=path, n=n, kind=kind)
            )
        if kind == "item":
            out.items.append((n, value))
        elif kind == "record":
            out.records.append((n, value))
        elif kind == "consistency":
            out.consistency[int(value.get("size", -1))] = (n, value)
        elif kind == "checkpoint":
            out.checkpoint = (n, value)
        else:
            raise JournalError(
                _("{path}:{n}: unknown line kind '{kind}'").format(path=path, n=n, kind=kind)
            )
    if out.checkpoint is None:
        raise JournalError(
            _("{path}: no checkpoint line (is it a markstation JSON Lines export?)").format(
                path=path
            )
        )
    return out


def _hashes(value: Any, where: str) -> list[bytes]:
    if not isinstance(value, list):
        raise JournalError(_("{where}: not a list of base64 hashes").format(where=where))
    return [unb64(h, where, merkle.HASH_SIZE) if isinstance(h, str) else b"" for h in value]


def verify_export(
    export: str | os.PathLike[str],
    key: VerifierKey,
    *,
    previous: str | os.PathLike[str] | SignedNote | None = None,
) -> RegistryReport:
    """Check an export (or proof bundle) file; raise JournalError naming the first problem."""
    path = Path(export)
    parsed = _parse(path)
    assert parsed.checkpoint is not None
    cp_line, cp_obj = parsed.checkpoint
    where_cp = f"{path}:{cp_line}: checkpoint" if cp_line else f"{path}: checkpoint"
    note_text = cp_obj.get("note")
    if not isinstance(note_text, str):
        raise JournalError(_("{where_cp}: no 'note' text").format(where_cp=where_cp))
    note = SignedNote.parse(note_text, where_cp)
    note.verify(key, where_cp)
    cp = note.checkpoint
    for name, want in (("origin", cp.origin), ("size", cp.size)):
        if cp_obj.get(name) != want:
            raise JournalError(
                _("{where_cp}: '{name}' differs from the signed note (edited)").format(
                    where_cp=where_cp, name=name
                )
            )
    if cp_obj.get("root") != base64.b64encode(cp.root).decode():
        raise JournalError(
            _("{where_cp}: 'root' differs from the signed note (edited)").format(where_cp=where_cp)
        )
    report = RegistryReport(cp.origin, cp.size, cp.root)

    leaves: dict[int, bytes] = {}
    by_seq: dict[int, dict[str, Any]] = {}
    for n, rec in parsed.records:
        seq = rec.get("seq")
        where = f"{path}:{n}: record seq {seq}"
        if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq <= cp.size:
            raise JournalError(
                _("{where}: 'seq' is not within the checkpoint's 1..{size}").format(
                    where=where, size=cp.size
                )
            )
        if seq in leaves:
            raise JournalError(_("{where}: seq {seq} appears twice").format(where=where, seq=seq))
        leaf_b64 = rec.get("leaf")
        if not isinstance(leaf_b64, str):
            raise JournalError(_("{where}: no 'leaf'").format(where=where))
        try:
            data = base64.b64decode(leaf_b64.encode("ascii"), validate=True)
            decoded = json.loads(data.decode("utf-8"))
        except (binascii.Error, UnicodeError, ValueError) as exc:
            raise JournalError(
                _("{where}: 'leaf' is not base64 of a JSON record").format(where=where)
            ) from exc
        if not isinstance(decoded, dict) or canonical_json(decoded).encode() != data:
            raise JournalError(
                _("{where}: 'leaf' is not canonical JSON record bytes (edited)").format(where=where)
            )
        for name in _RECORD_FIELDS:
            if decoded.get(name) != rec.get(name) or name not in rec:
                raise JournalError(
                    _("{where}: '{name}' does not match its leaf bytes (edited)").format(
                        where=where, name=name
                    )
                )
        leaf = merkle.leaf_hash(data)
        proof = _hashes(rec.get("proof"), f"{where}: 'proof'")
        if not merkle.verify_inclusion(leaf, seq - 1, cp.size, proof, cp.root):
            raise JournalError(
                _(
                    "{where}: not in the checkpoint's tree (its inclusion proof fails: the record or its proof was edited)"
                ).format(where=where)
            )
        leaves[seq] = leaf
        by_seq[seq] = rec
    report.records = len(leaves)
    tree: merkle.MerkleTree | None = None
    if len(leaves) == cp.size:
        tree = merkle.MerkleTree(leaves[s] for s in range(1, cp.size + 1))
        if tree.root() != cp.root:
            raise JournalError(
                _("{path}: the records do not hash to the checkpoint's root (edited)").format(
                    path=path
                )
            )
        report.complete = True

    if parsed.items:
        _check_items(path, parsed.items, by_seq, cp.size)
        report.items = len(parsed.items)

    if previous is not None:
        prev = previous if isinstance(previous, SignedNote) else read_checkpoint(previous)
        pwhere = "the previous checkpoint" if isinstance(previous, SignedNote) else str(previous)
        prev.verify(key, pwhere)
        m = prev.checkpoint
        if m.size > cp.size:
            raise JournalError(
                _(
                    "{pwhere}: it covers {size} records, more than this export's {size2}: the export is older than the previous checkpoint, or the journal was truncated"
                ).format(pwhere=pwhere, size=m.size, size2=cp.size)
            )
        if m.size == cp.size:
            ok = m.root == cp.root
        elif m.size in parsed.consistency:
            n, c = parsed.consistency[m.size]
            cproof = _hashes(c.get("proof"), f"{path}:{n}: consistency 'proof'")
            ok = merkle.verify_consistency(m.size, cp.size, m.root, cp.root, cproof)
        elif tree is not None:
            ok = tree.root(m.size) == m.root
        else:
            raise JournalError(
                _("{path}: no consistency proof from size {size} in the file").format(
                    path=path, size=m.size
                )
            )
        if not ok:
            raise JournalError(
                _(
                    "{pwhere}: this export's tree does not extend it (consistency fails): the first {size} records were rewritten since"
                ).format(pwhere=pwhere, size=m.size)
            )
        report.previous = f"{pwhere} ({m.size} records)"
    return report


def _check_items(
    path: Path,
    items: list[tuple[int, dict[str, Any]]],
    by_seq: dict[int, dict[str, Any]],
    size: int,
) -> None:
    last = by_seq.get(size)
    if last is None or last.get("type") != "export":
        raise JournalError(
            _("{path}: the checkpoint's last record is not the export record").format(path=path)
        )
    want = (last.get("payload") or {}).get("rows_sha256")
    rows = [row for _, row in items]
    got = hashlib.sha256(canonical_json(rows).encode()).hexdigest()
    if got != want:
        # name the first row that differs is impossible from a hash; name the count at least
        raise JournalError(
            _(
                "{path}: the {n_rows} item rows do not hash to the rows_sha256 of export record seq {size} (an item row was edited, added or removed)"
            ).format(path=path, n_rows=len(rows), size=size)
        )
    for n, row in items:
        code = row.get("mark_code")
        for tok in str(row.get("journal_seqs", "")).split():
            rec = by_seq.get(int(tok)) if tok.isdigit() else None
            if rec is None:
                raise JournalError(
                    _("{path}:{n}: item {code}: journal seq {tok} is not in the file").format(
                        path=path, n=n, code=code, tok=tok
                    )
                )
            payload = rec.get("payload") or {}
            if payload.get("code") != code and code not in (payload.get("codes") or []):
                raise JournalError(
                    _("{path}:{n}: item {code}: journal seq {tok} is not about it").format(
                        path=path, n=n, code=code, tok=tok
                    )
                )
