//! Running the real `imdsd` binary as a child process, with its stderr
//! collected line by line.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::fake_sts::{self, FakeSts};
use crate::util::eventually;
use imdsd::ManualClock;

pub const BIN: &str = env!("CARGO_BIN_EXE_imdsd");

/// A fake STS, a config directory and the real daemon running on it. The
/// config text is made from the fake (its endpoint), which may be scripted
/// first.
pub struct Live {
    pub sts: FakeSts,
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
    pub daemon: Running,
}
impl Live {
    pub async fn start(text_for: impl Fn(&FakeSts) -> String) -> Live {
        Self::start_at(text_for, plain_file).await
    }

    /// `place` writes the config text (`{dir}` replaced by the directory)
    /// into the directory its own way and returns the path the daemon is
    /// given.
    pub async fn start_at(
        text_for: impl Fn(&FakeSts) -> String,
        place: impl Fn(&Path, &str) -> PathBuf,
    ) -> Live {
        let sts = FakeSts::start(ManualClock::starting_now()).await;
        let dir = tempfile::tempdir().unwrap();
        let text = text_for(&sts).replace("{dir}", dir.path().to_str().unwrap());
        let path = place(dir.path(), &text);
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
impl Live {
    /// The daemon's state directory.
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The daemon's control socket.
    pub fn socket(&self) -> PathBuf {
        self.state().join("control.sock")
    }

    /// Lets other users reach the control socket (and see the state
    /// directory), as under `/run/imdsd`.
    pub fn open_to_others(&self) {
        use std::os::unix::fs::PermissionsExt;
        for dir in [self.dir.path().to_path_buf(), self.state()] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
    }
}

/// The config as one plain file.
pub fn plain_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("imdsd.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `imdsd ARGS...` run as `nobody` (uid and gid 65534, no groups): a local
/// user who is not the daemon's.
pub fn as_nobody(args: &[&str]) -> Command {
    program_as_nobody(BIN, args)
}

/// `PROGRAM ARGS...` run as `nobody`.
pub fn program_as_nobody(program: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", program])
        .args(args);
    cmd
}

/// The daemon under test.
pub struct Running {
    pub child: Child,
    pub log: Arc<Mutex<Vec<String>>>,
    /// The thread reading stderr; it ends at the pipe's end of file.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// `imdsd run --config CONFIG` with trace logs, source keys `secret`,
    /// state and control socket under `state`.
    pub fn start(config: &Path, state: &Path, secret: &str) -> Running {
        Self::start_with(config, state, secret, &[])
    }

    pub fn start_with(
        config: &Path,
        state: &Path,
        secret: &str,
        env: &[(&str, &str)],
    ) -> Running {
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "--config"]).arg(config);
        Self::spawn(cmd, state, secret, env)
    }

    /// Runs `cmd` (the binary, or a launcher in front of it) with the
    /// daemon's environment.
    pub fn spawn(
        mut cmd: Command,
        state: &Path,
        secret: &str,
        env: &[(&str, &str)],
    ) -> Running {
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("IMDSD_LOG", "trace")
            .env("XDG_STATE_HOME", state)
            .env("IMDSD_CONTROL_SOCKET", state.join("control.sock"))
            .env("AWS_ACCESS_KEY_ID", fake_sts::ACCESS_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let stderr = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Running {
            child,
            log,
            reader: Some(reader),
        }
    }

    /// The address of the `n`th "serving on" line.
    pub async fn addr(&self) -> SocketAddr {
        self.addr_n(0).await
    }

    /// The admin listener's address, from its log line.
    pub async fn admin_addr(&self) -> SocketAddr {
        let line = self.log_line("health and metrics on http://").await;
        let after = line.split("http://").nth(1).unwrap_or_default();
        after.split(' ').next().unwrap_or_default().parse().unwrap()
    }

    pub async fn addr_n(&self, n: usize) -> SocketAddr {
        let log = self.log.clone();
        eventually(Duration::from_secs(10), || {
            let found = log
                .lock()
                .unwrap()
                .iter()
                .filter_map(|l| {
                    let rest = l.split("serving on http://").nth(1)?;
                    rest.split([';', ' ']).next()?.parse().ok()
                })
                .nth(n);
            async move { found }
        })
        .await
        .unwrap_or_else(|| {
            panic!("no listen line {n} in {:#?}", self.log.lock().unwrap())
        })
    }

    /// Waits (bounded) for a log line containing `needle`.
    pub async fn log_line(&self, needle: &str) -> String {
        let log = self.log.clone();
        eventually(Duration::from_secs(10), || {
            let found = log
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
                .cloned();
            async move { found }
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "no log line with {needle:?} in {:#?}",
                self.log.lock().unwrap()
            )
        })
    }

    pub fn lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    pub async fn wait(mut self) -> (std::process::ExitStatus, Vec<String>) {
        // Every line is in once the reader has seen the pipe's end (the
        // daemon and anything it started have exited).
        let reader = self.reader.take();
        let (status, this) = tokio::task::spawn_blocking(move || {
            let status = self.child.wait().unwrap();
            if let Some(reader) = reader {
                reader.join().expect("the log reader thread panicked");
            }
            (status, self)
        })
        .await
        .unwrap();
        let log = this.log.lock().unwrap().clone();
        (status, log)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
