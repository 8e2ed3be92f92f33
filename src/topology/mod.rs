//! Which host is the primary, which are replicas, how far behind each replica is, and which
//! hosts are banned or fenced: a checker task per cluster polls every host over its own
//! connection and publishes an immutable snapshot that routing reads without waiting.

mod admin_state;
pub mod cluster;
pub mod decide;
pub mod login_reports;
pub mod state;
mod warm;

pub use cluster::{Cluster, UserPools};
pub use decide::{Observation, Policy};
pub use state::{Exclusion, HostState, Role, Snapshot};

use crate::auth::ServerSecret;
use crate::backend::login::{connect, LoginParams};
use crate::backend::own_queries::{parse_lsn, query_row};
use crate::backend::ServerConn;
use crate::net::ServerTlsConfig;
use crate::stats::ClusterStats;
use bytes::BytesMut;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The published snapshot of one cluster.
pub struct Topology {
    tx: watch::Sender<Arc<Snapshot>>,
    policy: Policy,
    /// Where fencings are counted.
    stats: Arc<ClusterStats>,
    /// Asks the checker for a round now (a connection failed: don't wait for the interval).
    check_now: tokio::sync::Notify,
}

/// How the checker logs in.
pub struct CheckerLogin {
    pub user: String,
    pub dbname: String,
    pub secret: ServerSecret,
    pub timeout: Duration,
    /// The database's `server_tls`, as for its pools.
    pub tls: Arc<ServerTlsConfig>,
}

/// `application_name` of the health-check connections, to tell them apart on the server.
pub const HEALTH_CHECK_APPLICATION: &str = "switchyard-health-check";

const CHECK_SQL: &str = "SELECT pg_is_in_recovery(), \
     CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END, \
     CASE WHEN pg_is_in_recovery() THEN (SELECT received_tli FROM pg_stat_wal_receiver) \
          ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END, \
     CASE WHEN NOT pg_is_in_recovery() OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 \
          ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000, 0)::bigint END";

impl Topology {
    pub fn new(hosts: &[String], policy: Policy, stats: Arc<ClusterStats>) -> Topology {
        let (tx, _) = watch::channel(Arc::new(Snapshot::new(hosts)));
        Topology {
            tx,
            policy,
            stats,
            check_now: tokio::sync::Notify::new(),
        }
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.tx.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.tx.subscribe()
    }

    /// Records what a pooled connection revealed about a host not checked yet.
    pub fn note_role(&self, idx: usize, replica: bool) {
        let role = if replica {
            Role::Replica
        } else {
            Role::Primary
        };
        self.tx.send_if_modified(|s| match s.hosts.get(idx) {
            Some(h) if h.role == Role::Unknown => {
                let mut next = (**s).clone();
                next.hosts[idx].role = role;
                *s = Arc::new(next);
                true
            }
            _ => false,
        });
    }

    /// A connection to a host failed outside the checks: no reads go there for a ban time.
    pub fn report_failure(&self, idx: usize, why: &str) {
        self.check_now.notify_one();
        let until = Instant::now() + self.policy.ban_time;
        self.tx.send_if_modified(|s| match s.hosts.get(idx) {
            Some(h) if !h.is_banned(Instant::now()) => {
                tracing::warn!(server = %h.addr, reason = why, "host banned");
                let mut next = (**s).clone();
                next.hosts[idx].banned_until = Some(until);
                if next.hosts[idx].role == Role::Replica {
                    next.hosts[idx].excluded = Some(Exclusion::Banned);
                }
                *s = Arc::new(next);
                true
            }
            _ => false,
        });
    }

    /// Waits until the snapshot names a primary, at most `limit`.
    pub async fn wait_for_primary(&self, limit: Duration) -> Option<usize> {
        let mut rx = self.subscribe();
        let wait = async move {
            rx.wait_for(|s| s.primary().is_some())
                .await
                .ok()
                .and_then(|s| s.primary())
        };
        tokio::time::timeout(limit, wait).await.ok().flatten()
    }

    /// Polls every host each `interval` until `stop` says so.
    pub async fn run_checker(
        self: Arc<Self>,
        login: CheckerLogin,
        interval: Duration,
        mut stop: watch::Receiver<bool>,
    ) {
        let addrs: Vec<String> = self
            .snapshot()
            .hosts
            .iter()
            .map(|h| h.addr.clone())
            .collect();
        let mut conns: Vec<Option<ServerConn>> = addrs.iter().map(|_| None).collect();
        let mut bufs: Vec<BytesMut> = addrs.iter().map(|_| BytesMut::new()).collect();
        loop {
            let checks = conns
                .iter_mut()
                .zip(bufs.iter_mut())
                .zip(&addrs)
                .map(|((slot, buf), addr)| check_host(addr, slot, &login, buf));
            let observations = futures_join_all(checks).await;
            let prev = self.snapshot();
            let next = decide::next_snapshot(&prev, &observations, &self.policy, Instant::now());
            self.log_changes(&prev, &next);
            self.tx.send_replace(Arc::new(next));
            let asked = tokio::select! {
                _ = tokio::time::sleep(interval) => false,
                _ = self.check_now.notified() => true,
                _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
            };
            if asked {
                // Not more often than every 50 ms, however many failures come in.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    fn log_changes(&self, prev: &Snapshot, next: &Snapshot) {
        if prev.same_shape(next) {
            return;
        }
        for (old, new) in prev.hosts.iter().zip(&next.hosts) {
            if old.role != new.role || old.excluded != new.excluded {
                if new.role == Role::Fenced {
                    self.stats.hosts_fenced.incr();
                    tracing::error!(server = %new.addr, timeline = new.timeline, "FENCED: host claims to be primary but another primary is on a higher timeline; it gets no traffic until rebuilt");
                } else {
                    tracing::info!(host = %new.describe(), from = ?old.role, "topology changed");
                }
            }
        }
    }
}

/// Runs the checks of one round concurrently (a slow host does not delay the others).
async fn futures_join_all<F: std::future::Future<Output = Observation>>(
    futs: impl Iterator<Item = F>,
) -> Vec<Observation> {
    let futs: Vec<_> = futs.map(Box::pin).collect();
    let mut results: Vec<Option<Observation>> = futs.iter().map(|_| None).collect();
    let mut pending: Vec<(usize, std::pin::Pin<Box<F>>)> = futs.into_iter().enumerate().collect();
    std::future::poll_fn(|cx| {
        pending.retain_mut(|(i, f)| match f.as_mut().poll(cx) {
            std::task::Poll::Ready(o) => {
                results[*i] = Some(o);
                false
            }
            std::task::Poll::Pending => true,
        });
        if pending.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    results
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Observation::Failed("check did not finish".into())))
        .collect()
}

async fn check_host(
    addr: &str,
    slot: &mut Option<ServerConn>,
    login: &CheckerLogin,
    buf: &mut BytesMut,
) -> Observation {
    if slot.is_none() {
        let params = LoginParams {
            addr,
            user: &login.user,
            dbname: &login.dbname,
            secret: &login.secret,
            timeout: login.timeout,
            application_name: Some(HEALTH_CHECK_APPLICATION),
            // The checker prepares nothing.
            statements_per_connection: 1,
            tls: &login.tls,
            replication: false,
        };
        match connect(&params).await {
            Ok(c) => *slot = Some(c),
            Err(e) => return Observation::Failed(e.to_string()),
        }
    }
    let Some(conn) = slot.as_mut() else {
        return Observation::Failed("no connection".into());
    };
    buf.clear();
    let result =
        tokio::time::timeout(login.timeout, query_row(&mut conn.stream, buf, CHECK_SQL)).await;
    let row = match result {
        Ok(Ok(row)) => row,
        Ok(Err(e)) => {
            *slot = None;
            return Observation::Failed(e.to_string());
        }
        Err(_) => {
            *slot = None;
            return Observation::Failed("health check timed out".into());
        }
    };
    let col = |i: usize| row.get(i).and_then(|v| v.as_deref());
    Observation::Up {
        in_recovery: col(0) == Some("t"),
        lsn: col(1).and_then(parse_lsn).unwrap_or(0),
        timeline: col(2).and_then(|v| v.parse().ok()).unwrap_or(0),
        lag_ms: col(3).and_then(|v| v.parse().ok()).unwrap_or(0),
    }
}
