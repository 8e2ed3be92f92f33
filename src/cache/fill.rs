//! A result being recorded for the cache: a copy of the replies as they are written to the
//! client (the tee in the server-to-client path), up to `max_result_bytes`, with what was
//! known when the query started (the invalidation sequence number, the epoch, the WAL
//! position its server had replayed) so the store can tell whether it may keep it.

use super::marks::Mark;
use super::reject::Reject;
use super::store::Key;
use std::sync::Arc;

pub struct Fill {
    pub(super) key: Key,
    pub(super) relations: Arc<[String]>,
    pub(super) marks: Arc<[Arc<Mark>]>,
    /// The row slot, for a read by key.
    pub(super) row: Option<u32>,
    pub(super) start_seq: u64,
    pub(super) epoch: u64,
    /// WAL position the server had replayed when checked out (u64::MAX: the primary).
    pub(super) replayed: u64,
    pub(super) buf: Vec<u8>,
    pub(super) limit: usize,
    pub(super) failed: Option<Reject>,
}

impl Fill {
    /// Records bytes written to the client.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        if self.buf.len() + bytes.len() > self.limit {
            self.failed = Some(Reject::TooLarge);
            self.buf = Vec::new();
            return;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The request turned out not to be storable.
    pub fn abandon(&mut self, why: Reject) {
        if self.failed.is_none() {
            self.failed = Some(why);
            self.buf = Vec::new();
        }
    }
}

/// The replies of one request without its final ReadyForQuery('I'), if they are all rows
/// and completions: ParseComplete, BindComplete, ParameterDescription, RowDescription, NoData,
/// DataRow, CommandComplete, EmptyQueryResponse, NoticeResponse.
pub(super) fn storable_replies(buf: &[u8]) -> Option<&[u8]> {
    let body = buf.strip_suffix(&[b'Z', 0, 0, 0, 5, b'I'])?;
    let mut pos = 0;
    while pos < body.len() {
        let tag = body[pos];
        let len = body.get(pos + 1..pos + 5)?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if !matches!(
            tag,
            b'1' | b'2' | b't' | b'T' | b'n' | b'D' | b'C' | b'I' | b'N'
        ) || len < 4
        {
            return None;
        }
        pos += 1 + len;
    }
    (pos == body.len()).then_some(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rows_and_completions_are_storable() {
        let z = [b'Z', 0, 0, 0, 5, b'I'];
        let c = [
            b'C', 0, 0, 0, 13, b'S', b'E', b'L', b'E', b'C', b'T', b' ', b'1', 0,
        ];
        let ok = [&c[..], &z[..]].concat();
        assert_eq!(storable_replies(&ok), Some(&c[..]));
        let e = [b'E', 0, 0, 0, 4];
        assert_eq!(storable_replies(&[&e[..], &z[..]].concat()), None);
        assert_eq!(storable_replies(&c), None, "no ReadyForQuery");
        let in_tx = [&c[..], &[b'Z', 0, 0, 0, 5, b'T'][..]].concat();
        assert_eq!(storable_replies(&in_tx), None);
        assert_eq!(
            storable_replies(&[&c[..5], &z[..]].concat()),
            None,
            "cut frame"
        );
    }
}
