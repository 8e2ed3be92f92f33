//! One logical database: its hosts' pools for each user, checked out by what the topology
//! says (the primary, or replicas in the balancing policy's order; learned from
//! `in_hot_standby` at login until the checker has run), and draining pools when a host's
//! role changes.

use super::{Policy, Role, Snapshot, Topology};
use crate::auth::ServerSecret;
use crate::backend::pool::{
    self, build_pool, checkout_error, Checkout, PoolError, PoolSettings, ServerManager, ServerPool,
};
use crate::cache::ResultCache;
use crate::config::{Database, LoadBalancing};
use crate::net::ServerTlsConfig;
use crate::protocol::messages::PgError;
use crate::protocol::SqlState;
use crate::router::Classifier;
use crate::stats::ClusterStats;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// A user's pools for one cluster, one per host in config order.
pub struct UserPools {
    pub user: String,
    pub hosts: Vec<ServerPool>,
    /// What servers reported to this user's logins, for logins without a checkout.
    pub login_reports: super::login_reports::LoginReports,
}

pub struct Cluster {
    pub db: Database,
    pub classifier: Classifier,
    /// What this database's requests did (routing, route cache, fencing).
    pub stats: Arc<ClusterStats>,
    pub topology: Arc<Topology>,
    settings: PoolSettings,
    /// How to connect to the servers (`server_tls`), for pools and the health checker.
    pub server_tls: Arc<ServerTlsConfig>,
    /// Rotates round-robin choices and tie-breaks.
    turn: AtomicUsize,
    pools: Mutex<HashMap<String, Arc<UserPools>>>,
    /// Per host: bumped when its role changes, so older pooled connections are not reused.
    generations: Arc<Vec<AtomicU64>>,
    /// PAUSE / RESUME from the console.
    pub(super) pause: super::admin_state::PauseSwitch,
    /// Per host: `max_db_connections` across the users' pools.
    caps: Vec<Arc<pool::HostCap>>,
    /// The result cache (`[databases.<name>.cache] enabled`).
    pub cache: Option<Arc<ResultCache>>,
    /// Set when the cluster is retired (shutdown, or a reload that replaced it): its health
    /// checker and pool drain end.
    pub stop: watch::Sender<bool>,
}

impl Cluster {
    /// A cluster for `db`; `stats` carries a replaced cluster's counters over (reload).
    pub fn new(
        db: Database,
        settings: PoolSettings,
        server_tls: Arc<ServerTlsConfig>,
        stats: Option<Arc<ClusterStats>>,
    ) -> Self {
        let addrs: Vec<String> = db.hosts.iter().map(|h| h.to_string()).collect();
        let policy = Policy {
            ban_time: Duration::from_millis(db.ban_time_ms),
            max_lag_bytes: db.max_replica_lag_bytes,
            max_lag_ms: db.max_replica_lag_ms,
        };
        let stats = stats.unwrap_or_else(crate::router::cluster_stats);
        let caps = addrs
            .iter()
            .map(|_| pool::HostCap::new(db.pool_limits.max_db_connections))
            .collect();
        let cache = db
            .cache
            .enabled
            .then(|| Arc::new(ResultCache::new(db.cache.clone(), stats.clone())));
        Cluster {
            cache,
            classifier: Classifier::new(
                &db.write_functions,
                &db.read_only_functions,
                10_000,
                stats.clone(),
            ),
            topology: Arc::new(Topology::new(&addrs, policy, stats.clone())),
            stats,
            generations: Arc::new(addrs.iter().map(|_| AtomicU64::new(0)).collect()),
            db,
            settings,
            server_tls,
            turn: AtomicUsize::new(0),
            pools: Mutex::default(),
            pause: Default::default(),
            caps,
            stop: watch::channel(false).0,
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
            .enumerate()
            .map(|(i, h)| {
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
                        generation: (self.generations.clone(), i),
                        tls: self.server_tls.clone(),
                    },
                    self.db.pool_size,
                    (
                        pool::Reserve {
                            size: self.db.pool_limits.reserve_pool_size,
                            after: Duration::from_millis(
                                self.db.pool_limits.reserve_pool_timeout_ms,
                            ),
                        },
                        self.caps[i].clone(),
                    ),
                    self.settings.checkout_timeout,
                )
            })
            .collect();
        let p = Arc::new(UserPools {
            user: user.to_string(),
            hosts,
            login_reports: Default::default(),
        });
        map.insert(user.to_string(), p.clone());
        p
    }

    /// Ends the cluster's background tasks (health checks, pool drains).
    pub fn retire(&self) {
        self.stop.send_replace(true);
    }

    /// The pools of users `keep` rejects are forgotten: new sessions make new ones (with
    /// the user's new secret); sessions holding the old ones finish with them.
    pub fn forget_users(&self, keep: impl Fn(&str) -> bool) -> Vec<String> {
        let mut map = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        let gone: Vec<String> = map.keys().filter(|u| !keep(u)).cloned().collect();
        for u in &gone {
            map.remove(u);
        }
        gone
    }

    /// Every pool of every user (for shutdown and statistics).
    pub fn all_pools(&self) -> Vec<Arc<UserPools>> {
        let map = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        map.values().cloned().collect()
    }

    fn what(&self, pools: &UserPools) -> String {
        format!("database \"{}\" user \"{}\"", self.db.name, pools.user)
    }

    /// An idle connection to the known primary, if there is one (no waiting, no connecting).
    pub fn checkout_primary_idle(&self, pools: &UserPools) -> Option<Checkout> {
        let p = self.topology.snapshot().primary()?;
        let conn = pool::checkout_idle(pools.hosts.get(p)?)?;
        if conn.in_hot_standby {
            // A demoted host: the waiting path sorts this out.
            pool::discard(conn);
            return None;
        }
        Some(conn)
    }

    /// Checks out a connection to the primary. While no primary is known (or it fails), waits
    /// for the topology to name one, up to `primary_wait_timeout_ms`.
    pub async fn checkout_primary(&self, pools: &UserPools) -> Result<Checkout, PgError> {
        let wait = Duration::from_millis(self.db.primary_wait_timeout_ms);
        // Set up only once the first try failed (the common case needs neither).
        let mut waiting: Option<(Instant, watch::Receiver<Arc<Snapshot>>)> = None;
        let mut last_error = None;
        loop {
            let snap = self.topology.snapshot();
            let candidates = match snap.primary() {
                Some(p) => p..p + 1,
                // Not checked yet: ask the hosts themselves.
                None if snap.hosts.iter().all(|h| h.role == Role::Unknown) => 0..pools.hosts.len(),
                None => 0..0,
            };
            drop(snap);
            for idx in candidates {
                let Some(pool) = pools.hosts.get(idx) else {
                    continue;
                };
                match pool::checkout(pool).await {
                    Ok(conn) => {
                        self.topology.note_role(idx, conn.in_hot_standby);
                        if !conn.in_hot_standby {
                            return Ok(conn);
                        }
                        // A demoted host: the next check will say so; this connection is stale.
                        pool::discard(conn);
                    }
                    Err(e @ (PoolError::WaitTimeout | PoolError::CapTimeout(_))) => {
                        return Err(checkout_error(e, pool, &self.what(pools)));
                    }
                    Err(e) => {
                        tracing::warn!(db = %self.db.name, server = %self.db.hosts[idx], error = %e, "primary unusable");
                        self.topology.report_failure(idx, "connection failed");
                        last_error = Some(checkout_error(e, pool, &self.what(pools)));
                    }
                }
            }
            let now = Instant::now();
            let (deadline, changes) =
                waiting.get_or_insert_with(|| (now + wait, self.topology.subscribe()));
            if now >= *deadline {
                let base = last_error.unwrap_or_else(|| self.no_primary(pools));
                return Err(base.with_detail(format!(
                    "waited {} ms (primary_wait_timeout_ms) for a primary to appear",
                    wait.as_millis()
                )));
            }
            // Wait for the next topology change (or a short while, to retry the connect).
            let _ = tokio::time::timeout(
                (*deadline - now).min(Duration::from_millis(250)),
                changes.changed(),
            )
            .await;
        }
    }

    /// The error when no primary is known: with what the last checks of the hosts said.
    fn no_primary(&self, pools: &UserPools) -> PgError {
        let snap = self.topology.snapshot();
        let checks: Vec<String> = snap
            .hosts
            .iter()
            .filter_map(|h| h.error.as_ref().map(|e| format!("{}: {e}", h.addr)))
            .collect();
        let mut msg = format!("no primary server is available for {}", self.what(pools));
        if !checks.is_empty() {
            msg.push_str(&format!(" (last checks: {})", checks.join("; ")));
        }
        PgError::error(SqlState::CONNECTION_FAILURE, msg)
    }

    /// The servers that may take a read needing `min_lsn` replayed (replicas, and the primary
    /// with `primary_reads`), in the order the balancing policy prefers them.
    pub fn read_order(&self, pools: &UserPools, min_lsn: u64) -> Vec<usize> {
        let snap = self.topology.snapshot();
        let mut order: Vec<usize> = snap.replicas_at(min_lsn).collect();
        if self.db.primary_reads {
            order.extend(snap.primary());
        }
        if order.len() > 1 {
            let turn = self.turn.fetch_add(1, Ordering::Relaxed);
            match self.db.load_balancing {
                LoadBalancing::RoundRobin => {
                    let first = turn % order.len();
                    order.rotate_left(first);
                }
                LoadBalancing::Random => {
                    let first = rand::random::<usize>() % order.len();
                    order.rotate_left(first);
                }
                LoadBalancing::LeastConnections => {
                    // Ties keep the rotated order, so equally busy servers take turns.
                    let first = turn % order.len();
                    order.rotate_left(first);
                    order.sort_by_key(|&i| pools.hosts.get(i).map_or(usize::MAX, |p| p.in_use()));
                }
            }
        }
        order
    }

    /// An idle connection on the first server of `order`, if it has one (no waiting, no
    /// connecting); otherwise [`Cluster::checkout_read`] takes the same order.
    pub fn checkout_read_idle(&self, pools: &UserPools, order: &[usize]) -> Option<Checkout> {
        pool::checkout_idle(pools.hosts.get(*order.first()?)?)
    }

    /// Checks out a connection for a read from the servers in `order` (from
    /// [`Cluster::read_order`]), the first that can give one. None when none can: the caller
    /// reads from the primary.
    pub async fn checkout_read(&self, pools: &UserPools, order: &[usize]) -> Option<Checkout> {
        for &idx in order {
            let Some(pool) = pools.hosts.get(idx) else {
                continue;
            };
            match pool::checkout(pool).await {
                Ok(conn) => return Some(conn),
                Err(PoolError::WaitTimeout | PoolError::CapTimeout(_)) => {}
                Err(e) => {
                    tracing::warn!(db = %self.db.name, server = %self.db.hosts[idx], error = %e, "replica unusable for a read");
                    self.topology.report_failure(idx, "connection failed");
                }
            }
        }
        None
    }

    /// Connections made before now are not reused (on every host).
    pub(super) fn bump_generations(&self) {
        for g in self.generations.iter() {
            g.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Follows topology changes: a host whose role changed, or that went down or was fenced,
    /// has its idle pooled connections closed and its busy ones closed when returned.
    pub async fn drain_on_changes(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut rx = self.topology.subscribe();
        let mut prev = self.topology.snapshot();
        loop {
            tokio::select! {
                r = rx.changed() => if r.is_err() { return },
                _ = stop.wait_for(|s| *s) => return,
            }
            let next = self.topology.snapshot();
            for (i, (old, new)) in prev.hosts.iter().zip(&next.hosts).enumerate() {
                let changed = old.role != new.role && old.role != Role::Unknown;
                if changed
                    || (new.role != old.role && matches!(new.role, Role::Down | Role::Fenced))
                {
                    if let Some(g) = self.generations.get(i) {
                        g.fetch_add(1, Ordering::Relaxed);
                    }
                    let mut closed = 0;
                    for pools in self.all_pools() {
                        if let Some(p) = pools.hosts.get(i) {
                            closed += p.close_idle();
                        }
                    }
                    tracing::info!(server = %new.addr, from = ?old.role, to = ?new.role, closed, "host role changed: pooled connections drained");
                }
            }
            prev = next;
        }
    }
}
