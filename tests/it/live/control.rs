//! `imdsd mfa` against the running daemon.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imdsd_mfa_hands_a_code_to_a_waiting_role() {
    let (live, addr) = waiting_for_a_code().await;
    let socket = live.socket();
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
    serves_credentials(addr).await;
    assert_eq!(live.sts.seen()[0].param("TokenCode"), Some("135790"));
    assert!(
        !live.daemon.lines().iter().any(|l| l.contains("135790")),
        "the code is never logged"
    );
}
