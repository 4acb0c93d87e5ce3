//! The commands about the running daemon, over its control socket:
//! `imdsd status`, `imdsd mfa` and `imdsd health`.

use std::path::PathBuf;

use super::{RunError, print};
use crate::control::{self, client::ClientError, status};
use crate::creds::queries::valid_mfa_code;
use crate::environment::Environment;
use crate::secret::Secret;

/// `--socket`, else the first candidate that exists.
pub(super) fn control_socket(
    socket: Option<PathBuf>,
    env: &Environment,
) -> Result<PathBuf, ClientError> {
    match socket {
        Some(path) => Ok(path),
        None => control::client::find(control::client_candidates(env)),
    }
}

/// `imdsd mfa ROLE [CODE]`: the code from the command line, else stdin.
pub(super) fn mfa(
    socket: Option<PathBuf>,
    role: &str,
    code: Option<String>,
    env: &Environment,
) -> Result<(), RunError> {
    let code = match code {
        Some(code) => Secret::new(code),
        None => read_code()?,
    };
    if !valid_mfa_code(code.expose()) {
        return Err(RunError::Usage("an MFA code is six digits".into()));
    }
    let path = control_socket(socket, env)?;
    print(&format!("{}\n", control::client::mfa(&path, role, code)?));
    Ok(())
}

fn read_code() -> Result<Secret, RunError> {
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| RunError::Usage(format!("cannot read the code from stdin: {e}")))?;
    Ok(Secret::new(line.trim()))
}

/// `imdsd status [--json]`.
pub(super) fn status(
    socket: Option<PathBuf>,
    json: bool,
    env: &Environment,
) -> Result<(), RunError> {
    let path = control_socket(socket, env)?;
    let status = control::client::status(&path)?;
    if json {
        print(
            &(serde_json::to_string_pretty(&status).unwrap_or_default()
                + "
"),
        );
    } else {
        print(&status::render_text(&status));
    }
    Ok(())
}

/// `imdsd health [--ready]`: the daemon's answer on stdout, exit 0; or the
/// reason, exit 1.
pub(super) fn health(
    socket: Option<PathBuf>,
    ready: bool,
    env: &Environment,
) -> Result<(), RunError> {
    let path = control_socket(socket, env)?;
    print(&format!("{}\n", control::client::health(&path, ready)?));
    Ok(())
}
