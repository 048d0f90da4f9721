"""One pod's worker: make the runtime match the pod's spec, then report its status.

Level-triggered like Kubernetes' ``syncPod``: every call looks at the pod as
the API has it now and at every container instance the runtime knows for the
pod's sandbox, and takes the next steps — start the next init container,
start or restart app containers (with CrashLoopBackOff), act on failed
liveness probes — then patches the status if it changed. Nothing is
remembered that the runtime cannot tell again, except what only the kubelet
knows: probe verdicts, back-off deadlines and reasons a start failed.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from kcore.api.core_v1 import Container, Pod
from kcore.client import ApiStatusError, EventRecorder, ResourceClient
from kcore.kubelet.backoff import Backoff, should_restart
from kcore.kubelet.envvars import EnvError
from kcore.kubelet.network import PodNetwork, PodNetworkError, netns_name
from kcore.kubelet.pod_status import ContainerView, compute_pod_status, status_differs
from kcore.kubelet.tasks import stop_tasks
from kcore.kubelet.probes import ExecTarget, ProbeGate, Prober, ProbeResult, ProbeTarget, run_probe
from kcore.kubelet.runtime_process import ContainerStartError
from kcore.log import get_logger

log = get_logger("kubelet.pod_worker")

Obj = dict[str, Any]
RUNTIME_GROUP = "kcore.runtime"
DEFAULT_GRACE_SECONDS = 30
TERMINAL_PHASES = ("Succeeded", "Failed")


class RuntimeClient:
    """The selected ``kcore.runtime`` driver, called through the plugin host."""

    def __init__(self, host: Any, name: str) -> None:
        self.host = host
        self.name = name

    @property
    def plugin(self) -> Any:
        return self.host.driver(RUNTIME_GROUP, self.name)

    async def call(self, hook: str, **kwargs: Any) -> Any:
        return await self.host.acall_driver(RUNTIME_GROUP, self.name, hook, **kwargs)

    async def list_containers(self) -> list[Obj]:
        return list(await self.call("kcore_runtime_list_containers") or [])

    def logs(self, container_id: str, options: Any) -> AsyncIterator[bytes]:
        return self.host.call_driver(RUNTIME_GROUP, self.name, "kcore_runtime_container_logs",
                                     container_id=container_id, options=options)

    def exec_target(self, container_id: str) -> ExecTarget:
        """Where exec probes and hooks of a container run (the runtime's view, if it has one)."""
        target = getattr(self.plugin, "exec_target", None)
        if target is None:
            return ExecTarget()
        try:
            return target(container_id)
        except LookupError:
            return ExecTarget()


def go_duration(seconds: float) -> str:
    """A delay the way Go prints a time.Duration: ``10s``, ``2m40s``, ``500ms``."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{round(seconds * 1000):d}ms"
    minutes, secs = divmod(round(seconds, 3), 60)
    hours, minutes = divmod(int(minutes), 60)
    sec_text = f"{secs:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{sec_text}"
    if minutes:
        return f"{minutes}m{sec_text}"
    return sec_text


def group_instances(listing: list[Obj], sandbox_id: str | None) -> dict[str, list[Obj]]:
    """Container instances of one sandbox by name, oldest first."""
    by_name: dict[str, list[Obj]] = {}
    for st in listing:
        if st.get("sandbox_id") == sandbox_id:
            by_name.setdefault(st["name"], []).append(st)
    for insts in by_name.values():
        insts.sort(key=lambda s: (int(s.get("restart_count") or 0), s.get("started_at") or ""))
    return by_name


def sandbox_id_of(pod: Mapping[str, Any]) -> str:
    """The sandbox id the built-in runtimes give a pod (``<ns>_<name>_<uid>``)."""
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace') or 'default'}_{meta.get('name')}_{meta.get('uid')}"


def pod_ref(pod: Mapping[str, Any]) -> str:
    """``name_namespace(uid)``, how Kubernetes names a pod in kubelet messages."""
    meta = pod.get("metadata") or {}
    return f"{meta.get('name')}_{meta.get('namespace') or 'default'}({meta.get('uid')})"


@dataclass
class WorkerDeps:
    """What a pod worker needs from its kubelet."""

    runtime: RuntimeClient
    pods: ResourceClient
    recorder: EventRecorder
    backoff: Backoff
    node_ip: str
    data_dir: Path
    probe_period_scale: float
    enqueue: Callable[[str], None]
    env_for: Callable[[Pod, Container, Obj], Awaitable[dict[str, str]]]
    now: Callable[[], str]
    monotonic: Callable[[], float] = time.monotonic
    network: PodNetwork | None = None


class PodWorker:
    """The kubelet's state for one pod (by uid) and the steps that drive it."""

    def __init__(self, uid: str, deps: WorkerDeps, *, sandbox_id: str | None = None) -> None:
        self.uid = uid
        self.deps = deps
        self.sandbox_id = sandbox_id
        self.pod: Obj | None = None
        self.removed = False
        self.netns: str | None = None
        """The pod's network namespace (a name under /run/netns); None on the host network."""
        self.pod_ip: str | None = None
        """The pod's own address (None: on the host network, the node's)."""
        self._network_retry_at = 0.0
        self._model: Pod | None = None
        self._model_rv: str | None = None
        self._probers: dict[str, list[asyncio.Task[None]]] = {}
        self._ready: dict[str, bool] = {}
        self._started: dict[str, bool] = {}
        self._kill_requests: dict[str, str] = {}
        self._waiting: dict[str, tuple[str, str]] = {}
        self._retry_at: dict[str, float] = {}
        self._restart_at: dict[str, tuple[float, float]] = {}
        self._handled_exits: set[str] = set()
        self._crashed: set[str] = set()
        self._log = log.bind(pod_uid=uid)

    # -- the sync ----------------------------------------------------------------

    async def sync(self, pod: Obj | None) -> float | None:
        """One pass; the seconds after which to look again (None: when something changes)."""
        if pod is None:
            await self.teardown()
            return None
        self.pod = pod
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            await self.terminate(pod)
            return None
        if self.removed:
            return None
        model = self._pod_model(pod)
        requeue: list[float] = []
        if not await self._ensure_network(pod, model, requeue):
            await self._patch_status(pod, self.status(pod, {}))
            return min(requeue) if requeue else None
        self.sandbox_id = await self.deps.runtime.call(
            "kcore_runtime_run_sandbox", pod=model,
            context={"data_dir": str(self.deps.data_dir), "netns": self.netns})
        listing = await self.deps.runtime.list_containers()
        terminal = (pod.get("status") or {}).get("phase") in TERMINAL_PHASES
        if not terminal and await self._sync_containers(pod, model, group_instances(listing, self.sandbox_id),
                                                        requeue):
            listing = await self.deps.runtime.list_containers()
        by_name = group_instances(listing, self.sandbox_id)
        await self._reap_probers(by_name, stop_all=terminal)
        status = self.status(pod, by_name)
        if status["phase"] in TERMINAL_PHASES:
            await self._reap_probers(by_name, stop_all=True)
        await self._patch_status(pod, status)
        return min(requeue) if requeue else None

    async def _sync_containers(self, pod: Obj, model: Pod, by_name: dict[str, list[Obj]],
                               requeue: list[float]) -> bool:
        """Start, restart and kill containers as the spec asks; True when anything was done."""
        spec = pod.get("spec") or {}
        policy = spec.get("restartPolicy") or "Always"
        acted = False
        apps = spec.get("containers") or []
        initialized = any(by_name.get(c["name"]) for c in apps)
        if not initialized:
            for c in spec.get("initContainers") or []:
                insts = by_name.get(c["name"]) or []
                cur = insts[-1] if insts else None
                if cur is not None and cur.get("state") == "exited" and cur.get("exit_code") == 0:
                    continue
                if cur is None:
                    acted |= await self._start(model, c, 0, requeue, init=True)
                elif cur.get("state") == "exited" and policy != "Never":
                    acted |= await self._restart(model, c, cur, requeue, init=True)
                return acted  # one init container at a time, in order
        for c in apps:
            insts = by_name.get(c["name"]) or []
            cur = insts[-1] if insts else None
            if cur is None:
                acted |= await self._start(model, c, 0, requeue)
            elif cur.get("state") == "running":
                self._ensure_probers(pod, c, cur)
                reason = self._kill_requests.pop(cur["id"], None)
                if reason is not None:
                    await self._kill(pod, c, cur, reason)
                    acted = True
            elif cur.get("state") == "exited" and should_restart(policy, int(cur.get("exit_code") or 0)):
                acted |= await self._restart(model, c, cur, requeue)
        return acted

    # -- the pod's network -----------------------------------------------------------

    @property
    def ip(self) -> str | None:
        """Where the pod answers: its own address, the node's on the host network, or
        None while the pod still waits for its network (no podIP is reported then)."""
        if self.pod_ip:
            return self.pod_ip
        network = self.deps.network
        if network is not None and self.pod is not None and network.wants_namespace(self.pod):
            return None
        return self.deps.node_ip

    async def _ensure_network(self, pod: Obj, model: Pod, requeue: list[float]) -> bool:
        """Give the pod its network namespace and address once; False while that fails
        (an event says why, and the pass is retried after a growing back-off)."""
        network = self.deps.network
        if self.netns is not None or network is None or not network.wants_namespace(pod):
            return True
        now = self.deps.monotonic()
        if self._network_retry_at > now:
            requeue.append(self._network_retry_at - now)
            return False
        try:
            info = await network.add(pod, model)
        except PodNetworkError as err:
            delay = self.deps.backoff.exited(f"{self.uid}/<sandbox>")
            self._network_retry_at = now + delay
            requeue.append(delay)
            self._log.warning("pod network failed", error=str(err), retry_in=delay)
            await self._event(pod, "Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {err}")
            return False
        self.deps.backoff.forget(f"{self.uid}/<sandbox>")
        self.netns, self.pod_ip = info.netns, info.ip
        return True

    async def check_network(self) -> bool:
        """CNI CHECK a networked pod; a broken network is attached again (same namespace,
        same address) on the next pass. True when a repair was asked for."""
        network, netns, pod = self.deps.network, self.netns, self.pod
        if network is None or not network.enabled or netns is None or pod is None or self.removed:
            return False
        if await network.check(self._pod_model(pod), netns) is not False:
            return False
        self._log.warning("pod network broken; attaching it again", netns=netns)
        await self._event(pod, "Warning", "NetworkNotReady",
                          "network check failed for the pod's sandbox; attaching it again")
        self.netns = None  # the pod IP stays: ADD gives the same address back
        self.deps.enqueue(self.uid)
        return True

    async def release_network(self) -> None:
        """Detach the pod from the network and remove its namespace (safe to repeat)."""
        network = self.deps.network
        pod = self.pod or {"metadata": {"uid": self.uid}}
        if network is None or not network.enabled or (self.netns is None and not network.wants_namespace(pod)):
            return
        # Without a namespace of our own yet, one may remain from a kubelet before us.
        await network.delete(self._pod_model(pod), self.netns or netns_name(self.uid))
        self.netns = None
        self.pod_ip = None

    # -- starting -----------------------------------------------------------------

    def _container_model(self, model: Pod, name: str) -> Container:
        spec = model.spec
        for c in [*(spec.initContainers or []), *(spec.containers or [])] if spec else []:
            if c.name == name:
                return c
        raise LookupError(f"no container {name!r} in the pod spec")

    async def _start(self, model: Pod, c: Obj, restart_count: int, requeue: list[float], *,
                     init: bool = False) -> bool:
        """Start one container instance; a failure becomes its waiting reason and an Event."""
        name = c["name"]
        pod = self.pod or {}
        retry_at = self._retry_at.get(name, 0.0)
        if retry_at > self.deps.monotonic():
            requeue.append(retry_at - self.deps.monotonic())
            return False
        key = f"{self.uid}/{name}"
        try:
            cmodel = self._container_model(model, name)
            env = await self.deps.env_for(model, cmodel, c)
            context = {"env": env, "restart_count": restart_count, "data_dir": str(self.deps.data_dir),
                       "netns": self.netns, "init": init}
            cid = await self.deps.runtime.call("kcore_runtime_start_container", sandbox_id=self.sandbox_id,
                                               container=cmodel, context=context)
        except (ContainerStartError, EnvError) as err:
            reason, message = err.reason, getattr(err, "message", None) or str(err)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001 - any runtime failure is the container's problem, not ours
            reason, message = "RunContainerError", str(err) or type(err).__name__
        else:
            self._waiting.pop(name, None)
            self._retry_at.pop(name, None)
            self.deps.backoff.started(key)
            self._log.info("container started", container=name, id=cid, restart_count=restart_count)
            await self._event(pod, "Normal", "Created", f"Created container {name}")
            await self._event(pod, "Normal", "Started", f"Started container {name}")
            return True
        self._waiting[name] = (reason, message)
        delay = self.deps.backoff.exited(key)
        self._retry_at[name] = self.deps.monotonic() + delay
        requeue.append(delay)
        self._log.warning("container failed to start", container=name, reason=reason, error=message)
        await self._event(pod, "Warning", "Failed", f"Error: {message}")
        return False

    async def _restart(self, model: Pod, c: Obj, cur: Obj, requeue: list[float], *, init: bool = False) -> bool:
        """Restart an exited container, at once the first time, then after a growing back-off."""
        name = c["name"]
        now = self.deps.monotonic()
        if cur["id"] not in self._handled_exits:
            self._handled_exits.add(cur["id"])
            if name not in self._crashed:
                self._crashed.add(name)
                delay = 0.0
            else:
                delay = self.deps.backoff.exited(f"{self.uid}/{name}")
            self._restart_at[name] = (now + delay, delay)
            if delay > 0:
                pod = self.pod or {}
                self._waiting[name] = (
                    "CrashLoopBackOff",
                    f"back-off {go_duration(delay)} restarting failed container={name} pod={pod_ref(pod)}")
                await self._event(pod, "Warning", "BackOff",
                                  f"Back-off restarting failed container {name} in pod {pod_ref(pod)}")
        at, _delay = self._restart_at.get(name, (now, 0.0))
        if at > now:
            requeue.append(at - now)
            return False
        if (self._waiting.get(name) or ("",))[0] == "CrashLoopBackOff":
            self._waiting.pop(name, None)
        return await self._start(model, c, int(cur.get("restart_count") or 0) + 1, requeue, init=init)

    # -- probes -------------------------------------------------------------------

    def _ensure_probers(self, pod: Obj, c: Obj, cur: Obj) -> None:
        cid = cur["id"]
        if cid in self._probers:
            return
        has_startup = bool(c.get("startupProbe"))
        self._started[cid] = not has_startup
        if not c.get("readinessProbe"):
            self._ready[cid] = True
        else:
            self._ready.setdefault(cid, self._was_ready(pod, c["name"], cid))
        gate = ProbeGate(has_startup)
        ports = {p["name"]: int(p["containerPort"]) for p in c.get("ports") or [] if p.get("name")}
        target = ProbeTarget(self.ip or self.deps.node_ip, ports, self.deps.runtime.exec_target(cid))
        probers = []
        for kind, field in (("startup", "startupProbe"), ("liveness", "livenessProbe"),
                            ("readiness", "readinessProbe")):
            if c.get(field):
                prober = Prober(kind, c[field], target, partial(self._on_probe, c["name"], cid), gate,
                                period_scale=self.deps.probe_period_scale)
                probers.append(asyncio.get_running_loop().create_task(prober.run(), name=f"probe-{kind}-{cid}"))
        self._probers[cid] = probers

    def _was_ready(self, pod: Obj, name: str, cid: str) -> bool:
        """Readiness the API already shows for this very instance (a restarted kubelet keeps it)."""
        for st in (pod.get("status") or {}).get("containerStatuses") or []:
            if st.get("name") == name and str(st.get("containerID", "")).endswith(f"://{cid}"):
                return bool(st.get("ready"))
        return False

    async def _on_probe(self, name: str, cid: str, kind: str, result: ProbeResult) -> None:
        pod = self.pod or {}
        if kind == "readiness":
            self._ready[cid] = result.success
        elif kind == "startup" and result.success:
            self._started[cid] = True
        elif not result.success:
            self._kill_requests[cid] = f"Container {name} failed {kind} probe, will be restarted"
        if not result.success:
            await self._event(pod, "Warning", "Unhealthy", f"{kind.capitalize()} probe failed: {result.message}")
        self.deps.enqueue(self.uid)

    async def _reap_probers(self, by_name: Mapping[str, list[Obj]], *, stop_all: bool = False) -> None:
        """Stop the probers of instances that no longer run."""
        running = set() if stop_all else {insts[-1]["id"] for insts in by_name.values()
                                          if insts and insts[-1].get("state") == "running"}
        for cid in [cid for cid in self._probers if cid not in running]:
            await stop_tasks(self._probers.pop(cid))
            self._kill_requests.pop(cid, None)

    # -- stopping -------------------------------------------------------------------

    def _grace(self, pod: Obj | None, spec_c: Obj | None = None) -> int:
        if pod is None:
            return DEFAULT_GRACE_SECONDS
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        if meta.get("deletionGracePeriodSeconds") is not None:
            return int(meta["deletionGracePeriodSeconds"])
        grace = spec.get("terminationGracePeriodSeconds")
        return DEFAULT_GRACE_SECONDS if grace is None else int(grace)

    async def _kill(self, pod: Obj, c: Obj, cur: Obj, message: str) -> None:
        """Stop one container for a restart (failed liveness or startup probe)."""
        await self._event(pod, "Normal", "Killing", message)
        await stop_tasks(self._probers.pop(cur["id"], []))
        probe = c.get("livenessProbe") or {}
        grace = probe.get("terminationGracePeriodSeconds")
        await self.deps.runtime.call("kcore_runtime_stop_container", container_id=cur["id"],
                                     grace_seconds=int(self._grace(pod) if grace is None else grace))

    async def _pre_stop(self, pod: Obj, c: Obj, cid: str, timeout: float) -> None:
        hook = ((c.get("lifecycle") or {}).get("preStop")) or {}
        if not hook:
            return
        if hook.get("sleep"):
            await asyncio.sleep(min(float(hook["sleep"].get("seconds") or 0), timeout))
            return
        target = ProbeTarget(self.ip or self.deps.node_ip,
                             {p["name"]: int(p["containerPort"]) for p in c.get("ports") or [] if p.get("name")},
                             self.deps.runtime.exec_target(cid))
        result = await run_probe({**hook, "timeoutSeconds": max(timeout, 0.001)}, target)
        if not result.success:
            await self._event(pod, "Warning", "FailedPreStopHook",
                              f"PreStopHook failed for container {c['name']}: {result.message}")

    async def stop_containers(self, pod: Obj | None, grace: int) -> None:
        """Stop every running container: preStop hook, then SIGTERM, SIGKILL after ``grace``."""
        await self._reap_probers({}, stop_all=True)
        listing = await self.deps.runtime.list_containers()
        running = [st for st in listing if st.get("sandbox_id") == self.sandbox_id and st.get("state") == "running"]
        spec = (pod or {}).get("spec") or {}
        specs = {c["name"]: c for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]}

        async def stop_one(st: Obj) -> None:
            deadline = self.deps.monotonic() + grace
            c = specs.get(st["name"])
            if pod is not None:
                await self._event(pod, "Normal", "Killing", f"Stopping container {st['name']}")
            if c is not None and pod is not None and grace > 0:
                await self._pre_stop(pod, c, st["id"], grace)
            remaining = max(0.0, deadline - self.deps.monotonic())
            await self.deps.runtime.call("kcore_runtime_stop_container", container_id=st["id"],
                                         grace_seconds=math.ceil(remaining) if remaining > 0 else 0)

        await asyncio.gather(*(stop_one(st) for st in running))

    async def terminate(self, pod: Obj) -> None:
        """Graceful deletion: stop everything, drop the sandbox, then confirm to the API."""
        if not self.removed:
            self.sandbox_id = self.sandbox_id or sandbox_id_of(pod)
            await self.stop_containers(pod, self._grace(pod))
            await self._remove_sandbox()
        meta = pod.get("metadata") or {}
        try:
            await self.deps.pods.delete(meta["name"], meta.get("namespace"), grace_period_seconds=0,
                                        preconditions={"uid": self.uid}, missing_ok=True)
        except ApiStatusError as exc:
            if exc.code != 409:  # 409: a newer pod of the same name; ours is gone
                raise
        self._log.info("pod terminated", pod=pod_ref(pod))

    async def teardown(self) -> None:
        """The pod is gone from the API: stop and remove whatever still runs for it."""
        if self.removed:
            return
        if self.sandbox_id is None and self.pod is not None:
            self.sandbox_id = sandbox_id_of(self.pod)
        await self.stop_containers(self.pod, self._grace(self.pod))
        await self._remove_sandbox()

    async def shutdown(self, stop_containers: bool) -> None:
        """The kubelet stops: end the probes, and stop the containers if asked to."""
        await self._reap_probers({}, stop_all=True)
        if stop_containers and self.sandbox_id is not None and not self.removed:
            await self.stop_containers(self.pod, self._grace(self.pod))

    async def _remove_sandbox(self) -> None:
        if self.sandbox_id is not None:
            try:
                await self.deps.runtime.call("kcore_runtime_stop_sandbox", sandbox_id=self.sandbox_id)
            except LookupError:
                pass
            await self.deps.runtime.call("kcore_runtime_remove_sandbox", sandbox_id=self.sandbox_id)
        await self.release_network()
        self.removed = True
        spec = (self.pod or {}).get("spec") or {}
        for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            self.deps.backoff.forget(f"{self.uid}/{c['name']}")

    # -- status ----------------------------------------------------------------------

    def _views(self, specs: list[Obj], by_name: Mapping[str, list[Obj]]) -> dict[str, ContainerView]:
        views = {}
        for c in specs:
            insts = by_name.get(c["name"]) or []
            cur = insts[-1] if insts else None
            prev = insts[-2] if len(insts) > 1 else None
            running = cur is not None and cur.get("state") == "running"
            views[c["name"]] = ContainerView(
                current=cur, previous=prev, waiting=self._waiting.get(c["name"]),
                ready=running and self._ready.get(cur["id"], not c.get("readinessProbe")) if cur else False,
                started=running and self._started.get(cur["id"], not c.get("startupProbe")) if cur else False,
            )
        return views

    def status(self, pod: Obj, by_name: Mapping[str, list[Obj]]) -> dict[str, Any]:
        spec = pod.get("spec") or {}
        return compute_pod_status(
            pod,
            self._views(spec.get("initContainers") or [], by_name),
            self._views(spec.get("containers") or [], by_name),
            node_ip=self.deps.node_ip, pod_ip=self.ip, now=self.deps.now(),
            runtime=self.deps.runtime.name, sandbox_ready=self.sandbox_id is not None and not self.removed,
        )

    async def _patch_status(self, pod: Obj, status: dict[str, Any]) -> None:
        if not status_differs(pod.get("status"), status):
            return
        meta = pod.get("metadata") or {}
        try:
            await self.deps.pods.patch(meta["name"], {"status": status}, namespace=meta.get("namespace"),
                                       subresource="status")
        except ApiStatusError as exc:
            if exc.code != 404:
                raise

    # -- helpers -----------------------------------------------------------------------

    def _pod_model(self, pod: Obj) -> Pod:
        rv = (pod.get("metadata") or {}).get("resourceVersion")
        if self._model is None or rv != self._model_rv:
            self._model = Pod.from_dict(pod)
            self._model_rv = rv
        return self._model

    async def _event(self, pod: Obj, type_: str, reason: str, message: str) -> None:
        if pod:
            await self.deps.recorder.event(pod, type_, reason, message)
