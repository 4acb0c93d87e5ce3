//! The SDK matrix: real, unmodified clients (botocore, the AWS CLI, the JS
//! SDK v3, the Rust SDK's `aws-config`, the Go SDK v2) get a role's
//! credentials from the real daemon through each channel they support:
//! the IMDS endpoint variable, the container endpoint with its token file,
//! and `credential_process = imdsd credential-process ROLE`. STS is moto.
//!
//! The README's compatibility table is this run's result: the test fails
//! when they differ (`IMDSD_UPDATE_README=1` rewrites the README's table).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::peers::{Moto, venv};
use crate::process::{BIN, Running};

const ROLE_ARN_PREFIX: &str = "arn:aws:sts::123456789012:assumed-role/dev/imdsd-matrix";
const TABLE_START: &str =
    "<!-- sdk-matrix:start (tests/it/sdk_matrix.rs writes this) -->";
const TABLE_END: &str = "<!-- sdk-matrix:end -->";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    Imds,
    Container,
    Process,
}

const CHANNELS: [Channel; 3] = [Channel::Imds, Channel::Container, Channel::Process];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    Botocore,
    AwsCli,
    JsV3,
    RustAwsConfig,
    GoV2,
}

const PEERS: [Peer; 5] = [
    Peer::Botocore,
    Peer::AwsCli,
    Peer::JsV3,
    Peer::RustAwsConfig,
    Peer::GoV2,
];

/// What a client reported.
#[derive(Debug, Default)]
struct Seen {
    access_key: Option<String>,
    arn: Option<String>,
    /// The provider the client says it used, when it says.
    provider: Option<String>,
}

/// Everything a client run needs to know.
struct Setup {
    dir: PathBuf,
    moto: String,
    imds: String,
    container_url: String,
    token_file: PathBuf,
    socket: PathBuf,
}

impl Setup {
    /// A clean environment: no keys, empty AWS config files, the real
    /// metadata service out of reach, moto as STS.
    fn command(&self, program: &Path, channel: Channel, peer: Peer) -> Command {
        let mut cmd = Command::new(program);
        let home = self.dir.join("home");
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("AWS_CONFIG_FILE", self.dir.join("empty-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.dir.join("empty-credentials"),
            )
            .env("AWS_ENDPOINT_URL_STS", &self.moto)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("NO_PROXY", "127.0.0.1");
        match channel {
            Channel::Imds => {
                cmd.env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &self.imds)
                    .env("AWS_EC2_METADATA_V1_DISABLED", "true")
                    // botocore and the CLI give IMDS one second and one attempt by
                    // default; on a loaded two-core machine that is a timed assertion.
                    // The contract is under test here, latency in bench/.
                    .env("AWS_METADATA_SERVICE_TIMEOUT", "10")
                    .env("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "3");
            }
            Channel::Container => {
                cmd.env("AWS_EC2_METADATA_DISABLED", "true")
                    .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", &self.container_url);
                if peer == Peer::GoV2 {
                    // Debian's Go SDK (1.17) does not read the _FILE
                    // variable; it sends the variable's value verbatim.
                    let token = std::fs::read_to_string(&self.token_file).unwrap();
                    cmd.env("AWS_CONTAINER_AUTHORIZATION_TOKEN", token);
                } else {
                    cmd.env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &self.token_file);
                }
            }
            Channel::Process => {
                cmd.env("AWS_EC2_METADATA_DISABLED", "true")
                    .env("AWS_CONFIG_FILE", self.dir.join("process-config"));
            }
        }
        // Nothing else may answer: a fallback to the real IMDS address
        // would leave this machine.
        if channel != Channel::Imds {
            cmd.env("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9");
        }
        cmd
    }
}

/// Runs `peer` through `channel`: what it reported, or its error output.
fn run(setup: &Setup, peer: Peer, channel: Channel) -> Result<Seen, String> {
    let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers");
    let mut cmd = match peer {
        Peer::Botocore => {
            let mut c = setup.command(&venv().join("bin/python"), channel, peer);
            c.arg(peers.join("botocore_client.py"));
            c
        }
        Peer::AwsCli => {
            let mut c = setup.command(&venv().join("bin/aws"), channel, peer);
            c.args(["sts", "get-caller-identity", "--output", "json"]);
            c
        }
        Peer::JsV3 => {
            let mut c = setup.command(Path::new("node"), channel, peer);
            c.arg(peers.join("js/client.mjs"))
                .current_dir(peers.join("js"));
            c
        }
        Peer::RustAwsConfig => setup.command(&rust_client(), channel, peer),
        Peer::GoV2 => setup.command(go_client(), channel, peer),
    };
    let out = cmd.output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)));
    }
    let json: serde_json::Value = serde_json::from_str(stdout.trim())
        .map_err(|e| format!("not JSON ({e}): {stdout}"))?;
    let text = |k: &str| json[k].as_str().map(String::from);
    Ok(match peer {
        Peer::Botocore => Seen {
            access_key: text("access_key"),
            arn: text("arn"),
            provider: text("method"),
        },
        Peer::AwsCli => Seen {
            arn: text("Arn"),
            ..Seen::default()
        },
        Peer::JsV3 => Seen {
            access_key: text("accessKeyId"),
            arn: text("arn"),
            provider: None,
        },
        Peer::RustAwsConfig => Seen {
            access_key: text("AccessKeyId"),
            ..Seen::default()
        },
        Peer::GoV2 => Seen {
            access_key: text("AccessKeyId"),
            provider: text("Source"),
            ..Seen::default()
        },
    })
}

/// The Rust SDK peer, an example of this crate (built by the README's test
/// command with `cargo build --examples`: `cargo test --all-targets` compiles
/// examples only as test harnesses).
pub fn rust_client() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let client = profile_dir.join("examples/rust_sdk_client");
    assert!(
        client.exists(),
        "{} is missing: run the README's test command, or `cargo build --examples`",
        client.display()
    );
    client
}

/// The Go SDK peer, built once (GOPATH mode, Debian's packaged SDK).
pub fn go_client() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/go/client.go");
        let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/go-peer");
        std::fs::create_dir_all(out.join("home")).unwrap();
        let status = Command::new("go")
            .args(["build", "-o"])
            .arg(out.join("go-peer"))
            .arg(&src)
            .env("GO111MODULE", "off")
            .env("GOPATH", "/usr/share/gocode")
            .env("GOCACHE", out.join("cache"))
            .env("GOPROXY", "off")
            .env("GOFLAGS", "")
            .env("HOME", out.join("home"))
            .status()
            .expect("`go` is installed by the README's test command (golang-go and golang-github-aws-aws-sdk-go-v2-dev)");
        assert!(status.success(), "go build of the Go SDK peer failed");
        out.join("go-peer")
    })
}

/// The daemon on moto, with an IMDS and a container listener for `dev`.
async fn start(dir: &Path, moto: &Moto) -> (Running, Setup) {
    let config = format!(
        r#"[[imds]]
listen = "127.0.0.1:0"
role = "dev"

[[container]]
listen = "127.0.0.1:0"
roles = ["dev"]
token_dir = "{dir}/tokens"

[sts]
endpoint = "{moto}"

[roles.dev]
role_arn = "arn:aws:iam::123456789012:role/dev"
source = "env"
session_name = "imdsd-matrix"
"#,
        dir = dir.display(),
        moto = moto.endpoint()
    );
    let path = dir.join("imdsd.toml");
    std::fs::write(&path, config).unwrap();
    let daemon = Running::start(&path, &dir.join("state"), "moto-accepts-any-secret");
    daemon.log_line("fetched credentials").await;
    let imds = daemon.addr_n(0).await;
    let container = daemon.addr_n(1).await;
    let socket = dir.join("state/control.sock");
    for name in ["empty-config", "empty-credentials"] {
        std::fs::write(dir.join(name), "").unwrap();
    }
    std::fs::create_dir_all(dir.join("home")).unwrap();
    std::fs::write(
        dir.join("process-config"),
        format!(
            "[default]\ncredential_process = {BIN} credential-process dev --socket {}\n",
            socket.display()
        ),
    )
    .unwrap();
    let setup = Setup {
        dir: dir.to_path_buf(),
        moto: moto.endpoint(),
        imds: format!("http://{imds}"),
        container_url: format!("http://{container}/role/dev"),
        token_file: dir.join("tokens/dev.token"),
        socket,
    };
    (daemon, setup)
}

/// The access key id the daemon serves for `dev` right now.
fn served_key(setup: &Setup) -> String {
    let out = Command::new(BIN)
        .args(["credential-process", "dev", "--socket"])
        .arg(&setup.socket)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["AccessKeyId"].as_str().unwrap().to_string()
}

/// One cell of the table, after checking what the client saw.
fn cell(
    peer: Peer,
    channel: Channel,
    result: &Result<Seen, String>,
    key: &str,
) -> String {
    let seen = match result {
        Ok(seen) => seen,
        Err(e) => return format!("✘ {}", e.lines().last().unwrap_or_default()),
    };
    if let Some(k) = &seen.access_key {
        assert_eq!(k, key, "{peer:?} via {channel:?} got other credentials");
    }
    if let Some(arn) = &seen.arn {
        assert!(
            arn.starts_with(ROLE_ARN_PREFIX),
            "{peer:?} via {channel:?}: {arn}"
        );
    }
    assert!(
        seen.access_key.is_some() || seen.arn.is_some(),
        "{peer:?} via {channel:?} reported nothing"
    );
    let mut text = "✔".to_string();
    if let Some(p) = &seen.provider {
        text.push_str(&format!(" (`{p}`)"));
    }
    if peer == Peer::GoV2 && channel == Channel::Container {
        text.push_str(": token in `AWS_CONTAINER_AUTHORIZATION_TOKEN`, this version reads no `_FILE`");
    }
    text
}

fn pinned(file: &str, prefix: &str) -> String {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
        .unwrap();
    text.lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .map(|v| {
            v.trim_matches(|c| c == '"' || c == ',' || c == ' ')
                .to_string()
        })
        .unwrap_or_else(|| panic!("no `{prefix}` in {file}"))
}

fn version(peer: Peer) -> String {
    match peer {
        Peer::Botocore => pinned("tests/peers/requirements.txt", "botocore=="),
        Peer::AwsCli => pinned("tests/peers/requirements.txt", "awscli=="),
        Peer::JsV3 => pinned("tests/peers/js/package.json", "\"@aws-sdk/client-sts\": "),
        Peer::RustAwsConfig => {
            let lock = std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock"),
            )
            .unwrap();
            let entry = "name = \"aws-config\"\nversion = \"";
            let at = lock.find(entry).unwrap() + entry.len();
            lock[at..].split('"').next().unwrap().to_string()
        }
        Peer::GoV2 => {
            let out = Command::new("dpkg-query")
                .args(["-W", "-f=${Version}", "golang-github-aws-aws-sdk-go-v2-dev"])
                .output()
                .unwrap();
            format!("{} (Debian)", String::from_utf8_lossy(&out.stdout))
        }
    }
}

fn name(peer: Peer) -> &'static str {
    match peer {
        Peer::Botocore => "botocore (boto3)",
        Peer::AwsCli => "AWS CLI v1",
        Peer::JsV3 => "JS SDK v3, default chain",
        Peer::RustAwsConfig => "Rust `aws-config`, default chain",
        Peer::GoV2 => "Go SDK v2, default chain",
    }
}

fn table(rows: &[(Peer, Vec<String>)]) -> String {
    let mut out = String::from(
        "| client | version | IMDS (`AWS_EC2_METADATA_SERVICE_ENDPOINT`) | container (`FULL_URI` + token file) | `credential_process` |\n| --- | --- | --- | --- | --- |\n",
    );
    for (peer, cells) in rows {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            name(*peer),
            version(*peer),
            cells.join(" | ")
        ));
    }
    out
}

/// Compares the README's table with `expected`, or rewrites it.
fn check_readme(expected: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (Some(a), Some(b)) = (readme.find(TABLE_START), readme.find(TABLE_END)) else {
        panic!("README.md has no {TABLE_START} ... {TABLE_END} block");
    };
    let current = readme[a + TABLE_START.len()..b].trim();
    if current == expected.trim() {
        return;
    }
    if std::env::var_os("IMDSD_UPDATE_README").is_some() {
        let updated = format!(
            "{}{TABLE_START}\n{}{}",
            &readme[..a],
            expected,
            &readme[b..]
        );
        std::fs::write(&path, updated).unwrap();
        return;
    }
    panic!(
        "the README's compatibility table is not this run's result; rerun with IMDSD_UPDATE_README=1 or paste:\n{expected}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sdk_gets_the_role_through_every_channel_it_supports() {
    go_client();
    rust_client();
    let moto = Moto::start();
    let tmp = tempfile::tempdir().unwrap();
    let (daemon, setup) = start(tmp.path(), &moto).await;
    let setup = std::sync::Arc::new(setup);
    let key = served_key(&setup);
    let mut tasks = Vec::new();
    for peer in PEERS {
        let setup = setup.clone();
        tasks.push(tokio::task::spawn_blocking(move || {
            let results: Vec<_> =
                CHANNELS.iter().map(|c| run(&setup, peer, *c)).collect();
            (peer, results)
        }));
    }
    let mut rows: Vec<(Peer, Vec<String>)> = Vec::new();
    for task in tasks {
        let (peer, results) = tokio::time::timeout(Duration::from_secs(120), task)
            .await
            .expect("clients finish within 2 minutes")
            .unwrap();
        let cells = CHANNELS
            .iter()
            .zip(&results)
            .map(|(channel, result)| cell(peer, *channel, result, &key))
            .collect();
        rows.push((peer, cells));
    }
    drop(daemon);
    let mut failures = Vec::new();
    for (peer, cells) in &rows {
        for (channel, cell) in CHANNELS.iter().zip(cells) {
            if cell.starts_with('✘') {
                failures.push(format!("{peer:?} via {channel:?}: {cell}"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    check_readme(&table(&rows));
}
