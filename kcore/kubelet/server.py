"""The kubelet's own HTTPS server: how the API server reaches pods on this node.

``kubectl logs`` and ``kubectl exec`` go to the API server, which forwards them
to the kubelet of the pod's node, at ``https://<node InternalIP>:<port>`` (the
port is in the Node's ``status.daemonEndpoints.kubeletEndpoint.Port``):

- ``GET /containerLogs/{namespace}/{pod}/{container}?follow=&tailLines=&...`` —
  the log as text, chunked when following;
- ``GET /exec/{namespace}/{pod}/{container}?command=..&stdin=..&tty=..`` — a
  WebSocket speaking the remote-command protocol (kcore/kubelet/exec.py);
- ``GET /portForward/{namespace}/{pod}`` — a WebSocket speaking port-forward
  (SPDY tunnelled in WebSocket, or ``?ports=`` channels; plain SPDY is accepted
  too): kcore/kubelet/portforward_http.py;
- ``GET /healthz``.

Only the API server may call it: every request must carry ``Authorization:
Bearer <this node's token>`` — the token the node itself uses, which the API
server derives from the join token (``kcore.apiserver.authn.node_token``). The
certificate is self-signed, made on first start under ``<data-dir>/pki``; the
API server does not verify it (as Kubernetes does without
``--kubelet-certificate-authority``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hmac
import ipaddress
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kcore.kubelet.exec import ExecError, ExecOptions, ExecProcess, is_websocket, serve_exec
from kcore.kubelet.portforward import PortForwardTarget
from kcore.kubelet.portforward_http import BadPortForwardRequest, negotiate, serve_portforward
from kcore.log import get_logger

log = get_logger("kubelet.server")

CERT_DAYS = 365


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    # The message is also a header: a WebSocket client that is refused sees no body.
    return web.Response(body=orjson.dumps(body), status=code, content_type="application/json",
                        headers={"X-Kcore-Error": message.encode("ascii", "replace").decode()[:1000]})


def ensure_serving_cert(directory: Path, node_name: str, address: str) -> tuple[Path, Path]:
    """A self-signed serving certificate for the node's address (re-made when that changes)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_path, key_path = directory / "kubelet.crt", directory / "kubelet.key"
    names = sorted({node_name, address, "localhost"})
    if cert_path.exists() and key_path.exists():
        with contextlib.suppress(Exception):
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            have = {str(v) for v in sans.get_values_for_type(x509.DNSName)} | \
                {str(v) for v in sans.get_values_for_type(x509.IPAddress)}
            if set(names) <= have and cert.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=7):
                return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{node_name}@kubelet")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=CERT_DAYS))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .sign(key, hashes.SHA256()))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


async def _healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


class KubeletServer:
    """Serves one kubelet's logs, exec and port-forward to the API server."""

    def __init__(self, kubelet: Any, *, token: str, address: str, port: int, data_dir: Path,
                 node_name: str) -> None:
        self.kubelet = kubelet
        self.token = token
        self.address = address
        self.wanted_port = port
        self.data_dir = Path(data_dir)
        self.node_name = node_name
        self.port: int | None = None
        self._runner: web.AppRunner | None = None

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/healthz", _healthz)
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self._logs)
        app.router.add_get("/exec/{namespace}/{pod}/{container}", self._exec)
        app.router.add_route("GET", "/portForward/{namespace}/{pod}", self._portforward)
        app.router.add_route("POST", "/portForward/{namespace}/{pod}", self._portforward)
        return app

    def ssl_context(self) -> ssl.SSLContext:
        cert, key = ensure_serving_cert(self.data_dir / "pki", self.node_name, self.address)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        return context

    async def start(self) -> None:
        self._runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0, handler_cancellation=True)
        await self._runner.setup()
        context = self.ssl_context()
        try:
            site = await self._listen(self.wanted_port, context)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or self.wanted_port == 0:
                await self._runner.cleanup()
                raise
            log.warning("kubelet port in use; listening on a free port instead",
                        address=self.address, port=self.wanted_port)
            site = await self._listen(0, context)
        sockets = getattr(site._server, "sockets", None) or []  # noqa: SLF001
        self.port = sockets[0].getsockname()[1] if sockets else self.wanted_port
        log.info("kubelet server listening", address=self.address, port=self.port)

    async def _listen(self, port: int, context: ssl.SSLContext) -> web.TCPSite:
        assert self._runner is not None
        site = web.TCPSite(self._runner, self.address, port, ssl_context=context, reuse_address=True)
        await site.start()
        return site

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- handlers ----------------------------------------------------------------------

    @web.middleware
    async def _auth(self, request: web.Request,
                    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if request.path != "/healthz":
            header = request.headers.get("Authorization", "")
            token = header[7:].strip() if header[:7].lower() == "bearer " else ""
            if not token or not hmac.compare_digest(token.encode(), self.token.encode()):
                return _status(401, "Unauthorized", "Unauthorized")
        return await handler(request)

    def _pod(self, request: web.Request) -> tuple[dict[str, Any], str] | web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["pod"]
        pod = self.kubelet.pod_by_name(namespace, name)
        if pod is None:
            return _status(404, "NotFound", f'pod "{name}" not found on node {self.node_name}')
        return pod, request.match_info["container"]

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        found = self._pod(request)
        if isinstance(found, web.Response):
            return found
        pod, container = found
        query = request.query

        def number(key: str) -> int | None:
            value = query.get(key)
            return int(value) if value not in (None, "") and value.lstrip("-").isdigit() else None

        def flag(key: str) -> bool:
            return (query.get(key) or "").lower() in ("1", "true", "t", "yes")

        options = {"follow": flag("follow"), "previous": flag("previous"), "timestamps": flag("timestamps"),
                   "tailLines": number("tailLines"), "sinceSeconds": number("sinceSeconds"),
                   "limitBytes": number("limitBytes")}
        chunks = self.kubelet.logs(pod, container, options).__aiter__()
        try:
            first: bytes | None = await chunks.__anext__()
        except StopAsyncIteration:
            first = None
        except Exception as exc:  # noqa: BLE001 - why there is no log, for the API server to relay
            return _status(400, "BadRequest", str(exc) or type(exc).__name__)
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        try:
            if first is not None:
                await response.write(first)
                async for chunk in chunks:
                    await response.write(chunk)
            await response.write_eof()
        except ConnectionResetError:
            pass
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
        return response

    async def _exec(self, request: web.Request) -> web.StreamResponse:
        found = self._pod(request)
        if isinstance(found, web.Response):
            return found
        pod, container = found
        if not is_websocket(request):
            return _status(400, "BadRequest", "exec needs a WebSocket upgrade (v5.channel.k8s.io)")
        options = ExecOptions.from_query(request.query)
        if not options.command:
            return _status(400, "BadRequest", "you must specify at least one command for the container")
        # Fail before the upgrade when the container is not running, for a clear HTTP error;
        # a command that cannot start is reported on the error channel.
        try:
            target = await self.kubelet.exec_target(pod, container)
        except ExecError as exc:
            return _status(400, "BadRequest", str(exc))

        async def start() -> ExecProcess:
            proc = ExecProcess(options.command, target, tty=options.tty, stdin=options.stdin)
            await proc.start()
            return proc

        return await serve_exec(request, start, options)

    async def _portforward(self, request: web.Request) -> web.StreamResponse:
        namespace, name = request.match_info["namespace"], request.match_info["pod"]
        pod = self.kubelet.pod_by_name(namespace, name)
        if pod is None:
            return _status(404, "NotFound", f'pod "{name}" not found on node {self.node_name}')
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            return _status(400, "BadRequest", f"unable to forward port because pod is not running. "
                                              f"Current status={phase}")
        try:
            negotiate(request)
        except BadPortForwardRequest as exc:
            return _status(400, "BadRequest", str(exc))
        target = PortForwardTarget.for_pod(pod, self.kubelet)
        return await serve_portforward(request, target.connect)
