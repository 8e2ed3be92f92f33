//! Building a generation of what the sessions share from a validated config: the users'
//! secrets, TLS toward clients, and a cluster per database. On a reload, a database whose
//! settings did not change keeps its cluster (pools, topology, counters); one that changed
//! gets a new cluster that carries its counters over.

use crate::auth::{FetchedUsers, ServerSecret, UserSecret, Users};
use crate::backend::pool::PoolSettings;
use crate::config::{Config, PoolMode};
use crate::frontend::shared::Generation;
use crate::frontend::Shared;
use crate::net::{ClientTlsConfig, ServerTlsConfig};
use crate::topology::Cluster;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

fn non_zero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

/// The users' secrets (and the auth_query lookup's, if configured).
fn users(config: &Config) -> Result<(Users, Option<ServerSecret>), String> {
    let mut users = Users::parse(
        config
            .users
            .iter()
            .map(|u| (u.name.as_str(), u.password.as_str())),
    )?;
    let auth_query_login = match &config.auth_query {
        Some(a) => {
            users.fetched = Some(FetchedUsers::new(Duration::from_millis(
                a.cache_lifetime_ms,
            )));
            let secret = UserSecret::parse(&a.user, &a.password)
                .map_err(|e| format!("auth_query.password: {e}"))?;
            Some(ServerSecret::from_user_secret(&secret))
        }
        None => None,
    };
    Ok((users, auth_query_login))
}

/// Builds a generation from `config`; `previous` lends the clusters of unchanged databases
/// and the counters of changed ones. Fails (building nothing) on settings it cannot serve.
pub fn build(config: Config, previous: Option<&Shared>) -> Result<Generation, String> {
    let (users, auth_query_login) = users(&config)?;
    let settings = PoolSettings {
        checkout_timeout: config.checkout_timeout(),
        connect_timeout: config.connect_timeout(),
        lifetime: non_zero(config.server_lifetime()),
        idle_timeout: non_zero(config.server_idle_timeout()),
        statements_per_connection: config.prepared_statements_per_connection,
    };
    let mut clusters = HashMap::new();
    for (name, db) in &config.databases {
        if let Some(u) = &db.health_check_user {
            if !users.contains(u) {
                return Err(format!(
                    "databases.{name}.health_check_user: no [[users]] entry named \"{u}\""
                ));
            }
        }
        if db.pool_mode == PoolMode::Statement {
            return Err(format!(
                "databases.{name}.pool_mode: \"statement\" is not implemented yet; use \"transaction\" or \"session\""
            ));
        }
        let old = previous.and_then(|p| p.cluster(name));
        let same = old.as_ref().is_some_and(|c| c.db == *db)
            && previous.is_some_and(|p| pool_settings_equal(&p.config, &config));
        let cluster = match old {
            Some(c) if same => c,
            old => {
                let server_tls = ServerTlsConfig::load(
                    db.server_tls,
                    db.server_ca.as_deref(),
                    &format!("databases.{name}"),
                )?;
                let stats = old.map(|c| c.stats.clone());
                Arc::new(Cluster::new(
                    db.clone(),
                    settings,
                    Arc::new(server_tls),
                    stats,
                ))
            }
        };
        clusters.insert(name.clone(), cluster);
    }
    let tls = config.tls.as_ref().map(ClientTlsConfig::load).transpose()?;
    Ok(Generation {
        config,
        tls,
        users,
        clusters,
        auth_query_login,
    })
}

/// The top-level settings every pool is built with.
fn pool_settings_equal(a: &Config, b: &Config) -> bool {
    a.checkout_timeout_ms == b.checkout_timeout_ms
        && a.connect_timeout_ms == b.connect_timeout_ms
        && a.server_lifetime_ms == b.server_lifetime_ms
        && a.server_idle_timeout_ms == b.server_idle_timeout_ms
        && a.prepared_statements_per_connection == b.prepared_statements_per_connection
}
