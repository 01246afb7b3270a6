"""One store contract, two backends: what the ``store_factory`` fixture (tests/conftest.py) gives.

A test asks for ``store_factory`` and is run once on SQLite (a file in tmp_path) and once on
PostgreSQL (a fresh database on the session's server, see ``_pg.py``); :meth:`StoreFactory.open`
opens the one store of the test, as many times as it likes, from this or another process
(:attr:`location`). :meth:`raw` is someone editing the database outside markstation.
:meth:`exists` says whether there is a store at all; :meth:`settle` waits, after a process that
had the store open was killed, until the server has ended its session (and so dropped its locks).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markstation.queue.location import open_store
from markstation.queue.models import Actor
from markstation.queue.sqlite import OpenMode
from markstation.queue.store import Store

#: the tables every backend has, compared by :meth:`StoreFactory.dump`
TABLES = ("batches", "items", "journal", "journal_nodes", "checkpoints", "operators")


class RawRefused(Exception):
    """The database refused a raw statement (a trigger, a constraint)."""


@dataclass
class StoreFactory:
    backend: str  # "sqlite" | "postgres"
    location: str | Path

    def open(
        self, *, actor: Actor | None = None, mode: OpenMode = "create", recover: bool = True
    ) -> Store:
        return open_store(self.location, actor=actor, mode=mode, recover=recover)

    def raw(self, sql: str) -> None:
        """Run ``sql`` directly (autocommit); RawRefused when the database refuses it."""
        if self.backend == "sqlite":
            conn = sqlite3.connect(self.location)
            try:
                conn.execute(sql)
                conn.commit()
            except sqlite3.IntegrityError as exc:
                raise RawRefused(str(exc)) from exc
            finally:
                conn.close()
            return
        import psycopg

        with psycopg.connect(str(self.location), autocommit=True) as conn:
            try:
                conn.execute(sql)  # type: ignore[arg-type]
            except psycopg.errors.IntegrityError as exc:
                raise RawRefused(str(exc)) from exc

    def exists(self) -> bool:
        """Whether there is a store (a file; markstation's tables in the database)."""
        if self.backend == "sqlite":
            return Path(self.location).exists()
        import psycopg

        with psycopg.connect(str(self.location), autocommit=True) as conn:
            row = conn.execute("SELECT to_regclass('meta')").fetchone()
        return row is not None and row[0] is not None

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until no other client is connected to the store's database (SQLite: no wait).

        A killed process's session ends when the server sees its socket closed; until then the
        station's advisory lock still looks held, and recovery rightly leaves its item alone.
        """
        if self.backend == "sqlite":
            return
        import psycopg

        deadline = time.monotonic() + timeout
        with psycopg.connect(str(self.location), autocommit=True) as conn:
            while True:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
                ).fetchone()
                if row is None or row[0] == 0:
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(f"{row[0]} sessions still open after {timeout} s")
                time.sleep(0.05)

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of the shared tables, to compare before and after a refused change."""
        out: dict[str, list[tuple[Any, ...]]] = {}
        if self.backend == "sqlite":
            conn = sqlite3.connect(self.location)
            try:
                for t in TABLES:
                    out[t] = [tuple(r) for r in conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2")]
            finally:
                conn.close()
            return out
        import psycopg

        with psycopg.connect(str(self.location), autocommit=True) as conn:
            for t in TABLES:
                rows = conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()  # type: ignore[arg-type]
                out[t] = [tuple(r) for r in rows]
        return out
