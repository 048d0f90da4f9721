"""Every kcore extension point, one typed function and one docstring each.

Hooks are grouped by area and named ``kcore_<area>_<point>``. Each docstring has
the same parts: a summary, when kcore calls it, ``:param:`` lines, ``:returns:``,
and "Stops at the first non-None result (firstresult)." where only one answer
counts. ``docs/plugins.md`` repeats every hook, and a test keeps the two in step.

Two calling styles exist, and the docstrings say which applies:

* Driver hooks (store, proxy, CNI, DNS, CSI, runtime) are called on the one plugin
  a user selected by name (``PluginHost.call_driver``), never broadcast.
* Multi hooks (scheduler, logging, controllers, admission, configure) are called
  on every registered implementation, or, for the scheduler, explicitly per plugin
  in a profile's order (``PluginHost.implementations``).

This module must stay cheap to import: argument types are forward references
resolved only under ``TYPE_CHECKING``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover - types only, never imported at run time
    from kcore.api.core_v1 import Container, Node, Pod
    from kcore.scheduler import CycleState, NodeInfo, Status
    from kcore.store.contract import Store

PROJECT = "kcore"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# ---------------------------------------------------------------------------
# Configuration and lifecycle
# ---------------------------------------------------------------------------


@hookspec(historic=True)
def kcore_plugin_configure(config: Any) -> None:
    """Receive kcore's effective configuration.

    Called once per process after the configuration is loaded; the hook is
    historic, so a plugin registered later still gets the same call when it
    registers.

    :param config: the validated, effective configuration (``kcore.config``
        settings object), read-only by convention.
    :returns: nothing; the return value is ignored.
    """


# ---------------------------------------------------------------------------
# Store backends (group ``kcore.store``; driver)
# ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def kcore_store_open(settings: dict[str, Any], data_dir: Path) -> Store:
    """Open the revisioned key-value store this backend provides.

    Called once at API-server start-up, on the backend selected by name in the
    ``[store]`` configuration only.

    :param settings: the backend's own configuration table (may be empty).
    :param data_dir: kcore's data directory; durable backends keep files under it.
    :returns: an open ``kcore.store.contract.Store``.

    Stops at the first non-None result (firstresult).
    """


# ---------------------------------------------------------------------------
# Scheduler framework (group ``kcore.scheduler``; multi, explicit per profile)
#
# The framework never broadcasts these hooks: for each extension point it walks
# the plugins a scheduling profile enables, in the profile's order, calls each
# plugin's own implementation and applies the profile's weights. A status of
# None means success; otherwise a ``kcore.scheduler.Status``.
# ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def kcore_scheduler_queue_sort(pod_a: Pod, pod_b: Pod) -> bool | None:
    """Order the scheduling queue (Kubernetes QueueSort).

    Called by the scheduling queue whenever it compares two pending pods; a
    profile has exactly one queue-sort plugin.

    :param pod_a: a pending pod.
    :param pod_b: another pending pod.
    :returns: True if ``pod_a`` should be scheduled before ``pod_b``, False if
        not, None to leave the decision to the next plugin.

    Stops at the first non-None result (firstresult).
    """


@hookspec
def kcore_scheduler_pre_filter(state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> Status | None:
    """Check or precompute pod-wide facts before filtering (Kubernetes PreFilter).

    Called once per scheduling cycle, before any node is filtered; a non-success
    status ends the cycle with the pod unschedulable.

    :param state: the per-cycle scratch ``CycleState`` shared by this cycle's plugins.
    :param pod: the pod being scheduled.
    :param nodes: every candidate node's ``NodeInfo`` aggregate.
    :returns: None for success or a ``Status``.
    """


@hookspec
def kcore_scheduler_filter(state: CycleState, pod: Pod, node_info: NodeInfo) -> Status | None:
    """Decide whether the pod may run on one node (Kubernetes Filter).

    Called for each candidate node after pre-filter; any non-success status
    makes that node infeasible for this pod. Must not modify ``node_info``.

    :param state: the per-cycle scratch ``CycleState``.
    :param pod: the pod being scheduled.
    :param node_info: the node with its assigned pods and requested resources.
    :returns: None if the node fits, otherwise a ``Status`` saying why not.
    """


@hookspec(firstresult=True)
def kcore_scheduler_post_filter(
    state: CycleState, pod: Pod, filtered_statuses: dict[str, Status]
) -> Status | None:
    """Try to make an unschedulable pod schedulable (Kubernetes PostFilter).

    Called only when no node passed filtering, for example to nominate a node
    after preempting lower-priority pods.

    :param state: the per-cycle scratch ``CycleState``.
    :param pod: the pod that fit nowhere.
    :param filtered_statuses: the failing status of each node, by node name.
    :returns: a ``Status`` (success with a nominated node, or unschedulable), or
        None to let the next plugin try.

    Stops at the first non-None result (firstresult).
    """


@hookspec
def kcore_scheduler_pre_score(state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> Status | None:
    """Precompute what scoring needs (Kubernetes PreScore).

    Called once per cycle with the feasible nodes, before any node is scored.

    :param state: the per-cycle scratch ``CycleState``.
    :param pod: the pod being scheduled.
    :param nodes: the ``NodeInfo`` of every node that passed filtering.
    :returns: None for success or a ``Status`` (an error aborts the cycle).
    """


@hookspec
def kcore_scheduler_score(state: CycleState, pod: Pod, node_info: NodeInfo) -> int | None:
    """Rank one feasible node for the pod (Kubernetes Score).

    Called for each feasible node; the framework multiplies each plugin's score
    by the plugin's weight in the profile and sums them.

    :param state: the per-cycle scratch ``CycleState``.
    :param pod: the pod being scheduled.
    :param node_info: the feasible node being scored.
    :returns: a score from 0 (worst) to 100 (best), or None to abstain.
    """


@hookspec
def kcore_scheduler_normalize_score(
    state: CycleState, pod: Pod, scores: dict[str, int]
) -> dict[str, int] | None:
    """Rescale one plugin's raw scores into 0-100 (Kubernetes NormalizeScore).

    Called once per cycle on the same plugin that produced ``scores``, before
    weights are applied.

    :param state: the per-cycle scratch ``CycleState``.
    :param pod: the pod being scheduled.
    :param scores: this plugin's raw score by node name.
    :returns: the normalized scores by node name, or None to keep them as they are.
    """


@hookspec(firstresult=True)
def kcore_scheduler_select_node(
    state: CycleState, pod: Pod, feasible: list[str], scores: dict[str, int] | None
) -> str | None:
    """Choose the node with a whole algorithm instead of score plugins.

    Called once per cycle, on the algorithm a profile names (for example
    ``round-robin``), in place of the score and normalize-score points.

    :param state: the per-cycle scratch ``CycleState``.
    :param pod: the pod being scheduled.
    :param feasible: names of the nodes that passed filtering, in no set order.
    :param scores: the summed weighted scores by node name if the profile also
        scores, else None.
    :returns: the chosen node's name, or None if the algorithm declines.

    Stops at the first non-None result (firstresult).
    """


@hookspec
def kcore_scheduler_reserve(state: CycleState, pod: Pod, node_name: str) -> Status | None:
    """Reserve node resources for the pod before binding (Kubernetes Reserve).

    Called once the node is chosen, in the scheduling cycle; a failure triggers
    unreserve on every plugin in reverse order.

    :param state: the per-cycle scratch ``CycleState``.
    :param pod: the pod being scheduled.
    :param node_name: the chosen node.
    :returns: None for success or a ``Status``.
    """


@hookspec
def kcore_scheduler_unreserve(state: CycleState, pod: Pod, node_name: str) -> None:
    """Undo what reserve did (Kubernetes Unreserve).

    Called when a later point (reserve, permit, pre-bind, bind) fails; must be
    idempotent and must not fail.

    :param state: the per-cycle scratch ``CycleState``.
    :param pod: the pod whose scheduling failed.
    :param node_name: the node that had been chosen.
    :returns: nothing; the return value is ignored.
    """


@hookspec
def kcore_scheduler_permit(state: CycleState, pod: Pod, node_name: str) -> Status | None:
    """Approve, deny or delay binding (Kubernetes Permit).

    Called at the end of the scheduling cycle; a ``Wait`` status parks the pod
    until another component allows or rejects it.

    :param state: the per-cycle scratch ``CycleState``.
    :param pod: the pod being scheduled.
    :param node_name: the chosen node.
    :returns: None to allow, or a ``Status`` (Wait, Unschedulable, Error).
    """


@hookspec(firstresult=True)
def kcore_scheduler_bind(state: CycleState, pod: Pod, node_name: str) -> Status | None:
    """Bind the pod to the chosen node (Kubernetes Bind).

    Called in the binding cycle; the first plugin that handles the pod wins,
    the default one posts a ``Binding`` to the API.

    :param state: the per-cycle scratch ``CycleState``.
    :param pod: the pod being bound.
    :param node_name: the chosen node.
    :returns: a ``Status`` once handled (success or failure), or None (or a
        Skip status) to let the next bind plugin try.

    Stops at the first non-None result (firstresult).
    """


# ---------------------------------------------------------------------------
# Proxy modes (group ``kcore.proxy``; driver)
# ---------------------------------------------------------------------------


@hookspec
def kcore_proxy_start(settings: dict[str, Any], context: Any) -> None:
    """Prepare the proxy mode on this node.

    Called once when the node's proxy starts, on the configured mode only.

    :param settings: the mode's own configuration table.
    :param context: the node context (node name, addresses, logger, run dir).
    :returns: nothing; the return value is ignored.
    """


@hookspec
def kcore_proxy_sync(state: Any) -> None:
    """Make the node's data path match the desired services.

    Called on the configured mode after every change (batched) and on a
    periodic resync; must be idempotent.

    :param state: the complete desired state: every service with its ports and
        ready endpoints, not a delta.
    :returns: nothing; the return value is ignored.
    """


@hookspec(firstresult=True)
def kcore_proxy_render_rules(state: Any) -> str | None:
    """Render the rules this mode would install, as text.

    Called by ``kcore proxy rules`` and in tests; installs nothing.

    :param state: the complete desired state, as for ``kcore_proxy_sync``.
    :returns: the rules (iptables-save style, ipvsadm style, or a listener table).

    Stops at the first non-None result (firstresult).
    """


@hookspec
def kcore_proxy_cleanup() -> None:
    """Remove every rule and listener this mode installed.

    Called on the configured mode at shutdown, and on the previous mode (a fresh,
    never started instance) when the mode changes.

    :returns: nothing; the return value is ignored.
    """


# ---------------------------------------------------------------------------
# Pod network (group ``kcore.cni``; driver)
# ---------------------------------------------------------------------------


@hookspec
def kcore_cni_setup_node(settings: dict[str, Any], node: Node, context: Any) -> None:
    """Prepare the node's pod network (bridge, subnet lease, overlay).

    Called once when the kubelet starts, before any pod is created.

    :param settings: the network plugin's own configuration table.
    :param node: this node's ``Node`` object.
    :param context: the node context (node name, API client, run dir, logger).
    :returns: nothing; the return value is ignored.
    """


@hookspec(firstresult=True)
def kcore_cni_add(pod: Pod, netns: str, context: Any) -> dict[str, Any] | None:
    """Attach a pod's network namespace to the pod network (CNI ADD).

    Called by the kubelet after it creates the pod's sandbox and network namespace.

    :param pod: the pod being started.
    :param netns: the path of the pod's network namespace.
    :param context: the node context.
    :returns: a CNI result dict with ``interfaces``, ``ips``, ``routes`` and ``dns``.

    Stops at the first non-None result (firstresult).
    """


@hookspec
def kcore_cni_del(pod: Pod, netns: str, context: Any) -> None:
    """Detach a pod from the network and release its address (CNI DEL).

    Called when the pod's sandbox is torn down; must succeed even if ADD never
    finished or DEL already ran.

    :param pod: the pod being stopped.
    :param netns: the path of the pod's network namespace (may already be gone).
    :param context: the node context.
    :returns: nothing; the return value is ignored.
    """


@hookspec
def kcore_cni_check(pod: Pod, netns: str, context: Any) -> bool | None:
    """Verify a running pod's network is still as ADD left it (CNI CHECK).

    Called periodically by the kubelet for running pods.

    :param pod: the running pod.
    :param netns: the path of the pod's network namespace.
    :param context: the node context.
    :returns: True if healthy, False if broken, None if the plugin cannot tell.
    """


@hookspec
def kcore_cni_stop_node(context: Any) -> None:
    """Stop the network plugin's background work on this node, keeping its data path.

    Called when the kubelet stops while its pods keep running (a restart with
    ``stop_pods_on_shutdown = false``): watches end, interfaces and routes stay.

    :param context: the node context.
    :returns: nothing; the return value is ignored.
    """


@hookspec
def kcore_cni_teardown_node(context: Any) -> None:
    """Remove the node-level network set up by ``kcore_cni_setup_node``.

    Called when the kubelet stops and has stopped its pods (the default,
    ``stop_pods_on_shutdown = true``); also stops the plugin's background work.

    :param context: the node context.
    :returns: nothing; the return value is ignored.
    """


# ---------------------------------------------------------------------------
# Cluster DNS (group ``kcore.dns``; driver for the server, multi for records)
# ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def kcore_dns_start(settings: dict[str, Any], context: Any) -> Any:
    """Start the cluster DNS server.

    Called once at start-up, on the configured DNS plugin only.

    :param settings: the DNS plugin's own configuration table.
    :param context: the component context (API client/informers, logger).
    :returns: a running server handle with ``async stop()``.

    Stops at the first non-None result (firstresult).
    """


@hookspec
def kcore_dns_records(name: str, qtype: str, view: Any) -> list[Any] | None:
    """Contribute extra records to a DNS answer.

    Called by the DNS server for each query it answers from the cluster view;
    every implementation contributes, and the answers are concatenated.

    :param name: the queried name, fully qualified, lower case.
    :param qtype: the query type (``A``, ``AAAA``, ``SRV``, ``PTR``, ...).
    :param view: the read-only cluster view (services, endpoints, pods).
    :returns: a list of records to add, or None for none.
    """


# ---------------------------------------------------------------------------
# Log shipping (group ``kcore.logging``; multi)
# ---------------------------------------------------------------------------


@hookspec
def kcore_logging_outputs(settings: dict[str, Any]) -> list[Any]:
    """Contribute log output objects to the node log agent.

    Called once when the log agent starts; every plugin's outputs are used.

    :param settings: the ``[logging]`` configuration table.
    :returns: a list of output objects (possibly empty).
    """


@hookspec
def kcore_logging_emit(records: list[dict[str, Any]]) -> None:
    """See a batch of container log records.

    Called for each batch the log agent reads from containers, on every plugin.

    :param records: log records (``time``, ``stream``, ``log`` and pod metadata).
    :returns: nothing; the return value is ignored.
    """


# ---------------------------------------------------------------------------
# Storage provisioners (group ``kcore.csi``; driver, selected by provisioner name)
# ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def kcore_csi_create_volume(
    name: str, capacity_bytes: int, parameters: dict[str, Any], context: Any
) -> dict[str, Any] | None:
    """Provision a volume for a claim (CSI CreateVolume).

    Called by the provisioning controller on the StorageClass's provisioner;
    must be idempotent for the same ``name``.

    :param name: a unique, stable volume name derived from the claim.
    :param capacity_bytes: the requested capacity.
    :param parameters: the StorageClass parameters.
    :param context: the controller context.
    :returns: the volume: ``volume_id``, ``capacity_bytes`` and optional
        ``volume_context`` and ``accessible_topology``.

    Stops at the first non-None result (firstresult).
    """


@hookspec
def kcore_csi_delete_volume(volume_id: str, context: Any) -> None:
    """Delete a provisioned volume (CSI DeleteVolume).

    Called when a released volume's reclaim policy is Delete; must be idempotent.

    :param volume_id: the id returned by create-volume.
    :param context: the controller context.
    :returns: nothing; the return value is ignored.
    """


@hookspec
def kcore_csi_expand_volume(volume_id: str, capacity_bytes: int, context: Any) -> int:
    """Grow a volume (CSI ControllerExpandVolume).

    Called when a claim's requested size grows and its class allows expansion.

    :param volume_id: the volume to grow.
    :param capacity_bytes: the new requested capacity.
    :param context: the controller context.
    :returns: the capacity actually provided, in bytes.
    """


@hookspec
def kcore_csi_node_publish(volume_id: str, target_path: str, read_only: bool, context: Any) -> None:
    """Make a volume available at a pod's mount path (CSI NodePublishVolume).

    Called by the kubelet before a pod that uses the volume starts.

    :param volume_id: the volume to mount.
    :param target_path: where the pod expects it.
    :param read_only: whether to mount it read-only.
    :param context: the node context.
    :returns: nothing; the return value is ignored.
    """


@hookspec
def kcore_csi_node_unpublish(volume_id: str, target_path: str, context: Any) -> None:
    """Remove a volume from a pod's mount path (CSI NodeUnpublishVolume).

    Called by the kubelet after the pod's containers stopped; must be idempotent.

    :param volume_id: the mounted volume.
    :param target_path: the path it was published at.
    :param context: the node context.
    :returns: nothing; the return value is ignored.
    """


# ---------------------------------------------------------------------------
# Container runtimes (group ``kcore.runtime``; driver, CRI-like)
#
# Implementations may be coroutine functions: the kubelet awaits any result
# that is awaitable (``PluginHost.acall_driver``).
# ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def kcore_runtime_run_sandbox(pod: Pod, context: Any) -> str | None:
    """Create the pod sandbox (shared namespaces, cgroup, log dir) (CRI RunPodSandbox).

    Called by the kubelet when a pod is assigned to this node, on the
    configured runtime. May be a coroutine function.

    :param pod: the pod to run.
    :param context: the node context.
    :returns: the sandbox id.

    Stops at the first non-None result (firstresult).
    """


@hookspec
def kcore_runtime_stop_sandbox(sandbox_id: str) -> None:
    """Stop every container of a sandbox and release its resources (CRI StopPodSandbox).

    Called when the pod is deleted or finished. May be a coroutine function.

    :param sandbox_id: the id from ``kcore_runtime_run_sandbox``.
    :returns: nothing; the return value is ignored.
    """


@hookspec
def kcore_runtime_remove_sandbox(sandbox_id: str) -> None:
    """Forget a stopped sandbox (CRI RemovePodSandbox).

    Called after stop, once the kubelet no longer needs its status or logs.
    May be a coroutine function.

    :param sandbox_id: the sandbox to remove.
    :returns: nothing; the return value is ignored.
    """


@hookspec(firstresult=True)
def kcore_runtime_start_container(sandbox_id: str, container: Container, context: Any) -> str | None:
    """Create and start one container in a sandbox (CRI CreateContainer + StartContainer).

    Called for each init container in order, then each app container.
    May be a coroutine function.

    :param sandbox_id: the pod's sandbox.
    :param container: the container spec from the pod.
    :param context: the node context (resolved env, volume mounts, log path).
    :returns: the container id.

    Stops at the first non-None result (firstresult).
    """


@hookspec
def kcore_runtime_stop_container(container_id: str, grace_seconds: int) -> None:
    """Stop a container: SIGTERM, then SIGKILL after the grace period (CRI StopContainer).

    Called on pod deletion, restarts and failed liveness probes.
    May be a coroutine function.

    :param container_id: the container to stop.
    :param grace_seconds: seconds to wait between the polite and the forced stop.
    :returns: nothing; the return value is ignored.
    """


@hookspec(firstresult=True)
def kcore_runtime_container_status(container_id: str) -> dict[str, Any] | None:
    """Report one container's state (CRI ContainerStatus).

    Called by the kubelet's pod sync loop. May be a coroutine function.

    :param container_id: the container to inspect.
    :returns: a dict with ``state`` (created, running, exited), ``exit_code``,
        ``started_at``, ``finished_at`` and ``reason``.

    Stops at the first non-None result (firstresult).
    """


@hookspec(firstresult=True)
def kcore_runtime_container_logs(container_id: str, options: Any) -> AsyncIterator[bytes] | None:
    """Stream a container's log (the kubelet's ``/containerLogs``).

    Called for ``kubectl logs``. May be an async generator function.

    :param container_id: the container whose log to read.
    :param options: tail lines, since time, follow, timestamps, previous.
    :returns: an async iterator of log bytes.

    Stops at the first non-None result (firstresult).
    """


@hookspec(firstresult=True)
def kcore_runtime_list_containers() -> list[dict[str, Any]] | None:
    """List every container this runtime knows on the node (CRI ListContainers).

    Called at kubelet start-up to adopt or clean up containers left by a
    previous run. May be a coroutine function.

    :returns: one dict per container with ``id``, ``sandbox_id``, ``name`` and ``state``.

    Stops at the first non-None result (firstresult).
    """


# ---------------------------------------------------------------------------
# Controllers (group ``kcore.controllers``; multi)
# ---------------------------------------------------------------------------


@hookspec
def kcore_controllers(settings: dict[str, Any]) -> list[Any]:
    """Contribute controller factories to the controller manager.

    Called once when the controller manager starts; every plugin contributes.

    :param settings: the ``[controllers]`` configuration table.
    :returns: a list of controller factories (callables taking the manager's
        context and returning a controller).
    """


# ---------------------------------------------------------------------------
# Admission (group ``kcore.admission``; multi)
# ---------------------------------------------------------------------------


@hookspec
def kcore_admission_mutate(request: Any) -> dict[str, Any] | None:
    """Change an object before it is validated and stored (mutating admission).

    Called by the API server on every create and update, on every plugin in
    turn; each sees the previous plugin's result.

    :param request: the admission request (operation, kind, user, ``object``
        dict, ``old_object`` dict).
    :returns: a replacement object dict, or None to leave it unchanged.
    """


@hookspec
def kcore_admission_validate(request: Any) -> str | None:
    """Accept or reject an object (validating admission).

    Called by the API server after mutation, on every plugin; any rejection
    wins.

    :param request: the admission request, with the final ``object`` dict.
    :returns: None to accept, or a rejection reason shown to the client.
    """

