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
from typing import TYPE_CHECKING, NamedTuple

from markstation.errors import SymbolError
from markstation.i18n import _
from markstation.job.ir import Dot, Point, Polyline, Primitive
from markstation.job.symbols import ModuleMatrix

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

FILL_STYLES = ("hatch", "dots", "outline-hatch", "inverse")
HATCH_DIRECTIONS = ("horizontal", "vertical")

_RUN = re.compile("1+")
#: tolerance when counting scan gaps, so 0.27/0.03 = 9.000000000000002 still means 9 gaps
_EPS = 1e-9

Vertex = tuple[int, int]


class HatchGrid(NamedTuple):
    """What every hatch of one grid takes: the modules to burn (``rows``, "1" = burn, top row
    first) with the grid's top-left corner at (``x0``, ``y0``) mm (rows run down, -y), modules of
    ``m`` mm, a spot of ``spot_mm`` and scan lines at most ``spacing_mm`` apart."""

    rows: Sequence[str]
    x0: float
    y0: float
    m: float
    spot_mm: float
    spacing_mm: float

    def columns(self) -> list[str]:
        """The grid transposed: each column top to bottom, left column first."""
        rows = self.rows
        return ["".join(row[c] for row in rows) for c in range(len(rows[0]))] if rows else []


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
    angle_deg: float | None = None,
    cross_angle_deg: float | None = None,
    join: bool = False,
    outline: bool = True,
) -> tuple[Primitive, ...]:
    """Strokes/dots that mark ``matrix`` with its top-left corner at ``top_left`` (mm, y up).

    Rows run downwards (-y) from ``top_left``; the quiet zone lies outside that corner and only
    the ``inverse`` style marks it. ``direction`` picks horizontal or vertical scan lines, unless
    ``angle_deg`` is given: the scan-line angle in the symbol's frame (0 = along the rows, 90 =
    along the columns; other angles clip scan lines to the marked modules, see
    :func:`angled_strokes`). ``cross_angle_deg`` adds a second hatch at that angle (cross-hatch).
    ``join`` turns each run of dark modules in a row (or column) into one serpentine polyline
    through all its scan lines (:func:`serpentine_blocks`) instead of one stroke per scan line.
    ``outline = False`` leaves the outlines of ``outline-hatch`` out (the builder puts them in a
    layer of their own to mark them first or last). ``dot_diameter_mm`` is recorded on each dot
    (what the preview draws; 0 = the spot). Raises :class:`SymbolError` for an unknown style or
    direction or impossible sizes.
    """
    _check(style, module_mm, top_left, hatch_spacing_mm, dot_dwell_s, quiet_zone_modules, spot_mm)
    if direction not in HATCH_DIRECTIONS:
        raise SymbolError(
            _("hatch direction {direction!r} is not one of {join}").format(
                direction=direction, join=", ".join(HATCH_DIRECTIONS)
            )
        )
    for name, value in (("angle_deg", angle_deg), ("cross_angle_deg", cross_angle_deg)):
        if value is not None and not math.isfinite(value):
            raise SymbolError(
                _("fill: {name} = {value} is not a finite number").format(name=name, value=value)
            )
    x0, y0 = float(top_left[0]), float(top_left[1])
    m = float(module_mm)
    if style == "dots":
        return tuple(_dots(matrix.rows, x0, y0, m, dot_dwell_s, dot_diameter_mm))
    rows = marked_rows(matrix, style, quiet_zone_modules)
    if style == "inverse":
        q = quiet_zone_modules
        x0, y0 = x0 - q * m, y0 + q * m
    angles: list[float | str] = [direction if angle_deg is None else angle_deg]
    if cross_angle_deg is not None:
        angles.append(cross_angle_deg)
    grid = HatchGrid(rows, x0, y0, m, spot_mm, hatch_spacing_mm)
    strokes: list[Primitive] = []
    for angle in angles:
        strokes.extend(_hatch_at(grid, angle, join))
    if style == "outline-hatch" and outline:
        strokes.extend(outlines(matrix.rows, x0, y0, m, spot_mm / 2))
    return tuple(strokes)


def hatch_direction(angle_deg: float) -> str | None:
    """ "horizontal" or "vertical" for an angle along the rows or columns (mod 180°), else None."""
    folded = angle_deg % 180.0
    if min(folded, 180.0 - folded) < 1e-9:
        return "horizontal"
    if abs(folded - 90.0) < 1e-9:
        return "vertical"
    return None


def _hatch_at(grid: HatchGrid, angle: float | str, join: bool) -> list[Polyline]:
    direction = angle if isinstance(angle, str) else hatch_direction(angle)
    if direction is None:
        assert not isinstance(angle, str)
        return angled_strokes(grid, angle)
    vertical = direction == "vertical"
    if join:
        return serpentine_blocks(grid, vertical)
    return _hatch(grid, vertical)


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
        raise SymbolError(
            _("fill style {style!r} is not one of {join}").format(
                style=style, join=", ".join(FILL_STYLES)
            )
        )
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
            raise SymbolError(
                _("fill: {name} = {value} is not a finite number").format(name=name, value=value)
            )
        if name in ("module_mm", "spot_mm", "hatch_spacing_mm", "dot_dwell_s") and value <= 0:
            raise SymbolError(
                _("fill: {name} = {value} must be greater than 0").format(name=name, value=value)
            )
    if spot_mm >= module_mm:
        raise SymbolError(
            _(
                "fill: the spot ({spot_mm} mm) is not smaller than the module ({module_mm} mm); the burn would spill into neighbouring modules (use a larger module_mm)"
            ).format(spot_mm=spot_mm, module_mm=module_mm)
        )
    if quiet_zone_modules < 0:
        raise SymbolError(
            _("fill: quiet_zone_modules = {quiet_zone_modules} must be 0 or more").format(
                quiet_zone_modules=quiet_zone_modules
            )
        )


# --- hatch -------------------------------------------------------------------------------------


def _hatch(grid: HatchGrid, vertical: bool) -> list[Polyline]:
    rows, x0, y0, m, spot_mm, spacing_mm = grid
    if vertical:
        # hatch the transposed grid with its corner at the origin, then map (u, v) -> (x0-v, y0-u)
        columns = grid.columns()
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


def serpentine_blocks(grid: HatchGrid, vertical: bool) -> list[Polyline]:
    """The hatch as few, long polylines: each run of dark modules in a row is one serpentine.

    Within a run the scan lines are those of the per-stroke hatch (:func:`scan_offsets`, strokes
    ``spot/2`` inside the run), joined at the run's ends by steps of one scan pitch that lie on the
    run's first or last column, so the burn is the per-stroke hatch's plus these steps (inside the
    run). A run that starts or ends on the same column edge as the run below it continues into it
    with a step of one spot across the row boundary (both modules of that column are dark): a
    whole finder-pattern column is one polyline. Each polyline costs one laser-on/off and one jump
    instead of one per scan line. ``vertical`` does the same over the columns.
    """
    _rows, x0, y0, m, spot_mm, spacing_mm = grid
    lines: Sequence[str] = grid.columns() if vertical else grid.rows
    ox, oy = (0.0, 0.0) if vertical else (x0, y0)
    inset = spot_mm / 2
    offsets = scan_offsets(m, spot_mm, spacing_mm)
    even = len(offsets) % 2 == 0
    runs = [[(run.start(), run.end()) for run in _RUN.finditer(line)] for line in lines]
    chains: list[list[Point]] = []
    # exit edge of the chains that ended on the row above: ("L", column) or ("R", column + 1)
    above: dict[tuple[str, int], int] = {}
    for r, row_runs in enumerate(runs):
        below = runs[r + 1] if r + 1 < len(runs) else []
        below_left = {a for a, _ in below}
        below_right = {b for _, b in below}
        here: dict[tuple[str, int], int] = {}
        for a, b in row_runs:
            if ("L", a) in above:
                index, left = above.pop(("L", a)), True
            elif ("R", b) in above:
                index, left = above.pop(("R", b)), False
            else:
                index = len(chains)
                chains.append([])
                # start on the side whose exit edge the run below shares, if any
                if even:
                    left = a in below_left or b not in below_right
                else:
                    left = b in below_right or a not in below_left
            xa, xb = ox + a * m + inset, ox + b * m - inset
            top = oy - r * m
            pts = chains[index]
            go_right = left
            for off in offsets:
                y = top - off
                pts.extend(((xa, y), (xb, y)) if go_right else ((xb, y), (xa, y)))
                go_right = not go_right
            exits_left = left if even else not left
            here[("L", a) if exits_left else ("R", b)] = index
        above = here
    if vertical:
        return [Polyline(tuple((x0 - v, y0 - u) for u, v in pts)) for pts in chains]
    return [Polyline(tuple(pts)) for pts in chains]


def angled_strokes(grid: HatchGrid, angle_deg: float) -> list[Polyline]:
    """Serpentine scan lines at ``angle_deg`` (symbol frame, counter-clockwise from the rows),
    clipped to the dark modules.

    A point may carry the spot when the square of half-side ``spot/2`` around it lies in dark
    modules, i.e. outside every light module grown by ``spot/2`` (the ring of modules around the
    grid counts as light): each scan line is the symbol's box minus those grown light modules.
    The lines are ``spot/2`` inside the box's extent across them and at most ``spacing_mm``
    apart; pieces shorter than a tenth of the spot are dropped. Adjacent dark modules along a
    line merge into one stroke, as in the axis-aligned hatch.
    """
    import numpy as np

    rows, x0, y0, m, spot_mm, spacing_mm = grid
    nrows = len(rows)
    ncols = len(rows[0]) if nrows else 0
    if not any("1" in row for row in rows):
        return []
    r = spot_mm / 2
    theta = math.radians(angle_deg)
    dx, dy = math.cos(theta), math.sin(theta)
    nx, ny = -dy, dx
    light_r, light_c = [], []
    for rr in range(-1, nrows + 1):
        for cc in range(-1, ncols + 1):
            if not (0 <= rr < nrows and 0 <= cc < ncols and rows[rr][cc] == "1"):
                light_r.append(rr)
                light_c.append(cc)
    lr = np.array(light_r, dtype=np.float64)
    lc = np.array(light_c, dtype=np.float64)
    rect = np.stack(
        [x0 + lc * m - r, x0 + (lc + 1) * m + r, y0 - (lr + 1) * m - r, y0 - lr * m + r], axis=1
    )
    box = np.array([[x0, x0 + ncols * m, y0 - nrows * m, y0]])
    corners = [(x, y) for x in box[0, :2] for y in box[0, 2:]]
    s_lo = min(x * nx + y * ny for x, y in corners)
    s_hi = max(x * nx + y * ny for x, y in corners)
    span = s_hi - s_lo - spot_mm
    gaps = max(1, math.ceil(span / spacing_mm - _EPS))
    s = s_lo + r + np.arange(gaps + 1) * (span / gaps)

    def slabs(rects: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], ...]:
        # t-interval of every (line, rectangle) pair: p(t) = s*n + t*d
        lo = np.full((len(s), len(rects)), -np.inf)
        hi = np.full((len(s), len(rects)), np.inf)
        for axis, (du, nu) in enumerate(((dx, nx), (dy, ny))):
            a = rects[None, :, 2 * axis]
            b = rects[None, :, 2 * axis + 1]
            base = (s * nu)[:, None]
            if abs(du) > 1e-12:
                t1, t2 = (a - base) / du, (b - base) / du
                lo = np.maximum(lo, np.minimum(t1, t2))
                hi = np.minimum(hi, np.maximum(t1, t2))
            else:
                outside = (base <= a) | (base >= b)
                lo = np.where(outside, np.inf, lo)
        return lo, hi

    box_lo, box_hi = slabs(box)
    cut_lo, cut_hi = slabs(rect)
    shortest = spot_mm / 10
    out: list[Polyline] = []
    forward = True
    for k in range(len(s)):
        t0, t1 = float(box_lo[k, 0]), float(box_hi[k, 0])
        if not t0 < t1:
            continue
        hits = np.flatnonzero(cut_lo[k] < cut_hi[k])
        cuts = sorted(zip(cut_lo[k, hits].tolist(), cut_hi[k, hits].tolist(), strict=True))
        pieces: list[tuple[float, float]] = []
        pos = t0
        for a, b in cuts:
            if a > pos:
                pieces.append((pos, min(a, t1)))
            pos = max(pos, b)
            if pos >= t1:
                break
        if pos < t1:
            pieces.append((pos, t1))
        pieces = [(a, b) for a, b in pieces if b - a >= shortest]
        if not pieces:
            continue
        sk = float(s[k])
        bx, by = sk * nx, sk * ny
        strokes = [((bx + a * dx, by + a * dy), (bx + b * dx, by + b * dy)) for a, b in pieces]
        if not forward:
            strokes = [(q, p) for p, q in reversed(strokes)]
        out.extend(Polyline(st) for st in strokes)
        forward = not forward
    return out


# --- dots --------------------------------------------------------------------------------------


def dot_diameter_mm(
    dwell_s: float,
    power_pct: float,
    *,
    spot_mm: float,
    growth_mm: float,
    max_mm: float = math.inf,
) -> float:
    """The modelled burned-dot diameter of a dwell (see the module docstring).

    With ``max_mm`` (the material's ``dot_max_mm``) the dot stops growing there, as the model
    says; never below the spot. The one formula: the job builder inverts it (:func:`dot_plan`),
    the simulators draw what they burned with it (``markstation.devices.sim.render``).
    """
    grown = spot_mm + growth_mm * max(power_pct, 0.0) / 100.0 * math.sqrt(max(dwell_s, 0.0) * 1e3)
    return min(grown, max(max_mm, spot_mm))


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
    ``min_dwell_s``; a longer minimum dwell burns a wider dot, and the diameter says so (up to
    ``max_mm``), so the preview and the decode check see the overlap the burn will have. A
    material whose dots do not grow (``growth_mm`` or the power 0) burns spot-sized dots.
    :class:`SymbolError` when the module is wider than the largest clean dot (``max_mm``).
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
    if dwell_s >= min_dwell_s:
        return (dwell_s, module_mm)
    # the machine cannot dwell that briefly: the dot grows past the module
    grown = dot_diameter_mm(
        min_dwell_s, power_pct, spot_mm=spot_mm, growth_mm=growth_mm, max_mm=max_mm
    )
    return (min_dwell_s, max(grown, module_mm))


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
