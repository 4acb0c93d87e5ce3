//! Command-line arguments.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Keeps AWS STS credentials fresh and serves them to unmodified SDKs over
/// the EC2 instance metadata protocol (IMDSv2).
#[derive(Debug, Parser)]
#[command(name = "imdsd", version, about)]
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
    Check {
        /// Config file (same default as `run`).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Hand an MFA code to a role of the running daemon that needs one.
    Mfa {
        /// The role (its `[roles.NAME]`).
        role: String,
        /// The six-digit code; read from stdin when left out, so it stays
        /// out of shell history.
        code: Option<String>,
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
}
