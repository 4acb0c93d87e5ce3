//! Reload semantics checked in process, deterministically: what is kept,
//! what is fetched again, and the grace for a renamed role.

use chrono::TimeDelta;

use crate::util::{CONFIG, CREDS_PATH, TestDaemon};

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
    assert_eq!(summary, imdsd::app::ReloadSummary::default());
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
