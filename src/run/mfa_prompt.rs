//! MFA at the terminal for the per-role commands (`exec`, `env`,
//! `credential-process`, `login`): when the role is waiting for an MFA
//! code, ask for it on the controlling terminal (`/dev/tty`, so a
//! `credential_process` run by the AWS CLI, whose stdin and stdout are
//! pipes, can prompt too), hand it to the daemon, and wait for the role's
//! fetch to end. Without a terminal, say how to hand the code in.

use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Duration;

use super::RunError;
use crate::control;
use crate::refresh::queries::valid_mfa_code;
use crate::secret::Secret;

/// How long to wait for the fetch the code unblocks.
const FETCH_WAIT: Duration = Duration::from_secs(30);
/// How often to look while waiting.
const POLL: Duration = Duration::from_millis(100);

/// Makes sure `role` is not stuck waiting for an MFA code, asking for one
/// on the terminal when it is. Roles this user may not see the status of
/// (another user's daemon) are left alone: their endpoint's 503 says why.
pub(super) fn ensure_not_waiting(path: &Path, role: &str) -> Result<(), RunError> {
    let Some(serial) = waiting_for(path, role) else {
        return Ok(());
    };
    let Ok(tty) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
    else {
        return Err(RunError::Role(format!(
            "role `{role}` is waiting for an MFA code ({serial}) and there is no terminal \
             to ask on: hand it one with `imdsd mfa {role}`"
        )));
    };
    let code = ask(&tty, &serial)?;
    control::client::mfa(path, role, code)?;
    wait_for_fetch(path, role)
}

/// The MFA device `role` is waiting for a code of, if it is.
fn waiting_for(path: &Path, role: &str) -> Option<String> {
    let status = control::client::status(path).ok()?;
    let role = status.roles.into_iter().find(|r| r.name == role)?;
    role.waiting_for
}

/// Asks for the code on the terminal until it is six digits (three tries).
fn ask(tty: &std::fs::File, serial: &str) -> Result<Secret, RunError> {
    let mut reader = std::io::BufReader::new(tty);
    for _ in 0..3 {
        let mut out = tty;
        let _ = write!(out, "MFA code for {serial}: ").and_then(|()| out.flush());
        let mut line = zeroize::Zeroizing::new(String::new());
        let read = reader.read_line(&mut line).map_err(|e| {
            RunError::Role(format!("cannot read the MFA code from the terminal: {e}"))
        })?;
        if read == 0 {
            break;
        }
        let code = Secret::new(line.trim());
        if valid_mfa_code(code.expose()) {
            return Ok(code);
        }
        let _ = writeln!(out, "an MFA code is six digits");
    }
    Err(RunError::Usage("no MFA code given".into()))
}

/// Waits (bounded) until `role` is no longer waiting or fetching.
fn wait_for_fetch(path: &Path, role: &str) -> Result<(), RunError> {
    let deadline = std::time::Instant::now() + FETCH_WAIT;
    while std::time::Instant::now() < deadline {
        let status = control::client::status(path)?;
        let settled = status
            .roles
            .iter()
            .find(|r| r.name == role)
            .is_none_or(|r| {
                !matches!(r.state.as_str(), "waiting" | "refreshing" | "pending")
            });
        if settled {
            return Ok(());
        }
        std::thread::sleep(POLL);
    }
    Err(RunError::Role(format!(
        "role `{role}` was still fetching {}s after its MFA code was handed in; \
         `imdsd status` says how it is going",
        FETCH_WAIT.as_secs()
    )))
}
