"""``sim://grbl`` options: checked before anything opens, then turned into a configured controller.

``timing=instant|realtime|F``, ``ledger=PATH``, ``fault=KIND@N`` (KIND in :data:`FAULT_KINDS`),
``settings=N:V,…`` and ``link=real|ideal`` (model the USB-serial link, or not).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from markstation.devices.grbl.codec import Geometry
from markstation.devices.sim.faults import parse_fault
from markstation.devices.sim.grbl.controller import GrblController
from markstation.devices.sim.grbl.settings import DEFAULT_SETTINGS
from markstation.devices.sim.ledger import Ledger
from markstation.devices.sim.timing import parse_timing
from markstation.errors import ConfigError
from markstation.i18n import _
from markstation.profiles import MachineProfile, default_machine_for, load_machine

FAULT_KINDS = ("disconnect", "reset", "alarm", "stall", "lost-ok")
#: the options a ``sim://grbl`` URL may carry for the simulator (the driver adds its own)
SIM_OPTIONS = ("timing", "ledger", "fault", "settings", "link")
LINKS = ("real", "ideal")
#: the modelled USB-serial link for ``link=real``: one-way latency and per-line parse/plan time
LINK_LATENCY_S = 0.001
LINE_TIME_S = 0.0002


def parse_settings(text: str, where: str) -> dict[int, float]:
    """``32:0,30:255`` -> {32: 0.0, 30: 255.0}; ConfigError naming ``where`` otherwise."""
    result: dict[int, float] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = item.partition(":")
        try:
            number = int(key.strip().lstrip("$"))
            result[number] = float(value)
        except ValueError:
            number = -1
        if not sep or number not in DEFAULT_SETTINGS:
            raise ConfigError(
                _(
                    "{where}: option 'settings={text}': expected N:V pairs such as 32:1,30:1000 with N a GRBL 1.1 setting number"
                ).format(where=where, text=text)
            )
    return result


def _check_link(options: Mapping[str, str], where: str) -> bool:
    """True for a modelled link (``link=real``, the default)."""
    link = options.get("link", "real")
    if link not in LINKS:
        raise ConfigError(
            _("{where}: option 'link={link}': expected real or ideal").format(
                where=where, link=link
            )
        )
    return link == "real"


def check_options(options: Mapping[str, str], where: str) -> None:
    """Refuse bad simulator options (ConfigError naming ``where``) before anything is opened."""
    try:
        if "timing" in options:
            parse_timing(options["timing"])
        if "fault" in options:
            parse_fault(options["fault"], FAULT_KINDS)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    parse_settings(options.get("settings", ""), where)
    _check_link(options, where)


def build_controller(
    options: Mapping[str, str],
    where: str,
    *,
    output: Callable[[bytes], None] | None = None,
    machine: MachineProfile | str | None = None,
) -> tuple[GrblController, bool]:
    """A controller configured from URL-style options; also whether the link is modelled (real).

    ``machine`` (a profile or its name) gives the geometry the burn record uses and ``$30``;
    default the protocol's default machine.
    """
    if isinstance(machine, MachineProfile):
        profile = machine
    else:
        profile = load_machine(machine) if machine else default_machine_for("grbl")
    if profile.protocol != "grbl":
        raise ConfigError(
            _("{where}: machine '{name}' is not a GRBL machine").format(
                where=where, name=profile.name
            )
        )
    speed = parse_timing(options.get("timing", "instant"))
    fault = parse_fault(options["fault"], FAULT_KINDS) if options.get("fault") else None
    ledger = Ledger(options["ledger"]) if options.get("ledger") else None
    # the profile's motion settings first (one default, in profiles/options), then the URL's
    g = profile.grbl
    settings = {
        110: g.max_rate_x_mm_min,
        111: g.max_rate_y_mm_min,
        120: g.accel_x_mm_s2,
        121: g.accel_y_mm_s2,
        11: g.junction_deviation_mm,
    }
    settings.update(parse_settings(options.get("settings", ""), where))
    real = _check_link(options, where)
    controller = GrblController(
        Geometry.from_machine(profile),
        speed=speed,
        ledger=ledger,
        fault=fault,
        settings=settings,
        line_time_s=LINE_TIME_S if real else 0.0,
        output=output,
    )
    return controller, real
