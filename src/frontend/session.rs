//! The request loop of one logged-in client. Idle, it waits for the client; with a request,
//! it attaches a server connection (checkout plus parameter sync), forwards client frames as
//! they come, streams server frames back, and in transaction mode releases the connection at
//! the ReadyForQuery('I') that answers the client's last sync point.

use super::aborted::{answer_locally, LocalState};
use super::cancel::{send_cancel, CancelHandle, CancelTarget};
use super::client_io::ClientIo;
use super::params::{self, ParamChange, ParamMap};
use super::routing::{batch_only_reads, decide, Decision, ReadYourWritesState};
use super::server_input::{self, ServerInput};
use crate::app::App;
use crate::backend::cluster::{Cluster, UserPools};
use crate::backend::io::read_frame;
use crate::backend::pool::{self, Checkout};
use crate::backend::query::{parse_lsn, query_row};
use crate::config::PoolMode;
use crate::prepared::rewrite::{answer_prepare_only, sql_prepared, Rewriter, SqlPrepared};
use crate::prepared::{ClientStatements, ServerStatements};
use crate::protocol::backend_msgs::{error_fields, parameter_status};
use crate::protocol::frame::{read_cstr, Frames, HEADER_LEN};
use crate::protocol::messages::{self, PgError, TxStatus};
use crate::protocol::SqlState;
use crate::router::{Reason, Target};
use bytes::{Buf, BytesMut};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A server connection while a client uses it.
pub struct Attached {
    pub conn: Checkout,
    /// Sync points (Query, Sync, FunctionCall) sent and not yet answered by ReadyForQuery.
    pub pending: usize,
    /// Status of the last ReadyForQuery.
    pub status: TxStatus,
    /// Parameter changes seen in the client's SQL, each with the number of the request
    /// (sync point) it belongs to; settled when that request's transaction ends.
    pub changes: Vec<(u64, ParamChange)>,
    /// Sync points forwarded and ReadyForQuery messages received since attaching.
    pub sent: u64,
    pub answered: u64,
    /// An ErrorResponse came since the last settled ReadyForQuery.
    pub saw_error: bool,
    /// The last CommandComplete was ROLLBACK.
    pub last_rollback: bool,
    /// A FATAL the server sent before closing, held back to report as ERROR.
    pub fatal: Option<PgError>,
    /// Where and why this connection was chosen.
    pub decision: Decision,
    /// The batch that caused the checkout has not been forwarded yet (it was classified
    /// when routed, so it need not be checked again).
    pub fresh: bool,
}

/// Records the session-level SET/RESET/DISCARD statements of request number `seq`.
fn note_changes(changes: &mut Vec<(u64, ParamChange)>, seq: u64, sql: &str) {
    if !params::may_change_params(sql) {
        return;
    }
    let mut found = Vec::new();
    params::scan_changes(sql, &mut found);
    changes.extend(found.into_iter().map(|c| (seq, c)));
}

/// What the loop does next.
enum Flow {
    Continue,
    Close,
}

pub struct Session {
    app: Arc<App>,
    io: ClientIo,
    sbuf: BytesMut,
    input: ServerInput,
    cluster: Arc<Cluster>,
    pools: Arc<UserPools>,
    mode: PoolMode,
    max_message: usize,
    startup: ParamMap,
    wanted: params::Wanted,
    server: Option<Attached>,
    local: LocalState,
    ryw: ReadYourWritesState,
    statements: ClientStatements,
    /// What goes to the server for the current batch (rewritten client frames).
    sout: BytesMut,
    cancel: CancelHandle,
    label: String,
}

impl Session {
    pub fn new(
        app: Arc<App>,
        io: ClientIo,
        cluster: Arc<Cluster>,
        user: &str,
        startup_params: &[(String, String)],
    ) -> Session {
        let pools = cluster.user_pools(user, &app.server_secret(user));
        let startup = params::startup_params(startup_params);
        let cancel = app.cancels.register();
        let label = format!("{user}@{}", cluster.db.name);
        Session {
            mode: cluster.db.pool_mode,
            max_message: app.config().max_message_size,
            io,
            sbuf: BytesMut::new(),
            input: ServerInput::default(),
            cluster,
            pools,
            wanted: params::Wanted::new(startup.clone()),
            startup,
            server: None,
            local: LocalState::default(),
            ryw: ReadYourWritesState::default(),
            statements: ClientStatements::default(),
            sout: BytesMut::new(),
            cancel,
            label,
            app,
        }
    }

    /// Finishes login (parameters, key, ReadyForQuery), then serves requests until the end.
    pub async fn run(&mut self) {
        if let Err(e) = Box::pin(self.login()).await {
            self.io
                .send_error(&e.with_severity(messages::Severity::Fatal))
                .await;
            return;
        }
        // Registered once for the whole session, not once per request.
        let shutdown = wait_shutdown(self.app.shutdown_signal());
        tokio::pin!(shutdown);
        loop {
            // Idle: only this small state is held. A request's work happens in a boxed
            // future that lives for one transaction, so idle clients stay small.
            let woke = tokio::select! {
                r = self.read_client() => match r {
                    Ok(true) => Flow::Continue,
                    Ok(false) => Flow::Close,
                    Err(e) => { self.io.send_error(&e).await; Flow::Close }
                },
                _ = &mut shutdown => {
                    self.io.send_error(&PgError::fatal(SqlState::ADMIN_SHUTDOWN,
                        "terminating connection because Switchyard is shutting down")).await;
                    Flow::Close
                }
            };
            let flow = match woke {
                Flow::Continue => Box::pin(self.serve_request(shutdown.as_mut())).await,
                Flow::Close => Flow::Close,
            };
            if let Flow::Close = flow {
                Box::pin(self.detach_on_close()).await;
                return;
            }
        }
    }

    /// Handles what the client sent and, while a server is attached, both directions until
    /// the connection is released (end of transaction) or the session ends.
    async fn serve_request(
        &mut self,
        mut shutdown: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    ) -> Flow {
        let mut flow = self.on_client_data().await;
        loop {
            while matches!(flow, Flow::Continue) && self.server.is_some() {
                flow = self.step_attached(shutdown.as_mut()).await;
            }
            // Requests that arrived while the last connection was busy (held back from a
            // replica, or pipelined behind a release) are served now, not after a new read.
            let pending_request = matches!(
                crate::protocol::frame::complete_frame(&self.io.buf, self.max_message),
                Ok(Some(_)) | Err(_)
            );
            if matches!(flow, Flow::Continue) && self.server.is_none() && pending_request {
                flow = self.on_client_data().await;
                continue;
            }
            return flow;
        }
    }

    /// Sends ParameterStatus (as a server with this client's settings reports them),
    /// BackendKeyData and ReadyForQuery.
    async fn login(&mut self) -> Result<(), PgError> {
        // The primary's view, unless there is none right now and a replica can stand in
        // (new clients can still connect and read during a failover).
        let snap = self.cluster.topology.snapshot();
        let use_replica = self.mode == PoolMode::Transaction
            && self.cluster.db.routing == crate::config::Routing::ReadWrite
            && snap.primary().is_none()
            && snap.has_replicas();
        let d = Decision {
            target: if use_replica {
                Target::Replica
            } else {
                Target::Primary
            },
            reason: Reason::SessionCommand,
            may_write: false,
            min_lsn: 0,
        };
        self.attach(d).await?;
        if let Some(a) = &self.server {
            let mut names: Vec<&String> = a.conn.reported.keys().collect();
            names.sort();
            for n in names {
                // Through Switchyard the session is read-write even if a replica answered.
                let value = if n == "in_hot_standby" {
                    "off"
                } else {
                    a.conn.reported[n].as_str()
                };
                messages::parameter_status(&mut self.io.out, n, value);
            }
        }
        messages::backend_key_data(&mut self.io.out, self.cancel.pid, self.cancel.secret);
        messages::ready_for_query(&mut self.io.out, TxStatus::Idle);
        if self.mode == PoolMode::Transaction {
            self.release();
        }
        self.io.flush().await.map_err(|e| {
            PgError::fatal(
                SqlState::CONNECTION_FAILURE,
                format!("client write failed: {e}"),
            )
        })
    }

    /// Reads more client bytes; Ok(false) when the client closed.
    async fn read_client(&mut self) -> Result<bool, PgError> {
        // An idle client holds no buffer: wait for readiness first, then allocate.
        loop {
            if let Err(e) = self.io.stream.readable().await {
                tracing::debug!(client = %self.label, error = %e, "client read failed");
                return Ok(false);
            }
            if self.io.buf.capacity() - self.io.buf.len() < 4096 {
                self.io.buf.reserve(8192);
            }
            match self.io.stream.try_read_buf(&mut self.io.buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                other => return self.finish_read(other),
            }
        }
    }

    fn finish_read(&self, r: std::io::Result<usize>) -> Result<bool, PgError> {
        match r {
            Ok(0) => Ok(false),
            Ok(_) => Ok(true),
            Err(e) => {
                tracing::debug!(client = %self.label, error = %e, "client read failed");
                Ok(false)
            }
        }
    }

    /// One wait while a server is attached: whichever side speaks first.
    async fn step_attached(
        &mut self,
        shutdown: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    ) -> Flow {
        let Some(a) = self.server.as_mut() else {
            return Flow::Continue;
        };
        // A session-mode client between transactions can be let go at shutdown.
        let idle = a.pending == 0 && a.status == TxStatus::Idle && self.io.buf.is_empty();
        if self.sbuf.capacity() - self.sbuf.len() < 4096 {
            self.sbuf.reserve(16384);
        }
        if self.io.buf.capacity() - self.io.buf.len() < 1024 {
            self.io.buf.reserve(8192);
        }
        let server_stream = &mut a.conn.stream;
        tokio::select! {
            r = self.io.stream.read_buf(&mut self.io.buf) => match r {
                Ok(n) if n > 0 => self.on_client_data().await,
                _ => Flow::Close,
            },
            r = server_stream.read_buf(&mut self.sbuf) => match r {
                Ok(n) if n > 0 => self.on_server_data().await,
                Ok(_) => Box::pin(self.on_server_lost("server closed the connection unexpectedly")).await,
                Err(e) => Box::pin(self.on_server_lost(&format!("server connection failed: {e}"))).await,
            },
            _ = shutdown, if idle => {
                self.io.send_error(&PgError::fatal(SqlState::ADMIN_SHUTDOWN,
                    "terminating connection because Switchyard is shutting down")).await;
                Flow::Close
            }
        }
    }

    /// Handles the complete client frames in the input buffer.
    async fn on_client_data(&mut self) -> Flow {
        loop {
            if self.server.is_some() {
                return self.forward_client_frames().await;
            }
            if !self.local.active() && self.mode == PoolMode::Transaction {
                let answered = answer_prepare_only(
                    &self.io.buf,
                    self.max_message,
                    &self.app.statements,
                    &mut self.statements,
                    &mut self.io.out,
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
                        let d = decide(
                            &self.cluster.db,
                            &self.cluster.classifier,
                            &self.ryw,
                            &self.statements,
                            self.cluster.db.primary_reads
                                || self.cluster.topology.snapshot().has_replicas(),
                            &self.io.buf,
                            self.max_message,
                        );
                        let attached = Box::pin(self.attach(d)).await;
                        if let Some(a) = &self.server {
                            self.cluster
                                .stats
                                .count(a.decision.target, a.decision.reason);
                        }
                        if let Err(e) = attached {
                            tracing::debug!(client = %self.label, error = %e, "attach failed");
                            self.local.fail_request(e);
                        }
                        continue;
                    }
                    Ok(Some(false)) => {}
                    Ok(None) => return Flow::Continue,
                    Err(e) => return self.protocol_violation(e).await,
                }
            }
            match answer_locally(&mut self.local, &mut self.io, self.max_message) {
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

    /// Whether the complete frames buffered need a server (None: no complete frame yet).
    fn needs_server(&self) -> Result<Option<bool>, PgError> {
        let mut any = false;
        for f in Frames::new(&self.io.buf, self.max_message) {
            let (h, _) =
                f.map_err(|e| PgError::fatal(SqlState::PROTOCOL_VIOLATION, e.to_string()))?;
            any = true;
            if !matches!(h.tag, b'S' | b'H' | b'X') {
                return Ok(Some(true));
            }
        }
        Ok(any.then_some(false))
    }

    /// Forwards the complete client frames to the attached server, tracking sync points and
    /// parameter changes; a Terminate ends the session.
    async fn forward_client_frames(&mut self) -> Flow {
        let Some(a) = self.server.as_mut() else {
            return Flow::Continue;
        };
        let fresh = std::mem::take(&mut a.fresh);
        if !fresh
            && a.decision.target == Target::Replica
            && a.status == TxStatus::Idle
            && !batch_only_reads(
                &self.io.buf,
                self.max_message,
                &self.cluster.classifier,
                &self.statements,
            )
        {
            // A write pipelined behind a read must not reach the replica: it waits until the
            // replica is released and is then routed on its own.
            return Flow::Continue;
        }
        let map_names = self.mode == PoolMode::Transaction;
        let conn: &mut crate::backend::ServerConn = &mut a.conn;
        let mut rw = Rewriter {
            registry: &self.app.statements,
            client: &mut self.statements,
            held: &mut conn.prepared,
            queue: &mut conn.queue,
            map_names,
        };
        let mut end = 0;
        let mut terminate = false;
        self.sout.clear();
        for f in Frames::new(&self.io.buf, self.max_message) {
            let (h, frame) = match f {
                Ok(x) => x,
                Err(e) => {
                    let e = PgError::fatal(SqlState::PROTOCOL_VIOLATION, e.to_string());
                    return self.protocol_violation(e).await;
                }
            };
            let mut replaced = None;
            tracing::trace!(tag = %(h.tag as char), len = h.total_len, "client frame");
            match h.tag {
                b'Q' => {
                    if let Some(sql) = read_cstr(&frame[HEADER_LEN..])
                        .and_then(|(s, _)| std::str::from_utf8(s).ok())
                    {
                        note_changes(&mut a.changes, a.sent, sql);
                        if map_names {
                            replaced = sql_level_prepared(sql, rw.client, rw.held);
                        }
                    }
                    a.pending += 1;
                    a.sent += 1;
                }
                b'P' => {
                    let body = &frame[HEADER_LEN..];
                    let sql = read_cstr(body)
                        .and_then(|(_, rest)| read_cstr(rest))
                        .and_then(|(s, _)| std::str::from_utf8(s).ok());
                    if let Some(sql) = sql {
                        note_changes(&mut a.changes, a.sent, sql);
                    }
                }
                b'S' | b'F' => {
                    a.pending += 1;
                    a.sent += 1;
                }
                b'c' | b'f' => {
                    let ignored = rw.queue.on_copy_end();
                    a.pending = a.pending.saturating_sub(ignored);
                    a.sent = a.sent.saturating_sub(ignored as u64);
                }
                b'B' | b'E' | b'D' | b'C' | b'H' | b'd' => {}
                b'X' => {
                    terminate = true;
                    break;
                }
                other => {
                    let e = PgError::fatal(
                        SqlState::PROTOCOL_VIOLATION,
                        format!("invalid frontend message type {other}"),
                    );
                    return self.protocol_violation(e).await;
                }
            }
            let result = match &replaced {
                Some(q) => rw.frame(b'Q', q, &mut self.sout),
                None => rw.frame(h.tag, frame, &mut self.sout),
            };
            if let Err(e) = result {
                return self
                    .protocol_violation(e.with_severity(messages::Severity::Fatal))
                    .await;
            }
            end += h.total_len;
        }
        self.io.buf.advance(end);
        if !self.sout.is_empty() {
            if let Err(e) = a.conn.stream.write_all(&self.sout).await {
                return Box::pin(self.on_server_lost(&format!("server write failed: {e}"))).await;
            }
        }
        // Replies made up here (a Parse the connection already had) may be due right away.
        if a.conn.queue.synthetic_ready() {
            self.io.out.clear();
            a.conn.queue.drain_synthetic(&mut self.io.out);
            if self.io.flush().await.is_err() {
                return Flow::Close;
            }
        }
        if terminate {
            return Flow::Close;
        }
        Flow::Continue
    }

    /// Streams what the server sent to the client, inspecting only what must be inspected.
    async fn on_server_data(&mut self) -> Flow {
        let Some(a) = self.server.as_mut() else {
            return Flow::Continue;
        };
        let release_at_idle = self.mode == PoolMode::Transaction;
        let outcome = self
            .input
            .process(
                &mut self.sbuf,
                a,
                &mut self.io.stream,
                &mut self.io.out,
                &mut self.wanted,
                &self.startup,
                release_at_idle,
            )
            .await;
        match outcome {
            Ok(server_input::Outcome {
                release,
                bytes,
                stale,
            }) => {
                for old in stale {
                    let fresh = self.app.statements.renew(&old);
                    self.statements.replace(&old, &fresh);
                    tracing::info!(client = %self.label, old = %old.server_name, new = %fresh.server_name, "prepared statement re-prepared after its plan went stale");
                }
                let note_write =
                    release && self.server.as_ref().is_some_and(|a| a.decision.may_write);
                if release && !note_write {
                    self.release();
                }
                if let Some(bytes) = bytes {
                    if self.io.stream.write_all(&bytes).await.is_err() {
                        return Flow::Close;
                    }
                }
                if self.io.flush().await.is_err() {
                    return Flow::Close;
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
        tracing::info!(client = %self.label, error = %e, "protocol violation");
        self.io.send_error(&e).await;
        Flow::Close
    }

    /// Checks out a server connection and brings its session parameters in line.
    async fn attach(&mut self, mut d: Decision) -> Result<(), PgError> {
        let (cluster, pools) = (&self.cluster, &self.pools);
        let checkout = async {
            match d.target {
                Target::Replica => match cluster.checkout_read(pools, d.min_lsn).await {
                    Some(c) => Ok(c),
                    None => {
                        cluster.stats.fallback();
                        d.target = Target::Primary;
                        cluster.checkout_primary(pools).await
                    }
                },
                Target::Primary => cluster.checkout_primary(pools).await,
            }
        };
        // A wait for a connection (pool exhausted, no primary yet) ends if the client leaves.
        let mut conn = tokio::select! {
            r = checkout => r?,
            _ = client_gone(&self.io.stream) => {
                return Err(PgError::error(SqlState::CONNECTION_FAILURE, "client disconnected while waiting for a server connection"));
            }
        };
        tracing::debug!(client = %self.label, server = %conn.addr, target = ?d.target, reason = %d.reason, "routed");
        let in_line =
            conn.applied_version == self.wanted.version || self.wanted.map == conn.applied;
        if let Some(sql) = (!in_line)
            .then(|| params::sync_sql(&self.wanted.map, &conn.applied))
            .flatten()
        {
            let limit = self.app.config().connect_timeout();
            match tokio::time::timeout(limit, run_sync(&mut conn, &sql, &mut self.sbuf)).await {
                Ok(Ok(())) => conn.applied = self.wanted.map.clone(),
                Ok(Err(e)) => {
                    pool::discard(conn);
                    return Err(e);
                }
                Err(_) => {
                    pool::discard(conn);
                    return Err(PgError::error(
                        SqlState::CONNECTION_FAILURE,
                        "timed out applying session parameters on a server connection",
                    ));
                }
            }
        }
        conn.applied_version = self.wanted.version;
        self.cancel.set(Some(CancelTarget {
            addr: conn.addr.clone(),
            pid: conn.backend_pid,
            secret: conn.backend_secret,
        }));
        self.input = ServerInput::default();
        self.server = Some(Attached {
            conn,
            pending: 0,
            status: TxStatus::Idle,
            changes: Vec::new(),
            sent: 0,
            answered: 0,
            saw_error: false,
            last_rollback: false,
            fatal: None,
            decision: d,
            fresh: true,
        });
        Ok(())
    }

    /// After a transaction that may have written: remember what the client's next reads
    /// need (the primary's WAL position, or the time window).
    async fn note_write(&mut self) {
        let db = &self.cluster.db;
        let mode = db.read_your_writes;
        let window = Duration::from_millis(db.read_your_writes_window_ms);
        if db.routing == crate::config::Routing::PrimaryOnly {
            return;
        }
        let mut lsn = None;
        if mode == crate::config::ReadYourWrites::Lsn && db.hosts.len() > 1 {
            if let Some(a) = self.server.as_mut() {
                let limit = self.app.config().connect_timeout();
                let q = query_row(
                    &mut a.conn.stream,
                    &mut self.sbuf,
                    "SELECT pg_current_wal_lsn()",
                );
                match tokio::time::timeout(limit, q).await {
                    Ok(Ok(row)) => lsn = row.first().and_then(|v| v.as_deref()).and_then(parse_lsn),
                    _ => a.conn.broken = true,
                }
                self.sbuf.clear();
                if lsn.is_none() {
                    // Unknown position: keep reads on the primary for a while instead.
                    self.ryw.wrote(
                        crate::config::ReadYourWrites::Window,
                        window.max(Duration::from_secs(1)),
                        None,
                    );
                }
            }
        }
        self.ryw.wrote(mode, window, lsn);
    }

    /// Gives the server connection back to its pool (or closes it if it is not clean).
    fn release(&mut self) {
        if let Some(a) = self.server.take() {
            self.cancel.set(None);
            let mut conn = a.conn;
            if a.pending != 0
                || a.status != TxStatus::Idle
                || !self.sbuf.is_empty()
                || !conn.queue.is_empty()
            {
                conn.broken = true;
            }
            pool::release(conn);
        }
        self.shrink_idle_buffers();
    }

    /// Between transactions, buffers that hold nothing are given back, so an idle client
    /// costs little memory.
    fn shrink_idle_buffers(&mut self) {
        // The next read reserves 8 KiB anyway, so keeping a small buffer saves nothing.
        if self.io.buf.is_empty() {
            self.io.buf = BytesMut::new();
        }
        if self.sbuf.is_empty() {
            self.sbuf = BytesMut::new();
        }
        self.sout = BytesMut::new();
        if self.io.out.is_empty() {
            self.io.out = BytesMut::new();
        }
    }

    /// The server connection died under this client.
    async fn on_server_lost(&mut self, why: &str) -> Flow {
        let Some(a) = self.server.take() else {
            return Flow::Continue;
        };
        self.cancel.set(None);
        self.sbuf.clear();
        let mut conn = a.conn;
        conn.broken = true;
        tracing::warn!(client = %self.label, server = %conn.addr, reason = why, "server connection lost");
        pool::release(conn);
        let err = a
            .fatal
            .map(|f| f.with_severity(messages::Severity::Error))
            .unwrap_or_else(|| PgError::error(SqlState::CONNECTION_FAILURE, why.to_string()));
        if self.mode == PoolMode::Session {
            self.io
                .send_error(&err.with_severity(messages::Severity::Fatal))
                .await;
            return Flow::Close;
        }
        let in_tx = a.status != TxStatus::Idle;
        self.local
            .server_lost(err, a.pending, in_tx, &mut self.io.out);
        self.flush_client().await
    }

    /// The client is gone (or told to go): return or close the server connection.
    async fn detach_on_close(&mut self) {
        let Some(a) = self.server.take() else {
            return;
        };
        self.cancel.set(None);
        let mut conn = a.conn;
        let idle = a.pending == 0 && a.status == TxStatus::Idle && self.sbuf.is_empty();
        if !idle {
            // Closing makes the server roll back; a running query is cancelled first.
            if a.pending > 0 {
                send_cancel(&CancelTarget {
                    addr: conn.addr.clone(),
                    pid: conn.backend_pid,
                    secret: conn.backend_secret,
                })
                .await;
            }
            tracing::info!(client = %self.label, server = %conn.addr, "client left mid-transaction: server connection closed");
            pool::discard(conn);
            return;
        }
        if self.mode == PoolMode::Session {
            let reset = tokio::time::timeout(
                Duration::from_secs(5),
                run_sync(&mut conn, "DISCARD ALL", &mut self.sbuf),
            )
            .await;
            match reset {
                Ok(Ok(())) => {
                    conn.applied.clear();
                    conn.applied_version = 0;
                }
                _ => conn.broken = true,
            }
        }
        pool::release(conn);
    }
}

/// Runs Switchyard's own simple query on a connection and reads to ReadyForQuery, keeping
/// ParameterStatus values and swallowing the rest. Fails if the server reports an error.
pub async fn run_sync(conn: &mut Checkout, sql: &str, buf: &mut BytesMut) -> Result<(), PgError> {
    let lost = |e: std::io::Error| {
        PgError::error(
            SqlState::CONNECTION_FAILURE,
            format!("server connection failed: {e}"),
        )
    };
    let mut out = BytesMut::new();
    messages::write_message(&mut out, b'Q', |b| {
        b.extend_from_slice(sql.as_bytes());
        b.extend_from_slice(&[0]);
    });
    conn.stream.write_all(&out).await.map_err(lost)?;
    let mut error = None;
    loop {
        let h = read_frame(&mut conn.stream, buf).await.map_err(lost)?;
        let frame = buf.split_to(h.total_len);
        match h.tag {
            b'S' => {
                if let Some((n, v)) = parameter_status(&frame) {
                    conn.note_parameter(n, v);
                }
            }
            b'E' => error = error_fields(&frame),
            b'Z' => break,
            _ => {}
        }
    }
    match error {
        Some(e) => {
            tracing::warn!(server = %conn.addr, error = %e, sql, "session sync query failed");
            Err(e)
        }
        None => Ok(()),
    }
}

/// Resolves when the client has closed its side; stays pending while it is open (also when
/// it has sent more requests, which stay unread).
async fn client_gone(stream: &tokio::net::TcpStream) {
    let mut probe = [0u8; 1];
    match stream.peek(&mut probe).await {
        Ok(0) | Err(_) => {}
        Ok(_) => std::future::pending::<()>().await,
    }
}

/// Resolves once shutdown has begun (holds no watch guard across awaits).
async fn wait_shutdown(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// A replacement Query for SQL-level PREPARE/EXECUTE/DEALLOCATE under transaction pooling:
/// PREPARE and EXECUTE fail with a clear error (raised by the server, so the transaction
/// state stays right); DEALLOCATE of a protocol-level statement drops the client's name.
fn sql_level_prepared(
    sql: &str,
    client: &mut ClientStatements,
    held: &mut ServerStatements,
) -> Option<Vec<u8>> {
    let text = match sql_prepared(sql)? {
        SqlPrepared::Unsupported(what) => format!(
            "DO $sy$BEGIN RAISE EXCEPTION USING ERRCODE = '0A000', MESSAGE = '{what} is not supported with pool_mode = transaction', \
             DETAIL = 'SQL-level prepared statements live on one server connection, and the next transaction may run on another.', \
             HINT = 'Use protocol-level prepared statements (your driver''s prepare), or pool_mode = session.'; END$sy$"
        ),
        SqlPrepared::Deallocate(name) => {
            let info = client.get(&name)?.clone();
            client.remove(&name);
            if held.contains(&info.server_name) {
                held.remove(&info.server_name);
                format!("DEALLOCATE \"{}\"", info.server_name)
            } else {
                "DO $sy$BEGIN END$sy$".to_string()
            }
        }
    };
    let mut frame = BytesMut::new();
    messages::write_message(&mut frame, b'Q', |b| {
        b.extend_from_slice(text.as_bytes());
        b.extend_from_slice(&[0]);
    });
    Some(frame.to_vec())
}
