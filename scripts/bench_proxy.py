"""A small HTTP proxy in front of moto for the benchmark: it adds latency to
every AWS call and answers some calls with AWS's own throttling errors, either
at random (a fixed fraction, seeded) or from a token bucket per service, the
way AWS meters API calls. Standard library only; loopback only.

Used by scripts/bench.py; not a test double: the calls that get through reach
moto unchanged.
"""

import http.client
import http.server
import random
import re
import threading
import time

SCOPE = re.compile(r"Credential=[^/]+/\d+/[^/]+/([^/]+)/aws4_request")


def service_of(headers):
    m = SCOPE.search(headers.get("Authorization", ""))
    return m.group(1) if m else "unknown"


def throttle_answer(headers, service):
    """AWS's throttling error in the protocol the caller speaks."""
    if headers.get("X-Amz-Target"):
        body = b'{"__type":"ThrottlingException","message":"Rate exceeded"}'
        return 400, "application/x-amz-json-1.1", body
    if service == "ec2":
        body = (
            b'<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>'
            b"<Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message>"
            b"</Error></Errors><RequestID>bench</RequestID></Response>"
        )
        return 503, "text/xml", body
    body = (
        b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
        b"<Message>Rate exceeded</Message></Error><RequestId>bench</RequestId></ErrorResponse>"
    )
    return 400, "text/xml", body


class Bucket:
    """A token bucket: `rate` tokens a second up to `burst`."""

    def __init__(self, rate, burst):
        self.rate, self.burst = rate, burst
        self.tokens, self.at = float(burst), time.monotonic()

    def take(self):
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class Proxy:
    """Starts on a free loopback port; `url` is what to hand reconcile."""

    def __init__(self, upstream_port, latency_ms=0, throttle_fraction=0.0, bucket=None, seed=7):
        self.upstream_port = upstream_port
        self.latency = latency_ms / 1000.0
        self.fraction = throttle_fraction
        self.bucket_spec = bucket
        self.buckets = {}
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.calls = 0
        self.throttled = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if proxy.latency:
                    time.sleep(proxy.latency)
                service = service_of(self.headers)
                if proxy.refuse(service):
                    status, ctype, payload = throttle_answer(self.headers, service)
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                conn.request(self.command, self.path, body=body, headers=headers)
                r = conn.getresponse()
                payload = r.read()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                conn.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = handle_any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def refuse(self, service):
        with self.lock:
            self.calls += 1
            refused = False
            if self.fraction and self.random.random() < self.fraction:
                refused = True
            elif self.bucket_spec:
                b = self.buckets.setdefault(service, Bucket(*self.bucket_spec))
                refused = not b.take()
            if refused:
                self.throttled += 1
            return refused

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
