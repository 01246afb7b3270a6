"""Hershey fonts through the ``hershey-fonts`` package, as a TableFont.

The package keeps glyphs y-down around a per-glyph centre and silently skips characters it lacks;
here every glyph is moved to our frame (baseline y = 0, y up, advance box from x = 0) and coverage is
the glyph table itself, so the renderer can refuse a missing character by name.
"""

from __future__ import annotations

from typing import Any

from markstation.errors import ConfigError
from markstation.i18n import _
from markstation.job.fonts.base import Glyph, TableFont, cap_height_of
from markstation.job.ir import Point


def font_names() -> list[str]:
    """Names accepted after ``hershey:``."""
    from HersheyFonts import HersheyFonts

    return sorted(HersheyFonts().default_font_names)


def _convert(raw: Any) -> Glyph:
    base = float(raw.base_line)
    left = float(raw.left_offset)
    strokes: list[tuple[Point, ...]] = []
    for stroke in raw.strokes:
        points = tuple((float(x) - left, base - float(y)) for x, y in stroke)
        if points:
            strokes.append(points)
    return Glyph(strokes=tuple(strokes), advance=float(raw.char_width))


def load(name: str) -> TableFont:
    """Load Hershey font ``name`` (e.g. "futural"); ConfigError for an unknown name."""
    from HersheyFonts import HersheyFonts

    spec = f"hershey:{name}"
    font = HersheyFonts()
    if name not in font.default_font_names:
        known = ", ".join(sorted(font.default_font_names))
        raise ConfigError(
            _("font {spec!r}: no Hershey font {name!r} (known: {known})").format(
                spec=spec, name=name, known=known
            )
        )
    font.load_default_font(name)
    glyphs = {ch: _convert(raw) for ch, raw in font.all_glyphs.items() if len(ch) == 1}
    cap = cap_height_of(glyphs)
    if cap is None:
        raise ConfigError(
            _("font {spec!r} has no capital H, E, I or T to measure its cap height").format(
                spec=spec
            )
        )
    return TableFont(spec, cap, glyphs)
