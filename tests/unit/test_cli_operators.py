"""``markstation operators …`` and the supervisor check of ``batch resolve|void|requeue`` (in-process).

PINs come from standard input here (not a terminal: one line each); the hidden, asked-twice
prompt on a real terminal is tested on a pty in tests/integration/test_cli_operators_pty.py.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from _queue_fakes import sample_rows, write_csv
from markstation.cli import main
from markstation.queue.models import Actor
from markstation.queue.sqlite import SqliteStore
from markstation.queue.states import State

SUP_PIN = "738291"
TECH_PIN = "40551234"


def run(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *args: str,
    stdin: str = "",
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    try:
        main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    else:  # pragma: no cover - main always exits
        code = 0
    out, err = capsys.readouterr()
    return code, out, err


def last(err: str) -> str:
    """The last line on stderr: the error (opening the store may print notes before it)."""
    lines = err.strip().splitlines()
    return lines[-1] if lines else ""


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "m.db"
    monkeypatch.setenv("MARKSTATION_DB", str(path))
    monkeypatch.setenv("MARKSTATION_OPERATOR", "login-name")
    monkeypatch.setenv("MARKSTATION_STATION", "bench-1")
    return path


@pytest.fixture
def staffed(db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store with supervisor 'Ana' and technician 'Luis'."""
    code, _, err = run(
        capsys, monkeypatch, "operators", "add", "Ana", "--role", "supervisor", stdin=SUP_PIN + "\n"
    )
    assert code == 0, err
    code, _, err = run(
        capsys,
        monkeypatch,
        "operators",
        "add",
        "Luis",
        "--role",
        "technician",
        "--supervisor",
        "Ana",
        stdin=f"{SUP_PIN}\n{TECH_PIN}\n",
    )
    assert code == 0, err
    return db


def _journal(db: Path) -> list[tuple[str, str, dict[str, object]]]:
    with SqliteStore(db) as s:
        return [(r.type, r.operator, r.payload) for r in s.records()]


def test_add_via_stdin_and_list(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, db: Path
) -> None:
    code, out, _ = run(capsys, monkeypatch, "operators", "list")
    assert code == 0 and "no operators" in out
    code, out, err = run(
        capsys, monkeypatch, "operators", "add", "Ana", "--role", "supervisor", stdin="246810\n"
    )
    assert code == 0, err
    assert out.strip() == f"added supervisor 'Ana' to {db}"
    assert "246810" not in out + err
    code, out, _ = run(capsys, monkeypatch, "operators", "list")
    assert code == 0 and out.split() == ["Ana", "supervisor", "active"]
    code, out, _ = run(capsys, monkeypatch, "operators", "list", "--json")
    assert json.loads(out) == [
        {"name": "Ana", "role": "supervisor", "disabled": False, "locked_until": None}
    ]
    assert _journal(db)[-1] == (
        "operator-added",
        "login-name",
        {"operator": "Ana", "role": "supervisor"},
    )


def test_first_operator_must_be_a_supervisor(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, db: Path
) -> None:
    code, out, err = run(
        capsys, monkeypatch, "operators", "add", "Luis", "--role", "technician", stdin="1234\n"
    )
    assert code == 1 and out == ""
    assert last(err) == (
        "error: the first operator must be a supervisor: add 'Luis' with --role supervisor"
    )
    assert err.count("error:") == 1


@pytest.mark.parametrize("stdin", ["", "\n", "987\n", "98ab\n"])
def test_missing_or_malformed_pin_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, db: Path, stdin: str
) -> None:
    code, _, err = run(
        capsys, monkeypatch, "operators", "add", "Ana", "--role", "supervisor", stdin=stdin
    )
    assert code == 1 and err.count("error:") == 1
    assert "PIN" in last(err) and (not stdin.strip() or stdin.strip() not in err)
    code, out, _ = run(capsys, monkeypatch, "operators", "list")
    assert "no operators" in out


def test_adding_and_disabling_need_a_supervisor(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, staffed: Path
) -> None:
    code, _, err = run(
        capsys, monkeypatch, "operators", "add", "Rosa", "--role", "technician", stdin="1111\n"
    )
    assert code == 1 and "operators add needs a supervisor" in err and "--supervisor" in err
    # a technician cannot add operators
    code, _, err = run(
        capsys,
        monkeypatch,
        "operators",
        "add",
        "Rosa",
        "--role",
        "supervisor",
        "--supervisor",
        "Luis",
        stdin=f"{TECH_PIN}\n1111\n",
    )
    assert code == 1 and "needs the supervisor role" in err
    code, _, err = run(
        capsys,
        monkeypatch,
        "operators",
        "disable",
        "Luis",
        "--supervisor",
        "Ana",
        stdin=SUP_PIN + "\n",
    )
    assert code == 0, err
    code, out, _ = run(capsys, monkeypatch, "operators", "list")
    assert "Luis  technician  disabled" in out
    assert _journal(staffed)[-1] == (
        "operator-disabled",
        "Ana",
        {"operator": "Luis", "role": "technician"},
    )


def _interrupted_item(db: Path, tmp_path: Path) -> str:
    with SqliteStore(db, actor=Actor("x", "y")) as s:
        from markstation.queue.batch import import_batch

        import_batch(write_csv(tmp_path / "b.csv", sample_rows(2)), s, actor=Actor("x", "y"))
        code = s.items()[0].code
        s.transition(
            code,
            [State.PENDING],
            State.MARKING,
            record_type="item-started",
            actor=Actor("x", "y"),
            payload={},
            count_attempt=True,
        )
    return code


def test_resolve_works_as_before_without_operators(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, db: Path, tmp_path: Path
) -> None:
    item = _interrupted_item(db, tmp_path)
    code, _, err = run(
        capsys, monkeypatch, "batch", "resolve", item, "--not-marked", "--reason", "no trace"
    )
    assert code == 0, err
    assert _journal(db)[-1][:2] == ("resolution", "login-name")


def test_resolve_needs_a_supervisor_once_operators_exist(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    staffed: Path,
    tmp_path: Path,
) -> None:
    item = _interrupted_item(staffed, tmp_path)
    args = ("batch", "resolve", item, "--marked", "--reason", "code on the slide")

    code, _, err = run(capsys, monkeypatch, *args)
    assert code == 1
    assert last(err) == (
        "error: batch resolve needs a supervisor: this store has operators, give "
        "--supervisor NAME (the PIN is asked)"
    )
    # a technician's PIN is refused for resolve
    code, _, err = run(capsys, monkeypatch, *args, "--supervisor", "Luis", stdin=TECH_PIN + "\n")
    assert code == 1
    assert last(err) == (
        "error: batch resolve needs the supervisor role; operator 'Luis' is a technician"
    )
    # a wrong PIN: the one sign-in message, no PIN in it
    code, _, err = run(capsys, monkeypatch, *args, "--supervisor", "Ana", stdin="9999\n")
    assert code == 1 and last(err) == "error: sign-in refused: unknown operator or wrong PIN"
    with SqliteStore(staffed) as s:
        assert s.item(item).state is State.INTERRUPTED  # type: ignore[union-attr]

    code, out, err = run(capsys, monkeypatch, *args, "--supervisor", "ana", stdin=SUP_PIN + "\n")
    assert code == 0, err
    assert "resolved" in out
    journal = _journal(staffed)
    assert [j[:2] for j in journal[-2:]] == [("signed-in", "Ana"), ("resolution", "Ana")]
    dump = json.dumps(journal)
    assert SUP_PIN not in dump and TECH_PIN not in dump and "9999" not in dump


def test_void_and_requeue_need_a_supervisor_skip_does_not(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    staffed: Path,
    tmp_path: Path,
) -> None:
    _interrupted_item(staffed, tmp_path)
    other = "PE-SUCAMEC-2026-000002"
    code, _, err = run(capsys, monkeypatch, "batch", "skip", other, "--reason", "not here")
    assert code == 0, err
    code, _, err = run(capsys, monkeypatch, "batch", "requeue", other, "--reason", "found")
    assert code == 1 and "batch requeue needs a supervisor" in err
    code, _, err = run(
        capsys,
        monkeypatch,
        "batch",
        "void",
        other,
        "--reason",
        "withdrawn",
        "--supervisor",
        "Luis",
        stdin=TECH_PIN + "\n",
    )
    assert code == 1 and "batch void needs the supervisor role" in err
    code, _, err = run(
        capsys,
        monkeypatch,
        "batch",
        "void",
        other,
        "--reason",
        "withdrawn",
        "--supervisor",
        "Ana",
        stdin=SUP_PIN + "\n",
    )
    assert code == 0, err
    assert _journal(staffed)[-1][:2] == ("voided", "Ana")


def test_supervisor_without_operators_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, db: Path, tmp_path: Path
) -> None:
    item = _interrupted_item(db, tmp_path)
    code, _, err = run(
        capsys,
        monkeypatch,
        "batch",
        "resolve",
        item,
        "--marked",
        "--reason",
        "x",
        "--supervisor",
        "Ana",
        stdin="1234\n",
    )
    assert code == 1 and "has no operators" in err


def test_help_texts(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run(capsys, monkeypatch, "--help")
    assert code == 0 and "operators" in out
    code, out, _ = run(capsys, monkeypatch, "operators", "add", "--help")
    assert code == 0 and "--role [technician|supervisor]" in out and "--supervisor NAME" in out
    code, out, _ = run(capsys, monkeypatch, "batch", "resolve", "--help")
    assert code == 0 and "--supervisor NAME" in out
    code, out, _ = run(capsys, monkeypatch, "batch", "skip", "--help")
    assert code == 0 and "--supervisor" not in out
