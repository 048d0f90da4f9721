"""Helpers for testing kcore plugins without installing them.

``plugin_host_for`` registers plugin objects into a throw-away host (no
entry-point loading), and ``install_fake_distribution`` makes a real-looking
installed distribution appear for the length of a ``with`` block, so discovery
is tested the way ``pip install`` would exercise it.

``proxy_sync_once`` drives a proxy mode through start, one sync and its rules
table; ``kcore.scheduler.testing.schedule_one`` runs one scheduling cycle.
"""

from __future__ import annotations

import importlib
import re
import shutil
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kcore.plugins import PluginHost, create_plugin_host


def plugin_host_for(
    *plugins: object,
    config: Any = None,
    named: Mapping[str, object] | None = None,
) -> PluginHost:
    """A fresh host with only the given plugins registered (unknown hooks raise).

    Positional plugins are registered under their module or class name.
    ``named`` maps ``"group:name"`` keys to plugins, so ``driver()``,
    ``call_driver()`` and ``implementations(group=...)`` find them as if they
    came from entry points. With ``config``, ``kcore_plugin_configure`` runs.
    """
    host = create_plugin_host(autoload=False, trace=False)
    for plugin in plugins:
        base = _default_name(plugin)
        name, n = base, 1
        while any(r.key == name for r in host.records()):
            n += 1
            name = f"{base}-{n}"
        host.register(plugin, name)
    for key, plugin in (named or {}).items():
        group, sep, name = key.rpartition(":")
        if not sep:
            raise ValueError(f"named plugins need a 'group:name' key, got {key!r}")
        host.register(plugin, name, group=group)
    if config is not None:
        host.configure(config)
    return host


def _default_name(plugin: object) -> str:
    name = getattr(plugin, "__name__", None)
    if isinstance(name, str):
        return name
    return type(plugin).__name__


@contextmanager
def install_fake_distribution(
    tmp_path: Path,
    name: str,
    version: str,
    entry_points: Mapping[str, Mapping[str, str]],
    modules: Mapping[str, str] | None = None,
) -> Iterator[Path]:
    """Make distribution ``name`` look pip-installed until the block ends.

    Writes ``<name>-<version>.dist-info`` (METADATA, entry_points.txt) and each
    module's source (``{"pkg.mod": "source"}``; parents become packages) into a
    fresh directory put first on ``sys.path``, and clears import caches so
    ``importlib.metadata`` and stevedore see it. On exit the directory leaves
    ``sys.path``, the modules leave ``sys.modules``, and the files are removed.
    Yields the directory.
    """
    modules = dict(modules or {})
    root = Path(tmp_path) / f"site-{_safe(name)}-{_safe(version)}"
    root.mkdir(parents=True, exist_ok=False)
    _write_modules(root, modules)
    _write_dist_info(root, name, version, entry_points)
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    try:
        yield root
    finally:
        if str(root) in sys.path:
            sys.path.remove(str(root))
        for mod_name, module in list(sys.modules.items()):
            origin = getattr(module, "__file__", None) or ""
            if mod_name in modules or origin.startswith(str(root)):
                del sys.modules[mod_name]
        importlib.invalidate_caches()
        shutil.rmtree(root, ignore_errors=True)


def _safe(text: str) -> str:
    """The file-name form of a distribution name or version (PEP 427 style)."""
    return re.sub(r"[^A-Za-z0-9.]+", "_", text)


def _write_modules(root: Path, modules: Mapping[str, str]) -> None:
    packages = {".".join(m.split(".")[:i]) for m in modules for i in range(1, m.count(".") + 1)}
    for pkg in packages:
        path = root.joinpath(*pkg.split("."), "__init__.py")
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() and pkg not in modules:
            path.write_text("")
    for mod_name, source in modules.items():
        parts = mod_name.split(".")
        if mod_name in packages:
            path = root.joinpath(*parts, "__init__.py")
        else:
            path = root.joinpath(*parts[:-1], parts[-1] + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)


def _write_dist_info(
    root: Path, name: str, version: str, entry_points: Mapping[str, Mapping[str, str]]
) -> None:
    dist_info = root / f"{_safe(name)}-{_safe(version)}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    sections = []
    for group, eps in entry_points.items():
        lines = [f"[{group}]"] + [f"{ep_name} = {value}" for ep_name, value in eps.items()]
        sections.append("\n".join(lines))
    (dist_info / "entry_points.txt").write_text("\n\n".join(sections) + "\n")


async def proxy_sync_once(mode: object, state: Any, *, name: str = "under-test",
                          settings: Mapping[str, Any] | None = None, context: Any = None,
                          cleanup: bool = True) -> str | None:
    """Start a proxy mode, sync it to ``state`` once and return its rules table.

    The mode is registered as ``kcore.proxy:<name>`` in a throw-away host and called
    exactly as the proxy runner calls it; with ``cleanup`` it is cleaned up after.
    """
    host = plugin_host_for(named={f"kcore.proxy:{name}": mode})
    await host.acall_driver("kcore.proxy", name, "kcore_proxy_start",
                            settings=dict(settings or {}), context=context)
    try:
        await host.acall_driver("kcore.proxy", name, "kcore_proxy_sync", state=state)
        if not host.has_hook("kcore.proxy", name, "kcore_proxy_render_rules"):
            return None
        return await host.acall_driver("kcore.proxy", name, "kcore_proxy_render_rules", state=state)
    finally:
        if cleanup:
            await host.acall_driver("kcore.proxy", name, "kcore_proxy_cleanup")
