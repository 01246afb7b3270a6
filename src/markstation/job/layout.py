"""Layout template + mark code → a validated, optimised :class:`~markstation.job.ir.Job`.

:func:`build_job` checks everything a user can get wrong before it builds anything: the code
against the layout's scheme, every template field, every character against its font, every text
height against the legal minimum, the material's parameters against the machine's limits. Then it
lays out each element (text, Data Matrix / QR / Micro QR, image) at its position and rotation,
checks that every point lies inside the machine's field and both safe areas, records where each
code and text line sits (so the preview can decode and OCR them) and orders the strokes.

Layers: all text elements share the layer ``"text"`` (material ``[text]`` parameters); each 2D code
gets its own layer named after its symbology, and each image a ``"raster"`` layer (material
``[fill]`` parameters). Layers keep the order of the layout's elements.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markstation.errors import (
    ConfigError,
    GlyphError,
    LimitError,
    OutOfFieldError,
    TextTooSmallError,
)
from markstation.i18n import _
from markstation.job.codes import fill_template, parse_code, printable
from markstation.job.ir import (
    Affine,
    CodeRegion,
    Job,
    Layer,
    MarkParams,
    Point,
    Primitive,
    TextRegion,
    bounds_of,
)
from markstation.profiles import LayoutProfile, MachineProfile, MaterialProfile, Rect

CODE_KINDS = ("datamatrix", "qr", "microqr")

#: slack for points exactly on a boundary after a rotation (1 nm)
_TOL = 1e-6


@dataclass(frozen=True, slots=True)
class _Planned:
    """One element after its checks: what to build, with everything resolved."""

    index: int
    kind: str
    spec: Mapping[str, Any]
    #: the formatted text (text) or payload (codes); "" for images
    content: str
    #: font spec with a relative SVG path resolved against the layout file
    font: str = ""


def element_name(layout: LayoutProfile, index: int) -> str:
    """How messages name an element: ``layout 'secondary-mark' (path) element[1] (datamatrix)``."""
    kind = layout.elements[index]["kind"]
    return f"layout '{layout.name}' ({layout.path}) element[{index}] ({kind})"


def _resolve_font(spec: str, layout: LayoutProfile) -> str:
    # an SVG font given relative to the layout file travels with the layout
    if spec.lower().endswith(".svg") and not Path(spec).expanduser().is_absolute():
        beside = layout.path.parent / spec
        if beside.is_file():
            return str(beside.resolve())
    return spec


def _describe_char(ch: str) -> str:
    shown = repr(ch) if ch.isprintable() else "a control character"
    return f"{shown} (U+{ord(ch):04X})"


def plan_elements(code: str, layout: LayoutProfile) -> list[_Planned]:
    """Check the code and every element's text before anything is built (no geometry yet)."""
    from markstation.job.text import load_font, missing_glyphs

    fields = parse_code(code, layout)
    plans: list[_Planned] = []
    for i, el in enumerate(layout.elements):
        kind = str(el["kind"])
        where = element_name(layout, i)
        if kind == "text":
            text = fill_template(el["text"], fields, where)
            font = _resolve_font(el["font"], layout)
            try:
                load_font(font)
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}") from exc
            missing = missing_glyphs(text, font)
            if missing:
                names = ", ".join(_describe_char(ch) for ch in missing)
                raise GlyphError(
                    _("{where}: font '{font}' has no glyph for {names} in {printable}").format(
                        where=where, font=el["font"], names=names, printable=printable(text)
                    )
                )
            if el["height_mm"] < layout.min_char_height_mm - 1e-9:
                raise TextTooSmallError(
                    _(
                        "{where}: text height {height_mm:g} mm is below the layout's legal minimum {min_char_height_mm:g} mm (min_char_height_mm)"
                    ).format(
                        where=where,
                        height_mm=el["height_mm"],
                        min_char_height_mm=layout.min_char_height_mm,
                    )
                )
            plans.append(_Planned(i, kind, el, text, font))
        elif kind in CODE_KINDS:
            data = fill_template(el["data"], fields, where)
            plans.append(_Planned(i, kind, el, data))
        elif kind == "image":
            if not Path(el["path"]).is_file():
                raise ConfigError(
                    _("{where}: image file {path} does not exist").format(
                        where=where, path=el["path"]
                    )
                )
            plans.append(_Planned(i, kind, el, ""))
        else:  # the profile loader only lets known kinds through
            raise ConfigError(
                _("{where}: unknown element kind {kind!r}").format(where=where, kind=kind)
            )
    return plans


# --- limits ------------------------------------------------------------------------------------


def check_params(params: MarkParams, machine: MachineProfile, where: str) -> None:
    """LimitError naming ``where`` (e.g. the material key) when params exceed the machine."""
    m = machine
    name = f"machine '{m.name}'"
    if not 0 <= params.power_pct <= m.power_pct_max:
        raise LimitError(
            _("{where}.power_pct = {power} is outside 0..{power_max} of {name}").format(
                where=where,
                power=f"{params.power_pct:g} %",
                power_max=f"{m.power_pct_max:g} %",
                name=name,
            )
        )
    if not m.speed_mm_s_min <= params.speed_mm_s <= m.speed_mm_s_max:
        raise LimitError(
            _(
                "{where}.speed_mm_s = {speed_mm_s:g} mm/s is outside {speed_mm_s_min:g}..{speed_mm_s_max:g} mm/s of {name}"
            ).format(
                where=where,
                speed_mm_s=params.speed_mm_s,
                speed_mm_s_min=m.speed_mm_s_min,
                speed_mm_s_max=m.speed_mm_s_max,
                name=name,
            )
        )
    if not m.frequency_khz_min <= params.frequency_khz <= m.frequency_khz_max:
        raise LimitError(
            _(
                "{where}.frequency_khz = {frequency_khz:g} kHz is outside {frequency_khz_min:g}..{frequency_khz_max:g} kHz of {name}"
            ).format(
                where=where,
                frequency_khz=params.frequency_khz,
                frequency_khz_min=m.frequency_khz_min,
                frequency_khz_max=m.frequency_khz_max,
                name=name,
            )
        )
    if params.pulse_width_ns is not None and params.pulse_width_ns not in m.pulse_width_ns:
        allowed = ", ".join(f"{w:g}" for w in m.pulse_width_ns) or "none: not a MOPA source"
        raise LimitError(
            _(
                "{where}.pulse_width_ns = {pulse_width_ns:g} ns is not one of {name} ({allowed})"
            ).format(where=where, pulse_width_ns=params.pulse_width_ns, name=name, allowed=allowed)
        )
    if not 0 < params.jump_speed_mm_s <= m.jump_speed_mm_s_max:
        raise LimitError(
            _(
                "{where} jump_speed_mm_s = {jump_speed_mm_s:g} mm/s is above {jump_speed_mm_s_max:g} mm/s of {name}"
            ).format(
                where=where,
                jump_speed_mm_s=params.jump_speed_mm_s,
                jump_speed_mm_s_max=m.jump_speed_mm_s_max,
                name=name,
            )
        )
    if params.passes < 1:
        raise LimitError(
            _("{where}.passes = {passes} must be at least 1").format(
                where=where, passes=params.passes
            )
        )


# --- geometry checks ---------------------------------------------------------------------------


def _rect_text(r: Rect) -> str:
    return f"x {r.x_min:g}..{r.x_max:g}, y {r.y_min:g}..{r.y_max:g} mm"


def check_points(
    points: Iterable[Point], machine: MachineProfile, layout: LayoutProfile, where: str
) -> None:
    """OutOfFieldError naming ``where`` and the first point outside the field or a safe area."""
    pts = points if isinstance(points, list) else list(points)
    if not pts:
        return
    fld = machine.field
    areas = (
        (fld, f"the {machine.field_width_mm:g} × {machine.field_height_mm:g} mm field of "
              f"machine '{machine.name}'"),
        (machine.safe_area, f"the safe area of machine '{machine.name}' ({_rect_text(machine.safe_area)})"),
        (layout.safe_area, f"the safe area of layout '{layout.name}' ({_rect_text(layout.safe_area)})"),
    )  # fmt: skip
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    # the common case in one pass of C loops: finite, and the bounding box inside every area
    if math.isfinite(sum(xs) + sum(ys)):
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        if all(r.contains(x0, y0, tol=_TOL) and r.contains(x1, y1, tol=_TOL) for r, _ in areas):
            return
    for x, y in pts:
        if not (math.isfinite(x) and math.isfinite(y)):
            raise OutOfFieldError(
                _("{where}: point ({x}, {y}) is not a finite coordinate").format(
                    where=where, x=x, y=y
                )
            )
        for rect, label in areas:
            if not rect.contains(x, y, tol=_TOL):
                raise OutOfFieldError(
                    _("{where}: point ({x:.3f}, {y:.3f}) mm is outside {label}").format(
                        where=where, x=x, y=y, label=label
                    )
                )


def validate_job(job: Job, machine: MachineProfile, layout: LayoutProfile) -> None:
    """Check a built job against the machine and the layout; raise the first problem found.

    Every layer's parameters within the machine's limits (:class:`LimitError`), every point inside
    the field and both safe areas (:class:`OutOfFieldError`), every recorded text line at or above
    the layout's minimum character height (:class:`TextTooSmallError`).
    """
    for layer in job.layers:
        check_params(layer.params, machine, f"layer '{layer.name}'")
        check_points(job_layer_points(layer), machine, layout, f"layer '{layer.name}'")
    for text in job.texts:
        if text.cap_height_mm < layout.min_char_height_mm - 1e-9:
            raise TextTooSmallError(
                _(
                    "text {printable}: height {cap_height_mm:g} mm is below the legal minimum {min_char_height_mm:g} mm of layout '{name}'"
                ).format(
                    printable=printable(text.text),
                    cap_height_mm=text.cap_height_mm,
                    min_char_height_mm=layout.min_char_height_mm,
                    name=layout.name,
                )
            )


def job_layer_points(layer: Layer) -> list[Point]:
    return [p for prim in layer.primitives for p in prim.points]


# --- building ----------------------------------------------------------------------------------


def _place(x: float, y: float, rotation_deg: float) -> Affine:
    """Rotate about the element's own origin, then move it to (x, y)."""
    return Affine.rotate(rotation_deg).then(Affine.translate(x, y))


def _build_text(plan: _Planned) -> tuple[list[Primitive], TextRegion]:
    from markstation.job.text import render_text

    el = plan.spec
    shape = render_text(
        plan.content,
        cap_height_mm=el["height_mm"],
        font=plan.font,
        align=el["align"],
        spacing=el["spacing"],
        rotation_deg=el["rotation_deg"],
        origin=(el["x_mm"], el["y_mm"]),
    )
    region = TextRegion(
        text=plan.content,
        bbox=shape.bbox,
        cap_height_mm=el["height_mm"],
        rotation_deg=el["rotation_deg"],
    )
    return list(shape.polylines), region


def _build_code(
    plan: _Planned, material: MaterialProfile, machine: MachineProfile
) -> tuple[list[Primitive], list[Primitive], CodeRegion]:
    """The code's fill, its outlines when they get a layer of their own (``outline_order`` first
    or last; else they are among the fill), and where it sits."""
    from markstation.job.fill import code_bbox, fill_modules, outlines
    from markstation.job.symbols import encode_symbol

    el = plan.spec
    size = str(el.get("size", "auto"))
    ec = el.get("ec")
    matrix = encode_symbol(plan.kind, plan.content, size=size, ec=ec)
    cols, rows = matrix.size
    m = float(el["module_mm"])
    q = int(el["quiet_zone_modules"])
    x, y, turn = el["x_mm"], el["y_mm"], el["rotation_deg"]
    # the symbol's centre at the element position; unrotated symbols are built in place
    centred = (-cols * m / 2, rows * m / 2)
    top_left = centred if turn else (x + centred[0], y + centred[1])
    dwell_s, dot_mm = material.dot_dwell_s, 0.0
    if el["fill"] == "dots":
        from markstation.errors import SymbolError
        from markstation.job.fill import dot_plan

        try:
            dwell_s, dot_mm = dot_plan(
                m,
                spot_mm=machine.spot_mm,
                power_pct=material.fill.power_pct,
                growth_mm=material.dot_growth_mm,
                max_mm=material.dot_max_mm,
                min_dwell_s=material.dot_dwell_s,
            )
        except SymbolError as exc:
            raise SymbolError(f"material '{material.name}': {exc}") from exc
    separate = el["fill"] == "outline-hatch" and el.get("outline_order", "mixed") != "mixed"
    prims = fill_modules(
        matrix,
        module_mm=m,
        top_left=top_left,
        style=el["fill"],
        hatch_spacing_mm=material.hatch_spacing_mm,
        dot_dwell_s=dwell_s,
        dot_diameter_mm=dot_mm,
        quiet_zone_modules=q,
        spot_mm=machine.spot_mm,
        angle_deg=material.hatch_angle_deg,
        cross_angle_deg=material.cross_hatch_angle_deg,
        join=material.hatch_join,
        outline=not separate,
    )
    rings: tuple[Primitive, ...] = ()
    if separate:
        rings = tuple(outlines(matrix.rows, top_left[0], top_left[1], m, machine.spot_mm / 2))
    bbox = code_bbox(matrix, module_mm=m, top_left=top_left, quiet_zone_modules=q)
    if turn:
        place = _place(x, y, turn)
        prims = tuple(place.apply_primitive(p) for p in prims)
        rings = tuple(place.apply_primitive(p) for p in rings)
        bbox = place.apply_bbox(bbox)
    region = CodeRegion(
        symbology=plan.kind,
        payload=plan.content,
        bbox=bbox,
        module_mm=m,
        inverse=el["fill"] == "inverse",
        matrix=matrix.rows,
    )
    return list(prims), list(rings), region


def _build_image(plan: _Planned, material: MaterialProfile) -> list[Primitive]:
    from markstation.job.raster import raster_image

    el = plan.spec
    spacing = el["line_spacing_mm"] or material.raster_line_spacing_mm
    prims: list[Primitive] = list(
        raster_image(
            el["path"],
            width_mm=el["width_mm"],
            line_spacing_mm=spacing,
            mode=el["mode"],
            threshold=el["threshold"],
            top_left=(0.0, 0.0),
        )
    )
    box = bounds_of(p for prim in prims for p in prim.points)
    if box is None:
        return []
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    place = Affine.translate(-cx, -cy).then(_place(el["x_mm"], el["y_mm"], el["rotation_deg"]))
    return [place.apply_primitive(p) for p in prims]


def build_job(
    code: str,
    *,
    layout: LayoutProfile,
    material: MaterialProfile,
    machine: MachineProfile,
    optimize: bool = True,
) -> Job:
    """Build the job that marks ``code`` with ``layout`` on ``material`` with ``machine``.

    Refusals, all before any geometry exists: :class:`CodeSchemeError` (code vs. scheme),
    :class:`ConfigError` (unknown template field, font or image file), :class:`GlyphError`,
    :class:`TextTooSmallError`, :class:`LimitError` (the material key at fault). After layout:
    :class:`OutOfFieldError` naming the element and the point, :class:`SymbolError` when a code
    does not fit the requested size. ``optimize`` reorders strokes to shorten the jumps.
    """
    plans = plan_elements(code, layout)
    kinds = {p.kind for p in plans}
    if "text" in kinds:
        check_params(material.text, machine, f"material '{material.name}' ({material.path}) text")
    if kinds & {*CODE_KINDS, "image"}:
        check_params(material.fill, machine, f"material '{material.name}' ({material.path}) fill")

    layers: list[Layer] = []
    codes: list[CodeRegion] = []
    texts: list[TextRegion] = []
    text_prims: list[Primitive] | None = None
    used_names: dict[str, int] = {}

    def layer_name(base: str) -> str:
        used_names[base] = used_names.get(base, 0) + 1
        return base if used_names[base] == 1 else f"{base}-{used_names[base]}"

    # (name, params, primitives) in element order; the shared text layer sits at its first element
    pending: list[tuple[str, MarkParams, list[Primitive]]] = []
    for plan in plans:
        where = element_name(layout, plan.index)
        if plan.kind == "text":
            prims, text_region = _build_text(plan)
            texts.append(text_region)
            if text_prims is None:
                text_prims = []
                pending.append(("text", material.text, text_prims))
            text_prims.extend(prims)
        elif plan.kind in CODE_KINDS:
            prims, rings, code_region = _build_code(plan, material, machine)
            codes.append(code_region)
            fill_layer = (layer_name(plan.kind), material.fill, prims)
            if rings:
                ring_layer = (layer_name(f"{plan.kind}-outline"), material.fill, rings)
                first = plan.spec["outline_order"] == "first"
                pending.extend((ring_layer, fill_layer) if first else (fill_layer, ring_layer))
                prims = prims + rings
            else:
                pending.append(fill_layer)
        else:
            prims = _build_image(plan, material)
            pending.append((layer_name("raster"), material.fill, prims))
        check_points([p for prim in prims for p in prim.points], machine, layout, where)

    for name, params, prims in pending:
        if prims:
            layers.append(Layer(name, params, tuple(prims)))
    meta = Job.make_meta(
        {
            "mark_code": code,
            "layout": layout.name,
            "layout_sha256": layout.sha256,
            "material": material.name,
            "material_sha256": material.sha256,
            "machine": machine.name,
            "machine_sha256": machine.sha256,
            "safe_area": ",".join(
                f"{v:g}"
                for v in (
                    layout.safe_area.x_min,
                    layout.safe_area.y_min,
                    layout.safe_area.x_max,
                    layout.safe_area.y_max,
                )
            ),
        }
    )
    job = Job(layers=tuple(layers), codes=tuple(codes), texts=tuple(texts), meta=meta)
    validate_job(job, machine, layout)
    if optimize:
        from markstation.job.optimize import optimize as optimize_job

        job = optimize_job(job)
    return job
