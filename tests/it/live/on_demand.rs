//! AWS profiles served by name, on demand, through the real binary: a HOME
//! with 100 profiles, `imdsd exec/env/credential-process/refresh PROFILE`
//! with no `[roles.PROFILE]`, botocore in the child, `status`, unknown and
//! unnameable names, and a profile added while the daemon runs.

use std::process::{Command, Output};

use super::*;
use crate::peers::venv;

/// The daemon, its directory (its HOME too) and the fake STS.
struct Profiles {
    sts: FakeSts,
    dir: tempfile::TempDir,
    daemon: Running,
}

const AWS_CONFIG_HEAD: &str = "[profile base]\nregion = us-east-1\n\n[profile my profile]\nrole_arn = arn:aws:iam::123456789012:role/spaced\nsource_profile = base\n";

fn aws_config(n: usize) -> String {
    let mut text = AWS_CONFIG_HEAD.to_string();
    for i in 0..n {
        text += &format!(
            "\n[profile p{i:02}]\nrole_arn = arn:aws:iam::123456789012:role/p{i:02}\nsource_profile = base\n"
        );
        if i == 9 {
            text += "region = eu-west-2\n";
        }
    }
    text
}

async fn started() -> Profiles {
    let sts = FakeSts::start(ManualClock::starting_now()).await;
    let dir = tempfile::tempdir().unwrap();
    crate::util::write_aws_files(dir.path(), &aws_config(100));
    let config = format!(
        "[[imds]]\nlisten = \"127.0.0.1:0\"\n[sts]\nendpoint = \"{}\"\ntimeout = \"2s\"\n\
         [roles.dev]\nrole_arn = \"arn:aws:iam::123456789012:role/dev\"\nsource = \"env\"\n\
         [profiles]\nlisten = \"127.0.0.1:0\"\n",
        sts.endpoint()
    );
    let path = crate::process::plain_file(dir.path(), &config);
    let home = dir.path().to_str().unwrap().to_string();
    let run = dir.path().join("run");
    let daemon = Running::start_with(
        &path,
        &dir.path().join("state"),
        fake_sts::SECRET_KEY,
        &[("HOME", &home), ("XDG_RUNTIME_DIR", run.to_str().unwrap())],
    );
    daemon.log_line("fetched credentials").await;
    Profiles { sts, dir, daemon }
}

impl Profiles {
    /// `imdsd ARGS...` as the same user, with the daemon's HOME.
    fn imdsd(&self, args: &[&str]) -> Output {
        let (command, rest) = args.split_first().unwrap();
        Command::new(BIN)
            .arg(command)
            .arg("--socket")
            .arg(self.dir.path().join("state/control.sock"))
            .args(rest)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .output()
            .unwrap()
    }

    /// The roles STS was asked for (the last part of each RoleArn).
    fn roles_asked(&self) -> Vec<String> {
        self.sts
            .seen()
            .iter()
            .filter_map(|s| Some(s.param("RoleArn")?.rsplit('/').next()?.to_string()))
            .collect()
    }

    fn status(&self) -> serde_json::Value {
        let out = self.imdsd(&["status", "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

use crate::util::status_role as role;

/// What botocore, in the command `exec` runs, resolves: its session token.
const BOTOCORE_TOKEN: &str = "import botocore.session; \
    c = botocore.session.get_session().get_credentials().get_frozen_credentials(); \
    print(c.token)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_is_served_by_name_from_its_first_use_and_nothing_before() {
    let p = started().await;
    assert_eq!(p.roles_asked(), ["dev"], "no call for any profile yet");
    let status = p.status();
    assert_eq!(role(&status, "p07")["on_demand"], true);
    assert_eq!(role(&status, "p07")["state"], "parked");
    assert_eq!(role(&status, "dev")["on_demand"], false);

    let python = venv().join("bin/python");
    let python = python.to_str().unwrap();
    let out = p.imdsd(&["exec", "p07", "--", python, "-c", BOTOCORE_TOKEN]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("-role-p07"), "{}", stdout(&out));
    assert_eq!(p.roles_asked(), ["dev", "p07"]);
    let status = p.status();
    assert_eq!(role(&status, "p07")["state"], "ready");
    assert_eq!(role(&status, "p07")["on_demand"], true);

    let out = p.imdsd(&["credential-process", "p08"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["SessionToken"].as_str().unwrap().contains("-role-p08"));

    let out = p.imdsd(&["env", "p09"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("export AWS_REGION='eu-west-2'"),
        "the profile's own region: {}",
        stdout(&out)
    );
    let on_demand = p.daemon.addr_n(1).await;
    assert!(
        stdout(&out).contains(&format!(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI='http://{on_demand}/role/p09'"
        )),
        "{}",
        stdout(&out)
    );
    let out = p.imdsd(&["refresh", "p10"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("p10  refreshed; expires"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        p.roles_asked(),
        ["dev", "p07", "p08", "p09", "p10"],
        "a parked role's first fetch is the refresh"
    );
    let parked = p.status()["roles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["state"] == "parked")
        .count();
    assert_eq!(parked, 97, "base and p00..p99, but the four used");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_unnameable_profiles_are_refused_saying_why() {
    let p = started().await;
    let out = p.imdsd(&["exec", "p007", "--", "true"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("no role or AWS profile named `p007`"), "{err}");
    assert!(err.contains("did you mean `p07`?"), "{err}");
    let config = p.dir.path().join(".aws/config");
    assert!(
        err.contains(config.to_str().unwrap()),
        "names the files: {err}"
    );

    let out = p.imdsd(&["credential-process", "my profile"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("profile `my profile` cannot be served by name"),
        "{err}"
    );
    assert!(err.contains("IMDS path"), "{err}");
    assert_eq!(p.roles_asked(), ["dev"], "nothing was started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_added_while_the_daemon_runs_is_servable_without_a_reload() {
    let p = started().await;
    p.daemon.log_line("watching the AWS profile files").await;
    let config = p.dir.path().join(".aws/config");
    let mut text = aws_config(100);
    text += "\n[profile late]\nrole_arn = arn:aws:iam::123456789012:role/late\nsource_profile = base\n";
    std::fs::write(&config, text).unwrap();
    let served = eventually(Duration::from_secs(10), || async {
        let out = p.imdsd(&["credential-process", "late"]);
        out.status.success().then_some(out)
    })
    .await
    .unwrap_or_else(|| panic!("{:#?}", p.daemon.lines()));
    let json: serde_json::Value = serde_json::from_slice(&served.stdout).unwrap();
    assert!(
        json["SessionToken"]
            .as_str()
            .unwrap()
            .contains("-role-late")
    );
}
