"""build_job / parse_code / validate_job: layout + code → a validated job, and every refusal."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from markstation.errors import (
    CodeSchemeError,
    ConfigError,
    GlyphError,
    LimitError,
    OutOfFieldError,
    SymbolError,
    TextTooSmallError,
)
from markstation.job.codes import fill_template, parse_code
from markstation.job.ir import Dot, Job, Layer, Polyline
from markstation.job.layout import build_job, validate_job
from markstation.profiles import (
    LayoutProfile,
    load_layout,
    load_machine,
    load_material,
)

CODE = "PE-SUCAMEC-2016-000123"
MACHINE = load_machine("lmc-fiber-110")
MATERIAL = load_material("blued-steel")

SCHEME = (
    r"^(?P<country>[A-Z]{2})-(?P<authority>[A-Z]{2,12})-(?P<year>[0-9]{4})-(?P<number>[0-9]{4,8})$"
)


def write_layout(
    directory: Path,
    elements: str,
    *,
    name: str = "custom",
    safe: tuple[float, float, float, float] = (-25, -10, 25, 10),
    pattern: str = SCHEME,
    example: str = CODE,
    min_char: float = 1.6,
) -> LayoutProfile:
    """A layout file in ``directory`` with the given [[element]] tables, loaded by path."""
    path = directory / f"{name}.toml"
    path.write_text(
        f"schema = 1\nname = '{name}'\nmin_char_height_mm = {min_char}\n"
        f"[code]\npattern = '{pattern}'\nexample = '{example}'\n"
        f"[safe_area]\nx_min = {safe[0]}\ny_min = {safe[1]}\nx_max = {safe[2]}\ny_max = {safe[3]}\n"
        + elements,
        encoding="utf-8",
    )
    return load_layout(str(path))


def text_element(text: str = "{code}", height: float = 2.0, y: float = 0.0, **extra: object) -> str:
    lines = [
        "kind = 'text'",
        f"text = '{text}'",
        "x_mm = 0.0",
        f"y_mm = {y}",
        f"height_mm = {height}",
    ]
    lines += [f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in extra.items()]
    return "[[element]]\n" + "\n".join(lines) + "\n"


def code_element(
    kind: str = "datamatrix", module: float = 0.3, x: float = 0.0, y: float = 0.0, **extra: object
) -> str:
    lines = [
        f"kind = '{kind}'",
        "data = '{code}'",
        f"x_mm = {x}",
        f"y_mm = {y}",
        f"module_mm = {module}",
    ]
    lines += [f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in extra.items()]
    return "[[element]]\n" + "\n".join(lines) + "\n"


def build(code: str, layout: LayoutProfile, **kw: object) -> Job:
    return build_job(
        code, layout=layout, material=kw.pop("material", MATERIAL), machine=MACHINE, **kw
    )  # type: ignore[arg-type]


# --- code schemes -------------------------------------------------------------------------------


def test_parse_code_gives_named_fields_and_the_code() -> None:
    fields = parse_code(CODE, load_layout("secondary-mark"))
    assert fields == {
        "country": "PE",
        "authority": "SUCAMEC",
        "year": "2016",
        "number": "000123",
        "code": CODE,
    }


@pytest.mark.parametrize(
    "bad", ["pe-SUCAMEC-2016-000123", "PE-SUCAMEC-2016-123", CODE + "\n", " " + CODE, "", "PE"]
)
def test_parse_code_refuses_codes_outside_the_scheme(bad: str) -> None:
    with pytest.raises(CodeSchemeError) as info:
        parse_code(bad, load_layout("secondary-mark"))
    message = str(info.value)
    assert "does not match layout 'secondary-mark'" in message
    assert "e.g. PE-SUCAMEC-2016-000123" in message and "(?P<country>" in message
    assert "\n" not in message


@pytest.mark.parametrize("year", ["1899", "2999"])
def test_parse_code_refuses_a_year_outside_the_layouts_window(year: str) -> None:
    """The import's year window holds wherever a code is parsed (mark, preview, frame, batch)."""
    with pytest.raises(CodeSchemeError) as info:
        parse_code(f"PE-SUCAMEC-{year}-000123", load_layout("secondary-mark"))
    message = str(info.value)
    assert f"year {year} is outside 1900…" in message
    assert "layout 'secondary-mark'" in message and "code.year_min / code.year_max" in message


def test_fill_template_refuses_unknown_and_indexed_fields() -> None:
    fields = {"code": "X", "year": "2016"}
    assert fill_template("{year}/{code}", fields, "here") == "2016/X"
    with pytest.raises(
        ConfigError, match=r"here: template '\{serial\}' uses unknown field '\{serial\}'"
    ):
        fill_template("{serial}", fields, "here")
    with pytest.raises(ConfigError, match="only named fields"):
        fill_template("{code.__class__}", fields, "here")
    with pytest.raises(ConfigError, match="malformed"):
        fill_template("{code", fields, "here")


# --- the shipped layouts ---------------------------------------------------------------------------


def test_secondary_mark_builds_text_and_data_matrix() -> None:
    layout = load_layout("secondary-mark")
    job = build(CODE, layout)
    assert [layer.name for layer in job.layers] == ["text", "datamatrix"]
    assert job.layers[0].params == MATERIAL.text
    assert job.layers[1].params == MATERIAL.fill
    (code,) = job.codes
    assert code.symbology == "datamatrix" and code.payload == CODE and not code.inverse
    assert len(code.matrix) == 18 and all(len(row) == 18 for row in code.matrix)
    # the symbol is centred on the element's position, quiet zone of 1 module included
    side = (18 + 2) * 0.3
    assert code.bbox == pytest.approx((-side / 2, -3.5 - side / 2, side / 2, -3.5 + side / 2))
    (text,) = job.texts
    assert text.text == CODE and text.cap_height_mm == 2.0
    meta = job.meta_dict()
    assert meta["mark_code"] == CODE and meta["layout"] == "secondary-mark"
    assert meta["material"] == "blued-steel" and meta["machine"] == "lmc-fiber-110"
    assert meta["layout_sha256"] == layout.sha256
    assert meta["material_sha256"] == MATERIAL.sha256
    assert meta["machine_sha256"] == MACHINE.sha256


def test_build_is_deterministic() -> None:
    layout = load_layout("secondary-mark")
    assert build(CODE, layout).sha256() == build(CODE, layout).sha256()


def test_text_is_centred_on_its_anchor_at_the_cap_height() -> None:
    job = build("PE-2026", load_layout("import-mark"))
    (text,) = job.texts
    x0, y0, x1, y1 = text.bbox
    assert (x0 + x1) / 2 == pytest.approx(0.0, abs=0.3)
    assert y0 == pytest.approx(-1.25, abs=1e-6)  # baseline: no descenders in these characters
    assert y1 - y0 == pytest.approx(2.5, abs=1e-6)


def test_text_only_and_import_mark_have_no_codes() -> None:
    assert build(CODE, load_layout("text-only")).codes == ()
    job = build("PE-2026", load_layout("import-mark"))
    assert job.texts[0].text == "PE 2026"


def test_unoptimised_build_keeps_the_builders_order() -> None:
    layout = load_layout("secondary-mark")
    raw = build(CODE, layout, optimize=False)
    opt = build(CODE, layout)
    assert opt.jump_length() < raw.jump_length()

    def strokes(job: Job) -> list[tuple[tuple[float, float], ...]]:
        return sorted(min(p.points, p.points[::-1]) for _, p in job.primitives())

    assert strokes(raw) == strokes(opt)
    assert [layer.name for layer in raw.layers] == [layer.name for layer in opt.layers]


# --- custom layouts: symbologies, fills, rotation -----------------------------------------------


@pytest.mark.parametrize(
    ("kind", "extra"),
    [
        ("datamatrix", {"fill": "dots"}),
        ("datamatrix", {"fill": "outline-hatch"}),
        ("datamatrix", {"fill": "inverse", "quiet_zone_modules": 2}),
        ("datamatrix", {"size": "20x20"}),
        ("qr", {"ec": "Q", "module": 0.25}),
        ("microqr", {"module": 0.3}),
    ],
)
def test_code_kinds_and_fills(tmp_path: Path, kind: str, extra: dict[str, object]) -> None:
    module = float(extra.pop("module", 0.3))  # type: ignore[arg-type]
    layout = write_layout(tmp_path, code_element(kind, module=module, **extra))
    job = build(CODE, layout)
    (code,) = job.codes
    assert code.symbology == kind and code.payload == CODE
    assert code.inverse == (extra.get("fill") == "inverse")
    prims = [p for _, p in job.primitives()]
    if extra.get("fill") == "dots":
        assert all(isinstance(p, Dot) for p in prims)
        # the dwell grows the modelled dot to the module's width (job.fill.dot_plan)
        from markstation.job.fill import dot_diameter_mm

        dots = [p for p in prims if isinstance(p, Dot)]
        assert all(p.dwell_s >= MATERIAL.dot_dwell_s and p.diameter_mm == module for p in dots)
        assert dot_diameter_mm(
            dots[0].dwell_s,
            MATERIAL.fill.power_pct,
            spot_mm=MACHINE.spot_mm,
            growth_mm=MATERIAL.dot_growth_mm,
        ) == pytest.approx(module)
        assert len(prims) == sum(row.count("1") for row in code.matrix)
    else:
        assert all(isinstance(p, Polyline) for p in prims)
    if "size" in extra:
        assert len(code.matrix) == 20


def test_rotation_turns_the_symbol_about_its_centre(tmp_path: Path) -> None:
    flat = build(CODE, write_layout(tmp_path, code_element(x=5.0, y=-2.0), name="flat"))
    turned = build(
        CODE, write_layout(tmp_path, code_element(x=5.0, y=-2.0, rotation_deg=90.0), name="turned")
    )
    fb, tb = flat.bounds(), turned.bounds()
    assert fb is not None and tb is not None
    assert ((tb[0] + tb[2]) / 2, (tb[1] + tb[3]) / 2) == pytest.approx(
        ((fb[0] + fb[2]) / 2, (fb[1] + fb[3]) / 2), abs=0.05
    )
    # horizontal hatch lines become vertical (a serpentine's first segment is a scan line)
    first = next(p for _, p in turned.primitives() if isinstance(p, Polyline))
    assert abs(first.points[0][0] - first.points[1][0]) < 1e-9
    assert turned.codes[0].bbox == pytest.approx(flat.codes[0].bbox)


def test_two_codes_get_two_layers(tmp_path: Path) -> None:
    layout = write_layout(
        tmp_path, code_element(x=-8.0) + code_element(x=8.0) + code_element("qr", x=0.0, module=0.2)
    )
    job = build(CODE, layout)
    assert [layer.name for layer in job.layers] == ["datamatrix", "datamatrix-2", "qr"]


def test_image_element_becomes_a_raster_layer(tmp_path: Path) -> None:
    from PIL import Image, ImageDraw

    img = Image.new("L", (40, 20), 255)
    ImageDraw.Draw(img).rectangle((5, 5, 34, 14), fill=0)
    img.save(tmp_path / "logo.png")
    layout = write_layout(
        tmp_path,
        "[[element]]\nkind = 'image'\npath = 'logo.png'\nx_mm = 10.0\ny_mm = 2.0\nwidth_mm = 8.0\n"
        "mode = 'threshold'\n",
    )
    job = build(CODE, layout)
    (layer,) = job.layers
    assert layer.name == "raster" and layer.params == MATERIAL.fill
    box = job.bounds()
    assert box is not None
    assert ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2) == pytest.approx((10.0, 2.0), abs=0.1)


# --- refusals ---------------------------------------------------------------------------------------


def test_bad_code_is_refused_before_building(tmp_path: Path) -> None:
    with pytest.raises(CodeSchemeError, match="does not match layout 'secondary-mark'"):
        build("PE-SUCAMEC-16-1", load_layout("secondary-mark"))


def test_unknown_template_field_names_layout_file_and_element(tmp_path: Path) -> None:
    layout = write_layout(tmp_path, text_element() + text_element("{serial}", y=-5.0))
    with pytest.raises(ConfigError) as info:
        build(CODE, layout)
    message = str(info.value)
    assert str(layout.path) in message and "element[1] (text)" in message
    assert "unknown field '{serial}'" in message


def test_missing_glyph_is_refused_by_name(tmp_path: Path) -> None:
    layout = write_layout(tmp_path, text_element("{code} ¥"))
    with pytest.raises(GlyphError) as info:
        build(CODE, layout)
    message = str(info.value)
    assert "element[0] (text)" in message and "'¥' (U+00A5)" in message
    assert "font 'markstation'" in message


def test_hershey_font_lacking_a_letter_is_refused(tmp_path: Path) -> None:
    layout = write_layout(
        tmp_path, text_element("{code}Ñ", font="hershey:futural"), pattern="^[A-Z]+$", example="AB"
    )
    with pytest.raises(GlyphError, match=r"'Ñ' \(U\+00D1\)"):
        build("AB", layout)


def test_unknown_font_names_the_element(tmp_path: Path) -> None:
    layout = write_layout(tmp_path, text_element(font="comic-sans"))
    with pytest.raises(ConfigError, match=r"element\[0\] \(text\): unknown font 'comic-sans'"):
        build(CODE, layout)


def test_text_below_the_legal_minimum_is_refused(tmp_path: Path) -> None:
    layout = write_layout(tmp_path, text_element(height=1.2))
    with pytest.raises(TextTooSmallError) as info:
        build(CODE, layout)
    message = str(info.value)
    assert "element[0] (text)" in message
    assert "1.2 mm" in message and "1.6 mm" in message


def test_layout_minimum_is_the_layouts_own(tmp_path: Path) -> None:
    layout = write_layout(tmp_path, text_element(height=2.0), min_char=2.5)
    with pytest.raises(TextTooSmallError, match=r"below the layout.s legal minimum 2\.5 mm"):
        build(CODE, layout)


def test_mark_leaving_the_safe_area_names_element_and_point(tmp_path: Path) -> None:
    layout = write_layout(tmp_path, text_element() + code_element(x=23.5, y=0.0))
    with pytest.raises(OutOfFieldError) as info:
        build(CODE, layout)
    message = str(info.value)
    assert "element[1] (datamatrix)" in message
    assert "safe area of layout 'custom'" in message
    assert "point (" in message and ") mm is outside" in message


def test_mark_leaving_the_field_is_refused(tmp_path: Path) -> None:
    # a layout whose safe area is bigger than the field: the field is the limit that bites
    layout = write_layout(
        tmp_path, code_element(x=0.0, y=54.0, module=0.5), safe=(-200, -200, 200, 200)
    )
    with pytest.raises(OutOfFieldError, match="outside the 110 × 110 mm field"):
        build(CODE, layout)


def test_material_over_the_machine_limits_names_the_material_key(tmp_path: Path) -> None:
    hot = dataclasses.replace(MATERIAL, fill=dataclasses.replace(MATERIAL.fill, power_pct=95.0))
    with pytest.raises(LimitError) as info:
        build(CODE, load_layout("secondary-mark"), material=hot)
    message = str(info.value)
    assert "material 'blued-steel'" in message and "fill.power_pct = 95 %" in message
    assert "lmc-fiber-110" in message
    fast = dataclasses.replace(MATERIAL, text=dataclasses.replace(MATERIAL.text, speed_mm_s=9000.0))
    with pytest.raises(LimitError, match=r"text\.speed_mm_s = 9000 mm/s"):
        build(CODE, load_layout("secondary-mark"), material=fast)
    slow_freq = dataclasses.replace(
        MATERIAL, fill=dataclasses.replace(MATERIAL.fill, frequency_khz=5.0)
    )
    with pytest.raises(LimitError, match=r"fill\.frequency_khz = 5 kHz"):
        build(CODE, load_layout("secondary-mark"), material=slow_freq)
    mopa = dataclasses.replace(
        MATERIAL, fill=dataclasses.replace(MATERIAL.fill, pulse_width_ns=200.0)
    )
    with pytest.raises(LimitError, match="not a MOPA source"):
        build(CODE, load_layout("secondary-mark"), material=mopa)


def test_text_only_layout_ignores_fill_parameters(tmp_path: Path) -> None:
    hot = dataclasses.replace(MATERIAL, fill=dataclasses.replace(MATERIAL.fill, power_pct=95.0))
    assert build(CODE, load_layout("text-only"), material=hot).codes == ()


def test_code_too_long_for_a_fixed_size_is_a_symbol_error(tmp_path: Path) -> None:
    layout = write_layout(tmp_path, code_element(size="10x10"))
    with pytest.raises(SymbolError):
        build(CODE, layout)


def test_missing_image_file_is_refused(tmp_path: Path) -> None:
    layout = write_layout(
        tmp_path,
        "[[element]]\nkind = 'image'\npath = 'nope.png'\nx_mm = 0.0\ny_mm = 0.0\nwidth_mm = 5.0\n",
    )
    with pytest.raises(
        ConfigError, match=r"element\[0\] \(image\): image file .*nope\.png does not exist"
    ):
        build(CODE, layout)


# --- validate_job on its own --------------------------------------------------------------------


def test_validate_job_refuses_out_of_field_limits_and_small_text() -> None:
    layout = load_layout("secondary-mark")
    good = build(CODE, layout)
    validate_job(good, MACHINE, layout)
    far = good.with_layers([Layer("text", MATERIAL.text, (Polyline(((0.0, 0.0), (30.0, 0.0))),))])
    with pytest.raises(OutOfFieldError, match=r"layer 'text': point \(30.000, 0.000\) mm"):
        validate_job(far, MACHINE, layout)
    nan = good.with_layers([Layer("text", MATERIAL.text, (Dot(math.nan, 0.0, 0.001),))])
    with pytest.raises(OutOfFieldError, match="not a finite coordinate"):
        validate_job(nan, MACHINE, layout)
    hot = good.with_layers(
        [
            Layer(
                "fill",
                dataclasses.replace(MATERIAL.fill, power_pct=99.0),
                good.layers[1].primitives,
            )
        ]
    )
    with pytest.raises(LimitError, match=r"layer 'fill'.power_pct = 99 %"):
        validate_job(hot, MACHINE, layout)
    small = dataclasses.replace(
        good, texts=(dataclasses.replace(good.texts[0], cap_height_mm=1.0),)
    )
    with pytest.raises(TextTooSmallError, match=r"height 1 mm is below the legal minimum 1\.6 mm"):
        validate_job(small, MACHINE, layout)
