#!/usr/bin/env python3
"""Measures, from the outside, how long imdsd takes to serve a changed
role's new credentials after its config file is edited. For bench/run.sh.

It reads the role's token file, replaces OLD_ARN by NEW_ARN in CONFIG the
way editors save (write a temporary file, rename it over the config),
optionally sends SIGHUP to PID right after, and then polls the role's
container URL with the token it read (a replaced token stays accepted for
a minute) over one keep-alive connection, about once a millisecond, until the
AccessKeyId is the one bench/fake_sts.py derives from NEW_ARN. Then it
waits for the role's token file to hold a new token that works.

With --notify-log (bench/sd_notify.py's log) it also reports when the
daemon said RELOADING=1 and then READY=1, as seen on its notify socket.

imdsd answers 429 past a per-user request rate; such answers are retried
and counted apart (limited), not as failures (non200).

Prints one line of key=value pairs (times in ms since the rename, but
applied_ms: from RELOADING=1 to the new credentials served):
  served_ms token_ms reloading_ms ready_ms applied_ms polls non200 limited
  conn_errors
and exits 1 if the new credentials were not served within --timeout.

Usage: reload_probe.py --config FILE --old-arn ARN --new-arn ARN
           --url http://127.0.0.1:PORT/role/NAME --token-file FILE
           [--sighup PID] [--notify-log FILE] [--timeout SECONDS]
"""

import argparse
import http.client
import json
import os
import signal
import sys
import time
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ in bench/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_sts import access_key_id  # noqa: E402


class Poller:
    """GETs one URL over a keep-alive connection, reconnecting on errors."""

    def __init__(self, url: str) -> None:
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.path = u.hostname, u.port, u.path
        self.conn = None
        self.conn_errors = 0

    def get(self, token: str):
        """(status, AccessKeyId or None); (None, None) on a connection error."""
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
            self.conn.request("GET", self.path, headers={"Authorization": token})
            resp = self.conn.getresponse()
            body = resp.read()
            if resp.will_close:
                self.close()
        except (OSError, http.client.HTTPException):
            self.conn_errors += 1
            self.close()
            return None, None
        key = None
        if resp.status == 200:
            key = json.loads(body).get("AccessKeyId")
        return resp.status, key

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def read(path: str) -> str:
    with open(path) as f:
        return f.read()


def notify_times(log_path: str, t0_ns: int):
    """(RELOADING=1, the READY=1 after it), in ns, the first after t0."""
    reloading = ready = None
    try:
        lines = read(log_path).splitlines()
    except OSError:
        return None, None
    for line in lines:
        ts, _, text = line.partition(" ")
        ts = int(ts)
        if ts < t0_ns:
            continue
        states = text.split()
        if reloading is None and "RELOADING=1" in states:
            reloading = ts
        elif reloading is not None and "READY=1" in states:
            ready = ts
            break
    return reloading, ready


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--old-arn", required=True)
    ap.add_argument("--new-arn", required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--sighup", type=int)
    ap.add_argument("--notify-log")
    ap.add_argument("--timeout", type=float, default=10.0)
    a = ap.parse_args()

    old_token = read(a.token_file)
    want = access_key_id(a.new_arn)
    poller = Poller(a.url)
    limited = 0
    give_up = time.perf_counter() + a.timeout
    while True:
        status, old_key = poller.get(old_token)
        if status != 429 or time.perf_counter() > give_up:
            break
        limited += 1
        time.sleep(0.005)
    if status != 200:
        print(f"error: {a.url} answered {status} before the edit", file=sys.stderr)
        return 1
    if old_key == want:
        print("error: the new ARN's AccessKeyId equals the old one", file=sys.stderr)
        return 1

    text = read(a.config)
    needle = f'"{a.old_arn}"'
    if text.count(needle) != 1:
        print(f"error: {needle} is not in {a.config} exactly once", file=sys.stderr)
        return 1
    tmp = a.config + ".probe.tmp"
    with open(tmp, "w") as f:
        f.write(text.replace(needle, f'"{a.new_arn}"'))

    t0_ns = time.time_ns()
    t0 = time.perf_counter()
    os.replace(tmp, a.config)
    if a.sighup:
        os.kill(a.sighup, signal.SIGHUP)
    deadline = t0 + a.timeout

    polls = non200 = 0
    served_ms = None
    while time.perf_counter() < deadline:
        status, key = poller.get(old_token)
        polls += 1
        if status == 429:
            limited += 1
        elif status is not None and status != 200:
            non200 += 1
        if key == want:
            served_ms = (time.perf_counter() - t0) * 1000
            break
        time.sleep(0.0005)  # ~1 ms resolution, and a core left to the daemon

    token_ms = None
    while served_ms is not None and time.perf_counter() < deadline:
        try:
            token = read(a.token_file)
        except OSError:
            token = old_token  # between unlink and rename: not there yet
        if token != old_token:
            status, key = poller.get(token)
            limited += status == 429
            if status == 200 and key == want:
                token_ms = (time.perf_counter() - t0) * 1000
                break
        time.sleep(0.0005)
    poller.close()

    reloading_ms = ready_ms = None
    if a.notify_log:
        # READY=1 follows the switch closely; give it a moment to arrive.
        for _ in range(200):
            reloading, ready = notify_times(a.notify_log, t0_ns)
            if ready is not None:
                reloading_ms = (reloading - t0_ns) / 1e6
                ready_ms = (ready - t0_ns) / 1e6
                break
            time.sleep(0.01)

    applied_ms = None
    if served_ms is not None and reloading_ms is not None:
        applied_ms = served_ms - reloading_ms

    def fmt(v):
        return "-" if v is None else f"{v:.1f}"

    print(
        f"served_ms={fmt(served_ms)} token_ms={fmt(token_ms)} "
        f"reloading_ms={fmt(reloading_ms)} ready_ms={fmt(ready_ms)} "
        f"applied_ms={fmt(applied_ms)} "
        f"polls={polls} non200={non200} limited={limited} "
        f"conn_errors={poller.conn_errors}"
    )
    return 0 if served_ms is not None and token_ms is not None else 1


if __name__ == "__main__":
    sys.exit(main())
