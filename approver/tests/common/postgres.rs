//! A real Postgres server for the tests: Debian's `postgresql` binaries,
//! `initdb` into a fresh folder under the target directory (or the system
//! temp dir when the postgres user cannot reach it), `postgres` on a
//! free loopback port, as the unprivileged `postgres` user when the tests run
//! as root. One server per test process; each test gets its own database.
//!
//! The server is stopped when the test process ends, however it ends: it runs
//! under a small shell that waits on a pipe from this process and stops
//! Postgres (fast shutdown) and removes its folder when the pipe closes.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub struct PgServer {
    pub port: u16,
    /// Held so the pipe stays open while this process lives.
    _keepalive: Mutex<(Child, ChildStdin)>,
}

/// The folder with `initdb` and `postgres`: `TG_PG_BINDIR`, else the newest
/// `/usr/lib/postgresql/*/bin` (Debian's layout), else `PATH`.
fn bindir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("TG_PG_BINDIR") {
        return Some(PathBuf::from(d));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs `program args` as the `postgres` user when we are root.
fn command(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Creates `dir` for the server (owned by the postgres user when we are
/// root) and tells whether that user can write it.
fn usable(dir: &Path) -> bool {
    if std::fs::create_dir_all(dir).is_err() {
        return false;
    }
    if !is_root() {
        return true;
    }
    let owned = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    let writable = owned
        && command(Path::new("test"))
            .arg("-w")
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
    if !writable {
        let _ = std::fs::remove_dir_all(dir);
    }
    writable
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The process's server, started on first use.
pub fn server() -> &'static PgServer {
    static SERVER: OnceLock<PgServer> = OnceLock::new();
    SERVER.get_or_init(start)
}

fn start() -> PgServer {
    let bin = bindir().unwrap_or_else(|| {
        panic!(
            "Postgres is not installed (no /usr/lib/postgresql/*/bin/initdb): \
             run `cargo xtask test`, which installs Debian's postgresql, or \
             `apt-get install postgresql`, or set TG_PG_BINDIR"
        )
    });
    let name = format!(
        "pg-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    // Under target/ when the postgres user can reach it (a clone under a
    // private home folder is not reachable: then the system temp dir).
    let dir = [
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")),
        std::env::temp_dir(),
    ]
    .into_iter()
    .map(|base| base.join(&name))
    .find(|dir| usable(dir))
    .unwrap_or_else(|| panic!("no folder the postgres user can write for {name}"));
    let data = dir.join("data");
    let out = command(&bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A port taken between our probe and Postgres' bind: try another.
    for _ in 0..5 {
        let port = free_port();
        // The shell runs as us (so it can remove the folder); Postgres as
        // the postgres user when we are root.
        let as_postgres = if is_root() {
            "runuser -u postgres -- "
        } else {
            ""
        };
        let script = format!(
            "{as_postgres}'{postgres}' -D '{data}' -p {port} -k '{dir}' \
             -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=400 >'{dir}/log' 2>&1 & \
             read _; kill -INT \"$(head -1 '{data}/postmaster.pid')\" 2>/dev/null; \
             wait; rm -rf '{dir}'",
            postgres = bin.join("postgres").display(),
            data = data.display(),
            dir = dir.display(),
        );
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = command(&bin.join("pg_isready"))
                .args([
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "-U",
                    "postgres",
                ])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return PgServer {
                    port,
                    _keepalive: Mutex::new((child, stdin)),
                };
            }
            let log = read_log(&dir);
            if log.contains("could not bind") || log.contains("Address already in use") {
                break;
            }
            if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                panic!("Postgres did not start within 60 s; its log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        drop(stdin);
        let _ = child.wait();
    }
    panic!(
        "Postgres found no free port in 5 tries; log:\n{}",
        read_log(&dir)
    );
}

fn read_log(dir: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(dir.join("log")) {
        let _ = f.read_to_string(&mut s);
    }
    s
}

/// A fresh, empty database on the process's server; its URL.
pub async fn database() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let port = tokio::task::spawn_blocking(|| server().port).await.unwrap();
    let name = format!(
        "t_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    let (client, conn) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} user=postgres dbname=postgres"),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    let driver = tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    drop(client);
    let _ = driver.await;
    format!("postgres://postgres@127.0.0.1:{port}/{name}")
}
