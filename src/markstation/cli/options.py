"""Options shared by several commands, so every command spells them the same way.

Each option is written once here; a command stacks the decorators it needs (or a group of them:
:func:`target_options` for the commands that build and send one code's job).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, overload

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


MACHINE_HELP = (
    "Machine profile (name or .toml path); default: the device protocol's default machine."
)


@overload
def machine_option(f: FC) -> FC: ...


@overload
def machine_option(
    *, default: str | None = None, help: str = MACHINE_HELP
) -> Callable[[FC], FC]: ...


def machine_option(
    f: FC | None = None, *, default: str | None = None, help: str = MACHINE_HELP
) -> FC | Callable[[FC], FC]:
    """``--machine``: plain (``@machine_option``), or with a command's own default and help."""
    option = click.option(
        "--machine",
        "-m",
        metavar="NAME",
        default=default,
        show_default=default is not None,
        help=help,
    )
    return option(f) if f is not None else option


LAYOUT_HELP = "Layout profile (name or .toml path)."
#: ``--layout`` of the commands that read a registry batch (a row may name its own)
ROWS_LAYOUT_HELP = "Layout for rows without a 'layout' column value."


@overload
def layout_option(f: FC) -> FC: ...


@overload
def layout_option(*, help: str = LAYOUT_HELP) -> Callable[[FC], FC]: ...


def layout_option(f: FC | None = None, *, help: str = LAYOUT_HELP) -> FC | Callable[[FC], FC]:
    """``--layout``: plain (``@layout_option``), or with a command's own help."""
    option = click.option(
        "--layout",
        "-l",
        metavar="NAME",
        default=DEFAULT_LAYOUT,
        show_default=True,
        help=help,
    )
    return option(f) if f is not None else option


def sheet_option(f: FC) -> FC:
    """``--sheet``: the worksheet of an .xlsx registry batch."""
    return click.option(
        "--sheet", default=None, metavar="NAME", help="Worksheet of an .xlsx file."
    )(f)


def material_option(f: FC) -> FC:
    return click.option(
        "--material",
        metavar="NAME",
        default=None,
        help="Material profile (name or .toml path); default: the machine's default_material "
        f"({DEFAULT_MATERIAL} on the LMC fiber machine, blued-steel-gantry on grbl-marker).",
    )(f)


class StoreLocation(click.ParamType[Any]):
    """``--db``: a file path (SQLite) -> Path, or a ``postgresql://`` URL -> str, kept as typed."""

    name = "PATH|URL"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, Path):
            return value
        text = str(value)
        if text.lower().startswith(("postgresql://", "postgres://")):
            return text
        if not text:
            self.fail("an empty store location", param, ctx)
        return Path(text)


def db_option(f: FC) -> FC:
    return click.option(
        "--db",
        type=StoreLocation(),
        default=None,
        envvar="MARKSTATION_DB",
        help="Store: a file path (SQLite, embedded) or a postgresql:// URL (a server shared by "
        "several stations, libpq syntax; credentials from the URL, PGPASSFILE or PGPASSWORD, "
        "never printed; needs markstation[postgres]). Default: env MARKSTATION_DB, else "
        "markstation.db in the user data directory.",
    )(f)


def operator_option(f: FC) -> FC:
    return click.option(
        "--operator",
        default=None,
        envvar="MARKSTATION_OPERATOR",
        metavar="NAME",
        help="Operator name for the journal (env MARKSTATION_OPERATOR; default: the login name).",
    )(f)


def station_option(f: FC) -> FC:
    return click.option(
        "--station",
        default=None,
        envvar="MARKSTATION_STATION",
        metavar="NAME",
        help="Station name for the journal (env MARKSTATION_STATION; default: the hostname).",
    )(f)


def actor_options(f: FC) -> FC:
    """--operator and --station: who and where, for every record a command journals."""
    return operator_option(station_option(f))


def target_options(f: FC) -> FC:
    """CODE, --device and the profiles its job is built from: what ``frame`` and ``mark`` take."""
    for add in (machine_option, material_option, layout_option, device_option()):
        f = add(f)
    return click.argument("code")(f)


def output_option(
    help: str, *, required: bool = False, metavar: str | None = None
) -> Callable[[FC], FC]:
    """``-o/--output FILE``: the file a command writes (None when not given and not required)."""
    return click.option(
        "-o",
        "--output",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        required=required,
        metavar=metavar,
        help=help,
    )


def preview_output_option(help: str) -> Callable[[FC], FC]:
    """``-o/--output FILE.png|FILE.svg``: the suffix picks the preview format."""
    return output_option(help, metavar="FILE.png|FILE.svg")
