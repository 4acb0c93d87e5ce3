//! Freshness and faults: the refresh schedule as seen over HTTP, every STS
//! fault the daemon must survive, last-good serving, and suspend/resume.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use imdsd::Clock;

use crate::fake_sts::{Answer, FakeSts};
use crate::util::{CONFIG, CREDS_PATH, TestDaemon, assert_503, request, source_env};

fn minutes(m: i64) -> TimeDelta {
    TimeDelta::minutes(m)
}

fn expiration(v: &serde_json::Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v["Expiration"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

#[tokio::test]
async fn sends_a_signed_assume_role_with_the_configured_parameters() {
    let d = TestDaemon::with_config(&CONFIG.replace(
        "session_name = \"imdsd-test\"",
        "session_name = \"imdsd-test\"\nexternal_id = \"ext-123\"\nduration = \"2h\"",
    ))
    .await;
    d.ready().await;
    let seen = &d.sts.seen()[0];
    assert!(
        seen.signature_ok,
        "the fake STS verified the SigV4 signature"
    );
    assert_eq!(seen.region.as_deref(), Some(crate::fake_sts::REGION));
    assert_eq!(seen.param("Action"), Some("AssumeRole"));
    assert_eq!(seen.param("Version"), Some("2011-06-15"));
    assert_eq!(
        seen.param("RoleArn"),
        Some("arn:aws:iam::123456789012:role/dev")
    );
    assert_eq!(seen.param("RoleSessionName"), Some("imdsd-test"));
    assert_eq!(seen.param("DurationSeconds"), Some("7200"));
    assert_eq!(seen.param("ExternalId"), Some("ext-123"));
}

#[tokio::test]
async fn a_wrong_source_secret_fails_the_signature_check_and_says_so() {
    let mut env = vec![
        ("AWS_ACCESS_KEY_ID", crate::fake_sts::ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", "wrong"),
    ];
    env.push(("USER", "t"));
    let d = TestDaemon::custom(CONFIG, imdsd::Environment::from_pairs(env), |_| {}).await;
    d.settle().await;
    let (status, body) = d.credentials().await;
    assert_eq!(status, 503);
    assert_eq!(body["Code"], "SignatureDoesNotMatch");
    assert!(!d.sts.seen()[0].signature_ok);
}

#[tokio::test]
async fn missing_source_credentials_are_a_clear_503() {
    let env = imdsd::Environment::from_pairs([("USER", "t")]);
    let d = TestDaemon::custom(CONFIG, env, |_| {}).await;
    d.settle().await;
    let (status, body) = d.credentials().await;
    assert_503(status, &body, None, "AWS_ACCESS_KEY_ID is not set");
    assert_eq!(d.sts.calls(), 0, "no STS call without source keys");
}

/// Three hours of a healthy STS, checked every minute: what is served
/// always has at least 30 minutes left, and STS is called at most about
/// three times an hour.
#[tokio::test]
async fn healthy_sts_keeps_30_minutes_left_at_three_calls_an_hour() {
    let d = TestDaemon::start().await;
    d.ready().await;
    let token = d.token(21600).await;
    for _ in 0..180 {
        d.advance(minutes(1)).await;
        let r = request(
            d.addr,
            "GET",
            CREDS_PATH,
            &[("x-aws-ec2-metadata-token", &token)],
        )
        .await;
        assert_eq!(r.status, 200);
        let left = expiration(&r.json()) - d.clock.now();
        assert!(
            left >= minutes(30),
            "served credentials with only {left} left"
        );
    }
    let calls = d.sts.calls();
    // One refresh every 20 to 25 minutes, plus the first fetch.
    assert!((8..=10).contains(&calls), "{calls} STS calls in 3 hours");
}

#[tokio::test]
async fn short_sessions_refresh_at_half_life() {
    let d = TestDaemon::with_config(&CONFIG.replace(
        "session_name = \"imdsd-test\"",
        "session_name = \"imdsd-test\"\nduration = \"20m\"",
    ))
    .await;
    d.ready().await;
    d.advance(minutes(8)).await;
    assert_eq!(d.sts.calls(), 1, "not yet at half-life");
    d.advance(minutes(2)).await;
    assert_eq!(d.sts.calls(), 2, "refreshed at half-life");
}

/// Each fault: no 200 while nothing good exists, a 503 naming the error,
/// and recovery once STS is healthy again.
#[tokio::test]
async fn survives_every_sts_fault_and_recovers() {
    let faults = [
        (
            Answer::Error {
                status: 500,
                code: "InternalFailure",
            },
            "InternalFailure",
        ),
        (Answer::Status(502), "HttpError"),
        (
            Answer::Error {
                status: 400,
                code: "Throttling",
            },
            "Throttling",
        ),
        (
            Answer::Error {
                status: 400,
                code: "IDPCommunicationError",
            },
            "IDPCommunicationError",
        ),
        (
            Answer::Error {
                status: 403,
                code: "AccessDenied",
            },
            "AccessDenied",
        ),
        (
            Answer::Error {
                status: 403,
                code: "InvalidClientTokenId",
            },
            "InvalidClientTokenId",
        ),
        (
            Answer::Error {
                status: 400,
                code: "ExpiredToken",
            },
            "ExpiredToken",
        ),
        (
            Answer::Body("<AssumeRoleResponse><AssumeRoleResult>"),
            "MalformedResponse",
        ),
        (Answer::Body("not xml"), "MalformedResponse"),
        (
            Answer::Body(
                "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A</AccessKeyId></Credentials></AssumeRoleResult></AssumeRoleResponse>",
            ),
            "MalformedResponse",
        ),
        (Answer::IssueFor(minutes(-5)), "ExpiredCredentialsIssued"),
        (Answer::Hang, "Timeout"),
    ];
    for (fault, code) in faults {
        let d = TestDaemon::start().await;
        d.sts.set_default(fault.clone());
        d.settle().await;
        let (status, body) = d.credentials().await;
        assert_eq!(status, 503, "{fault:?}");
        assert_eq!(body["Code"], code, "{fault:?}: {body}");
        assert!(
            body["Message"].as_str().unwrap().contains("role `dev`"),
            "{body}"
        );
        d.sts.set_default(Answer::Issue);
        d.advance(minutes(20)).await;
        let (status, body) = d.credentials().await;
        assert_eq!(status, 200, "{fault:?} did not recover: {body}");
    }
}

#[tokio::test]
async fn transient_errors_retry_fast_and_permanent_ones_slowly() {
    let d = TestDaemon::start().await;
    d.sts.set_default(Answer::Error {
        status: 400,
        code: "Throttling",
    });
    d.settle().await;
    let wait = d.slot().next_action().unwrap() - d.clock.now();
    assert!(
        wait <= TimeDelta::seconds(1),
        "first transient retry within 1s, got {wait}"
    );

    let d = TestDaemon::start().await;
    d.sts.set_default(Answer::Error {
        status: 403,
        code: "AccessDenied",
    });
    d.settle().await;
    let wait = d.slot().next_action().unwrap() - d.clock.now();
    assert!(
        wait >= minutes(1),
        "permanent errors wait a minute or more, got {wait}"
    );
}

#[tokio::test]
async fn backoff_grows_with_repeated_transient_failures() {
    // A fixed jitter draw makes each delay exact, so growth is visible.
    let d = TestDaemon::custom(CONFIG, source_env(), |o| o.jitter = Some(0.5)).await;
    d.sts.set_default(Answer::Error {
        status: 503,
        code: "ServiceUnavailable",
    });
    d.settle().await;
    let mut waits = Vec::new();
    for _ in 0..8 {
        let wait = d.slot().next_action().unwrap() - d.clock.now();
        waits.push(wait.num_milliseconds());
        d.advance(wait).await;
    }
    assert_eq!(d.sts.calls(), 9);
    // Half of 1 s doubling per failure, until half the 60 s cap.
    assert_eq!(
        waits,
        [500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000],
        "backoff delays in ms"
    );
}

#[tokio::test]
async fn last_good_credentials_are_served_until_a_minute_before_expiry() {
    let d = TestDaemon::start().await;
    let first = d.ready().await;
    d.sts.set_default(Answer::Error {
        status: 500,
        code: "InternalFailure",
    });
    // Step through the hour; every retry fails.
    let exp = expiration(&first);
    while d.clock.now() < exp - minutes(2) {
        d.advance(minutes(1)).await;
        let (status, body) = d.credentials().await;
        assert_eq!(status, 200, "still within the last good credentials");
        assert_eq!(body["AccessKeyId"], first["AccessKeyId"]);
    }
    d.clock.set(exp - TimeDelta::seconds(60));
    d.settle().await;
    let (status, body) = d.credentials().await;
    assert_eq!(
        status, 503,
        "never serve credentials within a minute of expiry"
    );
    assert_eq!(body["Code"], "InternalFailure");
    d.clock.set(exp + minutes(5));
    d.settle().await;
    assert_eq!(
        d.credentials().await.0,
        503,
        "never serve expired credentials"
    );
    d.sts.set_default(Answer::Issue);
    d.advance(minutes(2)).await;
    let (status, body) = d.credentials().await;
    assert_eq!(status, 200);
    assert_ne!(body["AccessKeyId"], first["AccessKeyId"]);
}

/// After a suspend the tokio timer has not fired, but the first request
/// sees the wall clock, starts a refresh and waits for it.
#[tokio::test]
async fn a_request_after_resume_gets_fresh_credentials_at_once() {
    let d = TestDaemon::start().await;
    d.ready().await;
    d.clock.advance(TimeDelta::hours(3));
    let (status, body) = d.credentials().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["AccessKeyId"], FakeSts::issued_key(2));
    assert!(expiration(&body) - d.clock.now() >= minutes(59));
}

/// Without any request, the refresher still looks at the wall clock on
/// its periodic check (shortened here from a minute).
#[tokio::test]
async fn the_periodic_clock_check_notices_time_jumps_without_requests() {
    let d = TestDaemon::custom(CONFIG, source_env(), |o| {
        o.clock_check = Duration::from_millis(50)
    })
    .await;
    d.ready().await;
    d.clock.advance(minutes(30));
    let refreshed = crate::util::eventually(Duration::from_secs(5), || async {
        (d.sts.calls() == 2).then_some(())
    })
    .await;
    assert!(refreshed.is_some(), "no refresh after a 30 minute jump");
}

#[tokio::test]
async fn concurrent_first_requests_share_one_refresh() {
    let d = TestDaemon::start().await;
    // Hold the first answer back until all requests are waiting.
    d.sts.script([Answer::Slow(Duration::from_millis(250))]);
    let token = d.token(300).await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (addr, token) = (d.addr, token.clone());
        tasks.push(tokio::spawn(async move {
            request(
                addr,
                "GET",
                CREDS_PATH,
                &[("x-aws-ec2-metadata-token", &token)],
            )
            .await
            .status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(d.sts.calls(), 1);
}

#[tokio::test]
async fn requests_never_wait_on_sts_while_credentials_are_good() {
    // STS may take 30 s and an in-flight wait may last 5 s here, so a
    // request that waited on either would miss the 2 s deadline below.
    let config = CONFIG.replace("timeout = \"1s\"", "timeout = \"30s\"");
    let d = TestDaemon::custom(&config, source_env(), |o| {
        o.wait_limit = Duration::from_secs(5)
    })
    .await;
    d.ready().await;
    d.sts.set_default(Answer::Hang);
    d.clock.advance(minutes(30));
    d.slot().poke();
    crate::util::eventually(Duration::from_secs(5), || async {
        d.slot().load().in_flight.then_some(())
    })
    .await
    .expect("refresh in flight");
    let (status, _) = tokio::time::timeout(Duration::from_secs(2), d.credentials())
        .await
        .expect("answered without waiting on the hung refresh");
    assert_eq!(status, 200, "served from the snapshot while STS hangs");
    assert!(
        d.slot().load().in_flight,
        "the hung refresh is still running"
    );
}

#[tokio::test]
async fn a_request_during_a_slow_first_fetch_gets_503_not_a_hang() {
    let d = TestDaemon::start().await;
    d.sts.set_default(Answer::Hang);
    let (status, body) = d.credentials().await;
    assert_eq!(status, 503);
    assert_eq!(body["Code"], "CredentialsUninitialized");
}

/// `source = "profile:NAME"` reads the shared credentials file on every
/// refresh, so rotated keys are used without a restart.
#[tokio::test]
async fn profile_source_is_reread_on_every_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    let write = |secret: &str| {
        let text = format!(
            "[other]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = nope\n\n[base]\naws_access_key_id = {}\naws_secret_access_key = {secret}\n",
            crate::fake_sts::ACCESS_KEY_ID
        );
        std::fs::write(&file, text).unwrap();
    };
    write(crate::fake_sts::SECRET_KEY);
    let env = imdsd::Environment::from_pairs([
        ("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap()),
        ("USER", "t"),
    ]);
    let config = CONFIG.replace("source = \"env\"", "source = \"profile:base\"");
    let d = TestDaemon::custom(&config, env, |_| {}).await;
    d.ready().await;
    assert!(d.sts.seen()[0].signature_ok);
    write("rotated-away");
    d.advance(minutes(30)).await;
    let seen = d.sts.seen();
    assert_eq!(seen.len(), 2);
    assert!(
        !seen[1].signature_ok,
        "the second refresh signed with the re-read (now wrong) key"
    );
    std::fs::remove_file(&file).unwrap();
    d.advance(minutes(15)).await;
    let (status, _) = d.credentials().await;
    assert_eq!(status, 200, "last good credentials still served");
    let failure = d.slot().load().failure.clone().unwrap();
    assert!(
        failure.message.contains("profile `base` is not in"),
        "{failure:?}"
    );
}

/// A role chained from one waiting for an MFA code fails meanwhile; the
/// moment its source has credentials it retries, without waiting out its
/// backoff (the clock here never moves, so only that can wake it).
#[tokio::test]
async fn a_chained_role_retries_as_soon_as_its_source_has_credentials() {
    let config = "[[imds]]\nlisten = \"127.0.0.1:0\"\nrole = \"dev\"\n[sts]\nendpoint = \"{sts}\"\ntimeout = \"1s\"\n\
        [roles.mfa]\ntype = \"session_token\"\nsource = \"env\"\nmfa_serial = \"arn:aws:iam::123456789012:mfa/tester\"\n\
        [roles.dev]\nrole_arn = \"arn:aws:iam::123456789012:role/dev\"\nsource = \"role:mfa\"\n";
    let d = TestDaemon::with_config(config).await;
    d.settle().await;
    let (status, body) = d.credentials().await;
    assert_503(
        status,
        &body,
        Some("SourceRoleUnavailable"),
        "waiting for an MFA code",
    );
    let before = d.sts.calls();
    assert_eq!(before, 0);
    d.daemon()
        .role("mfa")
        .unwrap()
        .submit_mfa_code(imdsd::Secret::new("135790"));
    d.ready().await;
    let actions: Vec<_> = d
        .sts
        .seen()
        .iter()
        .map(|s| s.param("Action").unwrap_or("-").to_string())
        .collect();
    assert_eq!(actions, ["GetSessionToken", "AssumeRole"]);
}
