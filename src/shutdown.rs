//! Turning SIGTERM and SIGINT into one cancellation.
//!
//! The first signal cancels the token the daemon drains on; a second one
//! means "now": the process exits at once.

use futures_util::StreamExt;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_tokio::Signals;
use tokio_util::sync::CancellationToken;

/// Exit code after a second signal cut the drain short.
pub const EXIT_INTERRUPTED: i32 = 130;

/// Listens for SIGTERM/SIGINT; cancels `token` on the first.
pub fn install(token: CancellationToken) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    tokio::spawn(async move {
        if let Some(sig) = signals.next().await {
            tracing::info!(
                signal = sig,
                "shutting down: draining requests (send the signal again to exit at once)"
            );
            token.cancel();
        }
        if let Some(sig) = signals.next().await {
            tracing::warn!(signal = sig, "second signal: exiting now");
            std::process::exit(EXIT_INTERRUPTED);
        }
    });
    Ok(())
}
