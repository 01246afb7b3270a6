"""Real serial ports for GRBL: open one with pyserial, map its failures to device errors.

Only real hardware goes through here; ``sim://grbl`` ports come from the registry's simulated
transport. :class:`Port` is what the rest of the GRBL stack needs from either.
"""

from __future__ import annotations

import logging
from typing import Protocol

from markstation.errors import (
    BackendUnavailable,
    ConfigError,
    DeviceNotFound,
    DevicePermissionError,
)
from markstation.i18n import _

log = logging.getLogger(__name__)

#: read timeout: how often the reader thread looks up to see whether it should stop
READ_TIMEOUT_S = 0.05
#: a write that cannot drain in this long means the adapter is gone
WRITE_TIMEOUT_S = 5.0


class Port(Protocol):
    """The part of a pyserial port the GRBL link uses."""

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes, /) -> int | None: ...

    def close(self) -> None: ...


def open_serial(port: str, baud: int, *, url: str) -> Port:
    """Open ``port`` (a device path, or a pyserial URL such as ``rfc2217://``) at ``baud``.

    ``serial_for_url`` rather than ``serial.Serial``: it takes plain paths too, and pyserial's
    network URLs let a marker sit behind a serial server. ``url`` names the device in errors.
    """
    try:
        import serial
    except ImportError as exc:
        raise BackendUnavailable(
            _("{url}: pyserial is not installed ({exc})").format(url=url, exc=exc)
        ) from exc
    try:
        opened: Port = serial.serial_for_url(
            port, baudrate=baud, timeout=READ_TIMEOUT_S, write_timeout=WRITE_TIMEOUT_S
        )
    except serial.SerialException as exc:
        errno = getattr(exc, "errno", None)
        text = str(exc)
        if errno == 13 or "Permission denied" in text:
            raise DevicePermissionError(
                _(
                    "{url}: permission denied on {port} (add yourself to the 'dialout' group, or "
                    "see drivers/)"
                ).format(url=url, port=port)
            ) from exc
        raise DeviceNotFound(
            _("{url}: cannot open {port} ({error})").format(url=url, port=port, error=text)
        ) from exc
    except ValueError as exc:
        raise ConfigError(_("device URL '{url}': {exc}").format(url=url, exc=exc)) from exc
    return opened


def close_quietly(port: Port, name: str) -> None:
    """Close ``port``; closing a vanished port must not hide the error that got us here."""
    try:
        port.close()
    except Exception as exc:
        log.debug("closing %s: %s", name, exc)
