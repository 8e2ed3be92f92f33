//! `min_pool_size`: every second, each user's pool on each host that can take traffic (the
//! primary, and replicas that are not banned) is filled up to the minimum, so the first
//! transactions after a quiet spell, a restart or a failover do not wait for logins.

use super::{Cluster, Role};
use crate::backend::pool::fill_to;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

impl Cluster {
    /// Keeps `min_pool_size` connections open until the cluster is retired.
    pub async fn keep_warm(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let min = self.db.pool_limits.min_pool_size;
        if min == 0 {
            return;
        }
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let snap = self.topology.snapshot();
            let now = Instant::now();
            let usable: Vec<usize> = (0..snap.hosts.len())
                .filter(|&i| {
                    let h = &snap.hosts[i];
                    h.role == Role::Primary || (h.role == Role::Replica && !h.is_banned(now))
                })
                .collect();
            drop(snap);
            for pools in self.all_pools() {
                for &i in &usable {
                    let Some(pool) = pools.hosts.get(i) else {
                        continue;
                    };
                    if let Err(e) = fill_to(pool, min).await {
                        tracing::debug!(db = %self.db.name, server = %pool.addr(), error = %e, "min_pool_size: could not open a connection");
                    }
                }
            }
        }
    }
}
