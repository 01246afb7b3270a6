"""Several stations on one campaign: throughput and per-item store overhead, SQLite vs PostgreSQL.

    python benchmarks/bench_stations.py                 # 1, 2, 4, 8 stations on a 2000-item batch
    python benchmarks/bench_stations.py --one-stroke    # the same with one-stroke jobs
    python benchmarks/bench_stations.py --items 200     # smaller (a secondary mark is ~30 ms CPU)

Each station is its own process running the real runner (``run_batch``, auto mode) on its own
instant simulated LMC board; the store's methods are timed inside each station, so "store ms /
item" is what the store costs per marked item (claim, outcome, reservations, reads), apart from
building, verifying and sending the job. SQLite runs one station (it has one runner per store);
PostgreSQL runs 1, 2, 4 and 8 on a server started for the run (tests/_pg.py, the Debian binaries).

Read the figures against the machine: the stations, their simulated boards and the server share
its CPUs. With real jobs a station is CPU-bound (build, decode check, board), so on 2 cores the
throughput stays flat whatever the number of stations, and "store ms / item" (wall time inside
store calls) grows with the waiting for a CPU, not only with the store's locking. ``--one-stroke``
takes the job out of it, so what is left is the claim / journal / outcome path itself.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

_TIMED = (
    "item",
    "items",
    "counts",
    "append",
    "transition",
    "annotate",
    "reserve",
    "unreserve",
    "head",
    "add_checkpoint",
    "check_items_against_journal",
)


def worker(location: str, station: str, ledger: str, one_stroke: bool = False) -> None:
    from markstation.devices import open_device
    from markstation.queue.location import open_store
    from markstation.queue.models import Actor
    from markstation.queue.operator import QuietUI
    from markstation.queue.runner import run_batch

    store = open_store(location, actor=Actor("bench", station), mode="write")
    spent = [0.0]

    def timed(fn: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - t

        return call

    for name in _TIMED:
        setattr(store, name, timed(getattr(store, name)))
    url = f"sim://lmc?timing=instant&ledger={ledger}"
    t0 = time.perf_counter()
    summary = run_batch(
        store,
        lambda: open_device(url, None),
        operator="bench",
        station=station,
        ui=QuietUI(),
        auto=True,
        build=_one_stroke() if one_stroke else None,
    )
    wall = time.perf_counter() - t0
    store.close()
    print(json.dumps({"marked": len(summary.marked), "store_s": spent[0], "wall_s": wall}))


def _one_stroke() -> Any:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_runner import one_stroke

    return one_stroke


def _import(location: str, items: int, tmp: Path) -> None:
    from _queue_fakes import sample_rows, write_csv
    from markstation.queue.batch import import_batch
    from markstation.queue.location import open_store
    from markstation.queue.models import Actor

    actor = Actor("bench", "office")
    with open_store(location, actor=actor) as store:
        import_batch(write_csv(tmp / "b.csv", sample_rows(items)), store, actor=actor)


def run(location: str, stations: int, tmp: Path, one_stroke: bool) -> dict[str, float]:
    extra = ["--one-stroke"] if one_stroke else []
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                location,
                f"st{i}",
                str(tmp / f"l{i}.jsonl"),
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for i in range(stations)
    ]
    t0 = time.perf_counter()
    outs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    wall = time.perf_counter() - t0
    marked = sum(o["marked"] for o in outs)
    store_s = sum(o["store_s"] for o in outs)
    return {
        "marked": marked,
        "wall_s": wall,
        "items_per_s": marked / wall,
        "store_ms_per_item": 1000 * store_s / max(marked, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--stations", default="1,2,4,8")
    ap.add_argument(
        "--one-stroke",
        action="store_true",
        help="one-stroke jobs instead of the secondary mark: the store's own scaling, not the CPU's",
    )
    ap.add_argument("--worker", nargs=3, metavar=("DB", "STATION", "LEDGER"))
    args = ap.parse_args()
    if args.worker:
        worker(*args.worker, one_stroke=args.one_stroke)
        return
    from _pg import PgServer, find_bin_dir

    jobs = "one-stroke jobs" if args.one_stroke else "secondary-mark jobs"
    print(
        f"{args.items} items, {jobs}, instant simulated LMC boards, {os.cpu_count()} CPUs",
        flush=True,
    )
    print(
        f"{'backend':9} {'stations':>8} {'marked':>7} {'wall s':>8} {'items/s':>8} "
        f"{'vs sqlite':>9} {'store ms/item':>14}",
        flush=True,
    )
    base: dict[str, float] = {}

    def row(backend: str, n: int, r: dict[str, float]) -> None:
        if not base:
            base.update(r)
        print(
            f"{backend:9} {n:>8} {int(r['marked']):>7} {r['wall_s']:>8.1f} {r['items_per_s']:>8.2f} "
            f"{r['items_per_s'] / base['items_per_s']:>8.2f}x {r['store_ms_per_item']:>14.2f}",
            flush=True,  # one line per configuration, as it finishes
        )

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        db = str(tmp / "bench.db")
        _import(db, args.items, tmp)
        row("sqlite", 1, run(db, 1, tmp, args.one_stroke))
        bin_dir = find_bin_dir()
        if bin_dir is None:
            print("no PostgreSQL binaries: only SQLite measured")
            return
        server = PgServer(bin_dir).start()
        try:
            for n in (int(s) for s in args.stations.split(",")):
                url = server.new_database()
                _import(url, args.items, tmp)
                row("postgres", n, run(url, n, tmp, args.one_stroke))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
