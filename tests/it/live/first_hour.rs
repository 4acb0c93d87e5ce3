//! What a new user meets in the first hour (issue 20): what would shadow
//! imdsd said at start, in `imdsd status` and by `env`; a failed reload in
//! `imdsd status`; `status` with no daemon; a clean stop; a second daemon;
//! `check` with no config file; `exec` with no command.

use super::*;
use std::process::{Command, Output};

/// Static keys as a new user has them in `[default]`.
const OLD_KEY_ID: &str = "AKIAOLDSTATICKEY1234";
const OLD_SECRET: &str = "oldStaticSecretKeyThatMustNeverPrint0000";
/// A proxy whose URL carries a password.
const PROXY: &str = "http://user:proxypw@proxy.invalid:3128";

/// A home directory whose `~/.aws/credentials` has keys in `[default]`.
fn home_with_default_keys(dir: &Path) -> PathBuf {
    let aws = dir.join(".aws");
    std::fs::create_dir_all(&aws).unwrap();
    let file = aws.join("credentials");
    std::fs::write(
        &file,
        format!("[default]\naws_access_key_id = {OLD_KEY_ID}\naws_secret_access_key = {OLD_SECRET}\n"),
    )
    .unwrap();
    file
}

/// `imdsd ARGS...` with a clean environment plus `env`.
fn imdsd(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
        + &String::from_utf8_lossy(&out.stderr)
}

fn assert_no_secret(what: &str) {
    for secret in [OLD_KEY_ID, OLD_SECRET, "proxypw"] {
        assert!(!what.contains(secret), "{secret} printed in {what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_shadows_imdsd_is_said_at_start_in_status_and_by_env() {
    let sts = FakeSts::start(ManualClock::starting_now()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = home_with_default_keys(dir.path());
    let path = crate::process::plain_file(dir.path(), &config(&sts, "dev", ""));
    let home = dir.path().to_str().unwrap();
    let socket = dir.path().join("state/control.sock");
    let env = [("HOME", home), ("HTTP_PROXY", PROXY)];
    let daemon =
        Running::start_with(&path, &dir.path().join("state"), fake_sts::SECRET_KEY, &env);
    let keys = daemon
        .log_line("the default profile has `aws_access_key_id`")
        .await;
    assert!(
        keys.contains("WARN") && keys.contains(&format!("{}:", file.display())),
        "{keys}"
    );
    assert!(
        keys.contains("rename its section header there to `[static]`"),
        "{keys}"
    );
    assert!(keys.contains("run `imdsd import default`"), "{keys}");
    let proxy = daemon.log_line("HTTP_PROXY is set").await;
    assert!(proxy.contains("run `export NO_PROXY=127.0.0.1`"), "{proxy}");
    daemon.log_line("fetched credentials").await;
    let sock = socket.to_str().unwrap();

    let client = [
        ("HOME", home),
        ("HTTP_PROXY", PROXY),
        ("NO_PROXY", "localhost"),
    ];
    let out = imdsd(&["status", "--socket", sock], &client);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    let block = shown.split("WARNINGS\n").nth(1).expect("a WARNINGS block");
    let lines: Vec<&str> = block.lines().take_while(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 2, "{shown}");
    assert!(lines[0].starts_with(&format!("  {}: the default profile", file.display())));
    assert!(
        lines[1].ends_with("run `export NO_PROXY=localhost,127.0.0.1`"),
        "{shown}"
    );
    let out = imdsd(&["status", "--json", "--socket", sock], &client);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["warnings"].as_array().unwrap().len(), 2, "{json}");

    let out = imdsd(&["env", "dev", "--socket", sock], &[("HOME", home)]);
    let printed = text(&out);
    assert!(
        printed.contains("export AWS_SHARED_CREDENTIALS_FILE='/dev/null'"),
        "{printed}"
    );
    assert!(printed.contains(&format!("imdsd: {}: the default profile", file.display())));
    for what in [shown, printed, daemon.lines().join("\n")] {
        assert_no_secret(&what);
    }

    // Fixed as the warnings say: nothing left to say.
    std::fs::write(
        &file,
        std::fs::read_to_string(&file)
            .unwrap()
            .replace("[default]", "[static]"),
    )
    .unwrap();
    let fixed = [
        ("HOME", home),
        ("HTTP_PROXY", PROXY),
        ("NO_PROXY", "localhost,127.0.0.1"),
    ];
    let out = imdsd(&["status", "--json", "--socket", sock], &fixed);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["warnings"], serde_json::json!([]));
    assert!(!text(&imdsd(&["status", "--socket", sock], &fixed)).contains("WARNINGS"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_reload_shows_in_status_until_a_good_one() {
    let live = Live::start(|sts| config(sts, "dev", "")).await;
    live.daemon.log_line("fetched credentials").await;
    let sock = live.socket();
    let sock = sock.to_str().unwrap();
    let bad = config(&live.sts, "dev", "")
        .replace("source = \"env\"", "source = \"env\"\nduration = \"99h\"");
    std::fs::write(&live.path, bad).unwrap();
    live.daemon.log_line("roles.dev.duration").await;
    let out = imdsd(&["status", "--socket", sock], &[]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    let failed = shown
        .lines()
        .position(|l| l.starts_with("RELOAD FAILED since "))
        .unwrap_or_else(|| panic!("no reload line in {shown}"));
    let lines: Vec<&str> = shown.lines().collect();
    assert!(
        lines[failed].ends_with(", serving the previous config:"),
        "{shown}"
    );
    assert!(lines[failed + 1].contains("roles.dev.duration"), "{shown}");
    let out = imdsd(&["status", "--json", "--socket", sock], &[]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = json["reload_error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("{}:", live.path.display())),
        "{json}"
    );
    let since = json["reload_error"]["since"].as_str().unwrap();
    assert!(lines[failed].contains(since), "{shown}");

    std::fs::write(&live.path, config(&live.sts, "prod", "")).unwrap();
    let gone = live.daemon.log_line("the reload error since").await;
    assert!(gone.contains(since) && gone.contains("is gone"), "{gone}");
    let out = imdsd(&["status", "--json", "--socket", sock], &[]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["reload_error"].is_null(), "{json}");
    assert!(!text(&imdsd(&["status", "--socket", sock], &[])).contains("RELOAD FAILED"));
}

#[test]
fn status_with_no_daemon_says_how_to_start_one() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().to_str().unwrap();
    let out = imdsd(&["status"], &[("HOME", home), ("XDG_RUNTIME_DIR", home)]);
    assert_eq!(out.status.code(), Some(1));
    let said = text(&out);
    assert!(
        said.starts_with(&format!(
            "imdsd: no imdsd is running (no control socket at {home}/imdsd/control.sock, "
        )),
        "{said}"
    );
    assert!(
        said.contains("start it with `imdsd run` or `systemctl --user start imdsd`"),
        "{said}"
    );
    // A socket left by a daemon that died says the same, naming it.
    let left = dir.path().join("left.sock");
    drop(std::os::unix::net::UnixListener::bind(&left).unwrap());
    let out = imdsd(&["status", "--socket", left.to_str().unwrap()], &[]);
    let said = text(&out);
    assert!(
        said.contains(&format!(
            "no imdsd is running ({} is left over",
            left.display()
        )),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_removes_the_socket_and_ends_with_stopped() {
    let live = Live::start(|sts| config(sts, "dev", "")).await;
    live.daemon.log_line("control socket ready").await;
    let socket = live.socket();
    assert!(socket.exists());
    live.daemon.signal("-TERM");
    let Live { daemon, dir, .. } = live;
    let (status, log) = daemon.wait().await;
    assert!(status.success(), "{log:#?}");
    let last = log
        .iter()
        .rfind(|l| !l.contains(" TRACE ") && !l.contains(" DEBUG "));
    assert!(last.unwrap().contains(" INFO stopped"), "{log:#?}");
    assert!(
        !socket.exists(),
        "the socket file is left in {}",
        dir.path().display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_whose_socket_is_taken_says_how_to_get_its_own() {
    let first = Live::start(|sts| config(sts, "dev", "")).await;
    first.daemon.log_line("control socket ready").await;
    let taken = first.socket();
    let taken_str = taken.to_str().unwrap();
    let state = first.dir.path().join("second-state");
    let second = Running::start_with(
        &first.path,
        &state,
        fake_sts::SECRET_KEY,
        &[("IMDSD_CONTROL_SOCKET", taken_str)],
    );
    let (status, log) = second.wait().await;
    assert_eq!(status.code(), Some(1), "{log:#?}");
    let said = log.join("\n");
    let own = taken.with_file_name("second.sock");
    assert!(
        said.contains(&format!(
            "imdsd: control socket {taken_str} is taken by another imdsd (pid {}, config {}): \
             give this one its own, with `IMDSD_CONTROL_SOCKET={} imdsd run` or \
             `control_socket = \"{}\"` under [daemon]",
            first.daemon.child.id(),
            first.path.display(),
            own.display(),
            own.display()
        )),
        "{said}"
    );
    // It said nothing that would send `imdsd refresh` or `mfa` to the
    // first daemon, and left that one's socket alone.
    assert!(
        !said.contains("serving on") && !said.contains("`imdsd "),
        "{said}"
    );
    let out = imdsd(&["status", "--socket", taken_str], &[]);
    assert!(out.status.success(), "{}", text(&out));
    // Given its own, as it says, it runs.
    let own_str = own.to_str().unwrap();
    let third = Running::start_with(
        &first.path,
        &state,
        fake_sts::SECRET_KEY,
        &[("IMDSD_CONTROL_SOCKET", own_str)],
    );
    third.log_line("control socket ready").await;
    // A config that names the socket wins over the variable: only the
    // config is suggested then.
    let named = first.dir.path().join("named.toml");
    let extra = format!("[daemon]\ncontrol_socket = \"{taken_str}\"\n");
    std::fs::write(&named, config(&first.sts, "dev", &extra)).unwrap();
    let fourth = Running::start_with(&named, &state, fake_sts::SECRET_KEY, &[]);
    let (status, log) = fourth.wait().await;
    assert_eq!(status.code(), Some(1), "{log:#?}");
    let said = log.join("\n");
    assert!(
        said.contains(&format!(
            "give this one its own, with `control_socket = \"{}\"` under [daemon] in its config",
            own.display()
        )),
        "{said}"
    );
    assert!(!said.contains("IMDSD_CONTROL_SOCKET="), "{said}");
}

#[test]
fn check_with_no_config_file_says_what_run_would_serve() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().to_str().unwrap();
    let keys = [
        ("HOME", home),
        ("AWS_ACCESS_KEY_ID", OLD_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", OLD_SECRET),
    ];
    let out = imdsd(&["check"], &keys);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert_eq!(
        said,
        format!(
            "no config file (tried {home}/.config/imdsd/imdsd.toml, /etc/imdsd/imdsd.toml): \
             `imdsd run` would serve session credentials (GetSessionToken) for the keys in \
             AWS_ACCESS_KEY_ID as role `env` on http://127.0.0.1:16925\n"
        )
    );
    assert_no_secret(&said);
    // Nothing to serve either: `run` would not start, and `check` says why.
    let out = imdsd(&["check"], &[("HOME", home)]);
    assert_eq!(out.status.code(), Some(64));
    assert!(
        text(&out).contains("no zero-config start either"),
        "{}",
        text(&out)
    );
}

/// The aws-vault habit: `imdsd exec dev` alone opens `$SHELL` as the role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_without_a_command_starts_the_shell_with_the_role() {
    use std::os::unix::fs::PermissionsExt;
    let live = Live::start(|sts| config(sts, "dev", "")).await;
    let addr = live.daemon.addr().await;
    live.daemon.log_line("control socket ready").await;
    let shell = live.dir.path().join("fake-shell");
    std::fs::write(
        &shell,
        "#!/bin/sh\necho \"endpoint=$AWS_EC2_METADATA_SERVICE_ENDPOINT args=$#\"\nexit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&shell, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sock = live.socket();
    let out = imdsd(
        &["exec", "dev", "--socket", sock.to_str().unwrap()],
        &[("SHELL", shell.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout, format!("endpoint=http://{addr} args=0\n"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("starting"), "{stderr}");
}
