//! Session parameters under transaction pooling: what each client expects (its startup
//! parameters plus its own SETs) and what each server connection has had applied. A value
//! type shared by the server side (what a connection holds) and the client side (what a
//! session wants); `scan` spots SET/RESET/DISCARD in SQL, `sync` writes the SQL that brings
//! a connection in line with a client.

mod map;
mod scan;
mod sync;

pub use map::{ParamMap, ParamValue, SharedMaps};
pub use scan::{may_change_params, scan_changes};
pub use sync::sync_sql;

/// A client's wanted parameters with a version: a server connection whose applied version
/// equals it needs no comparison. Versions are random 64-bit values (at login, a keyed hash
/// of the settings), so equal versions mean the same settings (changes made in lockstep on
/// both sides get one new version).
#[derive(Debug, Clone)]
pub struct Wanted {
    pub map: ParamMap,
    pub version: u64,
}

impl Wanted {
    /// A client's state at login. Its version is a keyed hash of the settings, so clients
    /// that log in with the same settings share it, and a connection one of them left in
    /// line needs no comparison for the next (as likely to collide as random versions).
    pub fn new(map: ParamMap, hasher: &impl std::hash::BuildHasher) -> Wanted {
        Wanted {
            version: hasher.hash_one(&map) | 1,
            map,
        }
    }
}

/// A new parameter-state version (never 0, which marks a connection with nothing applied).
pub fn fresh_version() -> u64 {
    rand::random::<u64>() | 1
}

/// A session-level change found in client SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamChange {
    Set(String, ParamValue),
    Reset(String),
    /// `RESET ALL` or `DISCARD ALL`.
    ResetAll,
}

/// Startup-packet keys that are not run-time parameters.
const NOT_PARAMS: &[&str] = &["user", "database", "replication", "options"];

/// Reported parameters a client cannot set; never tracked from ParameterStatus.
const READ_ONLY_REPORTED: &[&str] = &[
    "server_version",
    "server_encoding",
    "integer_datetimes",
    "in_hot_standby",
    "is_superuser",
    "session_authorization",
];

/// Whether a ParameterStatus of this name reflects a setting the client can change.
pub fn is_tracked_report(name: &str) -> bool {
    !READ_ONLY_REPORTED
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name))
}

/// The run-time parameters in a client's startup packet, including `-c name=value` pairs in
/// `options`.
pub fn startup_params(params: &[(String, String)]) -> ParamMap {
    let mut map = ParamMap::new();
    for (k, v) in params {
        if k == "options" {
            for (name, value) in parse_options(v) {
                map.insert(name, ParamValue::Literal(value));
            }
        } else if !NOT_PARAMS.contains(&k.as_str()) && !k.starts_with("_pq_.") {
            map.insert(k.to_ascii_lowercase(), ParamValue::Literal(v.clone()));
        }
    }
    map
}

/// `-c a=b --c=d` in the startup `options` value (backslash escapes a space).
fn parse_options(s: &str) -> Vec<(String, String)> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    let mut out = Vec::new();
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        let pair = if w == "-c" {
            it.next()
        } else if let Some(p) = w.strip_prefix("-c") {
            Some(p.to_string())
        } else {
            w.strip_prefix("--").map(str::to_string)
        };
        if let Some((k, v)) = pair.as_deref().and_then(|p| p.split_once('=')) {
            out.push((k.replace('-', "_").to_ascii_lowercase(), v.to_string()));
        }
    }
    out
}

/// Applies a change to a parameter map; `startup` is what RESET ALL goes back to.
pub fn apply_change(map: &mut ParamMap, change: &ParamChange, startup: &ParamMap) {
    match change {
        ParamChange::Set(n, v) => {
            map.insert(n.clone(), v.clone());
        }
        ParamChange::Reset(n) => match startup.get(n) {
            Some(v) => {
                map.insert(n.clone(), v.clone());
            }
            None => {
                map.remove(n);
            }
        },
        ParamChange::ResetAll => *map = startup.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(n: &str, v: &str) -> ParamChange {
        ParamChange::Set(n.into(), ParamValue::Raw(v.into()))
    }

    #[test]
    fn startup_options() {
        let p = startup_params(&[
            ("user".into(), "u".into()),
            (
                "options".into(),
                "-c search_path=x --statement-timeout=5 -cwork_mem=1MB".into(),
            ),
            ("application_name".into(), "psql".into()),
            ("_pq_.foo".into(), "1".into()),
        ]);
        assert_eq!(p.len(), 4);
        assert_eq!(p.get("search_path"), Some(&ParamValue::Literal("x".into())));
        assert_eq!(
            p.get("statement_timeout"),
            Some(&ParamValue::Literal("5".into()))
        );
        assert_eq!(p.get("work_mem"), Some(&ParamValue::Literal("1MB".into())));
    }

    #[test]
    fn reset_all_goes_back_to_startup() {
        let mut startup = ParamMap::new();
        startup.insert("application_name".into(), ParamValue::Literal("a".into()));
        let mut m = startup.clone();
        apply_change(&mut m, &raw("application_name", "'b'"), &startup);
        apply_change(&mut m, &raw("x", "1"), &startup);
        apply_change(
            &mut m,
            &ParamChange::Reset("application_name".into()),
            &startup,
        );
        assert_eq!(
            m.get("application_name"),
            Some(&ParamValue::Literal("a".into()))
        );
        apply_change(&mut m, &ParamChange::ResetAll, &startup);
        assert_eq!(m, startup);
    }
}
