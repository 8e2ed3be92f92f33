//! The database's relations as the cache needs them: which bare names are plain tables
//! (every relation of that name, in every non-system schema, is an ordinary or partitioned
//! permanent table; a view, materialized view, foreign table, sequence or temporary table
//! of the same name makes the name unsafe), and the ancestors of each inheritance child or
//! partition (a change to a partition invalidates reads of its parent), and the tables
//! whose rows the cache can tell apart: one integer primary-key column, the same in every
//! schema that has the name, a replica identity that shows it in every decoded change
//! (default or full), and no inheritance either way.

use std::collections::{HashMap, HashSet};

/// Every relation outside the system schemas: name, kind, persistence.
pub const RELATIONS_SQL: &str = "SELECT c.relname, c.relkind, c.relpersistence \
     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S', 'c') \
     AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_toast%' \
     AND n.nspname <> 'pg_catalog'";

/// Every (child, parent) inheritance pair.
pub const INHERITS_SQL: &str = "SELECT c.relname, p.relname FROM pg_catalog.pg_inherits i \
     JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid \
     JOIN pg_catalog.pg_class p ON p.oid = i.inhparent";

/// Every relation with a one-column integer primary key: name, key column, replica identity.
pub const ROW_KEYS_SQL: &str = "SELECT c.relname, a.attname, c.relreplident \
     FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indrelid \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0] \
     WHERE i.indisprimary AND i.indnkeyatts = 1 AND a.atttypid IN (20, 21, 23) \
     AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_toast%' \
     AND n.nspname <> 'pg_catalog'";

#[derive(Debug, Default)]
pub struct Catalog {
    /// Table name -> its integer key column, where changes can be told apart per row.
    row_keys: HashMap<String, String>,
    /// Names that are plain tables everywhere they occur.
    tables: HashSet<String>,
    /// Child name -> all its ancestors' names.
    ancestors: HashMap<String, Vec<String>>,
}

impl Catalog {
    /// From the rows of [`RELATIONS_SQL`] and [`INHERITS_SQL`].
    pub fn from_rows(
        relations: &[Vec<Option<String>>],
        inherits: &[Vec<Option<String>>],
        keys: &[Vec<Option<String>>],
    ) -> Catalog {
        let mut safe: HashMap<String, bool> = HashMap::new();
        let mut count: HashMap<&str, usize> = HashMap::new();
        for row in relations {
            let col = |i: usize| row.get(i).and_then(|v| v.as_deref()).unwrap_or("");
            let plain = matches!(col(1), "r" | "p") && col(2) != "t";
            let e = safe.entry(col(0).to_string()).or_insert(true);
            *e &= plain;
            *count.entry(col(0)).or_default() += 1;
        }
        let row_keys = row_keys(keys, &count, inherits);
        let mut parents: HashMap<String, Vec<String>> = HashMap::new();
        for row in inherits {
            let col = |i: usize| row.get(i).and_then(|v| v.as_deref()).unwrap_or("");
            parents
                .entry(col(0).to_string())
                .or_default()
                .push(col(1).to_string());
        }
        let mut ancestors = HashMap::new();
        for child in parents.keys() {
            let mut all: Vec<String> = Vec::new();
            let mut todo = vec![child.clone()];
            while let Some(n) = todo.pop() {
                for p in parents.get(&n).into_iter().flatten() {
                    if !all.contains(p) && p != child {
                        all.push(p.clone());
                        todo.push(p.clone());
                    }
                }
            }
            ancestors.insert(child.clone(), all);
        }
        Catalog {
            row_keys,
            tables: safe
                .into_iter()
                .filter(|(_, ok)| *ok)
                .map(|(n, _)| n)
                .collect(),
            ancestors,
        }
    }

    pub fn is_table(&self, name: &str) -> bool {
        self.tables.contains(name)
    }

    /// The ancestors of `name` (empty for a table that inherits from nothing).
    pub fn ancestors(&self, name: &str) -> &[String] {
        self.ancestors.get(name).map_or(&[], Vec::as_slice)
    }

    /// The integer key column of `table`, if its changes name the rows they touch.
    pub fn row_key(&self, table: &str) -> Option<&str> {
        self.row_keys.get(table).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.tables.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }
}

/// The names all of whose relations (`count` per name) have the same integer key column
/// and a replica identity that logs it, outside any inheritance tree.
fn row_keys(
    keys: &[Vec<Option<String>>],
    count: &HashMap<&str, usize>,
    inherits: &[Vec<Option<String>>],
) -> HashMap<String, String> {
    let mut seen: HashMap<&str, (Option<&str>, usize)> = HashMap::new();
    for row in keys {
        let col = |i: usize| row.get(i).and_then(|v| v.as_deref()).unwrap_or("");
        let e = seen.entry(col(0)).or_insert((Some(col(1)), 0));
        if e.0 != Some(col(1)) || !matches!(col(2), "d" | "f") {
            e.0 = None;
        }
        e.1 += 1;
    }
    let family = |name: &str| {
        inherits
            .iter()
            .any(|r| r.iter().any(|v| v.as_deref() == Some(name)))
    };
    seen.into_iter()
        .filter_map(|(name, (column, n))| {
            let whole = count.get(name) == Some(&n);
            (whole && !family(name)).then(|| Some((name.to_string(), column?.to_string())))?
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(v: &[&[&str]]) -> Vec<Vec<Option<String>>> {
        v.iter()
            .map(|r| r.iter().map(|s| Some(s.to_string())).collect())
            .collect()
    }

    #[test]
    fn names_shared_with_views_or_temp_tables_are_not_tables() {
        let c = Catalog::from_rows(
            &rows(&[
                &["t", "r", "p"],
                &["v", "v", "p"],
                &["both", "r", "p"],
                &["both", "v", "p"],
                &["tmp", "r", "t"],
                &["m", "p", "p"],
                &["m_1", "r", "p"],
                &["m_1_a", "r", "p"],
            ]),
            &rows(&[&["m_1", "m"], &["m_1_a", "m_1"]]),
            &[],
        );
        assert!(c.is_table("t") && c.is_table("m") && c.is_table("m_1"));
        assert!(!c.is_table("v") && !c.is_table("both") && !c.is_table("tmp"));
        assert!(!c.is_table("nothing"));
        let mut a = c.ancestors("m_1_a").to_vec();
        a.sort();
        assert_eq!(a, vec!["m", "m_1"]);
    }

    #[test]
    fn row_keys_need_one_logged_integer_key_everywhere() {
        let c = Catalog::from_rows(
            &rows(&[
                &["a", "r", "p"],
                &["b", "r", "p"],
                &["b", "r", "p"],
                &["c", "r", "p"],
                &["d", "r", "p"],
                &["d", "r", "p"],
                &["e", "r", "p"],
                &["p", "p", "p"],
                &["p_1", "r", "p"],
            ]),
            &rows(&[&["p_1", "p"]]),
            &rows(&[
                &["a", "id", "d"],
                &["b", "id", "f"],
                &["b", "id", "d"],
                &["c", "id", "n"],
                &["d", "id", "d"],
                &["d", "k", "d"],
                &["e", "id", "i"],
                &["p", "id", "d"],
                &["p_1", "id", "d"],
            ]),
        );
        assert_eq!(c.row_key("a"), Some("id"));
        assert_eq!(c.row_key("b"), Some("id"));
        for n in ["c", "d", "e", "p", "p_1", "none"] {
            assert_eq!(c.row_key(n), None, "{n}");
        }
    }
}
