"""What every stroke font looks like to the text renderer: glyphs of polylines in font units.

Font units are y-up with the baseline at y = 0; a glyph's advance box starts at x = 0 and ends at
x = ``advance``. ``cap_height`` is the height of the capital 'H' (or an equivalent flat-topped
capital) in the same units, so the renderer can scale to an exact cap height in mm.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from markstation.job.ir import Point


@dataclass(frozen=True, slots=True)
class Glyph:
    """One character: strokes (each one or more points, font units) and the advance width."""

    strokes: tuple[tuple[Point, ...], ...]
    advance: float

    def bounds(self) -> tuple[float, float, float, float] | None:
        """(x_min, y_min, x_max, y_max) of the ink, or None for a blank glyph."""
        xs = [x for stroke in self.strokes for x, _ in stroke]
        ys = [y for stroke in self.strokes for _, y in stroke]
        if not xs:
            return None
        return (min(xs), min(ys), max(xs), max(ys))


class StrokeFont(Protocol):
    """A single-line font; ``glyph`` returns None for a character the font lacks."""

    name: str
    cap_height: float

    def glyph(self, ch: str) -> Glyph | None: ...


class TableFont:
    """A StrokeFont backed by a character → Glyph table (all three loaders produce one)."""

    def __init__(self, name: str, cap_height: float, glyphs: Mapping[str, Glyph]) -> None:
        self.name = name
        self.cap_height = cap_height
        self._glyphs = dict(glyphs)

    def glyph(self, ch: str) -> Glyph | None:
        return self._glyphs.get(ch)

    def characters(self) -> str:
        """Every character the font covers, in code-point order."""
        return "".join(sorted(self._glyphs))

    def __repr__(self) -> str:
        return f"TableFont({self.name!r}, {len(self._glyphs)} glyphs)"


def cap_height_of(glyphs: Mapping[str, Glyph], candidates: Iterable[str] = "HEIT") -> float | None:
    """Height of the first flat-topped capital present with ink above the baseline."""
    for ch in candidates:
        glyph = glyphs.get(ch)
        box = glyph.bounds() if glyph else None
        if box is not None and box[3] > 0:
            return box[3]
    return None
