"""Nothing goes to a laser unless every 2D code decodes back exactly from the rendered burn."""

from __future__ import annotations

from pathlib import Path

import pytest

from markstation.cli import main
from markstation.devices.sim.ledger import read_jobs
from markstation.errors import VerifyError
from markstation.profiles import load_layout, load_machine, load_material
from markstation.verify import build_verified_job

CODE = "PE-SUCAMEC-2016-000123"

DOTS_LAYOUT = """
schema = 1
name = "dots-mark"
[code]
pattern = '^[A-Z0-9-]+$'
example = "PE-SUCAMEC-2016-000123"
[safe_area]
x_min = -10.0
y_min = -10.0
x_max = 10.0
y_max = 10.0
[[element]]
kind = "datamatrix"
data = "{code}"
x_mm = 0.0
y_mm = 0.0
module_mm = 0.3
fill = "dots"
"""


@pytest.fixture
def flat_dots(tmp_path: Path) -> Path:
    """blued-steel whose dots do not grow (dot_growth_mm = 0): spot-sized dots, unreadable."""
    text = load_material("blued-steel").path.read_text()
    path = tmp_path / "flat-dots.toml"
    path.write_text(
        text.replace('name = "blued-steel"', 'name = "flat-dots"').replace(
            "dot_growth_mm = 0.25", "dot_growth_mm = 0.0"
        )
    )
    return path


@pytest.fixture
def dots_layout(tmp_path: Path) -> Path:
    path = tmp_path / "dots-mark.toml"
    path.write_text(DOTS_LAYOUT)
    return path


def test_verified_build_accepts_the_shipped_layout() -> None:
    machine = load_machine("lmc-fiber-110")
    job = build_verified_job(
        CODE, layout=load_layout(), material=load_material(machine=machine), machine=machine
    )
    assert job.codes and job.codes[0].payload == CODE


def test_verified_build_refuses_a_code_that_does_not_read_back(
    dots_layout: Path, flat_dots: Path
) -> None:
    # 0.03 mm dots on 0.3 mm modules (a material whose dots do not grow): too sparse to read
    machine = load_machine("lmc-fiber-110")
    with pytest.raises(VerifyError, match="Data Matrix"):
        build_verified_job(
            CODE,
            layout=load_layout(str(dots_layout)),
            material=load_material(str(flat_dots), machine=machine),
            machine=machine,
        )


def test_mark_refuses_before_any_byte(
    dots_layout: Path, flat_dots: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = tmp_path / "ledger.jsonl"
    with pytest.raises(SystemExit) as info:
        main(
            [
                "mark",
                CODE,
                "--device",
                f"sim://lmc?ledger={ledger}",
                "--layout",
                str(dots_layout),
                "--material",
                str(flat_dots),
                "--yes",
            ]
        )
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert read_jobs(ledger) == []
