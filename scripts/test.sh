#!/usr/bin/env bash
# Runs every test. Installs what the tests need first: a Python virtualenv
# (.venv, or $IMDSD_TEST_VENV) with moto's STS server, botocore and the AWS
# CLI, and the AWS SDK for JavaScript v3 (npm), used as independent peers.
# Network traffic goes to loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

elapsed() { printf '%d:%02d' $((SECONDS / 60)) $((SECONDS % 60)); }

CARGO_DENY_VERSION=0.20.2
CARGO_DEB_VERSION=3.8.0

# cargo-deny (dependency bans and licenses) and cargo-deb (the Debian
# package), built once from crates.io at pinned versions. cargo-deny has no
# optional features to leave out; cargo-deb without its default `lzma`
# feature skips building liblzma (it compresses with gzip instead).
# They are CPU-bound builds, so they start first, in the background, while
# the network-bound installs below run.
install_cargo_tools() {
    if ! cargo deny --version 2>/dev/null | grep -qx "cargo-deny $CARGO_DENY_VERSION"; then
        echo "==> [$(elapsed)] installing cargo-deny $CARGO_DENY_VERSION"
        cargo install --locked --quiet cargo-deny --version "$CARGO_DENY_VERSION"
    fi
    if ! cargo deb --version 2>/dev/null | grep -qx "cargo-deb $CARGO_DEB_VERSION"; then
        echo "==> [$(elapsed)] installing cargo-deb $CARGO_DEB_VERSION"
        cargo install --locked --quiet cargo-deb --version "$CARGO_DEB_VERSION" --no-default-features
    fi
}
tools_log="$(mktemp)"
install_cargo_tools >"$tools_log" 2>&1 &
tools_pid=$!

venv="${IMDSD_TEST_VENV:-$PWD/.venv}"
requirements=tests/peers/requirements.txt
stamp="$venv/.requirements"
if ! cmp -s "$requirements" "$stamp" 2>/dev/null; then
    echo "==> [$(elapsed)] installing Python test peers into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$stamp"
fi
export IMDSD_TEST_VENV="$venv"

# The AWS SDK for JavaScript v3, pinned by package-lock.json.
js=tests/peers/js
if ! cmp -s "$js/package-lock.json" "$js/node_modules/.package-lock.json.installed" 2>/dev/null; then
    echo "==> [$(elapsed)] installing the JS SDK test peer into $js/node_modules"
    (cd "$js" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$js/package-lock.json" "$js/node_modules/.package-lock.json.installed"
fi

# systemd-analyze (tests verify the shipped units), and the ip and kill
# commands the units name.
if ! command -v systemd-analyze >/dev/null || ! command -v ip >/dev/null || ! command -v kill >/dev/null; then
    echo "==> [$(elapsed)] installing systemd, iproute2 and procps (for systemd-analyze verify)"
    apt-get -o DPkg::Lock::Timeout=600 update -qq && apt-get -o DPkg::Lock::Timeout=600 install -y -qq systemd iproute2 procps >/dev/null
fi

# A real Secret Service for the keyring tests (tests/it/secret_service.rs):
# each runs its own dbus-daemon session bus with GNOME Keyring, headless;
# secret-tool reads what imdsd stored, busctl (systemd) locks it.
if ! command -v gnome-keyring-daemon >/dev/null || ! command -v dbus-daemon >/dev/null || ! command -v secret-tool >/dev/null; then
    echo "==> [$(elapsed)] installing gnome-keyring, dbus-daemon and libsecret-tools (for the keyring tests)"
    apt-get -o DPkg::Lock::Timeout=600 update -qq && apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends gnome-keyring dbus-daemon libsecret-tools >/dev/null
fi

# The Go SDK v2 peer, built in GOPATH mode against Debian's packaged SDK
# (no Go module proxy is needed).
if ! command -v go >/dev/null || ! dpkg-query -W golang-github-aws-aws-sdk-go-v2-dev >/dev/null 2>&1; then
    echo "==> [$(elapsed)] installing Go and the AWS SDK for Go v2 (Debian packages)"
    apt-get -o DPkg::Lock::Timeout=600 update -qq && apt-get -o DPkg::Lock::Timeout=600 install -y -qq golang-go golang-github-aws-aws-sdk-go-v2-dev >/dev/null
fi

# Debian packaging (tests/it/deb.rs): dpkg-dev (dpkg-shlibdeps, for the
# package's Depends) and lintian.
if ! command -v lintian >/dev/null || ! command -v dpkg-shlibdeps >/dev/null; then
    echo "==> [$(elapsed)] installing lintian and dpkg-dev (for the Debian package test)"
    apt-get -o DPkg::Lock::Timeout=600 update -qq && apt-get -o DPkg::Lock::Timeout=600 install -y -qq lintian dpkg-dev >/dev/null
fi

if ! wait "$tools_pid"; then
    cat "$tools_log"
    echo "installing cargo-deny or cargo-deb failed" >&2
    exit 1
fi
cat "$tools_log"

# The Rust SDK peer is an example of this crate; `cargo test --all-targets`
# compiles examples only as test harnesses, so build the program itself.
echo "==> [$(elapsed)] cargo build --examples (the Rust SDK peer)"
cargo build --locked --examples

echo "==> [$(elapsed)] cargo deny check bans licenses (deny.toml)"
# Every crate in Cargo.lock, for every platform: cargo-deny reads them all,
# and a fresh machine has only those of this one.
cargo fetch --locked --quiet
cargo deny --offline --log-level error check bans licenses

echo "==> [$(elapsed)] cargo test"
cargo test --locked --all-targets

# A short run of the three fuzz targets that guard credentials (raw
# requests to both endpoints, IMDSv2 tokens), when the nightly toolchain is
# there: an unoptimized build with plain cargo (no cargo-fuzz needed), seeds
# only, 10 s each. All eight took over 5 minutes on a busy 2-core machine
# (docs/fuzzing.md); IMDSD_FUZZ_SMOKE_TARGETS="" runs every target.
if cargo +nightly --version >/dev/null 2>&1; then
    smoke_targets="${IMDSD_FUZZ_SMOKE_TARGETS-imds_http container_http imds_token}"
    echo "==> [$(elapsed)] fuzz smoke (scripts/fuzz.sh, ${IMDSD_FUZZ_SMOKE_SECONDS:-10} s per target)"
    smoke_corpus="$(mktemp -d)"
    # shellcheck disable=SC2086 # a list of target names
    FUZZ_PROFILE=dev FUZZ_CORPUS_DIR="$smoke_corpus" \
        scripts/fuzz.sh "${IMDSD_FUZZ_SMOKE_SECONDS:-10}" $smoke_targets
    rm -rf "$smoke_corpus"
else
    echo "==> [$(elapsed)] fuzz smoke skipped: no nightly toolchain (rustup toolchain install nightly runs it)"
fi
