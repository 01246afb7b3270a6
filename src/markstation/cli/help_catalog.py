"""Write the command line's catalogs: ``locale/<lang>/LC_MESSAGES/markstation_cli.po``.

    .venv/bin/python -m markstation.cli.help_catalog            # update es and en
    .venv/bin/python -m markstation.cli.help_catalog --check    # exit 1 if they are out of date

``pybabel extract`` sees only ``_("…")`` calls, not the help texts (docstrings, ``help=``, the lazy
command tables) nor click's own messages, so those live in their own gettext domain,
``markstation_cli``, which this module maintains: it walks the whole click tree from
``markstation.cli.cli`` (every lazy subcommand included), collects every text the help shows
(:func:`command_texts`) and every message of click's modules (:func:`click_messages`, with Babel's
extractor), and merges them into each language's catalog: translations are kept, new texts get an
empty ``msgstr`` in ``es`` (write it) and ``msgstr`` = ``msgid`` in ``en``, and texts that are gone
are dropped. ``tests/unit/test_cli_help_i18n.py`` fails on any text without a Spanish translation.

Needs Babel (the ``test`` / ``dev`` extras); the CLI never imports this module.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from markstation import i18n
from markstation.cli.translate import CLICK_GETTEXT_MODULES, USAGE_WORDS, help_text

if TYPE_CHECKING:
    from babel.messages.catalog import Catalog

#: languages whose catalog this writes; ``en`` is the source language (msgstr = msgid)
LANGUAGES: tuple[str, ...] = ("es", "en")
#: click's messages that its modules translate with a computed argument (``_(extra["required"])``,
#: core.py), which an extractor cannot see
CLICK_COMPUTED_MESSAGES: tuple[str, ...] = ("required",)
WIDTH = 100

Msgid = str | tuple[str, str]


@dataclass
class Text:
    """One message of the catalog: its msgid and where it is shown."""

    msgid: Msgid
    comments: list[str] = field(default_factory=list)
    locations: list[str] = field(default_factory=list)


# --- what the help shows --------------------------------------------------------------------------


def walk(
    command: click.Command | None = None,
    path: tuple[str, ...] = ("markstation",),
    parent: click.Context | None = None,
) -> Iterator[tuple[tuple[str, ...], click.Command, click.Context]]:
    """Every command of the tree (lazy subcommands imported), with its path and a context."""
    if command is None:
        from markstation.cli import cli

        command = cli
    # as Command.make_context does, without parsing: with the command's context_settings (its
    # help option is made, and kept, from this context's help_option_names)
    ctx = command.context_class(
        command, info_name=path[-1], parent=parent, **command.context_settings
    )
    yield path, command, ctx
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None:
                yield from walk(sub, (*path, name), ctx)


def command_texts() -> list[Text]:
    """Every text the help of the command tree writes, in tree order, each once."""
    found: dict[Msgid, Text] = {}

    def add(msgid: str | None, where: str) -> None:
        if not msgid or not msgid.strip():
            return
        text = found.setdefault(msgid, Text(msgid))
        if where not in text.comments:
            text.comments.append(where)

    add("Usage:", "the usage line")
    for word in USAGE_WORDS:
        add(word, "the usage line")
    for heading in ("Options", "Commands", "Positional arguments"):
        add(heading, "a heading")
    for path, command, ctx in walk():
        name = " ".join(path)
        if command.help:
            add(help_text(command.help), name)
        if command.short_help:
            add(command.short_help, f"{name} (short help)")
        if command.epilog:
            add(help_text(command.epilog), f"{name} (epilog)")
        for param in command.get_params(ctx):
            if isinstance(param, click.Option) and not param.hidden:
                add(param.help, f"{name} {param.opts[-1]}")
            elif isinstance(param, click.Argument):
                add(getattr(param, "help", None), f"{name} {param.human_readable_name}")
        lazy: dict[str, tuple[str, str]] = getattr(command, "lazy", {})
        for sub, (_target, short) in sorted(lazy.items()):
            add(short, f"{name} {sub} (in the command list)")
    return list(found.values())


def click_messages() -> list[Text]:
    """Every message click's modules translate (Babel's Python extractor over their source)."""
    from babel.messages.extract import extract_from_file

    found: dict[Msgid, Text] = {}
    for module_name in CLICK_GETTEXT_MODULES:
        spec = importlib.util.find_spec(module_name)
        if spec is None or spec.origin is None:
            continue
        rel = f"click/{Path(spec.origin).name}"
        for _lineno, message, _comments, _context in extract_from_file(
            "python", spec.origin, keywords={"_": None, "ngettext": (1, 2)}
        ):
            msgid: Msgid = message if isinstance(message, str) else (message[0], message[1])
            text = found.setdefault(msgid, Text(msgid))
            if rel not in text.locations:
                text.locations.append(rel)
    for msgid in CLICK_COMPUTED_MESSAGES:
        found.setdefault(msgid, Text(msgid, locations=["click/core.py"]))
    return list(found.values())


def computed_click_calls() -> set[str]:
    """The ``_()`` / ``ngettext()`` calls in click's modules whose message is not a literal."""
    calls: set[str] = set()
    for module_name in CLICK_GETTEXT_MODULES:
        spec = importlib.util.find_spec(module_name)
        if spec is None or spec.origin is None:
            continue
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("_", "ngettext")
                and node.args
                and not (
                    isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
                )
            ):
                calls.add(ast.unparse(node))
    return calls


def all_texts() -> list[Text]:
    """The command tree's texts, then click's messages (a text in both keeps the first place)."""
    merged: dict[Msgid, Text] = {}
    for text in [*command_texts(), *click_messages()]:
        key = text.msgid if isinstance(text.msgid, str) else text.msgid[0]
        have = merged.get(key)
        if have is None:
            merged[key] = text
            continue
        if isinstance(text.msgid, tuple):
            have.msgid = text.msgid
        have.comments += [c for c in text.comments if c not in have.comments]
        have.locations += [loc for loc in text.locations if loc not in have.locations]
    return list(merged.values())


# --- the catalogs ---------------------------------------------------------------------------------

_HEADER = """\
# {language} translations for markstation's command line: every help text and click's own messages.
# Generated by 'python -m markstation.cli.help_catalog' (see CONTRIBUTING.md, "Messages and
# translations"); write the msgstr lines, the tool keeps them.
# This file is distributed under the same license as the markstation project."""
_NAMES = {"es": "Spanish", "en": "English"}
#: as in the markstation catalogs (and what tests/unit/test_i18n.py checks)
PLURAL_FORMS = "nplurals=2; plural=(n != 1);"


def _catalog(lang: str, texts: list[Text], existing: Catalog | None, now: datetime) -> Catalog:
    from babel.messages.catalog import Catalog

    template = Catalog(
        domain=i18n.CLI_DOMAIN,
        project="markstation",
        version="VERSION",
        copyright_holder="markstation developers",
        msgid_bugs_address="https://github.com/markstation/markstation/issues",
        creation_date=existing.creation_date if existing else now,
        fuzzy=False,
    )
    for text in texts:
        template.add(
            text.msgid,
            locations=[(loc, 0) for loc in text.locations],  # written without line numbers
            auto_comments=text.comments,
        )
    catalog = existing or Catalog(
        locale=lang,
        domain=i18n.CLI_DOMAIN,
        project="markstation",
        version="VERSION",
        copyright_holder="markstation developers",
        msgid_bugs_address="https://github.com/markstation/markstation/issues",
        last_translator="markstation developers",
        language_team=f"{_NAMES.get(lang, lang)} <https://github.com/markstation/markstation/issues>",
        creation_date=now,
        revision_date=now,
        fuzzy=False,
    )
    catalog.header_comment = _HEADER.format(language=_NAMES.get(lang, lang))
    if existing is None:
        catalog.mime_headers = [("Plural-Forms", PLURAL_FORMS)]
    catalog.update(template, no_fuzzy_matching=True)
    catalog.obsolete.clear()
    catalog.fuzzy = False
    for message in catalog:
        if not message.id:
            continue
        if lang == i18n.DEFAULT_LANGUAGE:  # the source language says what the source says
            message.string = message.id if isinstance(message.id, str) else tuple(message.id)
        message.flags.discard("fuzzy")
    return catalog


def _render(catalog: Catalog) -> str:
    from babel.messages.pofile import write_po

    out = io.BytesIO()
    write_po(out, catalog, width=WIDTH, ignore_obsolete=True, include_lineno=False)
    return out.getvalue().decode("utf-8")


def render(lang: str, texts: list[Text] | None = None) -> tuple[Path, str]:
    """The path of ``lang``'s catalog and the text it should have."""
    from babel.messages.pofile import read_po

    texts = all_texts() if texts is None else texts
    po, _mo = i18n.catalog_paths(lang, i18n.CLI_DOMAIN)
    now = datetime.now(UTC)

    def existing() -> Catalog | None:
        if not po.exists():
            return None
        with po.open("rb") as fh:
            return read_po(fh, locale=lang, domain=i18n.CLI_DOMAIN)

    text = _render(_catalog(lang, texts, existing(), now))
    if po.exists() and text != po.read_text(encoding="utf-8"):
        changed = _catalog(lang, texts, existing(), now)
        changed.revision_date = now
        text = _render(changed)
    return po, text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m markstation.cli.help_catalog", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if a catalog is out of date"
    )
    args = parser.parse_args(argv)
    texts = all_texts()
    stale = []
    for lang in LANGUAGES:
        po, text = render(lang, texts)
        current = po.read_text(encoding="utf-8") if po.exists() else None
        if text == current:
            print(f"{po}: up to date")
            continue
        if args.check:
            stale.append(str(po))
            print(f"{po}: out of date", file=sys.stderr)
            continue
        po.parent.mkdir(parents=True, exist_ok=True)
        po.write_text(text, encoding="utf-8")
        print(f"{po}: written")
    untranslated = [
        m.id for m in _read(i18n.CLI_DOMAIN, "es") if m.id and not _translated(m.string)
    ]
    if untranslated:
        print(f"es: {len(untranslated)} message(s) without a translation", file=sys.stderr)
    return 1 if stale else 0


def _read(domain: str, lang: str) -> Catalog:
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import read_po

    po, _mo = i18n.catalog_paths(lang, domain)
    if not po.exists():
        return Catalog(locale=lang, domain=domain)
    with po.open("rb") as fh:
        return read_po(fh, locale=lang, domain=domain)


def _translated(string: object) -> bool:
    if isinstance(string, str):
        return bool(string.strip())
    return isinstance(string, tuple | list) and bool(string) and all(s.strip() for s in string)


if __name__ == "__main__":
    sys.exit(main())
