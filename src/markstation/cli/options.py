"""Options shared by several commands, so every command spells them the same way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from markstation.profiles import DEFAULT_LAYOUT, DEFAULT_MATERIAL

FC = TypeVar("FC", bound=Callable[..., Any])


def device_option(required: bool = True) -> Callable[[FC], FC]:
    return click.option(
        "--device",
        "-d",
        envvar="MARKSTATION_DEVICE",
        required=required,
        metavar="URL",
        help="Device URL: usb://lmc[?serial=S|index=N], sim://lmc, sim://grbl, "
        "serial://PORT?protocol=grbl&baud=N (env MARKSTATION_DEVICE).",
    )


def machine_option(f: FC) -> FC:
    return click.option(
        "--machine",
        "-m",
        metavar="NAME",
        default=None,
        help="Machine profile (name or .toml path); default: the device protocol's default machine.",
    )(f)


def layout_option(f: FC) -> FC:
    return click.option(
        "--layout",
        "-l",
        metavar="NAME",
        default=DEFAULT_LAYOUT,
        show_default=True,
        help="Layout profile (name or .toml path).",
    )(f)


def material_option(f: FC) -> FC:
    return click.option(
        "--material",
        metavar="NAME",
        default=None,
        help="Material profile (name or .toml path); default: the machine's default_material "
        f"({DEFAULT_MATERIAL} on the LMC fiber machine, blued-steel-gantry on grbl-marker).",
    )(f)
