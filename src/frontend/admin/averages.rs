//! Per-second rates and per-transaction times over the last complete stats period, as
//! PgBouncer's `avg_*` columns: a tick every [`STATS_PERIOD`] keeps each database's totals,
//! and the difference between the last two ticks is what the averages say (zero until two
//! ticks have passed).

use crate::stats::TrafficTotals;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often averages are brought up to date (PgBouncer's default `stats_period`).
pub const STATS_PERIOD: Duration = Duration::from_secs(60);

/// The averages of one database over one period.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PeriodAverages {
    pub xacts_per_s: u64,
    pub queries_per_s: u64,
    pub received_per_s: u64,
    pub sent_per_s: u64,
    /// Microseconds per transaction, per query, and per checkout that waited.
    pub xact_us: u64,
    pub query_us: u64,
    pub wait_us: u64,
}

impl PeriodAverages {
    fn between(new: &TrafficTotals, old: &TrafficTotals, elapsed: Duration) -> PeriodAverages {
        let d = new.since(old);
        let secs = elapsed.as_secs().max(1);
        let per = |n: u64, by: u64| n.checked_div(by).unwrap_or(0);
        PeriodAverages {
            xacts_per_s: d.xacts / secs,
            queries_per_s: d.queries / secs,
            received_per_s: d.bytes_received / secs,
            sent_per_s: d.bytes_sent / secs,
            xact_us: per(d.xact_us, d.xacts),
            query_us: per(d.query_us, d.queries),
            wait_us: per(d.wait_us, d.waits),
        }
    }
}

#[derive(Default)]
struct State {
    last_tick: Option<(Instant, HashMap<String, TrafficTotals>)>,
    averages: HashMap<String, PeriodAverages>,
}

/// The ticks' memory, shared by the console and the metrics.
#[derive(Default)]
pub struct Averages(Mutex<State>);

impl Averages {
    /// Takes this period's totals (`now` is the tick's time).
    pub fn tick(&self, now: Instant, totals: HashMap<String, TrafficTotals>) {
        let mut st = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, old)) = &st.last_tick {
            let elapsed = now.saturating_duration_since(*at);
            let averages = totals
                .iter()
                .map(|(db, t)| {
                    let old = old.get(db).copied().unwrap_or_default();
                    (db.clone(), PeriodAverages::between(t, &old, elapsed))
                })
                .collect();
            st.averages = averages;
        }
        st.last_tick = Some((now, totals));
    }

    pub fn of(&self, database: &str) -> PeriodAverages {
        let st = self.0.lock().unwrap_or_else(|p| p.into_inner());
        st.averages.get(database).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_come_from_the_last_two_ticks() {
        let a = Averages::default();
        let t0 = Instant::now();
        let totals = |xacts, xact_us| {
            HashMap::from([(
                "app".to_string(),
                TrafficTotals {
                    xacts,
                    xact_us,
                    ..Default::default()
                },
            )])
        };
        a.tick(t0, totals(100, 1_000));
        assert_eq!(
            a.of("app"),
            PeriodAverages::default(),
            "one tick: no period yet"
        );
        a.tick(t0 + Duration::from_secs(10), totals(1_100, 21_000));
        let avg = a.of("app");
        assert_eq!(avg.xacts_per_s, 100);
        assert_eq!(avg.xact_us, 20);
        assert_eq!(a.of("other"), PeriodAverages::default());
    }
}
