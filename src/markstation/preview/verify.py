"""The decode check: every 2D code of a job read back from its rendered burn with zxing-cpp.

:func:`verify_codes` refuses (:class:`~markstation.errors.VerifyError`) unless each code reads back
exactly; :func:`check_codes` reports without raising. numpy and zxing-cpp load on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from markstation.errors import VerifyError
from markstation.job.ir import CodeRegion, Job, Point
from markstation.preview.raster import burn_mask, job_strokes
from markstation.preview.scene import symbology_name

if TYPE_CHECKING:
    import zxingcpp

    from markstation.profiles import MachineProfile

#: finest module size in pixels the decode raster uses; zxing is reliable from ~3 px/module
VERIFY_PX_PER_MODULE = 8.0
#: the spot radius is never drawn narrower than half a pixel; this keeps it real at verify scale
VERIFY_PX_PER_SPOT = 1.0


@dataclass(frozen=True, slots=True)
class CodeCheck:
    """One 2D code read back from the rendered burn."""

    symbology: str
    payload: str
    decoded: str | None

    @property
    def ok(self) -> bool:
        return self.decoded == self.payload

    def describe(self) -> str:
        name = symbology_name(self.symbology)
        if self.ok:
            return f"{name} decodes: {self.decoded} ✓"
        read = "nothing decoded" if self.decoded is None else f"read {self.decoded!r}"
        return f"{name} does not decode to {self.payload!r}: {read}"


def _zxing_format(symbology: str) -> zxingcpp.BarcodeFormats:
    import zxingcpp

    formats = {
        "datamatrix": zxingcpp.BarcodeFormat.DataMatrix,
        "qr": zxingcpp.BarcodeFormat.QRCode,
        "microqr": zxingcpp.BarcodeFormat.MicroQRCode,
    }
    if symbology not in formats:
        raise VerifyError(f"cannot verify a '{symbology}' code (known: {', '.join(formats)})")
    return zxingcpp.BarcodeFormats(formats[symbology])


def decode_region(
    strokes: Sequence[Sequence[Point]], code: CodeRegion, *, spot_mm: float
) -> CodeCheck:
    """Rasterise the code's area of the burn finely enough for the real spot width and decode it."""
    import numpy as np
    import zxingcpp

    fmt = _zxing_format(code.symbology)
    px_per_mm = max(VERIFY_PX_PER_MODULE / code.module_mm, VERIFY_PX_PER_SPOT / spot_mm)
    x0, y0, x1, y1 = code.bbox
    # keep the raster modest for huge symbols: zxing needs ~3 px per module, not more
    longest = max(x1 - x0, y1 - y0)
    px_per_mm = min(px_per_mm, max(2000 / longest, 3.0 / code.module_mm))
    burned = burn_mask(strokes, spot_mm=spot_mm, bounds=code.bbox, px_per_mm=px_per_mm)
    # a scanner sees burned modules dark; an inverse code burns the light modules instead
    gray = burned if code.inverse else 255 - burned
    pad = max(4, round(2 * code.module_mm * px_per_mm))
    gray = np.pad(gray, pad, constant_values=255)
    found = zxingcpp.read_barcodes(
        np.ascontiguousarray(gray),
        formats=fmt,
        try_invert=False,
        text_mode=zxingcpp.TextMode.Plain,
    )
    texts = [b.text for b in found]
    if code.payload in texts:
        decoded: str | None = code.payload
    else:
        decoded = texts[0] if texts else None
    return CodeCheck(code.symbology, code.payload, decoded)


def check_codes(job: Job, machine: MachineProfile) -> list[CodeCheck]:
    """Decode every 2D code of ``job`` from its rendered burn; never raises on a mismatch."""
    strokes = job_strokes(job)
    return [decode_region(strokes, code, spot_mm=machine.spot_mm) for code in job.codes]


def verify_codes(job: Job, machine: MachineProfile) -> list[CodeCheck]:
    """Decode every 2D code from the rendered burn; :class:`VerifyError` unless each reads back exactly.

    Each code's area (quiet zone included) is rasterised at ≥ 8 px per module with the stroke width
    of the machine's real spot, inverted for inverse codes, and read by zxing-cpp restricted to the
    code's symbology. The decoded text must equal the payload character for character.
    """
    checks = check_codes(job, machine)
    for check in checks:
        if not check.ok:
            raise VerifyError(check.describe())
    return checks
