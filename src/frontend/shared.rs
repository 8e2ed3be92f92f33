//! What every client session shares, handed down by the app: the configuration, the users'
//! secrets, each database's cluster, the registry of live clients, the prepared-statement
//! registry and the login settings clients have in common. Sessions hold an `Arc` of this,
//! not of the app above them. A config reload makes a new `Shared` (a generation) that
//! keeps the registries, counters and control of the one before; sessions move to it at
//! their next transaction ([`Shared::newest`]).

use super::admin::Averages;
use super::clients::ClientRegistry;
use super::control::Control;
use super::login_throttle::LoginThrottle;
use crate::auth::{ServerSecret, Users};
use crate::config::Config;
use crate::net::ClientTlsConfig;
use crate::params::SharedMaps;
use crate::prepared::Registry;
use crate::topology::Cluster;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

pub struct Shared {
    pub config: Config,
    /// TLS toward clients (`[tls]`), if configured.
    pub tls: Option<ClientTlsConfig>,
    pub users: Users,
    pub clusters: HashMap<String, Arc<Cluster>>,
    /// What the `[auth_query]` user logs in to servers with (None: no `[auth_query]`).
    pub auth_query_login: Option<ServerSecret>,
    /// The generation a reload made from this one (set once).
    pub successor: OnceLock<Arc<Shared>>,
    // The rest lives across reloads.
    /// Live clients: cancel keys and shutdown wake-ups.
    pub clients: Arc<ClientRegistry>,
    /// Prepared statements shared by all clients (server-side names).
    pub statements: Arc<Registry>,
    /// Keys the versions of login-time session settings (see `params::Wanted::new`).
    pub param_versions: RandomState,
    /// Recent clients' login settings, shared by clients that log in with the same.
    pub startup_maps: Arc<SharedMaps>,
    /// Failed logins per address, to slow down guessing.
    pub login_throttle: Arc<LoginThrottle>,
    /// The last stats period's averages (SHOW STATS, metrics).
    pub averages: Arc<Averages>,
    /// Shutdown and reload, for the console.
    pub control: Arc<Control>,
}

/// What a generation is made of (besides what lives across reloads).
pub struct Generation {
    pub config: Config,
    pub tls: Option<ClientTlsConfig>,
    pub users: Users,
    pub clusters: HashMap<String, Arc<Cluster>>,
    pub auth_query_login: Option<ServerSecret>,
}

impl Shared {
    /// The first generation, with fresh registries and counters.
    pub fn first(g: Generation, control: Arc<Control>, clients: Arc<ClientRegistry>) -> Shared {
        Shared {
            statements: Arc::new(Registry::new(g.config.max_prepared_statements)),
            config: g.config,
            tls: g.tls,
            users: g.users,
            clusters: g.clusters,
            auth_query_login: g.auth_query_login,
            successor: OnceLock::new(),
            clients,
            param_versions: RandomState::default(),
            startup_maps: Arc::default(),
            login_throttle: Arc::default(),
            averages: Arc::default(),
            control,
        }
    }

    /// The generation after this one: `g`, with this one's registries and counters.
    pub fn next(&self, g: Generation) -> Shared {
        Shared {
            config: g.config,
            tls: g.tls,
            users: g.users,
            clusters: g.clusters,
            auth_query_login: g.auth_query_login,
            successor: OnceLock::new(),
            clients: self.clients.clone(),
            statements: self.statements.clone(),
            param_versions: self.param_versions.clone(),
            startup_maps: self.startup_maps.clone(),
            login_throttle: self.login_throttle.clone(),
            averages: self.averages.clone(),
            control: self.control.clone(),
        }
    }

    /// The newest generation (this one unless a reload made another).
    pub fn newest(self: &Arc<Self>) -> Arc<Shared> {
        let mut at = self.clone();
        while let Some(next) = at.successor.get() {
            at = next.clone();
        }
        at
    }

    pub fn cluster(&self, database: &str) -> Option<Arc<Cluster>> {
        self.clusters.get(database).cloned()
    }
}
