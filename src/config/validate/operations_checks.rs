//! Checks of the operations settings: console users must be `[[users]]` entries, and the
//! metrics address must parse.

use super::super::operations::{LogFormat, Operations, DEFAULT_MAX_CLIENT_CONNECTIONS};
use super::super::types::{RawConfig, User};
use super::super::ConfigError;
use super::Checker;
use toml::Spanned;

/// The raw operations keys, taken out of the whole document before the rest is checked.
pub(in super::super) struct RawOperations {
    pub admin_users: Option<Spanned<Vec<Spanned<String>>>>,
    pub stats_users: Option<Spanned<Vec<Spanned<String>>>>,
    pub metrics_listen: Option<Spanned<String>>,
    pub log_format: Option<Spanned<LogFormat>>,
    pub max_client_connections: Option<Spanned<u64>>,
    pub so_reuseport: Option<Spanned<bool>>,
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
        })
    }
}
