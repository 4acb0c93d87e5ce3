//! The credential lifecycle: fetching, scheduling, storing, refreshing.
//!
//! - [`schedule`]: pure decisions: when to refresh, how long to back off.
//! - [`store`]: the per-role snapshot that request handlers read.
//! - [`refresher`]: the one task per role that calls STS and publishes;
//!   [`streak`]: which log line a refresh outcome deserves (pure).
//! - [`fetch`]: one fetch, for every STS flow; [`queries`]: the STS
//!   requests (pure); [`command`]: helper commands (MFA, SAML, process).
//! - [`source`]: where the keys that sign the STS call come from.

pub(crate) mod command;
pub(crate) mod fetch;
pub(crate) mod queries;
pub(crate) mod refresher;
pub(crate) mod schedule;
pub(crate) mod source;
pub(crate) mod store;
pub(crate) mod streak;
