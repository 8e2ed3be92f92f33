//! Users looked up by `auth_query` (users not listed in `[[users]]`): what the lookup
//! returned per (database, user), when, and the secrets parsed from it. Sans-IO: the
//! frontend runs the query and stores its answer here. An answer is reused for the
//! configured lifetime; a user the query did not find is remembered too, so repeated logins
//! with a wrong name do not each cost a query. At most [`MAX_FETCHED`] entries are kept
//! (least recently used dropped first).

use super::secrets::{SecretCell, ServerSecret, UserEntry};
use super::UserSecret;
use lru::LruCache;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most (database, user) answers kept.
pub const MAX_FETCHED: usize = 10_000;

/// What the lookup said of one user.
struct Answer {
    /// The secret as the query returned it (None: no such user, or a NULL password).
    raw: Option<String>,
    /// Parsed from `raw`; the server side is a [`SecretCell`] the pools share.
    entry: Option<UserEntry>,
    at: Instant,
}

/// The answers of `auth_query`, per (database, user).
pub struct FetchedUsers {
    answers: Mutex<LruCache<(String, String), Answer>>,
    lifetime: Duration,
}

/// Whether a login needs a lookup first.
#[derive(Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Looked up within the lifetime: use what is stored.
    Fresh,
    /// Looked up too long ago, or never.
    Stale,
}

impl FetchedUsers {
    pub fn new(lifetime: Duration) -> FetchedUsers {
        let cap = NonZeroUsize::new(MAX_FETCHED).unwrap_or(NonZeroUsize::MIN);
        FetchedUsers {
            answers: Mutex::new(LruCache::new(cap)),
            lifetime,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<(String, String), Answer>> {
        self.answers.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn freshness(&self, database: &str, user: &str) -> Freshness {
        let key = (database.to_string(), user.to_string());
        match self.lock().peek(&key) {
            Some(a) if a.at.elapsed() < self.lifetime => Freshness::Fresh,
            _ => Freshness::Stale,
        }
    }

    /// The stored secrets of `user` in `database` (also a stale answer: a lookup that failed
    /// leaves the last one in use).
    pub fn entry(&self, database: &str, user: &str) -> Option<UserEntry> {
        let key = (database.to_string(), user.to_string());
        self.lock().get(&key)?.entry.clone()
    }

    /// Stores what the lookup returned (`raw`: the password column; None when no row or
    /// NULL). An unchanged secret keeps its parsed form (and a ClientKey learnt for it); a
    /// changed one replaces the server secret in place, in the cell the pools hold. Fails on
    /// a secret that cannot be parsed (it is then stored as no user).
    pub fn store(&self, database: &str, user: &str, raw: Option<&str>) -> Result<(), String> {
        let key = (database.to_string(), user.to_string());
        let mut answers = self.lock();
        let now = Instant::now();
        if let Some(a) = answers.get_mut(&key) {
            if a.raw.as_deref() == raw {
                a.at = now;
                return Ok(());
            }
        }
        let parsed = raw
            .map(|r| UserSecret::parse(user, r).map_err(|e| e.to_string()))
            .transpose();
        let client = parsed.as_ref().ok().cloned().flatten();
        let cell = answers.peek(&key).and_then(|a| match &a.entry {
            Some(UserEntry {
                server: ServerSecret::Fetched(cell),
                ..
            }) => Some(cell.clone()),
            _ => None,
        });
        let entry = client.map(|client| {
            let server = ServerSecret::from_user_secret(&client);
            let cell = match cell {
                Some(cell) => {
                    cell.set(server);
                    cell
                }
                None => Arc::new(SecretCell::new(server)),
            };
            UserEntry {
                client,
                server: ServerSecret::Fetched(cell),
            }
        });
        let raw = entry.as_ref().and(raw).map(str::to_string);
        answers.put(
            key,
            Answer {
                raw,
                entry,
                at: now,
            },
        );
        parsed.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER: &str = "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0$\
        AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    #[test]
    fn answers_are_kept_for_their_lifetime_per_database() {
        let f = FetchedUsers::new(Duration::from_secs(60));
        assert_eq!(f.freshness("d", "u"), Freshness::Stale);
        f.store("d", "u", Some(VERIFIER)).expect("verifier");
        assert_eq!(f.freshness("d", "u"), Freshness::Fresh);
        assert!(matches!(
            f.entry("d", "u").map(|e| e.client),
            Some(UserSecret::Scram(_))
        ));
        assert_eq!(f.freshness("other", "u"), Freshness::Stale);
        assert!(f.entry("other", "u").is_none());
        // No such user: remembered as none.
        f.store("d", "nobody", None).expect("none");
        assert_eq!(f.freshness("d", "nobody"), Freshness::Fresh);
        assert!(f.entry("d", "nobody").is_none());
        let expired = FetchedUsers::new(Duration::ZERO);
        expired.store("d", "u", Some(VERIFIER)).expect("verifier");
        assert_eq!(expired.freshness("d", "u"), Freshness::Stale);
        assert!(
            expired.entry("d", "u").is_some(),
            "a stale answer still serves"
        );
    }

    #[test]
    fn a_changed_secret_reaches_the_pools_cell() {
        let f = FetchedUsers::new(Duration::from_secs(60));
        f.store("d", "u", Some("md5aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"))
            .expect("md5");
        let held = f.entry("d", "u").expect("entry").server;
        f.store("d", "u", Some("md5bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"))
            .expect("md5");
        match held.current() {
            ServerSecret::Md5Digest(d) => assert_eq!(d, "b".repeat(32)),
            other => panic!("unexpected {other:?}"),
        }
        let bad = "SCRAM-SHA-256$x";
        assert!(f.store("d", "u", Some(bad)).is_err());
        assert!(
            f.entry("d", "u").is_none(),
            "an unusable secret logs nobody in"
        );
    }
}
