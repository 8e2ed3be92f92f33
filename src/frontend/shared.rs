//! What every client session shares, handed down by the app: the configuration, the users'
//! secrets, each database's cluster, the registry of live clients, the prepared-statement
//! registry and the login settings clients have in common. Sessions hold an `Arc` of this,
//! not of the app above them.

use super::admin::Averages;
use super::clients::ClientRegistry;
use super::login_throttle::LoginThrottle;
use crate::auth::{ServerSecret, Users};
use crate::config::Config;
use crate::net::ClientTlsConfig;
use crate::params::SharedMaps;
use crate::prepared::Registry;
use crate::topology::Cluster;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::sync::Arc;

pub struct Shared {
    pub config: Config,
    /// TLS toward clients (`[tls]`), if configured.
    pub tls: Option<ClientTlsConfig>,
    pub users: Users,
    pub clusters: HashMap<String, Arc<Cluster>>,
    /// Live clients: cancel keys and shutdown wake-ups.
    pub clients: Arc<ClientRegistry>,
    /// Prepared statements shared by all clients (server-side names).
    pub statements: Registry,
    /// Keys the versions of login-time session settings (see `params::Wanted::new`).
    pub param_versions: RandomState,
    /// Recent clients' login settings, shared by clients that log in with the same.
    pub startup_maps: SharedMaps,
    /// Failed logins per address, to slow down guessing.
    pub login_throttle: LoginThrottle,
    /// What the `[auth_query]` user logs in to servers with (None: no `[auth_query]`).
    pub auth_query_login: Option<ServerSecret>,
    /// The last stats period's averages (SHOW STATS, metrics).
    pub averages: Averages,
}

impl Shared {
    pub fn new(
        config: Config,
        users: Users,
        clusters: HashMap<String, Arc<Cluster>>,
        tls: Option<ClientTlsConfig>,
        auth_query_login: Option<ServerSecret>,
    ) -> Shared {
        Shared {
            auth_query_login,
            averages: Averages::default(),
            tls,
            statements: Registry::new(config.max_prepared_statements),
            config,
            users,
            clusters,
            clients: Arc::default(),
            param_versions: RandomState::default(),
            startup_maps: SharedMaps::default(),
            login_throttle: LoginThrottle::default(),
        }
    }

    pub fn cluster(&self, database: &str) -> Option<Arc<Cluster>> {
        self.clusters.get(database).cloned()
    }
}
