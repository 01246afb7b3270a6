"""The ``markstation`` command: a thin click layer over the library.

Subcommands live in their own modules and are imported only when used, so ``markstation --help``
and every command start without numpy, Pillow or zxing. Any :class:`MarkstationError` becomes one
line on stderr and exit status 1 (user error) or 2 (device / runtime failure); never a traceback.

Every command is a :class:`~markstation.cli.translate.Command` or
:class:`~markstation.cli.translate.Group`: their help (and click's own words) come out in the
language ``--lang`` / ``$MARKSTATION_LANG`` chose (see ``markstation.cli.translate``).
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from markstation import __version__
from markstation.cli.translate import Group, tr
from markstation.errors import MarkstationError
from markstation.i18n import LANGUAGES, _, normalize, set_language


class LazyGroup(Group):
    """A group whose subcommands are ``"module:attribute"`` strings, imported on first use.

    The short help of a lazy subcommand is the table's (translated when it is written, like every
    help text; see :mod:`markstation.cli.translate`).
    """

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        #: name -> ("module:attr", short help shown in the listing)
        self.lazy = lazy or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            target = self.lazy[cmd_name][0]
            module_name, _, attr = target.partition(":")
            cmd = getattr(importlib.import_module(module_name), attr)
            assert isinstance(cmd, click.Command)
            return cmd
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # list lazily without importing every module: the short help is in the table
        rows = [(name, self.lazy[name][1]) for name in sorted(self.lazy)]
        for name in super().list_commands(ctx):
            cmd = super().get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(60)))
        if rows:
            with formatter.section("Commands"):  # the formatter translates headings and rows
                formatter.write_dl(sorted(rows))


class RootGroup(LazyGroup):
    """``markstation``: sets the language before anything is parsed.

    ``--lang`` is also an eager option (validated by its choice list), but click parses the whole
    root command line first, and processes ``--help`` first when it comes before ``--lang``: so the
    language is taken from the command line (else the environment) here, and an error in the root
    options or the root help is in that language too.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        set_language(_lang_argument(args))
        return super().parse_args(ctx, args)


def _lang_argument(args: list[str]) -> str | None:
    """The value of ``--lang`` among the root options (before the subcommand), if we speak it."""
    value: str | None = None
    words = iter(args)
    for arg in words:
        if arg == "--" or not arg.startswith("-"):
            break
        if arg == "--lang":
            value = next(words, None)
        elif arg.startswith("--lang="):
            value = arg.partition("=")[2]
    return value if value is not None and normalize(value) is not None else None


COMMANDS: dict[str, tuple[str, str]] = {
    "preview": (
        "markstation.cli.preview:preview",
        "Preview a mark (PNG/SVG) with time estimate and decode check.",
    ),
    "profiles": (
        "markstation.cli.profiles_cmd:profiles",
        "List, show and check machine/material/layout profiles.",
    ),
    "devices": (
        "markstation.cli.device:devices",
        "List markers found on USB and serial, and the simulators.",
    ),
    "info": ("markstation.cli.device:info", "Show a device's model, firmware, serial and inputs."),
    "frame": ("markstation.cli.device:frame", "Trace the mark with the red pointer until Enter."),
    "mark": ("markstation.cli.device:mark", "Mark one code on a device."),
    "unlock": ("markstation.cli.device:unlock", "Clear a GRBL alarm lock ($X) on request."),
    "sim": ("markstation.cli.sim:sim", "Simulators: replay a USB capture, serve GRBL on a pty."),
    "batch": ("markstation.cli.batch:batch", "Import, run, inspect and resolve registry batches."),
    "log": ("markstation.cli.log:log", "Verify and export the tamper-evident journal."),
    "db": ("markstation.cli.db:db", "The store's schema: migrate a PostgreSQL store."),
    "operators": (
        "markstation.cli.operators:operators",
        "Add, list and disable the operators who sign in (technician, supervisor).",
    ),
    "demo": (
        "markstation.cli.demo:demo",
        "Run a sample batch on the simulated marker, no hardware.",
    ),
    "hil": ("markstation.cli.hil:hil", "Hardware-in-the-loop reports."),
    "station": (
        "markstation.cli.station:station",
        "Run the marking station: the technician's screens in the browser.",
    ),
    "station-key": (
        "markstation.cli.station_key:station_key",
        "Create or show the station's checkpoint signing key.",
    ),
    "registry": (
        "markstation.cli.station_key:registry",
        "Registry side: verify a station's export against its key.",
    ),
}


def _set_language(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """``--lang``, else $MARKSTATION_LANG, else the system locale, else English: set first."""
    set_language(value)


def _show_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """``--version``: click's ``version_option``, with its words translated when it is shown."""
    if value and not ctx.resilient_parsing:
        message = tr("%(prog)s, version %(version)s")  # click's message (markstation_cli)
        click.echo(message % {"prog": "markstation", "version": __version__})
        ctx.exit()


@click.group(cls=RootGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_show_version,
    help="Show the version and exit.",
)
@click.option(
    "--lang",
    type=click.Choice(LANGUAGES, case_sensitive=False),
    default=None,
    is_eager=True,
    expose_value=False,
    callback=_set_language,
    help="Language of messages, prompts and help (default: $MARKSTATION_LANG, else the system "
    "locale, else en).",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for protocol traffic).")
def cli(verbose: int) -> None:
    """Controller for laser-marking workstations: registry batches to verified marks.

    Devices are URLs: usb://lmc, sim://lmc, sim://grbl, serial:///dev/ttyUSB0?protocol=grbl.
    Exit status: 0 success, 1 user error or refusal, 2 device or runtime failure.
    """
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="markstation", standalone_mode=False)
    except MarkstationError as exc:
        click.echo(_("error: {message}").format(message=exc), err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo(_("aborted"), err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo(_("interrupted"), err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    sys.exit(0)
