//! Settings for operating Switchyard: who may use the admin console, the metrics listener,
//! the log format, the limit on client connections, port sharing for rolling upgrades and
//! the Unix-domain socket
//! (validated model types; the raw serde shapes are in `types`, the checks in
//! `validate/operations_checks`).

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Names clients use for the admin console's virtual database.
pub const CONSOLE_DATABASES: [&str; 2] = ["switchyard", "pgbouncer"];

/// Top-level keys a reload does not apply (they need a restart).
pub const RESTART_KEYS: [&str; 6] = [
    "listen",
    "listen_unix_dir",
    "worker_threads",
    "metrics_listen",
    "so_reuseport",
    "log_format",
];

/// Clients accepted at once across all databases by default (`max_client_connections`).
pub const DEFAULT_MAX_CLIENT_CONNECTIONS: usize = 10_000;

/// How log lines are written (`log_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The top-level operations settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Operations {
    /// `[[users]]` names that may use every console command (`admin_users`).
    pub admin_users: Vec<String>,
    /// `[[users]]` names that may use the console's SHOW commands (`stats_users`).
    pub stats_users: Vec<String>,
    /// Where `/metrics`, `/healthz` and `/readyz` are served (`metrics_listen`; None: off).
    pub metrics_listen: Option<SocketAddr>,
    pub log_format: LogFormat,
    /// Clients at once across all databases; more are refused with 53300.
    pub max_client_connections: usize,
    /// SO_REUSEPORT on the listener, so a second process can listen beside this one.
    pub so_reuseport: bool,
    /// A directory where clients also connect over a Unix-domain socket,
    /// `.s.PGSQL.<listen port>` (`listen_unix_dir`; None: TCP only).
    pub listen_unix_dir: Option<PathBuf>,
}

/// A database's timeouts for its clients (0: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientTimeouts {
    /// A statement running longer is cancelled on the server; the client gets 57014.
    pub query_timeout_ms: u64,
    /// A client idle inside a transaction longer is disconnected (25P03); the server
    /// connection is rolled back and reused.
    pub idle_transaction_timeout_ms: u64,
    /// A client idle outside a transaction longer is disconnected (57P05).
    pub client_idle_timeout_ms: u64,
}

/// A database's pool limits beyond `pool_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    /// Connections kept open (and warm) per user and usable host.
    pub min_pool_size: usize,
    /// Connections a checkout may open beyond `pool_size` after waiting
    /// `reserve_pool_timeout_ms` with the pool full.
    pub reserve_pool_size: usize,
    pub reserve_pool_timeout_ms: u64,
    /// Connections to one host across all users (0: no cap).
    pub max_db_connections: usize,
}

impl Default for PoolLimits {
    fn default() -> Self {
        PoolLimits {
            min_pool_size: 0,
            reserve_pool_size: 0,
            reserve_pool_timeout_ms: 5000,
            max_db_connections: 0,
        }
    }
}

/// What a user may do on the admin console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleRole {
    /// Every command.
    Admin,
    /// SHOW commands only.
    Stats,
}

impl Operations {
    /// What `user` may do on the console (None: nothing).
    pub fn console_role(&self, user: &str) -> Option<ConsoleRole> {
        if self.admin_users.iter().any(|u| u == user) {
            Some(ConsoleRole::Admin)
        } else if self.stats_users.iter().any(|u| u == user) {
            Some(ConsoleRole::Stats)
        } else {
            None
        }
    }
}
