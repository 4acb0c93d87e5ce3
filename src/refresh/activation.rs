//! On-demand roles' lifecycle requests: what the endpoints, the control
//! socket, the refreshers and the profile watch ask of the daemon's main
//! loop, which alone starts and stops roles (`app::on_demand`).
//!
//! A request is a message, not a call, so that nobody but the main loop
//! ever holds the daemon, and an endpoint that asks can bound its wait.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::slot::RoleSlot;

/// What the main loop is asked to do.
#[derive(Debug)]
pub(crate) enum Event {
    /// Start on-demand role `role` (nothing to do when it runs); the
    /// answer is its slot, or why there is none.
    Activate {
        role: String,
        reply: oneshot::Sender<Result<Arc<RoleSlot>, String>>,
    },
    /// This on-demand role's refresher stopped: nobody took its
    /// credentials for `[profiles] idle_after`.
    Parked(Arc<RoleSlot>),
    /// The AWS profile files changed: which profiles exist is read again.
    ProfilesChanged,
}

/// The sending side, cloned to whoever may ask.
#[derive(Debug, Clone)]
pub(crate) struct Activator(mpsc::UnboundedSender<Event>);

impl Activator {
    pub(crate) fn channel() -> (Activator, mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Activator(tx), rx)
    }

    /// Asks for `role` to run; its slot once it does. The caller bounds
    /// the wait (the main loop may be busy with a reload).
    pub(crate) async fn activate(&self, role: &str) -> Result<Arc<RoleSlot>, String> {
        let (reply, answer) = oneshot::channel();
        let event = Event::Activate {
            role: role.to_string(),
            reply,
        };
        if self.0.send(event).is_err() {
            return Err("the daemon is stopping".into());
        }
        answer
            .await
            .unwrap_or_else(|_| Err("the daemon is stopping".into()))
    }

    pub(crate) fn parked(&self, slot: Arc<RoleSlot>) {
        let _ = self.0.send(Event::Parked(slot));
    }

    pub(crate) fn profiles_changed(&self) {
        let _ = self.0.send(Event::ProfilesChanged);
    }
}
