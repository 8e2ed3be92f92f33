//! Forwarding client frames to the attached server: tracking sync points and SET
//! statements, rewriting prepared statements, and holding back writes from a replica.

use super::cache_path::WriteNotes;
use super::*;
use crate::protocol::client_msgs::{parse_sql, query_bytes, query_sql};
use crate::router::statement_text::{statement_heads, Heads};

/// What [`Session::build_request`] made of the buffered client frames.
struct Built {
    /// Bytes of client input handled.
    end: usize,
    /// Every frame goes out unchanged: send `cin[..end]` itself, not `sout`.
    direct: bool,
    /// The client sent Terminate.
    terminate: bool,
}

/// Tracks what each client frame means for the attached connection: sync points sent, and
/// the SET statements of each request.
struct Tracker<'a> {
    changes: &'a mut Vec<(u64, ParamChange)>,
    pending: &'a mut usize,
    sent: &'a mut u64,
    map_names: bool,
}

impl Tracker<'_> {
    /// Notes one frame (not Terminate); returns the Query that replaces it, if any
    /// (SQL-level PREPARE/EXECUTE/DEALLOCATE under transaction pooling).
    fn frame(
        &mut self,
        rw: &mut Rewriter<'_>,
        tag: u8,
        frame: &[u8],
    ) -> Result<Option<Vec<u8>>, PgError> {
        let mut replaced = None;
        match tag {
            b'Q' => {
                // One pass over the text decides which closer looks it needs (most need
                // none, and are not even checked to be UTF-8); the rewriter reuses it.
                let heads = query_bytes(frame).map(statement_heads).unwrap_or_default();
                if heads.any(Heads::PARAMS | Heads::SQL_PREPARED) {
                    if let Some(sql) = query_sql(frame) {
                        if heads.any(Heads::PARAMS) {
                            note_changes(self.changes, *self.sent, sql);
                        }
                        if self.map_names && heads.any(Heads::SQL_PREPARED) {
                            replaced = sql_level_prepared(sql, rw.client, rw.held);
                        }
                    }
                }
                if replaced.is_none() {
                    rw.heads = Some(heads);
                }
                *self.pending += 1;
                *self.sent += 1;
            }
            b'P' => {
                if let Some(sql) = parse_sql(frame) {
                    note_changes(self.changes, *self.sent, sql);
                }
            }
            b'S' | b'F' => {
                *self.pending += 1;
                *self.sent += 1;
            }
            b'c' | b'f' => {
                let ignored = rw.queue.on_copy_end();
                *self.pending = self.pending.saturating_sub(ignored);
                *self.sent = self.sent.saturating_sub(ignored as u64);
            }
            b'B' | b'E' | b'D' | b'C' | b'H' | b'd' => {}
            other => {
                return Err(PgError::fatal(
                    SqlState::PROTOCOL_VIOLATION,
                    format!("invalid frontend message type {other}"),
                ))
            }
        }
        Ok(replaced)
    }
}

impl Session {
    /// Forwards the complete client frames to the attached server, tracking sync points and
    /// parameter changes; a Terminate ends the session.
    pub(super) async fn forward_client_frames(&mut self) -> Flow {
        if let Some(a) = self.server.as_mut() {
            if let (false, Some(f)) = (a.fresh, a.fill.as_mut()) {
                // More than the one Query the recording is for.
                f.abandon(crate::cache::Reject::NotSingleQuery);
            }
        }
        if self.held_back_from_replica() {
            return Flow::Continue;
        }
        let built = match self.build_request() {
            Ok(b) => b,
            Err(e) => return self.protocol_violation(e).await,
        };
        let Some(a) = self.server.as_mut() else {
            return Flow::Continue;
        };
        let b = self.io.bufs.get();
        let out = if built.direct {
            &b.cin[..built.end]
        } else {
            &b.sout[..]
        };
        a.acct.bytes_in += built.end as u64;
        if a.pending > 0 {
            a.acct.request_sent();
        }
        let written = if out.is_empty() {
            Ok(())
        } else {
            a.conn.stream.send_all(out).await
        };
        b.cin.advance(built.end);
        if let Err(e) = written {
            return Box::pin(self.on_server_lost(&format!("server write failed: {e}"))).await;
        }
        // Replies made up here (a Parse the connection already had) may be due right away.
        if a.conn.queue.synthetic_ready() {
            let out = self.io.out();
            out.clear();
            a.conn.queue.drain_synthetic(out);
            if let Some(f) = a.fill.as_mut() {
                f.push(out);
            }
            if self.io.flush().await.is_err() {
                return Flow::Close;
            }
        }
        if built.terminate {
            return Flow::Close;
        }
        Flow::Continue
    }

    /// A write pipelined behind a read must not reach the replica the read went to: it waits
    /// until the replica is released and is then routed on its own. The batch that caused
    /// the checkout was classified when it was routed and is not checked again.
    fn held_back_from_replica(&mut self) -> bool {
        let Some(a) = self.server.as_mut() else {
            return false;
        };
        let fresh = std::mem::take(&mut a.fresh);
        !fresh
            && a.decision.target == Target::Replica
            && a.status == TxStatus::Idle
            && !batch_only_reads(
                self.io.bufs.client_input(),
                self.shared.config.max_message_size,
                &self.cluster.classifier,
                &self.statements,
            )
    }

    /// Walks the complete client frames: tracks them, rewrites prepared statements into
    /// `sout` from the first frame that needs it on (before that, frames are sent from the
    /// input buffer itself), and stops at a Terminate.
    fn build_request(&mut self) -> Result<Built, PgError> {
        let max = self.shared.config.max_message_size;
        let map_names = self.mode == PoolMode::Transaction;
        let mut built = Built {
            end: 0,
            direct: true,
            terminate: false,
        };
        let Some(a) = self.server.as_mut() else {
            return Ok(built);
        };
        let a: &mut Attached = a;
        // Writes are tracked for the result cache's invalidation (only the primary writes).
        let cache = self
            .cluster
            .cache
            .as_deref()
            .filter(|_| a.decision.target == Target::Primary);
        let mut notes =
            cache.map(|cache| WriteNotes::new(cache, &mut a.cache_writes, &mut a.cache_rows));
        let conn: &mut crate::backend::ServerConn = &mut a.conn;
        let mut rw = Rewriter {
            registry: &self.shared.statements,
            client: &mut self.statements,
            held: &mut conn.prepared,
            queue: &mut conn.queue,
            map_names,
            heads: None,
        };
        let mut track = Tracker {
            changes: &mut a.changes,
            pending: &mut a.pending,
            sent: &mut a.sent,
            map_names,
        };
        let b = self.io.bufs.get();
        b.sout.clear();
        for f in Frames::new(&b.cin, max) {
            let (h, frame) =
                f.map_err(|e| PgError::fatal(SqlState::PROTOCOL_VIOLATION, e.to_string()))?;
            tracing::trace!(tag = %(h.tag as char), len = h.total_len, "client frame");
            if h.tag == b'X' {
                built.terminate = true;
                break;
            }
            let replaced = track.frame(&mut rw, h.tag, frame)?;
            if let Some(notes) = notes.as_mut() {
                notes.frame(h.tag, frame, rw.client);
            }
            let unchanged = replaced.is_none() && Rewriter::passes_through(h.tag);
            if built.direct && !unchanged {
                // The frames before this one go out as they came.
                built.direct = false;
                buffers::ensure_room(&mut b.sout, b.cin.len());
                b.sout.extend_from_slice(&b.cin[..built.end]);
            }
            let result = match &replaced {
                _ if built.direct => {
                    rw.pass(h.tag, frame);
                    Ok(())
                }
                Some(q) => rw.frame(b'Q', q, &mut b.sout),
                None => rw.frame(h.tag, frame, &mut b.sout),
            };
            result.map_err(|e| e.with_severity(messages::Severity::Fatal))?;
            built.end += h.total_len;
        }
        if let Some(notes) = notes {
            notes.finish(rw.client);
        }
        Ok(built)
    }
}

/// Records the session-level SET/RESET/DISCARD statements of request number `seq`.
pub(super) fn note_changes(changes: &mut Vec<(u64, ParamChange)>, seq: u64, sql: &str) {
    let mut found = Vec::new();
    params::scan_changes(sql, &mut found);
    changes.extend(found.into_iter().map(|c| (seq, c)));
}

/// A replacement Query for SQL-level PREPARE/EXECUTE/DEALLOCATE under transaction pooling:
/// PREPARE and EXECUTE fail with a clear error (raised by the server, so the transaction
/// state stays right); DEALLOCATE of a protocol-level statement drops the client's name.
pub(super) fn sql_level_prepared(
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
