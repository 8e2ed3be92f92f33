//! How the harness runs programs and touches files: server binaries as the `postgres` OS
//! user when root (Postgres refuses root), the caller's PG* variables scrubbed, random
//! loopback ports, quoting, and small file helpers that panic with the path on failure.

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// Default location of the PostgreSQL 15 server binaries; overridden by the
/// environment variable `SWITCHYARD_PG_BIN`.
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

// PG* variables from the caller's environment that could redirect or alter
// our client/server invocations.
const SCRUB_ENV: &[&str] = &[
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGDATABASE",
    "PGUSER",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGOPTIONS",
    "PGDATA",
    "PGSSLMODE",
    "PGREQUIRESSL",
    "PGTARGETSESSIONATTRS",
    "PGAPPNAME",
    "PGCONNECT_TIMEOUT",
    "PGCLIENTENCODING",
    "PGTZ",
    "PSQLRC",
];

/// Directory holding the server binaries (`SWITCHYARD_PG_BIN` or [`PG_BIN`]).
pub fn pg_bin() -> PathBuf {
    match std::env::var_os("SWITCHYARD_PG_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(PG_BIN),
    }
}

pub(super) fn is_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        // Effective uid is the 2nd field of the "Uid:" line.
        if let Ok(s) = fs::read_to_string("/proc/self/status") {
            for line in s.lines() {
                if let Some(rest) = line.strip_prefix("Uid:") {
                    if let Some(euid) = rest.split_whitespace().nth(1) {
                        return euid == "0";
                    }
                }
            }
        }
        Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false)
    })
}

pub(super) fn runuser_path() -> &'static str {
    for p in [
        "/usr/sbin/runuser",
        "/sbin/runuser",
        "/usr/bin/runuser",
        "/bin/runuser",
    ] {
        if Path::new(p).exists() {
            return p;
        }
    }
    "runuser"
}

pub(super) fn rand_u64() -> u64 {
    static CTR: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(CTR.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// A free loopback port in 20000..32000 not handed out before by this process.
pub(super) fn pick_port() -> u16 {
    static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut used = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..2000 {
        let port = 20000 + (rand_u64() % 12000) as u16;
        if used.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            used.push(port);
            return port;
        }
    }
    panic!("cluster: could not find a free port in 20000..32000");
}

/// Quote for a POSIX shell.
pub(super) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Quote for postgresql.conf.
pub(super) fn conf_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

pub(super) fn scrub_env(cmd: &mut Command) {
    for v in SCRUB_ENV {
        cmd.env_remove(v);
    }
}

/// Command for a server binary; via `runuser -u postgres --` when root.
pub(super) fn server_cmd(bin: &str, cwd: &Path) -> Command {
    let path = pg_bin().join(bin);
    let mut cmd = if is_root() {
        let mut c = Command::new(runuser_path());
        c.arg("-u").arg("postgres").arg("--").arg(path);
        c
    } else {
        Command::new(path)
    };
    cmd.current_dir(cwd).stdin(Stdio::null());
    scrub_env(&mut cmd);
    cmd
}

pub(super) fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cluster: {what}: could not spawn {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "cluster: {what} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

pub(super) fn chown_postgres(path: &Path) {
    if is_root() {
        run(
            Command::new("chown").arg("postgres:").arg(path),
            "chown to postgres",
        );
    }
}

pub(super) fn append(path: &Path, text: &str) {
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("cluster: open {}: {e}", path.display()));
    f.write_all(text.as_bytes())
        .unwrap_or_else(|e| panic!("cluster: write {}: {e}", path.display()));
}

pub(super) fn tail(path: &Path, lines: usize) -> String {
    match fs::read_to_string(path) {
        Ok(s) => {
            let v: Vec<&str> = s.lines().collect();
            v[v.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("<no log at {}: {e}>", path.display()),
    }
}

/// Temp base; when root it must be traversable by `postgres`, else use /tmp.
pub(super) fn temp_base() -> PathBuf {
    let t = std::env::temp_dir();
    if !is_root() {
        return t;
    }
    let traversable = t.ancestors().all(|a| {
        fs::metadata(a)
            .map(|m| m.permissions().mode() & 0o001 != 0)
            .unwrap_or(false)
    });
    if traversable {
        t
    } else {
        PathBuf::from("/tmp")
    }
}

pub(super) fn log(msg: &str) {
    eprintln!("[cluster {}] {msg}", std::process::id());
}
