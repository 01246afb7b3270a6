"""The command line's help and click's own messages in the technician's language.

Every help text of the whole command tree (lazy subcommands included) and every message of click's
modules must have a Spanish translation in ``locale/es/LC_MESSAGES/markstation_cli.po`` (written
by ``python -m markstation.cli.help_catalog``); every command must use the translating classes of
``markstation.cli.translate``; click's gettext calls must be the ones ``route_click_gettext``
reroutes. English, the default, is unchanged.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from _cli import run
from markstation import i18n
from markstation.cli import COMMANDS, help_catalog
from markstation.cli.translate import (
    CLICK_GETTEXT_MODULES,
    Command,
    Context,
    Group,
    HelpFormatter,
    route_click_gettext,
    translate_help_column,
)

HOW = (
    "run '.venv/bin/python -m markstation.cli.help_catalog' and write the Spanish msgstr in "
    "src/markstation/locale/es/LC_MESSAGES/markstation_cli.po (CONTRIBUTING.md, 'Messages and "
    "translations')"
)


@pytest.fixture
def spanish() -> Iterator[None]:
    i18n.set_language("es")
    yield
    i18n.set_language("en")


def _catalog(lang: str) -> Catalog:
    po, _mo = i18n.catalog_paths(lang, i18n.CLI_DOMAIN)
    with po.open("rb") as fh:
        return read_po(fh, locale=lang, domain=i18n.CLI_DOMAIN)


def _strings(msgstr: str | tuple[str, ...] | list[str]) -> list[str]:
    return [msgstr] if isinstance(msgstr, str) else list(msgstr)


def _key(msgid: str | tuple[str, str]) -> str:
    return msgid if isinstance(msgid, str) else msgid[0]


# --- completeness -------------------------------------------------------------------------------


def test_every_help_text_and_click_message_has_a_spanish_translation() -> None:
    """A new command, option or docstring without a translation fails here (with where it is)."""
    texts = help_catalog.all_texts()
    assert len(texts) > 150
    es, en = _catalog("es"), _catalog("en")
    missing = []
    for text in texts:
        where = ", ".join(text.comments or text.locations) or "?"
        message = es.get(_key(text.msgid))
        if message is None or message.fuzzy or not all(s.strip() for s in _strings(message.string)):
            missing.append(f"{where}: {_key(text.msgid)[:70]!r}")
            continue
        if isinstance(text.msgid, tuple):
            assert isinstance(message.id, tuple) and len(_strings(message.string)) == 2, where
        source = en.get(_key(text.msgid))
        assert source is not None and _strings(source.string) == list(
            (text.msgid,) if isinstance(text.msgid, str) else text.msgid
        ), f"{where}: the en catalog must say what the source says ({HOW})"
    assert not missing, f"{len(missing)} text(s) without Spanish; {HOW}:\n  " + "\n  ".join(missing)


def test_the_walk_sees_every_command_and_option() -> None:
    paths = {" ".join(path) for path, _cmd, _ctx in help_catalog.walk()}
    for name in COMMANDS:
        assert f"markstation {name}" in paths
    for nested in ("markstation batch run", "markstation log export", "markstation sim grbl"):
        assert nested in paths
    comments = {c for text in help_catalog.command_texts() for c in text.comments}
    assert "markstation batch run --dry-run" in comments
    assert "markstation preview --output" in comments
    assert "markstation batch status (in the command list)" not in comments  # not lazy
    assert "markstation station-key (in the command list)" in comments


def test_every_command_uses_the_translating_classes() -> None:
    """``cls=Group`` on every group and ``cls=Command`` on a command made on its own."""
    wrong = []
    for path, command, ctx in help_catalog.walk():
        expected = Group if isinstance(command, click.Group) else Command
        if not isinstance(command, expected) or not isinstance(ctx, Context):
            wrong.append(f"{' '.join(path)}: {type(command).__module__}.{type(command).__name__}")
        elif not isinstance(ctx.make_formatter(), HelpFormatter):
            wrong.append(f"{' '.join(path)}: formatter {type(ctx.make_formatter()).__name__}")
    assert not wrong, "use @click.group(cls=Group) / @click.command(cls=Command):\n" + "\n".join(
        wrong
    )


def test_every_help_page_comes_out_in_spanish(spanish: None) -> None:
    """Each page written: none of the English texts it holds is left (the msgids really match)."""
    es = _catalog("es")
    left = []
    for path, command, ctx in help_catalog.walk():
        page = command.get_help(ctx)
        for word in ("Usage:", "Options:", "Commands:", "Show this message and exit."):
            if word in page:
                left.append(f"{' '.join(path)}: {word!r}")
        for text in help_catalog.command_texts():
            source = _key(text.msgid)
            message = es.get(source)
            if "\n" in source or message is None or message.string == source or len(source) < 25:
                continue  # rewrapped on the page, or the same in both languages
            if source in page and any(c.startswith(" ".join(path)) for c in text.comments):
                left.append(f"{' '.join(path)}: {source[:60]!r}")
    assert not left, "\n".join(left)


# --- click's own messages -----------------------------------------------------------------------


def _gettext_imports(module_name: str) -> list[str]:
    spec = importlib.util.find_spec(module_name)
    assert spec is not None and spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] == "gettext"]
        elif isinstance(node, ast.ImportFrom) and node.module == "gettext":
            found += [f"from gettext import {a.name} as {a.asname or a.name}" for a in node.names]
    return found


def test_click_translates_the_way_route_click_gettext_expects() -> None:
    """If click changes how it calls gettext, this fails: adapt markstation.cli.translate."""
    package = Path(click.__file__).parent
    users = {
        f"click.{path.stem}"
        for path in package.glob("*.py")
        if _gettext_imports(f"click.{path.stem}")
    }
    assert users == set(CLICK_GETTEXT_MODULES)
    allowed = {"from gettext import gettext as _", "from gettext import ngettext as ngettext"}
    for name in CLICK_GETTEXT_MODULES:
        assert set(_gettext_imports(name)) <= allowed, name
    # the one call whose message an extractor cannot see (help_catalog.CLICK_COMPUTED_MESSAGES)
    assert help_catalog.computed_click_calls() == {"_(extra['required'])"}


def test_route_click_gettext_points_click_at_our_catalogs(spanish: None) -> None:
    route_click_gettext()
    for name in CLICK_GETTEXT_MODULES:
        module = importlib.import_module(name) if name != "click._winconsole" else None
        if module is None:
            continue
        if hasattr(module, "_"):
            assert module._ is i18n.gettext, name
        if hasattr(module, "ngettext"):
            assert module.ngettext is i18n.ngettext, name
    with pytest.raises(click.BadParameter) as info:
        click.Choice(["en", "es"]).convert("fr", None, None)
    assert info.value.format_message() == "Valor no válido: 'fr' no es ninguno de 'en', 'es'."


def test_the_help_column_keeps_clicks_extras() -> None:
    i18n.set_language("es")
    try:
        assert translate_help_column("Layout profile (name or .toml path).  [default: x]") == (
            "Perfil de diseño (nombre o ruta .toml).  [default: x]"
        )
        assert translate_help_column("no such text  [required]") == "no such text  [required]"
        assert translate_help_column("[required]") == "[required]"
        assert translate_help_column("") == ""
    finally:
        i18n.set_language("en")


# --- the command line ---------------------------------------------------------------------------


def test_root_help_in_spanish(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--lang", "es", "--help")
    assert code == 0 and not err
    assert out.startswith("Uso: markstation [OPCIONES] COMANDO [ARGUMENTOS]...\n")
    assert "\nOpciones:\n" in out and "\nComandos:\n" in out
    assert "Control de estaciones de marcado láser" in out
    assert "Mostrar este mensaje y salir." in out and "Mostrar la versión y salir." in out
    assert "Importar, marcar, inspeccionar y resolver lotes del registro." in out  # lazy table
    assert "Idioma de los mensajes, las preguntas y la ayuda" in out
    for english in ("Usage:", "Options:", "Commands:", "Show this message", "registry batches"):
        assert english not in out


@pytest.mark.parametrize(
    "argv",
    [["--help", "--lang", "es"], ["--lang=es", "-h"], ["-v", "--lang", "ES", "--help"]],
)
def test_lang_anywhere_among_the_root_options(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 0 and out.startswith("Uso: markstation [OPCIONES]"), err


def test_environment_gives_spanish_help(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARKSTATION_LANG", "es_PE.UTF-8")
    code, out, _err = run(capsys, "--help")
    assert code == 0 and out.startswith("Uso: markstation")
    code, out, _err = run(capsys, "--lang", "en", "--help")
    assert code == 0 and out.startswith("Usage: markstation")


def test_subcommand_help_in_spanish(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = run(capsys, "--lang", "es", "batch", "import", "--help")
    assert code == 0
    assert out.startswith("Uso: markstation batch import [OPCIONES] FILE\n")
    assert "Validar un lote del registro (CSV, JSON o .xlsx) y cargarlo: todo o nada." in out
    assert "Diseño para las filas sin valor en la columna 'layout'." in out
    assert "[predeterminado: secondary-mark]" in out
    assert "Almacén: la ruta de un archivo" in out  # a shared option (cli/options.py)
    code, out, _err = run(capsys, "--lang", "es", "batch", "void", "--help")
    assert "Motivo; queda en el registro de auditoría.  [obligatorio]" in out
    code, out, _err = run(capsys, "--lang", "es", "batch", "--help")
    assert code == 0
    assert "  status    Cantidad por estado y el estado de cada ítem.\n" in out  # short help
    assert "  requeue   Devolver un ítem omitido a pendiente.\n" in out
    code, out, _err = run(capsys, "--lang", "es", "sim", "--help")
    assert "Reproducir una captura USB (pcap) en la tarjeta LMC simulada." in out
    code, out, _err = run(capsys, "--lang", "es", "--version")
    assert code == 0 and out.startswith("markstation, versión ")


def test_usage_error_in_spanish_is_one_line_and_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--lang", "es", "batch", "void", "XX-2026-000001")
    assert code == 1 and not out
    lines = err.splitlines()
    assert lines[0] == "Uso: markstation batch void [OPCIONES] CODE"
    assert lines[1] == "Use 'markstation batch void --help' para ver la ayuda."
    errors = [line for line in lines if line.startswith("Error:")]
    assert errors == ["Error: Falta la opción '--reason'."], err
    code, _out, err = run(capsys, "--lang", "es", "--bogus")
    assert code == 1 and "Error: No existe la opción '--bogus'." in err
    code, _out, err = run(capsys, "--lang", "es", "batch", "status", "--state", "nope")
    assert code == 1 and "Error: Valor no válido para '--state': 'nope' no es ninguno de" in err


def test_english_is_unchanged_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = run(capsys, "--help")
    assert code == 0
    assert out.startswith("Usage: markstation [OPTIONS] COMMAND [ARGS]...\n")
    assert "Controller for laser-marking workstations" in out
    assert "Show this message and exit." in out and "\nCommands:\n" in out
    assert "Import, run, inspect and resolve registry batches." in out
    code, out, _err = run(capsys, "batch", "import", "--help")
    assert "Layout for rows without a 'layout' column value." in out
    assert "[default: secondary-mark]" in out
    code, _out, err = run(capsys, "batch", "void", "XX-2026-000001")
    assert code == 1
    assert "Try 'markstation batch void --help' for help." in err
    assert "Error: Missing option '--reason'." in err
    code, out, _err = run(capsys, "--version")
    assert code == 0 and out.startswith("markstation, version ")


def test_a_help_shown_in_spanish_first_leaves_the_english_help_english(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """click makes a command's help option once and keeps it: made during a Spanish help, its
    text must still be the msgid, so an English help later in the process stays English."""
    code, out, _err = run(capsys, "--lang", "es", "operators", "list", "--help")
    assert code == 0 and "Mostrar este mensaje y salir." in out
    code, out, _err = run(capsys, "--lang", "en", "operators", "list", "--help")
    assert code == 0 and "Show this message and exit." in out, out
    assert "Mostrar" not in out
