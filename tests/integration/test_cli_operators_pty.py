"""``operators add`` on a real terminal: the PIN is asked twice, hidden, and two different PINs are
refused (a subprocess whose controlling terminal is a pty)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from markstation.queue.sqlite import SqliteStore

CLI = (sys.executable, "-c", "from markstation.cli import main; main()")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="pty is POSIX only")


def _make_controlling_tty() -> None:  # runs in the child, before exec
    import fcntl
    import termios

    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _add_on_pty(db: Path, answers: list[bytes]) -> tuple[int, bytes]:
    """Run ``operators add Ana --role supervisor`` on a pty, typing each answer after a prompt."""
    master, slave = os.openpty()
    env = {**os.environ, "MARKSTATION_DB": str(db), "MARKSTATION_OPERATOR": "setup"}
    proc = subprocess.Popen(
        [*CLI, "operators", "add", "Ana", "--role", "supervisor"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        preexec_fn=_make_controlling_tty,
    )
    os.close(slave)
    seen = b""
    try:
        pending = list(answers)
        answered_at = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
                # answer a prompt that appeared since the last answer (not its echoed newline)
                fresh = seen[answered_at:].rstrip()
                if pending and b"PIN" in fresh and fresh.endswith(b":"):
                    time.sleep(0.1)  # let getpass switch echo off before typing
                    os.write(master, pending.pop(0))
                    answered_at = len(seen)
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return code, seen


@pytest.mark.timeout(90)
def test_mismatched_second_pin_is_refused_on_a_terminal(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    code, seen = _add_on_pty(db, [b"246810\n", b"246811\n"])
    text = seen.decode(errors="replace")
    assert code == 1, text
    assert "New PIN for Ana" in text and "Repeat the PIN" in text
    assert "the two PINs differ: nothing stored" in text
    assert "24681" not in text  # hidden input: nothing typed is echoed
    with SqliteStore(db) as s:
        assert s.operator_rows() == []


@pytest.mark.timeout(90)
def test_matching_pins_on_a_terminal_add_the_operator(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    code, seen = _add_on_pty(db, [b"246810\n", b"246810\n"])
    text = seen.decode(errors="replace")
    assert code == 0, text
    assert "added supervisor 'Ana'" in text and "246810" not in text
    with SqliteStore(db) as s:
        assert [r.name for r in s.operator_rows()] == ["Ana"]
