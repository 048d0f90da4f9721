"""Host-local IPAM inside the node's subnet, persisted as one file per address.

Layout, as the CNI ``host-local`` plugin keeps it::

    <data-dir>/cni/ipam/<subnet>/          e.g. 10.244.1.0-24/
        10.244.1.2                         holds the owner id (pod uid or container id)
        10.244.1.3
        last_reserved                      the last address handed out (next-fit cursor)
        lock                               flock'd for the duration of every operation

An address is taken by creating its file with ``O_CREAT|O_EXCL``, so two allocators,
even in different processes, can never both own one address. The directory lock
additionally makes "same owner asks again" idempotent under concurrency. The gateway
(the subnet's first host address, ``.1``) is reserved; the network and broadcast
addresses are never handed out. State lives only in files: a new allocator over the
same directory (after a restart) sees every existing allocation.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import ipaddress
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from kcore.errors import UserFacingError

LAST_RESERVED = "last_reserved"
LOCK = "lock"


class AddressExhaustedError(UserFacingError):
    """Every address of the node's subnet is allocated."""


def gateway(subnet: str) -> str:
    """The subnet's gateway address: its first host address (``.1``)."""
    net = ipaddress.ip_network(subnet, strict=True)
    return str(net.network_address + 1)


def range_set(subnet: str) -> tuple[str, str]:
    """The first and last host addresses of the subnet (``.1`` and ``.254`` for a /24)."""
    net = ipaddress.ip_network(subnet, strict=True)
    if net.num_addresses < 4:
        raise ValueError(f"subnet {subnet} is too small for pods (needs at least a /30)")
    return str(net.network_address + 1), str(net.broadcast_address - 1)


def candidates(subnet: str, last_reserved: str | None = None) -> Iterator[str]:
    """Every allocatable address in next-fit order: after ``last_reserved``, wrapping.

    The gateway, network and broadcast addresses are never yielded.
    """
    net = ipaddress.ip_network(subnet, strict=True)
    first, last = (int(ipaddress.ip_address(a)) for a in range_set(subnet))
    first += 1  # the gateway
    size = last - first + 1
    start = first
    if last_reserved:
        try:
            prev = ipaddress.ip_address(last_reserved)
        except ValueError:
            prev = None
        if prev is not None and prev in net and first <= int(prev) <= last:
            start = int(prev) + 1 if int(prev) < last else first
    for offset in range(size):
        yield str(ipaddress.ip_address(first + (start - first + offset) % size))


def next_free(subnet: str, allocated: Iterable[str], last_reserved: str | None = None) -> str:
    """The next free address after ``last_reserved`` (pure; the store calls it too).

    :raises AddressExhaustedError: when every address is allocated.
    """
    used = set(allocated)
    for address in candidates(subnet, last_reserved):
        if address not in used:
            return address
    raise exhausted(subnet)


def exhausted(subnet: str) -> AddressExhaustedError:
    first, last = range_set(subnet)
    return AddressExhaustedError(f"no IP addresses available in range set: {first}-{last}")


def subnet_dirname(subnet: str) -> str:
    """A file-system-safe directory name for a subnet (``10.244.1.0-24``)."""
    return str(ipaddress.ip_network(subnet, strict=True)).replace("/", "-").replace(":", "_")


class HostLocalStore:
    """Allocations of one subnet, persisted under ``<data_dir>/cni/ipam/<subnet>/``.

    Methods are blocking file operations and thread-safe; call them from a thread
    (``asyncio.to_thread``) in async code. Several instances (or processes) may share
    a directory.
    """

    def __init__(self, data_dir: str | os.PathLike[str], subnet: str) -> None:
        self.subnet = str(ipaddress.ip_network(subnet, strict=True))
        range_set(self.subnet)  # reject subnets too small to use
        self.directory = Path(data_dir) / "cni" / "ipam" / subnet_dirname(self.subnet)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.gateway = gateway(self.subnet)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.directory / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _entries(self) -> dict[str, str]:
        """Allocated address -> owner id."""
        result: dict[str, str] = {}
        net = ipaddress.ip_network(self.subnet)
        for path in self.directory.iterdir():
            try:
                if ipaddress.ip_address(path.name) not in net:
                    continue
            except ValueError:
                continue
            try:
                result[path.name] = path.read_text().strip()
            except FileNotFoundError:
                continue
        return result

    def allocations(self) -> dict[str, str]:
        """Every allocated address and its owner id."""
        with self._locked():
            return self._entries()

    def lookup(self, owner: str) -> str | None:
        """The address held by ``owner``, or None."""
        with self._locked():
            return self._find(self._entries(), owner)

    @staticmethod
    def _find(entries: dict[str, str], owner: str) -> str | None:
        for address, holder in entries.items():
            if holder == owner:
                return address
        return None

    def _read_last(self) -> str | None:
        try:
            return (self.directory / LAST_RESERVED).read_text().strip() or None
        except FileNotFoundError:
            return None

    def _write_last(self, address: str) -> None:
        tmp = self.directory / f".{LAST_RESERVED}.{os.getpid()}.tmp"
        tmp.write_text(address)
        os.replace(tmp, self.directory / LAST_RESERVED)

    def allocate(self, owner: str) -> str:
        """An address for ``owner``; the same one again if it already holds one.

        :raises AddressExhaustedError: when every address is allocated.
        """
        if not owner or "\n" in owner:
            raise ValueError(f"invalid IPAM owner id {owner!r}")
        with self._locked():
            entries = self._entries()
            held = self._find(entries, owner)
            if held is not None:
                return held
            for address in candidates(self.subnet, self._read_last()):
                if address in entries:
                    continue
                try:
                    fd = os.open(self.directory / address, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                except OSError as exc:
                    if exc.errno == errno.EEXIST:  # taken outside our lock (a foreign writer)
                        continue
                    raise
                try:
                    os.write(fd, owner.encode())
                finally:
                    os.close(fd)
                self._write_last(address)
                return address
        raise exhausted(self.subnet)

    def release(self, owner: str) -> list[str]:
        """Free every address held by ``owner``; returns them (empty if none: idempotent)."""
        with self._locked():
            freed = [a for a, holder in self._entries().items() if holder == owner]
            for address in freed:
                with contextlib.suppress(FileNotFoundError):
                    (self.directory / address).unlink()
            return freed
