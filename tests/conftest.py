"""Shared test set-up: no hardware, no network, profiles from this checkout, a private data dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from _golden import Golden
from _paths import GOLDEN

REPO = Path(__file__).resolve().parents[1]

# CI (CI=true) gets the "ci" profile: more examples and no example database, so a run never
# depends on, or leaves behind, a .hypothesis/ directory. Locally "dev" keeps the database, so a
# failing example found once is tried first next time. HYPOTHESIS_PROFILE overrides either.
settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=20, deadline=None)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)


#: Everything under these is ``slow``: simulators end to end, subprocesses, pseudo-terminals, the
#: crash test and the HIL suite on the simulators. The quick loop, ``pytest -m "not slow"``, is
#: therefore tests/unit (pure code, in-process, well under 30 s); ``pytest -q`` runs everything.
SLOW_DIRS = (REPO / "tests" / "integration", REPO / "hil_tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = item.path.resolve()
        if any(path.is_relative_to(d) for d in SLOW_DIRS):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _private_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep every test away from the user's real data, config and profile directories."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.delenv("MARKSTATION_PROFILES", raising=False)
    monkeypatch.delenv("MARKSTATION_DEVICE", raising=False)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite the golden files under tests/golden/ from the current output "
        "(review and commit the diff); without it a missing or different golden fails",
    )


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Golden:
    """The one golden-file mechanism (both codecs): ``golden.check("name.txt", text)``."""
    return Golden(GOLDEN, bool(request.config.getoption("--update-golden")))
