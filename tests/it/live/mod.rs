//! Live operation of the real binary, one file per area, sharing this
//! harness: a config directory with the daemon running on it ([`Live`]),
//! and an SDK-like client that loops through token PUT, role listing and
//! credentials GET ([`ClientLoop`]).
//!
//! - `reload`: reloads by every way a file gets replaced, SIGHUP,
//!   listeners opened and closed, renamed roles, invalid edits.
//! - `systemd`: notifications and socket activation.
//! - `status`: `imdsd status`, metrics, `/readyz`.
//! - `role`: `imdsd env`, `exec`, `credential-process` and `health`.
//! - `schedule`: the refresh schedule applied to late-arriving answers.
//! - `signals`: the second signal, SIGTERM during a hung first fetch.
//! - `audit`: the audit trail.
//! - `control`: `imdsd mfa`.
//! - `logs`: the three log formats.
//! - `recover`: `imdsd refresh`, retries when a code or the profile files
//!   arrive, failures logged once.
//! - `zero_config`: running with no config file.

mod audit;
mod control;
mod logs;
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
fn config(sts: &FakeSts, role: &str, extra: &str) -> String {
    format!(
        r#"{extra}
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
#[derive(Debug, Default)]
struct Seen {
    requests: usize,
    failures: Vec<String>,
    /// When each role marker (from the session token) was first served.
    first_seen: Vec<(String, Instant)>,
}
/// An SDK-like client: token PUT, role listing, credentials GET, again and
/// again, until stopped (at most 20 s or 20 000 rounds).
struct ClientLoop {
    stop: Arc<AtomicBool>,
    task: JoinHandle<Seen>,
}
impl ClientLoop {
    fn start(addr: std::net::SocketAddr) -> ClientLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut seen = Seen::default();
            let deadline = Instant::now() + Duration::from_secs(20);
            while !flag.load(Ordering::Relaxed)
                && Instant::now() < deadline
                && seen.requests < 20_000
            {
                seen.requests += 1;
                if let Err(e) = one_round(addr, &mut seen).await {
                    seen.failures.push(e);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            seen
        });
        ClientLoop { stop, task }
    }

    async fn finish(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}
async fn one_round(addr: std::net::SocketAddr, seen: &mut Seen) -> Result<(), String> {
    let request = |method: &'static str,
                   path: String,
                   headers: Vec<(&'static str, String)>| async move {
        let headers: Vec<(&str, &str)> =
            headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        try_request(addr, method, &path, &headers)
            .await
            .map_err(|e| format!("{method} {path}: {e}"))
    };
    let r = request("PUT", "/latest/api/token".into(), vec![(TTL, "60".into())]).await?;
    if r.status != 200 {
        return Err(format!("token PUT: {}", r.status));
    }
    let token = r.text();
    let listing = "/latest/meta-data/iam/security-credentials/".to_string();
    let r = request("GET", listing, vec![(TOKEN, token.clone())]).await?;
    if r.status != 200 {
        return Err(format!("role listing: {}", r.status));
    }
    let role = r.text();
    let path = format!("/latest/meta-data/iam/security-credentials/{role}");
    let r = request("GET", path, vec![(TOKEN, token)]).await?;
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
    if !seen.first_seen.iter().any(|(m, _)| *m == marker) {
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
