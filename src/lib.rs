//! imdsd: a credential daemon that keeps AWS STS credentials fresh and
//! serves them to unmodified SDKs over the EC2 instance metadata protocol.
//!
//! # Layout
//!
//! - [`config`]: the role file: schema, validation (pure), loading,
//!   watching, and the zero-config start.
//! - [`profile`]: AWS profiles (`~/.aws/config`), resolved as the CLI does,
//!   and IAM Identity Center.
//! - [`sts`]: the STS client: awsQuery requests, SigV4, XML answers;
//!   [`iam`]: the IAM calls `imdsd rotate` makes, signed the same way.
//! - [`keystore`]: long-term keys in the desktop's Secret Service (GNOME
//!   Keyring, KWallet, KeePassXC) over D-Bus: `imdsd import`, the daemon's
//!   reads, `imdsd rotate`.
//! - [`credentials`]: one set of AWS credentials and the documents it is
//!   written out as (pure).
//! - [`refresh`]: the credential lifecycle: the refresh schedule (pure); one
//!   fetch for every flow; the per-role snapshot readers use; the one
//!   refresher task per role, its snapshot's only writer, which everyone
//!   else sends requests (poke, refresh, MFA code).
//! - [`server`]: the HTTP/1.1 server every listener runs on, with its
//!   limits, drain, `Host` guard and peer lookup.
//! - [`imds`]: the IMDSv2 endpoint: routing and tokens (pure), response
//!   bodies, request handling.
//! - [`container`]: the container-credentials endpoint: many roles on one
//!   listener, each at `/role/NAME` behind its own derived token (routing,
//!   tokens, token files, request handling).
//! - [`endpoint`]: the scaffold both run in: the one credentials sequence
//!   (servable check, audit, 200/503, counters) and the server's handler.
//! - [`app`]: wires a config into running refreshers and listeners, applies
//!   reloads without a gap, drains in order.
//! - [`control`]: the local control socket (`imdsd status`, `imdsd mfa`).
//! - [`admin`], [`metrics`], [`audit`]: `/healthz`, `/readyz`, `/metrics`;
//!   the audit trail of who got which credentials.
//! - [`systemd`]: readiness, watchdog and socket activation.
//! - [`run`], [`cli`], [`logging`], [`shutdown`]: the binary's edge;
//!   [`manual`]: the man page and completions generated from [`cli`].
//! - [`clock`], [`environment`], [`secret`], [`state`], [`read`], [`addr`],
//!   [`view`], [`watch`]: small shared pieces: injected time, the
//!   environment as a value, redacted secret types, the state directory and
//!   token key, bounded reads, loopback checks, what status and health look
//!   at, watching files for changes.
//! - `fuzzing` (only under `cfg(fuzzing)`): the entry points the fuzz
//!   targets in `fuzz/` call; see docs/fuzzing.md.
//!
//! Data flows one way: a refresher calls STS, renders the answer once and
//! publishes an immutable snapshot; request handlers load the snapshot and
//! answer from it, never calling STS (a request that finds nothing
//! servable while a fetch is in flight waits for it, at most 400 ms). See
//! ARCHITECTURE.md.
//!
//! Everything is crate-private; what the binary and the integration tests
//! use is re-exported here.

mod addr;
mod admin;
mod app;
mod audit;
mod cli;
mod clock;
mod config;
mod container;
mod control;
mod credentials;
mod endpoint;
mod environment;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
mod iam;
mod imds;
mod keystore;
mod logging;
mod manual;
mod metrics;
mod profile;
mod read;
mod refresh;
mod run;
mod secret;
mod server;
mod shutdown;
mod state;
mod sts;
mod systemd;
mod view;
mod watch;

pub use app::{Daemon, Options, ReloadSummary};
pub use cli::{Cli, CompletionShell};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::load::parse as parse_config;
pub use environment::Environment;
pub use logging::init as init_logging;
pub use manual::{completions, man_pages};
pub use refresh::slot::RoleSlot;
pub use run::main;
pub use secret::Secret;
pub use state::current_uid;
