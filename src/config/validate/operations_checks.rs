//! Checks of the operations settings: console users must be `[[users]]` entries, the
//! metrics address must parse, the socket directory must fit a socket path; and a
//! database's client timeouts and pool limits.

use super::super::host_addr::{socket_dir_fits, MAX_SOCKET_DIR};
use super::super::operations::{
    ClientTimeouts, LogFormat, Operations, PoolLimits, DEFAULT_MAX_CLIENT_CONNECTIONS,
};
use super::super::types::{Database, RawConfig, RawDatabase, User, MAX_DURATION_MS, MAX_POOL_SIZE};
use super::super::ConfigError;
use super::Checker;
use std::ops::Range;
use std::path::PathBuf;
use toml::Spanned;

/// The raw operations keys, taken out of the whole document before the rest is checked.
pub(in super::super) struct RawOperations {
    pub admin_users: Option<Spanned<Vec<Spanned<String>>>>,
    pub stats_users: Option<Spanned<Vec<Spanned<String>>>>,
    pub metrics_listen: Option<Spanned<String>>,
    pub log_format: Option<Spanned<LogFormat>>,
    pub max_client_connections: Option<Spanned<u64>>,
    pub so_reuseport: Option<Spanned<bool>>,
    pub listen_unix_dir: Option<Spanned<String>>,
}

impl RawOperations {
    pub(in super::super) fn take(raw: &mut RawConfig) -> RawOperations {
        RawOperations {
            admin_users: raw.admin_users.take(),
            stats_users: raw.stats_users.take(),
            metrics_listen: raw.metrics_listen.take(),
            log_format: raw.log_format.take(),
            max_client_connections: raw.max_client_connections.take(),
            so_reuseport: raw.so_reuseport.take(),
            listen_unix_dir: raw.listen_unix_dir.take(),
        }
    }
}

impl Checker<'_> {
    pub(super) fn operations(
        &self,
        raw: RawOperations,
        users: &[User],
    ) -> Result<Operations, ConfigError> {
        let names = |list: Option<Spanned<Vec<Spanned<String>>>>, key: &str| {
            let list = list.map(Spanned::into_inner).unwrap_or_default();
            list.into_iter()
                .enumerate()
                .map(|(i, name)| {
                    if users.iter().any(|u| u.name == *name.get_ref()) {
                        Ok(name.into_inner())
                    } else {
                        Err(self.invalid(
                            &name.span(),
                            &format!("{key}[{i}]"),
                            format!("no [[users]] entry named {:?}", name.get_ref()),
                        ))
                    }
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let metrics_listen = match raw.metrics_listen {
            Some(addr) => Some(addr.get_ref().parse().map_err(|_| {
                self.invalid(
                    &addr.span(),
                    "metrics_listen",
                    format!("{:?} is not an IP:port address", addr.get_ref()),
                )
            })?),
            None => None,
        };
        Ok(Operations {
            admin_users: names(raw.admin_users, "admin_users")?,
            stats_users: names(raw.stats_users, "stats_users")?,
            metrics_listen,
            log_format: raw.log_format.map(Spanned::into_inner).unwrap_or_default(),
            max_client_connections: self.size(
                raw.max_client_connections,
                "max_client_connections",
                DEFAULT_MAX_CLIENT_CONNECTIONS,
                1,
                10_000_000,
                "",
            )?,
            so_reuseport: raw.so_reuseport.is_some_and(|v| v.into_inner()),
            listen_unix_dir: raw
                .listen_unix_dir
                .map(|d| self.socket_dir(d, "listen_unix_dir"))
                .transpose()?,
        })
    }

    /// A directory for a Unix-domain socket: not empty, and short enough that
    /// `DIR/.s.PGSQL.65535` fits a socket address (107 bytes on Linux).
    pub(super) fn socket_dir(
        &self,
        dir: Spanned<String>,
        key: &str,
    ) -> Result<PathBuf, ConfigError> {
        let path = dir.get_ref();
        let why = if path.is_empty() {
            "the directory must not be empty".to_string()
        } else if !socket_dir_fits(path) {
            format!("{path:?} is too long for a socket path (at most {MAX_SOCKET_DIR} bytes)")
        } else {
            return Ok(PathBuf::from(path));
        };
        Err(self.invalid(&dir.span(), key, why))
    }

    /// A database's client timeouts and pool limits (taken out of `raw`).
    pub(super) fn database_limits(
        &self,
        path: &str,
        raw: &mut RawDatabase,
    ) -> Result<(ClientTimeouts, PoolLimits), ConfigError> {
        let timeouts = self.client_timeouts(
            path,
            [
                raw.query_timeout_ms.take(),
                raw.idle_transaction_timeout_ms.take(),
                raw.client_idle_timeout_ms.take(),
            ],
        )?;
        let limits = self.pool_limits(
            path,
            [
                raw.min_pool_size.take(),
                raw.reserve_pool_size.take(),
                raw.max_db_connections.take(),
            ],
            raw.reserve_pool_timeout_ms.take(),
        )?;
        Ok((timeouts, limits))
    }

    /// `min_pool_size`, `reserve_pool_size` and `max_db_connections` (0 to `MAX_POOL_SIZE`),
    /// and `reserve_pool_timeout_ms` (default 5000).
    fn pool_limits(
        &self,
        path: &str,
        [min, reserve, max_db]: [Option<Spanned<u64>>; 3],
        after: Option<Spanned<u64>>,
    ) -> Result<PoolLimits, ConfigError> {
        let count = |v, key: &str| self.size(v, &format!("{path}.{key}"), 0, 0, MAX_POOL_SIZE, "");
        Ok(PoolLimits {
            min_pool_size: count(min, "min_pool_size")?,
            reserve_pool_size: count(reserve, "reserve_pool_size")?,
            max_db_connections: count(max_db, "max_db_connections")?,
            reserve_pool_timeout_ms: self.int(
                after,
                &format!("{path}.reserve_pool_timeout_ms"),
                PoolLimits::default().reserve_pool_timeout_ms,
                0,
                MAX_DURATION_MS,
                "",
            )?,
        })
    }

    /// `min_pool_size` cannot exceed `pool_size`.
    pub(super) fn min_within_size(
        &self,
        db: Database,
        path: &str,
        span: Range<usize>,
    ) -> Result<Database, ConfigError> {
        if db.pool_limits.min_pool_size > db.pool_size {
            let why = format!(
                "{} is more than pool_size ({})",
                db.pool_limits.min_pool_size, db.pool_size
            );
            return Err(self.invalid(&span, &format!("{path}.min_pool_size"), why));
        }
        Ok(db)
    }

    /// `max_replica_lag_bytes`: 16 MiB by default, 0 for no limit.
    pub(super) fn lag_bytes(
        &self,
        v: Option<Spanned<u64>>,
        path: &str,
    ) -> Result<u64, ConfigError> {
        self.int(v, path, 16 * 1024 * 1024, 0, u64::MAX, "")
    }

    /// `query_timeout_ms`, `idle_transaction_timeout_ms`, `client_idle_timeout_ms` (in that
    /// order): 0 (the default) is none.
    fn client_timeouts(
        &self,
        path: &str,
        raw: [Option<Spanned<u64>>; 3],
    ) -> Result<ClientTimeouts, ConfigError> {
        let keys = [
            "query_timeout_ms",
            "idle_transaction_timeout_ms",
            "client_idle_timeout_ms",
        ];
        let mut ms = [0; 3];
        for ((value, key), out) in raw.into_iter().zip(keys).zip(&mut ms) {
            *out = self.int(value, &format!("{path}.{key}"), 0, 0, MAX_DURATION_MS, "")?;
        }
        Ok(ClientTimeouts {
            query_timeout_ms: ms[0],
            idle_transaction_timeout_ms: ms[1],
            client_idle_timeout_ms: ms[2],
        })
    }
}
