//! The App's background tasks: per cluster, its health checker and the drain of pools on
//! role changes (both end when the cluster is retired); the stats ticks for the averages
//! (which also retire the clusters when shutdown begins); and the task that answers reload
//! requests from the console.

use super::App;
use crate::frontend::admin::STATS_PERIOD;
use crate::frontend::Shared;
use crate::topology::{CheckerLogin, Cluster};
use std::sync::Arc;
use std::time::Duration;

impl App {
    /// Starts the per-cluster tasks, the stats ticks and the reload task; they end when
    /// shutdown begins.
    pub fn start_background_tasks(self: &Arc<Self>) {
        let shared = self.shared();
        for cluster in shared.clusters.values() {
            start_cluster_tasks(&shared, cluster);
        }
        start_stats_ticks(shared);
        self.start_reload_task();
    }

    /// Answers the console's RELOAD requests, one at a time.
    fn start_reload_task(self: &Arc<Self>) {
        let taken = self
            .reloads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(mut requests) = taken else {
            return;
        };
        let app = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(reply) = requests.recv().await {
                let Some(app) = app.upgrade() else {
                    return;
                };
                let _ = reply.send(app.reload());
            }
        });
    }
}

/// Starts a cluster's health checker and pool drain; they end when it is retired.
pub(super) fn start_cluster_tasks(shared: &Shared, cluster: &Arc<Cluster>) {
    let db = &cluster.db;
    let user = db
        .health_check_user
        .clone()
        .or_else(|| shared.config.users.first().map(|u| u.name.clone()));
    tokio::spawn(cluster.clone().drain_on_changes(cluster.stop.subscribe()));
    tokio::spawn(cluster.clone().keep_warm(cluster.stop.subscribe()));
    start_cache_task(shared, cluster);
    let Some(user) = user else {
        tracing::warn!(db = %db.name, "no user to run health checks as: roles are learned from pooled connections only");
        return;
    };
    let login = CheckerLogin {
        secret: shared.users.server_secret(&db.name, &user),
        user,
        dbname: db.dbname.clone(),
        // A check must not hang longer than a couple of intervals.
        timeout: shared.config.connect_timeout().min(
            Duration::from_millis(db.health_check_interval_ms * 2).max(Duration::from_millis(500)),
        ),
        tls: cluster.server_tls.clone(),
    };
    let interval = Duration::from_millis(db.health_check_interval_ms);
    tokio::spawn(
        cluster
            .topology
            .clone()
            .run_checker(login, interval, cluster.stop.subscribe()),
    );
}

/// Starts the result cache's change stream (and catalog) task, if the cache is on.
fn start_cache_task(shared: &Shared, cluster: &Arc<Cluster>) {
    let Some(cache) = cluster.cache.clone() else {
        return;
    };
    let db = &cluster.db;
    let login = cache
        .config
        .user
        .clone()
        .map(|user| crate::cache::StreamLogin {
            secret: shared.users.server_secret(&db.name, &user),
            user,
            dbname: db.dbname.clone(),
            timeout: shared.config.connect_timeout(),
            tls: cluster.server_tls.clone(),
        });
    let topology = cluster.topology.clone();
    let primary = Box::new(move || {
        let snap = topology.snapshot();
        let host = snap.hosts.get(snap.primary()?)?;
        Some((host.addr.clone(), host.lsn))
    });
    tokio::spawn(crate::cache::run(
        cache,
        login,
        primary,
        cluster.stop.subscribe(),
    ));
}

/// Takes each database's traffic totals every stats period, for the averages; when
/// shutdown begins, retires the clusters of the newest generation.
fn start_stats_ticks(shared: Arc<Shared>) {
    let mut shutdown = shared.control.shutdown_signal();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(STATS_PERIOD);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = shutdown.wait_for(|s| *s) => break,
            }
            let newest = shared.newest();
            let totals = newest
                .clusters
                .iter()
                .map(|(name, c)| (name.clone(), c.stats.traffic.totals()))
                .collect();
            newest.averages.tick(std::time::Instant::now(), totals);
        }
        for cluster in shared.newest().clusters.values() {
            cluster.retire();
        }
    });
}
