"""Lines per second streamed into ``sim://grbl?timing=instant``: character counting vs send-response.

Motion takes no time (timing=instant), so the figures measure the conversation only. The simulated
link is modelled (``link=real``, the default): 10 bit times per byte at 115200 baud in each
direction, 1 ms one-way USB-serial latency, 0.2 ms for the controller to parse and plan a line.
Send-response pays a full round trip per line; character counting keeps up to 128 bytes in flight
and is bound by the wire. Run: ``/work/venv/bin/python benchmarks/bench_grbl.py [segments]``.
"""

from __future__ import annotations

import sys
import time

from markstation.devices.registry import open_device
from markstation.job.ir import Job, Layer, MarkParams, Polyline


def dense_job(segments: int) -> Job:
    """Short laser segments, as in raster or fine hatching: one G1 line each."""
    params = MarkParams(speed_mm_s=50.0, power_pct=40.0, frequency_khz=1.0, jump_speed_mm_s=200.0)
    pts = tuple(
        (-40.0 + 0.05 * i, 2.0 * ((i // 7) % 2) - 1.0 + 0.01 * (i % 7)) for i in range(segments)
    )
    return Job(layers=(Layer("dense", params, (Polyline(pts),)),))


def measure(streaming: str, job: Job) -> tuple[int, float, int]:
    with open_device(f"sim://grbl?timing=instant&streaming={streaming}") as driver:
        t0 = time.perf_counter()
        driver.run(job)
        elapsed = time.perf_counter() - t0
        lines = int(driver.last_stream["lines"])  # type: ignore[attr-defined]
        overflow = driver.simulator.overflow_bytes  # type: ignore[attr-defined]
    return lines, elapsed, overflow


def main() -> None:
    segments = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    job = dense_job(segments)
    results = {}
    for mode in ("counting", "send-response"):
        lines, elapsed, overflow = measure(mode, job)
        results[mode] = lines / elapsed
        print(f"{mode:>14}: {lines} lines in {elapsed:.3f} s = {lines / elapsed:8.0f} lines/s, "
              f"rx overflow {overflow} bytes")  # fmt: skip
    print(f"ratio counting / send-response: {results['counting'] / results['send-response']:.2f}")


if __name__ == "__main__":
    main()
