//! The top of the stack: builds what the client sessions share (users, clusters with their
//! pools, registries) from a config, owns the shutdown signal and starts the background
//! tasks; `server` accepts clients and drains them. Nothing is process-global, so two Apps
//! can run in one process.

mod http;
mod metrics;
mod server;

pub use server::Server;

use crate::auth::{FetchedUsers, ServerSecret, UserSecret, Users};
use crate::backend::pool::PoolSettings;
use crate::config::{Config, PoolMode};
use crate::frontend::admin::STATS_PERIOD;
use crate::frontend::Shared;
use crate::net::{ClientTlsConfig, ServerTlsConfig};
use crate::prepared::Registry;
use crate::topology::{CheckerLogin, Cluster};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The wiring of one Switchyard: what the sessions share, the shutdown signal, and the
/// background tasks (health checkers, pool drains).
pub struct App {
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
}

fn non_zero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

impl App {
    /// Builds the App from a validated config; fails on settings this build cannot serve.
    pub fn new(config: Config) -> Result<Arc<App>, String> {
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
            let server_tls = ServerTlsConfig::load(
                db.server_tls,
                db.server_ca.as_deref(),
                &format!("databases.{name}"),
            )?;
            clusters.insert(
                name.clone(),
                Arc::new(Cluster::new(db.clone(), settings, Arc::new(server_tls))),
            );
        }
        let tls = config.tls.as_ref().map(ClientTlsConfig::load).transpose()?;
        let (shutdown, _) = watch::channel(false);
        Ok(Arc::new(App {
            shared: Arc::new(Shared::new(config, users, clusters, tls, auth_query_login)),
            shutdown,
        }))
    }

    /// What the client sessions share (handed to each of them).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Prepared statements shared by all clients.
    pub fn statements(&self) -> &Registry {
        &self.shared.statements
    }

    pub fn cluster(&self, database: &str) -> Option<Arc<Cluster>> {
        self.shared.cluster(database)
    }

    pub fn clusters(&self) -> impl Iterator<Item = &Arc<Cluster>> {
        self.shared.clusters.values()
    }

    /// Resolves when shutdown has begun.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Takes each database's traffic totals every stats period, for the averages.
    fn start_stats_ticks(&self) {
        let shared = self.shared.clone();
        let mut shutdown = self.shutdown_signal();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(STATS_PERIOD);
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    _ = shutdown.changed() => return,
                }
                let totals = shared
                    .clusters
                    .iter()
                    .map(|(name, c)| (name.clone(), c.stats.traffic.totals()))
                    .collect();
                shared.averages.tick(std::time::Instant::now(), totals);
            }
        });
    }

    /// Starts the per-cluster health checkers and the stats ticks; they end when shutdown
    /// begins.
    pub fn start_background_tasks(&self) {
        self.start_stats_ticks();
        for cluster in self.shared.clusters.values() {
            let db = &cluster.db;
            let user = db
                .health_check_user
                .clone()
                .or_else(|| self.config().users.first().map(|u| u.name.clone()));
            let Some(user) = user else {
                tracing::warn!(db = %db.name, "no user to run health checks as: roles are learned from pooled connections only");
                continue;
            };
            let login = CheckerLogin {
                secret: self.shared.users.server_secret(&db.name, &user),
                user,
                dbname: db.dbname.clone(),
                // A check must not hang longer than a couple of intervals.
                timeout: self.config().connect_timeout().min(
                    Duration::from_millis(db.health_check_interval_ms * 2)
                        .max(Duration::from_millis(500)),
                ),
                tls: cluster.server_tls.clone(),
            };
            let interval = Duration::from_millis(db.health_check_interval_ms);
            tokio::spawn(cluster.clone().drain_on_changes(self.shutdown_signal()));
            tokio::spawn(cluster.topology.clone().run_checker(
                login,
                interval,
                self.shutdown_signal(),
            ));
        }
    }

    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
        // Sessions wait for it through their cancel registrations.
        self.shared.clients.wake_all();
    }
}
