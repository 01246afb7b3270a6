"""2D symbols (Data Matrix ECC200, QR, Micro QR) as exact module matrices.

One encoder per symbology: Data Matrix and Micro QR through zxing-cpp (zint inside), QR through
``qrcode``. Everything here is pure: text in, a :class:`ModuleMatrix` out, no files. The heavy
libraries are imported inside the functions so the CLI stays fast to start.

Data Matrix is always square (zint would otherwise pick a rectangle such as 12x26 for some
payloads). A fixed size that is rectangular, unknown or too small for the data is refused with
:class:`~markstation.errors.SymbolError`, never silently grown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from markstation.errors import SymbolError
from markstation.i18n import _

if TYPE_CHECKING:
    import zxingcpp

SYMBOLOGIES = ("datamatrix", "qr", "microqr")

#: zint's Data Matrix size index (the ``version`` option) for each square ECC200 size
DATAMATRIX_SQUARE_SIZES: dict[int, int] = {
    10: 1, 12: 2, 14: 3, 16: 4, 18: 5, 20: 6, 22: 7, 24: 8, 26: 9, 32: 10, 36: 11, 40: 12,
    44: 13, 48: 14, 52: 15, 64: 16, 72: 17, 80: 18, 88: 19, 96: 20, 104: 21, 120: 22, 132: 23,
    144: 24,
}  # fmt: skip

QR_EC_LEVELS = ("L", "M", "Q", "H")
MICROQR_EC_LEVELS = ("L", "M", "Q")
_DEFAULT_EC = {"qr": "M", "microqr": "L"}

#: ECI designator for UTF-8, declared in Data Matrix symbols that carry non-ASCII text
_ECI_UTF8 = 26

_SIZE_RE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")


@dataclass(frozen=True, slots=True)
class ModuleMatrix:
    """The modules of one symbol, top row first; ``"1"`` is a dark module. No quiet zone."""

    symbology: str  # "datamatrix" | "qr" | "microqr"
    rows: tuple[str, ...]
    version: str  # e.g. "18x18", "2-M", "M4-L"

    def __post_init__(self) -> None:
        if not self.rows or not self.rows[0]:
            raise ValueError("a ModuleMatrix needs at least one module")
        width = len(self.rows[0])
        for i, row in enumerate(self.rows):
            if len(row) != width or row.strip("01"):
                raise ValueError(f"row {i} of the module matrix is not {width} characters of 0/1")

    @classmethod
    def from_bools(
        cls, symbology: str, version: str, rows: Iterable[Iterable[Any]]
    ) -> ModuleMatrix:
        """Build from any nested iterable of truthy (dark) / falsy (light) values."""
        return cls(
            symbology, tuple("".join("1" if v else "0" for v in row) for row in rows), version
        )

    @property
    def size(self) -> tuple[int, int]:
        """(columns, rows)."""
        return (len(self.rows[0]), len(self.rows))

    def dark(self, col: int, row: int) -> bool:
        if not (0 <= col < len(self.rows[0]) and 0 <= row < len(self.rows)):
            raise IndexError(f"module ({col}, {row}) is outside the {self.version} symbol")
        return self.rows[row][col] == "1"

    def dark_modules(self) -> Iterator[tuple[int, int]]:
        """(col, row) of every dark module, row by row from the top."""
        for r, line in enumerate(self.rows):
            for c, ch in enumerate(line):
                if ch == "1":
                    yield (c, r)

    def bools(self) -> list[list[bool]]:
        return [[ch == "1" for ch in line] for line in self.rows]


def encode_symbol(
    symbology: str, data: str, *, size: str = "auto", ec: str | None = None
) -> ModuleMatrix:
    """Encode ``data`` as a module matrix.

    ``size``: ``"auto"`` picks the smallest symbol; otherwise Data Matrix takes ``"NxN"`` (square
    only), QR a version number ``"1"``..``"40"``, Micro QR ``"M1"``..``"M4"``.
    ``ec``: QR ``L|M|Q|H`` (default M), Micro QR ``L|M|Q`` (default L); Data Matrix has none.
    Raises :class:`SymbolError` for anything that cannot be encoded exactly as asked.
    """
    if symbology not in SYMBOLOGIES:
        raise SymbolError(
            _("unknown symbology {symbology!r} (choose one of {join})").format(
                symbology=symbology, join=", ".join(SYMBOLOGIES)
            )
        )
    if not data:
        raise SymbolError(
            _("{symbology}: nothing to encode (the payload is empty)").format(symbology=symbology)
        )
    if symbology == "datamatrix":
        if ec is not None:
            raise SymbolError(
                _(
                    "datamatrix: ec={ec!r} is not an option (ECC200 fixes the error correction)"
                ).format(ec=ec)
            )
        return _encode_datamatrix(data, size)
    level = _DEFAULT_EC[symbology] if ec is None else ec.upper()
    if symbology == "qr":
        if level not in QR_EC_LEVELS:
            raise SymbolError(
                _("qr: ec={ec!r} is not one of {join}").format(ec=ec, join=", ".join(QR_EC_LEVELS))
            )
        return _encode_qr(data, size, level)
    if level not in MICROQR_EC_LEVELS:
        raise SymbolError(
            _("microqr: ec={ec!r} is not one of {join}").format(
                ec=ec, join=", ".join(MICROQR_EC_LEVELS)
            )
        )
    return _encode_microqr(data, size, level)


# --- Data Matrix -------------------------------------------------------------------------------


def _encode_datamatrix(data: str, size: str) -> ModuleMatrix:
    import zxingcpp

    options: dict[str, Any] = {"force_square": True}
    if not data.isascii():
        # without an ECI, readers guess the charset of bytes above 127 (zxing reads Shift_JIS)
        options["eci"] = _ECI_UTF8
    wanted: int | None = None
    if size.strip().lower() != "auto":
        wanted = _parse_dm_size(size)
        options["version"] = DATAMATRIX_SQUARE_SIZES[wanted]
    where = f"Data Matrix {size.strip()}" if wanted else "Data Matrix (largest 144x144)"
    try:
        barcode = zxingcpp.create_barcode(data, zxingcpp.BarcodeFormat.DataMatrix, **options)
    except ValueError as exc:
        raise SymbolError(
            _("the {n_data}-character payload does not fit {where}: {zint_reason}").format(
                n_data=len(data), where=where, zint_reason=_zint_reason(exc)
            )
        ) from exc
    rows = _zxing_modules(barcode)
    cols, nrows = len(rows[0]), len(rows)
    if cols != nrows or (wanted is not None and cols != wanted):
        # zint ignoring an option would otherwise go unnoticed (it drops unknown keys silently)
        raise SymbolError(
            _(
                "Data Matrix came out {cols}x{nrows} instead of {shape} for the {n_data}-character payload"
            ).format(cols=cols, nrows=nrows, shape=wanted or _("square"), n_data=len(data))
        )
    return ModuleMatrix("datamatrix", rows, f"{cols}x{nrows}")


def _parse_dm_size(size: str) -> int:
    m = _SIZE_RE.match(size)
    known = ", ".join(f"{n}x{n}" for n in DATAMATRIX_SQUARE_SIZES)
    if not m:
        raise SymbolError(
            _("Data Matrix size {size!r} is not 'auto' or 'NxN' (one of {known})").format(
                size=size, known=known
            )
        )
    a, b = int(m.group(1)), int(m.group(2))
    if a != b:
        raise SymbolError(
            _(
                "Data Matrix size {size!r} is rectangular; only square sizes are used ({known})"
            ).format(size=size, known=known)
        )
    if a not in DATAMATRIX_SQUARE_SIZES:
        raise SymbolError(
            _("Data Matrix size {size!r} does not exist (one of {known})").format(
                size=size, known=known
            )
        )
    return a


# --- QR ----------------------------------------------------------------------------------------


def _encode_qr(data: str, size: str, level: str) -> ModuleMatrix:
    import qrcode
    from qrcode.exceptions import DataOverflowError

    version: int | None = None
    if size.strip().lower() != "auto":
        text = size.strip()
        if not text.isdigit() or not 1 <= int(text) <= 40:
            raise SymbolError(
                _("QR size {size!r} is not 'auto' or a version number 1..40").format(size=size)
            )
        version = int(text)
    constants = {
        "L": qrcode.constants.ERROR_CORRECT_L,
        "M": qrcode.constants.ERROR_CORRECT_M,
        "Q": qrcode.constants.ERROR_CORRECT_Q,
        "H": qrcode.constants.ERROR_CORRECT_H,
    }
    code = qrcode.QRCode(version=version, error_correction=constants[level], border=0)
    code.add_data(data)
    try:
        code.make(fit=version is None)
    except (DataOverflowError, ValueError) as exc:
        where = f"QR version {version}-{level}" if version else f"QR version 40-{level}"
        raise SymbolError(
            _("the {n_data}-character payload does not fit {where} ({exc})").format(
                n_data=len(data), where=where, exc=exc
            )
        ) from exc
    matrix: Sequence[Sequence[bool]] = code.get_matrix()
    return ModuleMatrix.from_bools("qr", f"{code.version}-{level}", matrix)


# --- Micro QR ----------------------------------------------------------------------------------


def _encode_microqr(data: str, size: str, level: str) -> ModuleMatrix:
    import zxingcpp

    # Micro QR has no ECI: bytes outside ASCII come back in whatever charset the reader guesses
    for pos, ch in enumerate(data, 1):
        if not ch.isascii():
            raise SymbolError(
                _(
                    "microqr: character {ch!r} at position {pos} is not ASCII; Micro QR cannot carry it reliably (use datamatrix or qr)"
                ).format(ch=ch, pos=pos)
            )
    options: dict[str, Any] = {"ec_level": level}
    wanted: int | None = None
    if size.strip().lower() != "auto":
        text = size.strip().upper()
        if text not in ("M1", "M2", "M3", "M4"):
            raise SymbolError(
                _("Micro QR size {size!r} is not 'auto' or one of M1, M2, M3, M4").format(size=size)
            )
        wanted = int(text[1])
        options["version"] = wanted
    where = f"Micro QR M{wanted}-{level}" if wanted else f"Micro QR (largest M4-{level})"
    try:
        barcode = zxingcpp.create_barcode(data, zxingcpp.BarcodeFormat.MicroQRCode, **options)
    except ValueError as exc:
        raise SymbolError(
            _("the {n_data}-character payload does not fit {where}: {zint_reason}").format(
                n_data=len(data), where=where, zint_reason=_zint_reason(exc)
            )
        ) from exc
    rows = _zxing_modules(barcode)
    got = (len(rows) - 9) // 2  # M1..M4 are 11, 13, 15, 17 modules square
    if wanted is not None and got != wanted:
        # zint grows a fixed Micro QR version for some EC levels instead of failing
        raise SymbolError(
            _("the {n_data}-character payload does not fit {where} (needs M{got}-{level})").format(
                n_data=len(data), where=where, got=got, level=level
            )
        )
    label = "M1" if got == 1 else f"M{got}-{level}"  # M1 only detects errors
    return ModuleMatrix("microqr", rows, label)


# --- zxing helpers -----------------------------------------------------------------------------


def _zxing_modules(barcode: zxingcpp.Barcode) -> tuple[str, ...]:
    """Exactly one pixel per module, top row first (checked against the finder patterns in tests)."""
    import numpy as np

    pixels = np.asarray(barcode.to_image(scale=1, add_quiet_zones=False))
    if pixels.ndim == 3:  # some builds return RGB; any channel will do for black/white
        pixels = pixels[:, :, 0]
    dark = pixels == 0
    return tuple("".join("1" if v else "0" for v in row) for row in dark.tolist())


def _zint_reason(exc: ValueError) -> str:
    # "Error 522: Input too long for Version 2, requires 16 codewords (maximum 5) (retval: 5)"
    text = str(exc)
    text = re.sub(r"^Error \d+:\s*", "", text)
    text = re.sub(r" for Version \d+,", ",", text)  # zint's size index means nothing to a user
    return re.sub(r"\s*\(retval: \d+\)\s*$", "", text)
