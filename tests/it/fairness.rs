//! No local client can starve the others (issue 9), and nobody is refused
//! while the listener can serve (issue 22): idle connections make room for
//! new ones, each peer holds at most its share of the cap, and a peer's
//! request rate is limited (429) only while the listener is full and it
//! holds more than its share. Timings are checked by `bench/fairness.sh`,
//! not here; these tests check who gets served.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::Instant;

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

const CREDS: &str = "/latest/meta-data/iam/security-credentials/dev";

/// The two load tests below take turns: each saturates this test binary's
/// CPU, which would slow the other's measured flow for reasons of its own.
static LOAD: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const TTL: &str = "X-aws-ec2-metadata-token-ttl-seconds";

/// One keep-alive connection, as SDKs hold them.
struct KeepAlive {
    stream: BufReader<TcpStream>,
    host: std::net::SocketAddr,
}

impl KeepAlive {
    async fn open(addr: std::net::SocketAddr) -> std::io::Result<KeepAlive> {
        let stream = BufReader::new(TcpStream::connect(addr).await?);
        Ok(KeepAlive { stream, host: addr })
    }

    /// Sends one request with one extra header; its answer's status and
    /// body.
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        (name, value): (&str, &str),
    ) -> std::io::Result<(u16, String)> {
        let length = if method == "PUT" {
            "Content-Length: 0\r\n"
        } else {
            ""
        };
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{name}: {value}\r\n{length}\r\n",
            self.host
        );
        self.stream.get_mut().write_all(request.as_bytes()).await?;
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status = line.split(' ').nth(1).and_then(|s| s.parse().ok());
        let mut length = 0;
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            if let Some(n) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = n.trim().parse().unwrap_or(0);
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0u8; length];
        self.stream.read_exact(&mut body).await?;
        let status = status.ok_or(std::io::ErrorKind::InvalidData)?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// An SDK's credentials fetch on this connection: a token, then the
    /// credentials with it. Both statuses.
    async fn sdk_pair(&mut self) -> std::io::Result<[u16; 2]> {
        let (put, token) = self.send("PUT", "/latest/api/token", (TTL, "60")).await?;
        let (get, _) = self.send("GET", CREDS, (TOKEN, &token)).await?;
        Ok([put, get])
    }
}

/// An SDK's credentials fetch, each request on a new connection.
async fn sdk_flow(addr: std::net::SocketAddr) -> std::io::Result<[u16; 2]> {
    let (put, token) = KeepAlive::open(addr)
        .await?
        .send("PUT", "/latest/api/token", (TTL, "60"))
        .await?;
    let (get, _) = KeepAlive::open(addr)
        .await?
        .send("GET", CREDS, (TOKEN, &token))
        .await?;
    Ok([put, get])
}

/// The listener is idle but for this client: even a tiny configured rate
/// refuses nothing (the landed code gave the fourth request a 429).
#[tokio::test]
async fn an_idle_listener_throttles_nobody_whatever_the_rate() {
    let d = daemon(|o| {
        o.limits.request_burst = 3.0;
        o.limits.requests_per_second = 0.001;
    })
    .await;
    d.ready().await;
    let mut conn = KeepAlive::open(d.addr).await.unwrap();
    for _ in 0..10 {
        assert_eq!(conn.sdk_pair().await.unwrap(), [200, 200]);
    }
}

/// One user's burst of 20,000 token + credentials pairs on 64 keep-alive
/// connections (a parallel test run): every answer is a 200 (the landed
/// code answered 19,400 of them with 429).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_users_burst_of_20000_pairs_on_64_connections_gets_no_429() {
    let _turn = LOAD.lock().await;
    let d = daemon(|_| {}).await;
    d.ready().await;
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let addr = d.addr;
            let pairs = 20_000 / 64 + usize::from(i < 20_000 % 64);
            tokio::spawn(async move {
                let mut conn = KeepAlive::open(addr).await.unwrap();
                let mut refused = 0;
                for _ in 0..pairs {
                    let statuses = conn.sdk_pair().await.unwrap();
                    refused += statuses.iter().filter(|s| **s != 200).count();
                }
                (pairs, refused)
            })
        })
        .collect();
    let (mut pairs, mut refused) = (0, 0);
    for task in tasks {
        let (p, r) = task.await.unwrap();
        pairs += p;
        refused += r;
    }
    assert_eq!((pairs, refused), (20_000, 0));
}

/// Another process of the same user trickles one request per connection
/// every 3 s on 1,100 connections (more than the user's share: it keeps
/// recycling its own); meanwhile the user's SDK flow, each request on a
/// new connection, succeeds every time within 1 s (the landed code's rate
/// limit ran dry after a few seconds and answered it with 429).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_sdk_flow_succeeds_while_its_other_process_trickles_on_1100_connections()
 {
    let _turn = LOAD.lock().await;
    let d = daemon(|_| {}).await;
    d.ready().await;
    let addr = d.addr;
    let until = Instant::now() + Duration::from_secs(10);
    // Each connection starts at its own moment in the first 3 s, as a
    // trickle does.
    let trickle: Vec<_> = (0..1100u32)
        .map(|i| {
            let start = Instant::now() + Duration::from_secs(3) * i / 1100;
            tokio::spawn(trickle_until(addr, start, until))
        })
        .collect();
    let mut flows = 0;
    while Instant::now() < until {
        let started = Instant::now();
        let flow = tokio::time::timeout(Duration::from_secs(1), sdk_flow(addr)).await;
        let statuses = flow
            .unwrap_or_else(|_| panic!("the SDK flow took over 1 s (flow {flows})"))
            .unwrap_or_else(|e| {
                panic!("flow {flows} failed after {:?}: {e}", started.elapsed())
            });
        assert_eq!(
            statuses,
            [200, 200],
            "flow {flows} after {:?}",
            started.elapsed()
        );
        flows += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut answered = 0;
    for task in trickle {
        answered += task.await.unwrap();
    }
    assert!(flows >= 20, "only {flows} flows ran");
    assert!(
        answered >= 1100,
        "the trickle itself was served: {answered}"
    );
}

/// One request every 3 s on one connection from `start` until `until`,
/// reconnecting at once when the pool recycled it (a client keeps its
/// pool); the number of answers (any status but 429, which fails the
/// test).
async fn trickle_until(
    addr: std::net::SocketAddr,
    start: Instant,
    until: Instant,
) -> usize {
    tokio::time::sleep_until(start).await;
    let mut answered = 0;
    let mut conn: Option<KeepAlive> = None;
    while Instant::now() < until {
        for _attempt in 0..2 {
            if conn.is_none() {
                conn = KeepAlive::open(addr).await.ok();
            }
            let Some(c) = conn.as_mut() else { break };
            match c
                .send("GET", "/latest/meta-data/instance-id", ("X-Trickle", "1"))
                .await
            {
                Ok((200 | 401, _)) => {
                    answered += 1;
                    break;
                }
                Ok((status, _)) => panic!("the trickle got {status}"),
                Err(_) => conn = None,
            }
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    answered
}

/// The listener is full (4 connections) and this user holds 3 of them
/// while another user holds 1: this user is over its share, so its
/// request rate applies (429 with `Retry-After`), and the other user is
/// still served.
#[tokio::test]
async fn over_its_share_of_a_full_listener_a_peer_is_throttled_and_others_are_not() {
    let d = daemon(|o| {
        o.limits.max_connections = 4;
        o.limits.max_connections_per_peer = 4;
        o.limits.request_burst = 3.0;
        o.limits.requests_per_second = 0.001;
    })
    .await;
    d.ready().await;
    let token = d.token(60).await;
    // Another user holds one connection open for the test's length.
    let hold = format!(
        "exec 3<>/dev/tcp/{}/{} && echo held && sleep 20",
        d.addr.ip(),
        d.addr.port()
    );
    let mut holder = crate::process::program_as_nobody("bash", &["-c", &hold])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut held = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
        &mut held,
    )
    .unwrap();
    assert_eq!(held, "held\n", "the other user's connection is open");
    let mut mine = Vec::new();
    for _ in 0..3 {
        mine.push(KeepAlive::open(d.addr).await.unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let conn = mine.last_mut().unwrap();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(conn.send("GET", CREDS, (TOKEN, &token)).await.unwrap().0);
    }
    let url = format!("http://{}{CREDS}", d.addr);
    let other = tokio::task::spawn_blocking(move || curl_as_nobody(&url, &token))
        .await
        .unwrap();
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(
        statuses,
        [200, 200, 200, 429, 429],
        "this user, over its share"
    );
    assert_eq!(other, 200, "another user is not throttled");
}
