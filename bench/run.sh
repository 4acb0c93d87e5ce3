#!/usr/bin/env bash
# Throughput/latency benchmark: imdsd's credentials endpoints vs. nginx
# serving the very same bodies as static files and vs. nginx answering them
# from memory (`return 200`, no file I/O), all on 127.0.0.1; then imdsd
# with many roles on one container listener (startup, memory, reload).
#
#   1. IMDS: GET /latest/meta-data/iam/security-credentials/dev, keep-alive.
#   2. Container credentials: GET /role/dev with the role's Authorization
#      token, over keep-alive connections and with a new connection per
#      request (`Connection: close`, as SDKs without pooling call it); nginx
#      gets the same headers.
#   3. $ROLES roles (default 1000) on one [[container]] listener: start to
#      READY=1 (on a stand-in NOTIFY_SOCKET), RSS once ready, and the time
#      from editing one role's role_arn to its new credentials being served
#      (file watcher, and SIGHUP), idle and while wrk keeps requesting an
#      unchanged role (its responses are counted by status).
#
# The report opens with the speed goals (issue 22), each from this one run:
# keep-alive imdsd/nginx static >= 1.2 and imdsd/nginx from memory >= 0.9
# (IMDS), a new connection per request imdsd/nginx static >= 1.05
# (container), and imdsd's RSS with 1000 idle keep-alive connections (each
# sent one request; bench/fairness.py hold) <= 16 MiB.
#
# Every row runs $ROUNDS rounds (default 3), alternating the servers and
# rotating their order from round to round; the ratios are ratios of the
# median rounds, and each row also gives the spread over the rounds and
# each server's CPU time per request (utime+stime from /proc, nginx's master
# and workers together), the figure the machine's other load moves least.
# Before each round the script waits up to QUIET_WAIT s (default 30) for
# the 1-minute load to fall under MAX_LOAD (default: the CPU count), and it
# reports the load at the start of the rounds.
#
# imdsd limits each local user to 1000 requests at once and 200 a second
# per listener (429 past that). Every wrk run's non-2xx responses are
# reported, and req/s of 2xx answers beside the raw rate; a short wrk run
# with bench/status_census.lua shows which statuses they were. Running as
# root, part 3's load runs as `nobody`, so that it does not use up the
# reload probe's share.
#
#   bench/run.sh                 # 10 s measured run per server and mode
#   DURATION=5 bench/run.sh      # shorter runs
#   ROUNDS=5 bench/run.sh        # alternating rounds per row (default 3)
#   SKIP_BUILD=1 bench/run.sh    # use the existing release build
#   KEEP_TMP=1 bench/run.sh      # keep the temp dirs (configs, logs) for a look
#   NGINX_INLINE=0 bench/run.sh  # leave out nginx answering from memory
#   ROLES=200 bench/run.sh       # roles in part 3
#   RELOADS=5 bench/run.sh       # reloads per kind (watcher/SIGHUP, idle/load)
#
# The binary is ${CARGO_TARGET_DIR:-target}/release/imdsd. Part 3's config
# and token files go to a private directory on tmpfs (/dev/shm) when there
# is one, as they would in /run in production; RUNTIME_TMPDIR overrides.
#
# Needs: cargo, python3, curl; installs nginx and wrk with apt-get if missing.
# Every process it starts (fake STS, imdsd, nginx, wrk, the notify socket)
# is stopped on exit, and all traffic stays on 127.0.0.1. The report is
# printed and also written to bench/out/latest.txt.
set -euo pipefail

DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-3}"
MAX_LOAD="${MAX_LOAD:-$(nproc)}"
QUIET_WAIT="${QUIET_WAIT:-30}"
WARMUP="${WARMUP:-2}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-1}"
ROLES="${ROLES:-1000}"
RELOADS="${RELOADS:-3}"
IDLE_WINDOW=10
READY_LIMIT=60    # seconds for the many-roles daemon to send READY=1
RSS_GOAL_KIB=$((32 * 1024))
RELOAD_GOAL_MS=100
CRED_PATH=/latest/meta-data/iam/security-credentials/dev
CONTAINER_PATH=/role/dev

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"
cd "$REPO"

# Room for the 1000 idle connections of the memory measure, at both ends.
ulimit -n 16384 2>/dev/null || true

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

[[ "$ROLES" =~ ^[0-9]+$ && "$ROLES" -ge 2 ]] || die "ROLES must be a number >= 2 (r1 is kept unchanged)"
[[ "$RELOADS" =~ ^[1-9][0-9]*$ ]] || die "RELOADS must be a number >= 1"

# --- cleanup ---------------------------------------------------------------

TMP=""
BIG=""
STS_PID=""
IMDSD_PID=""
NGINX_PID=""
BIG_PID=""
NOTIFY_PID=""
LOAD_PID=""
HOLD_PID=""

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
    stop_pid "$LOAD_PID" wrk
    stop_pid "$HOLD_PID" holder
    stop_pid "$BIG_PID" imdsd-roles
    stop_pid "$NOTIFY_PID" notify-socket
    stop_pid "$NGINX_PID" nginx
    stop_pid "$IMDSD_PID" imdsd
    stop_pid "$STS_PID" fake-sts
    local dir
    for dir in "$TMP" "$BIG"; do
        [[ -n "$dir" && -d "$dir" ]] || continue
        if [[ "${KEEP_TMP:-0}" == 1 || $rc -ne 0 ]]; then
            log "temp dir kept: $dir"
        else
            rm -rf "$dir"
        fi
    done
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
IMDSD_BIN="${CARGO_TARGET_DIR:-$REPO/target}/release/imdsd"
[[ "$IMDSD_BIN" == /* ]] || IMDSD_BIN="$REPO/$IMDSD_BIN"
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

wrk_args() { # wrk_args HEADER...: -H options for wrk, into WRK_ARGS
    WRK_ARGS=()
    local h
    for h in "$@"; do WRK_ARGS+=(-H "$h"); done
}

wrk_run() { # wrk_run SECONDS URL OUTFILE [HEADER...]
    local secs="$1" url="$2" out="$3"
    shift 3
    wrk_args "$@"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$secs"s --latency "${WRK_ARGS[@]}" \
        "$url" >"$out" 2>&1 ||
        { cat "$out" >&2; die "wrk failed against $url"; }
}

server_ticks() { # server_ticks SERVER: CPU ticks of imdsd, or of nginx's master and workers
    local pid n=0
    if [[ "$1" == imdsd ]]; then
        cpu_ticks "$IMDSD_PID"
        return
    fi
    for pid in "$NGINX_PID" $(pgrep -P "$NGINX_PID" || true); do
        n=$((n + $(cpu_ticks "$pid" 2>/dev/null || echo 0)))
    done
    echo "$n"
}

load1() { awk '{ print $1 }' /proc/loadavg; }

wait_quiet() { # up to QUIET_WAIT s for the 1-minute load to fall under MAX_LOAD
    local waited=0
    while awk -v l="$(load1)" -v m="$MAX_LOAD" 'BEGIN { exit !(l > m) }' &&
        ((waited < QUIET_WAIT)); do
        sleep 2
        waited=$((waited + 2))
    done
}

# alternate SUFFIX URLFN [HEADER...]: $ROUNDS rounds; each round runs every
# server in SERVERS once (warmup, then measured), the order rotated from
# round to round, so that a busy moment of the shared machine hits every
# server alike. The round with the median 2xx/s becomes
# $TMP/wrk-SERVER$SUFFIX.txt (so the ratios are ratios of medians);
# $TMP/rounds-SERVER$SUFFIX.txt keeps "2xx/s cpu-us-per-request load1" per round.
alternate() {
    local suffix="$1" urlfn="$2" r i n server f before ok
    shift 2
    n=${#SERVERS[@]}
    for ((r = 0; r < ROUNDS; r++)); do
        for ((i = 0; i < n; i++)); do
            server="${SERVERS[$(((i + r) % n))]}"
            f="$TMP/wrk-$server$suffix-r$r.txt"
            wait_quiet
            log "round $((r + 1))/$ROUNDS: $server$suffix (load $(load1))"
            wrk_run "$WARMUP" "$($urlfn "$server")" "$TMP/wrk-$server$suffix-warmup.txt" "$@"
            local load_now
            load_now="$(load1)"
            before="$(server_ticks "$server")"
            wrk_run "$DURATION" "$($urlfn "$server")" "$f" "$@"
            ok="$(wrk_field "$f" ok_rps)"
            awk -v ok="$ok" -v t="$(($(server_ticks "$server") - before))" \
                -v hz="$(getconf CLK_TCK)" -v d="$DURATION" -v l="$load_now" -v f="$f" \
                'BEGIN { printf "%s %.2f %s %s\n", ok, (ok > 0 ? t / hz * 1e6 / (ok * d) : 0), l, f }' \
                >>"$TMP/rounds-$server$suffix.txt"
        done
    done
    for server in "${SERVERS[@]}"; do
        f="$(sort -n "$TMP/rounds-$server$suffix.txt" |
            awk '{ v[NR] = $4 } END { print v[int((NR + 1) / 2)] }')"
        cp "$f" "$TMP/wrk-$server$suffix.txt"
    done
}

spread() { # spread SERVER SUFFIX: 2xx/s min-max over the rounds, median CPU us/request
    local f="$TMP/rounds-$1$2.txt"
    printf '%s | %s' \
        "$(sort -n "$f" | awk '{ v[NR] = $1 } END { printf "%.0f-%.0f", v[1], v[NR] }')" \
        "$(awk '{ print $2 }' "$f" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')"
}

loads() { # the 1-minute load at the start of every measured round, min-max
    cat "$TMP"/rounds-*.txt | awk '{ print $3 }' | sort -n |
        awk '{ v[NR] = $1 } END { printf "%s-%s", v[1], v[NR] }'
}

wrk_field() { # wrk_field OUTFILE (rps|p50|p99|max|requests|non2xx|sockerr|errors)
    case "$2" in
    rps) awk '$1 == "Requests/sec:" { print $2 }' "$1" ;;
    p50) to_ms "$(awk '$1 == "50%" { print $2 }' "$1")" ;;
    p99) to_ms "$(awk '$1 == "99%" { print $2 }' "$1")" ;;
    max) to_ms "$(awk '$1 == "Latency" { print $4 }' "$1")" ;;
    requests) awk '$2 == "requests" && $3 == "in" { print $1 }' "$1" ;;
    ok_rps) # 2xx (and 3xx) answers per second
        awk '$2 == "requests" && $3 == "in" { n = $1; t = $4 + 0 }
            /Non-2xx or 3xx responses:/ { bad = $NF }
            END { if (t > 0) printf "%.2f", (n - bad) / t }' "$1" ;;
    statuses) awk '$1 == "statuses:" { $1 = ""; sub(/^ /, ""); print }' "$1" ;;
    non2xx) awk '/Non-2xx or 3xx responses:/ { n = $NF } END { print n + 0 }' "$1" ;;
    sockerr) awk '/Socket errors:/ { gsub(/,/, ""); n = $4 + $6 + $8 + $10 } END { print n + 0 }' "$1" ;;
    errors) grep -E 'Non-2xx|Socket errors' "$1" | sed 's/^ *//' | paste -sd';' - || true ;;
    esac
}

census() { # census NAME URL [HEADER...]: a 1 s wrk run counting statuses
    local name="$1" url="$2"
    shift 2
    wrk_args "$@"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d1s -s "$BENCH_DIR/status_census.lua" \
        "${WRK_ARGS[@]}" "$url" >"$TMP/census-$name.txt" 2>&1 ||
        { cat "$TMP/census-$name.txt" >&2; die "wrk (census) failed against $url"; }
    wrk_field "$TMP/census-$name.txt" statuses
}

ratio() { # ratio A B -> A/B with 2 decimals
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
}

wait_for_file() { # wait_for_file PATH SECONDS PID NAME: until PATH exists
    local i
    for ((i = 0; i < $2 * 20; i++)); do
        [[ -e "$1" ]] && return 0
        kill -0 "$3" 2>/dev/null || die "$4 exited early"
        sleep 0.05
    done
    die "$4: $1 did not appear within $2 s"
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
CONTAINER_PORT="$(free_port)"
cat >"$TMP/imdsd.toml" <<EOF
[[imds]]
listen = "127.0.0.1:$IMDS_PORT"

[[container]]
listen = "127.0.0.1:$CONTAINER_PORT"
roles = ["dev"]
token_dir = "$TMP/tokens"

[sts]
endpoint = "http://127.0.0.1:$STS_PORT"
region = "us-east-1"

[roles.dev]
role_arn = "arn:aws:iam::123456789012:role/dev"
source = "env"

# One load generator is one local user: without this, imdsd's per-user
# request rate (200/s after a burst of 1000) would answer most of wrk's
# requests with 429. bench/fairness.sh measures the limits themselves.
[limits]
requests_per_second = 0
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

CONTAINER="http://127.0.0.1:$CONTAINER_PORT"
wait_for_file "$TMP/tokens/dev.token" 5 "$IMDSD_PID" imdsd
CTOKEN="$(cat "$TMP/tokens/dev.token")"
[[ -n "$CTOKEN" ]] || die "empty container token file"
code="$(curl -s --max-time 2 -o "$TMP/container.json" -w '%{http_code}' \
    -H "Authorization: $CTOKEN" "$CONTAINER$CONTAINER_PATH" || true)"
[[ "$code" == 200 ]] || { cat "$TMP/imdsd.log" >&2; die "container endpoint answered $code"; }
CBODY_BYTES="$(wc -c <"$TMP/container.json")"
log "imdsd container endpoint on $CONTAINER, body $CBODY_BYTES bytes"

# --- nginx -----------------------------------------------------------------

NGINX_PORT="$(free_port)"
mkdir -p "$TMP/nginx-tmp"
: >"$TMP/nginx-extra.conf"
INLINE_PORT=""
if [[ "${NGINX_INLINE:-1}" == 1 ]]; then
    INLINE_PORT="$(free_port)"
    # `return` text is a single-quoted nginx string; escape \ and '.
    python3 - "$INLINE_PORT" "$CRED_PATH" "$TMP/creds.json" text/plain \
        "$CONTAINER_PATH" "$TMP/container.json" application/json \
        >"$TMP/nginx-extra.conf" <<'PY'
import sys
port, rest = sys.argv[1], sys.argv[2:]
out = [f"server {{\n    listen 127.0.0.1:{port};"]
for path, file, ctype in zip(rest[0::3], rest[1::3], rest[2::3]):
    body = open(file).read()
    if "$" in body:
        sys.exit(f"{file} contains '$', which nginx would expand")
    quoted = body.replace("\\", "\\\\").replace("'", "\\'")
    out.append(f"    location = {path} {{\n        default_type {ctype};\n"
               f"        return 200 '{quoted}';\n    }}")
out.append("}")
print("\n".join(out))
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
curl -s --max-time 2 -o "$TMP/nginx-container-body" "$NGINX$CONTAINER_PATH" || true
cmp -s "$TMP/container.json" "$TMP/nginx-container-body" ||
    die "nginx serves a different container body than imdsd"
if [[ -n "$INLINE_PORT" ]]; then
    NGINX_INLINE_URL="http://127.0.0.1:$INLINE_PORT"
    curl -s --max-time 2 -o "$TMP/nginx-inline-body" "$NGINX_INLINE_URL$CRED_PATH" || true
    cmp -s "$TMP/creds.json" "$TMP/nginx-inline-body" ||
        die "nginx (inline) serves a different body than imdsd"
    curl -s --max-time 2 -o "$TMP/nginx-inline-container-body" \
        "$NGINX_INLINE_URL$CONTAINER_PATH" || true
    cmp -s "$TMP/container.json" "$TMP/nginx-inline-container-body" ||
        die "nginx (inline) serves a different container body than imdsd"
fi
log "nginx on $NGINX (master pid $NGINX_PID)"

# --- load ------------------------------------------------------------------

IMDS_HDR="x-aws-ec2-metadata-token: $TOKEN"
SERVERS=(imdsd nginx)
[[ -z "$INLINE_PORT" ]] || SERVERS+=(nginx-inline)
imds_url() { # imds_url SERVER
    case "$1" in
    imdsd) echo "$IMDS$CRED_PATH" ;;
    nginx) echo "$NGINX$CRED_PATH" ;;
    nginx-inline) echo "$NGINX_INLINE_URL$CRED_PATH" ;;
    esac
}
alternate "" imds_url "$IMDS_HDR"
imdsd_alive
IMDS_CENSUS="$(census imdsd-imds "$IMDS$CRED_PATH" "$IMDS_HDR")"

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

# Sanity: the measured imdsd run must still answer 200 afterwards.
code="$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' \
    -H "x-aws-ec2-metadata-token: $TOKEN" "$IMDS$CRED_PATH" || true)"
[[ "$code" == 200 ]] || log "warning: imdsd answered $code after the run"

# --- container credentials: keep-alive, then a connection per request -------

AUTH_HDR="Authorization: $CTOKEN"
CLOSE_HDR="Connection: close"
CONTAINER_SERVERS=("${SERVERS[@]}")
container_url() { # container_url SERVER
    case "$1" in
    imdsd) echo "$CONTAINER$CONTAINER_PATH" ;;
    nginx) echo "$NGINX$CONTAINER_PATH" ;;
    nginx-inline) echo "$NGINX_INLINE_URL$CONTAINER_PATH" ;;
    esac
}
alternate -container-ka container_url "$AUTH_HDR"
alternate -container-close container_url "$AUTH_HDR" "$CLOSE_HDR"
imdsd_alive
CONTAINER_CENSUS="$(census imdsd-container "$CONTAINER$CONTAINER_PATH" "$AUTH_HDR")"
C_HWM="$(status_kib "$IMDSD_PID" VmHWM)"
code="$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' \
    -H "$AUTH_HDR" "$CONTAINER$CONTAINER_PATH" || true)"
[[ "$code" == 200 ]] || log "warning: imdsd's container endpoint answered $code after the runs"
# Memory with 1000 idle keep-alive connections, each having sent one request.
log "1000 idle keep-alive connections"
python3 "$BENCH_DIR/fairness.py" hold "$IMDS_PORT" 1000 >"$TMP/hold.out" 2>&1 &
HOLD_PID=$!
sleep 3
HOLD_RSS="$(status_kib "$IMDSD_PID" VmRSS)"
HOLD_HWM="$(status_kib "$IMDSD_PID" VmHWM)"
HOLD_HELD="$(awk '{ print $2 }' "$TMP/hold.out")"
stop_pid "$HOLD_PID" holder
HOLD_PID=""
# The first daemon logs at warn: every line it wrote is a warning or worse.
IMDSD_LOG_LINES="$(wc -l <"$TMP/imdsd.log")"

# Both servers are done; part 3 gets the machine to itself.
stop_pid "$NGINX_PID" nginx
NGINX_PID=""
stop_pid "$IMDSD_PID" imdsd
IMDSD_PID=""

# --- many roles on one container listener ------------------------------------

if [[ -n "${RUNTIME_TMPDIR:-}" ]]; then
    BIG="$(mktemp -d "$RUNTIME_TMPDIR/imdsd-bench-roles.XXXXXX")"
elif [[ -d /dev/shm && -w /dev/shm ]]; then
    BIG="$(mktemp -d /dev/shm/imdsd-bench-roles.XXXXXX)"
else
    BIG="$(mktemp -d "$TMP/roles.XXXXXX")"
fi
BIG_FS="$(stat -f -c %T "$BIG")"
log "$ROLES roles: config and tokens in $BIG ($BIG_FS)"
STS="http://127.0.0.1:$STS_PORT"
sts_posts() { curl -s --max-time 2 "$STS/count"; }

python3 "$BENCH_DIR/sd_notify.py" "$BIG/notify.sock" "$BIG/notify.log" \
    2>"$TMP/sd_notify.log" &
NOTIFY_PID=$!
wait_for_file "$BIG/notify.sock" 5 "$NOTIFY_PID" "notify socket"

BIG_PORT="$(free_port)"
BIG_URL="http://127.0.0.1:$BIG_PORT"
ARN_PREFIX="arn:aws:iam::123456789012:role/r"
{
    printf '[daemon]\ncontrol_socket = "%s"\n\n' "$BIG/control.sock"
    printf '[limits]\nrequests_per_second = 0\n\n'
    printf '[sts]\nendpoint = "%s"\nregion = "us-east-1"\n\n' "$STS"
    printf '[[container]]\nlisten = "127.0.0.1:%s"\ntoken_dir = "%s"\n' \
        "$BIG_PORT" "$BIG/tokens"
    for ((i = 0; i < ROLES; i++)); do
        printf '\n[roles.r%d]\nrole_arn = "%s%d"\nsource = "env"\n' "$i" "$ARN_PREFIX" "$i"
    done
} >"$BIG/imdsd.toml"

mkdir -p "$TMP/state-roles"
posts_before_start="$(sts_posts)"
log "start imdsd with $ROLES roles"
t_start="${EPOCHREALTIME/,/.}" # seconds.microseconds, whatever the locale
env -u STATE_DIRECTORY -u AWS_SESSION_TOKEN -u AWS_PROFILE -u IMDSD_CONTROL_SOCKET \
    AWS_ACCESS_KEY_ID=AKIAEXAMPLE AWS_SECRET_ACCESS_KEY=x \
    XDG_STATE_HOME="$TMP/state-roles" NOTIFY_SOCKET="$BIG/notify.sock" IMDSD_LOG=info \
    "$IMDSD_BIN" run --config "$BIG/imdsd.toml" >"$TMP/imdsd-roles.log" 2>&1 &
BIG_PID=$!

big_alive() {
    kill -0 "$BIG_PID" 2>/dev/null && return 0
    tail -n 20 "$TMP/imdsd-roles.log" >&2
    die "imdsd ($ROLES roles) exited early"
}

ready_ns=""
for ((i = 0; i < READY_LIMIT * 100; i++)); do
    ready_ns="$(awk '$2 == "READY=1" { print $1; exit }' "$BIG/notify.log")"
    [[ -n "$ready_ns" ]] && break
    big_alive
    sleep 0.01
done
[[ -n "$ready_ns" ]] || { tail -n 20 "$TMP/imdsd-roles.log" >&2; die "no READY=1 within $READY_LIMIT s"; }
BIG_RSS_READY="$(status_kib "$BIG_PID" VmRSS)"
BIG_HWM_READY="$(status_kib "$BIG_PID" VmHWM)"
BIG_THREADS="$(status_kib "$BIG_PID" Threads)"
READY_MS="$(awk -v r="$ready_ns" -v s="$t_start" 'BEGIN { printf "%.0f", (r / 1e9 - s) * 1000 }')"
STARTUP_POSTS=$(($(sts_posts) - posts_before_start))
# Each first fetch's duration, queueing at the fake STS included.
SLOWEST_FETCH="$(grep -o 'took_ms=[0-9]*' "$TMP/imdsd-roles.log" | cut -d= -f2 | sort -n | tail -n1)"
log "READY=1 after $READY_MS ms; RSS $BIG_RSS_READY KiB"

# Every role has usable credentials, a token file, and is served.
HEALTH="ok"
"$IMDSD_BIN" health --ready --socket "$BIG/control.sock" >"$TMP/health.txt" 2>&1 ||
    HEALTH="FAILED: $(head -c 300 "$TMP/health.txt")"
"$IMDSD_BIN" status --json --socket "$BIG/control.sock" >"$TMP/status.json" ||
    die "imdsd status failed"
READY_ROLES="$(python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(sum(r["state"] == "ready" for r in d["roles"]))' "$TMP/status.json")"
TOKEN_FILES="$(find "$BIG/tokens" -maxdepth 1 -name '*.token' | wc -l)"
last=$((ROLES - 1))
code="$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' \
    -H "Authorization: $(cat "$BIG/tokens/r$last.token")" "$BIG_URL/role/r$last" || true)"
[[ "$code" == 200 ]] || die "role r$last answered $code"

# Reloads: r0's role_arn changes each time; the probe times, from the
# outside, the rename of the edited file to r0's new credentials.
arn_version=0
R0_ARN="${ARN_PREFIX}0"
: >"$TMP/reloads.txt"
reload_once() { # reload_once LOAD(idle|load) MODE(watch|sighup)
    local new="${ARN_PREFIX}0-v$((++arn_version))" out
    local args=(--config "$BIG/imdsd.toml" --old-arn "$R0_ARN" --new-arn "$new"
        --url "$BIG_URL/role/r0" --token-file "$BIG/tokens/r0.token"
        --notify-log "$BIG/notify.log" --timeout 10)
    [[ "$2" == sighup ]] && args+=(--sighup "$BIG_PID")
    out="$(python3 "$BENCH_DIR/reload_probe.py" "${args[@]}")" ||
        { tail -n 20 "$TMP/imdsd-roles.log" >&2; die "reload probe failed ($1 $2): $out"; }
    R0_ARN="$new"
    echo "$1 $2 $out" >>"$TMP/reloads.txt"
    log "reload $1 $2: $out"
    # Let a SIGHUP's trailing watcher event (a no-op reload) pass.
    sleep 0.5
}

posts_before_reloads="$(sts_posts)"
log "reloads, idle ($RELOADS of each kind)"
for ((n = 0; n < RELOADS; n++)); do
    reload_once idle watch
    reload_once idle sighup
done
R1_TOKEN="$(cat "$BIG/tokens/r1.token")"
# The load gets a user of its own when we can, so that the rate limit it
# runs into is not the probe's. Its responses are counted by status.
LOAD_AS=()
LOAD_USER="$(id -un)"
if [[ $(id -u) -eq 0 ]] && command -v setpriv >/dev/null 2>&1 && id nobody >/dev/null 2>&1; then
    LOAD_AS=(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups)
    LOAD_USER=nobody
    # wrk, as nobody, must be able to read the census script.
    "${LOAD_AS[@]}" test -r "$BENCH_DIR/status_census.lua" || { LOAD_AS=(); LOAD_USER="$(id -un)"; }
fi
wrk_args "Authorization: $R1_TOKEN"
log "baseline: wrk (as $LOAD_USER) requests r1, no reload (${DURATION}s)"
"${LOAD_AS[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION"s --latency \
    -s "$BENCH_DIR/status_census.lua" "${WRK_ARGS[@]}" "$BIG_URL/role/r1" \
    >"$TMP/wrk-r1.txt" 2>&1 || { cat "$TMP/wrk-r1.txt" >&2; die "wrk failed against r1"; }
log "reloads while wrk requests r1 ($RELOADS of each kind)"
"${LOAD_AS[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d120s --latency \
    -s "$BENCH_DIR/status_census.lua" "${WRK_ARGS[@]}" "$BIG_URL/role/r1" \
    >"$TMP/wrk-reload.txt" 2>&1 &
LOAD_PID=$!
sleep 1
for ((n = 0; n < RELOADS; n++)); do
    reload_once load watch
    reload_once load sighup
done
kill -INT "$LOAD_PID" 2>/dev/null || true
wait "$LOAD_PID" || true
LOAD_PID=""
[[ -n "$(wrk_field "$TMP/wrk-reload.txt" rps)" ]] ||
    { cat "$TMP/wrk-reload.txt" >&2; die "could not parse the wrk run during reloads"; }
RELOAD_POSTS=$(($(sts_posts) - posts_before_reloads))
RELOAD_COUNT=$((RELOADS * 4))
big_alive

BIG_RSS_AFTER="$(status_kib "$BIG_PID" VmRSS)"
BIG_HWM_AFTER="$(status_kib "$BIG_PID" VmHWM)"
log "idle window, $ROLES roles (${IDLE_WINDOW}s)"
idle_before="$(cpu_ticks "$BIG_PID")"
sleep "$IDLE_WINDOW"
idle_after="$(cpu_ticks "$BIG_PID")"
big_alive
BIG_IDLE_MS=$(((idle_after - idle_before) * 1000 / $(getconf CLK_TCK)))
BIG_WARNINGS="$(grep -cE ' (WARN|ERROR) ' "$TMP/imdsd-roles.log" || true)"
RELOADED_LINES="$(grep -c 'config reloaded' "$TMP/imdsd-roles.log" || true)"

# --- report ----------------------------------------------------------------

I_RPS="$(wrk_field "$TMP/wrk-imdsd.txt" rps)"
N_RPS="$(wrk_field "$TMP/wrk-nginx.txt" rps)"
[[ -n "$I_RPS" && -n "$N_RPS" ]] || { cat "$TMP"/wrk-*.txt >&2; die "could not parse wrk output"; }
RATIO="$(awk -v a="$I_RPS" -v b="$N_RPS" 'BEGIN { printf "%.2f", a / b }')"
I_ERR="$(wrk_field "$TMP/wrk-imdsd.txt" errors)"
N_ERR="$(wrk_field "$TMP/wrk-nginx.txt" errors)"

container_rows() { # container_rows MODE-LABEL FILE-SUFFIX: one row per server
    local label="$1" suffix="$2" server f vs ok p99
    local n="$TMP/wrk-nginx-container-$suffix.txt"
    for server in "${CONTAINER_SERVERS[@]}"; do
        f="$TMP/wrk-$server-container-$suffix.txt"
        ok="$(wrk_field "$f" ok_rps)"
        p99="$(wrk_field "$f" p99)"
        [[ -n "$ok" ]] || { cat "$f" >&2; die "could not parse $f"; }
        vs=""
        [[ "$server" != imdsd ]] ||
            vs="$(ratio "$ok" "$(wrk_field "$n" ok_rps)")× 2xx/s, $(ratio "$p99" "$(wrk_field "$n" p99)")× p99"
        printf '| %s | %s | %s | %s | %s ms | %s ms | %s | %s | %s |\n' "$label" "$server" \
            "$(wrk_field "$f" rps)" "$ok" "$(wrk_field "$f" p50)" "$p99" \
            "$(wrk_field "$f" non2xx)/$(wrk_field "$f" sockerr)" "$vs" "$(spread "$server" "-container-$suffix")"
    done
}

reload_stat() { # reload_stat LOAD MODE FIELD -> "median (max)" over the reloads, in ms
    awk -v l="$1" -v m="$2" -v f="$3" '$1 == l && $2 == m {
        for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == f) print kv[2] } }' \
        "$TMP/reloads.txt" | sort -n |
        awk '{ v[NR] = $1 } END {
            if (NR == 0) { print "-"; exit }
            if (NR == 1) { print v[1] " ms"; exit }
            m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%.1f ms (max %s)\n", m, v[NR] }'
}

reload_sum() { # reload_sum FIELD -> total over every reload
    awk -v f="$1" '{ for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == f) n += kv[2] } }
        END { print n + 0 }' "$TMP/reloads.txt"
}

verdict() { # verdict VALUE GOAL -> ok / over
    awk -v v="$1" -v g="$2" 'BEGIN { print (v + 0 <= g + 0) ? "ok" : "**over**" }'
}

reload_median() { # reload_median LOAD MODE -> median served_ms, for verdicts
    reload_stat "$1" "$2" served_ms | awk '{ print $1 }'
}

CPU_MODEL="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
[[ -n "$CPU_MODEL" ]] || CPU_MODEL="unknown"
REV="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -C "$REPO" status --porcelain --untracked-files=no -- src Cargo.toml Cargo.lock 2>/dev/null)" ]]; then
    REV="$REV (src dirty)"
fi

goal() { # goal LABEL VALUE OP GOAL: a row of the goals table
    printf '| %s | %s | %s %s | %s |\n' "$1" "$2" "$3" "$4" \
        "$(awk -v v="$2" -v op="$3" -v g="$4" 'BEGIN {
            ok = (op == ">=") ? (v + 0 >= g + 0) : (v + 0 <= g + 0); print ok ? "ok" : "**missed**" }')"
}

mkdir -p "$BENCH_DIR/out"
{
    echo "## Speed goals (issue 22), all from this run"
    echo
    echo "| measure | value | goal | |"
    echo "| --- | ---: | ---: | --- |"
    goal "keep-alive, imdsd / nginx static (IMDS req/s)" "$RATIO" ">=" 1.2
    if [[ -n "$INLINE_PORT" ]]; then
        goal "keep-alive, imdsd / nginx from memory (IMDS req/s)" \
            "$(ratio "$I_RPS" "$(wrk_field "$TMP/wrk-nginx-inline.txt" rps)")" ">=" 0.9
    fi
    goal "new connection per request, imdsd / nginx static (container 2xx/s)" \
        "$(ratio "$(wrk_field "$TMP/wrk-imdsd-container-close.txt" ok_rps)" \
            "$(wrk_field "$TMP/wrk-nginx-container-close.txt" ok_rps)")" ">=" 1.05
    goal "imdsd RSS with ${HOLD_HELD:-?} idle keep-alive connections (MiB; VmHWM $HOLD_HWM KiB)" \
        "$(awk -v k="$HOLD_RSS" 'BEGIN { printf "%.1f", k / 1024 }')" "<=" 16
    echo
    echo "## imdsd vs nginx: GET $CRED_PATH (${BODY_BYTES}-byte body)"
    echo
    echo "nginx serves a static copy of imdsd's body (alias to a file, worker_processes auto)"
    echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency, keep-alive, after a ${WARMUP}s warmup each;"
    echo "$ROUNDS alternating rounds (the order rotated each round); the median round's figures,"
    echo "the spread of 2xx/s over the rounds, and the server's CPU time per request (median;"
    echo "from its utime+stime, nginx's master and workers together); 1-minute load at the"
    echo "start of the measured rounds: $(loads)"
    echo
    echo "| server | req/s (median) | p50 | p99 | 2xx/s min-max | CPU us/request |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: |"
    for server in "${SERVERS[@]}"; do
        f="$TMP/wrk-$server.txt"
        printf '| %s | %s | %s ms | %s ms | %s |\n' "$server" "$(wrk_field "$f" rps)" \
            "$(wrk_field "$f" p50)" "$(wrk_field "$f" p99)" "$(spread "$server" "")"
    done
    echo
    echo "ratio imdsd/nginx: $RATIO"
    if [[ -n "$INLINE_PORT" ]]; then
        awk -v a="$I_RPS" -v b="$(wrk_field "$TMP/wrk-nginx-inline.txt" rps)" \
            'BEGIN { printf "ratio imdsd/nginx-inline: %.2f\n", a / b }'
    fi
    [[ -z "$I_ERR" ]] || echo "imdsd wrk errors: $I_ERR"
    [[ -z "$N_ERR" ]] || echo "nginx wrk errors: $N_ERR"
    if [[ "$(wrk_field "$TMP/wrk-imdsd.txt" non2xx)" != 0 ]]; then
        I_OK="$(wrk_field "$TMP/wrk-imdsd.txt" ok_rps)"
        N_OK="$(wrk_field "$TMP/wrk-nginx.txt" ok_rps)"
        echo "WARNING: imdsd's req/s above counts non-2xx answers; 2xx/s: imdsd $I_OK, nginx $N_OK (ratio $(ratio "$I_OK" "$N_OK"))"
        echo "status census, imdsd IMDS endpoint (wrk 1 s, keep-alive): $IMDS_CENSUS"
    fi
    echo "imdsd peak RSS: $HWM KiB (current $RSS KiB, $THREADS_NOW threads)"
    echo "imdsd idle CPU over $IDLE_WINDOW s: $IDLE_MS ms"
    echo
    echo "## imdsd vs nginx: container credentials, GET $CONTAINER_PATH (${CBODY_BYTES}-byte JSON body)"
    echo
    echo "the same imdsd and nginx; both get the role's \`Authorization\` header (nginx ignores it);"
    echo "new connection: wrk with \`Connection: close\` for both (one TCP connection per request;"
    echo "wrk's latency starts once connected). Same wrk settings as above."
    echo
    echo "| mode | server | req/s | 2xx/s | p50 | p99 | non-2xx/socket errors | imdsd vs nginx | 2xx/s min-max | CPU us/request |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |"
    container_rows keep-alive ka
    container_rows "new connection" close
    echo
    echo "status census, imdsd container endpoint (wrk 1 s, keep-alive): $CONTAINER_CENSUS"
    echo "imdsd peak RSS after the container runs: $C_HWM KiB"
    echo "imdsd log lines at warn or worse during parts 1-2: $IMDSD_LOG_LINES"
    echo
    echo "## imdsd with $ROLES roles on one container listener"
    echo
    echo "roles r0..r$((ROLES - 1)), source env, fake STS (python asyncio) on loopback;"
    echo "config and token files on $BIG_FS; goals: RSS <= $((RSS_GOAL_KIB / 1024)) MiB, reload <= $RELOAD_GOAL_MS ms"
    echo
    echo "| measure | result | goal |"
    echo "| --- | ---: | --- |"
    printf '| start to READY=1 (every first fetch done) | %s ms | |\n' "$READY_MS"
    printf '| slowest first fetch (took_ms in the log; STS queueing included) | %s ms | |\n' \
        "${SLOWEST_FETCH:--}"
    printf '| RSS at READY=1 (VmRSS / VmHWM) | %s / %s KiB | %s |\n' \
        "$BIG_RSS_READY" "$BIG_HWM_READY" "$(verdict "$BIG_RSS_READY" "$RSS_GOAL_KIB")"
    printf '| RSS after %s reloads (VmRSS / VmHWM) | %s / %s KiB | %s |\n' "$RELOAD_COUNT" \
        "$BIG_RSS_AFTER" "$BIG_HWM_AFTER" "$(verdict "$BIG_RSS_AFTER" "$RSS_GOAL_KIB")"
    printf '| roles ready / token files / STS calls at start | %s / %s / %s | %s each |\n' \
        "$READY_ROLES" "$TOKEN_FILES" "$STARTUP_POSTS" "$ROLES"
    printf '| imdsd health --ready | %s | ok |\n' "$HEALTH"
    printf '| STS calls for %s reloads (one role changed each) | %s | %s |\n' \
        "$RELOAD_COUNT" "$RELOAD_POSTS" "$RELOAD_COUNT"
    printf '| idle CPU over %s s | %s ms | |\n' "$IDLE_WINDOW" "$BIG_IDLE_MS"
    printf '| threads / log lines at WARN or ERROR | %s / %s | |\n' "$BIG_THREADS" "$BIG_WARNINGS"
    echo
    echo "Reload: r0's role_arn edited (temporary file renamed over the config), times from the"
    echo "rename, measured outside by polling /role/r0 about once a ms (median and max of $RELOADS);"
    echo "RELOADING=1 and READY=1 as received on the notify socket. The watcher debounces 20 ms."
    echo
    echo "| trigger | load | to new credentials served | to new token file works | to RELOADING=1 | to READY=1 | RELOADING=1 to served | goal |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"
    for phase in idle load; do
        for mode in watch sighup; do
            label="file watcher"
            [[ "$mode" == watch ]] || label="SIGHUP"
            load_label="idle"
            [[ "$phase" == idle ]] || load_label="wrk on r1"
            printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$load_label" \
                "$(reload_stat "$phase" "$mode" served_ms)" \
                "$(reload_stat "$phase" "$mode" token_ms)" \
                "$(reload_stat "$phase" "$mode" reloading_ms)" \
                "$(reload_stat "$phase" "$mode" ready_ms)" \
                "$(reload_stat "$phase" "$mode" applied_ms)" \
                "$(verdict "$(reload_median "$phase" "$mode")" "$RELOAD_GOAL_MS")"
        done
    done
    echo
    echo "wrk (as $LOAD_USER, statuses counted) on /role/r1 (unchanged), $CONNECTIONS connections, keep-alive:"
    echo
    echo "| r1 under wrk | requests | req/s | 2xx/s | p50 | p99 | max | statuses | socket errors |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |"
    for f in "$TMP/wrk-r1.txt" "$TMP/wrk-reload.txt"; do
        label="no reload (${DURATION}s)"
        [[ "$f" == "$TMP/wrk-r1.txt" ]] || label="during the $((RELOADS * 2)) reloads above"
        printf '| %s | %s | %s | %s | %s ms | %s ms | %s ms | %s | %s |\n' "$label" \
            "$(wrk_field "$f" requests)" "$(wrk_field "$f" rps)" "$(wrk_field "$f" ok_rps)" \
            "$(wrk_field "$f" p50)" "$(wrk_field "$f" p99)" "$(wrk_field "$f" max)" \
            "$(wrk_field "$f" statuses)" "$(wrk_field "$f" sockerr)"
    done
    echo
    printf 'probe requests to r0 with its previous token: non-200 %s (429 not counted), 429 %s, connection errors %s\n' \
        "$(reload_sum non200)" "$(reload_sum limited)" "$(reload_sum conn_errors)"
    printf '"config reloaded" log lines: %s (one per reload that changed something)\n' "$RELOADED_LINES"
    echo
    echo "machine: $(nproc) CPUs, $(uname -srm), $CPU_MODEL"
    echo "imdsd: $REV; $("$NGINX_BIN" -v 2>&1 | sed 's/^nginx version: //'); $(wrk -v 2>&1 | head -n1 | awk '{ print $1, $2 }')"
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
} | tee "$BENCH_DIR/out/latest.txt"
