"""Path optimisation: same strokes, never a longer jump path, better than greedy, deterministic."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from markstation.job.ir import Dot, Job, Layer, MarkParams, Point, Polyline, Primitive
from markstation.job.layout import build_job
from markstation.job.optimize import (
    _greedy,
    jump_length,
    optimize,
    optimize_primitives,
    path_jump,
)
from markstation.profiles import load_layout, load_machine, load_material

PARAMS = MarkParams(speed_mm_s=500.0, power_pct=50.0, frequency_khz=30.0)


def stroke_key(prim: Primitive) -> tuple[str, tuple[Point, ...]]:
    """A stroke regardless of direction: the lexicographically smaller of its two orders."""
    if isinstance(prim, Dot):
        return ("D", ((prim.x, prim.y), (prim.dwell_s, 0.0)))
    return ("L", min(prim.points, prim.points[::-1]))


def multiset(
    prims: list[Primitive] | tuple[Primitive, ...],
) -> Counter[tuple[str, tuple[Point, ...]]]:
    return Counter(stroke_key(p) for p in prims)


coord = st.floats(min_value=-40, max_value=40, allow_nan=False, allow_infinity=False)
point = st.tuples(coord, coord)
polyline = st.lists(point, min_size=2, max_size=5).map(lambda pts: Polyline(tuple(pts)))
dot = st.builds(Dot, coord, coord, st.floats(min_value=1e-4, max_value=1e-2))
primitive = st.one_of(polyline, polyline, dot)


@given(st.lists(primitive, min_size=0, max_size=120), point)
def test_same_strokes_and_never_longer(prims: list[Primitive], start: Point) -> None:
    out = optimize_primitives(prims, start=start)
    assert multiset(out) == multiset(prims)
    assert path_jump(out, start) <= path_jump(prims, start) + 1e-9


@given(st.lists(st.lists(primitive, min_size=1, max_size=40), min_size=1, max_size=3))
def test_job_layers_keep_their_order_and_parameters(layers: list[list[Primitive]]) -> None:
    job = Job(
        tuple(
            Layer(f"l{i}", MarkParams(100.0 + i, 50.0, 30.0), tuple(prims))
            for i, prims in enumerate(layers)
        )
    )
    out = optimize(job)
    assert [(layer.name, layer.params) for layer in out.layers] == [
        (layer.name, layer.params) for layer in job.layers
    ]
    for before, after in zip(job.layers, out.layers, strict=True):
        assert multiset(after.primitives) == multiset(before.primitives)
    assert jump_length(out) <= jump_length(job) + 1e-9


def _random_segments(n: int, seed: int) -> list[Primitive]:
    rng = random.Random(seed)
    out: list[Primitive] = []
    for _ in range(n):
        x, y = rng.uniform(-30, 30), rng.uniform(-30, 30)
        a = rng.uniform(0, math.tau)
        length = rng.uniform(0.2, 3.0)
        out.append(Polyline(((x, y), (x + length * math.cos(a), y + length * math.sin(a)))))
    return out


def _greedy_path(prims: list[Primitive], start: Point) -> float:
    order, flipped = _greedy([p.start for p in prims], [p.end for p in prims], start)
    ordered = [prims[i].reversed() if f else prims[i] for i, f in zip(order, flipped, strict=True)]
    return path_jump(ordered, start)


def _brute_greedy_path(prims: list[Primitive], start: Point) -> float:
    """Nearest neighbour by exhaustive search, the reference for the grid version."""
    left = list(prims)
    pos = start
    total = 0.0
    while left:
        best = min(
            ((math.dist(pos, p.start), i, False) for i, p in enumerate(left))
            and [
                *((math.dist(pos, p.start), i, False) for i, p in enumerate(left)),
                *((math.dist(pos, p.end), i, True) for i, p in enumerate(left)),
            ]
        )
        d, i, flip = best
        total += d
        prim = left.pop(i)
        pos = prim.start if flip else prim.end
    return total


@pytest.mark.parametrize("seed", range(5))
def test_grid_greedy_matches_exhaustive_nearest_neighbour(seed: int) -> None:
    prims = _random_segments(150, seed)
    assert _greedy_path(prims, (0.0, 0.0)) == pytest.approx(
        _brute_greedy_path(prims, (0.0, 0.0)), rel=1e-9
    )


@pytest.mark.parametrize("seed", range(6))
def test_improves_on_greedy_nearest_neighbour(seed: int) -> None:
    prims = _random_segments(400, seed)
    greedy = _greedy_path(prims, (0.0, 0.0))
    ours = path_jump(optimize_primitives(prims), (0.0, 0.0))
    assert ours < greedy * 0.97, (ours, greedy)


def test_is_deterministic() -> None:
    prims = _random_segments(300, 42)
    assert optimize_primitives(prims) == optimize_primitives(list(prims))


def test_a_good_serpentine_is_kept_as_it_is() -> None:
    # one solid block hatched boustrophedon: already the shortest order, must stay untouched
    lines: list[Primitive] = []
    for k in range(50):
        y = 5.0 - 0.03 * k
        a, b = (-2.0, y), (2.0, y)
        lines.append(Polyline((a, b) if k % 2 == 0 else (b, a)))
    start = (-2.0, 5.0)
    assert optimize_primitives(lines, start=start) == tuple(lines)


def test_reorders_a_scrambled_hatch_into_zigzags() -> None:
    # two blocks side by side; scan lines alternate between them (the builder's row order)
    lines: list[Primitive] = []
    for k in range(40):
        y = -0.05 * k
        lines.append(Polyline(((0.0, y), (1.0, y))))
        lines.append(Polyline(((3.0, y), (4.0, y))))
    before = path_jump(lines, (0.0, 0.0))
    after = path_jump(optimize_primitives(lines), (0.0, 0.0))
    assert after < 0.1 * before


def test_secondary_mark_jump_ratio_at_most_a_half() -> None:
    import dataclasses

    layout = load_layout("secondary-mark")
    # one stroke per scan line (hatch_join = false): the many strokes the optimiser must order
    material = dataclasses.replace(load_material("blued-steel"), hatch_join=False)
    kw = {"layout": layout, "material": material, "machine": load_machine("lmc-fiber-110")}
    raw = build_job("PE-SUCAMEC-2016-000123", optimize=False, **kw)  # type: ignore[arg-type]
    opt = optimize(raw)
    assert opt.jump_length() <= 0.5 * raw.jump_length()
    # the joined hatch (the default) jumps less still, and ordering never lengthens it
    kw["material"] = load_material("blued-steel")
    joined = build_job("PE-SUCAMEC-2016-000123", optimize=False, **kw)  # type: ignore[arg-type]
    assert optimize(joined).jump_length() <= min(joined.jump_length(), opt.jump_length())


def test_trivial_inputs() -> None:
    assert optimize_primitives([]) == ()
    one = Polyline(((1.0, 1.0), (2.0, 2.0)))
    assert optimize_primitives([one]) == (one,)
    assert optimize(Job(())) == Job(())
