"""Simulator timing: ``instant`` (no waiting), ``realtime`` or ``F`` (F times faster than real).

The speed factor divides every simulated duration: ``realtime`` = 1.0, ``instant`` = infinity.
"""

from __future__ import annotations

import math

from markstation.errors import ConfigError
from markstation.i18n import _

INSTANT = math.inf


def parse_timing(text: str, *, option: str = "timing") -> float:
    """Speed factor for ``text``; ConfigError naming ``option`` when it is not one of the forms."""
    value = text.strip().lower()
    if value == "instant":
        return INSTANT
    if value == "realtime":
        return 1.0
    try:
        factor = float(value)
    except ValueError:
        factor = math.nan
    if not math.isfinite(factor) or factor <= 0:
        raise ConfigError(
            _(
                "option '{option}={text}': expected instant, realtime or a positive speed-up factor"
            ).format(option=option, text=text)
        )
    return factor


def scaled(seconds: float, factor: float) -> float:
    """Wall-clock seconds a simulated duration takes at ``factor`` (0 for instant)."""
    return 0.0 if math.isinf(factor) else seconds / factor
