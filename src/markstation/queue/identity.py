"""When two serials (or two firearms) are the same: the one folding rule, used everywhere.

A factory serial reaches us typed by a clerk, pasted from a spreadsheet, scanned by a barcode
reader or typed by the technician. The same stamped serial can arrive as ``AB-123``, ``ab 123``,
``AB‐123`` (U+2010), ``ＡＢ１２３`` (fullwidth) or with a zero-width space inside. Import (same
firearm twice?), the store (same firearm already used?) and the runner (is this the weapon on the
row?) must agree, so all of them compare :func:`fold_serial` keys.
"""

from __future__ import annotations

import unicodedata


def fold_serial(text: str) -> str:
    """NFKC, case folded, and only letters and digits kept (no spaces, punctuation, invisibles)."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] in "LN")


def firearm_key(make: str, serial: str) -> tuple[str, str]:
    """Make + factory serial, each folded: equal keys are the same firearm."""
    return fold_serial(make), fold_serial(serial)


def serial_matches(expected: str, typed: str) -> bool:
    """A typed or scanned serial is the row's serial (an empty answer never matches)."""
    key = fold_serial(typed)
    return bool(key) and key == fold_serial(expected)
