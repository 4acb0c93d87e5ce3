//! Running the real `imdsd` binary as a child process, with its stderr
//! collected line by line.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::fake_sts;
use crate::util::eventually;

pub const BIN: &str = env!("CARGO_BIN_EXE_imdsd");

/// The daemon under test.
pub struct Running {
    pub child: Child,
    pub log: Arc<Mutex<Vec<String>>>,
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
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Running { child, log }
    }

    /// The address of the `n`th "serving on" line.
    pub async fn addr(&self) -> SocketAddr {
        self.addr_n(0).await
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
                    rest.split(';').next()?.parse().ok()
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
        let (status, this) = tokio::task::spawn_blocking(move || {
            let status = self.child.wait().unwrap();
            (status, self)
        })
        .await
        .unwrap();
        // Let the reader thread drain the pipe.
        tokio::time::sleep(Duration::from_millis(100)).await;
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
