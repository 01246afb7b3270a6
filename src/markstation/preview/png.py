"""The operator's preview PNG: the burn view, rulers, outlines, code detail and caption (Pillow).

Only layout and paint; the burn comes from :mod:`~markstation.preview.raster` and what to show from
:mod:`~markstation.preview.scene`.

The page is a palette image (mode "P"): a few dozen flat colours, the burn's anti-aliased edge in
the SUPERSAMPLE² + 1 shades it really has, and text edges in :data:`TEXT_SHADES` shades per
colour pair. That is everything an RGB page held, to the eye, and it encodes about seven times
faster (a batch dry run writes one per item) into fewer bytes.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from markstation.i18n import _
from markstation.job.ir import CodeRegion, Job
from markstation.preview.raster import Bounds, burn_coverage, job_strokes, raster_size
from markstation.preview.scene import (
    RGB,
    PreviewInfo,
    Surface,
    default_px_per_mm,
    fmt_mm,
    nice_step,
    preview_info,
    safe_area_of,
    surface_for,
    symbology_name,
    view_bounds,
    writing,
)
from markstation.preview.ui_font import ascii_fold, system_sans

if TYPE_CHECKING:
    import numpy.typing as npt

    from markstation.preview.verify import CodeCheck
    from markstation.profiles import LayoutProfile, MachineProfile

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

PAGE: RGB = (243, 244, 246)
PANEL: RGB = (255, 255, 255)
INK: RGB = (31, 41, 51)
MUTED: RGB = (107, 114, 128)
HEADER: RGB = (28, 36, 46)
FIELD_COLOUR: RGB = (220, 53, 69)
SAFE_COLOUR: RGB = (245, 166, 35)
BBOX_COLOUR: RGB = (0, 168, 214)
CODE_COLOUR: RGB = (64, 192, 120)
OK_COLOUR: RGB = (22, 140, 70)
BAD_COLOUR: RGB = (200, 30, 45)

RULER = 30  # px, width of the rulers
GAP = 16  # px between panels
HEADER_H = 64
FOOTER_H = 96
DETAIL_W = 360
SUPERSAMPLE = 2
#: shades of a text edge between its colour and its ground (FreeType's 256 levels, read at sight)
TEXT_SHADES = 16
PALETTE_SIZE = 256


@functools.lru_cache(maxsize=64)
def _font(size: int) -> Font:
    found = system_sans()
    if found is None:
        return ImageFont.load_default(size=size)  # ASCII only: _shown() folds the text
    return ImageFont.truetype(str(found[0]), size)


def _shown(text: str) -> str:
    """``text`` as the preview font can draw it (accents dropped when it is Pillow's own)."""
    return text if system_sans() is not None else ascii_fold(text)


@functools.lru_cache(maxsize=512)
def _text_cover(
    text: str, size: int, dx: float, dy: float
) -> tuple[npt.NDArray[np.uint8], int, int]:
    """``text`` in the preview font at ``size`` px, drawn at (dx, dy) within a pixel as ImageDraw
    draws it: its coverage (255 = ink) and where the coverage's top-left pixel lies.

    Kept: the rulers, legend and captions of a batch's previews are the same text at the same
    places, and FreeType need not lay them out again for every item.
    """
    font = _font(size)
    text = _shown(text)
    left, top, right, bottom = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox(
        (dx, dy), text, font=font
    )
    x0, y0 = math.floor(min(left, 0.0)), math.floor(min(top, 0.0))
    cover = Image.new("L", (max(1, math.ceil(right) - x0), max(1, math.ceil(bottom) - y0)), 0)
    ImageDraw.Draw(cover).text((dx - x0, dy - y0), text, font=font, fill=255)
    pixels = np.asarray(cover)
    pixels.setflags(write=False)
    return pixels, x0, y0


@functools.lru_cache(maxsize=1024)
def _text_w(text: str, size: int) -> float:
    """The advance of ``text`` in the preview font at ``size`` px, laid out anti-aliased."""
    return ImageDraw.Draw(Image.new("L", (1, 1))).textlength(_shown(text), font=_font(size))


def _blend(ground: RGB, ink: RGB, alpha: int) -> RGB:
    """``ink`` over ``ground`` at ``alpha``/255, rounded as Pillow's compositing rounds."""
    r, g, b = (
        int((i * alpha + c * (255 - alpha)) / 255 + 0.5) for c, i in zip(ground, ink, strict=True)
    )
    return (r, g, b)


#: FreeType coverage 0..255 -> the text shade that shows it
_SHADE_OF = (np.arange(256) * (TEXT_SHADES - 1) + 127) // 255
_INKED = np.where(np.arange(256) > 0, 255, 0).astype(np.uint8)


class _Canvas:
    """The palette page and how to paint on it: every colour through :meth:`ink`, text through
    :meth:`text` (anti-aliased against the ground it is written on)."""

    def __init__(self, width: int, height: int, background: RGB) -> None:
        self.image = Image.new("P", (width, height), background)
        self.draw = ImageDraw.Draw(self.image)
        self._inks: dict[RGB, int] = {background: 0}
        self._ramps: dict[tuple[RGB, RGB], npt.NDArray[np.uint8]] = {}

    def ink(self, colour: RGB) -> int:
        """The palette index of ``colour``; a page that ran out of entries gets the nearest."""
        index = self._inks.get(colour)
        if index is None:
            if len(self._inks) < PALETTE_SIZE:
                assert self.image.palette is not None
                index = self.image.palette.getcolor(colour, self.image)
            else:
                index = min(
                    self._inks.items(),
                    key=lambda kv: sum((a - b) ** 2 for a, b in zip(kv[0], colour, strict=True)),
                )[1]
            self._inks[colour] = index
        return index

    def ramp(self, fill: RGB, ground: RGB) -> npt.NDArray[np.uint8]:
        """Coverage 0..255 of ``fill`` over ``ground`` -> palette index, in TEXT_SHADES steps."""
        key = (fill, ground)
        table = self._ramps.get(key)
        if table is None:
            top = TEXT_SHADES - 1
            shades = [self.ink(_blend(ground, fill, round(255 * k / top))) for k in range(top + 1)]
            table = np.array(shades, dtype=np.uint8)[_SHADE_OF]
            self._ramps[key] = table
        return table

    def text(self, xy: tuple[float, float], text: str, size: int, fill: RGB, ground: RGB) -> None:
        """``text`` at ``xy`` in the preview font at ``size`` px, its edges shaded over ``ground``
        (placed as ImageDraw places it)."""
        if not text:
            return
        x, y = math.floor(xy[0]), math.floor(xy[1])
        cover, x0, y0 = _text_cover(text, size, xy[0] - x, xy[1] - y)
        shape = (cover.shape[1], cover.shape[0])
        shaded = Image.frombytes("P", shape, self.ramp(fill, ground)[cover].tobytes())
        self.image.paste(
            shaded, (x + x0, y + y0), Image.frombytes("L", shape, _INKED[cover].tobytes())
        )


def _dashed_line(
    canvas: _Canvas,
    a: tuple[float, float],
    b: tuple[float, float],
    colour: RGB,
    width: int = 2,
    dash: float = 10.0,
    gap: float = 6.0,
) -> None:
    length = math.dist(a, b)
    if length == 0:
        return
    ux, uy = (b[0] - a[0]) / length, (b[1] - a[1]) / length
    pos = 0.0
    ink = canvas.ink(colour)
    while pos < length:
        end = min(pos + dash, length)
        canvas.draw.line(
            [(a[0] + ux * pos, a[1] + uy * pos), (a[0] + ux * end, a[1] + uy * end)],
            fill=ink,
            width=width,
        )
        pos = end + gap


def _dashed_rect(
    canvas: _Canvas, box: tuple[float, float, float, float], colour: RGB, width: int = 2
) -> None:
    x0, y0, x1, y1 = box
    for a, b in (
        ((x0, y0), (x1, y0)),
        ((x1, y0), (x1, y1)),
        ((x1, y1), (x0, y1)),
        ((x0, y1), (x0, y0)),
    ):
        _dashed_line(canvas, a, b, colour, width)


class _View:
    """Maps field millimetres to pixels of the burn view placed at (left, top) on the page."""

    def __init__(self, bounds: Bounds, px_per_mm: float, left: int, top: int) -> None:
        self.bounds = bounds
        self.ppm = px_per_mm
        self.left = left
        self.top = top
        self.width, self.height = raster_size(bounds, px_per_mm)

    def px(self, x: float, y: float) -> tuple[float, float]:
        return (
            self.left + (x - self.bounds[0]) * self.ppm,
            self.top + (self.bounds[3] - y) * self.ppm,
        )

    def box(self, b: Bounds) -> tuple[float, float, float, float]:
        x0, y0 = self.px(b[0], b[3])
        x1, y1 = self.px(b[2], b[1])
        return (x0, y0, x1, y1)


def _coverage(
    strokes: Sequence[Sequence[tuple[float, float]]],
    spot_mm: float,
    origin: tuple[float, float],
    size: tuple[int, int],
    px_per_mm: float,
) -> npt.NDArray[np.uint8]:
    """How many of each pixel's SUPERSAMPLE² sub-pixels the burn covers (0 … SUPERSAMPLE²)."""
    return burn_coverage(
        strokes,
        spot_mm=spot_mm,
        origin=origin,
        size=size,
        px_per_mm=px_per_mm,
        supersample=SUPERSAMPLE,
    )


def _burn_patch(
    canvas: _Canvas,
    cover: npt.NDArray[np.uint8],
    surface: Surface,
    grounds: Sequence[RGB],
    ground: npt.NDArray[np.uint8] | None = None,
) -> Image.Image:
    """The burn over the surface as palette pixels: ``cover`` from :func:`_coverage`, ``ground``
    indexing ``grounds`` (the bare surface and its grid lines) under each pixel."""
    levels = SUPERSAMPLE * SUPERSAMPLE
    shades = np.array(
        [
            canvas.ink(_blend(base, surface.mark, round(255 * k / levels)))
            for base in grounds
            for k in range(levels + 1)
        ],
        dtype=np.uint8,
    )
    index = cover if ground is None else ground * np.uint8(levels + 1) + cover
    pixels = shades[index]
    return Image.frombytes("P", (pixels.shape[1], pixels.shape[0]), pixels.tobytes())


def _draw_grid(draw: ImageDraw.ImageDraw, view: _View, line: int, strong_line: int) -> None:
    x0, y0, x1, y1 = view.bounds
    step = nice_step(max(x1 - x0, y1 - y0), 40)
    major = step * 5
    k = math.ceil(x0 / step)
    while k * step <= x1:
        x = k * step
        px, _ = view.px(x, 0)
        strong = abs(x / major - round(x / major)) < 1e-6
        if strong or view.ppm * step >= 6:
            fill = strong_line if strong else line
            draw.line([(px, view.top), (px, view.top + view.height - 1)], fill=fill)
        k += 1
    k = math.ceil(y0 / step)
    while k * step <= y1:
        y = k * step
        _, py = view.px(0, y)
        strong = abs(y / major - round(y / major)) < 1e-6
        if strong or view.ppm * step >= 6:
            fill = strong_line if strong else line
            draw.line([(view.left, py), (view.left + view.width - 1, py)], fill=fill)
        k += 1


def _draw_rulers(canvas: _Canvas, view: _View) -> None:
    draw = canvas.draw
    font = 12
    panel, ink = canvas.ink(PANEL), canvas.ink(INK)
    x0, y0, x1, y1 = view.bounds
    label_step = nice_step(x1 - x0, max(4.0, view.width / 90))
    tick = nice_step(x1 - x0, max(4.0, view.width / 9))
    top = view.top - RULER
    left = view.left - RULER
    draw.rectangle((view.left, top, view.left + view.width, view.top - 1), fill=panel)
    draw.rectangle((left, view.top, view.left - 1, view.top + view.height), fill=panel)
    draw.rectangle((left, top, view.left - 1, view.top - 1), fill=panel)
    canvas.text((left + 4, top + 8), "mm", font, MUTED, PANEL)
    k = math.ceil(x0 / tick)
    while k * tick <= x1 + 1e-9:
        x = k * tick
        px, _ = view.px(x, 0)
        labelled = abs(x / label_step - round(x / label_step)) < 1e-6
        draw.line([(px, view.top - (12 if labelled else 5)), (px, view.top - 1)], fill=ink)
        if labelled:
            text = fmt_mm(x)
            canvas.text((px + 3, top + 2), text, font, INK, PANEL)
        k += 1
    label_step_y = nice_step(y1 - y0, max(3.0, view.height / 70))
    tick_y = nice_step(y1 - y0, max(3.0, view.height / 9))
    k = math.ceil(y0 / tick_y)
    while k * tick_y <= y1 + 1e-9:
        y = k * tick_y
        _, py = view.px(0, y)
        labelled = abs(y / label_step_y - round(y / label_step_y)) < 1e-6
        draw.line([(view.left - (12 if labelled else 5), py), (view.left - 1, py)], fill=ink)
        if labelled:
            text = fmt_mm(y)
            w = _text_w(text, font)
            canvas.text((view.left - 14 - w, py - 13), text, font, INK, PANEL)
        k += 1


def _draw_outlines(
    canvas: _Canvas,
    view: _View,
    machine: MachineProfile,
    safe_area: Bounds | None,
    job: Job,
    bounds: Bounds | None,
) -> list[tuple[RGB, str]]:
    """Field, safe area, job bbox (``bounds``) and code areas; returns the legend entries drawn."""
    draw = canvas.draw
    legend: list[tuple[RGB, str]] = []
    font = 12
    fld = machine.field
    field_box = (fld.x_min, fld.y_min, fld.x_max, fld.y_max)
    vx0, vy0, vx1, vy1 = view.bounds
    if fld.x_min >= vx0 or fld.x_max <= vx1 or fld.y_min >= vy0 or fld.y_max <= vy1:
        _dashed_rect(canvas, view.box(field_box), FIELD_COLOUR, 2)
        legend.append(
            (
                FIELD_COLOUR,
                _("field {w:g} x {h:g} mm").format(
                    w=machine.field_width_mm, h=machine.field_height_mm
                ),
            )
        )
    else:
        legend.append(
            (FIELD_COLOUR, _("field {w:g} mm (beyond view)").format(w=machine.field_width_mm))
        )
    if safe_area is not None:
        box = view.box(safe_area)
        _dashed_rect(canvas, box, SAFE_COLOUR, 2)
        w, h = safe_area[2] - safe_area[0], safe_area[3] - safe_area[1]
        legend.append((SAFE_COLOUR, _("safe area {w} x {h} mm").format(w=fmt_mm(w), h=fmt_mm(h))))
    for code in job.codes:
        draw.rectangle(view.box(code.bbox), outline=canvas.ink(CODE_COLOUR), width=1)
    if job.codes:
        legend.append((CODE_COLOUR, _("2D code + quiet zone")))
    if bounds is not None:
        x0, y0, x1, y1 = view.box(bounds)
        bbox = canvas.ink(BBOX_COLOUR)
        draw.rectangle((x0 - 1, y0 - 1, x1 + 1, y1 + 1), outline=bbox, width=1)
        w, h = bounds[2] - bounds[0], bounds[3] - bounds[1]
        label = f"{w:.2f} x {h:.2f} mm"
        tw = _text_w(label, font)
        lx = min(max(x1 - tw, view.left + 2), view.left + view.width - tw - 4)
        ly = y1 + 4 if y1 + 22 < view.top + view.height else y0 - 18
        draw.rectangle((lx - 3, ly - 1, lx + tw + 3, ly + 15), fill=bbox)
        canvas.text((lx, ly), label, font, (255, 255, 255), BBOX_COLOUR)
        legend.append((BBOX_COLOUR, _("marked extent")))
    # the field centre, where the galvo rests
    if vx0 < 0 < vx1 and vy0 < 0 < vy1:
        cx, cy = view.px(0, 0)
        centre = canvas.ink(FIELD_COLOUR)
        draw.line([(cx - 6, cy), (cx + 6, cy)], fill=centre, width=1)
        draw.line([(cx, cy - 6), (cx, cy + 6)], fill=centre, width=1)
    return legend


def _draw_scale_bar(canvas: _Canvas, view: _View, surface: Surface) -> None:
    draw = canvas.draw
    font = 13
    x0, _, x1, _ = view.bounds
    length = nice_step(x1 - x0, 6)
    px_len = length * view.ppm
    left = view.left + 14
    base = view.top + view.height - 16
    colour: RGB = (255, 255, 255) if surface.dark else INK
    ink = canvas.ink(colour)
    draw.rectangle((left, base - 5, left + px_len, base), fill=ink)
    draw.line([(left, base - 10), (left, base)], fill=ink, width=2)
    draw.line([(left + px_len, base - 10), (left + px_len, base)], fill=ink, width=2)
    canvas.text(
        (left + px_len + 8, base - 14), f"{fmt_mm(length)} mm", font, colour, surface.background
    )


def _detail(
    canvas: _Canvas,
    strokes: Sequence[Sequence[tuple[float, float]]],
    code: CodeRegion,
    spot_mm: float,
    surface: Surface,
    size_px: int,
) -> tuple[Image.Image, float]:
    """The code's area, one module of margin, magnified so hatch lines show at their width."""
    m = code.module_mm
    x0, y0, x1, y1 = code.bbox
    side = max(x1 - x0, y1 - y0) + 2 * m
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    ppm = size_px / side
    origin = (cx - side / 2, cy + side / 2)
    cover = _coverage(strokes, spot_mm, origin, (size_px, size_px), ppm)
    return _burn_patch(canvas, cover, surface, [surface.background]), ppm


def draw_preview(
    job: Job,
    machine: MachineProfile,
    *,
    view: Bounds,
    px_per_mm: float,
    surface: Surface,
    safe_area: Bounds | None,
    info: PreviewInfo,
    checks: Sequence[CodeCheck],
    bounds: Bounds | None = None,
) -> Image.Image:
    """Compose the whole preview page (a palette image); ``bounds`` is ``job.bounds()``."""
    from markstation.job.estimate import format_duration

    if bounds is None:
        bounds = job.bounds()
    strokes = job_strokes(job, machine.spot_mm)
    burn_w, burn_h = raster_size(view, px_per_mm)
    has_detail = bool(job.codes)
    main_left = GAP + RULER
    main_top = HEADER_H + GAP + RULER
    detail_left = main_left + burn_w + GAP
    width = detail_left + (DETAIL_W + GAP if has_detail else 0)
    width = max(width, 900)
    detail_h = DETAIL_W + 80 if has_detail else 0
    height = main_top + max(burn_h, detail_h - RULER) + GAP + FOOTER_H
    canvas = _Canvas(width, height, PAGE)
    draw = canvas.draw
    white: RGB = (255, 255, 255)

    # header: the code, the profiles
    draw.rectangle((0, 0, width, HEADER_H), fill=canvas.ink(HEADER))
    big = 26
    small = 14
    canvas.text((GAP, 8), info.code or _("(no mark code)"), big, white, HEADER)
    profiles = _("layout {layout}  ·  material {material}  ·  machine {machine}").format(
        layout=info.layout, material=info.material, machine=machine.name
    )
    canvas.text((GAP, 40), profiles, small, (190, 198, 208), HEADER)
    tag = _("markstation · dry-run preview")
    canvas.text((width - GAP - _text_w(tag, small), 12), tag, small, (150, 160, 172), HEADER)
    est = _("est. {duration}").format(duration=format_duration(info.estimate_s))
    canvas.text((width - GAP - _text_w(est, big), 30), est, big, white, HEADER)

    # the burn view: grid on the bare surface, the burn over it
    view_map = _View(view, px_per_mm, main_left, main_top)
    ground = Image.new("L", (burn_w, burn_h), 0)  # 0 bare surface, 1 grid line, 2 major line
    _draw_grid(ImageDraw.Draw(ground), _View(view, px_per_mm, 0, 0), 1, 2)
    cover = _coverage(strokes, machine.spot_mm, (view[0], view[3]), (burn_w, burn_h), px_per_mm)
    major: RGB = (
        min(255, surface.grid[0] + 14),
        min(255, surface.grid[1] + 14),
        min(255, surface.grid[2] + 14),
    )
    grounds = [surface.background, surface.grid, major]
    canvas.image.paste(
        _burn_patch(canvas, cover, surface, grounds, np.asarray(ground)), (main_left, main_top)
    )
    draw.rectangle(
        (main_left - 1, main_top - 1, main_left + burn_w, main_top + burn_h),
        outline=canvas.ink((150, 156, 164)),
    )
    _draw_rulers(canvas, view_map)
    legend = _draw_outlines(canvas, view_map, machine, safe_area, job, bounds)
    _draw_scale_bar(canvas, view_map, surface)

    # detail of the first code
    if has_detail:
        code = job.codes[0]
        top = HEADER_H + GAP
        draw.rectangle(
            (detail_left, top, detail_left + DETAIL_W, top + detail_h), fill=canvas.ink(PANEL)
        )
        title = 15
        canvas.text((detail_left + 12, top + 8), _("2D code detail"), title, INK, PANEL)
        img, dppm = _detail(canvas, strokes, code, machine.spot_mm, surface, DETAIL_W - 24)
        canvas.image.paste(img, (detail_left + 12, top + 32))
        rows = len(code.matrix)
        cols = len(code.matrix[0]) if code.matrix else 0
        line1 = _("{name} {cols}x{rows} · module {module:.2f} mm").format(
            name=symbology_name(code.symbology), cols=cols, rows=rows, module=code.module_mm
        ) + (_(" · inverse") if code.inverse else "")
        canvas.text((detail_left + 12, top + 32 + DETAIL_W - 24 + 6), line1, small, INK, PANEL)
        check = next((c for c in checks if c.payload == code.payload), None)
        colour: RGB
        grade_line: tuple[str, RGB] | None = None
        if check is None:
            status, colour = (
                _("spot {spot:g} mm · magnified {factor:.1f}x").format(
                    spot=machine.spot_mm, factor=dppm / px_per_mm
                ),
                MUTED,
            )
        elif check.ok:
            status = _("decodes exactly: {decoded}").format(decoded=check.decoded)
            colour = OK_COLOUR
            if check.grade is not None:  # its own line: a long code pushed it past the panel
                grade_colour = OK_COLOUR if check.grade.letter in "AB" else MUTED
                grade_line = (_("grade {grade}").format(grade=check.grade.short()), grade_colour)
        else:
            status, colour = check.describe(), BAD_COLOUR
        below = top + 32 + DETAIL_W - 24
        canvas.text((detail_left + 12, below + 26), status, small, colour, PANEL)
        if grade_line is not None:
            canvas.text((detail_left + 12, below + 46), grade_line[0], small, grade_line[1], PANEL)

    # footer: figures and legend
    fy = height - FOOTER_H
    draw.rectangle((0, fy, width, height), fill=canvas.ink(PANEL))
    draw.line([(0, fy), (width, fy)], fill=canvas.ink((220, 223, 228)))
    label = 12
    value = 18
    figures = [
        (_("size"), f"{info.size_mm[0]:.2f} x {info.size_mm[1]:.2f} mm"),
        (_("strokes"), f"{info.strokes}"),
        (_("marked"), f"{info.marked_mm:.0f} mm"),
        (_("jumps"), f"{info.jump_mm:.0f} mm"),
        (_("est. time"), format_duration(info.estimate_s)),
        (_("spot"), f"{machine.spot_mm:g} mm"),
        (_("scale"), f"{px_per_mm:.1f} px/mm"),
    ]
    x = GAP
    for name, text in figures:
        canvas.text((x, fy + 12), name.upper(), label, MUTED, PANEL)
        canvas.text((x, fy + 28), text, value, INK, PANEL)
        x += int(max(_text_w(text, value), _text_w(name, label)) + 28)
    lx = GAP
    for colour, text in legend:
        draw.line([(lx, fy + 72), (lx + 22, fy + 72)], fill=canvas.ink(colour), width=3)
        canvas.text((lx + 28, fy + 64), text, label, INK, PANEL)
        lx += int(_text_w(text, label) + 52)
    return canvas.image


def render_png(
    job: Job,
    machine: MachineProfile,
    path: str | Path,
    *,
    px_per_mm: float | None = None,
    layout: LayoutProfile | None = None,
    material_name: str | None = None,
    checks: Sequence[CodeCheck] = (),
    estimate_s: float | None = None,
) -> Path:
    """Write the operator's preview PNG; returns the path written.

    Shows the burn at the machine's spot width (supersampled, so thin strokes keep their weight)
    on a surface coloured after the material, a millimetre grid and rulers in field coordinates,
    the field and safe-area outlines, the job's bounding box with its size, a scale bar, a detail
    view of the first 2D code at high magnification, and a caption with code, profiles, stroke
    count, lengths and the estimated marking time. ``checks`` (from :func:`check_codes`) add the
    decode result and the verification grade to the detail view. A palette PNG (mode "P").
    """
    meta = job.meta_dict()
    surface = surface_for(material_name or meta.get("material", ""))
    bounds = job.bounds()
    safe_area = safe_area_of(job, layout)
    view = view_bounds(job, machine, safe_area, bounds=bounds)
    scale = px_per_mm if px_per_mm is not None else default_px_per_mm(view)
    image = draw_preview(
        job,
        machine,
        view=view,
        px_per_mm=scale,
        surface=surface,
        safe_area=safe_area,
        info=preview_info(job, estimate_s, bounds=bounds),
        checks=checks,
        bounds=bounds,
    )
    with writing(Path(path)) as out:
        # zlib level 3: half the time of the default 6, and still smaller than an RGB page
        image.save(out, format="PNG", optimize=False, compress_level=3)
    return out
