"""The kubelet's side of the pod network: one network namespace per pod, wired by the
configured ``kcore.cni`` plugin.

Like a CRI runtime with CNI, the kubelet creates the pod's namespace itself
(``ip netns add kcore-<pod uid>``), writes the pod's ``resolv.conf`` and ``hosts``
under ``/etc/netns/<name>/`` (``ip netns exec``, which the process runtime uses to
start containers, bind-mounts them over ``/etc``), then asks the plugin to attach
it (``kcore_cni_add``) and takes the pod's IP from the CNI result. Deleting a pod
runs ``kcore_cni_del`` and removes the namespace and its files.

Pod networking needs root (as with k3s). Without root, with ``[network] plugin =
"none"``, or when the plugin is missing or fails to set the node up, pods share
the host's network and their IP is the node's: :meth:`PodNetwork.start` says so
in one warning naming the cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kcore.api.core_v1 import Pod
from kcore.config import KcoreConfig
from kcore.kubelet.dns import pod_resolv_conf
from kcore.log import get_logger

log = get_logger("kubelet.network")

CNI_GROUP = "kcore.cni"
NETNS_PREFIX = "kcore-"
NETNS_DIR = Path("/run/netns")
NETNS_ETC = Path("/etc/netns")
HOST_RESOLV_CONF = Path("/etc/resolv.conf")

Obj = dict[str, Any]


class PodNetworkError(Exception):
    """The network plugin could not wire a pod (the pod's sandbox cannot start yet)."""


@dataclass
class CniContext:
    """What network plugins are told about the node (the hooks' ``context``)."""

    client: Any
    data_dir: Path
    node_name: str
    node_ip: str
    node_netns: str | None = None
    log: Any = field(default=None, repr=False)


@dataclass(frozen=True)
class PodNetworkInfo:
    """A networked pod: its namespace's name and its address."""

    netns: str
    ip: str


def netns_name(uid: str) -> str:
    """The pod's namespace name under /run/netns (stable, so a restarted kubelet finds it)."""
    return f"{NETNS_PREFIX}{uid}"


def ip_from_result(result: Any) -> str:
    """The pod's address from a CNI result (the first entry of ``ips``, without prefix)."""
    ips = (result or {}).get("ips") if isinstance(result, dict) else None
    if not ips:
        raise PodNetworkError(f"the network plugin returned no IP address (result: {result!r})")
    address = str(ips[0].get("address") or "")
    try:
        return str(ipaddress.ip_interface(address).ip)
    except ValueError:
        raise PodNetworkError(f"the network plugin returned an invalid address {address!r}") from None


def hosts_file(pod: Obj, ip: str) -> str:
    """The pod's /etc/hosts, as the kubelet writes it (localhost, then the pod's own name)."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    hostname = spec.get("hostname") or meta.get("name") or "pod"
    fqdn = ""
    if spec.get("subdomain"):
        fqdn = f"{hostname}.{spec['subdomain']}.{meta.get('namespace') or 'default'}.svc"
    lines = ["# Kubernetes-managed hosts file (kcore).", "127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             f"{ip}\t{fqdn + chr(9) if fqdn else ''}{hostname}"]
    for alias in spec.get("hostAliases") or []:
        names = " ".join(alias.get("hostnames") or [])
        if alias.get("ip") and names:
            lines.append(f"{alias['ip']}\t{names}")
    return "\n".join(lines) + "\n"


async def _run(*argv: str, check: bool = True) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    code = proc.returncode or 0
    text = err.decode(errors="replace").strip()
    if check and code != 0:
        raise PodNetworkError(f"`{' '.join(argv)}` failed (exit {code}): {text}")
    return code, text


def is_host_network(pod: Obj) -> bool:
    return bool((pod.get("spec") or {}).get("hostNetwork"))


class PodNetwork:
    """The node's pod network, or the reason there is none (pods then use the host's)."""

    def __init__(self, host: Any, config: KcoreConfig, *, client: Any, node_name: str,
                 data_dir: Path, node_netns: str | None = None) -> None:
        self.host = host
        self.config = config
        self.plugin = config.network.plugin
        self.context = CniContext(client=client, data_dir=data_dir, node_name=node_name,
                                  node_ip=config.kubelet.node_ip, node_netns=node_netns, log=log)
        self.enabled = False
        self.reason = "not started"
        self._locks: dict[str, asyncio.Lock] = {}

    # -- the node -------------------------------------------------------------------

    def unavailable_reason(self) -> str | None:
        """Why pods cannot get their own network here, or None when they can."""
        if self.plugin == "none":
            return "[network] plugin = \"none\""
        if os.geteuid() != 0:
            return "pod network namespaces need root (run kcore as root, as k3s is run)"
        installed = self.host.names(CNI_GROUP)
        if self.plugin not in installed:
            return (f"network plugin {self.plugin!r} is not installed "
                    f"(installed: {', '.join(sorted(installed)) or 'none'})")
        if shutil.which("ip") is None:
            return "the `ip` command (iproute2) is missing"
        return None

    async def start(self, node: Obj) -> None:
        """Set the node's network up through the plugin, or say why pods use the host's."""
        reason = self.unavailable_reason()
        if reason is None:
            try:
                await self.host.acall_driver(
                    CNI_GROUP, self.plugin, "kcore_cni_setup_node",
                    settings=self._settings(), node=node, context=self.context)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the node still runs pods, on the host network
                reason = f"network plugin {self.plugin!r} failed to set up the node: {exc}"
                log.error("pod network setup failed", plugin=self.plugin, error=str(exc))
        self.enabled = reason is None
        self.reason = reason or ""
        if self.enabled:
            log.info("pod network ready: every pod gets its own network namespace",
                     plugin=self.plugin, node=self.context.node_name)
        else:
            log.warning("no pod network: pods share the host's network and their podIP is the node's address",
                        reason=reason, node_ip=self.context.node_ip, network_plugin=self.plugin)

    async def stop(self, *, teardown: bool) -> None:
        """The kubelet stops: remove the node's network (``teardown``) or just stop watching."""
        if not self.enabled:
            return
        self.enabled = False
        hook = "kcore_cni_teardown_node" if teardown else "kcore_cni_stop_node"
        if not self.host.has_hook(CNI_GROUP, self.plugin, hook):
            return
        try:
            await self.host.acall_driver(CNI_GROUP, self.plugin, hook, context=self.context)
        except Exception as exc:  # noqa: BLE001 - shutting down anyway; say what was left
            log.error("network plugin failed to stop", plugin=self.plugin, hook=hook, error=str(exc))

    def _settings(self) -> Obj:
        net = self.config.network
        settings: Obj = {k: getattr(net, k) for k in
                         ("cluster_cidr", "subnet_length", "backend", "vni", "port", "mtu")}
        settings.update(net.plugin_settings(self.plugin))
        return settings

    # -- pods -----------------------------------------------------------------------

    def wants_namespace(self, pod: Obj) -> bool:
        return self.enabled and not is_host_network(pod)

    def _lock(self, uid: str) -> asyncio.Lock:
        return self._locks.setdefault(uid, asyncio.Lock())

    async def add(self, pod: Obj, model: Pod) -> PodNetworkInfo:
        """Create the pod's namespace, its /etc files, and attach it (idempotent: a retry
        or a restarted kubelet gets the same namespace and address back).

        :raises PodNetworkError: when the namespace or the plugin fails; nothing is left half-made.
        """
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        name = netns_name(uid)
        async with self._lock(uid):
            if not (NETNS_DIR / name).exists():
                await _run("ip", "netns", "add", name)
            try:
                result = await self.host.acall_driver(CNI_GROUP, self.plugin, "kcore_cni_add",
                                                      pod=model, netns=name, context=self.context)
                ip = ip_from_result(result)
                await asyncio.to_thread(self._write_etc, name, pod, ip)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._remove(model, name)
                if isinstance(exc, PodNetworkError):
                    raise
                raise PodNetworkError(f"plugin type=\"{self.plugin}\" failed (add): {exc}") from exc
        log.info("pod networked", pod=f"{(pod.get('metadata') or {}).get('namespace')}/"
                 f"{(pod.get('metadata') or {}).get('name')}", netns=name, ip=ip)
        return PodNetworkInfo(name, ip)

    async def check(self, model: Pod, name: str) -> bool | None:
        """The plugin's verdict on a running pod's network (CNI CHECK); None: cannot tell."""
        if not self.host.has_hook(CNI_GROUP, self.plugin, "kcore_cni_check"):
            return None
        try:
            return await self.host.acall_driver(CNI_GROUP, self.plugin, "kcore_cni_check",
                                                pod=model, netns=name, context=self.context)
        except Exception as exc:  # noqa: BLE001 - a failing check is a broken network
            log.warning("network check failed", netns=name, error=str(exc))
            return False

    async def delete(self, model: Pod, name: str) -> None:
        """Detach the pod and remove its namespace and files (safe to repeat)."""
        async with self._lock(str(model.metadata.uid or "")):
            await self._remove(model, name)
        self._locks.pop(str(model.metadata.uid or ""), None)

    async def _remove(self, model: Pod, name: str) -> None:
        try:
            await self.host.acall_driver(CNI_GROUP, self.plugin, "kcore_cni_del",
                                         pod=model, netns=name, context=self.context)
        except Exception as exc:  # noqa: BLE001 - the namespace still goes; the address may leak
            log.error("network plugin failed to delete a pod's network", netns=name, error=str(exc))
        if (NETNS_DIR / name).exists():
            await _run("ip", "netns", "delete", name, check=False)
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(shutil.rmtree, NETNS_ETC / name)

    def _write_etc(self, name: str, pod: Obj, ip: str) -> None:
        directory = NETNS_ETC / name
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "resolv.conf").write_text(self.resolv_conf(pod))
        (directory / "hosts").write_text(hosts_file(pod, ip))

    def resolv_conf(self, pod: Obj) -> str:
        """The pod's resolv.conf from its dnsPolicy and the cluster DNS settings."""
        dns = self.config.dns
        cluster_dns = [cluster_dns_ip(self.config)] if dns.enabled else []
        try:
            host_text = HOST_RESOLV_CONF.read_text()
        except OSError:
            host_text = ""
        return pod_resolv_conf(pod, cluster_dns=cluster_dns, cluster_domain=dns.cluster_domain,
                               host_resolv_conf=host_text)


def cluster_dns_ip(config: KcoreConfig) -> str:
    """The address pods are told to send DNS queries to: ``[dns] service_ip``, else the
    10th address of the service CIDR (10.96.0.10 by default, as kubeadm picks)."""
    if config.dns.service_ip:
        return config.dns.service_ip
    network = ipaddress.ip_network(config.network.service_cidr)
    return str(network.network_address + 10)

