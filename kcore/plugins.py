"""Plugin discovery (stevedore) and registration (pluggy).

A ``PluginHost`` owns one pluggy ``PluginManager`` with kcore's hook specs. It
loads every entry point of kcore's groups, registers each plugin under
``"<group>:<name>"``, and records what it found — distribution, version, and why
a plugin failed — so ``kcore plugins`` can show it and a bad plugin never stops
the others from loading. Nothing happens at import time: build a host with
``create_plugin_host()``.

Two ways to call hooks:

* driver groups (a user picks one implementation by name): ``call_driver``
  calls that one plugin's implementation only;
* multi groups: ``host.hook.<name>(...)`` broadcasts, and ``implementations``
  gives each plugin's implementation in an explicit order (scheduler profiles).

Environment switches: ``KCORE_TRACE_PLUGINS=1`` logs every hook call;
``KCORE_LOAD_PLUGINS=a,b`` loads only the named entry points (matched by
entry-point name, ``group:name`` or distribution name; empty loads none).
"""

from __future__ import annotations

from kcore.errors import UserFacingError

import difflib
import importlib.metadata
import inspect
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pluggy
from stevedore import ExtensionManager

from kcore import hookspecs
from kcore.log import get_logger

log = get_logger("plugins")

GROUPS: tuple[str, ...] = (
    "kcore.store",
    "kcore.scheduler",
    "kcore.proxy",
    "kcore.cni",
    "kcore.dns",
    "kcore.logging",
    "kcore.csi",
    "kcore.runtime",
    "kcore.controllers",
    "kcore.admission",
)
# Pick-one groups: each call goes to the one implementation selected by name
# (stevedore driver semantics). CSI is here because every volume names its
# provisioner; DNS because one server answers.
DRIVER_GROUPS: frozenset[str] = frozenset(
    {"kcore.store", "kcore.proxy", "kcore.cni", "kcore.dns", "kcore.csi", "kcore.runtime"}
)
# Many-contribute groups: every loaded implementation takes part.
MULTI_GROUPS: frozenset[str] = frozenset(GROUPS) - DRIVER_GROUPS

TRACE_ENV = "KCORE_TRACE_PLUGINS"
LOAD_ENV = "KCORE_LOAD_PLUGINS"

PluginStatus = Literal["loaded", "failed", "skipped"]


class PluginError(UserFacingError):
    """Base of every plugin error; its message is meant for the user."""


class PluginNotFoundError(PluginError, LookupError):
    """No plugin of that name in that group."""


class PluginLoadError(PluginError):
    """The plugin exists but could not be loaded or registered."""


class HookNotImplementedError(PluginError):
    """The selected plugin does not implement the hook being called."""


@dataclass(frozen=True)
class PluginRecord:
    """What discovery found for one entry point (or one registered plugin)."""

    group: str
    name: str
    distribution: str | None
    version: str | None
    value: str
    status: PluginStatus
    error: str | None = None

    @property
    def key(self) -> str:
        """The pluggy registration name, ``"<group>:<name>"``."""
        return _key(self.group, self.name)


@dataclass(frozen=True)
class Implementation:
    """One plugin's implementation of one hook, callable on its own."""

    name: str
    group: str
    plugin: object
    _caller: Callable[..., Any]

    def __call__(self, **kwargs: Any) -> Any:
        """Call this plugin's implementation only and return its result (or None)."""
        return _single_result(self._caller, self._caller(**kwargs))


def _key(group: str, name: str) -> str:
    return f"{group}:{name}" if group else name


def _single_result(caller: Any, result: Any) -> Any:
    """Unwrap a one-plugin hook call: pluggy returns a list of results unless the
    hook is firstresult (whose single result may itself be a list)."""
    spec = getattr(caller, "spec", None)
    if spec is not None and spec.opts.get("firstresult"):
        return result
    if isinstance(result, list):
        return result[0] if result else None
    return result


def _describe_error(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def _normalize_dist(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def load_limit_from_env(environ: Mapping[str, str] | None = None) -> set[str] | None:
    """Parse ``KCORE_LOAD_PLUGINS``: None when unset (load all), else the names."""
    env = os.environ if environ is None else environ
    raw = env.get(LOAD_ENV)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


class _GroupLoader(ExtensionManager):  # type: ignore[type-arg]
    """stevedore's loader over a list of entry points we chose.

    Why: stevedore's own entry-point cache is process-wide and drops
    ``EntryPoint.dist``, which we need for the distribution and version; and we
    filter by ``KCORE_LOAD_PLUGINS`` before anything is imported.
    """

    def __init__(
        self,
        group: str,
        entry_points: Sequence[importlib.metadata.EntryPoint],
        on_failure: Callable[[ExtensionManager, importlib.metadata.EntryPoint, Exception], None],  # type: ignore[type-arg]
    ) -> None:
        self._chosen = list(entry_points)
        super().__init__(group, on_load_failure_callback=on_failure)

    def list_entry_points(self) -> list[importlib.metadata.EntryPoint]:
        return list(self._chosen)


class PluginHost:
    """One pluggy manager plus what was discovered, registered and why it failed."""

    def __init__(self, *, trace: bool | None = None) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._spec_names = frozenset(n for n in dir(hookspecs) if n.startswith("kcore_"))
        self._plugins: dict[str, object] = {}
        self._records: dict[str, PluginRecord] = {}
        self._callers: dict[tuple[str, str], Callable[..., Any] | None] = {}
        if trace is None:
            trace = os.environ.get(TRACE_ENV, "") not in ("", "0", "false", "no")
        if trace:
            self._enable_tracing()

    # -- access -------------------------------------------------------------

    @property
    def pm(self) -> pluggy.PluginManager:
        """The pluggy manager, for inspection; register through the host."""
        return self._pm

    @property
    def hook(self) -> Any:
        """Broadcast calls: ``host.hook.kcore_admission_validate(request=...)``."""
        return self._pm.hook

    def records(self) -> list[PluginRecord]:
        """Every discovered or registered plugin, in discovery order."""
        return list(self._records.values())

    def names(self, group: str) -> list[str]:
        """The names of the loaded plugins of ``group``, sorted."""
        return sorted({r.name for r in self._records.values() if r.group == group and r.status == "loaded"})

    # -- discovery ----------------------------------------------------------

    def discover(self, groups: Iterable[str] = GROUPS, only: set[str] | None = None) -> list[PluginRecord]:
        """Load and register every entry point of ``groups``; return their records.

        ``only`` limits which entry points load (see ``KCORE_LOAD_PLUGINS``,
        which applies when ``only`` is None). Failures are recorded and logged,
        never raised, so one broken distribution cannot take the others down.
        """
        if only is None:
            only = load_limit_from_env()
        found: list[PluginRecord] = []
        for group in groups:
            found.extend(self._discover_group(group, only))
        self._pm.check_pending()  # every bad plugin was already unregistered
        return found

    def _discover_group(self, group: str, only: set[str] | None) -> list[PluginRecord]:
        # Decide per entry point first (duplicate, skipped, or to load), then let
        # stevedore import the chosen ones, then register and record in order.
        plan: list[tuple[importlib.metadata.EntryPoint, PluginRecord | None]] = []
        seen: dict[str, tuple[str | None, str]] = {
            r.name: (r.distribution, r.value)
            for r in self._records.values()
            if r.group == group and r.status != "skipped"  # a later discover may load it
        }
        for ep in importlib.metadata.entry_points(group=group):
            dist, version = _dist_of(ep)
            if ep.name in seen:
                if seen[ep.name] != (dist, ep.value):  # else: the same one again, already done
                    other_dist, other_value = seen[ep.name]
                    plan.append((ep, PluginRecord(
                        group, ep.name, dist, version, ep.value, "failed",
                        f"duplicate name: {_key(group, ep.name)} is also provided by "
                        f"{other_dist or 'a direct registration'} ({other_value})",
                    )))
                continue
            seen[ep.name] = (dist, ep.value)
            if only is not None and not _selected(ep, dist, only):
                plan.append((ep, PluginRecord(
                    group, ep.name, dist, version, ep.value, "skipped", f"not listed in {LOAD_ENV}"
                )))
            else:
                plan.append((ep, None))

        failures: dict[str, str] = {}

        def on_failure(_mgr: ExtensionManager, ep: importlib.metadata.EntryPoint, err: Exception) -> None:  # type: ignore[type-arg]
            failures[ep.name] = _describe_error(err)

        loader = _GroupLoader(group, [ep for ep, decided in plan if decided is None], on_failure)
        loaded = {ext.name: ext.plugin for ext in loader.extensions}

        records = []
        for ep, decided in plan:
            if decided is not None:
                records.append(self._record(decided, replace=decided.status != "failed"))
                continue
            records.append(self._record(self._register_entry_point(ep, loaded, failures.get(ep.name))))
        return records

    def _register_entry_point(
        self, ep: importlib.metadata.EntryPoint, loaded: Mapping[str, object], error: str | None
    ) -> PluginRecord:
        dist, version = _dist_of(ep)
        if error is None:
            try:
                self._register(_instantiate(loaded[ep.name]), ep.group, ep.name)
            except Exception as err:  # noqa: BLE001 - any plugin bug is recorded, not raised
                error = str(err) if isinstance(err, PluginLoadError) else _describe_error(err)
        if error is not None:
            log.warning(
                "plugin failed to load", group=ep.group, entry_point=f"{ep.name} = {ep.value}",
                distribution=dist, version=version, error=error,
            )
            return PluginRecord(ep.group, ep.name, dist, version, ep.value, "failed", error)
        log.debug("plugin loaded", group=ep.group, name=ep.name, distribution=dist, version=version)
        return PluginRecord(ep.group, ep.name, dist, version, ep.value, "loaded")

    def _record(self, record: PluginRecord, *, replace: bool = True) -> PluginRecord:
        # A rejected duplicate keeps its own row without hiding the one in use.
        key = record.key if replace else f"{record.key}#duplicate{len(self._records)}"
        self._records[key] = record
        return record

    # -- registration -------------------------------------------------------

    def register(self, plugin: object, name: str, group: str = "") -> str:
        """Register ``plugin`` (module, instance or class) and return its key.

        For built-ins and tests. Raises ``PluginLoadError`` if the plugin
        implements a hook kcore does not define or with arguments its spec lacks.
        """
        self._register(_instantiate(plugin), group, name)
        self._record(PluginRecord(group, name, None, None, _describe_plugin(plugin), "loaded"))
        return _key(group, name)

    def unregister(self, name: str, group: str = "") -> None:
        """Remove a registered plugin and its record."""
        key = _key(group, name)
        plugin = self._plugins.pop(key)
        self._records.pop(key, None)
        if plugin not in self._plugins.values():
            self._pm.unregister(plugin)
        self._callers.clear()

    def _register(self, plugin: object, group: str, name: str) -> None:
        key = _key(group, name)
        if key in self._plugins:
            raise PluginLoadError(f"a plugin named {key!r} is already registered")
        if self._pm.is_registered(plugin):
            # The same object under a second entry point (e.g. in two groups):
            # pluggy holds it once; we remember both names.
            self._plugins[key] = plugin
            return
        try:
            self._pm.register(plugin, name=key)
        except pluggy.PluginValidationError as err:
            raise PluginLoadError(str(err)) from err
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as err:
            message = self._unknown_hooks_message(err.plugin)
            self._pm.unregister(plugin)
            raise PluginLoadError(message) from err
        self._plugins[key] = plugin
        self._callers.clear()

    def _unknown_hooks_message(self, plugin: object) -> str:
        unknown = []
        for name in sorted(n for n in vars(self._pm.hook) if n.startswith("kcore_")):
            caller = getattr(self._pm.hook, name)
            if caller.has_spec() or not any(i.plugin is plugin for i in caller.get_hookimpls()):
                continue
            close = difflib.get_close_matches(name, self._spec_names, n=1)
            unknown.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        if not unknown:  # a hook without the kcore_ prefix
            return f"unknown hook in plugin {plugin!r}"
        return "unknown hook " + ", ".join(unknown) + "; see kcore.hookspecs for the hooks kcore defines"

    def configure(self, config: Any) -> None:
        """Give every plugin, now and later registered, the effective configuration."""
        self._pm.hook.kcore_plugin_configure.call_historic(kwargs={"config": config})

    # -- selection and calls ------------------------------------------------

    def driver(self, group: str, name: str) -> object:
        """The loaded plugin ``name`` of ``group`` (a driver group's selection)."""
        key = _key(group, name)
        if key in self._plugins:
            return self._plugins[key]
        record = self._records.get(key)
        if record is not None and record.status == "failed":
            raise PluginLoadError(
                f"{group} plugin {name!r} (entry point {name} = {record.value}, "
                f"distribution {_dist_label(record)}) failed to load: {record.error}"
            )
        if record is not None and record.status == "skipped":
            raise PluginNotFoundError(
                f"{group} plugin {name!r} is installed but not loaded: {record.error}"
            )
        available = sorted(
            r.name for r in self._records.values() if r.group == group and r.status != "skipped"
        )
        raise PluginNotFoundError(
            f"no {group} plugin named {name!r}; available: {', '.join(available) or '(none)'}"
        )

    def has_hook(self, group: str, name: str, hook_name: str) -> bool:
        """Whether the plugin ``name`` of ``group`` implements ``hook_name``."""
        return self._single_caller(self._resolve(name, group), hook_name) is not None

    def call_driver(self, group: str, name: str, hook_name: str, /, **kwargs: Any) -> Any:
        """Call ``hook_name`` on the one plugin ``name`` of ``group``; return its result.

        Raises ``PluginNotFoundError``/``PluginLoadError`` like ``driver()`` and
        ``HookNotImplementedError`` if that plugin lacks the hook. A coroutine
        function's result is returned unawaited; use ``acall_driver`` to await it.
        """
        self.driver(group, name)
        caller = self._single_caller(_key(group, name), hook_name)
        if caller is None:
            raise HookNotImplementedError(f"{group} plugin {name!r} does not implement {hook_name}")
        return _single_result(caller, caller(**kwargs))

    async def acall_driver(self, group: str, name: str, hook_name: str, /, **kwargs: Any) -> Any:
        """``call_driver`` for async-capable hooks: awaits the result if awaitable."""
        result = self.call_driver(group, name, hook_name, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    def implementations(
        self, hook_name: str, names: Sequence[str] | None = None, *, group: str | None = None
    ) -> list[Implementation]:
        """Each plugin's implementation of ``hook_name``, in an explicit order.

        With ``names`` (short names resolved in ``group``, or ``group:name``
        keys), in that order, skipping named plugins that lack the hook; an
        unknown name raises ``PluginNotFoundError``. Without, every implementing
        plugin (of ``group`` if given) in registration order.
        """
        if names is None:
            keys = [k for k in self._plugins if group is None or self._group_of(k) == group]
        else:
            keys = [self._resolve(n, group) for n in names]
        result = []
        for key in keys:
            caller = self._single_caller(key, hook_name)
            if caller is not None:
                plugin_group, _, short = key.rpartition(":")
                result.append(Implementation(short, plugin_group, self._plugins[key], caller))
        return result

    def _group_of(self, key: str) -> str:
        return key.rpartition(":")[0]

    def _resolve(self, name: str, group: str | None) -> str:
        if group is not None and ":" not in name:
            key = _key(group, name)
            if key not in self._plugins:
                self.driver(group, name)  # raises with the available names
            return key
        if name in self._plugins:
            return name
        matches = [k for k in self._plugins if k.rpartition(":")[2] == name]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise PluginNotFoundError(f"plugin name {name!r} is ambiguous: {', '.join(sorted(matches))}")
        raise PluginNotFoundError(
            f"no plugin named {name!r}; available: {', '.join(sorted(self._plugins)) or '(none)'}"
        )

    def _single_caller(self, key: str, hook_name: str) -> Callable[..., Any] | None:
        """A pluggy caller limited to one plugin (through pluggy, so tracing sees it)."""
        if hook_name not in self._spec_names:
            raise ValueError(f"{hook_name!r} is not a kcore hook")
        cache_key = (key, hook_name)
        if cache_key not in self._callers:
            plugin = self._plugins[key]
            full = getattr(self._pm.hook, hook_name)
            if not any(impl.plugin is plugin for impl in full.get_hookimpls()):
                self._callers[cache_key] = None
            else:
                others = [p for p in self._pm.get_plugins() if p is not plugin]
                self._callers[cache_key] = self._pm.subset_hook_caller(hook_name, others)
        return self._callers[cache_key]

    # -- tracing ------------------------------------------------------------

    def _enable_tracing(self) -> None:
        trace_log = get_logger("plugins.trace")

        def before(hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, object]) -> None:
            trace_log.info(
                "hook call", hook=hook_name, plugins=[i.plugin_name for i in impls],
                kwargs={k: _short_repr(v) for k, v in kwargs.items()},
            )

        def after(
            outcome: pluggy.Result[object], hook_name: str,
            impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, object],
        ) -> None:
            if outcome.exception is not None:
                trace_log.info("hook error", hook=hook_name, error=_describe_error(outcome.exception))
            else:
                trace_log.info("hook result", hook=hook_name, result=_short_repr(outcome.get_result()))

        self._pm.add_hookcall_monitoring(before, after)


def _short_repr(value: object, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _dist_of(ep: importlib.metadata.EntryPoint) -> tuple[str | None, str | None]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return None, None
    return dist.metadata["Name"], dist.version


def _dist_label(record: PluginRecord) -> str:
    if record.distribution is None:
        return "(registered directly)"
    return f"{record.distribution} {record.version}"


def _selected(ep: importlib.metadata.EntryPoint, dist: str | None, only: set[str]) -> bool:
    wanted = {_normalize_dist(n) for n in only} | only
    return bool(
        {ep.name, f"{ep.group}:{ep.name}"} & only
        or (dist is not None and _normalize_dist(dist) in wanted)
    )


def _describe_plugin(plugin: object) -> str:
    """``module`` or ``module:Name``, like an entry point's value."""
    if inspect.ismodule(plugin):
        return plugin.__name__
    cls = plugin if inspect.isclass(plugin) else type(plugin)
    return f"{cls.__module__}:{cls.__qualname__}"


def _instantiate(plugin: object) -> object:
    """Entry points may name a class: register an instance so methods bind."""
    return plugin() if inspect.isclass(plugin) else plugin


def create_plugin_host(
    *,
    autoload: bool = True,
    groups: Iterable[str] = GROUPS,
    only: set[str] | None = None,
    trace: bool | None = None,
) -> PluginHost:
    """Build a plugin host and, with ``autoload``, discover ``groups``' entry points.

    ``only`` limits loading like ``KCORE_LOAD_PLUGINS`` (which applies when it is
    None); ``trace`` overrides ``KCORE_TRACE_PLUGINS``.
    """
    host = PluginHost(trace=trace)
    if autoload:
        host.discover(groups, only=only)
    return host


def format_plugin_table(records: Iterable[PluginRecord]) -> str:
    """Render records as aligned columns, with an error line under failed ones."""
    header = ("GROUP", "NAME", "DISTRIBUTION", "VERSION", "STATUS")
    rows = [
        (r.group or "-", r.name, r.distribution or "-", r.version or "-", r.status, r.error)
        for r in records
    ]
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    out = [line(header)]
    for *cells, error in rows:
        out.append(line(cells))
        if error and cells[4] != "loaded":
            label = "error" if cells[4] == "failed" else "note"
            out.append(f"    {label}: {error}")
    return "\n".join(out)
