//! Running the helper commands a role may name: `mfa_command`,
//! `saml_assertion_command` and `credential_process`.
//!
//! The command line is split like a shell would (`shlex`, as botocore does
//! for `credential_process`) and run without a shell, with a timeout. Its
//! stdout is the secret and stays in a wiped buffer; its stderr goes to the
//! log, line by line, since helpers print prompts and progress there.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStderr};
use zeroize::Zeroizing;

use crate::secret::Secret;

/// Largest stdout accepted (a SAML assertion is the biggest: ~100 KB).
const MAX_STDOUT: u64 = 256 * 1024;

/// Why a helper command gave no usable output.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CommandError {
    #[error("{what} `{program}` cannot be parsed as a command line")]
    Parse { what: &'static str, program: String },
    #[error("{what} `{program}` could not be started: {source}")]
    Spawn {
        what: &'static str,
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} `{program}` did not finish within {}", crate::clock::human(*timeout))]
    Timeout {
        what: &'static str,
        program: String,
        timeout: Duration,
    },
    #[error("{what} `{program}` failed ({status}); its stderr is in the log")]
    Failed {
        what: &'static str,
        program: String,
        status: String,
    },
    #[error("{what} `{program}` printed nothing")]
    Empty { what: &'static str, program: String },
}

/// Runs `command_line` and returns its stdout, trimmed. `what` names the
/// helper in errors and logs ("mfa_command", ...); `role` too.
pub(crate) async fn run(
    what: &'static str,
    role: &str,
    command_line: &str,
    timeout: Duration,
) -> Result<Secret, CommandError> {
    let (program, args) = split(what, command_line)?;
    let mut child = spawn(what, &program, &args)?;
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(log_stderr(what, role.to_string(), program.clone(), stderr));
    }
    let (out, status) = tokio::time::timeout(timeout, finish(&mut child))
        .await
        .map_err(|_| CommandError::Timeout {
            what,
            program: program.clone(),
            timeout,
        })?;
    let failed = |status: String| CommandError::Failed {
        what,
        program: program.clone(),
        status,
    };
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => return Err(failed(s.to_string())),
        Err(e) => return Err(failed(e.to_string())),
    }
    let text = String::from_utf8_lossy(&out).trim().to_string();
    if text.is_empty() {
        return Err(CommandError::Empty { what, program });
    }
    Ok(Secret::new(text))
}

/// The program and its arguments, split like a shell would.
fn split(
    what: &'static str,
    command_line: &str,
) -> Result<(String, Vec<String>), CommandError> {
    let words = shlex::split(command_line).filter(|w| !w.is_empty());
    match words.as_deref().and_then(<[String]>::split_first) {
        Some((program, args)) => Ok((program.clone(), args.to_vec())),
        None => Err(CommandError::Parse {
            what,
            program: command_line.into(),
        }),
    }
}

fn spawn(
    what: &'static str,
    program: &str,
    args: &[String],
) -> Result<Child, CommandError> {
    tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| CommandError::Spawn {
            what,
            program: program.into(),
            source,
        })
}

/// Helpers print prompts and progress on stderr: into the log, line by
/// line, each cut short.
async fn log_stderr(
    what: &'static str,
    role: String,
    program: String,
    stderr: ChildStderr,
) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line: String = line.chars().take(500).collect();
        tracing::warn!(role = %role, command = %program, "{what} stderr: {line}");
    }
}

/// Reads stdout (bounded, into a wiped buffer) and waits for the exit.
async fn finish(
    child: &mut Child,
) -> (
    Zeroizing<Vec<u8>>,
    std::io::Result<std::process::ExitStatus>,
) {
    let mut out = Zeroizing::new(Vec::new());
    if let Some(stdout) = child.stdout.take() {
        let _ = stdout.take(MAX_STDOUT).read_to_end(&mut out).await;
    }
    (out, child.wait().await)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `command_line` run as role `r`'s `mfa_command`, with time to spare.
    async fn mfa_command(command_line: &str) -> Result<Secret, CommandError> {
        run("mfa_command", "r", command_line, Duration::from_secs(5)).await
    }

    #[tokio::test]
    async fn returns_trimmed_stdout() {
        let out = mfa_command("printf ' 123456\\n'").await.unwrap();
        assert_eq!(out.expose(), "123456");
    }

    #[tokio::test]
    async fn failures_are_named_without_their_output() {
        let err = mfa_command("sh -c 'echo 654321; exit 3'")
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("exit status: 3"), "{msg}");
        assert!(!msg.contains("654321"), "stdout is a secret: {msg}");
        let err = run("x", "r", "/nonexistent/helper", Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, CommandError::Spawn { .. }));
        let err = run("x", "r", "true", Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, CommandError::Empty { .. }));
        let err = run("x", "r", "'unterminated", Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, CommandError::Parse { .. }));
    }

    #[tokio::test]
    async fn hung_commands_time_out_and_are_killed() {
        let err = run("x", "r", "sleep 30", Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(err, CommandError::Timeout { .. }));
    }
}
