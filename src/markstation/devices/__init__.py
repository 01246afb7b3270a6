"""Drivers for laser markers, addressed by URL. See :func:`open_device`."""

from markstation.devices.base import DeviceInfo, DeviceState, Driver, Inputs, RunListener, RunResult
from markstation.devices.registry import discover, open_device

__all__ = [
    "DeviceInfo",
    "DeviceState",
    "Driver",
    "Inputs",
    "RunListener",
    "RunResult",
    "discover",
    "open_device",
]
