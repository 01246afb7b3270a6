"""The command line's help in the technician's language: click classes that translate at format time.

The English texts stay where they are written (docstrings, ``help=``, the lazy command tables in
``markstation.cli``); they are the msgids of the ``markstation_cli`` catalogs
(``locale/<lang>/LC_MESSAGES/markstation_cli.po``, written by ``python -m
markstation.cli.help_catalog``), and they are translated when the help is formatted, after
``--lang`` / ``$MARKSTATION_LANG`` set the language. Every command uses these classes: the groups
say ``cls=Group`` (their subcommands and subgroups follow, ``command_class`` / ``group_class``), a
command made on its own says ``cls=Command``; ``tests/unit/test_cli_help_i18n.py`` walks the whole
tree to prove it.

click's own texts ("Usage:", "Missing option", "Show this message and exit.", …) are built with
stdlib ``gettext`` inside click's modules; :func:`route_click_gettext` points them at
:mod:`markstation.i18n`, so they come from the same catalogs. Most are built when they are shown;
a few when a parameter type is made (``click.Path``'s "file" / "directory", its metavar and the
subject of its errors), which is when a command module is imported: the lazy command modules are
imported after the language is set, so those follow ``--lang`` too.
"""

from __future__ import annotations

import gettext as _stdlib_gettext
import importlib
import inspect
import sys
from collections.abc import Iterable
from typing import Any

import click

from markstation import i18n

#: click's modules that translate with ``from gettext import gettext as _`` (and ``ngettext``);
#: the test of this module fails when click's source says otherwise
CLICK_GETTEXT_MODULES: tuple[str, ...] = (
    "click._termui_impl",
    "click._winconsole",
    "click.core",
    "click.decorators",
    "click.exceptions",
    "click.formatting",
    "click.parser",
    "click.shell_completion",
    "click.termui",
    "click.types",
    "click.utils",
)
#: imported by click itself where it is needed (Windows consoles); never imported here
_PLATFORM_ONLY = frozenset({"click._winconsole"})
#: fixed words of the usage line that click does not translate (``options_metavar``,
#: ``subcommand_metavar``)
USAGE_WORDS: tuple[str, ...] = ("[OPTIONS]", "COMMAND [ARGS]...")


def tr(text: str) -> str:
    """``text`` in the active language (both domains; itself when there is no translation)."""
    return i18n.gettext(text)


def route_click_gettext() -> None:
    """Make click's own messages use markstation's catalogs and active language.

    Rebinds the ``_`` and ``ngettext`` globals of click's modules (stdlib ``gettext.gettext`` and
    ``gettext.ngettext`` there) to :func:`markstation.i18n.gettext` and
    :func:`markstation.i18n.ngettext`. Idempotent; called when the CLI starts (``Group.main``).
    """
    for name in CLICK_GETTEXT_MODULES:
        module = sys.modules.get(name)
        if module is None:
            if name in _PLATFORM_ONLY:
                continue
            try:
                module = importlib.import_module(name)
            except ImportError:  # pragma: no cover - a click without this module
                continue
        names = vars(module)
        if names.get("_") is _stdlib_gettext.gettext:
            names["_"] = i18n.gettext
        if names.get("ngettext") is _stdlib_gettext.ngettext:
            names["ngettext"] = i18n.ngettext


def help_text(help: str) -> str:
    """A command's help as click formats it (and as its msgid): dedented, cut at a form feed."""
    return inspect.cleandoc(help).partition("\f")[0]


def translate_help_column(text: str) -> str:
    """The help column of an option or command row, translated.

    click appends ``  [default: …; required]`` to an option's help (already in the active
    language: those words are click's own); the help before it is what is looked up.
    """
    if not text:
        return text
    whole = tr(text)
    if whole != text or not text.endswith("]"):
        return whole
    start = text.find("  [")
    while start > 0:
        head = text[:start]
        translated = tr(head)
        if translated != head:
            return translated + text[start:]
        start = text.find("  [", start + 1)
    return text


def short_help(command: click.Command, limit: int) -> str:
    """``command``'s short help in the listing of its group: translated, then shortened."""
    short = tr(inspect.cleandoc(command.short_help)) if command.short_help else None
    full = tr(help_text(command.help)) if command.help else None
    # click's own shortening (first sentence, within ``limit``) and deprecation label
    view = click.Command(
        command.name,
        help=full,
        short_help=short,
        deprecated=command.deprecated,
        add_help_option=False,
    )
    return view.get_short_help_str(limit)


class HelpFormatter(click.HelpFormatter):
    """A help formatter that writes every text in the active language."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        for word in USAGE_WORDS:
            args = args.replace(word, tr(word))
        prefix = tr("Usage:") + " " if prefix is None else tr(prefix)
        super().write_usage(prog, args, prefix)

    def write_heading(self, heading: str) -> None:
        super().write_heading(tr(heading))

    def write_text(self, text: str) -> None:
        super().write_text(tr(text))

    def write_dl(
        self, rows: Iterable[tuple[str, str]], col_max: int = 30, col_spacing: int = 2
    ) -> None:
        translated = [(term, translate_help_column(text)) for term, text in rows]
        super().write_dl(translated, col_max=col_max, col_spacing=col_spacing)


class Context(click.Context):
    """A context whose help is written by :class:`HelpFormatter`."""

    formatter_class = HelpFormatter


def source_help_option(command: click.Command, ctx: click.Context) -> click.Option | None:
    """``command``'s help option, its help text kept as click's English msgid.

    click makes the option once per command and keeps it; made while Spanish was active, its text
    would stay Spanish in a later English help of the same process (the formatter translates at
    format time, so the option itself must hold the msgid)."""
    if getattr(command, "_help_option", None) is not None:
        return click.Command.get_help_option(command, ctx)
    language = i18n.get_language()
    i18n.set_language(i18n.DEFAULT_LANGUAGE)
    try:
        return click.Command.get_help_option(command, ctx)
    finally:
        i18n.set_language(language)


class Command(click.Command):
    """A command whose help is in the active language (``@click.command(cls=Command)``)."""

    context_class = Context

    def get_short_help_str(self, limit: int = 45) -> str:
        return short_help(self, limit)

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        return source_help_option(self, ctx)


class Group(click.Group):
    """A group whose help is in the active language (``@click.group(cls=Group)``).

    Its subcommands are :class:`Command` and its subgroups of its own class, unless they say
    otherwise.
    """

    context_class = Context
    command_class = Command
    group_class = type

    def get_short_help_str(self, limit: int = 45) -> str:
        return short_help(self, limit)

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        return source_help_option(self, ctx)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        route_click_gettext()
        return super().main(*args, **kwargs)


__all__ = [
    "CLICK_GETTEXT_MODULES",
    "USAGE_WORDS",
    "Command",
    "Context",
    "Group",
    "HelpFormatter",
    "help_text",
    "route_click_gettext",
    "short_help",
    "tr",
    "translate_help_column",
]
