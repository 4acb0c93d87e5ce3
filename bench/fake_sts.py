#!/usr/bin/env python3
"""A tiny fake AWS STS for benchmarking imdsd on loopback.

Answers every POST with an AssumeRole success document whose credentials
expire one hour from now. The AccessKeyId is derived from the request's
RoleArn (see access_key_id), so a client can tell when a changed role's
new credentials are served. One thread per connection, and a listen
backlog large enough for a daemon that starts 1000 roles at once.
Standard library only.

GET /count answers the number of POSTs answered so far (the benchmark
checks how many STS calls a reload makes).

Usage: fake_sts.py PORTFILE
Binds 127.0.0.1 on a free port (port 0) and writes the chosen port to
PORTFILE once it is listening, so the caller never races for a port.
"""

import datetime
import hashlib
import http.server
import os
import sys
import threading
import urllib.parse

# Real STS session tokens are several hundred characters of base64; use a
# token of similar size so the credentials body has a realistic length.
SESSION_TOKEN = ("FwoGZXIvYXdzEBenchToken" * 40)[:700]
SECRET_KEY = "benchsecretbenchsecretbenchsecretbenchse"  # 40 chars, like real keys


def access_key_id(role_arn: str) -> str:
    """9 characters like the former fixed "ASIABENCH", so the credentials
    body keeps its size; differs between role ARNs."""
    return "ASIA" + hashlib.sha256(role_arn.encode()).hexdigest()[:5].upper()


def body(role_arn: str) -> bytes:
    expiration = (
        datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    ).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        "<AssumeRoleResult>"
        "<AssumedRoleUser>"
        "<AssumedRoleId>AROA:s</AssumedRoleId>"
        "<Arn>arn:aws:sts::123456789012:assumed-role/dev/s</Arn>"
        "</AssumedRoleUser>"
        "<Credentials>"
        f"<AccessKeyId>{access_key_id(role_arn)}</AccessKeyId>"
        f"<SecretAccessKey>{SECRET_KEY}</SecretAccessKey>"
        f"<SessionToken>{SESSION_TOKEN}</SessionToken>"
        f"<Expiration>{expiration}</Expiration>"
        "</Credentials>"
        "</AssumeRoleResult>"
        "<ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ResponseMetadata>"
        "</AssumeRoleResponse>"
    ).encode()


POSTS = 0
POSTS_LOCK = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path != "/count":
            self.send_error(404)
            return
        with POSTS_LOCK:
            payload = f"{POSTS}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        global POSTS
        length = int(self.headers.get("Content-Length") or 0)
        form = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        role_arn = urllib.parse.parse_qs(form).get("RoleArn", [""])[0]
        payload = body(role_arn)
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000")
        self.end_headers()
        self.wfile.write(payload)
        with POSTS_LOCK:
            POSTS += 1

    def log_message(self, fmt: str, *args: object) -> None:
        # One line per request would cost more than the answer itself when
        # 1000 roles start at once; errors still go through log_error.
        pass

    def log_error(self, fmt: str, *args: object) -> None:
        sys.stderr.write("fake_sts: " + (fmt % args) + "\n")


class Server(http.server.ThreadingHTTPServer):
    # socketserver's default backlog is 5: 1000 roles connecting at once
    # would overflow it, and each dropped SYN costs the client a 1 s retry.
    request_queue_size = 4096
    daemon_threads = True


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: fake_sts.py PORTFILE")
    server = Server(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    tmp = sys.argv[1] + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, sys.argv[1])  # atomic: the reader never sees a partial file
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
