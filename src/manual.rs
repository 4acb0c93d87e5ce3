//! The man page and the shell completion scripts, generated from the real
//! command tree (`cli::Cli`), so they cannot say anything the parser does
//! not accept. `imdsd completions SHELL` prints a script; the files shipped
//! in `dist/` (and in the Debian package) are these outputs, checked for
//! drift by `tests/it/manual.rs`.
//!
//! Must not depend on the build: the man page carries the package version
//! only, never the git commit `--version` shows, or every commit would make
//! the checked-in page stale.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, CompletionShell};

/// The command tree as documented: the plain package version.
fn command() -> clap::Command {
    Cli::command().version(env!("CARGO_PKG_VERSION"))
}

/// The completion script for `shell`.
pub fn completions(shell: CompletionShell) -> Vec<u8> {
    let shell = match shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command(), "imdsd", &mut out);
    out
}

/// The man pages, in roff: `imdsd.1` and one `imdsd-SUBCOMMAND.1` per
/// subcommand (as `clap_mangen::generate_to` writes them), with their file
/// names.
pub fn man_pages() -> Vec<(String, Vec<u8>)> {
    let mut root = command().disable_help_subcommand(true);
    root.build();
    let mut pages = vec![render(root.clone())];
    pages.extend(
        root.get_subcommands()
            .filter(|sub| !sub.is_hide_set())
            .map(|sub| render(sub.clone())),
    );
    pages
}

fn render(cmd: clap::Command) -> (String, Vec<u8>) {
    let man = clap_mangen::Man::new(cmd)
        .source(concat!("imdsd ", env!("CARGO_PKG_VERSION")))
        .manual("imdsd manual");
    let mut out = Vec::new();
    man.render(&mut out).expect("writing to a Vec cannot fail");
    (man.get_filename(), out)
}
