"""The ``markstation`` facade: every public name resolves, the import stays cheap, a board runs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import markstation
import markstation.errors

#: modules ``import markstation`` must not load: the CLI and library users pay for them on use only
HEAVY = ("numpy", "PIL", "zxingcpp", "usb", "serial", "qrcode", "HersheyFonts", "click")


@pytest.mark.parametrize("name", markstation.__all__)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(markstation, name) is not None
    assert name in dir(markstation)


def test_facade_names_are_the_library_objects() -> None:
    from markstation.devices.registry import discover, open_device
    from markstation.job.ir import Job
    from markstation.profiles import available
    from markstation.verify import build_verified_job

    assert markstation.open_device is open_device
    assert markstation.list_devices is discover
    assert markstation.list_profiles is available
    assert markstation.build_verified_job is build_verified_job
    assert markstation.Job is Job
    assert markstation.VerifyError is markstation.errors.VerifyError


def test_every_error_class_is_public() -> None:
    classes = {
        name
        for name, value in vars(markstation.errors).items()
        if isinstance(value, type) and issubclass(value, markstation.errors.MarkstationError)
    }
    assert classes <= set(markstation.__all__)


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = markstation.no_such_thing  # type: ignore[attr-defined]


def test_version_is_a_literal() -> None:
    assert markstation.__version__ == "0.1.0"


def test_import_is_cheap() -> None:
    code = (
        "import json, sys, markstation, markstation.preview; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == []


def test_drive_a_simulated_board_from_the_facade_alone() -> None:
    ms = markstation
    machine = ms.load_machine("lmc-fiber-110")
    job = ms.build_verified_job(
        "PE-SUCAMEC-2016-000123",
        layout=ms.load_layout("secondary-mark"),
        material=ms.load_material(machine=machine),
        machine=machine,
    )
    assert isinstance(job, ms.Job)
    with ms.open_device("sim://lmc", machine) as device:
        result = device.run(job)
    assert result.complete
