//! `imdsd rotate PROFILE` against moto's IAM and STS with authentication
//! on (moto's `reset-auth`): a wrong or deleted key really fails. The key
//! lives in `~/.aws/credentials`, or in a real GNOME Keyring after `imdsd
//! import`, with a running daemon whose role uses it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::peers::{Moto, venv};
use crate::process::{BIN, Running};
use crate::secret_service::SecretService;
use crate::util::eventually;

/// Makes IAM user `alice` (allowed everything) with one access key, then
/// turns moto's authentication on; prints the key id and secret.
const SETUP: &str = r#"
import json, sys, urllib.request, boto3
endpoint = sys.argv[1]
iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="setup", aws_secret_access_key="setup")
iam.create_user(UserName="alice")
iam.put_user_policy(UserName="alice", PolicyName="all", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
key = iam.create_access_key(UserName="alice")["AccessKey"]
# The body is the count of actions still allowed without authentication.
req = urllib.request.Request(endpoint + "/moto-api/reset-auth", method="POST",
    data=b"0", headers={"Content-Type": "text/plain"})
urllib.request.urlopen(req).read()
print(key["AccessKeyId"], key["SecretAccessKey"])
"#;

/// With key (id, secret): the caller ARN, or the error code; and the
/// user's access key ids.
const CHECK: &str = r#"
import sys, boto3, botocore.exceptions
endpoint, key_id, secret = sys.argv[1:4]
kw = dict(endpoint_url=endpoint, region_name="us-east-1",
          aws_access_key_id=key_id, aws_secret_access_key=secret)
try:
    print(boto3.client("sts", **kw).get_caller_identity()["Arn"])
    keys = boto3.client("iam", **kw).list_access_keys(UserName="alice")["AccessKeyMetadata"]
    print(" ".join(sorted(k["AccessKeyId"] for k in keys)))
except botocore.exceptions.ClientError as e:
    print(e.response["Error"]["Code"])
"#;

fn python(args: &[&str]) -> String {
    let out = Command::new(venv().join("bin/python"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// moto with user `alice`'s key; authentication on.
fn moto_with_alice() -> (Moto, String, String) {
    let moto = Moto::start();
    let out = python(&["-c", SETUP, &moto.endpoint()]);
    let (id, secret) = out.trim().split_once(' ').unwrap();
    (moto, id.to_string(), secret.to_string())
}

/// `(caller ARN or error code, the user's key ids)` for a key.
fn check(moto: &Moto, id: &str, secret: &str) -> Vec<String> {
    python(&["-c", CHECK, &moto.endpoint(), id, secret])
        .lines()
        .map(str::to_string)
        .collect()
}

fn rotate(home: &Path, moto: &Moto, extra: &[(&str, String)]) -> Output {
    Command::new(BIN)
        .args(["rotate", "dev"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", home.join("no-runtime"))
        .env("AWS_ENDPOINT_URL_IAM", moto.endpoint())
        .env("AWS_ENDPOINT_URL_STS", moto.endpoint())
        .env("AWS_REGION", "us-east-1")
        .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The `(id, secret)` in `[dev]` of a credentials file.
fn keys_in(credentials: &str) -> (String, String) {
    let value = |key: &str| {
        credentials
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no {key} in {credentials}"))
            .to_string()
    };
    (value("aws_access_key_id"), value("aws_secret_access_key"))
}

#[test]
fn rotate_replaces_the_key_in_the_credentials_file_and_deletes_the_old_one() {
    let (moto, old_id, old_secret) = moto_with_alice();
    let home = tempfile::tempdir().unwrap();
    let aws = home.path().join(".aws");
    std::fs::create_dir(&aws).unwrap();
    let file = aws.join("credentials");
    std::fs::write(
        &file,
        format!(
            "# mine\n[dev]\naws_access_key_id = {old_id}\naws_secret_access_key = wrong\n\
             region = us-east-1\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    // A wrong key fails at GetUser: nothing is created or changed.
    let before = std::fs::read_to_string(&file).unwrap();
    let out = rotate(home.path(), &moto, &[]);
    assert_eq!(out.status.code(), Some(1));
    let error = text(&out.stderr);
    assert!(
        error.contains("does not work") && error.contains("nothing was changed"),
        "{error}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
    assert_eq!(
        check(&moto, &old_id, &old_secret)[1],
        old_id,
        "still one key"
    );

    std::fs::write(&file, before.replace("= wrong", &format!("= {old_secret}"))).unwrap();
    let out = rotate(home.path(), &moto, &[]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let shown = text(&out.stdout) + &text(&out.stderr);
    assert!(
        shown.contains(&format!("deleted the old access key {old_id}")),
        "{shown}"
    );
    let after = std::fs::read_to_string(&file).unwrap();
    let (new_id, new_secret) = keys_in(&after);
    assert_ne!(new_id, old_id);
    assert!(
        !shown.contains(&new_secret) && !shown.contains(&old_secret),
        "{shown}"
    );
    assert!(
        after.starts_with("# mine\n[dev]\n") && after.ends_with("region = us-east-1\n")
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // The new key works and is the user's only one; the old one is gone.
    let new = check(&moto, &new_id, &new_secret);
    assert_eq!(
        new,
        [
            "arn:aws:iam::123456789012:user/alice".to_string(),
            new_id.clone()
        ]
    );
    assert_eq!(check(&moto, &old_id, &old_secret), ["InvalidClientTokenId"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_replaces_an_imported_key_in_the_keyring_and_refreshes_the_daemon() {
    let (moto, old_id, old_secret) = moto_with_alice();
    let home = tempfile::tempdir().unwrap();
    let aws = home.path().join(".aws");
    std::fs::create_dir(&aws).unwrap();
    std::fs::write(
        aws.join("credentials"),
        format!(
            "[dev]\naws_access_key_id = {old_id}\naws_secret_access_key = {old_secret}\n"
        ),
    )
    .unwrap();
    let store = SecretService::start(home.path());
    let env: Vec<(&str, String)> = store.env();
    let imported = Command::new(BIN)
        .arg("import")
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    // A daemon serving profile `dev` (GetSessionToken on moto, signed with
    // the stored key).
    let dir = home.path().join("imdsd");
    std::fs::create_dir(&dir).unwrap();
    let config = dir.join("imdsd.toml");
    std::fs::write(
        &config,
        format!(
            "[[imds]]\nlisten = \"127.0.0.1:0\"\n[sts]\nendpoint = \"{}\"\n\
             [roles.dev]\nprofile = \"dev\"\n",
            moto.endpoint()
        ),
    )
    .unwrap();
    let socket = dir.join("state/control.sock");
    let mut daemon_env: Vec<(&str, &str)> =
        env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    daemon_env.push(("AWS_ACCESS_KEY_ID", ""));
    let daemon = Running::start_with(&config, &dir.join("state"), "", &daemon_env);
    daemon.log_line("fetched credentials").await;

    let mut extra = env.clone();
    extra.push(("IMDSD_CONTROL_SOCKET", socket.display().to_string()));
    let out = rotate(home.path(), &moto, &extra);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let shown = text(&out.stdout);
    assert!(
        shown.contains("stored it in the Secret Service item `imdsd: AWS profile dev`")
    );
    assert!(shown.contains("refreshed role `dev`"), "{shown}");
    let (_, secret) = store.lookup("dev").unwrap();
    let (new_id, new_secret) = keys_in(&secret);
    assert_ne!(new_id, old_id);
    assert!(!shown.contains(&new_secret));
    assert_eq!(check(&moto, &old_id, &old_secret), ["InvalidClientTokenId"]);
    assert_eq!(check(&moto, &new_id, &new_secret)[1], new_id);
    // The daemon fetched again, with the new key (the old one is deleted).
    eventually(Duration::from_secs(10), || async {
        let n = daemon
            .lines()
            .iter()
            .filter(|l| l.contains("fetched credentials"))
            .count();
        (n >= 2).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("{:#?}", daemon.lines()));
    assert!(
        !daemon
            .lines()
            .iter()
            .any(|l| l.contains(&new_secret) || l.contains(&old_secret))
    );
}
