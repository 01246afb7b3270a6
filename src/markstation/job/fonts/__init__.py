"""Stroke fonts by spec: ``"markstation"`` (ours), ``"hershey:NAME"``, or a path to an SVG font.

:func:`load_font` caches each font; an SVG file is reloaded when its modification time changes.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from markstation.errors import ConfigError
from markstation.i18n import _
from markstation.job.fonts.base import Glyph, StrokeFont, TableFont

__all__ = ["DEFAULT_FONT", "Glyph", "StrokeFont", "TableFont", "load_font"]

DEFAULT_FONT = "markstation"
_HERSHEY_PREFIX = "hershey:"


def load_font(spec: str = DEFAULT_FONT) -> StrokeFont:
    """The font named by ``spec``; ConfigError naming the spec or file when it cannot be loaded."""
    spec = spec.strip()
    if spec == DEFAULT_FONT:
        return _load_cached(spec, 0)
    if spec.startswith(_HERSHEY_PREFIX):
        if not spec[len(_HERSHEY_PREFIX) :]:
            raise ConfigError(
                _("font {spec!r}: give a Hershey font name, e.g. 'hershey:futural'").format(
                    spec=spec
                )
            )
        return _load_cached(spec, 0)
    if spec.lower().endswith(".svg"):
        path = Path(spec).expanduser()
        try:
            mtime = path.stat().st_mtime_ns
        except OSError as exc:
            raise ConfigError(
                _("font file {spec}: {reason}").format(spec=spec, reason=exc.strerror or exc)
            ) from exc
        return _load_cached(os.path.abspath(path), mtime)
    raise ConfigError(
        _(
            "unknown font {spec!r}: use 'markstation', 'hershey:NAME' or a path to an .svg font"
        ).format(spec=spec)
    )


@functools.lru_cache(maxsize=32)
def _load_cached(key: str, mtime_ns: int) -> TableFont:
    # mtime_ns is part of the cache key only, so an edited SVG font is read again
    if key == DEFAULT_FONT:
        from markstation.job.fonts import markstation

        return markstation.load()
    if key.startswith(_HERSHEY_PREFIX):
        from markstation.job.fonts import hershey

        return hershey.load(key[len(_HERSHEY_PREFIX) :])
    from markstation.job.fonts import svg

    return svg.load(Path(key))
