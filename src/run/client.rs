//! The commands about the running daemon, over its control socket:
//! `imdsd status`, `imdsd mfa`, `imdsd refresh` and `imdsd health`.

use std::path::PathBuf;

use super::{RunError, print};
use crate::control::{self, client::ClientError, status};
use crate::environment::Environment;
use crate::refresh::queries::valid_mfa_code;
use crate::secret::Secret;

/// `--socket`, else the first candidate that exists.
pub(super) fn control_socket(
    socket: Option<PathBuf>,
    env: &Environment,
) -> Result<PathBuf, ClientError> {
    match socket {
        Some(path) => Ok(path),
        None => {
            let state = crate::state::state_dir(env, crate::state::current_uid()).ok();
            control::client::find(control::client_candidates(env, state.as_deref()))
        }
    }
}

/// `imdsd mfa ROLE [CODE]`: the code from the command line, else asked
/// for on a terminal, else read from stdin.
pub(super) fn mfa(
    socket: Option<PathBuf>,
    role: &str,
    code: Option<String>,
    env: &Environment,
) -> Result<(), RunError> {
    let code = match code {
        Some(code) => Secret::new(code),
        None => read_code(role)?,
    };
    if !valid_mfa_code(code.expose()) {
        return Err(RunError::Usage("an MFA code is six digits".into()));
    }
    let path = control_socket(socket, env)?;
    print(&format!("{}\n", control::client::mfa(&path, role, code)?));
    Ok(())
}

fn read_code(role: &str) -> Result<Secret, RunError> {
    use std::io::{IsTerminal, Write};
    if std::io::stdin().is_terminal() {
        eprint!("MFA code for role `{role}`: ");
        let _ = std::io::stderr().flush();
    }
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
    let mut status = control::client::status(&path)?;
    status.warnings = super::shadow_warnings(env);
    if json {
        print(&(serde_json::to_string_pretty(&status).unwrap_or_default() + "\n"));
    } else {
        print(&status::render_text(&status));
    }
    Ok(())
}

/// `imdsd refresh [ROLE...]`: a line per role; exit 1 if any did not
/// refresh.
pub(super) fn refresh(
    socket: Option<PathBuf>,
    roles: &[String],
    env: &Environment,
) -> Result<(), RunError> {
    let path = control_socket(socket, env)?;
    let reports = control::client::refresh(&path, roles)?;
    let width = reports.iter().map(|r| r.role.len()).max().unwrap_or(0);
    let mut text = String::new();
    for r in &reports {
        text += &format!("{:width$}  {}\n", r.role, r.message);
    }
    print(&text);
    let failed = reports.iter().filter(|r| !r.ok).count();
    match failed {
        0 => Ok(()),
        n => Err(RunError::Role(format!(
            "{n} of {} role(s) did not refresh",
            reports.len()
        ))),
    }
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
