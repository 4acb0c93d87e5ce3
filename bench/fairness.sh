#!/usr/bin/env bash
# Fairness and memory under hostile local load (issue 9):
#
#   1. a legitimate SDK flow (token PUT + credentials GET, each on a new
#      connection) timed with no load, while another local user holds 2000
#      idle connections, while it churns 2000 connections, and while it
#      floods credentials GETs as fast as it can on 64 keep-alive
#      connections (wrk; with the rate applied only under contention, the
#      flood is no longer throttled: this row measures what that costs the
#      flow); and the same with the load from the flows' own user (same
#      uid: the per-user share does not help, eviction of idle connections
#      must);
#   2. imdsd's RSS idle, with 1000 open keep-alive connections, and after
#      they close.
#
#   bench/fairness.sh                 # 200 flows per scenario
#   FLOWS=50 bench/fairness.sh        # quicker
#   SKIP_BUILD=1 bench/fairness.sh    # use the existing target/release/imdsd
#
# Needs cargo, python3 and setpriv (util-linux); runs the load as `nobody`
# for the other-user scenarios. Every process it starts is stopped on exit;
# all traffic stays on 127.0.0.1. The report goes to stdout and
# bench/out/fairness.txt.
set -euo pipefail

FLOWS="${FLOWS:-200}"
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"
cd "$REPO"
log() { printf '==> %s\n' "$*" >&2; }

TMP="$(mktemp -d)"
PIDS=()
cleanup() {
    set +e
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ulimit -n 16384 2>/dev/null || true
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    log "building imdsd (release)"
    cargo build --release --quiet
fi
BIN="${CARGO_TARGET_DIR:-$REPO/target}/release/imdsd"

python3 "$BENCH_DIR/fake_sts.py" "$TMP/sts.port" 2>"$TMP/sts.log" &
PIDS+=($!)
for _ in $(seq 100); do [[ -s "$TMP/sts.port" ]] && break; sleep 0.05; done
STS_PORT="$(cat "$TMP/sts.port")"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cat >"$TMP/imdsd.toml" <<TOML
[[imds]]
listen = "127.0.0.1:$PORT"
[sts]
endpoint = "http://127.0.0.1:$STS_PORT"
[roles.dev]
role_arn = "arn:aws:iam::123456789012:role/dev"
source = "env"
[daemon]
control_socket = "$TMP/control.sock"
TOML
AWS_ACCESS_KEY_ID=AKIAEXAMPLE AWS_SECRET_ACCESS_KEY=x XDG_STATE_HOME="$TMP/state" IMDSD_LOG=warn \
    "$BIN" run --config "$TMP/imdsd.toml" 2>"$TMP/imdsd.log" &
IMDSD=$!
PIDS+=("$IMDSD")
for _ in $(seq 200); do "$BIN" health --ready --socket "$TMP/control.sock" >/dev/null 2>&1 && break; sleep 0.05; done

py() { python3 "$BENCH_DIR/fairness.py" "$@"; }
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

scenario() { # scenario NAME LOAD-COMMAND...
    local name="$1"; shift
    local load=""
    if (($#)); then
        "$@" >"$TMP/load.out" 2>&1 &
        load=$!
        PIDS+=("$load")
        sleep 3 # let the load fill the pool
    fi
    local result
    result="$(py flows "$PORT" "$FLOWS" | py summary)"
    printf '| %s | %s |\n' "$name" "$result"
    if [[ -n "$load" ]]; then
        kill "$load" 2>/dev/null || true
        wait "$load" 2>/dev/null || true
        sleep 1
    fi
}

report() {
    echo "## Fairness: a legitimate SDK flow under hostile local load"
    echo
    echo "flow = token PUT + credentials GET, each on a new connection; $FLOWS flows, 20 ms apart"
    echo "limits: 1024 connections, 512 per user, idle connections make room (imdsd defaults)"
    echo
    echo "| load | p50 | p99 | max | failed flows |"
    echo "| --- | ---: | ---: | ---: | ---: |"
    scenario "none"
    scenario "another user holds 2000 idle connections" as_nobody python3 "$BENCH_DIR/fairness.py" hold "$PORT" 2000
    scenario "another user churns 2000 connections" as_nobody python3 "$BENCH_DIR/fairness.py" churn "$PORT" 2000
    local token
    token="$(curl -s -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 21600' "http://127.0.0.1:$PORT/latest/api/token")"
    scenario "another user floods credentials GETs (wrk, 64 keep-alive connections)" \
        as_nobody wrk -t1 -c64 -d120s -H "x-aws-ec2-metadata-token: $token" \
        "http://127.0.0.1:$PORT/latest/meta-data/iam/security-credentials/dev"
    scenario "the same user holds 2000 idle connections" python3 "$BENCH_DIR/fairness.py" hold "$PORT" 2000
    echo
    echo "## Memory"
    echo
    read -r idle _ < <(py rss "$IMDSD")
    python3 "$BENCH_DIR/fairness.py" hold "$PORT" 1000 >"$TMP/hold.out" 2>&1 &
    local holder=$!
    PIDS+=("$holder")
    sleep 3
    read -r open hwm < <(py rss "$IMDSD")
    kill "$holder"; wait "$holder" 2>/dev/null || true
    sleep 3
    read -r after _ < <(py rss "$IMDSD")
    echo "| imdsd RSS | KiB |"
    echo "| --- | ---: |"
    echo "| idle | $idle |"
    echo "| 1000 open keep-alive connections (each sent one request) | $open |"
    echo "| 3 s after they closed | $after |"
    echo "| peak (VmHWM) | $hwm |"
    echo
    echo "machine: $(nproc) CPUs, $(uname -sr); imdsd $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (dirty)'); $(date -u '+%Y-%m-%d %H:%M UTC')"
}

mkdir -p "$BENCH_DIR/out"
report | tee "$BENCH_DIR/out/fairness.txt"
