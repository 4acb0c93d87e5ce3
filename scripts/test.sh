#!/usr/bin/env bash
# Runs every test. Installs what the tests need first: a Python virtualenv
# (.venv, or $IMDSD_TEST_VENV) with moto's STS server, botocore and the AWS
# CLI, used as independent peers. Network traffic goes to loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${IMDSD_TEST_VENV:-$PWD/.venv}"
requirements=tests/peers/requirements.txt
stamp="$venv/.requirements"
if ! cmp -s "$requirements" "$stamp" 2>/dev/null; then
    echo "==> installing Python test peers into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$stamp"
fi
export IMDSD_TEST_VENV="$venv"

echo "==> cargo test"
cargo test --locked --all-targets
