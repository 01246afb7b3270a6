"""The decode check: every 2D code of a job read back from its rendered burn with zxing-cpp.

:func:`verify_codes` refuses (:class:`~markstation.errors.VerifyError`) unless each code reads back
exactly; :func:`check_codes` reports without raising. numpy and zxing-cpp load on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from markstation.errors import VerifyError
from markstation.i18n import _
from markstation.job.ir import CodeRegion, Job, Point
from markstation.preview.grade import CodeGrade
from markstation.preview.raster import burn_mask, job_strokes
from markstation.preview.scene import symbology_name

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
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
    #: the verification grade of the burn (:mod:`markstation.preview.grade`); None if not graded
    grade: CodeGrade | None = None

    @property
    def ok(self) -> bool:
        return self.decoded == self.payload

    def describe(self) -> str:
        name = symbology_name(self.symbology)
        if self.ok and self.grade is not None:
            return _("{name} decodes: {decoded} ✓ grade {grade}").format(
                name=name, decoded=self.decoded, grade=self.grade.short()
            )
        if self.ok:
            return _("{name} decodes: {decoded} ✓").format(name=name, decoded=self.decoded)
        read = (
            _("nothing decoded")
            if self.decoded is None
            else _("read {decoded!r}").format(decoded=self.decoded)
        )
        return _("{name} does not decode to {payload!r}: {read}").format(
            name=name, payload=self.payload, read=read
        )


def _zxing_format(symbology: str) -> zxingcpp.BarcodeFormats:
    import zxingcpp

    formats = {
        "datamatrix": zxingcpp.BarcodeFormat.DataMatrix,
        "qr": zxingcpp.BarcodeFormat.QRCode,
        "microqr": zxingcpp.BarcodeFormat.MicroQRCode,
    }
    if symbology not in formats:
        raise VerifyError(
            _("cannot verify a '{symbology}' code (known: {known})").format(
                symbology=symbology, known=", ".join(formats)
            )
        )
    return zxingcpp.BarcodeFormats(formats[symbology])


def code_raster(
    strokes: Sequence[Sequence[Point]], code: CodeRegion, *, spot_mm: float
) -> tuple[npt.NDArray[np.uint8], float, int]:
    """The code's area of the burn as a scanner sees it: (gray uint8, px per mm, border px).

    Rasterised finely enough for the real spot width (≥ 8 px per module), burned modules dark
    (light for an inverse code), with a light border of ``pad`` pixels all round.
    """
    import numpy as np

    px_per_mm = max(VERIFY_PX_PER_MODULE / code.module_mm, VERIFY_PX_PER_SPOT / spot_mm)
    x0, y0, x1, y1 = code.bbox
    # keep the raster modest for huge symbols: zxing needs ~3 px per module, not more
    longest = max(x1 - x0, y1 - y0)
    px_per_mm = min(px_per_mm, max(2000 / longest, 3.0 / code.module_mm))
    burned = burn_mask(strokes, spot_mm=spot_mm, bounds=code.bbox, px_per_mm=px_per_mm)
    # a scanner sees burned modules dark; an inverse code burns the light modules instead
    gray = burned if code.inverse else 255 - burned
    pad = max(4, round(2 * code.module_mm * px_per_mm))
    return np.pad(gray, pad, constant_values=255), px_per_mm, pad


def read_raster(
    gray: npt.NDArray[np.uint8],
    code: CodeRegion,
    *,
    px_per_mm: float,
    pad: int,
    grade: bool = True,
) -> CodeCheck:
    """Decode (and with ``grade``, grade) a raster of :func:`code_raster`, possibly altered."""
    import numpy as np
    import zxingcpp

    from markstation.preview.grade import grade_code, position_angle

    found = zxingcpp.read_barcodes(
        np.ascontiguousarray(gray),
        formats=_zxing_format(code.symbology),
        try_invert=False,
        text_mode=zxingcpp.TextMode.Plain,
    )
    texts = [b.text for b in found]
    if code.payload in texts:
        decoded: str | None = code.payload
    else:
        decoded = texts[0] if texts else None
    graded: CodeGrade | None = None
    if grade and code.matrix:
        hit = next((b for b in found if b.text == code.payload), None)
        graded = grade_code(
            gray,
            code,
            px_per_mm=px_per_mm,
            pad_px=pad,
            decoded=hit is not None,
            angle_deg=None if hit is None else position_angle(hit.position),
        )
    return CodeCheck(code.symbology, code.payload, decoded, graded)


def decode_region(
    strokes: Sequence[Sequence[Point]],
    code: CodeRegion,
    *,
    spot_mm: float,
    grade: bool = True,
) -> CodeCheck:
    """Rasterise the code's area of the burn finely enough for the real spot width and decode it.

    With ``grade`` (the default) the same raster is graded (:mod:`markstation.preview.grade`).
    """
    gray, px_per_mm, pad = code_raster(strokes, code, spot_mm=spot_mm)
    return read_raster(gray, code, px_per_mm=px_per_mm, pad=pad, grade=grade)


def check_codes(job: Job, machine: MachineProfile) -> list[CodeCheck]:
    """Decode every 2D code of ``job`` from its rendered burn; never raises on a mismatch."""
    strokes = job_strokes(job, machine.spot_mm)
    return [decode_region(strokes, code, spot_mm=machine.spot_mm) for code in job.codes]


def verify_codes(job: Job, machine: MachineProfile) -> list[CodeCheck]:
    """Decode every 2D code from the rendered burn; :class:`VerifyError` unless each reads back exactly.

    Each check carries the code's verification grade (:mod:`markstation.preview.grade`). Each code's area (quiet zone included) is rasterised at ≥ 8 px per module with the stroke width
    of the machine's real spot, inverted for inverse codes, and read by zxing-cpp restricted to the
    code's symbology. The decoded text must equal the payload character for character.
    """
    checks = check_codes(job, machine)
    for check in checks:
        if not check.ok:
            raise VerifyError(check.describe())
    return checks
