//! Server-to-client streaming while attached. Frames pass through as raw bytes, even when
//! they are larger than the buffer (no whole-result buffering); only ReadyForQuery,
//! ErrorResponse, ParameterStatus and CommandComplete are looked at. A server FATAL is held
//! back so the session can report it as an ERROR and keep the client.

use super::attached::Attached;
use crate::backend::server_frames::SERVER_MAX_FRAME;
use crate::cache::Fill;
use crate::net::Stream;
use crate::params::{apply_change, fresh_version, is_tracked_report, ParamMap, ParamValue, Wanted};
use crate::prepared::expect::Action;
use crate::prepared::StatementInfo;
use crate::protocol::backend_msgs::{command_tag_is, error_fields, parameter_status, ready_status};
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

/// What handling the server's replies reads and changes in the session.
pub struct Tracking<'a> {
    pub attached: &'a mut Attached,
    /// The client's settings (ParameterStatus and settled SETs change them).
    pub wanted: &'a mut Wanted,
    /// What RESET goes back to.
    pub startup: &'a ParamMap,
    /// Transaction pooling: the connection can go back at ReadyForQuery('I').
    pub release_at_idle: bool,
    /// The database's counters (query durations are observed as they end).
    pub traffic: &'a crate::stats::Traffic,
}

/// How far one pass over the server buffer got.
#[derive(Default)]
struct Walk {
    /// End of the bytes handled.
    pos: usize,
    /// Start of the handled bytes not yet copied or written to the client.
    fwd_start: usize,
    release: bool,
    stale: Vec<Arc<StatementInfo>>,
}

impl ServerInput {
    /// Handles the bytes in `sbuf`: forwards complete and partial pass-through frames,
    /// inspects the rest, and reports whether the connection can be released. Made-up
    /// replies are spliced in through `out` (the client's output buffer).
    pub async fn process(
        &mut self,
        sbuf: &mut BytesMut,
        client: &mut Stream,
        out: &mut BytesMut,
        mut t: Tracking<'_>,
    ) -> Result<Outcome, ProcessError> {
        out.clear();
        let mut w = Walk::default();
        self.walk(sbuf, out, &mut t, &mut w)?;
        t.attached.acct.bytes_out += w.pos as u64;
        w.finish(sbuf, client, out, t.attached.fill.as_deref_mut())
            .await
    }

    /// Advances over the frames in `sbuf`, up to the end of what is there (or the
    /// ReadyForQuery at which the connection is released).
    fn walk(
        &mut self,
        sbuf: &mut BytesMut,
        out: &mut BytesMut,
        t: &mut Tracking<'_>,
        w: &mut Walk,
    ) -> Result<(), ProcessError> {
        loop {
            if self.frame_left > 0 {
                let take = self.frame_left.min(sbuf.len() - w.pos);
                w.pos += take;
                self.frame_left -= take;
                if self.frame_left > 0 {
                    return Ok(());
                }
                w.splice_if_ready(sbuf, t.attached, out);
                continue;
            }
            let h = match peek_header(&sbuf[w.pos..], SERVER_MAX_FRAME) {
                Ok(Some(h)) => h,
                Ok(None) => return Ok(()),
                Err(e) => {
                    return Err(ProcessError::Server(format!(
                        "invalid message from server: {e}"
                    )))
                }
            };
            tracing::trace!(tag = %(h.tag as char), len = h.total_len, pending = t.attached.pending, "server frame");
            if !inspected(h.tag) {
                let conn = &mut *t.attached.conn;
                conn.queue.on_passed(h.tag, &mut conn.prepared);
                self.frame_left = h.total_len;
                continue;
            }
            if sbuf.len() - w.pos < h.total_len {
                sbuf.reserve(h.total_len);
                return Ok(());
            }
            let frame = &sbuf[w.pos..w.pos + h.total_len];
            if inspect(t, h.tag, frame, &mut w.stale)? {
                // Swallowed: what came before it goes out, it does not.
                out.extend_from_slice(&sbuf[w.fwd_start..w.pos]);
                w.fwd_start = w.pos + h.total_len;
            }
            w.pos += h.total_len;
            w.splice_if_ready(sbuf, t.attached, out);
            let a = &*t.attached;
            if h.tag == b'Z'
                && t.release_at_idle
                && a.pending == 0
                && a.status == TxStatus::Idle
                && a.conn.queue.is_empty()
                && w.pos == sbuf.len()
            {
                w.release = true;
                return Ok(());
            }
        }
    }
}

impl Walk {
    /// Replies made up by Switchyard that are due now go in after what was handled so far.
    fn splice_if_ready(&mut self, sbuf: &[u8], a: &mut Attached, out: &mut BytesMut) {
        if a.conn.queue.synthetic_ready() {
            out.extend_from_slice(&sbuf[self.fwd_start..self.pos]);
            self.fwd_start = self.pos;
            a.conn.queue.drain_synthetic(out);
        }
    }

    /// Writes what was handled to the client (unless the connection is to be released
    /// first: then the caller writes the tail) and drops it from `sbuf`.
    async fn finish(
        self,
        sbuf: &mut BytesMut,
        client: &mut Stream,
        out: &mut BytesMut,
        fill: Option<&mut Fill>,
    ) -> Result<Outcome, ProcessError> {
        let spliced = !out.is_empty();
        if spliced {
            out.extend_from_slice(&sbuf[self.fwd_start..self.pos]);
        }
        if self.release {
            return Ok(Outcome {
                release: true,
                tail: (!spliced && self.pos > self.fwd_start).then_some(self.fwd_start..self.pos),
                stale: self.stale,
            });
        }
        let sent: &[u8] = if spliced {
            out
        } else {
            &sbuf[self.fwd_start..self.pos]
        };
        if let Some(f) = fill {
            // The tee of the result cache: what the client gets, recorded as it goes.
            f.push(sent);
        }
        let write = if sent.is_empty() {
            Ok(())
        } else {
            client.send_all(sent).await
        };
        if spliced {
            out.clear();
        }
        if write.is_err() {
            return Err(ProcessError::Client);
        }
        sbuf.advance(self.pos);
        Ok(Outcome {
            release: false,
            tail: None,
            stale: self.stale,
        })
    }
}

/// Advances the connection's queue of expected replies past a frame of type `tag`: what to
/// do with the frame, and the statement whose Parse failed (for an ErrorResponse).
#[inline]
fn expect_reply(a: &mut Attached, tag: u8) -> (Action, Option<Arc<StatementInfo>>) {
    let conn = &mut *a.conn;
    conn.queue.on_frame(tag, &mut conn.prepared)
}

/// Looks at one whole inspected frame and tracks what it says; true if it is swallowed.
fn inspect(
    t: &mut Tracking<'_>,
    tag: u8,
    frame: &[u8],
    stale: &mut Vec<Arc<StatementInfo>>,
) -> Result<bool, ProcessError> {
    let a = &mut *t.attached;
    let (action, failed) = expect_reply(a, tag);
    match tag {
        b'Z' => {
            let status = ready_status(frame)
                .ok_or_else(|| ProcessError::Server("invalid ReadyForQuery".into()))?;
            a.status = status;
            a.pending = a.pending.saturating_sub(1);
            a.answered += 1;
            a.acct
                .ready(status == TxStatus::Idle, a.pending == 0, t.traffic);
            settle(a, t.wanted, t.startup, status);
        }
        b'E' => return Ok(on_error(a, frame, failed, stale)),
        b'S' => {
            if let Some((name, value)) = parameter_status(frame) {
                note_parameter(a, t.wanted, name, value);
            }
        }
        b'C' => a.last_rollback = command_tag_is(frame, b"ROLLBACK"),
        _ => return Ok(action == Action::Swallow),
    }
    Ok(false)
}

/// An ErrorResponse: a FATAL is held back (the session reports it as an ERROR) and the
/// connection marked broken; a stale plan of a prepared statement is noted. True if
/// swallowed.
fn on_error(
    a: &mut Attached,
    frame: &[u8],
    failed: Option<Arc<StatementInfo>>,
    stale: &mut Vec<Arc<StatementInfo>>,
) -> bool {
    let fields = error_fields(frame);
    if let Some(err) = &fields {
        a.acct.errors.push(err.code.bytes());
    }
    match fields {
        Some(err) if err.severity == Severity::Fatal => {
            a.conn.broken = true;
            a.fatal = Some(err);
            true
        }
        Some(err) => {
            a.saw_error = true;
            if let Some(f) = failed {
                if err.code == SqlState::FEATURE_NOT_SUPPORTED && err.message.contains(STALE_PLAN) {
                    stale.push(f);
                }
            }
            false
        }
        None => {
            a.saw_error = true;
            false
        }
    }
}

/// A ParameterStatus: recorded on the connection, and for a setting the client can change,
/// taken as what both the client and the connection now have.
fn note_parameter(a: &mut Attached, wanted: &mut Wanted, name: &str, value: &str) {
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
