"""Small jobs for bring-up and the hardware-in-the-loop suite, built straight from the IR.

They depend on no layout or material profile, only on the machine's limits, so a new marker can be
proven before anything else is configured. Every builder validates what it makes against the
machine (LimitError, OutOfFieldError) and returns an ordinary :class:`~markstation.job.ir.Job`.

"Held off" means every layer has ``power_pct == 0``: the driver streams the whole job (jumps, marks,
delays, list/line handshakes) while the source is commanded to zero power.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from markstation.errors import LimitError, OutOfFieldError
from markstation.i18n import _
from markstation.job.ir import Job, Layer, MarkParams, Point, Polyline, Primitive, TextRegion
from markstation.profiles import MachineProfile, Rect

#: power of the "minimal-power mark": low enough to be harmless on any part, high enough to show
MIN_MARK_POWER_PCT = 5.0
#: the material test grid's defaults: power rows (%) and speed columns (mm/s), clipped to the machine
DEFAULT_GRID_POWERS_PCT = (10.0, 25.0, 40.0, 55.0, 70.0)
DEFAULT_GRID_SPEEDS_MM_S = (100.0, 300.0, 600.0, 1200.0, 2000.0)


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def bench_params(
    machine: MachineProfile, *, power_pct: float = 0.0, speed_mm_s: float = 100.0
) -> MarkParams:
    """A parameter set inside ``machine``'s limits: speed clamped into range, power checked."""
    if not (0.0 <= power_pct <= machine.power_pct_max):
        raise LimitError(
            _("power {power} is outside 0..{power_max} of machine '{name}'").format(
                power=f"{power_pct:g} %",
                power_max=f"{machine.power_pct_max:g} %",
                name=machine.name,
            )
        )
    return MarkParams(
        speed_mm_s=_clamp(speed_mm_s, machine.speed_mm_s_min, machine.speed_mm_s_max),
        power_pct=power_pct,
        frequency_khz=_clamp(30.0, machine.frequency_khz_min, machine.frequency_khz_max),
        jump_speed_mm_s=min(1000.0, machine.jump_speed_mm_s_max),
    )


def is_held_off(job: Job) -> bool:
    """True when no layer of ``job`` asks the source for any power."""
    return all(layer.params.power_pct == 0 for layer in job.layers)


def _check_inside(job: Job, area: Rect, what: str, machine: MachineProfile) -> None:
    for x, y in job.points():
        if not area.contains(x, y):
            raise OutOfFieldError(
                _(
                    "{what}: point ({x:.3f}, {y:.3f}) mm lies outside the safe area ({x_min:g}, {y_min:g})..({x_max:g}, {y_max:g}) mm of machine '{name}'"
                ).format(
                    what=what,
                    x=x,
                    y=y,
                    x_min=area.x_min,
                    y_min=area.y_min,
                    x_max=area.x_max,
                    y_max=area.y_max,
                    name=machine.name,
                )
            )


def _meta(kind: str, machine: MachineProfile, **extra: str) -> tuple[tuple[str, str], ...]:
    return Job.make_meta({"hil": kind, "machine": machine.name, **extra})


def square_job(
    machine: MachineProfile,
    *,
    size_mm: float = 10.0,
    power_pct: float = 0.0,
    speed_mm_s: float = 100.0,
    center: Point = (0.0, 0.0),
) -> Job:
    """One closed square outline of side ``size_mm`` around ``center``."""
    cx, cy = center
    h = size_mm / 2
    outline = Polyline(
        ((cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h), (cx - h, cy - h))
    )
    params = bench_params(machine, power_pct=power_pct, speed_mm_s=speed_mm_s)
    job = Job(layers=(Layer("square", params, (outline,)),), meta=_meta("square", machine))
    _check_inside(job, machine.safe_area, "square job", machine)
    return job


def stream_job(
    machine: MachineProfile,
    *,
    strokes: int = 120,
    points_per_stroke: int = 6,
    size_mm: float = 20.0,
    power_pct: float = 0.0,
    speed_mm_s: float = 1000.0,
) -> Job:
    """Many short strokes, so the job needs several list packets (LMC) or far more bytes than the
    controller's receive buffer (GRBL): it exercises flow control, not the optics.

    Strokes are serpentine rows of ``points_per_stroke`` points with a small zigzag, so every point is
    a separate mark command.
    """
    if strokes < 1 or points_per_stroke < 2:
        raise ValueError("stream_job needs at least one stroke of two points")
    h = size_mm / 2
    dy = size_mm / max(strokes - 1, 1)
    dx = size_mm / (points_per_stroke - 1)
    lines: list[Primitive] = []
    for row in range(strokes):
        y = -h + row * dy
        pts = [
            (-h + i * dx, min(h, y + (dy / 2 if i % 2 else 0.0))) for i in range(points_per_stroke)
        ]
        lines.append(Polyline(tuple(pts if row % 2 == 0 else pts[::-1])))
    params = bench_params(machine, power_pct=power_pct, speed_mm_s=speed_mm_s)
    job = Job(layers=(Layer("stream", params, tuple(lines)),), meta=_meta("stream", machine))
    _check_inside(job, machine.safe_area, "stream job", machine)
    return job


def layout_job(
    machine: MachineProfile, *, layout: str = "secondary-mark", power_pct: float = 0.0
) -> Job:
    """The shipped ``layout``'s example code, built as ``mark`` builds it on ``machine`` (its
    default material, path ordering included), with every layer at ``power_pct`` (held off by
    default): the real job, for checks that need a production-sized command stream (mark time).

    Unlike the other builders it reads the layout and material profiles. Timing does not depend on
    the power: the same list (LMC) or program (GRBL) is sent, with the source at zero."""
    from dataclasses import replace

    from markstation.job.layout import build_job
    from markstation.profiles import load_layout, load_material

    profile = load_layout(layout)
    material = load_material(machine.default_material, machine=machine)
    built = build_job(profile.code_example, layout=profile, material=material, machine=machine)
    bench_params(machine, power_pct=power_pct)  # the power must be inside the machine's limits
    layers = [replace(ly, params=replace(ly.params, power_pct=power_pct)) for ly in built.layers]
    job = built.with_layers(layers)
    _check_inside(job, machine.safe_area, f"{layout} job", machine)
    return job


def timed_job(
    machine: MachineProfile,
    *,
    seconds: float,
    power_pct: float = 0.0,
    speed_mm_s: float = 50.0,
    size_mm: float = 20.0,
) -> Job:
    """A serpentine of ``size_mm`` lines whose marking alone takes about ``seconds`` at the (clamped)
    speed: long enough that an abort lands mid-job."""
    params = bench_params(machine, power_pct=power_pct, speed_mm_s=speed_mm_s)
    count = max(2, math.ceil(seconds * params.speed_mm_s / size_mm))
    h = size_mm / 2
    step = size_mm / (count - 1)
    rows: list[Primitive] = []
    for i in range(count):
        y = -h + i * step
        row = ((-h, y), (h, y))
        rows.append(Polyline(row if i % 2 == 0 else row[::-1]))
    job = Job(layers=(Layer("timed", params, tuple(rows)),), meta=_meta("timed", machine))
    _check_inside(job, machine.safe_area, "timed job", machine)
    return job


def grid_axes(
    machine: MachineProfile,
    powers_pct: Sequence[float] = DEFAULT_GRID_POWERS_PCT,
    speeds_mm_s: Sequence[float] = DEFAULT_GRID_SPEEDS_MM_S,
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The grid axes fitted to ``machine``: powers above its maximum dropped, speeds clamped into its
    range (duplicates removed, order kept). When clamping leaves fewer than three speeds (a slow
    gantry), five speeds spread geometrically from a tenth of the maximum up to the maximum are used.
    """
    powers = tuple(p for p in powers_pct if 0 < p <= machine.power_pct_max)
    speeds: list[float] = []
    for s in speeds_mm_s:
        c = _clamp(s, machine.speed_mm_s_min, machine.speed_mm_s_max)
        if c not in speeds:
            speeds.append(c)
    if len(speeds) < min(3, len(speeds_mm_s)):
        top = machine.speed_mm_s_max
        low = max(machine.speed_mm_s_min, top / 10)
        spread = [low * (top / low) ** (i / 4) for i in range(5)]
        speeds = sorted({float(f"{s:.2g}") for s in spread} | {top})
        speeds = [_clamp(s, machine.speed_mm_s_min, top) for s in speeds]
    return powers, tuple(speeds)


def _hatch(x0: float, y0: float, cell_mm: float, hatch_mm: float) -> tuple[Primitive, ...]:
    count = max(2, math.floor(cell_mm / hatch_mm + 1e-9) + 1)
    step = cell_mm / (count - 1)
    lines: list[Primitive] = []
    for i in range(count):
        y = y0 + i * step
        row = ((x0, y), (x0 + cell_mm, y))
        lines.append(Polyline(row if i % 2 == 0 else row[::-1]))
    return tuple(lines)


def material_grid(
    machine: MachineProfile,
    *,
    powers_pct: Sequence[float],
    speeds_mm_s: Sequence[float],
    cell_mm: float = 4.0,
    gap_mm: float = 1.5,
    hatch_mm: float = 0.1,
    label_height_mm: float = 1.2,
    label_params: MarkParams | None = None,
    frequency_khz: float | None = None,
    center: Point = (0.0, 0.0),
) -> Job:
    """A power × speed test grid for depth calibration: one hatched square cell per combination.

    Rows are powers (first row on top), columns speeds (left to right). Each cell is its own layer
    named ``P<power> S<speed>`` with those parameters. Row labels ``P<power %>`` sit left of the rows,
    column labels ``S<speed mm/s>`` above the columns, in a ``labels`` layer marked with
    ``label_params`` (default: the middle power and speed of the grid). The whole grid is centred on
    ``center`` and must fit the machine's safe area (OutOfFieldError otherwise); every parameter must
    be inside the machine's limits (LimitError otherwise).
    """
    from markstation.job.text import render_text  # the font loads only when a grid is built

    if not powers_pct or not speeds_mm_s:
        raise LimitError(_("material grid: give at least one power and one speed"))
    if cell_mm <= 0 or gap_mm < 0 or hatch_mm <= 0 or label_height_mm <= 0:
        raise LimitError(_("material grid: cell, hatch and label sizes must be positive, gap ≥ 0"))
    freq = 30.0 if frequency_khz is None else frequency_khz
    if not (machine.frequency_khz_min <= freq <= machine.frequency_khz_max):
        raise LimitError(
            _(
                "material grid: frequency {freq:g} kHz is outside {frequency_khz_min:g}..{frequency_khz_max:g} kHz of machine '{name}'"
            ).format(
                freq=freq,
                frequency_khz_min=machine.frequency_khz_min,
                frequency_khz_max=machine.frequency_khz_max,
                name=machine.name,
            )
        )
    for p in powers_pct:
        if not (0 < p <= machine.power_pct_max):
            raise LimitError(
                _(
                    "material grid: power {power} is outside 0..{power_max} of machine '{name}'"
                ).format(
                    power=f"{p:g} %", power_max=f"{machine.power_pct_max:g} %", name=machine.name
                )
            )
    for s in speeds_mm_s:
        if not (machine.speed_mm_s_min <= s <= machine.speed_mm_s_max):
            raise LimitError(
                _(
                    "material grid: speed {s:g} mm/s is outside {speed_mm_s_min:g}..{speed_mm_s_max:g} mm/s of machine '{name}'"
                ).format(
                    s=s,
                    speed_mm_s_min=machine.speed_mm_s_min,
                    speed_mm_s_max=machine.speed_mm_s_max,
                    name=machine.name,
                )
            )

    def params(power: float, speed: float) -> MarkParams:
        base = bench_params(machine, power_pct=power, speed_mm_s=speed)
        return MarkParams(
            speed_mm_s=speed,
            power_pct=power,
            frequency_khz=freq,
            jump_speed_mm_s=base.jump_speed_mm_s,
        )

    pitch = cell_mm + gap_mm
    label_gap = max(gap_mm, label_height_mm / 2)
    row_labels = [f"P{p:g}" for p in powers_pct]
    col_labels = [f"S{s:g}" for s in speeds_mm_s]
    # measure the widest row label so the grid plus its labels can be centred as a whole
    label_w = max(
        render_text(t, cap_height_mm=label_height_mm, align="left").width_mm for t in row_labels
    )
    grid_w = len(speeds_mm_s) * pitch - gap_mm
    grid_h = len(powers_pct) * pitch - gap_mm
    total_w = label_w + label_gap + grid_w
    total_h = grid_h + label_gap + label_height_mm
    x_grid = center[0] - total_w / 2 + label_w + label_gap
    y_top = center[1] - total_h / 2 + grid_h  # top edge of the first row

    layers: list[Layer] = []
    for r, power in enumerate(powers_pct):
        y0 = y_top - r * pitch - cell_mm
        for c, speed in enumerate(speeds_mm_s):
            x0 = x_grid + c * pitch
            layers.append(
                Layer(
                    f"P{power:g} S{speed:g}",
                    params(power, speed),
                    _hatch(x0, y0, cell_mm, hatch_mm),
                )
            )

    if label_params is None:
        label_params = params(
            sorted(powers_pct)[len(powers_pct) // 2], sorted(speeds_mm_s)[len(speeds_mm_s) // 2]
        )
    strokes: list[Primitive] = []
    texts: list[TextRegion] = []
    for r, text in enumerate(row_labels):
        baseline = y_top - r * pitch - cell_mm / 2 - label_height_mm / 2
        shape = render_text(
            text,
            cap_height_mm=label_height_mm,
            align="right",
            origin=(x_grid - label_gap, baseline),
        )
        strokes.extend(shape.polylines)
        texts.append(TextRegion(text, shape.bbox, label_height_mm))
    for c, text in enumerate(col_labels):
        shape = render_text(
            text,
            cap_height_mm=label_height_mm,
            align="center",
            origin=(x_grid + c * pitch + cell_mm / 2, y_top + label_gap),
        )
        strokes.extend(shape.polylines)
        texts.append(TextRegion(text, shape.bbox, label_height_mm))
    layers.append(Layer("labels", label_params, tuple(strokes)))

    job = Job(
        layers=tuple(layers),
        texts=tuple(texts),
        meta=_meta(
            "material-grid",
            machine,
            powers_pct=",".join(f"{p:g}" for p in powers_pct),
            speeds_mm_s=",".join(f"{s:g}" for s in speeds_mm_s),
        ),
    )
    _check_inside(job, machine.safe_area, "material grid", machine)
    return job
