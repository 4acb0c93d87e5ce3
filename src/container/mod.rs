//! The container-credentials endpoint (ECS/EKS style) that SDKs read
//! through `AWS_CONTAINER_CREDENTIALS_FULL_URI` and
//! `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`: any number of roles on one
//! port, one path and one token per role.
//!
//! - [`route`]: method + path → what to answer (pure).
//! - [`tokens`]: each role's token (derived, checked in constant time;
//!   pure).
//! - [`token_files`]: writing a token to its file, atomically.
//! - [`endpoint`]: one listener's request handling.
//!
//! The wire contract is ../shared/docs/sdk-contract.md, section 1.6.

pub(crate) mod endpoint;
pub(crate) mod route;
pub(crate) mod token_files;
pub(crate) mod tokens;
