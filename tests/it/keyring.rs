//! Keys at rest (issue 21): `imdsd import` into a real GNOME Keyring on a
//! private D-Bus session (`secret_service`), the daemon serving imported
//! profiles from it, `exec` after an import, and a locked or absent store.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::fake_sts::{self, FakeSts};
use crate::process::{BIN, Running};
use crate::secret_service::SecretService;
use crate::util::eventually;
use imdsd::ManualClock;

/// The long-term secret that must end up in the keyring and nowhere else
/// (the fake STS checks signatures made with it).
const SECRET: &str = fake_sts::SECRET_KEY;

const CONFIG: &str = "# my settings\n[default]\nregion = us-east-1\n\n\
                      [profile ops]\nrole_arn = arn:aws:iam::123456789012:role/ops\n\
                      source_profile = dev\n";

fn credentials() -> String {
    format!(
        "# work keys\n[dev]\naws_access_key_id = {}\naws_secret_access_key = {SECRET}\n\n\
         [other]\nregion = eu-west-1\n",
        fake_sts::ACCESS_KEY_ID
    )
}

/// A HOME with `~/.aws/config` and `~/.aws/credentials` (mode 0640, to see
/// it kept).
fn home() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let aws = home.path().join(".aws");
    std::fs::create_dir(&aws).unwrap();
    std::fs::write(aws.join("config"), CONFIG).unwrap();
    std::fs::write(aws.join("credentials"), credentials()).unwrap();
    std::fs::set_permissions(
        aws.join("credentials"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    home
}

fn read(home: &Path, file: &str) -> String {
    std::fs::read_to_string(home.join(".aws").join(file)).unwrap()
}

/// `imdsd ARGS...` with nothing but the store's variables.
fn imdsd(store: &SecretService, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(store.env())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if kind.is_file()
            && std::fs::read(&path)
                .unwrap_or_default()
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
        {
            found.push(path);
        }
    }
    found
}

#[test]
fn import_moves_the_keys_into_the_secret_service_and_out_of_every_file() {
    let home = home();
    let store = SecretService::start(home.path());
    // Dry run: the plan, nothing changed.
    let out = imdsd(&store, &["import", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("profile `dev`: would move its keys"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(read(home.path(), "credentials"), credentials());
    assert!(store.lookup("dev").is_none());

    let out = imdsd(&store, &["import"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown.contains("moved its keys (AKIAIOSFODNN7EXAMPLE) into the Secret Service")
    );
    for printed in [&shown, &text(&out.stderr)] {
        assert!(!printed.contains(SECRET), "a key was printed: {printed}");
    }
    let (label, secret) = store.lookup("dev").expect("the item");
    assert_eq!(label, "imdsd: AWS profile dev");
    assert_eq!(
        secret,
        format!(
            "aws_access_key_id = {}\naws_secret_access_key = {SECRET}\n",
            fake_sts::ACCESS_KEY_ID
        )
    );
    // The keys are gone from the credentials file, all else is kept.
    assert_eq!(
        read(home.path(), "credentials"),
        "# work keys\n[other]\nregion = eu-west-1\n"
    );
    let mode = std::fs::metadata(home.path().join(".aws/credentials"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640, "the mode is kept");
    assert_eq!(
        read(home.path(), "config"),
        format!(
            "{CONFIG}\n[profile dev]\ncredential_process = imdsd credential-process dev\n"
        )
    );
    // The keyring file under HOME is encrypted: no file holds the secret.
    assert_eq!(files_containing(home.path(), SECRET), Vec::<PathBuf>::new());

    // Again: nothing to move, nothing changes.
    let (config, creds) = (
        read(home.path(), "config"),
        read(home.path(), "credentials"),
    );
    let out = imdsd(&store, &["import"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "profile `dev`: already in the Secret Service; nothing to change\n"
    );
    assert_eq!(
        (
            read(home.path(), "config"),
            read(home.path(), "credentials")
        ),
        (config, creds)
    );
}

#[test]
fn import_changes_nothing_when_the_store_is_absent_or_locked() {
    let home = home();
    let mut store = SecretService::bus_only(home.path());
    let unchanged = |home: &Path| {
        assert_eq!(read(home, "credentials"), credentials());
        assert_eq!(read(home, "config"), CONFIG);
    };
    let out = imdsd(&store, &["import", "dev"]);
    assert_eq!(out.status.code(), Some(1));
    let error = text(&out.stderr);
    assert!(error.contains("the Secret Service"), "{error}");
    assert!(error.contains("cannot be reached"), "{error}");
    assert!(error.contains("imdsd import --to systemd-creds"), "{error}");
    unchanged(home.path());

    store.start_keyring();
    store.lock();
    let out = imdsd(&store, &["import", "dev"]);
    assert_eq!(out.status.code(), Some(1));
    let error = text(&out.stderr);
    assert!(
        error.contains("the Secret Service's keyring is locked: unlock it"),
        "{error}"
    );
    assert!(!error.contains(SECRET));
    unchanged(home.path());
}
