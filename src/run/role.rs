//! The per-role commands: `imdsd exec`, `imdsd env` and `imdsd
//! credential-process`. They ask the running daemon where a role is served
//! (its control socket) and talk to that endpoint; never to STS.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use super::client::control_socket;
use super::role_env::{self, Current, RoleEnv};
use super::{RunError, print};
use crate::cli::EnvFormat;
use crate::control;
use crate::environment::Environment;
use crate::profile::shadow::Shadow;
use crate::refresh::source::remote;

/// The environment for `role`, after checking that this user can read its
/// token file.
fn role_env(
    socket: Option<PathBuf>,
    role: &str,
    env: &Environment,
) -> Result<RoleEnv, RunError> {
    let path = control_socket(socket, env)?;
    let mut endpoints = control::client::endpoints(&path)?;
    if !endpoints.roles.contains_key(role) {
        // An AWS profile served on demand, parked or never used: started
        // now, and its first fetch waited for.
        control::client::activate(&path, role).map_err(|e| match e {
            control::client::ClientError::Refused(message) => RunError::Role(message),
            other => other.into(),
        })?;
        endpoints = control::client::endpoints(&path)?;
    }
    super::mfa_prompt::ensure_not_waiting(&path, role)?;
    let current = Current {
        no_proxy: env.first_of(&["NO_PROXY", "no_proxy"]).map(String::from),
        profile_shadows: profile_shadows(env),
    };
    let role_env = role_env::for_role(&endpoints, role, &current)
        .map_err(|e| RunError::Role(e.to_string()))?;
    if let Some(file) = &role_env.token_file
        && let Err(e) = std::fs::File::open(file)
    {
        return Err(RunError::Role(format!(
            "cannot read role `{role}`'s token file {file}: {e}; the daemon's token_file_owner \
             and token_file_mode decide who may use the role"
        )));
    }
    Ok(role_env)
}

/// What in the profile files SDKs would use first: the `default` profile's
/// credentials, since the command runs without `AWS_PROFILE`.
fn profile_shadows(env: &Environment) -> Vec<String> {
    let env = env.without(&role_env::CONFLICTING);
    let files = crate::profile::default_profiles(&env);
    crate::profile::shadow::shadowing(&env, &files)
        .into_iter()
        .filter(|s| {
            matches!(
                s,
                Shadow::DefaultCredentials { .. } | Shadow::ImdsdProcess { .. }
            )
        })
        .map(|s| s.to_string())
        .collect()
}

/// `imdsd exec ROLE -- CMD ARGS...`: replaces this process with the command
/// (so its exit code and signals are the command's own); with no command,
/// `$SHELL` (as `aws-vault exec` does).
pub(super) fn exec(
    socket: Option<PathBuf>,
    role: &str,
    command: &[OsString],
    env: &Environment,
) -> Result<(), RunError> {
    let role_env = role_env(socket, role, env)?;
    if let Some(note) = &role_env.note {
        eprintln!("imdsd: {note}");
    }
    let shell = [OsString::from(env.get("SHELL").unwrap_or("/bin/sh"))];
    let (program, args) = match command.split_first() {
        Some(split) => split,
        None => {
            let shown = shell[0].to_string_lossy();
            eprintln!("imdsd: starting {shown} with role `{role}`; `exit` to leave it");
            (&shell[0], &[][..])
        }
    };
    let mut cmd = std::process::Command::new(program);
    cmd.args(args);
    for name in &role_env.unset {
        cmd.env_remove(name);
    }
    for (name, value) in &role_env.set {
        cmd.env(name, value);
    }
    // Only returns on failure.
    let source = cmd.exec();
    Err(RunError::Exec {
        program: program.to_string_lossy().into_owned(),
        source,
    })
}

/// `imdsd env ROLE [--format ...]`.
pub(super) fn print_env(
    socket: Option<PathBuf>,
    role: &str,
    format: EnvFormat,
    env: &Environment,
) -> Result<(), RunError> {
    let role_env = role_env(socket, role, env)?;
    let text = match format {
        EnvFormat::Sh => role_env::sh(&role_env),
        EnvFormat::Fish => role_env::fish(&role_env),
        EnvFormat::Json => role_env::json(&role_env) + "\n",
    };
    if let Some(note) = &role_env.note {
        eprintln!("imdsd: {note}");
    }
    print(&text);
    Ok(())
}

/// `imdsd credential-process ROLE`: the role's current credentials from its
/// endpoint, as `credential_process` JSON.
pub(super) fn credential_process(
    socket: Option<PathBuf>,
    role: &str,
    env: &Environment,
) -> Result<(), RunError> {
    let (credentials, _region) = role_credentials(socket, role, env)?;
    let Some(expiration) = credentials.expiration else {
        return Err(RunError::Role(format!(
            "role `{role}`: the answer has no Expiration"
        )));
    };
    let document =
        crate::credentials::documents::process_document(&credentials, expiration);
    let text = String::from_utf8_lossy(document.as_ref()).into_owned();
    let line = zeroize::Zeroizing::new(format!("{text}\n"));
    drop(zeroize::Zeroizing::new(text));
    print(&line);
    Ok(())
}

/// The role's current credentials, read from its endpoint the way an SDK
/// would, and the region the daemon tells SDKs.
pub(super) fn role_credentials(
    socket: Option<PathBuf>,
    role: &str,
    env: &Environment,
) -> Result<(crate::credentials::Credentials, String), RunError> {
    let role_env = role_env(socket, role, env)?;
    let endpoint_env =
        Environment::from_pairs(role_env.set.iter().map(|(k, v)| (*k, v.as_str())));
    let region = endpoint_env
        .get("AWS_REGION")
        .unwrap_or_default()
        .to_string();
    let fetched = current_thread_runtime()?.block_on(fetch(&endpoint_env));
    let credentials =
        fetched.map_err(|e| RunError::Role(format!("role `{role}`: {e}")))?;
    Ok((credentials, region))
}

/// A runtime for a client command's few requests.
pub(super) fn current_thread_runtime() -> Result<tokio::runtime::Runtime, RunError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RunError::Role(format!("cannot start the async runtime: {e}")))
}

async fn fetch(
    env: &Environment,
) -> Result<crate::credentials::Credentials, remote::RemoteError> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    if env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some() {
        remote::container(&http, env, &[]).await
    } else {
        remote::imds(&http, env, &[]).await
    }
}
