//! The credential lifecycle: fetching, scheduling, storing, refreshing.
//!
//! - [`schedule`]: pure decisions: when to refresh, how long to back off.
//! - [`store`]: the per-role snapshot that request handlers read.
//! - [`slot`]: the role's slot: its snapshot, the requests anyone may send
//!   its refresher (poke, refresh, MFA code), the one waiting primitive
//!   readers share, and the one writer the refresher holds.
//! - [`refresher`]: the one task per role that calls STS, applies the
//!   requests and publishes; [`streak`]: which log line a refresh outcome
//!   deserves (pure); [`mfa_desk`]: where a fetch waiting for an MFA code
//!   meets the code the refresher hands in.
//! - [`fetch`]: one fetch, for every STS flow; [`queries`]: the STS
//!   requests (pure); [`command`]: helper commands (MFA, SAML, process).
//! - [`source`]: where the keys that sign the STS call come from.
//! - [`directory`]: the one list of running roles, by name.
//! - [`activation`]: asking the daemon's main loop to start an on-demand
//!   role, telling it one parked, or that the profile files changed.

pub(crate) mod activation;
pub(crate) mod command;
pub(crate) mod directory;
pub(crate) mod fetch;
pub(crate) mod mfa_desk;
pub(crate) mod queries;
pub(crate) mod refresher;
pub(crate) mod schedule;
pub(crate) mod slot;
pub(crate) mod source;
pub(crate) mod store;
pub(crate) mod streak;
