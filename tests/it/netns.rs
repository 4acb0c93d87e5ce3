//! Network namespaces a test makes for itself: a pod's network (its own
//! loopback, no route anywhere), with moto as STS inside it. Tests that
//! need a fixed address (the default 127.0.0.1:16925, 169.254.170.23:80)
//! use one, so they never collide with an imdsd running on the machine.
//! Needs root (`ip netns`).

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::peers::venv;

/// moto's port inside the pod: the namespace is new, so it is free.
pub const STS_PORT: u16 = 5000;

/// A network namespace, deleted on drop.
pub struct Pod {
    name: String,
}

impl Pod {
    pub fn create() -> Pod {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "imdsd-pod-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        let pod = Pod { name };
        run_ok(&mut pod.exec("ip", &["link", "set", "lo", "up"]));
        pod
    }

    /// `program args` inside the pod's network.
    pub fn exec(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]).args(args);
        cmd
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

pub fn run_ok(cmd: &mut Command) {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// moto, inside the pod, killed on drop.
pub struct Sts(std::process::Child);

impl Sts {
    pub fn start(pod: &Pod) -> Sts {
        let moto = venv().join("bin/moto_server");
        let child = pod
            .exec(
                moto.to_str().unwrap(),
                &["-H", "127.0.0.1", "-p", &STS_PORT.to_string()],
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        Sts(child)
    }
}

impl Drop for Sts {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
