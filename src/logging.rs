//! Log setup: human-readable lines on stderr (journald adds timestamps).
//!
//! The level comes from `IMDSD_LOG` (default `info`), in `tracing`'s
//! env-filter syntax. No secret ever reaches a log call: credential types
//! print redacted (see `secret`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter =
        EnvFilter::try_from_env("IMDSD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
