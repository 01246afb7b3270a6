"""``markstation sim grbl --pty``: the simulated GRBL marker on a pseudo-terminal."""

from __future__ import annotations

import time

import click

from markstation.cli.options import machine_option
from markstation.cli.translate import Command
from markstation.i18n import _


@click.command(cls=Command)
@click.option(
    "--pty",
    "use_pty",
    is_flag=True,
    help="Serve on a new pseudo-terminal and print its path (the only mode; POSIX only).",
)
@click.option(
    "--timing",
    default="instant",
    show_default=True,
    metavar="instant|realtime|F",
    help="Motion timing: instant, realtime, or F times faster than real time.",
)
@click.option(
    "--ledger",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="PATH",
    help="Append what the simulated laser burns to this JSON Lines ledger.",
)
@machine_option(
    help="Machine profile whose field geometry and $30 the simulator uses (default grbl-marker).",
)
@click.option(
    "--fault",
    default=None,
    metavar="KIND@N",
    help="Inject disconnect, reset, alarm, stall or lost-ok at G-code line N.",
)
@click.option(
    "--settings",
    "settings_text",
    default="",
    metavar="N:V,…",
    help="Override GRBL settings, e.g. 32:0,30:255 (default: laser mode on, $30 from the machine).",
)
def grbl(
    use_pty: bool,
    timing: str,
    ledger: str | None,
    machine: str | None,
    fault: str | None,
    settings_text: str,
) -> None:
    """Serve the simulated GRBL 1.1h laser marker so any GRBL sender can connect to it.

    Prints the pty path on stdout (e.g. /dev/pts/7), then serves until Ctrl-C. Connect a sender
    at any baud rate, or mark on it: --device "serial:///dev/pts/7?protocol=grbl".
    """
    from markstation.devices.sim.grbl.pty import serve_pty

    if not use_pty:
        raise click.UsageError(
            _("nothing to serve: give --pty (use the URL sim://grbl from Python)")
        )
    options = {"timing": timing, "settings": settings_text}
    if ledger:
        options["ledger"] = ledger
    if fault:
        options["fault"] = fault
    server = serve_pty(options, machine=machine)
    try:
        click.echo(server.path)
        click.echo(_("simulated GRBL 1.1h serving; Ctrl-C stops"), err=True)
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        click.echo(_("stopped"), err=True)
    finally:
        server.stop()
