//! Integration tests: one binary, one module per area.
//!
//! - `fairness`: idle connections make room, per-peer shares, 429s.
//! - `fake_sts`: the STS stand-in, checking SigV4.
//! - `framing`: request bodies are never parsed as requests (smuggling).
//! - `util`: `TestDaemon`, a raw HTTP client.
//! - `imds_contract`: sdk-contract.md 1.1-1.5 over real HTTP.
//! - `import`: `imdsd import --to systemd-creds` with the real systemd-creds.
//! - `keyring`: `imdsd import` into a real GNOME Keyring, the daemon
//!   serving imported profiles, a locked or absent store (issue 21);
//!   `secret_service`: that keyring on a private D-Bus session.
//! - `refresh`: schedule, STS faults, backoff, last-good serving, suspend.
//! - `container`: the container-credentials endpoint (sdk-contract.md 1.6).
//! - `flows`: every STS flow and credential source (issue 3).
//! - `reload`: reload semantics in process (kept roles, renames).
//! - `on_demand`: AWS profiles served on demand, in process: nothing before
//!   use, started by a request, parked when idle (hand-moved clock).
//! - `binary`: the real binary: check, run, signals, secrets in logs.
//! - `live`: the real binary live: reloads, SIGHUP, systemd notify and
//!   sockets, status, metrics, signals (one file per area).
//! - `deb`: the Debian package: contents, metadata, the unpacked binary
//!   and units, lintian.
//! - `kubernetes`: examples/kubernetes and the Dockerfile, checked offline.
//! - `netns`: network namespaces (a pod) for tests that need fixed addresses.
//! - `layout`: the module layering has no cycle.
//! - `manual`: man page and completions in `dist/` match the command line;
//!   `--version`.
//! - `process`: running the real binary as a child process.
//! - `pod`: the sidecar in a network namespace with real SDKs (needs root).
//! - `peers`: moto, botocore, the AWS CLI and the JS SDK as independent peers.
//! - `rotate`: `imdsd rotate` against moto's IAM with authentication on.
//! - `rust_sdk`: the AWS SDK for Rust's IMDS providers as a peer.
//! - `sdk_matrix`: botocore, the AWS CLI, the JS, Rust and Go SDKs through
//!   IMDS, the container endpoint and `credential_process`; writes the
//!   README's compatibility table.
//! - `setup`: `imdsd setup --user` in a scratch HOME with a fake systemctl.
//! - `systemd_units`: `systemd-analyze verify` on the shipped units.

// Test helpers are `pub` for use across modules of this one binary.
#![allow(unreachable_pub)]

mod binary;
mod container;
mod deb;
mod fairness;
mod fake_sts;
mod flows;
mod framing;
mod imds_contract;
mod import;
mod keyring;
mod kubernetes;
mod layout;
mod live;
mod manual;
mod netns;
mod on_demand;
mod peers;
mod pod;
mod process;
mod refresh;
mod reload;
mod rotate;
mod rust_sdk;
mod sdk_matrix;
mod secret_service;
mod setup;
mod systemd_units;
mod util;
