"""Programs that test pods run: a tiny HTTP server that answers with the pod's name,
and a one-line fetcher to run inside a pod with ``kubectl exec``."""

from __future__ import annotations

# python3 -c HELLO_SERVER [PORT] [ADDRESS]: answers every GET with $HOSTNAME (the pod's
# name, set by the kubelet); port 8080 on every address unless told otherwise.
HELLO_SERVER = """
import http.server, os, sys
class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = os.environ["HOSTNAME"].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
address = sys.argv[2] if len(sys.argv) > 2 else ""
http.server.ThreadingHTTPServer((address, port), Hello).serve_forever()
"""

# python3 -c FETCH URL: prints the body of a GET.
FETCH = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())"
