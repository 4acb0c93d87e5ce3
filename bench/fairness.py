"""Load generators and the measured client for bench/fairness.sh.

  hold PORT N          open N connections, send one cheap token-less
                       request on each, keep them open (until killed)
  churn PORT N         keep cycling N connections: open, one cheap request,
                       close, again (until killed)
  flows PORT COUNT     COUNT legitimate SDK flows, each on new connections:
                       token PUT, then credentials GET; prints one line per
                       flow: milliseconds (or "fail REASON")
  summary              reads flows' lines on stdin: "p50 | p99 | max | failed"
  rss PID              VmRSS and VmHWM of PID, in KiB

Everything goes to 127.0.0.1 only, and every loop is bounded by count or by
the caller killing it (bench/fairness.sh does, on exit).
"""
import socket
import sys
import time

CHEAP = b"GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n"


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def hold(port, n):
    held = []
    for _ in range(n):
        try:
            s = connect(port)
            s.sendall(CHEAP % port)
            held.append(s)
        except OSError:
            pass
    print(f"holding {len(held)}", flush=True)
    while True:
        time.sleep(3600)


def churn(port, n):
    deadline = time.time() + 600  # bounded even if never killed
    while time.time() < deadline:
        batch = []
        for _ in range(n):
            try:
                s = connect(port)
                s.sendall(CHEAP % port)
                batch.append(s)
            except OSError:
                pass
        for s in batch:
            s.close()


def request(port, raw):
    s = connect(port)
    try:
        s.sendall(raw)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        while len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        status = int(head.split(b" ")[1]) if head else 0
        return status, body
    finally:
        s.close()


def flows(port, count):
    for _ in range(count):
        start = time.perf_counter()
        try:
            status, token = request(port, (
                "PUT /latest/api/token HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                "X-aws-ec2-metadata-token-ttl-seconds: 60\r\nContent-Length: 0\r\n"
                "Connection: close\r\n\r\n" % port).encode())
            if status != 200:
                print(f"fail token {status}", flush=True)
                continue
            status, body = request(port, (
                "GET /latest/meta-data/iam/security-credentials/dev HTTP/1.1\r\n"
                "Host: 127.0.0.1:%d\r\nX-aws-ec2-metadata-token: %s\r\n"
                "Connection: close\r\n\r\n" % (port, token.decode())).encode())
            if status != 200 or b"SecretAccessKey" not in body:
                print(f"fail credentials {status}", flush=True)
                continue
            print(f"{(time.perf_counter() - start) * 1000:.2f}", flush=True)
        except OSError as e:
            print(f"fail {type(e).__name__}", flush=True)
        time.sleep(0.02)


def summary():
    ok, fail = [], 0
    for line in sys.stdin:
        line = line.strip()
        if line.startswith("fail"):
            fail += 1
        elif line:
            ok.append(float(line))
    ok.sort()
    nan = float("nan")

    def pick(q):
        return ok[min(len(ok) - 1, int(q * len(ok)))] if ok else nan

    worst = ok[-1] if ok else nan
    print(f"{pick(0.5):.2f} ms | {pick(0.99):.2f} ms | {worst:.2f} ms | {fail}/{len(ok) + fail}")


def rss(pid):
    fields = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status"))
    print(fields["VmRSS"].split()[0], fields["VmHWM"].split()[0])


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "hold":
        hold(int(sys.argv[2]), int(sys.argv[3]))
    elif cmd == "churn":
        churn(int(sys.argv[2]), int(sys.argv[3]))
    elif cmd == "flows":
        flows(int(sys.argv[2]), int(sys.argv[3]))
    elif cmd == "summary":
        summary()
    elif cmd == "rss":
        rss(int(sys.argv[2]))
