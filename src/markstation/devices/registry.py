"""One registry from URL to driver class, imported lazily so the CLI starts fast.

A driver class registered here provides::

    @classmethod
    def from_url(cls, url: DeviceURL, machine: MachineProfile) -> Driver

and validates its own URL options with ``url.check_keys(...)``. A discovery function lists devices
that are attached (or simulated) for ``markstation devices``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from markstation.devices.base import DeviceInfo, Driver
from markstation.devices.url import DeviceURL
from markstation.errors import ConfigError
from markstation.profiles import MachineProfile, default_machine_for, load_machine

#: (scheme, protocol) -> "module:Class"
DRIVERS: dict[tuple[str, str], str] = {
    ("usb", "lmc"): "markstation.devices.lmc.driver:LmcDriver",
    ("sim", "lmc"): "markstation.devices.lmc.driver:LmcDriver",
    ("serial", "grbl"): "markstation.devices.grbl.driver:GrblDriver",
    ("sim", "grbl"): "markstation.devices.grbl.driver:GrblDriver",
}

#: "module:function" returning list[DeviceInfo] of what is attached; each must not raise when
#: the backend (libusb, serial ports) is missing, only return nothing
DISCOVERY: tuple[str, ...] = (
    "markstation.devices.lmc.driver:discover",
    "markstation.devices.grbl.driver:discover",
)


def protocol_of(url: DeviceURL) -> str:
    if url.scheme in ("usb", "sim"):
        return url.host
    if url.scheme == "serial":
        return url.options.get("protocol", "grbl")
    raise ConfigError(f"device URL '{url.raw}': unknown scheme '{url.scheme}' (usb, sim or serial)")


def _load(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def open_device(url: str | DeviceURL, machine: MachineProfile | str | None = None) -> Driver:
    """Build the driver for ``url`` (not yet opened: use it as a context manager).

    ``machine`` defaults to the default machine of the URL's protocol.
    """
    parsed = url if isinstance(url, DeviceURL) else DeviceURL.parse(url)
    protocol = protocol_of(parsed)
    target = DRIVERS.get((parsed.scheme, protocol))
    if target is None:
        known = ", ".join(
            f"{s}://{p}" if s != "serial" else f"serial://PORT?protocol={p}" for s, p in DRIVERS
        )
        raise ConfigError(f"device URL '{parsed.raw}': no driver for it (known: {known})")
    if machine is None:
        profile = default_machine_for(protocol)
    elif isinstance(machine, str):
        profile = load_machine(machine)
    else:
        profile = machine
    if profile.protocol != protocol:
        raise ConfigError(
            f"machine '{profile.name}' speaks {profile.protocol}, but device URL '{parsed.raw}' is {protocol}"
        )
    cls = _load(target)
    driver: Driver = cls.from_url(parsed, profile)
    return driver


def discover() -> list[DeviceInfo]:
    found: list[DeviceInfo] = []
    for target in DISCOVERY:
        try:
            fn: Callable[[], list[DeviceInfo]] = _load(target)
        except (ImportError, AttributeError):
            continue
        found.extend(fn())
    return found
