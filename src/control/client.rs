//! `imdsd status`: ask the running daemon over its control socket.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Request, Response};
use crate::control::status::Status;
use crate::secret::Secret;

/// Why the daemon could not be asked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    #[error("no control socket found (tried {}); is imdsd running? Pass --socket to name it",
        tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    NotFound { tried: Vec<PathBuf> },
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

/// Sends one request and reads the answer. The socket must belong to us
/// or root (unless we are root): an MFA code is not handed to someone
/// else's listener.
pub(crate) fn ask(path: &Path, request: &Request) -> Result<Response, ClientError> {
    let io = |source| ClientError::Io {
        path: path.to_path_buf(),
        source,
    };
    let owner =
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(path).map_err(io)?);
    let me = crate::state::current_uid();
    // Root (`sudo imdsd status`) may talk to the system service's socket,
    // which belongs to its (dynamic) service user.
    if owner != 0 && owner != me && me != 0 {
        return Err(ClientError::Refused(format!(
            "{} belongs to uid {owner}, not to you or root; not talking to it",
            path.display()
        )));
    }
    let mut stream = UnixStream::connect(path).map_err(io)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
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

/// The daemon's status.
pub(crate) fn status(path: &Path) -> Result<Status, ClientError> {
    match ask(path, &Request::Status)? {
        Response::Status(s) => Ok(s),
        Response::Error { message } => Err(ClientError::Refused(message)),
        Response::Done { .. } => unexpected(path, "an acknowledgement"),
    }
}

/// Hands an MFA code to `role`; the daemon's acknowledgement.
pub(crate) fn mfa(path: &Path, role: &str, code: Secret) -> Result<String, ClientError> {
    match ask(
        path,
        &Request::Mfa {
            role: role.into(),
            code,
        },
    )? {
        Response::Done { message } => Ok(message),
        Response::Error { message } => Err(ClientError::Refused(message)),
        Response::Status(_) => unexpected(path, "a status report"),
    }
}

fn unexpected<T>(path: &Path, what: &str) -> Result<T, ClientError> {
    Err(ClientError::Protocol {
        path: path.to_path_buf(),
        reason: format!("got {what}"),
    })
}
