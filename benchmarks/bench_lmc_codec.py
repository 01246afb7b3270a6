"""LMC codec and simulator throughput: list entries encoded per second, and the wall time to
stream a 100 000-entry job into ``sim://lmc?timing=instant`` through the real driver.

Run: ``python benchmarks/bench_lmc_codec.py`` (prints figures; only checks that the run completed).
"""

from __future__ import annotations

import time

from markstation.devices.lmc.codec import (
    Geometry,
    ListOp,
    decode_entries,
    job_to_entries,
    pack_list,
    unpack_packet,
)
from markstation.job.ir import Job, Layer, MarkParams, Polyline
from markstation.profiles import load_machine


def hatch_job(lines: int, points_per_line: int = 2) -> Job:
    """``lines`` strokes of ``points_per_line`` points: roughly lines × (points + 2) entries."""
    p = MarkParams(speed_mm_s=1000.0, power_pct=50.0, frequency_khz=30.0)
    prims = []
    for i in range(lines):
        y = -40 + (i % 8000) * 0.01
        xs = [-40 + 80 * k / (points_per_line - 1) for k in range(points_per_line)]
        prims.append(Polyline(tuple((x, y) for x in xs)))
    return Job((Layer("hatch", p, tuple(prims)),))


def best_of(n: int, fn: object) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    machine = load_machine("lmc-fiber-110")
    g = Geometry.from_machine(machine)
    job = hatch_job(20_000, points_per_line=3)
    entries = job_to_entries(job, machine)
    n = len(entries)
    t_build = best_of(3, lambda: job_to_entries(job, machine))
    t_pack = best_of(3, lambda: pack_list(entries))
    packets = pack_list(entries)
    t_unpack = best_of(3, lambda: [unpack_packet(p) for p in packets])
    t_decode = best_of(3, lambda: decode_entries(entries, g))
    print(f"entries: {n}")
    print(f"job_to_entries:  {n / t_build:12,.0f} entries/s")
    print(f"pack_list:       {n / t_pack:12,.0f} entries/s")
    print(f"unpack_packet:   {n / t_unpack:12,.0f} entries/s")
    print(f"decode_entries:  {n / t_decode:12,.0f} entries/s")

    from markstation.devices.registry import open_device

    big = hatch_job(33_000)  # 33 000 strokes × 3 entries + settings ≈ 100 000 entries
    count = len(job_to_entries(big, machine))
    t = time.perf_counter()
    with open_device("sim://lmc?timing=instant", machine) as dev:
        result = dev.run(big)
        strokes = len(dev.simulator.burned_strokes())  # type: ignore[attr-defined]
    wall = time.perf_counter() - t
    assert result.complete and strokes == 33_000
    assert sum(1 for e in job_to_entries(big, machine) if e.op == ListOp.MARK_TO) == 33_000
    print(
        f"stream {count} entries ({len(pack_list(job_to_entries(big, machine)))} packets) into "
        f"sim://lmc?timing=instant via LmcDriver: {wall:.2f} s wall"
    )


if __name__ == "__main__":
    main()
