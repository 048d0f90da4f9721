"""One TOML file -> validated settings for every component.

Every section is a pydantic model that forbids unknown keys, so a typo is an
error that names the full key path (``proxy.modee``) and the offending value
instead of a silently ignored setting. Sections that select a plugin by name
(``[store]``, ``[proxy]``, ``[network]``, ``[dns]``, ``[storage]``, ``[logging]``)
also accept one sub-table per plugin (``[proxy.ipvs]``, ``[store.sqlite]``): those
are free-form and handed to that plugin as its settings. ``[plugins.<name>]``
holds settings for any other plugin.
"""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Any, ClassVar, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class ConfigError(Exception):
    """The configuration file is missing, unreadable or invalid; the message says where."""


class Section(BaseModel):
    """A configuration table: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class PluginTablesSection(Section):
    """A section that selects plugins by name and carries one free-form table per plugin.

    Unknown keys whose value is a table are plugin tables; any other unknown key
    is still an error.
    """

    tables: dict[str, dict[str, Any]] = Field(default_factory=dict, exclude=True)
    # Fields whose value may legitimately be a table, so never taken for a plugin table.
    _own_tables: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _collect_plugin_tables(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        tables = dict(data.pop("tables", {}) or {})
        for key in list(data):
            if key not in cls.model_fields and isinstance(data[key], dict):
                tables[key] = data.pop(key)
        data["tables"] = tables
        return data

    def plugin_settings(self, name: str) -> dict[str, Any]:
        """The free-form table for plugin ``name`` (empty when absent)."""
        return dict(self.tables.get(name, {}))


def _check_cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"not a valid CIDR: {exc}") from None
    return value


def _check_ip(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"not a valid IP address: {value!r}") from None
    return value


class StoreConfig(PluginTablesSection):
    backend: str = Field("sqlite", description="entry point name in group kcore.store")
    path: str | None = Field(None, description="database file; default <data-dir>/store.db")
    compaction_interval_seconds: int = Field(300, ge=0, description="0 disables compaction")
    compaction_retain_revisions: int = Field(10000, ge=1)


class ApiServerConfig(Section):
    bind_address: str = "0.0.0.0"
    port: int = Field(6443, ge=0, le=65535)
    insecure_http: bool = Field(False, description="serve plain HTTP (loopback only)")
    advertise_address: str | None = Field(None, description=(
        "the address nodes and pods reach the API on (the kubernetes Service's endpoint); "
        "default: bind_address when it is a specific address, else 127.0.0.1"))
    max_request_body_bytes: int = Field(3 * 1024 * 1024, ge=1024)
    max_inflight_requests: int = Field(400, ge=1)
    token_ttl_seconds: int = Field(3600, ge=60)

    _ip = field_validator("bind_address")(_check_ip)


class SchedulerPluginRef(Section):
    name: str
    weight: int = Field(1, ge=0, le=100)


class SchedulerProfile(Section):
    name: str = Field(description="matched by a pod's spec.schedulerName")
    algorithm: str | None = Field(None, description="entry point name in kcore.scheduler")
    plugins: list[SchedulerPluginRef] | None = Field(
        None, description="filter/score plugins in order, with score weights"
    )

    @model_validator(mode="after")
    def _one_of(self) -> SchedulerProfile:
        if self.algorithm is not None and self.plugins is not None:
            raise ValueError("a profile names either an algorithm or plugins, not both")
        return self


class SchedulerConfig(Section):
    profiles: list[SchedulerProfile] = Field(
        default_factory=lambda: [SchedulerProfile(name="default-scheduler")]
    )
    percentage_of_nodes_to_score: int = Field(0, ge=0, le=100, description="0 means adaptive")

    @field_validator("profiles")
    @classmethod
    def _unique(cls, profiles: list[SchedulerProfile]) -> list[SchedulerProfile]:
        names = [p.name for p in profiles]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate profile names: {', '.join(dupes)}")
        return profiles


class ProxyConfig(PluginTablesSection):
    enabled: bool = Field(True, description="run the service proxy on every node")
    mode: str = Field("userspace", description="entry point name in kcore.proxy")
    service_cidr: str | None = Field(None, description="older spelling of [network] service_cidr")
    node_port_range: str = "30000-32767"

    @field_validator("service_cidr")
    @classmethod
    def _optional_cidr(cls, value: str | None) -> str | None:
        return None if value is None else _check_cidr(value)

    @field_validator("node_port_range")
    @classmethod
    def _port_range(cls, value: str) -> str:
        try:
            low, high = (int(part) for part in value.split("-", 1))
        except ValueError:
            raise ValueError(f"expected LOW-HIGH, got {value!r}") from None
        if not 1 <= low <= high <= 65535:
            raise ValueError(f"not a valid port range: {value!r}")
        return value


class NetworkConfig(PluginTablesSection):
    plugin: str = Field("flannel", description="entry point name in kcore.cni, or 'none'")
    cluster_cidr: str = "10.244.0.0/16"
    service_cidr: str = Field("10.96.0.0/12", description=(
        "Services' ClusterIPs; without root and unset: 127.96.0.0/16 (loopback)"))
    subnet_length: int = Field(24, ge=8, le=30)
    backend: Literal["vxlan", "host-gw"] = "vxlan"
    vni: int = Field(1, ge=1, le=16777215)
    port: int = Field(8472, ge=1, le=65535)
    mtu: int | None = Field(None, ge=576, description="default: underlay MTU minus 50 (vxlan)")

    _cidr = field_validator("cluster_cidr", "service_cidr")(_check_cidr)


class DnsConfig(PluginTablesSection):
    enabled: bool = True
    plugin: str = Field("coredns", description="entry point name in kcore.dns")
    cluster_domain: str = "cluster.local"
    service_ip: str | None = Field(None, description="the address pods query; default: the 10th address "
                                   "of the service CIDR (the kube-dns Service's ClusterIP)")
    address: str | None = Field(None, description="where the server listens; default: the node's address "
                                "as root (reached through the kube-dns Service), else service_ip")
    port: int | None = Field(None, ge=0, le=65535, description="default: 53 as root, else 10053")
    upstream: list[str] = Field(default_factory=list, description=(
        "resolvers for names outside the cluster (ip[:port] or a resolv.conf path); "
        "unset: the host's /etc/resolv.conf; [] : REFUSED"))

    @field_validator("service_ip", "address")
    @classmethod
    def _optional_ip(cls, value: str | None) -> str | None:
        return None if value is None else _check_ip(value)


class LoggingConfig(PluginTablesSection):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "console", "json"] = "auto"
    outputs: list[str] = Field(default_factory=list, description="kcore.logging plugins to ship to")


class StorageConfig(PluginTablesSection):
    provisioner: str = "hostpath"
    root: str | None = Field(None, description="default: <data-dir>/volumes")


class ImageEntrypoint(Section):
    command: list[str]
    args: list[str] = Field(default_factory=list)


class KubeletConfig(Section):
    runtime: str = Field("process", description="entry point name in kcore.runtime")
    cpu: str | None = Field(None, description="allocatable cpu; default: the host's")
    memory: str | None = Field(None, description="allocatable memory; default: the host's")
    max_pods: int = Field(110, ge=1)
    lease_duration_seconds: int = Field(40, ge=1)
    lease_renew_interval_seconds: float = Field(10, gt=0)
    status_update_interval_seconds: float = Field(60, gt=0)
    images: dict[str, ImageEntrypoint] = Field(
        default_factory=dict, description="image -> entrypoint, for containers without command"
    )
    node_ip: str = Field("127.0.0.1", description="the node's InternalIP (and pods' IP on the host network)")
    port: int = Field(10250, ge=0, le=65535, description=(
        "HTTPS port of the kubelet server on node_ip (logs and exec for the API server; agents "
        "only); 0 picks a free port; a busy port falls back to a free one"))
    stop_pods_on_shutdown: bool = Field(
        True, description="stop every pod's containers when the kubelet stops (else a restarted kubelet adopts them)"
    )
    log_max_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="container log size before rotation")
    log_max_files: int = Field(5, ge=1, description="rotated log files kept per container")
    backoff_base_seconds: float = Field(10, gt=0, description="first CrashLoopBackOff delay")
    backoff_max_seconds: float = Field(300, gt=0, description="longest CrashLoopBackOff delay")
    relist_period_seconds: float = Field(1, gt=0, description="how often the runtime is relisted for changes")
    probe_period_scale: float = Field(1, gt=0, description="multiplies probe periods and delays (tests shrink it)")
    network_check_period_seconds: float = Field(
        30, gt=0, description="how often running pods' networks are checked (CNI CHECK) and repaired")

    _node_ip = field_validator("node_ip")(_check_ip)


class NodeLifecycleConfig(Section):
    grace_period_seconds: float = Field(40, gt=0)
    default_toleration_seconds: int = Field(300, ge=0)
    eviction_rate_per_second: float = Field(0.1, gt=0)
    monitor_period_seconds: float = Field(5, gt=0)


class ControllersConfig(Section):
    enabled: list[str] = Field(
        default_factory=lambda: ["*"],
        description='controllers to run: "*" for all, a name to add, "-name" to remove')
    node_lifecycle: NodeLifecycleConfig = Field(default_factory=NodeLifecycleConfig)


class KcoreConfig(Section):
    """The whole configuration file."""

    store: StoreConfig = Field(default_factory=StoreConfig)
    apiserver: ApiServerConfig = Field(default_factory=ApiServerConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    proxy: ProxyConfig = Field(default_factory=ProxyConfig)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    dns: DnsConfig = Field(default_factory=DnsConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    kubelet: KubeletConfig = Field(default_factory=KubeletConfig)
    controllers: ControllersConfig = Field(default_factory=ControllersConfig)
    plugins: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="free-form settings per plugin: [plugins.<name>]"
    )

    @model_validator(mode="after")
    def _one_service_cidr(self) -> KcoreConfig:
        """``[proxy] service_cidr`` (the older place) means ``[network] service_cidr``."""
        older = self.proxy.service_cidr
        if older is None:
            return self
        if "service_cidr" in self.network.model_fields_set and self.network.service_cidr != older:
            raise ValueError(f"network.service_cidr ({self.network.service_cidr}) and proxy.service_cidr "
                             f"({older}) differ; set only network.service_cidr")
        self.network = self.network.model_copy(update={"service_cidr": older})
        self.network.model_fields_set.add("service_cidr")
        return self


def _key_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _lookup(data: Any, loc: tuple[int | str, ...]) -> tuple[bool, Any]:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return False, None
    return True, data


def _describe(exc: ValidationError, raw: dict[str, Any]) -> list[str]:
    lines = []
    for error in exc.errors():
        loc = tuple(p for p in error["loc"] if p != "tables")
        path = _key_path(loc) or "(top level)"
        message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        message = message.removeprefix("Value error, ")
        found, value = _lookup(raw, loc)
        suffix = f" (value: {value!r})" if found else ""
        lines.append(f"{path}: {message}{suffix}")
    return lines


def parse_config(raw: dict[str, Any], source: str = "configuration") -> KcoreConfig:
    """Validate a parsed TOML document; ConfigError names every bad key path."""
    try:
        return KcoreConfig.model_validate(raw)
    except ValidationError as exc:
        problems = _describe(exc, raw)
        raise ConfigError(f"invalid {source}: " + "; ".join(problems)) from None


def load_config(path: str | Path | None) -> KcoreConfig:
    """Read ``path`` (or return the defaults when None)."""
    if path is None:
        return KcoreConfig()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc.strerror}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    return parse_config(raw, source=str(path))


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value if v is not None]
    return value


def config_to_dict(config: KcoreConfig) -> dict[str, Any]:
    """The effective configuration as plain data, plugin tables back in place."""
    data = config.model_dump(mode="json")
    for name in KcoreConfig.model_fields:
        section = getattr(config, name)
        if isinstance(section, PluginTablesSection):
            data[name].update(section.tables)
    return _without_none(data)


def render_config(config: KcoreConfig) -> str:
    """The effective configuration as TOML (unset optional values are omitted)."""
    return tomli_w.dumps(config_to_dict(config))
