"""Benchmark: build + optimise + verify for the ``secondary-mark`` layout on distinct codes.

Prints the median time per item (target ≤ 20 ms on a 2-core machine) split into its parts, and
the jump-length ratio optimised / unoptimised (target ≤ 0.5). Run:

    python benchmarks/bench_job.py [--items 1000] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from markstation.job.layout import build_job
from markstation.job.optimize import optimize
from markstation.preview import verify_codes
from markstation.profiles import load_layout, load_machine, load_material

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def distinct_codes(count: int, seed: int) -> list[str]:
    """COUNTRY-AUTHORITY-YEAR-NUMBER codes, as a registry would issue them for one campaign."""
    rng = random.Random(seed)
    authorities = ["SUCAMEC", "DCCAE", "DIGECAM", "INDUMIL", "ANMAC", "SUCAMEC"]
    codes: set[str] = set()
    while len(codes) < count:
        country = rng.choice(["PE", "SV", "GT", "CO", "AR", "HN"])
        authority = rng.choice(authorities)
        year = rng.randint(2010, 2026)
        codes.add(f"{country}-{authority}-{year}-{rng.randint(0, 999999):06d}")
    return sorted(codes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000, help="number of distinct codes")
    parser.add_argument("--seed", type=int, default=1, help="seed for the code generator")
    args = parser.parse_args()

    layout = load_layout("secondary-mark")
    material = load_material("blued-steel")
    machine = load_machine("lmc-fiber-110")
    codes = distinct_codes(args.items, args.seed)
    # warm caches (fonts, imports) outside the measurement
    verify_codes(optimize(build_job(codes[0], layout=layout, material=material,
                                    machine=machine, optimize=False)), machine)  # fmt: skip

    cpu_start = time.process_time()
    total: list[float] = []
    parts: dict[str, list[float]] = {"build": [], "optimise": [], "verify": []}
    ratios: list[float] = []
    for code in codes:
        t0 = time.perf_counter()
        raw = build_job(code, layout=layout, material=material, machine=machine, optimize=False)
        t1 = time.perf_counter()
        job = optimize(raw)
        t2 = time.perf_counter()
        verify_codes(job, machine)
        t3 = time.perf_counter()
        parts["build"].append(t1 - t0)
        parts["optimise"].append(t2 - t1)
        parts["verify"].append(t3 - t2)
        total.append(t3 - t0)
        ratios.append(job.jump_length() / raw.jump_length())

    cpu_per_item = (time.process_time() - cpu_start) / len(codes)
    ms = 1000.0
    print(f"secondary-mark, {len(codes)} distinct codes, blued-steel on lmc-fiber-110")
    print(
        f"median build + optimise + verify per item: {statistics.median(total) * ms:.2f} ms "
        f"(p90 {statistics.quantiles(total, n=10)[-1] * ms:.2f} ms; target <= 20 ms)"
    )
    print(f"  mean CPU time per item (this process only): {cpu_per_item * ms:.2f} ms")
    print(
        "  median parts: "
        + ", ".join(f"{k} {statistics.median(v) * ms:.2f} ms" for k, v in parts.items())
    )
    print(
        f"jump-length ratio optimised/unoptimised: median {statistics.median(ratios):.3f}, "
        f"worst {max(ratios):.3f} (target <= 0.5)"
    )


if __name__ == "__main__":
    main()
