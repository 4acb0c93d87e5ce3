//! Running with no config file at all. The zero-config start listens on
//! the default 127.0.0.1:16925, so the test runs it in a network namespace
//! of its own (with moto as STS there): it cannot collide with an imdsd
//! already running on the machine.

use super::*;
use crate::netns::{Pod, STS_PORT, Sts};
use std::process::Command;

/// `curl ARGS` inside the pod; its stdout.
fn curl(pod: &Pod, args: &[&str]) -> String {
    let out = pod.exec("curl", args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `imdsd exec --socket SOCKET ARGS...` in the pod, with `home` as HOME.
fn imdsd_exec(
    pod: &Pod,
    socket: &std::path::Path,
    home: &std::path::Path,
    args: &[&str],
) -> std::process::Output {
    let mut all = vec!["exec", "--socket", socket.to_str().unwrap()];
    all.extend(args);
    pod.exec(BIN, &all).env("HOME", home).output().unwrap()
}

/// An IMDSv2 session token from the pod's IMDS listener at `base`.
fn imds_token(pod: &Pod, base: &str) -> String {
    let ttl = format!("{TTL}: 60");
    curl(
        pod,
        &["-s", "-X", "PUT", "-H", &ttl, &format!("{base}/api/token")],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_config_file_the_default_profile_is_served() {
    let pod = Pod::create();
    let _sts = Sts::start(&pod);
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/config"),
        "[default]\nregion = us-east-1\n",
    )
    .unwrap();
    std::fs::write(
        home.path().join(".aws/credentials"),
        "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = moto-takes-any\n",
    )
    .unwrap();
    let home_str = home.path().to_str().unwrap();
    let empty = home.path().join("no-config-here");
    let sts = format!("http://127.0.0.1:{STS_PORT}");
    let cmd = pod.exec(BIN, &["run"]);
    let env = [
        ("HOME", home_str),
        ("XDG_CONFIG_HOME", empty.to_str().unwrap()),
        ("AWS_ENDPOINT_URL_STS", &sts),
        ("AWS_ACCESS_KEY_ID", ""),
        ("AWS_SECRET_ACCESS_KEY", ""),
    ];
    let daemon = Running::spawn(cmd, &home.path().join("state"), "", &env);
    let first = daemon.log_line("no config file").await;
    assert!(
        daemon.lines()[0].contains("no config file: serving AWS profile `default`"),
        "{:#?}",
        daemon.lines()
    );
    assert!(
        first.contains("AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:16925"),
        "{first}"
    );
    // moto may take a few seconds to start: the first fetch retries.
    eventually(Duration::from_secs(40), || async {
        daemon
            .lines()
            .iter()
            .any(|l| l.contains("fetched credentials"))
            .then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("{:#?}", daemon.lines()));
    let (role, json) = served_default(&pod);
    assert_eq!(role, "default");
    assert_eq!(json["Code"], "Success");
    assert!(
        json["Token"].as_str().is_some_and(|t| !t.is_empty()),
        "session credentials"
    );
    assert!(
        daemon
            .lines()
            .iter()
            .any(|l| l.contains("fetched credentials") && l.contains("role=default")),
        "long-term keys became a session: {:#?}",
        daemon.lines()
    );
}

/// No default profile: the zero-config start serves the others on demand
/// on 127.0.0.1:16926 (its own address, in this pod), and its IMDS
/// listener answers 503 saying what the default profile lacks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_default_profile_the_others_are_served_on_demand() {
    let pod = Pod::create();
    let _sts = Sts::start(&pod);
    let home = tempfile::tempdir().unwrap();
    crate::util::write_aws_files(
        home.path(),
        "[profile base]\nregion = us-east-1\n[profile work]\nrole_arn = arn:aws:iam::123456789012:role/work\nsource_profile = base\n",
    );
    let home_str = home.path().to_str().unwrap();
    let run = home.path().join("run");
    let empty = home.path().join("no-config-here");
    let sts = format!("http://127.0.0.1:{STS_PORT}");
    let env = [
        ("HOME", home_str),
        ("XDG_RUNTIME_DIR", run.to_str().unwrap()),
        ("XDG_CONFIG_HOME", empty.to_str().unwrap()),
        ("AWS_ENDPOINT_URL_STS", &sts),
        ("AWS_ACCESS_KEY_ID", ""),
        ("AWS_SECRET_ACCESS_KEY", ""),
    ];
    let state = home.path().join("state");
    let daemon = Running::spawn(pod.exec(BIN, &["run"]), &state, "", &env);
    let first = daemon.log_line("no config file").await;
    assert!(
        first.contains("which gives no credentials yet")
            && first.contains("profile `default` is not in the AWS config"),
        "{first}"
    );
    daemon.log_line("http://127.0.0.1:16926").await;
    let base = "http://127.0.0.1:16925/latest";
    let token = imds_token(&pod, base);
    let answer = curl(
        &pod,
        &[
            "-s",
            "-H",
            &format!("{TOKEN}: {token}"),
            &format!("{base}/meta-data/iam/security-credentials/default"),
        ],
    );
    assert!(answer.contains("profile `default` is not in"), "{answer}");

    // moto may take a few seconds to start: the first fetch retries.
    let socket = state.join("control.sock");
    let script = "curl -s -H \"Authorization: $(cat $AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)\" \
                  $AWS_CONTAINER_CREDENTIALS_FULL_URI; echo; echo $AWS_CONTAINER_CREDENTIALS_FULL_URI";
    let out = eventually(Duration::from_secs(40), || async {
        let out = imdsd_exec(
            &pod,
            &socket,
            home.path(),
            &["work", "--", "sh", "-c", script],
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("\"AccessKeyId\"").then_some(text)
    })
    .await
    .unwrap_or_else(|| panic!("{:#?}", daemon.lines()));
    assert!(out.contains("http://127.0.0.1:16926/role/work"), "{out}");
}

/// The default on-demand address taken (another user's daemon, say): the
/// daemon starts all the same and serves its IMDS role, and a profile asked
/// for by name says why it is not served and how to move it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_on_demand_address_does_not_stop_the_start() {
    let pod = Pod::create();
    let mut holder = pod
        .exec(
            "python3",
            &["-c", "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',16926)); s.listen(); print('bound', flush=True); time.sleep(120)"],
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "bound");
    let home = tempfile::tempdir().unwrap();
    crate::util::write_aws_files(
        home.path(),
        "[default]\nregion = us-east-1\n[profile work]\nrole_arn = arn:aws:iam::123456789012:role/work\nsource_profile = base\n",
    );
    let empty = home.path().join("no-config-here");
    let run = home.path().join("run");
    let env = [
        ("HOME", home.path().to_str().unwrap()),
        ("XDG_RUNTIME_DIR", run.to_str().unwrap()),
        ("XDG_CONFIG_HOME", empty.to_str().unwrap()),
        ("AWS_ACCESS_KEY_ID", ""),
        ("AWS_SECRET_ACCESS_KEY", ""),
    ];
    let state = home.path().join("state");
    let daemon = Running::spawn(pod.exec(BIN, &["run"]), &state, "", &env);
    let warning = daemon.log_line("not served on demand").await;
    assert!(warning.contains("127.0.0.1:16926"), "{warning}");
    daemon.log_line("http://127.0.0.1:16925").await;
    let socket = state.join("control.sock");
    let out = imdsd_exec(&pod, &socket, home.path(), &["work", "--", "true"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("AWS profiles are not served on demand")
            && err.contains("[profiles]"),
        "{err}"
    );
    holder.kill().unwrap();
    let _ = holder.wait();
}

/// The default profile's credentials, served with no config file, by role
/// name `default`, from inside the pod: `(role list, credentials JSON)`.
fn served_default(pod: &Pod) -> (String, serde_json::Value) {
    let base = "http://127.0.0.1:16925/latest";
    let header = format!("{TOKEN}: {}", imds_token(pod, base));
    let list = format!("{base}/meta-data/iam/security-credentials/");
    let role = curl(pod, &["-s", "-H", &header, &list]);
    let body = curl(pod, &["-s", "-H", &header, &format!("{list}default")]);
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (role, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_config_file_an_imported_default_profile_is_served_from_the_keyring() {
    let pod = Pod::create();
    let _sts = Sts::start(&pod);
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/credentials"),
        "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = zero-config-secret\n",
    )
    .unwrap();
    let store = crate::secret_service::SecretService::start(home.path());
    let env = store.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let imported = Command::new(BIN)
        .arg("import")
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(imported.status.success(), "{imported:?}");
    let empty = home.path().join("no-config-here");
    let sts = format!("http://127.0.0.1:{STS_PORT}");
    let mut daemon_env = env.clone();
    daemon_env.extend([
        ("XDG_CONFIG_HOME", empty.to_str().unwrap()),
        ("AWS_ENDPOINT_URL_STS", sts.as_str()),
        ("AWS_ACCESS_KEY_ID", ""),
        ("AWS_SECRET_ACCESS_KEY", ""),
    ]);
    let daemon = Running::spawn(
        pod.exec(BIN, &["run"]),
        &home.path().join("state"),
        "",
        &daemon_env,
    );
    daemon
        .log_line("no config file: serving AWS profile `default`")
        .await;
    eventually(Duration::from_secs(40), || async {
        daemon
            .lines()
            .iter()
            .any(|l| l.contains("fetched credentials") && l.contains("role=default"))
            .then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("{:#?}", daemon.lines()));
    let (role, json) = served_default(&pod);
    assert_eq!(role, "default");
    assert_eq!(json["Code"], "Success", "{json}");
    // Its credential_process line is imdsd's own: no warning about it.
    assert!(
        !daemon
            .lines()
            .iter()
            .any(|l| l.contains("credential_process")),
        "{:#?}",
        daemon.lines()
    );
    assert!(
        !daemon
            .lines()
            .iter()
            .any(|l| l.contains("zero-config-secret"))
    );
}
