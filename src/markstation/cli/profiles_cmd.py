"""``markstation profiles list | show NAME | check``."""

from __future__ import annotations

import click

from markstation import profiles as prof
from markstation.cli.translate import Group
from markstation.errors import ConfigError, ProfileNotFound
from markstation.i18n import _


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
            click.echo(
                _("# {kind} '{name}' from {path} (sha256 {sha256}…)").format(
                    kind=kind[:-1], name=name, path=path, sha256=profile.sha256[:16]
                )
            )
            click.echo(path.read_text(encoding="utf-8"), nl=False)
            return
    raise ProfileNotFound(
        _("no machine, material or layout named '{name}' (see 'markstation profiles list')").format(
            name=name
        )
    )


@profiles.command()
def check() -> None:
    """Validate every profile; exit 1 if any is invalid."""
    bad = 0
    for kind, name, problem in prof.check_all():
        if problem is None:
            click.echo(_("ok    {kind:<9} {name}").format(kind=kind[:-1], name=name))
        else:
            bad += 1
            click.echo(_("FAIL  {problem}").format(problem=problem), err=True)
    if bad:
        raise ConfigError(_("{bad} profile(s) invalid").format(bad=bad))
