"""The one folding rule for serials: look-alikes fold to one key, different serials do not."""

from __future__ import annotations

import pytest

from markstation.queue.identity import firearm_key, fold_serial, serial_matches

LOOK_ALIKES = [
    "AB-123",
    "AB\u2010123",  # HYPHEN
    "AB\u2011123",  # NON-BREAKING HYPHEN
    "AB\u2212123",  # MINUS SIGN
    "AB\u200b-123",  # ZERO WIDTH SPACE
    "AB\u2060123",  # WORD JOINER
    "\ufeffAB-123",  # BOM pasted from a spreadsheet
    "\uff21\uff22\uff0d\uff11\uff12\uff13",  # fullwidth ＡＢ－１２３
    "ab 123",
    " AB_123\t",
    "Ab.123",
]


@pytest.mark.parametrize("typed", LOOK_ALIKES)
def test_look_alikes_fold_to_one_key(typed: str) -> None:
    assert fold_serial(typed) == "ab123"
    assert serial_matches("AB-123", typed)
    assert firearm_key("Glock", typed) == firearm_key("GLOCK", "AB-123")


@pytest.mark.parametrize("other", ["AB-124", "AB-1234", "A-123", "AB-I23", ""])
def test_different_serials_do_not_match(other: str) -> None:
    assert not serial_matches("AB-123", other)


def test_empty_or_invisible_answer_never_matches() -> None:
    assert not serial_matches("", "")
    assert not serial_matches("AB-123", "\u200b \u2010 ")


def test_make_is_part_of_the_firearm() -> None:
    assert firearm_key("Glock", "AB123") != firearm_key("CZ", "AB123")
    assert firearm_key("\uff27lock", "AB123") == firearm_key("glock", "ab-123")
