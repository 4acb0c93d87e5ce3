//! No local client can starve the others (issue 9): idle connections make
//! room for new ones, each peer holds at most its share of the cap, and a
//! peer's request rate is limited (429). Timings are checked by
//! `bench/fairness.sh`, not here; these tests check who gets served.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::util::{CONFIG, TestDaemon, request, source_env};

const TOKEN: &str = "x-aws-ec2-metadata-token";

async fn daemon(tweak: impl FnOnce(&mut imdsd::Options)) -> TestDaemon {
    TestDaemon::custom(CONFIG, source_env(), tweak).await
}

/// Whether the server closed `stream` (EOF) within a second.
async fn closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

/// curl as `nobody`: another local user. Its HTTP status, or 0 when the
/// connection failed.
fn curl_as_nobody(url: &str, token: &str) -> u16 {
    let header = format!("{TOKEN}: {token}");
    let args = [
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        &header,
        url,
    ];
    let out = crate::process::program_as_nobody("curl", &args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0)
}

#[tokio::test]
async fn at_the_cap_the_longest_idle_connection_makes_room() {
    let d = daemon(|o| o.limits.max_connections = 2).await;
    let token = d.token(60).await;
    let mut oldest = TcpStream::connect(d.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut newer = TcpStream::connect(d.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The pool is full of idle connections; a new client is served at once.
    let r = tokio::time::timeout(
        Duration::from_secs(2),
        request(
            d.addr,
            "GET",
            "/latest/meta-data/instance-id",
            &[(TOKEN, &token)],
        ),
    )
    .await
    .expect("served without waiting for a slot");
    assert_eq!(r.status, 200);
    assert!(
        closed(&mut oldest).await,
        "the connection idle longest was closed"
    );
    assert!(!closed(&mut newer).await, "the newer one was left alone");
}

#[tokio::test]
async fn a_peer_at_its_share_recycles_its_own_connections_and_others_get_in() {
    let d = daemon(|o| {
        o.limits.max_connections = 4;
        o.limits.max_connections_per_peer = 2;
    })
    .await;
    let token = d.token(60).await;
    let mut first = TcpStream::connect(d.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut second = TcpStream::connect(d.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // A third connection of this user: its own oldest idle one goes.
    let r = request(
        d.addr,
        "GET",
        "/latest/meta-data/instance-id",
        &[(TOKEN, &token)],
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(closed(&mut first).await);
    assert!(!closed(&mut second).await);
    // Another user still has room and is served.
    let url = format!("http://{}/latest/meta-data/instance-id", d.addr);
    let status = tokio::task::spawn_blocking(move || curl_as_nobody(&url, &token))
        .await
        .unwrap();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_peer_over_its_request_rate_gets_429_and_others_do_not() {
    let d = daemon(|o| {
        o.limits.request_burst = 3.0;
        o.limits.requests_per_second = 0.001;
    })
    .await;
    let token = d.token(60).await; // one request
    let path = "/latest/meta-data/instance-id";
    for _ in 0..2 {
        assert_eq!(
            request(d.addr, "GET", path, &[(TOKEN, &token)])
                .await
                .status,
            200
        );
    }
    let r = request(d.addr, "GET", path, &[(TOKEN, &token)]).await;
    assert_eq!(r.status, 429, "{r:?}");
    assert_eq!(r.header("retry-after"), Some("1"));
    let url = format!("http://{}{path}", d.addr);
    let status = tokio::task::spawn_blocking(move || curl_as_nobody(&url, &token))
        .await
        .unwrap();
    assert_eq!(status, 200, "another user is not throttled");
}
