//! The client side of the control socket: one request, one answer.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use super::{Request, Response};
use crate::control::endpoints::Endpoints;
use crate::control::refresh::Report;
use crate::control::status::Status;
use crate::secret::Secret;

/// Why the daemon could not be asked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    #[error("no imdsd is running (no control socket at {}): start it with `imdsd run` or \
        `systemctl --user start imdsd` (or name its socket with --socket)",
        tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    NotFound { tried: Vec<PathBuf> },
    /// Nothing listens on the socket (a daemon that died), or it is gone.
    #[error("no imdsd is running ({} {}): start it with `imdsd run` or \
        `systemctl --user start imdsd`", path.display(),
        if *.gone { "does not exist" } else { "is left over: nothing answers there" })]
    NotRunning { path: PathBuf, gone: bool },
    #[error("cannot talk to imdsd at {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("imdsd at {} answered something unexpected: {reason}", path.display())]
    Protocol { path: PathBuf, reason: String },
    #[error("the daemon refused: {0}")]
    Refused(String),
}

/// The first of `candidates` that exists.
pub(crate) fn find(candidates: Vec<PathBuf>) -> Result<PathBuf, ClientError> {
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .ok_or(ClientError::NotFound { tried: candidates })
}

/// Sends one request and reads the answer. For a privileged request (an
/// MFA code, the status) the socket must belong to us or root (unless we
/// are root): a code is not handed to someone else's listener.
pub(crate) fn ask(path: &Path, request: &Request) -> Result<Response, ClientError> {
    let io = |source| ClientError::Io {
        path: path.to_path_buf(),
        source,
    };
    if request.privileged() {
        check_owner(path)?;
    }
    let mut stream = UnixStream::connect(path).map_err(|source| {
        use std::io::ErrorKind::{ConnectionRefused, NotFound};
        match source.kind() {
            NotFound | ConnectionRefused => ClientError::NotRunning {
                path: path.to_path_buf(),
                gone: source.kind() == NotFound,
            },
            _ => io(source),
        }
    })?;
    stream
        .set_read_timeout(Some(request.answer_within()))
        .map_err(io)?;
    let mut line = serde_json::to_string(request).expect("requests serialize");
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(io)?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).map_err(io)?;
    serde_json::from_str(&answer).map_err(|e| ClientError::Protocol {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn check_owner(path: &Path) -> Result<(), ClientError> {
    let meta = std::fs::metadata(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => ClientError::NotRunning {
            path: path.to_path_buf(),
            gone: true,
        },
        _ => ClientError::Io {
            path: path.to_path_buf(),
            source,
        },
    })?;
    let owner = std::os::unix::fs::MetadataExt::uid(&meta);
    let me = crate::state::current_uid();
    // Root (`sudo imdsd status`) may talk to the system service's socket,
    // which belongs to its (dynamic) service user.
    if owner != 0 && owner != me && me != 0 {
        return Err(ClientError::Refused(format!(
            "{} belongs to uid {owner}, not to you or root; not talking to it",
            path.display()
        )));
    }
    Ok(())
}

/// The daemon's status.
pub(crate) fn status(path: &Path) -> Result<Status, ClientError> {
    match ask(path, &Request::Status)? {
        Response::Status(s) => Ok(s),
        other => Err(not_expected(path, other)),
    }
}

/// Hands an MFA code to `role`; the daemon's acknowledgement.
pub(crate) fn mfa(path: &Path, role: &str, code: Secret) -> Result<String, ClientError> {
    let request = Request::Mfa {
        role: role.into(),
        code,
    };
    done(path, ask(path, &request)?)
}

/// Forces a fetch for `roles` (every role when empty); each outcome.
pub(crate) fn refresh(path: &Path, roles: &[String]) -> Result<Vec<Report>, ClientError> {
    let request = Request::Refresh {
        roles: roles.to_vec(),
    };
    match ask(path, &request)? {
        Response::Refreshed { roles } => Ok(roles),
        other => Err(not_expected(path, other)),
    }
}

/// Starts on-demand role `role` if it is not running and waits for its
/// first fetch; the daemon's acknowledgement.
pub(crate) fn activate(path: &Path, role: &str) -> Result<String, ClientError> {
    let request = Request::Activate { role: role.into() };
    done(path, ask(path, &request)?)
}

/// Where every role is served.
pub(crate) fn endpoints(path: &Path) -> Result<Endpoints, ClientError> {
    match ask(path, &Request::Endpoints)? {
        Response::Endpoints(e) => Ok(e),
        other => Err(not_expected(path, other)),
    }
}

/// Whether the daemon is healthy (and, with `ready`, ready).
pub(crate) fn health(path: &Path, ready: bool) -> Result<String, ClientError> {
    done(path, ask(path, &Request::Health { ready })?)
}

fn done(path: &Path, response: Response) -> Result<String, ClientError> {
    match response {
        Response::Done { message } => Ok(message),
        other => Err(not_expected(path, other)),
    }
}

/// An error answer as a refusal; anything else as a protocol error.
fn not_expected(path: &Path, response: Response) -> ClientError {
    let got = match response {
        Response::Error { message } => return ClientError::Refused(message),
        Response::Status(_) => "a status report",
        Response::Endpoints(_) => "a list of endpoints",
        Response::Refreshed { .. } => "a refresh report",
        Response::Done { .. } => "an acknowledgement",
    };
    ClientError::Protocol {
        path: path.to_path_buf(),
        reason: format!("got {got}"),
    }
}
