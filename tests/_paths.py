"""Where the tests find the checkout, its golden files and the shared references."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
GOLDEN = TESTS / "golden"
SHARED = REPO.parent / "shared"
