//! Stop signals at odd moments.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    let live = Live::start(|sts| {
        sts.set_default(Answer::Hang);
        config(sts, "dev", "")
    })
    .await;
    let addr = live.daemon.addr().await;
    let r = request(addr, "PUT", "/latest/api/token", &[(TTL, "60")]).await;
    let token = r.text();
    // This request waits (up to 400 ms) for the hung first fetch, which
    // keeps the drain busy.
    let pending = tokio::spawn(async move {
        request(
            addr,
            "GET",
            "/latest/meta-data/iam/security-credentials/dev",
            &[(TOKEN, &token)],
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    live.daemon.signal("-TERM");
    tokio::time::sleep(Duration::from_millis(50)).await;
    live.daemon.signal("-TERM");
    let Live { daemon, .. } = live;
    let (status, log) = daemon.wait().await;
    assert_eq!(status.code(), Some(130), "{log:#?}");
    let _ = pending.await;
}

/// SIGTERM while the first fetch is still hanging: the daemon stops at
/// once instead of waiting out the first-fetch limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_hung_first_fetch_stops_promptly() {
    let live = Live::start(|sts| {
        sts.set_default(Answer::Hang);
        config(sts, "dev", "").replace("timeout = \"2s\"", "timeout = \"60s\"")
    })
    .await;
    live.daemon.addr().await;
    eventually(Duration::from_secs(5), || async {
        (live.sts.calls() == 1).then_some(())
    })
    .await
    .unwrap();
    live.daemon.signal("-TERM");
    let Live { daemon, .. } = live;
    let waited = tokio::time::timeout(Duration::from_secs(15), daemon.wait()).await;
    let (status, log) = waited.expect("stopped well before the 30 s first-fetch limit");
    assert_eq!(status.code(), Some(0), "{log:#?}");
}
