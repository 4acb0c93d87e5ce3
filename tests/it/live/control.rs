//! `imdsd mfa` against the running daemon; where the control socket goes;
//! a second daemon on a taken address.

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

/// Runs `command` on a pseudo-terminal (`script`) typing `input`; what the
/// terminal showed. The command must succeed.
fn on_a_terminal(command: &str, input: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("script")
        .args(["-qec", command, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{shown}");
    shown
}

/// `imdsd mfa ROLE` on a terminal asks for the code (`script` gives it a
/// pseudo-terminal).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imdsd_mfa_asks_for_the_code_on_a_terminal() {
    let (live, addr) = waiting_for_a_code().await;
    let command = format!("{BIN} mfa dev --socket {}", live.socket().display());
    let shown = on_a_terminal(&command, b"135790\n");
    assert!(shown.contains("MFA code for role `dev`: "), "{shown}");
    assert!(shown.contains("code handed to `dev`"), "{shown}");
    serves_credentials(addr).await;
    assert_eq!(live.sts.seen()[0].param("TokenCode"), Some("135790"));
}

/// Containers and `su` sessions have no XDG_RUNTIME_DIR: a non-root daemon
/// puts its socket in its private state directory, and the client commands
/// find it there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_runtime_directory_the_socket_is_in_the_state_directory() {
    use std::os::unix::fs::PermissionsExt;
    let sts = FakeSts::start(ManualClock::starting_now()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(65534), Some(65534)).unwrap();
    let config = crate::process::plain_file(dir.path(), &config(&sts, "dev", ""));
    let unset = [
        ("HOME", home.to_str().unwrap()),
        ("IMDSD_CONTROL_SOCKET", ""),
        ("XDG_STATE_HOME", ""),
        ("XDG_RUNTIME_DIR", ""),
    ];
    let cmd = crate::process::program_as_nobody(
        BIN,
        &["run", "--config", config.to_str().unwrap()],
    );
    let daemon = Running::spawn(
        cmd,
        &dir.path().join("unused"),
        fake_sts::SECRET_KEY,
        &unset,
    );
    let ready = daemon.log_line("control socket ready").await;
    let socket = home.join(".local/state/imdsd/control.sock");
    assert!(ready.contains(socket.to_str().unwrap()), "{ready}");

    let out = crate::process::as_nobody(&["status"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("dev"), "{stdout}");
}

/// A second daemon on a taken address says who holds it, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_in_use_names_the_imdsd_that_holds_it() {
    let live = Live::start(|sts| config(sts, "dev", "")).await;
    let addr = live.daemon.addr().await;
    std::fs::create_dir(live.dir.path().join("second")).unwrap();
    let second = crate::process::plain_file(
        &live.dir.path().join("second"),
        &config(&live.sts, "dev", "").replace("127.0.0.1:0", &addr.to_string()),
    );
    let out = std::process::Command::new(BIN)
        .args(["run", "--config"])
        .arg(&second)
        .env("IMDSD_CONTROL_SOCKET", live.socket())
        .env("XDG_STATE_HOME", live.dir.path().join("second"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("imdsd: "))
        .collect();
    assert_eq!(errors.len(), 1, "said once: {stderr}");
    assert!(
        errors[0].contains(&format!(
            "cannot listen on {addr}: the address is in use; another imdsd serves it (pid {}, config {}",
            live.daemon.child.id(),
            live.path.display()
        )),
        "{stderr}"
    );

    // Something else: says how to find out what.
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = other.local_addr().unwrap();
    std::fs::write(
        &second,
        config(&live.sts, "dev", "").replace("127.0.0.1:0", &taken.to_string()),
    )
    .unwrap();
    // (With a control socket of its own: a taken one is said first.)
    let out = std::process::Command::new(BIN)
        .args(["run", "--config"])
        .arg(&second)
        .env(
            "IMDSD_CONTROL_SOCKET",
            live.dir.path().join("second/control.sock"),
        )
        .env("XDG_STATE_HOME", live.dir.path().join("second"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "another program listens there (`ss -ltnp 'sport = :{}'` shows which)",
            taken.port()
        )),
        "{stderr}"
    );
}

/// `imdsd credential-process` for a role waiting for an MFA code asks for
/// it on the terminal (`/dev/tty`: the AWS CLI runs the helper with its
/// stdin and stdout as pipes), hands it in, then prints the credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_role_command_asks_for_a_waiting_roles_code_on_the_terminal() {
    let (live, _addr) = waiting_for_a_code().await;
    let command = format!(
        "{BIN} credential-process dev --socket {} </dev/null",
        live.socket().display()
    );
    let shown = on_a_terminal(&command, b"135790\n");
    assert!(
        shown.contains("MFA code for arn:aws:iam::123456789012:mfa/tester: "),
        "{shown}"
    );
    assert!(shown.contains("\"AccessKeyId\""), "{shown}");
    assert_eq!(live.sts.seen()[0].param("TokenCode"), Some("135790"));
}

/// Without a terminal the command says how to hand the code in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_terminal_a_waiting_role_says_to_use_imdsd_mfa() {
    let (live, _addr) = waiting_for_a_code().await;
    // setsid: no controlling terminal, whatever runs the tests.
    let out = std::process::Command::new("setsid")
        .args([BIN, "credential-process", "dev", "--socket"])
        .arg(live.socket())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("waiting for an MFA code"), "{err}");
    assert!(err.contains("`imdsd mfa dev`"), "{err}");
    assert!(
        live.sts
            .seen()
            .iter()
            .all(|r| r.param("TokenCode").is_none())
    );
}
