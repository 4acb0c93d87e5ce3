//! Running with no config file at all.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_config_file_the_default_profile_is_served() {
    let sts = FakeSts::start(ManualClock::starting_now()).await;
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/config"),
        "[default]\nregion = us-east-1\n",
    )
    .unwrap();
    std::fs::write(
        home.path().join(".aws/credentials"),
        format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            fake_sts::ACCESS_KEY_ID,
            fake_sts::SECRET_KEY
        ),
    )
    .unwrap();
    let home_str = home.path().to_str().unwrap();
    let empty = home.path().join("no-config-here");
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("run");
    let env = [
        ("HOME", home_str),
        ("XDG_CONFIG_HOME", empty.to_str().unwrap()),
        ("AWS_ENDPOINT_URL_STS", &sts.endpoint()),
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
    let addr = daemon.addr().await;
    serves_credentials(addr).await;
    assert_eq!(
        sts.seen()[0].param("Action"),
        Some("GetSessionToken"),
        "long-term keys become a session"
    );
}
