//! Configuration data types: the validated, public `Config` model handed to the
//! rest of Switchyard, the raw `serde` shapes read straight from TOML (with
//! spans, so validation can point at lines), and every default value.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::access::{
    AuthQuery, ClientTls, ClientTlsMode, HbaMethod, HbaRule, HbaType, ServerTlsMode,
};
use super::cache::{CacheConfig, RawCache};
pub use super::host_addr::{HostAddr, HostAddrError};
use super::operations::{ClientTimeouts, LogFormat, Operations, PoolLimits};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

// ---------------------------------------------------------------------------
// Defaults and limits
// ---------------------------------------------------------------------------

/// Default for `checkout_timeout_ms`.
pub const DEFAULT_CHECKOUT_TIMEOUT_MS: u64 = 5_000;
/// Default for `connect_timeout_ms`.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5_000;
/// Default for `max_message_size` (256 MiB).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 268_435_456;
/// Default for `worker_threads` (0 = half the CPU cores, at least one).
pub const DEFAULT_WORKER_THREADS: usize = 0;
/// Default for `server_idle_timeout_ms` (10 minutes).
pub const DEFAULT_SERVER_IDLE_TIMEOUT_MS: u64 = 600_000;
/// Default for `server_lifetime_ms` (1 hour).
pub const DEFAULT_SERVER_LIFETIME_MS: u64 = 3_600_000;
/// Default for `client_login_timeout_ms`.
pub const DEFAULT_CLIENT_LOGIN_TIMEOUT_MS: u64 = 15_000;
/// Default for `shutdown_timeout_ms`.
pub const DEFAULT_SHUTDOWN_TIMEOUT_MS: u64 = 30_000;
/// Default for `databases.*.pool_size`.
pub const DEFAULT_POOL_SIZE: usize = 20;

/// Largest accepted `databases.*.pool_size`.
pub const MAX_POOL_SIZE: usize = 10_000;
/// Smallest accepted `max_message_size`.
pub const MIN_MAX_MESSAGE_SIZE: usize = 1024;
/// Largest accepted `max_message_size`: the protocol's length field is an Int32.
pub const MAX_MAX_MESSAGE_SIZE: usize = i32::MAX as usize;
/// Largest accepted `worker_threads`.
pub const MAX_WORKER_THREADS: usize = 1024;
/// Largest accepted value of any `*_ms` key (365 days).
pub const MAX_DURATION_MS: u64 = 365 * 24 * 3_600_000;
/// PostgreSQL's identifier limit (NAMEDATALEN - 1), in bytes.
pub const MAX_IDENTIFIER_LEN: usize = 63;

// ---------------------------------------------------------------------------
// Enums
// ---------------------------------------------------------------------------

/// How clients must authenticate to Switchyard (`auth_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
pub enum AuthMethod {
    /// SCRAM-SHA-256 (`"scram-sha-256"`), the default.
    #[default]
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
    /// MD5 challenge-response (`"md5"`).
    #[serde(rename = "md5")]
    Md5,
}

impl AuthMethod {
    /// The spelling used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ScramSha256 => "scram-sha-256",
            AuthMethod::Md5 => "md5",
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When a server connection goes back to the pool (`pool_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolMode {
    /// Held for the whole client session.
    Session,
    /// Released at the end of each transaction (the default).
    #[default]
    Transaction,
    /// Released after each statement; multi-statement transactions are refused.
    Statement,
}

impl PoolMode {
    /// The spelling used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            PoolMode::Session => "session",
            PoolMode::Transaction => "transaction",
            PoolMode::Statement => "statement",
        }
    }
}

impl fmt::Display for PoolMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where queries go (`routing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Routing {
    /// Reads may go to replicas, writes to the primary (the default).
    #[default]
    ReadWrite,
    /// Everything goes to the primary.
    PrimaryOnly,
}

impl Routing {
    /// The spelling used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Routing::ReadWrite => "read_write",
            Routing::PrimaryOnly => "primary_only",
        }
    }
}

impl fmt::Display for Routing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of secret a [`User::password`] holds (same rules as PostgreSQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PasswordKind {
    /// A cleartext password.
    Plaintext,
    /// `"md5"` followed by 32 hex digits: md5(password || username).
    Md5,
    /// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
    ScramSha256,
}

// ---------------------------------------------------------------------------
// The validated model
// ---------------------------------------------------------------------------

/// The whole, validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Client listener address (`listen`).
    pub listen: SocketAddr,
    /// How clients authenticate to Switchyard (`auth_method`).
    pub auth_method: AuthMethod,
    /// `[tls]`: TLS toward clients (None: SSLRequest is answered `N`).
    pub tls: Option<ClientTls>,
    /// `[[users]]`, in file order; names are unique.
    pub users: Vec<User>,
    /// `[[hba]]` rules in file order; empty: every address may log in with `auth_method`.
    pub hba: Vec<HbaRule>,
    /// `[auth_query]`: look up users not in `[[users]]` (None: only listed users log in).
    pub auth_query: Option<AuthQuery>,
    /// `[databases.<name>]`, keyed by the table name (what clients connect to).
    pub databases: BTreeMap<String, Database>,
    /// How long a client waits for a pooled server connection (`checkout_timeout_ms`).
    pub checkout_timeout_ms: u64,
    /// Server connect + login limit (`connect_timeout_ms`).
    pub connect_timeout_ms: u64,
    /// Largest frame accepted from a client, in bytes (`max_message_size`).
    pub max_message_size: usize,
    /// Runtime worker threads; 0 = one per core (`worker_threads`).
    pub worker_threads: usize,
    /// Close pooled connections idle longer than this; 0 = never (`server_idle_timeout_ms`).
    pub server_idle_timeout_ms: u64,
    /// Close server connections older than this; 0 = never (`server_lifetime_ms`).
    pub server_lifetime_ms: u64,
    /// Limit for a client to finish startup + authentication (`client_login_timeout_ms`).
    pub client_login_timeout_ms: u64,
    /// Grace period for clients on shutdown (`shutdown_timeout_ms`).
    pub shutdown_timeout_ms: u64,
    /// Statements each server connection keeps prepared (LRU beyond that).
    pub prepared_statements_per_connection: usize,
    /// Distinct statements remembered across clients (unused ones are forgotten beyond this).
    pub max_prepared_statements: usize,
    /// Console users, metrics, logs, client limit, port sharing (top-level keys).
    pub operations: Operations,
    /// Whether a password is written in the file itself rather than as `"${NAME}"` (then
    /// the file is a secret, and should not be readable by other users).
    pub secrets_in_file: bool,
}

impl Config {
    /// `checkout_timeout_ms` as a `Duration`.
    pub fn checkout_timeout(&self) -> Duration {
        Duration::from_millis(self.checkout_timeout_ms)
    }

    /// `connect_timeout_ms` as a `Duration`.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// `client_login_timeout_ms` as a `Duration`.
    pub fn client_login_timeout(&self) -> Duration {
        Duration::from_millis(self.client_login_timeout_ms)
    }

    /// `shutdown_timeout_ms` as a `Duration` (may be zero: close at once).
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }

    /// `server_idle_timeout_ms` as a `Duration`; zero means never.
    pub fn server_idle_timeout(&self) -> Duration {
        Duration::from_millis(self.server_idle_timeout_ms)
    }

    /// `server_lifetime_ms` as a `Duration`; zero means never.
    pub fn server_lifetime(&self) -> Duration {
        Duration::from_millis(self.server_lifetime_ms)
    }

    /// `worker_threads` with 0 resolved to half the available cores (at least one): a pooler
    /// usually shares its machine with PostgreSQL or the application, and measured on two
    /// cores one thread did more transactions per CPU second than two.
    pub fn worker_thread_count(&self) -> usize {
        if self.worker_threads > 0 {
            self.worker_threads
        } else {
            std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
        }
    }
}

/// One `[[users]]` entry.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// Login name, 1..=63 bytes.
    pub name: String,
    /// Plaintext, an md5 hash (`md5...`) or a SCRAM-SHA-256 verifier.
    pub password: String,
}

impl User {
    /// Which kind of secret `password` is.
    pub fn password_kind(&self) -> PasswordKind {
        password_kind(&self.password)
    }
}

/// Never prints the password.
impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Classifies a password string as `auth::UserSecret::parse` does: an md5
/// hash is `md5` plus exactly 32 hex digits, a SCRAM verifier starts with
/// `SCRAM-SHA-256$` (its shape is checked by validation), anything else is
/// plaintext.
pub fn password_kind(password: &str) -> PasswordKind {
    if password.starts_with("SCRAM-SHA-256$") {
        PasswordKind::ScramSha256
    } else if password
        .strip_prefix("md5")
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        PasswordKind::Md5
    } else {
        PasswordKind::Plaintext
    }
}

/// One `[databases.<name>]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Database {
    /// The table key: the database name clients ask for.
    pub name: String,
    /// Server addresses; roles (primary/replica) are discovered at run time.
    pub hosts: Vec<HostAddr>,
    /// Database name on the servers (defaults to `name`).
    pub dbname: String,
    /// When server connections return to the pool.
    pub pool_mode: PoolMode,
    /// Server connections per (database, user, host), 1..=10000.
    pub pool_size: usize,
    /// Read/write splitting or primary only.
    pub routing: Routing,
    /// Functions with side effects besides the built-in list: a SELECT calling one goes to
    /// the primary. Lower case.
    pub write_functions: Vec<String>,
    /// Functions declared safe for replicas (removed from the write list). Lower case.
    pub read_only_functions: Vec<String>,
    /// How a client's reads after its own writes avoid stale replicas.
    pub read_your_writes: ReadYourWrites,
    /// With `read_your_writes = "window"`: reads stay on the primary this long after a write.
    pub read_your_writes_window_ms: u64,
    /// How a replica is picked for a read.
    pub load_balancing: LoadBalancing,
    /// Include the primary in the set of servers for reads.
    pub primary_reads: bool,
    /// How often each host's role and WAL position are checked.
    pub health_check_interval_ms: u64,
    /// The user whose credentials the health checks log in with (default: the first user).
    pub health_check_user: Option<String>,
    /// How long a host that failed a check or a connection gets no reads.
    pub ban_time_ms: u64,
    /// A replica further behind the primary than this many bytes gets no reads (0: no limit).
    pub max_replica_lag_bytes: u64,
    /// A replica whose replay is this far behind in time gets no reads (0: no limit).
    pub max_replica_lag_ms: u64,
    /// How long a write waits for a primary to appear before it fails.
    pub primary_wait_timeout_ms: u64,
    /// `query_timeout_ms`, `idle_transaction_timeout_ms`, `client_idle_timeout_ms`.
    pub timeouts: ClientTimeouts,
    /// `min_pool_size`, `reserve_pool_size`, `reserve_pool_timeout_ms`, `max_db_connections`.
    pub pool_limits: PoolLimits,
    /// TLS toward this database's servers.
    pub server_tls: ServerTlsMode,
    /// PEM CA certificates for `verify-ca` / `verify-full`.
    pub server_ca: Option<PathBuf>,
    /// `[databases.<name>.cache]`.
    pub cache: CacheConfig,
}

/// How reads after a client's own write avoid stale replicas (`read_your_writes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadYourWrites {
    /// A replica serves the client's reads only once it has replayed the client's last
    /// commit (the primary's WAL position read right after it).
    #[default]
    Lsn,
    /// The client's reads go to the primary for `read_your_writes_window_ms` after a write.
    Window,
    /// No tracking: reads may see a replica that has not replayed the client's write yet.
    Off,
}

/// How a replica is chosen for a read (`load_balancing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadBalancing {
    /// The replica with the fewest connections in use.
    #[default]
    LeastConnections,
    RoundRobin,
    Random,
}

// ---------------------------------------------------------------------------
// Raw serde shapes (what the TOML says, with spans, before validation)
// ---------------------------------------------------------------------------

/// The top level of the file, as read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a TOML document")]
pub(super) struct RawConfig {
    pub listen: Option<Spanned<String>>,
    pub auth_method: Option<Spanned<AuthMethod>>,
    pub checkout_timeout_ms: Option<Spanned<u64>>,
    pub connect_timeout_ms: Option<Spanned<u64>>,
    pub max_message_size: Option<Spanned<u64>>,
    pub worker_threads: Option<Spanned<u64>>,
    pub server_idle_timeout_ms: Option<Spanned<u64>>,
    pub server_lifetime_ms: Option<Spanned<u64>>,
    pub client_login_timeout_ms: Option<Spanned<u64>>,
    pub shutdown_timeout_ms: Option<Spanned<u64>>,
    pub prepared_statements_per_connection: Option<Spanned<u64>>,
    pub max_prepared_statements: Option<Spanned<u64>>,
    pub admin_users: Option<Spanned<Vec<Spanned<String>>>>,
    pub stats_users: Option<Spanned<Vec<Spanned<String>>>>,
    pub metrics_listen: Option<Spanned<String>>,
    pub log_format: Option<Spanned<LogFormat>>,
    pub max_client_connections: Option<Spanned<u64>>,
    pub so_reuseport: Option<Spanned<bool>>,
    pub listen_unix_dir: Option<Spanned<String>>,
    pub tls: Option<Spanned<RawTls>>,
    #[serde(default)]
    pub users: Vec<Spanned<RawUser>>,
    #[serde(default)]
    pub hba: Vec<Spanned<RawHba>>,
    pub auth_query: Option<Spanned<RawAuthQuery>>,
    pub databases: Option<BTreeMap<Spanned<String>, RawDatabase>>,
}

/// The `[tls]` table, as read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [tls] table")]
pub(super) struct RawTls {
    pub cert: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
    pub ca: Option<Spanned<String>>,
    pub mode: Option<Spanned<ClientTlsMode>>,
}

/// One `[[hba]]` table, as read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [[hba]] table")]
pub(super) struct RawHba {
    #[serde(rename = "type")]
    pub kind: Option<Spanned<HbaType>>,
    pub database: Option<Spanned<String>>,
    pub user: Option<Spanned<String>>,
    pub address: Option<Spanned<String>>,
    pub method: Option<Spanned<HbaMethod>>,
}

/// The `[auth_query]` table, as read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [auth_query] table")]
pub(super) struct RawAuthQuery {
    pub user: Option<Spanned<String>>,
    pub password: Option<Spanned<String>>,
    pub query: Option<Spanned<String>>,
    pub cache_lifetime_ms: Option<Spanned<u64>>,
}

/// One `[[users]]` table, as read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[users]] table")]
pub(super) struct RawUser {
    pub name: Option<Spanned<String>>,
    pub password: Option<Spanned<String>>,
}

/// One `[databases.<name>]` table, as read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [databases.<name>] table")]
pub(super) struct RawDatabase {
    pub hosts: Option<Spanned<Vec<Spanned<String>>>>,
    pub dbname: Option<Spanned<String>>,
    pub pool_mode: Option<Spanned<PoolMode>>,
    pub pool_size: Option<Spanned<u64>>,
    pub routing: Option<Spanned<Routing>>,
    pub write_functions: Option<Spanned<Vec<Spanned<String>>>>,
    pub read_only_functions: Option<Spanned<Vec<Spanned<String>>>>,
    pub read_your_writes: Option<Spanned<ReadYourWrites>>,
    pub read_your_writes_window_ms: Option<Spanned<u64>>,
    pub load_balancing: Option<Spanned<LoadBalancing>>,
    pub primary_reads: Option<Spanned<bool>>,
    pub health_check_interval_ms: Option<Spanned<u64>>,
    pub health_check_user: Option<Spanned<String>>,
    pub ban_time_ms: Option<Spanned<u64>>,
    pub max_replica_lag_bytes: Option<Spanned<u64>>,
    pub max_replica_lag_ms: Option<Spanned<u64>>,
    pub primary_wait_timeout_ms: Option<Spanned<u64>>,
    pub query_timeout_ms: Option<Spanned<u64>>,
    pub idle_transaction_timeout_ms: Option<Spanned<u64>>,
    pub client_idle_timeout_ms: Option<Spanned<u64>>,
    pub min_pool_size: Option<Spanned<u64>>,
    pub reserve_pool_size: Option<Spanned<u64>>,
    pub reserve_pool_timeout_ms: Option<Spanned<u64>>,
    pub max_db_connections: Option<Spanned<u64>>,
    pub server_tls: Option<Spanned<ServerTlsMode>>,
    pub server_ca: Option<Spanned<String>>,
    pub cache: Option<Spanned<RawCache>>,
}
