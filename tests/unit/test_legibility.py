"""Legibility (issue 14, scope 1): OCR reads our lettering at 1.6 mm and 2.5 mm cap height.

The harness is ``benchmarks/bench_legibility.py``; its docstring gives the reader model (visible
line width, picture scale, blur, pixel phase) with its sources, and the full figures (200 codes per
layout). Here it runs on a small fixed sample (the first 20 codes per layout of the harness's own
seed-1 sample, 60 lines per height, in both fonts): our font reads never worse than Hershey Simplex,
and at least the level measured when the glyphs were last changed. The issue's 98 % of lines is
not reached on the nominal model (96.8 % / 95.7 % over 600 lines): that test is an expected failure.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from types import ModuleType
from typing import Any

import pytest

from _paths import REPO
from markstation.profiles import load_machine


def _harness() -> ModuleType:
    path = REPO / "benchmarks" / "bench_legibility.py"
    spec = importlib.util.spec_from_file_location("bench_legibility", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


bench = _harness()
TESSERACT = bench.tesseract()
CODES, SEED = 20, 1
#: the issue's target, share of lines read exactly
TARGET = 0.98
#: measured on this sample with the glyphs and letter spacing of issue 14 (91.7 % / 93.3 % of lines
#: and 99.59 % / 99.69 % of characters at 1.6 / 2.5 mm): a glyph change that reads worse fails here
LINES_FLOOR, CHARS_FLOOR = 0.90, 0.99

needs_tesseract = pytest.mark.skipif(
    TESSERACT is None, reason="tesseract is not installed (apt-get install tesseract-ocr)"
)


@functools.cache
def _read(font: str, cap_mm: float) -> Any:
    spot = load_machine(bench.MACHINE).spot_mm
    return bench.read_lines(bench.sample(CODES, SEED), font, cap_mm, spot_mm=spot, exe=TESSERACT)


# the OCR tests share one reading of the sample (about 5 s: 240 lines through tesseract): slow


@needs_tesseract
@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("cap_mm", bench.HEIGHTS_MM)
def test_our_lettering_never_reads_worse_than_hershey_simplex(cap_mm: float) -> None:
    ours, hershey = _read("markstation", cap_mm), _read("hershey:futural", cap_mm)
    assert ours.rate() >= hershey.rate(), (ours.wrong, hershey.wrong)
    assert ours.char_rate() >= hershey.char_rate()


@needs_tesseract
@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("cap_mm", bench.HEIGHTS_MM)
def test_our_lettering_reads_at_least_as_well_as_when_last_measured(cap_mm: float) -> None:
    ours = _read("markstation", cap_mm)
    assert ours.rate() >= LINES_FLOOR, f"{100 * ours.rate():.1f} % of lines; {ours.wrong}"
    assert ours.char_rate() >= CHARS_FLOOR, f"{100 * ours.char_rate():.2f} % of characters"


@needs_tesseract
@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.xfail(
    reason="issue 14's 98 % of lines is not reached on the nominal reader model (96.8 % / 95.7 % "
    "over 600 lines; letters I/T/O/Q; benchmarks/bench_legibility.py); strict: reaching it "
    "fails here until the marker is removed",
    strict=True,
)
@pytest.mark.parametrize("cap_mm", bench.HEIGHTS_MM)
def test_our_lettering_reaches_the_issue_target(cap_mm: float) -> None:
    assert _read("markstation", cap_mm).rate() >= TARGET


def test_the_sample_covers_every_layout_with_its_own_characters() -> None:
    lines = bench.sample(3, SEED)
    assert [line.layout for line in lines[:3]] == list(bench.LAYOUTS)
    for line in lines:
        code = line.text.replace(" ", "-")  # import-mark lays its code out as "PE 2026"
        assert bench.load_layout(line.layout).code_regex().match(code), line
        assert set(line.text) - {" "} <= set(line.allowed), line
    import_mark = [line.text for line in lines if line.layout == "import-mark"]
    assert all(len(text.split(" ")) == 2 for text in import_mark)  # the layout's own template
