"""A throwaway PostgreSQL server for the tests and the benchmark: the Debian ``postgresql``
binaries, ``initdb`` into a temporary directory, ``pg_ctl start`` on a unix socket in it.

``initdb`` refuses to run as root: as root the server runs as the ``postgres`` (else ``nobody``)
user, through ``runuser``/``setpriv``. :func:`find_bin_dir` is None where no server binary exists
(the tests then skip, saying so).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path


def find_bin_dir() -> Path | None:
    env = os.environ.get("MARKSTATION_PG_BIN")
    candidates = [env] if env else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for c in candidates:
        if c and (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists():
            return Path(c)
    found = shutil.which("pg_ctl")
    return Path(found).parent if found and shutil.which("initdb") else None


def _as_user() -> tuple[list[str], str | None]:
    """The command prefix that runs a server binary as a non-root user, and that user."""
    if os.geteuid() != 0:
        return [], None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        if shutil.which("runuser"):
            return ["runuser", "-u", name, "--"], name
        if shutil.which("setpriv"):
            ent = pwd.getpwnam(name)
            return [
                "setpriv",
                f"--reuid={ent.pw_uid}",
                f"--regid={ent.pw_gid}",
                "--clear-groups",
            ], name
    raise RuntimeError("running as root and no user to run initdb as")


class PgServer:
    """One server on a unix socket; :meth:`new_database` gives each test its own database."""

    def __init__(self, bin_dir: Path, base: Path | None = None) -> None:
        self.bin = bin_dir
        self.base = Path(tempfile.mkdtemp(prefix="markstation-pg-", dir=base))
        self.data = self.base / "data"
        self.sock = self.base / "sock"
        self.user = "markstation"
        self.port = 5432
        self._prefix, owner = _as_user()
        self.sock.mkdir()
        if owner is not None:
            ent = pwd.getpwnam(owner)
            os.chmod(self.base, 0o755)
            for p in (self.base, self.sock):
                os.chown(p, ent.pw_uid, ent.pw_gid)

    def _run(self, *args: str, timeout: float = 120) -> None:
        subprocess.run(
            [*self._prefix, *args], check=True, capture_output=True, timeout=timeout, cwd=self.base
        )

    def start(self) -> PgServer:
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            self.user,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
        )
        opts = (
            f"-k {self.sock} -c listen_addresses='' -p {self.port} -c fsync=off "
            "-c full_page_writes=off -c max_connections=100 -c shared_buffers=32MB"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            opts,
            "-l",
            str(self.base / "log"),
            "-w",
            "start",
        )
        return self

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@/{database}?host={self.sock}&port={self.port}"

    def new_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url(name)

    def execute(self, url: str, sql: str) -> None:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql)
