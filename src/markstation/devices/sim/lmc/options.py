"""The ``sim://lmc?…`` URL options, parsed and checked before anything is created.

- ``timing=instant|realtime|F`` — list execution time (default instant);
- ``ledger=PATH`` — the simulator ledger (JSON Lines, see :mod:`markstation.devices.sim.ledger`);
- ``capture=PATH`` — every bulk transfer written to a pcap (USBPcap link type, like the shared
  capture);
- ``fault=KIND@N`` — at bulk transfer N (counted per board from 1, reads and writes alike):
  ``timeout`` the board stops answering: transfer N and every later one raise
  ``USBTimeoutError`` (libusb -7, ETIMEDOUT) and a timed-out write is not delivered, while the
  list it holds keeps running; ``disconnect`` the USB link drops: transfer N and every later one
  raise ``USBError`` (libusb -4, ENODEV), the board runs out the list it holds and no longer
  enumerates; ``reset`` the board resets: transfer N raises ``USBError`` (libusb -1, ECONNRESET),
  the list stops and every state is lost (later transfers reach a board in its power-on state);
  ``interlock`` the interlock input opens before transfer N, which itself succeeds;
- ``serial=TEXT`` — USB serial string of the first board (default SIM0001);
- ``boards=N`` — how many boards (default 1); board i > 1 gets serial ``TEXT-i``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from markstation.devices.sim.faults import Fault, parse_fault
from markstation.devices.sim.timing import INSTANT, parse_timing
from markstation.errors import ConfigError
from markstation.i18n import _

FAULT_KINDS = ("timeout", "disconnect", "reset", "interlock")
SIM_OPTIONS = ("serial", "timing", "ledger", "capture", "fault", "boards")
MAX_BOARDS = 16
DEFAULT_SERIAL = "SIM0001"


@dataclass(frozen=True)
class LmcSimOptions:
    """What ``sim://lmc?…`` asks for; paths are only named here, created when the board opens."""

    speed: float = INSTANT
    fault: Fault | None = None
    serial: str = DEFAULT_SERIAL
    boards: int = 1
    ledger: str | None = None
    capture: str | None = None

    def board_serial(self, i: int) -> str:
        """USB serial of board ``i`` (0-based): the first keeps ``serial``, the others get a suffix."""
        return self.serial if i == 0 else f"{self.serial}-{i + 1}"


def parse_options(options: Mapping[str, str]) -> LmcSimOptions:
    """Unknown options and malformed values are ConfigError naming the URL option."""
    unknown = sorted(set(options) - set(SIM_OPTIONS))
    if unknown:
        raise ConfigError(
            _("sim://lmc option '{unknown}' is unknown (known: {join})").format(
                unknown=unknown[0], join=", ".join(SIM_OPTIONS)
            )
        )
    speed = parse_timing(options["timing"]) if "timing" in options else INSTANT
    fault = parse_fault(options["fault"], FAULT_KINDS) if "fault" in options else None
    serial = options.get("serial", DEFAULT_SERIAL)
    if not serial or not serial.isprintable() or len(serial) > 64:
        raise ConfigError(
            _(
                "option 'serial={serial}': give 1 to 64 printable characters for the board's serial"
            ).format(serial=serial)
        )
    count = 1
    if "boards" in options:
        text = options["boards"]
        if not text.isdigit() or not 1 <= int(text) <= MAX_BOARDS:
            raise ConfigError(
                _("option 'boards={text}': expected a whole number 1..{MAX_BOARDS}").format(
                    text=text, MAX_BOARDS=MAX_BOARDS
                )
            )
        count = int(text)
    for key, what in (("ledger", "the ledger file"), ("capture", "the pcap file to write")):
        if key in options and not options[key]:
            raise ConfigError(
                _("option '{key}=': give the path of {what}").format(key=key, what=what)
            )
    return LmcSimOptions(
        speed=speed,
        fault=fault,
        serial=serial,
        boards=count,
        ledger=options.get("ledger"),
        capture=options.get("capture"),
    )
