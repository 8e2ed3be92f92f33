//! The counters every layer reports into: one [`ClusterStats`] per database, shared as an
//! `Arc` by the pieces that count (the router's cache, the session's routing, the topology).
//! Plain atomics, no crate imports: a counter's meaning (a route reason's name, say) belongs
//! to the layer that counts it, which also turns the numbers back into names for reports.

mod cache;
mod counters;
mod routes;
mod traffic;

pub use cache::{CacheStats, Gauge, CACHE_REJECT_SLOTS};
pub use counters::{Counter, StripedCounter};
pub use routes::RouteCounters;
pub use traffic::{
    duration_bucket, Histogram, Traffic, TrafficTotals, DURATION_BOUNDS_US, DURATION_BUCKETS,
};

/// The figures of one database (all its users and hosts).
#[derive(Debug)]
pub struct ClusterStats {
    /// Requests per (target, reason); the router names the slots.
    pub routes: RouteCounters,
    /// Reads meant for a replica that went to the primary (no replica usable or caught up).
    pub reads_on_primary: Counter,
    /// Hosts fenced because another primary won.
    pub hosts_fenced: Counter,
    /// Route-cache lookups answered from the cache, and those that had to classify.
    pub route_cache_hits: StripedCounter,
    pub route_cache_misses: StripedCounter,
    /// Transactions, queries, bytes and times (SHOW STATS, metrics).
    pub traffic: Traffic,
    /// The result cache (all zero when it is off).
    pub cache: CacheStats,
}

impl ClusterStats {
    /// Counters for `targets` x `route_slots` routing outcomes, and `stripes` stripes for
    /// counters bumped from many threads at once (the route cache's shards).
    pub fn new(targets: usize, route_slots: usize, stripes: usize) -> ClusterStats {
        ClusterStats {
            routes: RouteCounters::new(targets, route_slots),
            reads_on_primary: Counter::default(),
            hosts_fenced: Counter::default(),
            route_cache_hits: StripedCounter::new(stripes),
            route_cache_misses: StripedCounter::new(stripes),
            traffic: Traffic::default(),
            cache: CacheStats::new(stripes),
        }
    }
}
