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

/// Keys written as the profile parser also reads them (`key: value`, an
/// indented line) leave the file as the output says, and no file under
/// HOME holds the secret afterwards; keys the editor would leave behind
/// (lines ended by a lone `\r`) stop the import before anything changes.
#[test]
fn import_removes_keys_written_with_a_colon_or_indented() {
    let home = home();
    let store = SecretService::start(home.path());
    let cr = format!(
        "[dev]\raws_access_key_id = {}\raws_secret_access_key = {SECRET}\r",
        fake_sts::ACCESS_KEY_ID
    );
    std::fs::write(home.path().join(".aws/credentials"), &cr).unwrap();
    let out = imdsd(&store, &["import"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let error = text(&out.stderr);
    assert!(error.contains("nothing was stored or changed"), "{error}");
    assert!(!error.contains(SECRET) && !text(&out.stdout).contains(SECRET));
    assert_eq!(read(home.path(), "credentials"), cr);
    assert_eq!(read(home.path(), "config"), CONFIG);
    assert!(store.lookup("dev").is_none());

    let loose = format!(
        "# work keys\n[dev]\n  aws_access_key_id = {}\naws_secret_access_key: {SECRET}\n\n\
         [other]\nregion = eu-west-1\n",
        fake_sts::ACCESS_KEY_ID
    );
    std::fs::write(home.path().join(".aws/credentials"), &loose).unwrap();
    let out = imdsd(&store, &["import"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("removed them from"),
        "{}",
        text(&out.stdout)
    );
    let (_, secret) = store.lookup("dev").expect("the item");
    assert!(secret.contains(SECRET));
    assert_eq!(
        read(home.path(), "credentials"),
        "# work keys\n[other]\nregion = eu-west-1\n"
    );
    assert_eq!(files_containing(home.path(), SECRET), Vec::<PathBuf>::new());
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

/// Imports `home`'s keys into `store` with the real binary.
fn import(store: &SecretService) {
    let out = imdsd(store, &["import"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// The daemon on `config` (the fake STS's endpoint in `{sts}`, the token
/// directory in `{dir}`), finding the store through `store`'s variables;
/// its own environment holds no usable key.
fn daemon(store: &SecretService, sts: &FakeSts, config: &str) -> Running {
    let dir = store.home.join("imdsd");
    std::fs::create_dir_all(&dir).unwrap();
    let text = config
        .replace("{sts}", &sts.endpoint())
        .replace("{dir}", dir.to_str().unwrap());
    let path = dir.join("imdsd.toml");
    std::fs::write(&path, text).unwrap();
    let env = store.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Running::start_with(&path, &dir.join("state"), "not-a-usable-secret", &env)
}

/// `imdsd ARGS...` as a client of `daemon`'s control socket, with `extra`
/// variables; the binary's directory is on PATH (for `credential_process
/// = imdsd ...`).
fn client(store: &SecretService, args: &[&str], extra: &[(&str, &str)]) -> Output {
    as_client(BIN, args, store, extra)
}

/// What botocore's default chain finds (the access key it prints), run as
/// [`client`] is.
fn botocore(store: &SecretService, extra: &[(&str, &str)]) -> Output {
    as_client(&python(), &["-c", BOTOCORE_KEY], store, extra)
}

/// `program ARGS...` with the store's variables, the daemon's control
/// socket, the binary's directory on PATH and `extra`.
fn as_client(
    program: &str,
    args: &[&str],
    store: &SecretService,
    extra: &[(&str, &str)],
) -> Output {
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", path)
        .envs(store.env())
        .env(
            "IMDSD_CONTROL_SOCKET",
            store.home.join("imdsd/state/control.sock"),
        )
        .envs(extra.iter().copied())
        .output()
        .unwrap()
}

/// `imdsd status --json`, parsed and as text.
fn status(store: &SecretService) -> (serde_json::Value, String) {
    try_status(store).expect("imdsd status")
}

fn try_status(store: &SecretService) -> Option<(serde_json::Value, String)> {
    let out = client(store, &["status", "--json"], &[]);
    out.status.success().then(|| {
        (
            serde_json::from_slice(&out.stdout).unwrap(),
            text(&out.stdout),
        )
    })
}

use crate::util::status_role as role;

/// Waits (bounded) until every role in `names` is `ready`.
async fn ready(
    store: &SecretService,
    daemon: &Running,
    names: &[&str],
) -> serde_json::Value {
    eventually(Duration::from_secs(30), || async {
        let (json, _) = try_status(store)?;
        names
            .iter()
            .all(|n| role(&json, n)["state"] == "ready")
            .then_some(json)
    })
    .await
    .unwrap_or_else(|| panic!("{:#?}\n{}", daemon.lines(), status(store).1))
}

/// A Python program printing the access key botocore's default chain finds.
const BOTOCORE_KEY: &str = "import botocore.session; print(botocore.session.get_session().get_credentials().access_key)";

fn python() -> String {
    crate::peers::venv()
        .join("bin/python")
        .display()
        .to_string()
}

/// A config with one container listener serving every role, and `roles`;
/// the profiles it does not name are served on demand on a listener of
/// their own (on port 0: no test binds a fixed port).
fn config(roles: &str) -> String {
    format!(
        "[[container]]\nlisten = \"127.0.0.1:0\"\ntoken_dir = \"{{dir}}/tokens\"\n\
         [sts]\nendpoint = \"{{sts}}\"\ntimeout = \"5s\"\n[profiles]\nlisten = \"127.0.0.1:0\"\n{roles}"
    )
}

const DAEMON_ROLES: &str = r#"
[roles.default]
profile = "default"

[roles.ops]
profile = "ops"

[roles.kr]
role_arn = "arn:aws:iam::123456789012:role/kr"
source = "keyring:default"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_profiles_are_served_from_the_store_and_exec_still_gives_the_role() {
    let home = tempfile::tempdir().unwrap();
    let aws = home.path().join(".aws");
    std::fs::create_dir(&aws).unwrap();
    std::fs::write(
        aws.join("config"),
        "[profile ops]\nrole_arn = arn:aws:iam::123456789012:role/ops\nsource_profile = default\n",
    )
    .unwrap();
    std::fs::write(
        aws.join("credentials"),
        format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {SECRET}\n",
            fake_sts::ACCESS_KEY_ID
        ),
    )
    .unwrap();
    let store = SecretService::start(home.path());
    import(&store);
    let sts = FakeSts::start(ManualClock::starting_now()).await;
    let daemon = daemon(&store, &sts, &config(DAEMON_ROLES));
    // The fake STS checks every signature against the secret, which only
    // the keyring holds now: a profile (GetSessionToken), a chain through
    // it (AssumeRole) and `source = "keyring:default"`.
    let json = ready(&store, &daemon, &["default", "ops", "kr"]).await;
    let key = |name: &str| {
        role(&json, name)["access_key_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_ne!(key("default"), key("kr"));

    // A tool reading the default profile runs its credential_process: the
    // daemon's role `default`, not the keys.
    let out = botocore(&store, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), key("default"));

    // `exec kr`: botocore would try the default profile's
    // credential_process before the container endpoint; exec hides the
    // profile files, so the child gets `kr`.
    let out = client(
        &store,
        &["exec", "kr", "--", &python(), "-c", BOTOCORE_KEY],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), key("kr"));
    assert!(text(&out.stderr).contains("credential_process is imdsd's own"));
    let out = client(&store, &["env", "kr"], &[]);
    assert!(text(&out.stdout).contains("export AWS_CONFIG_FILE='/dev/null'"));

    // No secret in the log, the status or any file under HOME.
    let (_, shown) = status(&store);
    assert!(!shown.contains(SECRET));
    assert!(!daemon.lines().iter().any(|l| l.contains(SECRET)));
    assert_eq!(files_containing(home.path(), SECRET), Vec::<PathBuf>::new());
}

/// The container answer for role `name`: status and JSON body.
async fn container_answer(
    store: &SecretService,
    daemon: &Running,
    name: &str,
) -> (u16, serde_json::Value) {
    let addr = daemon.addr().await;
    let token =
        std::fs::read_to_string(store.home.join(format!("imdsd/tokens/{name}.token")))
            .unwrap();
    let resp = crate::util::request(
        addr,
        "GET",
        &format!("/role/{name}"),
        &[("Authorization", &token)],
    )
    .await;
    (resp.status, resp.json())
}

const DEV_ROLE: &str = "[roles.dev]\nprofile = \"dev\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absent_or_locked_store_is_named_everywhere_and_the_role_recovers_by_itself() {
    let home = home();
    let mut store = SecretService::start(home.path());
    import(&store);
    store.stop_keyring();
    let sts = FakeSts::start(ManualClock::starting_now()).await;
    let daemon = daemon(&store, &sts, &config(DEV_ROLE));
    // No Secret Service on the bus: the 503, the status and the log say so
    // and what to do.
    let failing = eventually(Duration::from_secs(30), || async {
        let (json, _) = try_status(&store)?;
        let dev = role(&json, "dev").clone();
        (dev["state"] != "starting" && !dev["last_error"].is_null()).then_some(dev)
    })
    .await
    .unwrap_or_else(|| panic!("{:#?}", daemon.lines()));
    let message = failing["last_error"]["message"].as_str().unwrap();
    assert!(message.contains("the Secret Service"), "{message}");
    assert!(message.contains("cannot be reached"), "{message}");
    assert!(message.contains("systemd credential"), "{message}");
    let (code, body) = container_answer(&store, &daemon, "dev").await;
    crate::util::assert_503(code, &body, None, "the Secret Service");
    daemon
        .log_line("the Secret Service (the desktop keyring")
        .await;
    assert_eq!(sts.calls(), 0, "nothing reaches STS without keys");

    // The store comes up: the role recovers with no one asking.
    store.start_keyring();
    ready(&store, &daemon, &["dev"]).await;
    let (code, _) = container_answer(&store, &daemon, "dev").await;
    assert_eq!(code, 200);

    // Locked: a refresh fails naming it; the last credentials are still
    // served; unlocked again, the role recovers by itself.
    store.lock();
    let out = client(&store, &["refresh", "dev"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("the Secret Service's keyring is locked: unlock it"),
        "{}",
        text(&out.stdout)
    );
    let (json, _) = status(&store);
    let error = role(&json, "dev")["last_error"].clone();
    assert_eq!(error["code"], "SecretServiceLocked", "{json}");
    let (code, _) = container_answer(&store, &daemon, "dev").await;
    assert_eq!(code, 200, "the last good credentials are still served");
    store.start_keyring();
    eventually(Duration::from_secs(40), || async {
        let (json, _) = try_status(&store)?;
        role(&json, "dev")["last_error"].is_null().then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("{:#?}", daemon.lines()));
    assert!(!daemon.lines().iter().any(|l| l.contains(SECRET)));
}

/// After an import, a tool reading a profile the config does not name
/// runs its new `credential_process` line: the daemon serves that profile
/// on demand, from the keys in the store (issues 20 and 21 together).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_profile_is_served_on_demand_to_a_tool_that_reads_it() {
    let home = tempfile::tempdir().unwrap();
    let aws = home.path().join(".aws");
    std::fs::create_dir(&aws).unwrap();
    std::fs::write(aws.join("config"), "[profile work]\nregion = us-east-1\n").unwrap();
    std::fs::write(
        aws.join("credentials"),
        format!(
            "[work]\naws_access_key_id = {}\naws_secret_access_key = {SECRET}\n",
            fake_sts::ACCESS_KEY_ID
        ),
    )
    .unwrap();
    let store = SecretService::start(home.path());
    import(&store);
    let sts = FakeSts::start(ManualClock::starting_now()).await;
    let daemon = daemon(&store, &sts, &config(""));
    daemon.log_line("serving on").await;
    let (json, _) = status(&store);
    assert_eq!(role(&json, "work")["state"], "parked", "nothing before use");
    assert_eq!(sts.calls(), 0);

    let out = botocore(&store, &[("AWS_PROFILE", "work")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (json, _) = status(&store);
    let work = role(&json, "work");
    assert_eq!(work["on_demand"], true);
    assert_eq!(
        text(&out.stdout).trim(),
        work["access_key_id"].as_str().unwrap()
    );
    // GetSessionToken, signed with the secret only the keyring holds.
    assert_eq!(sts.seen()[0].param("Action"), Some("GetSessionToken"));
    assert!(sts.seen()[0].signature_ok);
    assert!(!daemon.lines().iter().any(|l| l.contains(SECRET)));
}
