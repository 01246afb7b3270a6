"""``markstation hil``: hardware-in-the-loop reports (the suite itself runs under pytest)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def hil() -> None:
    """Hardware-in-the-loop reports.

    The suite runs under pytest from a source checkout: ``pytest hil_tests`` (both simulators) or
    ``pytest hil_tests --device usb://lmc [--allow-emission] [--operator]``. It writes a JSON report
    and a Markdown summary; these commands read them back.
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
    from markstation.hil import load_report, render_summary

    rep = load_report(results)
    text = render_summary(rep)
    if output is None:
        click.echo(text, nl=False)
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{output}: cannot write the summary ({exc.strerror})") from None
        counts = rep.counts()
        click.echo(
            f"{output}: {counts['passed']} passed, {counts['failed']} failed, "
            f"{counts['skipped']} skipped"
        )
    if strict and not rep.passed:
        raise SystemExit(2)
