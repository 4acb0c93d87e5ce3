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
    #[error("{what} `{program}` did not finish within {}", humantime::format_duration(*timeout))]
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
    let words = shlex::split(command_line).filter(|w| !w.is_empty());
    let Some((program, args)) = words.as_deref().and_then(<[String]>::split_first) else {
        return Err(CommandError::Parse {
            what,
            program: command_line.into(),
        });
    };
    let program = program.clone();
    let mut child = tokio::process::Command::new(&program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| CommandError::Spawn {
            what,
            program: program.clone(),
            source,
        })?;
    if let Some(stderr) = child.stderr.take() {
        let (role, prog) = (role.to_string(), program.clone());
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::warn!(role = %role, command = %prog, "{what} stderr: {}", line.chars().take(500).collect::<String>());
            }
        });
    }
    let Some(mut stdout) = child.stdout.take() else {
        return Err(CommandError::Failed {
            what,
            program,
            status: "no stdout".into(),
        });
    };
    let collect = async {
        let mut out = Vec::new();
        let read = (&mut stdout).take(MAX_STDOUT).read_to_end(&mut out).await;
        let status = child.wait().await;
        (read.map(|_| out), status)
    };
    let (out, status) = tokio::time::timeout(timeout, collect).await.map_err(|_| {
        CommandError::Timeout {
            what,
            program: program.clone(),
            timeout,
        }
    })?;
    let out = zeroize::Zeroizing::new(out.unwrap_or_default());
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => {
            return Err(CommandError::Failed {
                what,
                program,
                status: s.to_string(),
            });
        }
        Err(e) => {
            return Err(CommandError::Failed {
                what,
                program,
                status: e.to_string(),
            });
        }
    }
    let text = String::from_utf8_lossy(&out).trim().to_string();
    if text.is_empty() {
        return Err(CommandError::Empty { what, program });
    }
    Ok(Secret::new(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_trimmed_stdout() {
        let out = run(
            "mfa_command",
            "r",
            "printf ' 123456\\n'",
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(out.expose(), "123456");
    }

    #[tokio::test]
    async fn failures_are_named_without_their_output() {
        let err = run(
            "mfa_command",
            "r",
            "sh -c 'echo 654321; exit 3'",
            Duration::from_secs(5),
        )
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
