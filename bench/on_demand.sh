#!/usr/bin/env bash
# On-demand AWS profiles (issue 20 §1), measured both ways in one run. A
# HOME holds 100 profiles (p00..p99, each a role assumed with the keys of
# profile `base`); a developer uses 3 of them. Served
#
#   on demand: a config with only `[profiles]`: nothing runs until used;
#   declared:  `[roles.pNN] profile = "pNN"` for all 100 (what a user had
#              to write before), every one refreshed around the clock.
#
# For each: STS calls until the daemon is settled and after the 3 are used,
# the calls per hour the running roles make from then on (from each role's
# refresh schedule in `imdsd status --json`: 3600 / seconds to its next
# refresh, summed), RSS, and the time `imdsd exec PROFILE -- true` takes
# (cold: the profile's first use, one STS round trip; warm: it runs).
#
#   bench/on_demand.sh                 # builds the release binary first
#   SKIP_BUILD=1 bench/on_demand.sh    # use the existing release build
#
# STS is bench/fake_sts.py on 127.0.0.1 (a free port); every process it
# starts is stopped on exit. The report is printed and written to
# bench/out/on_demand.txt.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$BENCH_DIR")"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/imdsd"
PROFILES=100
USED="p07 p42 p93"
COLD="p10 p11 p12 p13 p14"
TMP="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

if [[ -z "${SKIP_BUILD:-}" ]]; then
    (cd "$ROOT" && cargo build --release --quiet)
fi

python3 "$BENCH_DIR/fake_sts.py" "$TMP/sts.port" 2>"$TMP/fake_sts.log" &
PIDS+=($!)
for _ in $(seq 100); do [[ -s "$TMP/sts.port" ]] && break; sleep 0.05; done
STS="http://127.0.0.1:$(cat "$TMP/sts.port")"
sts_calls() { curl -s "$STS/count"; }

# The HOME: base's keys sign every profile's AssumeRole.
mkdir -p "$TMP/home/.aws"
{
    printf '[profile base]\nregion = us-east-1\n'
    for i in $(seq -f %02g 0 $((PROFILES - 1))); do
        printf '\n[profile p%s]\nrole_arn = arn:aws:iam::123456789012:role/p%s\nsource_profile = base\n' "$i" "$i"
    done
} >"$TMP/home/.aws/config"
printf '[base]\naws_access_key_id = AKIABENCHEXAMPLE0000\naws_secret_access_key = benchsecret\n' \
    >"$TMP/home/.aws/credentials"

head_config() {
    printf '[sts]\nendpoint = "%s"\nregion = "us-east-1"\n' "$STS"
}
head_config >"$TMP/on-demand.toml"
printf '[profiles]\nlisten = "127.0.0.1:0"\n' >>"$TMP/on-demand.toml"
head_config >"$TMP/declared.toml"
printf '[[container]]\nlisten = "127.0.0.1:0"\n[profiles]\nserve = "none"\n' >>"$TMP/declared.toml"
for i in $(seq -f %02g 0 $((PROFILES - 1))); do
    printf '[roles.p%s]\nprofile = "p%s"\n' "$i" "$i" >>"$TMP/declared.toml"
done

# imdsd with the daemon's environment for run `$1`.
imdsd_env() {
    env -i PATH="$PATH" HOME="$TMP/home" XDG_STATE_HOME="$TMP/$1/state" \
        XDG_RUNTIME_DIR="$TMP/$1/run" IMDSD_CONTROL_SOCKET="$TMP/$1/control.sock" \
        "$BIN" "${@:2}"
}
status_json() { imdsd_env "$1" status --json 2>/dev/null; }
ms_now() { echo $(($(date +%s%N) / 1000000)); }

# `imdsd exec ROLE -- true` in run $1: milliseconds.
exec_ms() {
    local start end
    start=$(ms_now)
    imdsd_env "$1" exec "$2" -- true
    end=$(ms_now)
    echo $((end - start))
}

# Calls per hour the running roles make: 3600 / seconds to next refresh.
calls_per_hour() {
    status_json "$1" | python3 -c '
import json, sys
roles = json.load(sys.stdin)["roles"]
running = [r for r in roles if r.get("next_refresh_in_secs")]
print("%.0f (%d roles running)" % (sum(3600 / max(r["next_refresh_in_secs"], 1) for r in running), len(running)))'
}

rss_kib() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }

median() { tr ' ' '\n' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

measure() {
    local run=$1 config=$2
    mkdir -p "$TMP/$run/run"
    local before
    before=$(sts_calls)
    # `exec`: $! is the daemon itself, whose RSS is measured.
    (exec env -i PATH="$PATH" HOME="$TMP/home" XDG_STATE_HOME="$TMP/$run/state" \
        XDG_RUNTIME_DIR="$TMP/$run/run" IMDSD_CONTROL_SOCKET="$TMP/$run/control.sock" \
        "$BIN" run --config "$config") 2>"$TMP/$run/log" &
    local pid=$!
    PIDS+=("$pid")
    local start
    start=$(ms_now)
    # Settled: the control socket answers and no role is still pending.
    for _ in $(seq 600); do
        if status_json "$run" | python3 -c '
import json, sys
roles = json.load(sys.stdin)["roles"]
sys.exit(any(r["state"] in ("pending", "refreshing") for r in roles))' 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    local settled_ms=$(($(ms_now) - start))
    local at_start=$(($(sts_calls) - before))
    local rss_start
    rss_start=$(rss_kib "$pid")
    local cold=() warm=()
    for role in $USED; do cold+=("$(exec_ms "$run" "$role")"); done
    for _ in 1 2 3; do
        for role in $USED; do warm+=("$(exec_ms "$run" "$role")"); done
    done
    local used=$(($(sts_calls) - before))
    printf '%-10s settled in %5d ms; STS calls: %3d at start, %3d after using %d profiles; RSS %5d KiB at start, %5d KiB after\n' \
        "$run" "$settled_ms" "$at_start" "$used" "$(wc -w <<<"$USED")" "$rss_start" "$(rss_kib "$pid")"
    printf '%-10s STS calls per hour from now on: %s\n' "" "$(calls_per_hour "$run")"
    # More first uses, for the latency figure only.
    for role in $COLD; do cold+=("$(exec_ms "$run" "$role")"); done
    printf '%-10s exec -> child: first use %s ms (median %s), running %s ms (median %s)\n' \
        "" "${cold[*]}" "$(echo "${cold[*]}" | median)" "${warm[*]}" "$(echo "${warm[*]}" | median)"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}

mkdir -p "$BENCH_DIR/out"
{
    echo "On-demand profiles: $PROFILES profiles, $(wc -w <<<"$USED") used (+$(wc -w <<<"$COLD") more first uses timed), $(nproc) cores, $(date -u +%FT%TZ)"
    measure on-demand "$TMP/on-demand.toml"
    measure declared "$TMP/declared.toml"
} | tee "$BENCH_DIR/out/on_demand.txt"
