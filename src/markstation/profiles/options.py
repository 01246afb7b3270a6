"""Typed per-protocol machine options: the ``[lmc]`` and ``[grbl]`` tables of a machine profile.

Each default and each bound is written once, here: the schema derives its key table from these
dataclasses (:func:`markstation.profiles.schema.options_spec`), and the drivers and simulators read
the typed attributes instead of repeating ``options.get(key, default)``.

The classes are also read-only mappings (``opts["pedal_bit"]``, ``{**opts}``), so code that treats
the options as a table keeps working.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar


def opt(
    default: Any,
    *,
    min: float | None = None,
    max: float | None = None,
    choices: tuple[Any, ...] | None = None,
) -> Any:
    """A dataclass field with its default and the bounds the schema checks."""
    return field(default=default, metadata={"min": min, "max": max, "choices": choices})


class ProtocolOptions(Mapping[str, Any]):
    """Base of the option dataclasses: a read-only mapping over their fields."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    def __getitem__(self, key: str) -> Any:
        if key not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.__dataclass_fields__)

    def __len__(self) -> int:
        return len(self.__dataclass_fields__)


@dataclass(frozen=True)
class LmcOptions(ProtocolOptions):
    """A BJJCZ LMC board: port bits, pointer speed, USB timing, lens correction."""

    correction_file: str = opt("")
    red_pointer_bit: int = opt(8, min=0, max=15)
    laser_enable_bit: int = opt(0, min=0, max=15)
    pedal_bit: int = opt(15, min=0, max=15)
    pedal_active_low: bool = opt(True)
    #: -1 = no interlock wired
    interlock_bit: int = opt(-1, min=-1, max=15)
    interlock_active_low: bool = opt(True)
    red_pointer_speed_mm_s: float = opt(3000.0, min=1, max=100000)
    poll_interval_s: float = opt(0.01, min=0.001, max=1.0)
    usb_timeout_s: float = opt(0.1, min=0.01, max=10.0)
    usb_retries: int = opt(5, min=0, max=50)


@dataclass(frozen=True)
class GrblOptions(ProtocolOptions):
    """A GRBL laser controller: serial link, spindle scale, origin, framing power, timing."""

    baud: int = opt(115200, min=300, max=4000000)
    max_s: float = opt(1000.0, min=1, max=100000)
    rx_buffer_bytes: int = opt(128, min=16, max=100000)
    origin: str = opt("center", choices=("center", "lower-left"))
    #: > 0 makes framing fire the beam at this power (a diode head has no red pointer)
    pointer_power_pct: float = opt(0.0, min=0, max=5)
    status_interval_s: float = opt(0.2, min=0.01, max=5.0)
    response_timeout_s: float = opt(5.0, min=0.1, max=300.0)
    #: the motion settings the controller must hold ($110/$111 mm/min, $120/$121 mm/s², $11 mm):
    #: the time estimate plans with them, and a connect compares them with the controller's $$
    max_rate_x_mm_min: float = opt(12000.0, min=1, max=1000000)
    max_rate_y_mm_min: float = opt(12000.0, min=1, max=1000000)
    accel_x_mm_s2: float = opt(1000.0, min=1, max=1000000)
    accel_y_mm_s2: float = opt(1000.0, min=1, max=1000000)
    junction_deviation_mm: float = opt(0.01, min=0, max=10)


MachineOptions = LmcOptions | GrblOptions

#: option class per protocol, also the table name in the machine profile
OPTIONS_BY_PROTOCOL: dict[str, type[LmcOptions] | type[GrblOptions]] = {
    "lmc": LmcOptions,
    "grbl": GrblOptions,
}


def options_for(protocol: str, table: Mapping[str, Any]) -> MachineOptions:
    """The typed options of ``protocol`` from a (validated) table; missing keys take defaults."""
    return OPTIONS_BY_PROTOCOL[protocol](**table)
