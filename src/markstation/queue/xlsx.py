"""Spreadsheets in and out: .xlsx registry files (import) and the .xlsx report (export).

Import (openpyxl, read-only mode): the first worksheet or the one named, its first row the header
(as for CSV), every cell a value. A formula is refused (a registry file must carry values: paste
as values), and so is a number, date or boolean in a column that must hold text (``mark_code``,
``serial``, ``make`` …): a serial typed as a number has lost its leading zeros. Other columns are
kept as text (numbers as written, dates as ISO dates). Problems name the cell: ``Sheet1!B7``.

Export: a workbook with the registry columns first (sheet ``items``: all text, importable again
into a fresh store), then ``report`` with typed columns (integers, times, seconds) and the journal
evidence, then ``journal`` with the chain head. Text that a spreadsheet would evaluate is stored as
text, never as a formula. openpyxl is imported only here, when a workbook is read or written.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from markstation.errors import BatchError
from markstation.i18n import N_, _
from markstation.queue.journal import ChainHead
from markstation.queue.models import Actor
from markstation.queue.store import Store
from markstation.queue.textpolicy import show

if TYPE_CHECKING:
    from markstation.queue.batch import Cell, Problem
    from markstation.queue.keys import StationKey

#: columns whose cells must be text
TEXT_COLUMNS = frozenset({"mark_code", "serial", "make", "model", "caliber", "owner", "layout"})


def _cell_kind(value: Any, data_type: str | None) -> str | None:
    """What a non-text cell holds ("a formula", "a number" …), or None for text / empty."""
    if data_type == "f" or (isinstance(value, str) and data_type == "f"):
        return N_("a formula")
    if data_type == "e":
        return N_("an error value")
    if isinstance(value, bool):
        return N_("a boolean")
    if isinstance(value, datetime | date | time):
        return N_("a date or time")
    if isinstance(value, int | float):
        return N_("a number")
    return None


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_xlsx(
    path: Path, raw: bytes, sheet: str | None
) -> tuple[list[list[Cell]], list[Problem], str]:
    """The sheet's records (first = header) with cell positions, the problems, the sheet's name."""
    import io

    from markstation.queue.batch import MAX_ROWS, Cell, Problem, cell_ref, normalise_column

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from openpyxl import load_workbook

            wb = load_workbook(io.BytesIO(raw), read_only=True, data_only=False)
    except Exception as exc:  # any damage in the zip or XML is one message
        raise BatchError(
            _(
                "{path}: not a readable .xlsx workbook ({error}); save it again "
                "from the spreadsheet as .xlsx, or as CSV UTF-8"
            ).format(path=path, error=type(exc).__name__)
        ) from exc
    try:
        names = list(wb.sheetnames)
        if sheet is None:
            if not names:
                raise BatchError(_("{path}: the workbook has no worksheet").format(path=path))
            name = names[0]
        elif sheet in names:
            name = sheet
        else:
            listed = ", ".join(f"'{show(n)}'" for n in names)
            raise BatchError(
                _("{path}: no sheet '{sheet}' (the workbook has {listed})").format(
                    path=path, sheet=show(sheet), listed=listed
                )
            )
        ws = wb[name]
        records: list[list[Cell]] = []
        problems: list[Problem] = []
        header_names: list[str] = []
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for r, row in enumerate(ws.iter_rows(), start=1):
                    if len(records) > MAX_ROWS + 1:
                        problems.append(
                            Problem(
                                r,
                                1,
                                _("more than {limit} items in one sheet (split it)").format(
                                    limit=MAX_ROWS
                                ),
                            )
                        )
                        return [], problems, name
                    line = getattr(row[0], "row", None) if row else None
                    line = line if isinstance(line, int) else r
                    cells: list[Cell] = []
                    for c, cell in enumerate(row, start=1):
                        col = getattr(cell, "column", None)
                        col = col if isinstance(col, int) else c
                        value = cell.value
                        kind = _cell_kind(value, getattr(cell, "data_type", None))
                        header = not records
                        column_name = (
                            header_names[col - 1] if not header and col <= len(header_names) else ""
                        )
                        if kind == "a formula" or kind == "an error value":
                            shown = show(str(value), 30)
                            problems.append(
                                Problem(
                                    line,
                                    col,
                                    _(
                                        "{kind} ({value}) is not allowed: a registry file must "
                                        "carry values (copy the cells, paste as values)"
                                    ).format(kind=_(kind), value=shown),
                                )
                            )
                            cells.append(Cell("", line, col, refused=True))
                        elif kind is not None and (header or column_name in TEXT_COLUMNS):
                            got = show(_as_text(value), 30)
                            message = (
                                _(
                                    "column name must be text, got {kind} ({value}) "
                                    "(format the column as Text and type it again)"
                                )
                                if header
                                else _(
                                    "'{column}' must be text, got {kind} ({value}) "
                                    "(format the column as Text and type it again)"
                                )
                            )
                            problems.append(
                                Problem(
                                    line,
                                    col,
                                    message.format(column=column_name, kind=_(kind), value=got),
                                )
                            )
                            cells.append(Cell("", line, col, refused=True))
                        else:
                            cells.append(Cell(_as_text(value), line, col))
                    while cells and not cells[-1].value and not cells[-1].refused:
                        cells.pop()
                    if not cells:
                        continue  # an empty row
                    if not records:
                        header_names = [normalise_column(x.value) for x in cells]
                    records.append(cells)
        except BatchError:
            raise
        except Exception as exc:  # damaged sheet XML, one message
            where = cell_ref(len(records) + 1, 1)
            raise BatchError(
                _(
                    "{path}: sheet '{sheet}' cannot be read near {where} "
                    "({error}); save it again as .xlsx"
                ).format(path=path, sheet=show(name), where=where, error=type(exc).__name__)
            ) from exc
        return records, problems, name
    finally:
        wb.close()


# --- export ----------------------------------------------------------------------------------------

#: columns of the 'items' sheet, in order (the registry's own columns; importable again)
ITEM_COLUMNS = ("mark_code", "serial", "make", "model", "caliber", "owner", "layout")
#: typed columns of the 'report' sheet
_INT_COLUMNS = frozenset({"batch", "attempts"})
_FLOAT_COLUMNS = frozenset({"device_mark_time_s"})
_TIME_COLUMNS = frozenset({"marked_at"})


def _text_cell(ws: Any, value: str) -> Any:
    """A cell that is text even when it starts with '=' (never a formula)."""
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(ws, value=value)
    cell.data_type = "s"
    return cell


def _typed(ws: Any, column: str, value: Any) -> Any:
    from openpyxl.cell import WriteOnlyCell

    if column in _INT_COLUMNS and isinstance(value, int):
        return WriteOnlyCell(ws, value=value)
    if column in _FLOAT_COLUMNS and value not in ("", None):
        try:
            return WriteOnlyCell(ws, value=float(value))
        except (TypeError, ValueError):
            pass
    if column in _TIME_COLUMNS and isinstance(value, str) and value:
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if when.tzinfo is not None:  # spreadsheets have no time zones: UTC, said in the header
                when = when.astimezone(UTC).replace(tzinfo=None)
            cell = WriteOnlyCell(ws, value=when)
            cell.number_format = "yyyy-mm-dd hh:mm:ss"
            return cell
    return _text_cell(ws, "" if value is None else str(value))


def workbook_bytes(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], checkpoint: Iterable[tuple[str, str]]
) -> bytes:
    """The report workbook as bytes: 'items', 'report' (typed) and 'journal' sheets."""
    import io

    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    items = wb.create_sheet("items")
    extra_keys = sorted({k for r in rows for k in r.get("_extra", {})})
    items.append([_text_cell(items, c) for c in (*ITEM_COLUMNS, *extra_keys)])
    for r in rows:
        extra = r.get("_extra", {})
        items.append(
            [_text_cell(items, str(r.get(c, "") or "")) for c in ITEM_COLUMNS]
            + [_text_cell(items, str(extra.get(k, ""))) for k in extra_keys]
        )
    report = wb.create_sheet("report")
    report.append(
        [_text_cell(report, c + (" (UTC)" if c in _TIME_COLUMNS else "")) for c in columns]
    )
    for r in rows:
        report.append([_typed(report, c, r.get(c, "")) for c in columns])
    journal = wb.create_sheet("journal")
    for key, value in checkpoint:
        journal.append([_text_cell(journal, key), _text_cell(journal, value)])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def export_xlsx(
    store: Store, path: str | os.PathLike[str], *, actor: Actor, key: StationKey | None = None
) -> ChainHead:
    """Journal and seal the export, then write the .xlsx report (atomically); return the head."""
    from markstation.queue.export import COLUMNS, journal_export
    from markstation.queue.report_pdf import report_checkpoint, report_rows, write_atomically

    out = Path(path)
    rows = report_rows(store)
    note, _ = journal_export(store, out, rows, fmt="xlsx", actor=actor, key=key)
    checkpoint = report_checkpoint(note)
    data = workbook_bytes(
        rows,
        COLUMNS,
        [
            ("tree size", str(checkpoint.records)),
            ("tree root sha256", checkpoint.hash),
            ("checkpoint", checkpoint.text),
            ("signed", "yes" if checkpoint.signed else "no"),
        ],
    )
    write_atomically(out, data)
    return ChainHead(checkpoint.records, checkpoint.hash)
