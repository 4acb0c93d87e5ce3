//! A real Secret Service for a test: a private D-Bus session bus (its own
//! `dbus-daemon`, no service activation, so nothing starts behind the
//! test's back) and GNOME Keyring on it (`gnome-keyring-daemon
//! --foreground --unlock`, its `login` keyring under the test's HOME),
//! both killed on drop. Debian's `dbus-daemon`, `gnome-keyring` and
//! `libsecret-tools` (installed by the test command).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The password of the test's `login` keyring.
const PASSWORD: &str = "imdsd-test-keyring";

/// A session bus with (or, until [`SecretService::start_keyring`], without)
/// GNOME Keyring on it.
pub struct SecretService {
    pub home: PathBuf,
    pub runtime: PathBuf,
    pub address: String,
    bus: Child,
    keyring: Option<Child>,
}

impl SecretService {
    /// A bus and an unlocked keyring, for HOME `home`.
    pub fn start(home: &Path) -> SecretService {
        let mut s = Self::bus_only(home);
        s.start_keyring();
        s
    }

    /// A bus with no Secret Service on it.
    pub fn bus_only(home: &Path) -> SecretService {
        let runtime = home.join("run");
        std::fs::create_dir_all(&runtime).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700))
            .unwrap();
        let conf = runtime.join("bus.conf");
        std::fs::write(
            &conf,
            format!(
                "<busconfig><type>session</type><listen>unix:path={}</listen>\
                 <auth>EXTERNAL</auth><policy context=\"default\">\
                 <allow send_destination=\"*\" eavesdrop=\"true\"/><allow eavesdrop=\"true\"/>\
                 <allow own=\"*\"/></policy></busconfig>",
                runtime.join("bus").display()
            ),
        )
        .unwrap();
        let mut bus = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", conf.display()))
            .args(["--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (Debian's dbus-daemon; scripts/test.sh installs it)");
        let mut line = String::new();
        BufReader::new(bus.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("unix:"), "dbus-daemon said {line:?}");
        SecretService {
            home: home.to_path_buf(),
            runtime,
            address: line.trim().to_string(),
            bus,
            keyring: None,
        }
    }

    /// The variables a process needs to find this Secret Service.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("HOME", self.home.display().to_string()),
            ("XDG_RUNTIME_DIR", self.runtime.display().to_string()),
            (
                "XDG_DATA_HOME",
                self.home.join(".local/share").display().to_string(),
            ),
            ("DBUS_SESSION_BUS_ADDRESS", self.address.clone()),
        ]
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(self.env());
        cmd
    }

    /// Starts GNOME Keyring and unlocks (or creates) its `login` keyring.
    pub fn start_keyring(&mut self) {
        self.stop_keyring();
        let mut child = self
            .command("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gnome-keyring-daemon (Debian's gnome-keyring; scripts/test.sh installs it)");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(PASSWORD.as_bytes()).unwrap();
        drop(stdin);
        self.keyring = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.unlocked() {
            assert!(
                Instant::now() < deadline,
                "the keyring did not come up in 20s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the `login` keyring is there and unlocked.
    fn unlocked(&self) -> bool {
        let out = self
            .command("busctl")
            .args([
                "--address",
                &self.address,
                "get-property",
                "org.freedesktop.secrets",
            ])
            .args([
                "/org/freedesktop/secrets/collection/login",
                "org.freedesktop.Secret.Collection",
                "Locked",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim() == "b false"
    }

    /// Stops GNOME Keyring: the bus stays, with no Secret Service on it.
    pub fn stop_keyring(&mut self) {
        if let Some(mut child) = self.keyring.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Locks the `login` keyring, as a screen lock or a timeout would.
    pub fn lock(&self) {
        let out = self
            .command("busctl")
            .args([
                "--address",
                &self.address,
                "call",
                "org.freedesktop.secrets",
            ])
            .args(["/org/freedesktop/secrets", "org.freedesktop.Secret.Service"])
            .args([
                "Lock",
                "ao",
                "1",
                "/org/freedesktop/secrets/collection/login",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!self.unlocked());
    }

    /// What `secret-tool` finds for profile `profile`'s item: its label and
    /// secret, or `None`.
    pub fn lookup(&self, profile: &str) -> Option<(String, String)> {
        let out = self
            .command("secret-tool")
            .args(["search", "application", "imdsd", "profile", profile])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let label = text
            .lines()
            .find_map(|l| l.strip_prefix("label = "))?
            .to_string();
        let secret = self
            .command("secret-tool")
            .args(["lookup", "application", "imdsd", "profile", profile])
            .output()
            .unwrap();
        Some((label, String::from_utf8_lossy(&secret.stdout).into_owned()))
    }
}

impl Drop for SecretService {
    fn drop(&mut self) {
        self.stop_keyring();
        let _ = self.bus.kill();
        let _ = self.bus.wait();
    }
}
