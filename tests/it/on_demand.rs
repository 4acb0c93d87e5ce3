//! AWS profiles served on demand (issue 20 §1), in process with a
//! hand-moved clock: nothing is fetched for a profile until a client asks
//! for it, a container request with a parked profile's token starts it,
//! and a role nobody used for `idle_after` parks (no more STS calls) and
//! starts again on its next use.

use std::path::Path;
use std::time::Duration;

use chrono::TimeDelta;
use imdsd::Environment;

use crate::util::{TestDaemon, eventually, request};

/// The default test config (`dev` from the file) with the AWS profiles
/// on demand, idle after an hour.
fn config() -> String {
    format!(
        "{}\n[profiles]\nlisten = \"127.0.0.1:0\"\nidle_after = \"1h\"\n",
        crate::util::CONFIG
    )
}

/// A HOME with `base` (long-term keys) and `p00`..`p99`, each a role
/// assumed with `base`'s keys; token files under `dir/run`.
fn hundred_profiles(dir: &Path) -> Environment {
    let mut config = String::from(
        "[profile base]\nregion = us-east-1\n\n[profile mfa]\n\
         role_arn = arn:aws:iam::123456789012:role/mfa\nsource_profile = base\n\
         mfa_serial = arn:aws:iam::123456789012:mfa/tester\n",
    );
    for i in 0..100 {
        config += &format!(
            "\n[profile p{i:02}]\nrole_arn = arn:aws:iam::123456789012:role/p{i:02}\nsource_profile = base\n"
        );
    }
    crate::util::write_aws_files(dir, &config);
    crate::util::source_env_with(&[
        ("HOME", dir.to_str().unwrap()),
        ("XDG_RUNTIME_DIR", dir.join("run").to_str().unwrap()),
    ])
}

/// The roles the fake STS was asked for, in order.
fn roles_asked(d: &TestDaemon) -> Vec<String> {
    d.sts
        .seen()
        .iter()
        .map(|s| {
            let arn = s.param("RoleArn").unwrap_or("-");
            arn.rsplit('/').next().unwrap_or(arn).to_string()
        })
        .collect()
}

async fn started(dir: &Path) -> TestDaemon {
    let env = hundred_profiles(dir);
    let d = TestDaemon::custom(&config(), env, |o| {
        o.clock_check = Duration::from_millis(50);
    })
    .await;
    d.ready().await;
    d
}

/// The on-demand listener (after the file's `[[imds]]` one).
fn on_demand_addr(d: &TestDaemon) -> std::net::SocketAddr {
    d.daemon().local_addrs()[1]
}

fn token(dir: &Path, role: &str) -> String {
    std::fs::read_to_string(dir.join(format!("run/imdsd/tokens/{role}.token"))).unwrap()
}

/// GETs `role`'s credentials from the on-demand listener, with its token,
/// the way an SDK retries a 503 (at most 5 tries); the last status.
async fn sdk_get(d: &mut TestDaemon, dir: &Path, role: &str) -> u16 {
    let addr = on_demand_addr(d);
    let token = token(dir, role);
    let path = format!("/role/{role}");
    d.serving(async {
        let mut status = 0;
        for _ in 0..5 {
            let r = request(addr, "GET", &path, &[("Authorization", &token)]).await;
            status = r.status;
            if status == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        status
    })
    .await
}

#[tokio::test]
async fn nothing_is_fetched_for_a_profile_until_a_client_asks_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = started(dir.path()).await;
    // Well past the first refresh of `dev`: still only `dev`.
    d.advance(TimeDelta::minutes(50)).await;
    assert!(
        roles_asked(&d).iter().all(|r| r == "dev"),
        "{:?}",
        roles_asked(&d)
    );
    assert!(d.daemon().role("p07").is_none(), "not running");
    // Each profile's token file is there before its first use.
    for role in ["p00", "p07", "p99"] {
        assert!(!token(dir.path(), role).is_empty());
    }
    let unknown = request(on_demand_addr(&d), "GET", "/role/p100", &[]).await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn a_request_with_a_parked_profiles_token_starts_it_and_only_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = started(dir.path()).await;
    let before = roles_asked(&d).len();
    let wrong = d
        .serving(request(
            on_demand_addr(&d),
            "GET",
            "/role/p07",
            &[("Authorization", "not-the-token")],
        ))
        .await;
    assert_eq!(wrong.status, 403, "a wrong token starts nothing");
    assert!(d.daemon().role("p07").is_none());
    assert_eq!(sdk_get(&mut d, dir.path(), "p07").await, 200);
    assert_eq!(roles_asked(&d)[before..], ["p07"]);
    assert!(d.daemon().role("p07").is_some());
    // Running now: served straight away, no other fetch.
    assert_eq!(sdk_get(&mut d, dir.path(), "p07").await, 200);
    assert_eq!(roles_asked(&d)[before..], ["p07"]);
}

#[tokio::test]
async fn an_idle_role_parks_makes_no_more_calls_and_starts_again_on_next_use() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = started(dir.path()).await;
    assert_eq!(sdk_get(&mut d, dir.path(), "p07").await, 200);
    let p07_calls =
        |d: &TestDaemon| roles_asked(d).iter().filter(|r| *r == "p07").count();
    assert_eq!(p07_calls(&d), 1);

    // Used again after 40 minutes: not idle for an hour yet at 80.
    d.advance(TimeDelta::minutes(40)).await;
    assert_eq!(sdk_get(&mut d, dir.path(), "p07").await, 200);
    d.advance(TimeDelta::minutes(40)).await;
    d.serving(tokio::time::sleep(Duration::from_millis(300)))
        .await;
    assert!(d.daemon().role("p07").is_some(), "used 40 minutes ago");
    let refreshed = p07_calls(&d);

    // An hour after the last use it parks: credentials dropped, and the
    // main loop forgets it.
    let slot = d.daemon().role("p07").unwrap().clone();
    d.advance(TimeDelta::minutes(25)).await;
    let dropped = eventually(Duration::from_secs(5), || async {
        slot.load().served.is_none().then_some(())
    })
    .await;
    assert!(dropped.is_some(), "credentials dropped when parked");
    d.serving(tokio::time::sleep(Duration::from_millis(300)))
        .await;
    assert!(
        d.daemon().role("p07").is_none(),
        "parked after an idle hour"
    );
    assert_eq!(p07_calls(&d), refreshed, "parking made no call");

    // Hours later: still no call for it.
    d.advance(TimeDelta::hours(5)).await;
    d.serving(tokio::time::sleep(Duration::from_millis(300)))
        .await;
    assert_eq!(p07_calls(&d), refreshed, "a parked role makes no call");

    // Its token still works: the next use starts it again.
    assert_eq!(sdk_get(&mut d, dir.path(), "p07").await, 200);
    assert_eq!(p07_calls(&d), refreshed + 1);
}

/// A profile declared by a reload while it runs on demand (the same
/// definition, so the plan would keep it) restarts as a declared role,
/// whose refresher never parks.
#[tokio::test]
async fn a_profile_declared_by_a_reload_while_it_runs_never_parks() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = started(dir.path()).await;
    assert_eq!(sdk_get(&mut d, dir.path(), "p07").await, 200);
    let declared = format!("{}\n[roles.p07]\nprofile = \"p07\"\n", config()).replace(
        "listen = \"127.0.0.1:0\"\n\n[sts]",
        "listen = \"127.0.0.1:0\"\nrole = \"dev\"\n\n[sts]",
    );
    d.reload(&declared).await;
    let slot = d.daemon().role("p07").expect("declared").clone();
    let p07_calls =
        |d: &TestDaemon| roles_asked(d).iter().filter(|r| *r == "p07").count();
    let before = p07_calls(&d);
    d.advance(TimeDelta::hours(2)).await;
    d.serving(tokio::time::sleep(Duration::from_millis(300)))
        .await;
    assert!(!slot.is_parked(), "a declared role never parks");
    let refreshed = eventually(Duration::from_secs(5), || async {
        (p07_calls(&d) > before && slot.load().served.is_some()).then_some(())
    })
    .await;
    assert!(
        refreshed.is_some(),
        "refreshed two hours on: {:?}",
        slot.load()
    );
}

/// A profile whose first fetch waits for an MFA code nobody gives parks
/// after `idle_after` even while a client keeps asking for it (its 503s
/// are not uses): it stops asking for the code.
#[tokio::test]
async fn a_fetch_waiting_for_a_code_parks_even_while_clients_keep_asking() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = started(dir.path()).await;
    let addr = on_demand_addr(&d);
    let token = token(dir.path(), "mfa");
    let ask = || {
        let token = token.clone();
        async move { request(addr, "GET", "/role/mfa", &[("Authorization", &token)]).await }
    };
    let first = d
        .serving(eventually(Duration::from_secs(5), || async {
            let r = ask().await;
            r.text().contains("MFA").then_some(r)
        }))
        .await
        .expect("waits for a code");
    assert_eq!(first.status, 503);
    let slot = d.daemon().role("mfa").unwrap().clone();
    d.clock.advance(TimeDelta::minutes(61));
    let parked = d
        .serving(eventually(Duration::from_secs(3), || async {
            ask().await;
            slot.is_parked().then_some(())
        }))
        .await;
    assert!(
        parked.is_some(),
        "still waiting for a code: {:?}",
        slot.load()
    );
    assert!(
        slot.load().waiting_for.is_none(),
        "no MFA request after parking"
    );
}
