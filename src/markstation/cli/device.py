"""``markstation devices | info | frame | mark``: one device at a time, any URL.

Thin over the library: ``open_device`` gives the driver, ``build_job`` the job. Every command works
the same on ``usb://lmc``, ``sim://lmc``, ``sim://grbl`` and serial GRBL URLs.

``mark`` and ``frame`` run under the one :class:`~markstation.devices.abort.AbortGuard`: Ctrl-C or
the e-stop input turns into ``driver.abort()`` (emission off), then a one-line message and exit
status 2. The progress bar is :mod:`markstation.cli.progress`.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from markstation.cli.options import device_option, machine_option, target_options
from markstation.cli.translate import Command
from markstation.errors import Aborted, ConfigError
from markstation.i18n import _

if TYPE_CHECKING:
    from markstation.devices.base import DeviceInfo, Inputs
    from markstation.job.ir import Job
    from markstation.profiles import MachineProfile


# --- helpers the commands share (also called by tests) ----------------------------------------


def resolve_machine(url: str, machine: str | None) -> MachineProfile:
    """The machine profile for ``url``: ``--machine`` if given, else the protocol's default."""
    from markstation.devices.registry import protocol_of
    from markstation.devices.url import DeviceURL
    from markstation.profiles import default_machine_for, load_machine

    if machine is not None:
        return load_machine(machine)
    return default_machine_for(protocol_of(DeviceURL.parse(url)))


def build(code: str, layout: str, material: str | None, machine: MachineProfile) -> Job:
    """The job for ``code``: validated against layout, material and machine; 2D codes decoded back."""
    from markstation.profiles import load_layout, load_material
    from markstation.verify import build_verified_job

    return build_verified_job(
        code,
        layout=load_layout(layout),
        material=load_material(material, machine=machine),
        machine=machine,
    )


def prepare(
    code: str, device: str, layout: str, material: str | None, machine: str | None
) -> tuple[MachineProfile, Job]:
    """What ``frame`` and ``mark`` both start from: the machine for ``device`` and CODE's job."""
    profile = resolve_machine(device, machine)
    return profile, build(code, layout, material, profile)


def describe_info(info: DeviceInfo) -> list[tuple[str, str]]:
    rows = [
        ("url", info.url),
        ("protocol", info.protocol),
        ("model", info.model),
        ("firmware", info.firmware or "-"),
        ("serial", info.serial or "-"),
        ("simulated", _("yes") if info.simulated else _("no")),
    ]
    rows.extend((k, v) for k, v in sorted(info.extra.items()))
    return rows


def describe_inputs(inputs: Inputs) -> list[tuple[str, str]]:
    interlock = (
        _("not wired")
        if inputs.interlock_closed is None
        else _("closed")
        if inputs.interlock_closed
        else _("OPEN")
    )
    return [
        (_("inputs"), f"0x{inputs.raw:04X}"),
        (_("pedal"), _("pressed") if inputs.pedal_pressed else _("released")),
        (_("interlock"), interlock),
    ]


def _echo_rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key:<{width}}  {value}")


def count_stop(count: int) -> Callable[[], bool]:
    """A ``stop`` for ``frame()`` that ends after ``count`` traces (consulted once per trace)."""
    calls = 0

    def stop() -> bool:
        nonlocal calls
        calls += 1
        return calls >= count

    return stop


def enter_stop() -> Callable[[], bool]:
    """A ``stop`` for ``frame()`` that turns True once Enter is pressed (or stdin closes)."""
    pressed = threading.Event()

    def wait() -> None:
        try:
            sys.stdin.readline()
        finally:
            pressed.set()

    threading.Thread(target=wait, name="markstation-enter", daemon=True).start()
    return pressed.is_set


# --- commands ----------------------------------------------------------------------------------


@click.command(cls=Command)
def devices() -> None:
    """List markers found on USB and serial ports, and the simulators.

    Real LMC boards need access rights (Linux: drivers/70-markstation.rules; Windows: WinUSB, see
    drivers/WINDOWS.md); a board that cannot be read is still listed.
    """
    from markstation.devices.registry import discover

    found = discover()
    header = ("URL", _("MODEL"), _("FIRMWARE"), _("SERIAL"), _("SIMULATED"))
    rows = [
        (d.url, d.model, d.firmware or "-", d.serial or "-", _("yes") if d.simulated else _("no"))
        for d in found
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if not any(not d.simulated for d in found):
        click.echo(
            _("(no real marker found; the simulators above work without hardware)"), err=True
        )


@click.command(cls=Command)
@device_option()
@machine_option
def info(device: str, machine: str | None) -> None:
    """Show a device's model, firmware, serial and its inputs (pedal, interlock)."""
    from markstation.devices.registry import open_device

    profile = resolve_machine(device, machine)
    with open_device(device, profile) as driver:
        rows = describe_info(driver.info())
        rows.append(("machine", profile.name))
        rows.extend(describe_inputs(driver.read_inputs()))
    _echo_rows(rows)


@click.command(cls=Command)
@device_option()
@machine_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask whether the machine was checked.")
def unlock(device: str, machine: str | None, yes: bool) -> None:
    """Clear a GRBL alarm lock ($X) after an alarm or an abort.

    Only ever on the operator's request: after an alarm the position may be wrong, so check the
    machine (and re-home if it has homing) before unlocking. LMC boards have no alarm lock.
    """
    from markstation.devices.registry import open_device

    profile = resolve_machine(device, machine)
    if not yes:
        click.confirm(_("Machine checked and safe to unlock?"), abort=True)
    with open_device(device, profile) as driver:
        clear = getattr(driver, "unlock", None)
        if clear is None:
            raise ConfigError(
                _("device '{device}': a {protocol} device has no alarm lock").format(
                    device=device, protocol=profile.protocol
                )
            )
        click.echo(_("unlocked: {reply}").format(reply=clear()))


@click.command(cls=Command)
@target_options
@click.option(
    "--count",
    "-n",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Trace N times and stop, without waiting for Enter (for scripts and tests).",
)
def frame(
    code: str,
    device: str,
    layout: str,
    material: str | None,
    machine: str | None,
    count: int | None,
) -> None:
    """Trace the mark of CODE with the red pointer (the beam never fires) until Enter."""
    from markstation.devices.abort import AbortGuard
    from markstation.devices.registry import open_device

    profile, job = prepare(code, device, layout, material, machine)
    with open_device(device, profile) as driver, AbortGuard(driver) as guard:
        if count is None:
            click.echo(_("tracing with the red pointer; press Enter to stop"), err=True)
            stop = enter_stop()
        else:
            stop = count_stop(count)
        try:
            traces = driver.frame(job, lambda: guard.triggered or stop())
        except Aborted:
            if guard.reason is None:
                raise
    if guard.reason is not None:
        raise Aborted(
            _("interrupted ({reason}): framing stopped").format(reason=guard.reason),
            may_have_emitted=False,
        )
    click.echo(_("framed {code}: {count} trace(s)").format(code=code, count=traces))


@click.command(cls=Command)
@target_options
@click.option("--yes", "-y", is_flag=True, help="Mark without asking for confirmation.")
def mark(
    code: str, device: str, layout: str, material: str | None, machine: str | None, yes: bool
) -> None:
    """Mark CODE once: build the job, confirm, mark with a progress bar, report the device time.

    Ctrl-C (or the e-stop input) aborts at once (emission off) and exits with status 2.
    """
    from markstation.cli.progress import run_with_progress
    from markstation.devices.estimate import driver_estimate
    from markstation.devices.registry import open_device

    profile, job = prepare(code, device, layout, material, machine)
    bounds = job.bounds()
    used = job.meta_dict()
    rows = [
        (_("code"), code),
        (_("layout"), used.get("layout", layout)),
        (_("material"), used.get("material", material or "-")),
        (_("machine"), profile.name),
    ]
    if bounds is not None:
        x0, y0, x1, y1 = bounds
        rows.append(
            (
                _("size"),
                f"{x1 - x0:.2f} × {y1 - y0:.2f} mm (x {x0:.2f}..{x1:.2f}, y {y0:.2f}..{y1:.2f})",
            )
        )
    with open_device(device, profile) as driver:
        # with the time-only settings a GRBL controller reported on connect ($110/$120/$11 ...)
        estimate = driver_estimate(job, driver).seconds
        rows.append((_("estimate"), f"{estimate:.1f} s"))
        ident = driver.info()
        rows.append(
            (
                _("device"),
                _("{model} fw {firmware} serial {serial}").format(
                    model=ident.model, firmware=ident.firmware or "-", serial=ident.serial or "-"
                )
                + (" " + _("(simulated)") if ident.simulated else ""),
            )
        )
        _echo_rows(rows)
        if not yes and not click.confirm(
            _("Mark {code} now?").format(code=code), default=False, err=True
        ):
            raise click.ClickException(_("not confirmed; nothing was marked"))
        result = run_with_progress(driver, job, show_bar=sys.stderr.isatty())
    device_s = (
        f"{result.device_mark_time_s:.2f} s" if result.device_mark_time_s is not None else "-"
    )
    click.echo(
        _("marked {code}: device mark time {device} (wall {wall:.2f} s)").format(
            code=code, device=device_s, wall=result.elapsed_s
        )
    )
