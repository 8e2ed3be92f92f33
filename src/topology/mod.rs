//! Which host is the primary, which are replicas, and how far each has got in the WAL:
//! a checker task per cluster polls every host over its own connection and publishes an
//! immutable snapshot that routing reads without waiting.

use crate::backend::login::{connect, LoginParams, ServerSecret};
use crate::backend::query::{parse_lsn, query_row};
use crate::backend::ServerConn;
use bytes::BytesMut;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Unknown,
    Primary,
    Replica,
    Down,
}

#[derive(Debug, Clone)]
pub struct HostState {
    pub addr: String,
    pub role: Role,
    /// The primary's current WAL position, or a replica's replay position.
    pub lsn: u64,
    pub checked_at: Option<Instant>,
    pub error: Option<String>,
}

/// One moment's view of a cluster.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub hosts: Vec<HostState>,
}

impl Snapshot {
    pub fn primary(&self) -> Option<usize> {
        self.hosts.iter().position(|h| h.role == Role::Primary)
    }

    /// Indexes of replicas that have replayed at least `min_lsn`.
    pub fn replicas_at(&self, min_lsn: u64) -> impl Iterator<Item = usize> + '_ {
        self.hosts
            .iter()
            .enumerate()
            .filter(move |(_, h)| h.role == Role::Replica && h.lsn >= min_lsn)
            .map(|(i, _)| i)
    }

    pub fn has_replicas(&self) -> bool {
        self.hosts.iter().any(|h| h.role == Role::Replica)
    }
}

/// The published snapshot of one cluster.
pub struct Topology {
    tx: watch::Sender<Arc<Snapshot>>,
}

/// How the checker logs in.
pub struct CheckerLogin {
    pub user: String,
    pub dbname: String,
    pub secret: ServerSecret,
    pub timeout: Duration,
}

impl Topology {
    pub fn new(hosts: &[String]) -> Topology {
        let hosts = hosts
            .iter()
            .map(|a| HostState {
                addr: a.clone(),
                role: Role::Unknown,
                lsn: 0,
                checked_at: None,
                error: None,
            })
            .collect();
        let (tx, _) = watch::channel(Arc::new(Snapshot { hosts }));
        Topology { tx }
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.tx.borrow().clone()
    }

    /// Waits for the next published snapshot (tests and tools).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.tx.subscribe()
    }

    /// Records what a pooled connection revealed about its host's role.
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
        let mut buf = BytesMut::new();
        loop {
            let mut hosts = Vec::with_capacity(addrs.len());
            for (i, addr) in addrs.iter().enumerate() {
                let state = check_host(addr, &mut conns[i], &login, &mut buf).await;
                hosts.push(state);
            }
            let previous = self.snapshot();
            for (old, new) in previous.hosts.iter().zip(&hosts) {
                if old.role != new.role {
                    tracing::info!(server = %new.addr, from = ?old.role, to = ?new.role, error = ?new.error, "host role changed");
                }
            }
            self.tx.send_replace(Arc::new(Snapshot { hosts }));
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}

/// `application_name` of the health-check connections, to tell them apart on the server.
pub const HEALTH_CHECK_APPLICATION: &str = "switchyard-health-check";

const CHECK_SQL: &str = "SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() \
     THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END";

async fn check_host(
    addr: &str,
    slot: &mut Option<ServerConn>,
    login: &CheckerLogin,
    buf: &mut BytesMut,
) -> HostState {
    let down = |e: String| HostState {
        addr: addr.to_string(),
        role: Role::Down,
        lsn: 0,
        checked_at: Some(Instant::now()),
        error: Some(e),
    };
    if slot.is_none() {
        let params = LoginParams {
            addr,
            user: &login.user,
            dbname: &login.dbname,
            secret: &login.secret,
            timeout: login.timeout,
            application_name: Some(HEALTH_CHECK_APPLICATION),
        };
        match connect(&params).await {
            Ok(c) => *slot = Some(c),
            Err(e) => return down(e.to_string()),
        }
    }
    let Some(conn) = slot.as_mut() else {
        return down("no connection".into());
    };
    buf.clear();
    let result =
        tokio::time::timeout(login.timeout, query_row(&mut conn.stream, buf, CHECK_SQL)).await;
    let row = match result {
        Ok(Ok(row)) => row,
        Ok(Err(e)) => {
            *slot = None;
            return down(e.to_string());
        }
        Err(_) => {
            *slot = None;
            return down("health check timed out".into());
        }
    };
    let replica = row.first().and_then(|v| v.as_deref()) == Some("t");
    let lsn = row
        .get(1)
        .and_then(|v| v.as_deref())
        .and_then(parse_lsn)
        .unwrap_or(0);
    HostState {
        addr: addr.to_string(),
        role: if replica {
            Role::Replica
        } else {
            Role::Primary
        },
        lsn,
        checked_at: Some(Instant::now()),
        error: None,
    }
}
