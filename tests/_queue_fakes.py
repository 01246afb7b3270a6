"""Test doubles for the queue tests: a scripted Driver, a fast job builder, batch-file writers."""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from markstation.devices.base import DeviceInfo, Driver, Inputs, RunListener, RunResult
from markstation.errors import (
    Aborted,
    DeviceDisconnected,
    DeviceTimeout,
    InterlockOpen,
)
from markstation.job.ir import Job, Layer, MarkParams, Polyline
from markstation.profiles import (
    LayoutProfile,
    MachineProfile,
    MaterialProfile,
    load_machine,
)

#: what the fake device does for one run
OUTCOMES = ("ok", "refuse", "abort", "timeout", "disconnect", "incomplete")


class FakeDriver(Driver):
    """A Driver with scripted outcomes that records what it 'burned' like an independent observer.

    ``script`` is consumed one entry per run (default "ok"). ``before_run(job)`` is called when
    the run starts, before anything could fire: tests use it to check the intent is on disk.
    """

    protocol = "lmc"

    def __init__(
        self,
        script: Sequence[str] = (),
        *,
        machine: MachineProfile | None = None,
        before_run: Callable[[Job], None] | None = None,
        estop_after_progress: bool = False,
    ) -> None:
        super().__init__("fake://lmc", machine or load_machine("lmc-fiber-110"))
        self.script = list(script)
        self.before_run = before_run
        self.burned: list[tuple[str, bool]] = []  # (job meta mark_code or sha, complete)
        self.runs = 0
        self.aborts = 0
        self.frames = 0
        self.pedal = False
        self.estop = False
        self.estop_after_progress = estop_after_progress
        self.emission_on = False

    def _open(self) -> None:
        pass

    def _close(self) -> None:
        pass

    def _info(self) -> DeviceInfo:
        return DeviceInfo(self.url, "lmc", "Fake LMC", "fw-1.0", "FAKE-0001", simulated=True)

    def _read_inputs(self) -> Inputs:
        return Inputs(raw=0, pedal_pressed=self.pedal, interlock_closed=True, estop=self.estop)

    def _run(self, job: Job, listener: RunListener) -> RunResult:
        self.runs += 1
        outcome = self.script.pop(0) if self.script else "ok"
        if self.before_run is not None:
            self.before_run(job)
        code = job.meta_dict().get("mark_code", job.sha256())
        if outcome == "refuse":
            raise InterlockOpen("interlock open before start", may_have_emitted=False)
        listener.on_emission_possible()
        self.emission_on = True
        listener.on_progress(0.5, 0.01)
        if self.estop_after_progress:
            self.estop = True
            # wait for the e-stop watcher to call abort(), as a real board would keep marking
            for _ in range(400):
                if self.abort_requested:
                    break
                import time

                time.sleep(0.005)
        if self.abort_requested:
            self.burned.append((code, False))
            raise Aborted("aborted")
        if outcome == "abort":
            self.burned.append((code, False))
            raise Aborted("aborted by the operator")
        if outcome == "timeout":
            self.burned.append((code, False))
            raise DeviceTimeout("no reply mid-run")
        if outcome == "disconnect":
            self.burned.append((code, False))
            raise DeviceDisconnected("cable pulled")
        listener.on_progress(1.0, 0.02)
        complete = outcome != "incomplete"
        self.burned.append((code, complete))
        return RunResult(complete=complete, elapsed_s=0.02, device_mark_time_s=0.018)

    def _frame(self, job: Job, stop: Callable[[], bool]) -> int:
        count = 0
        while True:
            count += 1
            self.frames += 1
            if stop() or count > 100:
                return count

    def _abort(self) -> None:
        self.aborts += 1
        self.emission_on = False

    def _emission_off(self) -> None:
        self.emission_on = False


def fast_builder(
    code: str, layout: LayoutProfile, material: MaterialProfile, machine: MachineProfile
) -> Job:
    """A tiny but honest job (one stroke) carrying the code, for tests not about geometry."""
    from markstation.job.codes import parse_code

    parse_code(code, layout)  # still refuse codes outside the scheme
    params = MarkParams(speed_mm_s=500, power_pct=50, frequency_khz=30)
    layer = Layer(
        "text",
        params,
        (
            Polyline(
                ((0.0, 0.0), (1.0, float(len(code)) / 10)),
            ),
        ),
    )
    return Job((layer,), meta=Job.make_meta({"mark_code": code, "layout": layout.name}))


def fast_estimator(job: Job) -> float:
    return 0.5


def write_csv(path: Path, rows: list[dict[str, Any]], header: Sequence[str] | None = None) -> Path:
    cols = list(header or (rows[0].keys() if rows else ["mark_code", "serial"]))
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def write_json(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return path


def sample_rows(n: int, start: int = 1) -> list[dict[str, Any]]:
    return [
        {
            "mark_code": f"PE-SUCAMEC-2026-{i:06d}",
            "serial": f"SN{i:05d}",
            "make": "Glock" if i % 2 else "CZ",
            "model": "17" if i % 2 else "75",
            "caliber": "9x19mm",
            "owner": "ACME Security",
        }
        for i in range(start, start + n)
    ]


def dump_db(path: Path) -> list[str]:
    """Every row of every table, for 'the store is unchanged' comparisons."""
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def state_of(path: Path, code: str) -> str | None:
    """An item's state read over a separate connection (what another process would see)."""
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT state FROM items WHERE code = ?", (code,)).fetchone()
        return None if row is None else str(row[0])
    finally:
        conn.close()
