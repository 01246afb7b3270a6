"""Registry batch files: read CSV or JSON, validate every row, import all or nothing.

Format: CSV with a header row (``,`` ``;`` or tab, detected from the header), or a JSON array of
objects; UTF-8 with or without a BOM. Column names are compared without case, with spaces and
dashes read as ``_``. Required: ``mark_code``, ``serial`` (the firearm's factory serial).
Recommended: ``make``, ``model``, ``caliber``, ``owner``. Optional: ``layout``. Any other column is
kept as metadata of the item.

Every problem is reported as ``file:line:column: message`` (line = physical line in the file,
column = 1-based character column where the field starts; for JSON the key's position, or the
object's for a missing key), all of them in one :class:`BatchError`; nothing is stored unless the
file has no problem at all.

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

from markstation.errors import BatchError, ConfigError, JobError
from markstation.profiles import DEFAULT_LAYOUT, LayoutProfile, load_layout
from markstation.queue.identity import firearm_key
from markstation.queue.models import Actor, NewItem
from markstation.queue.store import Store

REQUIRED = ("mark_code", "serial")
RECOMMENDED = ("make", "model", "caliber", "owner")
OPTIONAL = ("layout",)
KNOWN = REQUIRED + RECOMMENDED + OPTIONAL

#: how many problems the report lists before it just counts the rest
MAX_LISTED = 200


@dataclass(frozen=True)
class Cell:
    """One field value and where it starts in the file (1-based line and column)."""

    value: str
    line: int
    column: int


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

    def format(self, file: str) -> str:
        return f"{file}:{self.line}:{self.column}: {self.message}"


@dataclass(frozen=True)
class ParsedBatch:
    """What a file holds, before validation against layouts and the store."""

    path: Path
    sha256: str
    rows: list[Row]
    problems: list[Problem]


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


def read_batch(path: str | os.PathLike[str]) -> ParsedBatch:
    """Read a CSV or JSON batch file; syntax problems are collected, not raised."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise BatchError(f"{p}: cannot read the batch file ({exc.strerror})") from exc
    digest = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bom = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
        before = raw[bom : exc.start]
        line = before.count(b"\n") + 1
        col = len(before) - (before.rfind(b"\n") + 1) + 1
        return ParsedBatch(
            p, digest, [], [Problem(line, col, "not UTF-8 text (save the file as UTF-8)")]
        )
    if p.suffix.lower() == ".json" or (
        p.suffix.lower() != ".csv" and text.lstrip().startswith("[")
    ):
        rows, problems = _read_json(text)
    else:
        rows, problems = _read_csv(text)
    if not rows and not problems:
        problems.append(Problem(1, 1, "the batch has no items"))
    return ParsedBatch(p, digest, rows, problems)


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
                    problems.append(Problem(line, col, "quoted field is never closed"))
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
                problems.append(Problem(line, col, "text after a closing quote"))
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


def _read_csv(text: str) -> tuple[list[Row], list[Problem]]:
    records, problems = _csv_records(text, _detect_delimiter(text))
    if not records:
        return [], problems
    header, *body = records
    columns: list[str] = []
    seen: dict[str, Cell] = {}
    for cell in header:
        name = normalise_column(cell.value)
        if not name:
            problems.append(Problem(cell.line, cell.column, "empty column name in the header"))
        elif name in seen:
            first = seen[name]
            problems.append(
                Problem(
                    cell.line,
                    cell.column,
                    f"column '{name}' appears twice in the header (first at column {first.column})",
                )
            )
        else:
            seen[name] = cell
        columns.append(name)
    first_cell = header[0]
    for req in REQUIRED:
        if req not in seen:
            problems.append(
                Problem(first_cell.line, first_cell.column, f"required column '{req}' is missing")
            )
    rows: list[Row] = []
    for rec in body:
        row = Row(rec[0].line, rec[0].column)
        if len(rec) != len(columns):
            problems.append(
                Problem(
                    row.line,
                    row.column,
                    f"{len(rec)} fields, but the header has {len(columns)} columns",
                )
            )
        for name, cell in zip(columns, rec, strict=False):
            if name and name not in row.cells:
                row.cells[name] = cell
        rows.append(row)
    return rows, problems


def _read_json(text: str) -> tuple[list[Row], list[Problem]]:
    pos = _Positions(text)
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return [], [Problem(exc.lineno, exc.colno, f"not valid JSON: {exc.msg}")]
    dec = json.JSONDecoder()
    i = _skip_ws(text, 0)
    if not text.startswith("[", i):
        line, col = pos.at(i)
        return [], [Problem(line, col, "a JSON batch must be an array of objects")]
    rows: list[Row] = []
    problems: list[Problem] = []
    i = _skip_ws(text, i + 1)
    while not text.startswith("]", i):
        line, col = pos.at(i)
        if not text.startswith("{", i):
            value, i = dec.raw_decode(text, i)
            problems.append(Problem(line, col, "each item must be a JSON object"))
        else:
            row = Row(line, col)
            i = _skip_ws(text, i + 1)
            while not text.startswith("}", i):
                key, i = dec.raw_decode(text, i)
                kline, kcol = pos.at(_rfind_quote(text, i))
                i = _skip_ws(text, i)
                i = _skip_ws(text, i + 1)  # past ':'
                value, i = dec.raw_decode(text, i)
                name = normalise_column(str(key))
                if name in row.cells:
                    problems.append(
                        Problem(kline, kcol, f"key '{key}' appears twice in this object")
                    )
                else:
                    cell_value = _json_value(value)
                    if cell_value is None:
                        if name in KNOWN:
                            problems.append(
                                Problem(
                                    kline,
                                    kcol,
                                    f"'{key}' must be a string, got {json.dumps(value)}",
                                )
                            )
                        cell_value = json.dumps(value, ensure_ascii=False)
                    row.cells[name] = Cell(cell_value, kline, kcol)
                i = _skip_ws(text, i)
                if text.startswith(",", i):
                    i = _skip_ws(text, i + 1)
            i += 1
            for req in REQUIRED:
                if req not in row.cells:
                    problems.append(Problem(line, col, f"required key '{req}' is missing"))
            rows.append(row)
        i = _skip_ws(text, i)
        if text.startswith(",", i):
            i = _skip_ws(text, i + 1)
    return rows, problems


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
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


# --- validation -------------------------------------------------------------------------------------

#: raises JobError / ConfigError when ``code`` cannot be marked with ``layout`` (scheme, glyphs, …)
CodeChecker = Callable[[str, LayoutProfile], object]


def check_code(code: str, layout: LayoutProfile) -> None:
    """What the job builder checks before any geometry: scheme, template fields, glyphs, heights."""
    from markstation.job.layout import plan_elements

    plan_elements(code, layout)


def validate_batch(
    parsed: ParsedBatch,
    store: Store,
    *,
    default_layout: str = DEFAULT_LAYOUT,
    code_checker: CodeChecker = check_code,
) -> ValidBatch:
    """Check every row against the layouts and the store; BatchError listing every problem."""
    problems = list(parsed.problems)
    layouts: dict[str, LayoutProfile | str] = {}  # name -> profile, or why it cannot be used
    codes_seen: dict[str, int] = {}
    firearms_seen: dict[tuple[str, str], int] = {}
    items: list[NewItem] = []
    in_store = store.find_codes(
        row.cells["mark_code"].value.strip() for row in parsed.rows if "mark_code" in row.cells
    )
    firearms_in_store = store.find_firearms()

    def problem(cell: Cell | Row, message: str) -> None:
        problems.append(Problem(cell.line, cell.column, message))

    for row in parsed.rows:
        code_cell = row.cells.get("mark_code")
        serial_cell = row.cells.get("serial")
        if code_cell is None or serial_cell is None:
            continue  # already reported as a missing column / key
        code = code_cell.value.strip()
        serial = serial_cell.value.strip()
        ok = True
        if not code:
            problem(code_cell, "empty mark_code")
            ok = False
        elif code in codes_seen:
            problem(code_cell, f"mark_code '{code}' already on line {codes_seen[code]}")
            ok = False
        elif code in in_store:
            old = in_store[code]
            problem(
                code_cell,
                f"mark_code '{code}' is already in this store (batch {old.batch_id}, "
                f"{old.state.value}); a code is never used twice",
            )
            ok = False
        else:
            codes_seen[code] = code_cell.line
        if not serial:
            problem(serial_cell, "empty serial (the firearm's factory serial is required)")
            ok = False
        elif not any(ch.isalnum() for ch in serial):
            problem(serial_cell, f"serial '{serial}' has no letter or digit")
            ok = False
            serial = ""
        make_cell = row.cells.get("make")
        make = make_cell.value.strip() if make_cell else ""
        if serial:
            key = firearm_key(make, serial)
            label = f"{make + ' ' if make else ''}serial '{serial}'"
            if key in firearms_seen:
                problem(
                    serial_cell,
                    f"firearm {label} already on line {firearms_seen[key]}: one firearm must "
                    "not get two codes",
                )
                ok = False
            elif key in firearms_in_store:
                old = firearms_in_store[key]
                problem(
                    serial_cell,
                    f"firearm {label} already has code '{old.code}' in this store "
                    f"({old.state.value}); void that code first if it must be replaced",
                )
                ok = False
            else:
                firearms_seen[key] = serial_cell.line
        layout_cell = row.cells.get("layout")
        layout_name = (layout_cell.value.strip() if layout_cell else "") or default_layout
        layout = layouts.get(layout_name)
        if layout is None:
            try:
                layout = load_layout(_layout_ref(layout_name, parsed.path))
            except ConfigError as exc:
                layout = str(exc)
            layouts[layout_name] = layout
        if isinstance(layout, str):
            problem(layout_cell or code_cell, f"layout: {layout}")
            ok = False
        elif code:
            try:
                code_checker(code, layout)
            except (JobError, ConfigError) as exc:
                problem(code_cell, str(exc))
                ok = False
        if ok:
            assert not isinstance(layout, str)
            # a layout file is stored by its resolved path, so the runner finds the same file
            stored = layout_name if layout.path.stem == layout_name else str(layout.path)
            items.append(_new_item(row, code, serial, make, stored))

    if problems:
        raise BatchError(_report(parsed.path, problems))
    return ValidBatch(parsed.path, parsed.sha256, items)


def _layout_ref(name: str, batch_file: Path) -> str:
    """A layout name, or a ``.toml`` path; a relative path is read beside the batch file."""
    if name.endswith(".toml") and not Path(name).is_absolute():
        return str((batch_file.parent / name).resolve())
    return name


def _new_item(row: Row, code: str, serial: str, make: str, layout: str) -> NewItem:
    def get(name: str) -> str:
        c = row.cells.get(name)
        return c.value.strip() if c else ""

    extra = {k: c.value for k, c in row.cells.items() if k not in KNOWN}
    return NewItem(
        code=code,
        serial=serial,
        layout=layout,
        line=row.line,
        make=make,
        model=get("model"),
        caliber=get("caliber"),
        owner=get("owner"),
        extra=extra,
    )


def _report(path: Path, problems: list[Problem]) -> str:
    ordered = sorted(problems, key=lambda p: (p.line, p.column))
    lines = [p.format(str(path)) for p in ordered[:MAX_LISTED]]
    if len(ordered) > MAX_LISTED:
        lines.append(f"... and {len(ordered) - MAX_LISTED} more")
    count = f"{len(ordered)} problem{'s' if len(ordered) != 1 else ''}"
    return f"{path}: {count}, nothing imported\n" + "\n".join(lines)


def import_batch(
    path: str | os.PathLike[str],
    store: Store,
    *,
    actor: Actor,
    default_layout: str = DEFAULT_LAYOUT,
    code_checker: CodeChecker = check_code,
) -> tuple[int, ValidBatch]:
    """Read, validate and store a batch file (all or nothing); return (batch id, the batch)."""
    parsed = read_batch(path)
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
