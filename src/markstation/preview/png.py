"""The operator's preview PNG: the burn view, rulers, outlines, code detail and caption (Pillow).

Only layout and paint; the burn comes from :mod:`~markstation.preview.raster` and what to show from
:mod:`~markstation.preview.scene`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFont

from markstation.i18n import _
from markstation.job.ir import CodeRegion, Job
from markstation.preview.raster import Bounds, burn_mask, job_strokes, raster_size
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

if TYPE_CHECKING:
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


def _font(size: int) -> Font:
    return ImageFont.load_default(size=size)


def _text_w(draw: ImageDraw.ImageDraw, text: str, font: Font) -> float:
    return draw.textlength(text, font=font)


def _dashed_line(
    draw: ImageDraw.ImageDraw,
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
    while pos < length:
        end = min(pos + dash, length)
        draw.line(
            [(a[0] + ux * pos, a[1] + uy * pos), (a[0] + ux * end, a[1] + uy * end)],
            fill=colour,
            width=width,
        )
        pos = end + gap


def _dashed_rect(
    draw: ImageDraw.ImageDraw, box: tuple[float, float, float, float], colour: RGB, width: int = 2
) -> None:
    x0, y0, x1, y1 = box
    for a, b in (
        ((x0, y0), (x1, y0)),
        ((x1, y0), (x1, y1)),
        ((x1, y1), (x0, y1)),
        ((x0, y1), (x0, y0)),
    ):
        _dashed_line(draw, a, b, colour, width)


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


def _burn_image(
    strokes: Sequence[Sequence[tuple[float, float]]],
    spot_mm: float,
    bounds: Bounds,
    px_per_mm: float,
    surface: Surface,
    base: Image.Image | None = None,
) -> Image.Image:
    """The burn on the surface (or on ``base``), anti-aliased: drawn at SUPERSAMPLE ×, averaged."""
    ss = SUPERSAMPLE
    width, height = raster_size(bounds, px_per_mm)
    mask = burn_mask(strokes, spot_mm=spot_mm, bounds=bounds, px_per_mm=px_per_mm * ss)
    fine = Image.frombytes("L", (mask.shape[1], mask.shape[0]), mask.tobytes())
    cover = fine.resize((width, height), Image.Resampling.BOX)
    if base is None:
        base = Image.new("RGB", (width, height), surface.background)
    ink = Image.new("RGB", (width, height), surface.mark)
    return Image.composite(ink, base, cover)


def _draw_grid(draw: ImageDraw.ImageDraw, view: _View, surface: Surface) -> None:
    x0, y0, x1, y1 = view.bounds
    step = nice_step(max(x1 - x0, y1 - y0), 40)
    major = step * 5
    k = math.ceil(x0 / step)
    while k * step <= x1:
        x = k * step
        px, _ = view.px(x, 0)
        strong = abs(x / major - round(x / major)) < 1e-6
        colour = tuple(min(255, c + 14) for c in surface.grid) if strong else surface.grid
        if strong or view.ppm * step >= 6:
            draw.line([(px, view.top), (px, view.top + view.height - 1)], fill=colour)
        k += 1
    k = math.ceil(y0 / step)
    while k * step <= y1:
        y = k * step
        _, py = view.px(0, y)
        strong = abs(y / major - round(y / major)) < 1e-6
        colour = tuple(min(255, c + 14) for c in surface.grid) if strong else surface.grid
        if strong or view.ppm * step >= 6:
            draw.line([(view.left, py), (view.left + view.width - 1, py)], fill=colour)
        k += 1


def _draw_rulers(draw: ImageDraw.ImageDraw, view: _View) -> None:
    font = _font(12)
    x0, y0, x1, y1 = view.bounds
    label_step = nice_step(x1 - x0, max(4.0, view.width / 90))
    tick = nice_step(x1 - x0, max(4.0, view.width / 9))
    top = view.top - RULER
    left = view.left - RULER
    draw.rectangle((view.left, top, view.left + view.width, view.top - 1), fill=PANEL)
    draw.rectangle((left, view.top, view.left - 1, view.top + view.height), fill=PANEL)
    draw.rectangle((left, top, view.left - 1, view.top - 1), fill=PANEL)
    draw.text((left + 4, top + 8), "mm", font=font, fill=MUTED)
    k = math.ceil(x0 / tick)
    while k * tick <= x1 + 1e-9:
        x = k * tick
        px, _ = view.px(x, 0)
        labelled = abs(x / label_step - round(x / label_step)) < 1e-6
        draw.line([(px, view.top - (12 if labelled else 5)), (px, view.top - 1)], fill=INK)
        if labelled:
            text = fmt_mm(x)
            draw.text((px + 3, top + 2), text, font=font, fill=INK)
        k += 1
    label_step_y = nice_step(y1 - y0, max(3.0, view.height / 70))
    tick_y = nice_step(y1 - y0, max(3.0, view.height / 9))
    k = math.ceil(y0 / tick_y)
    while k * tick_y <= y1 + 1e-9:
        y = k * tick_y
        _, py = view.px(0, y)
        labelled = abs(y / label_step_y - round(y / label_step_y)) < 1e-6
        draw.line([(view.left - (12 if labelled else 5), py), (view.left - 1, py)], fill=INK)
        if labelled:
            text = fmt_mm(y)
            w = _text_w(draw, text, font)
            draw.text((view.left - 14 - w, py - 13), text, font=font, fill=INK)
        k += 1


def _draw_outlines(
    draw: ImageDraw.ImageDraw,
    view: _View,
    machine: MachineProfile,
    safe_area: Bounds | None,
    job: Job,
) -> list[tuple[RGB, str]]:
    """Field, safe area, job bbox and code areas; returns the legend entries drawn."""
    legend: list[tuple[RGB, str]] = []
    font = _font(12)
    fld = machine.field
    field_box = (fld.x_min, fld.y_min, fld.x_max, fld.y_max)
    vx0, vy0, vx1, vy1 = view.bounds
    if fld.x_min >= vx0 or fld.x_max <= vx1 or fld.y_min >= vy0 or fld.y_max <= vy1:
        _dashed_rect(draw, view.box(field_box), FIELD_COLOUR, 2)
        legend.append(
            (FIELD_COLOUR, f"field {machine.field_width_mm:g} x {machine.field_height_mm:g} mm")
        )
    else:
        legend.append((FIELD_COLOUR, f"field {machine.field_width_mm:g} mm (beyond view)"))
    if safe_area is not None:
        box = view.box(safe_area)
        _dashed_rect(draw, box, SAFE_COLOUR, 2)
        w, h = safe_area[2] - safe_area[0], safe_area[3] - safe_area[1]
        legend.append((SAFE_COLOUR, f"safe area {fmt_mm(w)} x {fmt_mm(h)} mm"))
    for code in job.codes:
        draw.rectangle(view.box(code.bbox), outline=CODE_COLOUR, width=1)
    if job.codes:
        legend.append((CODE_COLOUR, "2D code + quiet zone"))
    bounds = job.bounds()
    if bounds is not None:
        x0, y0, x1, y1 = view.box(bounds)
        draw.rectangle((x0 - 1, y0 - 1, x1 + 1, y1 + 1), outline=BBOX_COLOUR, width=1)
        w, h = bounds[2] - bounds[0], bounds[3] - bounds[1]
        label = f"{w:.2f} x {h:.2f} mm"
        tw = _text_w(draw, label, font)
        lx = min(max(x1 - tw, view.left + 2), view.left + view.width - tw - 4)
        ly = y1 + 4 if y1 + 22 < view.top + view.height else y0 - 18
        draw.rectangle((lx - 3, ly - 1, lx + tw + 3, ly + 15), fill=BBOX_COLOUR)
        draw.text((lx, ly), label, font=font, fill=(255, 255, 255))
        legend.append((BBOX_COLOUR, "marked extent"))
    # the field centre, where the galvo rests
    if vx0 < 0 < vx1 and vy0 < 0 < vy1:
        cx, cy = view.px(0, 0)
        draw.line([(cx - 6, cy), (cx + 6, cy)], fill=FIELD_COLOUR, width=1)
        draw.line([(cx, cy - 6), (cx, cy + 6)], fill=FIELD_COLOUR, width=1)
    return legend


def _draw_scale_bar(draw: ImageDraw.ImageDraw, view: _View, surface: Surface) -> None:
    font = _font(13)
    x0, _, x1, _ = view.bounds
    length = nice_step(x1 - x0, 6)
    px_len = length * view.ppm
    left = view.left + 14
    base = view.top + view.height - 16
    colour = (255, 255, 255) if surface.dark else INK
    draw.rectangle((left, base - 5, left + px_len, base), fill=colour)
    draw.line([(left, base - 10), (left, base)], fill=colour, width=2)
    draw.line([(left + px_len, base - 10), (left + px_len, base)], fill=colour, width=2)
    draw.text((left + px_len + 8, base - 14), f"{fmt_mm(length)} mm", font=font, fill=colour)


def _detail(
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
    bounds = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
    ppm = size_px / side
    img = _burn_image(strokes, spot_mm, bounds, ppm, surface)
    return img.resize((size_px, size_px), Image.Resampling.BOX) if img.size != (
        size_px,
        size_px,
    ) else img, ppm


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
) -> Image.Image:
    """Compose the whole preview page."""
    from markstation.job.estimate import format_duration

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
    page = Image.new("RGB", (width, height), PAGE)
    draw = ImageDraw.Draw(page)

    # header: the code, the profiles
    draw.rectangle((0, 0, width, HEADER_H), fill=HEADER)
    big = _font(26)
    small = _font(14)
    draw.text((GAP, 8), info.code or "(no mark code)", font=big, fill=(255, 255, 255))
    profiles = f"layout {info.layout}  ·  material {info.material}  ·  machine {machine.name}"
    draw.text((GAP, 40), profiles, font=small, fill=(190, 198, 208))
    tag = "markstation · dry-run preview"
    draw.text((width - GAP - _text_w(draw, tag, small), 12), tag, font=small, fill=(150, 160, 172))
    est = f"est. {format_duration(info.estimate_s)}"
    draw.text((width - GAP - _text_w(draw, est, big), 30), est, font=big, fill=(255, 255, 255))

    # the burn view: grid on the bare surface, the burn over it
    view_map = _View(view, px_per_mm, main_left, main_top)
    base = Image.new("RGB", (burn_w, burn_h), surface.background)
    _draw_grid(ImageDraw.Draw(base), _View(view, px_per_mm, 0, 0), surface)
    page.paste(
        _burn_image(strokes, machine.spot_mm, view, px_per_mm, surface, base), (main_left, main_top)
    )
    draw.rectangle(
        (main_left - 1, main_top - 1, main_left + burn_w, main_top + burn_h),
        outline=(150, 156, 164),
    )
    _draw_rulers(draw, view_map)
    legend = _draw_outlines(draw, view_map, machine, safe_area, job)
    _draw_scale_bar(draw, view_map, surface)

    # detail of the first code
    if has_detail:
        code = job.codes[0]
        top = HEADER_H + GAP
        draw.rectangle((detail_left, top, detail_left + DETAIL_W, top + detail_h), fill=PANEL)
        title = _font(15)
        draw.text((detail_left + 12, top + 8), "2D code detail", font=title, fill=INK)
        img, dppm = _detail(strokes, code, machine.spot_mm, surface, DETAIL_W - 24)
        page.paste(img, (detail_left + 12, top + 32))
        rows = len(code.matrix)
        cols = len(code.matrix[0]) if code.matrix else 0
        line1 = (
            f"{symbology_name(code.symbology)} {cols}x{rows} · module {code.module_mm:.2f} mm"
            + (" · inverse" if code.inverse else "")
        )
        draw.text((detail_left + 12, top + 32 + DETAIL_W - 24 + 6), line1, font=small, fill=INK)
        check = next((c for c in checks if c.payload == code.payload), None)
        if check is None:
            status, colour = (
                f"spot {machine.spot_mm:g} mm · magnified {dppm / px_per_mm:.1f}x",
                MUTED,
            )
        elif check.ok and check.grade is not None:
            status = _("decodes exactly: {decoded} · grade {grade}").format(
                decoded=check.decoded, grade=check.grade.short()
            )
            colour = OK_COLOUR if check.grade.letter in "AB" else MUTED
        elif check.ok:
            status, colour = f"decodes exactly: {check.decoded}", OK_COLOUR
        else:
            status, colour = check.describe(), BAD_COLOUR
        draw.text(
            (detail_left + 12, top + 32 + DETAIL_W - 24 + 26), status, font=small, fill=colour
        )

    # footer: figures and legend
    fy = height - FOOTER_H
    draw.rectangle((0, fy, width, height), fill=PANEL)
    draw.line([(0, fy), (width, fy)], fill=(220, 223, 228))
    label = _font(12)
    value = _font(18)
    figures = [
        ("size", f"{info.size_mm[0]:.2f} x {info.size_mm[1]:.2f} mm"),
        ("strokes", f"{info.strokes}"),
        ("marked", f"{info.marked_mm:.0f} mm"),
        ("jumps", f"{info.jump_mm:.0f} mm"),
        ("est. time", format_duration(info.estimate_s)),
        ("spot", f"{machine.spot_mm:g} mm"),
        ("scale", f"{px_per_mm:.1f} px/mm"),
    ]
    x = GAP
    for name, text in figures:
        draw.text((x, fy + 12), name.upper(), font=label, fill=MUTED)
        draw.text((x, fy + 28), text, font=value, fill=INK)
        x += int(max(_text_w(draw, text, value), _text_w(draw, name, label)) + 28)
    lx = GAP
    for colour, text in legend:
        draw.line([(lx, fy + 72), (lx + 22, fy + 72)], fill=colour, width=3)
        draw.text((lx + 28, fy + 64), text, font=label, fill=INK)
        lx += int(_text_w(draw, text, label) + 52)
    return page


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
    decode result and the verification grade to the detail view.
    """
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
        info=preview_info(job, estimate_s),
        checks=checks,
    )
    with writing(Path(path)) as out:
        image.save(out, format="PNG", optimize=False)
    return out
