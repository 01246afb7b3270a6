"""Issue 13's figures, in one run: honest time, fast software.

1. LMC list encoding of the same 10 secondary marks: ours (``job_to_words`` + ``pack_words``, Job
   to packets) vs galvoplotter 0.2.0's list building (``goto``/``mark``/``dwell``/``set`` on a
   ``GalvoController`` whose USB ``send`` is replaced by a stub that answers READY, so only list
   building is timed; millimetres → galvo units inline, as its user writes it). Target: ≥ 3×.
2. Per-item batch cost on ``sim://lmc?timing=instant`` (the real runner: build, verify, estimate,
   journal, driver, simulated board; target ≤ 25 ms/item) and of the dry run with a PNG per item
   (target ≤ 60 ms/item).
3. The device estimate / device time, per shipped layout and protocol: LMC against the simulated
   board's GetMarkTime; GRBL against the simulated controller run ``--grbl-timing`` times faster
   over an ideal link (wall clock × F, and its planner-timed motion).
4. ``markstation --help`` wall time (target < 150 ms).

    .venv/bin/pip install galvoplotter==0.2.0      # benchmark-only dependency
    .venv/bin/python benchmarks/bench_time.py      # about 1–2 min; --quick skips GRBL secondary-mark

Prints the load average before and after: the figures are only comparable on a quiet machine.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from markstation.devices.estimate import device_estimate
from markstation.devices.lmc import codec
from markstation.devices.registry import open_device
from markstation.job.ir import Dot, Job
from markstation.job.layout import build_job
from markstation.profiles import MachineProfile, load_layout, load_machine, load_material

LAYOUTS = ("secondary-mark", "import-mark", "text-only")
ROOT = Path(__file__).resolve().parent.parent


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores)"


def best_of(n: int, fn: Callable[[], Any]) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def jobs_for(machine: MachineProfile, layout: str, codes: list[str]) -> list[Job]:
    lay = load_layout(layout)
    material = load_material(machine.default_material, machine=machine)
    return [build_job(c, layout=lay, material=material, machine=machine) for c in codes]


# --- 1. encoder vs galvoplotter ------------------------------------------------------------------


def ours(jobs: list[Job], machine: MachineProfile) -> tuple[int, int]:
    entries = packets = 0
    for job in jobs:
        words = codec._encode_job(job, machine)  # not the memo: every run encodes
        packets += len(codec.pack_words(words))
        entries += len(words)
    return entries, packets


def galvoplotter(jobs: list[Job], machine: MachineProfile) -> tuple[int, int]:
    from galvo.controller import GalvoController  # type: ignore[import-untyped,import-not-found,unused-ignore]

    g = codec.Geometry.from_machine(machine)
    upm = g.units_per_mm
    sent = [0]

    def send(data: bytes, read: bool = True) -> tuple[int, int, int, int]:
        if len(data) == codec.PACKET_BYTES:
            sent[0] += 1
        return (0, 0, 0, codec.STATUS_READY)

    for job in jobs:
        c = GalvoController(mock=True, galvos_per_mm=upm)
        c.send = send  # no USB: list building only
        c.marking_configuration()
        for layer in job.layers:
            p = layer.params
            c.set(
                mark_speed=p.speed_mm_s,
                travel_speed=p.jump_speed_mm_s,
                power=p.power_pct,
                frequency=p.frequency_khz,
                delay_on=p.laser_on_delay_s * 1e6,
                delay_off=p.laser_off_delay_s * 1e6,
                delay_polygon=p.polygon_delay_s * 1e5,
            )
            for _ in range(p.passes):
                for prim in layer.primitives:
                    if isinstance(prim, Dot):
                        c.goto(int(0x8000 + prim.x * upm + 0.5), int(0x8000 + prim.y * upm + 0.5))
                        c.dwell(prim.dwell_s * 1e3)
                        continue
                    pts = prim.points
                    x, y = pts[0]
                    c.goto(int(0x8000 + x * upm + 0.5), int(0x8000 + y * upm + 0.5))
                    for x, y in pts[1:]:
                        c.mark(int(0x8000 + x * upm + 0.5), int(0x8000 + y * upm + 0.5))
                    c.list_delay_time(30)
        c._list_end()
    return sent[0] * codec.PACKET_ENTRIES, sent[0]


def bench_encoder(machine: MachineProfile) -> None:
    codes = [f"PE-SUCAMEC-2016-{i:06d}" for i in range(123, 133)]
    jobs = jobs_for(machine, "secondary-mark", codes)
    n_ours, p_ours = ours(jobs, machine)
    t_ours = best_of(5, lambda: ours(jobs, machine))
    try:
        n_gp, p_gp = galvoplotter(jobs, machine)
    except ImportError:
        print("1. encoder: galvoplotter is not installed (pip install galvoplotter==0.2.0)")
        print(f"   ours: {n_ours} entries, {p_ours} packets in {t_ours * 1000:.1f} ms")
        return
    t_gp = best_of(3, lambda: galvoplotter(jobs, machine))
    print("1. LMC list encoding, 10 secondary marks (best of runs, one process)")
    print(f"   ours:         {n_ours:7d} entries, {p_ours:4d} packets, {t_ours * 1000:8.1f} ms")
    print(f"   galvoplotter: ≤{n_gp:6d} entries, {p_gp:4d} packets, {t_gp * 1000:8.1f} ms")
    print(f"   ratio galvoplotter / ours: {t_gp / t_ours:.1f}× (target ≥ 3×)")


# --- 2. per-item batch cost ----------------------------------------------------------------------


def _store(tmp: Path, items: int) -> Any:
    from markstation.queue.batch import import_batch
    from markstation.queue.models import Actor
    from markstation.queue.sqlite import SqliteStore

    batch = tmp / "batch.csv"
    with batch.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["mark_code", "serial", "make"])
        for i in range(items):
            w.writerow([f"PE-SUCAMEC-2026-{i + 1:06d}", f"SN{i:06d}", "Glock"])
    actor = Actor("bench", "bench")
    store = SqliteStore(tmp / "m.db", actor=actor)
    import_batch(batch, store, actor=actor)
    return store


def bench_batch(items: int) -> None:
    from markstation.queue.dry_run import dry_run
    from markstation.queue.operator import QuietUI
    from markstation.queue.runner import run_batch

    tmp = Path(tempfile.mkdtemp(prefix="bench-time-"))
    (tmp / "run").mkdir()
    store = _store(tmp / "run", items)
    t = time.perf_counter()
    summary = run_batch(
        store,
        lambda: open_device("sim://lmc?timing=instant"),
        operator="bench",
        station="bench",
        ui=QuietUI(),
        auto=True,
    )
    run_s = time.perf_counter() - t
    store.close()
    assert len(summary.marked) == items, summary
    (tmp / "dry").mkdir()
    store = _store(tmp / "dry", items)
    t = time.perf_counter()
    done = dry_run(store, tmp / "dry" / "out")
    dry_s = time.perf_counter() - t
    store.close()
    pngs = len(list((tmp / "dry" / "out").glob("*.png")))
    assert pngs == items and len(done) == items, (pngs, len(done))
    print(f"2. batch, {items} secondary-mark items")
    print(f"   run on sim://lmc?timing=instant: {run_s * 1000 / items:6.1f} ms/item (target ≤ 25)")
    print(f"   dry run, a PNG per item:         {dry_s * 1000 / items:6.1f} ms/item (target ≤ 60)")


# --- 3. estimate / device ------------------------------------------------------------------------


def bench_ratios(grbl_timing: float, quick: bool) -> None:
    from markstation.hil.jobs import square_job

    print("3. device estimate / device time")
    lmc = load_machine("lmc-fiber-110")
    for layout in LAYOUTS:
        (job,) = jobs_for(lmc, layout, [load_layout(layout).code_example])
        est = device_estimate(job, lmc).seconds
        with open_device("sim://lmc?timing=instant", lmc) as d:
            device = d.run(job).device_mark_time_s
        assert device
        print(
            f"   lmc  {layout:15s} estimate {est:8.2f} s  board {device:8.2f} s  {est / device:.4f}"
        )
    grbl = load_machine("grbl-marker")
    for layout in LAYOUTS:
        if quick and layout == "secondary-mark":
            continue
        (job,) = jobs_for(grbl, layout, [load_layout(layout).code_example])
        est = device_estimate(job, grbl).seconds
        with open_device(f"sim://grbl?timing={grbl_timing:g}&link=ideal", grbl) as d:
            assert d.run(square_job(grbl)).complete  # start where a batch leaves the head
            sim: Any = d.simulator  # type: ignore[attr-defined]
            before = sim.motion_s
            wall = d.run(job).elapsed_s * grbl_timing
            motion = sim.motion_s - before + 0.01  # + the closing G4 P0.01
        print(
            f"   grbl {layout:15s} estimate {est:8.2f} s  wall×{grbl_timing:g} {wall:8.2f} s "
            f"{est / wall:.4f}  (planner motion {motion:.2f} s, {est / motion:.4f})"
        )


# --- 4. --help -----------------------------------------------------------------------------------


def bench_help() -> None:
    exe = Path(sys.executable).with_name("markstation")
    cmd = [str(exe), "--help"] if exe.exists() else [sys.executable, "-m", "markstation", "--help"]

    def once() -> None:
        subprocess.run(cmd, check=True, capture_output=True)

    once()
    print(f"4. markstation --help: {best_of(7, once) * 1000:.0f} ms wall, best of 7 (target < 150)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("-n", "--items", type=int, default=50, help="batch items (default 50)")
    ap.add_argument("--grbl-timing", type=float, default=5.0, help="GRBL simulator speed-up")
    ap.add_argument("--quick", action="store_true", help="skip GRBL secondary-mark (~25 s)")
    args = ap.parse_args()
    print(f"before: {load()}")
    machine = load_machine("lmc-fiber-110")
    bench_encoder(machine)
    bench_batch(args.items)
    bench_ratios(args.grbl_timing, args.quick)
    bench_help()
    print(f"after:  {load()}")


if __name__ == "__main__":
    main()
