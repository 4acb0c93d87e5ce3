//! Test harness: an in-process daemon on 127.0.0.1:0 with a fake STS and a
//! hand-moved clock, and a raw HTTP/1.1 client for exact wire checks.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use imdsd::Environment;
use imdsd::ManualClock;
use imdsd::parse_config as parse;
use imdsd::{Daemon, Options};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fake_sts::{self, FakeSts};

/// The default test config; `{sts}` is replaced by the fake's endpoint.
pub const CONFIG: &str = r#"
[[imds]]
listen = "127.0.0.1:0"

[sts]
endpoint = "{sts}"
region = "us-east-1"
timeout = "1s"

[roles.dev]
role_arn = "arn:aws:iam::123456789012:role/dev"
source = "env"
session_name = "imdsd-test"
"#;

pub const CREDS_PATH: &str = "/latest/meta-data/iam/security-credentials/dev";

pub struct TestDaemon {
    daemon: Option<Daemon>,
    pub addr: SocketAddr,
    pub clock: Arc<ManualClock>,
    pub sts: FakeSts,
    pub state_dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl TestDaemon {
    pub async fn start() -> TestDaemon {
        Self::with_config(CONFIG).await
    }

    pub async fn with_config(template: &str) -> TestDaemon {
        Self::custom(template, source_env(), |_| {}).await
    }

    /// A daemon with its own config, environment and option tweaks.
    pub async fn custom(
        template: &str,
        env: Environment,
        tweak: impl FnOnce(&mut Options),
    ) -> TestDaemon {
        let clock = ManualClock::starting_now();
        let sts = FakeSts::start(clock.clone()).await;
        let tmp = tempfile::tempdir().unwrap();
        let state_dir = tmp.path().join("state");
        Self::launch(template, env, clock, sts, state_dir, tmp, tweak).await
    }

    /// Starts a daemon against an existing fake and state directory (a
    /// restart).
    pub async fn start_with(
        template: &str,
        clock: Arc<ManualClock>,
        sts: FakeSts,
        state_dir: PathBuf,
        tmp: tempfile::TempDir,
    ) -> TestDaemon {
        Self::launch(template, source_env(), clock, sts, state_dir, tmp, |_| {}).await
    }

    async fn launch(
        template: &str,
        env: Environment,
        clock: Arc<ManualClock>,
        sts: FakeSts,
        state_dir: PathBuf,
        tmp: tempfile::TempDir,
        tweak: impl FnOnce(&mut Options),
    ) -> TestDaemon {
        let text = template
            .replace("{sts}", &sts.endpoint())
            .replace("{tmp}", tmp.path().to_str().unwrap());
        let (config, diags) = parse(&text, &env);
        let config = config.unwrap_or_else(|| panic!("test config invalid: {diags:?}"));
        let mut opts = Options::new(config, env, clock.clone(), state_dir.clone());
        tweak(&mut opts);
        let daemon = Daemon::start(opts).await.expect("daemon starts");
        let addr = daemon.local_addrs()[0];
        TestDaemon {
            daemon: Some(daemon),
            addr,
            clock,
            sts,
            state_dir,
            _tmp: tmp,
        }
    }

    /// The daemon's temporary directory (`{tmp}` in templates).
    pub fn tmp(&self) -> &std::path::Path {
        self._tmp.path()
    }

    pub fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().unwrap()
    }

    /// Runs `work` while the daemon handles its on-demand requests (as the
    /// main loop of `imdsd run` does).
    pub async fn serving<T>(&mut self, work: impl std::future::Future<Output = T>) -> T {
        let daemon = self.daemon.as_mut().unwrap();
        daemon.serve_on_demand_while(work).await
    }

    pub async fn stop(
        mut self,
    ) -> (Arc<ManualClock>, FakeSts, PathBuf, tempfile::TempDir) {
        self.daemon.take().unwrap().stop().await;
        let tmp = std::mem::replace(&mut self._tmp, tempfile::tempdir().unwrap());
        (
            self.clock.clone(),
            self.sts.clone(),
            self.state_dir.clone(),
            tmp,
        )
    }

    pub async fn token(&self, ttl: u32) -> String {
        let r = self
            .put_token(&[("X-aws-ec2-metadata-token-ttl-seconds", &ttl.to_string())])
            .await;
        assert_eq!(r.status, 200, "token PUT failed: {r:?}");
        r.text()
    }

    pub async fn put_token(&self, headers: &[(&str, &str)]) -> Resp {
        request(self.addr, "PUT", "/latest/api/token", headers).await
    }

    /// GET with a fresh token.
    pub async fn get(&self, path: &str) -> Resp {
        let token = self.token(21600).await;
        request(
            self.addr,
            "GET",
            path,
            &[("x-aws-ec2-metadata-token", &token)],
        )
        .await
    }

    /// Applies a new config (template with `{sts}` and `{tmp}`) in
    /// process.
    pub async fn reload(&mut self, template: &str) -> imdsd::ReloadSummary {
        self.try_reload(template).await.expect("reload")
    }

    /// Like [`reload`](Self::reload), but a refused reload is returned.
    pub async fn try_reload(
        &mut self,
        template: &str,
    ) -> Result<imdsd::ReloadSummary, String> {
        let text = template
            .replace("{sts}", &self.sts.endpoint())
            .replace("{tmp}", self._tmp.path().to_str().unwrap());
        let (config, diags) = parse(&text, &source_env());
        let config = config.unwrap_or_else(|| panic!("test config invalid: {diags:?}"));
        let daemon = self.daemon.as_mut().unwrap();
        daemon.reload(config).await.map_err(|e| e.to_string())
    }

    pub fn slot(&self) -> &std::sync::Arc<imdsd::RoleSlot> {
        self.daemon().role("dev").expect("role dev")
    }

    /// Moves the clock, wakes the refresher, and waits (bounded) until it
    /// is idle again: no fetch in flight and nothing overdue.
    pub async fn advance(&self, by: chrono::TimeDelta) {
        self.clock.advance(by);
        self.settle().await;
    }

    pub async fn settle(&self) {
        let slot = self.slot().clone();
        let clock = self.clock.clone();
        eventually(Duration::from_secs(5), || {
            slot.poke();
            let idle =
                !slot.load().in_flight && !slot.overdue(imdsd::Clock::now(&*clock));
            async move { idle.then_some(()) }
        })
        .await
        .expect("refresher settles within 5s");
    }

    /// GETs the role's credentials once: the status, and the JSON body
    /// (`Null` when empty).
    pub async fn credentials(&self) -> (u16, serde_json::Value) {
        let r = self.get(CREDS_PATH).await;
        let body = if r.body.is_empty() {
            serde_json::Value::Null
        } else {
            r.json()
        };
        (r.status, body)
    }

    /// Waits (bounded) until the role serves credentials.
    pub async fn ready(&self) -> serde_json::Value {
        let r = eventually(Duration::from_secs(5), || async {
            let r = self.get(CREDS_PATH).await;
            (r.status == 200).then_some(r)
        })
        .await
        .expect("credentials within 5s");
        r.json()
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        // Dropping the runtime aborts the tasks; nothing to flush.
        self.daemon.take();
    }
}

/// Role `name`'s entry in `imdsd status --json`.
pub fn status_role<'a>(
    status: &'a serde_json::Value,
    name: &str,
) -> &'a serde_json::Value {
    status["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no role {name} in {status:#}"))
}

/// Writes `HOME/.aws/config` (`config`) and `HOME/.aws/credentials`
/// with a `base` profile holding the keys the fake STS knows.
pub fn write_aws_files(home: &std::path::Path, config: &str) {
    let aws = home.join(".aws");
    std::fs::create_dir_all(&aws).unwrap();
    std::fs::write(aws.join("config"), config).unwrap();
    let keys = format!(
        "[base]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        fake_sts::ACCESS_KEY_ID,
        fake_sts::SECRET_KEY
    );
    std::fs::write(aws.join("credentials"), keys).unwrap();
}

/// The daemon's own environment: source keys that the fake STS knows.
pub fn source_env() -> Environment {
    source_env_with(&[])
}

/// [`source_env`] plus `extra` variables.
pub fn source_env_with(extra: &[(&str, &str)]) -> Environment {
    let base = [
        ("AWS_ACCESS_KEY_ID", fake_sts::ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", fake_sts::SECRET_KEY),
        ("USER", "tester"),
    ];
    Environment::from_pairs(
        base.iter()
            .chain(extra)
            .map(|(k, v)| (k.to_string(), v.to_string())),
    )
}

/// Polls `f` every 20 ms until it returns `Some`, for at most `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Sends one request with `Host` set to the listener and `Connection:
/// close`, and reads the whole answer.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Resp {
    try_request(addr, method, path, headers)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// Like [`request`], but connection errors are returned, not panics.
pub async fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<Resp> {
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if method == "PUT" {
        head.push_str("Content-Length: 0\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    try_raw(addr, head.as_bytes()).await
}

/// Writes `bytes` as they are and parses what comes back.
pub async fn raw(addr: SocketAddr, bytes: &[u8]) -> Resp {
    try_raw(addr, bytes)
        .await
        .unwrap_or_else(|e| panic!("request to {addr}: {e}"))
}

pub async fn try_raw(addr: SocketAddr, bytes: &[u8]) -> std::io::Result<Resp> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(bytes).await?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "no response within 10s")
        })??;
    if !out.windows(4).any(|w| w == b"\r\n\r\n") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed without a response",
        ));
    }
    Ok(parse_response(&out))
}

pub fn parse_response(out: &[u8]) -> Resp {
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(out)));
    let head = std::str::from_utf8(&out[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: out[split + 4..].to_vec(),
    }
}

/// Asserts a 503 answer whose JSON `Message` contains `needle`, and whose
/// `Code` is `code` when one is given.
#[track_caller]
pub fn assert_503(
    status: u16,
    body: &serde_json::Value,
    code: Option<&str>,
    needle: &str,
) {
    assert_eq!(status, 503, "{body}");
    if let Some(code) = code {
        assert_eq!(body["Code"], code, "{body}");
    }
    let message = body["Message"].as_str().unwrap_or_default();
    assert!(message.contains(needle), "Message lacks `{needle}`: {body}");
}
