#!/usr/bin/env bash
# Throughput/latency benchmark: imdsd's credentials endpoint vs. nginx
# serving the very same body as a static file, both on 127.0.0.1.
#
#   bench/run.sh                 # 10 s measured run per server
#   DURATION=5 bench/run.sh      # shorter run
#   SKIP_BUILD=1 bench/run.sh    # use the existing target/release/imdsd
#   KEEP_TMP=1 bench/run.sh      # keep the temp dir (configs, logs) for a look
#   NGINX_INLINE=1 bench/run.sh  # add a row for nginx answering the same body
#                                # from memory (`return 200`), with no file I/O
#
# Needs: cargo, python3, curl; installs nginx and wrk with apt-get if missing.
# Every process it starts (fake STS, imdsd, nginx) is stopped on exit, and
# all traffic stays on 127.0.0.1. The report is printed and also written to
# bench/out/latest.txt.
set -euo pipefail

DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-1}"
IDLE_WINDOW=10
CRED_PATH=/latest/meta-data/iam/security-credentials/dev

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"
cd "$REPO"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# --- cleanup ---------------------------------------------------------------

TMP=""
STS_PID=""
IMDSD_PID=""
NGINX_PID=""

stop_pid() { # stop_pid PID NAME: TERM, wait up to 5 s, then KILL
    local pid="$1" name="$2" i
    [[ -n "$pid" ]] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name (pid $pid) did not stop after SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    set +e
    stop_pid "$NGINX_PID" nginx
    stop_pid "$IMDSD_PID" imdsd
    stop_pid "$STS_PID" fake-sts
    if [[ -n "$TMP" && -d "$TMP" ]]; then
        if [[ "${KEEP_TMP:-0}" == 1 || $rc -ne 0 ]]; then
            log "temp dir kept: $TMP"
        else
            rm -rf "$TMP"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- tools -----------------------------------------------------------------

need_apt=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need_apt+=(nginx)
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
if ((${#need_apt[@]})); then
    SUDO=""
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || die "need root or sudo to install: ${need_apt[*]}"
        SUDO=sudo
    fi
    log "installing ${need_apt[*]}"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >&2
fi
NGINX_BIN="$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)"
[[ -x "$NGINX_BIN" ]] || die "nginx not found after install"
command -v wrk >/dev/null 2>&1 || die "wrk not found after install"
for t in python3 curl cargo; do
    command -v "$t" >/dev/null 2>&1 || die "$t is required"
done

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    log "cargo build --release"
    cargo build --release --quiet >&2 || die "cargo build --release failed"
fi
IMDSD_BIN="$REPO/target/release/imdsd"
[[ -x "$IMDSD_BIN" ]] || die "$IMDSD_BIN is missing"

# --- helpers ---------------------------------------------------------------

free_port() { # a port the kernel considers free on 127.0.0.1 right now
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

cpu_ticks() { # utime+stime of a whole process (all threads), in clock ticks
    local stat
    stat="$(cat "/proc/$1/stat")"
    # Fields after "(comm) ": state is $1, utime is $12, stime is $13.
    awk '{ print $12 + $13 }' <<<"${stat##*") "}"
}

status_kib() { # status_kib PID FIELD: e.g. VmHWM -> number of KiB
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

to_ms() { # "105.00us" / "1.20ms" / "2.00s" -> milliseconds, 3 decimals
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n = n / 1000
        else if (v ~ /ms$/) n = n
        else if (v ~ /m$/) n = n * 60000
        else if (v ~ /s$/) n = n * 1000
        printf "%.3f", n
    }'
}

wrk_run() { # wrk_run SECONDS URL OUTFILE
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$1"s --latency \
        -H "x-aws-ec2-metadata-token: $TOKEN" "$2" >"$3" 2>&1 ||
        { cat "$3" >&2; die "wrk failed against $2"; }
}

wrk_field() { # wrk_field OUTFILE (rps|p50|p99|errors)
    case "$2" in
    rps) awk '$1 == "Requests/sec:" { print $2 }' "$1" ;;
    p50) to_ms "$(awk '$1 == "50%" { print $2 }' "$1")" ;;
    p99) to_ms "$(awk '$1 == "99%" { print $2 }' "$1")" ;;
    errors) grep -E 'Non-2xx|Socket errors' "$1" | sed 's/^ *//' | paste -sd';' - || true ;;
    esac
}

# --- fake STS --------------------------------------------------------------

TMP="$(mktemp -d "${TMPDIR:-/tmp}/imdsd-bench.XXXXXX")"
log "temp dir $TMP"

python3 "$BENCH_DIR/fake_sts.py" "$TMP/sts.port" 2>"$TMP/fake_sts.log" &
STS_PID=$!
for ((i = 0; i < 50; i++)); do
    [[ -s "$TMP/sts.port" ]] && break
    kill -0 "$STS_PID" 2>/dev/null || { cat "$TMP/fake_sts.log" >&2; die "fake STS exited"; }
    sleep 0.1
done
[[ -s "$TMP/sts.port" ]] || die "fake STS did not start within 5 s"
STS_PORT="$(cat "$TMP/sts.port")"
log "fake STS on 127.0.0.1:$STS_PORT (pid $STS_PID)"

# --- imdsd -----------------------------------------------------------------

IMDS_PORT="$(free_port)"
cat >"$TMP/imdsd.toml" <<EOF
[[imds]]
listen = "127.0.0.1:$IMDS_PORT"

[sts]
endpoint = "http://127.0.0.1:$STS_PORT"
region = "us-east-1"

[roles.dev]
role_arn = "arn:aws:iam::123456789012:role/dev"
source = "env"
EOF

mkdir -p "$TMP/state"
env -u STATE_DIRECTORY -u AWS_SESSION_TOKEN -u AWS_PROFILE \
    AWS_ACCESS_KEY_ID=AKIAEXAMPLE AWS_SECRET_ACCESS_KEY=x \
    XDG_STATE_HOME="$TMP/state" IMDSD_CONTROL_SOCKET="$TMP/control.sock" IMDSD_LOG=warn \
    "$IMDSD_BIN" run --config "$TMP/imdsd.toml" >"$TMP/imdsd.log" 2>&1 &
IMDSD_PID=$!
IMDS="http://127.0.0.1:$IMDS_PORT"

imdsd_alive() {
    kill -0 "$IMDSD_PID" 2>/dev/null && return 0
    cat "$TMP/imdsd.log" >&2
    die "imdsd exited early"
}

TOKEN=""
for ((i = 0; i < 50; i++)); do
    imdsd_alive
    TOKEN="$(curl -s --max-time 1 -X PUT \
        -H 'X-aws-ec2-metadata-token-ttl-seconds: 21600' \
        "$IMDS/latest/api/token" 2>/dev/null || true)"
    [[ -n "$TOKEN" ]] && break
    sleep 0.1
done
[[ -n "$TOKEN" ]] || { cat "$TMP/imdsd.log" >&2; die "imdsd gave no token within 5 s"; }

code=""
for ((i = 0; i < 50; i++)); do
    imdsd_alive
    code="$(curl -s --max-time 1 -o "$TMP/creds.json" -w '%{http_code}' \
        -H "x-aws-ec2-metadata-token: $TOKEN" "$IMDS$CRED_PATH" 2>/dev/null || true)"
    [[ "$code" == 200 ]] && break
    sleep 0.1
done
[[ "$code" == 200 ]] || { cat "$TMP/imdsd.log" "$TMP/fake_sts.log" >&2; die "imdsd credentials not 200 within 5 s (last: $code)"; }
BODY_BYTES="$(wc -c <"$TMP/creds.json")"
log "imdsd on $IMDS (pid $IMDSD_PID), credentials body $BODY_BYTES bytes"

# --- nginx -----------------------------------------------------------------

NGINX_PORT="$(free_port)"
mkdir -p "$TMP/nginx-tmp"
: >"$TMP/nginx-extra.conf"
INLINE_PORT=""
if [[ "${NGINX_INLINE:-0}" == 1 ]]; then
    INLINE_PORT="$(free_port)"
    # `return` text is a single-quoted nginx string; escape \ and '.
    python3 - "$TMP/creds.json" "$INLINE_PORT" "$CRED_PATH" >"$TMP/nginx-extra.conf" <<'PY'
import sys
body = open(sys.argv[1]).read()
if "$" in body:
    sys.exit("credentials body contains '$', which nginx would expand")
quoted = body.replace("\\", "\\\\").replace("'", "\\'")
print(f"server {{\n    listen 127.0.0.1:{sys.argv[2]};\n"
      f"    location = {sys.argv[3]} {{\n        default_type text/plain;\n"
      f"        return 200 '{quoted}';\n    }}\n}}")
PY
fi
user_directive=""
# Run as root, nginx would drop its workers to nobody, who may not read $TMP.
[[ $(id -u) -eq 0 ]] && user_directive="user root;"
sed -e "s|@TMP@|$TMP|g" -e "s|@PORT@|$NGINX_PORT|g" \
    -e "s|@USER_DIRECTIVE@|$user_directive|g" \
    "$BENCH_DIR/nginx.conf.template" >"$TMP/nginx.conf"
"$NGINX_BIN" -t -q -p "$TMP/" -e "$TMP/nginx-error.log" -c "$TMP/nginx.conf" >&2 ||
    die "nginx config test failed"
"$NGINX_BIN" -p "$TMP/" -e "$TMP/nginx-error.log" -c "$TMP/nginx.conf" &
NGINX_PID=$!
NGINX="http://127.0.0.1:$NGINX_PORT"

code=""
for ((i = 0; i < 50; i++)); do
    kill -0 "$NGINX_PID" 2>/dev/null || { cat "$TMP/nginx-error.log" >&2; die "nginx exited early"; }
    code="$(curl -s --max-time 1 -o "$TMP/nginx-body" -w '%{http_code}' "$NGINX$CRED_PATH" 2>/dev/null || true)"
    [[ "$code" == 200 ]] && break
    sleep 0.1
done
[[ "$code" == 200 ]] || { cat "$TMP/nginx-error.log" >&2; die "nginx not serving within 5 s (last: $code)"; }
cmp -s "$TMP/creds.json" "$TMP/nginx-body" || die "nginx serves a different body than imdsd"
if [[ -n "$INLINE_PORT" ]]; then
    NGINX_INLINE_URL="http://127.0.0.1:$INLINE_PORT"
    curl -s --max-time 2 -o "$TMP/nginx-inline-body" "$NGINX_INLINE_URL$CRED_PATH" || true
    cmp -s "$TMP/creds.json" "$TMP/nginx-inline-body" ||
        die "nginx (inline) serves a different body than imdsd"
fi
log "nginx on $NGINX (master pid $NGINX_PID)"

# --- load ------------------------------------------------------------------

log "warmup imdsd (${WARMUP}s)"
wrk_run "$WARMUP" "$IMDS$CRED_PATH" "$TMP/wrk-imdsd-warmup.txt"
log "measure imdsd (${DURATION}s)"
imdsd_ticks_before="$(cpu_ticks "$IMDSD_PID")"
wrk_run "$DURATION" "$IMDS$CRED_PATH" "$TMP/wrk-imdsd.txt"
imdsd_ticks_after="$(cpu_ticks "$IMDSD_PID")"
imdsd_alive

log "warmup nginx (${WARMUP}s)"
wrk_run "$WARMUP" "$NGINX$CRED_PATH" "$TMP/wrk-nginx-warmup.txt"
log "measure nginx (${DURATION}s)"
wrk_run "$DURATION" "$NGINX$CRED_PATH" "$TMP/wrk-nginx.txt"
if [[ -n "$INLINE_PORT" ]]; then
    log "warmup nginx-inline (${WARMUP}s)"
    wrk_run "$WARMUP" "$NGINX_INLINE_URL$CRED_PATH" "$TMP/wrk-nginx-inline-warmup.txt"
    log "measure nginx-inline (${DURATION}s)"
    wrk_run "$DURATION" "$NGINX_INLINE_URL$CRED_PATH" "$TMP/wrk-nginx-inline.txt"
fi

# --- imdsd footprint -------------------------------------------------------

imdsd_alive
HWM="$(status_kib "$IMDSD_PID" VmHWM)"
RSS="$(status_kib "$IMDSD_PID" VmRSS)"
THREADS_NOW="$(status_kib "$IMDSD_PID" Threads)"
log "idle window (${IDLE_WINDOW}s)"
idle_before="$(cpu_ticks "$IMDSD_PID")"
sleep "$IDLE_WINDOW"
idle_after="$(cpu_ticks "$IMDSD_PID")"
imdsd_alive
HZ="$(getconf CLK_TCK)"
IDLE_MS=$(((idle_after - idle_before) * 1000 / HZ))
LOAD_MS=$(((imdsd_ticks_after - imdsd_ticks_before) * 1000 / HZ))

# Sanity: the measured imdsd run must still answer 200 afterwards.
code="$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' \
    -H "x-aws-ec2-metadata-token: $TOKEN" "$IMDS$CRED_PATH" || true)"
[[ "$code" == 200 ]] || log "warning: imdsd answered $code after the run"

# --- report ----------------------------------------------------------------

I_RPS="$(wrk_field "$TMP/wrk-imdsd.txt" rps)"
N_RPS="$(wrk_field "$TMP/wrk-nginx.txt" rps)"
[[ -n "$I_RPS" && -n "$N_RPS" ]] || { cat "$TMP"/wrk-*.txt >&2; die "could not parse wrk output"; }
RATIO="$(awk -v a="$I_RPS" -v b="$N_RPS" 'BEGIN { printf "%.2f", a / b }')"
I_ERR="$(wrk_field "$TMP/wrk-imdsd.txt" errors)"
N_ERR="$(wrk_field "$TMP/wrk-nginx.txt" errors)"

CPU_MODEL="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
[[ -n "$CPU_MODEL" ]] || CPU_MODEL="unknown"
REV="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -C "$REPO" status --porcelain --untracked-files=no -- src Cargo.toml Cargo.lock 2>/dev/null)" ]]; then
    REV="$REV (src dirty)"
fi

mkdir -p "$BENCH_DIR/out"
{
    echo "## imdsd vs nginx: GET $CRED_PATH (${BODY_BYTES}-byte body)"
    echo
    echo "nginx serves a static copy of imdsd's body (alias to a file, worker_processes auto)"
    echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency, keep-alive, after a ${WARMUP}s warmup each"
    echo
    echo "| server | req/s | p50 | p99 |"
    echo "| --- | ---: | ---: | ---: |"
    printf '| imdsd | %s | %s ms | %s ms |\n' "$I_RPS" \
        "$(wrk_field "$TMP/wrk-imdsd.txt" p50)" "$(wrk_field "$TMP/wrk-imdsd.txt" p99)"
    printf '| nginx | %s | %s ms | %s ms |\n' "$N_RPS" \
        "$(wrk_field "$TMP/wrk-nginx.txt" p50)" "$(wrk_field "$TMP/wrk-nginx.txt" p99)"
    if [[ -n "$INLINE_PORT" ]]; then
        f="$TMP/wrk-nginx-inline.txt"
        printf '| nginx-inline | %s | %s ms | %s ms |\n' "$(wrk_field "$f" rps)" \
            "$(wrk_field "$f" p50)" "$(wrk_field "$f" p99)"
    fi
    echo
    echo "ratio imdsd/nginx: $RATIO"
    if [[ -n "$INLINE_PORT" ]]; then
        awk -v a="$I_RPS" -v b="$(wrk_field "$TMP/wrk-nginx-inline.txt" rps)" \
            'BEGIN { printf "ratio imdsd/nginx-inline: %.2f\n", a / b }'
    fi
    [[ -z "$I_ERR" ]] || echo "imdsd wrk errors: $I_ERR"
    [[ -z "$N_ERR" ]] || echo "nginx wrk errors: $N_ERR"
    echo "imdsd peak RSS: $HWM KiB (current $RSS KiB, $THREADS_NOW threads)"
    echo "imdsd CPU during the ${DURATION}s measured run: $LOAD_MS ms"
    echo "imdsd idle CPU over $IDLE_WINDOW s: $IDLE_MS ms"
    echo
    echo "machine: $(nproc) CPUs, $(uname -srm), $CPU_MODEL"
    echo "imdsd: $REV; $("$NGINX_BIN" -v 2>&1 | sed 's/^nginx version: //'); $(wrk -v 2>&1 | head -n1 | awk '{ print $1, $2 }')"
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
} | tee "$BENCH_DIR/out/latest.txt"
