"""Mark-code schemes: a layout's regex with named fields decides which codes it accepts.

A registry's code format is data (``[code] pattern`` in the layout file), never code. The named
groups become the fields a layout's element templates use, e.g. ``"{country} {year}"``; the whole
code is always available as ``{code}``.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

from markstation.errors import CodeSchemeError, ConfigError
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
            f"code {printable(code)} does not match layout '{layout.name}' "
            f"(pattern {layout.code_pattern}, e.g. {layout.code_example})"
        )
    fields = {name: value or "" for name, value in match.groupdict().items()}
    fields["code"] = code
    return fields


def template_fields(template: str, where: str) -> list[str]:
    """Field names a ``str.format`` template uses; ConfigError for malformed or indexed fields."""
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"{where}: template {printable(template)} is malformed ({exc})") from exc
    for _, name, _, _ in parsed:
        if name is None:
            continue
        if not name.isidentifier():
            # no positional {} and no attribute or index access: plain field names only
            raise ConfigError(
                f"{where}: template {printable(template)} uses '{{{name}}}'; "
                f"only named fields like {{code}} are allowed"
            )
        names.append(name)
    return names


def fill_template(template: str, fields: Mapping[str, str], where: str) -> str:
    """Format ``template`` with the code's fields; ConfigError naming ``where`` for unknown fields."""
    for name in template_fields(template, where):
        if name not in fields:
            known = ", ".join("{" + f + "}" for f in sorted(fields))
            raise ConfigError(
                f"{where}: template {printable(template)} uses unknown field '{{{name}}}' "
                f"(the code scheme gives {known})"
            )
    try:
        return template.format_map(dict(fields))
    except (ValueError, KeyError, IndexError) as exc:
        raise ConfigError(f"{where}: template {printable(template)} failed ({exc})") from exc
