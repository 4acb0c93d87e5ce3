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

/// The default profile's credentials, served with no config file, by role
/// name `default`, from inside the pod: `(role list, credentials JSON)`.
fn served_default(pod: &Pod) -> (String, serde_json::Value) {
    let base = "http://127.0.0.1:16925/latest";
    let ttl = format!("{TTL}: 60");
    let token = curl(
        pod,
        &["-s", "-X", "PUT", "-H", &ttl, &format!("{base}/api/token")],
    );
    let header = format!("{TOKEN}: {token}");
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
