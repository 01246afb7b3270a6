"""The technician's language: gettext catalogs for Spanish (``es``) and English (``en``).

Mark a message where it is built, so the active language at that moment is used::

    from markstation.i18n import _, ngettext

    raise InterlockOpen(_("{url}: interlock input open").format(url=self.url))
    click.echo(ngettext("{n} item", "{n} items", n).format(n=n))

English is the source language and the default. The CLI sets the language once, before any command
runs (``markstation --lang es …``), with :func:`set_language` (:func:`resolve_language` picks
``--lang``, else ``$MARKSTATION_LANG``, else the system locale, else English).

Catalogs are ``locale/<lang>/LC_MESSAGES/markstation.po`` in this package, maintained with Babel
(see CONTRIBUTING.md), and beside it ``markstation_cli.po``: the command line's help texts and
click's own messages, generated from the click tree by ``python -m markstation.cli.help_catalog``
(a separate domain, so ``pybabel update`` never drops them). A language's translations are its
``markstation`` catalog with its ``markstation_cli`` catalog as the fallback, so ``_()`` finds
both. Nothing here imports Babel: a wheel carries the compiled ``.mo`` files (the
build hook in ``hatch_build.py`` writes them), which stdlib :mod:`gettext` reads; in a source tree
(editable install, tests) the ``.po`` file is compiled in memory on first use by the small stdlib
compiler below, so an edited catalog is live at once and no manual step is needed.
"""

from __future__ import annotations

import ast
import gettext as _gettext
import io
import os
import struct
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

#: the gettext domain (file name of the catalogs)
DOMAIN = "markstation"
#: the command line's help and click's messages (``markstation.cli.help_catalog`` writes it)
CLI_DOMAIN = "markstation_cli"
#: every domain, in lookup order
DOMAINS: tuple[str, ...] = (DOMAIN, CLI_DOMAIN)
#: the languages markstation speaks; the first is the source language and the fallback
LANGUAGES: tuple[str, ...] = ("en", "es")
DEFAULT_LANGUAGE = "en"
#: directory holding ``<lang>/LC_MESSAGES/<domain>.{po,mo}``
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
#: environment variable naming the language (``es``, ``es_PE.UTF-8``, or a list ``es:en``)
ENV_VAR = "MARKSTATION_LANG"

_lock = threading.Lock()
_cache: dict[str, _gettext.NullTranslations] = {}
_active: _gettext.NullTranslations = _gettext.NullTranslations()
_language = DEFAULT_LANGUAGE


# --- the calls the code uses ------------------------------------------------------------------


def _(message: str) -> str:
    """``message`` in the active language (itself when there is no translation)."""
    return _active.gettext(message)


gettext = _


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for ``n`` in the active language."""
    return _active.ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    """``message`` in the active language, in ``context`` (for short words like state names)."""
    return _active.pgettext(context, message)


def N_(message: str) -> str:
    """Mark ``message`` for extraction without translating it now (translate with ``_()`` later)."""
    return message


def get_language() -> str:
    """The active language code (``en`` or ``es``)."""
    return _language


def set_language(lang: str | None) -> str:
    """Make ``lang`` the active language for every later ``_()``; return the code used.

    ``None`` resolves it as :func:`resolve_language` does. An unsupported language is a
    :class:`~markstation.errors.ConfigError`.
    """
    global _active, _language
    code = resolve_language(None) if lang is None else normalize(lang)
    if code is None:
        from markstation.errors import ConfigError

        raise ConfigError(
            _("unsupported language '{lang}' (supported: {languages})").format(
                lang=lang, languages=", ".join(LANGUAGES)
            )
        )
    active = translations(code)
    with _lock:
        _active, _language = active, code
    return code


# --- which language ---------------------------------------------------------------------------


def normalize(lang: str) -> str | None:
    """``es``, ``es_PE.UTF-8``, ``es-419``, ``ES`` -> ``es``; ``None`` if not a language we speak."""
    text = lang.strip()
    for sep in (".", "@"):
        text = text.split(sep, 1)[0]
    code = text.replace("-", "_").split("_", 1)[0].lower()
    return code if code in LANGUAGES else None


def _first_supported(value: str | None) -> str | None:
    """The first supported language in a value like ``fr:es_PE:en`` (GNU ``LANGUAGE`` style)."""
    if not value:
        return None
    for part in value.split(":"):
        code = normalize(part) if part.strip() else None
        if code is not None:
            return code
    return None


def system_language(environ: Mapping[str, str] | None = None) -> str | None:
    """The language of the system locale (``LC_ALL``, ``LC_MESSAGES``, ``LANG``), if we speak it.

    POSIX precedence: the first of those variables that is set decides (``C`` / ``POSIX`` mean no
    language). On Windows, without those variables, the user's locale name (``es-PE``).
    """
    env = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name, "").strip()
        if value:
            return _first_supported(value)
    if sys.platform == "win32" and environ is None:  # pragma: no cover - Windows only
        return _windows_language()
    return None


def _windows_language() -> str | None:  # pragma: no cover - Windows only
    if sys.platform != "win32":
        return None
    import ctypes

    buf = ctypes.create_unicode_buffer(85)
    if ctypes.windll.kernel32.GetUserDefaultLocaleName(buf, len(buf)):
        return normalize(buf.value)
    return None


def resolve_language(option: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """``option`` (``--lang``), else ``$MARKSTATION_LANG``, else the system locale, else ``en``.

    An unsupported value in the environment is passed over (the next source decides); an
    unsupported ``option`` is refused by :func:`set_language` and by the CLI's choice list.
    """
    env = os.environ if environ is None else environ
    if option:
        code = normalize(option)
        if code is not None:
            return code
    return (
        _first_supported(env.get(ENV_VAR)) or system_language(environ=environ) or DEFAULT_LANGUAGE
    )


# --- catalogs ---------------------------------------------------------------------------------


def catalog_paths(lang: str, domain: str = DOMAIN) -> tuple[Path, Path]:
    """The ``.po`` and ``.mo`` paths of ``lang`` in ``domain`` (either may be missing)."""
    base = LOCALE_DIR / lang / "LC_MESSAGES"
    return base / f"{domain}.po", base / f"{domain}.mo"


def translations(lang: str) -> _gettext.NullTranslations:
    """The translations of ``lang``: :class:`gettext.GNUTranslations` from its catalogs.

    The ``markstation`` catalog, falling back to the ``markstation_cli`` one (help texts, click's
    messages). A language without a catalog gives :class:`gettext.NullTranslations`, which
    returns every message as written. The compiled ``.mo`` is used when it is at least as new as
    the ``.po`` (a wheel); otherwise the ``.po`` is compiled in memory (a source tree). Loaded
    once per language.
    """
    code = normalize(lang) or DEFAULT_LANGUAGE
    with _lock:
        cached = _cache.get(code)
    if cached is not None:
        return cached
    loaded = _load(code)
    with _lock:
        return _cache.setdefault(code, loaded)


def _load(code: str) -> _gettext.NullTranslations:
    main = _load_domain(code, DOMAIN)
    for domain in DOMAINS[1:]:
        main.add_fallback(_load_domain(code, domain))
    return main


def _load_domain(code: str, domain: str) -> _gettext.NullTranslations:
    po, mo = catalog_paths(code, domain)
    if code == DEFAULT_LANGUAGE and not po.exists() and not mo.exists():
        return _gettext.NullTranslations()
    data: bytes | None = None
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        data = mo.read_bytes()
    elif po.exists():
        data = compile_po(po.read_text(encoding="utf-8"))
    if data is None:
        return _gettext.NullTranslations()
    return _gettext.GNUTranslations(io.BytesIO(data))


def reload() -> None:
    """Forget loaded catalogs (after editing a ``.po``) and reload the active language."""
    with _lock:
        _cache.clear()
    set_language(_language)


# --- Jinja2 ------------------------------------------------------------------------------------


class _JinjaEnv(Protocol):
    def install_gettext_callables(
        self,
        gettext: Callable[[str], str],
        ngettext: Callable[[str, str, int], str],
        newstyle: bool | None = None,
        pgettext: Callable[[str, str], str] | None = None,
        npgettext: Callable[[str, str, str, int], str] | None = None,
    ) -> None: ...


def jinja_env_install(env: Any, lang: str | None = None) -> None:
    """Install gettext into a Jinja2 environment created with ``extensions=["jinja2.ext.i18n"]``.

    With ``lang=None`` the templates follow the active language (:func:`set_language`); with a
    language they always use that one. New-style gettext: ``{{ _("Hello %(name)s", name=who) }}``
    (so a literal ``%`` in a template message is written ``%%``).
    """
    target: _JinjaEnv = env
    if lang is None:
        target.install_gettext_callables(
            lambda m: _active.gettext(m),
            lambda s, p, n: _active.ngettext(s, p, n),
            newstyle=True,
            pgettext=lambda c, m: _active.pgettext(c, m),
            npgettext=lambda c, s, p, n: _active.npgettext(c, s, p, n),
        )
        return
    fixed = translations(lang)
    target.install_gettext_callables(
        fixed.gettext,
        fixed.ngettext,
        newstyle=True,
        pgettext=fixed.pgettext,
        npgettext=fixed.npgettext,
    )


# --- a small .po -> .mo compiler (stdlib only; the build uses Babel's) ------------------------


class PoSyntaxError(ValueError):
    """A ``.po`` file the compiler cannot read."""


def parse_po(text: str) -> dict[str | tuple[str, int], str]:
    """The translated entries of a ``.po`` file: msgid (or (msgid, plural index)) -> msgstr.

    Like ``msgfmt``: fuzzy and obsolete entries and empty translations are left out; the header
    (msgid ``""``) is kept. Plural entries are keyed ``"singular\\x00plural"`` by index, as in a
    ``.mo`` file; contexts as ``"context\\x04msgid"``.
    """
    entries: dict[str | tuple[str, int], str] = {}
    for entry in _po_entries(text.splitlines()):
        if entry.fuzzy and entry.msgid != "":
            continue
        key = entry.msgid if entry.msgctxt is None else f"{entry.msgctxt}\x04{entry.msgid}"
        if entry.plural is None:
            value = entry.msgstr.get(0, "")
            if value or entry.msgid == "":
                entries[key] = value
        else:
            forms = [entry.msgstr.get(i, "") for i in range(max(entry.msgstr, default=-1) + 1)]
            if forms and all(forms):
                for i, form in enumerate(forms):
                    entries[(f"{key}\x00{entry.plural}", i)] = form
    return entries


class _PoEntry:
    def __init__(self) -> None:
        self.msgctxt: str | None = None
        self.msgid = ""
        self.plural: str | None = None
        self.msgstr: dict[int, str] = {}
        self.fuzzy = False
        self.seen = False


def _po_string(token: str, lineno: int) -> str:
    token = token.strip()
    if not (len(token) >= 2 and token[0] == '"' and token[-1] == '"'):
        raise PoSyntaxError(f"line {lineno}: expected a quoted string, got {token!r}")
    value = ast.literal_eval(token)
    assert isinstance(value, str)
    return value


def _po_entries(lines: Iterable[str]) -> Iterable[_PoEntry]:
    entry = _PoEntry()
    field: tuple[str, int] | None = None
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if line.startswith("#~"):
                continue  # obsolete entry
            if entry.seen and field is not None and field[0] == "msgstr":
                yield entry
                entry, field = _PoEntry(), None
            if line.startswith("#,") and "fuzzy" in (f.strip() for f in line[2:].split(",")):
                entry.fuzzy = True
            continue
        keyword, _sep, rest = line.partition(" ")
        if line.startswith('"'):
            if field is None:
                raise PoSyntaxError(f"line {lineno}: a string outside any entry")
            _append(entry, field, _po_string(line, lineno))
            continue
        if keyword in ("msgctxt", "msgid") and entry.seen and field and field[0] == "msgstr":
            yield entry
            entry = _PoEntry()
        entry.seen = True
        value = _po_string(rest, lineno)
        if keyword == "msgctxt":
            entry.msgctxt, field = value, ("msgctxt", 0)
        elif keyword == "msgid":
            entry.msgid, field = value, ("msgid", 0)
        elif keyword == "msgid_plural":
            entry.plural, field = value, ("msgid_plural", 0)
        elif keyword == "msgstr":
            entry.msgstr[0], field = value, ("msgstr", 0)
        elif keyword.startswith("msgstr[") and keyword.endswith("]"):
            index = int(keyword[7:-1])
            entry.msgstr[index], field = value, ("msgstr", index)
        else:
            raise PoSyntaxError(f"line {lineno}: unknown keyword {keyword!r}")
    if entry.seen:
        yield entry


def _append(entry: _PoEntry, field: tuple[str, int], value: str) -> None:
    name, index = field
    if name == "msgctxt":
        entry.msgctxt = (entry.msgctxt or "") + value
    elif name == "msgid":
        entry.msgid += value
    elif name == "msgid_plural":
        entry.plural = (entry.plural or "") + value
    else:
        entry.msgstr[index] = entry.msgstr.get(index, "") + value


def compile_po(text: str) -> bytes:
    """The GNU ``.mo`` bytes of a ``.po`` file's translated entries (what ``msgfmt`` writes)."""
    merged: dict[str, str] = {}
    plurals: dict[str, dict[int, str]] = {}
    for key, value in parse_po(text).items():
        if isinstance(key, tuple):
            plurals.setdefault(key[0], {})[key[1]] = value
        else:
            merged[key] = value
    for key, forms in plurals.items():
        merged[key] = "\x00".join(forms[i] for i in sorted(forms))
    ids = sorted(merged)
    keys = [k.encode("utf-8") for k in ids]
    values = [merged[k].encode("utf-8") for k in ids]
    count = len(ids)
    header_size = 7 * 4
    key_table = header_size
    value_table = key_table + count * 8
    data_start = value_table + count * 8
    offsets: list[tuple[int, int]] = []
    blob = io.BytesIO()
    for k in keys:
        offsets.append((len(k), data_start + blob.tell()))
        blob.write(k + b"\x00")
    value_offsets: list[tuple[int, int]] = []
    for v in values:
        value_offsets.append((len(v), data_start + blob.tell()))
        blob.write(v + b"\x00")
    out = io.BytesIO()
    out.write(struct.pack("<7I", 0x950412DE, 0, count, key_table, value_table, 0, 0))
    for length, offset in offsets:
        out.write(struct.pack("<2I", length, offset))
    for length, offset in value_offsets:
        out.write(struct.pack("<2I", length, offset))
    out.write(blob.getvalue())
    return out.getvalue()


__all__ = [
    "CLI_DOMAIN",
    "DEFAULT_LANGUAGE",
    "DOMAIN",
    "DOMAINS",
    "ENV_VAR",
    "LANGUAGES",
    "LOCALE_DIR",
    "N_",
    "_",
    "catalog_paths",
    "compile_po",
    "get_language",
    "gettext",
    "jinja_env_install",
    "ngettext",
    "normalize",
    "parse_po",
    "pgettext",
    "reload",
    "resolve_language",
    "set_language",
    "system_language",
    "translations",
]
