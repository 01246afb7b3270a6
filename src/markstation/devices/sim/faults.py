"""Fault injection specs for the simulators: ``KIND@N`` = inject KIND at transfer (or line) N.

Both simulators share the syntax; each passes the kinds it can produce. N counts from 1.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from markstation.errors import ConfigError
from markstation.i18n import _


@dataclass(frozen=True)
class Fault:
    kind: str
    at: int


def parse_fault(text: str, kinds: Iterable[str], *, option: str = "fault") -> Fault:
    """Parse ``KIND@N``; ConfigError naming ``option`` for anything else."""
    allowed = tuple(kinds)
    names = ", ".join(allowed)
    kind, sep, at_text = text.strip().partition("@")
    kind = kind.strip().lower()
    if not sep or not kind:
        raise ConfigError(
            _("option '{option}={text}': expected KIND@N with KIND one of {names}").format(
                option=option, text=text, names=names
            )
        )
    if kind not in allowed:
        raise ConfigError(
            _("option '{option}={text}': unknown fault '{kind}' (one of {names})").format(
                option=option, text=text, kind=kind, names=names
            )
        )
    try:
        at = int(at_text.strip())
    except ValueError:
        raise ConfigError(
            _("option '{option}={text}': N must be a whole number ≥ 1").format(
                option=option, text=text
            )
        ) from None
    if at < 1:
        raise ConfigError(
            _("option '{option}={text}': N must be a whole number ≥ 1").format(
                option=option, text=text
            )
        )
    return Fault(kind, at)
