"""Run the markstation CLI in-process and collect its exit status and output."""

from __future__ import annotations

import pytest

from markstation.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``markstation ARGS…`` in this process: (exit status, stdout, stderr)."""
    try:
        main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    else:  # pragma: no cover - main always exits
        code = 0
    out, err = capsys.readouterr()
    return code, out, err
