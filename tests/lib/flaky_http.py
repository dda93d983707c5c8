#!/usr/bin/env python3
"""A local HTTP server for integration tests that can be told, at runtime,
to fail, hang or recover, and counts the calls it receives.

    flaky_http.py [--port N] [--port-file FILE] [--mode ok|fail|hang]

Listens on 127.0.0.1 only (port 0 = any free port; the chosen port is
written to --port-file and printed on stdout as "port N").

Control (not counted):
    POST /control {"mode": "ok" | "fail" | "hang", "status": 503,
                   "reset": true}
        mode    ok   → 200 {"ok": true}
                fail → `status` (default 500) {"error": "told to fail"}
                hang → holds the request until the mode changes (or 120 s)
        reset   clears the counters
    GET /stats → {"mode": "...", "total": N, "calls": {"/path": N, ...},
                  "by_mode": {"ok": N, "fail": N, "hang": N},
                  "last_ms": {"/path": epoch_ms_of_last_call}}

Every other request (any method, any path) is counted per path (without
the query string) and answered according to the mode.
"""
import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Condition()
STATE = {"mode": "ok", "status": 500, "total": 0, "calls": {}, "by_mode": {}, "last_ms": {}}


def snapshot():
    with LOCK:
        return {
            "mode": STATE["mode"],
            "status": STATE["status"],
            "total": STATE["total"],
            "calls": dict(STATE["calls"]),
            "by_mode": dict(STATE["by_mode"]),
            "last_ms": dict(STATE["last_ms"]),
        }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet; the counters tell the story
        pass

    def reply(self, code, obj):
        body = (json.dumps(obj) + "\n").encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def handle_any(self):
        path = self.path.split("?", 1)[0]
        data = self.body()
        if path == "/control" and self.command == "POST":
            try:
                req = json.loads(data or b"{}")
            except ValueError:
                return self.reply(400, {"error": "invalid JSON"})
            with LOCK:
                if "mode" in req:
                    if req["mode"] not in ("ok", "fail", "hang"):
                        return self.reply(400, {"error": "mode: ok, fail or hang"})
                    STATE["mode"] = req["mode"]
                if "status" in req:
                    STATE["status"] = int(req["status"])
                if req.get("reset"):
                    STATE["total"] = 0
                    STATE["calls"] = {}
                    STATE["by_mode"] = {}
                    STATE["last_ms"] = {}
                LOCK.notify_all()
            return self.reply(200, snapshot())
        if path == "/stats" and self.command == "GET":
            return self.reply(200, snapshot())
        with LOCK:
            mode = STATE["mode"]
            STATE["total"] += 1
            STATE["calls"][path] = STATE["calls"].get(path, 0) + 1
            STATE["by_mode"][mode] = STATE["by_mode"].get(mode, 0) + 1
            STATE["last_ms"][path] = int(time.time() * 1000)
            status = STATE["status"]
            if mode == "hang":
                end = time.monotonic() + 120
                while STATE["mode"] == "hang" and time.monotonic() < end:
                    LOCK.wait(0.2)
                mode = STATE["mode"]
        if mode == "fail":
            return self.reply(status, {"error": "told to fail", "path": path})
        return self.reply(200, {"ok": True, "path": path})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any


def main():
    ap = argparse.ArgumentParser(description="flaky HTTP server for tests")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--mode", default="ok", choices=("ok", "fail", "hang"))
    a = ap.parse_args()
    STATE["mode"] = a.mode
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    port = srv.server_address[1]
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write(f"{port}\n")
        import os

        os.rename(a.port_file + ".tmp", a.port_file)
    print(f"port {port}", flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
