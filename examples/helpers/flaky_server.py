#!/usr/bin/env python3
"""A tiny local HTTP service for the examples: fails on purpose.

  GET/POST /flaky     fails with 503 two times out of three, then succeeds
  GET/POST /down      always 503 (opens the circuit breaker)
  GET/POST /ok        always 200
  GET      /stats     how many calls each path received (JSON)

Run: python3 examples/helpers/flaky_server.py [PORT]   (default 8089, loopback only)
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
calls = {}


class Handler(BaseHTTPRequestHandler):
    def _serve(self):
        path = self.path.split("?")[0]
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 1 << 20))
        with lock:
            calls[path] = calls.get(path, 0) + 1
            n = calls[path]
        if path == "/stats":
            status, body = 200, json.dumps(calls)
        elif path == "/flaky":
            status = 200 if n % 3 == 0 else 503
            body = json.dumps({"call": n, "ok": status == 200})
        elif path == "/down":
            status, body = 503, '{"ok": false}'
        elif path == "/ok":
            status, body = 200, '{"ok": true}'
        else:
            status, body = 404, '{"error": "unknown path"}'
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = _serve
    do_POST = _serve

    def log_message(self, fmt, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8089
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
