"""LMC figures: list entries encoded per second, and streaming a 100 000-entry job to sim://lmc.

    /work/venv/bin/python benchmarks/bench_lmc.py [--entries 100000] [--repeat 3]

Prints figures only (no pass/fail): the codec's encoding rate (Job → entries → 3072-byte packets)
for a synthetic job and for the shipped secondary mark, and the wall time of the whole driver
path — open, stream every packet only when READY, ExecuteList, poll until the board reports done —
into the simulated board at ``timing=instant`` (so the figure is host + USB-stack overhead, not
marking time).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from markstation.devices.lmc.codec import job_to_entries, pack_list
from markstation.devices.registry import open_device
from markstation.job.ir import Job, Layer, MarkParams, Polyline
from markstation.profiles import load_layout, load_machine, load_material

PARAMS = MarkParams(speed_mm_s=1000, power_pct=50, frequency_khz=30)


def synthetic_job(entries: int) -> Job:
    """Polylines of 98 segments each: 1 JumpTo + 98 MarkTo + 1 DelayTime = 100 entries apiece."""
    lines = []
    for i in range(max(1, entries // 100)):
        y = -40.0 + (i % 800) * 0.1
        lines.append(Polyline(tuple((-40.0 + k * 0.8, y) for k in range(99))))
    return Job(layers=(Layer("bench", PARAMS, tuple(lines)),))


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=100_000, help="list entries of the big job")
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure (best is shown)")
    args = ap.parse_args()
    machine = load_machine("lmc-fiber-110")

    job = synthetic_job(args.entries)
    entries = job_to_entries(job, machine)
    packets = pack_list(entries)
    n = len(entries)
    t_entries = best_of(args.repeat, lambda: job_to_entries(job, machine))
    t_pack = best_of(args.repeat, lambda: pack_list(entries))
    print(f"synthetic job: {n} entries, {len(packets)} packets")
    print(f"  job_to_entries      {n / t_entries:12,.0f} entries/s  ({t_entries * 1e3:.1f} ms)")
    print(f"  pack_list           {n / t_pack:12,.0f} entries/s  ({t_pack * 1e3:.1f} ms)")
    print(f"  both                {n / (t_entries + t_pack):12,.0f} entries/s")

    try:
        from markstation.job.layout import build_job

        mark = build_job(
            "PE-SUCAMEC-2016-000123",
            layout=load_layout("secondary-mark"),
            material=load_material("blued-steel"),
            machine=machine,
        )
        m_entries = job_to_entries(mark, machine)
        t_mark = best_of(args.repeat, lambda: pack_list(job_to_entries(mark, machine)))
        print(
            f"secondary mark: {len(m_entries)} entries encoded in {t_mark * 1e3:.1f} ms "
            f"({len(m_entries) / t_mark:,.0f} entries/s)"
        )
    except ImportError:
        print("secondary mark: job builder not available")

    def stream() -> None:
        with open_device("sim://lmc?timing=instant", machine) as driver:
            result = driver.run(job)
            assert result.complete

    t_stream = best_of(args.repeat, stream)
    print(
        f"stream {n} entries ({len(packets)} packets) into sim://lmc?timing=instant, "
        f"open + run + close: {t_stream:.2f} s wall ({n / t_stream:,.0f} entries/s)"
    )


if __name__ == "__main__":
    main()
