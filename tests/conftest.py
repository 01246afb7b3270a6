"""Shared test set-up: no hardware, no network, profiles from this checkout, a private data dir."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from _golden import Golden
from _paths import GOLDEN
from _pg import PgServer, find_bin_dir
from _stores import StoreFactory

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
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "postgres" in callspec.params.values():
            item.add_marker(pytest.mark.slow)  # starts (once) and talks to a real server


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


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests read English messages whatever the machine's locale; a test that sets a language
    (``markstation --lang es …`` in-process) does not leak it into the next test."""
    from markstation.i18n import set_language

    monkeypatch.setenv("MARKSTATION_LANG", "en")
    set_language("en")
    yield
    set_language("en")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite the golden files under tests/golden/ from the current output "
        "(review and commit the diff); without it a missing or different golden fails",
    )


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer | None]:
    """A PostgreSQL server for the whole session (the Debian binaries, initdb in a temporary
    directory, a unix socket); None where no server binary or no psycopg can be had."""
    bin_dir = find_bin_dir()
    try:
        import psycopg  # noqa: F401
    except ImportError:
        bin_dir = None
    if bin_dir is None:
        yield None
        return
    server = PgServer(bin_dir).start()
    try:
        yield server
    finally:
        server.stop()


#: why the PostgreSQL half of the store tests skips, when it does
PG_MISSING = (
    "no PostgreSQL server binary (apt-get install postgresql: /usr/lib/postgresql/*/bin) "
    "or psycopg missing (pip install -e '.[postgres]')"
)


@pytest.fixture(params=["sqlite", "postgres"])
def store_factory(
    request: pytest.FixtureRequest, tmp_path: Path, pg_server: PgServer | None
) -> StoreFactory:
    """The store of one test, on each backend in turn (see tests/_stores.py)."""
    if request.param == "sqlite":
        return StoreFactory("sqlite", tmp_path / "m.db")
    if pg_server is None:
        pytest.skip(PG_MISSING)
    return StoreFactory("postgres", pg_server.new_database())


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Golden:
    """The one golden-file mechanism (both codecs): ``golden.check("name.txt", text)``."""
    return Golden(GOLDEN, bool(request.config.getoption("--update-golden")))
