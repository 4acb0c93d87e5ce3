//! The control socket in the daemon.
//!
//! A Unix socket that anyone may connect to; every request is authorized
//! by the peer's uid (`SO_PEERCRED`): status and MFA codes only for the
//! daemon's own user and root, endpoints and health for anyone. One JSON
//! request line, one JSON response line.

use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

use super::{Request, Response, endpoints, refresh, status};
use crate::clock::SharedClock;
use crate::config::MfaIntake;
use crate::refresh::activation::Activator;
use crate::refresh::slot::{Outcome, RoleSlot};
use crate::view::View;

/// Longest request line read.
const MAX_REQUEST: usize = 4096;

/// Why the socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ControlError {
    #[error("cannot create control socket {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("control socket {} is in use: another imdsd is running", path.display())]
    InUse { path: PathBuf },
    #[error("not putting the control socket in {}: {problem}", dir.display())]
    UnsafeDir { dir: PathBuf, problem: String },
}

/// Why a directory with this owner and mode is no place for our socket:
/// someone else could swap the socket for their own and collect the MFA
/// codes handed to it. Root's directories and sticky ones (`/tmp`) are
/// safe.
fn unsafe_dir(owner: u32, mode: u32, uid: u32) -> Option<String> {
    if owner != uid && owner != 0 {
        return Some(format!(
            "it belongs to uid {owner}, not to this daemon's user or root"
        ));
    }
    let sticky = mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !sticky {
        return Some(format!(
            "other users may write to it (mode {:o}); `chmod go-w` it",
            mode & 0o777
        ));
    }
    None
}

/// What the control server answers from.
pub(crate) struct ControlState {
    /// What is served; its role list is the daemon's one list of running
    /// roles.
    pub(crate) view: Arc<ArcSwap<View>>,
    pub(crate) clock: SharedClock,
    pub(crate) config_path: String,
    pub(crate) uid: u32,
    /// The last failed reload, cleared by the next good one.
    pub(crate) reload_error: Arc<ArcSwapOption<status::ReloadError>>,
    /// Where on-demand roles are asked for.
    pub(crate) activator: Activator,
}

/// The socket, bound before the daemon starts anything else: a second
/// daemon learns at once that the socket is taken.
pub(crate) struct Bound {
    listener: UnixListener,
    path: PathBuf,
}

impl Bound {
    /// Binds the socket at `path` for a daemon running as `uid`.
    pub(crate) async fn at(path: PathBuf, uid: u32) -> Result<Bound, ControlError> {
        let listener = bind(&path, uid).await?;
        Ok(Bound { listener, path })
    }

    /// Serves until `stop`, then removes the socket file. The task ends
    /// once the file is gone, so a daemon that awaits it leaves none.
    pub(crate) fn serve(
        self,
        state: ControlState,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let Bound { listener, path } = self;
        tracing::info!(socket = %path.display(), "control socket ready (imdsd status)");
        let state = Arc::new(state);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            let state = state.clone();
                            tokio::spawn(async move { handle(stream, &state).await });
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "control socket accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    },
                    _ = stop.cancelled() => break,
                }
            }
            let _ = std::fs::remove_file(&path);
        })
    }

    /// Removes the socket file of a daemon that did not start.
    pub(crate) fn discard(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn bind(path: &Path, uid: u32) -> Result<UnixListener, ControlError> {
    let io_err = |source| ControlError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(io_err)?;
        let meta = std::fs::metadata(dir).map_err(io_err)?;
        if let Some(problem) = unsafe_dir(meta.uid(), meta.mode(), uid) {
            return Err(ControlError::UnsafeDir {
                dir: dir.to_path_buf(),
                problem,
            });
        }
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(io_err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a non-socket file is in the way",
            )));
        }
        // A live socket means another daemon; a dead one is left over.
        if UnixStream::connect(path).await.is_ok() {
            return Err(ControlError::InUse {
                path: path.to_path_buf(),
            });
        }
        std::fs::remove_file(path).map_err(io_err)?;
    }
    let listener = UnixListener::bind(path).map_err(io_err)?;
    // Anyone may connect: each request is authorized by the peer's uid.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
        .map_err(io_err)?;
    Ok(listener)
}

async fn handle(stream: UnixStream, state: &ControlState) {
    let peer = stream.peer_cred().map(|c| c.uid()).ok();
    let (read, mut write) = stream.into_split();
    let response = match read_request(read).await {
        Ok(request) => match authorize(&request, peer, state.uid) {
            Ok(()) => answer(request, state).await,
            Err(message) => Response::Error { message },
        },
        Err(message) => Response::Error { message },
    };
    let mut line = serde_json::to_string(&response).unwrap_or_default();
    line.push('\n');
    let _ = write.write_all(line.as_bytes()).await;
}

/// Status, MFA codes and forced refreshes are for the daemon's own user and
/// root; the rest is for anyone who can reach the socket.
fn authorize(request: &Request, peer: Option<u32>, own: u32) -> Result<(), String> {
    if !request.privileged() {
        return Ok(());
    }
    match peer {
        Some(uid) if uid == own || uid == 0 => Ok(()),
        Some(uid) => {
            tracing::warn!(uid, "refused a control request from another user");
            Err(format!(
                "uid {uid} may not ask this daemon for its status, refresh its roles or \
                 hand it MFA codes (only uid {own} and root may)"
            ))
        }
        None => Err("cannot identify the peer".into()),
    }
}

fn hand_in_mfa(
    state: &ControlState,
    role: &str,
    code: crate::secret::Secret,
) -> Response {
    if !crate::refresh::queries::valid_mfa_code(code.expose()) {
        return Response::Error {
            message: "an MFA code is six digits".into(),
        };
    }
    // The running roles: during a reload they already hold the new runtime
    // of a changed role, which is the one that will ask.
    let roles = state.view.load().roles.load();
    let slot = match find_roles(&roles, std::slice::from_ref(&role.to_string())) {
        Ok(mut found) => found.remove(0),
        Err(message) => return Response::Error { message },
    };
    if let Some(message) = refuse_code(role, slot.mfa_intake()) {
        return Response::Error { message };
    }
    let snap = slot.load();
    let (waiting, failing) = (snap.waiting_for.is_some(), snap.failure.is_some());
    slot.submit_mfa_code(code);
    tracing::info!(role = %role, "MFA code handed in over the control socket");
    let message = if waiting {
        format!("code handed to `{role}`, which was waiting for it")
    } else if failing {
        // Its last fetch failed (a stale code?): try again with this one now.
        slot.force_refresh();
        format!("code handed to `{role}`, which is retrying now")
    } else {
        format!("code kept for `{role}`'s next MFA request (valid for two minutes)")
    };
    Response::Done { message }
}

/// Why a code for `role` is refused, when it would never be used.
fn refuse_code(role: &str, intake: MfaIntake) -> Option<String> {
    match intake {
        MfaIntake::Handed | MfaIntake::HandedIfProfileAsks => None,
        MfaIntake::Never => Some(format!(
            "role `{role}` takes no MFA code: it has no mfa_serial and reads no profile \
             that could have one"
        )),
        MfaIntake::Command => Some(format!(
            "role `{role}` gets its MFA codes from its mfa_command, not from `imdsd mfa`"
        )),
    }
}

/// The slots of `names`, or an error naming those that do not exist.
fn find_roles(
    roles: &std::collections::BTreeMap<String, Arc<RoleSlot>>,
    names: &[String],
) -> Result<Vec<Arc<RoleSlot>>, String> {
    let missing: Vec<&str> = names
        .iter()
        .filter(|n| !roles.contains_key(*n))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        let known: Vec<&str> = roles.keys().map(String::as_str).collect();
        return Err(format!(
            "no role named {} (roles: {})",
            missing
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", "),
            known.join(", ")
        ));
    }
    Ok(names.iter().filter_map(|n| roles.get(n).cloned()).collect())
}

/// Forces a fetch for `names` (every role when empty), all at once, and
/// waits for the outcomes.
async fn refresh(state: &ControlState, names: Vec<String>) -> Response {
    // A parked on-demand role is started: its first fetch is the refresh.
    let mut started = Vec::new();
    for name in &names {
        let running = state.view.load().roles.get(name);
        if running.is_none_or(|slot| slot.is_parked()) {
            match state.activator.activate(name).await {
                Ok(slot) => started.push(slot),
                Err(message) => return Response::Error { message },
            }
        }
    }
    let roles = state.view.load().roles.load();
    let slots = if names.is_empty() {
        roles.values().cloned().collect()
    } else {
        match find_roles(&roles, &names) {
            Ok(slots) => slots,
            Err(message) => return Response::Error { message },
        }
    };
    tracing::info!(
        roles = %slots.iter().map(|s| s.name()).collect::<Vec<_>>().join(", "),
        "refresh asked for over the control socket"
    );
    let mut waits = tokio::task::JoinSet::new();
    for (i, slot) in slots.iter().enumerate() {
        let slot = slot.clone();
        let just_started = started.iter().any(|s| Arc::ptr_eq(s, &slot));
        waits.spawn(async move {
            let outcome = if just_started {
                slot.first_outcome(refresh::WAIT).await
            } else {
                slot.refresh_now(refresh::WAIT).await
            };
            (i, outcome)
        });
    }
    let mut outcomes = vec![None; slots.len()];
    while let Some(Ok((i, outcome))) = waits.join_next().await {
        outcomes[i] = Some(outcome);
    }
    let now = state.clock.now();
    let reports = slots
        .iter()
        .zip(outcomes)
        .map(|(slot, outcome)| {
            let outcome = outcome.unwrap_or(Outcome::StillRunning);
            refresh::report(slot.name(), outcome, now)
        })
        .collect();
    Response::Refreshed { roles: reports }
}

/// One JSON request line, read with a size and time limit.
async fn read_request(read: tokio::net::unix::OwnedReadHalf) -> Result<Request, String> {
    let mut line = String::new();
    let mut reader = BufReader::new(read).take(MAX_REQUEST as u64);
    let read =
        tokio::time::timeout(Duration::from_secs(5), reader.read_line(&mut line)).await;
    if !matches!(read, Ok(Ok(n)) if n > 0) {
        return Err("expected one JSON request line".into());
    }
    serde_json::from_str::<Request>(&line)
        .map_err(|e| format!("bad request: {}", crate::read::json_error(&e)))
}

async fn answer(request: Request, state: &ControlState) -> Response {
    let now = state.clock.now();
    match request {
        Request::Refresh { roles } => refresh(state, roles).await,
        Request::Status => {
            let view = state.view.load();
            let mut report =
                status::build(&view, &state.config_path, std::process::id(), now);
            report.reload_error = state.reload_error.load_full().map(|e| (*e).clone());
            Response::Status(report)
        }
        Request::Mfa { role, code } => hand_in_mfa(state, &role, code),
        Request::Endpoints => Response::Endpoints(endpoints::build(&state.view.load())),
        Request::Health { ready } => health(state, ready, now),
        Request::Activate { role } => activate(state, &role).await,
    }
}

/// Starts `role` on demand (nothing to do when it runs) and waits for its
/// first fetch: done when it serves credentials or waits for an MFA code
/// (the client prompts for it), an error naming why otherwise.
async fn activate(state: &ControlState, role: &str) -> Response {
    let slot = match state.activator.activate(role).await {
        Ok(slot) => slot,
        Err(message) => return Response::Error { message },
    };
    if !slot.settled(refresh::WAIT).await {
        return Response::Error {
            message: format!(
                "role `{role}` has no credentials after {}: `imdsd status` shows how its \
                 first fetch is going",
                crate::clock::human(refresh::WAIT)
            ),
        };
    }
    let snap = slot.load();
    match (&snap.failure, snap.usable(state.clock.now())) {
        (Some(failure), None) if snap.waiting_for.is_none() => Response::Error {
            message: format!("role `{role}`: {}: {}", failure.code, failure.message),
        },
        _ => Response::Done {
            message: format!("role `{role}` is running"),
        },
    }
}

/// Healthy: the daemon answers. Ready: every served role has usable
/// credentials.
fn health(
    state: &ControlState,
    ready: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Response {
    if !ready {
        return Response::Done {
            message: "ok".into(),
        };
    }
    let view = state.view.load();
    let (all, roles) = view.readiness(now);
    let waiting: Vec<&str> = roles
        .iter()
        .filter(|(_, usable)| !usable)
        .map(|(n, _)| n.as_str())
        .collect();
    if all {
        Response::Done {
            message: "ready".into(),
        }
    } else {
        Response::Error {
            message: format!(
                "not ready: no usable credentials for {}",
                waiting.join(", ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_goes_only_where_nobody_else_can_swap_it() {
        assert_eq!(unsafe_dir(1000, 0o700, 1000), None);
        assert_eq!(unsafe_dir(0, 0o755, 1000), None, "/run/imdsd");
        assert_eq!(unsafe_dir(0, 0o1777, 1000), None, "/tmp");
        assert!(unsafe_dir(1001, 0o700, 1000).unwrap().contains("uid 1001"));
        assert!(unsafe_dir(1000, 0o777, 1000).unwrap().contains("mode 777"));
        assert!(
            unsafe_dir(1000, 0o775, 1000)
                .unwrap()
                .contains("chmod go-w")
        );
    }

    #[test]
    fn only_the_daemons_user_and_root_may_ask_privileged_things() {
        let status = Request::Status;
        assert!(authorize(&status, Some(1000), 1000).is_ok());
        assert!(authorize(&status, Some(0), 1000).is_ok());
        assert!(authorize(&status, Some(1001), 1000).is_err());
        assert!(authorize(&status, None, 1000).is_err());
        let refresh = Request::Refresh { roles: vec![] };
        assert!(authorize(&refresh, Some(1001), 1000).is_err());
        assert!(authorize(&Request::Endpoints, Some(1001), 1000).is_ok());
    }

    #[test]
    fn codes_are_refused_for_roles_that_would_never_use_them() {
        assert!(refuse_code("dev", MfaIntake::Handed).is_none());
        assert!(refuse_code("dev", MfaIntake::HandedIfProfileAsks).is_none());
        assert!(
            refuse_code("dev", MfaIntake::Never)
                .unwrap()
                .contains("takes no MFA code")
        );
        assert!(
            refuse_code("dev", MfaIntake::Command)
                .unwrap()
                .contains("mfa_command")
        );
    }
}
