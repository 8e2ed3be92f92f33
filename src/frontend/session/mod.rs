//! The request loop of one logged-in client. Idle, it waits for the client; with a request,
//! it attaches a server connection (checkout plus parameter sync), forwards client frames as
//! they come, streams server frames back, and in transaction mode releases the connection at
//! the ReadyForQuery('I') that answers the client's last sync point.

mod accounting;
mod attach;
mod attached;
mod cache_path;
mod forward;
mod greeting;
mod server_input;
mod timeouts;

pub use attached::Attached;

use super::client_io::ClientIo;
use super::clients::{ClientInfo, Registration};
use super::local_answers::{answer_locally, LocalState};
use super::route_request::{batch_only_reads, decide, Decision, ReadYourWritesState};
use super::Shared;
use crate::backend::own_queries::{parse_lsn, query_row};
use crate::backend::pool::{self, Checkout};
use crate::config::PoolMode;
use crate::params::{self, ParamChange, ParamMap};
use crate::prepared::rewrite::{answer_prepare_only, sql_prepared, Rewriter, SqlPrepared};
use crate::prepared::{ClientStatements, ServerStatements};
use crate::protocol::frame::Frames;
use crate::protocol::messages::{self, PgError, TxStatus};
use crate::protocol::SqlState;
use crate::router::{Reason, Target};
use crate::topology::{Cluster, UserPools};
use crate::util::buffers;
use bytes::{Buf, BytesMut};
use server_input::ServerInput;
use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// "user@database" of a session, for logs.
pub struct Label<'a>(&'a str, &'a str);

impl std::fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.0, self.1)
    }
}

/// A socket's peer for logs, read when logged ("[local]" on a Unix-domain socket, "?" once
/// the socket cannot tell).
struct PeerOf<'a>(&'a crate::net::Stream);

impl std::fmt::Display for PeerOf<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.client_addr() {
            Ok(a) => write!(f, "{a}"),
            Err(_) => f.write_str("?"),
        }
    }
}

/// What woke an idle session.
enum Woke {
    Client,
    Gone,
    Shutdown,
    /// `client_idle_timeout_ms` passed.
    IdleTimeout,
}

/// What the loop does next.
enum Flow {
    Continue,
    Close,
}

pub struct Session {
    shared: Arc<Shared>,
    io: ClientIo,
    input: ServerInput,
    cluster: Arc<Cluster>,
    pools: Arc<UserPools>,
    mode: PoolMode,
    startup: ParamMap,
    wanted: params::Wanted,
    /// Boxed: an idle client holds none, and the session stays small.
    server: Option<Box<Attached>>,
    local: LocalState,
    ryw: ReadYourWritesState,
    statements: ClientStatements,
    cancel: Registration,
}

impl Session {
    pub fn new(
        shared: Arc<Shared>,
        io: ClientIo,
        cluster: Arc<Cluster>,
        user: &str,
        startup_params: &[(String, String)],
    ) -> Session {
        let secret = shared.users.server_secret(&cluster.db.name, user);
        let pools = cluster.user_pools(user, &secret);
        let startup = shared
            .startup_maps
            .share(params::startup_params(startup_params));
        let cancel = shared.clients.register_as(Some(ClientInfo {
            cluster: cluster.clone(),
            pools: pools.clone(),
            peer: io.stream.client_addr().unwrap_or_else(|_| {
                crate::net::ClientAddr::Tcp(std::net::SocketAddr::from(([0, 0, 0, 0], 0)))
            }),
            connected_at: std::time::SystemTime::now()
                .duration_since(std::time::SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            tls: io.stream.is_tls(),
            startup: startup.clone(),
        }));
        Session {
            mode: cluster.db.pool_mode,
            io,
            input: ServerInput::default(),
            cluster,
            pools,
            wanted: params::Wanted::new(startup.clone(), &shared.param_versions),
            startup,
            server: None,
            local: LocalState::default(),
            ryw: ReadYourWritesState::default(),
            statements: ClientStatements::default(),
            cancel,
            shared,
        }
    }

    /// "user@database", for logs (formatted when logged, not stored per session).
    pub fn label(&self) -> Label<'_> {
        Label(&self.pools.user, &self.cluster.db.name)
    }

    /// Finishes login (parameters, key, ReadyForQuery), then serves requests until the end.
    /// Takes the session by value, so the client's task holds one future with the session
    /// inside rather than the session beside a future that borrows it.
    #[allow(clippy::manual_async_fn)] // on purpose, see the comment below
    pub fn run(mut self) -> impl Future<Output = ()> + Send {
        // Not an `async fn`: rustc would move the argument into a second slot of the future
        // (the whole session again, per idle client); an async block uses its capture in
        // place.
        async move {
            // Boxed like every rare path: the future of `run` is most of each idle client's
            // task, and would otherwise keep room for their state (an error is 100 bytes).
            if Box::pin(self.login_or_refuse()).await {
                self.serve().await;
            }
            tracing::info!(peer = %PeerOf(&self.io.stream), client = %self.label(), "client disconnected");
        }
    }

    /// Serves requests until the client leaves or is told to.
    async fn serve(&mut self) {
        // Whether the shutdown grace was given.
        let mut graced = false;
        loop {
            // Idle: only the session and this wait are held. A request's work happens in a
            // boxed future that lives for one transaction, so idle clients stay small.
            // A hand-written wait: `readable()` and `select!` would keep a 150-byte waiter and
            // their own state in every idle session's task; `poll_read_ready` keeps the waker
            // in the socket's registration, and `poll_shutdown` in the cancel registration.
            // Boxed, and only with client_idle_timeout_ms set: most idle clients hold none.
            let mut idle_timer = self.idle_timer();
            let woke = std::future::poll_fn(|cx| {
                if let Poll::Ready(r) = self.io.stream.poll_read_ready(cx) {
                    return Poll::Ready(match r {
                        Ok(()) => Woke::Client,
                        Err(_) => Woke::Gone,
                    });
                }
                if let Some(t) = idle_timer.as_mut() {
                    if t.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Woke::IdleTimeout);
                    }
                }
                self.cancel.poll_shutdown(cx).map(|()| Woke::Shutdown)
            })
            .await;
            drop(idle_timer);
            let flow = match woke {
                Woke::Client => Box::pin(self.serve_request()).await,
                Woke::Gone => Flow::Close,
                Woke::Shutdown => Box::pin(self.last_request_or_goodbye(&mut graced)).await,
                Woke::IdleTimeout => Box::pin(self.idle_timeout_fired()).await,
            };
            if let Flow::Close = flow {
                Box::pin(self.detach_on_close()).await;
                return;
            }
        }
    }

    /// Counts an error Switchyard itself sends this client (servers' errors are counted as
    /// they pass through).
    fn count_error(&self, code: SqlState) {
        self.cluster.stats.traffic.count_error(&code.bytes());
    }

    /// Sends a FATAL error to the client (best effort).
    async fn send_fatal(&mut self, e: PgError) {
        self.count_error(e.code);
        self.io
            .send_error(&e.with_severity(messages::Severity::Fatal))
            .await;
    }

    /// Handles what the client sent and, while a server is attached, both directions until
    /// the connection is released (end of transaction) or the session ends.
    async fn serve_request(&mut self) -> Flow {
        if !self.read_client().await {
            return Flow::Close;
        }
        let mut flow = self.on_client_data().await;
        loop {
            while matches!(flow, Flow::Continue) && self.server.is_some() {
                flow = self.step_attached().await;
            }
            // Requests that arrived while the last connection was busy (held back from a
            // replica, or pipelined behind a release) are served now, not after a new read.
            let pending_request = matches!(
                crate::protocol::frame::complete_frame(
                    self.io.bufs.client_input(),
                    self.shared.config.max_message_size
                ),
                Ok(Some(_)) | Err(_)
            );
            if matches!(flow, Flow::Continue) && self.server.is_none() && pending_request {
                flow = self.on_client_data().await;
                continue;
            }
            if self.server.is_none() {
                self.shrink_idle_buffers();
            }
            return flow;
        }
    }

    /// Reads what the client sent (the socket was reported readable); false when the client
    /// closed. `read_buf` marks the socket drained after a short read, so the next wait
    /// costs no extra (empty) recv.
    async fn read_client(&mut self) -> bool {
        let cin = &mut self.io.bufs.get().cin;
        buffers::ensure_room(cin, 4096);
        match self.io.stream.read_buf(cin).await {
            Ok(0) => false,
            Ok(_) => true,
            Err(e) => {
                tracing::debug!(client = %self.label(), error = %e, "client read failed");
                false
            }
        }
    }

    /// One wait while a server is attached: whichever side speaks first.
    async fn step_attached(&mut self) -> Flow {
        // A timeout (query, idle in transaction, idle in session mode) only when one is set.
        let deadline = self.attached_deadline();
        let Some(a) = self.server.as_mut() else {
            return Flow::Continue;
        };
        // A session-mode client between transactions can be let go at shutdown.
        let idle =
            a.pending == 0 && a.status == TxStatus::Idle && self.io.bufs.client_input().is_empty();
        let b = self.io.bufs.get();
        buffers::ensure_room(&mut b.sin, 4096);
        buffers::ensure_room(&mut b.cin, 1024);
        let server_stream = &mut a.conn.stream;
        let timer = async {
            match deadline {
                Some((at, limit)) => {
                    tokio::time::sleep_until(at).await;
                    limit
                }
                None => std::future::pending().await,
            }
        };
        // The server is read first: it is what a request waits for.
        tokio::select! {
            biased;
            r = server_stream.read_buf(&mut b.sin) => match r {
                Ok(n) if n > 0 => self.on_server_data().await,
                Ok(_) => Box::pin(self.on_server_lost("server closed the connection unexpectedly")).await,
                Err(e) => Box::pin(self.on_server_lost(&format!("server connection failed: {e}"))).await,
            },
            r = self.io.stream.read_buf(&mut b.cin) => match r {
                Ok(n) if n > 0 => self.on_client_data().await,
                _ => Flow::Close,
            },
            _ = std::future::poll_fn(|cx| self.cancel.poll_shutdown(cx)), if idle => {
                Box::pin(self.say_shutting_down()).await;
                Flow::Close
            }
            limit = timer => Box::pin(self.on_timeout(limit)).await,
        }
    }

    /// Handles the complete client frames in the input buffer.
    async fn on_client_data(&mut self) -> Flow {
        loop {
            if self.server.is_some() {
                return self.forward_client_frames().await;
            }
            if !self.local.active() && self.mode == PoolMode::Transaction {
                let b = self.io.bufs.get();
                let answered = answer_prepare_only(
                    &b.cin,
                    self.shared.config.max_message_size,
                    &self.shared.statements,
                    &mut self.statements,
                    &mut b.cout,
                );
                if let Some(consumed) = answered {
                    self.io.consume(consumed);
                    match self.io.flush().await {
                        Ok(()) => continue,
                        Err(_) => return Flow::Close,
                    }
                }
            }
            if !self.local.active() {
                match self.needs_server() {
                    Ok(Some(true)) => {
                        if self.serve_or_attach().await.is_err() {
                            return Flow::Close;
                        }
                        continue;
                    }
                    Ok(Some(false)) => {}
                    Ok(None) => return Flow::Continue,
                    Err(e) => return self.protocol_violation(e).await,
                }
            }
            match answer_locally(
                &mut self.local,
                &mut self.io,
                self.shared.config.max_message_size,
            ) {
                Ok(more) => {
                    let flow = self.flush_client().await;
                    if more && matches!(flow, Flow::Continue) {
                        continue;
                    }
                    return flow;
                }
                Err(e) => return self.protocol_violation(e).await,
            }
        }
    }

    /// A request that needs a server: answered from the result cache, or routed and
    /// attached (a failed attach is answered as the request's error). Err: the client is
    /// gone.
    async fn serve_or_attach(&mut self) -> Result<(), ()> {
        let missed = match self.look_up_cache() {
            cache_path::Looked::Hit => return self.io.flush().await.map_err(|_| ()),
            cache_path::Looked::Missed(m) => Some(m),
            cache_path::Looked::NotCacheable => None,
        };
        let d = decide(
            &self.cluster.db,
            &self.cluster.classifier,
            &self.ryw,
            &self.statements,
            || self.cluster.db.primary_reads || self.cluster.topology.snapshot().has_replicas(),
            self.io.bufs.client_input(),
            self.shared.config.max_message_size,
        );
        let attached = self.attach(d).await;
        if let Some(a) = &self.server {
            crate::router::count_route(
                &self.cluster.stats.routes,
                a.decision.target,
                &a.decision.reason,
            );
        }
        match attached {
            Ok(()) => {
                if let Some(m) = missed {
                    self.begin_fill(m);
                }
            }
            Err(e) => {
                tracing::debug!(client = %self.label(), error = %e, "attach failed");
                self.count_error(e.code);
                self.local.fail_request(e);
            }
        }
        Ok(())
    }

    /// Bookkeeping after a batch of server replies: statements whose plans went stale are
    /// renewed; at the end of a transaction its counters are flushed and its writes
    /// invalidated in the result cache. True if the primary's WAL position is to be noted
    /// before the connection is released.
    fn settle_replies(
        &mut self,
        release: bool,
        stale: Vec<Arc<crate::prepared::StatementInfo>>,
    ) -> bool {
        for old in stale {
            let fresh = self.shared.statements.renew(&old);
            self.statements.replace(&old, &fresh);
            tracing::info!(client = %self.label(), old = %old.server_name, new = %fresh.server_name, "prepared statement re-prepared after its plan went stale");
        }
        let note_write = release && self.server.as_ref().is_some_and(|a| a.decision.may_write);
        if let Some(a) = self.server.as_mut() {
            if a.pending == 0 && a.status == TxStatus::Idle {
                a.acct.flush(&self.cluster.stats.traffic);
                if a.cache_writes.is_some() || !a.cache_rows.is_empty() {
                    self.invalidate_written(note_write);
                }
            }
        }
        note_write
    }

    /// Whether the complete frames buffered need a server (None: no complete frame yet).
    fn needs_server(&self) -> Result<Option<bool>, PgError> {
        let mut any = false;
        for f in Frames::new(
            self.io.bufs.client_input(),
            self.shared.config.max_message_size,
        ) {
            let (h, _) =
                f.map_err(|e| PgError::fatal(SqlState::PROTOCOL_VIOLATION, e.to_string()))?;
            any = true;
            if !matches!(h.tag, b'S' | b'H' | b'X') {
                return Ok(Some(true));
            }
        }
        Ok(any.then_some(false))
    }

    /// Streams what the server sent to the client, inspecting only what must be inspected.
    async fn on_server_data(&mut self) -> Flow {
        let Some(a) = self.server.as_mut() else {
            return Flow::Continue;
        };
        let release_at_idle = self.mode == PoolMode::Transaction;
        let b = self.io.bufs.get();
        let tracking = server_input::Tracking {
            attached: a,
            wanted: &mut self.wanted,
            startup: &self.startup,
            release_at_idle,
            traffic: &self.cluster.stats.traffic,
        };
        let outcome = self
            .input
            .process(&mut b.sin, &mut self.io.stream, &mut b.cout, tracking)
            .await;
        match outcome {
            Ok(server_input::Outcome {
                release,
                tail,
                stale,
            }) => {
                let note_write = self.settle_replies(release, stale);
                let mut fill = match (release, self.server.as_mut()) {
                    (true, Some(a)) => a.fill.take(),
                    _ => None,
                };
                // Everything the server sent is handled once `tail` is written: the buffer is
                // set aside so that the connection can be released first.
                let mut handled = if release {
                    std::mem::take(&mut self.io.bufs.get().sin)
                } else {
                    BytesMut::new()
                };
                if release && !note_write {
                    self.release();
                }
                if let Some(range) = tail {
                    if let Some(f) = fill.as_mut() {
                        f.push(&handled[range.clone()]);
                    }
                    if self.io.stream.send_all(&handled[range]).await.is_err() {
                        return Flow::Close;
                    }
                }
                if self.io.flush().await.is_err() {
                    return Flow::Close;
                }
                if let Some(f) = fill {
                    self.finish_fill(f);
                }
                if release {
                    handled.clear();
                    let sin = &mut self.io.bufs.get().sin;
                    if sin.capacity() == 0 {
                        *sin = handled;
                    }
                }
                if note_write {
                    Box::pin(self.note_write()).await;
                    self.release();
                }
                Flow::Continue
            }
            Err(server_input::ProcessError::Client) => Flow::Close,
            Err(server_input::ProcessError::Server(why)) => {
                Box::pin(self.on_server_lost(&why)).await
            }
        }
    }

    async fn flush_client(&mut self) -> Flow {
        match self.io.flush().await {
            Ok(()) if self.local.closing => Flow::Close,
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Close,
        }
    }

    /// Sends a FATAL protocol error and ends the session.
    async fn protocol_violation(&mut self, e: PgError) -> Flow {
        tracing::info!(client = %self.label(), error = %e, "protocol violation");
        self.count_error(e.code);
        self.io.send_error(&e).await;
        Flow::Close
    }
}
