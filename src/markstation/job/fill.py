"""Turn a 2D symbol's module matrix into marked strokes and dots (mm, field frame, y up).

Styles:

``hatch``
    Serpentine scan lines inside each module row. Adjacent dark modules of a row merge into one
    stroke per scan line. Strokes end ``spot/2`` inside the run and the first/last scan lines of a
    row sit ``spot/2`` inside the row, so the burn (a disc of diameter ``spot_mm`` swept along the
    stroke) never leaves the dark modules.
``dots``
    One :class:`~markstation.job.ir.Dot` at the centre of each dark module, dwelling long enough
    that the burned dot is as wide as the module (the dot model below).
``outline-hatch``
    The hatch plus the outline of each 4-connected dark region (outer edges and holes) as closed
    polylines inset by ``spot/2``: crisp module edges on materials where the hatch frays.
``inverse``
    The hatch over the LIGHT modules and a quiet-zone ring of ``quiet_zone_modules``, for dark
    surfaces where the burn comes out lighter than the surface.

Guarantees (tested on random matrices), with ``r = spot_mm/2`` and ``h = max(spot_mm,
hatch_spacing_mm)/2``:

- containment: every stroke grown by ``r`` in every direction (a rectangle, so the round burn as
  well) lies inside the modules the style marks; nothing reaches a module that must stay unmarked;
- coverage: every point of a marked module lies within ``r`` of a hatch stroke along the scan
  direction (past its ends) and within ``h`` across it. With ``hatch_spacing_mm <= spot_mm`` the
  round burn therefore covers each module except the corners a round spot cannot reach at the ends
  of a run, at most ``(1 - pi/4) * spot_mm / module_mm`` of its area.

Scan lines inside a row: the row height minus the spot split into the fewest equal gaps not wider
than ``hatch_spacing_mm`` (at least two lines per row). The spot must be smaller than the module.

Dot model: a dwell of ``t`` at power ``P`` % burns a disc of diameter
``d = spot + dot_growth_mm * (P / 100) * sqrt(t / 1 ms)`` (heat spreading from the spot grows the
dot like the square root of the time), never above the material's ``dot_max_mm`` (beyond it the
surface melts and spatters instead of growing a clean dot). :func:`dot_plan` inverts it: the dwell
that makes ``d`` equal the module, at least the material's ``dot_dwell_ms``; a module wider than
``dot_max_mm`` is refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from markstation.errors import SymbolError
from markstation.i18n import _
from markstation.job.ir import Dot, Point, Polyline, Primitive
from markstation.job.symbols import ModuleMatrix

FILL_STYLES = ("hatch", "dots", "outline-hatch", "inverse")
HATCH_DIRECTIONS = ("horizontal", "vertical")

_RUN = re.compile("1+")
#: tolerance when counting scan gaps, so 0.27/0.03 = 9.000000000000002 still means 9 gaps
_EPS = 1e-9

Vertex = tuple[int, int]


def fill_modules(
    matrix: ModuleMatrix,
    *,
    module_mm: float,
    top_left: Point,
    style: str,
    hatch_spacing_mm: float,
    dot_dwell_s: float,
    quiet_zone_modules: int,
    spot_mm: float,
    direction: str = "horizontal",
    dot_diameter_mm: float = 0.0,
) -> tuple[Primitive, ...]:
    """Strokes/dots that mark ``matrix`` with its top-left corner at ``top_left`` (mm, y up).

    Rows run downwards (-y) from ``top_left``; the quiet zone lies outside that corner and only
    the ``inverse`` style marks it. ``direction`` picks horizontal or vertical scan lines;
    ``dot_diameter_mm`` is recorded on each dot (what the preview draws; 0 = the spot). Raises :class:`SymbolError` for an unknown style or direction or impossible sizes.
    """
    _check(style, module_mm, top_left, hatch_spacing_mm, dot_dwell_s, quiet_zone_modules, spot_mm)
    if direction not in HATCH_DIRECTIONS:
        raise SymbolError(
            f"hatch direction {direction!r} is not one of {', '.join(HATCH_DIRECTIONS)}"
        )
    x0, y0 = float(top_left[0]), float(top_left[1])
    m = float(module_mm)
    vertical = direction == "vertical"
    if style == "dots":
        return tuple(_dots(matrix.rows, x0, y0, m, dot_dwell_s, dot_diameter_mm))
    if style == "inverse":
        q = quiet_zone_modules
        rows = marked_rows(matrix, style, quiet_zone_modules)
        return tuple(_hatch(rows, x0 - q * m, y0 + q * m, m, spot_mm, hatch_spacing_mm, vertical))
    strokes: list[Primitive] = list(
        _hatch(matrix.rows, x0, y0, m, spot_mm, hatch_spacing_mm, vertical)
    )
    if style == "outline-hatch":
        strokes.extend(outlines(matrix.rows, x0, y0, m, spot_mm / 2))
    return tuple(strokes)


def marked_rows(matrix: ModuleMatrix, style: str, quiet_zone_modules: int) -> tuple[str, ...]:
    """Which modules a style burns ("1"), quiet-zone ring included for ``inverse``.

    For every style but ``inverse`` that is the matrix itself (no quiet zone). For ``inverse`` the
    grid is ``quiet_zone_modules`` larger on each side and its top-left corner lies that many
    modules up and left of the symbol's.
    """
    if style != "inverse":
        return matrix.rows
    q = quiet_zone_modules
    width = matrix.size[0] + 2 * q
    ring = ("1" * width,) * q
    flip = str.maketrans("01", "10")
    body = tuple("1" * q + row.translate(flip) + "1" * q for row in matrix.rows)
    return ring + body + ring


def code_bbox(
    matrix: ModuleMatrix, *, module_mm: float, top_left: Point, quiet_zone_modules: int
) -> tuple[float, float, float, float]:
    """(x_min, y_min, x_max, y_max) of the symbol with its quiet zone, as CodeRegion.bbox wants."""
    cols, rows = matrix.size
    q = quiet_zone_modules * module_mm
    x0, y0 = top_left
    return (x0 - q, y0 - rows * module_mm - q, x0 + cols * module_mm + q, y0 + q)


def scan_offsets(module_mm: float, spot_mm: float, spacing_mm: float) -> tuple[float, ...]:
    """Distances of a row's scan lines from the row's top edge, first and last ``spot/2`` inside.

    The row height minus the spot is split into the fewest equal gaps not wider than
    ``spacing_mm`` (at least one, so every row gets two lines).
    """
    span = module_mm - spot_mm
    gaps = max(1, math.ceil(span / spacing_mm - _EPS))
    step = span / gaps
    return tuple(spot_mm / 2 + i * step for i in range(gaps + 1))


# --- validation --------------------------------------------------------------------------------


def _check(
    style: str,
    module_mm: float,
    top_left: Point,
    hatch_spacing_mm: float,
    dot_dwell_s: float,
    quiet_zone_modules: int,
    spot_mm: float,
) -> None:
    if style not in FILL_STYLES:
        raise SymbolError(f"fill style {style!r} is not one of {', '.join(FILL_STYLES)}")
    numbers = {
        "module_mm": module_mm,
        "spot_mm": spot_mm,
        "top_left x": top_left[0],
        "top_left y": top_left[1],
    }
    if style == "dots":
        numbers["dot_dwell_s"] = dot_dwell_s
    else:
        numbers["hatch_spacing_mm"] = hatch_spacing_mm
    for name, value in numbers.items():
        if not math.isfinite(value):
            raise SymbolError(f"fill: {name} = {value} is not a finite number")
        if name in ("module_mm", "spot_mm", "hatch_spacing_mm", "dot_dwell_s") and value <= 0:
            raise SymbolError(f"fill: {name} = {value} must be greater than 0")
    if spot_mm >= module_mm:
        raise SymbolError(
            f"fill: the spot ({spot_mm} mm) is not smaller than the module ({module_mm} mm); "
            "the burn would spill into neighbouring modules (use a larger module_mm)"
        )
    if quiet_zone_modules < 0:
        raise SymbolError(f"fill: quiet_zone_modules = {quiet_zone_modules} must be 0 or more")


# --- hatch -------------------------------------------------------------------------------------


def _hatch(
    rows: Sequence[str],
    x0: float,
    y0: float,
    m: float,
    spot_mm: float,
    spacing_mm: float,
    vertical: bool,
) -> list[Polyline]:
    if vertical:
        # hatch the transposed grid with its corner at the origin, then map (u, v) -> (x0-v, y0-u)
        columns = ["".join(row[c] for row in rows) for c in range(len(rows[0]))] if rows else []
        return [
            Polyline(((x0 - v, y0 - ua), (x0 - v, y0 - ub)))
            for v, ua, ub in _scan_strokes(columns, 0.0, 0.0, m, spot_mm, spacing_mm)
        ]
    return [
        Polyline(((xa, y), (xb, y)))
        for y, xa, xb in _scan_strokes(rows, x0, y0, m, spot_mm, spacing_mm)
    ]


def _scan_strokes(
    rows: Sequence[str], x0: float, y0: float, m: float, spot_mm: float, spacing_mm: float
) -> list[tuple[float, float, float]]:
    """Serpentine horizontal strokes (y, x_from, x_to) over the runs of "1" in each row."""
    inset = spot_mm / 2
    offsets = scan_offsets(m, spot_mm, spacing_mm)
    out: list[tuple[float, float, float]] = []
    forward = True
    for r, line in enumerate(rows):
        spans = [
            (x0 + run.start() * m + inset, x0 + run.end() * m - inset)
            for run in _RUN.finditer(line)
        ]
        if not spans:
            continue
        backward = [(b, a) for a, b in reversed(spans)]
        top = y0 - r * m
        for off in offsets:
            y = top - off
            out.extend((y, xa, xb) for xa, xb in (spans if forward else backward))
            forward = not forward
    return out


# --- dots --------------------------------------------------------------------------------------


def dot_diameter_mm(dwell_s: float, power_pct: float, *, spot_mm: float, growth_mm: float) -> float:
    """The modelled burned-dot diameter of a dwell (see the module docstring)."""
    return spot_mm + growth_mm * max(power_pct, 0.0) / 100.0 * math.sqrt(max(dwell_s, 0.0) * 1e3)


def dot_plan(
    module_mm: float,
    *,
    spot_mm: float,
    power_pct: float,
    growth_mm: float,
    max_mm: float,
    min_dwell_s: float,
) -> tuple[float, float]:
    """(dwell_s, diameter_mm) of the dots that fill modules of ``module_mm``.

    The dwell makes the modelled dot as wide as the module, but is never shorter than
    ``min_dwell_s`` (the dot then stops at the module's width: the preview draws it no wider, as
    the module is all a dot may cover). A material whose dots do not grow (``growth_mm`` or the
    power 0) burns spot-sized dots. :class:`SymbolError` when the module is wider than the largest
    clean dot (``max_mm``).
    """
    if module_mm > max_mm + 1e-9:
        raise SymbolError(
            _(
                "fill = 'dots': a {module:g} mm module needs a {module:g} mm dot, but this "
                "material's largest clean dot is {largest:g} mm (dot_max_mm); use module_mm of "
                "at most {largest:g} or fill = 'hatch'"
            ).format(module=module_mm, largest=max_mm)
        )
    rate = growth_mm * power_pct / 100.0
    if module_mm <= spot_mm or rate <= 0:
        # dots that do not grow burn the spot: the decode check then decides (and refuses them
        # unless the spot is about as wide as the module)
        return (min_dwell_s, spot_mm)
    dwell_s = ((module_mm - spot_mm) / rate) ** 2 / 1e3
    return (max(dwell_s, min_dwell_s), module_mm)


def _dots(
    rows: Sequence[str], x0: float, y0: float, m: float, dwell_s: float, diameter_mm: float = 0.0
) -> list[Dot]:
    """A dwell at each dark module's centre, row by row in alternating order to save travel."""
    out: list[Dot] = []
    forward = True
    for r, line in enumerate(rows):
        cols = [c for c, ch in enumerate(line) if ch == "1"]
        if not cols:
            continue
        y = y0 - (r + 0.5) * m
        for c in cols if forward else reversed(cols):
            out.append(Dot(x0 + (c + 0.5) * m, y, dwell_s, diameter_mm))
        forward = not forward
    return out


# --- outlines ----------------------------------------------------------------------------------


def outlines(
    rows: Sequence[str], x0: float, y0: float, m: float, inset_mm: float
) -> list[Polyline]:
    """Closed outlines of every 4-connected "1" region (outer edges and holes), inset inwards.

    Vertices live on the integer module grid with k counting up from the bottom edge. Each edge is
    directed with the marked side on its left; where two regions touch only at a corner the walk
    turns left, which keeps diagonal neighbours apart so each inset outline stays in its region.
    """
    nrows = len(rows)
    if not nrows:
        return []
    # a ring of "0" around the grid so neighbour look-ups need no bounds checks
    pad = ["0" * (len(rows[0]) + 2), *("0" + row + "0" for row in rows), "0" * (len(rows[0]) + 2)]
    nexts: dict[Vertex, list[Vertex]] = {}
    for r, line in enumerate(rows):
        top, bottom = nrows - r, nrows - r - 1
        above, here, below = pad[r], pad[r + 1], pad[r + 2]
        for c, ch in enumerate(line):
            if ch != "1":
                continue
            # pad column c + 1 is module column c
            if below[c + 1] != "1":
                nexts.setdefault((c, bottom), []).append((c + 1, bottom))
            if here[c + 2] != "1":
                nexts.setdefault((c + 1, bottom), []).append((c + 1, top))
            if above[c + 1] != "1":
                nexts.setdefault((c + 1, top), []).append((c, top))
            if here[c] != "1":
                nexts.setdefault((c, top), []).append((c, bottom))

    base_y = y0 - nrows * m
    result: list[Polyline] = []
    for loop in _loops(nexts):
        corners = _corners(loop)
        pts: list[Point] = []
        n = len(corners)
        for i, (vx, vy) in enumerate(corners):
            px, py = corners[i - 1]
            nx, ny = corners[(i + 1) % n]
            # left normals of the incoming and outgoing edge; their sum is the mitre offset
            d1 = (_sign(vx - px), _sign(vy - py))
            d2 = (_sign(nx - vx), _sign(ny - vy))
            ox = -d1[1] - d2[1]
            oy = d1[0] + d2[0]
            pts.append((x0 + vx * m + ox * inset_mm, base_y + vy * m + oy * inset_mm))
        pts.append(pts[0])
        result.append(Polyline(tuple(pts)))
    return result


def _loops(nexts: dict[Vertex, list[Vertex]]) -> list[list[Vertex]]:
    """Follow every directed boundary edge once; each closed walk is one outline."""
    remaining = {v: list(ends) for v, ends in nexts.items()}
    loops: list[list[Vertex]] = []
    for start in sorted(nexts, key=lambda v: (-v[1], v[0])):  # top-left first, deterministic
        while remaining[start]:
            first = (start, remaining[start].pop())
            loop = [start]
            prev, cur = first
            while True:
                nxt = _next_vertex(prev, cur, nexts[cur])
                if (cur, nxt) == first:
                    break
                remaining[cur].remove(nxt)
                loop.append(cur)
                prev, cur = cur, nxt
            loops.append(loop)
    return loops


def _next_vertex(prev: Vertex, cur: Vertex, options: list[Vertex]) -> Vertex:
    """The edge that continues a walk; at a corner-touch vertex (two ways on) turn left."""
    if len(options) == 1:
        return options[0]
    dx, dy = cur[0] - prev[0], cur[1] - prev[1]
    left = (cur[0] - dy, cur[1] + dx)
    if left not in options:  # cannot happen on a module grid; fail loudly rather than mis-trace
        raise AssertionError(f"outline walk lost at {cur}")
    return left


def _corners(loop: list[Vertex]) -> list[Vertex]:
    """Drop vertices where the walk goes straight on."""
    n = len(loop)
    out = []
    for i, v in enumerate(loop):
        p, q = loop[i - 1], loop[(i + 1) % n]
        if (v[0] - p[0], v[1] - p[1]) != (q[0] - v[0], q[1] - v[1]):
            out.append(v)
    return out


def _sign(v: int) -> int:
    return (v > 0) - (v < 0)
