#!/usr/bin/env python3
"""A tiny fake AWS STS for benchmarking imdsd on loopback.

Answers every POST with an AssumeRole success document whose credentials
expire one hour from now. The AccessKeyId is derived from the request's
RoleArn (see access_key_id), so a client can tell when a changed role's
new credentials are served. One asyncio event loop serves every connection
(the former ThreadingHTTPServer, a thread per connection and a backlog of 5,
took over a second to answer 1000 roles starting at once); the listen
backlog is large enough for that burst. Standard library only.

GET /count answers the number of POSTs answered so far (the benchmark
checks how many STS calls a reload makes).

Usage: fake_sts.py PORTFILE
Binds 127.0.0.1 on a free port (port 0) and writes the chosen port to
PORTFILE once it is listening, so the caller never races for a port.
"""

import asyncio
import datetime
import hashlib
import os
import sys
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


def response(status: str, ctype: str, payload: bytes, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(payload)}\r\n{extra}\r\n"
    ).encode() + payload


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One connection: HTTP/1.1 requests with a Content-Length body (what
    imdsd's client sends), kept alive until the client closes."""
    global POSTS
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            form = (await reader.readexactly(length)).decode() if length else ""
            if method == "POST":
                role_arn = urllib.parse.parse_qs(form).get("RoleArn", [""])[0]
                POSTS += 1  # one event loop thread: no lock needed
                writer.write(response(
                    "200 OK", "text/xml", body(role_arn),
                    "x-amzn-RequestId: 00000000-0000-0000-0000-000000000000\r\n",
                ))
            elif method == "GET" and target == "/count":
                writer.write(response("200 OK", "text/plain", f"{POSTS}\n".encode()))
            else:
                writer.write(response("404 Not Found", "text/plain", b"not found\n"))
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                break
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        pass  # the client went away, or sent something this stub does not speak
    except ValueError as e:
        sys.stderr.write(f"fake_sts: bad request: {e}\n")
    finally:
        writer.close()


async def serve(portfile: str) -> None:
    # A backlog large enough for 1000 roles connecting at once (a dropped
    # SYN would cost the client a 1 s retransmit).
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, portfile)  # atomic: the reader never sees a partial file
    async with server:
        await server.serve_forever()


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: fake_sts.py PORTFILE")
    try:
        asyncio.run(serve(sys.argv[1]))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
