//! Every STS flow and credential source, against the fake STS (and a fake
//! SSO portal and container endpoint): web identity, SAML, GetSessionToken
//! with MFA, chaining, credential_process, IMDS and container sources, AWS
//! profiles and SSO. Each test fails without the flow it names.

use std::path::Path;
use std::time::Duration;

use chrono::TimeDelta;
use imdsd::Environment;

use crate::fake_sts::{self, Answer, FakeSts};
use crate::util::{TestDaemon, assert_503, eventually, request, source_env_with};

/// Every flow's config head. Profiles are not served on demand here
/// (tests/it/on_demand.rs does that): the default on-demand address is a
/// fixed port.
const HEAD: &str = "[[imds]]\nlisten = \"127.0.0.1:0\"\nrole = \"dev\"\n[sts]\nendpoint = \"{sts}\"\ntimeout = \"1s\"\n[profiles]\nserve = \"none\"\n";

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn script(dir: &Path, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = write(dir, name, &format!("#!/bin/sh\n{body}\n"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

// === web identity ===

#[tokio::test]
async fn web_identity_is_unsigned_and_rereads_the_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let token = write(dir.path(), "token", "jwt-one\n");
    let config = format!(
        "{HEAD}[roles.dev]\nrole_arn = \"arn:aws:iam::123456789012:role/dev\"\nweb_identity_token_file = \"{token}\"\nsession_name = \"pod\"\n"
    );
    let d = TestDaemon::custom(&config, source_env_with(&[]), |_| {}).await;
    d.sts
        .require("WebIdentityToken", "jwt-one", 400, "InvalidIdentityToken");
    d.ready().await;
    let seen = &d.sts.seen()[0];
    assert_eq!(seen.param("Action"), Some("AssumeRoleWithWebIdentity"));
    assert_eq!(
        seen.param("WebIdentityToken"),
        Some("jwt-one"),
        "trimmed token"
    );
    assert_eq!(seen.param("RoleSessionName"), Some("pod"));
    assert!(!seen.signed, "AssumeRoleWithWebIdentity is unsigned");
    // Kubernetes rotates the projected token.
    std::fs::write(&token, "jwt-two").unwrap();
    d.sts
        .require("WebIdentityToken", "jwt-two", 400, "InvalidIdentityToken");
    d.advance(TimeDelta::minutes(30)).await;
    assert_eq!(d.sts.seen()[1].param("WebIdentityToken"), Some("jwt-two"));
    assert_eq!(d.credentials().await.0, 200);
    assert!(d.slot().load().failure.is_none());
}

#[tokio::test]
async fn web_identity_errors_expired_token_is_permanent_invalid_token_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let token = write(dir.path(), "token", "old-jwt");
    let config = format!(
        "{HEAD}[roles.dev]\nrole_arn = \"arn:aws:iam::123456789012:role/dev\"\nweb_identity_token_file = \"{token}\"\n"
    );
    let d = TestDaemon::custom(&config, source_env_with(&[]), |_| {}).await;
    d.sts.set_default(Answer::Error {
        status: 400,
        code: "ExpiredTokenException",
    });
    d.settle().await;
    let (status, body) = d.credentials().await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (503, Some("ExpiredTokenException"))
    );
    assert!(
        d.slot().next_action().unwrap() - imdsd::Clock::now(&*d.clock)
            >= TimeDelta::minutes(1)
    );

    let d = TestDaemon::custom(&config, source_env_with(&[]), |_| {}).await;
    d.sts.set_default(Answer::Error {
        status: 400,
        code: "InvalidIdentityToken",
    });
    d.settle().await;
    assert_eq!(d.credentials().await.1["Code"], "InvalidIdentityToken");
    let wait = d.slot().next_action().unwrap() - imdsd::Clock::now(&*d.clock);
    assert!(
        wait <= TimeDelta::seconds(1),
        "InvalidIdentityToken is retried quickly, not in {wait}"
    );
}

#[tokio::test]
async fn web_identity_from_the_irsa_environment() {
    let dir = tempfile::tempdir().unwrap();
    let token = write(dir.path(), "token", "irsa-jwt");
    let env = source_env_with(&[
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/irsa"),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", &token),
        ("AWS_ROLE_SESSION_NAME", "my-pod"),
    ]);
    let d = TestDaemon::custom(
        &format!("{HEAD}[roles.dev]\nsource = \"web_identity_env\"\n"),
        env,
        |_| {},
    )
    .await;
    let body = d.ready().await;
    let seen = &d.sts.seen()[0];
    assert_eq!(
        seen.param("RoleArn"),
        Some("arn:aws:iam::123456789012:role/irsa")
    );
    assert_eq!(seen.param("RoleSessionName"), Some("my-pod"));
    assert!(body["Token"].as_str().unwrap().contains("-role-irsa-"));
}

// === SAML ===

#[tokio::test]
async fn saml_from_a_file_and_from_a_command() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "assertion.b64", "PHNhbWw+ZmlsZTwvc2FtbD4=\n");
    let role = "role_arn = \"arn:aws:iam::123456789012:role/dev\"\nprincipal_arn = \"arn:aws:iam::123456789012:saml-provider/idp\"\n";
    let d = TestDaemon::custom(
        &format!("{HEAD}[roles.dev]\n{role}saml_assertion_file = \"{file}\"\n"),
        source_env_with(&[]),
        |_| {},
    )
    .await;
    d.ready().await;
    let seen = &d.sts.seen()[0];
    assert_eq!(seen.param("Action"), Some("AssumeRoleWithSAML"));
    assert_eq!(
        seen.param("PrincipalArn"),
        Some("arn:aws:iam::123456789012:saml-provider/idp")
    );
    assert_eq!(
        seen.param("SAMLAssertion"),
        Some("PHNhbWw+ZmlsZTwvc2FtbD4=")
    );
    assert!(!seen.signed);

    let helper = script(
        dir.path(),
        "saml-helper",
        "echo 'log line for the operator' >&2\necho PHNhbWw+Y21kPC9zYW1sPg==",
    );
    let d = TestDaemon::custom(
        &format!("{HEAD}[roles.dev]\n{role}saml_assertion_command = \"{helper}\"\n"),
        source_env_with(&[]),
        |_| {},
    )
    .await;
    d.ready().await;
    assert_eq!(
        d.sts.seen()[0].param("SAMLAssertion"),
        Some("PHNhbWw+Y21kPC9zYW1sPg==")
    );

    let failing = script(dir.path(), "saml-fail", "echo nope >&2\nexit 2");
    let d = TestDaemon::custom(
        &format!("{HEAD}[roles.dev]\n{role}saml_assertion_command = \"{failing}\"\n"),
        source_env_with(&[]),
        |_| {},
    )
    .await;
    d.settle().await;
    let (status, body) = d.credentials().await;
    assert_503(status, &body, Some("CommandFailed"), "exit status: 2");
    assert_eq!(d.sts.calls(), 0);
}

// === GetSessionToken and MFA ===

#[tokio::test]
async fn session_token_with_an_mfa_command_lasts_up_to_36_hours() {
    let dir = tempfile::tempdir().unwrap();
    let code = script(dir.path(), "totp", "echo 246810");
    let config = format!(
        "{HEAD}[roles.dev]\ntype = \"session_token\"\nsource = \"env\"\nmfa_serial = \"arn:aws:iam::123456789012:mfa/tester\"\nmfa_command = \"{code}\"\nduration = \"36h\"\n"
    );
    let d = TestDaemon::custom(&config, source_env_with(&[]), |_| {}).await;
    d.sts.require("TokenCode", "246810", 403, "AccessDenied");
    d.ready().await;
    let seen = &d.sts.seen()[0];
    assert_eq!(seen.param("Action"), Some("GetSessionToken"));
    assert_eq!(
        seen.param("TokenCode"),
        Some("246810"),
        "the command's code"
    );
    assert_eq!(seen.param("DurationSeconds"), Some("129600"));
    assert_eq!(
        seen.param("SerialNumber"),
        Some("arn:aws:iam::123456789012:mfa/tester")
    );
    assert!(seen.signature_ok);
}

#[tokio::test]
async fn a_wrong_mfa_code_is_an_access_denied_503() {
    let dir = tempfile::tempdir().unwrap();
    let code = script(dir.path(), "totp", "echo 111111");
    let config = format!(
        "{HEAD}[roles.dev]\ntype = \"session_token\"\nsource = \"env\"\nmfa_serial = \"arn:aws:iam::123456789012:mfa/tester\"\nmfa_command = \"{code}\"\n"
    );
    let d = TestDaemon::custom(&config, source_env_with(&[]), |_| {}).await;
    d.sts.require("TokenCode", "999999", 403, "AccessDenied");
    d.settle().await;
    let (status, body) = d.credentials().await;
    assert_eq!((status, body["Code"].as_str()), (503, Some("AccessDenied")));
    let seen = d.sts.seen();
    assert!(!seen.is_empty(), "STS was asked");
    for s in &seen {
        assert_eq!(s.param("TokenCode"), Some("111111"), "the command's code");
    }
}

#[tokio::test]
async fn without_an_mfa_command_the_role_waits_for_imdsd_mfa_without_blocking_requests() {
    let config = "[[imds]]\nlisten = \"127.0.0.1:0\"\nrole = \"dev\"\n[sts]\nendpoint = \"{sts}\"\ntimeout = \"1s\"\n[roles.dev]\nrole_arn = \"arn:aws:iam::123456789012:role/dev\"\nsource = \"env\"\nmfa_serial = \"arn:aws:iam::123456789012:mfa/tester\"\n";
    // A long in-flight wait, so a request that wrongly waited would show.
    let d = TestDaemon::custom(config, source_env_with(&[]), |o| {
        o.wait_limit = Duration::from_secs(5)
    })
    .await;
    let slot = d.slot().clone();
    eventually(Duration::from_secs(5), || async {
        slot.load().waiting_for.clone()
    })
    .await
    .expect("waiting");
    let (status, body) = tokio::time::timeout(Duration::from_secs(2), d.credentials())
        .await
        .expect("a request is never held up by a pending MFA code");
    assert_503(status, &body, None, "waiting for an MFA code");
    assert_eq!(d.sts.calls(), 0, "nothing is sent to STS without a code");
    d.sts.require("TokenCode", "135790", 403, "AccessDenied");
    slot.submit_mfa_code(imdsd::Secret::new("135790"));
    let body = d.ready().await;
    assert_eq!(body["Code"], "Success");
    assert_eq!(d.sts.seen()[0].param("TokenCode"), Some("135790"));
}

// === chaining ===

#[tokio::test]
async fn a_chained_role_signs_with_its_source_and_is_capped_at_one_hour() {
    let dir = tempfile::tempdir().unwrap();
    let code = script(dir.path(), "totp", "echo 123456");
    let config = format!(
        "{HEAD}[roles.mfa]\ntype = \"session_token\"\nsource = \"env\"\nmfa_serial = \"arn:aws:iam::123456789012:mfa/tester\"\nmfa_command = \"{code}\"\n\
         [roles.dev]\nrole_arn = \"arn:aws:iam::123456789012:role/dev\"\nsource = \"role:mfa\"\nduration = \"4h\"\n"
    );
    let d = TestDaemon::custom(&config, source_env_with(&[]), |_| {}).await;
    d.ready().await;
    let seen = d.sts.seen();
    let assume = seen
        .iter()
        .find(|s| s.param("Action") == Some("AssumeRole"))
        .expect("AssumeRole");
    assert_eq!(
        assume.param("DurationSeconds"),
        Some("3600"),
        "chained sessions are capped at 1h"
    );
    assert!(
        assume.signature_ok,
        "signed with the session credentials of role `mfa`"
    );
    // The MFA session is asked for once, however often the chained role refreshes.
    for _ in 0..3 {
        d.advance(TimeDelta::minutes(25)).await;
    }
    let seen = d.sts.seen();
    assert_eq!(
        seen.iter()
            .filter(|s| s.param("Action") == Some("GetSessionToken"))
            .count(),
        1
    );
    assert!(
        seen.iter()
            .filter(|s| s.param("Action") == Some("AssumeRole"))
            .count()
            >= 3
    );
}

// === credential_process ===

#[tokio::test]
async fn credential_process_as_a_source_and_served_directly() {
    let dir = tempfile::tempdir().unwrap();
    let keys = script(
        dir.path(),
        "keys",
        &format!(
            r#"echo '{{"Version": 1, "AccessKeyId": "{}", "SecretAccessKey": "{}"}}'"#,
            fake_sts::ACCESS_KEY_ID,
            fake_sts::SECRET_KEY
        ),
    );
    let config = format!(
        "{HEAD}[roles.dev]\nrole_arn = \"arn:aws:iam::123456789012:role/dev\"\nsource = \"process\"\ncredential_process = \"{keys}\"\n"
    );
    let d = TestDaemon::custom(&config, Environment::default(), |_| {}).await;
    d.ready().await;
    assert!(
        d.sts.seen()[0].signature_ok,
        "signed with the keys the process printed"
    );

    let expiry = (imdsd::Clock::now(&imdsd::SystemClock) + TimeDelta::hours(2))
        .format("%Y-%m-%dT%H:%M:%SZ");
    let temp = script(
        dir.path(),
        "temp",
        &format!(
            r#"echo '{{"Version": 1, "AccessKeyId": "ASIAPROC", "SecretAccessKey": "s", "SessionToken": "t", "Expiration": "{expiry}"}}'"#
        ),
    );
    let d = TestDaemon::custom(
        &format!(
            "{HEAD}[roles.dev]\ntype = \"process\"\ncredential_process = \"{temp}\"\n"
        ),
        Environment::default(),
        |_| {},
    )
    .await;
    let body = d.ready().await;
    assert_eq!(body["AccessKeyId"], "ASIAPROC");
    assert_eq!(d.sts.calls(), 0);

    let long_term = format!(
        "{HEAD}[roles.dev]\ntype = \"process\"\ncredential_process = \"{keys}\"\n"
    );
    let d = TestDaemon::custom(&long_term, Environment::default(), |_| {}).await;
    d.settle().await;
    let (status, body) = d.credentials().await;
    assert_503(status, &body, None, "temporary credentials");
}

// === platform sources ===

#[tokio::test]
async fn source_imds_reads_another_metadata_service_but_never_itself() {
    let upstream = TestDaemon::start().await;
    upstream.ready().await;
    let env = Environment::from_pairs([(
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        format!("http://{}", upstream.addr),
    )]);
    let config = format!("{HEAD}[roles.dev]\nrole_arn = \"arn:aws:iam::123456789012:role/workload\"\nsource = \"imds\"\n")
        .replace("{sts}", &upstream.sts.endpoint());
    let d = TestDaemon::custom(&config, env, |_| {}).await;
    d.ready().await;
    let seen = upstream.sts.seen();
    assert_eq!(seen.len(), 2);
    assert!(
        seen[1].signature_ok,
        "signed with the credentials the upstream IMDS served"
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = Environment::from_pairs([(
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        format!("http://127.0.0.1:{port}"),
    )]);
    let own = config.replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    let d = TestDaemon::custom(&own, env, |_| {}).await;
    d.settle().await;
    let (status, body) = d.credentials().await;
    assert_503(status, &body, None, "own listener");
}

#[tokio::test]
async fn source_container_sends_the_token_file_as_authorization() {
    use http_body_util::Full;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let expiry = (imdsd::Clock::now(&imdsd::SystemClock) + TimeDelta::hours(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let expiry = expiry.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let ok = req
                            .headers()
                            .get("authorization")
                            .is_some_and(|v| v == "pod-token");
                        let body = if ok {
                            format!(
                                r#"{{"AccessKeyId":"{}","SecretAccessKey":"{}","Token":"container-session","Expiration":"{expiry}"}}"#,
                                fake_sts::ACCESS_KEY_ID,
                                fake_sts::SECRET_KEY
                            )
                        } else {
                            r#"{"Code":"AccessDenied","Message":"bad token"}"#.into()
                        };
                        let mut r =
                            hyper::Response::new(Full::new(bytes::Bytes::from(body)));
                        if !ok {
                            *r.status_mut() = hyper::StatusCode::FORBIDDEN;
                        }
                        async move { Ok::<_, std::convert::Infallible>(r) }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let token = write(dir.path(), "token", "pod-token");
    let env = Environment::from_pairs([
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            format!("http://{addr}/creds"),
        ),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token.clone()),
    ]);
    let config = format!(
        "{HEAD}[roles.dev]\nrole_arn = \"arn:aws:iam::123456789012:role/dev\"\nsource = \"container\"\n"
    );
    let d = TestDaemon::custom(&config, env, |_| {}).await;
    d.ready().await;
    std::fs::write(&token, "rotated-wrong").unwrap();
    d.advance(TimeDelta::minutes(30)).await;
    let failure = d
        .slot()
        .load()
        .failure
        .clone()
        .expect("re-read token is refused");
    assert!(failure.message.contains("HTTP 403"), "{failure:?}");
}

// === profiles and SSO ===

const AWS_CONFIG: &str = "\
[profile base]
region = us-east-1

[profile admin]
role_arn = arn:aws:iam::123456789012:role/admin
source_profile = base
mfa_serial = arn:aws:iam::123456789012:mfa/tester

[profile sso]
sso_session = corp
sso_account_id = 123456789012
sso_role_name = Developer

[sso-session corp]
sso_start_url = https://corp.awsapps.com/start
sso_region = us-east-1
";

fn profile_env(dir: &Path, sts: &str) -> Environment {
    let config = write(dir, "config", AWS_CONFIG);
    let creds = write(
        dir,
        "credentials",
        &format!(
            "[base]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            fake_sts::ACCESS_KEY_ID,
            fake_sts::SECRET_KEY
        ),
    );
    Environment::from_pairs([
        ("HOME", dir.to_str().unwrap().to_string()),
        ("AWS_CONFIG_FILE", config),
        ("AWS_SHARED_CREDENTIALS_FILE", creds),
        ("AWS_ENDPOINT_URL_SSO", sts.to_string()),
        ("AWS_ENDPOINT_URL_SSO_OIDC", sts.to_string()),
        (
            "XDG_RUNTIME_DIR",
            dir.join("run").to_str().unwrap().to_string(),
        ),
    ])
}

/// `aws sso login`'s cached token for session `corp`, valid 8 more hours.
fn cache_sso_login(dir: &Path, token: &str) -> std::path::PathBuf {
    // sha1("corp"): where `aws sso login` caches the session's token.
    let cache = dir.join(".aws/sso/cache");
    std::fs::create_dir_all(&cache).unwrap();
    let cached = cache.join("ee0bfd2552fbd840c02cc48b6e823320543c450f.json");
    let later =
        (imdsd::Clock::now(&imdsd::SystemClock) + TimeDelta::hours(8)).to_rfc3339();
    let json = format!(
        r#"{{"accessToken":"{token}","expiresAt":"{later}","region":"us-east-1"}}"#
    );
    std::fs::write(&cached, json).unwrap();
    cached
}

/// Profiles served by name, on demand (no `[roles.NAME]`), reached as SDKs
/// reach them, with their tokens: an SSO profile (the fake portal), and a
/// role chain whose profile asks for an MFA code, which waits for one and
/// goes on once it is handed in (as `imdsd mfa` or the terminal prompt
/// hands it).
#[tokio::test]
async fn sso_and_mfa_profiles_are_served_on_demand_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let head = HEAD.replace("serve = \"none\"", "listen = \"127.0.0.1:0\"");
    let template = format!("{head}[roles.dev]\nprofile = \"base\"\n");
    let sso = FakeSts::start(imdsd::ManualClock::starting_now()).await;
    sso.accept_sso_token("cached-sso-token");
    cache_sso_login(dir.path(), "cached-sso-token");
    let env = profile_env(dir.path(), &sso.endpoint());
    let mut d = TestDaemon::custom(&template, env, |_| {}).await;
    d.sts.require("TokenCode", "424242", 403, "AccessDenied");
    d.ready().await;
    let on_demand = d.daemon().local_addrs()[1];
    let get = |role: &'static str| {
        let token_file = dir.path().join(format!("run/imdsd/tokens/{role}.token"));
        let token = std::fs::read_to_string(token_file).unwrap();
        async move {
            let path = format!("/role/{role}");
            request(on_demand, "GET", &path, &[("Authorization", &token)]).await
        }
    };
    let sso_answer = d
        .serving(eventually(Duration::from_secs(5), || async {
            let r = get("sso").await;
            (r.status == 200).then_some(r)
        }))
        .await
        .expect("the SSO profile is served");
    assert!(
        sso_answer.text().contains("-role-Developer-"),
        "{sso_answer:?}"
    );

    let waiting = d.serving(get("admin")).await;
    assert_eq!(waiting.status, 503);
    assert!(waiting.text().contains("MFA code"), "{}", waiting.text());
    let admin = d.daemon().role("admin").expect("started").clone();
    admin.submit_mfa_code(imdsd::Secret::new("424242"));
    let served = d
        .serving(eventually(Duration::from_secs(5), || async {
            let r = get("admin").await;
            (r.status == 200).then_some(r)
        }))
        .await
        .expect("served once the code is in");
    assert!(served.text().contains("-role-admin"), "{}", served.text());
}

#[tokio::test]
async fn a_profile_chain_with_mfa_is_the_source_of_a_role() {
    let dir = tempfile::tempdir().unwrap();
    let code = script(dir.path(), "totp", "echo 424242");
    let template = format!(
        "{HEAD}[roles.dev]\nrole_arn = \"arn:aws:iam::123456789012:role/dev\"\nsource = \"profile:admin\"\nduration = \"4h\"\nmfa_command = \"{code}\"\nmfa_serial = \"arn:aws:iam::123456789012:mfa/tester\"\n"
    );
    // The role's mfa_command answers the profile's MFA prompt too.
    let d = TestDaemon::custom(
        &template,
        profile_env(dir.path(), "http://127.0.0.1:9"),
        |_| {},
    )
    .await;
    d.sts.require("TokenCode", "424242", 403, "AccessDenied");
    d.ready().await;
    let seen = d.sts.seen();
    let roles: Vec<_> = seen
        .iter()
        .map(|s| s.param("RoleArn").unwrap_or("-").to_string())
        .collect();
    assert_eq!(
        roles,
        [
            "arn:aws:iam::123456789012:role/admin",
            "arn:aws:iam::123456789012:role/dev"
        ]
    );
    assert!(
        seen.iter().all(|s| s.signature_ok),
        "base keys sign the first hop, admin's session the second"
    );
    assert_eq!(
        seen[0].param("SerialNumber"),
        Some("arn:aws:iam::123456789012:mfa/tester")
    );
    for s in &seen {
        assert_eq!(s.param("TokenCode"), Some("424242"), "the command's code");
    }
    // Signed with admin's session credentials: role chaining, capped at 1h
    // although the role asks for 4h.
    assert_eq!(seen[1].param("DurationSeconds"), Some("3600"));
}

#[tokio::test]
async fn a_static_keys_profile_is_served_as_session_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let template = format!("{HEAD}[roles.dev]\nprofile = \"base\"\n");
    let d = TestDaemon::custom(
        &template,
        profile_env(dir.path(), "http://127.0.0.1:9"),
        |_| {},
    )
    .await;
    let body = d.ready().await;
    assert_eq!(d.sts.seen()[0].param("Action"), Some("GetSessionToken"));
    assert!(body["Token"].as_str().is_some_and(|t| !t.is_empty()));
}

#[tokio::test]
async fn an_sso_profile_uses_the_cached_login_and_says_when_to_log_in_again() {
    let dir = tempfile::tempdir().unwrap();
    let template = format!("{HEAD}[roles.dev]\nprofile = \"sso\"\n");
    // A fake portal of its own, so the daemon's environment can name it.
    let sts = FakeSts::start(imdsd::ManualClock::starting_now()).await;
    sts.accept_sso_token("cached-sso-token");
    let cached = cache_sso_login(dir.path(), "cached-sso-token");
    let env = profile_env(dir.path(), &sts.endpoint());
    let d = TestDaemon::custom(&template, env, |_| {}).await;
    let body = d.ready().await;
    assert!(
        body["Token"].as_str().unwrap().contains("-role-Developer-"),
        "{body}"
    );

    // The portal no longer accepts the token: the 503 says what to do.
    let rejecting = FakeSts::start(imdsd::ManualClock::starting_now()).await;
    let env = profile_env(dir.path(), &rejecting.endpoint());
    let d = TestDaemon::custom(&template, env, |_| {}).await;
    d.settle().await;
    let (status, body) = d.credentials().await;
    assert_503(
        status,
        &body,
        Some("SsoLoginRequired"),
        "aws sso login --profile sso",
    );

    // An expired cached token is reported without calling the portal.
    let past =
        (imdsd::Clock::now(&imdsd::SystemClock) - TimeDelta::hours(1)).to_rfc3339();
    std::fs::write(
        &cached,
        format!(r#"{{"accessToken":"cached-sso-token","expiresAt":"{past}"}}"#),
    )
    .unwrap();
    let d =
        TestDaemon::custom(&template, profile_env(dir.path(), &sts.endpoint()), |_| {})
            .await;
    d.settle().await;
    let (_, body) = d.credentials().await;
    assert!(
        body["Message"]
            .as_str()
            .unwrap()
            .contains("has expired: run `aws sso login"),
        "{body}"
    );
}

/// An access token in its last minutes is renewed with the cached refresh
/// token (SSO-OIDC CreateToken) as the CLI v2 does, and the cache file is
/// updated for the CLI and SDKs too; a refused refresh says to log in.
#[tokio::test]
async fn an_sso_token_about_to_expire_is_renewed_with_its_refresh_token() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let template = format!("{HEAD}[roles.dev]\nprofile = \"sso\"\n");
    let sso = FakeSts::start(imdsd::ManualClock::starting_now()).await;
    sso.accept_sso_token("renewed-access-never-used-yet");
    sso.accept_sso_refresh("cached-refresh");
    let cache = dir.path().join(".aws/sso/cache");
    std::fs::create_dir_all(&cache).unwrap();
    let cached = cache.join("ee0bfd2552fbd840c02cc48b6e823320543c450f.json");
    let now = imdsd::Clock::now(&imdsd::SystemClock);
    let soon = (now + TimeDelta::minutes(5)).to_rfc3339();
    let registration = (now + TimeDelta::days(80)).to_rfc3339();
    std::fs::write(
        &cached,
        format!(
            r#"{{"startUrl":"https://corp.awsapps.com/start","region":"us-east-1","accessToken":"old-access","expiresAt":"{soon}","clientId":"client-1","clientSecret":"client-secret","registrationExpiresAt":"{registration}","refreshToken":"cached-refresh"}}"#
        ),
    )
    .unwrap();
    let env = profile_env(dir.path(), &sso.endpoint());
    let d = TestDaemon::custom(&template, env, |_| {}).await;
    let body = d.ready().await;
    assert!(
        body["Token"].as_str().unwrap().contains("-role-Developer-"),
        "{body}"
    );

    let seen = sso.seen();
    assert_eq!(seen[0].param("Action"), Some("CreateToken"));
    assert_eq!(seen[0].param("grantType"), Some("refresh_token"));
    assert_eq!(seen[0].param("clientId"), Some("client-1"));
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cached).unwrap()).unwrap();
    assert_eq!(file["accessToken"], "renewed-access-1");
    assert_eq!(file["refreshToken"], "renewed-refresh-1");
    assert_eq!(
        file["clientSecret"], "client-secret",
        "the registration stays"
    );
    let expires =
        chrono::DateTime::parse_from_rfc3339(file["expiresAt"].as_str().unwrap())
            .unwrap();
    assert!(expires > now + TimeDelta::minutes(55), "{expires}");
    let mode = std::fs::metadata(&cached).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // The session is over (the refresh token is refused): log in again.
    let past = (now - TimeDelta::minutes(1)).to_rfc3339();
    std::fs::write(
        &cached,
        format!(
            r#"{{"accessToken":"old","expiresAt":"{past}","clientId":"c","clientSecret":"s","registrationExpiresAt":"{registration}","refreshToken":"revoked"}}"#
        ),
    )
    .unwrap();
    let env = profile_env(dir.path(), &sso.endpoint());
    let d = TestDaemon::custom(&template, env, |_| {}).await;
    d.settle().await;
    let (status, body) = d.credentials().await;
    assert_503(
        status,
        &body,
        Some("SsoLoginRequired"),
        "aws sso login --profile sso",
    );
}

// === systemd credentials ===

/// `source = "credential:NAME"`: the keys come from
/// `$CREDENTIALS_DIRECTORY/NAME` (as systemd's `LoadCredentialEncrypted=`
/// provides them), are read again on every refresh, and a missing file is
/// a 503 naming the file and the directory.
#[tokio::test]
async fn systemd_credential_source_signs_with_the_keys_in_the_credentials_directory() {
    let creds = tempfile::tempdir().unwrap();
    let dir = creds.path().to_str().unwrap();
    let config = format!(
        "{HEAD}[roles.dev]\nrole_arn = \"arn:aws:iam::123456789012:role/dev\"\nsource = \"credential:aws\"\n"
    );
    let env =
        Environment::from_pairs([("CREDENTIALS_DIRECTORY", dir), ("USER", "tester")]);
    // No file yet: the role says which one it needs.
    let d = TestDaemon::custom(&config, env, |_| {}).await;
    let (status, body) = d.credentials().await;
    assert_503(status, &body, None, &format!("{dir}/aws"));
    assert_503(status, &body, None, "$CREDENTIALS_DIRECTORY");
    assert_eq!(d.sts.calls(), 0, "nothing was sent without keys");
    write(
        creds.path(),
        "aws",
        &format!(
            "[imdsd]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            fake_sts::ACCESS_KEY_ID,
            fake_sts::SECRET_KEY
        ),
    );
    // The next retry (past its backoff) reads the file again.
    d.advance(TimeDelta::minutes(5)).await;
    let served = eventually(Duration::from_secs(5), || async {
        let (status, body) = d.credentials().await;
        (status == 200).then_some(body)
    })
    .await
    .expect("served once the credential exists");
    assert!(served["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));
    let call = d.sts.seen().pop().unwrap();
    assert!(
        call.signed && call.signature_ok,
        "signed with the file's keys"
    );
    assert_eq!(call.param("Action"), Some("AssumeRole"));
}
