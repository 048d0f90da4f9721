"""A Service without a selector, as in the Kubernetes docs: hand-written Endpoints
name the backend, the mirroring controller makes the EndpointSlice, and the proxy
forwards the ClusterIP to it."""

from __future__ import annotations

import http.server
import json
import threading
import urllib.request
from pathlib import Path

from support.cluster import running_cluster
from support.kubectl import Kubectl
from support.netlab import wait_until


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"outside the cluster"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_hand_written_endpoints_receive_the_service_traffic(tmp_path: Path) -> None:
    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    try:
        with running_cluster(tmp_path) as cluster:
            kubectl = Kubectl(cluster.kubeconfig, tmp_path / "cache")
            port = backend.server_address[1]
            kubectl.run("apply", "-f", "-", input=f"""
apiVersion: v1
kind: Service
metadata:
  name: my-service
spec:
  ports:
    - name: http
      protocol: TCP
      port: 80
      targetPort: 9376
---
apiVersion: v1
kind: Endpoints
metadata:
  name: my-service
subsets:
  - addresses:
      - ip: 127.0.0.1
    ports:
      - name: http
        port: {port}
""")
            slices = wait_until(lambda: json.loads(kubectl(
                "get", "endpointslices", "-l", "kubernetes.io/service-name=my-service", "-o", "json"))["items"],
                timeout=15, what="a mirrored EndpointSlice")
            assert slices[0]["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == \
                "endpointslicemirroring-controller.k8s.io"
            assert slices[0]["endpoints"][0]["addresses"] == ["127.0.0.1"]
            cluster_ip = json.loads(kubectl("get", "svc", "my-service", "-o", "json"))["spec"]["clusterIP"]

            def fetch() -> str | None:
                try:
                    with urllib.request.urlopen(f"http://{cluster_ip}/", timeout=2) as response:
                        return response.read().decode()
                except OSError:
                    return None
            assert wait_until(fetch, timeout=20, what="the Service through the proxy") == "outside the cluster"
    finally:
        backend.shutdown()
        backend.server_close()
