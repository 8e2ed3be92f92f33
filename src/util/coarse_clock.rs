//! A coarse monotonic clock: milliseconds since the process started, advanced every 50 ms
//! by one background thread. Pool bookkeeping (idle and lifetime limits of seconds to
//! hours) reads it on every checkout and release, where the system clock showed up in
//! profiles. The tick is coarse on purpose: at 5 ms the thread's 200 wake-ups a second were
//! 5% of the pooler's CPU under `pgbench -C` (perf), and kept an idle pooler awake.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How often the clock advances; also its resolution.
const TICK: Duration = Duration::from_millis(50);

static START: OnceLock<Instant> = OnceLock::new();
/// Last published reading plus one (0: the ticking thread is not running yet).
static NOW_PLUS_ONE: AtomicU64 = AtomicU64::new(0);

fn exact_ms() -> u64 {
    let start = START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
}

/// Milliseconds since the clock started, at most one tick (50 ms) behind.
pub fn now_ms() -> u64 {
    match NOW_PLUS_ONE.load(Ordering::Relaxed) {
        0 => {
            start();
            exact_ms()
        }
        v => v - 1,
    }
}

/// Starts the ticking thread (once per process; later calls do nothing).
pub fn start() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        NOW_PLUS_ONE.store(exact_ms() + 1, Ordering::Relaxed);
        let spawned = std::thread::Builder::new()
            .name("switchyard-clock".into())
            .spawn(|| loop {
                std::thread::sleep(TICK);
                NOW_PLUS_ONE.store(exact_ms() + 1, Ordering::Relaxed);
            });
        if let Err(e) = spawned {
            // Without the thread every reading is exact (and a little slower).
            NOW_PLUS_ONE.store(0, Ordering::Relaxed);
            tracing::warn!(error = %e, "could not start the clock thread");
        }
    });
}

/// Milliseconds elapsed since `since` (a reading of [`now_ms`]).
pub fn since_ms(since: u64) -> u64 {
    now_ms().saturating_sub(since)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advances_and_stays_close_to_the_real_clock() {
        let a = now_ms();
        let t = Instant::now();
        std::thread::sleep(Duration::from_millis(300));
        let b = now_ms();
        let real = u64::try_from(t.elapsed().as_millis()).unwrap_or(0);
        assert!(b >= a + 200, "clock moved {} ms in {real} ms", b - a);
        assert!(
            b - a <= real + 2 * 50,
            "clock moved {} ms in {real} ms",
            b - a
        );
        assert!(since_ms(b) < 300);
    }
}
