//! The session's first and last words: the login's reply (ParameterStatus as a server with
//! the client's settings reports them, from a server or from what one reported to an
//! earlier login with the same settings; BackendKeyData; ReadyForQuery), and the goodbye at
//! shutdown or KILL (57P01), after a short grace for an idle client's next request.

use super::*;

/// How long an idle client may take to send one more request once shutdown has begun.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(100);

impl Session {
    /// Shutting down with the client idle: once, a client that sends a request within
    /// [`SHUTDOWN_GRACE`] is served (one that has just logged in is about to send its first
    /// query); after that, or when it stays quiet, it is told 57P01 and let go.
    pub(super) async fn last_request_or_goodbye(&mut self, graced: &mut bool) -> Flow {
        if !std::mem::replace(graced, true) && !self.cancel.killed() {
            let ready = std::future::poll_fn(|cx| self.io.stream.poll_read_ready(cx));
            match tokio::time::timeout(SHUTDOWN_GRACE, ready).await {
                Ok(Ok(())) => return self.serve_request().await,
                Ok(Err(_)) => return Flow::Close,
                Err(_) => {}
            }
        }
        self.say_shutting_down().await;
        Flow::Close
    }

    /// The login's last messages; false (after telling the client why) if it failed.
    pub(super) async fn login_or_refuse(&mut self) -> bool {
        match self.login().await {
            Ok(()) => true,
            Err(e) => {
                self.send_fatal(e).await;
                false
            }
        }
    }

    /// Tells an idle client that Switchyard is going away (or that the console killed it).
    pub(super) async fn say_shutting_down(&mut self) {
        let why = if self.cancel.killed() {
            "terminating connection due to administrator command (KILL)"
        } else {
            "terminating connection because Switchyard is shutting down"
        };
        let bye = PgError::fatal(SqlState::ADMIN_SHUTDOWN, why);
        self.send_fatal(bye).await;
    }

    /// Sends ParameterStatus (as a server with this client's settings reports them),
    /// BackendKeyData and ReadyForQuery. In transaction mode, what the primary reported to
    /// an earlier login with the same settings is sent without a checkout.
    async fn login(&mut self) -> Result<(), PgError> {
        // The primary's view, unless there is none right now and a replica can stand in
        // (new clients can still connect and read during a failover).
        let snap = self.cluster.topology.snapshot();
        let primary = snap.primary().map(|i| snap.hosts[i].addr.clone());
        let use_replica = self.mode == PoolMode::Transaction
            && self.cluster.db.routing == crate::config::Routing::ReadWrite
            && primary.is_none()
            && snap.has_replicas();
        drop(snap);
        let known = primary
            .as_deref()
            .filter(|_| self.mode == PoolMode::Transaction)
            .and_then(|addr| self.pools.login_reports.get(self.wanted.version, addr));
        let reports = match known {
            Some(r) => r,
            None => self.login_reports_from_a_server(use_replica).await?,
        };
        for (name, value) in reports.iter() {
            messages::parameter_status(self.io.out(), name, value);
        }
        messages::backend_key_data(self.io.out(), self.cancel.pid, self.cancel.secret);
        messages::ready_for_query(self.io.out(), TxStatus::Idle);
        if self.mode == PoolMode::Transaction {
            self.release();
        }
        let flushed = self.io.flush().await.map_err(|e| {
            PgError::fatal(
                SqlState::CONNECTION_FAILURE,
                format!("client write failed: {e}"),
            )
        });
        // The login's messages are out: an idle client keeps no buffers.
        self.io.bufs.give_back();
        flushed
    }

    /// Checks a server out for the login (the primary, or a replica standing in) and keeps
    /// what it reports with this client's settings.
    async fn login_reports_from_a_server(
        &mut self,
        use_replica: bool,
    ) -> Result<crate::topology::login_reports::Reports, PgError> {
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
        let Some(a) = &self.server else {
            return Ok(Vec::new().into());
        };
        let mut names: Vec<&String> = a.conn.reported.keys().collect();
        names.sort();
        // Through Switchyard the session is read-write even if a replica answered.
        let reports: crate::topology::login_reports::Reports = names
            .into_iter()
            .map(|n| {
                let v = if n == "in_hot_standby" {
                    "off"
                } else {
                    a.conn.reported[n].as_str()
                };
                (n.clone(), v.to_string())
            })
            .collect();
        if !use_replica {
            self.pools
                .login_reports
                .put(self.wanted.version, &a.conn.addr, reports.clone());
        }
        Ok(reports)
    }
}
