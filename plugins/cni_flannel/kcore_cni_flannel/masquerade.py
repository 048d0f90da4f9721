"""iptables rules for pod traffic: masquerade what leaves the cluster CIDR, accept
what is forwarded for it (flannel's ``--ip-masq`` and its FORWARD rules).

Why chains of our own: every rule lives in ``KCORE-FLANNEL-POSTRTG`` (nat) or
``KCORE-FLANNEL-FWD`` (filter), each reached by one jump, so installing is "make the
chain hold exactly these rules" and removal is "drop the jump and the chain",
without touching anybody else's rules.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from kcore.log import get_logger

from kcore_cni_flannel.datapath import run_cmd

log = get_logger("cni.flannel.masquerade")

NAT_CHAIN = "KCORE-FLANNEL-POSTRTG"
FWD_CHAIN = "KCORE-FLANNEL-FWD"
COMMENT = "kcore flannel"


def chain_rules(cluster_cidr: str) -> dict[tuple[str, str, str], list[list[str]]]:
    """(table, chain, jumped from) -> the chain's rules, in order."""
    comment = ["-m", "comment", "--comment", COMMENT]
    return {
        ("nat", NAT_CHAIN, "POSTROUTING"): [
            ["-s", cluster_cidr, "-d", cluster_cidr, *comment, "-j", "RETURN"],
            ["-s", cluster_cidr, "!", "-d", "224.0.0.0/4", *comment, "-j", "MASQUERADE", "--random-fully"],
        ],
        ("filter", FWD_CHAIN, "FORWARD"): [
            ["-s", cluster_cidr, *comment, "-j", "ACCEPT"],
            ["-d", cluster_cidr, *comment, "-j", "ACCEPT"],
        ],
    }


@dataclass
class Masquerade:
    """The node's masquerade and forward rules, in ``node_netns`` when set."""

    cluster_cidr: str
    node_netns: str | None = None

    async def _ipt(self, table: str, *args: str, check: bool = True) -> int:
        code, _, _ = await run_cmd("iptables", "-w", "-t", table, *args, netns=self.node_netns, check=check)
        return code

    async def install(self) -> None:
        """Make both chains hold exactly our rules and be jumped to once (idempotent)."""
        if shutil.which("iptables") is None:
            log.warning("iptables not found: pod traffic leaving the cluster is not masqueraded")
            return
        for (table, chain, parent), rules in chain_rules(self.cluster_cidr).items():
            if await self._ipt(table, "-n", "-L", chain, check=False) != 0:
                await self._ipt(table, "-N", chain)
            present = [await self._ipt(table, "-C", chain, *rule, check=False) == 0 for rule in rules]
            if not all(present) or await self._count(table, chain) != len(rules):
                await self._ipt(table, "-F", chain)
                for rule in rules:
                    await self._ipt(table, "-A", chain, *rule)
            if await self._ipt(table, "-C", parent, "-j", chain, check=False) != 0:
                await self._ipt(table, "-A", parent, "-j", chain)
        log.info("masquerade installed", cluster_cidr=self.cluster_cidr, netns=self.node_netns)

    async def _count(self, table: str, chain: str) -> int:
        _, out, _ = await run_cmd("iptables", "-w", "-t", table, "-S", chain, netns=self.node_netns)
        return sum(1 for line in out.splitlines() if line.startswith("-A "))

    async def remove(self) -> None:
        """Drop the jumps and the chains (idempotent)."""
        if shutil.which("iptables") is None:
            return
        for (table, chain, parent), _rules in chain_rules(self.cluster_cidr).items():
            while await self._ipt(table, "-D", parent, "-j", chain, check=False) == 0:
                pass
            await self._ipt(table, "-F", chain, check=False)
            await self._ipt(table, "-X", chain, check=False)
