"""``markstation station``: the marking station in the browser (the ``markstation[station]`` extra).

The web libraries are imported only when the command runs, so ``markstation --help`` stays fast.
"""

from __future__ import annotations

import threading
import webbrowser
from pathlib import Path

import click

from markstation.cli.options import (
    db_option,
    device_option,
    layout_option,
    machine_option,
    material_option,
)
from markstation.cli.station_key import key_file_option, load_station_key
from markstation.cli.translate import Command
from markstation.errors import ConfigError
from markstation.i18n import LANGUAGES, _, get_language, set_language


@click.command("station", cls=Command)
@db_option
@device_option()
@machine_option
@material_option
@layout_option(help="Layout for imported rows without a 'layout' value.")
@click.option(
    "--lang",
    type=click.Choice(LANGUAGES, case_sensitive=False),
    default=None,
    help="Language of the station (default: the --lang before the command, "
    "$MARKSTATION_LANG, the system locale, else en).",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8470,
    show_default=True,
    help="TCP port the station listens on.",
)
@click.option(
    "--listen",
    metavar="ADDR",
    default=None,
    help="Serve on ADDR (e.g. 0.0.0.0) instead of 127.0.0.1 only; operator sign-in is then "
    "mandatory (add operators with 'markstation operators add').",
)
@click.option("--no-browser", is_flag=True, help="Do not open the browser at the station.")
@click.option(
    "--station",
    "station_name",
    default=None,
    envvar="MARKSTATION_STATION",
    metavar="NAME",
    help="Station name for the journal (env MARKSTATION_STATION; default: the hostname).",
)
@key_file_option
def station(
    db: Path | None,
    device: str,
    machine: str | None,
    material: str | None,
    layout: str,
    lang: str | None,
    port: int,
    listen: str | None,
    no_browser: bool,
    station_name: str | None,
    key_file: Path | None,
) -> None:
    """Run the marking station: a local web app for the technician.

    The station drives the same runner and store as 'batch run' (one process owns the device;
    the store's runner lock keeps a 'batch run' and a station from marking the same store at
    once). Bound to 127.0.0.1 unless --listen is given. Ctrl-C aborts a running mark and stops.
    """
    try:
        from markstation.station.server import serve
        from markstation.station.service import StationConfig
    except ImportError as exc:
        raise ConfigError(
            _(
                "the station needs its web libraries ({error}): pip install 'markstation[station]'"
            ).format(error=exc)
        ) from exc
    from markstation.cli.batch import make_actor
    from markstation.queue.location import default_location, open_store, redact
    from markstation.station.service import Station

    code = set_language(lang) if lang else get_language()
    local = make_actor(None, station_name)
    config = StationConfig(
        db=db or default_location(),
        device=device,
        machine=machine,
        material=material,
        layout=layout,
        lang=code,
        listen=listen,
        port=port,
        station_name=local.station,
        local_operator=local.operator,
        key=load_station_key(key_file),
    )
    if listen is not None:
        from markstation.queue.operators import has_operators

        with open_store(config.db, mode="write") as store:
            if not has_operators(store):
                raise ConfigError(
                    _(
                        "--listen {addr}: operator sign-in is mandatory on the network, but the "
                        "store has no operators; add one with 'markstation operators add NAME "
                        "--role supervisor'"
                    ).format(addr=listen)
                )
    shown_host = "127.0.0.1" if listen in (None, "0.0.0.0", "::") else listen
    url = f"http://{shown_host}:{port}/"
    if listen is not None:
        click.echo(
            _(
                "listening on {addr}:{port}: operator sign-in is mandatory (anyone on the network "
                "can reach this station)"
            ).format(addr=listen, port=port)
        )
    click.echo(
        _("markstation station on {url} ({device}, store {db}); Ctrl-C aborts and stops").format(
            url=url, device=device, db=redact(str(config.db))
        )
    )

    def opened() -> None:
        if not no_browser:
            threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()

    serve(Station(config), on_ready=opened)
    click.echo(_("station stopped"))


__all__ = ["station"]
