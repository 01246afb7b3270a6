"""The preview as SVG: millimetre user units, one ``<polyline>`` per stroke at the spot width."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from markstation.i18n import _
from markstation.job.ir import Job
from markstation.preview.scene import (
    fmt_mm,
    nice_step,
    preview_info,
    safe_area_of,
    surface_for,
    view_bounds,
    writing,
)

if TYPE_CHECKING:
    from markstation.preview.raster import Bounds
    from markstation.profiles import LayoutProfile, MachineProfile


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
    estimate_s: float | None = None,
) -> str:
    """The preview as SVG source: millimetre user units, +y up in the field flipped to SVG's down.

    Every stroke is a ``<polyline>`` with ``stroke-width`` = the machine's spot size and round caps
    and joins, every dot a ``<circle>`` of its modelled diameter (at least the spot), grouped per layer; the field and safe
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
    info = preview_info(job, estimate_s)
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
    step = nice_step(max(w, h), 40)
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
                # a dot as wide as its modelled burn (Dot.diameter_mm), else the spot
                radius = max(spot, getattr(prim, "diameter_mm", 0.0)) / 2
                out.append(
                    f'<circle cx="{_n(pts[0][0])}" cy="{_n(-pts[0][1])}" r="{_n(radius)}" '
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
    bar = nice_step(w, 6)
    bx, by = x0 + w * 0.03, -y0 - h * 0.04
    ink = "#ffffff" if surface.dark else "#1f2933"
    out.append(
        f'<g id="scale-bar" fill="{ink}" font-family="sans-serif" font-size="{_n(font * 0.8)}">'
        f'<rect x="{_n(bx)}" y="{_n(by - unit * 2)}" width="{_n(bar)}" height="{_n(unit * 2)}"/>'
        f'<text x="{_n(bx + bar + unit * 3)}" y="{_n(by)}">{fmt_mm(bar)} mm</text></g>'
    )
    size = f"{info.size_mm[0]:.2f} × {info.size_mm[1]:.2f} mm"
    lines = [
        (1.15, "bold", info.code or _("(no mark code)")),
        (
            0.8,
            "normal",
            _("layout {layout}  ·  material {material}  ·  machine {machine}").format(
                layout=info.layout, material=info.material, machine=machine.name
            ),
        ),
        (
            0.8,
            "normal",
            _(
                "{size} · {strokes} strokes · marked {marked:.0f} mm · jumps {jumps:.0f} mm · "
                "est. {duration} · spot {spot:g} mm"
            ).format(
                size=size,
                strokes=info.strokes,
                marked=info.marked_mm,
                jumps=info.jump_mm,
                duration=format_duration(info.estimate_s),
                spot=spot,
            ),
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
    estimate_s: float | None = None,
) -> Path:
    """Write the SVG preview (see :func:`svg_text`); returns the path written."""
    text = svg_text(job, machine, layout=layout, material_name=material_name, estimate_s=estimate_s)
    with writing(Path(path)) as out:
        out.write_text(text, encoding="utf-8")
    return out
