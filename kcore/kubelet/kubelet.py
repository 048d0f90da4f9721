"""The node agent: registers its Node, heartbeats, and runs the pods bound to it.

The moving parts, each a small loop around a pure core:

- node registration and status (``node_status``), written when it changes or
  every ``status_update_interval_seconds``, and the Lease heartbeat (``lease``);
- a pod informer (``spec.nodeName=<node>``) whose handlers only enqueue the pod's
  uid; a dispatcher hands each uid to its ``PodWorker`` (never two passes of one
  pod at once), and a pass may ask to be repeated later (back-off, retries);
- a relister (Kubernetes' PLEG) that notices container exits by listing the
  runtime and enqueues the pods whose containers changed;
- a usage sampler that keeps each container's latest CPU and memory.

The runtime is whichever ``kcore.runtime`` plugin the configuration names; with
the ``process`` runtime a new Kubelet over the same data directory adopts the
containers a previous one left running.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import psutil

from kcore.api.core_v1 import Container, Pod, Service
from kcore.client import (
    ApiClient,
    ApiConnectionError,
    ApiStatusError,
    EventRecorder,
    Informer,
    QueueShutDown,
    WorkQueue,
)
from kcore.config import KcoreConfig
from kcore.kubelet.backoff import Backoff
from kcore.kubelet.envvars import build_env
from kcore.kubelet.exec import ExecError, ExecProcess
from kcore.kubelet.lease import LeaseRenewer
from kcore.kubelet.probes import ExecTarget
from kcore.kubelet.logs import container_logs
from kcore.kubelet.network import PodNetwork
from kcore.kubelet.node_status import (
    architecture,
    node_conditions,
    node_labels,
    node_status,
    node_status_changed,
    read_system_info,
    resource_list,
)
from kcore.kubelet.pod_worker import (
    PodWorker,
    RuntimeClient,
    WorkerDeps,
    group_instances,
    sandbox_id_of,
    stop_tasks,
)
from kcore.kubelet.resources import cpu_cores, node_capacity, pressure_conditions, read_node, sample_processes
from kcore.log import get_logger

log = get_logger("kubelet")

Obj = dict[str, Any]
_STATUS_CHECK_MAX_SECONDS = 10.0
_STOP_SYNC_WAIT_SECONDS = 10.0


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _time_text(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def referenced_objects(container: Obj) -> tuple[set[str], set[str]]:
    """Names of the ConfigMaps and Secrets a container's environment refers to."""
    configmaps: set[str] = set()
    secrets: set[str] = set()
    for src in container.get("envFrom") or []:
        if (src.get("configMapRef") or {}).get("name"):
            configmaps.add(src["configMapRef"]["name"])
        if (src.get("secretRef") or {}).get("name"):
            secrets.add(src["secretRef"]["name"])
    for var in container.get("env") or []:
        value_from = var.get("valueFrom") or {}
        if (value_from.get("configMapKeyRef") or {}).get("name"):
            configmaps.add(value_from["configMapKeyRef"]["name"])
        if (value_from.get("secretKeyRef") or {}).get("name"):
            secrets.add(value_from["secretKeyRef"]["name"])
    return configmaps, secrets


def _sessions(sids: set[int]) -> dict[int, list[int]]:
    """The live processes of each session in ``sids`` (one pass over the process table)."""
    groups: dict[int, list[int]] = {sid: [] for sid in sids}
    if not groups:  # nothing to look for: skip the scan of every process on the host
        return groups
    for pid in psutil.pids():
        try:
            sid = os.getsid(pid)
        except (ProcessLookupError, PermissionError):
            continue
        if sid in groups:
            groups[sid].append(pid)
    return groups


class Kubelet:
    """One node's agent. ``await run()`` until ``await stop()``; ``logs()`` serves pods/log."""

    def __init__(
        self,
        client: ApiClient,
        host: Any,
        config: KcoreConfig,
        *,
        node_name: str,
        data_dir: str | Path,
        clock: Callable[[], dt.datetime] = utc_now,
        usage_interval_seconds: float = 10.0,
    ) -> None:
        self.client = client
        self.host = host
        self.config = config
        self.cfg = config.kubelet
        self.node_name = node_name
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.clock = clock
        self.usage_interval_seconds = usage_interval_seconds
        self.runtime = RuntimeClient(host, self.cfg.runtime)
        self.backoff = Backoff(base=self.cfg.backoff_base_seconds, cap=self.cfg.backoff_max_seconds)
        self.queue = WorkQueue(f"kubelet-{node_name}")
        self.recorder = EventRecorder(client, component="kubelet", host=node_name)
        self.pod_informer = Informer(client, "v1", "Pod", field_selector=f"spec.nodeName={node_name}")
        self.service_informer = Informer(client, "v1", "Service")
        self.lease = LeaseRenewer(client, node_name, duration_seconds=self.cfg.lease_duration_seconds,
                                  interval_seconds=self.cfg.lease_renew_interval_seconds, clock=clock,
                                  node_uid=lambda: ((self.node or {}).get("metadata") or {}).get("uid"))
        self.node: Obj | None = None
        self.node_status_writes = 0
        self._nodes = client.resource("v1", "Node")
        self._pods_api = client.resource("v1", "Pod")
        self._pods: dict[str, Obj] = {}
        self._deleted: dict[str, Obj] = {}
        self._workers: dict[str, PodWorker] = {}
        self._orphans: dict[str, str] = {}
        self._syncs: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[Any]] = []
        self._usage: dict[str, dict[str, dict[str, Any]]] = {}
        self._samples: dict[str, Any] = {}
        self._system_info: dict[str, str] | None = None
        self._last_status: Obj | None = None
        self._last_status_write = 0.0
        self._stop_event: asyncio.Event | None = None
        self._running = asyncio.Event()
        self._done: asyncio.Event | None = None
        self._log = log.bind(node=node_name)
        # The kubelet's own HTTPS server (logs and exec for the API server), if any:
        # kcore/kubelet/server.py; its port goes into status.daemonEndpoints.
        self.server: Any = None
        self.network = PodNetwork(host, config, client=client, node_name=node_name, data_dir=self.data_dir)
        self._deps = WorkerDeps(
            runtime=self.runtime, pods=self._pods_api, recorder=self.recorder, backoff=self.backoff,
            node_ip=self.cfg.node_ip, data_dir=self.data_dir, probe_period_scale=self.cfg.probe_period_scale,
            enqueue=self.queue.add, env_for=self._env_for, now=lambda: _time_text(self.clock()),
            network=self.network,
        )

    # -- lifecycle -------------------------------------------------------------------

    async def run(self) -> None:
        """Register, then run pods until :meth:`stop`."""
        if self._done is not None and not self._done.is_set():
            raise RuntimeError(f"the kubelet of node {self.node_name} is already running")
        self._stop_event, self._done = asyncio.Event(), asyncio.Event()
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._configure_runtime()
            if self.server is not None:
                await self.server.start()
            if not await self._until_stopped(self._register_with_retries()):
                return
            await self.network.start(self.node or {})
            self.pod_informer.add_handler(on_add=self._on_pod, on_update=lambda _o, n: self._on_pod(n),
                                          on_delete=self._on_pod_deleted)
            self._spawn(self.pod_informer.run(), "pod-informer")
            self._spawn(self.service_informer.run(), "service-informer")
            self._spawn(self.lease.run(), "lease")
            synced = asyncio.gather(self.pod_informer.wait_synced(), self.service_informer.wait_synced())
            if not await self._until_stopped(synced):
                return
            await self._adopt()
            self._spawn(self._dispatch(), "dispatcher")
            self._spawn(self._relist_loop(), "relist")
            self._spawn(self._node_status_loop(), "node-status")
            self._spawn(self._usage_loop(), "usage")
            if self.network.enabled:
                self._spawn(self._network_check_loop(), "network-check")
            self._running.set()
            self._log.info("kubelet running", runtime=self.cfg.runtime, data_dir=str(self.data_dir))
            await self._stop_event.wait()
        finally:
            self._running.clear()
            await self._shutdown()
            self._done.set()

    async def wait_running(self) -> None:
        """Return once the node is registered, the caches synced and pods are being run."""
        await self._running.wait()

    async def stop(self) -> None:
        """Stop, and return once :meth:`run` has returned."""
        if self._stop_event is None or self._done is None:
            return
        self._stop_event.set()
        await self._done.wait()

    def netns_for_pod(self, uid: str) -> str | None:
        """The name (under /run/netns) of the pod's network namespace; None on the host network."""
        worker = self._workers.get(uid)
        return None if worker is None else worker.netns

    @property
    def idle(self) -> bool:
        """No pod pass is running or waiting to run (delayed retries included)."""
        return not self._syncs and len(self.queue) == 0 and self.queue.waiting_delayed == 0

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=f"kubelet-{self.node_name}-{name}"))

    async def _until_stopped(self, awaitable: Any) -> bool:
        """Await ``awaitable`` unless stop() comes first; True when it finished."""
        assert self._stop_event is not None
        work = asyncio.ensure_future(awaitable)
        stopped = asyncio.ensure_future(self._stop_event.wait())
        await asyncio.wait({work, stopped}, return_when=asyncio.FIRST_COMPLETED)
        for fut in (work, stopped):
            if not fut.done():
                fut.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await fut
        if work.done() and not work.cancelled():
            work.result()
            return True
        return False

    def _configure_runtime(self) -> None:
        configure = getattr(self.runtime.plugin, "configure", None)
        if configure is not None:
            configure(data_dir=self.data_dir, images=self.cfg.images, log_max_bytes=self.cfg.log_max_bytes,
                      log_max_files=self.cfg.log_max_files)

    async def _shutdown(self) -> None:
        self.queue.shutdown()
        for task in self._tasks:
            if task.get_name().endswith(("-relist", "-node-status", "-usage", "-lease", "-dispatcher",
                                          "-network-check")):
                task.cancel()
        if self._syncs:
            _done, pending = await asyncio.wait(set(self._syncs), timeout=_STOP_SYNC_WAIT_SECONDS)
            await stop_tasks(list(pending))
        stop_pods = self.cfg.stop_pods_on_shutdown
        results = await asyncio.gather(*(w.shutdown(stop_pods) for w in self._workers.values()),
                                       return_exceptions=True)
        if stop_pods:  # the pods are gone: so are their namespaces and addresses
            results += await asyncio.gather(*(w.release_network() for w in self._workers.values()),
                                            return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                self._log.warning("stopping a pod failed", error=str(result))
        await self.network.stop(teardown=stop_pods)
        await self.pod_informer.stop()
        await self.service_informer.stop()
        await stop_tasks(self._tasks)
        self._tasks.clear()
        if self.server is not None:
            with contextlib.suppress(Exception):
                await self.server.stop()
        close = getattr(self.runtime.plugin, "close", None)
        if close is not None:
            await close()  # let go of containers (still running unless stopped above)
        self._log.info("kubelet stopped", pods_stopped=stop_pods)

    # -- the node ------------------------------------------------------------------------

    def _resources(self) -> dict[str, str]:
        cap = node_capacity(self.cfg.max_pods)
        return resource_list(self.cfg.cpu, self.cfg.memory, cap.cpu, cap.memory_bytes, self.cfg.max_pods)

    async def _compute_node_status(self) -> Obj:
        if self._system_info is None:
            self._system_info = await asyncio.to_thread(read_system_info)
        readings = await asyncio.to_thread(read_node, str(self.data_dir))
        previous = (self._last_status or ((self.node or {}).get("status")) or {}).get("conditions") or []
        conditions = node_conditions(previous, pressure_conditions(readings), ready=True,
                                     now=_time_text(self.clock()))
        resources = self._resources()
        return node_status(capacity=resources, allocatable=resources, node_ip=self.cfg.node_ip,
                           hostname=socket.gethostname(), system_info=self._system_info, conditions=conditions,
                           kubelet_port=int(getattr(self.server, "port", 0) or 0))

    async def register_node(self) -> Obj:
        """Create the Node, or take over the existing one (a restarted kubelet keeps its node)."""
        labels = node_labels(self.node_name, architecture())
        body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": self.node_name, "labels": labels},
                "spec": {}}
        try:
            self.node = await self._nodes.create(body)
            self._log.info("node registered")
        except ApiStatusError as exc:
            if exc.code != 409:
                raise
            existing = await self._nodes.get(self.node_name)
            have = (existing.get("metadata") or {}).get("labels") or {}
            missing = {k: v for k, v in labels.items() if k not in have}
            self.node = await self._nodes.patch(self.node_name, {"metadata": {"labels": missing}}) \
                if missing else existing
            self._log.info("node already registered; taking it over")
        await self.update_node_status(force=True)
        return self.node

    async def _register_with_retries(self) -> None:
        delay = 0.2
        while True:
            try:
                await self.register_node()
                return
            except (ApiStatusError, ApiConnectionError) as exc:
                self._log.warning("node registration failed; retrying", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def update_node_status(self, *, force: bool = False) -> bool:
        """Write the Node's status if it changed or the update interval passed; True when written."""
        status = await self._compute_node_status()
        due = time.monotonic() - self._last_status_write >= self.cfg.status_update_interval_seconds
        if not (force or due or node_status_changed(self._last_status, status)):
            return False
        self.node = await self._nodes.patch(self.node_name, {"status": status}, subresource="status")
        self._last_status = status
        self._last_status_write = time.monotonic()
        self.node_status_writes += 1
        return True

    async def _node_status_loop(self) -> None:
        period = min(self.cfg.status_update_interval_seconds, _STATUS_CHECK_MAX_SECONDS)
        next_resync = time.monotonic() + self.cfg.status_update_interval_seconds
        while True:
            await asyncio.sleep(period)
            try:
                await self.update_node_status()
            except (ApiStatusError, ApiConnectionError) as exc:
                self._log.warning("node status update failed", error=str(exc))
            if time.monotonic() >= next_resync:  # a periodic pass over every pod, as kubelets do
                next_resync = time.monotonic() + self.cfg.status_update_interval_seconds
                for uid in list(self._pods):
                    self.queue.add(uid)

    # -- pods -------------------------------------------------------------------------------

    def _on_pod(self, pod: Obj) -> None:
        uid = (pod.get("metadata") or {}).get("uid")
        if uid:
            self._pods[uid] = pod
            self.queue.add(uid)

    def _on_pod_deleted(self, pod: Obj) -> None:
        uid = (pod.get("metadata") or {}).get("uid")
        if uid:
            self._pods.pop(uid, None)
            self._deleted[uid] = pod
            self.queue.add(uid)

    async def _adopt(self) -> None:
        """Queue whatever the runtime still runs for pods the API no longer has."""
        for st in await self.runtime.list_containers():
            sandbox = st.get("sandbox_id") or ""
            uid = self._uid_of_sandbox(sandbox)
            if uid and uid not in self._pods and uid not in self._orphans:
                self._orphans[uid] = sandbox
                self.queue.add(uid)

    def _uid_of_sandbox(self, sandbox_id: str) -> str | None:
        for uid, worker in self._workers.items():
            if worker.sandbox_id == sandbox_id:
                return uid
        parts = sandbox_id.rsplit("_", 1)
        return parts[1] if len(parts) == 2 else None

    async def _dispatch(self) -> None:
        while True:
            try:
                uid = await self.queue.get()
            except QueueShutDown:
                return
            task = asyncio.create_task(self._process(str(uid)), name=f"kubelet-sync-{uid}")
            self._syncs.add(task)
            task.add_done_callback(self._syncs.discard)

    async def _process(self, uid: str) -> None:
        try:
            requeue = await self._sync_pod(uid)
        except asyncio.CancelledError:
            self.queue.done(uid)
            raise
        except Exception as exc:  # noqa: BLE001 - retried with back-off; one pod never stops the rest
            self._log.warning("pod sync failed; will retry", pod_uid=uid, error=str(exc) or type(exc).__name__,
                              exc_info=True)
            self.queue.add_rate_limited(uid)
        else:
            self.queue.forget(uid)
            if requeue is not None:
                self.queue.add_after(uid, max(requeue, 0.01))
        self.queue.done(uid)

    async def _sync_pod(self, uid: str) -> float | None:
        pod = self._pods.get(uid)
        worker = self._workers.get(uid)
        if worker is None:
            orphan = self._orphans.pop(uid, None)
            if pod is None and orphan is None:
                self._deleted.pop(uid, None)
                return None
            worker = self._workers[uid] = PodWorker(uid, self._deps, sandbox_id=orphan)
        if pod is None:
            gone = self._deleted.pop(uid, None)
            if gone is not None:
                worker.pod = gone
            await worker.sync(None)
            self._workers.pop(uid, None)
            return None
        return await worker.sync(pod)

    async def _env_for(self, pod: Pod, container: Container, spec: Obj) -> dict[str, str]:
        """The container's environment, fetching the ConfigMaps and Secrets it refers to."""
        namespace = pod.metadata.namespace or "default"
        configmap_names, secret_names = referenced_objects(spec)
        configmaps: dict[str, dict[str, str] | None] = {}
        secrets: dict[str, dict[str, str] | None] = {}
        for names, kind, into in ((configmap_names, "ConfigMap", configmaps), (secret_names, "Secret", secrets)):
            api = self.client.resource("v1", kind)
            for name in names:
                obj = await api.get_or_none(name, namespace)
                into[name] = None if obj is None else dict(obj.get("data") or {})
        services = []
        for svc in self.service_informer.indexer.list():
            if (svc.get("metadata") or {}).get("namespace") in (namespace, "default"):
                try:
                    services.append(Service.from_dict(svc))
                except ValueError:
                    continue
        return build_env(pod, container, get_configmap=lambda _ns, name: configmaps.get(name),
                         get_secret=lambda _ns, name: secrets.get(name), services=services,
                         node_allocatable=self._resources())

    async def _network_check_loop(self) -> None:
        """CNI CHECK every networked pod now and then; broken ones are attached again."""
        while True:
            await asyncio.sleep(self.cfg.network_check_period_seconds)
            for worker in list(self._workers.values()):
                try:
                    await worker.check_network()
                except Exception as exc:  # noqa: BLE001 - one pod's check must not stop the loop
                    self._log.warning("pod network check failed", pod_uid=worker.uid, error=str(exc))

    async def _relist_loop(self) -> None:
        """Notice container changes the runtime does not push: list, diff, enqueue."""
        seen: dict[str, tuple[str, str]] = {}
        while True:
            await asyncio.sleep(self.cfg.relist_period_seconds)
            try:
                listing = await self.runtime.list_containers()
            except Exception as exc:  # noqa: BLE001 - a runtime hiccup: try again next period
                self._log.warning("runtime relist failed", error=str(exc))
                continue
            now = {st["id"]: (str(st.get("state")), str(st.get("sandbox_id"))) for st in listing}
            changed = {v[1] for k, v in now.items() if seen.get(k) != v}
            changed |= {v[1] for k, v in seen.items() if k not in now}
            seen = now
            for sandbox in changed:
                uid = self._uid_of_sandbox(sandbox)
                if uid and (uid in self._pods or uid in self._workers):
                    self.queue.add(uid)

    # -- usage --------------------------------------------------------------------------------

    def usage(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Latest usage per pod (``namespace/name``) and container: ``cpu_cores``, ``memory_bytes``."""
        return {pod: {c: dict(u) for c, u in containers.items()} for pod, containers in self._usage.items()}

    async def sample_usage(self) -> None:
        """Sample every running container once (CPU is averaged since the previous sample)."""
        listing = [st for st in await self.runtime.list_containers() if st.get("state") == "running" and st.get("pid")]
        groups = await asyncio.to_thread(_sessions, {int(st["pid"]) for st in listing})
        usage: dict[str, dict[str, dict[str, Any]]] = {}
        samples = {}
        stamp = _time_text(self.clock())
        for st in listing:
            sample = await asyncio.to_thread(sample_processes, groups.get(int(st["pid"])) or [])
            before = self._samples.get(st["id"])
            samples[st["id"]] = sample
            uid = self._uid_of_sandbox(st.get("sandbox_id") or "")
            pod = self._pods.get(uid or "")
            if pod is None:
                continue
            meta = pod["metadata"]
            usage.setdefault(f"{meta.get('namespace')}/{meta['name']}", {})[st["name"]] = {
                "cpu_cores": cpu_cores(before, sample) if before is not None else 0.0,
                "memory_bytes": sample.rss_bytes, "timestamp": stamp,
            }
        self._samples = samples
        self._usage = usage

    async def _usage_loop(self) -> None:
        while True:
            try:
                await self.sample_usage()
            except Exception as exc:  # noqa: BLE001 - usage is informational
                self._log.debug("usage sampling failed", error=str(exc))
            await asyncio.sleep(self.usage_interval_seconds)

    # -- logs ----------------------------------------------------------------------------------

    async def logs(self, pod: Obj, container: str, options: dict[str, Any]) -> AsyncIterator[bytes]:
        """The container's log (the API server's pods/log source)."""
        uid = (pod.get("metadata") or {}).get("uid") or ""
        worker = self._workers.get(uid)
        sandbox = worker.sandbox_id if worker is not None and worker.sandbox_id else sandbox_id_of(pod)
        async for chunk in container_logs(self.runtime, pod, sandbox, container, options):
            yield chunk

    # -- exec -------------------------------------------------------------------------------------

    def pod_by_name(self, namespace: str, name: str) -> Obj | None:
        """A pod bound to this node, from the kubelet's cache."""
        for pod in list(self._pods.values()):
            meta = pod.get("metadata") or {}
            if meta.get("name") == name and (meta.get("namespace") or "default") == namespace:
                return pod
        return None

    async def exec_target(self, pod: Obj, container: str) -> ExecTarget:
        """Where an exec in ``container`` of ``pod`` runs; ExecError unless it is running here."""
        uid = (pod.get("metadata") or {}).get("uid") or ""
        worker = self._workers.get(uid)
        sandbox = worker.sandbox_id if worker is not None and worker.sandbox_id else sandbox_id_of(pod)
        insts = group_instances(await self.runtime.list_containers(), sandbox).get(container) or []
        running = [st for st in insts if st.get("state") == "running"]
        if not running:
            name = (pod.get("metadata") or {}).get("name")
            raise ExecError(f'container "{container}" in pod "{name}" is not running')
        return self.runtime.exec_target(running[-1]["id"])

    async def exec(self, pod: Obj, container: str, command: list[str] | tuple[str, ...], *,
                   tty: bool = False, stdin: bool = False) -> ExecProcess:
        """Start ``command`` in the running ``container`` of ``pod`` (pods/exec).

        Raises ExecError when the container is not running here or the command cannot start.
        """
        proc = ExecProcess(command, await self.exec_target(pod, container), tty=tty, stdin=stdin)
        await proc.start()
        return proc
