//! `[databases.<name>.cache]`: the result cache of one database (what is stored, how big,
//! and how entries are invalidated).

use serde::Deserialize;
use toml::Spanned;

/// How a database's cached results learn about writes (`invalidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Invalidation {
    /// The primary's logical change stream (a temporary slot), plus what passes through.
    Wal,
    /// Only writes that pass through this instance (and `ttl_ms`).
    Local,
    /// `wal` when the primary allows it (`wal_level = logical`, a REPLICATION role), else
    /// `local` with a warning.
    #[default]
    Auto,
}

impl Invalidation {
    pub fn as_str(self) -> &'static str {
        match self {
            Invalidation::Wal => "wal",
            Invalidation::Local => "local",
            Invalidation::Auto => "auto",
        }
    }
}

/// Default byte budget of a database's cache (256 MiB).
pub const DEFAULT_CACHE_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// Default size limit of one stored result (1 MiB).
pub const DEFAULT_CACHE_MAX_RESULT_BYTES: u64 = 1024 * 1024;
/// Default lifetime of an entry (5 minutes).
pub const DEFAULT_CACHE_TTL_MS: u64 = 300_000;

/// A database's result cache settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    pub enabled: bool,
    /// Byte budget for all entries of the database.
    pub max_bytes: u64,
    /// Larger results stream through and are never stored.
    pub max_result_bytes: u64,
    /// An entry older than this is not served (0: no limit).
    pub ttl_ms: u64,
    pub invalidation: Invalidation,
    /// Only queries on these tables are cached (empty: all). Lower case unless quoted.
    pub tables: Vec<String>,
    /// Queries touching one of these tables are never cached.
    pub exclude_tables: Vec<String>,
    /// The change stream's login (resolved: the configured one, or the first `[[users]]`
    /// entry whose password can log in to a server). None: no user can.
    pub user: Option<String>,
    /// Empty: `test_decoding`; otherwise `pgoutput` on this publication.
    pub publication: String,
    /// Functions besides the built-in list that are immutable (may appear in a cached
    /// query). Lower case.
    pub immutable_functions: Vec<String>,
}

impl Default for CacheConfig {
    fn default() -> CacheConfig {
        CacheConfig {
            enabled: false,
            max_bytes: DEFAULT_CACHE_MAX_BYTES,
            max_result_bytes: DEFAULT_CACHE_MAX_RESULT_BYTES,
            ttl_ms: DEFAULT_CACHE_TTL_MS,
            invalidation: Invalidation::Auto,
            tables: Vec::new(),
            exclude_tables: Vec::new(),
            user: None,
            publication: String::new(),
            immutable_functions: Vec::new(),
        }
    }
}

/// `[databases.<name>.cache]` as read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [databases.<name>.cache] table")]
pub(super) struct RawCache {
    pub enabled: Option<Spanned<bool>>,
    pub max_bytes: Option<Spanned<u64>>,
    pub max_result_bytes: Option<Spanned<u64>>,
    pub ttl_ms: Option<Spanned<u64>>,
    pub invalidation: Option<Spanned<Invalidation>>,
    pub tables: Option<Spanned<Vec<Spanned<String>>>>,
    pub exclude_tables: Option<Spanned<Vec<Spanned<String>>>>,
    pub user: Option<Spanned<String>>,
    pub publication: Option<Spanned<String>>,
    pub immutable_functions: Option<Spanned<Vec<Spanned<String>>>>,
}
