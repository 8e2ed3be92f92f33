//! Pools of server connections, one per (database, user, host): a LIFO list of idle
//! connections, a count of open ones, and a FIFO queue of waiting checkouts that a returned
//! connection is handed to directly. Recycling on checkout is cheap (flags, age, a
//! non-blocking read probe); cleanup that needs the server (ROLLBACK, DISCARD ALL) is done by
//! the session before a connection is returned.
//!
//! Not deadpool (which the design names): measured on pgbench, deadpool's checkout and return
//! (semaphore, slot queue, hooks, metrics with a clock read) were about 1,250 instructions per
//! transaction, and a checkout that waits took a semaphore permit and then the slot queue,
//! with a timer armed for every wait. Here an idle checkout is one lock and a pop, a return
//! with waiters is one lock and a hand-off, and a waiting checkout arms its timer once.

mod limits;
mod report;

pub use limits::{fill_to, HostCap, Reserve};
pub use report::{Member, PoolReport};

use super::conn::ServerConn;
use super::login::{connect, BackendError, LoginParams};
use crate::auth::ServerSecret;
use crate::net::ServerTlsConfig;
use crate::protocol::messages::PgError;
use crate::protocol::SqlState;
use crate::util::coarse_clock;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use tokio::sync::oneshot;

/// Timeouts that shape every pool of a cluster.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub checkout_timeout: Duration,
    pub connect_timeout: Duration,
    pub lifetime: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub statements_per_connection: usize,
}

/// Everything needed to open connections for one (database, user, host).
pub struct ServerManager {
    pub addr: String,
    pub user: String,
    pub dbname: String,
    pub secret: ServerSecret,
    pub connect_timeout: Duration,
    /// Close connections older than this (None: never).
    pub lifetime: Option<Duration>,
    /// Close connections idle in the pool longer than this (None: never).
    pub idle_timeout: Option<Duration>,
    /// Prepared statements kept per connection.
    pub statements_per_connection: usize,
    /// The cluster's per-host generations and this host's index: connections made before
    /// the host's role last changed are not reused.
    pub generation: (Arc<Vec<std::sync::atomic::AtomicU64>>, usize),
    /// How to connect (`server_tls`).
    pub tls: Arc<ServerTlsConfig>,
}

impl ServerManager {
    fn current_generation(&self) -> u64 {
        self.generation
            .0
            .get(self.generation.1)
            .map(|g| g.load(std::sync::atomic::Ordering::Relaxed))
            .unwrap_or(0)
    }

    async fn create(&self) -> Result<Box<ServerConn>, BackendError> {
        // Boxed: a login's state is large and rare; checkouts that reuse a connection
        // should not carry it.
        let mut conn = Box::pin(connect(&LoginParams {
            addr: &self.addr,
            user: &self.user,
            dbname: &self.dbname,
            secret: &self.secret,
            timeout: self.connect_timeout,
            application_name: None,
            statements_per_connection: self.statements_per_connection,
            tls: &self.tls,
            replication: false,
        }))
        .await?;
        conn.generation = self.current_generation();
        tracing::info!(server = %self.addr, user = %self.user, db = %self.dbname, pid = conn.cancel.pid, "server connection opened");
        Ok(Box::new(conn))
    }

    /// Why a pooled connection must not be reused, if it must not.
    fn unusable(&self, conn: &ServerConn) -> Option<&'static str> {
        let stale = |limit: Option<Duration>, since: u64| {
            limit.is_some_and(|l| u128::from(coarse_clock::since_ms(since)) > l.as_millis())
        };
        if conn.broken {
            Some("connection is broken")
        } else if conn.generation != self.current_generation() {
            Some("the host's role changed")
        } else if stale(self.lifetime, conn.created_at) {
            Some("connection reached its lifetime")
        } else if stale(self.idle_timeout, conn.returned_at) {
            Some("connection was idle too long")
        } else if !conn.is_quiet() {
            Some("server sent data or closed while the connection was idle")
        } else {
            None
        }
    }
}

/// Why a checkout failed.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("timed out waiting for an idle server connection")]
    WaitTimeout,
    #[error("timed out waiting for room under max_db_connections")]
    CapTimeout(usize),
    #[error("timed out opening a server connection")]
    CreateTimeout,
    #[error("the pool is closed")]
    Closed,
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// What a waiting checkout is given.
enum Grant {
    /// A returned connection (still to be recycled by the waiter).
    Conn(Checkout),
    /// A connection was closed: there may be room to open one.
    Retry(RetryToken),
}

struct PoolState {
    /// Idle connections, most recently returned last (LIFO: warm ones are reused first).
    /// Boxed so a checkout moves a pointer, not the connection.
    #[allow(clippy::vec_box)]
    idle: Vec<Box<ServerConn>>,
    /// Connections open or being opened (idle, checked out, or logging in).
    size: usize,
    /// Checkouts waiting for a connection, oldest first, with when they began to wait
    /// ([`coarse_clock`] ms). Closed senders (the waiter gave up) are skipped when popped.
    waiters: VecDeque<(u64, oneshot::Sender<Grant>)>,
    /// The open connections by backend pid (for SHOW SERVERS; changed only when a
    /// connection opens or closes).
    members: HashMap<i32, Member>,
    /// Shut down: no checkouts, returned connections are closed.
    closed: bool,
}

struct PoolInner {
    manager: ServerManager,
    max_size: usize,
    wait: Duration,
    /// Connections beyond `max_size` after a long wait (`reserve_pool_size`).
    reserve: Reserve,
    /// The database's cap on this host across users (`max_db_connections`).
    cap: Arc<HostCap>,
    state: Mutex<PoolState>,
}

/// A pool of connections to one host for one user. Cheap to clone.
#[derive(Clone)]
pub struct ServerPool {
    inner: Arc<PoolInner>,
}

/// A server connection checked out of its pool. Dropping it returns it (a broken one is
/// closed); [`discard`] closes it.
pub struct Checkout {
    /// Always Some until the checkout is consumed by [`Drop`] or [`discard`] (both take
    /// it by value), so the `expect`s in `Deref` cannot fire.
    conn: Option<Box<ServerConn>>,
    pool: Arc<PoolInner>,
}

impl std::ops::Deref for Checkout {
    type Target = ServerConn;
    fn deref(&self) -> &ServerConn {
        self.conn
            .as_deref()
            .expect("a live checkout holds its connection")
    }
}

impl std::ops::DerefMut for Checkout {
    fn deref_mut(&mut self) -> &mut ServerConn {
        self.conn
            .as_deref_mut()
            .expect("a live checkout holds its connection")
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if conn.broken {
                self.pool.close(conn);
            } else {
                self.pool.put_back(conn);
            }
        }
    }
}

/// Passes a retry on to the next waiter if the waiter it was sent to is gone.
struct RetryToken {
    pool: Option<Arc<PoolInner>>,
}

impl Drop for RetryToken {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.wake_retry();
        }
    }
}

/// Owns a counted slot while a connection is being opened: if the login fails or the
/// checkout is dropped meanwhile, the slot is given back.
struct OpeningSlot<'a>(Option<&'a Arc<PoolInner>>);

impl Drop for OpeningSlot<'_> {
    fn drop(&mut self) {
        if let Some(pool) = self.0.take() {
            pool.lock().size -= 1;
            pool.cap.give_back();
            pool.wake_retry();
        }
    }
}

enum Take {
    Closed,
    Idle(Box<ServerConn>),
    Open,
    Wait(oneshot::Receiver<Grant>),
    /// The pool has room but the database's cap on the host does not.
    Capped,
}

impl PoolInner {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An idle connection, or a slot to open one, or a place in the queue.
    fn take(&self) -> Take {
        let mut st = self.lock();
        if st.closed {
            return Take::Closed;
        }
        if let Some(conn) = st.idle.pop() {
            return Take::Idle(conn);
        }
        if st.size < self.max_size {
            if !self.cap.try_take() {
                return Take::Capped;
            }
            st.size += 1;
            return Take::Open;
        }
        let (tx, rx) = oneshot::channel();
        st.waiters.push_back((coarse_clock::now_ms(), tx));
        Take::Wait(rx)
    }

    /// Hands a returned connection to the oldest waiter, or keeps it idle.
    fn put_back(self: &Arc<Self>, conn: Box<ServerConn>) {
        let mut conn = conn;
        loop {
            let waiter = {
                let mut st = self.lock();
                if st.closed {
                    drop(st);
                    self.close(conn);
                    return;
                }
                match st.waiters.pop_front() {
                    Some((_, w)) => w,
                    None => {
                        st.idle.push(conn);
                        return;
                    }
                }
            };
            let grant = Grant::Conn(Checkout {
                conn: Some(conn),
                pool: self.clone(),
            });
            match waiter.send(grant) {
                Ok(()) => return,
                // That waiter gave up: take the connection back and try the next one.
                Err(Grant::Conn(mut back)) => match back.conn.take() {
                    Some(c) => conn = c,
                    None => return,
                },
                Err(Grant::Retry(_)) => return,
            }
        }
    }

    /// Closes a connection and lets a waiter use the freed slot.
    fn close(self: &Arc<Self>, conn: Box<ServerConn>) {
        tracing::info!(server = %conn.addr, pid = conn.cancel.pid, "server connection closed");
        let pid = conn.cancel.pid;
        drop(conn);
        let mut st = self.lock();
        st.size -= 1;
        st.members.remove(&pid);
        drop(st);
        self.cap.give_back();
        self.wake_retry();
    }

    /// Tells the oldest live waiter to try again (a slot was freed).
    fn wake_retry(self: &Arc<Self>) {
        loop {
            let Some((_, waiter)) = self.lock().waiters.pop_front() else {
                return;
            };
            let token = RetryToken {
                pool: Some(self.clone()),
            };
            match waiter.send(Grant::Retry(token)) {
                Ok(()) => return,
                Err(Grant::Retry(mut t)) => t.pool = None,
                Err(Grant::Conn(_)) => return,
            }
        }
    }

    /// A checkout of `conn` if it passes its checks; otherwise it is closed.
    fn recycle(self: &Arc<Self>, conn: Box<ServerConn>) -> Option<Checkout> {
        match self.manager.unusable(&conn) {
            None => Some(Checkout {
                conn: Some(conn),
                pool: self.clone(),
            }),
            Some(why) => {
                tracing::debug!(server = %conn.addr, pid = conn.cancel.pid, why, "pooled connection not reused");
                self.close(conn);
                None
            }
        }
    }

    /// Opens a connection in the slot just counted for it.
    async fn open(self: &Arc<Self>) -> Result<Checkout, PoolError> {
        let mut slot = OpeningSlot(Some(self));
        let limit = self.manager.connect_timeout + Duration::from_millis(100);
        let conn = match tokio::time::timeout(limit, self.manager.create()).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(PoolError::Backend(e)),
            Err(_) => return Err(PoolError::CreateTimeout),
        };
        // The slot now belongs to the connection.
        slot.0 = None;
        let member = Member {
            connected_at: SystemTime::now(),
            local: conn.stream.local_addr().ok(),
            tls: conn.stream.is_tls(),
        };
        self.lock().members.insert(conn.cancel.pid, member);
        Ok(Checkout {
            conn: Some(conn),
            pool: self.clone(),
        })
    }
}

impl ServerPool {
    /// Connections checked out or being opened.
    pub fn in_use(&self) -> usize {
        let st = self.inner.lock();
        st.size - st.idle.len()
    }

    pub fn max_size(&self) -> usize {
        self.inner.max_size
    }

    /// Shuts the pool: idle connections are closed, so are busy ones when returned, and
    /// checkouts fail.
    pub fn close(&self) {
        let waiters = {
            let mut st = self.inner.lock();
            st.closed = true;
            std::mem::take(&mut st.waiters)
        };
        // Their checkouts see the closed pool when they try again.
        drop(waiters);
        self.close_idle();
    }

    /// Closes every idle connection (busy ones fail their checks when returned); returns how
    /// many were closed.
    pub fn close_idle(&self) -> usize {
        let idle = std::mem::take(&mut self.inner.lock().idle);
        let n = idle.len();
        for conn in idle {
            self.inner.close(conn);
        }
        n
    }
}

/// Builds a pool of at most `size` connections (plus `reserve` after a long wait) whose
/// checkout waits at most `wait`.
pub fn build_pool(
    manager: ServerManager,
    size: usize,
    (reserve, cap): (Reserve, Arc<HostCap>),
    wait: Duration,
) -> ServerPool {
    let pool = ServerPool {
        inner: Arc::new(PoolInner {
            manager,
            max_size: size,
            wait,
            reserve,
            cap,
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                size: 0,
                waiters: VecDeque::new(),
                members: HashMap::new(),
                closed: false,
            }),
        }),
    };
    pool.inner.cap.register(&pool.inner);
    pool
}

/// Takes an idle connection that passes its checks, without waiting and without opening
/// one; None otherwise (the caller then goes through [`checkout`]). Synchronous, so a request
/// served by an idle connection carries no checkout future.
pub fn checkout_idle(pool: &ServerPool) -> Option<Checkout> {
    loop {
        let conn = pool.inner.lock().idle.pop()?;
        if let Some(c) = pool.inner.recycle(conn) {
            return Some(c);
        }
    }
}

/// Checks out a connection: at once when one is idle (or the pool has room to open one,
/// within the connect timeout), otherwise waiting up to the pool's checkout timeout for one
/// to be returned. The timer is armed only when the checkout has to wait. Callers box the
/// future that awaits this (it is only needed when no connection is idle).
pub async fn checkout(pool: &ServerPool) -> Result<Checkout, PoolError> {
    let inner = &pool.inner;
    let mut deadline = None;
    let mut reserve = None;
    let mut reserve_tried = false;
    loop {
        match inner.take() {
            Take::Closed => return Err(PoolError::Closed),
            Take::Idle(conn) => {
                if let Some(c) = inner.recycle(conn) {
                    return Ok(c);
                }
            }
            Take::Open => return inner.open().await,
            Take::Capped => {
                // Room is made by closing another user's idle connection; otherwise try
                // again shortly, until the checkout's deadline.
                let now = tokio::time::Instant::now();
                let at = *deadline.get_or_insert_with(|| now + inner.wait);
                if now >= at {
                    return Err(PoolError::CapTimeout(inner.cap.max()));
                }
                if !inner.cap.evict_idle(inner) {
                    tokio::time::sleep_until(at.min(now + Duration::from_millis(20))).await;
                }
            }
            Take::Wait(rx) => {
                let now = tokio::time::Instant::now();
                let at = *deadline.get_or_insert_with(|| now + inner.wait);
                // With a reserve, the wait is cut short once to try it.
                let reserve_at = inner
                    .reserve_after()
                    .map(|d| *reserve.get_or_insert(now + d));
                let until = match reserve_at {
                    Some(r) if !reserve_tried && r < at => r,
                    _ => at,
                };
                match tokio::time::timeout_at(until, rx).await {
                    Ok(Ok(Grant::Conn(mut c))) => {
                        if let Some(conn) = c.conn.take() {
                            if let Some(c) = inner.recycle(conn) {
                                return Ok(c);
                            }
                        }
                    }
                    Ok(Ok(Grant::Retry(mut token))) => token.pool = None,
                    // The pool was closed (its waiters dropped): the next take says so.
                    Ok(Err(_)) => {}
                    Err(_) if until < at => {
                        reserve_tried = true;
                        if inner.take_reserve() {
                            tracing::info!(server = %inner.manager.addr, user = %inner.manager.user, "pool full: opening a reserve connection");
                            return inner.open().await;
                        }
                    }
                    Err(_) => return Err(PoolError::WaitTimeout),
                }
            }
        }
    }
}

/// Returns a connection to its pool if it is idle and clean, or closes it.
pub fn release(mut conn: Checkout) {
    conn.returned_at = coarse_clock::now_ms();
    drop(conn);
}

/// Closes a checked-out connection instead of returning it.
pub fn discard(mut conn: Checkout) {
    if let Some(c) = conn.conn.take() {
        conn.pool.close(c);
    }
}

/// Maps a checkout failure to the error the client sees.
pub fn checkout_error(e: PoolError, pool: &ServerPool, what: &str) -> PgError {
    match e {
        PoolError::Backend(b) => b.to_client_error(),
        PoolError::WaitTimeout => PgError::error(
            SqlState::TOO_MANY_CONNECTIONS,
            format!(
                "no server connection available for {what}: the pool is exhausted \
                 ({} of {} in use) and none was freed within the checkout timeout",
                pool.in_use(),
                pool.max_size()
            ),
        )
        .with_hint("raise pool_size or checkout_timeout_ms, or shorten transactions"),
        PoolError::CapTimeout(max) => PgError::error(
            SqlState::TOO_MANY_CONNECTIONS,
            format!(
                "no server connection available for {what}: the database's max_db_connections \
                 ({max}) connections to this server are busy and none was freed within the \
                 checkout timeout"
            ),
        )
        .with_hint("raise max_db_connections or checkout_timeout_ms, or shorten transactions"),
        PoolError::CreateTimeout => PgError::error(
            SqlState::CONNECTION_FAILURE,
            format!("timed out opening a server connection for {what}"),
        ),
        PoolError::Closed => PgError::error(
            SqlState::ADMIN_SHUTDOWN,
            format!("the pool for {what} is closed"),
        ),
    }
}
