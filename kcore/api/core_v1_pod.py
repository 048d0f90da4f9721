"""core/v1 Pod: containers, probes, scheduling constraints, PodSpec and PodStatus.

Workload kinds (Deployment, Job, ReplicationController...) embed
``PodTemplateSpec`` from here, so this module is the heart of core/v1.
Ephemeral containers are modelled like containers plus ``targetContainerName``.
"""

from __future__ import annotations

from pydantic import Field

from kcore.api.base import KubeModel
from kcore.api.core_v1_volume import (
    IntOrString,
    ObjectFieldSelector,
    ResourceFieldSelector,
    ResourceList,
    Volume,
    VolumeDevice,
    VolumeMount,
    opt,
    req,
)
from kcore.api.meta import LabelSelector, ListMeta, LocalObjectReference, ObjectMeta, KubeObject

# --- environment -----------------------------------------------------------


class ConfigMapKeySelector(KubeModel):
    name: str | None = None
    key: str
    optional: bool | None = None


class SecretKeySelector(KubeModel):
    name: str | None = None
    key: str
    optional: bool | None = None


class EnvVarSource(KubeModel):
    """Where an env var's value comes from; exactly one member is set."""

    fieldRef: ObjectFieldSelector | None = None
    resourceFieldRef: ResourceFieldSelector | None = None
    configMapKeyRef: ConfigMapKeySelector | None = None
    secretKeyRef: SecretKeySelector | None = None


class EnvVar(KubeModel):
    """One environment variable; ``value`` may reference $(OTHER) variables."""

    name: str = req("Variable name, a C identifier.")
    value: str | None = opt("Literal value with $(VAR) expansion.")
    valueFrom: EnvVarSource | None = opt("Source of the value when not literal.")


class ConfigMapEnvSource(KubeModel):
    name: str | None = None
    optional: bool | None = None


class SecretEnvSource(KubeModel):
    name: str | None = None
    optional: bool | None = None


class EnvFromSource(KubeModel):
    """Imports every key of a ConfigMap or Secret as environment variables."""

    prefix: str | None = None
    configMapRef: ConfigMapEnvSource | None = None
    secretRef: SecretEnvSource | None = None


# --- ports, resources -------------------------------------------------------


class ContainerPort(KubeModel):
    """A network port the container listens on (informational, plus hostPort)."""

    name: str | None = opt("IANA_SVC_NAME, unique in the pod; services can refer to it.")
    hostPort: int | None = opt("Port to expose on the node's IP.")
    containerPort: int = req("Port number on the pod's IP, 1-65535.")
    protocol: str | None = opt("TCP, UDP or SCTP; TCP when omitted.")
    hostIP: str | None = opt("Node IP to bind the host port to.")


class ResourceClaim(KubeModel):
    name: str
    request: str | None = None


class ResourceRequirements(KubeModel):
    """Compute resources: what the scheduler reserves and what the runtime caps."""

    limits: ResourceList | None = opt("Maximum amount of compute resources allowed.")
    requests: ResourceList | None = opt("Minimum amount of compute resources required; defaults to limits.")
    claims: list[ResourceClaim] | None = opt("Dynamic resource claims of the pod used by this container.")


class ContainerResizePolicy(KubeModel):
    resourceName: str
    restartPolicy: str


# --- probes and lifecycle ---------------------------------------------------


class ExecAction(KubeModel):
    command: list[str] | None = None


class HTTPHeader(KubeModel):
    name: str
    value: str


class HTTPGetAction(KubeModel):
    path: str | None = None
    port: IntOrString
    host: str | None = None
    scheme: str | None = None
    httpHeaders: list[HTTPHeader] | None = None


class TCPSocketAction(KubeModel):
    port: IntOrString
    host: str | None = None


class GRPCAction(KubeModel):
    port: int
    service: str | None = None


class SleepAction(KubeModel):
    seconds: int


class Probe(KubeModel):
    """A health check the kubelet runs against a container; one handler is set."""

    exec: ExecAction | None = opt("Run a command in the container; exit 0 is healthy.")
    httpGet: HTTPGetAction | None = opt("HTTP GET; 200-399 is healthy.")
    tcpSocket: TCPSocketAction | None = opt("Open a TCP connection.")
    grpc: GRPCAction | None = opt("gRPC health checking protocol.")
    initialDelaySeconds: int | None = opt("Seconds after start before the first probe.")
    timeoutSeconds: int | None = opt("Seconds after which the probe times out; default 1.")
    periodSeconds: int | None = opt("How often to probe, in seconds; default 10.")
    successThreshold: int | None = opt("Consecutive successes to count as healthy; default 1.")
    failureThreshold: int | None = opt("Consecutive failures to count as unhealthy; default 3.")
    terminationGracePeriodSeconds: int | None = opt("Grace period override when the probe fails.")


class LifecycleHandler(KubeModel):
    exec: ExecAction | None = None
    httpGet: HTTPGetAction | None = None
    tcpSocket: TCPSocketAction | None = None
    sleep: SleepAction | None = None


class Lifecycle(KubeModel):
    """Hooks the kubelet runs right after start and right before stop."""

    postStart: LifecycleHandler | None = None
    preStop: LifecycleHandler | None = None


# --- security -------------------------------------------------------------


class Capabilities(KubeModel):
    add: list[str] | None = None
    drop: list[str] | None = None


class SELinuxOptions(KubeModel):
    user: str | None = None
    role: str | None = None
    type: str | None = None
    level: str | None = None


class WindowsSecurityContextOptions(KubeModel):
    gmsaCredentialSpecName: str | None = None
    gmsaCredentialSpec: str | None = None
    runAsUserName: str | None = None
    hostProcess: bool | None = None


class SeccompProfile(KubeModel):
    type: str
    localhostProfile: str | None = None


class AppArmorProfile(KubeModel):
    type: str
    localhostProfile: str | None = None


class SecurityContext(KubeModel):
    """Container-level security settings; they override the pod's."""

    capabilities: Capabilities | None = None
    privileged: bool | None = None
    seLinuxOptions: SELinuxOptions | None = None
    windowsOptions: WindowsSecurityContextOptions | None = None
    runAsUser: int | None = None
    runAsGroup: int | None = None
    runAsNonRoot: bool | None = None
    readOnlyRootFilesystem: bool | None = None
    allowPrivilegeEscalation: bool | None = None
    procMount: str | None = None
    seccompProfile: SeccompProfile | None = None
    appArmorProfile: AppArmorProfile | None = None


class Sysctl(KubeModel):
    name: str
    value: str


class PodSecurityContext(KubeModel):
    """Pod-level security settings applied to every container."""

    seLinuxOptions: SELinuxOptions | None = None
    windowsOptions: WindowsSecurityContextOptions | None = None
    runAsUser: int | None = None
    runAsGroup: int | None = None
    runAsNonRoot: bool | None = None
    supplementalGroups: list[int] | None = None
    supplementalGroupsPolicy: str | None = None
    fsGroup: int | None = None
    sysctls: list[Sysctl] | None = None
    fsGroupChangePolicy: str | None = None
    seccompProfile: SeccompProfile | None = None
    appArmorProfile: AppArmorProfile | None = None
    seLinuxChangePolicy: str | None = None


# --- containers -----------------------------------------------------------


class Container(KubeModel):
    """A single application container of a pod."""

    name: str = req("Container name, a DNS-1123 label unique within the pod.")
    image: str | None = opt("Container image reference, e.g. nginx:1.27.")
    command: list[str] | None = opt("Entrypoint array; replaces the image's ENTRYPOINT.")
    args: list[str] | None = opt("Arguments to the entrypoint; replace the image's CMD.")
    workingDir: str | None = opt("Working directory; the image's when omitted.")
    ports: list[ContainerPort] | None = opt("Ports to expose from the container.")
    envFrom: list[EnvFromSource] | None = opt("Sources of environment variables (whole ConfigMaps/Secrets).")
    env: list[EnvVar] | None = opt("Environment variables to set.")
    resources: ResourceRequirements | None = opt("Compute resources required by this container.")
    resizePolicy: list[ContainerResizePolicy] | None = opt("How to apply an in-place resource resize.")
    restartPolicy: str | None = opt("Only 'Always', for init containers that run as sidecars.")
    volumeMounts: list[VolumeMount] | None = opt("Pod volumes to mount into the filesystem.")
    volumeDevices: list[VolumeDevice] | None = opt("Block devices to expose to the container.")
    livenessProbe: Probe | None = opt("Restart the container when this probe fails.")
    readinessProbe: Probe | None = opt("Remove the pod from service endpoints while this probe fails.")
    startupProbe: Probe | None = opt("Hold other probes until the container has started.")
    lifecycle: Lifecycle | None = opt("Actions on container start and stop.")
    terminationMessagePath: str | None = opt("File whose contents become the termination message.")
    terminationMessagePolicy: str | None = opt("File or FallbackToLogsOnError.")
    imagePullPolicy: str | None = opt("Always, Never or IfNotPresent.")
    securityContext: SecurityContext | None = opt("Security options for this container.")
    stdin: bool | None = opt("Allocate a stdin buffer.")
    stdinOnce: bool | None = opt("Close stdin after the first attach detaches.")
    tty: bool | None = opt("Allocate a TTY.")


class EphemeralContainer(Container):
    """A debugging container added to a running pod (kubectl debug)."""

    targetContainerName: str | None = opt("Container whose namespaces this one shares.")


# --- scheduling -----------------------------------------------------------


class NodeSelectorRequirement(KubeModel):
    key: str
    operator: str = req("In, NotIn, Exists, DoesNotExist, Gt or Lt.")
    values: list[str] | None = None


class NodeSelectorTerm(KubeModel):
    """Requirements ANDed together; terms of a NodeSelector are ORed."""

    matchExpressions: list[NodeSelectorRequirement] | None = None
    matchFields: list[NodeSelectorRequirement] | None = None


class NodeSelector(KubeModel):
    nodeSelectorTerms: list[NodeSelectorTerm]


class PreferredSchedulingTerm(KubeModel):
    weight: int
    preference: NodeSelectorTerm


class NodeAffinity(KubeModel):
    requiredDuringSchedulingIgnoredDuringExecution: NodeSelector | None = None
    preferredDuringSchedulingIgnoredDuringExecution: list[PreferredSchedulingTerm] | None = None


class PodAffinityTerm(KubeModel):
    """Pods matching the selector in the namespaces, co-located by topologyKey."""

    labelSelector: LabelSelector | None = None
    namespaces: list[str] | None = None
    topologyKey: str
    namespaceSelector: LabelSelector | None = None
    matchLabelKeys: list[str] | None = None
    mismatchLabelKeys: list[str] | None = None


class WeightedPodAffinityTerm(KubeModel):
    weight: int
    podAffinityTerm: PodAffinityTerm


class PodAffinity(KubeModel):
    requiredDuringSchedulingIgnoredDuringExecution: list[PodAffinityTerm] | None = None
    preferredDuringSchedulingIgnoredDuringExecution: list[WeightedPodAffinityTerm] | None = None


class PodAntiAffinity(KubeModel):
    requiredDuringSchedulingIgnoredDuringExecution: list[PodAffinityTerm] | None = None
    preferredDuringSchedulingIgnoredDuringExecution: list[WeightedPodAffinityTerm] | None = None


class Affinity(KubeModel):
    """Node affinity, pod affinity and pod anti-affinity rules."""

    nodeAffinity: NodeAffinity | None = None
    podAffinity: PodAffinity | None = None
    podAntiAffinity: PodAntiAffinity | None = None


class Toleration(KubeModel):
    """Lets the pod schedule onto (or stay on) nodes with a matching taint."""

    key: str | None = None
    operator: str | None = opt("Exists or Equal; Equal when omitted.")
    value: str | None = None
    effect: str | None = opt("NoSchedule, PreferNoSchedule or NoExecute; all when empty.")
    tolerationSeconds: int | None = opt("How long a NoExecute taint is tolerated.")


class TopologySpreadConstraint(KubeModel):
    """Spread matching pods evenly across a topology domain."""

    maxSkew: int
    topologyKey: str
    whenUnsatisfiable: str = req("DoNotSchedule or ScheduleAnyway.")
    labelSelector: LabelSelector | None = None
    minDomains: int | None = None
    nodeAffinityPolicy: str | None = None
    nodeTaintsPolicy: str | None = None
    matchLabelKeys: list[str] | None = None


class HostAlias(KubeModel):
    """An /etc/hosts entry."""

    ip: str
    hostnames: list[str] | None = None


class PodDNSConfigOption(KubeModel):
    name: str | None = None
    value: str | None = None


class PodDNSConfig(KubeModel):
    """Extra resolv.conf settings merged with those from dnsPolicy."""

    nameservers: list[str] | None = None
    searches: list[str] | None = None
    options: list[PodDNSConfigOption] | None = None


class PodReadinessGate(KubeModel):
    conditionType: str


class PodOS(KubeModel):
    name: str


class PodSchedulingGate(KubeModel):
    name: str


class PodResourceClaim(KubeModel):
    name: str
    resourceClaimName: str | None = None
    resourceClaimTemplateName: str | None = None


# --- PodSpec --------------------------------------------------------------


class PodSpec(KubeModel):
    """The desired behaviour of a pod."""

    volumes: list[Volume] | None = opt("Volumes that containers of the pod can mount.")
    initContainers: list[Container] | None = opt("Containers run in order to completion before the app containers start.")
    containers: list[Container] = req("The pod's containers; at least one.")
    ephemeralContainers: list[EphemeralContainer] | None = opt("Debugging containers added to the running pod.")
    restartPolicy: str | None = opt("Always, OnFailure or Never; Always when omitted.")
    terminationGracePeriodSeconds: int | None = opt("Seconds between SIGTERM and SIGKILL on deletion; default 30.")
    activeDeadlineSeconds: int | None = opt("Seconds the pod may be active before the kubelet fails it.")
    dnsPolicy: str | None = opt("ClusterFirst, ClusterFirstWithHostNet, Default or None.")
    nodeSelector: dict[str, str] | None = opt("Node labels that must all match for the pod to fit a node.")
    serviceAccountName: str | None = opt("ServiceAccount the pod runs as.")
    serviceAccount: str | None = opt("Deprecated alias of serviceAccountName.")
    automountServiceAccountToken: bool | None = opt("Mount the service account token automatically.")
    nodeName: str | None = opt("Node the pod is bound to; set by the scheduler.")
    hostNetwork: bool | None = opt("Use the node's network namespace.")
    hostPID: bool | None = opt("Use the node's PID namespace.")
    hostIPC: bool | None = opt("Use the node's IPC namespace.")
    shareProcessNamespace: bool | None = opt("One PID namespace shared by all containers of the pod.")
    securityContext: PodSecurityContext | None = opt("Pod-level security attributes.")
    imagePullSecrets: list[LocalObjectReference] | None = opt("Secrets used to pull the images.")
    hostname: str | None = opt("Pod hostname; the pod name when omitted.")
    subdomain: str | None = opt("Subdomain: <hostname>.<subdomain>.<namespace>.svc.<domain>.")
    affinity: Affinity | None = opt("Scheduling constraints on nodes and other pods.")
    schedulerName: str | None = opt("Scheduler that places the pod; default-scheduler when omitted.")
    tolerations: list[Toleration] | None = opt("Taints the pod tolerates.")
    hostAliases: list[HostAlias] | None = opt("Extra /etc/hosts entries.")
    priorityClassName: str | None = opt("PriorityClass giving the pod's priority.")
    priority: int | None = opt("Priority value, resolved from priorityClassName by admission.")
    dnsConfig: PodDNSConfig | None = opt("Extra DNS settings.")
    readinessGates: list[PodReadinessGate] | None = opt("Extra conditions that must be True for the pod to be ready.")
    runtimeClassName: str | None = opt("RuntimeClass used to run the pod.")
    enableServiceLinks: bool | None = opt("Inject service environment variables; default true.")
    preemptionPolicy: str | None = opt("PreemptLowerPriority or Never.")
    overhead: ResourceList | None = opt("Resources the pod's sandbox uses on top of its containers.")
    topologySpreadConstraints: list[TopologySpreadConstraint] | None = opt("How to spread matching pods across topology domains.")
    setHostnameAsFQDN: bool | None = opt("Set the pod's hostname to its fully qualified domain name.")
    os: PodOS | None = opt("Operating system of the containers: linux or windows.")
    hostUsers: bool | None = opt("Use the host's user namespace; false isolates the pod.")
    schedulingGates: list[PodSchedulingGate] | None = opt("Gates that hold the pod back from scheduling while present.")
    resourceClaims: list[PodResourceClaim] | None = opt("Dynamic resource claims the pod needs.")
    resources: ResourceRequirements | None = opt("Pod-level resource requests and limits (alpha).")


# --- PodStatus ------------------------------------------------------------


class PodCondition(KubeModel):
    type: str = req("PodScheduled, Initialized, ContainersReady, Ready, ...")
    status: str = req("True, False or Unknown.")
    lastProbeTime: str | None = None
    lastTransitionTime: str | None = None
    reason: str | None = None
    message: str | None = None


class ContainerStateWaiting(KubeModel):
    reason: str | None = None
    message: str | None = None


class ContainerStateRunning(KubeModel):
    startedAt: str | None = None


class ContainerStateTerminated(KubeModel):
    exitCode: int
    signal: int | None = None
    reason: str | None = None
    message: str | None = None
    startedAt: str | None = None
    finishedAt: str | None = None
    containerID: str | None = None


class ContainerState(KubeModel):
    """Exactly one of waiting, running or terminated; waiting when none."""

    waiting: ContainerStateWaiting | None = None
    running: ContainerStateRunning | None = None
    terminated: ContainerStateTerminated | None = None


class VolumeMountStatus(KubeModel):
    name: str
    mountPath: str
    readOnly: bool | None = None
    recursiveReadOnly: str | None = None


class LinuxContainerUser(KubeModel):
    uid: int
    gid: int
    supplementalGroups: list[int] | None = None


class ContainerUser(KubeModel):
    linux: LinuxContainerUser | None = None


class ResourceHealth(KubeModel):
    resourceID: str
    health: str | None = None


class ResourceStatus(KubeModel):
    name: str
    resources: list[ResourceHealth] | None = None


class ContainerStatus(KubeModel):
    """What the kubelet observes about one container."""

    name: str
    state: ContainerState | None = None
    lastState: ContainerState | None = None
    ready: bool
    restartCount: int
    image: str
    imageID: str
    containerID: str | None = None
    started: bool | None = None
    allocatedResources: ResourceList | None = None
    resources: ResourceRequirements | None = None
    volumeMounts: list[VolumeMountStatus] | None = None
    user: ContainerUser | None = None
    allocatedResourcesStatus: list[ResourceStatus] | None = None


class HostIP(KubeModel):
    ip: str


class PodIP(KubeModel):
    ip: str


class PodResourceClaimStatus(KubeModel):
    name: str
    resourceClaimName: str | None = None


class PodStatus(KubeModel):
    """The most recently observed state of a pod."""

    phase: str | None = opt("Pending, Running, Succeeded, Failed or Unknown.")
    conditions: list[PodCondition] | None = opt("Current service state of the pod.")
    message: str | None = opt("Human-readable reason for the pod's condition.")
    reason: str | None = opt("Brief CamelCase reason, e.g. Evicted.")
    nominatedNodeName: str | None = opt("Node where preemption made room for this pod.")
    hostIP: str | None = opt("IP of the node the pod runs on.")
    hostIPs: list[HostIP] | None = opt("IPs of the node, one per family.")
    podIP: str | None = opt("IP of the pod.")
    podIPs: list[PodIP] | None = opt("IPs of the pod, one per family; the first equals podIP.")
    startTime: str | None = opt("When the kubelet acknowledged the pod.")
    initContainerStatuses: list[ContainerStatus] | None = opt("Status of init containers.")
    containerStatuses: list[ContainerStatus] | None = opt("Status of app containers.")
    qosClass: str | None = opt("Guaranteed, Burstable or BestEffort.")
    ephemeralContainerStatuses: list[ContainerStatus] | None = opt("Status of ephemeral containers.")
    resize: str | None = opt("State of an in-place resize: Proposed, InProgress, Deferred, Infeasible.")
    resourceClaimStatuses: list[PodResourceClaimStatus] | None = opt("Names of generated ResourceClaims.")


# --- top-level kinds --------------------------------------------------------


class Pod(KubeObject):
    """A group of containers scheduled together onto one node."""

    spec: PodSpec | None = opt("Desired behaviour of the pod.")
    status: PodStatus | None = opt("Observed state of the pod; written by the kubelet.")


class PodList(KubeModel):
    apiVersion: str | None = None
    kind: str | None = None
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[Pod]


class PodTemplateSpec(KubeModel):
    """The pod that workload controllers create: metadata and spec."""

    metadata: ObjectMeta | None = opt("Labels and annotations of the pods created from this template.")
    spec: PodSpec | None = opt("Spec of the pods created from this template.")


class PodTemplate(KubeObject):
    """A stored pod template."""

    template: PodTemplateSpec | None = opt("The template.")


class PodTemplateList(KubeModel):
    apiVersion: str | None = None
    kind: str | None = None
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[PodTemplate]


__all__ = sorted(
    name for name, value in list(globals().items())
    if isinstance(value, type) and issubclass(value, KubeModel) and value.__module__ == __name__
)
