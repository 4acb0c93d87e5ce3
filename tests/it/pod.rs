//! The pod sidecar, tested as a pod: a network namespace this test creates
//! (a pod's shared network: only its own loopback, no route to the
//! metadata service), moto as the cluster's STS inside it, imdsd as the
//! sidecar, and real SDKs as the application, sharing with imdsd nothing
//! but a directory (the "volume" holding the token file). The SDKs find
//! credentials through `AWS_CONTAINER_CREDENTIALS_FULL_URI` and
//! `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` alone. Needs root (`ip netns`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::netns::{Pod, STS_PORT, Sts, run_ok};
use crate::peers::venv;
use crate::process::{BIN, Running};
use crate::sdk_matrix::{go_client, rust_client};
use crate::util::eventually;

/// imdsd as the sidecar, its tokens in `volume`.
async fn sidecar(
    pod: &Pod,
    volume: &Path,
    private: &Path,
    listen: &str,
    extra: &str,
) -> Running {
    let config = format!(
        r#"[[container]]
listen = "{listen}"
roles = ["app"]
token_dir = "{volume}"
{extra}
[sts]
endpoint = "http://127.0.0.1:{STS_PORT}"
timeout = "20s"

[roles.app]
role_arn = "arn:aws:iam::123456789012:role/app"
source = "env"
session_name = "sidecar"
"#,
        volume = volume.display()
    );
    let path = private.join("imdsd.toml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = pod.exec(BIN, &["run", "--config"]);
    cmd.arg(&path);
    let daemon =
        Running::spawn(cmd, &private.join("state"), "moto-accepts-any-secret", &[]);
    // moto may take a few seconds to come up: the first fetch retries. The
    // listener is announced once the token file is in the volume.
    eventually(Duration::from_secs(40), || async {
        let lines = daemon.lines();
        let has = |text: &str| lines.iter().any(|l| l.contains(text));
        (has("fetched credentials") && has("(container credentials at")).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("the sidecar never fetched: {:#?}", daemon.lines()));
    daemon
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum App {
    Botocore,
    Js,
    Rust,
    Go,
}

/// Runs one SDK inside the pod with only the container variables: the
/// access key id it got.
fn app(
    pod: &Pod,
    which: App,
    full_uri: &str,
    token_file: &Path,
    home: &Path,
) -> Result<String, String> {
    let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers");
    let (program, args): (PathBuf, Vec<PathBuf>) = match which {
        App::Botocore => (
            venv().join("bin/python"),
            vec![peers.join("botocore_client.py")],
        ),
        App::Js => (PathBuf::from("node"), vec![peers.join("js/client.mjs")]),
        App::Rust => (rust_client(), vec![]),
        App::Go => (go_client().to_path_buf(), vec![]),
    };
    let args: Vec<&str> = args.iter().map(|a| a.to_str().unwrap()).collect();
    let mut cmd = pod.exec(program.to_str().unwrap(), &args);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_CONFIG_FILE", home.join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("none"))
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env(
            "AWS_ENDPOINT_URL_STS",
            format!("http://127.0.0.1:{STS_PORT}"),
        )
        .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", full_uri)
        .current_dir(peers.join("js"));
    if which == App::Go {
        // Debian's Go SDK (1.17) reads no _FILE variable.
        let token = std::fs::read_to_string(token_file).unwrap();
        cmd.env("AWS_CONTAINER_AUTHORIZATION_TOKEN", token);
    } else {
        cmd.env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_file);
    }
    let out = cmd.output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
        return Err(format!("{which:?}: {stdout}{}", tail.join(" / ")));
    }
    let json: serde_json::Value =
        serde_json::from_str(stdout.trim()).map_err(|e| e.to_string())?;
    ["access_key", "accessKeyId", "AccessKeyId"]
        .iter()
        .find_map(|k| json[k].as_str())
        .map(String::from)
        .ok_or_else(|| format!("{which:?} printed no key: {json}"))
}

/// The key the sidecar serves, asked with the token from the volume.
fn served_key(pod: &Pod, full_uri: &str, token_file: &Path) -> String {
    let token = std::fs::read_to_string(token_file).unwrap();
    let out = pod
        .exec(
            "curl",
            &["-s", "-H", &format!("Authorization: {token}"), full_uri],
        )
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    json["AccessKeyId"].as_str().unwrap().to_string()
}

async fn the_apps_get_the_sidecars_role(
    listen: &str,
    extra: &str,
    full_uri: &str,
    apps: &[App],
) {
    let pod = Pod::create();
    let volume = tempfile::tempdir().unwrap();
    let private = tempfile::tempdir().unwrap();
    if let Some(ip) = listen.strip_suffix(":80") {
        run_ok(&mut pod.exec("ip", &["addr", "add", &format!("{ip}/32"), "dev", "lo"]));
    }
    let _sts = Sts::start(&pod);
    let _sidecar = sidecar(&pod, volume.path(), private.path(), listen, extra).await;
    let token_file = volume.path().join("app.token");
    let key = served_key(&pod, full_uri, &token_file);
    let home = private.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    for which in apps {
        let got = tokio::task::block_in_place(|| {
            app(&pod, *which, full_uri, &token_file, &home)
        });
        assert_eq!(got.as_deref(), Ok(key.as_str()), "{which:?} in the pod");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdks_in_the_pod_use_the_sidecar_on_loopback() {
    the_apps_get_the_sidecars_role(
        "127.0.0.1:16927",
        "",
        "http://127.0.0.1:16927/role/app",
        &[App::Botocore, App::Js, App::Rust, App::Go],
    )
    .await;
}

/// The EKS Pod Identity address on the pod's loopback. Debian's Go SDK
/// (1.17) accepts only loopback FULL_URI hosts, so it is left out here (the
/// README's compatibility notes say so).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdks_in_the_pod_use_the_sidecar_on_the_eks_address() {
    the_apps_get_the_sidecars_role(
        "169.254.170.23:80",
        "allow_non_loopback = true",
        "http://169.254.170.23/role/app",
        &[App::Botocore, App::Js, App::Rust],
    )
    .await;
}
