//! The audit trail: a line per credentials vend with who got them, never a
//! secret; reopened on SIGHUP so logrotate can move it.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

fn audit_config(sts: &FakeSts) -> String {
    config(sts, "dev", "[daemon]\naudit_log = \"{dir}/audit.log\"\n")
}

/// A vend over a connection this process keeps open for a while, so the
/// daemon can find which process holds it.
async fn vend_from_this_process(addr: std::net::SocketAddr) -> serde_json::Value {
    let token = request(addr, "PUT", "/latest/api/token", &[(TTL, "60")])
        .await
        .text();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET /latest/meta-data/iam/security-credentials/dev HTTP/1.1\r\nHost: {addr}\r\n{TOKEN}: {token}\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    let served: serde_json::Value = serde_json::from_str(body).unwrap();
    // Held open while the daemon looks the client up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(stream);
    served
}

async fn audit_lines(path: &std::path::Path, at_least: usize) -> Vec<serde_json::Value> {
    eventually(Duration::from_secs(5), || async {
        let text = std::fs::read_to_string(path).ok()?;
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (lines.len() >= at_least).then_some(lines)
    })
    .await
    .unwrap_or_else(|| panic!("no {at_least} audit lines in {}", path.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_vend_is_a_line_naming_who_got_which_keys_and_no_secret() {
    let live = Live::start(audit_config).await;
    let addr = live.daemon.addr().await;
    live.daemon.log_line("fetched credentials").await;
    let served = vend_from_this_process(addr).await;
    let path = live.dir.path().join("audit.log");
    let lines = audit_lines(&path, 1).await;
    let line = &lines[0];
    assert_eq!(line["listener"], addr.to_string());
    assert_eq!(line["protocol"], "imds");
    assert_eq!(line["role"], "dev");
    assert_eq!(line["access_key_id"], served["AccessKeyId"]);
    assert!(line["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(line["uid"], imdsd::current_uid());
    assert_eq!(line["pid"], std::process::id());
    assert_eq!(
        line["exe"],
        std::env::current_exe().unwrap().display().to_string()
    );
    let time =
        chrono::DateTime::parse_from_rfc3339(line["time"].as_str().unwrap()).unwrap();
    let now = imdsd::Clock::now(&imdsd::SystemClock);
    let off = (now - time.with_timezone(&chrono::Utc)).num_seconds().abs();
    assert!(off <= 60, "audit time {time} is {off} s from now ({now})");
    let text = std::fs::read_to_string(&path).unwrap();
    for secret in [
        served["SecretAccessKey"].as_str().unwrap(),
        served["Token"].as_str().unwrap(),
        fake_sts::SECRET_KEY,
    ] {
        assert!(!text.contains(secret), "a secret in the audit log");
    }
    // Token PUTs and other paths are not vends.
    assert_eq!(lines.len(), 1, "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reopens_the_audit_log_after_logrotate_moved_it() {
    let live = Live::start(audit_config).await;
    let addr = live.daemon.addr().await;
    live.daemon.log_line("fetched credentials").await;
    vend_from_this_process(addr).await;
    let path = live.dir.path().join("audit.log");
    audit_lines(&path, 1).await;
    let rotated = live.dir.path().join("audit.log.1");
    std::fs::rename(&path, &rotated).unwrap();
    live.daemon.signal("-HUP");
    live.daemon.log_line("SIGHUP").await;
    eventually(Duration::from_secs(5), || async {
        path.exists().then_some(())
    })
    .await
    .expect("the audit log is recreated on SIGHUP");
    vend_from_this_process(addr).await;
    assert_eq!(audit_lines(&path, 1).await.len(), 1);
    assert_eq!(
        audit_lines(&rotated, 1).await.len(),
        1,
        "the old file keeps its line"
    );
}

/// A short-lived client (curl exits as soon as it has its answer) is
/// logged with its pid and executable: they are found while it is still
/// connected, before the answer goes out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_lived_curl_is_logged_with_its_pid_and_exe() {
    let Ok(curl) = std::fs::canonicalize("/usr/bin/curl") else {
        eprintln!("skipped: no /usr/bin/curl");
        return;
    };
    let live = Live::start(audit_config).await;
    let addr = live.daemon.addr().await;
    live.daemon.log_line("fetched credentials").await;
    let token = request(addr, "PUT", "/latest/api/token", &[(TTL, "60")])
        .await
        .text();
    let child = tokio::process::Command::new(&curl)
        .args(["-s", "--max-time", "10", "-H"])
        .arg(format!("{TOKEN}: {token}"))
        .arg(format!(
            "http://{addr}/latest/meta-data/iam/security-credentials/dev"
        ))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success(), "curl failed: {out:?}");
    let served: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let lines = audit_lines(&live.dir.path().join("audit.log"), 1).await;
    let line = &lines[0];
    assert_eq!(line["access_key_id"], served["AccessKeyId"]);
    assert_eq!(line["uid"], imdsd::current_uid());
    assert_eq!(line["pid"], pid, "{line}");
    assert_eq!(line["exe"], curl.display().to_string(), "{line}");
}
