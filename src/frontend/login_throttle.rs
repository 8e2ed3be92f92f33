//! A slow-down of repeated failed logins from one address: every failure from an address
//! that failed in the last minute waits 200 ms more than the one before (at most 2 s) before
//! the refusal is sent, so guessing passwords is slow, while a client that logs in right is
//! never delayed. Bounded: at most 10,000 addresses are remembered.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
const STEP: Duration = Duration::from_millis(200);
const MAX_DELAY: Duration = Duration::from_secs(2);
const MAX_ADDRESSES: usize = 10_000;

#[derive(Default)]
pub struct LoginThrottle {
    /// Per address: failures in the current window, and the last one.
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl LoginThrottle {
    /// Records a failed login from `ip`; returns how long to wait before saying so.
    pub fn failed(&self, ip: IpAddr) -> Duration {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ADDRESSES && !map.contains_key(&ip) {
            map.retain(|_, (_, last)| now.duration_since(*last) < WINDOW);
            if map.len() >= MAX_ADDRESSES {
                map.clear();
            }
        }
        let entry = map.entry(ip).or_insert((0, now));
        if now.duration_since(entry.1) >= WINDOW {
            entry.0 = 0;
        }
        let before = entry.0;
        *entry = (before.saturating_add(1), now);
        STEP.saturating_mul(before).min(MAX_DELAY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_per_address_and_are_capped() {
        let t = LoginThrottle::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(
            t.failed(a),
            Duration::ZERO,
            "a first mistake is not delayed"
        );
        assert_eq!(t.failed(a), STEP);
        assert_eq!(t.failed(a), STEP * 2);
        assert_eq!(
            t.failed(b),
            Duration::ZERO,
            "another address is not affected"
        );
        for _ in 0..20 {
            t.failed(a);
        }
        assert_eq!(t.failed(a), MAX_DELAY);
    }
}
