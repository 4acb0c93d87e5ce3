//! The refresh schedule as the running daemon applies it to real answers.

use super::*;

/// Issue 12: STS stamps `Expiration` from its own clock before the answer
/// travels, so a 1h session arrives with a little less than an hour left.
/// It must still be refreshed with 35 to 40 minutes left. Five roles, each
/// with its own jitter draw: with the old half-life classification (30 to
/// 36 minutes left) all five landing in 35..36 by chance is a 1-in-7000
/// event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_hour_session_arriving_late_is_refreshed_35_to_40_minutes_ahead() {
    const ROLES: usize = 5;
    let live = Live::start(|sts| {
        // The fake stamps from a clock that is real time now and then
        // stands still, and answers 300 ms later: the answer arrives with
        // less than an hour left, as from a real STS.
        sts.clock().set(imdsd::Clock::now(&imdsd::SystemClock));
        sts.set_default(Answer::Slow(Duration::from_millis(300)));
        let extra: String = (1..ROLES)
            .map(|i| {
                format!(
                    "[roles.r{i}]\nrole_arn = \"arn:aws:iam::123456789012:role/r{i}\"\nsource = \"env\"\n"
                )
            })
            .collect();
        config(sts, "dev", "").replace("listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:0\"\nrole = \"dev\"")
            + &extra
    })
    .await;
    eventually(Duration::from_secs(10), || async {
        let fetched = live
            .daemon
            .lines()
            .iter()
            .filter(|l| l.contains("fetched credentials"))
            .count();
        (fetched == ROLES).then_some(())
    })
    .await
    .expect("every role fetched");
    let out = std::process::Command::new(BIN)
        .args(["status", "--json", "--socket"])
        .arg(live.socket())
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let roles = status["roles"].as_array().unwrap();
    assert_eq!(roles.len(), ROLES, "{status}");
    for role in roles {
        let expires = role["expires_in_secs"].as_i64().unwrap();
        let next = role["next_refresh_in_secs"].as_i64().unwrap();
        assert!(
            expires < 3600,
            "the session arrived short of an hour: {role}"
        );
        let lead = expires - next;
        // Both figures are whole seconds, read at the same instant.
        assert!(
            (35 * 60 - 1..=40 * 60 + 1).contains(&lead),
            "refresh {lead} s before expiry, not 35 to 40 minutes: {role}"
        );
    }
}
