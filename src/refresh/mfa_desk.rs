//! Where a fetch that needs an MFA code handed in with `imdsd mfa` meets
//! the code.
//!
//! A fetch runs inside its role's refresher task. The fetch says here what
//! it is waiting for and takes the code; the refresher hands codes in (they
//! reach it as [`super::slot::Request::MfaCode`]) and, seeing the fetch
//! wait, publishes that to readers. The desk never touches the role's
//! snapshot: the refresher stays its only writer.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::secret::Secret;

/// One role's MFA desk, shared by its fetcher and refresher.
#[derive(Debug)]
pub(crate) struct MfaDesk {
    state: watch::Sender<Desk>,
}

#[derive(Debug, Default)]
struct Desk {
    /// What the fetch waits for (shown to readers), while it waits.
    waiting: Option<String>,
    /// The newest code handed in and not yet taken, and when it arrived.
    code: Option<(Secret, Instant)>,
}

impl Default for MfaDesk {
    fn default() -> Self {
        MfaDesk {
            state: watch::Sender::new(Desk::default()),
        }
    }
}

impl MfaDesk {
    /// Keeps `code` (handed in `at`) for the next fetch that needs one,
    /// replacing an older one. Refresher only.
    pub(crate) fn hand_in(&self, code: Secret, at: Instant) {
        self.state.send_modify(|d| d.code = Some((code, at)));
    }

    /// What the fetch is waiting for now, if it waits.
    pub(crate) fn waiting(&self) -> Option<String> {
        self.state.borrow().waiting.clone()
    }

    /// Wakes on every change from now on (a code handed in, the fetch
    /// starting or ending a wait).
    pub(crate) fn changes(&self) -> DeskChanges {
        DeskChanges(self.state.subscribe())
    }

    /// Says `waiting` until a code no older than `fresh` is handed in, then
    /// takes it. A stale code is dropped. Fetcher only.
    pub(crate) async fn take(&self, waiting: String, fresh: Duration) -> Secret {
        let mut changes = self.state.subscribe();
        self.state.send_modify(|d| d.waiting = Some(waiting));
        loop {
            let mut taken = None;
            // Taking is no news to anyone: the fetch is still waiting.
            self.state.send_if_modified(|d| {
                taken = d.code.take();
                false
            });
            if let Some((code, at)) = taken
                && at.elapsed() <= fresh
            {
                self.state.send_modify(|d| d.waiting = None);
                return code;
            }
            // The sender lives in `self`: `changed` cannot fail.
            let _ = changes.changed().await;
        }
    }
}

/// Changes to an [`MfaDesk`], for the refresher to look at what the fetch
/// waits for.
pub(crate) struct DeskChanges(watch::Receiver<Desk>);

impl DeskChanges {
    /// Resolves on the next change. Cancel-safe.
    pub(crate) async fn next(&mut self) {
        if self.0.changed().await.is_err() {
            // The desk is gone (so is its fetch): nothing will change.
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_fetch_waits_for_a_fresh_code_and_says_so_meanwhile() {
        let desk = std::sync::Arc::new(MfaDesk::default());
        let fresh = Duration::from_secs(120);
        desk.hand_in(Secret::new("111111"), Instant::now());
        tokio::time::advance(Duration::from_secs(121)).await;
        let mut changes = desk.changes();
        let fetch = {
            let desk = desk.clone();
            tokio::spawn(async move { desk.take("an MFA code".into(), fresh).await })
        };
        changes.next().await;
        assert_eq!(
            desk.waiting().as_deref(),
            Some("an MFA code"),
            "a stale code"
        );
        desk.hand_in(Secret::new("222222"), Instant::now());
        assert_eq!(fetch.await.unwrap().expose(), "222222");
        assert_eq!(desk.waiting(), None);
    }
}
