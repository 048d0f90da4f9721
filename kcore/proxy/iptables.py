"""Render a ``ProxyState`` as ``iptables-restore`` input, in kube-proxy's shape.

Pure text, nothing is installed: ``render_iptables(state)`` returns the filter
and nat tables the way ``iptables-save`` shows them on a kube-proxy node;
``render_chains(state)`` gives the same rules per chain and ``diff_rules(old,
new)`` says which chains differ, so the ``iptables`` mode
(``kcore.proxy.iptables_mode``) sends only those with ``iptables-restore
--noflush``.

The nat table:

* ``KUBE-SERVICES``: one jump per cluster IP (and external/load-balancer IP)
  to the service port's ``KUBE-SVC-<hash>`` chain; last, node-local traffic
  goes to ``KUBE-NODEPORTS``.
* ``KUBE-NODEPORTS``: per node port, mark for masquerade and jump to the
  service chain.
* ``KUBE-SVC-<hash>``: mark traffic from outside the cluster CIDR for
  masquerade, then (with ClientIP affinity) one ``-m recent --rcheck`` rule
  per endpoint, then spread over the endpoints: endpoint ``i`` of ``n`` is
  taken with probability ``1/(n-i)``, the last one unconditionally.
* ``KUBE-SEP-<hash>``: hairpin masquerade for the endpoint itself, then DNAT
  to the endpoint (with ``-m recent --set`` under affinity).
* ``KUBE-MARK-MASQ`` / ``KUBE-POSTROUTING``: the 0x4000 mark and the
  MASQUERADE for marked packets.

A service port without endpoints gets no nat rules; the filter table rejects
its traffic instead ("has no endpoints"). Headless services are skipped.

Chain names hash like kube-proxy's: the first 16 characters of the base32
encoding of sha256("namespace/name:port" + protocol [+ "ip:port"]).
Probabilities are printed as iptables-save prints them after the kernel
rounded them to 31 bits (1/3 -> 0.33333333349, 1/2 -> 0.50000000000).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from kcore.proxy.state import Endpoint, ProxyState, ServicePort

MASQ_MARK = "0x4000"

NAT_CHAINS = ("KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ")
FILTER_CHAINS = ("KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD")


# ---------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------


def service_port_name(svc: ServicePort) -> str:
    """kube-proxy's ``ServicePortName.String()``: ``ns/name:port`` (``ns/name`` if unnamed)."""
    base = f"{svc.namespace}/{svc.name}"
    return f"{base}:{svc.port_name}" if svc.port_name else base


def _hash16(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def service_chain(svc: ServicePort) -> str:
    """``KUBE-SVC-`` + hash of the service port name and protocol."""
    return "KUBE-SVC-" + _hash16(service_port_name(svc) + svc.protocol.lower())


def endpoint_chain(svc: ServicePort, ep: Endpoint) -> str:
    """``KUBE-SEP-`` + hash of the service port name, protocol and endpoint."""
    return "KUBE-SEP-" + _hash16(service_port_name(svc) + svc.protocol.lower() + join_host_port(ep.ip, ep.port))


def probability(n: int) -> str:
    """``1/n`` as iptables-save prints it (the kernel keeps it in 31 bits)."""
    scaled = int((1.0 / n) * 0x80000000 + 0.5)
    return f"{scaled / 0x80000000:.11f}"


def _comment(text: str) -> list[str]:
    return ["-m", "comment", "--comment", f'"{text}"' if " " in text else text]


def _proto(svc: ServicePort) -> list[str]:
    p = svc.protocol.lower()
    return ["-m", p, "-p", p]


def _family(ip: str) -> int:
    return ipaddress.ip_address(ip).version


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Table:
    name: str
    chains: dict[str, list[str]]

    def chain(self, chain: str) -> list[str]:
        return self.chains.setdefault(chain, [])

    def add(self, chain: str, *args: str | list[str]) -> None:
        words: list[str] = []
        for arg in args:
            words.extend([arg] if isinstance(arg, str) else arg)
        self.chain(chain).append(" ".join(["-A", chain, *words]))

    def text(self) -> list[str]:
        lines = [f"*{self.name}"]
        lines += [f":{chain} - [0:0]" for chain in self.chains]
        for rules in self.chains.values():
            lines += rules
        lines.append("COMMIT")
        return lines


def _sorted_endpoints(endpoints: Iterable[Endpoint], family: int) -> list[Endpoint]:
    unique = {(ep.ip, ep.port): ep for ep in endpoints if _family(ep.ip) == family}
    return [unique[k] for k in sorted(unique, key=lambda k: (ipaddress.ip_address(k[0]), k[1]))]


def _services(state: ProxyState, family: int) -> list[ServicePort]:
    out = []
    for svc in state.services:
        if not svc.cluster_ip or svc.cluster_ip.lower() == "none":
            continue  # headless: nothing to proxy
        if _family(svc.cluster_ip) == family:
            out.append(svc)
    return sorted(out, key=lambda s: (service_port_name(s), s.protocol))


def _build(state: ProxyState, family: int) -> tuple[_Table, _Table]:
    filt = _Table("filter", {c: [] for c in FILTER_CHAINS})
    nat = _Table("nat", {c: [] for c in NAT_CHAINS})
    cidr = state.cluster_cidr
    if cidr and ipaddress.ip_network(cidr, strict=False).version != family:
        cidr = None

    # Fixed rules.
    mark = f"{MASQ_MARK}/{MASQ_MARK}"
    filt.add("KUBE-FORWARD", "-m conntrack --ctstate INVALID -j DROP")
    filt.add("KUBE-FORWARD", _comment("kubernetes forwarding rules"), f"-m mark --mark {mark} -j ACCEPT")
    filt.add("KUBE-FORWARD", _comment("kubernetes forwarding conntrack rule"),
             "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
    nat.add("KUBE-POSTROUTING", f"-m mark ! --mark {mark} -j RETURN")
    nat.add("KUBE-POSTROUTING", f"-j MARK --xor-mark {MASQ_MARK}")
    nat.add("KUBE-POSTROUTING", _comment("kubernetes service traffic requiring SNAT"), "-j MASQUERADE --random-fully")
    nat.add("KUBE-MARK-MASQ", f"-j MARK --or-mark {MASQ_MARK}")

    svc_chains: list[tuple[str, list[str]]] = []
    sep_chains: list[tuple[str, list[str]]] = []
    for svc in _services(state, family):
        name = service_port_name(svc)
        proto = _proto(svc)
        endpoints = _sorted_endpoints(svc.ready_endpoints(), family)
        external = [ip for ip in (*svc.external_ips, *svc.load_balancer_ips) if _family(ip) == family]
        assert svc.cluster_ip is not None

        if not endpoints:
            reject = _comment(f"{name} has no endpoints")
            filt.add("KUBE-SERVICES", reject, proto, f"-d {svc.cluster_ip} --dport {svc.port} -j REJECT")
            for ip in external:
                filt.add("KUBE-EXTERNAL-SERVICES", reject, proto, f"-d {ip} --dport {svc.port} -j REJECT")
            if svc.node_port:
                filt.add("KUBE-EXTERNAL-SERVICES", reject, "-m addrtype --dst-type LOCAL", proto,
                         f"--dport {svc.node_port} -j REJECT")
            continue

        chain = service_chain(svc)
        nat.add("KUBE-SERVICES", _comment(f"{name} cluster IP"), proto,
                f"-d {svc.cluster_ip} --dport {svc.port} -j {chain}")
        for ip in external:
            nat.add("KUBE-SERVICES", _comment(f"{name} external IP"), proto,
                    f"-d {ip} --dport {svc.port} -j KUBE-MARK-MASQ")
            nat.add("KUBE-SERVICES", _comment(f"{name} external IP"), proto, f"-d {ip} --dport {svc.port} -j {chain}")
        if svc.node_port:
            nat.add("KUBE-NODEPORTS", _comment(name), proto, f"--dport {svc.node_port} -j KUBE-MARK-MASQ")
            nat.add("KUBE-NODEPORTS", _comment(name), proto, f"--dport {svc.node_port} -j {chain}")

        svc_rules = _Table("nat", {})
        if cidr:
            svc_rules.add(chain, _comment(f"{name} cluster IP"), proto,
                          f"-d {svc.cluster_ip} --dport {svc.port} ! -s {cidr} -j KUBE-MARK-MASQ")
        seps = [(ep, endpoint_chain(svc, ep)) for ep in endpoints]
        if svc.session_affinity:
            for ep, sep in seps:
                svc_rules.add(chain, _comment(f"{name} -> {join_host_port(ep.ip, ep.port)}"),
                              f"-m recent --name {sep} --rcheck --seconds {svc.affinity_timeout_seconds} --reap",
                              f"-j {sep}")
        n = len(seps)
        for i, (ep, sep) in enumerate(seps):
            spread = [] if i == n - 1 else ["-m statistic --mode random --probability", probability(n - i)]
            svc_rules.add(chain, _comment(f"{name} -> {join_host_port(ep.ip, ep.port)}"), *spread, f"-j {sep}")
        svc_chains.append((chain, svc_rules.chain(chain)))

        for ep, sep in seps:
            sep_rules = _Table("nat", {})
            sep_rules.add(sep, _comment(name), f"-s {ep.ip} -j KUBE-MARK-MASQ")
            recent = [f"-m recent --name {sep} --set"] if svc.session_affinity else []
            sep_rules.add(sep, _comment(name), *recent, proto,
                          f"-j DNAT --to-destination {join_host_port(ep.ip, ep.port)}")
            sep_chains.append((sep, sep_rules.chain(sep)))

    nat.add("KUBE-SERVICES",
            _comment("kubernetes service nodeports; NOTE: this must be the last rule in this chain"),
            "-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS")
    for chain, rules in [*svc_chains, *sep_chains]:
        nat.chains.setdefault(chain, []).extend(rules)
    return filt, nat


Chains = dict[tuple[str, str], tuple[str, ...]]
"""``{(table, chain): rules}`` in rendering order (filter first, then nat)."""


def render_chains(state: ProxyState, family: int = 4) -> Chains:
    """The same rules as ``render_iptables``, per chain: what an incremental sync compares."""
    filt, nat = _build(state, family)
    return {(table.name, chain): tuple(rules) for table in (filt, nat) for chain, rules in table.chains.items()}


def owned_chain(table: str, chain: str) -> bool:
    """Whether ``chain`` is one the renderer writes (so a proxy may flush and delete it)."""
    if table == "nat":
        return chain in NAT_CHAINS or chain.startswith(("KUBE-SVC-", "KUBE-SEP-"))
    return table == "filter" and chain in FILTER_CHAINS


def render_iptables(state: ProxyState, family: int = 4) -> str:
    """The filter and nat tables for ``state`` as ``iptables-restore`` input.

    ``family`` 4 renders for iptables, 6 for ip6tables: services and
    endpoints of the other family are left out.
    """
    filt, nat = _build(state, family)
    return "\n".join([*filt.text(), *nat.text()]) + "\n"


def parse_chains(text: str) -> dict[tuple[str, str], tuple[str, ...]]:
    """``{(table, chain): rules}`` from iptables-restore/iptables-save text."""
    chains: dict[tuple[str, str], list[str]] = {}
    table = ""
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":"):
            chains.setdefault((table, line[1:].split()[0]), [])
        elif line.startswith("-A "):
            chains.setdefault((table, line.split()[1]), []).append(line)
    return {key: tuple(rules) for key, rules in chains.items()}


@dataclass(frozen=True, slots=True)
class RulesDiff:
    """Chains, as ``(table, chain)``, that differ between two renderings."""

    added: tuple[tuple[str, str], ...] = ()
    removed: tuple[tuple[str, str], ...] = ()
    changed: tuple[tuple[str, str], ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def diff_rules(old: ProxyState, new: ProxyState, family: int = 4) -> RulesDiff:
    """Which chains a move from ``old`` to ``new`` adds, removes or changes."""
    before = parse_chains(render_iptables(old, family))
    after = parse_chains(render_iptables(new, family))
    return RulesDiff(
        added=tuple(sorted(after.keys() - before.keys())),
        removed=tuple(sorted(before.keys() - after.keys())),
        changed=tuple(sorted(k for k in before.keys() & after.keys() if before[k] != after[k])),
    )
