"""The architecture's rules, checked on the source: who may import whom.

Read from the AST (imports inside functions count too: a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from _paths import REPO

SRC = REPO / "src" / "markstation"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {f for f in found if f.startswith("markstation")}


MODULES = {_module_name(p): _imports(p) for p in sorted(SRC.rglob("*.py"))}


def _importers(prefix: str) -> dict[str, set[str]]:
    return {m: deps for m, deps in MODULES.items() if m == prefix or m.startswith(prefix + ".")}


def _offenders(importer: str, forbidden: str) -> list[str]:
    return sorted(
        f"{m} imports {d}"
        for m, deps in _importers(importer).items()
        for d in deps
        if d == forbidden or d.startswith(forbidden + ".")
    )


@pytest.mark.parametrize(
    ("importer", "forbidden"),
    [
        (
            "markstation.devices.lmc",
            "markstation.devices.sim",
        ),  # drivers get sims from the registry
        ("markstation.devices.grbl", "markstation.devices.sim"),
        ("markstation.devices.sim", "markstation.devices.lmc.driver"),  # sims use codecs only
        ("markstation.devices.sim", "markstation.devices.grbl.driver"),
        ("markstation.job", "markstation.preview"),  # job needs no preview
        ("markstation.job", "markstation.devices"),
        ("markstation.preview", "markstation.devices"),  # preview needs no device
        ("markstation.preview", "markstation.queue"),
        ("markstation.profiles", "markstation.job"),
        ("markstation.devices", "markstation.queue"),
        ("markstation.devices", "markstation.cli"),
        ("markstation.queue", "markstation.cli"),
        ("markstation.devices.lmc.codec", "markstation.devices.lmc.transport"),  # codecs are pure
        ("markstation.devices.grbl.codec", "markstation.devices.grbl.transport"),
    ],
)
def test_layer_rule(importer: str, forbidden: str) -> None:
    assert _importers(importer), f"no module {importer}: update this rule with the layout"
    assert _offenders(importer, forbidden) == []


def test_codecs_do_no_io() -> None:
    for codec in ("markstation.devices.lmc.codec", "markstation.devices.grbl.codec"):
        deps = MODULES[codec]
        heavy = {"usb", "serial", "socket", "sqlite3"}
        text = (SRC.parent / (codec.replace(".", "/") + ".py")).read_text(encoding="utf-8")
        tree = ast.parse(text)
        names = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in (
                node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")]
            )
        }
        assert not names & heavy, f"{codec} imports {names & heavy}"
        assert not any("transport" in d or "driver" in d for d in deps)


def _top_package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def test_no_cycles_between_packages() -> None:
    """markstation.job, .preview, .profiles, … form a DAG (the facade and errors excepted)."""
    edges: dict[str, set[str]] = {}
    for module, deps in MODULES.items():
        src = _top_package(module)
        if src == "markstation":
            continue  # the lazy facade imports everything by design
        for dep in deps:
            dst = _top_package(dep)
            if dst not in (src, "markstation", "markstation.errors") and dst in {
                _top_package(m) for m in MODULES
            }:
                edges.setdefault(src, set()).add(dst)

    assert "markstation.devices" in edges["markstation.queue"], "the import graph was not read"
    seen: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        seen[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if seen.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                pytest.fail("package cycle: " + " -> ".join(cycle))
            if nxt not in seen:
                visit(nxt)
        stack.pop()
        seen[node] = 2

    for node in sorted(edges):
        if node not in seen:
            visit(node)
