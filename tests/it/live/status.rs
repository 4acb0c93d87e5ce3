//! What the daemon shows: `imdsd status`, `/metrics`, `/readyz`.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_metrics_show_state_but_no_secret() {
    let live =
        Live::start(|sts| config(sts, "dev", "[admin]\nlisten = \"127.0.0.1:0\"\n"))
            .await;
    let addr = live.daemon.addr().await;
    live.daemon.log_line("fetched credentials").await;
    let mut seen = Seen::default();
    for _ in 0..3 {
        one_round(addr, &mut seen).await.unwrap();
    }
    let _ = request(
        addr,
        "GET",
        "/latest/meta-data/iam/security-credentials/dev",
        &[],
    )
    .await;
    let socket = live.socket();
    let out = std::process::Command::new(BIN)
        .args(["status", "--socket"])
        .arg(&socket)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("dev") && text.contains("ready") && text.contains("ASIAFAKE"),
        "{text}"
    );
    assert!(text.contains(&addr.to_string()), "{text}");
    let out = std::process::Command::new(BIN)
        .args(["status", "--json", "--socket"])
        .arg(&socket)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["roles"][0]["state"], "ready");
    assert_eq!(json["listeners"][0]["by_status"]["200"], 9);
    assert_eq!(json["listeners"][0]["by_status"]["401"], 1);
    assert!(json["roles"][0]["expires_in_secs"].as_i64().unwrap() > 3000);

    let admin = live.daemon.admin_addr().await;
    let get = |path: &'static str| async move {
        let r = request(admin, "GET", path, &[]).await;
        (r.status, r.text())
    };
    assert_eq!(get("/healthz").await.0, 200);
    let rebinding = crate::util::raw(
        admin,
        b"GET /metrics HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(rebinding.status, 403, "the admin listener checks Host too");
    assert_eq!(get("/readyz").await, (200, "dev: ready\n".to_string()));
    let (status, metrics) = get("/metrics").await;
    assert_eq!(status, 200);
    for needle in [
        "path=\"credentials\",status=\"200\"} 3",
        "path=\"credentials\",status=\"401\"} 1",
        "imdsd_refresh_attempts_total{role=\"dev\"} 1",
        "imdsd_credentials_seconds_to_expiry{role=\"dev\"}",
        "version=\"v2\"",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
    let secrets = [
        fake_sts::SECRET_KEY.to_string(),
        FakeSts::issued_secret(1),
        FakeSts::issued_token(1, "dev"),
    ];
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()) && !metrics.contains(secret.as_str()));
        assert!(
            !serde_json::to_string(&json)
                .unwrap()
                .contains(secret.as_str())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_until_credentials_exist() {
    let live = Live::start(|sts| {
        sts.set_default(Answer::Error {
            status: 403,
            code: "AccessDenied",
        });
        config(sts, "dev", "[admin]\nlisten = \"127.0.0.1:0\"\n")
    })
    .await;
    let admin = live.daemon.admin_addr().await;
    live.daemon.log_line("refresh failed").await;
    let r = request(admin, "GET", "/readyz", &[]).await;
    assert_eq!((r.status, r.text()), (503, "dev: not ready\n".to_string()));
}
