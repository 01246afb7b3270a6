"""The text policy: what a field of a registry file may hold, in one place.

Every field that reaches the store (CSV, JSON or .xlsx import) goes through :func:`check_field`:

- it must be text (a JSON number, a spreadsheet number or date is refused: a serial is text and a
  number loses its leading zeros);
- no lone surrogates (a damaged file, or JSON ``"\\ud800"``);
- a length limit per field (:data:`LIMITS`: 64 for codes and serials, 200 for other text);
- NFC normalisation, then no C0/C1 control characters (NUL, TAB, ESC, backspace, DEL, U+0085),
  no line or paragraph separators (U+2028, U+2029), no bidirectional controls (U+202E …), no
  zero-width or other invisible format characters (U+200B, U+00AD, U+FEFF …), no private-use or
  unassigned code points;
- a mark code must be exactly what the scheme allows: surrounding whitespace is an error (never
  trimmed silently), and a look-alike character (Cyrillic or Greek letters, fullwidth forms,
  Unicode dashes, other scripts' digits, odd spaces) is named with its code point:
  ``mark_code: 'А' U+0410 CYRILLIC CAPITAL LETTER A is not 'A'``;
- a code's ``year`` field must lie in the layout's window (``code.year_min`` … ``code.year_max``,
  default 1900 … this year + 1).

Messages never contain the offending character raw when it is invisible or a control (a message
must not repaint the operator's terminal): :func:`show` escapes them.

The report side lives here too: :func:`spreadsheet_safe` neutralises a cell a spreadsheet would
evaluate (OWASP "CSV injection").
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from markstation.i18n import _

#: longest value per field, in characters (after NFC); any other column: DEFAULT_LIMIT
LIMITS: dict[str, int] = {"mark_code": 64, "serial": 64, "layout": 200}
DEFAULT_LIMIT = 200
#: longest column name (header cell / JSON key)
COLUMN_NAME_LIMIT = 64
#: fields that identify something: no surrounding whitespace, no odd spaces
CODE_FIELDS = frozenset({"mark_code"})

_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_C0_NAMES = {
    0x00: "NULL",
    0x07: "BELL",
    0x08: "BACKSPACE",
    0x09: "CHARACTER TABULATION",
    0x0A: "LINE FEED",
    0x0B: "LINE TABULATION",
    0x0C: "FORM FEED",
    0x0D: "CARRIAGE RETURN",
    0x1B: "ESCAPE",
    0x7F: "DELETE",
    0x85: "NEXT LINE",
}

#: look-alikes of ASCII letters that NFKC leaves alone (Cyrillic, Greek, Latin small capitals …)
_CONFUSABLE: dict[str, str] = {
    **dict(zip("АВЕКМНОРСТХУІЈЅԁԌ", "ABEKMHOPCTXYIJSdG", strict=True)),
    **dict(zip("аеорсухіјѕԛԝ", "aeopcyxijsqw", strict=True)),
    **dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "ABEZHIKMNOPTYX", strict=True)),
    **dict(zip("οαιν", "oaiv", strict=True)),
    **dict(zip("ƖƼǀǃ", "I5l!", strict=True)),
    "ı": "i",
    "ȷ": "j",
    "ℓ": "l",
    **{ch: "-" for ch in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043\ufe58\ufe63\uff0d"},
    **{ch: "'" for ch in "\u2018\u2019\u201b\u2032"},
    **{ch: '"' for ch in "\u201c\u201d\u2033"},
}


@dataclass(frozen=True)
class Checked:
    """A field after the policy: its NFC value, or why it was refused (``problem``)."""

    value: str
    problem: str | None = None


def char_name(ch: str) -> str:
    """``U+0410 CYRILLIC CAPITAL LETTER A``; controls and surrogates get a name too."""
    cp = ord(ch)
    name = unicodedata.name(ch, "") or _C0_NAMES.get(cp, "")
    if not name:
        if 0xD800 <= cp <= 0xDFFF:
            name = "SURROGATE"
        elif unicodedata.category(ch) == "Cc":
            name = "CONTROL"
        elif unicodedata.category(ch) == "Co":
            name = "PRIVATE USE"
        else:
            name = "UNASSIGNED"
    return f"U+{cp:04X} {name}"


def _visible(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return cat[0] not in "CZ" or ch == " "


def describe(ch: str) -> str:
    """``'А' U+0410 CYRILLIC CAPITAL LETTER A``, without the quoted glyph when it is invisible."""
    return f"'{ch}' {char_name(ch)}" if _visible(ch) else char_name(ch)


def show(value: str, limit: int = 40) -> str:
    """A user value made safe to print in a message: invisibles escaped, long values cut."""
    cut = value[:limit]
    out = "".join(ch if _visible(ch) else f"\\u{ord(ch):04x}" for ch in cut)
    return out + ("…" if len(value) > limit else "")


def not_text(field: str, what: str, hint: str = "") -> str:
    """The message for a number, date, list … where text is required."""
    return _("'{field}' must be a string, got {what}{hint}").format(
        field=field, what=what, hint=hint
    )


def _forbidden(ch: str) -> str | None:
    """Why ``ch`` may not appear in any field, or None."""
    cp = ord(ch)
    cat = unicodedata.category(ch)
    if cat == "Cs":
        return _("lone surrogate U+{cp:04X} (not a character: the file is damaged)").format(cp=cp)
    if cat == "Cc":
        return _("control character {char} is not allowed").format(char=char_name(ch))
    if ch in _BIDI:
        return _(
            "bidirectional control {char} is not allowed (it changes the order text is shown in)"
        ).format(char=char_name(ch))
    if cat in ("Zl", "Zp"):
        return _("{char} is not allowed (a field is one line)").format(char=char_name(ch))
    if cat == "Cf":
        return _("invisible character {char} is not allowed").format(char=char_name(ch))
    if cat == "Co":
        return _("private-use character {char} is not allowed").format(char=char_name(ch))
    if cat == "Cn":
        return _("unassigned code point {char} is not allowed").format(char=char_name(ch))
    return None


def lookalike(ch: str) -> str | None:
    """The ASCII character ``ch`` imitates, if it is a look-alike of one."""
    if ch.isascii():
        return None
    if ch in _CONFUSABLE:
        return _CONFUSABLE[ch]
    folded = unicodedata.normalize("NFKC", ch)
    if folded.isascii() and len(folded) == 1 and folded.isprintable():
        return folded
    if unicodedata.category(ch) == "Nd":
        return str(unicodedata.digit(ch))
    if unicodedata.category(ch) == "Zs":
        return " "
    return None


def check_field(field: str, value: str) -> Checked:
    """Apply the policy to one field; ``value`` as read from the file (not yet trimmed)."""
    limit = LIMITS.get(field, DEFAULT_LIMIT)
    # bound the work first: a 1 MiB serial is refused before anything looks at its characters
    if len(value) > 4 * limit:
        return Checked(
            value,
            _("{field}: {length} characters, the limit is {limit}").format(
                field=field, length=len(value), limit=limit
            ),
        )
    for ch in value:
        if unicodedata.category(ch) == "Cs":
            return Checked(value, f"{field}: {_forbidden(ch)}")
    text = unicodedata.normalize("NFC", value)
    for ch in text:
        why = _forbidden(ch)
        if why:
            return Checked(text, f"{field}: {why}")
    if field in CODE_FIELDS:
        if text != text.strip():
            at_start = text[:1].isspace()
            message = (
                _(
                    "{field}: {char} at the start (surrounding whitespace is not "
                    "trimmed: fix the file)"
                )
                if at_start
                else _(
                    "{field}: {char} at the end (surrounding whitespace is not "
                    "trimmed: fix the file)"
                )
            )
            return Checked(
                text, message.format(field=field, char=describe(text[0] if at_start else text[-1]))
            )
        for ch in text:
            twin = lookalike(ch)
            if twin is not None:
                return Checked(
                    text,
                    _("{field}: {char} is not '{twin}'").format(
                        field=field, char=describe(ch), twin=twin
                    ),
                )
    else:
        text = text.strip()
    if len(text) > limit:
        return Checked(
            text,
            _("{field}: {length} characters, the limit is {limit}").format(
                field=field, length=len(text), limit=limit
            ),
        )
    return Checked(text)


def check_column_name(name: str) -> str | None:
    """Why a header cell or JSON key cannot name a column, or None."""
    if len(name) > COLUMN_NAME_LIMIT:
        return _("column name of {length} characters, the limit is {limit}").format(
            length=len(name), limit=COLUMN_NAME_LIMIT
        )
    for ch in unicodedata.normalize("NFC", name) if _no_surrogates(name) else name:
        why = _forbidden(ch)
        if why:
            return _("column name '{name}': {why}").format(name=show(name), why=why)
    return None


def _no_surrogates(text: str) -> bool:
    return not any(unicodedata.category(ch) == "Cs" for ch in text)


#: a report cell starting with one of these is evaluated by Excel / LibreOffice
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """Prefix ``'`` to a cell a spreadsheet would evaluate (OWASP CSV injection advice)."""
    return "'" + value if value.startswith(FORMULA_START) else value
