"""The profile loader: shipped profiles load; every refusal names the file and the key at fault."""

from __future__ import annotations

from pathlib import Path

import pytest

from _paths import REPO
from markstation import profiles as prof
from markstation.cli import main
from markstation.errors import ConfigError, ProfileNotFound

SHIPPED = REPO / "profiles"


def _copy(tmp_path: Path, kind: str, name: str, edit: tuple[str, str] | None = None) -> Path:
    """Copy a shipped profile into tmp_path/<kind>/, optionally replacing one text fragment."""
    text = (SHIPPED / kind / f"{name}.toml").read_text(encoding="utf-8")
    if edit is not None:
        old, new = edit
        assert old in text, f"fixture fragment {old!r} not in {name}.toml"
        text = text.replace(old, new, 1)
    out = tmp_path / kind / f"{name}.toml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out


def _load(kind: str, path: Path) -> object:
    return {
        "machines": prof.load_machine,
        "materials": prof.load_material,
        "layouts": prof.load_layout,
    }[kind](str(path))


# --- the shipped set ----------------------------------------------------------------------------


def test_every_shipped_profile_loads() -> None:
    results = prof.check_all()
    names = {(kind, name) for kind, name, _ in results}
    for expected in [
        ("machines", "lmc-fiber-110"),
        ("machines", "grbl-marker"),
        ("materials", "blued-steel"),
        ("materials", "stainless"),
        ("materials", "anodised-aluminium"),
        ("materials", "polymer-frame-tag"),
        ("layouts", "secondary-mark"),
        ("layouts", "import-mark"),
        ("layouts", "text-only"),
    ]:
        assert expected in names
    assert [r for r in results if r[2] is not None] == []


def test_shipped_values_are_parsed_in_units() -> None:
    mat = prof.load_material("blued-steel")
    assert mat.text.speed_mm_s == 300.0 and mat.text.passes == 4
    assert mat.dot_dwell_s == pytest.approx(0.8e-3)
    assert mat.fill.laser_off_delay_s == pytest.approx(120e-6)
    lay = prof.load_layout("secondary-mark")
    assert lay.min_char_height_mm == 1.6
    assert lay.code_regex().fullmatch(lay.code_example)
    mach = prof.load_machine("lmc-fiber-110")
    assert mach.field.x_max == 55.0 and mach.spot_mm == 0.03
    assert len(mach.sha256) == 64


def test_user_profiles_shadow_shipped_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _copy(tmp_path, "layouts", "text-only", ("height_mm = 1.8", "height_mm = 2.4"))
    monkeypatch.setenv("MARKSTATION_PROFILES", str(tmp_path))
    assert prof.available("layouts")["text-only"] == path
    assert prof.load_layout("text-only").elements[0]["height_mm"] == 2.4


def test_unknown_profile_name_lists_known_ones() -> None:
    with pytest.raises(ProfileNotFound, match=r"unknown layout 'nope' \(known: .*secondary-mark"):
        prof.load_layout("nope")


# --- refusals, each naming the file and the key ---------------------------------------------------

REFUSALS = [
    # (kind, profile, (old, new), message fragments)
    ("machines", "lmc-fiber-110", ("spot_mm = 0.03", "spot_mm = 0.03\nbeam_colour = 1"),
     ["unknown key 'beam.beam_colour'"]),
    ("machines", "lmc-fiber-110", ("spot_mm = 0.03", ""), ["missing key 'beam.spot_mm'"]),
    ("machines", "lmc-fiber-110", ("spot_mm = 0.03", 'spot_mm = "thin"'),
     ["'beam.spot_mm' must be a number"]),
    ("machines", "lmc-fiber-110", ("power_pct_max = 90.0", "power_pct_max = 150.0"),
     ["'limits.power_pct_max' = 150.0 is above the maximum 100"]),
    ("machines", "lmc-fiber-110", ("schema = 1", "schema = 2"),
     ["schema = 2 is newer than this markstation understands"]),
    ("machines", "lmc-fiber-110", ('protocol = "lmc"', 'protocol = "ezcad"'),
     ["'protocol' = 'ezcad' is not one of"]),
    ("machines", "lmc-fiber-110", ("x_max = 50.0", "x_max = 80.0"),
     ["'safe_area' reaches outside the 110 × 110 mm field"]),
    ("materials", "blued-steel", ("passes = 4", "passes = 0"),
     ["'text.passes' = 0 is below the minimum 1"]),
    ("materials", "blued-steel", ("passes = 4", "passes = 2.5"), ["'text.passes' must be an integer"]),
    ("materials", "blued-steel", ("hatch_spacing_mm = 0.03", "hatch_spacing = 0.03"),
     ["unknown key 'fill.hatch_spacing'"]),
    ("layouts", "secondary-mark", ("pattern = '^", "pattern = '(^"),
     ["'code.pattern' is not a valid regular expression"]),
    ("layouts", "secondary-mark", ('example = "PE-SUCAMEC-2016-000123"', 'example = "PE-1"'),
     ["'code.example' does not match 'code.pattern'"]),
    ("layouts", "secondary-mark", ('kind = "datamatrix"', 'kind = "barcode"'),
     ["'element[1].kind' = 'barcode' is not one of"]),
    ("layouts", "secondary-mark", ("module_mm = 0.3", "module_mm = 0.3\nmodule = 1"),
     ["unknown key 'element[1].module'"]),
    ("layouts", "secondary-mark", ('size = "auto"', 'size = "12x26x"'),
     ["'element[1].size' must be 'auto' or like '18x18'"]),
    ("layouts", "secondary-mark", ('fill = "hatch"', 'fill = "crosshatch"'),
     ["'element[1].fill' = 'crosshatch' is not one of"]),
    ("layouts", "secondary-mark", ("height_mm = 2.0", "height_mm = -2.0"),
     ["'element[0].height_mm' = -2.0 is below the minimum"]),
    ("layouts", "secondary-mark", ("x_min = -25.0", "x_min = 25.0"), ["'safe_area' is empty"]),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "name", "edit", "fragments"), REFUSALS)
def test_refusal_names_file_and_key(
    tmp_path: Path, kind: str, name: str, edit: tuple[str, str], fragments: list[str]
) -> None:
    path = _copy(tmp_path, kind, name, edit)
    with pytest.raises(ConfigError) as info:
        _load(kind, path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    for fragment in fragments:
        assert fragment in message
    assert "\n" not in message


def test_name_must_match_file_name(tmp_path: Path) -> None:
    path = _copy(tmp_path, "materials", "stainless", ('name = "stainless"', 'name = "steel"'))
    with pytest.raises(ConfigError, match=r"'name' = 'steel' must match the file name 'stainless'"):
        prof.load_material(str(path))


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "layouts" / "broken.toml"
    path.parent.mkdir()
    path.write_text("schema = 1\nname = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.toml: not valid TOML"):
        prof.load_layout(str(path))


def test_layout_without_elements_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "layouts" / "empty.toml"
    path.parent.mkdir()
    path.write_text(
        "schema = 1\nname = 'empty'\nelement = []\n[code]\npattern = 'A'\nexample = 'A'\n"
        "[safe_area]\nx_min = -1.0\ny_min = -1.0\nx_max = 1.0\ny_max = 1.0\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"empty\.toml: a layout needs at least one"):
        prof.load_layout(str(path))


def test_missing_profile_file_by_path(tmp_path: Path) -> None:
    with pytest.raises(ProfileNotFound, match="no such layout profile file"):
        prof.load_layout(str(tmp_path / "nowhere.toml"))


def test_edited_profile_is_reloaded(tmp_path: Path) -> None:
    path = _copy(tmp_path, "materials", "stainless")
    first = prof.load_material(str(path))
    text = path.read_text(encoding="utf-8").replace("schema = 1", "schema = 1\n", 1)
    path.write_text(text, encoding="utf-8")
    import os

    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    second = prof.load_material(str(path))
    assert first.sha256 != second.sha256


# --- the CLI ----------------------------------------------------------------------------------------


def test_profiles_check_passes_on_shipped(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["profiles", "check"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "ok    layout    secondary-mark" in out
    assert "ok    machine   lmc-fiber-110" in out


def test_profiles_check_fails_on_a_bad_user_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _copy(tmp_path, "materials", "stainless", ("passes = 5", "pases = 5"))
    monkeypatch.setenv("MARKSTATION_PROFILES", str(tmp_path))
    with pytest.raises(SystemExit) as info:
        main(["profiles", "check"])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert f"FAIL  {path}: unknown key 'text.pases'" in err
    assert err.rstrip().splitlines()[-1] == "error: 1 profile(s) invalid"


def test_profiles_list_and_show(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["profiles", "list"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "layouts:" in out and "secondary-mark" in out
    with pytest.raises(SystemExit) as info:
        main(["profiles", "show", "import-mark"])
    assert info.value.code == 0
    assert "layout 'import-mark'" in capsys.readouterr().out
