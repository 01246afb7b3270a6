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
    IntArray = npt.NDArray[np.int64]

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
    """The same job with each layer's primitives reordered/reversed to cut the jump length.

    Each layer is ordered from where the one before ended; a layer that ends elsewhere can make
    the next layer's first jump longer, so the whole job falls back to its input order when that
    is not longer in total."""
    pos: Point = (0.0, 0.0)
    layers: list[Layer] = []
    for layer in job.layers:
        prims = optimize_primitives(layer.primitives, start=pos)
        layers.append(Layer(layer.name, layer.params, prims))
        if prims:
            pos = prims[-1].end
    out = job.with_layers(layers)
    if out.jump_length() > job.jump_length() + _EPS:
        return job
    return out


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
    tour = [[(i, f)] for i, f in zip(order, flipped, strict=True)]
    chains = _chains(tour, starts, ends)
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
    # fine cells (about half an endpoint each) for the precomputed near lists ...
    fine = max(0.5 * math.sqrt(max(w * h, 1e-12) / n), max(w, h) / 4096, 1e-6)
    near, indptr = _near_lists(
        xs, ys, owner, (x0, y0), fine, (int(w / fine) + 1, int(h / fine) + 1)
    )
    # ... coarse cells (about four endpoints each) for the ring search when a list runs dry
    cell = 4 * fine
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
    current = -1  # the endpoint we stand on (-1: the origin)
    for remaining in range(n, 0, -1):
        best = -1
        best_d2 = math.inf
        if current >= 0:
            # the precomputed nearest endpoints, closest first: the first free one is the answer
            for e in near[indptr[current] : indptr[current + 1]]:
                if not used[owner[e]]:
                    best = e
                    break
        if best < 0:
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
        current = i if flip else i + n  # we leave the stroke at its other end
    return order, flipped


def _near_lists(
    xs: list[float],
    ys: list[float],
    owner: list[int],
    corner: Point,
    cell: float,
    cells: tuple[int, int],
    keep: int = 12,
) -> tuple[list[int], list[int]]:
    """For every endpoint, up to ``keep`` nearest endpoints of other strokes, nearest first.

    Only candidates that are provably complete are listed: those within the radius around the
    point that the 3 x 3 block of grid cells fully covers. So the first free entry of a list is
    the exact nearest free endpoint; an exhausted list means "search further" (the caller's
    ring search). Candidate pairs come from the grid with numpy, no Python loop per pair.
    """
    import numpy as np

    ncx, ncy = cells
    x = np.asarray(xs)
    y = np.asarray(ys)
    own = np.asarray(owner)
    fx = (x - corner[0]) / cell
    fy = (y - corner[1]) / cell
    ix = np.minimum(fx.astype(np.int64), ncx - 1)
    iy = np.minimum(fy.astype(np.int64), ncy - 1)
    key = ix * ncy + iy
    by_cell = np.argsort(key, kind="stable")
    # cell_start[k]..cell_start[k + 1]: the endpoints of cell k within by_cell
    cell_start = np.searchsorted(key[by_cell], np.arange(ncx * ncy + 1))
    margin = np.minimum.reduce([fx - ix, ix + 1 - fx, fy - iy, iy + 1 - fy])
    reach2 = ((1.0 + margin) * cell) ** 2
    everyone = np.arange(len(xs))
    src_parts = []
    dst_parts = []
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            nx, ny = ix + dx, iy + dy
            ok = (nx >= 0) & (nx < ncx) & (ny >= 0) & (ny < ncy)
            target = np.where(ok, nx * ncy + ny, 0)
            lo = cell_start[target]
            counts = np.where(ok, cell_start[target + 1] - lo, 0)
            src = np.repeat(everyone, counts)
            offsets = np.arange(len(src)) - np.repeat(np.cumsum(counts) - counts, counts)
            src_parts.append(src)
            dst_parts.append(by_cell[np.repeat(lo, counts) + offsets])
    src = np.concatenate(src_parts)
    dst = np.concatenate(dst_parts)
    d2 = (x[dst] - x[src]) ** 2 + (y[dst] - y[src]) ** 2
    good = (own[dst] != own[src]) & (d2 <= reach2[src])
    src, dst, d2 = src[good], dst[good], d2[good]
    order = np.lexsort((dst, d2, src))
    src, dst = src[order], dst[order]
    first = np.searchsorted(src, np.arange(len(xs)), side="left")
    rank = np.arange(len(src)) - first[src]
    short = rank < keep
    src, dst = src[short], dst[short]
    indptr = np.searchsorted(src, np.arange(len(xs) + 1), side="left")
    return dst.tolist(), indptr.tolist()


# --- 2. chains -------------------------------------------------------------------------------------

Chain = list[tuple[int, bool]]


def _entry(i: int, flip: bool, starts: Sequence[Point], ends: Sequence[Point]) -> Point:
    return ends[i] if flip else starts[i]


def _exit(i: int, flip: bool, starts: Sequence[Point], ends: Sequence[Point]) -> Point:
    return starts[i] if flip else ends[i]


def _chains(tour: list[Chain], starts: Sequence[Point], ends: Sequence[Point]) -> list[Chain]:
    """Join consecutive units of the greedy tour unless the jump is over twice the median jump."""
    jumps = [
        math.dist(_exit(*tour[k - 1][-1], starts, ends), _entry(*tour[k][0], starts, ends))
        for k in range(1, len(tour))
    ]
    limit = 2.0 * sorted(jumps)[len(jumps) // 2] if jumps else 0.0
    chains: list[Chain] = [list(tour[0])]
    for k in range(1, len(tour)):
        if jumps[k - 1] > limit:
            chains.append([])
        chains[-1].extend(tour[k])
    return chains


def _reverse_chain(chain: Chain) -> Chain:
    return [(i, not flip) for i, flip in reversed(chain)]


# --- 3. 2-opt and Or-opt over chains ----------------------------------------------------------------

#: up to this many chains the distances between all chain ends are computed once, up front
MATRIX_CHAINS = 400


class _Tour:
    """Chains in visiting order, each possibly reversed, over a fixed table of end points.

    Point index ``2c`` / ``2c + 1`` is chain c's first / last end as built, ``2m`` the start
    point and ``2m + 1`` a sentinel "nowhere" whose distance to everything is 0 (the open end
    of the tour). ``dist`` works on index arrays of any shape.
    """

    def __init__(
        self, chains: list[Chain], starts: Sequence[Point], ends: Sequence[Point], origin: Point
    ) -> None:
        import numpy as np

        m = len(chains)
        pts = []
        for chain in chains:
            pts.append(_entry(*chain[0], starts, ends))
            pts.append(_exit(*chain[-1], starts, ends))
        pts.append(origin)
        pts.append(origin)  # the sentinel's coordinates do not matter
        xy = np.asarray(pts, dtype=np.float64)
        self.m = m
        self.x = xy[:, 0]
        self.y = xy[:, 1]
        self.origin = 2 * m
        self.sentinel = 2 * m + 1
        self.order = np.arange(m)
        self.rev = np.zeros(m, dtype=np.int64)
        self.matrix: FloatArray | None = None
        if m <= MATRIX_CHAINS:
            d = np.hypot(self.x[:, None] - self.x[None, :], self.y[:, None] - self.y[None, :])
            d[self.sentinel, :] = 0.0
            d[:, self.sentinel] = 0.0
            self.matrix = d

    def dist(self, p: IntArray, q: IntArray) -> FloatArray:
        import numpy as np

        if self.matrix is not None:
            out: FloatArray = self.matrix[p, q]
            return out
        pa, qa = np.asarray(p), np.asarray(q)
        d: FloatArray = np.hypot(self.x[pa] - self.x[qa], self.y[pa] - self.y[qa])
        return np.where((pa == self.sentinel) | (qa == self.sentinel), 0.0, d)

    def ends(self) -> tuple[IntArray, IntArray]:
        """Entry and exit point indices of the chains in visiting order."""
        first = 2 * self.order
        r = self.rev[self.order]
        return first + r, first + 1 - r

    def chains(self, chains: list[Chain]) -> list[Chain]:
        return [
            _reverse_chain(chains[c]) if self.rev[c] else chains[c] for c in self.order.tolist()
        ]


def _improve(
    chains: list[Chain], starts: Sequence[Point], ends: Sequence[Point], origin: Point
) -> list[Chain]:
    tour = _Tour(chains, starts, ends, origin)
    for _ in range(MAX_SWEEPS):
        moved = _two_opt_sweep(tour)
        relocated = _or_opt_sweep(tour)
        if not (moved or relocated):
            break
    return tour.chains(chains)


def _band(m: int) -> int:
    return max(2, min(m, MAX_PAIRS // max(m, 1)))


def _ranked(gain: FloatArray, limit: int = 256) -> list[int]:
    """Flat indices of the positive gains, largest first (stable, so deterministic)."""
    import numpy as np

    flat = gain.ravel()
    candidates = np.flatnonzero(flat > _EPS)
    if candidates.size == 0:
        return []
    ranked = candidates[np.argsort(-flat[candidates], kind="stable")]
    result: list[int] = ranked[:limit].tolist()
    return result


def _two_opt_sweep(tour: _Tour) -> bool:
    """Reverse every non-overlapping run i..j whose reversal shortens the tour; True if any."""
    import numpy as np

    m = tour.m
    band = _band(m)
    a, b = tour.ends()
    prev = np.concatenate(([tour.origin], b[:-1]))
    nxt = np.concatenate((a[1:], [tour.sentinel]))
    i_idx = np.arange(m)[:, None]
    j_idx = i_idx + np.arange(band)[None, :]
    j_c = np.minimum(j_idx, m - 1)
    ai, pi = a[i_idx], prev[i_idx]
    bj, nj = b[j_c], nxt[j_c]
    gain = tour.dist(pi, ai) + tour.dist(bj, nj) - tour.dist(pi, bj) - tour.dist(ai, nj)
    gain = np.where((j_idx < m) & (j_idx > i_idx), gain, 0.0)
    taken = np.zeros(m + 1, dtype=bool)  # positions whose edges a chosen move already touches
    applied = False
    for flat in _ranked(gain):
        i, k = divmod(flat, band)
        j = i + k
        # the move rewrites edges (i-1, i) and (j, j+1): keep runs disjoint and not touching
        if taken[i : j + 2].any():
            continue
        taken[i : j + 2] = True
        run = tour.order[i : j + 1][::-1].copy()
        tour.order[i : j + 1] = run
        tour.rev[run] ^= 1
        applied = True
    return applied


def _or_opt_sweep(tour: _Tour) -> bool:
    """Move single chains (either way round) to a better gap; non-conflicting moves at once."""
    import numpy as np

    m = tour.m
    band = _band(m + 1)
    a, b = tour.ends()
    prev = np.concatenate(([tour.origin], b[:-1]))
    nxt = np.concatenate((a[1:], [tour.sentinel]))
    # gain from taking chain i out: its two jumps replaced by one
    removal = tour.dist(prev, a) + tour.dist(b, nxt) - tour.dist(prev, nxt)
    # gap g (0..m) lies between exit point gap_exit[g] and entry point gap_entry[g]
    gap_exit = np.concatenate(([tour.origin], b))
    gap_entry = np.concatenate((a, [tour.sentinel]))
    i_idx = np.arange(m)[:, None]
    g_idx = i_idx - band // 2 + np.arange(band)[None, :]
    g_c = np.clip(g_idx, 0, m)
    ge, gn = gap_exit[g_c], gap_entry[g_c]
    ai, bi = a[i_idx], b[i_idx]
    closed = tour.dist(ge, gn)
    forward = tour.dist(ge, ai) + tour.dist(bi, gn) - closed
    backward = tour.dist(ge, bi) + tour.dist(ai, gn) - closed
    valid = (g_idx >= 0) & (g_idx <= m) & (g_idx != i_idx) & (g_idx != i_idx + 1)
    gain = np.where(valid, removal[:, None] - np.minimum(forward, backward), 0.0)
    ranked = _ranked(gain)
    if not ranked:
        return False
    # a move touches chain i's neighbours and gap g's two sides; keep those sets disjoint
    busy_chain = np.zeros(m, dtype=bool)
    busy_gap = np.zeros(m + 1, dtype=bool)
    inserts: dict[int, tuple[int, bool]] = {}
    removed: set[int] = set()
    for flat in ranked:
        i, k = divmod(flat, band)
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
        inserts[g] = (i, bool(backward[i, k] < forward[i, k]))
        removed.add(i)
    order = tour.order.tolist()
    new_order: list[int] = []
    for pos in range(m + 1):
        if pos in inserts:
            i, flip = inserts[pos]
            new_order.append(order[i])
            if flip:
                tour.rev[order[i]] ^= 1
        if pos < m and pos not in removed:
            new_order.append(order[pos])
    tour.order = np.asarray(new_order, dtype=np.int64)
    return True
