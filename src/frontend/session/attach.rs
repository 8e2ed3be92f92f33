//! The server connection's life within a session: checkout and parameter sync, release
//! (after reading the WAL position for read-your-writes), loss, and hand-back at the end.

use super::accounting::Accounting;
use super::*;
use crate::backend::own_queries::{insert_position_as_record_end, run_setup};

impl Session {
    /// Checks out a server connection and brings its session parameters in line.
    pub(super) async fn attach(&mut self, mut d: Decision) -> Result<(), PgError> {
        if self.shared.successor.get().is_some() {
            self.follow_reload();
        }
        if self.cluster.is_paused() {
            Box::pin(self.wait_while_paused()).await?;
        }
        let mut order = Vec::new();
        let idle = match d.target {
            Target::Primary => self.cluster.checkout_primary_idle(&self.pools),
            Target::Replica => {
                order = self.cluster.read_order(&self.pools, d.min_lsn);
                self.cluster.checkout_read_idle(&self.pools, &order)
            }
        };
        let mut waited_us = 0;
        let mut conn = match idle {
            Some(conn) => conn,
            // Boxed: the waiting checkout's state is large and only needed here.
            None => {
                let started = std::time::Instant::now();
                self.cancel.set_waiting(true);
                let conn = Box::pin(self.checkout(&mut d, &order)).await;
                self.cancel.set_waiting(false);
                let traffic = &self.cluster.stats.traffic;
                waited_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                traffic.waits.incr();
                traffic.wait_us.add(waited_us);
                conn?
            }
        };
        tracing::debug!(client = %self.label(), server = %conn.addr, target = ?d.target, reason = %d.reason, "routed");
        let in_line =
            conn.applied_version == self.wanted.version || self.wanted.map == conn.applied;
        if let Some(sql) = (!in_line)
            .then(|| params::sync_sql(&self.wanted.map, &conn.applied))
            .flatten()
        {
            let limit = self.shared.config.connect_timeout();
            let sync = Box::pin(run_setup(&mut conn, &sql, &mut self.io.bufs.get().sin));
            match tokio::time::timeout(limit, sync).await {
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
        self.cancel.set(Some(conn.cancel.clone()));
        self.input = ServerInput::default();
        self.server = Some(Box::new(Attached {
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
            acct: Accounting::after_checkout(waited_us),
            cancelled_at: None,
            timer_from: None,
            fill: None,
            cache_writes: None,
            cache_rows: Vec::new(),
        }));
        Ok(())
    }

    /// A reload made a newer generation: between transactions the session moves to it, and
    /// to its database's cluster and pools, unless its database or user is gone or its pool
    /// mode changed (then it finishes on what it has, which drains).
    fn follow_reload(&mut self) {
        let newest = self.shared.newest();
        let name = &self.cluster.db.name;
        let user = &self.pools.user;
        let Some(cluster) = newest.cluster(name) else {
            return;
        };
        if newest.users.entry(name, user).is_none() || cluster.db.pool_mode != self.mode {
            return;
        }
        let secret = newest.users.server_secret(name, user);
        self.pools = cluster.user_pools(user, &secret);
        self.cluster = cluster;
        self.shared = newest;
    }

    /// The database is paused (console PAUSE or KILL): wait for RESUME, unless the client
    /// leaves first.
    async fn wait_while_paused(&mut self) -> Result<(), PgError> {
        self.cancel.set_waiting(true);
        let waited = tokio::select! {
            () = self.cluster.wait_resumed() => Ok(()),
            _ = self.io.stream.closed() => Err(PgError::error(
                SqlState::CONNECTION_FAILURE,
                "client disconnected while its database was paused",
            )),
            // KILL or shutdown: the session ends at its next wait.
            () = std::future::poll_fn(|cx| self.cancel.poll_shutdown(cx)) => Err(PgError::error(
                SqlState::ADMIN_SHUTDOWN,
                "terminating connection due to administrator command",
            )),
        };
        self.cancel.set_waiting(false);
        waited
    }

    /// Checks out a connection for `d`, waiting if need be: a read tries the servers in
    /// `order` and falls back to the primary when none can take it. A wait ends if the
    /// client leaves.
    async fn checkout(&self, d: &mut Decision, order: &[usize]) -> Result<Checkout, PgError> {
        let (cluster, pools) = (&self.cluster, &self.pools);
        let checkout = async {
            match d.target {
                Target::Replica => match cluster.checkout_read(pools, order).await {
                    Some(c) => Ok(c),
                    None => {
                        cluster.stats.reads_on_primary.incr();
                        d.target = Target::Primary;
                        cluster.checkout_primary(pools).await
                    }
                },
                Target::Primary => cluster.checkout_primary(pools).await,
            }
        };
        tokio::select! {
            biased;
            r = checkout => r,
            _ = self.io.stream.closed() => Err(PgError::error(
                SqlState::CONNECTION_FAILURE,
                "client disconnected while waiting for a server connection",
            )),
        }
    }

    /// After a transaction that may have written: remember what the client's next reads
    /// need (the primary's WAL position, or the time window).
    pub(super) async fn note_write(&mut self) {
        let db = &self.cluster.db;
        let mode = db.read_your_writes;
        let window = Duration::from_millis(db.read_your_writes_window_ms);
        if db.routing == crate::config::Routing::PrimaryOnly {
            return;
        }
        let mut lsn = None;
        let cached = self.cluster.cache.is_some();
        if (mode == crate::config::ReadYourWrites::Lsn || cached) && db.hosts.len() > 1 {
            if let Some(a) = self.server.as_mut() {
                let limit = self.shared.config.connect_timeout();
                let q = query_row(
                    &mut a.conn.stream,
                    &mut self.io.bufs.get().sin,
                    // The insert position, not pg_current_wal_lsn() (the write position): an
                    // asynchronous commit can sit in WAL buffers beyond the latter.
                    "SELECT pg_current_wal_insert_lsn()",
                );
                match tokio::time::timeout(limit, q).await {
                    Ok(Ok(row)) => {
                        lsn = row
                            .first()
                            .and_then(|v| v.as_deref())
                            .and_then(parse_lsn)
                            .map(insert_position_as_record_end)
                    }
                    _ => a.conn.broken = true,
                }
                self.io.bufs.get().sin.clear();
                if lsn.is_none() && mode == crate::config::ReadYourWrites::Lsn {
                    // Unknown position: keep reads on the primary for a while instead.
                    self.ryw.wrote(
                        crate::config::ReadYourWrites::Window,
                        window.max(Duration::from_secs(1)),
                        None,
                    );
                }
            }
        }
        self.invalidate_at_lsn(lsn.unwrap_or(u64::MAX));
        self.ryw.wrote(mode, window, lsn);
    }

    /// Gives the server connection back to its pool (or closes it if it is not clean).
    pub(super) fn release(&mut self) {
        if let Some(a) = self.server.take() {
            self.cancel.set(None);
            let mut conn = a.conn;
            if a.pending != 0
                || a.status != TxStatus::Idle
                || self.io.bufs.holds_server_input()
                || !conn.queue.is_empty()
            {
                conn.broken = true;
            }
            pool::release(conn);
        }
    }

    /// Between transactions the buffers, if they hold nothing, are given back, so an idle
    /// client costs little memory. They go to this thread's free list, for the next
    /// transaction to take.
    pub(super) fn shrink_idle_buffers(&mut self) {
        self.io.bufs.give_back();
    }

    /// The server connection died under this client.
    pub(super) async fn on_server_lost(&mut self, why: &str) -> Flow {
        // A commit may have happened before the connection died.
        self.invalidate_at_lsn(u64::MAX);
        let Some(mut a) = self.server.take() else {
            return Flow::Continue;
        };
        a.acct.flush(&self.cluster.stats.traffic);
        self.cancel.set(None);
        self.io.bufs.get().sin.clear();
        let mut conn = a.conn;
        conn.broken = true;
        tracing::warn!(client = %self.label(), server = %conn.addr, reason = why, "server connection lost");
        pool::release(conn);
        if a.fatal.is_none() {
            self.count_error(SqlState::CONNECTION_FAILURE);
        }
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
        self.local.server_lost(err, a.pending, in_tx, self.io.out());
        self.flush_client().await
    }

    /// The client is gone (or told to go): return or close the server connection.
    pub(super) async fn detach_on_close(&mut self) {
        self.invalidate_at_lsn(u64::MAX);
        let Some(mut a) = self.server.take() else {
            return;
        };
        a.acct.flush(&self.cluster.stats.traffic);
        self.cancel.set(None);
        let mut conn = a.conn;
        let idle =
            a.pending == 0 && a.status == TxStatus::Idle && !self.io.bufs.holds_server_input();
        if !idle {
            // Closing makes the server roll back; a running query is cancelled first.
            if a.pending > 0 {
                crate::backend::send_cancel(&conn.cancel).await;
            }
            tracing::info!(client = %self.label(), server = %conn.addr, "client left mid-transaction: server connection closed");
            pool::discard(conn);
            return;
        }
        if self.mode == PoolMode::Session {
            let reset = tokio::time::timeout(
                Duration::from_secs(5),
                run_setup(&mut conn, "DISCARD ALL", &mut self.io.bufs.get().sin),
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
