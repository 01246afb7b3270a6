"""``markstation preview``: output, figures, decode check, and one-line refusals with exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from markstation.cli import main

CODE = "PE-SUCAMEC-2016-000123"
SCHEME = (
    r"^(?P<country>[A-Z]{2})-(?P<authority>[A-Z]{2,12})-(?P<year>[0-9]{4})-(?P<number>[0-9]{4,8})$"
)


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(args)
    out, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 1), out, err


def custom_layout(tmp_path: Path, element: str, name: str = "custom") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f"schema = 1\nname = '{name}'\n[code]\npattern = '{SCHEME}'\nexample = '{CODE}'\n"
        "[safe_area]\nx_min = -25.0\ny_min = -10.0\nx_max = 25.0\ny_max = 10.0\n"
        f"[[element]]\n{element}",
        encoding="utf-8",
    )
    return path


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 1
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


def test_preview_refuses_a_year_outside_the_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = run(
        ["preview", "PE-SUCAMEC-2999-000123", "-o", str(tmp_path / "m.png")], capsys
    )
    assert_one_line_error(code, err, "'PE-SUCAMEC-2999-000123'", "year 2999 is outside 1900…")
    assert not (tmp_path / "m.png").exists()


@pytest.mark.timeout(120)
def test_png_with_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "mark.png"
    code, out, err = run(
        ["preview", CODE, "--layout", "secondary-mark", "--material", "blued-steel",
         "-o", str(out_file), "--verify"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    with Image.open(out_file) as img:
        assert img.format == "PNG"
    assert f"wrote {out_file} (" in out
    assert "size        " in out and " x " in out
    assert "strokes     " in out
    assert "jumps       " in out and "% saved by path order" in out
    assert "est. time   " in out
    assert f"Data Matrix decodes: {CODE} ✓" in out


def test_jump_saving_is_reported_before_and_after(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["preview", CODE, "-o", str(tmp_path / "m.svg")], capsys)
    assert code == 0
    line = next(row for row in out.splitlines() if row.startswith("jumps"))
    before, after = (float(v) for v in line.split()[1:5:3])
    assert after < before
    saved = float(line.split("(")[1].split(" %")[0])
    assert saved == pytest.approx(100 * (before - after) / before, abs=0.1)


def test_svg_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "mark.svg"
    code, out, _ = run(["preview", CODE, "-o", str(out_file)], capsys)
    assert code == 0
    text = out_file.read_text(encoding="utf-8")
    assert text.startswith("<?xml") and 'stroke-width="0.03"' in text
    assert "(SVG, mm units)" in out


def test_default_output_is_named_after_the_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, _ = run(["preview", "PE-2026", "--layout", "import-mark", "--px-per-mm", "8"], capsys)
    assert code == 0
    with Image.open(tmp_path / "PE-2026.png") as img:
        assert img.width >= 900


def test_other_machine_and_material(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        ["preview", CODE, "--layout", "text-only", "--material", "stainless", "--machine",
         "lmc-fiber-110", "-o", str(tmp_path / "t.png"), "--verify"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "decodes" not in out  # no 2D code in a text-only layout


# --- refusals: exit 1, one line -----------------------------------------------------------------


def test_bad_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["preview", "PE-SUCAMEC-16-123", "-o", str(tmp_path / "x.png")], capsys)
    assert_one_line_error(code, err, "does not match layout 'secondary-mark'", "e.g. " + CODE)
    assert not (tmp_path / "x.png").exists()


def test_missing_glyph(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layout = custom_layout(
        tmp_path, "kind = 'text'\ntext = '{code} €'\nx_mm = 0.0\ny_mm = 0.0\nheight_mm = 2.0\n"
    )
    code, _, err = run(["preview", CODE, "-l", str(layout), "-o", str(tmp_path / "x.png")], capsys)
    assert_one_line_error(code, err, "element[0] (text)", "no glyph for '€' (U+20AC)")


def test_text_too_small(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layout = custom_layout(
        tmp_path, "kind = 'text'\ntext = '{code}'\nx_mm = 0.0\ny_mm = 0.0\nheight_mm = 1.0\n"
    )
    code, _, err = run(["preview", CODE, "-l", str(layout), "-o", str(tmp_path / "x.png")], capsys)
    assert_one_line_error(code, err, "text height 1 mm is below", "minimum 1.6 mm")


def test_out_of_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layout = custom_layout(
        tmp_path, "kind = 'text'\ntext = '{code}'\nx_mm = 20.0\ny_mm = 0.0\nheight_mm = 2.0\n"
    )
    code, _, err = run(["preview", CODE, "-l", str(layout), "-o", str(tmp_path / "x.png")], capsys)
    assert_one_line_error(code, err, "element[0] (text)", "mm is outside the safe area")


def test_unknown_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["preview", CODE, "-l", "no-such-layout"], capsys)
    assert_one_line_error(code, err, "unknown layout 'no-such-layout'")


def test_unknown_machine_and_material(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["preview", CODE, "--machine", "laser-9000"], capsys)
    assert_one_line_error(code, err, "unknown machine 'laser-9000'")
    code, _, err = run(["preview", CODE, "--material", "unobtainium"], capsys)
    assert_one_line_error(code, err, "unknown material 'unobtainium'")


@pytest.mark.parametrize("name", ["mark.jpg", "mark", "mark.PNG.txt"])
def test_bad_output_suffix(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    code, _, err = run(["preview", CODE, "-o", str(tmp_path / name)], capsys)
    assert_one_line_error(code, err, f"output file {tmp_path / name}", "use .png or .svg")


def test_bad_px_per_mm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["preview", CODE, "--px-per-mm", "0", "-o", str(tmp_path / "x.png")], capsys)
    assert code == 1 and "--px-per-mm" in err


def test_unwritable_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["preview", CODE, "-o", str(tmp_path / "missing" / "x.png")], capsys)
    assert_one_line_error(code, err, "cannot write the preview")


def test_verify_failure_writes_the_picture_then_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # dots that do not grow (dot_growth_mm = 0): the 0.03 mm spot in 0.3 mm modules is an honest
    # preview of an unreadable code
    layout = custom_layout(
        tmp_path,
        "kind = 'datamatrix'\ndata = '{code}'\nx_mm = 0.0\ny_mm = 0.0\nmodule_mm = 0.3\n"
        "fill = 'dots'\n",
    )
    from markstation.profiles import load_material

    flat = tmp_path / "flat-dots.toml"
    flat.write_text(
        load_material("blued-steel")
        .path.read_text()
        .replace('name = "blued-steel"', 'name = "flat-dots"')
        .replace("dot_growth_mm = 0.25", "dot_growth_mm = 0.0")
    )
    out_file = tmp_path / "dots.png"
    code, out, err = run(
        [
            "preview",
            CODE,
            "-l",
            str(layout),
            "--material",
            str(flat),
            "-o",
            str(out_file),
            "--verify",
        ],
        capsys,
    )
    assert_one_line_error(code, err, "Data Matrix does not decode", "nothing decoded")
    assert out_file.exists() and "wrote" in out
