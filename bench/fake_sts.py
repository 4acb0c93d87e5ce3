#!/usr/bin/env python3
"""A tiny fake AWS STS for benchmarking imdsd on loopback.

Answers every POST with an AssumeRole success document whose credentials
expire one hour from now. Standard library only.

Usage: fake_sts.py PORTFILE
Binds 127.0.0.1 on a free port (port 0) and writes the chosen port to
PORTFILE once it is listening, so the caller never races for a port.
"""

import datetime
import http.server
import os
import sys

# Real STS session tokens are several hundred characters of base64; use a
# token of similar size so the credentials body has a realistic length.
SESSION_TOKEN = ("FwoGZXIvYXdzEBenchToken" * 40)[:700]
SECRET_KEY = "benchsecretbenchsecretbenchsecretbenchse"  # 40 chars, like real keys


def body() -> bytes:
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
        "<AccessKeyId>ASIABENCH</AccessKeyId>"
        f"<SecretAccessKey>{SECRET_KEY}</SecretAccessKey>"
        f"<SessionToken>{SESSION_TOKEN}</SessionToken>"
        f"<Expiration>{expiration}</Expiration>"
        "</Credentials>"
        "</AssumeRoleResult>"
        "<ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ResponseMetadata>"
        "</AssumeRoleResponse>"
    ).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        payload = body()
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, fmt: str, *args: object) -> None:
        sys.stderr.write("fake_sts: " + (fmt % args) + "\n")


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: fake_sts.py PORTFILE")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
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
