//! Command-line arguments.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Without a config file anywhere, `imdsd run` serves what the AWS CLI would use
(keys in the environment, AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE, or the
AWS_PROFILE / default profile) on 127.0.0.1:16925.

Environment:
  IMDSD_LOG          log level, in tracing's filter syntax (default: info;
                     e.g. debug, or info,imdsd::audit=off)
  IMDSD_LOG_FORMAT   human (default), journal (`<N>` priorities, no
                     timestamps; automatic under systemd) or json
  IMDSD_CONFIG       the config file
  IMDSD_CONTROL_SOCKET  the control socket (status, mfa, refresh)

Signals to `imdsd run`:
  SIGHUP             reload the config (also automatic when the file changes)
  SIGTERM, SIGINT    drain and stop; a second one stops at once";

/// `imdsd --version`: the package version, and the commit when built
/// from a git checkout (`build.rs`).
const VERSION: &str = if env!("IMDSD_GIT_DESCRIBE").is_empty() {
    env!("CARGO_PKG_VERSION")
} else {
    concat!(
        env!("CARGO_PKG_VERSION"),
        " (",
        env!("IMDSD_GIT_DESCRIBE"),
        ")"
    )
};

/// Keeps AWS STS credentials fresh and serves them to unmodified SDKs over
/// the EC2 instance metadata protocol (IMDSv2).
#[derive(Debug, Parser)]
#[command(name = "imdsd", version = VERSION, about, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the daemon in the foreground.
    Run {
        /// Config file (default: $IMDSD_CONFIG, then
        /// $XDG_CONFIG_HOME/imdsd/imdsd.toml, then /etc/imdsd/imdsd.toml).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Validate a config file: exit 0, or print every problem and exit 64.
    /// With no config file anywhere, say what `imdsd run` would serve.
    Check {
        /// Config file (same default as `run`).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Hand an MFA code to a role of the running daemon that needs one.
    Mfa {
        /// The role (its `[roles.NAME]`).
        role: String,
        /// The six-digit code; when left out it is asked for on a terminal,
        /// else read from stdin, so it stays out of shell history.
        code: Option<String>,
        /// The daemon's control socket (same default as `status`).
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Refresh roles now (all of them when none is named), wait for the
    /// outcome and print it; exit 1 if any did not refresh. For after
    /// `aws sso login`, a fixed trust policy or a rotated key.
    Refresh {
        /// The roles (their `[roles.NAME]`) or AWS profiles (a parked
        /// one is started: its first fetch is the refresh).
        roles: Vec<String>,
        /// The daemon's control socket (same default as `status`).
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Show what the running daemon is doing: roles, expiry, errors,
    /// listeners and request counts.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// The daemon's control socket (default: $IMDSD_CONTROL_SOCKET,
        /// then $XDG_RUNTIME_DIR/imdsd/control.sock, then
        /// /run/imdsd/control.sock).
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Run a command with a role's credentials: it finds them through the
    /// container endpoint and the role's token file (or the IMDS endpoint),
    /// never in its environment. Without a command, it starts $SHELL with
    /// the role (as `aws-vault exec` does).
    Exec {
        /// A role (`[roles.NAME]`) or any AWS profile, started on first use.
        role: String,
        /// The command and its arguments (default: $SHELL, else /bin/sh).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<OsString>,
        /// The daemon's control socket (same default as `status`).
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Print the environment variables `exec` sets for a role (no secrets),
    /// for `eval "$(imdsd env dev)"`.
    Env {
        /// A role (`[roles.NAME]`) or any AWS profile, started on first use.
        role: String,
        /// Shell syntax, or one JSON object (unset variables are null).
        #[arg(long, value_enum, default_value_t = EnvFormat::Sh)]
        format: EnvFormat,
        /// The daemon's control socket (same default as `status`).
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Print a role's current credentials in the `credential_process`
    /// format, for `credential_process = imdsd credential-process ROLE` in
    /// `~/.aws/config`.
    CredentialProcess {
        /// A role (`[roles.NAME]`) or any AWS profile, started on first use.
        role: String,
        /// The daemon's control socket (same default as `status`).
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Open the AWS console signed in as a role, with its current session
    /// credentials (through the AWS federation endpoint; the URL holds a
    /// one-time sign-in token, never the credentials).
    Login {
        /// A role (`[roles.NAME]`) or any AWS profile, started on first use.
        role: String,
        /// Where the console opens (default: the console home of the
        /// daemon's region).
        #[arg(long, value_name = "URL")]
        destination: Option<String>,
        /// Print the sign-in URL instead of opening it with xdg-open.
        #[arg(long)]
        print: bool,
        /// The daemon's control socket (same default as `status`).
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Exit 0 if the daemon answers (with --ready: and every served role
    /// has usable credentials); for probes.
    Health {
        /// Also require usable credentials for every served role.
        #[arg(long)]
        ready: bool,
        /// The daemon's control socket (same default as `status`).
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Set imdsd up for this user on a developer machine: write
    /// ~/.config/imdsd/imdsd.toml serving the current AWS profile (unless a
    /// config exists), install and enable the `systemctl --user` unit, and
    /// print the line to add to the shell profile. Safe to run again.
    Setup {
        /// For the current user (`systemctl --user`); the only mode.
        #[arg(long, required = true)]
        user: bool,
        /// Print what would be done, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Move AWS profiles' long-term keys out of plaintext: into the desktop's
    /// Secret Service (GNOME Keyring, KWallet, KeePassXC), removing them from
    /// ~/.aws/credentials and adding `credential_process = imdsd
    /// credential-process PROFILE` to the profile in ~/.aws/config; or, with
    /// `--to systemd-creds`, into encrypted systemd credentials for the
    /// system service. Never prints a key; running it again changes nothing.
    Import {
        /// Where the keys go.
        #[arg(long, value_enum, default_value_t = ImportTarget::Keyring)]
        to: ImportTarget,
        /// The profiles (default: every profile holding long-term keys).
        profiles: Vec<String>,
        /// With `--to systemd-creds`: where the encrypted files go (default:
        /// /etc/imdsd).
        #[arg(long, value_name = "DIR")]
        output_dir: Option<PathBuf>,
        /// Print what would be done, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Rotate a profile's IAM access key (as `aws-vault rotate`): create a new
    /// key with the current one, store it where the old one lives (the
    /// Secret Service or ~/.aws/credentials), check it works, delete the old
    /// key, and refresh the running daemon's roles that use it. If any step
    /// fails, the old key stays in place and usable.
    Rotate {
        /// The AWS profile holding the key (in the files or imported).
        profile: String,
        /// The daemon's control socket (same default as `status`).
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Print a shell completion script, e.g.
    /// `imdsd completions bash > ~/.local/share/bash-completion/completions/imdsd`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: CompletionShell,
    },
}

/// The shells `imdsd completions` writes scripts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

/// How `imdsd env` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum EnvFormat {
    /// `export NAME='value'` and `unset NAME` (sh, bash, zsh).
    Sh,
    /// `set -gx NAME 'value'` and `set -e NAME`.
    Fish,
    /// `{"NAME": "value", "UNSET": null}`.
    Json,
}

/// Where `imdsd import` stores long-term keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ImportTarget {
    /// The desktop's Secret Service, over D-Bus; the daemon reads the keys
    /// there.
    Keyring,
    /// An encrypted systemd credential (`LoadCredentialEncrypted=`).
    SystemdCreds,
}
