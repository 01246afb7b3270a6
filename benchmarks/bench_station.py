"""Station timings on sim://lmc, driven through the station's HTTP API (what the page's script does).

    python benchmarks/bench_station.py [--items 1000] [--aborts 20] [--screens 10]

1. item screen ready: from the POST of the previous item's inspection to the next item's screen
   served with its preview PNG (target <= 300 ms);
2. abort latency: from the Abort POST to the simulated board's emission off (the ledger's ``end``
   record of the aborted job, written when the board stops), median of N (target <= 50 ms);
3. per-item overhead: N items on ``sim://lmc?timing=instant``, the CLI runner with a scripted
   operator vs the station through HTTP; the ratio station / CLI.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from markstation.devices.sim.ledger import read_jobs
from markstation.queue.batch import import_batch
from markstation.queue.models import Actor, Item
from markstation.queue.operator import Action, Inspection, QuietUI
from markstation.queue.runner import run_batch
from markstation.queue.sqlite import SqliteStore
from markstation.station.server import BackgroundStation
from markstation.station.service import Station, StationConfig

ACTOR = Actor("bench", "bench")


def make_db(folder: Path, name: str, n: int) -> Path:
    db = folder / f"{name}.db"
    csv = folder / f"{name}.csv"
    lines = ["mark_code,serial,make,model,caliber,owner"]
    lines += [f"PE-SUCAMEC-2026-{i:06d},SN{i:06d},Glock,17,9x19mm,Bench" for i in range(1, n + 1)]
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with SqliteStore(db) as store:
        import_batch(csv, store, actor=ACTOR)
    return db


class Client:
    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30.0)
        page = self.http.get("/campaign").text
        found = re.search(r'data-csrf="([^"]+)"', page)
        assert found, "no CSRF token on the campaign page"
        self.headers = {"X-CSRF-Token": found.group(1), "Accept": "application/json"}
        self.version = -1

    def post(self, url: str, **data: str) -> dict[str, Any]:
        r = self.http.post(url, data=data, headers=self.headers)
        body: dict[str, Any] = r.json()
        if r.status_code != 200 or not body.get("ok", True):
            raise SystemExit(f"{url}: {r.status_code} {body.get('error')}")
        return body

    def wait(self, ok: Callable[[dict[str, Any]], bool], timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            state: dict[str, Any] = self.http.get(
                "/state", params={"after": self.version, "timeout": 5}
            ).json()
            self.version = state["version"]
            if ok(state):
                return state
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting; state {state['phase']}")

    def phase(self, *names: str) -> dict[str, Any]:
        return self.wait(lambda s: s["phase"] in names)

    def one_item(self, *, screen: bool = False) -> tuple[str, float | None]:
        """Work the item on screen to its inspection; with ``screen`` time the next screen."""
        state = self.phase("serial", "idle")
        if state["phase"] == "idle":
            return "", None
        item = state["item"]
        self.post("/item/serial", code=item["code"], serial=item["serial"])
        self.phase("ready")
        self.post("/item/mark", code=item["code"])
        self.phase("inspect")
        t0 = time.perf_counter()
        self.post("/item/pass", code=item["code"])
        if not screen:
            return item["code"], None
        nxt = self.wait(
            lambda s: (
                s["phase"] in ("serial", "idle") and (s["item"] or {}).get("code") != item["code"]
            )
        )
        if nxt["phase"] == "idle":
            return item["code"], None
        code = nxt["item"]["code"]
        page = self.http.get("/item")
        png = self.http.get(f"/preview/{code}.png")
        assert page.status_code == 200 and png.status_code == 200
        return item["code"], (time.perf_counter() - t0) * 1000.0


def station(db: Path, device: str) -> BackgroundStation:
    return BackgroundStation(Station(StationConfig(db=db, device=device, station_name="bench")))


def bench_screens(folder: Path, n: int) -> list[float]:
    db = make_db(folder, "screens", n + 1)
    with station(db, "sim://lmc?timing=instant") as bg:
        c = Client(bg.url)
        c.post("/run")
        times = []
        for _ in range(n):
            _code, ms = c.one_item(screen=True)
            if ms is not None:
                times.append(ms)
        return times


def bench_aborts(folder: Path, n: int) -> list[float]:
    db = make_db(folder, "aborts", n)
    ledger = folder / "aborts-ledger.jsonl"
    with station(db, f"sim://lmc?timing=realtime&ledger={ledger}") as bg:
        c = Client(bg.url)
        latencies = []
        for i in range(n):
            c.post("/run")
            state = c.phase("serial")
            item = state["item"]
            c.post("/item/serial", code=item["code"], serial=item["serial"])
            c.phase("ready")
            c.post("/item/mark", code=item["code"])
            c.wait(lambda s: s["phase"] == "marking" and s["progress"]["fraction"] > 0.02)
            t0 = time.perf_counter()
            c.post("/item/abort")
            while True:
                jobs = read_jobs(ledger)
                if len(jobs) > i and jobs[i].ended is not None:
                    break
                time.sleep(0.0005)
            latencies.append((time.perf_counter() - t0) * 1000.0)
            c.wait(lambda s: s["phase"] == "idle")
        return latencies


class ScriptedUI(QuietUI):
    """The CLI runner's operator, answered at once: serial, Enter, pass (the station's script)."""

    def ask_serial(self, item: Item) -> str | Action:
        return item.serial

    def inspect(self, item: Item) -> Inspection:
        return Inspection("pass")


def bench_cli(folder: Path, n: int) -> float:
    from markstation.devices import open_device

    db = make_db(folder, "cli", n)
    with SqliteStore(db) as store:
        t0 = time.perf_counter()
        summary = run_batch(
            store,
            lambda: open_device("sim://lmc?timing=instant"),
            operator="bench",
            station="bench",
            ui=ScriptedUI(),
        )
        elapsed = time.perf_counter() - t0
    assert len(summary.marked) == n, summary.as_dict()
    return elapsed / n


def bench_station_items(folder: Path, n: int) -> float:
    db = make_db(folder, "station", n)
    with station(db, "sim://lmc?timing=instant") as bg:
        c = Client(bg.url)
        t0 = time.perf_counter()
        c.post("/run")
        done = 0
        while True:
            code, _ = c.one_item()
            if not code:
                break
            done += 1
        elapsed = time.perf_counter() - t0
    assert done == n, done
    return elapsed / n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--aborts", type=int, default=20)
    ap.add_argument("--screens", type=int, default=10)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-station-") as tmp:
        folder = Path(tmp)
        screens = bench_screens(folder, args.screens)
        print(
            f"item screen ready: median {statistics.median(screens):.0f} ms, "
            f"max {max(screens):.0f} ms over {len(screens)} items (target <= 300 ms)"
        )
        aborts = bench_aborts(folder, args.aborts)
        print(
            f"abort -> emission off: median {statistics.median(aborts):.1f} ms, "
            f"max {max(aborts):.1f} ms over {len(aborts)} (target <= 50 ms)"
        )
        cli = bench_cli(folder, args.items)
        web = bench_station_items(folder, args.items)
        print(
            f"{args.items} items: CLI runner {cli * 1000:.1f} ms/item, station over HTTP "
            f"{web * 1000:.1f} ms/item, ratio {web / cli:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
