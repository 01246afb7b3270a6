"""SVG 1.1 single-line fonts (``<font>`` / ``<glyph>``) loaded from a file, as a TableFont.

Glyph outlines are y-up in font units with the baseline at 0, which is already our glyph frame.
The cap height is measured from the 'H' (else 'E', 'I', 'T') because declared ``cap-height``
values in the wild are often wrong. Curves are flattened to 1/2000 em.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from markstation.errors import ConfigError
from markstation.i18n import _
from markstation.job.fonts.base import Glyph, TableFont, cap_height_of
from markstation.job.fonts.svgpath import path_to_polylines

#: flattening tolerance as a fraction of the em
TOLERANCE_EM = 0.0005


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _number(path: Path, element: ET.Element, attr: str, default: float | None) -> float | None:
    raw = element.get(attr)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(
            _("font file {path}: <{local}> {attr}={raw!r} is not a number").format(
                path=path, local=_local(element.tag), attr=attr, raw=raw
            )
        ) from None
    return value


def _parse(path: Path) -> ET.Element:
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as exc:
        line, column = exc.position
        raise ConfigError(
            _("font file {path}: line {line}, column {column}: not a well-formed SVG file").format(
                path=path, line=line, column=column + 1
            )
        ) from None
    except OSError as exc:
        raise ConfigError(
            _("font file {path}: {reason}").format(path=path, reason=exc.strerror or exc)
        ) from None


def load(path: Path) -> TableFont:
    """Read the first ``<font>`` of the SVG file at ``path``; ConfigError naming the file on fault."""
    root = _parse(path)
    font = next((el for el in root.iter() if _local(el.tag) == "font"), None)
    if font is None:
        raise ConfigError(
            _("font file {path}: no SVG <font> element (is it an SVG font?)").format(path=path)
        )
    face = next((el for el in font.iter() if _local(el.tag) == "font-face"), None)
    units_per_em = _number(path, face, "units-per-em", 1000.0) if face is not None else 1000.0
    assert units_per_em is not None
    if units_per_em <= 0:
        raise ConfigError(
            _("font file {path}: units-per-em must be positive, got {units_per_em}").format(
                path=path, units_per_em=units_per_em
            )
        )
    default_advance = _number(path, font, "horiz-adv-x", None)
    tolerance = TOLERANCE_EM * units_per_em

    glyphs: dict[str, Glyph] = {}
    for element in font.iter():
        if _local(element.tag) != "glyph":
            continue
        char = element.get("unicode")
        if char is None or len(char) != 1 or char in glyphs:
            continue  # ligatures and duplicates: the first single-character glyph wins
        advance = _number(path, element, "horiz-adv-x", default_advance)
        if advance is None:
            raise ConfigError(
                _(
                    "font file {path}: glyph {char!r} has no horiz-adv-x and the font sets no default"
                ).format(path=path, char=char)
            )
        try:
            strokes = path_to_polylines(element.get("d", ""), tolerance)
        except ValueError as exc:
            raise ConfigError(
                _("font file {path}: glyph {char!r}: bad path data: {exc}").format(
                    path=path, char=char, exc=exc
                )
            ) from None
        glyphs[char] = Glyph(strokes=tuple(tuple(s) for s in strokes), advance=advance)

    if not glyphs:
        raise ConfigError(
            _("font file {path}: the <font> has no <glyph unicode=...> elements").format(path=path)
        )
    if " " not in glyphs:
        # a space carries no ink; fonts that omit it still mean "advance by the default width"
        glyphs[" "] = Glyph(strokes=(), advance=default_advance or units_per_em / 3)
    cap = cap_height_of(glyphs)
    if cap is None:
        raise ConfigError(
            _(
                "font file {path}: no capital H, E, I or T glyph to measure the cap height from"
            ).format(path=path)
        )
    return TableFont(str(path), cap, glyphs)
