"""pyserial URL handlers for the simulators: ``serial.serial_for_url("sim://grbl?…")``.

pyserial looks for a module ``protocol_<scheme>`` in every package listed in
``serial.protocol_handler_packages``; :func:`register` adds this package there, once per process.
Everything that opens a port goes through :func:`open_port` (``serial.Serial`` ignores URL handlers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import serial

PACKAGE = __name__


def register() -> None:
    """Make ``sim://`` known to ``serial.serial_for_url`` (idempotent)."""
    import serial

    if PACKAGE not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append(PACKAGE)


def open_port(url: str, **kwargs: Any) -> serial.SerialBase:
    """``serial.serial_for_url`` with the simulator handlers registered."""
    import serial

    register()
    port: serial.SerialBase = serial.serial_for_url(url, **kwargs)
    return port
