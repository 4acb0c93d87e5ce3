//! The credential lifecycle: fetching, scheduling, storing, refreshing.
//!
//! - [`schedule`]: pure decisions: when to refresh, how long to back off.
//! - [`store`]: the per-role snapshot that request handlers read.
//! - [`refresher`]: the one task per role that calls STS and publishes.
//! - [`fetch`]: one fetch, for every STS flow; [`queries`]: the STS
//!   requests (pure); [`command`]: helper commands (MFA, SAML, process).
//! - [`source`]: where the keys that sign the STS call come from.

pub mod command;
pub mod fetch;
pub mod queries;
pub mod refresher;
pub mod schedule;
pub mod source;
pub mod store;
