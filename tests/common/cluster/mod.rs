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

mod node;
mod process;
mod temp_root;

pub use node::PgNode;
pub use process::pg_bin;

use process::{append, conf_quote, log, run, scrub_env, server_cmd};
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};
use temp_root::TempRoot;

/// The `app` role (SCRAM-SHA-256 password), owner of database `app`.
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
wal_level = logical
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
