//! imdsd: a credential daemon that keeps AWS STS credentials fresh and
//! serves them to unmodified SDKs over the EC2 instance metadata protocol.
//!
//! # Layout
//!
//! - [`config`]: the role file: schema, validation (pure), loading,
//!   watching, and the zero-config start.
//! - [`profile`]: AWS profiles (`~/.aws/config`), resolved as the CLI does,
//!   and IAM Identity Center.
//! - [`sts`]: the STS client: awsQuery requests, SigV4, XML answers.
//! - [`creds`]: credentials; the refresh schedule (pure); one fetch for
//!   every flow; the per-role snapshot readers use; the one refresher task
//!   per role.
//! - [`imds`]: the IMDSv2 endpoint: routing, tokens and host checks (pure),
//!   response bodies, request handling.
//! - [`serve`]: the hyper accept loop shared by the IMDS and admin
//!   listeners, with its limits and drain.
//! - [`app`]: wires a config into running refreshers and listeners, applies
//!   reloads without a gap, drains in order.
//! - [`control`]: the local control socket (`imdsd status`, `imdsd mfa`).
//! - [`admin`], [`metrics`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`systemd`]: readiness, watchdog and socket activation.
//! - [`run`], [`cli`], [`logging`], [`shutdown`]: the binary's edge.
//! - [`clock`], [`environment`], [`secret`], [`state`]: small shared
//!   pieces: injected time, the environment as a value, redacted secret
//!   types, the state directory and token key.
//!
//! Data flows one way: a refresher calls STS, renders the answer once and
//! publishes an immutable snapshot; request handlers load the snapshot and
//! answer from it without ever waiting on STS. See ARCHITECTURE.md.

pub mod addr;
pub mod admin;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod credentials;
pub mod creds;
pub mod environment;
pub mod imds;
pub mod logging;
pub mod metrics;
pub mod profile;
pub mod read;
pub mod run;
pub mod secret;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod sts;
pub mod systemd;
pub mod view;
