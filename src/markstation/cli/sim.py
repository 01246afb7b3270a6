"""``markstation sim …``: the simulators on their own."""

from __future__ import annotations

import click

from markstation.cli import LazyGroup


@click.group(
    cls=LazyGroup,
    lazy={
        "replay": (
            "markstation.cli.sim_replay:replay",
            "Replay a USB capture (pcap) into the simulated LMC board.",
        ),
        "grbl": (
            "markstation.cli.sim_grbl:grbl",
            "Serve the simulated GRBL marker on a pty for any sender.",
        ),
    },
)
def sim() -> None:
    """Simulated devices: the same wire protocol as the real boards, no laser."""
