//! Forwarding client frames to the attached server: tracking sync points and SET
//! statements, rewriting prepared statements, and holding back writes from a replica.

use super::*;
use crate::protocol::client_msgs::{parse_sql, query_sql};

impl Session {
    /// Forwards the complete client frames to the attached server, tracking sync points and
    /// parameter changes; a Terminate ends the session.
    pub(super) async fn forward_client_frames(&mut self) -> Flow {
        let Some(a) = self.server.as_mut() else {
            return Flow::Continue;
        };
        let fresh = std::mem::take(&mut a.fresh);
        if !fresh
            && a.decision.target == Target::Replica
            && a.status == TxStatus::Idle
            && !batch_only_reads(
                self.io.bufs.client_input(),
                self.shared.config.max_message_size,
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
            registry: &self.shared.statements,
            client: &mut self.statements,
            held: &mut conn.prepared,
            queue: &mut conn.queue,
            map_names,
        };
        let mut end = 0;
        let mut terminate = false;
        // While every frame goes through unchanged they are sent from the input buffer;
        // from the first rewritten one on, everything is copied into `sout`.
        let mut direct = true;
        let b = self.io.bufs.get();
        b.sout.clear();
        for f in Frames::new(&b.cin, self.shared.config.max_message_size) {
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
                    if let Some(sql) = query_sql(frame) {
                        note_changes(&mut a.changes, a.sent, sql);
                        if map_names {
                            replaced = sql_level_prepared(sql, rw.client, rw.held);
                        }
                    }
                    a.pending += 1;
                    a.sent += 1;
                }
                b'P' => {
                    if let Some(sql) = parse_sql(frame) {
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
            let unchanged = replaced.is_none() && Rewriter::passes_through(h.tag);
            if direct && !unchanged {
                // The frames before this one go out as they came.
                direct = false;
                buffers::ensure_room(&mut b.sout, b.cin.len());
                b.sout.extend_from_slice(&b.cin[..end]);
            }
            let result = match &replaced {
                _ if direct => {
                    rw.pass(h.tag, frame);
                    Ok(())
                }
                Some(q) => rw.frame(b'Q', q, &mut b.sout),
                None => rw.frame(h.tag, frame, &mut b.sout),
            };
            if let Err(e) = result {
                return self
                    .protocol_violation(e.with_severity(messages::Severity::Fatal))
                    .await;
            }
            end += h.total_len;
        }
        let out = if direct { &b.cin[..end] } else { &b.sout[..] };
        let written = if out.is_empty() {
            Ok(())
        } else {
            a.conn.stream.send_all(out).await
        };
        b.cin.advance(end);
        if let Err(e) = written {
            return Box::pin(self.on_server_lost(&format!("server write failed: {e}"))).await;
        }
        // Replies made up here (a Parse the connection already had) may be due right away.
        if a.conn.queue.synthetic_ready() {
            let out = self.io.out();
            out.clear();
            a.conn.queue.drain_synthetic(out);
            if self.io.flush().await.is_err() {
                return Flow::Close;
            }
        }
        if terminate {
            return Flow::Close;
        }
        Flow::Continue
    }
}

/// Records the session-level SET/RESET/DISCARD statements of request number `seq`.
pub(super) fn note_changes(changes: &mut Vec<(u64, ParamChange)>, seq: u64, sql: &str) {
    if !params::may_change_params(sql) {
        return;
    }
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
