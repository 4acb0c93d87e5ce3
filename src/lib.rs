//! imdsd: a credential daemon that keeps AWS STS credentials fresh and
//! serves them to unmodified SDKs over the EC2 instance metadata protocol.
//!
//! # Layout
//!
//! - [`config`]: the role file: schema, validation (pure), loading.
//! - [`sts`]: the STS client: awsQuery requests, SigV4, XML answers.
//! - [`creds`]: credentials, the refresh schedule (pure), the per-role
//!   snapshot readers use, and the one refresher task per role.
//! - [`imds`]: the IMDSv2 endpoint: routing, tokens and host checks (pure),
//!   response bodies, the hyper server.
//! - [`app`]: wires a config into running refreshers and listeners, and
//!   drains them in order.
//! - [`run`], [`cli`], [`logging`], [`shutdown`]: the binary's edge.
//! - [`clock`], [`environment`], [`secret`], [`state`]: small shared
//!   pieces: injected time, the environment as a value, redacted secret
//!   types, the state directory and token key.
//!
//! Data flows one way: a refresher calls STS, renders the answer once and
//! publishes an immutable snapshot; request handlers load the snapshot and
//! answer from it without ever waiting on STS.

pub mod admin;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod creds;
pub mod environment;
pub mod imds;
pub mod logging;
pub mod metrics;
pub mod profile;
pub mod run;
pub mod secret;
pub mod serve;
pub mod shutdown;
pub mod state;
pub mod sts;
pub mod systemd;
