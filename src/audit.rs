//! The audit trail: one line per credentials vend, saying who got which
//! role's keys: the time, the listener, the role, the access key id, the
//! client's address, and the local user, process id and executable owning
//! the client socket when they can be found. Never a secret.
//!
//! `[daemon] audit_log = "PATH"` appends JSON lines to a file (reopened on
//! every reload and SIGHUP, so logrotate can move it away);
//! `audit_log = "stderr"` logs them at INFO under the `imdsd::audit`
//! target instead (journald keeps them with the daemon's log).
//!
//! The client's process is found before the answer goes out, while the
//! client socket is still open: a short-lived client such as `curl` exits
//! as soon as it has its answer, and a lookup after that finds nobody.
//! That lookup (a `/proc` scan, off the runtime threads, once per client
//! socket) is the one cost auditing adds to a vend. The line is handed to
//! one background thread through a bounded queue: writing never delays an
//! answer, and when the queue is full a line is dropped and counted rather
//! than waiting.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::AuditTarget;
use crate::logging::Opt;
use crate::server::Client;

/// One credentials vend.
#[derive(Debug, Clone)]
pub(crate) struct Vend {
    pub(crate) at: DateTime<Utc>,
    pub(crate) listener: SocketAddr,
    /// `imds` or `container`.
    pub(crate) protocol: &'static str,
    pub(crate) role: String,
    pub(crate) access_key_id: String,
    pub(crate) client: Client,
    /// The process holding the client socket (filled in by
    /// [`Audit::vend`]).
    pub(crate) process: Option<Process>,
}

/// The line written for a vend (pure data; serialized as one JSON object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Line {
    pub(crate) time: String,
    pub(crate) listener: String,
    pub(crate) protocol: &'static str,
    pub(crate) role: String,
    pub(crate) access_key_id: String,
    pub(crate) peer: String,
    pub(crate) uid: Option<u32>,
    pub(crate) pid: Option<u32>,
    pub(crate) exe: Option<String>,
}

impl Line {
    /// The line for `vend`, with the owning process when found.
    pub(crate) fn new(vend: &Vend) -> Self {
        let process = vend.process.as_ref();
        Line {
            time: vend.at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            listener: vend.listener.to_string(),
            protocol: vend.protocol,
            role: vend.role.clone(),
            access_key_id: vend.access_key_id.clone(),
            peer: vend.client.addr.to_string(),
            uid: vend.client.owner().map(|o| o.uid),
            pid: process.map(|p| p.pid),
            exe: process.and_then(|p| p.exe.clone()),
        }
    }
}

/// The process holding a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Process {
    pub(crate) pid: u32,
    /// Its executable, when this daemon may read `/proc/PID/exe`.
    pub(crate) exe: Option<String>,
}

enum Message {
    Vend(Box<Vend>),
    Target(Option<AuditTarget>),
}

/// The handle endpoints record vends through; cheap to clone and to call
/// when auditing is off.
#[derive(Debug, Clone)]
pub(crate) struct Audit {
    tx: mpsc::SyncSender<Message>,
    enabled: std::sync::Arc<std::sync::atomic::AtomicBool>,
    dropped: std::sync::Arc<AtomicU64>,
    processes: Arc<Mutex<Processes>>,
}

/// Client socket (inode and address) → its process, so a keep-alive
/// client is looked up once.
type Processes = HashMap<(u32, SocketAddr), Option<Process>>;

/// Sockets remembered, at most (then forgotten all at once).
const REMEMBERED: usize = 1024;

/// Vends waiting for the writer, at most.
const QUEUE: usize = 4096;

impl Audit {
    /// Starts the writer thread, with `target` (none: off).
    pub(crate) fn start(target: Option<AuditTarget>) -> Audit {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let audit = Audit {
            tx,
            enabled: Default::default(),
            dropped: Default::default(),
            processes: Default::default(),
        };
        let _ = std::thread::Builder::new()
            .name("imdsd-audit".into())
            .spawn(move || Writer::default().run(rx));
        audit.retarget(target);
        audit
    }

    /// Switches where lines go (and reopens the file: a reload or SIGHUP
    /// after logrotate moved it).
    pub(crate) fn retarget(&self, target: Option<AuditTarget>) {
        self.enabled.store(target.is_some(), Ordering::Relaxed);
        let _ = self.tx.send(Message::Target(target));
    }

    /// Records a vend, if auditing is on: finds the client's process
    /// (while the client still waits for its answer), then queues the line
    /// without waiting.
    pub(crate) async fn vend(&self, vend: impl FnOnce() -> Vend) {
        if !self.enabled.load(Ordering::Relaxed) {
            return;
        }
        let mut vend = vend();
        vend.process = self.process(&vend.client).await;
        if self.tx.try_send(Message::Vend(Box::new(vend))).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed);
            if n.is_power_of_two() {
                tracing::warn!(dropped = n + 1, "audit queue full: audit lines dropped");
            }
        }
    }

    /// The process holding `client`'s socket, from memory or `/proc`.
    async fn process(&self, client: &Client) -> Option<Process> {
        let inode = client.owner().map(|o| o.inode).filter(|i| *i != 0)?;
        let key = (inode, client.addr);
        if let Some(known) = self.remembered().get(&key) {
            return known.clone();
        }
        let found = tokio::task::spawn_blocking(move || process_of_socket(inode))
            .await
            .ok()
            .flatten();
        let mut remembered = self.remembered();
        if remembered.len() >= REMEMBERED {
            remembered.clear();
        }
        remembered.insert(key, found.clone());
        found
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, Processes> {
        self.processes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The writer thread's state.
#[derive(Default)]
struct Writer {
    target: Option<AuditTarget>,
    file: Option<std::fs::File>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Message>) {
        while let Ok(message) = rx.recv() {
            match message {
                Message::Target(target) => self.retarget(target),
                Message::Vend(vend) => self.write(&vend),
            }
        }
    }

    fn retarget(&mut self, target: Option<AuditTarget>) {
        self.file = match &target {
            Some(AuditTarget::File(path)) => open(path),
            _ => None,
        };
        self.target = target;
    }

    fn write(&mut self, vend: &Vend) {
        let line = Line::new(vend);
        match &self.target {
            Some(AuditTarget::Log) => tracing::info!(
                target: "imdsd::audit",
                listener = %line.listener,
                protocol = %line.protocol,
                role = %line.role,
                access_key_id = %line.access_key_id,
                peer = %line.peer,
                uid = %Opt(&line.uid),
                pid = %Opt(&line.pid),
                exe = %Opt(&line.exe),
                "credentials vended"
            ),
            Some(AuditTarget::File(path)) => {
                let text = serde_json::to_string(&line).unwrap_or_default() + "\n";
                let written = self.file.as_mut().map(|f| f.write_all(text.as_bytes()));
                if !matches!(written, Some(Ok(()))) {
                    tracing::warn!(path = %path.display(), "cannot write the audit log");
                }
            }
            None => {}
        }
    }
}

fn open(path: &Path) -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
        .inspect_err(|e| tracing::warn!(path = %path.display(), error = %e, "cannot open the audit log"))
        .ok()
}

/// The process with a file descriptor on socket `inode`, found in `/proc`
/// (only processes this daemon may look into).
fn process_of_socket(inode: u32) -> Option<Process> {
    let wanted = format!("socket:[{inode}]");
    let procs = std::fs::read_dir("/proc").ok()?;
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == wanted.as_str())
        });
        if holds {
            let exe = std::fs::read_link(entry.path().join("exe"))
                .ok()
                .map(|p| p.display().to_string());
            return Some(Process { pid, exe });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::peer::SocketOwner;

    fn vend(owner: Option<SocketOwner>, process: Option<Process>) -> Vend {
        Vend {
            at: DateTime::from_timestamp_millis(1_800_000_000_123).unwrap(),
            listener: "127.0.0.1:16925".parse().unwrap(),
            protocol: "imds",
            role: "dev".into(),
            access_key_id: "ASIAEXAMPLE".into(),
            client: Client::known("127.0.0.1:54321".parse().unwrap(), owner),
            process,
        }
    }

    #[test]
    fn a_line_names_who_got_which_keys() {
        let owner = SocketOwner {
            uid: 1000,
            inode: 77,
        };
        let process = Process {
            pid: 4242,
            exe: Some("/usr/bin/python3".into()),
        };
        let line = Line::new(&vend(Some(owner), Some(process)));
        assert_eq!(
            serde_json::to_string(&line).unwrap(),
            r#"{"time":"2027-01-15T08:00:00.123Z","listener":"127.0.0.1:16925","protocol":"imds","role":"dev","access_key_id":"ASIAEXAMPLE","peer":"127.0.0.1:54321","uid":1000,"pid":4242,"exe":"/usr/bin/python3"}"#
        );
        let unknown = Line::new(&vend(None, None));
        assert_eq!((unknown.uid, unknown.pid, unknown.exe), (None, None, None));
    }

    #[test]
    fn the_process_holding_a_socket_is_found() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client =
            std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&client);
        let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
        let inode: u32 = link.to_string_lossy()[8..]
            .trim_end_matches(']')
            .parse()
            .unwrap();
        let found = process_of_socket(inode).expect("this process");
        assert_eq!(found.pid, std::process::id());
        assert_eq!(
            found.exe,
            std::env::current_exe()
                .ok()
                .map(|p| p.display().to_string())
        );
    }
}
