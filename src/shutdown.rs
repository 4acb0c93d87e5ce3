//! Signals: SIGTERM/SIGINT stop the daemon, SIGHUP reloads it.
//!
//! The first stop signal cancels the token the daemon drains on; a second
//! one means "now": the process exits at once. SIGHUP goes down the same
//! path as a config file change.

use futures_util::StreamExt;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_tokio::Signals;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Exit code after a second signal cut the drain short.
pub(crate) const EXIT_INTERRUPTED: i32 = 130;

/// Routes signals: stop signals cancel `stop`, SIGHUP asks for a reload.
pub(crate) fn install(
    stop: CancellationToken,
    reload: mpsc::Sender<()>,
) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    tokio::spawn(async move {
        let mut stopping = false;
        while let Some(sig) = signals.next().await {
            match sig {
                SIGHUP => {
                    tracing::info!("SIGHUP: reloading the config");
                    let _ = reload.try_send(());
                }
                _ if !stopping => {
                    stopping = true;
                    tracing::info!(
                        signal = sig,
                        "shutting down: draining requests (send the signal again to exit at once)"
                    );
                    stop.cancel();
                }
                _ => {
                    tracing::warn!(signal = sig, "second signal: exiting now");
                    std::process::exit(EXIT_INTERRUPTED);
                }
            }
        }
    });
    Ok(())
}
