//! What a pool holds at one moment, for SHOW POOLS, SHOW SERVERS and the metrics: its open
//! connections by backend pid (each idle or busy), those being opened, and the checkouts
//! waiting with how long the oldest has waited. Read under the pool's lock, never counted
//! on the hot path.

use super::ServerPool;
use crate::util::coarse_clock;
use std::net::SocketAddr;
use std::time::SystemTime;

/// An open server connection, as SHOW SERVERS reports it.
#[derive(Debug, Clone)]
pub struct Member {
    pub connected_at: SystemTime,
    pub local: Option<SocketAddr>,
    pub tls: bool,
}

/// A pool's state at one moment (SHOW POOLS, SHOW SERVERS, metrics).
#[derive(Debug, Default)]
pub struct PoolReport {
    /// Open connections: backend pid, what is known of it, and whether it is idle.
    pub members: Vec<(i32, Member, bool)>,
    pub idle: usize,
    /// Checked out (in use by clients).
    pub active: usize,
    /// Being opened (logging in).
    pub opening: usize,
    /// Checkouts waiting, and how long the oldest has waited (ms).
    pub waiting: usize,
    pub max_wait_ms: u64,
}

impl ServerPool {
    /// What the pool holds now.
    pub fn report(&self) -> PoolReport {
        let st = self.inner.lock();
        let idle: std::collections::HashSet<i32> = st.idle.iter().map(|c| c.cancel.pid).collect();
        let live = st.waiters.iter().filter(|(_, w)| !w.is_closed());
        let now = coarse_clock::now_ms();
        let (waiting, oldest) = live.fold((0, None), |(n, o): (usize, Option<u64>), (t, _)| {
            (n + 1, Some(o.map_or(*t, |o| o.min(*t))))
        });
        PoolReport {
            members: st
                .members
                .iter()
                .map(|(pid, m)| (*pid, m.clone(), idle.contains(pid)))
                .collect(),
            idle: st.idle.len(),
            active: st.members.len().saturating_sub(st.idle.len()),
            opening: st.size.saturating_sub(st.members.len()),
            waiting,
            max_wait_ms: oldest.map_or(0, |t| now.saturating_sub(t)),
        }
    }

    /// The host this pool connects to ("host:port").
    pub fn addr(&self) -> &str {
        &self.inner.manager.addr
    }
}
