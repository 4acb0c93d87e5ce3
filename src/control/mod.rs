//! The local control socket: `imdsd status` (and later commands) talk to
//! the running daemon over a Unix socket.
//!
//! - [`status`]: the status report, built from plain values (pure).
//! - [`endpoints`]: where each role is served, for `imdsd exec` and
//!   friends (pure).
//! - [`refresh`]: what `imdsd refresh` came to, in words (pure).
//! - [`socket`]: the socket server in the daemon (peer UID checked per
//!   request).
//! - [`client`]: the client commands' side.
//!
//! The protocol is one JSON line each way. Anyone who can reach the socket
//! may ask where roles are served and whether the daemon is healthy (no
//! secret, nothing the config file does not say); status, MFA codes and
//! forced refreshes are for the daemon's own user and root only.

pub(crate) mod client;
pub(crate) mod endpoints;
pub(crate) mod refresh;
pub(crate) mod socket;
pub(crate) mod status;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::environment::Environment;
use crate::secret::Secret;

pub(crate) const SOCKET_NAME: &str = "control.sock";

/// A request from a client.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "command", rename_all = "snake_case")]
pub(crate) enum Request {
    Status,
    /// Hands an MFA code to a role waiting for one.
    Mfa {
        role: String,
        code: Secret,
    },
    /// Where each role is served, and the region.
    Endpoints,
    /// Whether the daemon answers and, with `ready`, whether every served
    /// role has usable credentials.
    Health {
        ready: bool,
    },
    /// Fetches now for `roles` (every role when empty) and reports how
    /// each fetch ended.
    Refresh {
        roles: Vec<String>,
    },
    /// Starts an on-demand role (an AWS profile served by name) if it is
    /// not running, and waits for its first fetch's outcome.
    Activate {
        role: String,
    },
}

impl Request {
    /// Whether only the daemon's own user and root may ask this.
    pub(crate) fn privileged(&self) -> bool {
        matches!(
            self,
            Request::Status
                | Request::Mfa { .. }
                | Request::Refresh { .. }
                | Request::Activate { .. }
        )
    }

    /// How long a client waits for the answer.
    pub(crate) fn answer_within(&self) -> std::time::Duration {
        match self {
            Request::Refresh { .. } | Request::Activate { .. } => {
                refresh::WAIT + std::time::Duration::from_secs(10)
            }
            _ => std::time::Duration::from_secs(10),
        }
    }
}

/// The daemon's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub(crate) enum Response {
    Status(status::Status),
    Endpoints(endpoints::Endpoints),
    Refreshed { roles: Vec<refresh::Report> },
    Done { message: String },
    Error { message: String },
}

/// Where the daemon puts its socket: `[control] socket`, else
/// `$IMDSD_CONTROL_SOCKET`, else `$RUNTIME_DIRECTORY/control.sock`
/// (systemd's `RuntimeDirectory=`), else
/// `$XDG_RUNTIME_DIR/imdsd/control.sock`, else `/run/imdsd/control.sock`
/// for root, else the (private) state directory: containers and `su`
/// sessions have no runtime directory, and `status`, `mfa` and `refresh`
/// must work there too.
pub(crate) fn daemon_socket(
    configured: Option<&Path>,
    env: &Environment,
    uid: u32,
    state_dir: &Path,
) -> PathBuf {
    if let Some(p) = configured {
        return p.to_path_buf();
    }
    if let Some(p) = env.get("IMDSD_CONTROL_SOCKET") {
        return PathBuf::from(p);
    }
    if let Some(dirs) = env.get("RUNTIME_DIRECTORY") {
        return Path::new(dirs.split(':').next().unwrap_or(dirs)).join(SOCKET_NAME);
    }
    if let Some(xdg) = env.get("XDG_RUNTIME_DIR") {
        return Path::new(xdg).join("imdsd").join(SOCKET_NAME);
    }
    if uid == 0 {
        return PathBuf::from("/run/imdsd").join(SOCKET_NAME);
    }
    state_dir.join(SOCKET_NAME)
}

/// Where a client looks, in order: `$IMDSD_CONTROL_SOCKET`, the user's
/// runtime directory (a `systemctl --user` daemon), the user's state
/// directory (a daemon without a runtime directory), then the system
/// service's `/run/imdsd`.
pub(crate) fn client_candidates(
    env: &Environment,
    state_dir: Option<&Path>,
) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = env.get("IMDSD_CONTROL_SOCKET") {
        out.push(PathBuf::from(p));
    }
    if let Some(xdg) = env.get("XDG_RUNTIME_DIR") {
        out.push(Path::new(xdg).join("imdsd").join(SOCKET_NAME));
    }
    out.extend(state_dir.map(|dir| dir.join(SOCKET_NAME)));
    out.push(PathBuf::from("/run/imdsd").join(SOCKET_NAME));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_socket_precedence() {
        let state = Path::new("/home/u/.local/state/imdsd");
        let env = Environment::from_pairs([
            ("RUNTIME_DIRECTORY", "/run/imdsd"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
        ]);
        let at = |configured: Option<&str>, env: &Environment, uid| {
            daemon_socket(configured.map(Path::new), env, uid, state)
        };
        assert_eq!(at(Some("/x.sock"), &env, 1000), Path::new("/x.sock"));
        assert_eq!(at(None, &env, 1000), Path::new("/run/imdsd/control.sock"));
        let env = Environment::from_pairs([("XDG_RUNTIME_DIR", "/run/user/1000")]);
        assert_eq!(
            at(None, &env, 1000),
            Path::new("/run/user/1000/imdsd/control.sock")
        );
        let bare = Environment::default();
        assert_eq!(at(None, &bare, 0), Path::new("/run/imdsd/control.sock"));
        assert_eq!(
            at(None, &bare, 1000),
            Path::new("/home/u/.local/state/imdsd/control.sock"),
            "no runtime directory: the private state directory"
        );
    }

    #[test]
    fn clients_look_where_daemons_put_sockets() {
        let state = Path::new("/home/u/.local/state/imdsd");
        let env = Environment::from_pairs([("XDG_RUNTIME_DIR", "/run/user/1000")]);
        assert_eq!(
            client_candidates(&env, Some(state)),
            [
                PathBuf::from("/run/user/1000/imdsd/control.sock"),
                state.join("control.sock"),
                PathBuf::from("/run/imdsd/control.sock"),
            ]
        );
        let env = Environment::from_pairs([("IMDSD_CONTROL_SOCKET", "/x.sock")]);
        assert_eq!(client_candidates(&env, None)[0], Path::new("/x.sock"));
    }

    #[test]
    fn mfa_requests_carry_the_code_but_never_print_it() {
        let r = Request::Mfa {
            role: "dev".into(),
            code: Secret::new("123456"),
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"command":"mfa","role":"dev","code":"123456"}"#
        );
        assert!(!format!("{r:?}").contains("123456"));
    }

    #[test]
    fn protocol_is_tagged_json() {
        assert_eq!(
            serde_json::to_string(&Request::Status).unwrap(),
            r#"{"command":"status"}"#
        );
        let e = Response::Error {
            message: "no".into(),
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"result":"error","message":"no"}"#
        );
    }
}
