//! Switchyard's configuration: loading the TOML file, the public `Config`
//! model (see `types`), and the `ConfigError` every problem is reported as
//! (with the line and key path; see `validate`).

mod access;
mod cache;
mod host_addr;
mod locate;
mod operations;
mod types;
mod validate;

pub use validate::cache_table_name;

use std::path::{Path, PathBuf};

pub use access::{
    AuthQuery, ClientTls, ClientTlsMode, HbaAddress, HbaMethod, HbaRule, HbaType, ServerTlsMode,
    DEFAULT_AUTH_QUERY, DEFAULT_AUTH_QUERY_LIFETIME_MS,
};
pub use cache::{CacheConfig, Invalidation};
pub use operations::{
    ClientTimeouts, ConsoleRole, LogFormat, Operations, PoolLimits, CONSOLE_DATABASES,
    DEFAULT_MAX_CLIENT_CONNECTIONS, RESTART_KEYS,
};
pub use types::{
    password_kind, AuthMethod, Config, Database, HostAddr, HostAddrError, LoadBalancing,
    PasswordKind, PoolMode, ReadYourWrites, Routing, User, DEFAULT_CHECKOUT_TIMEOUT_MS,
    DEFAULT_CLIENT_LOGIN_TIMEOUT_MS, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_POOL_SIZE, DEFAULT_SERVER_IDLE_TIMEOUT_MS, DEFAULT_SERVER_LIFETIME_MS,
    DEFAULT_SHUTDOWN_TIMEOUT_MS, DEFAULT_WORKER_THREADS, MAX_DURATION_MS, MAX_IDENTIFIER_LEN,
    MAX_MAX_MESSAGE_SIZE, MAX_POOL_SIZE, MAX_WORKER_THREADS, MIN_MAX_MESSAGE_SIZE,
};

/// Why a configuration could not be loaded. `Display` gives one line,
/// starting with `config line N:` whenever the problem has a place in the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config: cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A problem inside a file named by [`Config::load`].
    #[error("{}: {source}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// The problem, with its line.
        #[source]
        source: Box<ConfigError>,
    },
    /// Malformed TOML, or an error that could not be tied to a key.
    #[error("config line {line}: {message}")]
    Toml {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A key that Switchyard does not know.
    #[error(
        "config line {line}: unknown key `{key}` in {} (expected one of {expected}){hint}",
        table_name(table)
    )]
    UnknownKey {
        /// 1-based line of the key.
        line: usize,
        /// The unknown key.
        key: String,
        /// Path of the table holding it; empty for the top level.
        table: String,
        /// The keys allowed there, comma separated.
        expected: String,
        /// Empty, or "; " and advice.
        hint: String,
    },
    /// A value of the wrong type, out of range, malformed, or duplicated; or
    /// a table missing a required key.
    #[error("config line {line}: {path}: {message}")]
    Invalid {
        /// 1-based line of the value (or of the table, for a missing key).
        line: usize,
        /// Key path, e.g. `databases.app.hosts[1]`.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A problem of the file as a whole (no databases, no `listen`).
    #[error("config: {message}")]
    Global {
        /// What is wrong.
        message: String,
    },
}

fn table_name(path: &str) -> &str {
    if path.is_empty() {
        "the top level"
    } else {
        path
    }
}

impl ConfigError {
    /// The 1-based line of the problem, if it has one.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Toml { line, .. }
            | ConfigError::UnknownKey { line, .. }
            | ConfigError::Invalid { line, .. } => Some(*line),
            ConfigError::InFile { source, .. } => source.line(),
            ConfigError::Read { .. } | ConfigError::Global { .. } => None,
        }
    }

    /// The key path of the problem, if it has one: `databases.app.pool_size`,
    /// or for an unknown key the enclosing table (empty for the top level).
    pub fn key_path(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { path, .. } => Some(path),
            ConfigError::UnknownKey { table, .. } => Some(table),
            ConfigError::InFile { source, .. } => source.key_path(),
            _ => None,
        }
    }
}

impl Config {
    /// Parses and validates a configuration document.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        validate::parse(text)
    }

    /// Reads, parses and validates the file at `path`; every error names it.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Config::from_toml_str(&text).map_err(|source| ConfigError::InFile {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
        config.resolve_paths(path.parent().unwrap_or(Path::new(".")));
        Ok(config)
    }

    /// Makes the file names in the config (certificates, keys) that are relative relative
    /// to `dir`, the directory of the config file, rather than to the working directory.
    pub fn resolve_paths(&mut self, dir: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        if let Some(tls) = &mut self.tls {
            fix(&mut tls.cert);
            fix(&mut tls.key);
            if let Some(ca) = &mut tls.ca {
                fix(ca);
            }
        }
        for db in self.databases.values_mut() {
            if let Some(ca) = &mut db.server_ca {
                fix(ca);
            }
        }
    }

    /// The user called `name`.
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|user| user.name == name)
    }

    /// The database clients know as `name` (the `[databases.<name>]` key).
    pub fn database(&self, name: &str) -> Option<&Database> {
        self.databases.get(name)
    }
}

#[cfg(test)]
mod access_tests;
#[cfg(test)]
mod cache_tests;
#[cfg(test)]
pub(crate) mod tests;
