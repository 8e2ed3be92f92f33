//! A pool's limits beyond its size: a reserve of connections a checkout may open after
//! waiting `reserve_pool_timeout_ms` with the pool full (`reserve_pool_size`), keeping at
//! least `min_pool_size` connections open and warm ([`fill_to`]), and a database's cap on one
//! host's connections across all its users' pools (`max_db_connections`, [`HostCap`]).

use super::{PoolError, PoolInner, ServerPool};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// `max_db_connections` on one host: the connections open (or opening) in every user's pool
/// of the database there, and those pools, so that a pool at the cap can close another's
/// idle connection to make room.
#[derive(Default)]
pub struct HostCap {
    /// 0: no cap.
    max: usize,
    open: AtomicUsize,
    pools: Mutex<Vec<Weak<PoolInner>>>,
}

impl HostCap {
    pub fn new(max: usize) -> Arc<HostCap> {
        Arc::new(HostCap {
            max,
            ..HostCap::default()
        })
    }

    /// The cap (0: none).
    pub fn max(&self) -> usize {
        self.max
    }

    /// A slot for one more connection, if the cap allows.
    pub(super) fn try_take(&self) -> bool {
        self.max == 0
            || self
                .open
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < self.max).then_some(n + 1)
                })
                .is_ok()
    }

    /// A connection closed (or failed to open).
    pub(super) fn give_back(&self) {
        if self.max > 0 {
            self.open.fetch_sub(1, Ordering::AcqRel);
        }
    }

    pub(super) fn register(&self, pool: &Arc<PoolInner>) {
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        pools.retain(|p| p.strong_count() > 0);
        pools.push(Arc::downgrade(pool));
    }

    /// Closes one idle connection of another user's pool, making room; false if none had
    /// one.
    pub(super) fn evict_idle(&self, except: &PoolInner) -> bool {
        let pools: Vec<Arc<PoolInner>> = {
            let pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
            pools.iter().filter_map(Weak::upgrade).collect()
        };
        for pool in pools {
            if std::ptr::eq(Arc::as_ptr(&pool), except) {
                continue;
            }
            // The least recently returned one.
            let conn = {
                let mut st = pool.lock();
                (!st.idle.is_empty()).then(|| st.idle.remove(0))
            };
            if let Some(conn) = conn {
                tracing::info!(server = %pool.manager.addr, user = %pool.manager.user, "max_db_connections: idle connection closed to make room");
                pool.close(conn);
                return true;
            }
        }
        false
    }
}

/// The reserve: how many connections beyond the pool's size, after how long a wait.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reserve {
    pub size: usize,
    pub after: Duration,
}

impl PoolInner {
    /// When a waiting checkout may try the reserve (None: the pool has none).
    pub(super) fn reserve_after(&self) -> Option<Duration> {
        (self.reserve.size > 0).then_some(self.reserve.after)
    }

    /// A slot beyond the pool's size, if the reserve has one left.
    pub(super) fn take_reserve(&self) -> bool {
        let mut st = self.lock();
        if st.closed || st.size >= self.max_size + self.reserve.size || !self.cap.try_take() {
            return false;
        }
        st.size += 1;
        true
    }
}

/// Opens connections until `min` are open (or being opened), up to the pool's size, and
/// leaves them idle; returns how many it opened. Stops at the first failure.
pub async fn fill_to(pool: &ServerPool, min: usize) -> Result<usize, PoolError> {
    let inner: &Arc<PoolInner> = &pool.inner;
    let mut opened = 0;
    loop {
        {
            let mut st = inner.lock();
            if st.closed || st.size >= min.min(inner.max_size) || !inner.cap.try_take() {
                return Ok(opened);
            }
            st.size += 1;
        }
        // Returned at once: idle, or handed to a checkout that waits.
        drop(inner.open().await?);
        opened += 1;
    }
}
