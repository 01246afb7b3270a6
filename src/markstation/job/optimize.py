"""Stroke order and direction: shorter jumps between strokes, same strokes.

Within each layer (the layer order is fixed, since it is the parameter order) the primitives are
reordered and polylines may be reversed. Nothing is added, dropped or altered: the multiset of
strokes, a reversed polyline counting as the same stroke, is preserved exactly.

Method, per layer, starting from where the previous layer ended (the field centre for the first):

1. **greedy nearest neighbour** over both ends of every stroke, with a uniform grid so each step
   looks at nearby cells only;
2. **chains**: consecutive strokes the greedy tour joins with a tiny jump (at most twice the median
   jump, e.g. the zig-zag of a hatch) are fused into one reversible chain; improvement moves
   never break such a link, which shrinks the problem ~10x for hatched codes;
3. **2-opt** (reverse a run of chains) and **Or-opt** (move one chain elsewhere, either way
   round), evaluated for all pairs at once with numpy (in a band of neighbouring positions for
   very long tours), applying every non-conflicting improving move per sweep, for a fixed number
   of sweeps so the result is deterministic;
4. the input order is kept when it is already at least as short (e.g. a good serpentine hatch).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from markstation.job.ir import Job, Layer, Point, Primitive

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float64]

#: improvement sweeps per layer (each applies every non-conflicting improving move it finds)
MAX_SWEEPS = 40
#: largest number of (i, j) pairs one sweep evaluates; above it, moves stay within a band
MAX_PAIRS = 1_500_000
#: smallest gain (mm) worth a move; keeps float noise from cycling
_EPS = 1e-9


def jump_length(job: Job) -> float:
    """Total travel between consecutive primitives, one pass, from the field centre (mm)."""
    return job.jump_length()


def optimize(job: Job) -> Job:
    """The same job with each layer's primitives reordered/reversed to cut the jump length."""
    pos: Point = (0.0, 0.0)
    layers: list[Layer] = []
    for layer in job.layers:
        prims = optimize_primitives(layer.primitives, start=pos)
        layers.append(Layer(layer.name, layer.params, prims))
        if prims:
            pos = prims[-1].end
    return job.with_layers(layers)


def path_jump(prims: Sequence[Primitive], start: Point) -> float:
    """Travel from ``start`` through ``prims`` in order (mm)."""
    total = 0.0
    pos = start
    for prim in prims:
        total += math.dist(pos, prim.start)
        pos = prim.end
    return total


def optimize_primitives(
    prims: Sequence[Primitive], *, start: Point = (0.0, 0.0)
) -> tuple[Primitive, ...]:
    """Reorder and reverse ``prims`` for a short jump path from ``start``; never longer than input."""
    original = tuple(prims)
    if len(original) < 2:
        return original
    starts = [p.start for p in original]
    ends = [p.end for p in original]
    order, flipped = _greedy(starts, ends, start)
    chains = _chains(order, flipped, starts, ends, start)
    if len(chains) > 2:
        chains = _improve(chains, starts, ends, start)
    result = tuple(
        original[i].reversed() if flip else original[i] for chain in chains for i, flip in chain
    )
    if path_jump(result, start) < path_jump(original, start) - _EPS:
        return result
    return original


# --- 1. greedy nearest neighbour on a grid -------------------------------------------------------


def _greedy(
    starts: Sequence[Point], ends: Sequence[Point], origin: Point
) -> tuple[list[int], list[bool]]:
    """Visit order and orientation: always the nearest free stroke end next."""
    n = len(starts)
    pts = [*starts, *ends]  # endpoint e: stroke e % n, an end point when e >= n
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    owner = [e % n for e in range(2 * n)]
    x0, y0 = min(xs), min(ys)
    w, h = max(xs) - x0, max(ys) - y0
    # about half an endpoint per cell on average: few candidates per ring
    cell = max(0.5 * math.sqrt(max(w * h, 1e-12) / n), max(w, h) / 4096, 1e-6)
    inv = 1.0 / cell
    ncx, ncy = int(w * inv) + 1, int(h * inv) + 1
    grid: dict[int, list[int]] = {}
    for e in range(2 * n):
        key = int((xs[e] - x0) * inv) * ncy + int((ys[e] - y0) * inv)
        grid.setdefault(key, []).append(e)
    used = bytearray(n)
    alive = list(range(n))
    order: list[int] = []
    flipped: list[bool] = []
    px, py = origin
    for remaining in range(n, 0, -1):
        best = -1
        best_d2 = math.inf
        fx, fy = (px - x0) * inv, (py - y0) * inv
        cx, cy = math.floor(fx), math.floor(fy)
        if 0 <= cx < ncx and 0 <= cy < ncy:
            # distance (in cells) from the point to the edge of its own cell
            margin = min(fx - cx, cx + 1 - fx, fy - cy, cy + 1 - fy)
            r = 0
            while True:
                for gx in range(max(cx - r, 0), min(cx + r, ncx - 1) + 1):
                    edge = gx in (cx - r, cx + r)
                    for gy in range(cy - r, cy + r + 1) if edge else (cy - r, cy + r):
                        if gy < 0 or gy >= ncy:
                            continue
                        bucket = grid.get(gx * ncy + gy)
                        if bucket is None:
                            continue
                        for e in bucket:
                            if used[owner[e]]:
                                continue
                            dx, dy = xs[e] - px, ys[e] - py
                            d2 = dx * dx + dy * dy
                            if d2 < best_d2 or (d2 == best_d2 and e < best):
                                best_d2, best = d2, e
                # everything not yet seen is at least (r + margin) cells away
                reach = (r + margin) * cell
                if best >= 0 and best_d2 <= reach * reach:
                    break
                if r >= cx and r >= cy and r >= ncx - 1 - cx and r >= ncy - 1 - cy:
                    reach = math.inf  # the rings covered the whole grid
                    break
                r += 1
                if 4 * r * r > 2 * remaining:
                    break
            if best >= 0 and best_d2 > reach * reach:
                best = -1  # not proven nearest: fall back to the scan below
                best_d2 = math.inf
        if best < 0:
            # far from everything that is left: a plain scan is cheaper than more rings
            alive = [i for i in alive if not used[i]]
            for i in alive:
                for e in (i, i + n):
                    dx, dy = xs[e] - px, ys[e] - py
                    d2 = dx * dx + dy * dy
                    if d2 < best_d2 or (d2 == best_d2 and e < best):
                        best_d2, best = d2, e
        i = owner[best]
        flip = best >= n  # entered at its end point: traverse reversed
        used[i] = 1
        order.append(i)
        flipped.append(flip)
        px, py = starts[i] if flip else ends[i]
    return order, flipped


# --- 2. chains -------------------------------------------------------------------------------------

Chain = list[tuple[int, bool]]


def _entry(i: int, flip: bool, starts: Sequence[Point], ends: Sequence[Point]) -> Point:
    return ends[i] if flip else starts[i]


def _exit(i: int, flip: bool, starts: Sequence[Point], ends: Sequence[Point]) -> Point:
    return starts[i] if flip else ends[i]


def _chains(
    order: list[int],
    flipped: list[bool],
    starts: Sequence[Point],
    ends: Sequence[Point],
    origin: Point,
) -> list[Chain]:
    """Split the greedy tour where the jump is more than twice the median jump."""
    jumps = [
        math.dist(
            _exit(order[k - 1], flipped[k - 1], starts, ends),
            _entry(order[k], flipped[k], starts, ends),
        )
        for k in range(1, len(order))
    ]
    limit = 2.0 * sorted(jumps)[len(jumps) // 2] if jumps else 0.0
    chains: list[Chain] = [[(order[0], flipped[0])]]
    for k in range(1, len(order)):
        if jumps[k - 1] > limit:
            chains.append([])
        chains[-1].append((order[k], flipped[k]))
    return chains


def _reverse_chain(chain: Chain) -> Chain:
    return [(i, not flip) for i, flip in reversed(chain)]


# --- 3. 2-opt and Or-opt over chains ----------------------------------------------------------------


def _improve(
    chains: list[Chain], starts: Sequence[Point], ends: Sequence[Point], origin: Point
) -> list[Chain]:
    import numpy as np

    def endpoints(cs: list[Chain]) -> tuple[FloatArray, FloatArray]:
        a = np.array([_entry(*c[0], starts, ends) for c in cs], dtype=np.float64)
        b = np.array([_exit(*c[-1], starts, ends) for c in cs], dtype=np.float64)
        return a, b

    o = np.array(origin, dtype=np.float64)
    for _ in range(MAX_SWEEPS):
        a, b = endpoints(chains)
        moved = _two_opt_sweep(chains, a, b, o)
        if moved:
            a, b = endpoints(chains)
        chains, relocated = _or_opt_sweep(chains, a, b, o)
        if not (moved or relocated):
            break
    return chains


def _dist(p: FloatArray, q: FloatArray) -> FloatArray:
    import numpy as np

    d: FloatArray = np.hypot(p[..., 0] - q[..., 0], p[..., 1] - q[..., 1])
    return d


def _band(m: int) -> int:
    return max(2, min(m, MAX_PAIRS // max(m, 1)))


def _two_opt_sweep(chains: list[Chain], a: FloatArray, b: FloatArray, origin: FloatArray) -> bool:
    """Reverse every non-overlapping run i..j whose reversal shortens the tour; True if any."""
    import numpy as np

    m = len(chains)
    band = _band(m)
    prev = np.vstack([origin[None, :], b[:-1]])  # exit point before chain i
    left_old = _dist(prev, a)  # jump into chain i
    i_idx = np.arange(m)[:, None]
    j_idx = i_idx + np.arange(band)[None, :]
    valid = j_idx < m
    j_c = np.minimum(j_idx, m - 1)
    has_next = j_c + 1 < m
    nxt = np.minimum(j_c + 1, m - 1)
    right_old = np.where(has_next, _dist(b[j_c], a[nxt]), 0.0)
    left_new = _dist(prev[i_idx], b[j_c])
    right_new = np.where(has_next, _dist(a[i_idx], a[nxt]), 0.0)
    gain = left_old[:, None] + right_old - left_new - right_new
    gain = np.where(valid & (j_idx > i_idx), gain, 0.0)
    candidates = np.flatnonzero(gain > _EPS)
    if candidates.size == 0:
        return False
    ranked = candidates[np.argsort(-gain.ravel()[candidates], kind="stable")]
    taken = np.zeros(m + 1, dtype=bool)  # positions whose edges a chosen move already touches
    applied = False
    for flat in ranked[:256]:
        i, k = divmod(int(flat), band)
        j = i + k
        # the move rewrites edges (i-1, i) and (j, j+1): keep runs disjoint and not touching
        if taken[i : j + 2].any():
            continue
        taken[i : j + 2] = True
        chains[i : j + 1] = [_reverse_chain(c) for c in reversed(chains[i : j + 1])]
        applied = True
    return applied


def _or_opt_sweep(
    chains: list[Chain], a: FloatArray, b: FloatArray, origin: FloatArray
) -> tuple[list[Chain], bool]:
    """Move single chains (forward or reversed) to a better gap; non-conflicting moves at once."""
    import numpy as np

    m = len(chains)
    band = _band(m + 1)
    prev = np.vstack([origin[None, :], b[:-1]])
    has_after = np.arange(m) + 1 < m
    after = np.minimum(np.arange(m) + 1, m - 1)
    # gain from taking chain i out: its two jumps replaced by one
    removal = _dist(prev, a) + np.where(has_after, _dist(b, a[after]) - _dist(prev, a[after]), 0.0)
    # gap g (0..m) lies between exit point ext[g] (origin for g = 0) and chain g's entry
    ext = np.vstack([origin[None, :], b])
    i_idx = np.arange(m)[:, None]
    g_idx = i_idx - band // 2 + np.arange(band)[None, :]
    valid = (g_idx >= 0) & (g_idx <= m) & (g_idx != i_idx) & (g_idx != i_idx + 1)
    g_c = np.clip(g_idx, 0, m)
    g_has_entry = g_c < m
    entry_g = np.minimum(g_c, m - 1)
    ext_g = ext[g_c]
    closed = np.where(g_has_entry, _dist(ext_g, a[entry_g]), 0.0)
    forward = (
        _dist(ext_g, a[i_idx]) + np.where(g_has_entry, _dist(b[i_idx], a[entry_g]), 0.0) - closed
    )
    backward = (
        _dist(ext_g, b[i_idx]) + np.where(g_has_entry, _dist(a[i_idx], a[entry_g]), 0.0) - closed
    )
    cost = np.minimum(forward, backward)
    gain = np.where(valid, removal[:, None] - cost, 0.0)
    candidates = np.flatnonzero(gain > _EPS)
    if candidates.size == 0:
        return chains, False
    ranked = candidates[np.argsort(-gain.ravel()[candidates], kind="stable")]
    # a move touches chain i's neighbours and gap g's two sides; keep those sets disjoint
    busy_chain = np.zeros(m, dtype=bool)
    busy_gap = np.zeros(m + 1, dtype=bool)
    inserts: dict[int, Chain] = {}
    removed: set[int] = set()
    for flat in ranked[:256]:
        i, k = divmod(int(flat), band)
        g = i - band // 2 + k
        lo, hi = max(0, i - 1), min(m - 1, i + 1)
        glo, ghi = max(0, g - 1), min(m - 1, g)
        if busy_chain[lo : hi + 1].any() or busy_chain[glo : ghi + 1].any():
            continue
        if busy_gap[i] or busy_gap[i + 1] or busy_gap[g]:
            continue
        busy_chain[lo : hi + 1] = True
        busy_chain[glo : ghi + 1] = True
        busy_gap[i] = busy_gap[i + 1] = busy_gap[g] = True
        reverse = bool(backward[i, k] < forward[i, k])
        inserts[g] = _reverse_chain(chains[i]) if reverse else chains[i]
        removed.add(i)
    out: list[Chain] = []
    for pos in range(m + 1):
        if pos in inserts:
            out.append(inserts[pos])
        if pos < m and pos not in removed:
            out.append(chains[pos])
    return out, True
