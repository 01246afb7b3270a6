"""Lens correction tables for LMC boards: ``.cor`` v1 and v2 files to the board's 65 × 65 grid.

The board corrects the scan head's pincushion/barrel distortion with a table of 65 × 65 = 4225
(dx, dy) offsets in galvo units, uploaded once after opening (WriteCorTable(1), then 4225
WriteCorLine entries, no replies). EzCad stores that table in two file layouts:

* v2, label ``JCZ_COR_2_1`` (what current EzCad writes, 33 840 bytes): 22-byte label, 6 unknown
  bytes, f64 scale (galvo units per mm) at 0x1C, then at 0x24 4225 × (i32 dx, i32 dy), then one
  trailing i32.
* v1, label ``LMC1COR_1.0`` (older EzCad): 22-byte label, 2 unknown bytes, 63 f64 parameters
  (index 43 = scale) from 0x18, then at 0x210 4225 × (f64 dx, f64 dy), rounded to whole units.

All numbers are little-endian. The label is ASCII in some files and UTF-16LE in others (the open
readers disagree), so it is compared with the zero bytes removed. Parsing is pure (bytes in,
table out); ``read_cor_file`` is the one helper that touches the file system.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from markstation.errors import ConfigError
from markstation.i18n import _

GRID = 65
ENTRIES = GRID * GRID  # 4225
#: largest offset the board's 16-bit sign-magnitude words can carry
MAX_MAGNITUDE = 0x7FFF

LABEL_BYTES = 0x16
V1_LABEL = "LMC1COR_1.0"
V2_LABEL = "JCZ_COR_2_1"

_V2_SCALE_AT = 0x1C
_V2_TABLE_AT = 0x24
_V2_SIZE = _V2_TABLE_AT + ENTRIES * 8 + 4  # 33 840 with the trailing i32
_V1_PARAMS_AT = 0x18
_V1_PARAM_COUNT = 63
_V1_SCALE_INDEX = 43
_V1_TABLE_AT = 0x210
_V1_SIZE = _V1_TABLE_AT + ENTRIES * 16


@dataclass(frozen=True)
class CorrectionTable:
    """A lens correction table as the board takes it: 4225 (dx, dy) offsets in galvo units."""

    version: int  # 1 or 2 (file layout it came from)
    label: str
    #: galvo units per millimetre the table was made for (field width = 65536 / units_per_mm)
    units_per_mm: float
    #: 4225 (dx, dy) offsets, row-major in file order
    deltas: tuple[tuple[int, int], ...]
    source: str = "<bytes>"

    @property
    def field_mm(self) -> float:
        """Field width the table was calibrated for (the file name often says otherwise)."""
        return 65536.0 / self.units_per_mm

    def board_words(self) -> list[tuple[int, int]]:
        """The (w1, w2) pairs of the 4225 WriteCorLine commands, in upload order."""
        return [(sign_magnitude(dx), sign_magnitude(dy)) for dx, dy in self.deltas]


def sign_magnitude(value: int) -> int:
    """A signed offset as the board's 16-bit word: bit 15 = negative, low 15 bits = magnitude."""
    if not -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE:
        raise ValueError(f"correction offset {value} does not fit 15 bits")
    return value if value >= 0 else (-value) | 0x8000


def _label(data: bytes) -> str:
    # UTF-16LE of ASCII and zero-padded ASCII both read right once the zero bytes are dropped
    raw = data[:LABEL_BYTES].replace(b"\x00", b"")
    return raw.decode("ascii", errors="replace")


def _check_offsets(
    deltas: Sequence[tuple[int, int]], source: str, table_at: int, step: int
) -> None:
    for i, (dx, dy) in enumerate(deltas):
        if abs(dx) > MAX_MAGNITUDE or abs(dy) > MAX_MAGNITUDE:
            raise ConfigError(
                _(
                    "{source}: correction entry {i} (row {row}, column {column}, offset 0x{offset:X}) = ({dx}, {dy}) is beyond ±{MAX_MAGNITUDE} galvo units"
                ).format(
                    source=source,
                    i=i,
                    row=i // GRID,
                    column=i % GRID,
                    offset=table_at + i * step,
                    dx=dx,
                    dy=dy,
                    MAX_MAGNITUDE=MAX_MAGNITUDE,
                )
            )


def _check_scale(scale: float, source: str, offset: int) -> float:
    if not (math.isfinite(scale) and scale > 0):
        raise ConfigError(
            _(
                "{source}: scale at offset 0x{offset:X} is {scale!r}, expected a positive number of galvo units per mm"
            ).format(source=source, offset=offset, scale=scale)
        )
    return scale


def _parse_v2(data: bytes, source: str, label: str) -> CorrectionTable:
    if len(data) < _V2_TABLE_AT + ENTRIES * 8:
        raise ConfigError(
            _("{source}: truncated .cor v2 file ({n_data} bytes, expected {V2_SIZE})").format(
                source=source, n_data=len(data), V2_SIZE=_V2_SIZE
            )
        )
    (scale,) = struct.unpack_from("<d", data, _V2_SCALE_AT)
    _check_scale(scale, source, _V2_SCALE_AT)
    flat = struct.unpack_from(f"<{2 * ENTRIES}i", data, _V2_TABLE_AT)
    deltas = tuple(zip(flat[0::2], flat[1::2], strict=True))
    _check_offsets(deltas, source, _V2_TABLE_AT, 8)
    return CorrectionTable(2, label, scale, deltas, source)


def _parse_v1(data: bytes, source: str, label: str) -> CorrectionTable:
    if len(data) < _V1_SIZE:
        raise ConfigError(
            _("{source}: truncated .cor v1 file ({n_data} bytes, expected {V1_SIZE})").format(
                source=source, n_data=len(data), V1_SIZE=_V1_SIZE
            )
        )
    params = struct.unpack_from(f"<{_V1_PARAM_COUNT}d", data, _V1_PARAMS_AT)
    scale_at = _V1_PARAMS_AT + 8 * _V1_SCALE_INDEX
    _check_scale(params[_V1_SCALE_INDEX], source, scale_at)
    flat = struct.unpack_from(f"<{2 * ENTRIES}d", data, _V1_TABLE_AT)
    deltas: list[tuple[int, int]] = []
    for i in range(ENTRIES):
        dx, dy = flat[2 * i], flat[2 * i + 1]
        if not (math.isfinite(dx) and math.isfinite(dy)):
            raise ConfigError(
                _(
                    "{source}: correction entry {i} (offset 0x{offset:X}) is not a finite number"
                ).format(source=source, i=i, offset=_V1_TABLE_AT + 16 * i)
            )
        deltas.append((round(dx), round(dy)))
    _check_offsets(deltas, source, _V1_TABLE_AT, 16)
    return CorrectionTable(1, label, params[_V1_SCALE_INDEX], tuple(deltas), source)


def parse_cor(data: bytes, source: str = "<bytes>") -> CorrectionTable:
    """Parse a ``.cor`` file's bytes; ConfigError naming ``source`` and the offset at fault."""
    label = _label(data)
    if label.startswith("JCZ_COR_2"):
        return _parse_v2(data, source, label)
    if label.startswith("LMC1COR"):
        return _parse_v1(data, source, label)
    raise ConfigError(
        _(
            "{source}: not a lens correction file (label {label!r}; expected {V2_LABEL!r} or {V1_LABEL!r})"
        ).format(source=source, label=label[:22], V2_LABEL=V2_LABEL, V1_LABEL=V1_LABEL)
    )


def read_cor_file(path: str | os.PathLike[str]) -> CorrectionTable:
    """Read and parse a ``.cor`` file (ConfigError when missing, unreadable or malformed)."""
    p = Path(path).expanduser()
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ConfigError(
            _("{p}: cannot read correction file ({strerror})").format(p=p, strerror=exc.strerror)
        ) from exc
    return parse_cor(data, str(p))


# --- writers: for tests and for tools that convert tables; the same layouts as above ----------


def _label_bytes(text: str, utf16: bool) -> bytes:
    raw = text.encode("utf-16-le") if utf16 else text.encode("ascii")
    return raw[:LABEL_BYTES].ljust(LABEL_BYTES, b"\x00")


def _checked(deltas: Sequence[tuple[float, float]]) -> None:
    if len(deltas) != ENTRIES:
        raise ValueError(f"a correction table has {ENTRIES} entries, got {len(deltas)}")


def encode_cor_v2(
    deltas: Sequence[tuple[int, int]], units_per_mm: float, *, utf16_label: bool = False
) -> bytes:
    """The bytes of a v2 ``.cor`` file (unknown header bytes and the trailing word are zero)."""
    _checked(deltas)
    flat = [v for pair in deltas for v in pair]
    return b"".join(
        (
            _label_bytes(V2_LABEL, utf16_label),
            bytes(_V2_SCALE_AT - LABEL_BYTES),
            struct.pack("<d", units_per_mm),
            struct.pack(f"<{2 * ENTRIES}i", *flat),
            struct.pack("<i", 0),
        )
    )


def encode_cor_v1(
    deltas: Sequence[tuple[float, float]], units_per_mm: float, *, utf16_label: bool = True
) -> bytes:
    """The bytes of a v1 ``.cor`` file (parameters other than the scale are zero)."""
    _checked(deltas)
    params = [0.0] * _V1_PARAM_COUNT
    params[_V1_SCALE_INDEX] = units_per_mm
    flat = [float(v) for pair in deltas for v in pair]
    return b"".join(
        (
            _label_bytes(V1_LABEL, utf16_label),
            bytes(_V1_PARAMS_AT - LABEL_BYTES),
            struct.pack(f"<{_V1_PARAM_COUNT}d", *params),
            struct.pack(f"<{2 * ENTRIES}d", *flat),
        )
    )
