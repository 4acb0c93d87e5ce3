//! The real binary: `imdsd check`, `imdsd run` end to end, SIGTERM with a
//! request in flight, and no secret in any log line at trace level.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use imdsd::ManualClock;

use crate::fake_sts::{self, Answer, FakeSts};
use crate::process::{Live, Running};
use crate::util::{CONFIG, CREDS_PATH, eventually, request};

const BIN: &str = env!("CARGO_BIN_EXE_imdsd");

/// `imdsd check --config CONFIG`, with the example AWS profiles.
pub fn check(config: &Path) -> std::process::Output {
    let aws = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/aws");
    Command::new(BIN)
        .args(["check", "--config"])
        .arg(config)
        .env("AWS_CONFIG_FILE", aws.join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", aws.join("credentials"))
        .output()
        .unwrap()
}

#[test]
fn check_accepts_every_example_config() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = check(&path);
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 1, "no example configs found");
}

#[test]
fn check_prints_every_problem_with_line_and_column_and_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[[imds]]\nlisten = \"10.1.2.3:80\"\n\n[roles.dev]\nrole_arn = \"arn:aws:iam::1:role/x\"\nsource = \"env\"\nduration = \"13h\"\n",
    )
    .unwrap();
    let out = check(&path);
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let p = path.display();
    assert!(
        stderr.contains(&format!(
            "{p}:2:10: error: imds[0].listen: 10.1.2.3:80 is not a loopback"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{p}:5:12: error: roles.dev.role_arn")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{p}:7:12: error: roles.dev.duration")),
        "{stderr}"
    );
}

/// A wrong type no longer hides every other problem: schema problems
/// (wrong types, misspelt keys) and meaning problems (a bad ARN, unknown
/// roles) come out of one run, each at its line and column.
#[test]
fn check_reports_schema_and_meaning_problems_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.toml");
    let text = "\
[[imds]]
role = \"dve\"

[roles.dev]
role_arn = \"arn:aws:iam::123456789012:role/dev\"
source = \"env\"
duration = 3600

[roles.ops]
role_arn = \"arn:aws:iam::123456789012:role/ops\"
source = \"role:devv\"
sesion_name = \"ops\"

[roles.bad]
role_arn = \"not-an-arn\"
source = \"env\"
";
    std::fs::write(&path, text).unwrap();
    let out = check(&path);
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let p = path.display();
    for expected in [
        format!("{p}:2:8: error: imds[0].role: no role named `dve`; did you mean `dev`?"),
        format!(
            "{p}:7:12: error: roles.dev.duration: invalid type: integer `3600`, expected a string"
        ),
        format!(
            "{p}:9:8: error: roles.ops.source: no role named `devv`; did you mean `dev`?"
        ),
        format!(
            "{p}:12:1: error: unknown key `sesion_name` in [roles.ops]; did you mean `session_name`?"
        ),
        format!("{p}:15:12: error: roles.bad.role_arn"),
    ] {
        assert!(
            stderr.contains(&expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert_eq!(stderr.matches("error:").count(), 5, "{stderr}");
}

#[test]
fn check_resolves_the_profiles_roles_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profiles.toml");
    std::fs::write(
        &path,
        "[[imds]]\nrole = \"a\"\n[roles.a]\nprofile = \"work-ssso\"\n\
         [roles.b]\nrole_arn = \"arn:aws:iam::123456789012:role/b\"\nsource = \"profile:nowhere\"\n",
    )
    .unwrap();
    let out = check(&path);
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let p = path.display();
    assert!(
        stderr.contains(&format!(
            "{p}:4:11: error: roles.a.profile: profile `work-ssso` is not in the AWS config \
             or credentials file; did you mean `work-sso`?"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{p}:7:10: error: roles.b.source: profile `nowhere`"
        )),
        "{stderr}"
    );
}

/// With no `[sts] region` (nor AWS_REGION), the selected profile's region
/// signs the STS call and is what IMDS reports, as for the AWS CLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_selected_profiles_region_signs_and_is_reported() {
    let sts = FakeSts::start(ManualClock::starting_now()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".aws")).unwrap();
    std::fs::write(
        dir.path().join(".aws/config"),
        "[default]\nregion = us-east-1\n[profile eu]\nregion = eu-west-1\n",
    )
    .unwrap();
    let text = config_for(&sts).replace("region = \"us-east-1\"\n", "");
    assert!(!text.contains("region"));
    // Not on demand: the default on-demand address is a fixed port.
    let text = format!("{text}\n[profiles]\nserve = \"none\"\n");
    let config = crate::process::plain_file(dir.path(), &text);
    let daemon = Running::start_with(
        &config,
        &dir.path().join("state"),
        fake_sts::SECRET_KEY,
        &[
            ("HOME", dir.path().to_str().unwrap()),
            ("AWS_PROFILE", "eu"),
        ],
    );
    let addr = daemon.addr().await;
    let token = mint_token(addr).await;
    let region = request(
        addr,
        "GET",
        "/latest/meta-data/placement/region",
        &[("x-aws-ec2-metadata-token", &token)],
    )
    .await;
    assert_eq!(region.text(), "eu-west-1");
    daemon.log_line("fetched credentials").await;
    let seen = &sts.seen()[0];
    assert!(seen.signature_ok);
    assert_eq!(seen.region.as_deref(), Some("eu-west-1"));
}

#[test]
fn check_without_any_config_names_the_paths_tried() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("check")
        .env_remove("IMDSD_CONFIG")
        .env("XDG_CONFIG_HOME", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&dir.path().join("imdsd/imdsd.toml").display().to_string()),
        "{stderr}"
    );
    assert!(stderr.contains("examples/imdsd.toml"), "{stderr}");
}

#[test]
fn check_warns_about_short_sessions_but_accepts_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short.toml");
    let text = CONFIG
        .replace("{sts}", "https://sts.us-east-1.amazonaws.com")
        .replace("session_name = \"imdsd-test\"", "duration = \"20m\"");
    std::fs::write(&path, text).unwrap();
    let out = check(&path);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: roles.dev.duration"));
}

fn config_for(sts: &FakeSts) -> String {
    CONFIG.replace("{sts}", &sts.endpoint())
}

async fn mint_token(addr: SocketAddr) -> String {
    let r = request(
        addr,
        "PUT",
        "/latest/api/token",
        &[("X-aws-ec2-metadata-token-ttl-seconds", "600")],
    )
    .await;
    assert_eq!(r.status, 200);
    r.text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_in_flight_request_finish_and_exits_0() {
    let Live {
        sts,
        daemon,
        dir: _dir,
        ..
    } = Live::start(|sts| {
        // The first fetch takes a while, so a credentials request waits on it.
        sts.script([Answer::Slow(Duration::from_millis(250))]);
        config_for(sts)
    })
    .await;
    let addr = daemon.addr().await;
    let token = mint_token(addr).await;
    eventually(Duration::from_secs(5), || async {
        (sts.calls() == 1).then_some(())
    })
    .await
    .unwrap();
    let in_flight = tokio::spawn(async move {
        request(
            addr,
            "GET",
            CREDS_PATH,
            &[("x-aws-ec2-metadata-token", &token)],
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    daemon.signal("-TERM");
    let response = in_flight.await.unwrap();
    assert_eq!(response.status, 200, "{response:?}");
    let (status, log) = daemon.wait().await;
    assert_eq!(status.code(), Some(0), "{log:#?}");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed"
    );
}

/// Runs the daemon at trace level through success, failures and client
/// errors, and checks that no secret ever reaches the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_any_log_line() {
    no_secret_in_the_log_format("human").await;
}

/// The same run with `IMDSD_LOG_FORMAT=json`: fields are serialized
/// differently there, so a redaction in one format proves nothing for the
/// other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_any_json_log_line() {
    no_secret_in_the_log_format("json").await;
}

async fn no_secret_in_the_log_format(format: &str) {
    let sts = FakeSts::start(ManualClock::starting_now()).await;
    sts.script([
        Answer::Error { status: 403, code: "AccessDenied" },
        Answer::Body("<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIAX</AccessKeyId><SecretAccessKey>LEAKED-IN-ERROR</SecretAccessKey></Credentials></AssumeRoleResult></AssumeRoleResponse>"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("imdsd.toml");
    std::fs::write(&path, config_for(&sts)).unwrap();
    let state = dir.path().join("state");
    let env = [("IMDSD_LOG_FORMAT", format)];
    let daemon = Running::start_with(&path, &state, fake_sts::SECRET_KEY, &env);
    let addr = daemon.addr().await;
    let token = mint_token(addr).await;
    let r = request(addr, "GET", CREDS_PATH, &[(TOKEN, &token)]).await;
    assert_eq!(r.status, 503, "first fetch was denied");
    // Permanent errors retry after a minute or more: restart the daemon to
    // reach the next scripted answers.
    daemon.signal("-TERM");
    let (_, mut log) = daemon.wait().await;
    let daemon = Running::start_with(&path, &state, fake_sts::SECRET_KEY, &env);
    let addr = daemon.addr().await;
    let token2 = mint_token(addr).await;
    let r = request(addr, "GET", CREDS_PATH, &[(TOKEN, &token2)]).await;
    assert_eq!(r.status, 503, "malformed answer: {r:?}");
    // The next answer is good: wait for the retry.
    let body = eventually(Duration::from_secs(10), || async {
        let r = request(addr, "GET", CREDS_PATH, &[(TOKEN, &token2)]).await;
        (r.status == 200).then(|| r.json())
    })
    .await
    .expect("credentials after the retry");
    let _ = request(addr, "GET", CREDS_PATH, &[(TOKEN, "forged")]).await;
    daemon.signal("-TERM");
    let (status, log2) = daemon.wait().await;
    assert_eq!(status.code(), Some(0));
    log.extend(log2);
    assert_trace_captured(&log, format);
    let secrets = [
        fake_sts::SECRET_KEY,
        body["SecretAccessKey"].as_str().unwrap(),
        body["Token"].as_str().unwrap(),
        "LEAKED-IN-ERROR",
        &token,
        &token2,
    ];
    assert_no_secret(&log, &secrets);
}

const TOKEN: &str = "x-aws-ec2-metadata-token";

/// The log really is at trace level, in `format`: a line only trace
/// writes ("connection ended") is there, and a fetch was logged.
fn assert_trace_captured(log: &[String], format: &str) {
    assert!(
        log.iter().any(|l| l.contains("connection ended")),
        "no trace-level line in the log: {log:#?}"
    );
    assert!(
        log.iter().any(|l| l.contains("fetched credentials")),
        "no fetch in the log: {log:#?}"
    );
    if format == "json" {
        for line in log {
            serde_json::from_str::<serde_json::Value>(line)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        }
    }
}

/// No line holds a secret, nor the first 16 characters of one (a secret
/// cut short, e.g. by a `{:.16}` or a truncated debug dump, still leaks).
fn assert_no_secret(log: &[String], secrets: &[&str]) {
    for secret in secrets {
        let prefix = &secret[..secret.len().min(16)];
        for line in log {
            assert!(
                !line.contains(prefix),
                "secret {secret:?} (or its first 16 characters) in log line: {line}"
            );
        }
    }
}

/// Session credentials sign chained calls (`x-amz-security-token`) and MFA
/// codes travel in requests and over the control socket: none of them may
/// reach the trace log either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_logs_with_chained_and_mfa_roles() {
    use std::os::unix::fs::PermissionsExt;
    let sts = FakeSts::start(ManualClock::starting_now()).await;
    let dir = tempfile::tempdir().unwrap();
    let totp = dir.path().join("totp");
    std::fs::write(&totp, "#!/bin/sh\necho 864213\n").unwrap();
    std::fs::set_permissions(&totp, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mfa = "mfa_serial = \"arn:aws:iam::123456789012:mfa/tester\"";
    let config = format!(
        "{}\n[roles.base]\ntype = \"session_token\"\nsource = \"env\"\n{mfa}\nmfa_command = \"{}\"\n\
         [roles.admin]\nrole_arn = \"arn:aws:iam::123456789012:role/admin\"\nsource = \"role:base\"\n\
         [roles.manual]\ntype = \"session_token\"\nsource = \"env\"\n{mfa}\n",
        CONFIG.replace("{sts}", &sts.endpoint()).replace(
            "listen = \"127.0.0.1:0\"",
            "listen = \"127.0.0.1:0\"\nrole = \"dev\""
        ),
        totp.display()
    );
    let path = dir.path().join("imdsd.toml");
    std::fs::write(&path, config).unwrap();
    let state = dir.path().join("state");
    let daemon = Running::start(&path, &state, fake_sts::SECRET_KEY);
    daemon.log_line("role=admin").await;
    daemon.log_line("waiting for an MFA code").await;
    let out = Command::new(BIN)
        .args(["mfa", "manual", "975319", "--socket"])
        .arg(state.join("control.sock"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually(Duration::from_secs(10), || async {
        daemon
            .lines()
            .iter()
            .any(|l| l.contains("fetched credentials") && l.contains("role=manual"))
            .then_some(())
    })
    .await
    .expect("the manual-MFA role fetched");
    // One connection, for a line only the trace level writes.
    mint_token(daemon.addr().await).await;
    daemon.signal("-TERM");
    let (status, log) = daemon.wait().await;
    assert_eq!(status.code(), Some(0));
    assert!(
        sts.seen()
            .iter()
            .any(|s| s.param("Action") == Some("AssumeRole") && s.signature_ok)
    );
    assert_trace_captured(&log, "human");
    assert_no_secret(&log, &[fake_sts::SECRET_KEY]);
    for line in &log {
        for secret in ["fake-secret-", "fake-session-token-", "864213", "975319"] {
            assert!(
                !line.contains(secret),
                "secret {secret:?} in log line: {line}"
            );
        }
    }
}
