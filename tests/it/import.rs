//! `imdsd import --to systemd-creds`: a profile's long-term keys into an
//! encrypted systemd credential, with the real `systemd-creds` (installed
//! with systemd by the test command), in a scratch HOME. Its default key is
//! the host key, which `systemd-creds` creates on first use
//! (`/var/lib/systemd/credential.secret`) when there is no TPM2.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_imdsd");
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYIMPORTKEY";

fn home() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/credentials"),
        format!(
            "[dev]\naws_access_key_id = AKIAIMPORTEXAMPLE\naws_secret_access_key = {SECRET}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        home.path().join(".aws/config"),
        "[profile ops]\nrole_arn = arn:aws:iam::123456789012:role/ops\nsource_profile = dev\n",
    )
    .unwrap();
    home
}

fn import(home: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("import")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn keys_go_into_an_encrypted_credential_that_systemd_can_decrypt() {
    let home = home();
    let out_dir = home.path().join("creds");
    let dir = out_dir.to_str().unwrap();
    // Dry run: the plan, nothing written.
    let out = import(
        home.path(),
        &["--to", "systemd-creds", "--dry-run", "--output-dir", dir],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("would encrypt profile `dev`'s keys"),
        "{}",
        text(&out.stdout)
    );
    assert!(!out_dir.exists());

    let out = import(
        home.path(),
        &["--to", "systemd-creds", "dev", "--output-dir", dir],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let file = out_dir.join("dev.cred");
    let shown = text(&out.stdout);
    assert!(
        shown.contains(&format!("LoadCredentialEncrypted=dev:{}", file.display())),
        "{shown}"
    );
    assert!(shown.contains("source = \"credential:dev\""), "{shown}");
    for printed in [&shown, &text(&out.stderr)] {
        assert!(!printed.contains(&SECRET[..16]), "a key was printed");
    }
    let encrypted = std::fs::read(&file).unwrap();
    assert!(
        !text(&encrypted).contains(&SECRET[..16]),
        "the file is not plaintext"
    );
    // systemd decrypts it to the section `credential:dev` reads.
    let decrypted = Command::new("systemd-creds")
        .args(["decrypt", "--name=dev"])
        .arg(&file)
        .arg("-")
        .output()
        .unwrap();
    assert!(decrypted.status.success(), "{}", text(&decrypted.stderr));
    assert_eq!(
        text(&decrypted.stdout),
        format!(
            "aws_access_key_id = AKIAIMPORTEXAMPLE\naws_secret_access_key = {SECRET}\n"
        )
    );
    // Again: nothing changes.
    let out = import(
        home.path(),
        &["--to", "systemd-creds", "dev", "--output-dir", dir],
    );
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("exists: left as it is"));
    assert_eq!(std::fs::read(&file).unwrap(), encrypted);
}

#[test]
fn a_profile_without_keys_of_its_own_is_refused_and_nothing_is_written() {
    let home = home();
    let dir = home.path().join("creds");
    let out = import(
        home.path(),
        &[
            "--to",
            "systemd-creds",
            "ops",
            "--output-dir",
            dir.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("profile `ops` holds no long-term keys"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dir.exists());
}
