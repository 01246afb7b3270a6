"""Shared helpers for the GRBL tests: small jobs, a test material and machine within GRBL limits."""

from __future__ import annotations

from pathlib import Path

from _paths import REPO
from markstation.job.ir import Dot, Job, Layer, MarkParams, Polyline

#: mark parameters inside the grbl-marker limits (speed ≤ 200 mm/s, jump ≤ 300 mm/s)
PARAMS = MarkParams(speed_mm_s=50.0, power_pct=40.0, frequency_khz=1.0, jump_speed_mm_s=200.0)


def square_job(size: float = 10.0, params: MarkParams = PARAMS) -> Job:
    h = size / 2
    pts = ((-h, -h), (h, -h), (h, h), (-h, h), (-h, -h))
    return Job(layers=(Layer("square", params, (Polyline(pts),)),))


def zigzag_job(segments: int = 200, step: float = 0.5, params: MarkParams = PARAMS) -> Job:
    """Many short strokes and dots: fills the planner and the receive buffer."""
    prims: list[Polyline | Dot] = []
    for i in range(segments):
        x = -50 + i * step
        prims.append(Polyline(((x, -2.0), (x + step / 2, 2.0), (x + step, -2.0))))
        if i % 10 == 0:
            prims.append(Dot(x, 5.0, 0.002))
    return Job(layers=(Layer("zigzag", params, tuple(prims)),))


MATERIAL = """schema = 1
name = "grbl-test-steel"
description = "a material within the grbl-marker limits, for tests"

[text]
speed_mm_s = 40.0
power_pct = 80.0
frequency_khz = 1.0

[fill]
speed_mm_s = 60.0
power_pct = 70.0
frequency_khz = 1.0
hatch_spacing_mm = 0.08
dot_dwell_ms = 1.0
raster_line_spacing_mm = 0.08

[delays]
jump_speed_mm_s = 250.0
"""


def write_profiles(root: Path, **grbl_options: object) -> Path:
    """A profile directory with the test material and a ``grbl-test`` machine (options changed)."""
    (root / "materials").mkdir(parents=True, exist_ok=True)
    (root / "machines").mkdir(parents=True, exist_ok=True)
    (root / "materials" / "grbl-test-steel.toml").write_text(MATERIAL)
    base = (REPO / "profiles" / "machines" / "grbl-marker.toml").read_text()
    text = base.replace('name = "grbl-marker"', 'name = "grbl-test"')
    for key, value in grbl_options.items():
        lines = [ln for ln in text.splitlines() if not ln.startswith(f"{key} ")]
        text = "\n".join(lines) + "\n"
        rendered = f'"{value}"' if isinstance(value, str) else str(value)
        text = text.replace("[grbl]\n", f"[grbl]\n{key} = {rendered}\n")
    (root / "machines" / "grbl-test.toml").write_text(text)
    return root
