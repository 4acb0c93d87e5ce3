//! The EC2 instance metadata endpoint (IMDSv2) that SDKs read.
//!
//! - [`route`]: method + path → what to answer (pure).
//! - [`token`]: stateless session tokens (pure).
//! - [`render`]: exact response bodies (pure).
//! - [`endpoint`]: one listener's request handling.
//!
//! The wire contract is ../shared/docs/sdk-contract.md, sections 1.1-1.5.

pub(crate) mod endpoint;
pub(crate) mod render;
pub(crate) mod route;
pub(crate) mod token;
