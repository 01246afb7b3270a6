"""The simulator ledger: what an independent observer would have seen burned.

JSON Lines, one record per line, each line flushed and fsynced when written, appended across
processes (an exclusive ``flock`` serialises writers and the job numbering):

    {"event": "start", "job": N, "time": "2026-11-28T17:00:00.123456+00:00"}
    {"event": "end", "job": N, "time": "...", "complete": true, "polylines": [[[x, y], ...], ...]}

``start`` is written before the simulated device can fire for job N; ``end`` when it stops, complete
or aborted, with every stroke it marked in millimetres of the field frame (+x right, +y up, origin at
the field centre) as decoded from the wire. A dot is a one-point polyline. ``job`` counts up across
runs that share the file. Readers tolerate a torn last line (a process killed mid-write).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

Stroke = Sequence[tuple[float, float]]
#: how much of the file a backward scan reads at a time
_CHUNK = 1 << 16
#: every start line begins so (``json.dumps`` keeps insertion order, compact separators)
_START_PREFIX = b'{"event":"start"'


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Ledger:
    """Append-only burn ledger shared by the simulated LMC board and the simulated GRBL."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def _append(self, record: dict[str, Any], *, number_job: bool, extra: str = "") -> int:
        """Append one record line (``extra``: pre-encoded ``,"key":value`` members to add)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if number_job:
                record["job"] = self._last_job(fd) + 1
            line = json.dumps(record, separators=(",", ":"))
            line = line[:-1] + extra + "}\n" if extra else line + "\n"
            # a torn line left by a killed writer must not swallow this record
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = "\n" + line
            os.write(fd, line.encode())
            os.fsync(fd)
            return int(record["job"])
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @staticmethod
    def _last_job(fd: int) -> int:
        """The number of the last start record, read backwards from the end of the file.

        Jobs are numbered under the exclusive lock, so the last whole start line carries the
        highest number; reading from the end keeps a start O(one job) however long the ledger is
        (parsing the whole file, polylines and all, made a long batch quadratic)."""
        end = os.fstat(fd).st_size
        tail = b""
        while end > 0:
            begin = max(0, end - _CHUNK)
            tail = os.pread(fd, end - begin, begin) + tail
            end = begin
            lines = tail.split(b"\n")
            # the first piece may be the end of a line that starts in the chunk before
            tail = lines.pop(0) if end > 0 else b""
            for raw in reversed(lines):
                if raw.startswith(_START_PREFIX):
                    for rec in _parse(raw):
                        if rec.get("event") == "start":
                            return int(rec.get("job", 0))
        return 0

    def start(self) -> int:
        """Record that a job may start firing; returns its number."""
        return self._append({"event": "start", "job": 0, "time": _now()}, number_job=True)

    def end(self, job: int, *, complete: bool, polylines: Sequence[Stroke]) -> None:
        # ".6f" is correctly rounded, so each number reads back as round(v, 6) would give it;
        # formatting the points directly is ~4x faster than rounding them into lists for json
        strokes = ",".join(
            "[" + ",".join([f"[{x:.6f},{y:.6f}]" for x, y in stroke]) + "]" for stroke in polylines
        )
        self._append(
            {"event": "end", "job": job, "time": _now(), "complete": complete},
            number_job=False,
            extra=f',"polylines":[{strokes}]',
        )

    def records(self) -> list[dict[str, Any]]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        return list(_parse(data))


def _parse(data: bytes) -> Iterator[dict[str, Any]]:
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except ValueError:
            continue  # torn line from a killed writer
        if isinstance(rec, dict):
            yield rec


@dataclass(frozen=True)
class LedgerJob:
    job: int
    started: str
    ended: str | None
    complete: bool | None
    polylines: list[list[tuple[float, float]]]


def read_jobs(path: str | os.PathLike[str]) -> list[LedgerJob]:
    """Pair start and end records: one entry per job, ``ended`` None when it never stopped cleanly."""
    starts: dict[int, str] = {}
    ends: dict[int, dict[str, Any]] = {}
    for rec in Ledger(path).records():
        if rec.get("event") == "start":
            starts[int(rec["job"])] = str(rec["time"])
        elif rec.get("event") == "end":
            ends[int(rec["job"])] = rec
    jobs = []
    for n in sorted(starts):
        end = ends.get(n)
        polys = [[(float(p[0]), float(p[1])) for p in s] for s in end["polylines"]] if end else []
        jobs.append(
            LedgerJob(
                job=n,
                started=starts[n],
                ended=str(end["time"]) if end else None,
                complete=bool(end["complete"]) if end else None,
                polylines=polys,
            )
        )
    return jobs
