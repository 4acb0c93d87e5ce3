//! Recovering at once: `imdsd refresh`, an MFA code for a failing role,
//! the AWS profile files changing under a failing role; and failures logged
//! once, not once per retry.

use super::*;

/// `imdsd ARGS... --socket SOCKET`, run to completion.
fn imdsd(live: &Live, args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(args)
        .arg("--socket")
        .arg(live.socket())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imdsd_refresh_retries_now_and_reports_each_outcome() {
    let live = Live::start(|sts| {
        // A permanent error: the daemon's own retry is minutes away.
        sts.script([Answer::Error {
            status: 403,
            code: "AccessDenied",
        }]);
        config(sts, "dev", "")
    })
    .await;
    let addr = live.daemon.addr().await;
    live.daemon.log_line("no usable credentials are left").await;

    let out = imdsd(&live, &["refresh", "dev"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("dev  refreshed; expires "), "{stdout}");
    serves_credentials(addr).await;
    assert_eq!(live.sts.calls(), 2);

    // A failure: exit 1, the reason, and the last credentials still served.
    live.sts.set_default(Answer::Error {
        status: 403,
        code: "AccessDenied",
    });
    let out = imdsd(&live, &["refresh"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("dev  AccessDenied: "),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        text(&out.stderr),
        "imdsd: 1 of 1 role(s) did not refresh\n",
        "said once, without a doubled prefix"
    );
    serves_credentials(addr).await;

    let out = imdsd(&live, &["refresh", "dev", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no role or AWS profile named `nope` (roles: dev;"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(live.sts.calls(), 3, "an unknown role refreshes nothing");

    // Another user may not make the daemon call STS.
    live.open_to_others();
    let out = crate::process::as_nobody(&[
        "refresh",
        "--socket",
        live.socket().to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("may not"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_mfa_code_makes_a_failing_role_retry_at_once() {
    let (live, addr) = waiting_for_a_code().await;
    let out = imdsd(&live, &["mfa", "dev", "111111"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    live.daemon.log_line("AccessDenied").await;
    // A wrong code is a permanent error: minutes of backoff. The right
    // code does not wait for them (nor go stale meanwhile).
    let out = imdsd(&live, &["mfa", "dev", "135790"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("which is retrying now"),
        "{}",
        text(&out.stdout)
    );
    serves_credentials(addr).await;
    let codes: Vec<_> = live
        .sts
        .seen()
        .iter()
        .map(|s| s.param("TokenCode").unwrap_or("-").to_string())
        .collect();
    assert_eq!(codes, ["111111", "135790"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_for_a_role_that_takes_none_is_refused() {
    let live = Live::start(|sts| config(sts, "dev", "")).await;
    live.daemon.addr().await;
    let out = imdsd(&live, &["mfa", "dev", "123456"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("imdsd: ") && !stderr.contains("imdsd: imdsd"),
        "{stderr}"
    );
    assert!(stderr.contains("role `dev` takes no MFA code"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_log_once_and_the_recovery_once() {
    let live = Live::start(|sts| {
        // Transient: retried within seconds, again and again.
        sts.set_default(Answer::Error {
            status: 503,
            code: "ServiceUnavailable",
        });
        config(sts, "dev", "")
    })
    .await;
    let addr = live.daemon.addr().await;
    eventually(Duration::from_secs(15), || {
        let calls = live.sts.calls();
        async move { (calls >= 4).then_some(()) }
    })
    .await
    .expect("four failed refreshes");
    live.sts.set_default(Answer::Issue);
    let out = imdsd(&live, &["refresh", "dev"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serves_credentials(addr).await;
    let recovered = live.daemon.log_line("refresh recovered after").await;
    assert!(recovered.contains("INFO"), "{recovered}");
    assert!(
        recovered.contains("serving credentials again"),
        "{recovered}"
    );

    let lines = live.daemon.lines();
    let failed: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("refresh failed"))
        .collect();
    let loud: Vec<&&String> = failed
        .iter()
        .filter(|l| l.contains("ERROR") || l.contains("WARN"))
        .collect();
    assert_eq!(loud.len(), 1, "one line above DEBUG: {loud:#?}");
    assert!(
        loud[0].contains("ERROR") && loud[0].contains("503"),
        "{}",
        loud[0]
    );
    assert!(failed.len() >= 4, "the repeats are still there at DEBUG");
}

/// `aws sso login` writes the token cache: a role that failed for want of
/// a login serves within seconds, not after its 2-minute backoff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_profile_role_retries_when_the_profile_files_change() {
    let sts = FakeSts::start(ManualClock::starting_now()).await;
    sts.accept_sso_token("fresh-sso-token");
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    std::fs::write(
        home.join(".aws/config"),
        "[profile sso]\nsso_session = corp\nsso_account_id = 123456789012\n\
         sso_role_name = Developer\n[sso-session corp]\n\
         sso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\n",
    )
    .unwrap();
    let config = format!(
        "[[imds]]\nlisten = \"127.0.0.1:0\"\n[sts]\nendpoint = \"{}\"\ntimeout = \"2s\"\n\
         [profiles]\nserve = \"none\"\n[roles.dev]\nprofile = \"sso\"\n",
        sts.endpoint()
    );
    let path = crate::process::plain_file(dir.path(), &config);
    let daemon = Running::start_with(
        &path,
        &dir.path().join("state"),
        fake_sts::SECRET_KEY,
        &[
            ("HOME", home.to_str().unwrap()),
            ("AWS_ENDPOINT_URL_SSO", &sts.endpoint()),
        ],
    );
    let addr = daemon.addr().await;
    daemon.log_line("SsoLoginRequired").await;
    // The watch starts once the roles have; a change before it is not seen.
    daemon.log_line("watching the AWS profile files").await;

    let cache = home.join(".aws/sso/cache");
    std::fs::create_dir_all(&cache).unwrap();
    let later = (imdsd::Clock::now(&imdsd::SystemClock) + chrono::TimeDelta::hours(8))
        .to_rfc3339();
    std::fs::write(
        cache.join("ee0bfd2552fbd840c02cc48b6e823320543c450f.json"),
        format!(r#"{{"accessToken":"fresh-sso-token","expiresAt":"{later}","region":"us-east-1"}}"#),
    )
    .unwrap();
    serves_credentials(addr).await;
    daemon
        .log_line("AWS profile files changed: retrying now")
        .await;
}
