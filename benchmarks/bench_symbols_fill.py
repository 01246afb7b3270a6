"""Time 2D-code encoding and module fills; prints medians in milliseconds (no assertions).

Run: python benchmarks/bench_symbols_fill.py
Target from the task: hatching a 26x26 symbol takes well under 5 ms.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from markstation.job.fill import FILL_STYLES, fill_modules
from markstation.job.symbols import encode_symbol

PAYLOAD = "PE-SUCAMEC-2016-000123"
REPEATS = 200


def median_ms(work: Callable[[], object], repeats: int = REPEATS) -> float:
    work()  # warm imports and caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    for symbology, size in (("datamatrix", "auto"), ("datamatrix", "26x26"), ("qr", "auto"),
                            ("microqr", "auto")):  # fmt: skip
        ms = median_ms(lambda s=symbology, z=size: encode_symbol(s, PAYLOAD, size=z))
        version = encode_symbol(symbology, PAYLOAD, size=size).version
        print(f"encode {symbology:<10} {version:<6} {ms:7.3f} ms")
    matrix = encode_symbol("datamatrix", PAYLOAD, size="26x26")
    for style in FILL_STYLES:
        for direction in ("horizontal", "vertical"):

            def work(st: str = style, d: str = direction) -> object:
                return fill_modules(
                    matrix,
                    module_mm=0.3,
                    top_left=(-3.9, 3.9),
                    style=st,
                    hatch_spacing_mm=0.03,
                    dot_dwell_s=0.0008,
                    quiet_zone_modules=1,
                    spot_mm=0.03,
                    direction=d,
                )

            count = len(work())  # type: ignore[arg-type]
            print(
                f"fill 26x26 {style:<13} {direction:<10} {count:5d} primitives "
                f"{median_ms(work):7.3f} ms"
            )


if __name__ == "__main__":
    main()
