//! Pools of server connections, one deadpool pool per (database, user, host). Recycling on
//! checkout is cheap (flags, age, a non-blocking read probe); cleanup that needs the server
//! (ROLLBACK, DISCARD ALL) is done by the session before a connection is returned.

use super::conn::ServerConn;
use super::login::{connect, BackendError, LoginParams, ServerSecret};
use crate::protocol::messages::PgError;
use crate::protocol::SqlState;
use deadpool::managed::{self, Metrics, Object, PoolError, RecycleError, RecycleResult};
use std::time::{Duration, Instant};

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
    type Type = ServerConn;
    type Error = BackendError;

    async fn create(&self) -> Result<ServerConn, BackendError> {
        let conn = connect(&LoginParams {
            addr: &self.addr,
            user: &self.user,
            dbname: &self.dbname,
            secret: &self.secret,
            timeout: self.connect_timeout,
            application_name: None,
        })
        .await?;
        let mut conn = conn;
        conn.prepared = crate::prepared::ServerStatements::new(self.statements_per_connection);
        conn.generation = self.current_generation();
        tracing::info!(server = %self.addr, user = %self.user, db = %self.dbname, pid = conn.backend_pid, "server connection opened");
        Ok(conn)
    }

    async fn recycle(&self, conn: &mut ServerConn, _: &Metrics) -> RecycleResult<BackendError> {
        let now = Instant::now();
        let stale = |limit: Option<Duration>, since: Instant| {
            limit.is_some_and(|l| now.duration_since(since) > l)
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

    fn detach(&self, conn: &mut ServerConn) {
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
        .recycle_timeout(Some(Duration::from_secs(1)))
        .queue_mode(deadpool::managed::QueueMode::Lifo)
        .runtime(deadpool::Runtime::Tokio1)
        .build()
    {
        Ok(p) => p,
        Err(e) => unreachable!("pool builder with a runtime cannot fail: {e}"),
    }
}

/// Returns a connection to its pool if it is idle and clean, or closes it.
pub fn release(mut conn: Checkout) {
    if conn.broken {
        drop(Object::take(conn));
    } else {
        conn.returned_at = Instant::now();
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
