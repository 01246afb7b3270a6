"""The "markstation" single-stroke engraving font, drawn here as data.

Technical lettering after ISO 3098 type B: open shapes, capitals only, legible at 1.6 mm. The zero is
a narrow plain oval, the O a wide round one; the I has serifs so it never reads as 1; the 7 has a
short hook at the top left. Digits were changed where OCR confused them on the reader model of
``benchmarks/bench_legibility.py`` (issue 14): a slash inside the zero read as 8 or 9, the 7's
crossbar as 4, the 5's tall bowl as 9, the hooked tail of the 9 as an extra 3; the 5 now has a
lower bowl, the 9 a straight tail.

Grid: cap height 10, baseline y = 0, y up. Each entry is ``(width, drawing)``; the glyph gets one unit
of side bearing left and right, and the advance is then widened by ``_TRACKING`` (1.1: looser
letter spacing read 1-2 % more lines on the legibility harness), the drawing centred in it: an
advance of ``1.1 × (width + 2)``. A drawing is strokes separated by
``|``; a stroke is a run of tokens separated by spaces:

* ``x,y`` — a point;
* ``@cx,cy,rx,ry,a0,a1`` — points along an elliptical arc from angle a0 to a1 (degrees, counter-
  clockwise when a1 > a0), at most 6° apart so a 10 mm letter stays smooth;
* ``~x0,x1,y,amp`` — one period of a sine wave (the tilde);
* ``*cx,cy`` — a filled dot: a tight spiral from its rim into its centre.

Accents sit above the cap line (y 11 to 13.5); the cedilla hangs below the baseline.
"""

from __future__ import annotations

import math

from markstation.job.fonts.base import Glyph, TableFont
from markstation.job.ir import Point

NAME = "markstation"
CAP_HEIGHT = 10.0
_SIDE_BEARING = 1.0
#: every advance × this, the glyph centred in it (issue 14: OCR read 1-2 % more lines than at 1.0)
_TRACKING = 1.1
_ARC_STEP_DEG = 6.0

_ACUTE_A = "2.4,11.2 4.2,13.4"  # acute accent over a glyph of width 6
_DOT_RADIUS = 0.6  # the dots of '.', ':' and 'Ü'
_DOT_TURNS = 2.5  # a dot is a tight spiral, so the beam fills it instead of drawing a ring

GLYPHS: dict[str, tuple[float, str]] = {
    " ": (4, ""),
    "A": (6, "0,0 3,10 6,0 | 1.05,3.5 4.95,3.5"),
    "B": (6, "0,5 3,5 @3,7.5,2.5,2.5,-90,90 0,10 0,0 3.4,0 @3.4,2.5,2.6,2.5,-90,90 3,5"),
    "C": (6, "@3.1,7,2.9,3,40,180 0.2,3 @3.1,3,2.9,3,180,320"),
    "D": (6, "0,0 0,10 2.5,10 @2.5,6.5,3.5,3.5,90,0 6,3.5 @2.5,3.5,3.5,3.5,0,-90 0,0"),
    "E": (5.5, "5.5,10 0,10 0,0 5.5,0 | 0,5.2 4.2,5.2"),
    "F": (5.5, "5.5,10 0,10 0,0 | 0,5.2 4.2,5.2"),
    "G": (6, "@3.1,7,2.9,3,40,180 0.2,3 @3.1,3,2.9,3,180,360 6,0 | 3.4,4.6 6,4.6 6,3"),
    "H": (6, "0,0 0,10 | 6,0 6,10 | 0,5.2 6,5.2"),
    "I": (3, "1.5,0 1.5,10 | 0,10 3,10 | 0,0 3,0"),
    "J": (5, "5,10 5,3 @2.7,3,2.3,3,0,-150"),
    "K": (6, "0,0 0,10 | 6,10 0,3.6 | 2.1,5.85 6,0"),
    "L": (5.5, "0,10 0,0 5.5,0"),
    "M": (7, "0,0 0,10 3.5,3 7,10 7,0"),
    "N": (6, "0,0 0,10 6,0 6,10"),
    "O": (7, "@3.5,6.5,3.5,3.5,0,180 0,3.5 @3.5,3.5,3.5,3.5,180,360 7,6.5"),
    "P": (6, "0,0 0,10 3.25,10 @3.25,7.25,2.75,2.75,90,-90 0,4.5"),
    "Q": (7, "@3.5,6.5,3.5,3.5,0,180 0,3.5 @3.5,3.5,3.5,3.5,180,360 7,6.5 | 4.3,2.3 7,-0.6"),
    "R": (6, "0,0 0,10 3.25,10 @3.25,7.25,2.75,2.75,90,-90 0,4.5 | 3,4.5 6,0"),
    "S": (6, "@3,7.5,2.8,2.5,30,270 @3,2.5,3,2.5,90,-150"),
    "T": (6, "0,10 6,10 | 3,10 3,0"),
    "U": (6, "0,10 0,3 @3,3,3,3,180,360 6,10"),
    "V": (6, "0,10 3,0 6,10"),
    "W": (8, "0,10 2,0 4,7 6,0 8,10"),
    "X": (6, "0,10 6,0 | 0,0 6,10"),
    "Y": (6, "0,10 3,5 6,10 | 3,5 3,0"),
    "Z": (6, "0,10 6,10 0,0 6,0"),
    "0": (5, "@2.5,7.5,2.5,2.5,0,180 0,2.5 @2.5,2.5,2.5,2.5,180,360 5,7.5"),
    "1": (4, "0.4,7.6 3,10 3,0"),
    "2": (6, "@3,7,2.9,3,155,-38 0,0 6,0"),
    "3": (6, "@3,7.5,2.7,2.5,150,-90 @3,2.5,3,2.5,90,-150"),
    "4": (6, "4.5,0 4.5,10 0,3 6,3"),
    "5": (6, "5.5,10 0.7,10 0.5,5.8 @2.9,2.9,3.1,2.9,145,-150"),
    "6": (6, "@3.1,6.9,3.1,3.1,55,180 0,2.8 @3,2.8,3,2.8,180,540"),
    "7": (6, "0,9.2 0,10 6,10 2.2,0"),
    "8": (6, "@3,7.5,2.7,2.5,-90,270 @3,2.5,3,2.5,90,-270"),
    "9": (6, "@3,7.1,3,2.9,0,360 6,5.5 2.4,0"),
    "-": (3.5, "0,4.4 3.5,4.4"),
    "/": (4, "0,0 4,10"),
    ".": (1.2, "*0.6,0.6"),
    ":": (1.2, "*0.6,0.6 | *0.6,6"),
    "#": (7, "2,0 3,10 | 4.5,0 5.5,10 | 0.3,3.3 7,3.3 | 0.8,6.7 7.5,6.7"),
    "Ñ": (6, "0,0 0,10 6,0 6,10 | ~1,5,12.3,0.6"),
    "Á": (6, f"0,0 3,10 6,0 | 1.05,3.5 4.95,3.5 | {_ACUTE_A}"),
    "É": (5.5, f"5.5,10 0,10 0,0 5.5,0 | 0,5.2 4.2,5.2 | {_ACUTE_A}"),
    "Í": (3, "1.5,0 1.5,10 | 0,10 3,10 | 0,0 3,0 | 0.9,11.2 2.7,13.4"),
    "Ó": (7, f"@3.5,6.5,3.5,3.5,0,180 0,3.5 @3.5,3.5,3.5,3.5,180,360 7,6.5 | {_ACUTE_A}"),
    "Ú": (6, f"0,10 0,3 @3,3,3,3,180,360 6,10 | {_ACUTE_A}"),
    "Ü": (
        6,
        "0,10 0,3 @3,3,3,3,180,360 6,10 | *1.6,12.2 | *4.4,12.2",
    ),
    "Ç": (
        6,
        "@3.1,7,2.9,3,40,180 0.2,3 @3.1,3,2.9,3,180,320"
        " | 3.1,0 3.1,-1 @3.1,-1.8,1,0.8,90,-160 2,-2.1",
    ),
}


def _numbers(token: str, count: int) -> list[float]:
    values = [float(v) for v in token.split(",")]
    if len(values) != count:
        raise ValueError(f"glyph token {token!r} needs {count} numbers")
    return values


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float) -> list[Point]:
    steps = max(2, math.ceil(abs(a1 - a0) / _ARC_STEP_DEG))
    out: list[Point] = []
    for i in range(steps + 1):
        a = math.radians(a0 + (a1 - a0) * i / steps)
        out.append((cx + rx * math.cos(a), cy + ry * math.sin(a)))
    return out


def _wave(x0: float, x1: float, y: float, amp: float) -> list[Point]:
    steps = 16
    return [
        (x0 + (x1 - x0) * i / steps, y + amp * math.sin(2 * math.pi * i / steps))
        for i in range(steps + 1)
    ]


def _dot(cx: float, cy: float) -> list[Point]:
    steps = round(_DOT_TURNS * 360 / 30)
    out: list[Point] = []
    for i in range(steps + 1):
        t = i / steps
        a = 2 * math.pi * _DOT_TURNS * t
        r = _DOT_RADIUS * (1 - t)
        out.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    return out


def parse_stroke(text: str) -> tuple[Point, ...]:
    """One stroke of the drawing language above → points (repeats removed)."""
    points: list[Point] = []
    for token in text.split():
        if token.startswith("@"):
            new = _arc(*_numbers(token[1:], 6))
        elif token.startswith("*"):
            new = _dot(*_numbers(token[1:], 2))
        elif token.startswith("~"):
            new = _wave(*_numbers(token[1:], 4))
        else:
            x, y = _numbers(token, 2)
            new = [(x, y)]
        for p in new:
            if not points or math.dist(points[-1], p) > 1e-9:
                points.append(p)
    return tuple(points)


def build_glyph(width: float, drawing: str) -> Glyph:
    advance = (width + 2 * _SIDE_BEARING) * _TRACKING
    left = (advance - width) / 2
    strokes = tuple(
        tuple((x + left, y) for x, y in parse_stroke(part))
        for part in drawing.split("|")
        if part.strip()
    )
    return Glyph(strokes=strokes, advance=advance)


def load() -> TableFont:
    """Build the font from the table (a few milliseconds; the caller caches it)."""
    glyphs = {ch: build_glyph(width, drawing) for ch, (width, drawing) in GLYPHS.items()}
    return TableFont(NAME, CAP_HEIGHT, glyphs)
