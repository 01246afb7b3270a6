"""Dry-run preview: what the laser would burn, as a picture, and whether its 2D codes read back.

* :func:`rasterize` draws strokes (mm, y up) at the real spot width with round caps and joins into a
  mode-"L" image (255 = burned). Both device simulators render their burn ledgers with it, so a
  simulated burn and a preview can be compared pixel for pixel with :func:`overlap`.
* :func:`render_png` / :func:`render_svg` write the operator's preview: the burn on a material-like
  background, rulers in mm, the field and safe-area outlines, the job's bounding box and a caption.
* :func:`verify_codes` decodes every 2D code of a job from its rendered burn with zxing-cpp and
  refuses (:class:`~markstation.errors.VerifyError`) unless each reads back exactly.

Pillow, numpy and zxing-cpp are imported inside the functions that need them, so importing this
module stays cheap for the CLI.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from markstation.errors import ConfigError, VerifyError
from markstation.job.ir import CodeRegion, Job, Point

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import zxingcpp
    from PIL import Image

    from markstation.profiles import LayoutProfile, MachineProfile

Bounds = tuple[float, float, float, float]

#: largest raster the preview functions will allocate (pixels per side), a guard against typos
MAX_RASTER_PX = 12000


# --- burn raster -----------------------------------------------------------------------------------


def raster_size(bounds: Bounds, px_per_mm: float) -> tuple[int, int]:
    """(width, height) in pixels of a raster covering ``bounds`` at ``px_per_mm``."""
    x0, y0, x1, y1 = bounds
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"empty raster bounds {bounds}")
    if not (px_per_mm > 0 and math.isfinite(px_per_mm)):
        raise ValueError(f"px_per_mm must be a positive number, got {px_per_mm}")
    width = max(1, math.ceil((x1 - x0) * px_per_mm - 1e-9))
    height = max(1, math.ceil((y1 - y0) * px_per_mm - 1e-9))
    if width > MAX_RASTER_PX or height > MAX_RASTER_PX:
        raise ConfigError(
            f"a {width} × {height} px raster is too large (limit {MAX_RASTER_PX} px per side); "
            f"lower --px-per-mm"
        )
    return width, height


def rasterize(
    polylines: Sequence[Sequence[Point]],
    *,
    spot_mm: float,
    bounds: Bounds,
    px_per_mm: float,
) -> Image.Image:
    """Draw strokes as the laser burns them: mode "L", 255 = burned, 0 = untouched.

    ``bounds`` = (x_min, y_min, x_max, y_max) in mm; image row 0 is ``y_max`` (y points up in mm,
    down in the image). Each stroke is the set of points within ``spot_mm / 2`` of its path (round
    caps and joins); a one-point stroke is a disc of the spot diameter. A pixel is burned when its
    centre lies inside. A spot narrower than one pixel is drawn one pixel wide, so thin strokes stay
    visible and connected at coarse scales.
    """
    from PIL import Image

    width, height = raster_size(bounds, px_per_mm)
    mask = burn_mask(polylines, spot_mm=spot_mm, bounds=bounds, px_per_mm=px_per_mm)
    return Image.frombytes("L", (width, height), mask.tobytes())


def burn_mask(
    polylines: Sequence[Sequence[Point]],
    *,
    spot_mm: float,
    bounds: Bounds,
    px_per_mm: float,
) -> npt.NDArray[np.uint8]:
    """The raster of :func:`rasterize` as a (height, width) uint8 array (255 = burned).

    Vectorised scanline fill: every stroke segment widened by the spot radius is a convex capsule,
    so each pixel row cuts it in one interval; intervals become +1/-1 marks in a difference array
    whose running sum along the row gives the coverage. No per-stroke drawing calls.
    """
    import numpy as np

    width, height = raster_size(bounds, px_per_mm)
    x0, _, _, y1 = bounds
    r = max(spot_mm / 2 * px_per_mm, 0.5)
    ax_l: list[float] = []
    ay_l: list[float] = []
    bx_l: list[float] = []
    by_l: list[float] = []
    for stroke in polylines:
        n = len(stroke)
        if n == 0:
            continue
        if n == 1:
            ax_l.append(stroke[0][0])
            ay_l.append(stroke[0][1])
            bx_l.append(stroke[0][0])
            by_l.append(stroke[0][1])
            continue
        for i in range(n - 1):
            ax_l.append(stroke[i][0])
            ay_l.append(stroke[i][1])
            bx_l.append(stroke[i + 1][0])
            by_l.append(stroke[i + 1][1])
    out = np.zeros((height, width), dtype=np.uint8)
    if not ax_l:
        return out
    # image coordinates, continuous: pixel (i, j) spans [i, i+1] x [j, j+1], its centre at +0.5
    ax = (np.asarray(ax_l, dtype=np.float64) - x0) * px_per_mm
    bx = (np.asarray(bx_l, dtype=np.float64) - x0) * px_per_mm
    ay = (y1 - np.asarray(ay_l, dtype=np.float64)) * px_per_mm
    by = (y1 - np.asarray(by_l, dtype=np.float64)) * px_per_mm

    # rows whose centre may meet each capsule
    row_lo = np.ceil(np.minimum(ay, by) - r - 0.5)
    row_hi = np.floor(np.maximum(ay, by) + r - 0.5)
    keep = (
        (row_hi >= 0)
        & (row_lo <= height - 1)
        & (np.maximum(ax, bx) + r >= 0)
        & (np.minimum(ax, bx) - r <= width)
    )
    if not keep.any():
        return out
    ax, ay, bx, by = ax[keep], ay[keep], bx[keep], by[keep]
    row_lo = np.clip(row_lo[keep], 0, height - 1).astype(np.int64)
    row_hi = np.clip(row_hi[keep], 0, height - 1).astype(np.int64)
    counts = row_hi - row_lo + 1
    seg = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    rows = row_lo[seg] + (np.arange(len(seg)) - starts[seg])
    yc = rows + 0.5
    sax, say, sbx, sby = ax[seg], ay[seg], bx[seg], by[seg]

    r2 = r * r
    inf = np.inf
    left = np.full(len(seg), inf)
    right = np.full(len(seg), -inf)
    # the end discs
    for cx, cy in ((sax, say), (sbx, sby)):
        d2 = r2 - (yc - cy) ** 2
        ok = d2 >= 0
        h = np.sqrt(np.where(ok, d2, 0.0))
        left = np.where(ok, np.minimum(left, cx - h), left)
        right = np.where(ok, np.maximum(right, cx + h), right)
    # the rectangle between them: 0 <= (p-a).u <= L and |(p-a).n| <= r, linear in x on the row
    dx, dy = sbx - sax, sby - say
    length = np.hypot(dx, dy)
    has_body = length > 1e-12
    safe_len = np.where(has_body, length, 1.0)
    ux, uy = dx / safe_len, dy / safe_len
    nx, ny = -uy, ux
    lo_x = np.full(len(seg), -inf)
    hi_x = np.full(len(seg), inf)
    valid = has_body.copy()
    for slope, const, lo, hi in (
        (ux, (yc - say) * uy - sax * ux, 0.0, length),
        (nx, (yc - say) * ny - sax * nx, -r, r),
    ):
        steep = np.abs(slope) > 1e-12
        safe_slope = np.where(steep, slope, 1.0)
        e1 = (lo - const) / safe_slope
        e2 = (hi - const) / safe_slope
        lo_x = np.where(steep, np.maximum(lo_x, np.minimum(e1, e2)), lo_x)
        hi_x = np.where(steep, np.minimum(hi_x, np.maximum(e1, e2)), hi_x)
        # a constraint flat along the row holds for the whole row or for none of it
        valid &= steep | ((const >= lo) & (const <= hi))
    valid &= lo_x <= hi_x
    left = np.where(valid, np.minimum(left, lo_x), left)
    right = np.where(valid, np.maximum(right, hi_x), right)

    # pixel i is burned when xl <= i + 0.5 <= xr
    i0 = np.ceil(left - 0.5)
    i1 = np.floor(right - 0.5)
    i0 = np.clip(np.nan_to_num(i0, posinf=width, neginf=0), 0, width).astype(np.int64)
    i1 = np.clip(np.nan_to_num(i1, posinf=width - 1, neginf=-1), -1, width - 1).astype(np.int64)
    hit = i0 <= i1
    rows, i0, i1 = rows[hit], i0[hit], i1[hit]
    stride = width + 1
    marks = np.bincount(rows * stride + i0, minlength=height * stride) - np.bincount(
        rows * stride + i1 + 1, minlength=height * stride
    )
    cover = np.cumsum(marks.reshape(height, stride)[:, :width], axis=1)
    out[cover > 0] = 255
    return out


def overlap(a: Image.Image, b: Image.Image) -> float:
    """Intersection over union of the burned pixels (> 127) of two same-size rasters.

    1.0 for identical burns (and for two empty ones), 0.0 for disjoint ones.
    """
    import numpy as np

    if a.size != b.size:
        raise ValueError(f"cannot compare rasters of different sizes {a.size} and {b.size}")
    aa = np.asarray(a.convert("L")) > 127
    bb = np.asarray(b.convert("L")) > 127
    union = int(np.count_nonzero(aa | bb))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(aa & bb)) / union


def job_strokes(job: Job) -> list[list[Point]]:
    """Every primitive of the job in order as a list of points (a Dot is one point), one pass."""
    return [list(prim.points) for _, prim in job.primitives()]


# --- decode check -------------------------------------------------------------------------------

_SYMBOLOGY_NAMES = {"datamatrix": "Data Matrix", "qr": "QR", "microqr": "Micro QR"}

#: finest module size in pixels the decode raster uses; zxing is reliable from ~3 px/module
VERIFY_PX_PER_MODULE = 8.0
#: the spot radius is never drawn narrower than half a pixel; this keeps it real at verify scale
VERIFY_PX_PER_SPOT = 1.0


def symbology_name(symbology: str) -> str:
    """'Data Matrix', 'QR', 'Micro QR' for the IR's symbology keys."""
    return _SYMBOLOGY_NAMES.get(symbology, symbology)


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


# --- the operator's picture ---------------------------------------------------------------------

RGB = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class Surface:
    """How a material looks: the part's colour and the colour of a burn on it."""

    background: RGB
    mark: RGB
    grid: RGB

    @property
    def dark(self) -> bool:
        return sum(self.background) < 3 * 128


_DARK_SURFACE = Surface(background=(44, 50, 62), mark=(226, 230, 236), grid=(66, 74, 88))
_LIGHT_SURFACE = Surface(background=(204, 208, 213), mark=(28, 30, 36), grid=(186, 191, 197))
#: material-name keywords that mean a dark finish (marks come out lighter than the surface)
_DARK_WORDS = ("blued", "black", "oxide", "anodis", "anodiz", "parkeri", "cerakote", "dark")


def surface_for(material_name: str) -> Surface:
    """Colours for a material: dark finishes show light marks, bare metal shows dark marks."""
    name = material_name.lower()
    return _DARK_SURFACE if any(w in name for w in _DARK_WORDS) else _LIGHT_SURFACE


@dataclass(frozen=True, slots=True)
class PreviewInfo:
    """Figures the preview's caption (and the CLI) report about a job."""

    code: str
    layout: str
    material: str
    machine: str
    size_mm: tuple[float, float]
    strokes: int
    marked_mm: float
    jump_mm: float
    estimate_s: float


def preview_info(job: Job) -> PreviewInfo:
    from markstation.job.estimate import estimate

    meta = job.meta_dict()
    box = job.bounds()
    size = (0.0, 0.0) if box is None else (box[2] - box[0], box[3] - box[1])
    return PreviewInfo(
        code=meta.get("mark_code", ""),
        layout=meta.get("layout", ""),
        material=meta.get("material", ""),
        machine=meta.get("machine", ""),
        size_mm=size,
        strokes=job.primitive_count(),
        marked_mm=job.marked_length(),
        jump_mm=job.jump_length(),
        estimate_s=estimate(job).total_s,
    )


def safe_area_of(job: Job, layout: LayoutProfile | None) -> Bounds | None:
    """The layout's safe area: from the profile when given, else as recorded in the job's meta."""
    if layout is not None:
        r = layout.safe_area
        return (r.x_min, r.y_min, r.x_max, r.y_max)
    raw = job.meta_dict().get("safe_area")
    if not raw:
        return None
    try:
        x0, y0, x1, y1 = (float(v) for v in raw.split(","))
    except ValueError:
        return None
    return (x0, y0, x1, y1)


def _union(a: Bounds | None, b: Bounds | None) -> Bounds | None:
    if a is None:
        return b
    if b is None:
        return a
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def view_bounds(job: Job, machine: MachineProfile, safe_area: Bounds | None) -> Bounds:
    """What the preview shows: the safe area and the burn, with a margin, clipped to the field."""
    box = _union(job.bounds(), safe_area)
    for code in job.codes:
        box = _union(box, code.bbox)
    if box is None:
        fld = machine.field
        return (fld.x_min, fld.y_min, fld.x_max, fld.y_max)
    w, h = box[2] - box[0], box[3] - box[1]
    pad = max(1.0, 0.06 * max(w, h))
    x0, y0, x1, y1 = box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad
    fld = machine.field
    # never more than a little beyond the field: outside it nothing can be marked
    edge = 0.04 * max(fld.width, fld.height)
    return (
        max(x0, fld.x_min - edge),
        max(y0, fld.y_min - edge),
        min(x1, fld.x_max + edge),
        min(y1, fld.y_max + edge),
    )


def _nice_step(span_mm: float, target_divisions: float) -> float:
    """A 1-2-5 step giving about ``target_divisions`` divisions of ``span_mm``."""
    raw = span_mm / max(target_divisions, 1.0)
    exp = math.floor(math.log10(raw)) if raw > 0 else 0
    for mult in (1.0, 2.0, 5.0, 10.0):
        step = mult * 10.0**exp
        if step >= raw:
            return step
    return 10.0 ** (exp + 1)


def _fmt_mm(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def default_px_per_mm(view: Bounds) -> float:
    """Scale that fits the view in about 1500 × 900 px, between 2 and 200 px/mm."""
    w, h = view[2] - view[0], view[3] - view[1]
    return min(200.0, max(2.0, min(1500.0 / w, 900.0 / h)))


def render_png(
    job: Job,
    machine: MachineProfile,
    path: str | Path,
    *,
    px_per_mm: float | None = None,
    layout: LayoutProfile | None = None,
    material_name: str | None = None,
    checks: Sequence[CodeCheck] = (),
) -> Path:
    """Write the operator's preview PNG; returns the path written.

    Shows the burn at the machine's spot width (supersampled, so thin strokes keep their weight)
    on a surface coloured after the material, a millimetre grid and rulers in field coordinates,
    the field and safe-area outlines, the job's bounding box with its size, a scale bar, a detail
    view of the first 2D code at high magnification, and a caption with code, profiles, stroke
    count, lengths and the estimated marking time. ``checks`` (from :func:`check_codes`) add the
    decode result to the detail view.
    """
    from markstation.preview_draw import draw_preview

    out = Path(path)
    meta = job.meta_dict()
    surface = surface_for(material_name or meta.get("material", ""))
    view = view_bounds(job, machine, safe_area_of(job, layout))
    scale = px_per_mm if px_per_mm is not None else default_px_per_mm(view)
    image = draw_preview(
        job,
        machine,
        view=view,
        px_per_mm=scale,
        surface=surface,
        safe_area=safe_area_of(job, layout),
        info=preview_info(job),
        checks=checks,
    )
    try:
        image.save(out, format="PNG", optimize=False)
    except OSError as exc:
        raise ConfigError(f"{out}: cannot write the preview ({exc.strerror or exc})") from exc
    return out


# --- SVG ----------------------------------------------------------------------------------------


def _n(value: float) -> str:
    """A coordinate for SVG text: 4 decimals (0.1 µm), no trailing zeros, no '-0'."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _esc(text: str) -> str:
    from xml.sax.saxutils import escape

    return escape(text, {'"': "&quot;"})


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def svg_text(
    job: Job,
    machine: MachineProfile,
    *,
    layout: LayoutProfile | None = None,
    material_name: str | None = None,
) -> str:
    """The preview as SVG source: millimetre user units, +y up in the field flipped to SVG's down.

    Every stroke is a ``<polyline>`` with ``stroke-width`` = the machine's spot size and round caps
    and joins, every dot a ``<circle>`` of the spot diameter, grouped per layer; the field and safe
    area outlines, code areas, the job's bounding box, a scale bar and a caption below the view.
    """
    from markstation.job.estimate import format_duration

    meta = job.meta_dict()
    surface = surface_for(material_name or meta.get("material", ""))
    safe = safe_area_of(job, layout)
    x0, y0, x1, y1 = view_bounds(job, machine, safe)
    w, h = x1 - x0, y1 - y0
    unit = max(w, h) / 400  # a hairline for outlines, relative to the view
    font = max(w, h) * 0.022
    caption_h = font * 4.2
    info = preview_info(job)
    spot = machine.spot_mm

    out: list[str] = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(w)}mm" height="{_n(h + caption_h)}mm" '
        f'viewBox="{_n(x0)} {_n(-y1)} {_n(w)} {_n(h + caption_h)}">',
        f"<title>markstation preview {_esc(info.code)}</title>",
        f"<desc>field frame in mm (origin at the field centre, y flipped for SVG); strokes drawn "
        f"at the {spot:g} mm spot; layout {_esc(info.layout)}, material {_esc(info.material)}, "
        f"machine {_esc(machine.name)}; job sha256 {job.sha256()}</desc>",
        f'<rect x="{_n(x0)}" y="{_n(-y1)}" width="{_n(w)}" height="{_n(h + caption_h)}" '
        f'fill="#ffffff"/>',
        f'<rect id="surface" x="{_n(x0)}" y="{_n(-y1)}" width="{_n(w)}" height="{_n(h)}" '
        f'fill="{_hex(surface.background)}"/>',
    ]
    # millimetre grid
    step = _nice_step(max(w, h), 40)
    out.append(f'<g id="grid" stroke="{_hex(surface.grid)}" stroke-width="{_n(unit * 0.25)}">')
    k = math.ceil(x0 / step)
    while k * step <= x1:
        out.append(f'<line x1="{_n(k * step)}" y1="{_n(-y1)}" x2="{_n(k * step)}" y2="{_n(-y0)}"/>')
        k += 1
    k = math.ceil(y0 / step)
    while k * step <= y1:
        out.append(f'<line x1="{_n(x0)}" y1="{_n(-k * step)}" x2="{_n(x1)}" y2="{_n(-k * step)}"/>')
        k += 1
    out.append("</g>")

    def rect(box: Bounds, ident: str, colour: str, dashed: bool) -> str:
        dash = f' stroke-dasharray="{_n(unit * 5)} {_n(unit * 3)}"' if dashed else ""
        return (
            f'<rect id="{ident}" x="{_n(box[0])}" y="{_n(-box[3])}" width="{_n(box[2] - box[0])}" '
            f'height="{_n(box[3] - box[1])}" fill="none" stroke="{colour}" '
            f'stroke-width="{_n(unit)}"{dash}/>'
        )

    fld = machine.field
    out.append(rect((fld.x_min, fld.y_min, fld.x_max, fld.y_max), "field", "#dc3545", True))
    if safe is not None:
        out.append(rect(safe, "safe-area", "#f5a623", True))

    # the burn
    out.append(
        f'<g id="burn" fill="none" stroke="{_hex(surface.mark)}" stroke-width="{_n(spot)}" '
        f'stroke-linecap="round" stroke-linejoin="round">'
    )
    for layer in job.layers:
        out.append(f'<g id="layer-{_esc(layer.name)}">')
        for prim in layer.primitives:
            pts = prim.points
            if len(pts) == 1:
                out.append(
                    f'<circle cx="{_n(pts[0][0])}" cy="{_n(-pts[0][1])}" r="{_n(spot / 2)}" '
                    f'fill="{_hex(surface.mark)}" stroke="none"/>'
                )
            else:
                coords = " ".join(f"{_n(x)},{_n(-y)}" for x, y in pts)
                out.append(f'<polyline points="{coords}"/>')
        out.append("</g>")
    out.append("</g>")

    for i, code in enumerate(job.codes):
        out.append(rect(code.bbox, f"code-{i}", "#40c078", False))
    bounds = job.bounds()
    if bounds is not None:
        out.append(rect(bounds, "extent", "#00a8d6", False))

    # scale bar and caption
    bar = _nice_step(w, 6)
    bx, by = x0 + w * 0.03, -y0 - h * 0.04
    ink = "#ffffff" if surface.dark else "#1f2933"
    out.append(
        f'<g id="scale-bar" fill="{ink}" font-family="sans-serif" font-size="{_n(font * 0.8)}">'
        f'<rect x="{_n(bx)}" y="{_n(by - unit * 2)}" width="{_n(bar)}" height="{_n(unit * 2)}"/>'
        f'<text x="{_n(bx + bar + unit * 3)}" y="{_n(by)}">{_fmt_mm(bar)} mm</text></g>'
    )
    size = f"{info.size_mm[0]:.2f} × {info.size_mm[1]:.2f} mm"
    lines = [
        (1.15, "bold", info.code or "(no mark code)"),
        (
            0.8,
            "normal",
            f"layout {info.layout} · material {info.material} · machine {machine.name}",
        ),
        (
            0.8,
            "normal",
            f"{size} · {info.strokes} strokes · marked {info.marked_mm:.0f} mm · jumps "
            f"{info.jump_mm:.0f} mm · est. {format_duration(info.estimate_s)} · spot {spot:g} mm",
        ),
    ]
    out.append('<g id="caption" fill="#1f2933" font-family="sans-serif">')
    ty = -y0 + font * 0.3
    for scale, weight, text in lines:
        ty += font * scale * 1.15
        out.append(
            f'<text x="{_n(x0 + w * 0.01)}" y="{_n(ty)}" font-size="{_n(font * scale)}" '
            f'font-weight="{weight}">{_esc(text)}</text>'
        )
    out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def render_svg(
    job: Job,
    machine: MachineProfile,
    path: str | Path,
    *,
    layout: LayoutProfile | None = None,
    material_name: str | None = None,
) -> Path:
    """Write the SVG preview (see :func:`svg_text`); returns the path written."""
    out = Path(path)
    text = svg_text(job, machine, layout=layout, material_name=material_name)
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{out}: cannot write the preview ({exc.strerror or exc})") from exc
    return out
