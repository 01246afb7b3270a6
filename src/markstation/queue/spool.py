"""The station's spool: device outcomes that could not reach a server store yet.

A station marking from a server store (PostgreSQL) that loses the server between the ``marking``
intent and the outcome writes the outcome here first — one JSON line, fsynced — and refuses to
start another item until every line has been written to the server (by the next claim, or the
next ``acquire_runner`` after a restart). Nothing is lost and nothing is marked twice: the item
stays ``marking`` on the server (other stations turn it ``interrupted`` once this station's lock
is gone) and the spooled outcome becomes its journal record when the station is back.

One small file per (store, station), under ``<user data dir>/markstation/spool/``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any


def spool_dir() -> Path:
    from platformdirs import user_data_path

    return user_data_path("markstation", appauthor=False) / "spool"


class Spool:
    """Append-only JSON lines with an atomic rewrite to drop the lines already delivered."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def for_station(cls, location: str, station: str, directory: Path | None = None) -> Spool:
        digest = hashlib.sha256(f"{location}\0{station}".encode()).hexdigest()[:16]
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in station)[:40]
        return cls((directory or spool_dir()) / f"{safe}-{digest}.jsonl")

    def entries(self) -> list[dict[str, Any]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        out: list[dict[str, Any]] = []
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError:
                continue  # a line torn by a crash while appending: nothing was promised for it
            if isinstance(value, dict):
                out.append(value)
        return out

    def add(self, entry: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def keep_only(self, entries: list[dict[str, Any]]) -> None:
        """Rewrite the spool with ``entries`` (the ones still undelivered), atomically."""
        if not entries:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for e in entries:
                fh.write(json.dumps(e, sort_keys=True, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
