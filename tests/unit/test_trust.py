"""Signed checkpoints, station keys, registry verification, and the attacks they must detect.

Each attack is run the way an attacker with the SQLite file (and the published formulas) would:
drop the append-only triggers, change rows, recompute every hash and the whole tree. Detection
must be exit 1 with a message naming what is wrong.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _cli import run
from markstation.audit import read_verifier as read_pub
from markstation.audit import verify_export
from markstation.cli import main
from markstation.errors import ConfigError, JournalError
from markstation.queue import merkle
from markstation.queue.checkpoint import Checkpoint, SignedNote, VerifierKey, key_hash
from markstation.queue.journal import leaf_bytes
from markstation.queue.keys import generate, load_key, read_verifier, write_key

CODE = "PE-SUCAMEC-2026-000001"


@pytest.fixture
def station(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store with a batch, a few journaled changes, and a station key (no passphrase)."""
    monkeypatch.setenv("MARKSTATION_DB", str(tmp_path / "m.db"))
    monkeypatch.setenv("MARKSTATION_OPERATOR", "J. Quispe")
    monkeypatch.setenv("MARKSTATION_STATION", "station-1")
    monkeypatch.setenv("MARKSTATION_KEY", str(tmp_path / "keys" / "station.key"))
    csv = tmp_path / "b.csv"
    rows = ["mark_code,serial,make,model"] + [
        f"PE-SUCAMEC-2026-{i:06d},SN{i:05d},Glock,17" for i in range(1, 6)
    ]
    csv.write_text("\n".join(rows) + "\n")
    main_ok(["station-key", "init", "--no-passphrase"])
    main_ok(["batch", "import", str(csv)])
    for i in (1, 2, 3):
        main_ok(["batch", "skip", f"PE-SUCAMEC-2026-{i:06d}", "--reason", f"reason {i}"])
    return tmp_path


def main_ok(args: list[str]) -> None:
    try:
        main(args)
    except SystemExit as exc:
        assert not exc.code, args


def _attack(
    db: Path, *statements: str, recompute: bool = True, drop_checkpoints: bool = False
) -> None:
    """Change rows behind the store's back; then recompute every hash and the tree."""
    conn = sqlite3.connect(db, isolation_level=None)
    for t in ("journal", "journal_nodes", "checkpoints"):
        conn.execute(f"DROP TRIGGER IF EXISTS {t}_no_update")
        conn.execute(f"DROP TRIGGER IF EXISTS {t}_no_delete")
    for sql in statements:
        conn.execute(sql)
    if recompute:
        rows = conn.execute(
            "SELECT seq, type, time, operator, station, payload FROM journal ORDER BY seq"
        ).fetchall()
        tree = merkle.MerkleTree()
        for seq, typ, time, op, st_, payload in rows:
            data = leaf_bytes(
                type=typ, time=time, operator=op, station=st_, payload=json.loads(payload)
            )
            leaf = merkle.leaf_hash(data)
            conn.execute("UPDATE journal SET hash = ? WHERE seq = ?", (leaf.hex(), seq))
            tree.append(leaf)
        conn.execute("DELETE FROM journal_nodes")
        conn.executemany("INSERT INTO journal_nodes VALUES (?, ?, ?)", list(tree.nodes()))
    if drop_checkpoints:
        conn.execute("DELETE FROM checkpoints")
    conn.close()


def _checkpoint(capsys: pytest.CaptureFixture[str], path: Path) -> Path:
    code, _, err = run(capsys, "log", "checkpoint", "-o", str(path))
    assert code == 0, err
    return path


# --- formats -----------------------------------------------------------------------------------


def test_checkpoint_and_verifier_key_formats(
    station: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cp = _checkpoint(capsys, station / "today.checkpoint").read_text()
    body, sig = cp.split("\n\n")
    origin, size, root = body.split("\n")
    assert origin == "markstation/station-1" and size == "4"
    assert len(merkle.EMPTY_ROOT) == len(__import__("base64").b64decode(root))
    assert sig.startswith("— markstation/station-1 ") and sig.endswith("\n")
    _code, out, _ = run(capsys, "station-key", "show")
    vk = VerifierKey.parse(out.strip())
    name, hexhash, _ = out.strip().split("+", 2)
    assert name == "markstation/station-1" and bytes.fromhex(hexhash) == key_hash(name, vk.public)
    assert __import__("hashlib").sha256(name.encode() + b"\n\x01" + vk.public).digest()[
        :4
    ] == bytes.fromhex(hexhash)
    note = SignedNote.parse(cp, "today")
    note.verify(vk, "today")
    assert note.text() == cp
    assert (station / "keys" / "station.pub").read_text().strip() == out.strip()


def test_log_verify_reports_checkpoints(station: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cp = _checkpoint(capsys, station / "a.checkpoint")
    main_ok(["batch", "skip", "PE-SUCAMEC-2026-000004", "--reason", "later"])
    code, out, err = run(capsys, "log", "verify", "--checkpoint", str(cp))
    assert code == 0, err
    assert "journal ok: 5 records" in out and "signatures verified" in out
    assert "a.checkpoint (signed by the station, 4 records) is contained" in out


def test_key_file_readable_by_others_is_refused(
    station: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = station / "keys" / "station.key"
    assert (key.stat().st_mode & 0o777) == 0o600
    key.chmod(0o644)
    code, _, err = run(capsys, "log", "checkpoint")
    assert code == 1 and "readable by others" in err and "Traceback" not in err


def test_passphrase_protected_key(tmp_path: Path) -> None:
    key = generate("markstation/x")
    path = tmp_path / "k.key"
    write_key(key, path, b"correct horse")
    assert "ENCRYPTED" in path.read_text()
    assert read_verifier(path) == key.verifier  # no passphrase needed for the public half
    assert load_key(path, lambda: b"correct horse").verifier == key.verifier
    with pytest.raises(ConfigError, match="wrong passphrase"):
        load_key(path, lambda: b"wrong")
    with pytest.raises(ConfigError, match="passphrase-protected"):
        load_key(path, lambda: None)
    with pytest.raises(ConfigError, match="already exists"):
        write_key(key, path, None)


def test_without_key_everything_works_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MARKSTATION_DB", str(tmp_path / "m.db"))
    csv = tmp_path / "b.csv"
    csv.write_text("mark_code,serial,make\nPE-SUCAMEC-2026-000001,SN1,Glock\n")
    main_ok(["batch", "import", str(csv)])
    code, out, err = run(
        capsys, "log", "export", "--format", "jsonl", "-o", str(tmp_path / "r.jsonl")
    )
    assert code == 0 and "tamper-evident against accidents" in err and "UNSIGNED" in out
    code, out, err = run(capsys, "log", "verify")
    assert code == 0 and "signatures NOT checked" in out


def test_csv_export_has_no_trailer_and_a_checkpoint_file(
    station: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "log", "export", "-o", str(station / "report.csv"))
    assert code == 0, err
    lines = (station / "report.csv").read_text().splitlines()
    assert len(lines) == 1 + 5 and not any(line.startswith("#") for line in lines)
    note = SignedNote.parse((station / "report.checkpoint").read_text(), "report.checkpoint")
    assert note.signed and note.checkpoint.size == 5  # 1 import + 3 skips + the export record


def test_export_leaf_is_exactly_the_hashed_bytes(
    station: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import base64

    report = station / "r.jsonl"
    main_ok(["log", "export", "--format", "jsonl", "-o", str(report)])
    lines = [json.loads(x) for x in report.read_text().splitlines()]
    records = [x["record"] for x in lines if "record" in x]
    leaves = [merkle.leaf_hash(base64.b64decode(r["leaf"])) for r in records]
    cp = lines[-1]["checkpoint"]
    assert merkle.MerkleTree(leaves).root() == base64.b64decode(cp["root"])
    conn = sqlite3.connect(station / "m.db")
    stored = [bytes.fromhex(h) for (h,) in conn.execute("SELECT hash FROM journal ORDER BY seq")]
    conn.close()
    assert stored == leaves
    report_ok = verify_export(report, read_pub(station / "keys" / "station.pub"))
    assert report_ok.complete and report_ok.items == 5


def test_log_prove_bundle_verifies(station: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = station / "proof.json"
    code, _msg, err = run(capsys, "log", "prove", CODE, "-o", str(out))
    assert code == 0, err
    bundle = json.loads(out.read_text())
    assert [r["type"] for r in bundle["records"]] == ["batch-imported", "skipped"]
    pub = str(station / "keys" / "station.pub")
    code, _msg, err = run(capsys, "registry", "verify", str(out), "--key", pub)
    assert code == 0, err
    bundle["records"][1]["payload"]["reason"] = "edited"
    out.write_text(json.dumps(bundle))
    code, _, err = run(capsys, "registry", "verify", str(out), "--key", pub)
    assert code == 1 and "record seq 2" in err and "'payload' does not match its leaf" in err


# --- attacks -----------------------------------------------------------------------------------


def test_attack_edit_payload_and_recompute_everything(
    station: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = _checkpoint(capsys, station / "kept.checkpoint")
    _attack(
        station / "m.db",
        "UPDATE journal SET payload = replace(payload, 'reason 2', 'other') WHERE seq = 3",
    )
    code, out, err = run(capsys, "log", "verify")
    assert code == 1 and out == ""
    assert "stored checkpoint 1" in err and "no longer extends this checkpoint" in err
    # even with every stored checkpoint gone, the one kept outside catches it
    _attack(station / "m.db", drop_checkpoints=True)
    code, _, err = run(capsys, "log", "verify", "--checkpoint", str(outside))
    assert code == 1 and "kept.checkpoint" in err and "no longer extends" in err


def test_attack_delete_last_records(station: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _checkpoint(capsys, station / "kept.checkpoint")
    _attack(station / "m.db", "DELETE FROM journal WHERE seq > 2", recompute=False)
    code, _, err = run(capsys, "log", "verify")
    assert code == 1 and "removed from the end" in err


def test_attack_delete_last_records_and_recompute(
    station: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = _checkpoint(capsys, station / "kept.checkpoint")
    _attack(station / "m.db", "DELETE FROM journal WHERE seq > 2", drop_checkpoints=True)
    # the journal and tree are self-consistent again: only an outside checkpoint shows the cut
    code, _, err = run(capsys, "log", "verify", "--checkpoint", str(outside))
    assert code == 1 and "covers 4 records but the journal holds only 2" in err
    assert "truncated" in err


def test_attack_swap_two_records(station: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _checkpoint(capsys, station / "kept.checkpoint")
    _attack(
        station / "m.db",
        "UPDATE journal SET seq = -1 WHERE seq = 2",
        "UPDATE journal SET seq = 2 WHERE seq = 3",
        "UPDATE journal SET seq = 3 WHERE seq = -1",
        recompute=False,
    )
    code, _, err = run(capsys, "log", "verify")
    assert code == 1 and "seq 2 (skipped)" in err and "reordered" in err
    _attack(station / "m.db")  # and with the tree recomputed: the signed checkpoint disagrees
    code, _, err = run(capsys, "log", "verify")
    assert code == 1 and "no longer extends" in err


def test_attack_replace_key_and_resign(station: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old_pub = station / "old.pub"
    old_pub.write_text((station / "keys" / "station.pub").read_text())
    report = station / "r.jsonl"
    main_ok(["log", "export", "--format", "jsonl", "-o", str(report)])
    _attack(
        station / "m.db",
        "UPDATE journal SET operator = 'somebody else' WHERE seq = 2",
        drop_checkpoints=True,
    )
    for f in ("station.key", "station.pub"):
        (station / "keys" / f).unlink()
    main_ok(["station-key", "init", "--no-passphrase"])  # same name, new key
    forged = station / "forged.jsonl"
    main_ok(["log", "export", "--format", "jsonl", "-o", str(forged)])
    code, _, err = run(capsys, "registry", "verify", str(forged), "--key", str(old_pub))
    assert code == 1 and "not by 'markstation/station-1' (key" in err
    # and the old checkpoint the registry holds is not extended by the station's store
    code, _, err = run(
        capsys,
        "log",
        "verify",
        "--key",
        str(old_pub),
        "--checkpoint",
        str(station / "r.checkpoint"),
    )
    # the re-signed stored checkpoints are by another key than the one the registry holds
    assert code == 1 and "not by 'markstation/station-1' (key" in err
    # and the old checkpoint is not extended by the rewritten journal
    code, _, err = run(capsys, "log", "verify", "--checkpoint", str(station / "r.checkpoint"))
    assert code == 1 and ("no longer extends" in err or "not by" in err)


def test_attack_edit_export_record(station: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = station / "r.jsonl"
    main_ok(["log", "export", "--format", "jsonl", "-o", str(report)])
    pub = str(station / "keys" / "station.pub")
    lines = report.read_text().splitlines()
    i = next(n for n, x in enumerate(lines) if '"skipped"' in x and '"record"' in x)
    obj = json.loads(lines[i])
    obj["record"]["operator"] = "somebody else"
    lines[i] = json.dumps(obj)
    report.write_text("\n".join(lines) + "\n")
    code, _, err = run(capsys, "registry", "verify", str(report), "--key", pub)
    assert code == 1 and f"r.jsonl:{i + 1}: record seq" in err and "'operator'" in err


def test_attack_checkpoint_of_another_station(
    station: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = generate("markstation/station-2")
    cp = SignedNote.parse((_checkpoint(capsys, station / "a.checkpoint")).read_text(), "a")
    theirs = other.sign(Checkpoint("markstation/station-2", cp.checkpoint.size, cp.checkpoint.root))
    (station / "other.checkpoint").write_text(theirs.text())
    code, _, err = run(capsys, "log", "verify", "--checkpoint", str(station / "other.checkpoint"))
    assert code == 1 and "signed by 'markstation/station-2'" in err
    report = station / "r.jsonl"
    main_ok(["log", "export", "--format", "jsonl", "-o", str(report)])
    other_pub = station / "other.pub"
    other_pub.write_text(f"{other.verifier}\n")
    code, _, err = run(capsys, "registry", "verify", str(report), "--key", str(other_pub))
    assert code == 1 and "not by 'markstation/station-2'" in err


def test_attack_older_export_presented_as_newer(
    station: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pub = str(station / "keys" / "station.pub")
    main_ok(["log", "export", "--format", "jsonl", "-o", str(station / "old.jsonl")])
    main_ok(["batch", "skip", "PE-SUCAMEC-2026-000004", "--reason", "later"])
    main_ok(["log", "export", "--format", "jsonl", "-o", str(station / "new.jsonl")])
    old_cp, new_cp = station / "old.checkpoint", station / "new.checkpoint"
    code, out, err = run(
        capsys,
        "registry",
        "verify",
        str(station / "new.jsonl"),
        "--key",
        pub,
        "--previous",
        str(old_cp),
    )
    assert code == 0 and "extends" in out, err
    code, _, err = run(
        capsys,
        "registry",
        "verify",
        str(station / "old.jsonl"),
        "--key",
        pub,
        "--previous",
        str(new_cp),
    )
    assert code == 1 and "older than the previous checkpoint" in err


def test_bad_files_are_one_line(station: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = station / "bad.checkpoint"
    bad.write_text("markstation/station-1\nfour\nAAAA\n")
    code, _, err = run(capsys, "log", "verify", "--checkpoint", str(bad))
    assert code == 1 and err.count("\n") == 1 and "bad.checkpoint:2: tree size 'four'" in err
    code, _, err = run(capsys, "registry", "verify", str(bad), "--key", "nonsense")
    assert code == 1 and err.count("\n") == 1


# --- hypothesis: any single-byte change is detected --------------------------------------------


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(pick=st.integers(min_value=0, max_value=2**32), bit=st.integers(min_value=0, max_value=7))
def test_any_byte_flip_in_an_export_fails(station: Path, pick: int, bit: int) -> None:
    report = station / "r.jsonl"
    if not report.exists():
        main_ok(["log", "export", "--format", "jsonl", "-o", str(report)])
    key = read_pub(station / "keys" / "station.pub")
    data = report.read_bytes()
    # consistency lines are hints for --previous, not evidence: leave them out of the flips
    spans = [
        (start, start + len(line))
        for start, line in _line_spans(data)
        if not line.startswith(b'{"consistency"')
    ]
    total = sum(b - a for a, b in spans)
    pos = pick % total
    for a, b in spans:
        if pos < b - a:
            pos += a
            break
        pos -= b - a
    flipped = bytearray(data)
    flipped[pos] ^= 1 << bit
    bad = station / "flipped.jsonl"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(JournalError):
        verify_export(bad, key)


def _line_spans(data: bytes) -> list[tuple[int, bytes]]:
    out, start = [], 0
    for line in data.split(b"\n"):
        if line:
            out.append((start, line))
        start += len(line) + 1
    return out


def test_key_file_mode_on_creation(tmp_path: Path) -> None:
    path = tmp_path / "d" / "s.key"
    write_key(generate("markstation/y"), path, None)
    assert os.stat(path).st_mode & 0o777 == 0o600
