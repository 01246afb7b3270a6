"""``markstation hil``: hardware-in-the-loop reports (the suite itself runs under pytest)."""

from __future__ import annotations

from pathlib import Path

import click

from markstation.cli.options import preview_output_option
from markstation.cli.translate import Group
from markstation.i18n import _


@click.group(cls=Group)
def hil() -> None:
    """Hardware-in-the-loop reports and the material test grid.

    The suite itself runs under pytest from a source checkout: "pytest hil_tests" (both
    simulators) or "pytest hil_tests --device usb://lmc [--allow-emission] [--operator]". It
    writes hil-report.json and hil-report.md; "hil report" re-renders the summary, "hil grid"
    previews the material test grid the suite marks.
    """


@hil.command()
@click.argument("results", type=click.Path(dir_okay=False, path_type=Path), metavar="RESULTS.json")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    metavar="SUMMARY.md",
    help="Write the Markdown summary to this file instead of printing it.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Exit with status 2 when any check in the report failed (for CI gates).",
)
def report(results: Path, output: Path | None, strict: bool) -> None:
    """Render the readable summary of a suite's RESULTS.json (e.g. hil-report.json)."""
    from markstation.errors import ConfigError
    from markstation.hil.report import load_report, render_summary

    rep = load_report(results)
    text = render_summary(rep)
    if output is None:
        click.echo(text, nl=False)
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                _("{output}: cannot write the summary ({strerror})").format(
                    output=output, strerror=exc.strerror
                )
            ) from None
        counts = rep.counts()
        click.echo(
            _("{output}: {passed} passed, {failed} failed, {skipped} skipped").format(
                output=output,
                passed=counts["passed"],
                failed=counts["failed"],
                skipped=counts["skipped"],
            )
        )
    if strict and not rep.passed:
        raise SystemExit(2)


def _numbers(text: str, option: str) -> list[float]:
    from markstation.errors import ConfigError

    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(
            _("{option} '{text}': expected numbers separated by commas").format(
                option=option, text=text
            )
        ) from None
    if not values:
        raise ConfigError(
            _("{option} '{text}': give at least one number").format(option=option, text=text)
        )
    return values


@hil.command()
@click.option(
    "--machine",
    "-m",
    metavar="NAME",
    default="lmc-fiber-110",
    show_default=True,
    help="Machine profile (name or .toml path) whose limits and field the grid must fit.",
)
@click.option(
    "--powers",
    metavar="P1,P2,…",
    default=None,
    help="Power rows in % (default 10,25,40,55,70, those above the machine's maximum dropped).",
)
@click.option(
    "--speeds",
    metavar="S1,S2,…",
    default=None,
    help="Speed columns in mm/s (default 100,300,600,1200,2000, fitted to the machine).",
)
@click.option("--cell", type=float, default=4.0, show_default=True, help="Cell side in mm.")
@click.option("--gap", type=float, default=1.5, show_default=True, help="Gap between cells in mm.")
@click.option(
    "--hatch", type=float, default=0.1, show_default=True, help="Hatch line spacing in mm."
)
@click.option(
    "--frequency",
    type=float,
    default=None,
    metavar="KHZ",
    help="Pulse frequency of every cell in kHz (default 30, must fit the machine).",
)
@preview_output_option("Also write a preview of the grid (nothing is sent to any device).")
def grid(
    machine: str,
    powers: str | None,
    speeds: str | None,
    cell: float,
    gap: float,
    hatch: float,
    frequency: float | None,
    output: Path | None,
) -> None:
    """Show (and preview) the power × speed material test grid the HIL suite marks.

    The suite marks it with "pytest hil_tests --device URL --allow-emission -k material_grid";
    this command only builds it: cells, size and estimated time, and a preview with -o.
    """
    from markstation.errors import ConfigError
    from markstation.hil.jobs import grid_axes, material_grid
    from markstation.job.estimate import estimate, format_duration
    from markstation.profiles import load_machine

    profile = load_machine(machine)
    # defaults are fitted to the machine; values given explicitly are used as given (or refused)
    p_axis, s_axis = grid_axes(profile)
    if powers is not None:
        p_axis = tuple(_numbers(powers, "--powers"))
    if speeds is not None:
        s_axis = tuple(_numbers(speeds, "--speeds"))
    job = material_grid(
        profile,
        powers_pct=p_axis,
        speeds_mm_s=s_axis,
        cell_mm=cell,
        gap_mm=gap,
        hatch_mm=hatch,
        frequency_khz=frequency,
    )
    bounds = job.bounds()
    assert bounds is not None
    click.echo(
        _("machine {name}: {n_p_axis} powers × {n_s_axis} speeds").format(
            name=profile.name, n_p_axis=len(p_axis), n_s_axis=len(s_axis)
        )
    )
    click.echo("  rows (power %):     " + ", ".join(f"P{p:g}" for p in p_axis))
    click.echo("  columns (mm/s):     " + ", ".join(f"S{s:g}" for s in s_axis))
    click.echo(
        _("  size: {width:.1f} × {height:.1f} mm, estimated {time}").format(
            width=bounds[2] - bounds[0],
            height=bounds[3] - bounds[1],
            time=format_duration(estimate(job).total_s),
        )
    )
    if output is not None:
        from markstation.preview import render_png, render_svg

        suffix = output.suffix.lower()
        if suffix == ".svg":
            render_svg(job, profile, output, material_name="material test grid")
        elif suffix == ".png":
            render_png(job, profile, output, material_name="material test grid")
        else:
            raise ConfigError(
                _("{output}: the preview must be a .png or .svg file").format(output=output)
            )
        click.echo(_("preview: {output}").format(output=output))
