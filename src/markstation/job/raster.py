"""A raster image (a logo) as bidirectional scan-line strokes, in mm with y up.

The image is flattened onto white (transparent means unmarked), turned to grayscale, resampled so
one pixel is one scan step (``width_mm / line_spacing_mm`` pixels across, aspect ratio kept), then
thresholded or Floyd–Steinberg dithered. Each pixel row becomes one scan line through the row's
centre; each run of dark pixels becomes one stroke from the left edge of its first pixel to the
right edge of its last. Consecutive marked lines alternate direction so the galvo never flies back
empty. Only the image file is read; nothing is written.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from markstation.errors import ConfigError, JobError
from markstation.i18n import _
from markstation.job.ir import Point, Polyline

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

RASTER_MODES = ("threshold", "dither")
#: refuse resampled images above this many pixels (a 100 mm logo at 0.02 mm is 25 M already)
MAX_PIXELS = 25_000_000


def raster_image(
    path: str | Path,
    *,
    width_mm: float,
    line_spacing_mm: float,
    mode: str = "dither",
    threshold: int = 128,
    top_left: Point = (0.0, 0.0),
) -> tuple[Polyline, ...]:
    """Scan-line strokes that burn the dark pixels of the image at ``path``.

    ``top_left`` is the image's top-left corner in mm (rows run downwards, -y). ``threshold``:
    gray values below it are dark (``threshold`` mode only). Raises :class:`ConfigError` for a
    missing or unreadable file or a bad option, :class:`JobError` when nothing would be marked.
    """
    path = Path(path)
    _check(path, width_mm, line_spacing_mm, mode, threshold, top_left)
    gray = _load_gray(path)
    cols = max(1, round(width_mm / line_spacing_mm))
    height_mm = width_mm * gray.height / gray.width
    rows = max(1, round(height_mm / line_spacing_mm))
    if cols * rows > MAX_PIXELS:
        raise JobError(
            _(
                "{path}: {width_mm} mm at {line_spacing_mm} mm lines is {cols}x{rows} pixels, more than {MAX_PIXELS}; use a wider line spacing or a smaller width"
            ).format(
                path=path,
                width_mm=width_mm,
                line_spacing_mm=line_spacing_mm,
                cols=cols,
                rows=rows,
                MAX_PIXELS=MAX_PIXELS,
            )
        )
    dark = dark_pixels(gray, cols, rows, mode, threshold)
    strokes = scanlines(dark, top_left=top_left, pitch_x=width_mm / cols, pitch_y=line_spacing_mm)
    if not strokes:
        raise JobError(
            _("{path}: nothing to mark, every pixel is light after the {mode} step").format(
                path=path, mode=mode
            )
        )
    return strokes


def dark_pixels(
    gray: Image.Image, cols: int, rows: int, mode: str, threshold: int
) -> np.ndarray[tuple[int, int], np.dtype[np.bool_]]:
    """Boolean (rows, cols) array, True where the resampled image should be burned."""
    import numpy as np
    from PIL import Image

    if gray.size != (cols, rows):
        gray = gray.resize((cols, rows), Image.Resampling.LANCZOS)
    if mode == "dither":
        # Pillow's 1-bit conversion applies Floyd–Steinberg error diffusion; 0 is black
        return ~np.asarray(gray.convert("1"), dtype=bool)
    return np.asarray(gray, dtype=np.uint8) < threshold


def scanlines(
    dark: np.ndarray[tuple[int, int], np.dtype[np.bool_]],
    *,
    top_left: Point,
    pitch_x: float,
    pitch_y: float,
) -> tuple[Polyline, ...]:
    """One stroke per run of True in each row, at the row's centre, alternating direction."""
    import numpy as np

    x0, y0 = float(top_left[0]), float(top_left[1])
    out: list[Polyline] = []
    forward = True
    for r in range(dark.shape[0]):
        # run starts and ends from the sign changes of the row framed by False
        edges = np.flatnonzero(np.diff(np.concatenate(([0], dark[r].astype(np.int8), [0]))))
        if not len(edges):
            continue
        y = y0 - (r + 0.5) * pitch_y
        spans = [(x0 + a * pitch_x, x0 + b * pitch_x) for a, b in edges.reshape(-1, 2).tolist()]
        if not forward:
            spans = [(b, a) for a, b in reversed(spans)]
        out.extend(Polyline(((a, y), (b, y))) for a, b in spans)
        forward = not forward
    return tuple(out)


def _check(
    path: Path,
    width_mm: float,
    line_spacing_mm: float,
    mode: str,
    threshold: int,
    top_left: Point,
) -> None:
    if mode not in RASTER_MODES:
        raise ConfigError(
            _("{path}: raster mode {mode!r} is not one of {join}").format(
                path=path, mode=mode, join=", ".join(RASTER_MODES)
            )
        )
    for name, value in (("width_mm", width_mm), ("line_spacing_mm", line_spacing_mm)):
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(
                _("{path}: {name} = {value} must be a number greater than 0").format(
                    path=path, name=name, value=value
                )
            )
    if not all(math.isfinite(v) for v in top_left):
        raise ConfigError(
            _("{path}: top_left {top_left} is not a finite point").format(
                path=path, top_left=top_left
            )
        )
    if isinstance(threshold, bool) or not isinstance(threshold, int) or not 0 <= threshold <= 255:
        raise ConfigError(
            _("{path}: threshold = {threshold!r} must be an integer 0..255").format(
                path=path, threshold=threshold
            )
        )


def _load_gray(path: Path) -> Image.Image:
    """Read the image, paint any transparency onto white and return it as 8-bit gray."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
                rgba = img.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                return Image.alpha_composite(white, rgba).convert("L")
            return img.convert("L")
    except FileNotFoundError as exc:
        raise ConfigError(_("{path}: image file not found").format(path=path)) from exc
    except IsADirectoryError as exc:
        raise ConfigError(_("{path}: is a directory, not an image file").format(path=path)) from exc
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise ConfigError(
            _("{path}: not a readable image ({exc})").format(path=path, exc=exc)
        ) from exc
    except (OSError, ValueError, SyntaxError) as exc:
        # truncated or corrupt data surfaces as OSError/ValueError/SyntaxError from the decoders
        raise ConfigError(
            _("{path}: cannot read the image ({exc})").format(path=path, exc=exc)
        ) from exc
