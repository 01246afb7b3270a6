"""``markstation sim replay FILE.pcap -o burn.png``: a USB capture into the simulated LMC board."""

from __future__ import annotations

from pathlib import Path

import click

from markstation.cli.options import machine_option
from markstation.cli.translate import Command
from markstation.i18n import _


@click.command(cls=Command)
@click.argument("capture", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help=(
        "Write the burn as a PNG here (strokes drawn at the machine's spot size, dots as wide "
        "as the dot model of the machine's default material makes them)."
    ),
)
@machine_option
def replay(capture: Path, output: Path | None, machine: str | None) -> None:
    """Replay CAPTURE (a classic pcap, USBPcap link type) into the simulated LMC board.

    The host-to-device transfers on endpoint 0x02 are fed to the board at their capture times;
    the board's status answers are compared with the replies in the capture, and what it burned
    is summarised (and drawn with -o). The machine profile sets the lens field (galvo units to mm).
    """
    from markstation.devices.sim.lmc.replay import closed_strokes, replay_file
    from markstation.profiles import default_machine_for, load_machine, load_material

    profile = load_machine(machine) if machine else default_machine_for("lmc")
    report, board = replay_file(capture, profile)
    rows = [
        (_("capture:"), str(capture)),
        (
            _("transfers:"),
            _("{transfers} ({commands} commands, {list_packets} list packets)").format(
                transfers=report.transfers,
                commands=report.commands,
                list_packets=report.list_packets,
            ),
        ),
        (
            _("strokes:"),
            _("{strokes} ({closed} closed)").format(
                strokes=len(report.strokes), closed=closed_strokes(report.strokes)
            ),
        ),
        (_("burned length:"), f"{report.burned_mm:.2f} mm"),
        (
            _("status match:"),
            _("{matched}/{compared} replies ({ratio:.1%})").format(
                matched=report.replies_matched,
                compared=report.replies_compared,
                ratio=report.match_ratio,
            ),
        ),
    ]
    burn_label = _("burn image:")
    width = max(15, len(burn_label), *(len(label) for label, _value in rows))
    for label, value in rows:
        click.echo(f"{label:<{width}} {value}")
    for line in report.first_mismatches[:3]:
        click.echo(_("  mismatch: {line}").format(line=line))
    if output is not None:
        # a capture does not say what it was burned on: the material a mark on this machine
        # gets without --material sets how far its dots grow
        material = load_material(None, machine=profile)
        board.render_png(output, spot_mm=profile.spot_mm, material=material)
        click.echo(f"{burn_label:<{width}} {output}")
