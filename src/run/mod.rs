//! The subcommands, and the one place where an error becomes a message and
//! an exit code (ripgrep's `main`): 0 success, 1 a runtime failure, 2 a
//! wrong command line (as clap), 64 (EX_USAGE) a bad config; `exec`'s
//! command that cannot run: 127 not found, 126 not runnable (as shells).
//!
//! - [`daemon`]: `imdsd run`: the daemon's main loop, reloads, shutdown.
//! - [`client`]: `status`, `mfa`, `refresh`, `health`: about the running
//!   daemon.
//! - [`role`]: `exec`, `env`, `credential-process`: one role, from the
//!   endpoint the daemon serves it on; [`role_env`] decides the variables
//!   (pure); [`mfa_prompt`] asks for a waiting role's MFA code on the
//!   terminal first.
//! - [`import_keyring`]: `import`: keys into the Secret Service and out of
//!   `~/.aws/credentials`, planned first (pure); [`profile_edit`] edits the
//!   profile files' text (pure), [`profile_files`] reads and replaces them.
//! - [`import`]: `import --to systemd-creds`: keys into encrypted systemd
//!   credentials, planned first (pure).
//! - [`rotate`]: `rotate`: a profile's IAM access key replaced, nothing
//!   lost on failure; [`rotate_plan`] decides where the key lives and which
//!   roles use it (pure).
//! - [`login`]: `login`: the AWS console signed in as a role; [`console`]
//!   decides the endpoints and the sign-in URL (pure).
//! - [`setup`]: `setup --user`, carrying out what [`setup_plan`] decides
//!   (pure).

mod client;
mod console;
mod daemon;
mod import;
mod import_keyring;
mod login;
mod mfa_prompt;
mod profile_edit;
mod profile_files;
mod role;
mod role_env;
mod rotate;
mod rotate_plan;
mod setup;
mod setup_plan;

use std::path::Path;
use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::config::{self, ConfigError, LoadedConfig};
use crate::control::client::ClientError;
use crate::environment::Environment;

/// Exit code for a config that is missing or invalid.
const EXIT_CONFIG: u8 = 64;
/// Exit code for a wrong command line, as clap uses.
const EXIT_USAGE: u8 = 2;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No config file, and nothing to serve without one either.
    #[error("{not_found}\nno zero-config start either: {reason}")]
    NoConfig {
        not_found: ConfigError,
        reason: String,
    },
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Control(#[from] ClientError),
    #[error(transparent)]
    Daemon(#[from] daemon::DaemonError),
    #[error("cannot listen on {addr}: the address is in use; {holder}")]
    AddrInUse {
        addr: std::net::SocketAddr,
        holder: String,
    },
    #[error(
        "control socket {} is taken by another imdsd{holder}: give this one its own, {how}",
        path.display()
    )]
    ControlInUse {
        path: std::path::PathBuf,
        holder: String,
        /// Where this daemon's socket may be set.
        how: String,
    },
    /// A per-role command could not get the role, or a role did not
    /// refresh.
    #[error("{0}")]
    Role(String),
    #[error(transparent)]
    Setup(#[from] setup::SetupError),
    #[error("cannot run `{program}`: {source}")]
    Exec {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

impl RunError {
    fn exit_code(&self) -> u8 {
        match self {
            RunError::Config(_) | RunError::NoConfig { .. } => EXIT_CONFIG,
            RunError::Usage(_) => EXIT_USAGE,
            RunError::Control(_)
            | RunError::Daemon(_)
            | RunError::AddrInUse { .. }
            | RunError::ControlInUse { .. }
            | RunError::Role(_)
            | RunError::Setup(_) => 1,
            // As shells do: 127 not found, 126 found but not runnable.
            RunError::Exec { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                127
            }
            RunError::Exec { .. } => 126,
        }
    }
}

/// Runs one command; the process's exit code.
pub fn main(cli: Cli) -> ExitCode {
    match dispatch(cli.command, Environment::capture()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs one subcommand.
fn dispatch(command: Command, env: Environment) -> Result<(), RunError> {
    match command {
        Command::Check { config } => check(config.as_deref(), &env),
        Command::Run { config } => daemon::run(config.as_deref(), env),
        Command::Status { json, socket } => client::status(socket, json, &env),
        Command::Mfa { role, code, socket } => client::mfa(socket, &role, code, &env),
        Command::Health { ready, socket } => client::health(socket, ready, &env),
        Command::Refresh { roles, socket } => client::refresh(socket, &roles, &env),
        Command::Exec {
            role,
            command,
            socket,
        } => role::exec(socket, &role, &command, &env),
        Command::Env {
            role,
            format,
            socket,
        } => role::print_env(socket, &role, format, &env),
        Command::CredentialProcess { role, socket } => {
            role::credential_process(socket, &role, &env)
        }
        Command::Login {
            role,
            destination,
            print,
            socket,
        } => login::login(
            login::LoginRequest {
                socket,
                role,
                destination,
                print,
            },
            &env,
        ),
        Command::Import {
            to,
            profiles,
            output_dir,
            dry_run,
        } => import_command(to, profiles, output_dir, dry_run, &env),
        Command::Rotate { profile, socket } => rotate::rotate(&profile, socket, &env),
        Command::Setup { user: _, dry_run } => {
            setup::setup_user(dry_run, &env).map_err(RunError::from)
        }
        Command::Completions { shell } => {
            print(&String::from_utf8_lossy(&crate::manual::completions(shell)));
            Ok(())
        }
    }
}

/// `imdsd import`: into the Secret Service, or systemd credentials.
fn import_command(
    to: crate::cli::ImportTarget,
    profiles: Vec<String>,
    output_dir: Option<std::path::PathBuf>,
    dry_run: bool,
    env: &Environment,
) -> Result<(), RunError> {
    match (to, output_dir) {
        (crate::cli::ImportTarget::Keyring, Some(_)) => Err(RunError::Usage(
            "--output-dir is for `--to systemd-creds`; the Secret Service needs none"
                .into(),
        )),
        (crate::cli::ImportTarget::Keyring, None) => {
            import_keyring::import(&profiles, dry_run, env)
        }
        (crate::cli::ImportTarget::SystemdCreds, output_dir) => import::import(
            import::ImportRequest {
                profiles,
                output_dir,
                dry_run,
            },
            env,
        ),
    }
}

/// Config problems are already `path:line:column: error: ...` lines;
/// everything else is prefixed with the program's name.
fn report(e: &RunError) {
    match e {
        RunError::Config(ConfigError::Invalid { .. }) => eprintln!("{e}"),
        _ => eprintln!("imdsd: {e}"),
    }
}

/// Writes `text` to stdout. A reader that went away (`imdsd status | head`)
/// is not an error worth a panic: the rest is simply not wanted.
pub(crate) fn print(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

fn check(path: Option<&Path>, env: &Environment) -> Result<(), RunError> {
    let loaded = match load(path, env) {
        Err(ConfigError::NotFound { tried }) => return check_zero(tried, env),
        other => other?,
    };
    for w in &loaded.warnings {
        eprintln!("{w}");
    }
    print(&format!("{}: ok\n", loaded.path.display()));
    Ok(())
}

/// `imdsd check` with no config file: what `imdsd run` would serve (the
/// zero-config start), or why it would serve nothing (exit 64, as `run`).
fn check_zero(tried: Vec<std::path::PathBuf>, env: &Environment) -> Result<(), RunError> {
    let tried_list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    let not_found = ConfigError::NotFound { tried };
    let zero = crate::profile::load(env)
        .map_err(|e| e.to_string())
        .and_then(|profiles| config::zero::zero_config(env, &profiles));
    let zero = zero.map_err(|reason| RunError::NoConfig { not_found, reason })?;
    let listen = zero.config.listeners[0].listen;
    let role = &zero.config.listeners[0].roles()[0];
    print(&format!(
        "no config file (tried {}): `imdsd run` would serve {} as role `{role}` on \
         http://{listen}\n",
        tried_list.join(", "),
        zero.serves
    ));
    Ok(())
}

/// What would make SDKs in this environment use other credentials than
/// imdsd's, or never reach it: one line each.
fn shadow_warnings(env: &Environment) -> Vec<String> {
    let files = crate::profile::default_profiles(env);
    crate::profile::shadow::warnings(env, &files)
}

fn load(path: Option<&Path>, env: &Environment) -> Result<LoadedConfig, ConfigError> {
    let path = config::load::resolve_path(path, env)?;
    config::load::load(&path, env)
}
