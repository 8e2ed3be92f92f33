//! Where a config error is: the 1-based line of a byte offset, key paths such as
//! `databases.app.hosts[1]`, the known keys of each table, and toml/serde errors translated
//! into `ConfigError`s that name both.

use std::fmt;
use std::ops::Range;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

use super::ConfigError;

/// 1-based line number of a byte offset.
pub(super) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Byte range of the line holding `offset`, without its newline.
fn line_range(text: &str, offset: usize) -> Range<usize> {
    let bytes = text.as_bytes();
    let offset = offset.min(bytes.len());
    let start = bytes[..offset]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let end = bytes[offset..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |i| offset + i);
    start..end
}

/// 1-based column (in characters) of a byte offset.
fn column_of(text: &str, offset: usize) -> usize {
    let range = line_range(text, offset);
    let end = offset.clamp(range.start, range.end);
    match text.get(range.start..end) {
        Some(prefix) => prefix.chars().count() + 1,
        None => end - range.start + 1,
    }
}

/// One path segment, quoted as TOML would need it.
pub(super) fn key_segment(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key_segment(key)
    } else {
        format!("{parent}.{}", key_segment(key))
    }
}

/// Converts a toml/serde error into a `ConfigError` naming line and key path.
pub(super) fn from_toml_error(text: &str, err: &toml::de::Error) -> ConfigError {
    let message = err.message().trim().replace('\n', "; ");
    let Some(span) = err.span() else {
        return ConfigError::Global { message };
    };
    let line = line_of(text, span.start);
    let Ok(shape) = toml::from_str::<toml::Table>(text) else {
        // Not even well-formed TOML.
        return ConfigError::Toml {
            line,
            message: format!(
                "invalid TOML (column {}): {message}",
                column_of(text, span.start)
            ),
        };
    };
    let locator = Locator::build(text, &shape);
    let Some(spot) = locator.as_ref().and_then(|l| l.at(text, span.start)) else {
        return ConfigError::Toml {
            line,
            message: tidy(&message),
        };
    };
    if let Some((key, expected)) = parse_unknown_field(&message) {
        let hint = unknown_key_hint(&spot.parent, &key);
        return ConfigError::UnknownKey {
            line,
            key,
            table: spot.parent.clone(),
            expected,
            hint,
        };
    }
    ConfigError::Invalid {
        line,
        path: spot.path.clone(),
        message: tidy(&message),
    }
}

/// The keys of `RawConfig` (checked against serde's list by a test).
pub(super) const TOP_LEVEL_KEYS: &[&str] = &[
    "listen",
    "auth_method",
    "checkout_timeout_ms",
    "connect_timeout_ms",
    "max_message_size",
    "worker_threads",
    "server_idle_timeout_ms",
    "server_lifetime_ms",
    "client_login_timeout_ms",
    "shutdown_timeout_ms",
    "prepared_statements_per_connection",
    "max_prepared_statements",
    "admin_users",
    "stats_users",
    "metrics_listen",
    "log_format",
    "max_client_connections",
    "so_reuseport",
    "listen_unix_dir",
    "tls",
    "users",
    "hba",
    "auth_query",
    "databases",
];

/// The keys of `RawDatabase` (checked against serde's list by a test).
pub(super) const DATABASE_KEYS: &[&str] = &[
    "hosts",
    "dbname",
    "pool_mode",
    "pool_size",
    "routing",
    "write_functions",
    "read_only_functions",
    "read_your_writes",
    "read_your_writes_window_ms",
    "load_balancing",
    "primary_reads",
    "health_check_interval_ms",
    "health_check_user",
    "ban_time_ms",
    "max_replica_lag_bytes",
    "max_replica_lag_ms",
    "primary_wait_timeout_ms",
    "query_timeout_ms",
    "idle_transaction_timeout_ms",
    "client_idle_timeout_ms",
    "min_pool_size",
    "reserve_pool_size",
    "reserve_pool_timeout_ms",
    "max_db_connections",
    "server_tls",
    "server_ca",
    "cache",
];

/// The keys of `RawCache` (checked against serde's list by a test).
#[cfg_attr(not(test), allow(dead_code))]
pub(super) const CACHE_KEYS: &[&str] = &[
    "enabled",
    "max_bytes",
    "max_result_bytes",
    "ttl_ms",
    "invalidation",
    "tables",
    "exclude_tables",
    "user",
    "publication",
    "immutable_functions",
];

/// The keys of `RawTls` (checked against serde's list by a test).
pub(super) const TLS_KEYS: &[&str] = &["cert", "key", "ca", "mode"];

/// The keys of `RawHba` (checked against serde's list by a test).
#[cfg_attr(not(test), allow(dead_code))]
pub(super) const HBA_KEYS: &[&str] = &["type", "database", "user", "address", "method"];

/// The keys of `RawAuthQuery` (checked against serde's list by a test).
#[cfg_attr(not(test), allow(dead_code))]
pub(super) const AUTH_QUERY_KEYS: &[&str] = &["user", "password", "query", "cache_lifetime_ms"];

/// The keys of `RawUser` (checked against serde's list by a test).
pub(super) const USER_KEYS: &[&str] = &["name", "password"];

/// Advice for a known key in the wrong table ("" or "; ...").
fn unknown_key_hint(table: &str, key: &str) -> String {
    let in_database = table.starts_with("databases.");
    let in_user = table.starts_with("users[");
    if !table.is_empty() && TOP_LEVEL_KEYS.contains(&key) {
        format!("; `{key}` is a top-level key: move it before the first [table] header")
    } else if !in_database && DATABASE_KEYS.contains(&key) {
        format!("; `{key}` belongs in a [databases.<name>] table")
    } else if !in_user && USER_KEYS.contains(&key) {
        format!("; `{key}` belongs in a [[users]] table")
    } else if table != "tls" && TLS_KEYS.contains(&key) {
        format!("; `{key}` belongs in the [tls] table")
    } else {
        String::new()
    }
}

/// Splits serde's "unknown field `x`, expected one of `a`, `b`" into the key
/// and a plain list "a, b".
fn parse_unknown_field(message: &str) -> Option<(String, String)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (key, rest) = rest.split_once('`')?;
    let expected = rest
        .strip_prefix(", expected one of ")
        .or_else(|| rest.strip_prefix(", expected "))
        .unwrap_or("nothing");
    let expected = expected.replace('`', "").replace(" or ", ", ");
    Some((key.to_string(), expected))
}

/// Rewords serde's vocabulary into TOML's.
fn tidy(message: &str) -> String {
    message
        .replace("invalid type: sequence", "invalid type: array")
        .replace("invalid type: map", "invalid type: table")
        .replace("expected a sequence", "expected an array")
        .replace("expected a map", "expected a table")
        .replace("expected u64", "expected a non-negative integer")
        .replace("unknown variant", "unknown value")
}

/// Where a key or scalar value sits in the text, and its key path.
struct Spot {
    /// Path of the enclosing table or array ("" at the top level).
    parent: String,
    /// Full path, e.g. `databases.app.hosts[1]`.
    path: String,
    span: Range<usize>,
}

/// The spans of every key and scalar value of a document. Tables themselves
/// may have no span in toml (implicit `[databases]`), so only keys and scalars
/// are recorded, guided by the already parsed shape of the document.
struct Locator {
    spots: Vec<Spot>,
}

impl Locator {
    fn build(text: &str, shape: &toml::Table) -> Option<Locator> {
        let mut spots = Vec::new();
        TableSeed {
            shape,
            path: String::new(),
            spots: &mut spots,
        }
        .deserialize(toml::Deserializer::new(text))
        .ok()?;
        Some(Locator { spots })
    }

    /// The innermost key or value containing `offset`; failing that (the
    /// offset is at a table or array), the key before it on the same line
    /// (`key = [`), or the first one after it on the same line (`[key]`).
    fn at(&self, text: &str, offset: usize) -> Option<&Spot> {
        let containing = self
            .spots
            .iter()
            .filter(|s| s.span.start <= offset && offset < s.span.end.max(s.span.start + 1))
            .min_by_key(|s| s.span.len());
        if containing.is_some() {
            return containing;
        }
        let line = line_range(text, offset);
        let on_line = || {
            self.spots
                .iter()
                .filter(move |s| line.start <= s.span.start && s.span.start <= line.end)
        };
        on_line()
            .filter(|s| s.span.end <= offset)
            .max_by_key(|s| s.span.end)
            .or_else(|| {
                on_line()
                    .filter(|s| s.span.start > offset)
                    .min_by_key(|s| s.span.start)
            })
    }
}

struct TableSeed<'a> {
    shape: &'a toml::Table,
    path: String,
    spots: &'a mut Vec<Spot>,
}

impl<'de> DeserializeSeed<'de> for TableSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TableSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let path = join(&self.path, key.get_ref());
            self.spots.push(Spot {
                parent: self.path.clone(),
                path: path.clone(),
                span: key.span(),
            });
            match self.shape.get(key.get_ref()) {
                Some(toml::Value::Table(shape)) => map.next_value_seed(TableSeed {
                    shape,
                    path,
                    spots: &mut *self.spots,
                })?,
                Some(toml::Value::Array(shape)) => map.next_value_seed(ArraySeed {
                    shape,
                    path,
                    spots: &mut *self.spots,
                })?,
                _ => {
                    let value: Spanned<IgnoredAny> = map.next_value()?;
                    self.spots.push(Spot {
                        parent: self.path.clone(),
                        path,
                        span: value.span(),
                    });
                }
            }
        }
        Ok(())
    }
}

struct ArraySeed<'a> {
    shape: &'a [toml::Value],
    path: String,
    spots: &'a mut Vec<Spot>,
}

impl<'de> DeserializeSeed<'de> for ArraySeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ArraySeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        for (i, shape) in self.shape.iter().enumerate() {
            let path = format!("{}[{i}]", self.path);
            let more = match shape {
                toml::Value::Table(shape) => seq
                    .next_element_seed(TableSeed {
                        shape,
                        path,
                        spots: &mut *self.spots,
                    })?
                    .is_some(),
                toml::Value::Array(shape) => seq
                    .next_element_seed(ArraySeed {
                        shape,
                        path,
                        spots: &mut *self.spots,
                    })?
                    .is_some(),
                _ => match seq.next_element::<Spanned<IgnoredAny>>()? {
                    Some(value) => {
                        self.spots.push(Spot {
                            parent: self.path.clone(),
                            path,
                            span: value.span(),
                        });
                        true
                    }
                    None => false,
                },
            };
            if !more {
                return Ok(());
            }
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
}
