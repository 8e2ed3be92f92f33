//! The statements one server connection holds, most recently used first, bounded: adding
//! one to a full set evicts the least recently used, which the caller closes on the server.

use lru::LruCache;
use std::num::NonZeroUsize;

pub struct ServerStatements {
    names: LruCache<String, ()>,
}

impl ServerStatements {
    pub fn new(cap: usize) -> ServerStatements {
        ServerStatements {
            names: LruCache::new(NonZeroUsize::new(cap.max(1)).unwrap_or(NonZeroUsize::MIN)),
        }
    }

    /// Whether the connection holds `name` (and marks it used).
    pub fn contains(&mut self, name: &str) -> bool {
        self.names.get(name).is_some()
    }

    /// Records `name` as prepared; returns the name evicted to make room, if any.
    pub fn insert(&mut self, name: &str) -> Option<String> {
        if self.names.get(name).is_some() {
            return None;
        }
        self.names
            .push(name.to_string(), ())
            .map(|(evicted, _)| evicted)
    }

    pub fn remove(&mut self, name: &str) {
        self.names.pop(name);
    }

    pub fn clear(&mut self) {
        self.names.clear();
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used() {
        let mut s = ServerStatements::new(2);
        assert_eq!(s.insert("a"), None);
        assert_eq!(s.insert("b"), None);
        assert!(s.contains("a"));
        assert_eq!(s.insert("c"), Some("b".to_string()));
        assert!(s.contains("a") && s.contains("c") && !s.contains("b"));
        s.remove("a");
        assert_eq!(s.len(), 1);
    }
}
