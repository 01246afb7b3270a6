"""Lens correction files (.cor v1 and v2) to the board's 65 × 65 table."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from markstation.devices.lmc.correction import (
    ENTRIES,
    MAX_MAGNITUDE,
    encode_cor_v1,
    encode_cor_v2,
    parse_cor,
    read_cor_file,
    sign_magnitude,
)
from markstation.errors import ConfigError


def ramp(step: int = 3) -> list[tuple[int, int]]:
    """A table whose entries differ, so order mistakes show: dx grows by row, dy by column."""
    return [((i // 65 - 32) * step, (i % 65 - 32) * -step) for i in range(ENTRIES)]


def test_v2_file_is_the_published_size_and_parses() -> None:
    data = encode_cor_v2(ramp(), 500.84)
    assert len(data) == 33840  # the size of EzCad's sample files
    table = parse_cor(data, "lens.cor")
    assert table.version == 2
    assert table.label == "JCZ_COR_2_1"
    assert table.units_per_mm == pytest.approx(500.84)
    assert table.field_mm == pytest.approx(65536 / 500.84)
    assert list(table.deltas) == ramp()


@pytest.mark.parametrize("utf16", [True, False])
def test_v1_file_parses_with_either_label_encoding(utf16: bool) -> None:
    deltas = [(dx + 0.4, dy - 0.4) for dx, dy in ramp()]
    table = parse_cor(encode_cor_v1(deltas, 390.09, utf16_label=utf16), "old.cor")
    assert table.version == 1
    assert table.label == "LMC1COR_1.0"
    assert table.units_per_mm == pytest.approx(390.09)
    assert list(table.deltas) == ramp()  # rounded to whole galvo units


def test_v2_label_in_utf16_also_parses() -> None:
    assert parse_cor(encode_cor_v2(ramp(), 400.0, utf16_label=True)).version == 2


def test_board_words_are_sign_magnitude_in_file_order() -> None:
    table = parse_cor(encode_cor_v2(ramp(), 500.0))
    words = table.board_words()
    assert len(words) == ENTRIES
    assert words[0] == (0x8000 | 96, 96)  # (-96, +96)
    assert words[32 * 65 + 32] == (0, 0)  # the centre
    assert words[-1] == (96, 0x8000 | 96)


@given(st.integers(-MAX_MAGNITUDE, MAX_MAGNITUDE))
def test_sign_magnitude_round_trip(value: int) -> None:
    word = sign_magnitude(value)
    assert 0 <= word <= 0xFFFF
    back = -(word & 0x7FFF) if word & 0x8000 else word
    assert back == value


def test_sign_magnitude_refuses_overflow() -> None:
    with pytest.raises(ValueError):
        sign_magnitude(MAX_MAGNITUDE + 1)


def test_read_file(tmp_path: Path) -> None:
    path = tmp_path / "fiber.cor"
    path.write_bytes(encode_cor_v2(ramp(), 390.09))
    assert read_cor_file(path).source == str(path)


# --- refusals: every one names the file -------------------------------------------------------


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nothere\.cor: cannot read correction file"):
        read_cor_file(tmp_path / "nothere.cor")


def test_not_a_cor_file() -> None:
    with pytest.raises(ConfigError, match=r"x\.cor: not a lens correction file"):
        parse_cor(b"PK\x03\x04" + bytes(100), "x.cor")


@pytest.mark.parametrize("encoder", [encode_cor_v1, encode_cor_v2])
def test_truncated_file(encoder: object) -> None:
    data = encoder(ramp(), 500.0)  # type: ignore[operator]
    with pytest.raises(ConfigError, match=r"short\.cor: truncated"):
        parse_cor(data[: len(data) // 2], "short.cor")


def test_bad_scale() -> None:
    data = bytearray(encode_cor_v2(ramp(), 500.0))
    data[0x1C:0x24] = struct.pack("<d", float("nan"))
    with pytest.raises(ConfigError, match=r"a\.cor: scale at offset 0x1C"):
        parse_cor(bytes(data), "a.cor")
    data[0x1C:0x24] = struct.pack("<d", -3.0)
    with pytest.raises(ConfigError, match="positive"):
        parse_cor(bytes(data), "a.cor")


def test_offset_beyond_15_bits_names_the_entry() -> None:
    deltas = ramp()
    deltas[70] = (40000, 0)
    with pytest.raises(ConfigError, match=r"b\.cor: correction entry 70 \(row 1, column 5"):
        parse_cor(encode_cor_v2(deltas, 500.0), "b.cor")


def test_v1_non_finite_entry() -> None:
    deltas: list[tuple[float, float]] = [(float(a), float(b)) for a, b in ramp()]
    deltas[3] = (float("inf"), 0.0)
    with pytest.raises(ConfigError, match=r"c\.cor: correction entry 3 .* not a finite number"):
        parse_cor(encode_cor_v1(deltas, 500.0), "c.cor")


def test_writers_refuse_a_wrong_entry_count() -> None:
    with pytest.raises(ValueError):
        encode_cor_v2(ramp()[:-1], 500.0)
