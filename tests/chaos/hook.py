#!/usr/bin/env python3
"""A webhook receiver for the chaos suite: hook.py PORT answers 200 to every
POST on 127.0.0.1:PORT and prints one line per delivery (its path and the
X-WF-Delivery / Idempotency-Key header when present)."""
import http.server
import sys
import threading

lock = threading.Lock()


class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        key = self.headers.get("X-WF-Delivery") or self.headers.get("Idempotency-Key") or "-"
        with lock:  # one write per line: threads must not interleave
            sys.stdout.write(f"delivery {self.path} {key}\n")
            sys.stdout.flush()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


class S(http.server.ThreadingHTTPServer):
    request_queue_size = 1024  # the notifier sends a whole batch at once
    daemon_threads = True


S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
