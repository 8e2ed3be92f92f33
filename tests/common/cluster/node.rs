//! One PostgreSQL server of a test cluster (primary or replica): its directories and port,
//! `pg_ctl` start/stop/kill/promote, and psql as `app` over TCP or as `postgres` over the
//! unix socket.

use super::process::{
    append, chown_postgres, conf_quote, log, pg_bin, pick_port, run, scrub_env, server_cmd, tail,
};
use super::{APP_DB, APP_PASSWORD, APP_USER};
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

/// One PostgreSQL server (primary or replica).
pub struct PgNode {
    pub name: String,
    pub port: u16,
    pub data_dir: PathBuf,
    /// Holds the data dir, the log file and the unix socket.
    pub(super) node_dir: PathBuf,
    pub(super) log_file: PathBuf,
    pub(super) running: AtomicBool,
}

impl PgNode {
    pub(super) fn new(root: &Path, name: &str) -> PgNode {
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

    pub(super) fn pg_ctl(&self) -> Command {
        let mut c = server_cmd("pg_ctl", &self.node_dir);
        c.arg("-D").arg(&self.data_dir);
        c
    }

    pub(super) fn try_start(&self) -> Result<(), String> {
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
    pub(super) fn first_start(&mut self) {
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

    /// psql to `db` on this node's port at `host` (an address or the socket directory) as
    /// `user`, running `sql`: unaligned, tuples only, stops at the first error.
    fn psql_cmd(&self, host: &OsStr, user: &str, db: &str, sql: &str) -> Command {
        let mut c = Command::new(pg_bin().join("psql"));
        scrub_env(&mut c);
        c.args(["-X", "-A", "-t", "-w", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(host)
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", user, "-d", db, "-c", sql])
            .stdin(Stdio::null());
        c
    }

    /// psql over TCP to `db` as `user` (`password` may be empty).
    pub fn psql_db_as(
        &self,
        db: &str,
        user: &str,
        password: &str,
        sql: &str,
    ) -> Result<String, String> {
        let mut c = self.psql_cmd("127.0.0.1".as_ref(), user, db, sql);
        c.env("PGCONNECT_TIMEOUT", "10").env("PGSSLMODE", "disable");
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

    /// Turns TLS on (`ssl = on`, reloaded, no restart) with this certificate chain and key
    /// (PEM); the files go into the node's directory, owned by the server's user.
    pub fn enable_ssl(&self, cert_pem: &str, key_pem: &str) {
        use std::os::unix::fs::PermissionsExt;
        let cert = self.node_dir.join("server.crt");
        let key = self.node_dir.join("server.key");
        for (path, text) in [(&cert, cert_pem), (&key, key_pem)] {
            fs::write(path, text)
                .unwrap_or_else(|e| panic!("cluster: write {}: {e}", path.display()));
            fs::set_permissions(path, fs::Permissions::from_mode(0o600))
                .unwrap_or_else(|e| panic!("cluster: chmod {}: {e}", path.display()));
            chown_postgres(path);
        }
        let set = |k: &str, v: &str| {
            self.psql_super(
                "postgres",
                &format!("ALTER SYSTEM SET {k} = {}", conf_quote(v)),
            );
        };
        set("ssl_cert_file", &cert.display().to_string());
        set("ssl_key_file", &key.display().to_string());
        set("ssl", "on");
        self.psql_super("postgres", "SELECT pg_reload_conf()");
        // The reload is asynchronous: wait until new connections see it.
        for _ in 0..100 {
            if self.psql_super("postgres", "SHOW ssl") == "on" {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("cluster: ssl did not turn on for {}", self.name);
    }

    /// psql as superuser `postgres` through the unix socket (trust).
    pub fn psql_super(&self, db: &str, sql: &str) -> String {
        let mut c = self.psql_cmd(self.node_dir.as_os_str(), "postgres", db, sql);
        let out = run(&mut c, &format!("psql (postgres) on {}: {sql}", self.name));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `SELECT pg_is_in_recovery()`.
    pub fn is_in_recovery(&self) -> bool {
        self.psql("SELECT pg_is_in_recovery()") == "t"
    }
}
