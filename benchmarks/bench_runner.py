"""Per-item overhead of the batch runner on sim://lmc?timing=instant, journal fsyncs included.

Overhead = wall time of the whole run minus the time spent inside ``driver.run()`` (the device)
and inside the job builder (measured separately by benchmarks/bench_job.py). It covers: reading
the queue, the ``marking`` intent commit (fsync), the outcome commit (fsync), journal hashing,
listener and abort-guard set-up, and the run records. Target: <= 15 ms per item.

    python benchmarks/bench_runner.py                 # 1000 items, one-stroke jobs
    python benchmarks/bench_runner.py --real-jobs -n 100   # the secondary-mark layout's real jobs
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from pathlib import Path

from markstation.devices import open_device
from markstation.devices.base import Driver
from markstation.job.ir import Job, Layer, MarkParams, Polyline
from markstation.profiles import LayoutProfile, MachineProfile, MaterialProfile
from markstation.queue.batch import import_batch
from markstation.queue.models import Actor
from markstation.queue.operator import QuietUI
from markstation.queue.runner import default_builder, run_batch
from markstation.queue.sqlite import SqliteStore


def one_stroke(
    code: str, layout: LayoutProfile, material: MaterialProfile, machine: MachineProfile
) -> Job:
    layer = Layer(
        "text",
        MarkParams(speed_mm_s=500, power_pct=50, frequency_khz=30),
        (Polyline(((0.0, 0.0), (2.0, 1.0))),),
    )
    return Job((layer,), meta=Job.make_meta({"mark_code": code}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("-n", "--items", type=int, default=1000)
    ap.add_argument("--real-jobs", action="store_true", help="build the real secondary-mark jobs")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-runner-"))
    batch = tmp / "batch.csv"
    with batch.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["mark_code", "serial", "make"])
        for i in range(args.items):
            w.writerow([f"PE-SUCAMEC-2026-{i + 1:06d}", f"SN{i:06d}", "Glock"])
    actor = Actor("bench", "bench")
    store = SqliteStore(tmp / "m.db", actor=actor)
    t0 = time.perf_counter()
    import_batch(batch, store, actor=actor)
    import_s = time.perf_counter() - t0

    device_s: list[float] = []
    build_s: list[float] = []
    builder = default_builder if args.real_jobs else one_stroke

    def timed_build(
        code: str, layout: LayoutProfile, material: MaterialProfile, machine: MachineProfile
    ) -> Job:
        t = time.perf_counter()
        job = builder(code, layout, material, machine)
        build_s.append(time.perf_counter() - t)
        return job

    def factory() -> Driver:
        driver = open_device("sim://lmc?timing=instant")
        real_run = driver.run

        def run(job: Job, listener: object = None) -> object:
            t = time.perf_counter()
            try:
                return real_run(job, listener)  # type: ignore[arg-type]
            finally:
                device_s.append(time.perf_counter() - t)

        driver.run = run  # type: ignore[method-assign,assignment]
        return driver

    t0 = time.perf_counter()
    summary = run_batch(
        store,
        factory,
        operator="bench",
        station="bench",
        ui=QuietUI(),
        auto=True,
        build=timed_build,
        estimator=lambda job: 0.0,
    )
    wall = time.perf_counter() - t0
    store.close()
    n = len(summary.marked)
    assert n == args.items, summary
    overhead = wall - sum(device_s) - sum(build_s)
    print(f"items marked:              {n} ({'real' if args.real_jobs else 'one-stroke'} jobs)")
    print(f"import (validate + store): {import_s * 1000 / n:.2f} ms per item")
    print(f"run wall time:             {wall:.2f} s")
    print(f"  device (driver.run):     {sum(device_s) * 1000 / n:.2f} ms per item")
    print(f"  job build:               {sum(build_s) * 1000 / n:.2f} ms per item")
    print(
        f"runner overhead:           {overhead * 1000 / n:.2f} ms per item "
        f"(target <= 15 ms; 2 fsynced commits per item)"
    )
    print(f"  median device call:      {statistics.median(device_s) * 1000:.2f} ms")


if __name__ == "__main__":
    main()
