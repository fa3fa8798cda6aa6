//! One real Envoy process per test: its own config, ports, base id and log.
//!
//! Ports are chosen by the kernel (`port_value: 0`) and read back from the
//! admin API, so parallel tests never collide. Dropping an [`Envoy`] kills the
//! process and fails the test if the log shows a wasm panic (`[critical][wasm]`).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::paths;
use crate::template;
use crate::wait::{self, Check};

/// How long Envoy may take to load the module and open its listeners. About
/// a second on a quiet machine, but V8 compiles the 2.3 MB module for each
/// VM: on 2 cores shared with a dozen busy processes it took over 60 s.
const READY_TIMEOUT: Duration = Duration::from_secs(180);

pub struct Envoy {
    child: Child,
    pub log_path: PathBuf,
    pub admin: SocketAddr,
    listeners: BTreeMap<String, SocketAddr>,
    /// False while starting: a failed start reports its own error.
    started: bool,
}

/// What to run: a config template and the values for its placeholders.
pub struct EnvoyConfig {
    pub template: PathBuf,
    pub vars: BTreeMap<&'static str, String>,
    /// Folder for the rendered config, the log and the admin address file.
    pub dir: PathBuf,
}

/// Worker threads: one by default (one VM, deterministic tests); more where
/// a test is about what workers share.
pub const DEFAULT_CONCURRENCY: u32 = 1;

impl EnvoyConfig {
    pub fn render(&self) -> Result<PathBuf> {
        let text = std::fs::read_to_string(&self.template)
            .with_context(|| format!("reading {}", self.template.display()))?;
        let rendered = template::render(&text, &self.vars)
            .with_context(|| format!("rendering {}", self.template.display()))?;
        let out = self.dir.join("envoy.yaml");
        std::fs::write(&out, rendered)?;
        Ok(out)
    }
}

/// The Envoy command line shared by tests and the demo.
pub fn command(
    config: &Path,
    log_path: &Path,
    admin_file: &Path,
    concurrency: u32,
) -> Result<Command> {
    let mut cmd = Command::new(paths::envoy_bin()?);
    cmd.arg("-c")
        .arg(config)
        .args([
            "--use-dynamic-base-id",
            "--concurrency",
            &concurrency.to_string(),
        ])
        .args(["--log-level", "info", "--component-log-level", "wasm:debug"])
        // Envoy flushes its log file every 10 s by default; tests read it.
        .args(["--file-flush-interval-msec", "100"])
        .arg("--log-path")
        .arg(log_path)
        .arg("--admin-address-path")
        .arg(admin_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    die_with_parent(&mut cmd);
    Ok(cmd)
}

/// A killed test run or demo must not leave a child (Envoy, an IdP) behind
/// holding its ports.
pub fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

impl Envoy {
    /// Starts Envoy (one worker) and waits until it is ready to serve.
    pub fn start(config: &EnvoyConfig) -> Result<Envoy> {
        Envoy::start_with(config, DEFAULT_CONCURRENCY)
    }

    /// Starts Envoy with `concurrency` workers.
    pub fn start_with(config: &EnvoyConfig, concurrency: u32) -> Result<Envoy> {
        Envoy::start_with_overlay(config, concurrency, None)
    }

    /// Starts Envoy with `concurrency` workers and, if given, `overlay`:
    /// bootstrap YAML that Envoy merges over the rendered config
    /// (`--config-yaml`; lists are appended, so it can add a cluster but
    /// not replace one).
    pub fn start_with_overlay(
        config: &EnvoyConfig,
        concurrency: u32,
        overlay: Option<&str>,
    ) -> Result<Envoy> {
        let rendered = config.render()?;
        let log_path = config.dir.join("envoy.log");
        let admin_file = config.dir.join("admin.address");
        let mut cmd = command(&rendered, &log_path, &admin_file, concurrency)?;
        if let Some(yaml) = overlay {
            cmd.args(["--config-yaml", yaml]);
        }
        let child = cmd.spawn().context("starting envoy")?;
        let mut envoy = Envoy {
            child,
            log_path,
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            listeners: BTreeMap::new(),
            started: false,
        };
        envoy.wait_ready(&admin_file)?;
        envoy.started = true;
        Ok(envoy)
    }

    /// Starts Envoy with a config it must refuse; returns its log once it has
    /// exited. Fails if Envoy becomes ready instead.
    pub fn expect_refusal(config: &EnvoyConfig) -> Result<String> {
        let rendered = config.render()?;
        let log_path = config.dir.join("envoy.log");
        let admin_file = config.dir.join("admin.address");
        let mut child = command(&rendered, &log_path, &admin_file, DEFAULT_CONCURRENCY)?.spawn()?;
        let what = "envoy to exit refusing its config";
        let exited = wait::until_within(what, READY_TIMEOUT, || match child.try_wait() {
            Ok(Some(status)) => Check::Done(status),
            Ok(None) if is_live(&admin_file) => {
                Check::Failed(anyhow!("envoy became ready with a config it should refuse"))
            }
            Ok(None) => Check::NotYet("envoy still running, not ready".into()),
            Err(e) => Check::Failed(e.into()),
        });
        let status = match exited {
            Ok(status) => status,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        if status.success() {
            bail!("envoy exited 0 with a config it should refuse");
        }
        Ok(std::fs::read_to_string(&log_path).unwrap_or_default())
    }

    fn wait_ready(&mut self, admin_file: &Path) -> Result<()> {
        let what = "envoy to be ready (admin /ready: LIVE)";
        let ready = wait::until_within(what, READY_TIMEOUT, || match self.child.try_wait() {
            Ok(Some(status)) => Check::Failed(anyhow!("envoy exited ({status})")),
            Ok(None) => match read_admin_address(admin_file) {
                Ok(addr) if is_live(admin_file) => Check::Done(addr),
                Ok(addr) => Check::NotYet(format!("admin on {addr}, not LIVE yet")),
                Err(_) => Check::NotYet("no admin address file yet".into()),
            },
            Err(e) => Check::Failed(e.into()),
        });
        match ready {
            Ok(addr) => {
                self.admin = addr;
                self.listeners = self.read_listeners()?;
                Ok(())
            }
            Err(e) => Err(anyhow!("{e:#}\n{}", self.log_problems())),
        }
    }

    fn read_listeners(&self) -> Result<BTreeMap<String, SocketAddr>> {
        let body = admin_get(self.admin, "/listeners?format=json")?;
        let v: serde_json::Value = serde_json::from_str(&body)?;
        let mut out = BTreeMap::new();
        for l in v["listener_statuses"].as_array().into_iter().flatten() {
            let sa = &l["local_address"]["socket_address"];
            let addr: SocketAddr = format!(
                "{}:{}",
                sa["address"].as_str().unwrap_or("127.0.0.1"),
                sa["port_value"].as_u64().unwrap_or(0)
            )
            .parse()?;
            out.insert(l["name"].as_str().unwrap_or_default().to_string(), addr);
        }
        Ok(out)
    }

    /// The bound address of the named listener.
    pub fn listener(&self, name: &str) -> SocketAddr {
        self.listeners
            .get(name)
            .copied()
            .unwrap_or_else(|| panic!("no listener {name:?}; have {:?}", self.listeners.keys()))
    }

    /// The Envoy process's id (the bench reads its CPU time and pins it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Envoy's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The log's warning, error and critical lines (the rest is noise when
    /// explaining a failure), with the log's path.
    pub fn log_problems(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| {
                l.contains("][warning][") || l.contains("][error][") || l.contains("][critical][")
            })
            .collect();
        format!(
            "{}\n(full log: {})",
            lines.join("\n"),
            self.log_path.display()
        )
    }

    /// Waits for a log line containing `needle` (the log file is flushed
    /// every 100 ms); returns it.
    pub fn wait_for_log(&self, needle: &str) -> Result<String> {
        wait::until(&format!("a log line with {needle:?}"), || {
            Check::found(
                self.log()
                    .lines()
                    .find(|l| l.contains(needle))
                    .map(str::to_string),
                || format!("no such line in {}", self.log_path.display()),
            )
        })
    }

    /// Waits until at least `count` log lines contain `needle` (e.g. one per
    /// Wasm VM); returns how many there are.
    pub fn wait_for_log_count(&self, needle: &str, count: usize) -> Result<usize> {
        wait::until(&format!("{count} log lines with {needle:?}"), || {
            let seen = self.log().lines().filter(|l| l.contains(needle)).count();
            Check::found((seen >= count).then_some(seen), || {
                format!("{seen} such lines in {}", self.log_path.display())
            })
        })
    }

    /// GET on the admin API.
    pub fn admin_get(&self, path: &str) -> Result<String> {
        admin_get(self.admin, path)
    }

    /// A counter or gauge from `/stats`, by its full name.
    pub fn stat(&self, name: &str) -> Result<u64> {
        let body = self.admin_get(&format!("/stats?filter=^{}$", name.replace('.', "\\.")))?;
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| anyhow!("no stat {name} in {body:?}"))
    }

    /// Waits until the stat `name` satisfies `want` (described by `what`,
    /// e.g. ">= 1"); returns its value.
    pub fn wait_for_stat(&self, name: &str, what: &str, want: impl Fn(u64) -> bool) -> Result<u64> {
        wait::until(&format!("stat {name} {what}"), || match self.stat(name) {
            Ok(v) if want(v) => Check::Done(v),
            Ok(v) => Check::NotYet(format!("{name}: {v}")),
            Err(e) => Check::NotYet(format!("{e:#}")),
        })
    }

    /// Waits until `/stats/prometheus` has the sample `series` (name and
    /// labels, e.g. `transit_guard_requests{decision="allowed"}`) at `value`.
    pub fn wait_for_metric(&self, series: &str, value: u64) -> Result<()> {
        wait::until(
            &format!("{series} {value} in /stats/prometheus"),
            || match self.admin_get("/stats/prometheus") {
                Ok(body) => {
                    let seen = prometheus_value(&body, series);
                    if seen == Some(value) {
                        Check::Done(())
                    } else {
                        Check::NotYet(format!("{series} {seen:?}"))
                    }
                }
                Err(e) => Check::NotYet(format!("{e:#}")),
            },
        )
    }
}

/// The value of one Prometheus sample (`series` is its name and labels).
pub fn prometheus_value(body: &str, series: &str) -> Option<u64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Whether the admin API (address in `admin_file`) answers `/ready` with LIVE.
fn is_live(admin_file: &Path) -> bool {
    read_admin_address(admin_file)
        .and_then(|addr| admin_get(addr, "/ready"))
        .is_ok_and(|b| b.contains("LIVE"))
}

/// Fails when the log shows the filter panicked or its VM failed.
pub fn check_log_for_wasm_crash(log: &str) -> Result<()> {
    match log.lines().find(|l| l.contains("[critical][wasm]")) {
        Some(line) => bail!("envoy log shows a wasm crash: {line}"),
        None => Ok(()),
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.started && !std::thread::panicking() {
            if let Err(e) = check_log_for_wasm_crash(&self.log()) {
                panic!("{e} (log: {})", self.log_path.display());
            }
        }
    }
}

fn read_admin_address(file: &Path) -> Result<SocketAddr> {
    let text = std::fs::read_to_string(file)?;
    Ok(text.trim().parse()?)
}

/// A minimal HTTP/1.1 GET, so the harness needs no async runtime to poll
/// Envoy (whose admin refuses HTTP/1.0 and answers chunked).
pub fn admin_get(addr: SocketAddr, path: &str) -> Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let (head, body) = out
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("malformed admin reply"))?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("admin {path}: {}", head.lines().next().unwrap_or_default());
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return dechunk(body);
    }
    Ok(body.to_string())
}

fn dechunk(mut body: &str) -> Result<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body
            .split_once("\r\n")
            .ok_or_else(|| anyhow!("malformed chunk"))?;
        let size = usize::from_str_radix(size.trim(), 16)?;
        if size == 0 {
            return Ok(out);
        }
        out.push_str(rest.get(..size).ok_or_else(|| anyhow!("short chunk"))?);
        body = rest.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_decoded() {
        assert_eq!(
            dechunk("4\r\nLIVE\r\n3\r\n ok\r\n0\r\n\r\n").unwrap(),
            "LIVE ok"
        );
    }

    #[test]
    fn prometheus_samples_are_read_by_exact_series() {
        let body = "# TYPE x counter\nx{event=\"dropped\"} 10\nx{event=\"sent\"} 1\n";
        assert_eq!(prometheus_value(body, "x{event=\"dropped\"}"), Some(10));
        assert_eq!(prometheus_value(body, "x{event=\"sent\"}"), Some(1));
        assert_eq!(prometheus_value(body, "x{event=\"drop\"}"), None);
    }

    #[test]
    fn wasm_crash_lines_are_caught() {
        assert!(check_log_for_wasm_crash("[info][main] ok\n").is_ok());
        let log = "[2026-11-21 10:00:00.000][1][critical][wasm] [source/extensions/common/wasm/context.cc:1] panicked at src/x.rs";
        assert!(check_log_for_wasm_crash(log).is_err());
    }
}
