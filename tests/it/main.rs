//! Integration tests: one binary, one module per area.

// Test helpers are `pub` for use across modules of this one binary.
#![allow(unreachable_pub)]

mod fake_sts; // the STS stand-in, checking SigV4
mod util; // TestDaemon, raw HTTP client

mod binary; // the real binary: check, run, signals, secrets in logs
mod imds_contract; // sdk-contract.md 1.1-1.5, over real HTTP
mod peers;
mod refresh; // schedule, STS faults, backoff, last-good serving, suspend // moto, botocore and the AWS CLI as independent peers
