"""SVG path data (the ``d`` attribute) → polylines, curves flattened to a distance tolerance.

Pure: a string in, lists of points out, ValueError with the offset for malformed data. Handles every
SVG 1.1 command, absolute and relative: M L H V C S Q T A Z. Coordinates stay in the path's own
units and orientation.
"""

from __future__ import annotations

import itertools
import math
import re

from markstation.job.ir import Point

_COMMANDS = "MmLlHhVvCcSsQqTtAaZz"
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_SEPARATORS = " \t\r\n,"
_ARGS = {"M": 2, "L": 2, "H": 1, "V": 1, "C": 6, "S": 4, "Q": 4, "T": 2, "A": 7, "Z": 0}
_MAX_DEPTH = 18


class _Scanner:
    def __init__(self, d: str) -> None:
        self.d = d
        self.i = 0

    def skip(self) -> None:
        while self.i < len(self.d) and self.d[self.i] in _SEPARATORS:
            self.i += 1

    def at_end(self) -> bool:
        self.skip()
        return self.i >= len(self.d)

    def peek_command(self) -> str | None:
        self.skip()
        if self.i < len(self.d) and self.d[self.i] in _COMMANDS:
            return self.d[self.i]
        return None

    def command(self) -> str:
        ch = self.peek_command()
        if ch is None:
            raise ValueError(f"expected a path command at offset {self.i}")
        self.i += 1
        return ch

    def number(self) -> float:
        self.skip()
        match = _NUMBER.match(self.d, self.i)
        if not match:
            raise ValueError(f"expected a number at offset {self.i}")
        self.i = match.end()
        return float(match.group())

    def flag(self) -> float:
        # arc flags may be written without separators ("a1 1 0 00 10 10")
        self.skip()
        if self.i < len(self.d) and self.d[self.i] in "01":
            self.i += 1
            return float(self.d[self.i - 1])
        raise ValueError(f"expected an arc flag 0 or 1 at offset {self.i}")

    def has_number(self) -> bool:
        self.skip()
        return self.i < len(self.d) and _NUMBER.match(self.d, self.i) is not None


def _flat_enough(points: tuple[Point, ...], tolerance: float) -> bool:
    """True when every control point lies within tolerance of the chord segment.

    The curve lies in the convex hull of its control points, so it then stays within tolerance of
    the chord too (the distance is to the segment, not the line, to catch overshooting ends).
    """
    (x0, y0), (x1, y1) = points[0], points[-1]
    dx, dy = x1 - x0, y1 - y0
    length2 = dx * dx + dy * dy
    for px, py in points[1:-1]:
        t = 0.0 if length2 == 0 else ((px - x0) * dx + (py - y0) * dy) / length2
        t = min(1.0, max(0.0, t))
        if math.hypot(px - (x0 + t * dx), py - (y0 + t * dy)) > tolerance:
            return False
    return True


def _split(points: tuple[Point, ...]) -> tuple[tuple[Point, ...], tuple[Point, ...]]:
    """de Casteljau split of a Bézier at t = 0.5."""
    left = [points[0]]
    right = [points[-1]]
    level = list(points)
    while len(level) > 1:
        level = [((a[0] + b[0]) / 2, (a[1] + b[1]) / 2) for a, b in itertools.pairwise(level)]
        left.append(level[0])
        right.append(level[-1])
    return tuple(left), tuple(reversed(right))


def flatten_bezier(points: tuple[Point, ...], tolerance: float, depth: int = 0) -> list[Point]:
    """Points along a Bézier (any degree) after its start point, within ``tolerance``."""
    if depth >= _MAX_DEPTH or _flat_enough(points, tolerance):
        return [points[-1]]
    left, right = _split(points)
    return flatten_bezier(left, tolerance, depth + 1) + flatten_bezier(right, tolerance, depth + 1)


def flatten_arc(
    start: Point,
    radii: Point,
    rotation_deg: float,
    large_arc: bool,
    sweep: bool,
    end: Point,
    tolerance: float,
) -> list[Point]:
    """Points along an SVG elliptical arc after its start point (SVG 1.1 implementation notes F.6)."""
    rx, ry = abs(radii[0]), abs(radii[1])
    if rx < 1e-12 or ry < 1e-12 or math.dist(start, end) < 1e-12:
        return [end]
    phi = math.radians(rotation_deg)
    cos_p, sin_p = math.cos(phi), math.sin(phi)
    hx, hy = (start[0] - end[0]) / 2, (start[1] - end[1]) / 2
    x1p, y1p = cos_p * hx + sin_p * hy, -sin_p * hx + cos_p * hy
    grow = (x1p / rx) ** 2 + (y1p / ry) ** 2
    if grow > 1:  # radii too small for the endpoints: scale them up as the spec says
        rx, ry = rx * math.sqrt(grow), ry * math.sqrt(grow)
    num = rx * rx * ry * ry - rx * rx * y1p * y1p - ry * ry * x1p * x1p
    den = rx * rx * y1p * y1p + ry * ry * x1p * x1p
    coef = math.sqrt(max(0.0, num / den)) if den > 0 else 0.0
    if large_arc == sweep:
        coef = -coef
    cxp, cyp = coef * rx * y1p / ry, -coef * ry * x1p / rx
    cx = cos_p * cxp - sin_p * cyp + (start[0] + end[0]) / 2
    cy = sin_p * cxp + cos_p * cyp + (start[1] + end[1]) / 2
    theta0 = math.atan2((y1p - cyp) / ry, (x1p - cxp) / rx)
    theta1 = math.atan2((-y1p - cyp) / ry, (-x1p - cxp) / rx)
    delta = theta1 - theta0
    if sweep and delta < 0:
        delta += 2 * math.pi
    elif not sweep and delta > 0:
        delta -= 2 * math.pi
    radius = max(rx, ry)
    step = 2 * math.acos(max(-1.0, 1 - tolerance / radius)) if tolerance < radius else math.pi
    count = max(2, math.ceil(abs(delta) / max(step, 1e-3)))
    out: list[Point] = []
    for k in range(1, count + 1):
        t = theta0 + delta * k / count
        ex, ey = rx * math.cos(t), ry * math.sin(t)
        out.append((cos_p * ex - sin_p * ey + cx, sin_p * ex + cos_p * ey + cy))
    out[-1] = end
    return out


def path_to_polylines(d: str, tolerance: float) -> list[list[Point]]:
    """Each drawn subpath of ``d`` as a list of points (a zero-length subpath gives one point)."""
    scan = _Scanner(d)
    paths: list[list[Point]] = []
    current: list[Point] = []
    drawn = False
    pos: Point = (0.0, 0.0)
    start: Point = (0.0, 0.0)
    last_ctrl: Point | None = None  # reflected by S / T
    last_cmd = ""

    def finish() -> None:
        nonlocal current, drawn
        if drawn and current:
            deduped = [current[0]]
            for p in current[1:]:
                if math.dist(deduped[-1], p) > 1e-12:
                    deduped.append(p)
            paths.append(deduped)
        current, drawn = [], False

    if not scan.at_end() and scan.peek_command() not in ("M", "m"):
        raise ValueError("path data must start with a moveto (M or m)")
    cmd = ""
    while not scan.at_end():
        explicit = scan.peek_command()
        if explicit is not None:
            cmd = scan.command()
        elif cmd in ("", "Z", "z"):
            raise ValueError(f"expected a path command at offset {scan.i}")
        upper = cmd.upper()
        rel = cmd.islower()
        ox, oy = pos if rel else (0.0, 0.0)
        if upper == "Z":
            if current:
                current.append(start)
                drawn = True
            finish()
            pos, last_ctrl, last_cmd = start, None, "Z"
            current = [pos]
            continue
        if upper == "A":
            rx, ry, rot = scan.number(), scan.number(), scan.number()
            large, sweep = scan.flag(), scan.flag()
            end = (scan.number() + ox, scan.number() + oy)
            current.extend(
                flatten_arc(pos, (rx, ry), rot, bool(large), bool(sweep), end, tolerance)
            )
            drawn, pos, last_ctrl = True, end, None
        else:
            args = [scan.number() for _ in range(_ARGS[upper])]
            if upper == "M":
                finish()
                pos = start = (args[0] + ox, args[1] + oy)
                current = [pos]
                last_ctrl = None
                cmd = "l" if rel else "L"  # further pairs after a moveto are linetos
            elif upper in ("L", "H", "V"):
                if upper == "L":
                    pos = (args[0] + ox, args[1] + oy)
                elif upper == "H":
                    pos = (args[0] + ox, pos[1])
                else:
                    pos = (pos[0], args[0] + oy)
                current.append(pos)
                drawn, last_ctrl = True, None
            else:
                pos, last_ctrl = _curve(
                    upper, args, ox, oy, pos, last_ctrl, last_cmd, current, tolerance
                )
                drawn = True
        last_cmd = upper
        if not current:
            current = [pos]
    finish()
    return paths


def _curve(
    upper: str,
    args: list[float],
    ox: float,
    oy: float,
    pos: Point,
    last_ctrl: Point | None,
    last_cmd: str,
    out: list[Point],
    tolerance: float,
) -> tuple[Point, Point]:
    """Flatten one C/S/Q/T segment into ``out``; returns the new position and its last control."""
    pts = [(args[i] + ox, args[i + 1] + oy) for i in range(0, len(args), 2)]
    reflected = pos
    if last_ctrl is not None and (
        (upper == "S" and last_cmd in ("C", "S")) or (upper == "T" and last_cmd in ("Q", "T"))
    ):
        reflected = (2 * pos[0] - last_ctrl[0], 2 * pos[1] - last_ctrl[1])
    ctrl: tuple[Point, ...]
    if upper == "C":
        ctrl = (pos, pts[0], pts[1], pts[2])
    elif upper == "S":
        ctrl = (pos, reflected, pts[0], pts[1])
    elif upper == "Q":
        ctrl = (pos, pts[0], pts[1])
    else:  # T
        ctrl = (pos, reflected, pts[0])
    out.extend(flatten_bezier(ctrl, tolerance))
    return ctrl[-1], ctrl[-2]
