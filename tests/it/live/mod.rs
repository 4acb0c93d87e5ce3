//! Live operation of the real binary, one file per area, sharing this
//! harness: a config directory with the daemon running on it ([`Live`]),
//! and an SDK-like client that loops through token PUT, role listing and
//! credentials GET ([`ClientLoop`]), on new connections or on one
//! keep-alive connection.
//!
//! - `reload`: reloads by every way a file gets replaced, SIGHUP,
//!   listeners opened and closed, renamed roles, invalid edits.
//! - `systemd`: notifications and socket activation.
//! - `status`: `imdsd status`, metrics, `/readyz`.
//! - `role`: `imdsd env`, `exec`, `credential-process` and `health`.
//! - `login`: `imdsd login` against a local federation stand-in.
//! - `schedule`: the refresh schedule applied to late-arriving answers.
//! - `signals`: the second signal, SIGTERM during a hung first fetch.
//! - `audit`: the audit trail.
//! - `control`: `imdsd mfa`.
//! - `logs`: the three log formats.
//! - `recover`: `imdsd refresh`, retries when a code or the profile files
//!   arrive, failures logged once.
//! - `zero_config`: running with no config file.
//! - `on_demand`: AWS profiles served by name, started on first use.
//! - `first_hour`: what a new user meets (issue 20): warnings about what
//!   shadows imdsd, a failed reload in `status`, no daemon, a clean stop, a
//!   second daemon, `check` without a config, `exec` without a command.

mod audit;
mod control;
mod first_hour;
mod login;
mod logs;
mod on_demand;
mod recover;
mod reload;
mod role;
mod schedule;
mod signals;
mod status;
mod systemd;
mod zero_config;

use crate::fake_sts::{self, Answer, FakeSts};
use crate::process::{BIN, Live, Running};
use crate::util::{eventually, request, try_request};
use imdsd::ManualClock;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
const TTL: &str = "X-aws-ec2-metadata-token-ttl-seconds";
const TOKEN: &str = "x-aws-ec2-metadata-token";
/// A config with `dev` on IMDS. AWS profiles are not served on demand
/// (live/on_demand.rs does that): the default address is a fixed port.
fn config(sts: &FakeSts, role: &str, extra: &str) -> String {
    format!(
        r#"{extra}
[profiles]
serve = "none"
[[imds]]
listen = "127.0.0.1:0"
[sts]
endpoint = "{}"
timeout = "2s"
[roles.dev]
role_arn = "arn:aws:iam::123456789012:role/{role}"
source = "env"
session_name = "imdsd-live"
"#,
        sts.endpoint()
    )
}
/// A daemon whose role `dev` needs an MFA code (STS takes only 135790),
/// waiting for one; and its address.
async fn waiting_for_a_code() -> (Live, std::net::SocketAddr) {
    let live = Live::start(|sts| {
        sts.require("TokenCode", "135790", 403, "AccessDenied");
        config(sts, "dev", "").replace(
            "source = \"env\"",
            "source = \"env\"\nmfa_serial = \"arn:aws:iam::123456789012:mfa/tester\"",
        )
    })
    .await;
    let addr = live.daemon.addr().await;
    live.daemon.log_line("waiting for an MFA code").await;
    (live, addr)
}

/// What the looping client saw.
#[derive(Debug, Default, Clone)]
struct Seen {
    requests: usize,
    failures: Vec<String>,
    /// When each role marker (from the session token) was first served.
    first_seen: Vec<(String, Instant)>,
}
impl Seen {
    fn saw(&self, marker: &str) -> bool {
        self.first_seen.iter().any(|(m, _)| m == marker)
    }
}
/// How a client loop reaches the daemon.
enum Transport {
    /// A new connection per request (`Connection: close`).
    Fresh(std::net::SocketAddr),
    /// One persistent keep-alive connection for every request, as the SDKs
    /// connect; it is never reopened, so a closed connection is a failure.
    KeepAlive(KeepAlive),
}
/// One HTTP/1.1 keep-alive connection.
struct KeepAlive {
    addr: std::net::SocketAddr,
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}
impl KeepAlive {
    async fn connect(addr: std::net::SocketAddr) -> KeepAlive {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        KeepAlive {
            addr,
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends one request and reads exactly one answer (by its
    /// `Content-Length`), leaving the connection open.
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> std::io::Result<crate::util::Resp> {
        use tokio::io::AsyncWriteExt;
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        if method == "PUT" {
            head.push_str("Content-Length: 0\r\n");
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        self.stream.write_all(head.as_bytes()).await?;
        let limit = Duration::from_secs(10);
        tokio::time::timeout(limit, self.read_answer())
            .await
            .map_err(|_| std::io::Error::other("no answer within 10s"))?
    }

    async fn read_answer(&mut self) -> std::io::Result<crate::util::Resp> {
        use tokio::io::AsyncReadExt;
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = crate::util::parse_response(&self.buf[..end + 4]);
                let length: usize = head
                    .header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                if self.buf.len() >= end + 4 + length {
                    let whole: Vec<u8> = self.buf.drain(..end + 4 + length).collect();
                    return Ok(crate::util::parse_response(&whole));
                }
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the daemon closed the keep-alive connection",
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}
impl Transport {
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<crate::util::Resp, String> {
        let answer = match self {
            Transport::Fresh(addr) => try_request(*addr, method, path, headers).await,
            Transport::KeepAlive(conn) => conn.send(method, path, headers).await,
        };
        answer.map_err(|e| format!("{method} {path}: {e}"))
    }
}
/// An SDK-like client: token PUT, role listing, credentials GET, again and
/// again, until stopped (at most 20 s or 20 000 rounds). What it saw so far
/// is shared, so a test can wait on its progress.
struct ClientLoop {
    stop: Arc<AtomicBool>,
    seen: Arc<std::sync::Mutex<Seen>>,
    task: JoinHandle<()>,
}
impl ClientLoop {
    /// A loop opening a new connection per request.
    fn start(addr: std::net::SocketAddr) -> ClientLoop {
        Self::over(async move { Transport::Fresh(addr) })
    }

    /// A loop on one persistent keep-alive connection.
    fn keep_alive(addr: std::net::SocketAddr) -> ClientLoop {
        Self::over(async move { Transport::KeepAlive(KeepAlive::connect(addr).await) })
    }

    fn over(
        transport: impl std::future::Future<Output = Transport> + Send + 'static,
    ) -> ClientLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(std::sync::Mutex::new(Seen::default()));
        let (flag, shared) = (stop.clone(), seen.clone());
        let task = tokio::spawn(async move {
            let mut transport = transport.await;
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let mut round = shared.lock().unwrap().clone();
                if flag.load(Ordering::Relaxed)
                    || Instant::now() >= deadline
                    || round.requests >= 20_000
                {
                    return;
                }
                round.requests += 1;
                let failed = one_round_via(&mut transport, &mut round).await.err();
                let lost =
                    failed.is_some() && matches!(transport, Transport::KeepAlive(_));
                round.failures.extend(failed);
                *shared.lock().unwrap() = round;
                if lost {
                    // Not reopened: the next request would only repeat it.
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        ClientLoop { stop, seen, task }
    }

    /// Waits (bounded: 10 s) until what the loop saw satisfies `done`.
    async fn wait_for(&self, what: &str, done: impl Fn(&Seen) -> bool) {
        let seen = self.seen.clone();
        eventually(Duration::from_secs(10), || {
            let ok = done(&seen.lock().unwrap());
            async move { ok.then_some(()) }
        })
        .await
        .unwrap_or_else(|| {
            let seen = self.seen.lock().unwrap().clone();
            panic!("client loop: {what}: {seen:?}")
        });
    }

    /// Waits until the loop has done `n` more rounds.
    async fn rounds(&self, n: usize) {
        let from = self.seen.lock().unwrap().requests;
        self.wait_for(&format!("{n} more rounds"), |s| s.requests >= from + n)
            .await;
    }

    async fn finish(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        self.seen.lock().unwrap().clone()
    }
}
async fn one_round(addr: std::net::SocketAddr, seen: &mut Seen) -> Result<(), String> {
    one_round_via(&mut Transport::Fresh(addr), seen).await
}
async fn one_round_via(t: &mut Transport, seen: &mut Seen) -> Result<(), String> {
    let r = t.send("PUT", "/latest/api/token", &[(TTL, "60")]).await?;
    if r.status != 200 {
        return Err(format!("token PUT: {}", r.status));
    }
    let token = r.text();
    let listing = "/latest/meta-data/iam/security-credentials/";
    let r = t.send("GET", listing, &[(TOKEN, &token)]).await?;
    if r.status != 200 {
        return Err(format!("role listing: {}", r.status));
    }
    let path = format!("{listing}{}", r.text());
    let r = t.send("GET", &path, &[(TOKEN, &token)]).await?;
    if r.status != 200 {
        return Err(format!("credentials: {} {}", r.status, r.text()));
    }
    let token = r.json()["Token"].as_str().unwrap_or_default().to_string();
    let marker = token
        .split("-role-")
        .nth(1)
        .and_then(|t| t.split('-').next())
        .unwrap_or("")
        .to_string();
    if !seen.saw(&marker) {
        seen.first_seen.push((marker, Instant::now()));
    }
    Ok(())
}
/// Waits (bounded) until `addr` serves credentials, then checks one more
/// full round.
async fn serves_credentials(addr: std::net::SocketAddr) {
    eventually(Duration::from_secs(5), || async {
        one_round(addr, &mut Seen::default()).await.ok()
    })
    .await
    .expect("credentials served");
    one_round(addr, &mut Seen::default()).await.unwrap();
}

/// Polls (bounded) until `addr` serves credentials of role `marker`;
/// returns how long after `since` that was.
async fn switched_within(
    addr: std::net::SocketAddr,
    marker: &str,
    since: Instant,
) -> Duration {
    eventually(Duration::from_secs(10), || async {
        let mut seen = Seen::default();
        one_round(addr, &mut seen).await.ok()?;
        seen.first_seen
            .iter()
            .any(|(m, _)| m == marker)
            .then(|| since.elapsed())
    })
    .await
    .unwrap_or_else(|| panic!("role {marker} never served"))
}
