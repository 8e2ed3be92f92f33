//! Pools of server connections, one deadpool pool per (database, user, host). Recycling on
//! checkout is cheap (flags, age, a non-blocking read probe); cleanup that needs the server
//! (ROLLBACK, DISCARD ALL) is done by the session before a connection is returned.

use super::conn::ServerConn;
use super::login::{connect, BackendError, LoginParams, ServerSecret};
use crate::protocol::messages::PgError;
use crate::protocol::SqlState;
use crate::util::coarse_clock;
use deadpool::managed::{self, Metrics, Object, PoolError, RecycleError, RecycleResult};
use std::cell::Cell;
use std::future::Future;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

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
    pub generation: (std::sync::Arc<Vec<std::sync::atomic::AtomicU64>>, usize),
}

impl ServerManager {
    fn current_generation(&self) -> u64 {
        self.generation
            .0
            .get(self.generation.1)
            .map(|g| g.load(std::sync::atomic::Ordering::Relaxed))
            .unwrap_or(0)
    }
}

impl managed::Manager for ServerManager {
    // Boxed: the pool moves its objects in and out of its slots on every checkout.
    type Type = Box<ServerConn>;
    type Error = BackendError;

    async fn create(&self) -> Result<Box<ServerConn>, BackendError> {
        if NO_CREATE.get() {
            return Err(BackendError::NotNow);
        }
        // Boxed: a login's state is large and rare; checkouts that reuse a connection
        // should not carry it.
        let conn = Box::pin(connect(&LoginParams {
            addr: &self.addr,
            user: &self.user,
            dbname: &self.dbname,
            secret: &self.secret,
            timeout: self.connect_timeout,
            application_name: None,
        }))
        .await?;
        let mut conn = conn;
        conn.prepared = crate::prepared::ServerStatements::new(self.statements_per_connection);
        conn.generation = self.current_generation();
        tracing::info!(server = %self.addr, user = %self.user, db = %self.dbname, pid = conn.backend_pid, "server connection opened");
        Ok(Box::new(conn))
    }

    async fn recycle(
        &self,
        conn: &mut Box<ServerConn>,
        _: &Metrics,
    ) -> RecycleResult<BackendError> {
        let stale = |limit: Option<Duration>, since: u64| {
            limit.is_some_and(|l| u128::from(coarse_clock::since_ms(since)) > l.as_millis())
        };
        if conn.broken {
            return Err(RecycleError::message("connection is broken"));
        }
        if conn.generation != self.current_generation() {
            return Err(RecycleError::message("the host's role changed"));
        }
        if stale(self.lifetime, conn.created_at) {
            return Err(RecycleError::message("connection reached its lifetime"));
        }
        if stale(self.idle_timeout, conn.returned_at) {
            return Err(RecycleError::message("connection was idle too long"));
        }
        if !conn.is_quiet() {
            return Err(RecycleError::message(
                "server sent data or closed while the connection was idle",
            ));
        }
        Ok(())
    }

    fn detach(&self, conn: &mut Box<ServerConn>) {
        tracing::info!(server = %conn.addr, pid = conn.backend_pid, "server connection closed");
    }
}

pub type ServerPool = managed::Pool<ServerManager>;

/// A server connection checked out of its pool.
pub type Checkout = Object<ServerManager>;

/// Builds a pool of at most `size` connections whose checkout waits at most `wait`.
pub fn build_pool(manager: ServerManager, size: usize, wait: Duration) -> ServerPool {
    let create = manager.connect_timeout;
    // Building only fails without a runtime or with timeouts and no runtime; both are set.
    match managed::Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(wait))
        .create_timeout(Some(create + Duration::from_millis(100)))
        // `recycle` never waits (flags and a non-blocking probe): no timer needed.
        .recycle_timeout(None)
        .queue_mode(deadpool::managed::QueueMode::Lifo)
        .runtime(deadpool::Runtime::Tokio1)
        .build()
    {
        Ok(p) => p,
        Err(e) => unreachable!("pool builder with a runtime cannot fail: {e}"),
    }
}

thread_local! {
    /// Set while [`checkout_idle`] polls: the pool must not start opening a connection.
    static NO_CREATE: Cell<bool> = const { Cell::new(false) };
}

/// Takes an idle connection that passes its checks, without waiting and without opening
/// one; None otherwise (the caller then goes through [`checkout`]). Synchronous, so a request
/// served by an idle connection carries no checkout future.
pub fn checkout_idle(pool: &ServerPool) -> Option<Checkout> {
    let mut at_once = pool.timeouts();
    at_once.wait = Some(Duration::ZERO);
    let get = std::pin::pin!(pool.timeout_get(&at_once));
    let mut cx = Context::from_waker(Waker::noop());
    NO_CREATE.set(true);
    // Nothing in a get can wait here: the permit is taken without waiting, `recycle` does
    // not wait and `create` fails at once; so it is always ready after one poll.
    let polled = get.poll(&mut cx);
    NO_CREATE.set(false);
    match polled {
        Poll::Ready(Ok(conn)) => Some(conn),
        _ => None,
    }
}

/// Checks out a connection: at once when one is idle (or the pool has room to open one, within
/// the connect timeout), otherwise waiting up to the pool's checkout timeout. The first try
/// arms no timer. Callers box the future that awaits this (it is large and only needed
/// when no connection is idle).
pub async fn checkout(pool: &ServerPool) -> Result<Checkout, PoolError<BackendError>> {
    let mut at_once = pool.timeouts();
    at_once.wait = Some(Duration::ZERO);
    match pool.timeout_get(&at_once).await {
        Err(PoolError::Timeout(managed::TimeoutType::Wait)) => pool.get().await,
        other => other,
    }
}

/// Returns a connection to its pool if it is idle and clean, or closes it.
pub fn release(mut conn: Checkout) {
    if conn.broken {
        drop(Object::take(conn));
    } else {
        conn.returned_at = coarse_clock::now_ms();
        drop(conn);
    }
}

/// Closes a checked-out connection instead of returning it.
pub fn discard(conn: Checkout) {
    drop(Object::take(conn));
}

/// Maps a checkout failure to the error the client sees.
pub fn checkout_error(e: PoolError<BackendError>, pool: &ServerPool, what: &str) -> PgError {
    match e {
        PoolError::Backend(b) => b.to_client_error(),
        PoolError::Timeout(managed::TimeoutType::Wait) => {
            let s = pool.status();
            PgError::error(
                SqlState::TOO_MANY_CONNECTIONS,
                format!(
                    "no server connection available for {what}: the pool is exhausted \
                     ({} of {} in use) and none was freed within the checkout timeout",
                    s.size - s.available.min(s.size),
                    s.max_size
                ),
            )
            .with_hint("raise pool_size or checkout_timeout_ms, or shorten transactions")
        }
        PoolError::Timeout(_) => PgError::error(
            SqlState::CONNECTION_FAILURE,
            format!("timed out opening a server connection for {what}"),
        ),
        PoolError::Closed => PgError::error(
            SqlState::ADMIN_SHUTDOWN,
            format!("the pool for {what} is closed"),
        ),
        other => PgError::error(
            SqlState::CONNECTION_FAILURE,
            format!("could not get a server connection for {what}: {other}"),
        ),
    }
}
