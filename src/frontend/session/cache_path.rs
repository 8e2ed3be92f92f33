//! The result cache in the request loop: a lone execution outside a transaction (one
//! Query, or `[Parse] Bind [Describe] Execute Sync`) is looked up before any routing or
//! checkout (a hit costs no server), a miss records its
//! replies as they stream to the client and offers them to the cache at the release, and
//! writes through this session invalidate the tables they touched when their transaction
//! ends (again with the primary's WAL position once it is known).

use super::super::cache_request::cache_request;
use super::*;
use crate::cache::{request_key, settings_digest, Fill, Key, Reject, ResultCache, Shape};
use crate::router::{fingerprint, WriteTargets};

/// A cacheable request that missed: what its fill needs once a server is attached.
pub(super) struct Missed {
    key: Key,
    shape: Arc<Shape>,
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
            None => Looked::Missed(Missed { key, shape }),
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
        a.fill = cache.begin_fill(missed.key, &missed.shape, replayed);
    }

    /// Offers a finished recording to the cache.
    pub(super) fn finish_fill(&self, fill: Box<Fill>) {
        if let Some(cache) = self.cluster.cache.as_deref() {
            cache.finish_fill(fill);
        }
    }

    /// Notes what a statement forwarded to the primary may change.
    pub(super) fn note_cache_write(
        cache: &ResultCache,
        sql: &str,
        pending: &mut Option<WriteTargets>,
    ) {
        let shape = cache.shape(sql, &fingerprint(sql));
        merge_writes(pending, &shape.writes);
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
        let pending = if keep {
            a.cache_writes.clone()
        } else {
            a.cache_writes.take()
        };
        if let Some(w) = pending {
            cache.invalidate_local(&w, 0);
        }
    }

    /// The primary's WAL position after the transaction is known (`u64::MAX`: unknown): a
    /// replica read of those tables is stored only once the replica has replayed it.
    pub(super) fn invalidate_at_lsn(&mut self, lsn: u64) {
        let Some(cache) = self.cluster.cache.as_deref() else {
            return;
        };
        if let Some(w) = self.server.as_mut().and_then(|a| a.cache_writes.take()) {
            if matches!(w, WriteTargets::Tables(_)) {
                cache.invalidate_local(&w, lsn);
            }
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
