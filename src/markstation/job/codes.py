"""Mark-code schemes: a layout's regex with named fields decides which codes it accepts.

A registry's code format is data (``[code] pattern`` in the layout file), never code. The named
groups become the fields a layout's element templates use, e.g. ``"{country} {year}"``; the whole
code is always available as ``{code}``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from datetime import date

from markstation.errors import CodeSchemeError, ConfigError
from markstation.i18n import _
from markstation.profiles import LayoutProfile


def printable(text: str, limit: int = 80) -> str:
    """``text`` quoted for a one-line message: control characters escaped, long text cut."""
    shown = text if len(text) <= limit else text[: limit - 1] + "…"
    escaped = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in shown)
    return f"'{escaped}'"


def parse_code(code: str, layout: LayoutProfile) -> dict[str, str]:
    """The named fields of ``code`` under ``layout``'s scheme, plus ``"code"`` (the whole code).

    The whole code must match (``re.fullmatch``: no trailing newline or blank slips through).
    An optional group that did not take part in the match gives ``""``.
    Raises :class:`CodeSchemeError` naming the code, the layout, its pattern and its example.
    """
    match = layout.code_regex().fullmatch(code)
    if match is None:
        raise CodeSchemeError(
            _(
                "code {code} does not match layout '{layout}' (pattern {pattern}, e.g. {example})"
            ).format(
                code=printable(code),
                layout=layout.name,
                pattern=layout.code_pattern,
                example=layout.code_example,
            )
        )
    fields = {name: value or "" for name, value in match.groupdict().items()}
    why = _year_problem(match, layout)
    if why:  # the import's rule, so a code typed at `mark` or `preview` meets it too
        raise CodeSchemeError(_("code {code}: {why}").format(code=printable(code), why=why))
    fields["code"] = code
    return fields


def year_window(layout: LayoutProfile, today: date | None = None) -> tuple[int, int]:
    """(first, last) year a code may carry with ``layout``."""
    last = layout.year_max or (today or date.today()).year + 1
    return layout.year_min, last


def check_year(code: str, layout: LayoutProfile, today: date | None = None) -> str | None:
    """Why the code's ``year`` field is outside the layout's window, or None (no such field, or
    the code does not match the scheme at all: that is :func:`parse_code`'s message)."""
    match = layout.code_regex().fullmatch(code)
    why = None if match is None else _year_problem(match, layout, today)
    return None if why is None else f"mark_code: {why}"


def _year_problem(
    match: re.Match[str], layout: LayoutProfile, today: date | None = None
) -> str | None:
    raw = match.groupdict().get("year")
    if raw is None or not raw.isascii() or not raw.isdigit():
        return None
    first, last = year_window(layout, today)
    if first <= int(raw) <= last:
        return None
    return _(
        "year {raw} is outside {first}…{last} (layout '{layout}', code.year_min / code.year_max)"
    ).format(raw=raw, first=first, last=last, layout=layout.name)


def template_fields(template: str, where: str) -> list[str]:
    """Field names a ``str.format`` template uses; ConfigError for malformed or indexed fields."""
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(
            _("{where}: template {template} is malformed ({error})").format(
                where=where, template=printable(template), error=exc
            )
        ) from exc
    for _literal, name, _spec, _conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier():
            # no positional {} and no attribute or index access: plain field names only
            raise ConfigError(
                _(
                    "{where}: template {template} uses '{field}'; only named fields like {{code}} are allowed"
                ).format(where=where, template=printable(template), field="{" + name + "}")
            )
        names.append(name)
    return names


def fill_template(template: str, fields: Mapping[str, str], where: str) -> str:
    """Format ``template`` with the code's fields; ConfigError naming ``where`` for unknown fields."""
    for name in template_fields(template, where):
        if name not in fields:
            known = ", ".join("{" + f + "}" for f in sorted(fields))
            raise ConfigError(
                _(
                    "{where}: template {template} uses unknown field '{field}' (the code scheme gives {known})"
                ).format(
                    where=where, template=printable(template), field="{" + name + "}", known=known
                )
            )
    try:
        return template.format_map(dict(fields))
    except (ValueError, KeyError, IndexError) as exc:
        raise ConfigError(
            _("{where}: template {template} failed ({error})").format(
                where=where, template=printable(template), error=exc
            )
        ) from exc
