//! Reloads without a failed request: every way a file gets replaced,
//! SIGHUP, listeners coming and going, renamed roles, invalid edits.

use super::*;

/// The four ways a config file gets replaced.
#[derive(Debug, Clone, Copy)]
enum Replace {
    InPlace,
    RenameOver,
    DeleteRecreate,
    SymlinkSwap,
}

fn replace(path: &Path, text: &str, how: Replace) {
    match how {
        Replace::InPlace => std::fs::write(path, text).unwrap(),
        Replace::RenameOver => {
            let tmp = path.with_extension("toml.swp");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, path).unwrap();
        }
        Replace::DeleteRecreate => {
            std::fs::remove_file(path).unwrap();
            std::thread::sleep(Duration::from_millis(20));
            std::fs::write(path, text).unwrap();
        }
        Replace::SymlinkSwap => {
            // Kubernetes ConfigMap volume: imdsd.toml -> ..data/imdsd.toml,
            // and ..data is atomically re-pointed at a new directory.
            let dir = path.parent().unwrap();
            let new = dir.join("..2026_11_26_v2");
            std::fs::create_dir(&new).unwrap();
            std::fs::write(new.join("imdsd.toml"), text).unwrap();
            std::os::unix::fs::symlink("..2026_11_26_v2", dir.join("..data_tmp"))
                .unwrap();
            std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
            std::fs::remove_dir_all(dir.join("..2026_11_26_v1")).unwrap();
        }
    }
}

fn configmap_layout(dir: &Path, text: &str) -> PathBuf {
    let v1 = dir.join("..2026_11_26_v1");
    std::fs::create_dir(&v1).unwrap();
    std::fs::write(v1.join("imdsd.toml"), text).unwrap();
    std::os::unix::fs::symlink("..2026_11_26_v1", dir.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/imdsd.toml", dir.join("imdsd.toml")).unwrap();
    dir.join("imdsd.toml")
}

async fn reload_without_a_failed_request(how: Replace) {
    let text = |sts: &FakeSts| config(sts, "dev", "");
    let live = match how {
        Replace::SymlinkSwap => Live::start_at(text, configmap_layout).await,
        _ => Live::start(text).await,
    };
    let addr = live.daemon.addr().await;
    live.daemon.log_line("fetched credentials").await;
    let clients = [ClientLoop::start(addr), ClientLoop::keep_alive(addr)];
    for client in &clients {
        client.rounds(5).await;
    }
    let since = Instant::now();
    replace(&live.path, &config(&live.sts, "prod", ""), how);
    live.daemon.log_line("config reloaded").await;
    let took = switched_within(addr, "prod", since).await;
    for client in &clients {
        client.wait_for("serves prod", |s| s.saw("prod")).await;
        client.rounds(5).await;
    }
    assert!(
        took <= Duration::from_secs(2),
        "{how:?}: the new role took {took:?}"
    );
    for (client, kind) in clients.into_iter().zip(["new connections", "keep-alive"]) {
        let seen = client.finish().await;
        assert!(
            seen.failures.is_empty(),
            "{how:?}, {kind}: failed requests {:?}",
            seen.failures
        );
        assert!(
            seen.saw("dev") && seen.saw("prod"),
            "{how:?}, {kind}: {seen:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_on_in_place_write() {
    reload_without_a_failed_request(Replace::InPlace).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_on_editor_rename_over() {
    reload_without_a_failed_request(Replace::RenameOver).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_on_delete_then_recreate() {
    reload_without_a_failed_request(Replace::DeleteRecreate).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_on_kubernetes_configmap_symlink_swap() {
    reload_without_a_failed_request(Replace::SymlinkSwap).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_edit_keeps_the_old_config_serving() {
    let live = Live::start(|sts| config(sts, "dev", "")).await;
    let addr = live.daemon.addr().await;
    live.daemon.log_line("fetched credentials").await;
    let client = ClientLoop::start(addr);
    let bad = config(&live.sts, "dev", "")
        .replace("source = \"env\"", "source = \"env\"\nduration = \"99h\"");
    std::fs::write(&live.path, bad).unwrap();
    let error = live
        .daemon
        .log_line("still serving the previous config")
        .await;
    let line = live.daemon.log_line("roles.dev.duration").await;
    assert!(
        line.contains(&format!("{}:", live.path.display())),
        "{line}"
    );
    client.rounds(5).await;
    std::fs::write(&live.path, config(&live.sts, "prod", "")).unwrap();
    switched_within(addr, "prod", Instant::now()).await;
    let seen = client.finish().await;
    assert!(
        seen.failures.is_empty(),
        "{:?} after {error}",
        seen.failures
    );
    assert_eq!(
        live.sts
            .seen()
            .iter()
            .filter(|s| s.param("RoleArn").unwrap().ends_with("/dev"))
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_when_watching_is_off() {
    let off = "[daemon]\nwatch_config = false\n";
    let live = Live::start(|sts| config(sts, "dev", off)).await;
    // A watching daemon given the same edit at the same moment: its reload
    // bounds how long the unwatched one would have taken to notice.
    let watching = Live::start(|sts| config(sts, "dev", "")).await;
    let addr = live.daemon.addr().await;
    live.daemon.log_line("fetched credentials").await;
    watching.daemon.log_line("fetched credentials").await;
    std::fs::write(&live.path, config(&live.sts, "prod", off)).unwrap();
    std::fs::write(&watching.path, config(&watching.sts, "prod", "")).unwrap();
    watching.daemon.log_line("config reloaded").await;
    let reloaded = |l: &String| l.contains("config reloaded");
    assert!(
        !live.daemon.lines().iter().any(reloaded),
        "no reload without SIGHUP when watching is off"
    );
    assert_eq!(live.sts.calls(), 1);
    let since = Instant::now();
    live.daemon.signal("-HUP");
    live.daemon.log_line("config reloaded").await;
    let took = switched_within(addr, "prod", since).await;
    assert!(took <= Duration::from_secs(2), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_roles_keep_their_credentials_and_listeners_come_and_go() {
    let live = Live::start(|sts| config(sts, "dev", "")).await;
    let first = live.daemon.addr().await;
    live.daemon.log_line("fetched credentials").await;
    let client = ClientLoop::start(first);
    // Add a second role on a second listener.
    let two = format!(
        "{}\n[[imds]]\nlisten = \"127.0.0.1:0\"\nrole = \"ops\"\n[roles.ops]\nrole_arn = \"arn:aws:iam::123456789012:role/ops\"\nsource = \"env\"\n",
        config(&live.sts, "dev", "")
    )
    .replacen("[[imds]]\nlisten = \"127.0.0.1:0\"\n", "[[imds]]\nlisten = \"127.0.0.1:0\"\nrole = \"dev\"\n", 1);
    std::fs::write(&live.path, &two).unwrap();
    let second = live.daemon.addr_n(1).await;
    switched_within(second, "ops", Instant::now()).await;
    let dev_calls = live
        .sts
        .seen()
        .iter()
        .filter(|s| s.param("RoleArn").unwrap().ends_with("/dev"))
        .count();
    assert_eq!(dev_calls, 1, "the unchanged role made no new STS call");
    // Remove it again: the second listener closes, the first keeps going.
    std::fs::write(&live.path, config(&live.sts, "dev", "")).unwrap();
    eventually(Duration::from_secs(5), || async {
        tokio::net::TcpStream::connect(second)
            .await
            .is_err()
            .then_some(())
    })
    .await
    .expect("removed listener closed");
    let seen = client.finish().await;
    assert!(seen.failures.is_empty(), "{:?}", seen.failures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_cannot_bind_fails_the_reload_not_the_daemon() {
    let live = Live::start(|sts| config(sts, "dev", "")).await;
    let addr = live.daemon.addr().await;
    live.daemon.log_line("fetched credentials").await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let text = format!(
        "{}\n[[imds]]\nlisten = \"127.0.0.1:{port}\"\nrole = \"dev\"\n",
        config(&live.sts, "prod", "")
    )
    .replacen(
        "[[imds]]\nlisten = \"127.0.0.1:0\"\n",
        "[[imds]]\nlisten = \"127.0.0.1:0\"\nrole = \"dev\"\n",
        1,
    );
    std::fs::write(&live.path, text).unwrap();
    let line = live.daemon.log_line("reload failed").await;
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    let mut seen = Seen::default();
    one_round(addr, &mut seen).await.expect("still serving");
    assert_eq!(
        seen.first_seen[0].0, "dev",
        "the old config is still in force"
    );
}

/// Renaming the served role changes the listing; a client that read the
/// old name a moment earlier still gets credentials for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renaming_the_served_role_fails_no_request() {
    let live = Live::start(|sts| config(sts, "dev", "")).await;
    let addr = live.daemon.addr().await;
    live.daemon.log_line("fetched credentials").await;
    let clients = [ClientLoop::start(addr), ClientLoop::keep_alive(addr)];
    for client in &clients {
        client.rounds(5).await;
    }
    let renamed = config(&live.sts, "prod", "").replace("[roles.dev]", "[roles.prod]");
    std::fs::write(&live.path, renamed).unwrap();
    live.daemon.log_line("config reloaded").await;
    switched_within(addr, "prod", Instant::now()).await;
    for client in clients {
        client.wait_for("serves prod", |s| s.saw("prod")).await;
        client.rounds(5).await;
        let seen = client.finish().await;
        assert!(seen.failures.is_empty(), "{:?}", seen.failures);
    }
    let r = request(addr, "PUT", "/latest/api/token", &[(TTL, "60")]).await;
    let listing = request(
        addr,
        "GET",
        "/latest/meta-data/iam/security-credentials/",
        &[(TOKEN, &r.text())],
    )
    .await;
    assert_eq!(listing.text(), "prod");
}
