"""Registry batch files: read CSV or JSON, validate every row, import all or nothing.

Format: CSV with a header row (``,`` ``;`` or tab, detected from the header), or a JSON array of
objects; UTF-8 with or without a BOM. Column names are compared without case, with spaces and
dashes read as ``_``. Required: ``mark_code``, ``serial`` (the firearm's factory serial).
Recommended: ``make``, ``model``, ``caliber``, ``owner``. Optional: ``layout``. Any other column is
kept as metadata of the item.

Also ``.xlsx`` (first sheet, or the one named): the header row as for CSV, every cell a value
(formulas refused), text where text is expected (numbers and dates refused with the cell named).
UTF-16 files with a byte-order mark are decoded; anything else that is not UTF-8 is refused.

Every field goes through :mod:`markstation.queue.textpolicy` (NFC, no controls or invisibles,
length limits, look-alikes in codes, the layout's year window). The parsers cannot be crashed: a
file size limit, a row limit, bounded JSON nesting and number size, duplicate keys refused.

Every problem is reported as ``file:line:column: message`` (line = physical line in the file,
column = 1-based character column where the field starts; for JSON the key's position, or the
object's for a missing key; for .xlsx ``file:Sheet!B7: message``), all of them in one
:class:`BatchRefused`; nothing is stored unless the file has no problem at all.

The same firearm (make + factory serial, compared without case, spaces or punctuation) twice in the
file, or already in the store with a code that is not voided, is refused: a firearm must never get
two codes. Fix the registry file, or void the old code first.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markstation.errors import BatchError, ConfigError
from markstation.i18n import N_, _, ngettext
from markstation.job.codes import check_year
from markstation.profiles import DEFAULT_LAYOUT, LayoutProfile, load_layout
from markstation.queue import textpolicy
from markstation.queue.identity import firearm_key
from markstation.queue.models import Actor, NewItem
from markstation.queue.store import Store
from markstation.queue.textpolicy import show

REQUIRED = ("mark_code", "serial")
RECOMMENDED = ("make", "model", "caliber", "owner")
OPTIONAL = ("layout",)
KNOWN = REQUIRED + RECOMMENDED + OPTIONAL

#: how many problems the report lists before it just counts the rest
MAX_LISTED = 200
#: largest batch file read (bytes), most items in one file, JSON nesting and number length
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_ROWS = 100_000
MAX_JSON_DEPTH = 32
MAX_NUMBER_CHARS = 32


class BatchRefused(BatchError):
    """A batch file with problems: the one-line-per-problem report, and the problems themselves."""

    def __init__(self, report: str, path: Path, problems: list[Problem], sheet: str | None):
        super().__init__(report)
        self.path = path
        self.problems = problems
        self.sheet = sheet


@dataclass(frozen=True)
class Cell:
    """One field value and where it starts in the file (1-based line and column)."""

    value: str
    line: int
    column: int
    #: already reported as unusable (a number where text is required, a formula …)
    refused: bool = False


@dataclass
class Row:
    """One record of the file: its own position, and its cells by normalised column name."""

    line: int
    column: int
    cells: dict[str, Cell] = field(default_factory=dict)


@dataclass(frozen=True)
class Problem:
    line: int
    column: int
    message: str

    def where(self, file: str, sheet: str | None = None) -> str:
        """``file:line:column``, or ``file:Sheet!B7`` for a spreadsheet."""
        if sheet is not None:
            return f"{file}:{sheet}!{cell_ref(self.line, self.column)}"
        return f"{file}:{self.line}:{self.column}"

    def format(self, file: str, sheet: str | None = None) -> str:
        return f"{self.where(file, sheet)}: {self.message}"


def cell_ref(row: int, column: int) -> str:
    """Spreadsheet cell reference: (7, 2) -> ``B7``."""
    letters = ""
    n = max(column, 1)
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return f"{letters}{max(row, 1)}"


@dataclass(frozen=True)
class ParsedBatch:
    """What a file holds, before validation against layouts and the store."""

    path: Path
    sha256: str
    rows: list[Row]
    problems: list[Problem]
    #: the sheet read, for a spreadsheet (problems are then named by cell: ``Sheet1!B7``)
    sheet: str | None = None


@dataclass(frozen=True)
class ValidBatch:
    path: Path
    sha256: str
    items: list[NewItem]


def normalise_column(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip()).casefold()


# --- reading --------------------------------------------------------------------------------------


class _Positions:
    """Offset in the text -> (line, column), both 1-based."""

    def __init__(self, text: str) -> None:
        self._starts = [0] + [m.end() for m in re.finditer(r"\r\n|\n|\r", text)]

    def at(self, offset: int) -> tuple[int, int]:
        i = bisect.bisect_right(self._starts, offset) - 1
        return i + 1, offset - self._starts[i] + 1


def read_batch(path: str | os.PathLike[str], *, sheet: str | None = None) -> ParsedBatch:
    """Read a CSV, JSON or .xlsx batch file; problems in its content are collected, not raised.

    ``sheet`` names the worksheet of an .xlsx file (default: the first). Only a file that cannot
    be read at all (missing, too large, not a workbook) raises :class:`BatchError`.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise BatchError(
                _(
                    "{path}: {size} bytes, larger than the {limit} MiB limit for a batch file (split it)"
                ).format(path=p, size=size, limit=MAX_FILE_BYTES // (1024 * 1024))
            )
        with p.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise BatchError(
            _("{path}: cannot read the batch file ({error})").format(path=p, error=exc.strerror)
        ) from exc
    if len(raw) > MAX_FILE_BYTES:
        raise BatchError(
            _("{path}: larger than the {limit} MiB limit").format(
                path=p, limit=MAX_FILE_BYTES // (1024 * 1024)
            )
        )
    digest = hashlib.sha256(raw).hexdigest()
    suffix = p.suffix.lower()
    if suffix in (".xlsx", ".xlsm") or raw.startswith(b"PK\x03\x04"):
        from markstation.queue.xlsx import read_xlsx

        records, problems, sheet_name = read_xlsx(p, raw, sheet)
        rows, more = _rows_from_records(records, spreadsheet=True)
        problems += more
        if not rows and not problems:
            problems.append(Problem(1, 1, _("the batch has no items")))
        return ParsedBatch(p, digest, rows, problems, sheet_name)
    if sheet is not None:
        raise BatchError(_("{path}: --sheet is only for .xlsx workbooks").format(path=p))
    text, problem = _decode(raw)
    if problem is not None:
        return ParsedBatch(p, digest, [], [problem])
    try:
        if suffix == ".json" or (suffix != ".csv" and text.lstrip().startswith("[")):
            rows, problems = _read_json(text)
        else:
            records, problems = _csv_records(text, _detect_delimiter(text))
            rows, more = _rows_from_records(records)
            problems += more
    except _TooMany as exc:
        return ParsedBatch(p, digest, [], [exc.problem])
    if not rows and not problems:
        problems.append(Problem(1, 1, _("the batch has no items")))
    return ParsedBatch(p, digest, rows, problems)


class _TooMany(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


def _too_many(line: int, column: int) -> _TooMany:
    return _TooMany(
        Problem(
            line,
            column,
            _("more than {limit} items in one file (split the batch)").format(limit=MAX_ROWS),
        )
    )


_SAVE_AS_UTF8 = N_("save the file as UTF-8 (Excel: 'CSV UTF-8 (comma delimited)')")


def _decode(raw: bytes) -> tuple[str, Problem | None]:
    """The file's text: UTF-8 (BOM or not), or UTF-16 with a BOM; else where it went wrong."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16"), None
        except UnicodeDecodeError as exc:
            return "", Problem(
                1,
                1,
                _("not valid UTF-16 text at byte {byte}: {hint}").format(
                    byte=exc.start, hint=_(_SAVE_AS_UTF8)
                ),
            )
    head = raw[:200]
    if len(head) >= 4 and max(head[0::2].count(0), head[1::2].count(0)) > len(head) // 4:
        return "", Problem(
            1,
            1,
            _("looks like UTF-16 text without a byte-order mark: {hint}").format(
                hint=_(_SAVE_AS_UTF8)
            ),
        )
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        bom = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
        before = raw[bom : exc.start]
        line = before.count(b"\n") + 1
        col = len(before) - (before.rfind(b"\n") + 1) + 1
        return "", Problem(line, col, _("not UTF-8 text (save the file as UTF-8)"))


def _detect_delimiter(text: str) -> str:
    first = text.split("\n", 1)[0]
    outside = re.sub(r'"[^"]*"', "", first)
    counts = {d: outside.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _csv_records(text: str, delim: str) -> tuple[list[list[Cell]], list[Problem]]:
    """RFC 4180 records with the position of every field; quoted fields may span lines."""
    pos = _Positions(text)
    records: list[list[Cell]] = []
    problems: list[Problem] = []
    i, n = 0, len(text)
    record: list[Cell] = []
    while i <= n:
        start = i
        if i < n and text[i] == '"':
            buf: list[str] = []
            i += 1
            while True:
                j = text.find('"', i)
                if j < 0:
                    line, col = pos.at(start)
                    problems.append(Problem(line, col, _("quoted field is never closed")))
                    return records, problems
                buf.append(text[i:j])
                if j + 1 < n and text[j + 1] == '"':
                    buf.append('"')
                    i = j + 2
                    continue
                i = j + 1
                break
            value = "".join(buf)
            end = i
            while end < n and text[end] not in (delim, "\r", "\n"):
                end += 1
            if end > i:
                line, col = pos.at(i)
                problems.append(Problem(line, col, _("text after a closing quote")))
            i = end
        else:
            end = i
            while end < n and text[end] not in (delim, "\r", "\n"):
                end += 1
            value = text[i:end]
            i = end
        line, col = pos.at(start)
        record.append(Cell(value, line, col))
        if i < n and text[i] == delim:
            i += 1
            continue
        # end of record: newline or end of text
        if not (len(record) == 1 and record[0].value == ""):
            records.append(record)
        record = []
        if i >= n:
            break
        i += 2 if text.startswith("\r\n", i) else 1
        if i >= n:
            break
    return records, problems


def _rows_from_records(
    records: list[list[Cell]], *, spreadsheet: bool = False
) -> tuple[list[Row], list[Problem]]:
    """Header record + body records (CSV or sheet) -> rows by normalised column name."""
    problems: list[Problem] = []
    if not records:
        return [], problems
    header, *body = records
    if len(body) > MAX_ROWS:
        raise _too_many(body[MAX_ROWS][0].line, 1)
    columns: list[str] = []
    seen: dict[str, Cell] = {}
    for cell in header:
        name = normalise_column(cell.value)
        bad = textpolicy.check_column_name(cell.value)
        if cell.refused:
            name = ""
        elif bad:
            problems.append(Problem(cell.line, cell.column, bad))
            name = ""
        elif not name:
            if not spreadsheet:
                problems.append(
                    Problem(cell.line, cell.column, _("empty column name in the header"))
                )
        elif name in seen:
            first = seen[name]
            at = (
                cell_ref(first.line, first.column)
                if spreadsheet
                else _("column {column}").format(column=first.column)
            )
            problems.append(
                Problem(
                    cell.line,
                    cell.column,
                    _("column '{name}' appears twice in the header (first at {at})").format(
                        name=show(name), at=at
                    ),
                )
            )
        else:
            seen[name] = cell
        columns.append(name)
    first_cell = header[0]
    for req in REQUIRED:
        if req not in seen:
            problems.append(
                Problem(
                    first_cell.line,
                    first_cell.column,
                    _("required column '{name}' is missing").format(name=req),
                )
            )
    rows: list[Row] = []
    for rec in body:
        row = Row(rec[0].line, rec[0].column)
        if spreadsheet:
            for name, cell in zip(columns, rec, strict=False):
                if not name and (cell.value or cell.refused) and not cell.refused:
                    problems.append(
                        Problem(cell.line, cell.column, _("a value in a column with no header"))
                    )
            if len(rec) > len(columns) and any(c.value for c in rec[len(columns) :]):
                extra = next(c for c in rec[len(columns) :] if c.value)
                problems.append(
                    Problem(extra.line, extra.column, _("a value in a column with no header"))
                )
        elif len(rec) != len(columns):
            problems.append(
                Problem(
                    row.line,
                    row.column,
                    _("{fields} fields, but the header has {columns} columns").format(
                        fields=len(rec), columns=len(columns)
                    ),
                )
            )
        for name, cell in zip(columns, rec, strict=False):
            if name and name not in row.cells:
                row.cells[name] = cell
        if spreadsheet:  # a short row: the missing cells are empty
            for i, name in enumerate(columns[len(rec) :], start=len(rec) + 1):
                if name and name not in row.cells:
                    row.cells[name] = Cell("", row.line, i)
        rows.append(row)
    return rows, problems


#: JSON tokens that matter for the limits: strings (skipped), brackets, numbers, NaN / Infinity
_JSON_TOKEN = re.compile(
    r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[{]|[\]}]|-?[0-9][0-9.eE+\-]*|-?\b(?:NaN|Infinity)\b'
)


def _json_limits(text: str, pos: _Positions) -> Problem | None:
    """Nesting deeper than MAX_JSON_DEPTH, a number longer than MAX_NUMBER_CHARS, NaN / Infinity."""
    depth = 0
    for m in _JSON_TOKEN.finditer(text):
        tok = m.group()
        first = tok[0]
        if first == '"':
            continue
        if first in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                line, col = pos.at(m.start())
                return Problem(
                    line,
                    col,
                    _("JSON nested deeper than {limit} levels (refused)").format(
                        limit=MAX_JSON_DEPTH
                    ),
                )
        elif first in "]}":
            depth -= 1
        elif tok.lstrip("-") in ("NaN", "Infinity"):
            line, col = pos.at(m.start())
            return Problem(
                line, col, _("not valid JSON: {value} is not a number").format(value=tok)
            )
        elif len(tok) > MAX_NUMBER_CHARS:
            line, col = pos.at(m.start())
            return Problem(
                line,
                col,
                _(
                    "a JSON number of {length} characters (limit {limit}); codes and serials are strings"
                ).format(length=len(tok), limit=MAX_NUMBER_CHARS),
            )
    return None


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _read_json(text: str) -> tuple[list[Row], list[Problem]]:
    pos = _Positions(text)
    limit = _json_limits(text, pos)
    if limit is not None:
        return [], [limit]
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return [], [
            Problem(exc.lineno, exc.colno, _("not valid JSON: {error}").format(error=exc.msg))
        ]
    except (ValueError, RecursionError) as exc:  # belt and braces: the limits above prevent these
        return [], [Problem(1, 1, _("not valid JSON: {error}").format(error=str(exc)[:80]))]
    dec = json.JSONDecoder(object_pairs_hook=_no_duplicates)
    i = _skip_ws(text, 0)
    if not text.startswith("[", i):
        line, col = pos.at(i)
        return [], [Problem(line, col, _("a JSON batch must be an array of objects"))]
    rows: list[Row] = []
    problems: list[Problem] = []
    i = _skip_ws(text, i + 1)
    while not text.startswith("]", i):
        line, col = pos.at(i)
        if len(rows) >= MAX_ROWS:
            raise _too_many(line, col)
        if not text.startswith("{", i):
            try:
                _value, i = dec.raw_decode(text, i)
            except _DuplicateKey:
                _value, i = json.JSONDecoder().raw_decode(text, i)
            problems.append(Problem(line, col, _("each item must be a JSON object")))
        else:
            row = Row(line, col)
            i = _skip_ws(text, i + 1)
            while not text.startswith("}", i):
                key, i = dec.raw_decode(text, i)
                kline, kcol = pos.at(_rfind_quote(text, i))
                i = _skip_ws(text, i)
                i = _skip_ws(text, i + 1)  # past ':'
                dup: str | None = None
                try:
                    value, i = dec.raw_decode(text, i)
                except _DuplicateKey as exc:
                    dup = exc.key
                    value, i = json.JSONDecoder().raw_decode(text, i)
                name = normalise_column(str(key))
                bad_name = textpolicy.check_column_name(str(key))
                if bad_name:
                    problems.append(Problem(kline, kcol, bad_name))
                elif name in row.cells:
                    problems.append(
                        Problem(
                            kline,
                            kcol,
                            _("key '{key}' appears twice in this object").format(
                                key=show(str(key))
                            ),
                        )
                    )
                elif dup is not None:
                    problems.append(
                        Problem(
                            kline,
                            kcol,
                            _("key '{duplicate}' appears twice in an object inside '{key}'").format(
                                duplicate=show(dup), key=show(str(key))
                            ),
                        )
                    )
                    row.cells[name] = Cell("", kline, kcol, refused=True)
                else:
                    cell_value = _json_value(value)
                    refused = False
                    if cell_value is None:
                        if name in KNOWN:
                            problems.append(
                                Problem(kline, kcol, _json_type_problem(str(key), value))
                            )
                            refused = True
                        cell_value = json.dumps(value, ensure_ascii=False)
                    row.cells[name] = Cell(cell_value, kline, kcol, refused)
                i = _skip_ws(text, i)
                if text.startswith(",", i):
                    i = _skip_ws(text, i + 1)
            i += 1
            for req in REQUIRED:
                if req not in row.cells:
                    problems.append(
                        Problem(line, col, _("required key '{name}' is missing").format(name=req))
                    )
            rows.append(row)
        i = _skip_ws(text, i)
        if text.startswith(",", i):
            i = _skip_ws(text, i + 1)
    return rows, problems


def _json_type_problem(key: str, value: Any) -> str:
    name = show(key)
    if isinstance(value, bool):
        return textpolicy.not_text(name, f"{json.dumps(value)}")
    if isinstance(value, int | float):
        return textpolicy.not_text(
            name,
            _("the number {number}").format(number=show(json.dumps(value))),
            _(' (a number loses leading zeros: write it in quotes, e.g. "000123")'),
        )
    return textpolicy.not_text(name, show(json.dumps(value, ensure_ascii=False)))


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _rfind_quote(text: str, end: int) -> int:
    """Start offset of the JSON string that ends just before ``end``."""
    i = end - 2
    while i >= 0:
        if text[i] == '"':
            backslashes = 0
            j = i - 1
            while j >= 0 and text[j] == "\\":
                backslashes += 1
                j -= 1
            if backslashes % 2 == 0:
                return i
        i -= 1
    return 0


def _json_value(value: Any) -> str | None:
    """A JSON value as a field's text: strings, and null as empty; anything else is not text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return None


# --- validation -------------------------------------------------------------------------------------

#: raises JobError / ConfigError when ``code`` cannot be marked with ``layout`` (scheme, glyphs, …)
CodeChecker = Callable[[str, LayoutProfile], object]


def check_code(code: str, layout: LayoutProfile) -> None:
    """What the job builder checks before any geometry: scheme, template fields, glyphs, heights."""
    from markstation.job.layout import plan_elements

    plan_elements(code, layout)


def check_batch(
    parsed: ParsedBatch,
    store: Store | None,
    *,
    default_layout: str = DEFAULT_LAYOUT,
    code_checker: CodeChecker = check_code,
) -> tuple[list[NewItem], list[Problem]]:
    """Every row through the text policy, the layouts and (when given) the store.

    Returns the items and every problem; ``store=None`` checks the file alone (``batch validate``).
    """
    problems = list(parsed.problems)
    layouts: dict[str, LayoutProfile | str] = {}  # name -> profile, or why it cannot be used
    codes_seen: dict[str, int] = {}
    firearms_seen: dict[tuple[str, str], int] = {}
    items: list[NewItem] = []

    def problem(cell: Cell | Row, message: str) -> None:
        problems.append(Problem(cell.line, cell.column, message))

    # 1. the text policy, field by field: only clean text goes further (and into SQL)
    clean_rows: list[tuple[Row, dict[str, str], bool]] = []
    for row in parsed.rows:
        values: dict[str, str] = {}
        ok = True
        for name, cell in row.cells.items():
            if cell.refused:
                ok = False
                continue
            checked = textpolicy.check_field(name, cell.value)
            if checked.problem is not None:
                problem(cell, checked.problem)
                ok = False
                if name == "serial":  # still compare firearms, so a duplicate is named too
                    values["~serial"] = cell.value
            else:
                values[name] = checked.value
        clean_rows.append((row, values, ok))

    in_store = (
        store.find_codes(v["mark_code"] for _, v, _ in clean_rows if v.get("mark_code"))
        if store is not None
        else {}
    )
    firearms_in_store = store.find_firearms() if store is not None else {}

    for row, values, ok in clean_rows:
        code_cell = row.cells.get("mark_code")
        serial_cell = row.cells.get("serial")
        if code_cell is None or serial_cell is None:
            continue  # already reported as a missing column / key
        code = values.get("mark_code")
        serial = values.get("serial")
        if code is None:
            ok = False  # refused by the policy, reported
        elif not code:
            problem(code_cell, _("empty mark_code"))
            ok = False
        elif code in codes_seen:
            problem(
                code_cell,
                _("mark_code '{code}' already on line {line}").format(
                    code=show(code), line=codes_seen[code]
                ),
            )
            ok = False
        elif code in in_store:
            old = in_store[code]
            problem(
                code_cell,
                _(
                    "mark_code '{code}' is already in this store (batch {batch}, {state}); a code is never used twice"
                ).format(code=show(code), batch=old.batch_id, state=old.state.value),
            )
            ok = False
        else:
            codes_seen[code] = code_cell.line
        if serial is None:
            ok = False
            serial = values.get("~serial", "")  # refused by the policy; compared below anyway
        elif not serial:
            problem(serial_cell, _("empty serial (the firearm's factory serial is required)"))
            ok = False
        elif not any(ch.isalnum() for ch in serial):
            problem(
                serial_cell,
                _("serial '{serial}' has no letter or digit").format(serial=show(serial)),
            )
            ok = False
            serial = ""
        make = values.get("make", "")
        key = firearm_key(make, serial) if serial else ("", "")
        if key[1]:
            label = (
                _("{make} serial '{serial}'").format(make=show(make), serial=show(serial))
                if make
                else _("serial '{serial}'").format(serial=show(serial))
            )
            if key in firearms_seen:
                problem(
                    serial_cell,
                    _(
                        "firearm {label} already on line {line}: one firearm must not get two codes"
                    ).format(label=label, line=firearms_seen[key]),
                )
                ok = False
            elif key in firearms_in_store:
                old_item = firearms_in_store[key]
                problem(
                    serial_cell,
                    _(
                        "firearm {label} already has code '{code}' in this store ({state}); void that code first if it must be replaced"
                    ).format(label=label, code=show(old_item.code), state=old_item.state.value),
                )
                ok = False
            else:
                firearms_seen[key] = serial_cell.line
        layout_cell = row.cells.get("layout")
        if layout_cell is not None and "layout" not in values:
            continue  # the layout value was refused by the policy (reported)
        layout_name = values.get("layout", "") or default_layout
        layout = layouts.get(layout_name)
        if layout is None:
            layout = _load_layout(layout_name, parsed.path)
            layouts[layout_name] = layout
        if isinstance(layout, str):
            problem(layout_cell or code_cell, f"layout: {layout}")
            ok = False
        elif code:
            year = check_year(code, layout)  # first: named as the column at fault
            if year:
                problem(code_cell, year)
                ok = False
            else:
                try:
                    code_checker(code, layout)
                except ValueError as exc:  # JobError, ConfigError (both ValueError) and the like
                    problem(code_cell, str(exc))
                    ok = False
        if ok and code and serial:
            assert not isinstance(layout, str)
            # a layout file is stored by its resolved path, so the runner finds the same file
            stored = layout_name if layout.path.stem == layout_name else str(layout.path)
            items.append(_new_item(values, row.line, code, serial, make, stored))
    return items, problems


def validate_batch(
    parsed: ParsedBatch,
    store: Store | None,
    *,
    default_layout: str = DEFAULT_LAYOUT,
    code_checker: CodeChecker = check_code,
) -> ValidBatch:
    """Check every row against the text policy, the layouts and the store; BatchRefused if any."""
    items, problems = check_batch(
        parsed, store, default_layout=default_layout, code_checker=code_checker
    )
    if problems:
        raise BatchRefused(
            _report(parsed.path, problems, parsed.sheet), parsed.path, problems, parsed.sheet
        )
    return ValidBatch(parsed.path, parsed.sha256, items)


def _load_layout(name: str, batch_file: Path) -> LayoutProfile | str:
    try:
        return load_layout(_layout_ref(name, batch_file))
    except ConfigError as exc:
        return str(exc)
    except (OSError, ValueError) as exc:  # a name the file system cannot take
        return _("cannot read layout '{name}' ({error})").format(
            name=show(name), error=type(exc).__name__
        )


def _layout_ref(name: str, batch_file: Path) -> str:
    """A layout name, or a ``.toml`` path; a relative path is read beside the batch file."""
    if name.endswith(".toml") and not Path(name).is_absolute():
        return str((batch_file.parent / name).resolve())
    return name


def _new_item(
    values: dict[str, str], line: int, code: str, serial: str, make: str, layout: str
) -> NewItem:
    # an empty metadata cell says nothing: not kept (so a spreadsheet round trip is exact)
    extra = {k: v for k, v in values.items() if k not in KNOWN and not k.startswith("~") and v}
    return NewItem(
        code=code,
        serial=serial,
        layout=layout,
        line=line,
        make=make,
        model=values.get("model", ""),
        caliber=values.get("caliber", ""),
        owner=values.get("owner", ""),
        extra=extra,
    )


def sorted_problems(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line, p.column))


def _report(
    path: Path, problems: list[Problem], sheet: str | None = None, *, refused: bool = True
) -> str:
    ordered = sorted_problems(problems)
    lines = [p.format(str(path), sheet) for p in ordered[:MAX_LISTED]]
    if len(ordered) > MAX_LISTED:
        lines.append(_("... and {count} more").format(count=len(ordered) - MAX_LISTED))
    n = len(ordered)
    head = (
        ngettext(
            "{path}: {count} problem, nothing imported",
            "{path}: {count} problems, nothing imported",
            n,
        )
        if refused
        else ngettext("{path}: {count} problem", "{path}: {count} problems", n)
    )
    return head.format(path=path, count=n) + "\n" + "\n".join(lines)


def import_batch(
    path: str | os.PathLike[str],
    store: Store,
    *,
    actor: Actor,
    default_layout: str = DEFAULT_LAYOUT,
    code_checker: CodeChecker = check_code,
    sheet: str | None = None,
) -> tuple[int, ValidBatch]:
    """Read, validate and store a batch file (all or nothing); return (batch id, the batch)."""
    parsed = read_batch(path, sheet=sheet)
    valid = validate_batch(
        parsed,
        store,
        default_layout=default_layout,
        code_checker=code_checker,
    )
    batch_id = store.import_batch(
        file=str(valid.path), sha256=valid.sha256, items=valid.items, actor=actor
    )
    return batch_id, valid


def validation_report(
    path: str | os.PathLike[str],
    *,
    default_layout: str = DEFAULT_LAYOUT,
    sheet: str | None = None,
    code_checker: CodeChecker = check_code,
) -> tuple[dict[str, Any], str]:
    """``batch validate``: the import's whole report for a file, no store touched.

    Returns a JSON-able document (``ok``, ``items``, ``problems`` with line, column, cell and
    message) and the same as text, one line per problem.
    """
    p = Path(path)
    try:
        parsed = read_batch(p, sheet=sheet)
    except BatchError as exc:
        doc: dict[str, Any] = {
            "file": str(p),
            "ok": False,
            "items": 0,
            "sha256": None,
            "sheet": sheet,
            "problems": [{"where": str(p), "line": None, "column": None, "message": str(exc)}],
        }
        return doc, _("error: {error}").format(error=exc)
    items, problems = check_batch(
        parsed, None, default_layout=default_layout, code_checker=code_checker
    )
    ordered = sorted_problems(problems)
    doc = {
        "file": str(p),
        "ok": not ordered,
        "items": len(items),
        "sha256": parsed.sha256,
        "sheet": parsed.sheet,
        "problems": [
            {
                "where": pr.where(str(p), parsed.sheet),
                "line": pr.line,
                "column": pr.column,
                **({"cell": cell_ref(pr.line, pr.column)} if parsed.sheet is not None else {}),
                "message": pr.message,
            }
            for pr in ordered
        ],
    }
    if not ordered:
        return doc, ngettext(
            "{path}: {count} item, no problems", "{path}: {count} items, no problems", len(items)
        ).format(path=p, count=len(items))
    text = _report(p, ordered, parsed.sheet, refused=False)
    return doc, _("error: {error}").format(error=text)
