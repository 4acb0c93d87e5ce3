//! systemd: readiness, reload and stop notifications, the watchdog, and
//! socket activation.

use super::*;

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
    serves_credentials(addr).await;
}
