//! Live operation of the real binary: config reloads by every way a file
//! gets replaced, with an SDK-like client looping throughout; SIGHUP;
//! listeners opened and closed; systemd notifications and socket
//! activation; `imdsd status`; the admin endpoints; the second signal.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use imdsd::ManualClock;
use tokio::task::JoinHandle;

use crate::fake_sts::{self, Answer, FakeSts};
use crate::process::{BIN, Running};
use crate::util::{eventually, request, try_request};

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

/// A config directory with a running daemon.
struct Live {
    sts: FakeSts,
    dir: tempfile::TempDir,
    path: PathBuf,
    daemon: Running,
}

impl Live {
    async fn start(text_for: impl Fn(&FakeSts) -> String) -> Live {
        Self::start_at(text_for, plain_file).await
    }

    /// `place` writes the config text into the directory its own way and
    /// returns the path the daemon is given.
    async fn start_at(
        text_for: impl Fn(&FakeSts) -> String,
        place: impl Fn(&Path, &str) -> PathBuf,
    ) -> Live {
        let sts = FakeSts::start(ManualClock::starting_now()).await;
        let dir = tempfile::tempdir().unwrap();
        let path = place(dir.path(), &text_for(&sts));
        let daemon =
            Running::start(&path, &dir.path().join("state"), fake_sts::SECRET_KEY);
        Live {
            sts,
            dir,
            path,
            daemon,
        }
    }
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

/// The four ways a config file gets replaced.
#[derive(Debug, Clone, Copy)]
enum Replace {
    InPlace,
    RenameOver,
    DeleteRecreate,
    SymlinkSwap,
}

fn replace(path: &Path, text: &str, how: Replace) {
    match how {
        Replace::InPlace => std::fs::write(path, text).unwrap(),
        Replace::RenameOver => {
            let tmp = path.with_extension("toml.swp");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, path).unwrap();
        }
        Replace::DeleteRecreate => {
            std::fs::remove_file(path).unwrap();
            std::thread::sleep(Duration::from_millis(20));
            std::fs::write(path, text).unwrap();
        }
        Replace::SymlinkSwap => {
            // Kubernetes ConfigMap volume: imdsd.toml -> ..data/imdsd.toml,
            // and ..data is atomically re-pointed at a new directory.
            let dir = path.parent().unwrap();
            let new = dir.join("..2026_11_26_v2");
            std::fs::create_dir(&new).unwrap();
            std::fs::write(new.join("imdsd.toml"), text).unwrap();
            std::os::unix::fs::symlink("..2026_11_26_v2", dir.join("..data_tmp"))
                .unwrap();
            std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
            std::fs::remove_dir_all(dir.join("..2026_11_26_v1")).unwrap();
        }
    }
}

/// The config as one plain file.
fn plain_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("imdsd.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn configmap_layout(dir: &Path, text: &str) -> PathBuf {
    let v1 = dir.join("..2026_11_26_v1");
    std::fs::create_dir(&v1).unwrap();
    std::fs::write(v1.join("imdsd.toml"), text).unwrap();
    std::os::unix::fs::symlink("..2026_11_26_v1", dir.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/imdsd.toml", dir.join("imdsd.toml")).unwrap();
    dir.join("imdsd.toml")
}

async fn reload_without_a_failed_request(how: Replace) {
    let text = |sts: &FakeSts| config(sts, "dev", "");
    let live = match how {
        Replace::SymlinkSwap => Live::start_at(text, configmap_layout).await,
        _ => Live::start(text).await,
    };
    let addr = live.daemon.addr().await;
    live.daemon.log_line("fetched credentials").await;
    let client = ClientLoop::start(addr);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let since = Instant::now();
    replace(&live.path, &config(&live.sts, "prod", ""), how);
    let took = switched_within(addr, "prod", since).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = client.finish().await;
    assert!(
        took <= Duration::from_secs(2),
        "{how:?}: the new role took {took:?}"
    );
    assert!(
        seen.failures.is_empty(),
        "{how:?}: failed requests {:?}",
        seen.failures
    );
    assert!(
        seen.first_seen.iter().any(|(m, _)| m == "prod"),
        "{how:?}: loop saw {:?}",
        seen.first_seen
    );
    assert!(
        seen.requests > 10,
        "the loop ran ({} rounds)",
        seen.requests
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_on_in_place_write() {
    reload_without_a_failed_request(Replace::InPlace).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_on_editor_rename_over() {
    reload_without_a_failed_request(Replace::RenameOver).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_on_delete_then_recreate() {
    reload_without_a_failed_request(Replace::DeleteRecreate).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_on_kubernetes_configmap_symlink_swap() {
    reload_without_a_failed_request(Replace::SymlinkSwap).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_edit_keeps_the_old_config_serving() {
    let live = Live::start(|sts| config(sts, "dev", "")).await;
    let addr = live.daemon.addr().await;
    live.daemon.log_line("fetched credentials").await;
    let client = ClientLoop::start(addr);
    let bad = config(&live.sts, "dev", "")
        .replace("source = \"env\"", "source = \"env\"\nduration = \"99h\"");
    std::fs::write(&live.path, bad).unwrap();
    let error = live
        .daemon
        .log_line("still serving the previous config")
        .await;
    let line = live.daemon.log_line("roles.dev.duration").await;
    assert!(
        line.contains(&format!("{}:", live.path.display())),
        "{line}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::write(&live.path, config(&live.sts, "prod", "")).unwrap();
    switched_within(addr, "prod", Instant::now()).await;
    let seen = client.finish().await;
    assert!(
        seen.failures.is_empty(),
        "{:?} after {error}",
        seen.failures
    );
    assert_eq!(
        live.sts
            .seen()
            .iter()
            .filter(|s| s.param("RoleArn").unwrap().ends_with("/dev"))
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_when_watching_is_off() {
    let live =
        Live::start(|sts| config(sts, "dev", "[daemon]\nwatch_config = false\n")).await;
    let addr = live.daemon.addr().await;
    live.daemon.log_line("fetched credentials").await;
    std::fs::write(
        &live.path,
        config(&live.sts, "prod", "[daemon]\nwatch_config = false\n"),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        live.sts.calls(),
        1,
        "no reload without SIGHUP when watching is off"
    );
    let since = Instant::now();
    live.daemon.signal("-HUP");
    let took = switched_within(addr, "prod", since).await;
    assert!(took <= Duration::from_secs(2), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_roles_keep_their_credentials_and_listeners_come_and_go() {
    let live = Live::start(|sts| config(sts, "dev", "")).await;
    let first = live.daemon.addr().await;
    live.daemon.log_line("fetched credentials").await;
    let client = ClientLoop::start(first);
    // Add a second role on a second listener.
    let two = format!(
        "{}\n[[imds]]\nlisten = \"127.0.0.1:0\"\nrole = \"ops\"\n[roles.ops]\nrole_arn = \"arn:aws:iam::123456789012:role/ops\"\nsource = \"env\"\n",
        config(&live.sts, "dev", "")
    )
    .replacen("[[imds]]\nlisten = \"127.0.0.1:0\"\n", "[[imds]]\nlisten = \"127.0.0.1:0\"\nrole = \"dev\"\n", 1);
    std::fs::write(&live.path, &two).unwrap();
    let second = live.daemon.addr_n(1).await;
    switched_within(second, "ops", Instant::now()).await;
    let dev_calls = live
        .sts
        .seen()
        .iter()
        .filter(|s| s.param("RoleArn").unwrap().ends_with("/dev"))
        .count();
    assert_eq!(dev_calls, 1, "the unchanged role made no new STS call");
    // Remove it again: the second listener closes, the first keeps going.
    std::fs::write(&live.path, config(&live.sts, "dev", "")).unwrap();
    eventually(Duration::from_secs(5), || async {
        tokio::net::TcpStream::connect(second)
            .await
            .is_err()
            .then_some(())
    })
    .await
    .expect("removed listener closed");
    let seen = client.finish().await;
    assert!(seen.failures.is_empty(), "{:?}", seen.failures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_cannot_bind_fails_the_reload_not_the_daemon() {
    let live = Live::start(|sts| config(sts, "dev", "")).await;
    let addr = live.daemon.addr().await;
    live.daemon.log_line("fetched credentials").await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let text = format!(
        "{}\n[[imds]]\nlisten = \"127.0.0.1:{port}\"\nrole = \"dev\"\n",
        config(&live.sts, "prod", "")
    )
    .replacen(
        "[[imds]]\nlisten = \"127.0.0.1:0\"\n",
        "[[imds]]\nlisten = \"127.0.0.1:0\"\nrole = \"dev\"\n",
        1,
    );
    std::fs::write(&live.path, text).unwrap();
    let line = live.daemon.log_line("reload failed").await;
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    let mut seen = Seen::default();
    one_round(addr, &mut seen).await.expect("still serving");
    assert_eq!(
        seen.first_seen[0].0, "dev",
        "the old config is still in force"
    );
}

/// Reads datagrams from a fake `NOTIFY_SOCKET`.
fn notify_socket(dir: &Path) -> (PathBuf, std::sync::mpsc::Receiver<String>) {
    let path = dir.join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = socket.recv(&mut buf) {
            if tx
                .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                .is_err()
            {
                return;
            }
        }
    });
    (path, rx)
}

fn next_matching(rx: &std::sync::mpsc::Receiver<String>, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no {want:?} notification"));
        if msg.contains(want) {
            return msg;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_notifications_ready_reloading_watchdog_stopping() {
    let sts = FakeSts::start(ManualClock::starting_now()).await;
    sts.script([Answer::Slow(Duration::from_millis(300))]);
    let dir = tempfile::tempdir().unwrap();
    let (socket, rx) = notify_socket(dir.path());
    let path = dir.path().join("imdsd.toml");
    std::fs::write(&path, config(&sts, "dev", "")).unwrap();
    let env = [
        ("NOTIFY_SOCKET", socket.to_str().unwrap()),
        ("WATCHDOG_USEC", "200000"),
    ];
    let daemon =
        Running::start_with(&path, &dir.path().join("state"), fake_sts::SECRET_KEY, &env);
    let ready = next_matching(&rx, "READY=1");
    assert!(
        daemon
            .lines()
            .iter()
            .any(|l| l.contains("fetched credentials")),
        "READY only after the first fetch"
    );
    assert!(ready.contains("STATUS=serving 1 role"), "{ready}");
    next_matching(&rx, "WATCHDOG=1");
    daemon.signal("-HUP");
    let reloading = next_matching(&rx, "RELOADING=1");
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    next_matching(&rx, "READY=1");
    daemon.signal("-TERM");
    next_matching(&rx, "STOPPING=1");
    let (status, _) = daemon.wait().await;
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_handed_over_by_socket_activation_is_used() {
    let sts = FakeSts::start(ManualClock::starting_now()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path = dir.path().join("imdsd.toml");
    std::fs::write(
        &path,
        config(&sts, "dev", "").replace("127.0.0.1:0", &format!("127.0.0.1:{port}")),
    )
    .unwrap();
    // Like systemd: bind, put the socket at fd 3, set LISTEN_FDS/LISTEN_PID
    // for the process that is exec'd.
    let launcher = r#"
import os, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[2], sys.argv[2:])
"#;
    let mut cmd = std::process::Command::new("python3");
    cmd.args(["-c", launcher, &port.to_string(), BIN, "run", "--config"])
        .arg(&path);
    let daemon =
        Running::spawn(cmd, &dir.path().join("state"), fake_sts::SECRET_KEY, &[]);
    daemon.log_line("using the socket passed by systemd").await;
    let addr = daemon.addr().await;
    assert_eq!(addr.port(), port);
    let mut seen = Seen::default();
    eventually(Duration::from_secs(5), || async {
        one_round(addr, &mut Seen::default()).await.ok()
    })
    .await
    .unwrap();
    one_round(addr, &mut seen).await.unwrap();
}

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
    let socket = live.dir.path().join("state/control.sock");
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

    let admin_line = live.daemon.log_line("health and metrics on http://").await;
    let admin: std::net::SocketAddr = admin_line
        .split("http://")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
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
    let admin_line = live.daemon.log_line("health and metrics on http://").await;
    let admin: std::net::SocketAddr = admin_line
        .split("http://")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    live.daemon.log_line("refresh failed").await;
    let r = request(admin, "GET", "/readyz", &[]).await;
    assert_eq!((r.status, r.text()), (503, "dev: not ready\n".to_string()));
}

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

/// Renaming the served role changes the listing; a client that read the
/// old name a moment earlier still gets credentials for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renaming_the_served_role_fails_no_request() {
    let live = Live::start(|sts| config(sts, "dev", "")).await;
    let addr = live.daemon.addr().await;
    live.daemon.log_line("fetched credentials").await;
    let client = ClientLoop::start(addr);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let renamed = config(&live.sts, "prod", "").replace("[roles.dev]", "[roles.prod]");
    std::fs::write(&live.path, renamed).unwrap();
    switched_within(addr, "prod", Instant::now()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seen = client.finish().await;
    assert!(seen.failures.is_empty(), "{:?}", seen.failures);
    let r = request(addr, "PUT", "/latest/api/token", &[(TTL, "60")]).await;
    let listing = request(
        addr,
        "GET",
        "/latest/meta-data/iam/security-credentials/",
        &[(TOKEN, &r.text())],
    )
    .await;
    assert_eq!(listing.text(), "prod");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imdsd_mfa_hands_a_code_to_a_waiting_role() {
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
    let socket = live.dir.path().join("state/control.sock");
    let bad = std::process::Command::new(BIN)
        .args(["mfa", "dev", "12ab", "--socket"])
        .arg(&socket)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let mut child = std::process::Command::new(BIN)
        .args(["mfa", "dev", "--socket"])
        .arg(&socket)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"135790\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("code handed to `dev`"));
    let mut seen = Seen::default();
    eventually(Duration::from_secs(5), || async {
        one_round(addr, &mut Seen::default()).await.ok()
    })
    .await
    .unwrap();
    one_round(addr, &mut seen).await.unwrap();
    assert_eq!(live.sts.seen()[0].param("TokenCode"), Some("135790"));
    assert!(
        !live.daemon.lines().iter().any(|l| l.contains("135790")),
        "the code is never logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_config_file_the_default_profile_is_served() {
    let sts = FakeSts::start(ManualClock::starting_now()).await;
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/config"),
        "[default]\nregion = us-east-1\n",
    )
    .unwrap();
    std::fs::write(
        home.path().join(".aws/credentials"),
        format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            fake_sts::ACCESS_KEY_ID,
            fake_sts::SECRET_KEY
        ),
    )
    .unwrap();
    let home_str = home.path().to_str().unwrap();
    let empty = home.path().join("no-config-here");
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("run");
    let env = [
        ("HOME", home_str),
        ("XDG_CONFIG_HOME", empty.to_str().unwrap()),
        ("AWS_ENDPOINT_URL_STS", &sts.endpoint()),
        ("AWS_ACCESS_KEY_ID", ""),
        ("AWS_SECRET_ACCESS_KEY", ""),
    ];
    let daemon = Running::spawn(cmd, &home.path().join("state"), "", &env);
    let first = daemon.log_line("no config file").await;
    assert!(
        daemon.lines()[0].contains("no config file: serving AWS profile `default`"),
        "{:#?}",
        daemon.lines()
    );
    assert!(
        first.contains("AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:16925"),
        "{first}"
    );
    let addr = daemon.addr().await;
    let mut seen = Seen::default();
    eventually(Duration::from_secs(5), || async {
        one_round(addr, &mut Seen::default()).await.ok()
    })
    .await
    .unwrap();
    one_round(addr, &mut seen).await.unwrap();
    assert_eq!(
        sts.seen()[0].param("Action"),
        Some("GetSessionToken"),
        "long-term keys become a session"
    );
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
