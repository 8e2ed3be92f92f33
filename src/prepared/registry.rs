//! The shared registry of statements (one server-side name per distinct query text and
//! parameter types) and each client's map from its own statement names to them.

use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// One distinct statement as Switchyard prepares it on servers.
#[derive(Debug)]
pub struct StatementInfo {
    /// Name used on every server connection, e.g. `sy_17`.
    pub server_name: String,
    /// The Parse body after the statement name: query text, NUL, parameter type list.
    pub parse_tail: Bytes,
}

impl StatementInfo {
    /// The query text.
    pub fn query(&self) -> &str {
        let end = self
            .parse_tail
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.parse_tail.len());
        std::str::from_utf8(&self.parse_tail[..end]).unwrap_or("")
    }

    /// Writes a Parse of this statement under its server name.
    pub fn write_parse(&self, out: &mut bytes::BytesMut) {
        crate::protocol::messages::write_message(out, b'P', |b| {
            b.extend_from_slice(self.server_name.as_bytes());
            b.extend_from_slice(&[0]);
            b.extend_from_slice(&self.parse_tail);
        });
    }
}

/// Statements known to this Switchyard, keyed by Parse tail. Entries no client holds are
/// dropped once the registry is over its cap.
pub struct Registry {
    map: Mutex<HashMap<Bytes, Arc<StatementInfo>>>,
    next: AtomicU64,
    cap: usize,
}

impl Registry {
    pub fn new(cap: usize) -> Registry {
        Registry {
            map: Mutex::default(),
            next: AtomicU64::new(1),
            cap: cap.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Bytes, Arc<StatementInfo>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The statement for this Parse tail, registering it under a new name if needed.
    pub fn get_or_insert(&self, parse_tail: &[u8]) -> Arc<StatementInfo> {
        let mut map = self.lock();
        if let Some(info) = map.get(parse_tail) {
            return info.clone();
        }
        if map.len() >= self.cap {
            // Forget statements no client holds any more (their server copies age out of
            // the per-connection LRUs).
            map.retain(|_, info| Arc::strong_count(info) > 1);
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let info = Arc::new(StatementInfo {
            server_name: format!("sy_{n}"),
            parse_tail: Bytes::copy_from_slice(parse_tail),
        });
        map.insert(info.parse_tail.clone(), info.clone());
        info
    }

    /// Gives `stale` a new server name (its plan on the servers no longer fits, e.g. after
    /// DDL): the next use prepares it afresh everywhere.
    pub fn renew(&self, stale: &Arc<StatementInfo>) -> Arc<StatementInfo> {
        let mut map = self.lock();
        if let Some(current) = map.get(&stale.parse_tail) {
            if !Arc::ptr_eq(current, stale) {
                return current.clone();
            }
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let info = Arc::new(StatementInfo {
            server_name: format!("sy_{n}"),
            parse_tail: stale.parse_tail.clone(),
        });
        map.insert(info.parse_tail.clone(), info.clone());
        info
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One client's statement names. Boxed and allocated at the first name: most clients never
/// name a statement, and every idle session holds this.
#[derive(Default)]
pub struct ClientStatements {
    // A `HashMap` itself is 48 bytes even when empty; the box is 8.
    #[allow(clippy::box_collection)]
    names: Option<Box<HashMap<String, Arc<StatementInfo>>>>,
}

/// Most named statements one client may hold at once.
pub const MAX_PER_CLIENT: usize = 10_000;

impl ClientStatements {
    pub fn get(&self, name: &str) -> Option<&Arc<StatementInfo>> {
        self.names.as_ref()?.get(name)
    }

    /// Maps `name`; false if the client is at its limit.
    pub fn insert(&mut self, name: &str, info: Arc<StatementInfo>) -> bool {
        let names = self.names.get_or_insert_with(Default::default);
        if names.len() >= MAX_PER_CLIENT && !names.contains_key(name) {
            return false;
        }
        names.insert(name.to_string(), info);
        true
    }

    pub fn remove(&mut self, name: &str) -> bool {
        self.names
            .as_mut()
            .is_some_and(|n| n.remove(name).is_some())
    }

    pub fn clear(&mut self) {
        self.names = None;
    }

    /// Points every name that used `stale` at `fresh`.
    pub fn replace(&mut self, stale: &Arc<StatementInfo>, fresh: &Arc<StatementInfo>) {
        for v in self.names.iter_mut().flat_map(|n| n.values_mut()) {
            if Arc::ptr_eq(v, stale) {
                *v = fresh.clone();
            }
        }
    }

    pub fn len(&self) -> usize {
        self.names.as_ref().map_or(0, |n| n.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_statement_same_name_and_renew() {
        let r = Registry::new(2);
        let a = r.get_or_insert(b"select 1\0\0\0");
        let b = r.get_or_insert(b"select 1\0\0\0");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.query(), "select 1");
        let c = r.get_or_insert(b"select 2\0\0\0");
        assert_ne!(a.server_name, c.server_name);
        let fresh = r.renew(&a);
        assert_ne!(fresh.server_name, a.server_name);
        assert!(Arc::ptr_eq(&r.get_or_insert(b"select 1\0\0\0"), &fresh));
        // Renewing the stale one again returns the current one.
        assert!(Arc::ptr_eq(&r.renew(&a), &fresh));
    }

    #[test]
    fn registry_drops_unused_entries_over_its_cap() {
        let r = Registry::new(2);
        let held = r.get_or_insert(b"a\0\0\0");
        drop(r.get_or_insert(b"b\0\0\0"));
        let _c = r.get_or_insert(b"c\0\0\0");
        assert_eq!(r.len(), 2, "b was dropped, a is held");
        assert!(Arc::ptr_eq(&held, &r.get_or_insert(b"a\0\0\0")));
    }

    #[test]
    fn client_map() {
        let r = Registry::new(10);
        let mut c = ClientStatements::default();
        let a = r.get_or_insert(b"a\0\0\0");
        assert!(c.insert("s1", a.clone()));
        assert!(c.insert("s2", a.clone()));
        let fresh = r.renew(&a);
        c.replace(&a, &fresh);
        assert!(Arc::ptr_eq(c.get("s2").unwrap(), &fresh));
        assert!(c.remove("s1"));
        assert!(!c.remove("s1"));
        assert_eq!(c.len(), 1);
        c.clear();
        assert!(c.is_empty() && c.get("s2").is_none() && !c.remove("s2"));
    }
}
