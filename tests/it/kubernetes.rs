//! `examples/kubernetes/` and the `Dockerfile`, checked offline by
//! `tests/peers/k8s_validate.py`: every manifest against the Kubernetes
//! schemas (1.29, the first release with native sidecars on by default, and
//! 1.37) in strict mode, what imdsd needs of them (native sidecar, exec
//! probes, the token volume and variables matching the `[[container]]`
//! table, hardening), broken copies rejected, the Dockerfile parsed and
//! linted (hadolint), and each ConfigMap's config through `imdsd check`.

use std::path::Path;

use crate::peers::venv;
use crate::process::BIN;

#[test]
fn the_kubernetes_examples_and_the_dockerfile_pass_their_checks() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(venv().join("bin/python"))
        .arg(repo.join("tests/peers/k8s_validate.py"))
        .arg(repo)
        .arg(BIN)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The negative cases ran and were rejected, not skipped.
    assert!(
        report.contains("ok   rejected: native sidecar on 1.27"),
        "{report}"
    );
    assert!(
        report.contains("ok   examples/kubernetes/irsa.yaml imdsd check"),
        "{report}"
    );
    assert!(report.contains(" 0 failed"), "{report}");
}
