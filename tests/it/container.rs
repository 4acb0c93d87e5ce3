//! The container-credentials endpoint over real HTTP (sdk-contract.md 1.6,
//! items 33 to 38): paths, tokens and their files, errors, reloads.

use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::fake_sts::Answer;
use crate::util::{Resp, TestDaemon, assert_503, eventually, raw, request};

/// An IMDS listener for `dev` and a container listener for `dev` and
/// `ops`, tokens in `{tmp}/tokens`.
pub const CONFIG: &str = r#"
[[imds]]
listen = "127.0.0.1:0"
role = "dev"

[[container]]
listen = "127.0.0.1:0"
roles = ["dev", "ops"]
token_dir = "{tmp}/tokens"

[sts]
endpoint = "{sts}"
timeout = "1s"

[roles.dev]
role_arn = "arn:aws:iam::123456789012:role/dev"
source = "env"

[roles.ops]
role_arn = "arn:aws:iam::123456789012:role/ops"
source = "env"
"#;

pub fn container_addr(d: &TestDaemon) -> SocketAddr {
    d.daemon().local_addrs()[1]
}

fn token_path(d: &TestDaemon, role: &str) -> PathBuf {
    d.tmp().join(format!("tokens/{role}.token"))
}

pub fn token(d: &TestDaemon, role: &str) -> String {
    std::fs::read_to_string(token_path(d, role)).unwrap()
}

async fn get(d: &TestDaemon, role: &str, authorization: Option<&str>) -> Resp {
    let headers: Vec<(&str, &str)> = authorization
        .map(|t| ("Authorization", t))
        .into_iter()
        .collect();
    request(container_addr(d), "GET", &format!("/role/{role}"), &headers).await
}

/// Waits (bounded) until `role` is served with `token`.
pub async fn served(d: &TestDaemon, role: &str, token: &str) -> serde_json::Value {
    eventually(Duration::from_secs(5), || async {
        let r = get(d, role, Some(token)).await;
        (r.status == 200).then(|| r.json())
    })
    .await
    .unwrap_or_else(|| panic!("role {role} not served"))
}

#[tokio::test]
async fn c33_each_role_has_its_path_and_its_token_file() {
    let d = TestDaemon::with_config(CONFIG).await;
    let (dev, ops) = (token(&d, "dev"), token(&d, "ops"));
    assert_ne!(dev, ops);
    let body = served(&d, "dev", &dev).await;
    assert_eq!(body["AccountId"], "123456789012");
    let ops_body = served(&d, "ops", &ops).await;
    assert_ne!(body["AccessKeyId"], ops_body["AccessKeyId"]);
    assert!(
        ops_body["Token"].as_str().unwrap().contains("-role-ops"),
        "{ops_body}"
    );
    // A role's token opens its own path only.
    let r = get(&d, "ops", Some(&dev)).await;
    assert_eq!(r.status, 403, "{r:?}");
}

#[tokio::test]
async fn c35_token_files_are_0600_with_no_trailing_newline() {
    let d = TestDaemon::with_config(CONFIG).await;
    let bytes = std::fs::read(token_path(&d, "dev")).unwrap();
    assert_eq!(bytes.len(), 43, "{bytes:?}");
    assert!(!bytes.ends_with(b"\n") && !bytes.ends_with(b"\r"));
    let meta = std::fs::metadata(token_path(&d, "dev")).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(meta.uid(), imdsd::current_uid());
}

#[tokio::test]
async fn token_files_take_the_configured_group_and_mode() {
    let gid = std::fs::metadata("/proc/self").unwrap().gid();
    let config = CONFIG.replace(
        "token_dir = \"{tmp}/tokens\"",
        &format!("token_dir = \"{{tmp}}/tokens\"\ntoken_file_owner = \":{gid}\"\ntoken_file_mode = \"0640\""),
    );
    let d = TestDaemon::with_config(&config).await;
    let meta = std::fs::metadata(token_path(&d, "ops")).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o640);
    assert_eq!(meta.gid(), gid);
}

#[tokio::test]
async fn c37_the_answer_is_json_with_every_field_sdks_read() {
    let d = TestDaemon::with_config(CONFIG).await;
    let tok = token(&d, "dev");
    served(&d, "dev", &tok).await;
    let r = get(&d, "dev", Some(&tok)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    for field in [
        "AccessKeyId",
        "SecretAccessKey",
        "Token",
        "Expiration",
        "AccountId",
    ] {
        assert!(body[field].is_string(), "{field}: {body}");
    }
    let expiration = body["Expiration"].as_str().unwrap();
    assert!(
        chrono::NaiveDateTime::parse_from_str(expiration, "%Y-%m-%dT%H:%M:%SZ").is_ok(),
        "{expiration}"
    );
    let left = chrono::DateTime::parse_from_rfc3339(expiration)
        .unwrap()
        .timestamp()
        - imdsd::Clock::now(&*d.clock).timestamp();
    assert!(left >= 30 * 60, "served with {left} s left");
}

#[tokio::test]
async fn c34_missing_or_wrong_authorization_is_a_json_403() {
    let d = TestDaemon::with_config(CONFIG).await;
    let tok = token(&d, "dev");
    for (auth, needle) in [
        (None, "needs its token"),
        (Some("wrong"), "is not role `dev`'s token"),
        (
            Some(&format!("Bearer {tok}")[..]),
            "is not role `dev`'s token",
        ),
    ] {
        let r = get(&d, "dev", auth).await;
        assert_eq!(r.status, 403, "{auth:?}: {r:?}");
        let body = r.json();
        assert_eq!(body["Code"], "AccessDenied");
        assert!(body["Message"].as_str().unwrap().contains(needle), "{body}");
        assert!(!r.text().contains(&tok), "the token is never echoed");
    }
}

#[tokio::test]
async fn unknown_roles_paths_and_methods_are_json_errors() {
    let d = TestDaemon::with_config(CONFIG).await;
    let tok = token(&d, "dev");
    let r = get(&d, "nope", Some(&tok)).await;
    assert_eq!(
        (r.status, r.json()["Code"].as_str()),
        (404, Some("NotFound"))
    );
    let r = request(container_addr(&d), "GET", "/", &[("Authorization", &tok)]).await;
    assert_eq!(r.status, 404);
    let r = request(
        container_addr(&d),
        "POST",
        "/role/dev",
        &[("Authorization", &tok)],
    )
    .await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn foreign_hosts_browsers_and_proxied_requests_are_refused() {
    let d = TestDaemon::with_config(CONFIG).await;
    let tok = token(&d, "dev");
    served(&d, "dev", &tok).await;
    for extra in [
        ("Origin", "http://evil.example"),
        ("X-Forwarded-For", "10.0.0.9"),
        ("Sec-Fetch-Site", "cross-site"),
    ] {
        let r = request(
            container_addr(&d),
            "GET",
            "/role/dev",
            &[("Authorization", &tok), extra],
        )
        .await;
        assert_eq!(r.status, 403, "{extra:?}");
    }
}

/// The `Host` check over real HTTP: a valid token does not open the path
/// for a request naming another host (DNS rebinding), and two `Host`
/// headers are a malformed request.
#[tokio::test]
async fn a_foreign_or_doubled_host_is_refused_even_with_the_token() {
    let d = TestDaemon::with_config(CONFIG).await;
    let tok = token(&d, "dev");
    let addr = container_addr(&d);
    let send = |host: String| {
        let head = format!(
            "GET /role/dev HTTP/1.1\r\n{host}Authorization: {tok}\r\nConnection: close\r\n\r\n"
        );
        async move { raw(addr, head.as_bytes()).await }
    };
    let ok = eventually(Duration::from_secs(5), || async {
        let r = send(format!("Host: {addr}\r\n")).await;
        (r.status == 200).then_some(r)
    })
    .await;
    assert!(ok.is_some(), "the same request with the listener's Host");
    let r = send("Host: evil.example\r\n".into()).await;
    assert_eq!(r.status, 403, "foreign Host: {r:?}");
    assert_eq!(r.json()["Code"], "AccessDenied", "{r:?}");
    let r = send(format!("Host: {addr}\r\nHost: {addr}\r\n")).await;
    assert_eq!(r.status, 400, "doubled Host: {r:?}");
}

#[tokio::test]
async fn c38_nothing_servable_is_the_same_json_503_as_imds() {
    let d = TestDaemon::with_config(CONFIG).await;
    d.sts.set_default(Answer::Error {
        status: 403,
        code: "AccessDenied",
    });
    let config = CONFIG.replace("role/ops", "role/ops2");
    let mut d = d;
    d.reload(&config).await;
    let tok = token(&d, "ops");
    let r = get(&d, "ops", Some(&tok)).await;
    assert_503(r.status, &r.json(), Some("AccessDenied"), "role `ops`");
}

#[tokio::test]
async fn a_config_with_only_container_listeners_opens_no_imds_listener() {
    let config =
        CONFIG.replace("[[imds]]\nlisten = \"127.0.0.1:0\"\nrole = \"dev\"\n", "");
    let d = TestDaemon::with_config(&config).await;
    assert_eq!(d.daemon().local_addrs().len(), 1);
    let addr = d.daemon().local_addrs()[0];
    let r = request(
        addr,
        "GET",
        "/latest/meta-data/iam/security-credentials/",
        &[],
    )
    .await;
    assert_eq!(r.status, 404, "the container listener does not speak IMDS");
}

/// Tokens are derived from the state key and the role's definition: the
/// same after a restart and after a reload that leaves the role alone.
#[tokio::test]
async fn tokens_survive_restarts_and_unchanged_reloads() {
    let mut d = TestDaemon::with_config(CONFIG).await;
    let before = token(&d, "dev");
    let summary = d.reload(&CONFIG.replace("role/ops", "role/ops2")).await;
    assert_eq!(summary.roles_started, vec!["ops".to_string()]);
    assert_eq!(
        token(&d, "dev"),
        before,
        "an unchanged role keeps its token"
    );
    let tmp_dir = d.tmp().to_path_buf();
    let (clock, sts, state, tmp) = d.stop().await;
    let d = TestDaemon::start_with(CONFIG, clock, sts, state, tmp).await;
    assert_eq!(d.tmp(), tmp_dir);
    assert_eq!(token(&d, "dev"), before, "a restart keeps it too");
}

/// A changed role gets a new token; the old one keeps working for a minute,
/// so a client that read the file just before the reload is still served.
#[tokio::test]
async fn a_changed_role_rotates_its_token_with_a_grace_period() {
    let mut d = TestDaemon::with_config(CONFIG).await;
    let old = token(&d, "ops");
    served(&d, "ops", &old).await;
    d.reload(&CONFIG.replace("role/ops", "role/ops2")).await;
    let new = token(&d, "ops");
    assert_ne!(old, new);
    served(&d, "ops", &new).await;
    assert_eq!(
        get(&d, "ops", Some(&old)).await.status,
        200,
        "within the grace"
    );
    d.clock.advance(chrono::TimeDelta::seconds(61));
    assert_eq!(
        get(&d, "ops", Some(&old)).await.status,
        403,
        "after the grace"
    );
    assert_eq!(get(&d, "ops", Some(&new)).await.status, 200);
}

/// A role removed from a listener loses its path and its token file.
#[tokio::test]
async fn a_role_removed_from_the_listener_loses_its_path_and_file() {
    let mut d = TestDaemon::with_config(CONFIG).await;
    let tok = token(&d, "ops");
    d.reload(&CONFIG.replace("roles = [\"dev\", \"ops\"]", "roles = [\"dev\"]"))
        .await;
    assert!(!token_path(&d, "ops").exists());
    assert_eq!(get(&d, "ops", Some(&tok)).await.status, 404);
    assert!(token_path(&d, "dev").exists());
}

/// Reads the token file on every request, as SDKs do, while a reload
/// rotates it: no request fails, and both the old and the new token were
/// accepted along the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reading_the_file_each_time_never_fails_across_a_rotation() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let mut d = TestDaemon::with_config(CONFIG).await;
    let first = token(&d, "ops");
    served(&d, "ops", &first).await;
    let addr = container_addr(&d);
    let path = token_path(&d, "ops");
    let rounds = std::sync::Arc::new(AtomicUsize::new(0));
    let reloaded = std::sync::Arc::new(AtomicBool::new(false));
    let (counter, done) = (rounds.clone(), reloaded.clone());
    let client = tokio::spawn(async move {
        let mut failures = Vec::new();
        let mut accepted = std::collections::BTreeSet::new();
        // 20 rounds after the reload returned (at most 2000 in all).
        let mut after = 0;
        while after < 20 && counter.load(Ordering::Relaxed) < 2000 {
            counter.fetch_add(1, Ordering::Relaxed);
            after += usize::from(done.load(Ordering::Relaxed));
            let tok = std::fs::read_to_string(&path).unwrap();
            let r = request(addr, "GET", "/role/ops", &[("Authorization", &tok)]).await;
            if r.status == 200 {
                accepted.insert(tok);
            } else {
                failures.push(format!("{}: {}", r.status, r.text()));
            }
        }
        (accepted, failures)
    });
    eventually(Duration::from_secs(5), || async {
        (rounds.load(Ordering::Relaxed) > 10).then_some(())
    })
    .await
    .expect("the client is running");
    d.reload(&CONFIG.replace("role/ops", "role/ops2")).await;
    reloaded.store(true, Ordering::Relaxed);
    let (accepted, failures) = client.await.unwrap();
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(accepted.len(), 2, "the old and the new token: {accepted:?}");
    assert!(accepted.contains(&first), "{accepted:?}");
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `imdsd check` names each bad container setting with its line and column.
#[test]
fn check_refuses_bad_container_settings_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let bad = r#"[[container]]
listen = "[::1]:16927"
roles = ["dev", "dev", "nope"]
token_dir = "relative/dir"
token_file_mode = "0644"
token_file_owner = "alice"

[roles.dev]
role_arn = "arn:aws:iam::123456789012:role/dev"
source = "env"
"#;
    let path = write(dir.path(), "bad.toml", bad);
    let out = std::process::Command::new(crate::process::BIN)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    let p = path.display();
    for needle in [
        format!("{p}:2:10: error: container[0].listen: SDKs refuse ::1"),
        format!("{p}:3:17: error: container[0].roles: `dev` is listed twice"),
        format!("{p}:3:24: error: container[0].roles: no role named `nope`"),
        format!("{p}:4:13: error: container[0].token_dir: must be an absolute path"),
        format!("{p}:5:19: error: container[0].token_file_mode: 0644 is not allowed"),
        format!(
            "{p}:6:20: error: container[0].token_file_owner: `alice` is not a numeric"
        ),
    ] {
        assert!(err.contains(&needle), "missing `{needle}` in:\n{err}");
    }
}

/// A token directory the daemon's user may not write is a `check` error,
/// with its position (run as `nobody`, since root may write anywhere).
#[test]
fn check_refuses_a_token_dir_the_daemon_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let text = format!(
        "[[container]]\ntoken_dir = \"{}/tokens\"\n[roles.dev]\nrole_arn = \"arn:aws:iam::123456789012:role/dev\"\nsource = \"env\"\n",
        locked.display()
    );
    let path = write(dir.path(), "imdsd.toml", &text);
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .unwrap();
    let out = crate::process::as_nobody(&["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(
        err.contains(&format!(
            "{}:2:13: error: container[0].token_dir: imdsd may not write",
            path.display()
        )),
        "{err}"
    );
}
