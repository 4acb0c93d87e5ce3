#!/usr/bin/env bash
# Runs the fuzz targets in fuzz/ (docs/fuzzing.md) one after another, each
# for SECONDS (default 180), and prints executions and coverage per target.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Needs the nightly toolchain, not cargo-fuzz: the targets are built with
# plain cargo and the flags `cargo fuzz build --sanitizer none` passes
# (so both share fuzz/target), and run directly. Each target keeps its
# corpus in fuzz/corpus/TARGET (not committed; new inputs land there),
# starts from fuzz/seeds/TARGET (committed) and uses its dictionary in
# fuzz/dict. Crashes are written to fuzz/artifacts/TARGET; the run goes on
# with the next target and the script fails at the end.
#
# FUZZ_CORPUS_DIR puts the corpora elsewhere (the smoke run uses a fresh
# one, so its time does not grow with the corpus). FUZZ_PROFILE=dev builds
# unoptimized (much quicker to build, slower to
# run: the smoke run of scripts/test.sh). Builds and fuzzers run under
# `nice`, one fuzzer at a time. FUZZ_RUNS=N ends a target after N
# executions if that comes before SECONDS (the long runs: 10 million).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-180}"
shift || true
all=(imds_http container_http imds_token config sts_xml credential_process aws_profiles sso_cache)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
profile="${FUZZ_PROFILE:-release}"
corpus_root="${FUZZ_CORPUS_DIR:-fuzz/corpus}"

dict_for() {
    case "$1" in
        imds_http | container_http) echo http ;;
        credential_process | sso_cache) echo json ;;
        imds_token) echo "" ;;
        *) echo "$1" ;;
    esac
}

triple="$(rustc +nightly -vV | sed -n 's/^host: //p')"
# What `cargo fuzz build --sanitizer none` sets (cargo-fuzz 0.13).
rustflags="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing \
-Cllvm-args=-simplifycfg-branch-fold-threshold=0 \
-Cllvm-args=-sanitizer-coverage-stack-depth -Cdebug-assertions"
build=(cargo +nightly build --manifest-path fuzz/Cargo.toml --target "$triple" --locked)
if [ "$profile" = release ]; then
    rustflags+=" -Ccodegen-units=1"
    build+=(--release --config 'profile.release.debug="line-tables-only"')
    out="${CARGO_TARGET_DIR:-fuzz/target}/$triple/release"
else
    out="${CARGO_TARGET_DIR:-fuzz/target}/$triple/debug"
fi
for t in "${targets[@]}"; do build+=(--bin "$t"); done

echo "==> building ${#targets[@]} fuzz target(s) ($profile)"
start=$SECONDS
RUSTFLAGS="$rustflags" nice -n 10 "${build[@]}"
echo "    built in $((SECONDS - start)) s"

failed=()
rows=()
for t in "${targets[@]}"; do
    mkdir -p "$corpus_root/$t" "fuzz/artifacts/$t" fuzz/logs
    args=("$corpus_root/$t" "fuzz/seeds/$t" -max_total_time="$seconds" -timeout=10
        -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t/")
    [ -z "${FUZZ_RUNS:-}" ] || args+=(-runs="$FUZZ_RUNS")
    d="$(dict_for "$t")"
    [ -z "$d" ] || args+=(-dict="fuzz/dict/$d.dict")
    log="fuzz/logs/$t.log"
    echo "==> $t: ${seconds} s"
    if ! nice -n 10 "$out/$t" "${args[@]}" >"$log" 2>&1; then
        failed+=("$t")
        grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$log" | head -20 || true
    fi
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
    cov="$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)"
    corpus="$(grep -oE 'corp: [0-9]+' "$log" | tail -1)"
    rows+=("$(printf '%-20s %12s %8s  %-22s %s' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${corpus:-?}")")
done

printf '\n%-20s %12s %8s  %-22s %s\n' target executions exec/s coverage corpus
printf '%s\n' "${rows[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]} (inputs in fuzz/artifacts/, logs in fuzz/logs/)" >&2
    exit 1
fi
