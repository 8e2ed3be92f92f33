//! The replies a server owes for what was sent to it, in order. Following them tells which
//! server messages answer Switchyard's own injected messages (to swallow), where replies
//! Switchyard makes up (ParseComplete, CloseComplete) belong in the stream, and which
//! statement a failed Parse or Bind concerned.

use super::registry::StatementInfo;
use super::server_set::ServerStatements;
use std::collections::VecDeque;
use std::sync::Arc;

pub const PARSE_COMPLETE: &[u8] = &[b'1', 0, 0, 0, 4];
pub const CLOSE_COMPLETE: &[u8] = &[b'3', 0, 0, 0, 4];

#[derive(Debug, Clone)]
pub enum Expect {
    /// ParseComplete. `track`: the statement it prepares on the connection.
    Parse {
        swallow: bool,
        track: Option<Arc<StatementInfo>>,
    },
    Bind {
        stmt: Option<Arc<StatementInfo>>,
    },
    /// ParameterDescription, then RowDescription or NoData.
    DescribeStatement {
        stmt: Option<Arc<StatementInfo>>,
    },
    /// RowDescription or NoData.
    DescribePortal,
    /// Rows, then CommandComplete, PortalSuspended or EmptyQueryResponse.
    Execute,
    Close {
        swallow: bool,
    },
    /// Sync, Query or FunctionCall: everything up to ReadyForQuery.
    Ready {
        simple: bool,
    },
    /// A reply Switchyard makes up, sent when the stream reaches this point.
    Synthetic(&'static [u8]),
}

/// What to do with one server frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Forward,
    Swallow,
}

#[derive(Default)]
pub struct ExpectQueue {
    q: VecDeque<Expect>,
    /// The server is in copy-in mode (CopyInResponse seen): it ignores Sync until the
    /// client's CopyDone or CopyFail.
    copy_in: bool,
}

impl ExpectQueue {
    pub fn push(&mut self, e: Expect) {
        self.q.push_back(e);
    }

    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    pub fn clear(&mut self) {
        self.q.clear();
    }

    /// Appends the made-up replies now at the head to `out`.
    pub fn drain_synthetic(&mut self, out: &mut bytes::BytesMut) {
        while let Some(Expect::Synthetic(bytes)) = self.q.front() {
            out.extend_from_slice(bytes);
            self.q.pop_front();
        }
    }

    /// Whether a made-up reply waits at the head.
    pub fn synthetic_ready(&self) -> bool {
        matches!(self.q.front(), Some(Expect::Synthetic(_)))
    }

    /// Accounts for a server frame passed through unread (not ReadyForQuery, ErrorResponse,
    /// ParameterStatus, CommandComplete, ParseComplete or CloseComplete). While only a
    /// ReadyForQuery is owed (a simple Query's rows, or a batch's once its Execute is
    /// answered), such a frame moves nothing unless it starts a COPY FROM STDIN.
    #[inline]
    pub fn on_passed(&mut self, tag: u8, held: &mut ServerStatements) {
        if tag != b'G' && matches!(self.q.front(), None | Some(Expect::Ready { .. })) {
            return;
        }
        self.on_frame(tag, held);
    }

    /// Accounts for a server frame of type `tag`. For an ErrorResponse, returns the
    /// statement whose Bind/Describe failed, so a stale plan can be renewed.
    pub fn on_frame(
        &mut self,
        tag: u8,
        held: &mut ServerStatements,
    ) -> (Action, Option<Arc<StatementInfo>>) {
        match tag {
            // Asynchronous messages answer nothing.
            b'N' | b'S' | b'A' => (Action::Forward, None),
            b'E' => {
                self.copy_in = false;
                (Action::Forward, self.on_error(held))
            }
            b'G' => {
                self.copy_in = true;
                (Action::Forward, None)
            }
            b'Z' => {
                while let Some(e) = self.q.pop_front() {
                    if matches!(e, Expect::Ready { .. }) {
                        break;
                    }
                }
                (Action::Forward, None)
            }
            _ => (self.on_reply(tag), None),
        }
    }

    /// The client ended a COPY FROM STDIN. Syncs it sent while the server was in copy-in
    /// mode get no ReadyForQuery: forgets them and returns how many there were.
    pub fn on_copy_end(&mut self) -> usize {
        if !std::mem::take(&mut self.copy_in) {
            return 0;
        }
        // The head is the Execute or Query that started the copy; it stays.
        let mut removed = 0;
        let mut kept = VecDeque::with_capacity(self.q.len());
        for (i, e) in self.q.drain(..).enumerate() {
            if i > 0 && matches!(e, Expect::Ready { simple: false }) {
                removed += 1;
            } else {
                kept.push_back(e);
            }
        }
        self.q = kept;
        removed
    }

    fn on_error(&mut self, held: &mut ServerStatements) -> Option<Arc<StatementInfo>> {
        let failed = match self.q.front() {
            None | Some(Expect::Ready { simple: true }) => return None,
            Some(Expect::Bind { stmt }) | Some(Expect::DescribeStatement { stmt }) => stmt.clone(),
            _ => None,
        };
        // The server skips everything up to the next Sync: those replies never come.
        while let Some(e) = self.q.front() {
            if matches!(e, Expect::Ready { .. }) {
                break;
            }
            if let Some(Expect::Parse {
                track: Some(info), ..
            }) = self.q.pop_front()
            {
                held.remove(&info.server_name);
            }
        }
        failed
    }

    fn on_reply(&mut self, tag: u8) -> Action {
        let done = match (self.q.front(), tag) {
            (Some(Expect::Parse { swallow, .. }), b'1') => Some(*swallow),
            (Some(Expect::Bind { .. }), b'2') => Some(false),
            (Some(Expect::Close { swallow }), b'3') => Some(*swallow),
            (Some(Expect::DescribeStatement { .. }), b't') => None,
            (Some(Expect::DescribeStatement { .. }), b'T' | b'n') => Some(false),
            (Some(Expect::DescribePortal), b'T' | b'n') => Some(false),
            (Some(Expect::Execute), b'C' | b's' | b'I') => Some(false),
            _ => None,
        };
        match done {
            Some(swallow) => {
                self.q.pop_front();
                if swallow {
                    Action::Swallow
                } else {
                    Action::Forward
                }
            }
            None => Action::Forward,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prepared::Registry;

    fn run(q: &mut ExpectQueue, held: &mut ServerStatements, tags: &[u8]) -> String {
        let mut out = String::new();
        let mut synth = bytes::BytesMut::new();
        q.drain_synthetic(&mut synth);
        out.extend(synth.iter().filter(|b| **b > 4).map(|&b| b as char));
        for &t in tags {
            let (a, _) = q.on_frame(t, held);
            if a == Action::Forward {
                out.push(t as char);
            }
            let mut synth = bytes::BytesMut::new();
            q.drain_synthetic(&mut synth);
            out.extend(synth.iter().filter(|b| **b > 4).map(|&b| b as char));
        }
        out
    }

    /// The shortcut for unread frames moves the queue exactly as the full walk does.
    #[test]
    fn passed_frames_move_the_queue_as_on_frame_does() {
        let heads = || {
            vec![
                vec![],
                vec![Expect::Ready { simple: true }],
                vec![Expect::Ready { simple: false }],
                vec![Expect::Execute, Expect::Ready { simple: false }],
                vec![Expect::Bind { stmt: None }, Expect::Ready { simple: false }],
                vec![Expect::DescribePortal, Expect::Ready { simple: false }],
            ]
        };
        for (i, head) in heads().into_iter().enumerate() {
            for &tag in b"TDnst2GNAHWcd" {
                let (mut fast, mut full) = (ExpectQueue::default(), ExpectQueue::default());
                for e in &head {
                    fast.push(e.clone());
                    full.push(e.clone());
                }
                let mut held = ServerStatements::new(4);
                fast.on_passed(tag, &mut held);
                full.on_frame(tag, &mut held);
                assert_eq!(
                    (fast.q.len(), fast.copy_in),
                    (full.q.len(), full.copy_in),
                    "queue {i}, tag {}",
                    tag as char
                );
            }
        }
    }

    #[test]
    fn swallows_injected_parse_and_places_made_up_replies() {
        let reg = Registry::new(10);
        let info = reg.get_or_insert(b"select 1\0\0\0");
        let mut held = ServerStatements::new(10);
        let mut q = ExpectQueue::default();
        // Client: Parse(existing) Bind Execute Sync -> we sent: Bind Execute Sync.
        q.push(Expect::Synthetic(PARSE_COMPLETE));
        q.push(Expect::Bind {
            stmt: Some(info.clone()),
        });
        q.push(Expect::Execute);
        q.push(Expect::Ready { simple: false });
        assert_eq!(run(&mut q, &mut held, b"2DCZ"), "12DCZ");
        assert!(q.is_empty());
        // Client: Bind Execute Sync on a connection without it -> Parse(injected) Bind Execute Sync.
        q.push(Expect::Parse {
            swallow: true,
            track: Some(info.clone()),
        });
        q.push(Expect::Bind {
            stmt: Some(info.clone()),
        });
        q.push(Expect::Execute);
        q.push(Expect::Close { swallow: false });
        q.push(Expect::Synthetic(CLOSE_COMPLETE));
        q.push(Expect::Ready { simple: false });
        assert_eq!(run(&mut q, &mut held, b"12DDC3Z"), "2DDC33Z");
    }

    #[test]
    fn error_skips_to_sync_and_forgets_failed_parses() {
        let reg = Registry::new(10);
        let info = reg.get_or_insert(b"select bad\0\0\0");
        let mut held = ServerStatements::new(10);
        held.insert(&info.server_name);
        let mut q = ExpectQueue::default();
        q.push(Expect::Parse {
            swallow: false,
            track: Some(info.clone()),
        });
        q.push(Expect::Bind {
            stmt: Some(info.clone()),
        });
        q.push(Expect::Synthetic(PARSE_COMPLETE));
        q.push(Expect::Execute);
        q.push(Expect::Ready { simple: false });
        q.push(Expect::Synthetic(CLOSE_COMPLETE));
        assert_eq!(run(&mut q, &mut held, b"EZ"), "EZ3");
        assert!(!held.contains(&info.server_name));
        // A failed Bind names its statement.
        q.push(Expect::Bind {
            stmt: Some(info.clone()),
        });
        q.push(Expect::Ready { simple: false });
        let (_, failed) = q.on_frame(b'E', &mut held);
        assert!(failed.is_some_and(|f| Arc::ptr_eq(&f, &info)));
        // Errors inside a simple query do not unwind anything.
        let mut q = ExpectQueue::default();
        q.push(Expect::Ready { simple: true });
        assert_eq!(run(&mut q, &mut held, b"TDEZ"), "TDEZ");
    }
}
