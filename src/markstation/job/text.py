"""Stroke text: one line of characters → polylines in mm, at an exact cap height.

Font specs accepted wherever a font is named (layouts, ``--font`` options, :func:`render_text`):

* ``"markstation"`` — the default: our own single-stroke technical lettering (ISO 3098 type B in
  spirit), capitals A–Z, digits 0–9, space, ``- / . : #`` and Ñ Á É Í Ó Ú Ü Ç. Plain narrow zero,
  serif I.
* ``"hershey:NAME"`` — a Hershey font from the ``hershey-fonts`` package, e.g. ``hershey:futural``,
  ``hershey:rowmans``, ``hershey:timesr`` (printable ASCII only).
* ``"/path/to/font.svg"`` — any SVG 1.1 single-line font (``<font>`` with ``<glyph unicode=…
  horiz-adv-x=… d=…>``), e.g. the EMS or Hershey SVG fonts shipped with Inkscape. The cap height is
  measured from the font's 'H' (or 'E'), not taken from its declared metrics.

A character the chosen font lacks is refused by name (:class:`GlyphError`) before anything is built;
text is never case-folded, because a registry code is engraved exactly as issued.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from markstation.errors import GlyphError, JobError
from markstation.i18n import _
from markstation.job.fonts import DEFAULT_FONT, Glyph, StrokeFont, load_font
from markstation.job.ir import Affine, Point, Polyline, bounds_of

__all__ = [
    "ALIGNMENTS",
    "Glyph",
    "StrokeFont",
    "TextShape",
    "load_font",
    "missing_glyphs",
    "render_text",
]

ALIGNMENTS = ("left", "center", "right")
#: a stroke of one point (a dot) becomes a horizontal stroke this long, in cap heights
DOT_STROKE_CAPS = 0.15
#: strokes are simplified to within this distance of the font's drawing (mm): a quarter of a 0.03 mm
#: spot, invisible in the burn, while every vertex costs the galvo a polygon delay (arcs drawn at
#: 6° steps for 10 mm letters need far fewer points at 2 mm)
SIMPLIFY_MM = 0.0075
_LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"


@dataclass(frozen=True, slots=True)
class TextShape:
    """Rendered text: strokes in mm, the ink's bounding box and the advance width in mm."""

    polylines: tuple[Polyline, ...]
    #: (x_min, y_min, x_max, y_max) of every point; the rotated advance box when there is no ink
    bbox: tuple[float, float, float, float]
    #: length of the line's advance box (sum of advances × spacing), before rotation
    width_mm: float


def _quote(text: str, limit: int = 60) -> str:
    shown = text if len(text) <= limit else text[: limit - 1] + "…"
    return '"' + "".join(c if c.isprintable() else repr(c)[1:-1] for c in shown) + '"'


def _describe(ch: str) -> str:
    return f"{ch!r} (U+{ord(ch):04X})"


def _missing(text: str, font: StrokeFont) -> list[str]:
    seen: dict[str, None] = {}
    for ch in text:
        if ch not in seen and font.glyph(ch) is None:
            seen[ch] = None
    return list(seen)


def missing_glyphs(text: str, font: str = DEFAULT_FONT) -> list[str]:
    """Characters of ``text`` that ``font`` lacks, in order of first appearance, each once."""
    return _missing(text, load_font(font))


def _check_text(text: str, font: StrokeFont) -> None:
    breaks = [ch for ch in text if ch in _LINE_BREAKS]
    if breaks:
        raise GlyphError(
            _("text must be one line: line break {describe} in {quote}").format(
                describe=_describe(breaks[0]), quote=_quote(text)
            )
        )
    missing = _missing(text, font)
    if not missing:
        return
    names = ", ".join(_describe(ch) for ch in missing)
    message = _("font {name!r} has no glyph for {names} in {quote}")
    if any(ch != ch.upper() and font.glyph(ch.upper()) is not None for ch in missing):
        message = _(
            "font {name!r} has no glyph for {names} in {quote} (capitals only: codes are "
            "engraved exactly as issued, never upper-cased)"
        )
    raise GlyphError(message.format(name=font.name, names=names, quote=_quote(text)))


def _check_number(name: str, value: float, *, positive: bool) -> None:
    if not math.isfinite(value) or (positive and value <= 0):
        need = "a positive number" if positive else "a finite number"
        raise JobError(
            _("text {name} must be {need}, got {value!r}").format(name=name, need=need, value=value)
        )


def _glyph_strokes(glyph: Glyph, pen_x: float, scale: float, dot_mm: float) -> list[list[Point]]:
    """The glyph's strokes in mm, placed at pen_x (font units); dots widened to short strokes."""
    out: list[list[Point]] = []
    for stroke in glyph.strokes:
        points = [((x + pen_x) * scale, y * scale) for x, y in stroke]
        if all(math.dist(points[0], p) < 1e-9 for p in points):
            x, y = points[0]
            points = [(x - dot_mm / 2, y), (x + dot_mm / 2, y)]
        out.append(points)
    return out


def simplify(points: list[Point], tolerance: float) -> list[Point]:
    """Douglas–Peucker: the fewest of ``points`` (ends kept) within ``tolerance`` of the polyline.

    A closed stroke keeps its farthest point from the start, so it never collapses to a line."""
    if len(points) <= 2:
        return points
    return [points[i] for i in _simplify_keep(points, tolerance)]


def _simplify_keep(points: Sequence[Point], tolerance: float) -> tuple[int, ...]:
    """The indices of the points :func:`simplify` keeps, in order."""
    keep = [False] * len(points)
    keep[0] = keep[-1] = True
    if math.dist(points[0], points[-1]) < 1e-12:
        far = max(range(len(points)), key=lambda i: math.dist(points[0], points[i]))
        keep[far] = True
        spans = [(0, far), (far, len(points) - 1)]
    else:
        spans = [(0, len(points) - 1)]
    while spans:
        a, b = spans.pop()
        if b - a < 2:
            continue
        (ax, ay), (bx, by) = points[a], points[b]
        vx, vy = bx - ax, by - ay
        norm = math.hypot(vx, vy)
        best, best_d = -1, tolerance
        for i in range(a + 1, b):
            px, py = points[i]
            if norm < 1e-12:
                d = math.hypot(px - ax, py - ay)
            else:
                d = abs(vx * (py - ay) - vy * (px - ax)) / norm
            if d > best_d:
                best, best_d = i, d
        if best >= 0:
            keep[best] = True
            spans.extend(((a, best), (best, b)))
    return tuple(i for i, k in enumerate(keep) if k)


@functools.lru_cache(maxsize=4096)
def _glyph_keep(points: tuple[Point, ...], tolerance: float) -> tuple[int, ...]:
    """:func:`_simplify_keep` of a placed glyph stroke (float points), memoised: a batch of codes
    places the same glyphs at the same pen positions over and over. Indices, not points, so a
    cached answer for equal points (0.0 and -0.0 compare equal) keeps the caller's own floats."""
    return _simplify_keep(points, tolerance)


def _simplify_glyph(points: list[Point], tolerance: float) -> list[Point]:
    """:func:`simplify` for render_text's strokes, through :func:`_glyph_keep`."""
    if len(points) <= 2:
        return points
    return [points[i] for i in _glyph_keep(tuple(points), tolerance)]


def render_text(
    text: str,
    *,
    cap_height_mm: float,
    font: str = DEFAULT_FONT,
    align: str = "center",
    spacing: float = 1.0,
    rotation_deg: float = 0.0,
    origin: Point = (0.0, 0.0),
) -> TextShape:
    """Lay out one line of ``text`` as strokes in mm.

    ``origin`` is the baseline point at the alignment anchor: the left end, centre or right end of
    the line's advance box (``align`` = "left" | "center" | "right"). The text is rotated
    ``rotation_deg`` counter-clockwise about ``origin``. A capital H spans exactly
    ``cap_height_mm`` from baseline to top; ``spacing`` multiplies every advance.
    """
    _check_number("cap height (mm)", cap_height_mm, positive=True)
    _check_number("spacing", spacing, positive=True)
    _check_number("rotation (degrees)", rotation_deg, positive=False)
    _check_number("origin x", origin[0], positive=False)
    _check_number("origin y", origin[1], positive=False)
    if align not in ALIGNMENTS:
        raise JobError(
            _("text align must be one of {join}; got {align!r}").format(
                join=", ".join(ALIGNMENTS), align=align
            )
        )
    stroke_font = load_font(font)
    _check_text(text, stroke_font)

    scale = cap_height_mm / stroke_font.cap_height
    dot_mm = DOT_STROKE_CAPS * cap_height_mm
    strokes: list[list[Point]] = []
    pen_x = 0.0
    for ch in text:
        glyph = stroke_font.glyph(ch)
        assert glyph is not None  # _check_text refused missing glyphs
        strokes.extend(_glyph_strokes(glyph, pen_x, scale, dot_mm))
        pen_x += glyph.advance * spacing
    width_mm = pen_x * scale

    shift = {"left": 0.0, "center": -width_mm / 2, "right": -width_mm}[align]
    place = (
        Affine.translate(shift, 0.0)
        .then(Affine.rotate(rotation_deg))
        .then(Affine.translate(origin[0], origin[1]))
    )
    polylines = tuple(
        Polyline(tuple(place.apply(p) for p in _simplify_glyph(stroke, SIMPLIFY_MM)))
        for stroke in strokes
    )
    bbox = bounds_of(p for line in polylines for p in line.points)
    if bbox is None:
        bbox = place.apply_bbox((0.0, 0.0, width_mm, cap_height_mm))
    return TextShape(polylines=polylines, bbox=bbox, width_mm=width_mm)
