//! Daemons for the deployment tests, each started by a test and stopped by
//! its pid file when dropped: Debian's `dockerd` (host networking only: no
//! bridge, no iptables) and a CNCF distribution registry (`docker-registry`)
//! on loopback. Their data stays under the test's folder in `target/`.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::envoy::die_with_parent;

/// Waits until `ready()` is true, or fails after `limit` with `what`.
pub fn wait_for(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + limit;
    while !ready() {
        if Instant::now() > deadline {
            bail!("{what}: not within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// A loopback port the kernel had free (for daemons that cannot report the
/// port they bound).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Runs a command, failing with its output when it fails.
pub fn checked(cmd: &mut Command) -> Result<Output> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// Sends SIGTERM to the process in `pid_file`, waits up to `limit` for it to
/// go, then SIGKILL. A missing file means it is already gone.
fn stop_by_pid_file(pid_file: &Path, limit: Duration) {
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|p| p.trim().parse::<libc::pid_t>().ok())
    else {
        return;
    };
    // SAFETY: kill(2) with a pid we started; signal 0 only probes.
    let alive = || unsafe { libc::kill(pid, 0) } == 0 && !is_zombie(pid);
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + limit;
    while alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    if alive() {
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

fn is_zombie(pid: libc::pid_t) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
        .unwrap_or(true)
}

/// Debian's dockerd for one test: its own socket, data root and pid file.
pub struct Dockerd {
    pub socket: PathBuf,
    pub dir: PathBuf,
    exec_root: PathBuf,
    pid_file: PathBuf,
    child: std::process::Child,
}

impl Dockerd {
    /// Starts dockerd with its data under `dir` and waits until it answers.
    pub fn start(dir: &Path) -> Result<Dockerd> {
        std::fs::create_dir_all(dir)?;
        let dir = std::path::absolute(dir)?;
        // containerd's sockets live under the exec root: keep its path short
        // (unix socket paths are limited to 108 bytes).
        let exec_root = PathBuf::from(format!("/tmp/tg-dockerd-{}", std::process::id()));
        let socket = dir.join("docker.sock");
        let pid_file = dir.join("dockerd.pid");
        let log = std::fs::File::create(dir.join("dockerd.log"))?;
        let mut cmd = Command::new("dockerd");
        cmd.arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(&exec_root)
            .arg("--host")
            .arg(format!("unix://{}", socket.display()))
            .arg("--pidfile")
            .arg(&pid_file)
            // Host networking only: no bridge, no NAT rules on this machine.
            .args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        die_with_parent(&mut cmd);
        let child = cmd
            .spawn()
            .context("starting dockerd (apt-get install docker.io)")?;
        let dockerd = Dockerd {
            socket,
            dir: dir.clone(),
            exec_root,
            pid_file,
            child,
        };
        wait_for("dockerd answering", Duration::from_secs(60), || {
            dockerd
                .docker()
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .with_context(|| format!("see {}", dir.join("dockerd.log").display()))?;
        Ok(dockerd)
    }

    /// `DOCKER_HOST` for clients of this daemon.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Debian's docker CLI (20.10: BuildKit built in) aimed at this daemon.
    pub fn docker(&self) -> Command {
        let bin = if Path::new("/usr/bin/docker").exists() {
            "/usr/bin/docker"
        } else {
            "docker"
        };
        let mut cmd = Command::new(bin);
        cmd.env("DOCKER_HOST", self.host())
            .env("DOCKER_BUILDKIT", "1");
        cmd
    }

    /// Builds an image from `context` (BuildKit), tagging it `tag`.
    pub fn build(
        &self,
        tag: &str,
        context: &Path,
        dockerfile: &Path,
        args: &[(&str, &str)],
    ) -> Result<()> {
        let mut cmd = self.docker();
        cmd.args(["build", "--quiet", "--tag", tag, "--file"])
            .arg(dockerfile);
        for (k, v) in args {
            cmd.arg("--build-arg").arg(format!("{k}={v}"));
        }
        checked(cmd.arg(context)).map(|_| ())
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        stop_by_pid_file(&self.pid_file, Duration::from_secs(30));
        let _ = self.child.kill();
        let _ = self.child.wait();
        // dockerd leaves its default network namespace bind-mounted here.
        if let Ok(netns) = std::ffi::CString::new(
            self.exec_root
                .join("netns/default")
                .as_os_str()
                .as_encoded_bytes(),
        ) {
            // SAFETY: a valid C string; detaching a mount we caused.
            unsafe { libc::umount2(netns.as_ptr(), libc::MNT_DETACH) };
        }
        let _ = std::fs::remove_dir_all(&self.exec_root);
        // Images and containers take a gigabyte: keep only the logs.
        let _ = std::fs::remove_dir_all(self.dir.join("data"));
    }
}

/// A CNCF distribution registry on loopback, storage under the test's folder.
pub struct Registry {
    pub addr: SocketAddr,
    pid_file: PathBuf,
    child: std::process::Child,
}

impl Registry {
    pub fn start(dir: &Path) -> Result<Registry> {
        std::fs::create_dir_all(dir)?;
        let dir = std::path::absolute(dir)?;
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.join("data").display()
            ),
        )?;
        let log = std::fs::File::create(dir.join("registry.log"))?;
        let mut cmd = Command::new("docker-registry");
        cmd.arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        die_with_parent(&mut cmd);
        let child = cmd
            .spawn()
            .context("starting docker-registry (apt-get install docker-registry)")?;
        let pid_file = dir.join("registry.pid");
        std::fs::write(&pid_file, child.id().to_string())?;
        let registry = Registry {
            addr,
            pid_file,
            child,
        };
        wait_for(
            "the registry answering /v2/",
            Duration::from_secs(30),
            || crate::envoy::admin_get(addr, "/v2/").is_ok(),
        )
        .with_context(|| format!("see {}", dir.join("registry.log").display()))?;
        Ok(registry)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        stop_by_pid_file(&self.pid_file, Duration::from_secs(10));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
