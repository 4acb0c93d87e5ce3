//! Log setup: human-readable lines on stderr (journald adds timestamps).
//!
//! The level comes from `IMDSD_LOG` (default `info`), in `tracing`'s
//! env-filter syntax. The signing library's own tracing is always off: it
//! traces canonical requests, which older releases printed with the session
//! token in them. No secret ever reaches our own log calls: credential
//! types print redacted (see `secret`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init() {
    let wanted = std::env::var("IMDSD_LOG").unwrap_or_else(|_| "info".into());
    let filter = EnvFilter::try_new(format!("{wanted},aws_sigv4=off"))
        .unwrap_or_else(|_| EnvFilter::new("info,aws_sigv4=off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
