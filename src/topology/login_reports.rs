//! What a client's login reports without a server: the ParameterStatus values a server sent
//! to an earlier login of the same user with the same settings (the settings' version), kept
//! per server for a minute. A login that finds them needs no pool checkout, so clients that
//! connect for every transaction (pgbench -C, PHP, serverless functions) log in while every
//! server is busy, as with PgBouncer; otherwise a client blocked in its login can hold up
//! the transactions whose servers it waits for (one pgbench thread drives both).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long reported values are trusted.
const KEEP: Duration = Duration::from_secs(60);
/// Most (settings, server) pairs kept per user.
const MOST: usize = 256;

/// ParameterStatus name and value pairs, in the order to send them.
pub type Reports = Arc<[(String, String)]>;

#[derive(Default)]
pub struct LoginReports {
    by_key: Mutex<HashMap<(u64, String), (Instant, Reports)>>,
}

impl LoginReports {
    /// The values reported to a login with settings `version` by the server at `addr`.
    pub fn get(&self, version: u64, addr: &str) -> Option<Reports> {
        let map = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        let (at, r) = map.get(&(version, addr.to_string()))?;
        (at.elapsed() < KEEP).then(|| r.clone())
    }

    pub fn put(&self, version: u64, addr: &str, reports: Reports) {
        let mut map = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MOST {
            map.retain(|_, (at, _)| at.elapsed() < KEEP);
            if map.len() >= MOST {
                map.clear();
            }
        }
        map.insert((version, addr.to_string()), (Instant::now(), reports));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_per_settings_and_server() {
        let r = LoginReports::default();
        let v: Reports = vec![("TimeZone".to_string(), "UTC".to_string())].into();
        r.put(7, "a:1", v.clone());
        assert_eq!(r.get(7, "a:1").as_deref(), Some(&v[..]));
        assert!(r.get(8, "a:1").is_none() && r.get(7, "b:1").is_none());
        for i in 0..MOST as u64 + 1 {
            r.put(i + 100, "a:1", v.clone());
        }
        assert!(r.by_key.lock().unwrap().len() <= MOST);
    }
}
