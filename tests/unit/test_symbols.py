"""2D symbols: exact module matrices that decode back, fixed sizes, and every refusal."""

from __future__ import annotations

import numpy as np
import pytest
import segno
import zxingcpp
from hypothesis import assume, given
from hypothesis import strategies as st
from PIL import Image

from markstation.errors import JobError, SymbolError
from markstation.job.symbols import DATAMATRIX_SQUARE_SIZES, ModuleMatrix, encode_symbol

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"
codes = st.text(alphabet=ALPHABET, min_size=6, max_size=30)
EXAMPLE = "PE-SUCAMEC-2016-000123"

FORMATS = {
    "datamatrix": zxingcpp.BarcodeFormat.DataMatrix,
    "qr": zxingcpp.BarcodeFormat.QRCode,
    "microqr": zxingcpp.BarcodeFormat.MicroQRCode,
}
QUIET = {"datamatrix": 2, "qr": 4, "microqr": 2}


def render(matrix: ModuleMatrix, px: int = 8) -> Image.Image:
    """Plain numpy -> PIL rendering: black modules, white quiet zone, ``px`` pixels per module."""
    dark = np.array(matrix.bools(), dtype=bool)
    dark = np.pad(dark, QUIET[matrix.symbology])
    pixels = np.where(dark, 0, 255).astype(np.uint8)
    return Image.fromarray(np.kron(pixels, np.ones((px, px), dtype=np.uint8)))


def decode(matrix: ModuleMatrix, px: int = 8) -> list[str]:
    formats = zxingcpp.BarcodeFormats(FORMATS[matrix.symbology])
    found = zxingcpp.read_barcodes(render(matrix, px), formats=formats)
    return [r.text for r in found]


def finder_ok(block: list[list[bool]]) -> bool:
    """A 7x7 QR finder: dark ring, light ring, dark 3x3 centre."""
    for r in range(7):
        for c in range(7):
            ring = min(r, c, 6 - r, 6 - c)
            if block[r][c] != (ring != 1):
                return False
    return True


def sub(matrix: ModuleMatrix, r0: int, c0: int, n: int = 7) -> list[list[bool]]:
    return [[matrix.dark(c0 + c, r0 + r) for c in range(n)] for r in range(n)]


# --- round trips -------------------------------------------------------------------------------


@pytest.mark.timeout(60)
@given(data=codes, px=st.integers(6, 8))
def test_datamatrix_round_trip_and_orientation(data: str, px: int) -> None:
    m = encode_symbol("datamatrix", data)
    cols, rows = m.size
    assert cols == rows and m.version == f"{cols}x{rows}" and cols in DATAMATRIX_SQUARE_SIZES
    # finder L on the left and bottom, clock track on the top and the right
    assert all(m.dark(0, r) for r in range(rows))
    assert all(m.dark(c, rows - 1) for c in range(cols))
    assert all(m.dark(c, 0) == (c % 2 == 0) for c in range(cols))
    assert all(m.dark(cols - 1, r) == (r % 2 == 1) for r in range(rows))
    assert decode(m, px) == [data]


@pytest.mark.timeout(60)
@given(data=codes, ec=st.sampled_from("LMQH"), px=st.integers(6, 8))
def test_qr_round_trip_orientation_and_segno_cross_check(data: str, ec: str, px: int) -> None:
    m = encode_symbol("qr", data, ec=ec)
    n = m.size[0]
    version = int(m.version.split("-")[0])
    assert m.size == (n, n) and n == 17 + 4 * version and m.version.endswith(f"-{ec}")
    assert finder_ok(sub(m, 0, 0)) and finder_ok(sub(m, 0, n - 7)) and finder_ok(sub(m, n - 7, 0))
    assert not finder_ok(sub(m, n - 7, n - 7))
    assert decode(m, px) == [data]
    # an independent encoder picks the same version and draws the same function patterns
    other = segno.make_qr(data, error=ec.lower(), boost_error=False)
    theirs = ModuleMatrix.from_bools("qr", "segno", other.matrix)
    assert theirs.size == m.size
    for r0, c0 in ((0, 0), (0, n - 7), (n - 7, 0)):
        assert sub(theirs, r0, c0) == sub(m, r0, c0)
    assert theirs.rows[6] == m.rows[6]  # horizontal timing pattern
    assert decode(theirs, px) == [data]


@pytest.mark.timeout(60)
@given(data=codes, ec=st.sampled_from("LMQ"), px=st.integers(6, 8))
def test_microqr_round_trip_where_it_fits(data: str, ec: str, px: int) -> None:
    try:
        m = encode_symbol("microqr", data, ec=ec)
    except SymbolError as exc:
        # it may only refuse what really does not fit: not even segno's single-mode encoder fits it
        assert "does not fit Micro QR" in str(exc)
        with pytest.raises(segno.DataOverflowError):
            segno.make_micro(data, error=ec.lower(), boost_error=False)
        assume(False)
        return
    n = m.size[0]
    assert m.size == (n, n) and n in (11, 13, 15, 17)
    assert m.version == ("M1" if n == 11 else f"M{(n - 9) // 2}-{ec}")
    assert finder_ok(sub(m, 0, 0))
    assert all(m.dark(c, 0) == (c % 2 == 0) for c in range(8, n))  # timing along the top
    assert all(m.dark(0, r) == (r % 2 == 0) for r in range(8, n))  # and down the left side
    assert decode(m, px) == [data]


def test_short_alphanumeric_codes_always_fit_micro_qr_m4_l() -> None:
    # M4-L holds 21 alphanumeric characters
    for length in (6, 14, 21):
        data = (EXAMPLE * 2)[:length]
        assert decode(encode_symbol("microqr", data)) == [data]


def test_reference_payload_sizes() -> None:
    assert encode_symbol("datamatrix", EXAMPLE).version == "18x18"
    assert encode_symbol("qr", EXAMPLE).version == "2-M"
    assert encode_symbol("microqr", EXAMPLE).version == "M4-L"
    assert encode_symbol("microqr", "12345").version == "M1"


def test_datamatrix_and_qr_carry_accented_capitals() -> None:
    for symbology in ("datamatrix", "qr"):
        m = encode_symbol(symbology, "AÑO-ÁÉÍÓÚÜÇ-7")
        assert decode(m) == ["AÑO-ÁÉÍÓÚÜÇ-7"]


# --- fixed sizes -------------------------------------------------------------------------------


@pytest.mark.timeout(60)
@given(data=codes, size=st.sampled_from(sorted(DATAMATRIX_SQUARE_SIZES)[:12]))
def test_datamatrix_fixed_size_is_exact_or_refused(data: str, size: int) -> None:
    smallest = encode_symbol("datamatrix", data).size[0]
    if size >= smallest:
        m = encode_symbol("datamatrix", data, size=f"{size}x{size}")
        assert m.size == (size, size) and m.version == f"{size}x{size}"
        assert decode(m) == [data]
    else:
        with pytest.raises(SymbolError, match=rf"{len(data)}-character .*{size}x{size}"):
            encode_symbol("datamatrix", data, size=f"{size}x{size}")


def test_qr_and_microqr_fixed_versions() -> None:
    assert encode_symbol("qr", EXAMPLE, size="5", ec="H").size == (37, 37)
    assert encode_symbol("microqr", "AB-12", size="M3", ec="M").version == "M3-M"
    assert decode(encode_symbol("microqr", "AB-12", size="M4", ec="Q")) == ["AB-12"]


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "pattern"),
    [
        (("datamatrix", "X"), {"size": "12x26"}, r"'12x26' is rectangular"),
        (("datamatrix", "X"), {"size": "16x48"}, r"'16x48' is rectangular"),
        (("datamatrix", "X"), {"size": "11x11"}, r"'11x11' does not exist"),
        (("datamatrix", "X"), {"size": "large"}, r"'large' is not 'auto' or 'NxN'"),
        (("datamatrix", EXAMPLE), {"size": "12x12"}, r"22-character payload .* Data Matrix 12x12"),
        (("datamatrix", "A" * 4000), {}, r"4000-character payload does not fit Data Matrix"),
        (("datamatrix", "X"), {"ec": "M"}, r"datamatrix: ec='M' is not an option"),
        (("microqr", EXAMPLE + "-9"), {}, r"24-character payload does not fit Micro QR"),
        (("microqr", EXAMPLE), {"ec": "M"}, r"22-character payload does not fit Micro QR"),
        (("microqr", EXAMPLE), {"size": "M3"}, r"does not fit Micro QR M3-L"),
        (("microqr", "AB-12"), {"size": "M2", "ec": "Q"}, r"does not fit Micro QR M2-Q"),
        (("microqr", "12345"), {"size": "M1", "ec": "M"}, r"does not fit Micro QR M1-M"),
        (("microqr", "X"), {"size": "M5"}, r"Micro QR size 'M5'"),
        (("microqr", "X"), {"ec": "H"}, r"microqr: ec='H' is not one of L, M, Q"),
        (("microqr", "AÑ"), {}, r"'Ñ' at position 2 is not ASCII"),
        (("qr", "X"), {"ec": "X"}, r"qr: ec='X' is not one of L, M, Q, H"),
        (("qr", "X"), {"size": "41"}, r"QR size '41'"),
        (("qr", "A" * 100), {"size": "1"}, r"100-character payload does not fit QR version 1-M"),
        (("qr", "A" * 5000), {"ec": "H"}, r"5000-character payload does not fit QR"),
        (("qr", ""), {}, r"qr: nothing to encode"),
        (("aztec", "X"), {}, r"unknown symbology 'aztec'"),
    ],
)
def test_refusals(args: tuple[str, str], kwargs: dict[str, str], pattern: str) -> None:
    with pytest.raises(SymbolError, match=pattern) as info:
        encode_symbol(*args, **kwargs)
    assert isinstance(info.value, JobError)
    assert "\n" not in str(info.value)


def test_module_matrix_validates_and_answers() -> None:
    m = ModuleMatrix.from_bools("qr", "t", [[1, 0, 0], [0, 1, 1]])
    assert m.rows == ("100", "011") and m.size == (3, 2)
    assert m.dark(0, 0) and not m.dark(1, 0) and m.dark(2, 1)
    assert list(m.dark_modules()) == [(0, 0), (1, 1), (2, 1)]
    with pytest.raises(IndexError):
        m.dark(3, 0)
    with pytest.raises(ValueError, match="row 1"):
        ModuleMatrix("qr", ("10", "1"), "t")
    with pytest.raises(ValueError, match="row 0"):
        ModuleMatrix("qr", ("1x",), "t")
    with pytest.raises(ValueError, match="at least one"):
        ModuleMatrix("qr", (), "t")
