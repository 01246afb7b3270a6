"""Laser time (issue 14, scope 4): the secondary mark is at least 25 % faster than before, still A."""

from __future__ import annotations

import itertools
import math

from markstation.devices.estimate import device_estimate
from markstation.job.text import SIMPLIFY_MM, render_text, simplify
from markstation.preview.verify import verify_codes
from markstation.profiles import load_layout, load_machine, load_material
from markstation.verify import build_verified_job

#: the device time of the secondary mark on blued-steel before issue 14 (simulated board)
BEFORE_S = 6.44


def test_secondary_mark_on_blued_steel_is_a_quarter_faster_and_still_grades_a() -> None:
    machine = load_machine("lmc-fiber-110")
    layout = load_layout("secondary-mark")
    job = build_verified_job(
        layout.code_example, layout=layout, material=load_material("blued-steel"), machine=machine
    )
    assert device_estimate(job, machine).seconds <= 0.75 * BEFORE_S
    (check,) = verify_codes(job, machine)
    assert check.grade is not None and check.grade.score >= 4.0 - 1e-9


def test_simplified_strokes_stay_within_the_tolerance() -> None:
    circle = [(math.cos(t / 60 * math.tau), math.sin(t / 60 * math.tau)) for t in range(61)]
    kept = simplify(circle, 0.01)
    assert kept[0] == circle[0] and kept[-1] == circle[-1] and 4 < len(kept) < len(circle)
    for p in circle:  # every original point within the tolerance of the simplified polyline
        assert min(_seg(p, a, b) for a, b in itertools.pairwise(kept)) <= 0.01 + 1e-12
    shape = render_text("O8", cap_height_mm=2.0)
    assert all(len(line.points) >= 2 for line in shape.polylines) and SIMPLIFY_MM < 0.01


def _seg(p: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    vx, vy = b[0] - a[0], b[1] - a[1]
    n2 = vx * vx + vy * vy or 1e-30
    t = max(0.0, min(1.0, ((p[0] - a[0]) * vx + (p[1] - a[1]) * vy) / n2))
    return math.dist(p, (a[0] + t * vx, a[1] + t * vy))
