"""The one golden-file mechanism for the codec tests (the ``golden`` fixture in conftest.py).

A golden file under tests/golden/ holds the exact output a test expects. The test fails when the
file is missing or differs, with a diff and the way to regenerate: ``pytest --update-golden``, which
rewrites the files from the current output (then review ``git diff tests/golden`` and commit).
Nothing else ever writes a golden file.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

UPDATE_HINT = "if the change is intended, run `pytest --update-golden` and review the diff"


class Golden:
    """Compare generated text with a file under tests/golden/; write it only under --update-golden.

    A missing golden fails like a differing one: a test must never bless its own output.
    """

    def __init__(self, directory: Path, update: bool) -> None:
        self.directory = directory
        self.update = update

    def check(self, name: str, text: str, *, what: str = "the output", header: int = 0) -> None:
        """Fail unless ``text`` equals golden file ``name``.

        ``what`` names the output in the failure message; when the first ``header`` lines (a
        description of the input, such as the job's sha256) differ, the message says the input
        changed rather than the encoder.
        """
        path = self.directory / name
        if self.update:
            if not path.exists() or path.read_text() != text:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            return
        if not path.exists():
            pytest.fail(
                f"golden file tests/golden/{name} is missing; run `pytest --update-golden` to create it, "
                "then review and commit it",
                pytrace=False,
            )
        want = path.read_text()
        if text == want:
            return
        if header and want.splitlines()[:header] != text.splitlines()[:header]:
            what = "the input (its header lines)"
        diff = difflib.unified_diff(
            want.splitlines(), text.splitlines(), f"golden/{name}", "now", lineterm="", n=1
        )
        shown = "\n".join(list(diff)[:40])
        pytest.fail(f"{name}: {what} changed; {UPDATE_HINT}\n{shown}", pytrace=False)
