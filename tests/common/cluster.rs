//! Throw-away PostgreSQL 15 clusters (one primary plus streaming replicas) for
//! integration tests. Std only, synchronous (drives the server binaries via
//! `std::process`), so it can be used from plain and tokio tests alike.
//!
//! * Every cluster lives in its own temp root `switchyard-test-<pid>-<rand>`.
//! * When the effective uid is 0, every server binary runs as the `postgres`
//!   OS user through `runuser` (Postgres refuses to run as root).
//! * Ports are random in 20000..32000 and checked with a loopback bind.
//! * Cleanup: `Drop` stops all nodes immediately and removes the root. Because
//!   statics are never dropped and test binaries may be killed, a detached
//!   reaper shell (own process group, all stdio on /dev/null) waits for the
//!   test process to exit and then stops every node and removes the root.
//!
//! Roles: `postgres` (superuser, unix socket, trust), `app`/`app_pw`
//! (superuser, SCRAM), `md5user`/`md5_pw` (md5), `trustuser` (trust on
//! 127.0.0.1). Database `app` is owned by `app`.

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Default location of the PostgreSQL 15 server binaries; overridden by the
/// environment variable `SWITCHYARD_PG_BIN`.
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// Password of the `app` role (SCRAM-SHA-256).
pub const APP_USER: &str = "app";
pub const APP_PASSWORD: &str = "app_pw";
pub const APP_DB: &str = "app";
/// md5-authenticated role.
pub const MD5_USER: &str = "md5user";
pub const MD5_PASSWORD: &str = "md5_pw";
/// trust-authenticated role (on 127.0.0.1).
pub const TRUST_USER: &str = "trustuser";

const STREAM_TIMEOUT: Duration = Duration::from_secs(30);
const CATCHUP_TIMEOUT: Duration = Duration::from_secs(30);

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

// ---------------------------------------------------------------------------
// small helpers

/// Directory holding the server binaries (`SWITCHYARD_PG_BIN` or [`PG_BIN`]).
pub fn pg_bin() -> PathBuf {
    match std::env::var_os("SWITCHYARD_PG_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(PG_BIN),
    }
}

fn is_root() -> bool {
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

fn runuser_path() -> &'static str {
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

fn rand_u64() -> u64 {
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
pub fn pick_port() -> u16 {
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
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Quote for postgresql.conf.
fn conf_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn scrub_env(cmd: &mut Command) {
    for v in SCRUB_ENV {
        cmd.env_remove(v);
    }
}

/// Command for a server binary; via `runuser -u postgres --` when root.
fn server_cmd(bin: &str, cwd: &Path) -> Command {
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

fn run(cmd: &mut Command, what: &str) -> Output {
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

fn chown_postgres(path: &Path) {
    if is_root() {
        run(
            Command::new("chown").arg("postgres:").arg(path),
            "chown to postgres",
        );
    }
}

fn append(path: &Path, text: &str) {
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("cluster: open {}: {e}", path.display()));
    f.write_all(text.as_bytes())
        .unwrap_or_else(|e| panic!("cluster: write {}: {e}", path.display()));
}

fn tail(path: &Path, lines: usize) -> String {
    match fs::read_to_string(path) {
        Ok(s) => {
            let v: Vec<&str> = s.lines().collect();
            v[v.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("<no log at {}: {e}>", path.display()),
    }
}

/// Temp base; when root it must be traversable by `postgres`, else use /tmp.
fn temp_base() -> PathBuf {
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

fn log(msg: &str) {
    eprintln!("[cluster {}] {msg}", std::process::id());
}

// ---------------------------------------------------------------------------
// PgNode

/// One PostgreSQL server (primary or replica).
pub struct PgNode {
    pub name: String,
    pub port: u16,
    pub data_dir: PathBuf,
    /// Holds the data dir, the log file and the unix socket.
    node_dir: PathBuf,
    log_file: PathBuf,
    running: AtomicBool,
}

impl PgNode {
    fn new(root: &Path, name: &str) -> PgNode {
        let node_dir = root.join(name);
        fs::create_dir(&node_dir)
            .unwrap_or_else(|e| panic!("cluster: mkdir {}: {e}", node_dir.display()));
        chown_postgres(&node_dir);
        PgNode {
            name: name.to_string(),
            port: pick_port(),
            data_dir: node_dir.join("data"),
            log_file: node_dir.join("postgres.log"),
            node_dir,
            running: AtomicBool::new(false),
        }
    }

    /// `"127.0.0.1:PORT"`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Directory of the node's unix socket (`.s.PGSQL.<port>`).
    pub fn socket_dir(&self) -> &Path {
        &self.node_dir
    }

    /// Server log file.
    pub fn log_path(&self) -> &Path {
        &self.log_file
    }

    /// Last `lines` lines of the server log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log_file, lines)
    }

    fn pg_ctl(&self) -> Command {
        let mut c = server_cmd("pg_ctl", &self.node_dir);
        c.arg("-D").arg(&self.data_dir);
        c
    }

    fn try_start(&self) -> Result<(), String> {
        let out = self
            .pg_ctl()
            .arg("-l")
            .arg(&self.log_file)
            .args(["-w", "-t", "60", "start"])
            .output()
            .map_err(|e| format!("spawn pg_ctl: {e}"))?;
        if out.status.success() {
            self.running.store(true, Ordering::SeqCst);
            Ok(())
        } else {
            Err(format!(
                "pg_ctl start of {} (port {}) failed ({}):\n{}{}\n--- log tail ({}) ---\n{}",
                self.name,
                self.port,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.log_file.display(),
                self.log_tail(30)
            ))
        }
    }

    /// Start the first time; if the port was grabbed in the meantime (another
    /// test binary), move to a fresh port and retry.
    fn first_start(&mut self) {
        let mut attempt = 0;
        loop {
            match self.try_start() {
                Ok(()) => return,
                Err(e) if attempt < 5 && e.contains("Address already in use") => {
                    attempt += 1;
                    self.port = pick_port();
                    log(&format!(
                        "{}: port taken, retrying on {}",
                        self.name, self.port
                    ));
                    append(
                        &self.data_dir.join("postgresql.auto.conf"),
                        &format!("port = {}\n", self.port),
                    );
                }
                Err(e) => panic!("cluster: {e}"),
            }
        }
    }

    /// `pg_ctl start -w`; panics with the log tail on failure.
    pub fn start(&self) {
        if let Err(e) = self.try_start() {
            panic!("cluster: {e}");
        }
    }

    /// `pg_ctl stop -m fast -w`.
    pub fn stop(&self) {
        run(
            self.pg_ctl().args(["-m", "fast", "-w", "stop"]),
            &format!("stop {}", self.name),
        );
        self.running.store(false, Ordering::SeqCst);
    }

    /// `pg_ctl stop -m immediate` (crash-like). Does not panic if the node is
    /// not running.
    pub fn kill(&self) {
        let _ = self
            .pg_ctl()
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        self.running.store(false, Ordering::SeqCst);
    }

    /// `pg_ctl promote -w`.
    pub fn promote(&self) {
        run(
            self.pg_ctl().args(["-w", "promote"]),
            &format!("promote {}", self.name),
        );
    }

    /// Whether this handle last started (and did not stop) the server.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// psql as `app` over TCP to database `app`; trimmed stdout. Panics with
    /// stderr on failure.
    pub fn psql(&self, sql: &str) -> String {
        self.try_psql(sql)
            .unwrap_or_else(|e| panic!("cluster: psql on {} failed: {e}\nSQL: {sql}", self.name))
    }

    /// psql as `app` over TCP to database `app`.
    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        self.psql_as(APP_USER, APP_PASSWORD, sql)
    }

    /// psql over TCP to database `app` as `user` (`password` may be empty).
    pub fn psql_as(&self, user: &str, password: &str, sql: &str) -> Result<String, String> {
        self.psql_db_as(APP_DB, user, password, sql)
    }

    /// psql over TCP to `db` as `user` (`password` may be empty).
    pub fn psql_db_as(
        &self,
        db: &str,
        user: &str,
        password: &str,
        sql: &str,
    ) -> Result<String, String> {
        let mut c = Command::new(pg_bin().join("psql"));
        scrub_env(&mut c);
        c.args([
            "-X",
            "-A",
            "-t",
            "-w",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
        ])
        .arg("-p")
        .arg(self.port.to_string())
        .arg("-U")
        .arg(user)
        .arg("-d")
        .arg(db)
        .arg("-c")
        .arg(sql)
        .env("PGCONNECT_TIMEOUT", "10")
        .env("PGSSLMODE", "disable")
        .stdin(Stdio::null());
        if !password.is_empty() {
            c.env("PGPASSWORD", password);
        }
        let out = c.output().map_err(|e| format!("spawn psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(format!(
                "psql exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// psql as superuser `postgres` through the unix socket (trust).
    pub fn psql_super(&self, db: &str, sql: &str) -> String {
        let mut c = Command::new(pg_bin().join("psql"));
        scrub_env(&mut c);
        c.args([
            "-X",
            "-A",
            "-t",
            "-w",
            "-v",
            "ON_ERROR_STOP=1",
            "-U",
            "postgres",
        ])
        .arg("-h")
        .arg(&self.node_dir)
        .arg("-p")
        .arg(self.port.to_string())
        .arg("-d")
        .arg(db)
        .arg("-c")
        .arg(sql)
        .stdin(Stdio::null());
        let out = run(&mut c, &format!("psql (postgres) on {}: {sql}", self.name));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `SELECT pg_is_in_recovery()`.
    pub fn is_in_recovery(&self) -> bool {
        self.psql("SELECT pg_is_in_recovery()") == "t"
    }
}

// ---------------------------------------------------------------------------
// Temp root + reaper

struct TempRoot {
    path: PathBuf,
    reaper: Mutex<Option<Child>>,
}

impl TempRoot {
    fn create() -> TempRoot {
        let path = temp_base().join(format!(
            "switchyard-test-{}-{:016x}",
            std::process::id(),
            rand_u64()
        ));
        fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cluster: mkdir {}: {e}", path.display()));
        chown_postgres(&path);
        let reaper = spawn_reaper(&path);
        TempRoot {
            path,
            reaper: Mutex::new(reaper),
        }
    }

    /// Immediate stop of anything still running below the root, then rm -rf.
    fn cleanup(&self) {
        let mut children = Vec::new();
        if let Ok(rd) = fs::read_dir(&self.path) {
            for e in rd.flatten() {
                let data = e.path().join("data");
                if data.join("postmaster.pid").exists() {
                    let mut c = server_cmd("pg_ctl", &self.path);
                    c.arg("-D")
                        .arg(&data)
                        .args(["-m", "immediate", "-w", "stop"])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null());
                    if let Ok(ch) = c.spawn() {
                        children.push(ch);
                    }
                }
            }
        }
        for mut ch in children {
            let _ = ch.wait();
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        self.cleanup();
        let mut g = self.reaper.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut ch) = g.take() {
            let _ = ch.kill();
            let _ = ch.wait();
        }
    }
}

/// Detached shell that waits for this process to exit and then stops every
/// node under `root` and removes it. It runs in its own process group (so a
/// group kill of the test does not take it down) with all stdio on /dev/null
/// (so it does not hold the test's output pipes open).
fn spawn_reaper(root: &Path) -> Option<Child> {
    let root_s = root.to_string_lossy().into_owned();
    let pg_ctl = pg_bin().join("pg_ctl").to_string_lossy().into_owned();
    let as_pg = if is_root() {
        format!("{} -u postgres -- ", runuser_path())
    } else {
        String::new()
    };
    let script = format!(
        r#"while kill -0 {pid} 2>/dev/null; do sleep 1; done
for d in {root}/*/data; do
  [ -f "$d/postmaster.pid" ] || continue
  {as_pg}{pg_ctl} stop -m immediate -w -t 30 -D "$d" >/dev/null 2>&1
  if [ -f "$d/postmaster.pid" ]; then
    p=$(head -n 1 "$d/postmaster.pid" 2>/dev/null)
    [ -n "$p" ] && kill -KILL "$p" 2>/dev/null
  fi
done
rm -rf {root}
"#,
        pid = std::process::id(),
        root = sh_quote(&root_s),
        pg_ctl = sh_quote(&pg_ctl),
    );
    let mut c = Command::new("/bin/sh");
    c.arg("-c")
        .arg(script)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    scrub_env(&mut c);
    match c.spawn() {
        Ok(ch) => Some(ch),
        Err(e) => {
            log(&format!("WARNING: could not spawn reaper: {e}"));
            None
        }
    }
}

// ---------------------------------------------------------------------------
// PgCluster

/// A primary with streaming replicas, all in one temp root.
pub struct PgCluster {
    pub primary: PgNode,
    pub replicas: Vec<PgNode>,
    // Declared last: dropped after the nodes were stopped in `Drop`.
    root: TempRoot,
}

impl PgCluster {
    /// Build and start a primary plus `replicas` streaming replicas; returns
    /// once every replica is streaming.
    pub fn start(replicas: usize) -> PgCluster {
        let t0 = Instant::now();
        let root = TempRoot::create();
        log(&format!("creating cluster in {}", root.path.display()));
        let mut primary = PgNode::new(&root.path, "primary");
        // If anything below panics, `root` is dropped and cleans up.
        init_primary(&mut primary, &root.path);
        log(&format!(
            "primary up on {} ({:.1}s)",
            primary.addr(),
            t0.elapsed().as_secs_f64()
        ));
        let mut cluster = PgCluster {
            primary,
            replicas: Vec::new(),
            root,
        };
        for _ in 0..replicas {
            cluster.add_replica();
        }
        log(&format!(
            "cluster ready: primary {} replicas [{}] in {:.1}s",
            cluster.primary.addr(),
            cluster
                .replicas
                .iter()
                .map(|r| r.addr())
                .collect::<Vec<_>>()
                .join(", "),
            t0.elapsed().as_secs_f64()
        ));
        cluster
    }

    /// One cluster with one replica per test binary, started on first use.
    /// Never dropped; the reaper removes it when the test binary exits.
    /// Tests sharing it must not stop/kill/promote its nodes.
    pub fn shared() -> &'static PgCluster {
        static SHARED: OnceLock<PgCluster> = OnceLock::new();
        SHARED.get_or_init(|| PgCluster::start(1))
    }

    /// Temp root holding all node directories.
    pub fn root_dir(&self) -> &Path {
        &self.root.path
    }

    /// Primary followed by the replicas.
    pub fn nodes(&self) -> impl Iterator<Item = &PgNode> {
        std::iter::once(&self.primary).chain(self.replicas.iter())
    }

    /// pg_basebackup a new replica from `self.primary`, start it and wait
    /// until it streams.
    pub fn add_replica(&mut self) -> &PgNode {
        let t0 = Instant::now();
        let name = format!("replica{}", self.replicas.len() + 1);
        let mut node = PgNode::new(&self.root.path, &name);
        run(
            server_cmd("pg_basebackup", &self.root.path)
                .args(["-h", "127.0.0.1", "-p"])
                .arg(self.primary.port.to_string())
                .args(["-U", "postgres", "-D"])
                .arg(&node.data_dir)
                .args(["-c", "fast", "-R", "-X", "stream", "--no-sync"]),
            &format!("pg_basebackup for {name}"),
        );
        append(
            &node.data_dir.join("postgresql.auto.conf"),
            &format!(
                "\n# switchyard test harness\nport = {}\nunix_socket_directories = {}\ncluster_name = {}\n",
                node.port,
                conf_quote(&node.node_dir.to_string_lossy()),
                conf_quote(&name),
            ),
        );
        node.first_start();
        self.replicas.push(node);
        let node = self.replicas.last().unwrap();
        self.wait_streaming_node(node);
        log(&format!(
            "{name} streaming on {} ({:.1}s)",
            node.addr(),
            t0.elapsed().as_secs_f64()
        ));
        node
    }

    fn wait_streaming_node(&self, node: &PgNode) {
        let sql = format!(
            "SELECT count(*) FROM pg_stat_replication WHERE application_name = '{}' AND state = 'streaming'",
            node.name
        );
        let deadline = Instant::now() + STREAM_TIMEOUT;
        loop {
            match self.primary.try_psql(&sql) {
                Ok(s) if s == "1" => return,
                _ => {}
            }
            if Instant::now() > deadline {
                panic!(
                    "cluster: {} not streaming after {:?}; pg_stat_replication: {:?}\n--- {} log ---\n{}\n--- primary log ---\n{}",
                    node.name,
                    STREAM_TIMEOUT,
                    self.primary.try_psql(
                        "SELECT application_name, state FROM pg_stat_replication"
                    ),
                    node.name,
                    node.log_tail(30),
                    self.primary.log_tail(30)
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait until every running replica streams from the primary.
    pub fn wait_streaming(&self) {
        for r in self.replicas.iter().filter(|r| r.is_running()) {
            self.wait_streaming_node(r);
        }
    }

    /// Wait until every running replica still in recovery has replayed the
    /// primary's `pg_current_wal_lsn()` taken now (30 s, then panic).
    pub fn wait_replicas_caught_up(&self) {
        let lsn = self.primary.psql("SELECT pg_current_wal_lsn()");
        let sql = format!(
            "SELECT NOT pg_is_in_recovery() OR coalesce(pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn, false)"
        );
        let deadline = Instant::now() + CATCHUP_TIMEOUT;
        for r in self.replicas.iter().filter(|r| r.is_running()) {
            loop {
                let res = r.try_psql(&sql);
                if matches!(res.as_deref(), Ok("t")) {
                    break;
                }
                if Instant::now() > deadline {
                    panic!(
                        "cluster: {} did not replay up to {lsn} within {:?} (last: {:?}, replay lsn: {:?})\n--- log ---\n{}",
                        r.name,
                        CATCHUP_TIMEOUT,
                        res,
                        r.try_psql("SELECT pg_last_wal_replay_lsn()"),
                        r.log_tail(30)
                    );
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Immediate stop of all nodes in parallel; then `root` removes the dir.
        let mut children = Vec::new();
        for n in self.nodes() {
            if n.data_dir.join("postmaster.pid").exists() {
                if let Ok(ch) = n
                    .pg_ctl()
                    .args(["-m", "immediate", "-w", "stop"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                {
                    children.push(ch);
                }
            }
            n.running.store(false, Ordering::SeqCst);
        }
        for mut ch in children {
            let _ = ch.wait();
        }
    }
}

fn init_primary(node: &mut PgNode, root: &Path) {
    run(
        server_cmd("initdb", root)
            .arg("-D")
            .arg(&node.data_dir)
            .args([
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-U",
                "postgres",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ]),
        "initdb",
    );
    append(
        &node.data_dir.join("postgresql.conf"),
        &format!(
            "\n# switchyard test harness
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = {sock}
cluster_name = 'primary'
max_connections = 300
shared_buffers = 32MB
fsync = off
full_page_writes = off
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = '256MB'
hot_standby = on
hot_standby_feedback = on
logging_collector = off
log_min_messages = warning
password_encryption = 'scram-sha-256'
",
            port = node.port,
            sock = conf_quote(&node.node_dir.to_string_lossy()),
        ),
    );
    // Truncating an existing file keeps its owner (postgres).
    fs::write(
        node.data_dir.join("pg_hba.conf"),
        "# switchyard test harness
local all         all                      trust
host  replication all       127.0.0.1/32   trust
host  all         trustuser 127.0.0.1/32   trust
host  all         md5user   127.0.0.1/32   md5
host  all         all       127.0.0.1/32   scram-sha-256
",
    )
    .unwrap_or_else(|e| panic!("cluster: write pg_hba.conf: {e}"));
    node.first_start();

    // Each -c is sent (and committed) separately; CREATE DATABASE cannot run
    // inside a multi-statement string.
    let mut c = Command::new(pg_bin().join("psql"));
    scrub_env(&mut c);
    c.args(["-X", "-q", "-w", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", "postgres"])
        .arg("-h")
        .arg(&node.node_dir)
        .arg("-p")
        .arg(node.port.to_string())
        .args([
            "-c",
            "SET password_encryption = 'scram-sha-256'; CREATE ROLE app LOGIN SUPERUSER PASSWORD 'app_pw'",
            "-c",
            "SET password_encryption = 'md5'; CREATE ROLE md5user LOGIN PASSWORD 'md5_pw'",
            "-c",
            "CREATE ROLE trustuser LOGIN",
            "-c",
            "CREATE DATABASE app OWNER app",
            "-c",
            "GRANT ALL ON DATABASE app TO md5user, trustuser",
        ])
        .stdin(Stdio::null());
    run(&mut c, "create roles/database");
    node.psql_super("app", "GRANT ALL ON SCHEMA public TO md5user, trustuser");
}
