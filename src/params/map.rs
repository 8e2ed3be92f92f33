//! The session parameters a client wants or a server connection has had applied: a handful
//! of entries kept in a vector sorted by name, so that two maps compare quickly (done on
//! every checkout). The vector is shared and copied on write: a client's wanted settings, its
//! startup settings and the connections it left in line hold one copy, and clients that log
//! in with the same settings share theirs ([`SharedMaps`]), so an idle client's settings
//! cost a pointer.

use std::sync::{Arc, Mutex};

/// How a parameter's value is replayed: a plain string (quoted as a literal), or the exact
/// SQL text the client used after `TO` (replayed verbatim).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ParamValue {
    Literal(String),
    Raw(String),
}

type Entries = Vec<(String, ParamValue)>;

/// Parameter name (lower case) to value, in name order. Cloning shares the entries.
#[derive(Debug, Clone, Default)]
pub struct ParamMap {
    /// None when empty, so an empty map allocates nothing.
    entries: Option<Arc<Entries>>,
}

impl PartialEq for ParamMap {
    fn eq(&self, other: &ParamMap) -> bool {
        match (&self.entries, &other.entries) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
            (a, b) => a.is_none() && b.is_none(),
        }
    }
}

impl Eq for ParamMap {}

impl std::hash::Hash for ParamMap {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.slice().hash(state);
    }
}

impl ParamMap {
    pub fn new() -> ParamMap {
        ParamMap::default()
    }

    fn slice(&self) -> &[(String, ParamValue)] {
        self.entries.as_deref().map_or(&[], |v| v.as_slice())
    }

    /// The entries to change, copied first if another map shares them.
    fn entries_mut(&mut self) -> &mut Entries {
        Arc::make_mut(self.entries.get_or_insert_with(Default::default))
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.slice().binary_search_by(|(k, _)| k.as_str().cmp(name))
    }

    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.find(name).ok().map(|i| &self.slice()[i].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    /// Sets `name`, returning its previous value.
    pub fn insert(&mut self, name: String, value: ParamValue) -> Option<ParamValue> {
        match self.find(&name) {
            Ok(i) if self.slice()[i].1 == value => Some(value),
            Ok(i) => Some(std::mem::replace(&mut self.entries_mut()[i].1, value)),
            Err(i) => {
                let entries = self.entries_mut();
                // Grown one entry at a time: these maps are small and long-lived.
                entries.reserve_exact(1);
                entries.insert(i, (name, value));
                None
            }
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<ParamValue> {
        let i = self.find(name).ok()?;
        let entries = self.entries_mut();
        let (_, value) = entries.remove(i);
        if entries.is_empty() {
            self.entries = None;
        }
        Some(value)
    }

    pub fn clear(&mut self) {
        self.entries = None;
    }

    pub fn is_empty(&self) -> bool {
        self.slice().is_empty()
    }

    pub fn len(&self) -> usize {
        self.slice().len()
    }

    /// Names in order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.slice().iter().map(|(k, _)| k)
    }

    /// Entries in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &ParamValue)> {
        self.slice().iter().map(|(k, v)| (k, v))
    }

    /// Whether the two maps hold one shared copy of their entries.
    pub fn shares_with(&self, other: &ParamMap) -> bool {
        match (&self.entries, &other.entries) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// The login settings of recent clients, so that clients logging in with the same settings
/// (the usual case: one application, one driver) share one copy.
#[derive(Default)]
pub struct SharedMaps {
    recent: Mutex<Vec<ParamMap>>,
}

/// Distinct login settings remembered.
const SHARED_MAPS_KEPT: usize = 16;

impl SharedMaps {
    /// `map`, or an equal map already held (sharing its entries).
    pub fn share(&self, map: ParamMap) -> ParamMap {
        if map.is_empty() {
            return map;
        }
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = recent.iter().position(|m| *m == map) {
            // Most recent last: a new distinct map pushes out the least recently seen one.
            let found = recent.remove(i);
            recent.push(found.clone());
            return found;
        }
        if recent.len() >= SHARED_MAPS_KEPT {
            recent.remove(0);
        }
        recent.push(map.clone());
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> ParamValue {
        ParamValue::Literal(s.to_string())
    }

    #[test]
    fn behaves_as_a_sorted_map() {
        let mut m = ParamMap::new();
        assert_eq!(m.insert("timezone".into(), lit("UTC")), None);
        assert_eq!(m.insert("application_name".into(), lit("a")), None);
        assert_eq!(m.insert("datestyle".into(), lit("ISO")), None);
        assert_eq!(m.insert("timezone".into(), lit("CET")), Some(lit("UTC")));
        let names: Vec<&String> = m.keys().collect();
        assert_eq!(names, ["application_name", "datestyle", "timezone"]);
        assert_eq!(m.get("timezone"), Some(&lit("CET")));
        assert!(m.contains_key("datestyle") && !m.contains_key("search_path"));
        assert_eq!(m.remove("datestyle"), Some(lit("ISO")));
        assert_eq!(m.len(), 2);

        let mut other = ParamMap::new();
        other.insert("timezone".into(), lit("CET"));
        other.insert("application_name".into(), lit("a"));
        assert_eq!(m, other, "equal whatever the insertion order");
        other.clear();
        assert!(other.is_empty() && m != other);
        assert_eq!(m.remove("timezone"), Some(lit("CET")));
        assert_eq!(m.remove("application_name"), Some(lit("a")));
        assert_eq!(m, ParamMap::new(), "emptied maps equal a new one");
    }

    #[test]
    fn clones_share_until_one_changes() {
        let mut a = ParamMap::new();
        a.insert("timezone".into(), lit("UTC"));
        let mut b = a.clone();
        assert!(a.shares_with(&b));
        b.insert("timezone".into(), lit("UTC"));
        assert!(a.shares_with(&b), "setting the same value copies nothing");
        b.insert("timezone".into(), lit("CET"));
        assert!(!a.shares_with(&b));
        assert_eq!(
            a.get("timezone"),
            Some(&lit("UTC")),
            "the original is untouched"
        );
        assert_eq!(b.get("timezone"), Some(&lit("CET")));
    }

    #[test]
    fn equal_login_settings_are_shared() {
        let shared = SharedMaps::default();
        let make = |v: &str| {
            let mut m = ParamMap::new();
            m.insert("application_name".into(), lit(v));
            m
        };
        let first = shared.share(make("app"));
        let second = shared.share(make("app"));
        assert!(first.shares_with(&second));
        let other = shared.share(make("other"));
        assert!(!other.shares_with(&first));
        for i in 0..SHARED_MAPS_KEPT {
            shared.share(make(&format!("filler{i}")));
        }
        let again = shared.share(make("app"));
        assert!(!again.shares_with(&first), "only the recent ones are kept");
        assert_eq!(again, first);
    }
}
