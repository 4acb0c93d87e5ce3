//! Reload semantics checked in process, deterministically: what is kept,
//! what is fetched again, the grace for a renamed role, and a failed
//! reload changing nothing.

use std::time::Duration;

use chrono::TimeDelta;

use crate::fake_sts::FakeSts;
use crate::util::{CONFIG, CREDS_PATH, TestDaemon, eventually};

#[tokio::test]
async fn a_renamed_role_is_still_answered_under_its_old_name_for_a_grace_period() {
    let mut d = TestDaemon::start().await;
    d.ready().await;
    let summary = d
        .reload(&CONFIG.replace("[roles.dev]", "[roles.prod]"))
        .await;
    assert_eq!(summary.roles_started, vec!["prod".to_string()]);
    assert_eq!(summary.listeners_switched, vec![d.addr]);
    assert_eq!(
        d.get("/latest/meta-data/iam/security-credentials/")
            .await
            .text(),
        "prod"
    );
    assert_eq!(
        d.get(CREDS_PATH).await.status,
        200,
        "old name during the grace period"
    );
    d.clock.advance(TimeDelta::seconds(31));
    assert_eq!(
        d.get(CREDS_PATH).await.status,
        404,
        "old name after the grace period"
    );
    assert_eq!(
        d.get("/latest/meta-data/iam/security-credentials/prod")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn an_identical_config_changes_nothing_and_calls_sts_no_more() {
    let mut d = TestDaemon::start().await;
    d.ready().await;
    let summary = d.reload(CONFIG).await;
    assert_eq!(summary, imdsd::ReloadSummary::default());
    assert_eq!(d.sts.calls(), 1);
}

#[tokio::test]
async fn a_changed_role_is_fetched_before_the_listener_switches() {
    let mut d = TestDaemon::start().await;
    let before = d.ready().await;
    d.reload(&CONFIG.replace("role/dev", "role/dev2")).await;
    // The switch happened after the new role's first fetch: the very next
    // request gets the new credentials, with no 503 in between.
    let r = d.get(CREDS_PATH).await;
    assert_eq!(r.status, 200);
    assert_ne!(r.json()["AccessKeyId"], before["AccessKeyId"]);
    assert!(r.json()["Token"].as_str().unwrap().contains("-role-dev2-"));
}

/// `allow_uids` added by a reload applies to connections that were already
/// open, not only to new ones.
#[tokio::test]
async fn allow_uids_added_by_a_reload_applies_to_open_keep_alive_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut d = TestDaemon::start().await;
    let mut conn = tokio::net::TcpStream::connect(d.addr).await.unwrap();
    let put = format!(
        "PUT /latest/api/token HTTP/1.1\r\nHost: {}\r\nX-aws-ec2-metadata-token-ttl-seconds: 60\r\nContent-Length: 0\r\n\r\n",
        d.addr
    );
    let mut buf = vec![0u8; 4096];
    conn.write_all(put.as_bytes()).await.unwrap();
    let n = conn.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    let other = imdsd::current_uid().wrapping_add(4242);
    let restricted = CONFIG.replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:0\"\nallow_uids = [{other}]"),
    );
    d.reload(&restricted).await;
    conn.write_all(put.as_bytes()).await.unwrap();
    let n = conn.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 403"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
}

/// A new `[sts] timeout` applies to the next fetch, without restarting
/// the role.
#[tokio::test]
async fn a_new_sts_timeout_takes_effect_without_a_restart() {
    let mut d = TestDaemon::start().await;
    d.sts.set_default(crate::fake_sts::Answer::Slow(
        std::time::Duration::from_millis(1500),
    ));
    d.settle().await;
    assert_eq!(
        d.credentials().await.1["Code"],
        "Timeout",
        "1s is too short for this STS"
    );
    let summary = d
        .reload(&CONFIG.replace("timeout = \"1s\"", "timeout = \"5s\""))
        .await;
    assert!(summary.roles_started.is_empty(), "{summary:?}");
    d.advance(TimeDelta::minutes(2)).await;
    assert_eq!(d.credentials().await.0, 200);
}

/// The container tests' config (IMDS for `dev`; container for `dev` and
/// `ops`, tokens in `{tmp}/tokens`) with an audit log, `{tmp}/AUDIT`.
fn audited(audit: &str) -> String {
    format!(
        "[daemon]\naudit_log = \"{{tmp}}/{audit}\"\n{}",
        crate::container::CONFIG
    )
}

/// STS calls `sts` saw for role `dev`.
fn dev_calls(sts: &FakeSts) -> usize {
    let seen = sts.seen();
    seen.iter()
        .filter(|s| s.param("RoleArn").is_some_and(|a| a.ends_with("/dev")))
        .count()
}

/// Waits (bounded) until `path` holds `n` audit lines.
async fn audit_lines(path: &std::path::Path, n: usize) {
    eventually(Duration::from_secs(5), || async {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        (text.lines().count() == n).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("not {n} audit lines in {}", path.display()));
}

/// Issue 19 §4: a reload whose last fallible step (preparing the token
/// files) fails leaves the audit log and the STS endpoint as they were,
/// although both changed in the new config and the new roles' first fetch
/// already used the new STS.
#[tokio::test]
async fn a_reload_failing_at_its_last_step_keeps_the_audit_log_and_sts() {
    let mut d = TestDaemon::with_config(&audited("old.log")).await;
    d.ready().await;
    let (old_log, new_log) = (d.tmp().join("old.log"), d.tmp().join("new.log"));
    audit_lines(&old_log, 1).await;
    let other = FakeSts::start(d.clock.clone()).await;
    // The token directory becomes a file: the new tokens cannot be written.
    let tokens = d.tmp().join("tokens");
    std::fs::remove_dir_all(&tokens).unwrap();
    std::fs::write(&tokens, "not a directory").unwrap();
    let new = audited("new.log").replace("{sts}", &other.endpoint());
    let err = d
        .try_reload(&new)
        .await
        .expect_err("the token file cannot be written");
    assert!(err.contains("tokens"), "{err}");
    assert_eq!(
        dev_calls(&other),
        1,
        "the new role's first fetch used the new STS"
    );

    // The audit log keeps going to the old file.
    d.ready().await;
    audit_lines(&old_log, 2).await;
    assert!(
        !new_log.exists(),
        "the failed reload's audit log was opened"
    );
    // STS calls keep going to the old endpoint.
    let calls = dev_calls(&d.sts);
    d.advance(TimeDelta::minutes(30)).await;
    assert_eq!(
        dev_calls(&d.sts),
        calls + 1,
        "the refresh went to the old STS"
    );
    assert_eq!(dev_calls(&other), 1, "nothing more went to the new STS");
    assert_eq!(d.credentials().await.0, 200);
}
