//! Independent peers, installed by the test command into `.venv`: moto's
//! STS server as the STS the daemon signs to, and botocore and the AWS CLI
//! reading credentials through `AWS_EC2_METADATA_SERVICE_ENDPOINT` alone,
//! with IMDSv1 disabled, then proving the identity with GetCallerIdentity.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use imdsd::Environment;
use imdsd::SystemClock;
use imdsd::parse_config as parse;
use imdsd::{Daemon, Options};

/// The Python virtualenv with moto, botocore and awscli.
pub fn venv() -> PathBuf {
    let dir = std::env::var_os("IMDSD_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv"));
    assert!(
        dir.join("bin/moto_server").exists(),
        "{} has no moto_server: run the README's test command (scripts/test.sh), which installs the Python peers",
        dir.display()
    );
    dir
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// moto's STS on 127.0.0.1, killed on drop.
pub struct Moto {
    child: Child,
    addr: SocketAddr,
}

impl Moto {
    pub fn start() -> Moto {
        let port = free_port();
        let child = Command::new(venv().join("bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen within 30s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { child, addr }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn daemon_against(moto: &Moto, state: &std::path::Path) -> Daemon {
    let text = format!(
        r#"
[[imds]]
listen = "127.0.0.1:0"

[sts]
endpoint = "{}"

[roles.dev]
role_arn = "arn:aws:iam::123456789012:role/dev"
source = "env"
session_name = "imdsd-peer"
"#,
        moto.endpoint()
    );
    let env = Environment::from_pairs([
        ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
        (
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
    ]);
    daemon_with(&text, env, state).await
}

/// A client process with a clean environment: nothing but the IMDS
/// endpoint (with room for a loaded machine), IMDSv1 off, and moto as the
/// STS endpoint for the identity check. No keys, no config files.
fn client(
    program: PathBuf,
    imds: SocketAddr,
    moto: &Moto,
    home: &std::path::Path,
) -> Command {
    let mut cmd = Command::new(program);
    // botocore and the CLI give IMDS one second and one attempt by
    // default; on a loaded two-core machine that is a timed assertion.
    // The contract is under test here, latency in bench/.
    cmd.env_clear()
        .env("AWS_METADATA_SERVICE_TIMEOUT", "10")
        .env("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "3")
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_CONFIG_FILE", home.join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"))
        .env(
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            format!("http://{imds}"),
        )
        .env("AWS_EC2_METADATA_V1_DISABLED", "true")
        .env("AWS_ENDPOINT_URL_STS", moto.endpoint())
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_REGION", "us-east-1")
        .env("NO_PROXY", "127.0.0.1");
    cmd
}

async fn run(mut cmd: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("client runs"))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn botocore_and_the_aws_cli_act_as_the_role_assumed_on_moto() {
    let moto = Moto::start();
    let tmp = tempfile::tempdir().unwrap();
    let daemon = daemon_against(&moto, &tmp.path().join("state")).await;
    let imds = daemon.local_addrs()[0];

    let arn = botocore_arn(imds, &moto, tmp.path()).await;
    assert_eq!(arn, "arn:aws:sts::123456789012:assumed-role/dev/imdsd-peer");

    let mut cmd = client(venv().join("bin/aws"), imds, &moto, tmp.path());
    cmd.args(["sts", "get-caller-identity", "--output", "json"]);
    let out = run(cmd).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "aws cli failed: {}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let identity: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        identity["Arn"],
        "arn:aws:sts::123456789012:assumed-role/dev/imdsd-peer"
    );
    daemon.stop().await;
}

/// The node_modules of the JS SDK peer, installed by the test command.
fn js_peer() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/js");
    assert!(
        dir.join("node_modules/@aws-sdk/client-sts").exists(),
        "{} has no node_modules: run the README's test command (scripts/test.sh)",
        dir.display()
    );
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_js_sdk_v3_default_chain_acts_as_the_role_assumed_on_moto() {
    let js = js_peer();
    let moto = Moto::start();
    let tmp = tempfile::tempdir().unwrap();
    let daemon = daemon_against(&moto, &tmp.path().join("state")).await;
    let imds = daemon.local_addrs()[0];
    let mut cmd = client(PathBuf::from("node"), imds, &moto, tmp.path());
    cmd.arg(js.join("client.mjs")).current_dir(&js);
    let out = run(cmd).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "JS SDK failed: {}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(seen["hasToken"], true);
    assert!(
        seen["accessKeyId"].as_str().unwrap().starts_with("ASIA"),
        "{seen}"
    );
    assert_eq!(
        seen["arn"],
        "arn:aws:sts::123456789012:assumed-role/dev/imdsd-peer"
    );
    daemon.stop().await;
}

/// What botocore, reading only the IMDS endpoint, is to moto.
async fn botocore_arn(imds: SocketAddr, moto: &Moto, home: &std::path::Path) -> String {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/botocore_client.py");
    let mut cmd = client(venv().join("bin/python"), imds, moto, home);
    cmd.arg(script);
    let out = run(cmd).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "botocore failed: {}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        seen["method"], "iam-role",
        "botocore used the IMDS provider"
    );
    assert_eq!(seen["has_token"], true);
    seen["arn"].as_str().unwrap().to_string()
}

async fn daemon_with(config: &str, env: Environment, state: &std::path::Path) -> Daemon {
    let (config, diags) = parse(config, &env);
    let config = config.unwrap_or_else(|| panic!("{diags:?}"));
    let opts = Options::new(
        config,
        env,
        std::sync::Arc::new(SystemClock),
        state.to_path_buf(),
    );
    Daemon::start(opts).await.expect("daemon starts")
}

const SAML_RESPONSE: &str = r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"><saml:Assertion><saml:AttributeStatement><saml:Attribute Name="https://aws.amazon.com/SAML/Attributes/Role"><saml:AttributeValue>arn:aws:iam::123456789012:role/saml,arn:aws:iam::123456789012:saml-provider/idp</saml:AttributeValue></saml:Attribute><saml:Attribute Name="https://aws.amazon.com/SAML/Attributes/RoleSessionName"><saml:AttributeValue>saml-user</saml:AttributeValue></saml:Attribute><saml:Attribute Name="https://aws.amazon.com/SAML/Attributes/SessionDuration"><saml:AttributeValue>3600</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></saml:Assertion></samlp:Response>"#;

/// Each STS action, a chain of two roles, and an AWS profile setup, served
/// by imdsd from moto and read by botocore through IMDS alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sts_flow_on_moto_is_usable_by_botocore() {
    use base64::Engine;
    let moto = Moto::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("web-token"),
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJwb2QifQ.",
    )
    .unwrap();
    let saml = base64::engine::general_purpose::STANDARD.encode(SAML_RESPONSE);
    std::fs::write(dir.join("saml.b64"), saml).unwrap();
    std::fs::write(dir.join("config"), "[profile admin]\nrole_arn = arn:aws:iam::123456789012:role/profiled\nsource_profile = base\nrole_session_name = from-profile\n").unwrap();
    std::fs::write(
        dir.join("credentials"),
        "[base]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = x\n",
    )
    .unwrap();
    let d = dir.display();
    let cases = [
        (
            format!("role_arn = \"arn:aws:iam::123456789012:role/web\"\nweb_identity_token_file = \"{d}/web-token\"\nsession_name = \"pod\""),
            "arn:aws:sts::123456789012:assumed-role/web/pod",
        ),
        (
            format!("role_arn = \"arn:aws:iam::123456789012:role/saml\"\nprincipal_arn = \"arn:aws:iam::123456789012:saml-provider/idp\"\nsaml_assertion_file = \"{d}/saml.b64\""),
            "arn:aws:sts::123456789012:assumed-role/saml/saml-user",
        ),
        // moto answers GetCallerIdentity for session credentials with its
        // default user.
        ("type = \"session_token\"\nsource = \"env\"".to_string(), "arn:aws:sts::123456789012:user/moto"),
        (
            "role_arn = \"arn:aws:iam::123456789012:role/second\"\nsource = \"role:first\"\nsession_name = \"chained\"\n[roles.first]\nrole_arn = \"arn:aws:iam::123456789012:role/first\"\nsource = \"env\"".to_string(),
            "arn:aws:sts::123456789012:assumed-role/second/chained",
        ),
        ("profile = \"admin\"".to_string(), "arn:aws:sts::123456789012:assumed-role/profiled/from-profile"),
    ];
    let env = Environment::from_pairs([
        ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "x".to_string()),
        ("AWS_CONFIG_FILE", format!("{d}/config")),
        ("AWS_SHARED_CREDENTIALS_FILE", format!("{d}/credentials")),
    ]);
    for (i, (role, want)) in cases.iter().enumerate() {
        let config = format!(
            "[[imds]]\nlisten = \"127.0.0.1:0\"\nrole = \"served\"\n[sts]\nendpoint = \"{}\"\n[roles.served]\n{role}\n",
            moto.endpoint()
        );
        let daemon =
            daemon_with(&config, env.clone(), &dir.join(format!("state{i}"))).await;
        let arn = botocore_arn(daemon.local_addrs()[0], &moto, dir).await;
        assert_eq!(&arn, want, "case {i}: {role}");
        daemon.stop().await;
    }
}
