//! The per-role commands against the running daemon: `imdsd env`,
//! `imdsd exec`, `imdsd credential-process`, `imdsd health`.

use std::process::{Command, Output};

use super::*;

/// `dev` and `down` on a container listener, `ops` on IMDS only; `down`'s
/// helper always fails.
fn roles_config(sts: &FakeSts) -> String {
    format!(
        r#"[[imds]]
listen = "127.0.0.1:0"
role = "ops"

[[container]]
listen = "127.0.0.1:0"
roles = ["dev", "down"]
token_dir = "{{dir}}/tokens"

[sts]
endpoint = "{}"
timeout = "2s"

[roles.dev]
role_arn = "arn:aws:iam::123456789012:role/dev"
source = "env"

[roles.ops]
role_arn = "arn:aws:iam::123456789012:role/ops"
source = "env"

[roles.down]
type = "process"
credential_process = "sh -c 'echo no credentials here >&2; exit 3'"
"#,
        sts.endpoint()
    )
}

pub(super) async fn started() -> Live {
    let live = Live::start(roles_config).await;
    eventually(Duration::from_secs(10), || async {
        let n = live
            .daemon
            .lines()
            .iter()
            .filter(|l| l.contains("fetched credentials") || l.contains("refresh failed"))
            .count();
        (n >= 3).then_some(())
    })
    .await
    .expect("every role's first fetch");
    live
}

/// Runs `imdsd COMMAND --socket SOCK ARGS...` with a clean environment
/// plus `env`.
pub(super) fn imdsd(live: &Live, args: &[&str], env: &[(&str, &str)]) -> Output {
    let (command, rest) = args.split_first().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg(command)
        .arg("--socket")
        .arg(live.socket())
        .args(rest);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", live.dir.path())
        .envs(env.iter().copied());
    cmd.output().unwrap()
}

pub(super) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(super) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_prints_the_container_variables_and_no_secret() {
    let live = started().await;
    let container = live.daemon.addr_n(1).await;
    let out = imdsd(&live, &["env", "dev"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let token_file = live.dir.path().join("tokens/dev.token");
    for line in [
        format!(
            "export AWS_CONTAINER_CREDENTIALS_FULL_URI='http://{container}/role/dev'"
        ),
        format!(
            "export AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE='{}'",
            token_file.display()
        ),
        "export AWS_REGION='us-east-1'".to_string(),
        "unset AWS_ACCESS_KEY_ID".to_string(),
        "unset AWS_PROFILE".to_string(),
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert!(!text.contains(&token), "the token itself is never printed");

    let out = imdsd(&live, &["env", "ops", "--format", "json"], &[]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let imds = live.daemon.addr().await;
    assert_eq!(
        json["AWS_EC2_METADATA_SERVICE_ENDPOINT"],
        format!("http://{imds}")
    );
    assert!(json["AWS_CONTAINER_CREDENTIALS_FULL_URI"].is_null());
    let out = imdsd(&live, &["env", "dev", "--format", "fish"], &[]);
    assert!(stdout(&out).contains("set -gx AWS_REGION 'us-east-1'"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_runs_the_command_with_the_role_and_its_exit_code() {
    let live = started().await;
    let container = live.daemon.addr_n(1).await;
    let script = "echo uri=$AWS_CONTAINER_CREDENTIALS_FULL_URI; \
                  echo key=${AWS_ACCESS_KEY_ID:-none} profile=${AWS_PROFILE:-none}; \
                  curl -s -H \"Authorization: $(cat $AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)\" \
                  $AWS_CONTAINER_CREDENTIALS_FULL_URI; exit 7";
    let out = imdsd(
        &live,
        &["exec", "dev", "--", "sh", "-c", script],
        &[("AWS_ACCESS_KEY_ID", "AKIAOLD"), ("AWS_PROFILE", "other")],
    );
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("uri=http://{container}/role/dev")),
        "{text}"
    );
    assert!(text.contains("key=none profile=none"), "{text}");
    assert!(text.contains("\"AccessKeyId\":\"ASIAFAKE"), "{text}");

    let out = imdsd(&live, &["exec", "dev", "--", "/nonexistent/command"], &[]);
    assert_eq!(out.status.code(), Some(127));
    assert!(stderr(&out).contains("cannot run `/nonexistent/command`"));
}

/// `exec` becomes the command: a signal sent to it reaches the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_hands_signals_to_the_command() {
    use std::os::unix::process::ExitStatusExt;
    let live = started().await;
    let mut child = Command::new(BIN)
        .args(["exec", "dev", "--socket"])
        .arg(live.socket())
        .args(["--", "sleep", "30"])
        .spawn()
        .unwrap();
    // Once exec'd, the process is `sleep`.
    let pid = child.id();
    eventually(Duration::from_secs(5), || async {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        (comm.trim() == "sleep").then_some(())
    })
    .await
    .expect("the command replaced imdsd");
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(15));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_process_prints_version_1_json_or_the_daemons_503() {
    let live = started().await;
    let out = imdsd(&live, &["credential-process", "dev"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["Version"], 1);
    assert!(
        json["AccessKeyId"]
            .as_str()
            .unwrap()
            .starts_with("ASIAFAKE")
    );
    assert!(json["SessionToken"].as_str().unwrap().contains("-role-dev"));
    assert!(json["Expiration"].as_str().unwrap().ends_with('Z'));
    // Through the IMDS endpoint for an IMDS-only role.
    let out = imdsd(&live, &["credential-process", "ops"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["SessionToken"].as_str().unwrap().contains("-role-ops"));
    // A role STS refuses: the daemon's reason, and nothing on stdout.
    let out = imdsd(&live, &["credential-process", "down"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(err.starts_with("imdsd: role `down`:"), "{err}");
    assert!(err.contains("HTTP 503: CredentialProcessFailed"), "{err}");
}

/// Container tokens are secrets like keys: whatever the commands and a
/// client with a wrong token did, no log line holds one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_container_token_reaches_the_log() {
    let live = started().await;
    // Token files are written before the listeners announce themselves; the
    // first fetches, which `started` waits for, are logged earlier.
    let container = live.daemon.addr_n(1).await;
    let token =
        std::fs::read_to_string(live.dir.path().join("tokens/dev.token")).unwrap();
    for auth in [token.as_str(), "wrong-token-value"] {
        request(container, "GET", "/role/dev", &[("Authorization", auth)]).await;
    }
    for args in [
        &["env", "dev"][..],
        &["credential-process", "dev"],
        &["status"],
    ] {
        let out = imdsd(&live, args, &[]);
        assert!(!stdout(&out).contains(&token) && !stderr(&out).contains(&token));
    }
    live.daemon.signal("-HUP");
    live.daemon.log_line("SIGHUP").await;
    let lines = live.daemon.lines();
    assert!(
        lines.iter().any(|l| l.contains("container credentials")),
        "trace log captured"
    );
    for line in &lines {
        assert!(!line.contains(&token), "token in log line: {line}");
    }
}

/// `imdsd status --json | true`: the reader goes away; no panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_on_stdout_is_not_a_panic() {
    let live = started().await;
    let mut child = Command::new(BIN)
        .args(["status", "--json", "--socket"])
        .arg(live.socket())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Gone before the command writes (it first asks the daemon).
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    // Not killed by SIGPIPE (no code), not a panic (101), not a failure:
    // the status was fetched; only its reader was gone.
    assert_eq!(out.status.code(), Some(0), "{:?}: {err}", out.status);
    assert!(err.is_empty(), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness() {
    let live = started().await;
    let out = imdsd(&live, &["health"], &[]);
    assert_eq!(
        (out.status.code(), stdout(&out)),
        (Some(0), "ok\n".to_string())
    );
    let out = imdsd(&live, &["health", "--ready"], &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "role `down` has nothing: not ready"
    );
    assert!(
        stderr(&out).contains("not ready: no usable credentials for down"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_errors_for_no_daemon_no_role_and_an_unreadable_token() {
    let live = started().await;
    let out = imdsd(&live, &["env", "nope"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out)
            .contains("no role or AWS profile named `nope` (roles: dev, down, ops;"),
        "{}",
        stderr(&out)
    );
    let out = Command::new(BIN)
        .args([
            "exec",
            "dev",
            "--socket",
            "/nonexistent/imdsd.sock",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "no imdsd is running (/nonexistent/imdsd.sock does not exist): start it with \
             `imdsd run` or `systemctl --user start imdsd`"
        ),
        "{}",
        stderr(&out)
    );
    // Another user may ask where roles are, but not read a 0600 token.
    live.open_to_others();
    let out = crate::process::as_nobody(&["exec", "dev", "--socket"])
        .arg(live.socket())
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("cannot read role `dev`'s token file"), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    let out = crate::process::as_nobody(&["status", "--socket"])
        .arg(live.socket())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("may not ask this daemon for its status")
    );
}
