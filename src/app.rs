//! The one shared object every task gets: configuration, users' secrets, clusters with their
//! pools, the cancel registry and the shutdown signal. Nothing is process-global, so two Apps
//! can run in one process.

use crate::auth::scram::ScramVerifier;
use crate::auth::UserSecret;
use crate::backend::cluster::{Cluster, PoolSettings};
use crate::backend::ServerSecret;
use crate::config::{Config, PoolMode};
use crate::frontend::cancel::CancelRegistry;
use crate::prepared::Registry;
use crate::topology::CheckerLogin;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

struct UserEntry {
    client: UserSecret,
    server: ServerSecret,
}

pub struct App {
    config: Config,
    users: HashMap<String, UserEntry>,
    clusters: HashMap<String, Arc<Cluster>>,
    pub cancels: Arc<CancelRegistry>,
    /// Prepared statements shared by all clients (server-side names).
    pub statements: Registry,
    dummy: ScramVerifier,
    shutdown: watch::Sender<bool>,
    /// Keys the versions of login-time session settings (see `params::Wanted::new`).
    pub param_versions: std::collections::hash_map::RandomState,
    /// Recent clients' login settings, shared by clients that log in with the same.
    pub startup_maps: crate::params::SharedMaps,
}

fn non_zero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

impl App {
    /// Builds the App from a validated config; fails on settings this build cannot serve.
    pub fn new(config: Config) -> Result<Arc<App>, String> {
        let mut users = HashMap::new();
        for u in &config.users {
            let client = UserSecret::parse(&u.name, &u.password)
                .map_err(|e| format!("users \"{}\": password: {e}", u.name))?;
            let server = match &client {
                UserSecret::Plain { password, .. } => ServerSecret::Password(password.clone()),
                UserSecret::Md5(digest) => {
                    ServerSecret::Md5Digest(digest.iter().map(|b| format!("{b:02x}")).collect())
                }
                UserSecret::Scram(_) => ServerSecret::None,
            };
            users.insert(u.name.clone(), UserEntry { client, server });
        }
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
                if !users.contains_key(u) {
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
            clusters.insert(name.clone(), Arc::new(Cluster::new(db.clone(), settings)));
        }
        let (shutdown, _) = watch::channel(false);
        Ok(Arc::new(App {
            statements: Registry::new(config.max_prepared_statements),
            config,
            users,
            clusters,
            cancels: Arc::default(),
            dummy: ScramVerifier::generate(&format!("{:x}", rand::random::<u128>())),
            shutdown,
            param_versions: Default::default(),
            startup_maps: Default::default(),
        }))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn user_secret(&self, user: &str) -> Option<&UserSecret> {
        self.users.get(user).map(|u| &u.client)
    }

    pub fn server_secret(&self, user: &str) -> ServerSecret {
        self.users
            .get(user)
            .map(|u| u.server.clone())
            .unwrap_or(ServerSecret::None)
    }

    /// A verifier no password matches, for exchanges with unknown users.
    pub fn dummy_verifier(&self) -> &ScramVerifier {
        &self.dummy
    }

    pub fn cluster(&self, database: &str) -> Option<Arc<Cluster>> {
        self.clusters.get(database).cloned()
    }

    pub fn clusters(&self) -> impl Iterator<Item = &Arc<Cluster>> {
        self.clusters.values()
    }

    /// Resolves when shutdown has begun.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Starts the per-cluster health checkers; they end when shutdown begins.
    pub fn start_background_tasks(&self) {
        for cluster in self.clusters.values() {
            let db = &cluster.db;
            let user = db
                .health_check_user
                .clone()
                .or_else(|| self.config.users.first().map(|u| u.name.clone()));
            let Some(user) = user else {
                tracing::warn!(db = %db.name, "no user to run health checks as: roles are learned from pooled connections only");
                continue;
            };
            let login = CheckerLogin {
                secret: self.server_secret(&user),
                user,
                dbname: db.dbname.clone(),
                // A check must not hang longer than a couple of intervals.
                timeout: self.config.connect_timeout().min(
                    Duration::from_millis(db.health_check_interval_ms * 2)
                        .max(Duration::from_millis(500)),
                ),
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
        self.cancels.wake_all();
    }
}
