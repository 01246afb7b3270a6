"""The technician's language: catalogs complete and compiled right, resolution order, the CLI in es.

Every message extracted from the sources (``babel.cfg``: Python and the station's templates) must
have a Spanish translation with the same placeholders; the ``.mo`` the wheel gets (Babel, in
``hatch_build.py``) and the one a source tree compiles in memory (``markstation.i18n``) must say
exactly what the ``.po`` says, for both domains (``markstation`` and ``markstation_cli``, the
command line's help: its completeness is checked in ``test_cli_help_i18n.py``).
"""

from __future__ import annotations

import gettext
import importlib.util
import io
import re
import string
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from click.testing import CliRunner

from _paths import REPO
from _queue_fakes import FakeDriver, fast_builder, fast_estimator, sample_rows, write_csv
from markstation import i18n
from markstation.cli import cli, main
from markstation.errors import ConfigError

LANGS = ("es", "en")
DOMAINS = i18n.DOMAINS
#: a message with plural forms (cli/batch.py)
IMPORTED = (
    "imported {count} item from {file} as batch {batch} (sha256 {sha256}…) into {db}",
    "imported {count} items from {file} as batch {batch} (sha256 {sha256}…) into {db}",
)


def _read(lang: str, domain: str = i18n.DOMAIN) -> Catalog:
    po, _mo = i18n.catalog_paths(lang, domain)
    with po.open("rb") as fh:
        return read_po(fh, locale=lang, domain=domain)


def _extracted() -> dict[tuple[str | None, str], list[str]]:
    """(context, msgid) -> where, for every message in the sources, as ``pybabel extract`` sees it."""
    with (REPO / "babel.cfg").open(encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh, str(REPO / "babel.cfg"))
    found: dict[tuple[str | None, str], list[str]] = {}
    for filename, lineno, message, _comments, context in extract_from_dir(
        str(REPO), method_map, options_map
    ):
        msgid = message if isinstance(message, str) else message[0]
        found.setdefault((context, msgid), []).append(f"{filename}:{lineno}")
    return found


def _key(message: Message) -> tuple[str | None, str]:
    msgid = message.id if isinstance(message.id, str) else message.id[0]
    return (message.context, msgid)


def _forms(message: Message) -> list[tuple[str, str]]:
    """(source, translation) pairs: one per form; plural forms after the first pair with the plural."""
    if isinstance(message.id, str):
        assert isinstance(message.string, str)
        return [(message.id, message.string)]
    singular, plural = message.id[0], message.id[1]
    strings = list(message.string)
    return [(singular if i == 0 else plural, s) for i, s in enumerate(strings)]


# --- the catalogs -----------------------------------------------------------------------------


def test_sources_have_messages_and_the_extraction_finds_templates_too() -> None:
    found = _extracted()
    files = {where.split(":")[0] for places in found.values() for where in places}
    assert len(found) > 50
    assert any(f.endswith("cli/batch.py") for f in files)
    assert any(f.endswith("queue/runner.py") for f in files)
    templates = REPO / "src" / "markstation" / "station" / "templates"
    with_messages = [
        p
        for p in templates.rglob("*.html")
        if re.search(r"\b_\(|\bgettext\(|trans\b", p.read_text())
    ]
    for template in with_messages:
        rel = template.relative_to(REPO).as_posix()
        assert rel in files, f"{rel} has messages but the extraction did not read it (babel.cfg)"


def test_every_message_is_translated_to_spanish() -> None:
    """Untranslated strings fail: run the extraction (CONTRIBUTING.md) and translate them."""
    catalog = _read("es")
    translated = {
        _key(m): m
        for m in catalog
        if m.id and not m.fuzzy and all(s.strip() for _src, s in _forms(m)) and _forms(m)
    }
    missing = [
        f"{places[0]}: {msgid!r}" + (f" (context {context!r})" if context else "")
        for (context, msgid), places in sorted(_extracted().items(), key=lambda kv: kv[1][0])
        if (context, msgid) not in translated
    ]
    assert not missing, (
        f"{len(missing)} message(s) without a Spanish translation in "
        "src/markstation/locale/es/LC_MESSAGES/markstation.po (see CONTRIBUTING.md, "
        "'Messages and translations'):\n  " + "\n  ".join(missing)
    )


@pytest.mark.parametrize("domain", DOMAINS)
@pytest.mark.parametrize("lang", LANGS)
def test_catalog_header_is_sound(lang: str, domain: str) -> None:
    catalog = _read(lang, domain)
    assert not catalog.fuzzy, "a fuzzy header makes 'pybabel compile' skip the catalog"
    assert catalog.num_plurals == 2 and catalog.plural_expr == "(n != 1)"
    for message in catalog:
        if message.id and isinstance(message.id, tuple):
            assert len(message.string) == 2, f"{message.id[0]!r}: two plural forms"


_BRACE = string.Formatter()
_PERCENT = re.compile(r"%(?:\((\w+)\))?[-#0 +]*\d*(?:\.\d+)?[sdifrxXeEgGc%]")


def _brace_fields(text: str) -> list[str]:
    try:
        return sorted(
            f"{name}!{conv or ''}:{spec or ''}"
            for _lit, name, spec, conv in _BRACE.parse(text)
            if name is not None
        )
    except ValueError as exc:
        return [f"<unparsable: {exc}>"]


def _percent_fields(text: str) -> list[str]:
    return sorted(m.group(0) for m in _PERCENT.finditer(text) if m.group(0) != "%%")


@pytest.mark.parametrize("domain", DOMAINS)
@pytest.mark.parametrize("lang", LANGS)
def test_placeholders_match_between_msgid_and_msgstr(lang: str, domain: str) -> None:
    catalog = _read(lang, domain)
    bad = []
    for message in catalog:
        if not message.id:
            continue
        for source, translation in _forms(message):
            if not translation:
                continue
            if _brace_fields(source) != _brace_fields(translation):
                bad.append(f"{source!r}: {{}} fields {_brace_fields(translation)}")
            if _percent_fields(source) != _percent_fields(translation):
                bad.append(f"{source!r}: % fields {_percent_fields(translation)}")
    assert not bad, "\n".join(bad)
    assert not list(catalog.check()), "Babel's own checks (python-format) fail"


# --- compiled catalogs --------------------------------------------------------------------------


def _hatch_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hatch_build", REPO / "hatch_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sources(lang: str, domain: str) -> dict[object, str]:
    """.mo key -> the message gettext falls back to for it."""
    out: dict[object, str] = {}
    for message in _read(lang, domain):
        prefix = f"{message.context}\x04" if message.context else ""
        if isinstance(message.id, str):
            out[prefix + message.id] = message.id
        else:
            out[(prefix + message.id[0], 0)] = message.id[0]
            out[(prefix + message.id[0], 1)] = message.id[1]
    return out


def _meaningful(catalog: dict[object, str], lang: str, domain: str) -> dict[object, str]:
    """Entries that change a message: not the header (metadata), not a form equal to its source
    (Babel fills untranslated plural forms with the msgids, which is what gettext falls back to)."""
    sources = _sources(lang, domain)
    return {k: v for k, v in catalog.items() if k != "" and v != sources.get(k)}


def _entries(translations: gettext.NullTranslations, lang: str, domain: str) -> dict[object, str]:
    return _meaningful(getattr(translations, "_catalog", {}), lang, domain)


def _po_entries(lang: str, domain: str) -> dict[object, str]:
    """What the .po says, read by Babel, in the .mo's keys."""
    out: dict[object, str] = {}
    for message in _read(lang, domain):
        if not message.id or message.fuzzy:
            continue
        prefix = f"{message.context}\x04" if message.context else ""
        if isinstance(message.id, str):
            if message.string:
                out[prefix + message.id] = message.string
        elif all(message.string):
            for i, form in enumerate(message.string):
                out[(prefix + message.id[0], i)] = form
    return _meaningful(out, lang, domain)


def _domain_of(translations: gettext.NullTranslations, domain: str) -> gettext.NullTranslations:
    """The catalog of ``domain`` in the running code's chain (``markstation``, then its fallback)."""
    for _ in range(DOMAINS.index(domain)):
        fallback = getattr(translations, "_fallback", None)
        assert fallback is not None, f"no {domain} catalog behind the markstation one"
        translations = fallback
    return translations


@pytest.mark.parametrize("domain", DOMAINS)
@pytest.mark.parametrize("lang", LANGS)
def test_mo_files_match_the_po_files(lang: str, domain: str, tmp_path: Path) -> None:
    """The wheel's .mo (Babel, hatch_build.py) == the source tree's (in memory) == the .po."""
    written = _hatch_build().compile_catalogs(i18n.LOCALE_DIR, tmp_path)
    assert sorted(written) == sorted(
        f"markstation/locale/{code}/LC_MESSAGES/{name}.mo" for code in LANGS for name in DOMAINS
    )
    mo = written[f"markstation/locale/{lang}/LC_MESSAGES/{domain}.mo"]
    with mo.open("rb") as fh:
        built = gettext.GNUTranslations(fh)
    po, _mo = i18n.catalog_paths(lang, domain)
    in_memory = gettext.GNUTranslations(io.BytesIO(i18n.compile_po(po.read_text("utf-8"))))
    expected = _po_entries(lang, domain)
    assert _entries(built, lang, domain) == expected
    assert _entries(in_memory, lang, domain) == expected
    running = _domain_of(i18n.translations(lang), domain)  # what the running code uses
    assert _entries(running, lang, domain) == expected
    if lang == "es" and domain == i18n.CLI_DOMAIN:
        assert len(expected) > 100
        assert i18n.translations(lang).gettext("Show this message and exit.") == (
            "Mostrar este mensaje y salir."
        )
    if lang == "es" and domain == i18n.DOMAIN:
        assert len(expected) > 50
        for t in (built, in_memory):  # the header's plural forms are read
            one, many = (t.ngettext(IMPORTED[0], IMPORTED[1], n) for n in (1, 2))
            assert one.startswith("se importó {count} ítem") and one != many
            assert many.startswith("se importaron {count} ítems")


def test_a_stale_mo_in_the_source_tree_is_not_used(tmp_path: Path) -> None:
    """A .mo older than its .po (someone ran 'pybabel compile' long ago) gives way to the .po."""
    po_text = (
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n'
        '"Plural-Forms: nplurals=2; plural=(n != 1);\\n"\n\n'
        '#, fuzzy\nmsgid "skip me"\nmsgstr "no"\n\n'
        'msgid "Mark"\nmsgstr "Marcar"\n\n'
        'msgctxt "item state"\nmsgid "marked"\nmsgstr "marcado"\n\n'
        'msgid "{n} item"\nmsgid_plural "{n} items"\nmsgstr[0] "{n} ítem"\nmsgstr[1] "{n} ítems"\n'
        '\n#~ msgid "old"\n#~ msgstr "viejo"\n'
    )
    t = gettext.GNUTranslations(io.BytesIO(i18n.compile_po(po_text)))
    assert t.gettext("Mark") == "Marcar" and t.gettext("skip me") == "skip me"
    assert t.pgettext("item state", "marked") == "marcado" and t.gettext("marked") == "marked"
    assert t.ngettext("{n} item", "{n} items", 2) == "{n} ítems"
    assert t.gettext("old") == "old"


# --- which language ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "env", "expected"),
    [
        ("es", {"MARKSTATION_LANG": "en", "LANG": "en_US.UTF-8"}, "es"),  # option first
        ("en", {"MARKSTATION_LANG": "es"}, "en"),
        (None, {"MARKSTATION_LANG": "es", "LANG": "en_US.UTF-8"}, "es"),  # then the variable
        (None, {"MARKSTATION_LANG": "fr:es_PE", "LANG": "en_US"}, "es"),  # a list, first we speak
        (None, {"MARKSTATION_LANG": "fr", "LANG": "es_PE.UTF-8"}, "es"),  # unsupported: passed over
        (None, {"LANG": "es_PE.UTF-8"}, "es"),  # then the system locale
        (None, {"LC_ALL": "es_MX.UTF-8", "LANG": "en_US.UTF-8"}, "es"),  # LC_ALL wins
        (None, {"LC_MESSAGES": "es_AR", "LANG": "en_US.UTF-8"}, "es"),
        (None, {"LC_ALL": "C.UTF-8", "LANG": "es_PE.UTF-8"}, "en"),  # C: no language
        (None, {"LANG": "de_DE.UTF-8"}, "en"),  # then English
        (None, {}, "en"),
    ],
)
def test_resolution_order(option: str | None, env: dict[str, str], expected: str) -> None:
    assert i18n.resolve_language(option, environ=env) == expected


@pytest.mark.parametrize(
    ("text", "code"),
    [("es", "es"), ("ES", "es"), ("es_PE.UTF-8", "es"), ("es-419", "es"), ("en_GB", "en"),
     ("fr", None), ("", None), ("C", None)],
)  # fmt: skip
def test_normalize(text: str, code: str | None) -> None:
    assert i18n.normalize(text) == code


@pytest.fixture
def spanish() -> Iterator[None]:
    i18n.set_language("es")
    yield
    i18n.set_language("en")


def test_set_language_switches_every_later_call(spanish: None) -> None:
    assert i18n.get_language() == "es"
    assert i18n._("operator quit") == "el operador salió"
    assert i18n.pgettext("item state", "voided") == "anulado"
    one, many = (
        i18n.ngettext(IMPORTED[0], IMPORTED[1], n).format(
            count=n, file="b.csv", batch=1, sha256="ab", db="m.db"
        )
        for n in (1, 2)
    )
    assert one == "se importó 1 ítem de b.csv como lote 1 (sha256 ab…) en m.db"
    assert many.startswith("se importaron 2 ítems de b.csv")
    i18n.set_language("en")
    assert i18n._("operator quit") == "operator quit"
    with pytest.raises(ConfigError, match="unsupported language 'fr'"):
        i18n.set_language("fr")


def test_unset_language_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKSTATION_LANG", "es_CO.UTF-8")
    assert i18n.set_language(None) == "es"
    assert i18n._("run summary") == "resumen del marcado"


def test_jinja_templates_follow_the_active_language(spanish: None) -> None:
    jinja2 = pytest.importorskip("jinja2")
    env = jinja2.Environment(extensions=["jinja2.ext.i18n"], autoescape=True)
    i18n.jinja_env_install(env)
    template = env.from_string('{{ _("operator quit") }} / {{ _("marking {code}") }}')
    assert template.render() == "el operador salió / marcando {code}"
    i18n.set_language("en")
    assert template.render() == "operator quit / marking {code}"
    fixed = jinja2.Environment(extensions=["jinja2.ext.i18n"])
    i18n.jinja_env_install(fixed, "es")
    assert fixed.from_string('{{ _("foot pedal") }}').render() == "pedal"


# --- the CLI ----------------------------------------------------------------------------------


def _store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """A store with one pending item (a store is only created by 'batch import')."""
    db = str(tmp_path / "m.db")
    csv = write_csv(tmp_path / "b.csv", sample_rows(1))
    with pytest.raises(SystemExit) as info:
        main(["batch", "import", str(csv), "--db", db, "--operator", "JQ"])
    assert info.value.code == 0
    capsys.readouterr()
    return db


def test_lang_option_changes_batch_status(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = _store(tmp_path, capsys)
    for argv, expected in (
        (["--lang", "es", "batch", "status", "--db", db], "almacén"),
        (["batch", "status", "--db", db], "store"),  # English by default (MARKSTATION_LANG=en)
    ):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith(expected), out
    assert "pendiente 1" not in out and "pending 1" in out


def test_error_line_in_spanish(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = _store(tmp_path, capsys)
    argv = ["--lang", "es", "batch", "void", "NO-SUCH", "--reason", "x", "--db", db]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no hay ningún ítem con código 'NO-SUCH'"), err


def test_unsupported_lang_option_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--lang", "fr", "batch", "status"])
    assert info.value.code == 1 and "'fr' is not one of 'en', 'es'" in capsys.readouterr().err


def test_batch_run_prompts_in_spanish(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A serial mismatch, then the right serial, Enter, inspection pass: all of it in Spanish."""
    driver = FakeDriver()
    monkeypatch.setattr("markstation.devices.open_device", lambda url, machine=None: driver)
    monkeypatch.setattr("markstation.queue.runner.default_builder", fast_builder)
    monkeypatch.setattr("markstation.queue.runner.estimate_seconds", fast_estimator)
    db = str(tmp_path / "m.db")
    runner = CliRunner()
    csv = write_csv(tmp_path / "b.csv", sample_rows(1))
    imported = runner.invoke(cli, ["batch", "import", str(csv), "--db", db, "--operator", "JQ"])
    assert imported.exit_code == 0, imported.output
    result = runner.invoke(
        cli,
        ["--lang", "es", "batch", "run", "--db", db, "--device", "fake://lmc", "--operator", "JQ"],
        input="XX\nSN00001\n\np\n\n",
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "[1/1] traiga: Glock 17, 9x19mm" in out
    assert "número de serie de fábrica: SN00001" in out
    assert "'XX' no coincide con SN00001: revise el arma de fuego" in out
    assert "inspección: p = conforme, f = no conforme" in out
    assert "resumen del marcado" in out and "marcados 1, fallidos 0" in out
    assert driver.runs == 1
