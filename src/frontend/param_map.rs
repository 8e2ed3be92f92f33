//! The session parameters a client wants or a server connection has had applied: a handful
//! of entries kept in a vector sorted by name, so that an idle client's map costs little
//! memory and two maps compare quickly (done on every checkout).

/// How a parameter's value is replayed: a plain string (quoted as a literal), or the exact
/// SQL text the client used after `TO` (replayed verbatim).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ParamValue {
    Literal(String),
    Raw(String),
}

/// Parameter name (lower case) to value, in name order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ParamMap {
    entries: Vec<(String, ParamValue)>,
}

impl ParamMap {
    pub fn new() -> ParamMap {
        ParamMap::default()
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.as_str().cmp(name))
    }

    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.find(name).ok().map(|i| &self.entries[i].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    /// Sets `name`, returning its previous value.
    pub fn insert(&mut self, name: String, value: ParamValue) -> Option<ParamValue> {
        match self.find(&name) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                // Grown one entry at a time: these maps are small and long-lived.
                self.entries.reserve_exact(1);
                self.entries.insert(i, (name, value));
                None
            }
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<ParamValue> {
        self.find(name).ok().map(|i| self.entries.remove(i).1)
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Names in order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.entries.iter().map(|(k, _)| k)
    }

    /// Entries in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &ParamValue)> {
        self.entries.iter().map(|(k, v)| (k, v))
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
    }
}
