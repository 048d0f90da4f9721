"""pods/exec, pods/log and pods/portforward on the API server: find the pod's kubelet and
stream through it.

``kubectl exec`` (1.30+) asks with ``GET .../pods/NAME/exec?command=..`` and a
WebSocket upgrade offering ``v5.channel.k8s.io`` (then v4, ...); the protocol
itself is in kcore/kubelet/exec.py. Where the pod runs decides the path:

- on the node of this process's own kubelet (``kcore up``): in-process, the
  kubelet starts the command and this server bridges it to the client;
- on another node: the request is forwarded to that node's kubelet server
  (kcore/kubelet/server.py) at ``https://<InternalIP>:<daemonEndpoints port>``,
  authenticated with the node's token, and the two WebSockets are relayed
  message by message. Logs take the same two paths.

Kubernetes' SPDY transport is not served for exec: kubectl only falls back to it
when the WebSocket upgrade is refused, and then gets a clear error.

``kubectl port-forward`` (kcore/kubelet/portforward_http.py) takes the same two
paths. On another node the WebSocket forms (SPDY tunnelled in WebSocket, and the
v4 channels) are relayed message by message; a client on plain SPDY is upgraded
here and its bytes are relayed into a SPDY-in-WebSocket tunnel to the kubelet,
so kubelets only serve WebSocket.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import orjson
from aiohttp import WSMsgType, web

from kcore.api.registry import KindInfo
from kcore.apiserver import errors
from kcore.kubelet.exec import SUBPROTOCOLS, ExecError, ExecOptions, ExecProcess, is_websocket, serve_exec
from kcore.kubelet.portforward import PortForwardTarget
from kcore.kubelet.tasks import until_first_done
from kcore.kubelet.portforward_http import (
    CHANNEL_PROTOCOLS,
    TUNNEL_PROTOCOL,
    BadPortForwardRequest,
    WebSocketBytes,
    accept_raw_spdy,
    negotiate,
    offered_protocols,
    serve_portforward,
    splice,
)
from kcore.log import get_logger

log = get_logger("apiserver.streaming")

Obj = dict[str, Any]
NodeLookup = Callable[[str], Awaitable[Obj | None]]
_FINISHED_PHASES = ("Succeeded", "Failed")


def kubelet_endpoint(node: Obj) -> tuple[str, int] | None:
    """The node's InternalIP and kubelet port, from its status (None if it serves none)."""
    status = node.get("status") or {}
    port = int((((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")) or 0)
    addresses = status.get("addresses") or []
    address = next((a.get("address") for a in addresses if a.get("type") == "InternalIP"), None) \
        or next((a.get("address") for a in addresses if a.get("address")), None)
    if not port or not address:
        return None
    return address, port


def _url(address: str, port: int, path: str) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"https://{host}:{port}{path}"


class PodStreams:
    """Routes a pod's logs, exec and port-forward to its node's kubelet."""

    def __init__(self, *, node_lookup: NodeLookup, node_token: Callable[[str], str] | None = None,
                 local_node: str | None = None, local_kubelet: Any = None) -> None:
        self.node_lookup = node_lookup
        self.node_token = node_token
        self.local_node = local_node
        self.local_kubelet = local_kubelet
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # Kubelet certificates are self-signed and not verified, as in Kubernetes
            # without --kubelet-certificate-authority; the bearer token is the check.
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
                connector=aiohttp.TCPConnector(ssl=False))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def is_local(self, pod: Obj) -> bool:
        return self.local_kubelet is not None and (pod.get("spec") or {}).get("nodeName") == self.local_node

    async def _remote(self, pod: Obj, kind: str, container: str) -> tuple[str, dict[str, str]]:
        """The kubelet URL for ``kind`` (containerLogs, exec, portForward) of the pod, and auth headers."""
        node_name = (pod.get("spec") or {}).get("nodeName") or ""
        node = await self.node_lookup(node_name)
        if node is None:
            raise errors.bad_request(f'node "{node_name}" of pod "{pod["metadata"]["name"]}" does not exist')
        endpoint = kubelet_endpoint(node)
        if endpoint is None:
            raise errors.bad_request(f"the kubelet of node {node_name} serves no endpoint "
                                     f"(status.daemonEndpoints.kubeletEndpoint.Port is 0)")
        if self.node_token is None:
            raise errors.bad_request(f"cannot reach the kubelet of node {node_name}: this API server "
                                     f"has no join token (insecure HTTP mode)")
        meta = pod["metadata"]
        path = f"/{kind}/{meta.get('namespace') or 'default'}/{meta['name']}"
        if container:
            path += f"/{container}"
        return _url(*endpoint, path), {"Authorization": f"Bearer {self.node_token(node_name)}"}

    # -- logs ---------------------------------------------------------------------------------

    async def logs(self, pod: Obj, container: str, options: dict[str, Any]) -> AsyncIterator[bytes]:
        """The pods/log source: the local kubelet, or the node's kubelet server."""
        if self.is_local(pod):
            async for chunk in self.local_kubelet.logs(pod, container, options):
                yield chunk
            return
        url, headers = await self._remote(pod, "containerLogs", container)
        params = {k: ("true" if v is True else "false" if v is False else str(v))
                  for k, v in options.items() if v is not None}
        node = pod["spec"]["nodeName"]
        try:
            async with self.session().get(url, params=params, headers=headers) as resp:
                if resp.status != 200:
                    raise errors.bad_request(_kubelet_error(node, resp.status, await resp.read()))
                async for chunk in resp.content.iter_any():
                    yield chunk
        except aiohttp.ClientError as exc:
            raise errors.bad_request(f"cannot reach the kubelet of node {node}: {exc}") from None

    async def _connect_kubelet(self, url: str, node: str, params: Any, headers: dict[str, str],
                               protocols: list[str]) -> aiohttp.ClientWebSocketResponse:
        """A WebSocket to a node's kubelet; its refusal becomes a 400 naming the node."""
        try:
            return await self.session().ws_connect(url, params=params, headers=headers, protocols=protocols,
                                                   max_msg_size=0, autoping=True)
        except aiohttp.WSServerHandshakeError as exc:
            message = (exc.headers or {}).get("X-Kcore-Error") or exc.message
            raise errors.bad_request(f"kubelet of node {node}: {message}") from None
        except aiohttp.ClientError as exc:
            raise errors.bad_request(f"cannot reach the kubelet of node {node}: {exc}") from None

    # -- exec ---------------------------------------------------------------------------------

    async def exec(self, request: web.Request, pod: Obj, container: str,
                   options: ExecOptions) -> web.StreamResponse:
        if self.is_local(pod):
            kubelet = self.local_kubelet
            try:
                target = await kubelet.exec_target(pod, container)
            except ExecError as exc:
                raise errors.bad_request(str(exc)) from None

            async def start() -> ExecProcess:
                proc = ExecProcess(options.command, target, tty=options.tty, stdin=options.stdin)
                await proc.start()
                return proc

            return await serve_exec(request, start, options)
        return await self._relay_exec(request, pod, container, options)

    async def _relay_exec(self, request: web.Request, pod: Obj, container: str,
                          options: ExecOptions) -> web.StreamResponse:
        url, headers = await self._remote(pod, "exec", container)
        node = pod["spec"]["nodeName"]
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        protocols = [p for p in offered if p in SUBPROTOCOLS] or list(SUBPROTOCOLS)
        upstream = await self._connect_kubelet(url, node, options.query(), headers, protocols)
        return await _serve_relay(request, upstream)


    # -- port-forward -------------------------------------------------------------------------

    async def portforward(self, request: web.Request, pod: Obj) -> web.StreamResponse:
        try:
            mode = negotiate(request)
        except BadPortForwardRequest as exc:
            raise errors.bad_request(str(exc)) from None
        if self.is_local(pod):
            target = PortForwardTarget.for_pod(pod, self.local_kubelet)
            return await serve_portforward(request, target.connect)
        return await self._relay_portforward(request, pod, mode)

    async def _relay_portforward(self, request: web.Request, pod: Obj, mode: str) -> web.StreamResponse:
        url, headers = await self._remote(pod, "portForward", "")
        node = pod["spec"]["nodeName"]
        if mode in ("spdy", "tunnel"):  # a plain-SPDY client is tunnelled to the kubelet
            protocols = [TUNNEL_PROTOCOL]
        else:
            protocols = [p for p in offered_protocols(request) if p in CHANNEL_PROTOCOLS] or list(CHANNEL_PROTOCOLS)
        upstream = await self._connect_kubelet(url, node, list(request.query.items()), headers, protocols)
        if mode == "spdy":
            try:
                raw = await accept_raw_spdy(request)
                await splice(raw, WebSocketBytes(upstream))
                await raw.close()
            finally:
                with contextlib.suppress(Exception):
                    await upstream.close()
            return raw.response
        return await _serve_relay(request, upstream)


def _kubelet_error(node: str, status: int, body: bytes) -> str:
    try:
        message = orjson.loads(body).get("message")
    except (orjson.JSONDecodeError, AttributeError):
        message = body.decode("utf-8", "replace").strip()
    return message or f"the kubelet of node {node} answered {status}"


async def _serve_relay(request: web.Request, upstream: aiohttp.ClientWebSocketResponse) -> web.WebSocketResponse:
    """Answer the client's WebSocket with the kubelet's subprotocol and relay both ways."""
    downstream = web.WebSocketResponse(protocols=(upstream.protocol,) if upstream.protocol else (),
                                       max_msg_size=0, autoping=True)
    try:
        await downstream.prepare(request)
        await _relay(downstream, upstream)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            await upstream.close()
        with contextlib.suppress(Exception):
            await downstream.close()
    return downstream


async def _relay(downstream: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse) -> None:
    """Copy messages both ways until either side closes."""

    async def copy(source: Any, sink: Any) -> None:
        async for msg in source:
            if msg.type == WSMsgType.BINARY:
                await sink.send_bytes(msg.data)
            elif msg.type == WSMsgType.TEXT:
                await sink.send_str(msg.data)
            else:
                break

    await until_first_done(copy(upstream, downstream), copy(downstream, upstream))


async def exec_subresource(handlers: Any, request: web.Request, kind: KindInfo, namespace: str | None,
                           name: str) -> web.StreamResponse:
    """``pods/exec``: check the request and the pod, then stream through its kubelet."""
    options = ExecOptions.from_query(request.query)
    pod = await handlers.resources.get(kind, namespace, name)
    spec = pod.get("spec") or {}
    containers = [c["name"] for c in spec.get("containers") or []]
    container = options.container
    if not container:
        if len(containers) != 1:
            raise errors.bad_request(f"a container name must be specified for pod {name}, choose one of: "
                                     f"[{' '.join(containers)}]")
        container = containers[0]
    all_containers = containers + [c["name"] for c in spec.get("initContainers") or []]
    if container not in all_containers:
        raise errors.bad_request(f"container {container} is not valid for pod {name}")
    if not options.command:
        raise errors.bad_request("you must specify at least one command for the container")
    if not (options.stdin or options.stdout or options.stderr):
        raise errors.bad_request("you must specify at least one of stdin, stdout, stderr")
    phase = (pod.get("status") or {}).get("phase")
    if phase in _FINISHED_PHASES:
        raise errors.bad_request(f"cannot exec into a container in a completed pod; current phase is {phase}")
    if not spec.get("nodeName"):
        raise errors.bad_request(f'pod "{name}" is not scheduled to a node yet')
    if not is_websocket(request):
        raise errors.bad_request("kcore serves exec over WebSocket only (v5.channel.k8s.io, kubectl 1.30+); "
                                 "the SPDY upgrade is not supported")
    streams: PodStreams | None = getattr(handlers, "streams", None)
    if streams is None:
        raise errors.bad_request(f"no kubelet serves exec for node {spec['nodeName']}")
    options = ExecOptions(options.command, container, options.stdin, options.stdout, options.stderr,
                          options.tty)
    return await streams.exec(request, pod, container, options)


async def portforward_subresource(handlers: Any, request: web.Request, kind: KindInfo, namespace: str | None,
                                  name: str) -> web.StreamResponse:
    """``pods/portforward``: the pod must be running on a node; then forward through its kubelet."""
    pod = await handlers.resources.get(kind, namespace, name)
    spec = pod.get("spec") or {}
    if not spec.get("nodeName"):
        raise errors.bad_request(f'pod "{name}" is not scheduled to a node yet')
    phase = (pod.get("status") or {}).get("phase")
    if phase != "Running":
        raise errors.bad_request(f"unable to forward port because pod is not running. Current status={phase}")
    streams: PodStreams | None = getattr(handlers, "streams", None)
    if streams is None:
        raise errors.bad_request(f"no kubelet serves port-forward for node {spec['nodeName']}")
    return await streams.portforward(request, pod)
