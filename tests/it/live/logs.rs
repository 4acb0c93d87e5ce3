//! Log lines an operator can read: no Rust debug syntax, syslog priorities
//! under systemd's journal, one JSON object per line on request.

use super::*;

/// Lines of a daemon that reloaded (a role and a listener added) and
/// failed a refresh: the lines that used to print `Some(…)` and `[…]`.
/// The daemon, and what it needs kept alive (its directory and fake STS).
async fn eventful_daemon(
    env: &[(&str, &str)],
    launcher: Option<&str>,
) -> (Running, tempfile::TempDir, FakeSts) {
    let sts = FakeSts::start(ManualClock::starting_now()).await;
    sts.script([Answer::Error {
        status: 403,
        code: "AccessDenied",
    }]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let path = crate::process::plain_file(&dir, &config(&sts, "dev", ""));
    let cmd = match launcher {
        Some(script) => {
            let mut cmd = std::process::Command::new("sh");
            cmd.args(["-c", script, BIN, "run", "--config"]).arg(&path);
            cmd
        }
        None => {
            let mut cmd = std::process::Command::new(BIN);
            cmd.args(["run", "--config"]).arg(&path);
            cmd
        }
    };
    let mut env = env.to_vec();
    env.push(("IMDSD_LOG", "debug"));
    let daemon = Running::spawn(cmd, &dir.join("state"), fake_sts::SECRET_KEY, &env);
    daemon.log_line("AccessDenied").await;
    let more = config(
        &sts,
        "dev",
        "[[imds]]\nlisten = \"127.0.0.1:0\"\nrole = \"ops\"\n",
    )
    .replacen(
        "listen = \"127.0.0.1:0\"\n[sts]",
        "listen = \"127.0.0.1:0\"\nrole = \"dev\"\n[sts]",
        1,
    ) + "[roles.ops]\nrole_arn = \"arn:aws:iam::123456789012:role/ops\"\nsource = \"env\"\n";
    std::fs::write(&path, more).unwrap();
    daemon.log_line("config reloaded").await;
    (daemon, tmp, sts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn human_lines_carry_no_rust_debug_syntax() {
    let (daemon, _dir, _sts) = eventful_daemon(&[], None).await;
    let lines = daemon.lines();
    let reloaded = lines
        .iter()
        .find(|l| l.contains("config reloaded"))
        .unwrap();
    assert!(reloaded.contains("roles_started=ops"), "{reloaded}");
    assert!(reloaded.contains("roles_stopped=-"), "{reloaded}");
    for line in &lines {
        for debug in ["Some(", "None", "[\"", "\\\""] {
            assert!(!line.contains(debug), "{debug} in: {line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_journal_lines_carry_priorities_and_no_timestamps() {
    // What systemd does: JOURNAL_STREAM names the very stream stderr is.
    let launcher =
        "JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec \"$0\" \"$@\"";
    let (daemon, _dir, _sts) = eventful_daemon(&[], Some(launcher)).await;
    let lines = daemon.lines();
    for line in &lines {
        let priority = line.get(..3).unwrap_or_default();
        assert!(["<3>", "<4>", "<6>", "<7>"].contains(&priority), "{line}");
        assert!(!has_timestamp(line), "{line}");
    }
    let level_of = |needle: &str| {
        lines
            .iter()
            .find(|l| l.contains(needle))
            .map(|l| l[..3].to_string())
    };
    assert_eq!(
        level_of("no usable credentials are left").as_deref(),
        Some("<3>")
    );
    assert_eq!(level_of("config reloaded").as_deref(), Some("<6>"));

    // A child with stderr elsewhere inherits JOURNAL_STREAM: not the journal.
    let launcher = "JOURNAL_STREAM=1:1 exec \"$0\" \"$@\"";
    let (daemon, _dir, _sts) = eventful_daemon(&[], Some(launcher)).await;
    assert!(daemon.lines().iter().all(|l| !l.starts_with('<')));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_for_log_shippers() {
    let (daemon, _dir, _sts) =
        eventful_daemon(&[("IMDSD_LOG_FORMAT", "json")], None).await;
    let lines = daemon.lines();
    assert!(lines.len() > 3);
    let objects: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let failed = objects
        .iter()
        .find(|o| o["code"] == "AccessDenied")
        .expect("the failure");
    assert_eq!(failed["level"], "ERROR");
    assert_eq!(failed["role"], "dev");
    assert!(failed["timestamp"].is_string());
    let reloaded = objects
        .iter()
        .find(|o| o["message"] == "config reloaded")
        .expect("the reload");
    assert_eq!(reloaded["roles_started"], "ops");
}

/// Whether `line` holds an RFC 3339 date-time such as 2026-12-02T06:01:52.
fn has_timestamp(line: &str) -> bool {
    let shape = "dddd-dd-ddTdd:dd";
    let b = line.as_bytes();
    (0..b.len().saturating_sub(shape.len() - 1)).any(|i| {
        shape.bytes().enumerate().all(|(j, want)| match want {
            b'd' => b[i + j].is_ascii_digit(),
            other => b[i + j] == other,
        })
    })
}

#[test]
fn timestamps_are_recognised() {
    assert!(has_timestamp("2026-12-02T06:01:52.583634Z  INFO starting"));
    assert!(!has_timestamp("<6> INFO serving on http://127.0.0.1:46027"));
}
