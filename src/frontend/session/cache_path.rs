//! The result cache in the request loop: a lone execution outside a transaction (one
//! Query, or `[Parse] Bind [Describe] Execute Sync`) is looked up before any routing or
//! checkout (a hit costs no server), a miss records its
//! replies as they stream to the client and offers them to the cache at the release, and
//! writes through this session invalidate the tables they touched when their transaction
//! ends (again with the primary's WAL position once it is known).

use super::super::cache_request::cache_request;
use super::super::key_value::{bind_value, literal_value};
use super::*;
use crate::cache::{
    request_key, settings_digest, Fill, Key, Reject, ResultCache, RowChange, Shape,
};
use crate::router::{fingerprint, KeyAt, WriteTargets};

/// A cacheable request that missed: what its fill needs once a server is attached.
pub(super) struct Missed {
    key: Key,
    shape: Arc<Shape>,
    /// The row slot of a read by key.
    row: Option<u32>,
}

/// What the cache did with the buffered request.
pub(super) enum Looked {
    /// Answered: the reply is in the client's output buffer and the frame consumed.
    Hit,
    Missed(Missed),
    NotCacheable,
}

/// The session's settings as a cache key part (`application_name` cannot change a result).
fn settings_key(map: &ParamMap) -> [u8; 16] {
    let entries: Vec<_> = map
        .iter()
        .filter(|(k, _)| *k != "application_name")
        .collect();
    settings_digest(&entries)
}

/// Merges what one more statement may change into a transaction's pending writes.
pub(super) fn merge_writes(into: &mut Option<WriteTargets>, more: &WriteTargets) {
    match (into.as_mut(), more) {
        (_, WriteTargets::Nothing) => {}
        (Some(WriteTargets::Everything), _) => {}
        (Some(WriteTargets::Tables(have)), WriteTargets::Tables(new)) => {
            for t in new {
                if !have.contains(t) {
                    have.push(t.clone());
                }
            }
        }
        _ => *into = Some(more.clone()),
    }
}

/// What the frames of one request forwarded to the primary may change, noted frame by
/// frame: a Query by its text, an execution by its statement's text and its Bind (a Parse
/// waits for the Bind that runs it; one that none runs in the request is noted by its
/// text alone, unless it is a named statement a later Bind will find in the registry).
pub(super) struct WriteNotes<'a> {
    cache: &'a ResultCache,
    writes: &'a mut Option<WriteTargets>,
    rows: &'a mut Vec<RowChange>,
    /// A Parse not yet run: statement name, text, Parse tail.
    parsed: Option<(&'a [u8], &'a str, &'a [u8])>,
}

impl<'a> WriteNotes<'a> {
    pub fn new(
        cache: &'a ResultCache,
        writes: &'a mut Option<WriteTargets>,
        rows: &'a mut Vec<RowChange>,
    ) -> WriteNotes<'a> {
        WriteNotes {
            cache,
            writes,
            rows,
            parsed: None,
        }
    }

    /// One client frame (header included).
    pub fn frame(&mut self, tag: u8, frame: &'a [u8], client: &ClientStatements) {
        use crate::protocol::frame::{read_cstr, HEADER_LEN};
        let Some(body) = frame.get(HEADER_LEN..) else {
            return;
        };
        match tag {
            b'Q' => {
                if let Some(sql) = crate::protocol::client_msgs::query_sql(frame) {
                    self.note(sql, |at| literal_value(sql, at));
                }
            }
            b'P' => {
                self.flush_parsed(client);
                let parsed = read_cstr(body).and_then(|(name, tail)| {
                    let sql = std::str::from_utf8(read_cstr(tail)?.0).ok()?;
                    Some((name, sql, tail))
                });
                self.parsed = parsed;
            }
            b'B' => {
                let Some((_portal, rest)) = read_cstr(body) else {
                    return;
                };
                let Some((stmt, _)) = read_cstr(rest) else {
                    return;
                };
                match self.parsed {
                    Some((name, sql, tail)) if name == stmt => {
                        self.parsed = None;
                        self.note(sql, |at| bind_value(body, tail, at));
                    }
                    _ => {
                        let info = std::str::from_utf8(stmt).ok().and_then(|n| client.get(n));
                        if let Some(info) = info {
                            self.note(info.query(), |at| bind_value(body, &info.parse_tail, at));
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn note(&mut self, sql: &str, value: impl FnOnce(KeyAt) -> Option<i64>) {
        Session::note_cache_write(self.cache, sql, value, self.writes, self.rows);
    }

    /// A Parse no Bind in the request ran: a statement the client's registry holds is
    /// noted when a later Bind runs it; any other counts now, by its text.
    fn flush_parsed(&mut self, client: &ClientStatements) {
        if let Some((name, sql, _)) = self.parsed.take() {
            let registered = !name.is_empty()
                && std::str::from_utf8(name).is_ok_and(|n| client.get(n).is_some());
            if !registered {
                self.note(sql, |_| None);
            }
        }
    }

    /// The request ends.
    pub fn finish(mut self, client: &ClientStatements) {
        self.flush_parsed(client);
    }
}

impl Session {
    /// Looks the buffered request up in the cache, if it is one execution alone.
    pub(super) fn look_up_cache(&mut self) -> Looked {
        let Some(cache) = self.cluster.cache.as_deref() else {
            return Looked::NotCacheable;
        };
        if self.mode != PoolMode::Transaction {
            return Looked::NotCacheable;
        }
        let max = self.shared.config.max_message_size;
        let Some(req) = cache_request(self.io.bufs.client_input(), max, &self.statements) else {
            return Looked::NotCacheable;
        };
        let fp = fingerprint(req.sql);
        let shape = cache.shape(req.sql, &fp);
        match shape.rejected() {
            Some(Reject::Shape(crate::router::CacheReject::NotASelect)) => {
                return Looked::NotCacheable
            }
            Some(why) => {
                cache.reject(why);
                return Looked::NotCacheable;
            }
            None if fp.time_word || req.time_word_param => {
                cache.reject(Reject::TimeWord);
                return Looked::NotCacheable;
            }
            None if shape.is_busy(shape.keyed_read) => {
                cache.reject(Reject::BusyTable);
                return Looked::NotCacheable;
            }
            None => {}
        }
        let settings = settings_key(&self.wanted.map);
        let key = request_key(&self.pools.user, &settings, &req.key);
        let len = req.len;
        match cache.lookup(&key, self.ryw.min_lsn) {
            Some(reply) => {
                let out = self.io.out();
                out.extend_from_slice(&reply);
                messages::ready_for_query(out, TxStatus::Idle);
                self.io.consume(len);
                Looked::Hit
            }
            None => {
                let row = cache.read_row(&shape, req.sql, |at| match req.bind {
                    Some((bind, parse_tail)) => bind_value(bind, parse_tail, at),
                    None => literal_value(req.sql, at),
                });
                Looked::Missed(Missed { key, shape, row })
            }
        }
    }

    /// After the checkout for a missed request: starts recording its replies.
    pub(super) fn begin_fill(&mut self, missed: Missed) {
        let Some(cache) = self.cluster.cache.as_deref() else {
            return;
        };
        let Some(a) = self.server.as_mut() else {
            return;
        };
        let replayed = match a.decision.target {
            Target::Primary => u64::MAX,
            Target::Replica => {
                let snap = self.cluster.topology.snapshot();
                let addr: &str = &a.conn.addr;
                snap.hosts
                    .iter()
                    .find(|h| h.addr == addr)
                    .map_or(0, |h| h.lsn)
            }
        };
        a.fill = cache.begin_fill(missed.key, &missed.shape, replayed, missed.row);
    }

    /// Offers a finished recording to the cache.
    pub(super) fn finish_fill(&self, fill: Box<Fill>) {
        if let Some(cache) = self.cluster.cache.as_deref() {
            cache.finish_fill(fill);
        }
    }

    /// Notes what a statement forwarded to the primary may change: one row where it
    /// changes one row by key (`value` gives a key term's value in this execution), else
    /// the tables it writes.
    pub(super) fn note_cache_write(
        cache: &ResultCache,
        sql: &str,
        value: impl FnOnce(KeyAt) -> Option<i64>,
        pending: &mut Option<WriteTargets>,
        rows: &mut Vec<RowChange>,
    ) {
        let shape = cache.shape(sql, &fingerprint(sql));
        match cache.written_row(&shape, sql, value) {
            Some(row) => rows.push(row),
            None => merge_writes(pending, &shape.writes),
        }
    }

    /// A transaction through this session ended: its writes invalidate now. With
    /// `keep`, the tables stay pending for [`Session::invalidate_at_lsn`].
    pub(super) fn invalidate_written(&mut self, keep: bool) {
        let Some(cache) = self.cluster.cache.as_deref() else {
            return;
        };
        let Some(a) = self.server.as_mut() else {
            return;
        };
        let (pending, rows) = if keep {
            (a.cache_writes.clone(), a.cache_rows.clone())
        } else {
            (a.cache_writes.take(), std::mem::take(&mut a.cache_rows))
        };
        if let Some(w) = pending {
            cache.invalidate_local(&w, 0);
        }
        if !rows.is_empty() {
            cache.invalidate_local_rows(&rows, 0);
        }
    }

    /// The primary's WAL position after the transaction is known (`u64::MAX`: unknown): a
    /// replica read of those tables is stored only once the replica has replayed it.
    pub(super) fn invalidate_at_lsn(&mut self, lsn: u64) {
        let Some(cache) = self.cluster.cache.as_deref() else {
            return;
        };
        let Some(a) = self.server.as_mut() else {
            return;
        };
        if let Some(w) = a.cache_writes.take() {
            if matches!(w, WriteTargets::Tables(_)) {
                cache.invalidate_local(&w, lsn);
            }
        }
        let rows = std::mem::take(&mut a.cache_rows);
        if !rows.is_empty() {
            cache.invalidate_local_rows(&rows, lsn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_writes_merge() {
        let t = |v: &[&str]| WriteTargets::Tables(v.iter().map(|s| s.to_string()).collect());
        let mut p = None;
        merge_writes(&mut p, &WriteTargets::Nothing);
        assert_eq!(p, None);
        merge_writes(&mut p, &t(&["a"]));
        merge_writes(&mut p, &t(&["b", "a"]));
        assert_eq!(p, Some(t(&["a", "b"])));
        merge_writes(&mut p, &WriteTargets::Everything);
        merge_writes(&mut p, &t(&["c"]));
        assert_eq!(p, Some(WriteTargets::Everything));
    }
}
