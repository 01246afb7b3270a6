"""What the preview shows, independent of the output format: view, surface colours, figures.

Pure geometry and text: no Pillow, no numpy. :mod:`~markstation.preview.png` and
:mod:`~markstation.preview.svg` draw from it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from markstation.errors import ConfigError
from markstation.i18n import _
from markstation.job.ir import Job

if TYPE_CHECKING:
    from markstation.preview.raster import Bounds
    from markstation.profiles import LayoutProfile, MachineProfile

#: "not given": the function works out ``job.bounds()`` itself (None is a real answer: no strokes)
_UNSET: Any = object()

_SYMBOLOGY_NAMES = {"datamatrix": "Data Matrix", "qr": "QR", "microqr": "Micro QR"}


def symbology_name(symbology: str) -> str:
    """'Data Matrix', 'QR', 'Micro QR' for the IR's symbology keys."""
    return _SYMBOLOGY_NAMES.get(symbology, symbology)


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


def preview_info(
    job: Job, estimate_s: float | None = None, *, bounds: Bounds | None = _UNSET
) -> PreviewInfo:
    """The caption's figures; ``estimate_s`` is the device estimate when the caller has one
    (:func:`markstation.devices.estimate.device_estimate`), else the quick device-independent one.
    ``bounds`` is ``job.bounds()`` when the caller has already worked it out."""
    from markstation.job.estimate import estimate

    meta = job.meta_dict()
    box = job.bounds() if bounds is _UNSET else bounds
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
        estimate_s=estimate(job).total_s if estimate_s is None else estimate_s,
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


def view_bounds(
    job: Job, machine: MachineProfile, safe_area: Bounds | None, *, bounds: Bounds | None = _UNSET
) -> Bounds:
    """What the preview shows: the safe area and the burn, with a margin, clipped to the field.
    ``bounds`` is ``job.bounds()`` when the caller has already worked it out."""
    box = _union(job.bounds() if bounds is _UNSET else bounds, safe_area)
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


def nice_step(span_mm: float, target_divisions: float) -> float:
    """A 1-2-5 step giving about ``target_divisions`` divisions of ``span_mm``."""
    raw = span_mm / max(target_divisions, 1.0)
    exp = math.floor(math.log10(raw)) if raw > 0 else 0
    for mult in (1.0, 2.0, 5.0, 10.0):
        step = mult * 10.0**exp
        if step >= raw:
            return step
    return 10.0 ** (exp + 1)


def fmt_mm(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def default_px_per_mm(view: Bounds) -> float:
    """Scale that fits the view in about 1500 × 900 px, between 2 and 200 px/mm."""
    w, h = view[2] - view[0], view[3] - view[1]
    return min(200.0, max(2.0, min(1500.0 / w, 900.0 / h)))


@contextmanager
def writing(path: Path) -> Iterator[Path]:
    """Write the preview file inside this block; an OS error becomes a one-line ConfigError."""
    try:
        yield path
    except OSError as exc:
        raise ConfigError(
            _("{path}: cannot write the preview ({reason})").format(
                path=path, reason=exc.strerror or exc
            )
        ) from exc
