#!/usr/bin/env bash
# Mutation testing of the pure modules (cargo-mutants): how many changed
# decisions a unit test notices. Prints caught/missed/unviable per file and
# exits non-zero when a file is under its threshold (100 % for the token,
# guard and schedule modules, 95 % elsewhere). Not part of the test command:
# it takes minutes per file. See docs/mutants.md.
#
#   scripts/mutants.sh                  every pure module, unit tests only
#   scripts/mutants.sh src/imds/token.rs [...]   chosen files
#   scripts/mutants.sh --full FILE...   chosen files, the whole test suite
#   scripts/mutants.sh --report DIR     summarise an earlier run's output
#
# The pure modules are read from ARCHITECTURE.md ("Where decisions live"),
# so the list cannot drift from the architecture notes. Extra cargo-mutants
# options go after `--` (e.g. `-- --in-place` in a scratch worktree, which
# keeps its build between runs).
set -euo pipefail
cd "$(dirname "$0")/.."

full=0
report_only=""
files=()
extra=()
while (($#)); do
    case "$1" in
        --full) full=1 ;;
        --report) report_only="$2"; shift ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) files+=("$1") ;;
    esac
    shift
done

pure_modules() {
    sed -n '/^## Where decisions live/,/^## /p' ARCHITECTURE.md |
        grep -o '`[a-z_/]*\.rs`' | tr -d '`' | sed 's|^|src/|' | sort -u
}

# Prints the per-file table from cargo-mutants' outcomes.json and fails
# when a file is under its threshold.
report() {
    python3 - "$1/mutants.out/outcomes.json" <<'PYEOF'
import collections, json, sys

STRICT = {"src/imds/token.rs", "src/server/guard.rs", "src/refresh/schedule.rs"}
outcomes = json.load(open(sys.argv[1]))["outcomes"]
counts = collections.defaultdict(collections.Counter)
for o in outcomes:
    mutant = o["scenario"].get("Mutant") if isinstance(o["scenario"], dict) else None
    if mutant:
        counts[mutant["file"]][o["summary"]] += 1

failed = []
print(f"{'file':34} {'caught':>6} {'missed':>6} {'timeout':>7} {'unviable':>8} {'score':>6}")
for file in sorted(counts):
    c = counts[file]
    caught, missed = c["CaughtMutant"], c["MissedMutant"]
    timeout, unviable = c["Timeout"], c["Unviable"]
    viable = caught + missed + timeout
    # A mutant that makes the tests hang is noticed (the run times out).
    score = 100.0 * (caught + timeout) / viable if viable else 100.0
    goal = 100.0 if file in STRICT else 95.0
    mark = "" if score >= goal else f"  under {goal:.0f} %"
    if mark:
        failed.append(file)
    print(f"{file:34} {caught:6} {missed:6} {timeout:7} {unviable:8} {score:5.1f}%{mark}")
missed = [o["scenario"]["Mutant"]["name"] for o in outcomes
          if o["summary"] == "MissedMutant" and isinstance(o["scenario"], dict)]
if missed:
    print("\nmissed:")
    for name in missed:
        print("  " + name)
sys.exit(1 if failed else 0)
PYEOF
}

if [[ -n "$report_only" ]]; then
    report "$report_only"
    exit
fi

if ! cargo mutants --version >/dev/null 2>&1; then
    echo "==> installing cargo-mutants"
    cargo install --locked cargo-mutants
fi

if ((${#files[@]} == 0)); then
    ((full)) && { echo "--full needs the files to mutate" >&2; exit 64; }
    mapfile -t files < <(pure_modules)
fi

args=()
for file in "${files[@]}"; do args+=(--file "$file"); done
out="${MUTANTS_OUT:-target/mutants-report}"
mkdir -p "$out"
if ((full)); then
    export IMDSD_TEST_VENV="${IMDSD_TEST_VENV:-$PWD/.venv}"
    # The SDK-matrix and pod tests need the Rust SDK peer, an example that
    # the README's test command builds and cargo-mutants' scratch copy lacks.
    test_args=(--all-targets -- --skip sdk_matrix --skip pod::)
else
    test_args=(--lib)
fi

# cargo-mutants exits 2 for missed mutants and 3 for timeouts (the report
# decides); anything else (a usage error, a failing baseline) stops here.
rc=0
cargo mutants "${args[@]}" --output "$out" "${extra[@]}" -- "${test_args[@]}" || rc=$?
if ((rc != 0 && rc != 2 && rc != 3)); then
    echo "cargo mutants failed (exit $rc)" >&2
    exit "$rc"
fi
report "$out"
