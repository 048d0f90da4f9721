"""The layers stay apart: the core never imports a plugin, and plugins use only
kcore's public modules (hooks, client, API models, config, logging, errors,
the proxy state and the testing helpers)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = ("kcore", "kcore.hookspecs", "kcore.plugins", "kcore.testing", "kcore.client",
          "kcore.api", "kcore.config", "kcore.log", "kcore.errors", "kcore.proxy.state",
          "kcore.scheduler.testing")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def plugin_packages() -> list[str]:
    return sorted(p.name for p in (ROOT / "plugins").glob("*/kcore_*") if p.is_dir())


def test_core_never_imports_a_plugin() -> None:
    packages = plugin_packages()
    assert packages, "expected plugin distributions under plugins/"
    offenders = {
        str(path.relative_to(ROOT)): sorted(m for m in imported_modules(path)
                                            if m.split(".")[0] in packages)
        for path in (ROOT / "kcore").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_plugins_use_only_public_kcore_modules() -> None:
    offenders: dict[str, list[str]] = {}
    for package in (ROOT / "plugins").glob("*/kcore_*"):
        for path in package.rglob("*.py"):
            private = sorted(
                m for m in imported_modules(path)
                if m.split(".")[0] == "kcore" and not any(m == p or m.startswith(p + ".") for p in PUBLIC)
            )
            if private:
                offenders[str(path.relative_to(ROOT))] = private
    assert offenders == {}
