"""Server-side printing: ``meta.k8s.io/v1`` Tables with kubectl's usual columns.

``kubectl get`` asks for ``as=Table`` and prints whatever columns the server sends, so
the familiar ``READY``, ``STATUS``, ``RESTARTS`` columns come from here. The logic
mirrors Kubernetes' built-in printers (pkg/printers/internalversion) on plain wire
dicts. Rows always carry every column, ``-o wide`` ones included (``priority: 1``):
the API server prints wide and kubectl hides what the user did not ask for.
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any, Callable, Literal, Mapping, Sequence

from kcore.apiserver.selectors import SelectorError, selector_from_label_selector

__all__ = [
    "IncludeObject",
    "human_duration",
    "translate_timestamp_since",
    "table_columns",
    "table_row_cells",
    "render_table",
    "watch_event_table",
    "partial_object_metadata",
    "pod_status_reason",
    "format_labels",
]

IncludeObject = Literal["None", "Metadata", "Object"]
Obj = Mapping[str, Any]
Cell = str | int | bool | float | None
RowFn = Callable[[Obj, datetime], list[Cell]]

NONE = "<none>"
UNKNOWN = "<unknown>"
UNSET = "<unset>"

# ------------------------------------------------------------------ time formatting


def human_duration(seconds: float) -> str:
    """kubectl's compact duration (apimachinery duration.HumanDuration): 5s, 3m20s, 2d3h, 4y."""
    secs = int(seconds)
    if secs < -1:
        return "<invalid>"
    if secs < 0:
        return "0s"
    if secs < 60 * 2:
        return f"{secs}s"
    minutes = secs // 60
    if minutes < 10:
        s = secs % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = secs // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def _parse_time(ts: Any) -> datetime | None:
    if not ts or not isinstance(ts, str):
        return None
    try:
        t = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def translate_timestamp_since(ts: Any, now: datetime) -> str:
    """Age of a wire timestamp, ``<unknown>`` when absent (kubectl's translateTimestampSince)."""
    t = _parse_time(ts)
    if t is None:
        return UNKNOWN
    return human_duration((now - t).total_seconds())


def _created_at(ts: Any) -> str:
    """The "Created At" cell (RBAC kinds, LimitRange): UTC time in RFC 3339 form."""
    t = _parse_time(ts)
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if t else UNKNOWN


# ------------------------------------------------------------------ small helpers


def _g(obj: Any, *path: str) -> Any:
    """Nested get that tolerates missing levels."""
    cur = obj
    for p in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(p)
    return cur


def _meta(obj: Obj) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _name(obj: Obj) -> str:
    return str(_meta(obj).get("name") or "")


def _age(obj: Obj, now: datetime) -> str:
    return translate_timestamp_since(_meta(obj).get("creationTimestamp"), now)


def _int(v: Any) -> int:
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        return 0


def _bool_cell(v: Any) -> str:
    """Go's printBool: True/False."""
    return "True" if v else "False"


def format_labels(labels: Mapping[str, str] | None) -> str:
    """labels.FormatLabels: sorted ``k=v`` joined by commas, ``<none>`` when empty."""
    if not labels:
        return NONE
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _label_selector_string(sel: Mapping[str, Any] | None, empty: str = NONE) -> str:
    try:
        text = str(selector_from_label_selector(sel))
    except SelectorError:
        return "<error>"
    return text or empty


def _pod_spec(obj: Obj, *path: str) -> Mapping[str, Any]:
    return _g(obj, *path) or {}


def _containers_images(pod_spec: Mapping[str, Any]) -> tuple[str, str]:
    containers = pod_spec.get("containers") or []
    return (
        ",".join(str(c.get("name", "")) for c in containers),
        ",".join(str(c.get("image", "")) for c in containers),
    )


def _col(name: str, description: str, *, type_: str = "string", fmt: str = "", priority: int = 0) -> dict[str, Any]:
    return {"name": name, "type": type_, "format": fmt, "description": description, "priority": priority}


NAME_COL = _col(
    "Name",
    "Name must be unique within a namespace. Is required when creating resources, although some resources may "
    "allow a client to request the generation of an appropriate name automatically.",
    fmt="name",
)
AGE_COL = _col(
    "Age",
    "CreationTimestamp is a timestamp representing the server time when this object was created. "
    "It is represented in RFC3339 form and is in UTC.",
)


def _wide(name: str, description: str) -> dict[str, Any]:
    return _col(name, description, priority=1)


CONTAINERS_COL = _wide("Containers", "Names of each container in the template.")
IMAGES_COL = _wide("Images", "Images referenced by each container in the template.")
SELECTOR_COL = _wide("Selector", "Label selector for pods. Existing pods selected by this selector are the ones affected.")

# ------------------------------------------------------------------ pods


def _cond_true(conditions: Any, ctype: str) -> bool:
    return any(c.get("type") == ctype and c.get("status") == "True" for c in conditions or [])


def _restartable_init(container: Mapping[str, Any] | None) -> bool:
    return bool(container) and container.get("restartPolicy") == "Always"  # type: ignore[union-attr]


def _later(a: datetime | None, ts: Any) -> datetime | None:
    t = _parse_time(ts)
    if t is None:
        return a
    return t if a is None or t > a else a


def pod_status_reason(pod: Obj) -> tuple[str, int, int, int, datetime | None]:
    """kubectl's STATUS logic: (reason, ready, total, restarts, last restart time)."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}
    total = len(spec.get("containers") or [])
    total += sum(1 for c in init_specs.values() if _restartable_init(c))
    ready = 0
    restarts = 0
    sidecar_restarts = 0
    last: datetime | None = None
    sidecar_last: datetime | None = None

    reason = str(status.get("phase") or "")
    if status.get("reason"):
        reason = str(status["reason"])
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    initializing = False
    n_init = len(spec.get("initContainers") or [])
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        restarts += _int(cs.get("restartCount"))
        last = _later(last, _g(cs, "lastState", "terminated", "finishedAt"))
        is_sidecar = _restartable_init(init_specs.get(cs.get("name")))
        if is_sidecar:
            sidecar_restarts += _int(cs.get("restartCount"))
            sidecar_last = _later(sidecar_last, _g(cs, "lastState", "terminated", "finishedAt"))
        term = _g(cs, "state", "terminated")
        waiting = _g(cs, "state", "waiting")
        if term is not None and _int(term.get("exitCode")) == 0:
            continue
        if is_sidecar and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if term is not None:
            if not term.get("reason"):
                if _int(term.get("signal")):
                    reason = f"Init:Signal:{_int(term.get('signal'))}"
                else:
                    reason = f"Init:ExitCode:{_int(term.get('exitCode'))}"
            else:
                reason = "Init:" + str(term["reason"])
        elif waiting is not None and waiting.get("reason") and waiting.get("reason") != "PodInitializing":
            reason = "Init:" + str(waiting["reason"])
        else:
            reason = f"Init:{i}/{n_init}"
        initializing = True
        break

    if not initializing or _cond_true(status.get("conditions"), "Initialized"):
        restarts = sidecar_restarts
        last = sidecar_last
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += _int(cs.get("restartCount"))
            last = _later(last, _g(cs, "lastState", "terminated", "finishedAt"))
            waiting = _g(cs, "state", "waiting")
            term = _g(cs, "state", "terminated")
            if waiting is not None and waiting.get("reason"):
                reason = str(waiting["reason"])
            elif term is not None and term.get("reason"):
                reason = str(term["reason"])
            elif term is not None:
                if _int(term.get("signal")):
                    reason = f"Signal:{_int(term.get('signal'))}"
                else:
                    reason = f"ExitCode:{_int(term.get('exitCode'))}"
            elif cs.get("ready") and _g(cs, "state", "running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _cond_true(status.get("conditions"), "Ready") else "NotReady"

    deleting = _meta(pod).get("deletionTimestamp") is not None
    if deleting and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and status.get("phase") not in ("Failed", "Succeeded"):
        reason = "Terminating"
    return reason, ready, total, restarts, last


def _pod_row(pod: Obj, now: datetime) -> list[Cell]:
    reason, ready, total, restarts, last = pod_status_reason(pod)
    restarts_cell = str(restarts)
    if restarts and last is not None:
        restarts_cell = f"{restarts} ({human_duration((now - last).total_seconds())} ago)"
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    gates = spec.get("readinessGates") or []
    if gates:
        wanted = {g.get("conditionType") for g in gates}
        true = sum(1 for c in status.get("conditions") or [] if c.get("type") in wanted and c.get("status") == "True")
        gates_cell = f"{true}/{len(gates)}"
    else:
        gates_cell = NONE
    return [
        _name(pod),
        f"{ready}/{total}",
        reason,
        restarts_cell,
        _age(pod, now),
        status.get("podIP") or NONE,
        spec.get("nodeName") or NONE,
        status.get("nominatedNodeName") or NONE,
        gates_cell,
    ]


POD_COLUMNS = [
    NAME_COL,
    _col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    _col("Status", "The aggregate status of the containers in this pod."),
    _col(
        "Restarts",
        "The number of times the containers in this pod have been restarted and when the last container in this "
        "pod has restarted.",
    ),
    AGE_COL,
    _wide("IP", "IP address allocated to the pod. Routable at least within the cluster."),
    _wide("Node", "NodeName is a request to schedule this pod onto a specific node."),
    _wide("Nominated Node", "The node the scheduler nominated for this pod while it preempts other pods."),
    _wide("Readiness Gates", "If specified, all readiness gates will be evaluated for pod readiness."),
]

# ------------------------------------------------------------------ workloads


def _deployment_row(obj: Obj, now: datetime) -> list[Cell]:
    spec = obj.get("spec") or {}
    st = obj.get("status") or {}
    desired = _int(spec.get("replicas")) if spec.get("replicas") is not None else 1
    containers, images = _containers_images(_pod_spec(obj, "spec", "template", "spec"))
    return [
        _name(obj),
        f"{_int(st.get('readyReplicas'))}/{desired}",
        _int(st.get("updatedReplicas")),
        _int(st.get("availableReplicas")),
        _age(obj, now),
        containers,
        images,
        _label_selector_string(spec.get("selector"), ""),
    ]


DEPLOYMENT_COLUMNS = [
    NAME_COL,
    _col("Ready", "Number of the pod with ready state"),
    _col("Up-to-date", "Total number of non-terminated pods targeted by this deployment that have the desired template spec.", type_="integer"),
    _col("Available", "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.", type_="integer"),
    AGE_COL,
    CONTAINERS_COL,
    IMAGES_COL,
    SELECTOR_COL,
]


def _replicaset_row(obj: Obj, now: datetime) -> list[Cell]:
    spec = obj.get("spec") or {}
    st = obj.get("status") or {}
    desired = _int(spec.get("replicas")) if spec.get("replicas") is not None else 1
    containers, images = _containers_images(_pod_spec(obj, "spec", "template", "spec"))
    selector = spec.get("selector")
    if obj.get("kind") == "ReplicationController" or (selector and "matchLabels" not in selector and "matchExpressions" not in selector):
        selector_cell = format_labels(selector)
    else:
        selector_cell = _label_selector_string(selector, "")
    return [
        _name(obj),
        desired,
        _int(st.get("replicas")),
        _int(st.get("readyReplicas")),
        _age(obj, now),
        containers,
        images,
        selector_cell,
    ]


REPLICASET_COLUMNS = [
    NAME_COL,
    _col("Desired", "Number of desired pods. This is a pointer to distinguish between explicit zero and unspecified.", type_="integer"),
    _col("Current", "Replicas is the most recently observed number of replicas.", type_="integer"),
    _col("Ready", "The number of ready replicas for this replica set.", type_="integer"),
    AGE_COL,
    CONTAINERS_COL,
    IMAGES_COL,
    SELECTOR_COL,
]


def _statefulset_row(obj: Obj, now: datetime) -> list[Cell]:
    spec = obj.get("spec") or {}
    st = obj.get("status") or {}
    desired = _int(spec.get("replicas")) if spec.get("replicas") is not None else 1
    containers, images = _containers_images(_pod_spec(obj, "spec", "template", "spec"))
    return [_name(obj), f"{_int(st.get('readyReplicas'))}/{desired}", _age(obj, now), containers, images]


STATEFULSET_COLUMNS = [
    NAME_COL,
    _col("Ready", "Number of the pod with ready state"),
    AGE_COL,
    CONTAINERS_COL,
    IMAGES_COL,
]


def _daemonset_row(obj: Obj, now: datetime) -> list[Cell]:
    spec = obj.get("spec") or {}
    st = obj.get("status") or {}
    pod_spec = _pod_spec(obj, "spec", "template", "spec")
    containers, images = _containers_images(pod_spec)
    return [
        _name(obj),
        _int(st.get("desiredNumberScheduled")),
        _int(st.get("currentNumberScheduled")),
        _int(st.get("numberReady")),
        _int(st.get("updatedNumberScheduled")),
        _int(st.get("numberAvailable")),
        format_labels(pod_spec.get("nodeSelector")),
        _age(obj, now),
        containers,
        images,
        _label_selector_string(spec.get("selector"), ""),
    ]


DAEMONSET_COLUMNS = [
    NAME_COL,
    _col("Desired", "The total number of nodes that should be running the daemon pod.", type_="integer"),
    _col("Current", "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.", type_="integer"),
    _col("Ready", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.", type_="integer"),
    _col("Up-to-date", "The total number of nodes that are running updated daemon pod", type_="integer"),
    _col("Available", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available.", type_="integer"),
    _col("Node Selector", "NodeSelector is a selector which must be true for the pod to fit on a node."),
    AGE_COL,
    CONTAINERS_COL,
    IMAGES_COL,
    SELECTOR_COL,
]


def _job_status(obj: Obj) -> str:
    conds = _g(obj, "status", "conditions")
    if _cond_true(conds, "Complete"):
        return "Complete"
    if _cond_true(conds, "Failed"):
        return "Failed"
    if _meta(obj).get("deletionTimestamp") is not None:
        return "Terminating"
    if _cond_true(conds, "SuccessCriteriaMet"):
        return "SuccessCriteriaMet"
    if _cond_true(conds, "Suspended"):
        return "Suspended"
    if _cond_true(conds, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def _job_row(obj: Obj, now: datetime) -> list[Cell]:
    spec = obj.get("spec") or {}
    st = obj.get("status") or {}
    succeeded = _int(st.get("succeeded"))
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{_int(spec['completions'])}"
    elif _int(spec.get("parallelism")) > 1:
        completions = f"{succeeded}/1 of {_int(spec['parallelism'])}"
    else:
        completions = f"{succeeded}/1"
    start = _parse_time(st.get("startTime"))
    end = _parse_time(st.get("completionTime"))
    duration = ""
    if start is not None:
        duration = human_duration(((end or now) - start).total_seconds())
    containers, images = _containers_images(_pod_spec(obj, "spec", "template", "spec"))
    return [
        _name(obj),
        _job_status(obj),
        completions,
        duration,
        _age(obj, now),
        containers,
        images,
        _label_selector_string(spec.get("selector")),
    ]


JOB_COLUMNS = [
    NAME_COL,
    _col("Status", "Status of the job."),
    _col("Completions", "The desired number of successfully finished pods the job should be run with."),
    _col("Duration", "Time required to complete the job."),
    AGE_COL,
    CONTAINERS_COL,
    IMAGES_COL,
    SELECTOR_COL,
]


def _cronjob_row(obj: Obj, now: datetime) -> list[Cell]:
    spec = obj.get("spec") or {}
    st = obj.get("status") or {}
    job_spec = _g(spec, "jobTemplate", "spec") or {}
    containers, images = _containers_images(_g(job_spec, "template", "spec") or {})
    last = st.get("lastScheduleTime")
    return [
        _name(obj),
        str(spec.get("schedule") or ""),
        spec.get("timeZone") or NONE,
        _bool_cell(spec.get("suspend")),
        len(st.get("active") or []),
        translate_timestamp_since(last, now) if last else NONE,
        _age(obj, now),
        containers,
        images,
        _label_selector_string(job_spec.get("selector")),
    ]


CRONJOB_COLUMNS = [
    NAME_COL,
    _col("Schedule", "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
    _col("Timezone", "The time zone name for the given schedule."),
    _col("Suspend", "This flag tells the controller to suspend subsequent executions.", type_="boolean"),
    _col("Active", "A list of pointers to currently running jobs.", type_="integer"),
    _col("Last Schedule", "Information when was the last time the job was successfully scheduled."),
    AGE_COL,
    CONTAINERS_COL,
    IMAGES_COL,
    SELECTOR_COL,
]


def _controller_revision_row(obj: Obj, now: datetime) -> list[Cell]:
    controller = NONE
    for ref in _meta(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            api_version = str(ref.get("apiVersion") or "")
            group = api_version.split("/")[0] if "/" in api_version else ""
            kind = str(ref.get("kind") or "")
            gk = f"{kind}.{group}" if group else kind
            controller = f"{gk.lower()}/{ref.get('name', '')}"
            break
    return [_name(obj), controller, _int(obj.get("revision")), _age(obj, now)]


CONTROLLER_REVISION_COLUMNS = [
    NAME_COL,
    _col("Controller", "Controller of the object"),
    _col("Revision", "Revision indicates the revision of the state represented by Data.", type_="integer"),
    AGE_COL,
]

# ------------------------------------------------------------------ services and networking


def _service_external_ip(obj: Obj) -> str:
    spec = obj.get("spec") or {}
    stype = spec.get("type") or "ClusterIP"
    external = [str(ip) for ip in spec.get("externalIPs") or []]
    if stype in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else NONE
    if stype == "LoadBalancer":
        ingress = _g(obj, "status", "loadBalancer", "ingress") or []
        ips = [str(i.get("ip") or i.get("hostname") or "") for i in ingress]
        ips = [i for i in ips if i] + external
        return ",".join(ips) if ips else "<pending>"
    if stype == "ExternalName":
        return str(spec.get("externalName") or "")
    return UNKNOWN


def _service_ports(ports: Sequence[Mapping[str, Any]]) -> str:
    pieces = []
    for p in ports:
        proto = p.get("protocol") or "TCP"
        if _int(p.get("nodePort")):
            pieces.append(f"{_int(p.get('port'))}:{_int(p['nodePort'])}/{proto}")
        else:
            pieces.append(f"{_int(p.get('port'))}/{proto}")
    return ",".join(pieces) if pieces else NONE


def _service_row(obj: Obj, now: datetime) -> list[Cell]:
    spec = obj.get("spec") or {}
    cluster_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [
        _name(obj),
        spec.get("type") or "ClusterIP",
        str(cluster_ips[0]) if cluster_ips else NONE,
        _service_external_ip(obj),
        _service_ports(spec.get("ports") or []),
        _age(obj, now),
        format_labels(spec.get("selector")),
    ]


SERVICE_COLUMNS = [
    NAME_COL,
    _col("Type", "Type determines how the Service is exposed."),
    _col("Cluster-IP", "clusterIP is the IP address of the service and is usually assigned randomly."),
    _col("External-IP", "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service."),
    _col("Port(s)", "The list of ports that are exposed by this service."),
    AGE_COL,
    _wide("Selector", "Route service traffic to pods with label keys and values matching this selector."),
]


def _with_more(items: list[str], count: int, limit: int, empty: str) -> str:
    text = ",".join(items)
    if count > limit:
        return f"{text} + {count - limit} more..."
    return text or empty


def _host_port(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _endpoints_row(obj: Obj, now: datetime) -> list[Cell]:
    subsets = obj.get("subsets") or []
    limit = 3
    shown: list[str] = []
    count = 0
    for ss in subsets:
        addrs = [str(a.get("ip", "")) for a in ss.get("addresses") or []]
        ports = ss.get("ports") or []
        if not ports:
            count += len(addrs)
            shown.extend(addrs[: max(0, limit - len(shown))])
            continue
        for port in ports:
            count += len(addrs)
            for ip in addrs:
                if len(shown) < limit:
                    shown.append(_host_port(ip, _int(port.get("port"))))
    return [_name(obj), _with_more(shown, count, limit, NONE) if subsets else NONE, _age(obj, now)]


ENDPOINTS_COLUMNS = [
    NAME_COL,
    _col("Endpoints", "Endpoints of the service"),
    AGE_COL,
]


def _endpointslice_row(obj: Obj, now: datetime) -> list[Cell]:
    limit = 3
    ports = obj.get("ports") or []
    port_cells: list[str] = []
    for p in ports[:limit]:
        if p.get("port") is not None:
            port_cells.append(str(_int(p["port"])))
        elif p.get("name"):
            port_cells.append(str(p["name"]))
        else:
            port_cells.append("*")
    addrs = [str(a) for e in obj.get("endpoints") or [] for a in e.get("addresses") or []]
    return [
        _name(obj),
        str(obj.get("addressType") or ""),
        _with_more(port_cells, len(ports), limit, UNSET),
        _with_more(addrs[:limit], len(addrs), limit, UNSET),
        _age(obj, now),
    ]


ENDPOINTSLICE_COLUMNS = [
    NAME_COL,
    _col("AddressType", "The IP protocol for this slice"),
    _col("Ports", "The ports of the endpoints of this slice"),
    _col("Endpoints", "The endpoints of this slice"),
    AGE_COL,
]


def _ingress_row(obj: Obj, now: datetime) -> list[Cell]:
    spec = obj.get("spec") or {}
    hosts = [str(r.get("host")) for r in spec.get("rules") or [] if r.get("host")]
    ingress = _g(obj, "status", "loadBalancer", "ingress") or []
    address = ",".join(str(i.get("ip") or i.get("hostname") or "") for i in ingress)
    ports = "80, 443" if spec.get("tls") else "80"
    return [
        _name(obj),
        spec.get("ingressClassName") or NONE,
        ",".join(hosts) if hosts else "*",
        address,
        ports,
        _age(obj, now),
    ]


INGRESS_COLUMNS = [
    NAME_COL,
    _col("Class", "The name of the IngressClass resource that should be used to fulfill this Ingress."),
    _col("Hosts", "Hosts that incoming requests are matched against before the ingress rule"),
    _col("Address", "Address is a list containing ingress points for the load-balancer"),
    _col("Ports", "Ports of TLS configurations that open"),
    AGE_COL,
]


def _network_policy_row(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), _label_selector_string(_g(obj, "spec", "podSelector"), NONE), _age(obj, now)]


NETWORK_POLICY_COLUMNS = [
    NAME_COL,
    _col("Pod-Selector", "Selects the pods to which this NetworkPolicy object applies."),
    AGE_COL,
]

# ------------------------------------------------------------------ cluster objects


def _node_roles(labels: Mapping[str, str]) -> list[str]:
    roles: set[str] = set()
    for k, v in labels.items():
        if k.startswith("node-role.kubernetes.io/"):
            role = k[len("node-role.kubernetes.io/") :]
            if role:
                roles.add(role)
        elif k == "kubernetes.io/role" and v:
            roles.add(v)
    return sorted(roles)


def _node_row(obj: Obj, now: datetime) -> list[Cell]:
    st = obj.get("status") or {}
    spec = obj.get("spec") or {}
    statuses: list[str] = []
    ready = [c for c in st.get("conditions") or [] if c.get("type") == "Ready"]
    if ready:
        statuses.append("Ready" if ready[-1].get("status") == "True" else "NotReady")
    else:
        statuses.append("Unknown")
    if spec.get("unschedulable"):
        statuses.append("SchedulingDisabled")
    roles = _node_roles(_meta(obj).get("labels") or {})
    info = st.get("nodeInfo") or {}

    def address(kind: str) -> str:
        for a in st.get("addresses") or []:
            if a.get("type") == kind:
                return str(a.get("address", ""))
        return NONE

    return [
        _name(obj),
        ",".join(statuses),
        ",".join(roles) if roles else NONE,
        _age(obj, now),
        str(info.get("kubeletVersion") or ""),
        address("InternalIP"),
        address("ExternalIP"),
        info.get("osImage") or UNKNOWN,
        info.get("kernelVersion") or UNKNOWN,
        info.get("containerRuntimeVersion") or UNKNOWN,
    ]


NODE_COLUMNS = [
    NAME_COL,
    _col("Status", "The status of the node"),
    _col("Roles", "The roles of the node"),
    AGE_COL,
    _col("Version", "Kubelet Version reported by the node."),
    _wide("Internal-IP", "List of addresses reachable to the node."),
    _wide("External-IP", "List of addresses reachable to the node."),
    _wide("OS-Image", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy))."),
    _wide("Kernel-Version", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."),
    _wide("Container-Runtime", "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2)."),
]


def _namespace_row(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), str(_g(obj, "status", "phase") or "Active"), _age(obj, now)]


NAMESPACE_COLUMNS = [
    NAME_COL,
    _col("Status", "The status of the namespace"),
    AGE_COL,
]


def _lease_row(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), str(_g(obj, "spec", "holderIdentity") or ""), _age(obj, now)]


LEASE_COLUMNS = [
    NAME_COL,
    _col("Holder", "holderIdentity contains the identity of the holder of a current lease."),
    AGE_COL,
]


def _priority_class_row(obj: Obj, now: datetime) -> list[Cell]:
    return [
        _name(obj),
        _int(obj.get("value")),
        bool(obj.get("globalDefault")),
        str(obj.get("preemptionPolicy") or "PreemptLowerPriority"),
        _age(obj, now),
    ]


PRIORITY_CLASS_COLUMNS = [
    NAME_COL,
    _col("Value", "value represents the integer value of this priority class.", type_="integer"),
    _col("Global-Default", "globalDefault specifies whether this PriorityClass should be considered as the default priority.", type_="boolean"),
    _col("Preemption Policy", "preemptionPolicy is the Policy for preempting pods with lower priority."),
    AGE_COL,
]

# ------------------------------------------------------------------ configuration and storage


def _configmap_row(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), len(obj.get("data") or {}) + len(obj.get("binaryData") or {}), _age(obj, now)]


CONFIGMAP_COLUMNS = [
    NAME_COL,
    _col("Data", "Data contains the configuration data.", type_="integer"),
    AGE_COL,
]


def _secret_row(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), str(obj.get("type") or "Opaque"), len(obj.get("data") or {}), _age(obj, now)]


SECRET_COLUMNS = [
    NAME_COL,
    _col("Type", "The type of the secret"),
    _col("Data", "The number of entries in the secret data.", type_="integer"),
    AGE_COL,
]


def _service_account_row(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), len(obj.get("secrets") or []), _age(obj, now)]


SERVICE_ACCOUNT_COLUMNS = [
    NAME_COL,
    _col("Secrets", "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.", type_="integer"),
    AGE_COL,
]

_ACCESS_MODES = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"), ("ReadWriteOncePod", "RWOP"))


def _access_modes(modes: Any) -> str:
    have = set(modes or [])
    return ",".join(short for long, short in _ACCESS_MODES if long in have)


def _pv_row(obj: Obj, now: datetime) -> list[Cell]:
    spec = obj.get("spec") or {}
    st = obj.get("status") or {}
    claim = spec.get("claimRef") or {}
    claim_cell = f"{claim.get('namespace', '')}/{claim.get('name', '')}" if claim else ""
    phase = str(st.get("phase") or "")
    if _meta(obj).get("deletionTimestamp") is not None:
        phase = "Terminating"
    storage_class = spec.get("storageClassName") or (_meta(obj).get("annotations") or {}).get(
        "volume.beta.kubernetes.io/storage-class", ""
    )
    return [
        _name(obj),
        str(_g(spec, "capacity", "storage") or ""),
        _access_modes(spec.get("accessModes")),
        str(spec.get("persistentVolumeReclaimPolicy") or "Retain"),
        phase,
        claim_cell,
        storage_class,
        spec.get("volumeAttributesClassName") or UNSET,
        str(st.get("reason") or ""),
        _age(obj, now),
        spec.get("volumeMode") or UNSET,
    ]


PV_COLUMNS = [
    NAME_COL,
    _col("Capacity", "capacity is the description of the persistent volume's resources and capacity."),
    _col("Access Modes", "accessModes contains all ways the volume can be mounted."),
    _col("Reclaim Policy", "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim."),
    _col("Status", "phase indicates if a volume is available, bound to a claim, or released by a claim."),
    _col("Claim", "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim."),
    _col("StorageClass", "storageClassName is the name of StorageClass to which this persistent volume belongs."),
    _col("VolumeAttributesClass", "Name of VolumeAttributesClass to which this persistent volume belongs."),
    _col("Reason", "reason is a brief CamelCase string that describes any failure."),
    AGE_COL,
    _wide("VolumeMode", "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state."),
]


def _pvc_row(obj: Obj, now: datetime) -> list[Cell]:
    spec = obj.get("spec") or {}
    st = obj.get("status") or {}
    phase = str(st.get("phase") or "")
    if _meta(obj).get("deletionTimestamp") is not None:
        phase = "Terminating"
    capacity, modes = "", ""
    if spec.get("volumeName"):
        capacity = str(_g(st, "capacity", "storage") or "")
        modes = _access_modes(st.get("accessModes"))
    storage_class = spec.get("storageClassName") or (_meta(obj).get("annotations") or {}).get(
        "volume.beta.kubernetes.io/storage-class", ""
    )
    return [
        _name(obj),
        phase,
        str(spec.get("volumeName") or ""),
        capacity,
        modes,
        storage_class,
        spec.get("volumeAttributesClassName") or UNSET,
        _age(obj, now),
        spec.get("volumeMode") or UNSET,
    ]


PVC_COLUMNS = [
    NAME_COL,
    _col("Status", "phase represents the current phase of PersistentVolumeClaim."),
    _col("Volume", "volumeName is the binding reference to the PersistentVolume backing this claim."),
    _col("Capacity", "capacity represents the actual resources of the underlying volume."),
    _col("Access Modes", "accessModes contains the desired access modes the volume should have."),
    _col("StorageClass", "storageClassName is the name of the StorageClass required by the claim."),
    _col("VolumeAttributesClass", "volumeAttributesClassName may be used to set the VolumeAttributesClass used by this claim."),
    AGE_COL,
    _wide("VolumeMode", "volumeMode defines what type of volume is required by the claim."),
]

_DEFAULT_CLASS_ANNOTATIONS = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)


def _storage_class_row(obj: Obj, now: datetime) -> list[Cell]:
    name = _name(obj)
    annotations = _meta(obj).get("annotations") or {}
    if any(annotations.get(a) == "true" for a in _DEFAULT_CLASS_ANNOTATIONS):
        name += " (default)"
    return [
        name,
        str(obj.get("provisioner") or ""),
        str(obj.get("reclaimPolicy") or "Delete"),
        str(obj.get("volumeBindingMode") or "Immediate"),
        bool(obj.get("allowVolumeExpansion")),
        _age(obj, now),
    ]


STORAGE_CLASS_COLUMNS = [
    NAME_COL,
    _col("Provisioner", "Indicates the type of the provisioner."),
    _col("ReclaimPolicy", "Dynamically provisioned PersistentVolumes of this storage class are created with this reclaimPolicy."),
    _col("VolumeBindingMode", "VolumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound."),
    _col("AllowVolumeExpansion", "AllowVolumeExpansion shows whether the storage class allow volume expand.", type_="boolean"),
    AGE_COL,
]


def _resource_quota_row(obj: Obj, now: datetime) -> list[Cell]:
    hard = _g(obj, "status", "hard") or _g(obj, "spec", "hard") or {}
    used = _g(obj, "status", "used") or {}
    requests: list[str] = []
    limits: list[str] = []
    for res in sorted(hard):
        piece = f"{res}: {used.get(res, '0')}/{hard[res]}"
        (limits if res.startswith("limits.") else requests).append(piece)
    return [_name(obj), _age(obj, now), ", ".join(requests), ", ".join(limits)]


RESOURCE_QUOTA_COLUMNS = [
    NAME_COL,
    AGE_COL,
    _col("Request", "Request represents a minimum amount of cpu/memory that a container may consume."),
    _col("Limit", "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."),
]

CREATED_AT_COL = _col("Created At", "CreationTimestamp is a timestamp representing the server time when this object was created.", type_="date")


def _created_at_row(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), _created_at(_meta(obj).get("creationTimestamp"))]


CREATED_AT_COLUMNS = [NAME_COL, CREATED_AT_COL]


def _hpa_metric(spec_m: Mapping[str, Any], cur_m: Mapping[str, Any] | None) -> str:
    mtype = spec_m.get("type")
    if mtype == "Resource" or mtype == "ContainerResource":
        key = "resource" if mtype == "Resource" else "containerResource"
        target = _g(spec_m, key, "target") or {}
        name = str(_g(spec_m, key, "name") or "")
        current = _g(cur_m, key, "current") or {}
        if target.get("averageUtilization") is not None:
            cur = f"{current['averageUtilization']}%" if current.get("averageUtilization") is not None else UNKNOWN
            return f"{name}: {cur}/{target['averageUtilization']}%"
        cur = str(current.get("averageValue")) if current.get("averageValue") is not None else UNKNOWN
        return f"{name}: {cur}/{target.get('averageValue', '')}"
    key = {"Pods": "pods", "Object": "object", "External": "external"}.get(str(mtype), "")
    target = _g(spec_m, key, "target") or {}
    current = _g(cur_m, key, "current") or {}
    if target.get("value") is not None:
        cur = str(current["value"]) if current.get("value") is not None else UNKNOWN
        return f"{cur}/{target['value']}"
    cur = str(current["averageValue"]) if current.get("averageValue") is not None else UNKNOWN
    return f"{cur}/{target.get('averageValue', '')} (avg)"


def _hpa_row(obj: Obj, now: datetime) -> list[Cell]:
    spec = obj.get("spec") or {}
    st = obj.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    metrics: list[str] = []
    if "targetCPUUtilizationPercentage" in spec:  # autoscaling/v1
        cur = st.get("currentCPUUtilizationPercentage")
        metrics.append(f"cpu: {str(cur) + '%' if cur is not None else UNKNOWN}/{spec['targetCPUUtilizationPercentage']}%")
    else:
        current = st.get("currentMetrics") or []
        for i, m in enumerate(spec.get("metrics") or []):
            metrics.append(_hpa_metric(m, current[i] if i < len(current) else None))
    targets = _with_more(metrics[:2], len(metrics), 2, NONE)
    return [
        _name(obj),
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        targets,
        _int(spec["minReplicas"]) if spec.get("minReplicas") is not None else UNSET,
        _int(spec.get("maxReplicas")),
        _int(st.get("currentReplicas")),
        _age(obj, now),
    ]


HPA_COLUMNS = [
    NAME_COL,
    _col("Reference", "reference to scaled resource; horizontal pod autoscaler will learn the current resource consumption and will set the desired number of pods by using its Scale subresource."),
    _col("Targets", "metrics contains the specifications for which to use to calculate the desired replica count."),
    _col("MinPods", "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.", type_="string"),
    _col("MaxPods", "maxReplicas is the upper limit for the number of pods that can be set by the autoscaler.", type_="integer"),
    _col("Replicas", "currentReplicas is current number of replicas of pods managed by this autoscaler.", type_="string"),
    AGE_COL,
]


def _pdb_row(obj: Obj, now: datetime) -> list[Cell]:
    spec = obj.get("spec") or {}
    return [
        _name(obj),
        str(spec["minAvailable"]) if spec.get("minAvailable") is not None else "N/A",
        str(spec["maxUnavailable"]) if spec.get("maxUnavailable") is not None else "N/A",
        _int(_g(obj, "status", "disruptionsAllowed")),
        _age(obj, now),
    ]


PDB_COLUMNS = [
    NAME_COL,
    _col("Min Available", "The minimum number of pods that must be available simultaneously."),
    _col("Max Unavailable", "The maximum number of pods that may be unavailable simultaneously."),
    _col("Allowed Disruptions", "Calculated number of pods that may be disrupted at this time.", type_="integer"),
    AGE_COL,
]

# ------------------------------------------------------------------ RBAC


def _subjects(obj: Obj) -> tuple[str, str, str]:
    users, groups, sas = [], [], []
    for s in obj.get("subjects") or []:
        kind = s.get("kind")
        if kind == "User":
            users.append(str(s.get("name", "")))
        elif kind == "Group":
            groups.append(str(s.get("name", "")))
        elif kind == "ServiceAccount":
            sas.append(f"{s.get('namespace', '')}:{s.get('name', '')}")
    return ", ".join(users), ", ".join(groups), ", ".join(sas)


def _binding_row(obj: Obj, now: datetime) -> list[Cell]:
    ref = obj.get("roleRef") or {}
    users, groups, sas = _subjects(obj)
    return [_name(obj), f"{ref.get('kind', '')}/{ref.get('name', '')}", _age(obj, now), users, groups, sas]


BINDING_COLUMNS = [
    NAME_COL,
    _col("Role", "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace."),
    AGE_COL,
    _wide("Users", "Users in the roleBinding"),
    _wide("Groups", "Groups in the roleBinding"),
    _wide("ServiceAccounts", "ServiceAccounts in the roleBinding"),
]

# ------------------------------------------------------------------ events


def _normalize_event(obj: Obj) -> dict[str, Any]:
    """events.k8s.io/v1 Events carry the same facts under other names; print both alike."""
    if "regarding" not in obj and "note" not in obj and "deprecatedSource" not in obj:
        return dict(obj)
    return {
        "metadata": obj.get("metadata") or {},
        "involvedObject": obj.get("regarding") or {},
        "reason": obj.get("reason"),
        "message": obj.get("note"),
        "type": obj.get("type"),
        "source": obj.get("deprecatedSource") or {},
        "firstTimestamp": obj.get("deprecatedFirstTimestamp"),
        "lastTimestamp": obj.get("deprecatedLastTimestamp"),
        "count": obj.get("deprecatedCount"),
        "eventTime": obj.get("eventTime"),
        "series": obj.get("series"),
        "reportingComponent": obj.get("reportingController"),
        "reportingInstance": obj.get("reportingInstance"),
    }


def _event_row(raw: Obj, now: datetime) -> list[Cell]:
    obj = _normalize_event(raw)
    first = obj.get("firstTimestamp")
    first_cell = translate_timestamp_since(first if first else obj.get("eventTime"), now)
    last = obj.get("lastTimestamp")
    last_cell = translate_timestamp_since(last, now) if last else first_cell
    count = _int(obj.get("count"))
    series = obj.get("series")
    if series:
        last_cell = translate_timestamp_since(series.get("lastObservedTime"), now)
        count = _int(series.get("count"))
    elif count == 0:
        count = 1
    inv = obj.get("involvedObject") or {}
    kind = str(inv.get("kind") or "").lower()
    target = f"{kind}/{inv['name']}" if inv.get("name") else kind
    src = obj.get("source") or {}
    if src.get("component") or src.get("host"):
        comp, inst = str(src.get("component") or ""), str(src.get("host") or "")
    else:
        comp, inst = str(obj.get("reportingComponent") or ""), str(obj.get("reportingInstance") or "")
    source = f"{comp}, {inst}" if inst else comp
    return [
        last_cell,
        str(obj.get("type") or ""),
        str(obj.get("reason") or ""),
        target,
        str(inv.get("fieldPath") or ""),
        source,
        str(obj.get("message") or "").strip(),
        first_cell,
        count,
        _name(obj),
    ]


EVENT_COLUMNS = [
    _col("Last Seen", "The time at which the most recent occurrence of this event was recorded."),
    _col("Type", "Type of this event (Normal, Warning), new types could be added in the future"),
    _col("Reason", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
    _col("Object", "The object that this event is about."),
    _wide("Subobject", "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement."),
    _wide("Source", "The component reporting this event. Should be a short machine understandable string."),
    _col("Message", "A human-readable description of the status of this operation."),
    _wide("First Seen", "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)"),
    _wide("Count", "The number of times this event has occurred."),
    _col("Name", NAME_COL["description"], fmt="name", priority=1),
]

# ------------------------------------------------------------------ generic


def _generic_row(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), _age(obj, now)]


GENERIC_COLUMNS = [NAME_COL, AGE_COL]

_PRINTERS: dict[str, tuple[list[dict[str, Any]], RowFn]] = {
    "Pod": (POD_COLUMNS, _pod_row),
    "Deployment": (DEPLOYMENT_COLUMNS, _deployment_row),
    "ReplicaSet": (REPLICASET_COLUMNS, _replicaset_row),
    "ReplicationController": (REPLICASET_COLUMNS, _replicaset_row),
    "StatefulSet": (STATEFULSET_COLUMNS, _statefulset_row),
    "DaemonSet": (DAEMONSET_COLUMNS, _daemonset_row),
    "Job": (JOB_COLUMNS, _job_row),
    "CronJob": (CRONJOB_COLUMNS, _cronjob_row),
    "ControllerRevision": (CONTROLLER_REVISION_COLUMNS, _controller_revision_row),
    "Service": (SERVICE_COLUMNS, _service_row),
    "Endpoints": (ENDPOINTS_COLUMNS, _endpoints_row),
    "EndpointSlice": (ENDPOINTSLICE_COLUMNS, _endpointslice_row),
    "Ingress": (INGRESS_COLUMNS, _ingress_row),
    "NetworkPolicy": (NETWORK_POLICY_COLUMNS, _network_policy_row),
    "Node": (NODE_COLUMNS, _node_row),
    "Namespace": (NAMESPACE_COLUMNS, _namespace_row),
    "Lease": (LEASE_COLUMNS, _lease_row),
    "PriorityClass": (PRIORITY_CLASS_COLUMNS, _priority_class_row),
    "ConfigMap": (CONFIGMAP_COLUMNS, _configmap_row),
    "Secret": (SECRET_COLUMNS, _secret_row),
    "ServiceAccount": (SERVICE_ACCOUNT_COLUMNS, _service_account_row),
    "PersistentVolume": (PV_COLUMNS, _pv_row),
    "PersistentVolumeClaim": (PVC_COLUMNS, _pvc_row),
    "StorageClass": (STORAGE_CLASS_COLUMNS, _storage_class_row),
    "ResourceQuota": (RESOURCE_QUOTA_COLUMNS, _resource_quota_row),
    "LimitRange": (CREATED_AT_COLUMNS, _created_at_row),
    "Role": (CREATED_AT_COLUMNS, _created_at_row),
    "ClusterRole": (CREATED_AT_COLUMNS, _created_at_row),
    "RoleBinding": (BINDING_COLUMNS, _binding_row),
    "ClusterRoleBinding": (BINDING_COLUMNS, _binding_row),
    "HorizontalPodAutoscaler": (HPA_COLUMNS, _hpa_row),
    "PodDisruptionBudget": (PDB_COLUMNS, _pdb_row),
    "Event": (EVENT_COLUMNS, _event_row),
}


def _printer(kind: str) -> tuple[list[dict[str, Any]], RowFn]:
    return _PRINTERS.get(kind, (GENERIC_COLUMNS, _generic_row))


def table_columns(kind: str) -> list[dict[str, Any]]:
    """The columnDefinitions for ``kind`` (a fresh copy, safe to mutate)."""
    return copy.deepcopy(_printer(kind)[0])


def table_row_cells(kind: str, obj: Obj, *, now: datetime) -> list[Cell]:
    """The cells of one row, aligned with :func:`table_columns` (wide columns included)."""
    return _printer(kind)[1](obj, now)


def partial_object_metadata(obj: Obj) -> dict[str, Any]:
    """A row's object for includeObject=Metadata; kubectl needs the kind to read namespace and labels."""
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": dict(obj.get("metadata") or {}),
    }


def _row_object(kind: str, api_version: str, obj: Obj, include_object: IncludeObject) -> dict[str, Any] | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        full = dict(obj)
        full.setdefault("kind", kind)
        full.setdefault("apiVersion", api_version)
        return full
    return partial_object_metadata(obj)


def _row(kind: str, api_version: str, obj: Obj, include_object: IncludeObject, now: datetime, fn: RowFn) -> dict[str, Any]:
    row: dict[str, Any] = {"cells": fn(obj, now)}
    embedded = _row_object(kind, api_version, obj, include_object)
    if embedded is not None:
        row["object"] = embedded
    return row


def render_table(
    kind: str,
    api_version: str,
    objects: Sequence[Obj],
    *,
    include_object: IncludeObject = "Metadata",
    now: datetime,
    resource_version: str | None = None,
    continue_token: str | None = None,
    remaining_item_count: int | None = None,
) -> dict[str, Any]:
    """A ``meta.k8s.io/v1`` Table for a list (or single object) of ``kind``.

    ``include_object`` follows the ``includeObject`` query parameter: ``Metadata``
    (kubectl's default) embeds a PartialObjectMetadata, ``Object`` the full object
    (``--sort-by``), ``None`` nothing.
    """
    if include_object not in ("None", "Metadata", "Object"):
        raise ValueError(f"includeObject must be None, Metadata or Object, not {include_object!r}")
    columns, fn = _printer(kind)
    meta: dict[str, Any] = {}
    if resource_version is not None:
        meta["resourceVersion"] = resource_version
    if continue_token:
        meta["continue"] = continue_token
    if remaining_item_count is not None:
        meta["remainingItemCount"] = remaining_item_count
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": copy.deepcopy(columns),
        "rows": [_row(kind, api_version, o, include_object, now, fn) for o in objects],
    }


def watch_event_table(
    event_type: str,
    kind: str,
    api_version: str,
    obj: Obj,
    *,
    include_object: IncludeObject = "Metadata",
    now: datetime,
) -> dict[str, Any]:
    """One watch event for a Table watch (``kubectl get -w``): the object becomes a one-row Table.

    ERROR events keep their Status; a BOOKMARK becomes a row-less Table that carries
    only the resourceVersion, so clients still learn how far the stream got.
    """
    if event_type == "ERROR":
        return {"type": event_type, "object": dict(obj)}
    rv = _meta(obj).get("resourceVersion")
    if event_type == "BOOKMARK":
        table = render_table(kind, api_version, [], include_object=include_object, now=now, resource_version=rv)
    else:
        table = render_table(kind, api_version, [obj], include_object=include_object, now=now, resource_version=rv)
    return {"type": event_type, "object": table}
