//! A database's client timeouts: `query_timeout_ms` (the server's statement is cancelled,
//! the client gets the server's 57014 and keeps its connection), `idle_transaction_timeout_ms`
//! (a client idle inside a transaction is disconnected with 25P03; its server connection is
//! rolled back and reused) and `client_idle_timeout_ms` (a client idle outside a transaction
//! is disconnected with 57P05). Timers exist only when a timeout is set and only while it
//! can fire.

use super::*;
use crate::backend::own_queries::run_setup;
use std::pin::Pin;
use tokio::time::{Instant, Sleep};

/// Which timeout fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Limit {
    Query,
    IdleInTransaction,
    ClientIdle,
}

fn ms(n: u64) -> Option<Duration> {
    (n > 0).then(|| Duration::from_millis(n))
}

impl Session {
    /// The idle timer of a client without a server (transaction mode, between transactions).
    pub(super) fn idle_timer(&self) -> Option<Pin<Box<Sleep>>> {
        ms(self.cluster.db.timeouts.client_idle_timeout_ms).map(|d| Box::pin(tokio::time::sleep(d)))
    }

    /// The timeout that applies while attached, and when it fires.
    pub(super) fn attached_deadline(&mut self) -> Option<(Instant, Limit)> {
        let t = self.cluster.db.timeouts;
        let a = self.server.as_deref_mut()?;
        if a.pending > 0 {
            let limit = ms(t.query_timeout_ms)?;
            match a.cancelled_at {
                Some(c) if c == a.sent => return None,
                // A request the client pipelined behind the cancelled one: its time counts
                // from when it is first seen here, not from the cancelled one's start.
                Some(_) => {
                    let from = *a.timer_from.get_or_insert_with(std::time::Instant::now);
                    return Some((Instant::from_std(from + limit), Limit::Query));
                }
                None => {}
            }
            let since = a.acct.busy_since()?;
            return Some((Instant::from_std(since + limit), Limit::Query));
        }
        // Everything answered: a cancel is history.
        (a.cancelled_at, a.timer_from) = (None, None);
        if !self.io.bufs.client_input().is_empty() {
            return None;
        }
        let (limit, kind) = if a.status != TxStatus::Idle {
            (ms(t.idle_transaction_timeout_ms)?, Limit::IdleInTransaction)
        } else if self.mode == PoolMode::Session {
            (ms(t.client_idle_timeout_ms)?, Limit::ClientIdle)
        } else {
            return None;
        };
        Some((Instant::now() + limit, kind))
    }

    /// Acts on a timeout that fired.
    pub(super) async fn on_timeout(&mut self, limit: Limit) -> Flow {
        let t = self.cluster.db.timeouts;
        match limit {
            Limit::Query => {
                tracing::warn!(client = %self.label(), limit_ms = t.query_timeout_ms, "query_timeout_ms reached: cancelling the statement");
                let Some(a) = self.server.as_mut() else {
                    return Flow::Continue;
                };
                a.cancelled_at = Some(a.sent);
                a.timer_from = None;
                crate::backend::send_cancel(&a.conn.cancel).await;
                Flow::Continue
            }
            Limit::IdleInTransaction => {
                tracing::warn!(client = %self.label(), limit_ms = t.idle_transaction_timeout_ms, "idle_transaction_timeout_ms reached: disconnecting the client");
                self.roll_back_attached().await;
                self.close_with(
                    SqlState::IDLE_IN_TRANSACTION_TIMEOUT,
                    "terminating connection due to idle-in-transaction timeout",
                )
                .await
            }
            Limit::ClientIdle => self.idle_timeout_fired().await,
        }
    }

    /// `client_idle_timeout_ms` fired: the client is told and disconnected.
    pub(super) async fn idle_timeout_fired(&mut self) -> Flow {
        let limit = self.cluster.db.timeouts.client_idle_timeout_ms;
        tracing::info!(client = %self.label(), limit_ms = limit, "client_idle_timeout_ms reached: disconnecting the client");
        self.close_with(
            SqlState::IDLE_SESSION_TIMEOUT,
            "terminating connection due to idle-session timeout",
        )
        .await
    }

    async fn close_with(&mut self, code: SqlState, message: &str) -> Flow {
        self.count_error(code);
        self.io.send_error(&PgError::fatal(code, message)).await;
        Flow::Close
    }

    /// Rolls back the attached connection's transaction, so it can be reused; a connection
    /// that does not come back idle is closed when the session detaches.
    async fn roll_back_attached(&mut self) {
        let Some(a) = self.server.as_mut() else {
            return;
        };
        let limit = self.shared.config.connect_timeout();
        let sin = &mut self.io.bufs.get().sin;
        let rollback = run_setup(&mut a.conn, "ROLLBACK", sin);
        match tokio::time::timeout(limit, rollback).await {
            Ok(Ok(())) => a.status = TxStatus::Idle,
            _ => a.conn.broken = true,
        }
    }
}
