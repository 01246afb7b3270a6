"""Drivers for laser markers, addressed by URL. See :func:`open_device`."""

from markstation.devices.abort import AbortGuard
from markstation.devices.base import (
    DeviceInfo,
    DeviceState,
    Driver,
    FanOut,
    Inputs,
    NullListener,
    RunListener,
    RunResult,
)
from markstation.devices.registry import discover, open_device

__all__ = [
    "AbortGuard",
    "DeviceInfo",
    "DeviceState",
    "Driver",
    "FanOut",
    "Inputs",
    "NullListener",
    "RunListener",
    "RunResult",
    "discover",
    "open_device",
]
