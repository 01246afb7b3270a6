"""The batch, log and demo commands end to end (sim://lmc where a device is needed)."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest

from _cli import run
from _paths import REPO
from _queue_fakes import dump_db, sample_rows, write_csv
from markstation.queue.models import Actor
from markstation.queue.sqlite import SqliteStore
from markstation.queue.states import State

EXAMPLES = REPO / "examples"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "m.db"
    monkeypatch.setenv("MARKSTATION_DB", str(path))
    monkeypatch.setenv("MARKSTATION_OPERATOR", "J. Quispe")
    return path


def _states(db: Path) -> dict[str, str]:
    with SqliteStore(db) as s:
        return {it.code: it.state.value for it in s.items()}


def test_import_and_status_json(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    code, out, _ = run(capsys, "batch", "import", str(EXAMPLES / "registry-sample.csv"))
    assert code == 0 and "imported 12 items" in out
    code, out, _ = run(capsys, "batch", "status", "--json")
    doc = json.loads(out)
    assert doc["counts"]["pending"] == 12 and len(doc["items"]) == 12
    assert doc["items"][0]["code"] == "PE-SUCAMEC-2026-000201"
    assert doc["journal"]["records"] == 1 and doc["runner"] is None


def test_invalid_import_exit_1_with_report(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    run(capsys, "batch", "import", str(EXAMPLES / "registry-sample.json"))
    before = dump_db(db)
    code, out, err = run(capsys, "batch", "import", str(EXAMPLES / "invalid-duplicate-code.csv"))
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert lines[0].startswith("error: ") and "nothing imported" in lines[0]
    assert lines[1].endswith(
        "invalid-duplicate-code.csv:4:1: mark_code 'PE-SUCAMEC-2026-000411' already on line 2"
    )
    assert "Traceback" not in err
    assert dump_db(db) == before


def test_run_auto_on_sim_then_export_and_verify(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path
) -> None:
    write_csv(tmp_path / "b.csv", sample_rows(3))
    run(capsys, "batch", "import", str(tmp_path / "b.csv"))
    code, out, err = run(capsys, "batch", "run", "--device", "sim://lmc?timing=instant", "--auto")
    assert code == 0, err
    assert "marked 3, failed 0, interrupted 0" in out
    assert set(_states(db).values()) == {"marked"}

    code, out, _ = run(capsys, "log", "verify")
    assert code == 0 and out.startswith("journal ok: ")

    report = tmp_path / "report.csv"
    code, out, _ = run(capsys, "log", "export", "--format", "csv", "-o", str(report))
    assert code == 0
    text = report.read_text().splitlines()
    assert text[0].startswith("mark_code,serial,make")
    assert len(text) == 1 + 3  # no trailer: the checkpoint is its own file
    assert ",marked," in text[1] and "LMC" in text[1]
    # the export is journaled and the checkpoint next to it covers the export record
    checkpoint = (tmp_path / "report.checkpoint").read_text().split("\n")
    code, out, _ = run(capsys, "log", "verify", "--checkpoint", str(tmp_path / "report.checkpoint"))
    assert code == 0 and f"journal ok: {checkpoint[1]} records" in out

    jl = tmp_path / "report.jsonl"
    code, _, _ = run(capsys, "log", "export", "--format", "jsonl", "-o", str(jl))
    lines = [json.loads(line) for line in jl.read_text().splitlines()]
    assert lines[-1]["checkpoint"]["size"] > 0
    items = [x["item"] for x in lines if "item" in x]
    assert {row["state"] for row in items} == {"marked"}
    assert all(len(row["job_sha256"]) == 64 for row in items)
    assert all("leaf" in x["record"] for x in lines if "record" in x)


def test_run_needs_exactly_one_target(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path
) -> None:
    code, _, err = run(capsys, "batch", "run")
    assert code == 1 and "exactly one of --device URL or --dry-run DIR" in err
    code, _, err = run(capsys, "batch", "run", "--device", "sim://lmc", "--dry-run", str(tmp_path))
    assert code == 1


def test_dry_run_writes_previews_without_state_change(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path
) -> None:
    write_csv(tmp_path / "b.csv", sample_rows(2))
    run(capsys, "batch", "import", str(tmp_path / "b.csv"))
    before = dump_db(db)
    out_dir = tmp_path / "preview"
    code, out, err = run(capsys, "batch", "run", "--dry-run", str(out_dir))
    assert code == 0, err
    assert sorted(p.name for p in out_dir.glob("*.png")) == [
        "PE-SUCAMEC-2026-000001.png",
        "PE-SUCAMEC-2026-000002.png",
    ]
    with (out_dir / "dry-run.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 and all(r["decode"] == "ok" for r in rows)
    # the grade the gate computed is kept, not recomputed: the secondary mark grades A
    assert all(r["grade"].startswith("A (") for r in rows), rows
    assert "2D code ok" in out
    assert dump_db(db) == before


def test_dry_run_csv_has_no_live_formula(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path
) -> None:
    rows = sample_rows(1)
    rows[0]["serial"] = "=HYPERLINK(1)"  # a registry serial a spreadsheet would evaluate
    write_csv(tmp_path / "b.csv", rows)
    code, _, err = run(capsys, "batch", "import", str(tmp_path / "b.csv"))
    assert code == 0, err
    out_dir = tmp_path / "preview"
    code, _, err = run(capsys, "batch", "run", "--dry-run", str(out_dir))
    assert code == 0, err
    with (out_dir / "dry-run.csv").open(newline="", encoding="utf-8") as fh:
        cells = [cell for row in csv.reader(fh) for cell in row]
    assert "'=HYPERLINK(1)" in cells
    assert not any(cell[:1] in ("=", "+", "-", "@") for cell in cells)


def test_interactive_run_with_typed_answers(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_csv(tmp_path / "b.csv", sample_rows(1))
    run(capsys, "batch", "import", str(tmp_path / "b.csv"))
    # wrong serial, right serial, Enter to mark, inspection fail with a note
    monkeypatch.setattr("sys.stdin", io.StringIO("XX\nSN00001\n\nf\nshallow\n"))
    code, out, err = run(capsys, "batch", "run", "--device", "sim://lmc?timing=instant")
    assert code == 0, err
    assert "does not match SN00001" in out
    with SqliteStore(db) as s:
        item = s.items()[0]
    assert item.state is State.MARKED and item.inspection == "fail"
    assert item.inspection_note == "shallow"


def _interrupt_one(db: Path) -> str:
    """Leave the first item as a crashed runner would: marking, then recovered on open."""
    actor = Actor("x", "y")
    with SqliteStore(db, actor=actor) as s:
        code = s.items()[0].code
        s.transition(
            code,
            [State.PENDING],
            State.MARKING,
            record_type="item-started",
            actor=actor,
            payload={},
        )
    return code


def test_resolve_and_its_refusals(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path
) -> None:
    write_csv(tmp_path / "b.csv", sample_rows(2))
    run(capsys, "batch", "import", str(tmp_path / "b.csv"))
    code_a = _interrupt_one(db)
    code, out, err = run(capsys, "batch", "status")
    assert "now interrupted" in err and f"{code_a}" in out and "interrupted" in out

    code, _, err = run(capsys, "batch", "resolve", code_a, "--reason", "x")
    assert code == 1 and "--marked or --not-marked" in err
    code, _, err = run(capsys, "batch", "resolve", code_a, "--not-marked", "--reason", "  ")
    assert code == 1 and err.startswith("error: a reason is required")
    code, _, err = run(
        capsys, "batch", "resolve", "PE-SUCAMEC-2026-000002", "--marked", "--reason", "x"
    )
    assert code == 1 and "is pending, not interrupted" in err
    code, _, err = run(capsys, "batch", "resolve", "NOPE", "--marked", "--reason", "x")
    assert code == 1 and "no item with code 'NOPE'" in err

    code, out, _ = run(
        capsys,
        "batch",
        "resolve",
        code_a,
        "--not-marked",
        "--reason",
        "cable pulled before emission",
    )
    assert code == 0 and "now pending" in out
    code, out, _ = run(capsys, "log", "show", "--code", code_a)
    assert "resolution" in out and "cable pulled before emission" in out


def test_skip_requeue_void(capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path) -> None:
    write_csv(tmp_path / "b.csv", sample_rows(2))
    run(capsys, "batch", "import", str(tmp_path / "b.csv"))
    a, b = "PE-SUCAMEC-2026-000001", "PE-SUCAMEC-2026-000002"
    assert run(capsys, "batch", "skip", a, "--reason", "not in the armoury")[0] == 0
    assert run(capsys, "batch", "requeue", a, "--reason", "found it")[0] == 0
    assert run(capsys, "batch", "void", b, "--reason", "registry withdrew it")[0] == 0
    code, _, err = run(capsys, "batch", "requeue", b, "--reason", "oops")
    assert code == 1 and "is voided, not skipped" in err
    assert _states(db) == {a: "pending", b: "voided"}


def test_log_verify_names_tampered_record(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path
) -> None:
    write_csv(tmp_path / "b.csv", sample_rows(2))
    run(capsys, "batch", "import", str(tmp_path / "b.csv"))
    run(capsys, "batch", "skip", "PE-SUCAMEC-2026-000001", "--reason", "x")
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER journal_no_update")
    conn.execute("UPDATE journal SET payload = replace(payload, '\"x\"', '\"y\"') WHERE seq = 2")
    conn.commit()
    conn.close()
    code, out, err = run(capsys, "log", "verify")
    assert code == 1 and out == ""
    assert (
        err.strip()
        == "error: journal record seq 2 (skipped): its content does not match its hash (edited)"
    )
    code, _, err = run(capsys, "log", "export", "-o", str(tmp_path / "r.csv"))
    assert code == 1 and not (tmp_path / "r.csv").exists()


def test_store_that_is_not_a_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "x.db"
    bad.write_text("hello" * 1000)
    code, _, err = run(capsys, "batch", "status", "--db", str(bad))
    assert code == 2 and err.startswith("error: ") and "not a markstation store" in err


@pytest.mark.timeout(120)
def test_demo_runs_and_refuses_an_used_dir(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out_dir = tmp_path / "demo"
    code, out, err = run(capsys, "demo", "--dir", str(out_dir), "--items", "3")
    assert code == 0, err
    assert "journal ok: " in out and "signatures verified" in out and "3 item rows match" in out
    assert "3 jobs burned, 3 complete" in out
    assert (out_dir / "report.checkpoint").read_text().startswith("markstation/")
    assert len(list((out_dir / "previews").glob("*.png"))) == 3
    code, _, err = run(capsys, "demo", "--dir", str(out_dir))
    assert code == 1 and "already holds a demo store" in err
