//! Installing the process's log subscriber on stderr, in the format
//! [`super::format_for`] picks. I/O: tests/it/live/logs.rs runs the daemon
//! in each format.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use super::{Format, Journal, format_for};
use crate::environment::Environment;

/// Installs the subscriber: `IMDSD_LOG` level, the format [`format_for`]
/// picks, on stderr.
pub fn init() {
    let env = Environment::capture();
    let wanted = env.get("IMDSD_LOG").unwrap_or("info");
    let filter = EnvFilter::try_new(format!("{wanted},aws_sigv4=off"))
        .unwrap_or_else(|_| EnvFilter::new("info,aws_sigv4=off"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format_for(&env, stderr_identity()) {
        Format::Human => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        Format::Journal => builder.with_ansi(false).event_format(Journal::new()).init(),
        Format::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
    }
}

/// stderr's device and inode, as systemd writes them in JOURNAL_STREAM.
fn stderr_identity() -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    let stat = rustix::fs::fstat(std::io::stderr().as_fd()).ok()?;
    Some((stat.st_dev, stat.st_ino))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn stderr_identity_is_the_device_and_inode_of_fd_2() {
        // What systemd writes in JOURNAL_STREAM is compared against this.
        let meta = std::fs::metadata("/proc/self/fd/2").unwrap();
        assert_eq!(stderr_identity(), Some((meta.dev(), meta.ino())));
    }
}
