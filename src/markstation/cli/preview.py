"""``markstation preview CODE``: the dry run — picture, size, time, decode check, no laser."""

from __future__ import annotations

import re
from pathlib import Path

import click

from markstation.cli.options import (
    layout_option,
    machine_option,
    material_option,
    preview_output_option,
)
from markstation.cli.translate import Command
from markstation.errors import ConfigError, VerifyError
from markstation.i18n import _
from markstation.profiles import DEFAULT_MACHINE

PREVIEW_SUFFIXES = (".png", ".svg")


def default_output(code: str) -> Path:
    """``<code>.png`` in the current directory, with characters unsafe in file names replaced."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", code).strip("._") or "preview"
    return Path(f"{stem}.png")


def check_output(path: Path) -> str:
    """The preview format for ``path`` ('.png' or '.svg'); ConfigError naming any other suffix."""
    suffix = path.suffix.lower()
    if suffix not in PREVIEW_SUFFIXES:
        shown = f"'{path.suffix}'" if path.suffix else _("no suffix")
        raise ConfigError(
            _("output file {path}: {shown} is not a preview format (use .png or .svg)").format(
                path=path, shown=shown
            )
        )
    return suffix


@click.command(cls=Command)
@click.argument("code")
@layout_option
@material_option
@machine_option(
    default=DEFAULT_MACHINE["lmc"],
    help="Machine profile (name or .toml path): field, spot size and limits.",
)
@preview_output_option(
    "Where to write the preview; the suffix picks PNG or SVG (mm units). "
    "Default: CODE.png in the current directory."
)
@click.option(
    "--verify",
    is_flag=True,
    help="Decode every 2D code from the rendered burn and fail (exit 1) unless each reads back "
    "exactly as the payload.",
)
@click.option(
    "--px-per-mm",
    type=click.FloatRange(min=0.5, max=1000),
    default=None,
    metavar="N",
    help="PNG scale in pixels per millimetre (default: fit about 1500 x 900 px).",
)
def preview(
    code: str,
    layout: str,
    material: str,
    machine: str,
    output: Path | None,
    verify: bool,
    px_per_mm: float | None,
) -> None:
    """Preview what the laser would burn for CODE, without a laser.

    Builds the job exactly as 'mark' would (code scheme, fonts, legal text height, field and safe
    area, machine limits), writes a picture of the burn at the real spot width, and prints the
    size, stroke count, marked and jump lengths, the jump length saved by path optimisation and
    the estimated marking time.
    """
    from markstation import preview as pv
    from markstation.job.estimate import estimate, format_duration
    from markstation.job.layout import build_job
    from markstation.job.optimize import optimize
    from markstation.profiles import load_layout, load_machine, load_material

    out = output if output is not None else default_output(code)
    kind = check_output(out)
    lay = load_layout(layout)
    mach = load_machine(machine)
    mat = load_material(material, machine=mach)

    raw = build_job(code, layout=lay, material=mat, machine=mach, optimize=False)
    job = optimize(raw)
    checks = pv.check_codes(job, mach) if verify else []
    from markstation.devices.estimate import device_estimate

    device = device_estimate(job, mach)

    if kind == ".svg":
        pv.render_svg(job, mach, out, layout=lay, estimate_s=device.seconds)
        written = _("wrote {path} (SVG, mm units)").format(path=out)
    else:
        scale = px_per_mm if px_per_mm is not None else None
        pv.render_png(
            job, mach, out, px_per_mm=scale, layout=lay, checks=checks, estimate_s=device.seconds
        )
        from PIL import Image

        with Image.open(out) as img:
            written = _("wrote {path} ({width} x {height} px)").format(
                path=out, width=img.width, height=img.height
            )

    info = pv.preview_info(job)
    est = estimate(job)
    before, after = raw.jump_length(), job.jump_length()
    saved = 100.0 * (before - after) / before if before > 0 else 0.0
    passes = "+".join(str(layer.passes) for layer in est.layers)
    click.echo(written)
    rows = [
        (_("mark code"), info.code),
        (
            _("profiles"),
            _("layout {layout}, material {material}, machine {machine}").format(
                layout=lay.name, material=mat.name, machine=mach.name
            ),
        ),
        (
            _("size"),
            _("{width:.2f} x {height:.2f} mm").format(
                width=info.size_mm[0], height=info.size_mm[1]
            ),
        ),
        (
            _("strokes"),
            _("{strokes} in {layers} layer(s)").format(
                strokes=info.strokes, layers=len(job.layers)
            ),
        ),
        (_("marked"), _("{length:.1f} mm per pass").format(length=info.marked_mm)),
        (
            _("jumps"),
            _("{before:.1f} mm -> {after:.1f} mm ({saved} saved by path order)").format(
                before=before, after=after, saved=f"{saved:.1f} %"
            ),
        ),
        (
            _("est. time"),
            _("{time} on {machine} (from the {protocol} command stream)").format(
                time=format_duration(device.seconds),
                machine=mach.name,
                protocol=device.protocol.upper(),
            ),
        ),
        (
            _("quick est."),
            _(
                "{time}, device-independent (marking {marking:.2f} s, jumps {jumps:.2f} s, "
                "delays {delays:.2f} s; passes {passes})"
            ).format(
                time=format_duration(est.total_s),
                marking=est.mark_s + est.dwell_s,
                jumps=est.jump_s,
                delays=est.delay_s,
                passes=passes,
            ),
        ),
    ]
    width = max(11, *(len(label) for label, _value in rows))
    for label, value in rows:
        click.echo(f"{label:<{width}} {value}")
    failed = [c for c in checks if not c.ok]
    for check in checks:
        click.echo(check.describe())
    if failed:
        raise VerifyError(failed[0].describe())
