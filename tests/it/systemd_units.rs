//! The shipped systemd units in `systemd/`: `systemd-analyze verify` accepts
//! them without a single complaint, and the facts `systemd/README.md` relies
//! on hold (which commands they run, where the transparent socket listens,
//! that both system services share one sandbox).
//!
//! `systemd-analyze` comes with Debian's `systemd` package and works offline:
//! it needs no systemd running as PID 1. Where it is missing these tests fail
//! and say how to install it; they never pass without verifying.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_imdsd");

/// Where the units expect the binary (`ExecStart=` and friends).
const INSTALLED_BIN: &str = "/usr/local/bin/imdsd";

/// System units: (file in `systemd/`, name it is installed under).
const SYSTEM_UNITS: [(&str, &str); 3] = [
    ("imdsd.service", "imdsd.service"),
    ("imdsd-transparent.service", "imdsd-transparent.service"),
    ("imdsd-transparent.socket", "imdsd-transparent.socket"),
];

/// The `systemctl --user` unit, installed as `~/.config/systemd/user/imdsd.service`.
const USER_UNIT: (&str, &str) = ("imdsd-user.service", "imdsd.service");

const TRANSPARENT_ADDR: &str = "169.254.169.254:80";

fn systemd_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd")
}

fn read_unit(file: &str) -> String {
    let path = systemd_dir().join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

// ---- a small unit-file reader --------------------------------------------

/// One `Key=Value` assignment of a unit file.
#[derive(Debug, Clone)]
struct Entry {
    section: String,
    key: String,
    value: String,
}

/// The assignments of a unit file, in order. Comments and blank lines are
/// dropped; continuation lines are refused (the shipped units use none, and
/// reading them wrongly would make the checks below meaningless).
fn parse_unit(file: &str, text: &str) -> Vec<Entry> {
    let mut section = String::new();
    let mut entries = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        assert!(
            !line.ends_with('\\'),
            "{file}:{}: continuation lines are not supported here",
            n + 1
        );
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{file}:{}: not a Key=Value line: {raw}", n + 1));
        assert!(
            !section.is_empty(),
            "{file}:{}: assignment outside a section",
            n + 1
        );
        entries.push(Entry {
            section: section.clone(),
            key: key.trim().to_string(),
            value: value.trim().to_string(),
        });
    }
    entries
}

struct Unit {
    file: &'static str,
    entries: Vec<Entry>,
}

impl Unit {
    fn load(file: &'static str) -> Unit {
        Unit {
            file,
            entries: parse_unit(file, &read_unit(file)),
        }
    }

    /// Every value assigned to `section`.`key`, in order.
    fn values(&self, section: &str, key: &str) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|e| e.section == section && e.key == key)
            .map(|e| e.value.as_str())
            .collect()
    }

    /// The single value of `section`.`key`.
    fn value(&self, section: &str, key: &str) -> &str {
        match self.values(section, key).as_slice() {
            [one] => one,
            other => panic!(
                "{}: expected one {section}.{key}, found {other:?}",
                self.file
            ),
        }
    }

    /// The `Exec*=` keys this unit sets in `section`.
    fn exec_keys(&self, section: &str) -> Vec<&str> {
        let mut keys: Vec<&str> = self
            .entries
            .iter()
            .filter(|e| e.section == section && e.key.starts_with("Exec"))
            .map(|e| e.key.as_str())
            .collect();
        keys.dedup();
        keys
    }
}

// ---- systemd-analyze verify -----------------------------------------------

/// Fails the test when `systemd-analyze` cannot run: skipping would let a
/// broken unit through unnoticed.
pub fn require_systemd_analyze() {
    let install = "install it with `apt-get install -y systemd` (the Debian/Ubuntu package \
                   `systemd` ships /usr/bin/systemd-analyze; `verify` works offline, without \
                   systemd as PID 1)";
    match Command::new("systemd-analyze").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "`systemd-analyze --version` failed ({}): {}; {install}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "cannot run systemd-analyze ({e}); the systemd unit tests need it: {install}"
        ),
    }
}

/// A scratch directory holding units under their installed names, with the
/// installed binary path replaced by the binary cargo just built (`verify`
/// checks that every command exists and is executable).
pub struct Staged {
    pub dir: tempfile::TempDir,
    pub files: Vec<PathBuf>,
}

fn stage(units: &[(&str, &str)], edit: impl Fn(&str, String) -> String) -> Staged {
    assert!(
        !BIN.chars().any(char::is_whitespace),
        "the test binary path {BIN:?} contains whitespace, which unit files cannot carry unquoted"
    );
    let dir = tempfile::tempdir().unwrap();
    let units_dir = dir.path().join("units");
    std::fs::create_dir(&units_dir).unwrap();
    let mut files = Vec::new();
    for (file, installed) in units {
        let text = read_unit(file);
        let text = if file.ends_with(".service") {
            assert!(
                text.contains(INSTALLED_BIN),
                "{file} does not run {INSTALLED_BIN}"
            );
            text.replace(INSTALLED_BIN, BIN)
        } else {
            text
        };
        let path = units_dir.join(installed);
        std::fs::write(&path, edit(file, text)).unwrap();
        files.push(path);
    }
    Staged { dir, files }
}

/// Runs `systemd-analyze verify` on the staged units and returns every line
/// it printed. It prints nothing for units it has nothing to say about; an
/// unknown key or an unparsable value is only a printed line (the exit
/// status stays 0), so every line counts as a complaint.
pub fn verify(staged: &Staged, user: bool) -> Result<(), String> {
    let mut cmd = Command::new("systemd-analyze");
    // A user manager needs a runtime directory, and must not see the real
    // user's units or config.
    let home = staged.dir.path().join("home");
    let runtime = staged.dir.path().join("runtime");
    for dir in [&home, &runtime] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::set_permissions(
            dir,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
    }
    cmd.env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_RUNTIME_DIR", &runtime)
        .env_remove("SYSTEMD_UNIT_PATH")
        .env("SYSTEMD_LOG_COLOR", "0")
        .env("SYSTEMD_PAGER", "");
    if user {
        cmd.arg("--user");
    }
    // --recursive-errors=no: judge these units, not the host's units they
    // pull in (network-online.target, sockets.target, ...).
    cmd.args(["verify", "--man=no", "--recursive-errors=no"])
        .args(&staged.files);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run systemd-analyze: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let complaints: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if out.status.success() && complaints.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "systemd-analyze {}verify exited with {} and printed:\n{}",
            if user { "--user " } else { "" },
            out.status,
            complaints.join("\n")
        ))
    }
}

#[test]
fn systemd_analyze_verify_accepts_the_system_units() {
    require_systemd_analyze();
    let staged = stage(&SYSTEM_UNITS, |_, text| text);
    if let Err(e) = verify(&staged, false) {
        panic!("{e}");
    }
}

#[test]
fn systemd_analyze_verify_accepts_the_user_unit() {
    require_systemd_analyze();
    let staged = stage(&[USER_UNIT], |_, text| text);
    if let Err(e) = verify(&staged, true) {
        panic!("{e}");
    }
}

/// The check above is only worth something if it notices mistakes that
/// `systemd-analyze verify` reports without failing.
#[test]
fn verify_check_catches_a_bad_directive_and_a_missing_command() {
    require_systemd_analyze();
    let staged = stage(&SYSTEM_UNITS, |file, text| match file {
        "imdsd.service" => {
            text.replace("ProtectSystem=strict", "ProtectSystem=sometimes")
        }
        "imdsd-transparent.socket" => {
            text.replace("FreeBind=yes", "FreeBind=yes\nBindToDevise=lo")
        }
        "imdsd-transparent.service" => text.replace(
            &format!("ExecStart={BIN} "),
            "ExecStart=/nonexistent/imdsd ",
        ),
        _ => text,
    });
    let err = verify(&staged, false).expect_err("verify accepted broken units");
    for needle in ["sometimes", "BindToDevise", "/nonexistent/imdsd"] {
        assert!(err.contains(needle), "no complaint about {needle}:\n{err}");
    }
}

// ---- what the units run ---------------------------------------------------

/// Each service runs exactly `imdsd check` before starting, `imdsd run`, and
/// `imdsd check` then `kill -HUP` to reload, all with the same config.
fn assert_commands(unit: &Unit, config: &str) {
    let check = format!("{INSTALLED_BIN} check --config {config}");
    let run = format!("{INSTALLED_BIN} run --config {config}");
    let file = unit.file;
    assert_eq!(
        unit.values("Service", "ExecStartPre"),
        [check.as_str()],
        "{file}"
    );
    assert_eq!(
        unit.values("Service", "ExecStart"),
        [run.as_str()],
        "{file}"
    );
    assert_eq!(
        unit.values("Service", "ExecReload"),
        [check.as_str(), "/bin/kill -HUP $MAINPID"],
        "{file}"
    );
    assert_eq!(
        unit.exec_keys("Service"),
        ["ExecStartPre", "ExecStart", "ExecReload"],
        "{file}: other Exec*= commands"
    );
    assert_eq!(unit.value("Service", "Type"), "notify", "{file}");
    assert_eq!(unit.value("Service", "NotifyAccess"), "main", "{file}");
}

#[test]
fn services_run_only_imdsd_check_imdsd_run_and_kill() {
    assert_commands(&Unit::load("imdsd.service"), "/etc/imdsd/imdsd.toml");
    assert_commands(
        &Unit::load("imdsd-transparent.service"),
        "/etc/imdsd/transparent.toml",
    );
    // %E is $XDG_CONFIG_HOME in a user manager.
    assert_commands(&Unit::load("imdsd-user.service"), "%E/imdsd/imdsd.toml");
}

#[test]
fn transparent_socket_listens_on_169_254_169_254_port_80_on_lo_only() {
    let socket = Unit::load("imdsd-transparent.socket");
    assert_eq!(socket.values("Socket", "ListenStream"), [TRANSPARENT_ADDR]);
    assert_eq!(socket.value("Socket", "BindToDevice"), "lo");
    assert_eq!(socket.value("Socket", "FreeBind"), "yes");
    assert_eq!(
        socket.values("Socket", "ExecStartPre"),
        ["/sbin/ip addr replace 169.254.169.254/32 dev lo"]
    );
    assert_eq!(
        socket.values("Socket", "ExecStopPost"),
        ["-/sbin/ip addr del 169.254.169.254/32 dev lo"]
    );
    assert_eq!(socket.exec_keys("Socket"), ["ExecStartPre", "ExecStopPost"]);

    let service = Unit::load("imdsd-transparent.service");
    assert_eq!(
        service.values("Unit", "Requires"),
        ["imdsd-transparent.socket"]
    );
    assert!(
        service
            .values("Unit", "After")
            .contains(&"imdsd-transparent.socket")
    );
}

/// The example config for transparent mode passes `imdsd check` and listens
/// where the socket unit binds, so that imdsd adopts systemd's socket.
#[test]
fn transparent_example_config_matches_the_socket_and_passes_check() {
    let path = systemd_dir().join("transparent.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let listens: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("listen"))
        .filter_map(|l| l.trim_start().strip_prefix('='))
        .map(|v| v.trim().trim_matches('"'))
        .collect();
    assert_eq!(
        listens,
        [TRANSPARENT_ADDR],
        "uncommented listen lines of transparent.toml"
    );

    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "imdsd check {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---- sandboxes -------------------------------------------------------------

/// `[Service]` settings apart from what legitimately differs between the two
/// system services (commands and their config path).
fn sandbox(unit: &Unit) -> Vec<String> {
    unit.entries
        .iter()
        .filter(|e| e.section == "Service" && !e.key.starts_with("Exec"))
        .map(|e| format!("{}={}", e.key, e.value))
        .collect()
}

#[test]
fn transparent_service_has_the_same_sandbox_as_the_system_service() {
    let plain = sandbox(&Unit::load("imdsd.service"));
    let transparent = sandbox(&Unit::load("imdsd-transparent.service"));
    assert_eq!(transparent, plain);
    // Port 80 is bound by systemd, so the daemon keeps no capability.
    for setting in [
        "CapabilityBoundingSet=",
        "AmbientCapabilities=",
        "DynamicUser=yes",
    ] {
        assert!(
            plain.iter().any(|s| s == setting),
            "imdsd.service lacks {setting}"
        );
    }
}

/// Settings a user manager cannot apply on its own (they need a mount, UTS
/// or user namespace, or capabilities the user does not have): setting them
/// would make the unit fail where unprivileged user namespaces are off.
const NEEDS_PRIVILEGE: &[&str] = &[
    "ProtectSystem",
    "ProtectHome",
    "PrivateTmp",
    "PrivateDevices",
    "PrivateMounts",
    "PrivateUsers",
    "PrivateNetwork",
    "PrivateIPC",
    "ProtectKernelTunables",
    "ProtectKernelModules",
    "ProtectKernelLogs",
    "ProtectControlGroups",
    "ProtectClock",
    "ProtectHostname",
    "ProtectProc",
    "ProcSubset",
    "ReadOnlyPaths",
    "ReadWritePaths",
    "InaccessiblePaths",
    "BindReadOnlyPaths",
    "CapabilityBoundingSet",
    "AmbientCapabilities",
    "DynamicUser",
    "User",
];

#[test]
fn user_unit_uses_only_settings_a_user_manager_can_apply() {
    let user = Unit::load("imdsd-user.service");
    for entry in &user.entries {
        assert!(
            !NEEDS_PRIVILEGE.contains(&entry.key.as_str()),
            "imdsd-user.service sets {}=, which needs privileges or user namespaces \
             in a user manager",
            entry.key
        );
    }
    // The seccomp-based part of the system sandbox is all there.
    let system = Unit::load("imdsd.service");
    let seccomp = [
        "NoNewPrivileges",
        "RestrictNamespaces",
        "RestrictRealtime",
        "RestrictSUIDSGID",
        "LockPersonality",
        "MemoryDenyWriteExecute",
        "RestrictAddressFamilies",
        "SystemCallArchitectures",
        "SystemCallFilter",
        "SystemCallErrorNumber",
        "UMask",
    ];
    for key in seccomp {
        assert_eq!(
            user.values("Service", key),
            system.values("Service", key),
            "{key}"
        );
    }
}
