#!/usr/bin/env python3
"""A stand-in for systemd's notify socket, for bench/run.sh.

Binds a Unix datagram socket at SOCKET (the daemon finds it through
NOTIFY_SOCKET) and appends every message it receives to LOG as one line:
`<wall clock ns> <message, newlines as spaces>`, e.g.
`1764133783123456789 READY=1 STATUS=serving 1000 role(s) on ...`.
The wall clock (time.time_ns) is what bash's $EPOCHREALTIME reads too, so
the caller can subtract its own timestamps. Runs until killed; standard
library only.

Usage: sd_notify.py SOCKET LOG
"""

import os
import socket
import sys
import time


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: sd_notify.py SOCKET LOG")
    path, log_path = sys.argv[1], sys.argv[2]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    with open(log_path, "a", buffering=1) as log:
        # The socket file appears at bind time: the caller waits for it.
        sock.bind(path)
        os.chmod(path, 0o600)
        while True:
            data = sock.recv(65536)
            now = time.time_ns()
            text = data.decode("utf-8", "replace").strip().replace("\n", " ")
            log.write(f"{now} {text}\n")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
