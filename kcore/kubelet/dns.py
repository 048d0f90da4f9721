"""What a pod's ``/etc/resolv.conf`` says, from its ``dnsPolicy`` and ``dnsConfig``.

Pure functions following the kubelet (``pkg/kubelet/network/dns/dns.go``), so the
same pod gets the same file here as on a Kubernetes node:

* ``ClusterFirst`` (the default): the cluster DNS as the only nameserver, search
  ``<ns>.svc.<domain> svc.<domain> <domain>`` then the host's search domains,
  ``options ndots:5`` (the host's options are dropped). With ``hostNetwork`` it
  falls back to ``Default``; so does it when no cluster DNS is configured.
* ``ClusterFirstWithHostNet``: ``ClusterFirst``, also on the host network.
* ``Default``: the host's nameservers, search domains and options.
* ``None``: nothing but the pod's ``dnsConfig``.

``dnsConfig`` is merged on top of every policy: nameservers and searches are
appended (duplicates dropped), options are merged by name with the pod's value
winning. The result is cut to Kubernetes' limits: 3 nameservers, 32 search
domains of at most 253 characters, 2048 characters of search line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kcore.log import get_logger

log = get_logger("kubelet.dns")

MAX_NAMESERVERS = 3
MAX_SEARCH_DOMAINS = 32
MAX_SEARCH_LINE_CHARS = 2048
MAX_SEARCH_DOMAIN_CHARS = 253  # a DNS-1123 subdomain; longer ones make glibc abort
DEFAULT_OPTIONS = ("ndots:5",)

CLUSTER_FIRST = "ClusterFirst"
CLUSTER_FIRST_WITH_HOST_NET = "ClusterFirstWithHostNet"
DEFAULT = "Default"
NONE = "None"


def parse_resolv_conf(text: str) -> tuple[list[str], list[str], list[str]]:
    """``(nameservers, searches, options)`` of a resolv.conf, read as the kubelet reads it.

    ``nameserver`` lines accumulate; the last ``search`` and the last ``options``
    line win. Search domains lose a trailing dot so ``a.test`` and ``a.test.``
    count once. Comments (``#``, ``;``) and other keywords are ignored.
    """
    nameservers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0].startswith(("#", ";")):
            continue
        keyword, args = fields[0], fields[1:]
        if keyword == "nameserver" and args:
            nameservers.append(args[0])
        elif keyword == "search":
            searches = [domain.rstrip(".") for domain in args if domain.rstrip(".")]
        elif keyword == "options":
            options = list(args)
    return nameservers, searches, options


def pod_resolv_conf(pod: Mapping[str, Any], *, cluster_dns: list[str], cluster_domain: str,
                    host_resolv_conf: str) -> str:
    """The text of ``pod``'s ``/etc/resolv.conf`` (the pod as an API dict).

    ``cluster_dns`` are the cluster DNS addresses (empty: none configured, and
    ``ClusterFirst`` pods get the host's settings, as the kubelet does);
    ``host_resolv_conf`` is the text of the node's resolv.conf.
    """
    spec = pod.get("spec") or {}
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    policy = _effective_policy(spec, bool(cluster_dns))
    if policy == NONE:
        nameservers, searches, options = [], [], []
    else:
        nameservers, searches, options = parse_resolv_conf(host_resolv_conf)
        if policy == CLUSTER_FIRST:
            nameservers = list(cluster_dns)
            searches = _cluster_searches(namespace, cluster_domain, searches)
            options = list(DEFAULT_OPTIONS)
    dns_config = spec.get("dnsConfig")
    if dns_config:
        nameservers = _unique([*nameservers, *(dns_config.get("nameservers") or [])])
        searches = _unique([*searches, *(dns_config.get("searches") or [])])
        options = merge_options(options, dns_config.get("options") or [])
    return render(_fit_nameservers(nameservers), _fit_searches(searches), options)


def _effective_policy(spec: Mapping[str, Any], have_cluster_dns: bool) -> str:
    """``ClusterFirst``, ``Default`` or ``None``: what the pod's policy amounts to here."""
    policy = spec.get("dnsPolicy") or CLUSTER_FIRST  # the API server's default
    if policy == NONE:
        return NONE
    if policy == DEFAULT or (policy == CLUSTER_FIRST and spec.get("hostNetwork")):
        return DEFAULT
    if policy not in (CLUSTER_FIRST, CLUSTER_FIRST_WITH_HOST_NET):
        log.warning("unknown dnsPolicy, using ClusterFirst", dns_policy=policy)
    if not have_cluster_dns:
        log.debug("no cluster DNS configured: ClusterFirst falls back to Default")
        return DEFAULT
    return CLUSTER_FIRST


def _cluster_searches(namespace: str, cluster_domain: str, host_searches: list[str]) -> list[str]:
    domain = cluster_domain.strip(".")
    if not domain:
        return host_searches
    return _unique([f"{namespace}.svc.{domain}", f"svc.{domain}", domain, *host_searches])


def merge_options(base: Iterable[str], pod_options: Iterable[Mapping[str, Any]]) -> list[str]:
    """``base`` (``name[:value]`` strings) with the pod's ``{name, value}`` options on top.

    An option named twice keeps its first position and takes the last value.
    """
    merged: dict[str, str | None] = {}
    for option in base:
        name, sep, value = option.partition(":")
        merged[name] = value if sep else None
    for option in pod_options:
        name = option.get("name")
        if name:
            value = option.get("value")
            merged[name] = str(value) if value not in (None, "") else None
    return [name if value is None else f"{name}:{value}" for name, value in merged.items()]


def _fit_nameservers(nameservers: list[str]) -> list[str]:
    if len(nameservers) > MAX_NAMESERVERS:
        log.warning("nameserver limit exceeded, some nameservers omitted",
                    applied=nameservers[:MAX_NAMESERVERS], omitted=nameservers[MAX_NAMESERVERS:])
    return nameservers[:MAX_NAMESERVERS]


def _fit_searches(searches: list[str]) -> list[str]:
    """Drop domains past the 32nd, over 253 characters, then from the end until the line fits."""
    fitted = [s for s in searches[:MAX_SEARCH_DOMAINS] if len(s) <= MAX_SEARCH_DOMAIN_CHARS]
    while fitted and len(" ".join(fitted)) > MAX_SEARCH_LINE_CHARS:
        fitted.pop()
    if fitted != searches:
        log.warning("search line limits exceeded, some search domains omitted", applied=" ".join(fitted))
    return fitted


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def render(nameservers: list[str], searches: list[str], options: list[str]) -> str:
    """resolv.conf text: nameserver lines, then search and options when not empty."""
    lines = [f"nameserver {server}" for server in nameservers]
    if searches:
        lines.append("search " + " ".join(searches))
    if options:
        lines.append("options " + " ".join(options))
    return "".join(line + "\n" for line in lines)
