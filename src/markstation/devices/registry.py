"""One registry from URL to driver class, imported lazily so the CLI starts fast.

A driver class registered here provides::

    @classmethod
    def from_url(cls, url: DeviceURL, machine: MachineProfile) -> Driver

and validates its own URL options with ``url.check_keys(...)``. A discovery function lists devices
that are attached (or simulated) for ``markstation devices``.

Simulated devices: a driver never imports :mod:`markstation.devices.sim`. For a ``sim://`` URL it asks
:func:`simulated_transport` for the protocol's :class:`SimulatedTransport` and opens its real code
path (pyusb, pyserial) over what that returns. So a change to a simulator cannot break real hardware.

Third-party packages add drivers and simulators the way python-can adds interfaces: entry points in
the groups ``markstation.drivers`` (name ``scheme.protocol``, value ``module:Class``) and
``markstation.simulators`` (name ``protocol``, value ``module:OBJECT``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from markstation.devices.base import DeviceInfo, Driver
from markstation.devices.url import DeviceURL
from markstation.errors import ConfigError
from markstation.i18n import _
from markstation.profiles import MachineProfile, default_machine_for, load_machine

#: (scheme, protocol) -> "module:Class"
DRIVERS: dict[tuple[str, str], str] = {
    ("usb", "lmc"): "markstation.devices.lmc.driver:LmcDriver",
    ("sim", "lmc"): "markstation.devices.lmc.driver:LmcDriver",
    ("serial", "grbl"): "markstation.devices.grbl.driver:GrblDriver",
    ("sim", "grbl"): "markstation.devices.grbl.driver:GrblDriver",
}

#: protocol -> "module:OBJECT", a SimulatedTransport for sim://PROTOCOL
SIMULATORS: dict[str, str] = {
    "lmc": "markstation.devices.sim.lmc.backend:SIM_TRANSPORT",
    "grbl": "markstation.devices.sim.grbl.serial_handler:SIM_TRANSPORT",
}

#: "module:function" returning list[DeviceInfo] of what is attached; each must not raise when
#: the backend (libusb, serial ports) is missing, only return nothing
DISCOVERY: tuple[str, ...] = (
    "markstation.devices.lmc.driver:discover",
    "markstation.devices.grbl.driver:discover",
)


@dataclass(frozen=True)
class SimulatedLink:
    """What a simulator hands the driver: the transport its real code runs over, and the simulator.

    ``transport`` is what the protocol's real stack takes (a pyusb backend for LMC, an open pyserial
    port for GRBL); ``simulator`` is the simulated device itself, for tests to press its pedal or open
    its interlock (typed ``Any``: a driver must not depend on its API).
    """

    transport: Any
    simulator: Any


class SimulatedTransport(Protocol):
    """A protocol's simulator as the registry offers it to that protocol's driver."""

    #: the URL options the simulator understands (the driver adds its own)
    options: tuple[str, ...]

    def check_options(self, url: DeviceURL, options: Mapping[str, str]) -> None:
        """Refuse bad simulator options (ConfigError naming the URL) before anything is opened."""

    def open(
        self, url: DeviceURL, options: Mapping[str, str], machine: MachineProfile
    ) -> SimulatedLink:
        """Create the simulated device for ``options`` and the transport to reach it."""


def _entry_points(group: str) -> dict[str, str]:
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=group)}


def _driver_table() -> dict[tuple[str, str], str]:
    table = dict(DRIVERS)
    for name, value in _entry_points("markstation.drivers").items():
        scheme, _sep, protocol = name.partition(".")
        table.setdefault((scheme, protocol), value)
    return table


def simulated_transport(protocol: str) -> SimulatedTransport:
    """The simulator for ``sim://PROTOCOL`` (ConfigError when there is none)."""
    target = SIMULATORS.get(protocol) or _entry_points("markstation.simulators").get(protocol)
    if target is None:
        raise ConfigError(
            _("sim://{protocol}: no simulator for protocol '{protocol}'").format(protocol=protocol)
        )
    sim: SimulatedTransport = _load(target)
    return sim


def protocol_of(url: DeviceURL) -> str:
    if url.scheme in ("usb", "sim"):
        return url.host
    if url.scheme == "serial":
        return url.options.get("protocol", "grbl")
    raise ConfigError(
        _("device URL '{raw}': unknown scheme '{scheme}' (usb, sim or serial)").format(
            raw=url.raw, scheme=url.scheme
        )
    )


def _load(target: str) -> Any:
    module_name, _sep, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def open_device(url: str | DeviceURL, machine: MachineProfile | str | None = None) -> Driver:
    """Build the driver for ``url`` (not yet opened: use it as a context manager).

    ``machine`` defaults to the default machine of the URL's protocol.
    """
    parsed = url if isinstance(url, DeviceURL) else DeviceURL.parse(url)
    protocol = protocol_of(parsed)
    drivers = _driver_table()
    target = drivers.get((parsed.scheme, protocol))
    if target is None:
        known = ", ".join(
            f"{s}://{p}" if s != "serial" else f"serial://PORT?protocol={p}" for s, p in drivers
        )
        raise ConfigError(
            _("device URL '{raw}': no driver for it (known: {known})").format(
                raw=parsed.raw, known=known
            )
        )
    if machine is None:
        profile = default_machine_for(protocol)
    elif isinstance(machine, str):
        profile = load_machine(machine)
    else:
        profile = machine
    if profile.protocol != protocol:
        raise ConfigError(
            _(
                "machine '{name}' speaks {protocol}, but device URL '{raw}' is {url_protocol}"
            ).format(
                name=profile.name, protocol=profile.protocol, raw=parsed.raw, url_protocol=protocol
            )
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
