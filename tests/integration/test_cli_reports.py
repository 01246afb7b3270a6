"""`log export --format xlsx|pdf` and `batch import --sheet` end to end, after a run on sim://lmc."""

from __future__ import annotations

from pathlib import Path

import pytest

from _cli import run
from _paths import REPO
from _queue_fakes import sample_rows, write_csv

DATA = REPO / "tests" / "data" / "registry"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "m.db"
    monkeypatch.setenv("MARKSTATION_DB", str(path))
    monkeypatch.setenv("MARKSTATION_OPERATOR", "J. Quispe")
    return path


def test_pdf_and_xlsx_reports_after_a_run(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path
) -> None:
    from pypdf import PdfReader

    write_csv(tmp_path / "b.csv", sample_rows(3))
    assert run(capsys, "batch", "import", str(tmp_path / "b.csv"))[0] == 0
    code, _, err = run(capsys, "batch", "run", "--device", "sim://lmc?timing=instant", "--auto")
    assert code == 0, err
    code, out, err = run(
        capsys, "log", "export", "--format", "pdf", "--lang", "es", "-o", str(tmp_path / "r.pdf")
    )
    assert code == 0, err
    reader = PdfReader(tmp_path / "r.pdf")
    text = "\n".join(p.extract_text() for p in reader.pages)
    assert "Informe de la campaña de marcado" in text and "marcado" in text
    # one thumbnail per marked firearm (and the QR code is a drawing, not an image)
    assert sum(len(p.images) for p in reader.pages) == 3
    code, out, err = run(
        capsys, "log", "export", "--format", "xlsx", "-o", str(tmp_path / "r.xlsx")
    )
    assert code == 0 and "wrote" in out, err
    code, out, err = run(capsys, "batch", "validate", str(tmp_path / "r.xlsx"))
    assert code == 0 and "3 items, no problems" in out, err
    code, out, err = run(capsys, "log", "verify")
    assert code == 0, err


def test_import_sheet_option(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    code, out, err = run(capsys, "batch", "import", str(DATA / "xlsx-second-sheet.xlsx"))
    assert code == 1 and "Notas!A1: required column 'mark_code' is missing" in err
    assert "Traceback" not in err
    code, out, err = run(
        capsys, "batch", "import", str(DATA / "xlsx-second-sheet.xlsx"), "--sheet", "Registro"
    )
    assert code == 0 and "imported 1 item" in out, err
