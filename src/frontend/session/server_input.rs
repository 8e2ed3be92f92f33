//! Server-to-client streaming while attached. Frames pass through as raw bytes, even when
//! they are larger than the buffer (no whole-result buffering); only ReadyForQuery,
//! ErrorResponse, ParameterStatus and CommandComplete are looked at. A server FATAL is held
//! back so the session can report it as an ERROR and keep the client.

use super::attached::Attached;
use crate::backend::server_frames::SERVER_MAX_FRAME;
use crate::net::Stream;
use crate::params::{apply_change, fresh_version, is_tracked_report, ParamMap, ParamValue, Wanted};
use crate::prepared::expect::Action;
use crate::prepared::StatementInfo;
use crate::protocol::backend_msgs::{command_tag, error_fields, parameter_status, ready_status};
use crate::protocol::frame::peek_header;
use crate::protocol::messages::{Severity, TxStatus};
use crate::protocol::SqlState;
use bytes::{Buf, BytesMut};
use std::sync::Arc;

/// Where a server frame that is being streamed through stands.
#[derive(Default)]
pub struct ServerInput {
    /// Bytes of the current pass-through frame not yet seen.
    frame_left: usize,
}

pub struct Outcome {
    /// The connection is idle and clean: release it, then write `tail`. The server buffer
    /// is then fully handled: the caller clears it after that write.
    pub release: bool,
    /// The part of the server buffer still to send to the client (only when releasing;
    /// otherwise, or when replies were spliced in, it was written or is in the client's
    /// output buffer).
    pub tail: Option<std::ops::Range<usize>>,
    /// Prepared statements whose server plans went stale (to prepare afresh).
    pub stale: Vec<Arc<StatementInfo>>,
}

pub enum ProcessError {
    /// Writing to the client failed.
    Client,
    /// The server broke the protocol.
    Server(String),
}

fn inspected(tag: u8) -> bool {
    matches!(tag, b'Z' | b'E' | b'S' | b'C' | b'1' | b'3')
}

/// The message an ErrorResponse carries when a prepared statement's plan no longer fits.
const STALE_PLAN: &str = "cached plan must not change result type";

impl ServerInput {
    /// Handles the bytes in `sbuf`: forwards complete and partial pass-through frames,
    /// inspects the rest, and reports whether the connection can be released. Made-up
    /// replies are spliced in through `out` (the client's output buffer).
    #[allow(clippy::too_many_arguments)]
    pub async fn process(
        &mut self,
        sbuf: &mut BytesMut,
        a: &mut Attached,
        client: &mut Stream,
        out: &mut BytesMut,
        wanted: &mut Wanted,
        startup: &ParamMap,
        release_at_idle: bool,
    ) -> Result<Outcome, ProcessError> {
        let mut pos = 0;
        let mut fwd_start = 0;
        let mut release = false;
        let mut stale = Vec::new();
        out.clear();
        loop {
            if self.frame_left > 0 {
                let take = self.frame_left.min(sbuf.len() - pos);
                pos += take;
                self.frame_left -= take;
                if self.frame_left > 0 {
                    break;
                }
                if a.conn.queue.synthetic_ready() {
                    out.extend_from_slice(&sbuf[fwd_start..pos]);
                    fwd_start = pos;
                    a.conn.queue.drain_synthetic(out);
                }
                continue;
            }
            let h = match peek_header(&sbuf[pos..], SERVER_MAX_FRAME) {
                Ok(Some(h)) => h,
                Ok(None) => break,
                Err(e) => {
                    return Err(ProcessError::Server(format!(
                        "invalid message from server: {e}"
                    )))
                }
            };
            tracing::trace!(tag = %(h.tag as char), len = h.total_len, pending = a.pending, "server frame");
            if !inspected(h.tag) {
                {
                    let conn = &mut *a.conn;
                    conn.queue.on_frame(h.tag, &mut conn.prepared)
                };
                self.frame_left = h.total_len;
                continue;
            }
            if sbuf.len() - pos < h.total_len {
                sbuf.reserve(h.total_len);
                break;
            }
            let frame = &sbuf[pos..pos + h.total_len];
            let mut swallow = false;
            match h.tag {
                b'Z' => {
                    let status = ready_status(frame)
                        .ok_or_else(|| ProcessError::Server("invalid ReadyForQuery".into()))?;
                    {
                        let conn = &mut *a.conn;
                        conn.queue.on_frame(b'Z', &mut conn.prepared)
                    };
                    a.status = status;
                    a.pending = a.pending.saturating_sub(1);
                    a.answered += 1;
                    settle(a, wanted, startup, status);
                }
                b'E' => {
                    let err = error_fields(frame);
                    let (_, failed) = {
                        let conn = &mut *a.conn;
                        conn.queue.on_frame(b'E', &mut conn.prepared)
                    };
                    match err {
                        Some(err) if err.severity == Severity::Fatal => {
                            // Dropped here; the session reports it as an ERROR.
                            swallow = true;
                            a.conn.broken = true;
                            a.fatal = Some(err);
                        }
                        Some(err) => {
                            a.saw_error = true;
                            if let Some(f) = failed {
                                if err.code == SqlState::FEATURE_NOT_SUPPORTED
                                    && err.message.contains(STALE_PLAN)
                                {
                                    stale.push(f);
                                }
                            }
                        }
                        None => a.saw_error = true,
                    }
                }
                b'S' => {
                    {
                        let conn = &mut *a.conn;
                        conn.queue.on_frame(b'S', &mut conn.prepared)
                    };
                    if let Some((name, value)) = parameter_status(frame) {
                        a.conn.note_parameter(name, value);
                        if is_tracked_report(name) {
                            let key = name.to_ascii_lowercase();
                            let v = ParamValue::Literal(value.to_string());
                            a.conn.applied.insert(key.clone(), v.clone());
                            wanted.map.insert(key, v);
                            wanted.version = fresh_version();
                            a.conn.applied_version = wanted.version;
                        }
                    }
                }
                b'C' => {
                    {
                        let conn = &mut *a.conn;
                        conn.queue.on_frame(b'C', &mut conn.prepared)
                    };
                    a.last_rollback = command_tag(frame) == Some(&b"ROLLBACK"[..]);
                }
                _ => {
                    let (action, _) = {
                        let conn = &mut *a.conn;
                        conn.queue.on_frame(h.tag, &mut conn.prepared)
                    };
                    swallow = action == Action::Swallow;
                }
            }
            if swallow {
                out.extend_from_slice(&sbuf[fwd_start..pos]);
                pos += h.total_len;
                fwd_start = pos;
            } else {
                pos += h.total_len;
            }
            if a.conn.queue.synthetic_ready() {
                out.extend_from_slice(&sbuf[fwd_start..pos]);
                fwd_start = pos;
                a.conn.queue.drain_synthetic(out);
            }
            if h.tag == b'Z'
                && release_at_idle
                && a.pending == 0
                && a.status == TxStatus::Idle
                && a.conn.queue.is_empty()
                && pos == sbuf.len()
            {
                release = true;
                break;
            }
        }
        let spliced = !out.is_empty();
        if spliced {
            out.extend_from_slice(&sbuf[fwd_start..pos]);
        }
        if release {
            return Ok(Outcome {
                release: true,
                tail: (!spliced && pos > fwd_start).then_some(fwd_start..pos),
                stale,
            });
        }
        let write = if spliced {
            client.send_all(out).await
        } else if pos > fwd_start {
            client.send_all(&sbuf[fwd_start..pos]).await
        } else {
            Ok(())
        };
        if spliced {
            out.clear();
        }
        if write.is_err() {
            return Err(ProcessError::Client);
        }
        sbuf.advance(pos);
        Ok(Outcome {
            release: false,
            tail: None,
            stale,
        })
    }
}

/// At a ReadyForQuery outside a transaction, the SET/RESET of the requests answered so far
/// take effect (or are dropped, if their transaction failed or rolled back).
fn settle(a: &mut Attached, wanted: &mut Wanted, startup: &ParamMap, status: TxStatus) {
    if status != TxStatus::Idle {
        return;
    }
    let keep = !a.saw_error && !a.last_rollback;
    let answered = a.answered;
    if !a.changes.is_empty() {
        let empty = ParamMap::new();
        let mut rest = Vec::new();
        for (seq, change) in a.changes.drain(..) {
            if seq >= answered {
                rest.push((seq, change));
            } else if keep {
                apply_change(&mut wanted.map, &change, startup);
                apply_change(&mut a.conn.applied, &change, &empty);
                wanted.version = fresh_version();
                a.conn.applied_version = wanted.version;
            }
        }
        a.changes = rest;
    }
    a.saw_error = false;
    a.last_rollback = false;
}
