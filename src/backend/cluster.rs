//! One logical database's servers for each user: a pool per host, and which host is the
//! primary (learned from `in_hot_standby` at login until the topology task takes over).

use super::login::ServerSecret;
use super::pool::{build_pool, checkout_error, Checkout, ServerManager, ServerPool};
use super::stats::RouteStats;
use crate::config::{Database, LoadBalancing};
use crate::protocol::messages::PgError;
use crate::protocol::SqlState;
use crate::router::Classifier;
use crate::topology::Topology;
use deadpool::managed::{PoolError, TimeoutType};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Timeouts that shape every pool of a cluster.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub checkout_timeout: Duration,
    pub connect_timeout: Duration,
    pub lifetime: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub statements_per_connection: usize,
}

/// A user's pools for one cluster, one per host in config order.
pub struct UserPools {
    pub user: String,
    pub hosts: Vec<ServerPool>,
}

pub struct Cluster {
    pub db: Database,
    pub classifier: Classifier,
    pub stats: RouteStats,
    pub topology: Arc<Topology>,
    settings: PoolSettings,
    /// Rotates round-robin choices and tie-breaks.
    turn: AtomicUsize,
    pools: Mutex<HashMap<String, Arc<UserPools>>>,
    /// Index of the host last seen as primary; `usize::MAX` while unknown.
    primary_hint: AtomicUsize,
}

impl Cluster {
    pub fn new(db: Database, settings: PoolSettings) -> Self {
        let addrs: Vec<String> = db.hosts.iter().map(|h| h.to_string()).collect();
        Cluster {
            classifier: Classifier::new(&db.write_functions, &db.read_only_functions, 10_000),
            stats: RouteStats::default(),
            topology: Arc::new(Topology::new(&addrs)),
            db,
            settings,
            turn: AtomicUsize::new(0),
            pools: Mutex::default(),
            primary_hint: AtomicUsize::new(usize::MAX),
        }
    }

    /// The pools of `user`, created on first use.
    pub fn user_pools(&self, user: &str, secret: &ServerSecret) -> Arc<UserPools> {
        let mut map = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = map.get(user) {
            return p.clone();
        }
        let hosts = self
            .db
            .hosts
            .iter()
            .map(|h| {
                build_pool(
                    ServerManager {
                        addr: h.to_string(),
                        user: user.to_string(),
                        dbname: self.db.dbname.clone(),
                        secret: secret.clone(),
                        connect_timeout: self.settings.connect_timeout,
                        lifetime: self.settings.lifetime,
                        idle_timeout: self.settings.idle_timeout,
                        statements_per_connection: self.settings.statements_per_connection,
                    },
                    self.db.pool_size,
                    self.settings.checkout_timeout,
                )
            })
            .collect();
        let p = Arc::new(UserPools {
            user: user.to_string(),
            hosts,
        });
        map.insert(user.to_string(), p.clone());
        p
    }

    /// Every pool of every user (for shutdown and statistics).
    pub fn all_pools(&self) -> Vec<Arc<UserPools>> {
        let map = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        map.values().cloned().collect()
    }

    /// Checks out a connection to the primary, trying the hosts in turn while it is unknown.
    pub async fn checkout_primary(&self, pools: &UserPools) -> Result<Checkout, PgError> {
        let n = pools.hosts.len();
        let hint = match self.topology.snapshot().primary() {
            Some(p) => p,
            None => self.primary_hint.load(Ordering::Relaxed),
        };
        let start = if hint < n { hint } else { 0 };
        let what = format!("database \"{}\" user \"{}\"", self.db.name, pools.user);
        let mut last_error = None;
        for i in 0..n {
            let idx = (start + i) % n;
            let pool = &pools.hosts[idx];
            let got = pool.get().await;
            if let Ok(conn) = &got {
                self.topology.note_role(idx, conn.in_hot_standby);
            }
            match got {
                Ok(conn) if conn.in_hot_standby => {
                    if idx == hint {
                        self.primary_hint.store(usize::MAX, Ordering::Relaxed);
                    }
                    continue;
                }
                Ok(conn) => {
                    if idx != hint {
                        tracing::info!(db = %self.db.name, server = %conn.addr, "primary found");
                        self.primary_hint.store(idx, Ordering::Relaxed);
                    }
                    return Ok(conn);
                }
                Err(PoolError::Timeout(TimeoutType::Wait)) if idx == hint => {
                    return Err(checkout_error(
                        PoolError::Timeout(TimeoutType::Wait),
                        pool,
                        &what,
                    ));
                }
                Err(e) => {
                    tracing::warn!(db = %self.db.name, server = %self.db.hosts[idx], error = %e, "server unusable");
                    last_error = Some(checkout_error(e, pool, &what));
                }
            }
        }
        Err(last_error.unwrap_or_else(|| {
            PgError::error(
                SqlState::CONNECTION_FAILURE,
                format!("no primary server is available for {what}: every host is a standby"),
            )
        }))
    }

    /// Checks out a connection for a read: a replica that has replayed `min_lsn` (and the
    /// primary too with `primary_reads`), chosen by the configured balancing. None when no
    /// such server is usable: the caller reads from the primary.
    pub async fn checkout_read(&self, pools: &UserPools, min_lsn: u64) -> Option<Checkout> {
        let snap = self.topology.snapshot();
        let mut candidates: Vec<usize> = snap.replicas_at(min_lsn).collect();
        if self.db.primary_reads {
            candidates.extend(snap.primary());
        }
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        while !candidates.is_empty() {
            let pick = match self.db.load_balancing {
                LoadBalancing::RoundRobin => turn % candidates.len(),
                LoadBalancing::Random => rand::random::<usize>() % candidates.len(),
                LoadBalancing::LeastConnections => {
                    let start = turn % candidates.len();
                    (0..candidates.len())
                        .map(|k| (start + k) % candidates.len())
                        .min_by_key(|&k| {
                            let s = pools.hosts[candidates[k]].status();
                            s.size.saturating_sub(s.available)
                        })
                        .unwrap_or(0)
                }
            };
            let idx = candidates.swap_remove(pick);
            let Some(pool) = pools.hosts.get(idx) else {
                continue;
            };
            match pool.get().await {
                Ok(conn) => return Some(conn),
                Err(e) => {
                    tracing::warn!(db = %self.db.name, server = %self.db.hosts[idx], error = %e, "replica unusable for a read");
                }
            }
        }
        None
    }
}
