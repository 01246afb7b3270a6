"""Registry batch import: formats, positions of every problem, all-or-nothing with the store unchanged."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _paths import REPO
from _queue_fakes import dump_db, sample_rows, write_csv, write_json
from markstation.errors import BatchError
from markstation.queue.batch import import_batch, read_batch
from markstation.queue.models import Actor
from markstation.queue.sqlite import SqliteStore
from markstation.queue.states import State

EXAMPLES = REPO / "examples"
ACTOR = Actor("J. Quispe", "station-1")

#: every invalid example -> (line:column, message fragment) of problems it must report
INVALID = {
    "invalid-missing-serial-column.csv": [("1:1", "required column 'serial' is missing")],
    "invalid-duplicate-code.csv": [("4:1", "already on line 2")],
    "invalid-empty-code-and-serial.csv": [("2:24", "empty serial"), ("3:1", "empty mark_code")],
    "invalid-code-outside-scheme.csv": [
        ("3:1", "does not match layout 'secondary-mark'"),
        ("4:1", "does not match layout 'secondary-mark'"),
    ],
    "invalid-unknown-layout.csv": [("3:67", "unknown layout 'tertiary-mark'")],
    "invalid-missing-glyph.csv": [("3:1", "no glyph for '€'")],
    "invalid-duplicate-firearm.csv": [("3:24", "one firearm must not get two codes")],
    "invalid-ragged-row.csv": [("3:1", "5 fields, but the header has 6 columns")],
    "invalid-not-utf8.csv": [("3:33", "not UTF-8")],
    "invalid-json-syntax.json": [("3:79", "not valid JSON")],
    "invalid-json-missing-key.json": [
        ("3:3", "required key 'serial' is missing"),
        ("4:39", "'serial' must be a string"),
    ],
    "invalid-json-not-array.json": [("1:1", "must be an array of objects")],
}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "m.db"
    # a store that already holds something, so "unchanged" is a real comparison
    with SqliteStore(path, actor=ACTOR) as store:
        import_batch(EXAMPLES / "registry-sample.json", store, actor=ACTOR)
    return path


def test_every_invalid_example_is_listed() -> None:
    on_disk = {p.name for p in EXAMPLES.glob("invalid-*")}
    assert on_disk == set(INVALID)


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_example_refused_with_store_unchanged(db: Path, name: str) -> None:
    before = dump_db(db)
    with SqliteStore(db, actor=ACTOR) as store, pytest.raises(BatchError) as err:
        import_batch(EXAMPLES / name, store, actor=ACTOR)
    report = str(err.value)
    assert "nothing imported" in report.splitlines()[0]
    for where, fragment in INVALID[name]:
        pattern = re.escape(f"{EXAMPLES / name}:{where}: ") + ".*" + re.escape(fragment)
        assert re.search(pattern, report), report
    # exactly as many problem lines as expected: nothing else slipped in
    assert len(report.splitlines()) == 1 + len(INVALID[name])
    assert dump_db(db) == before


@pytest.mark.parametrize("name", ["registry-sample.csv", "registry-sample.json"])
def test_valid_examples_import(tmp_path: Path, name: str) -> None:
    with SqliteStore(tmp_path / "m.db", actor=ACTOR) as store:
        batch_id, valid = import_batch(EXAMPLES / name, store, actor=ACTOR)
        items = store.items()
        assert len(items) == len(valid.items) > 0
        assert all(it.state is State.PENDING for it in items)
        rec = list(store.records())[-1]
        assert rec.type == "batch-imported"
        assert rec.payload["sha256"] == valid.sha256
        assert rec.payload["batch"] == batch_id
    if name.endswith(".csv"):
        assert items[0].extra == {"permit": "L-4400"}
        assert items[0].make == "Glock" and items[0].line == 2


def test_code_already_in_store_refused(db: Path, tmp_path: Path) -> None:
    before = dump_db(db)
    rows = [{"mark_code": "SV-PNC-2026-000301", "serial": "NEW1", "make": "Glock"}]
    path = write_csv(tmp_path / "again.csv", rows)
    with (
        SqliteStore(db, actor=ACTOR) as store,
        pytest.raises(BatchError, match=r"again.csv:2:1: .*already in this store"),
    ):
        import_batch(path, store, actor=ACTOR)
    assert dump_db(db) == before


def test_firearm_already_in_store_refused_unless_voided(db: Path, tmp_path: Path) -> None:
    from markstation.queue.decisions import void

    with SqliteStore(db, actor=ACTOR) as store:
        old = store.items()[0]
        rows = [{"mark_code": "SV-PNC-2026-009999", "serial": old.serial, "make": old.make}]
        path = write_csv(tmp_path / "same-firearm.csv", rows)
        with pytest.raises(BatchError, match=f"already has code '{old.code}'"):
            import_batch(path, store, actor=ACTOR)
        void(store, old.code, reason="registry withdrew the code", actor=ACTOR)
        import_batch(path, store, actor=ACTOR)
        assert store.item("SV-PNC-2026-009999") is not None


def test_bom_semicolons_and_header_spelling(tmp_path: Path) -> None:
    text = "\ufeffMark Code;Serial;Make\nPE-SUCAMEC-2026-000001;A1;Glock\n"
    path = tmp_path / "b.csv"
    path.write_text(text, encoding="utf-8")
    parsed = read_batch(path)
    assert not parsed.problems
    assert parsed.rows[0].cells["mark_code"].value == "PE-SUCAMEC-2026-000001"
    assert parsed.rows[0].cells["serial"].column == 24


def test_quoted_multiline_field_keeps_physical_lines(tmp_path: Path) -> None:
    text = 'mark_code,serial,note\nPE-SUCAMEC-2026-000001,A1,"two\nlines"\nBAD,A2,x\n'
    path = tmp_path / "b.csv"
    path.write_text(text, encoding="utf-8")
    with (
        SqliteStore(tmp_path / "m.db", actor=ACTOR) as store,
        pytest.raises(BatchError, match=r"b.csv:4:1: code 'BAD'"),
    ):
        import_batch(path, store, actor=ACTOR)


def test_unclosed_quote(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_text('mark_code,serial\nPE-SUCAMEC-2026-000001,"A1\n', encoding="utf-8")
    assert [(p.line, p.column) for p in read_batch(path).problems] == [(2, 24)]


def test_empty_file_and_header_only(tmp_path: Path) -> None:
    for text in ("", "mark_code,serial\n"):
        path = tmp_path / "e.csv"
        path.write_text(text, encoding="utf-8")
        with SqliteStore(tmp_path / "m.db", actor=ACTOR) as store, pytest.raises(BatchError):
            import_batch(path, store, actor=ACTOR)


def test_header_problems(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text(
        "mark_code,serial,make,make,\nPE-SUCAMEC-2026-000001,A,B,C,D\n", encoding="utf-8"
    )
    msgs = [(p.line, p.column, p.message) for p in read_batch(path).problems]
    assert (1, 23, "column 'make' appears twice in the header (first at column 18)") in msgs
    assert (1, 28, "empty column name in the header") in msgs


def test_missing_file_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(BatchError, match="cannot read the batch file"):
        read_batch(tmp_path / "nope.csv")


def test_json_duplicate_key(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text('[{"mark_code": "PE-SUCAMEC-2026-000001", "serial": "A", "serial": "B"}]')
    probs = read_batch(path).problems
    assert [(p.line, p.column) for p in probs] == [(1, 57)]
    assert "appears twice" in probs[0].message


@settings(max_examples=25)
@given(
    rows=st.lists(
        st.tuples(st.integers(0, 99999), st.text(alphabet="ABC123-", min_size=1, max_size=8)),
        min_size=1,
        max_size=12,
    ),
    as_json=st.booleans(),
)
def test_import_is_all_or_nothing(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[int, str]], as_json: bool
) -> None:
    """Random batches: either every row is stored, or nothing and a report naming each bad row."""
    tmp = tmp_path_factory.mktemp("b")
    records = [
        {"mark_code": f"PE-SUCAMEC-2026-{n:06d}", "serial": serial, "make": "Glock"}
        for n, serial in rows
    ]
    path = write_json(tmp / "b.json", records) if as_json else write_csv(tmp / "b.csv", records)
    codes = [r["mark_code"] for r in records]
    keys = [re.sub(r"[\s\-_./]", "", s).casefold() for _, s in rows]
    expect_ok = len(set(codes)) == len(codes) and len(set(keys)) == len(keys) and all(keys)
    # a serial of punctuation only is refused too (no letter or digit to confirm against)
    db = tmp / "m.db"
    with SqliteStore(db, actor=ACTOR) as store:
        before = dump_db(db)
        if expect_ok:
            import_batch(path, store, actor=ACTOR)
            assert [it.code for it in store.items()] == codes
        else:
            with pytest.raises(BatchError):
                import_batch(path, store, actor=ACTOR)
            assert dump_db(db) == before


def test_sample_rows_helper_is_valid(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "s.csv", sample_rows(5))
    with SqliteStore(tmp_path / "m.db", actor=ACTOR) as store:
        import_batch(path, store, actor=ACTOR)
        assert store.counts()[State.PENDING] == 5
