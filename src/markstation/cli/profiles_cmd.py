"""``markstation profiles list | show NAME | check``."""

from __future__ import annotations

import click

from markstation import profiles as prof
from markstation.cli.translate import Group
from markstation.errors import ConfigError, ProfileNotFound


@click.group(cls=Group)
def profiles() -> None:
    """Machine, material and layout profiles (TOML, schema = 1).

    Searched in $MARKSTATION_PROFILES, ~/.config/markstation/profiles, then the shipped ones.
    """


@profiles.command("list")
def list_() -> None:
    """List every profile by kind, with the file it comes from."""
    for kind in prof.KINDS:
        click.echo(f"{kind}:")
        for name, path in prof.available(kind).items():
            click.echo(f"  {name:<22} {path}")


@profiles.command()
@click.argument("name")
def show(name: str) -> None:
    """Print the profile NAME (a machine, material or layout) after validating it."""
    for kind in prof.KINDS:
        path = prof.available(kind).get(name)
        if path is not None:
            profile: prof.Profile = (
                prof.load_machine(name)
                if kind == "machines"
                else prof.load_material(name)
                if kind == "materials"
                else prof.load_layout(name)
            )
            click.echo(f"# {kind[:-1]} '{name}' from {path} (sha256 {profile.sha256[:16]}…)")
            click.echo(path.read_text(encoding="utf-8"), nl=False)
            return
    raise ProfileNotFound(
        f"no machine, material or layout named '{name}' (see 'markstation profiles list')"
    )


@profiles.command()
def check() -> None:
    """Validate every profile; exit 1 if any is invalid."""
    bad = 0
    for kind, name, problem in prof.check_all():
        if problem is None:
            click.echo(f"ok    {kind[:-1]:<9} {name}")
        else:
            bad += 1
            click.echo(f"FAIL  {problem}", err=True)
    if bad:
        raise ConfigError(f"{bad} profile(s) invalid")
