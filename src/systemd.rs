//! systemd integration: readiness notifications, the watchdog, and sockets
//! passed by socket activation.
//!
//! Every call is a silent no-op when the daemon was not started by systemd
//! (`NOTIFY_SOCKET`, `WATCHDOG_USEC`, `LISTEN_FDS` unset). READY=1 is only
//! sent once listeners are bound and every role's first fetch finished.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

use crate::app::Inherited;

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// Startup (or a reload) is complete.
pub(crate) fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload starts now; `READY=1` must follow.
pub(crate) fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

pub(crate) fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// Pings the watchdog at half its interval until `stop`, when systemd set
/// `WatchdogSec=`.
pub(crate) fn spawn_watchdog(stop: CancellationToken) {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let period = (interval / 2).max(Duration::from_millis(100));
    tracing::debug!(period = %humantime::format_duration(period), "systemd watchdog enabled");
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = tick.tick() => send(&[NotifyState::Watchdog]),
                _ = stop.cancelled() => return,
            }
        }
    });
}

/// TCP listening sockets passed with `LISTEN_FDS`/`LISTEN_PID`.
pub(crate) fn inherited_sockets() -> Inherited {
    let mut fds = listenfd::ListenFd::from_env();
    let mut sockets = Vec::new();
    for i in 0..fds.len() {
        match fds.take_tcp_listener(i) {
            Ok(Some(socket)) => sockets.push(socket),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(index = i, error = %e, "ignoring a socket passed by systemd that is not a TCP listener")
            }
        }
    }
    Inherited::new(sockets)
}
