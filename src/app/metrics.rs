//! `/metrics`: Prometheus text (OpenMetrics) built at each scrape with prometheus-client from
//! what the console reports (pools, clients, hosts) and the databases' counters. Nothing is
//! counted here: the registry is filled from the counters the layers below keep.

mod cache;

use crate::frontend::admin::{role_name, Snapshot};
use crate::frontend::Shared;
use crate::router::route_counts;
use crate::stats::{Histogram, DURATION_BOUNDS_US};
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use std::collections::BTreeMap;
use std::time::Instant;

type Labels = Vec<(&'static str, String)>;

/// One metric family: a value per label set.
#[derive(Debug)]
struct Labeled<M> {
    kind: MetricType,
    values: Vec<(Labels, M)>,
}

impl<M: EncodeMetric> EncodeMetric for Labeled<M> {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (labels, metric) in &self.values {
            metric.encode(encoder.encode_family(labels)?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        self.kind
    }
}

/// A duration histogram as read from [`Histogram`], in seconds.
#[derive(Debug)]
struct Durations {
    buckets: Vec<(f64, u64)>,
    sum: f64,
    count: u64,
}

impl Durations {
    fn of(h: &Histogram) -> Durations {
        let (counts, sum_us) = h.reading();
        let bounds = DURATION_BOUNDS_US
            .iter()
            .map(|us| *us as f64 / 1e6)
            .chain([f64::MAX]);
        Durations {
            buckets: bounds.zip(counts).collect(),
            sum: sum_us as f64 / 1e6,
            count: counts.iter().sum(),
        }
    }
}

impl EncodeMetric for Durations {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_histogram::<NoLabelSet>(self.sum, self.count, &self.buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

fn counters(values: Vec<(Labels, u64)>) -> Labeled<ConstCounter<u64>> {
    Labeled {
        kind: MetricType::Counter,
        values: values
            .into_iter()
            .map(|(l, v)| (l, ConstCounter::new(v)))
            .collect(),
    }
}

fn seconds(values: Vec<(Labels, u64)>) -> Labeled<ConstCounter<f64>> {
    Labeled {
        kind: MetricType::Counter,
        values: values
            .into_iter()
            .map(|(l, us)| (l, ConstCounter::new(us as f64 / 1e6)))
            .collect(),
    }
}

fn gauges(values: Vec<(Labels, i64)>) -> Labeled<ConstGauge<i64>> {
    Labeled {
        kind: MetricType::Gauge,
        values: values
            .into_iter()
            .map(|(l, v)| (l, ConstGauge::new(v)))
            .collect(),
    }
}

fn db(name: &str) -> Labels {
    vec![("database", name.to_string())]
}

fn i(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The whole exposition, as text.
pub fn render(shared: &Shared) -> String {
    let snap = Snapshot::take(shared);
    let mut r = Registry::with_prefix("switchyard");
    connections(&mut r, &snap);
    traffic(&mut r, &snap);
    routing(&mut r, &snap);
    hosts(&mut r, &snap);
    cache::cache(&mut r, &snap);
    r.register(
        "prepared_statements",
        "Distinct prepared statements remembered across clients",
        ConstGauge::new(i(shared.statements.len())),
    );
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &r);
    out
}

/// Client and server connections by state.
fn connections(r: &mut Registry, s: &Snapshot) {
    let mut clients: BTreeMap<(String, String, &str), i64> = BTreeMap::new();
    for c in &s.clients {
        let state = if c.waiting {
            "waiting"
        } else if c.server.is_some() {
            "active"
        } else {
            "idle"
        };
        let key = (
            c.info.cluster.db.name.clone(),
            c.info.pools.user.clone(),
            state,
        );
        *clients.entry(key).or_default() += 1;
    }
    let clients = clients
        .into_iter()
        .map(|((d, u, st), n)| {
            (
                vec![("database", d), ("user", u), ("state", st.to_string())],
                n,
            )
        })
        .collect();
    r.register(
        "client_connections",
        "Logged-in clients by state",
        gauges(clients),
    );
    let mut servers = Vec::new();
    for p in &s.pools {
        for h in &p.hosts {
            let rep = &h.report;
            for (state, n) in [
                ("active", rep.active),
                ("idle", rep.idle),
                ("opening", rep.opening),
            ] {
                let labels = vec![
                    ("database", p.database.clone()),
                    ("user", p.user.clone()),
                    ("host", h.addr.clone()),
                    ("role", h.role.to_string()),
                    ("state", state.to_string()),
                ];
                servers.push((labels, i(n)));
            }
        }
    }
    r.register(
        "server_connections",
        "Server connections by state",
        gauges(servers),
    );
}

/// Transactions, queries, bytes, times, histograms and errors per database.
fn traffic(r: &mut Registry, s: &Snapshot) {
    let per_db = |f: &dyn Fn(&crate::stats::TrafficTotals) -> u64| {
        s.databases
            .iter()
            .map(|d| (db(&d.name), f(&d.traffic)))
            .collect::<Vec<_>>()
    };
    r.register(
        "transactions",
        "Transactions served",
        counters(per_db(&|t| t.xacts)),
    );
    r.register(
        "queries",
        "Queries (requests) served",
        counters(per_db(&|t| t.queries)),
    );
    r.register_with_unit(
        "received",
        "Bytes from clients",
        Unit::Bytes,
        counters(per_db(&|t| t.bytes_received)),
    );
    r.register_with_unit(
        "sent",
        "Bytes to clients",
        Unit::Bytes,
        counters(per_db(&|t| t.bytes_sent)),
    );
    r.register_with_unit(
        "transaction_time",
        "Time in transactions",
        Unit::Seconds,
        seconds(per_db(&|t| t.xact_us)),
    );
    r.register_with_unit(
        "query_time",
        "Time in queries",
        Unit::Seconds,
        seconds(per_db(&|t| t.query_us)),
    );
    r.register_with_unit(
        "wait_time",
        "Time clients waited for a server connection",
        Unit::Seconds,
        seconds(per_db(&|t| t.wait_us)),
    );
    durations_and_errors(r, s);
}

/// The duration histograms and the errors by SQLSTATE class, per database.
fn durations_and_errors(r: &mut Registry, s: &Snapshot) {
    let hist = |f: &dyn Fn(&crate::stats::Traffic) -> &Histogram| Labeled {
        kind: MetricType::Histogram,
        values: s
            .databases
            .iter()
            .map(|d| (db(&d.name), Durations::of(f(&d.cluster.stats.traffic))))
            .collect(),
    };
    r.register_with_unit(
        "query_duration",
        "Duration of queries",
        Unit::Seconds,
        hist(&|t| &t.query_duration),
    );
    r.register_with_unit(
        "checkout_wait",
        "Wait for a server connection per checkout",
        Unit::Seconds,
        hist(&|t| &t.checkout_wait),
    );
    let errors = s
        .databases
        .iter()
        .flat_map(|d| {
            d.cluster
                .stats
                .traffic
                .errors()
                .into_iter()
                .map(|(class, n)| (vec![("database", d.name.clone()), ("class", class)], n))
        })
        .collect();
    r.register(
        "errors",
        "Errors sent to clients by SQLSTATE class",
        counters(errors),
    );
}

/// Routing decisions by target and reason, and the router's own figures.
fn routing(r: &mut Registry, s: &Snapshot) {
    let mut routed = Vec::new();
    for d in &s.databases {
        for (target, reason, n) in route_counts(&d.cluster.stats.routes) {
            let target = format!("{target:?}").to_lowercase();
            routed.push((
                vec![
                    ("database", d.name.clone()),
                    ("target", target),
                    ("reason", reason),
                ],
                n,
            ));
        }
    }
    r.register(
        "routed",
        "Requests routed, by target and reason",
        counters(routed),
    );
    let per_db = |f: &dyn Fn(&crate::stats::ClusterStats) -> u64| {
        s.databases
            .iter()
            .map(|d| (db(&d.name), f(&d.cluster.stats)))
            .collect::<Vec<_>>()
    };
    r.register(
        "reads_on_primary",
        "Reads meant for a replica served by the primary",
        counters(per_db(&|c| c.reads_on_primary.get())),
    );
    r.register(
        "hosts_fenced",
        "Hosts fenced because another primary won",
        counters(per_db(&|c| c.hosts_fenced.get())),
    );
    r.register(
        "route_cache_hits",
        "Routing decisions from the route cache",
        counters(per_db(&|c| c.route_cache_hits.get())),
    );
    r.register(
        "route_cache_misses",
        "Routing decisions that classified",
        counters(per_db(&|c| c.route_cache_misses.get())),
    );
}

/// Each host's role, lag, ban and fencing; whether each database has a primary.
fn hosts(r: &mut Registry, s: &Snapshot) {
    let now = Instant::now();
    let (mut role, mut lag, mut lag_s, mut banned, mut fenced, mut primary) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for d in &s.databases {
        let snap = d.cluster.topology.snapshot();
        primary.push((db(&d.name), i64::from(snap.primary().is_some())));
        for h in &snap.hosts {
            let at = vec![("database", d.name.clone()), ("host", h.addr.clone())];
            let mut with_role = at.clone();
            with_role.push(("role", role_name(h.role).to_string()));
            role.push((with_role, 1));
            lag.push((at.clone(), i64::try_from(h.lag_bytes).unwrap_or(i64::MAX)));
            lag_s.push((
                at.clone(),
                i64::try_from(h.lag_ms / 1000).unwrap_or(i64::MAX),
            ));
            banned.push((at.clone(), i64::from(h.is_banned(now))));
            fenced.push((at, i64::from(h.role == crate::topology::Role::Fenced)));
        }
    }
    r.register("host_role", "1 for each host's current role", gauges(role));
    r.register_with_unit(
        "host_lag",
        "Replication lag behind the primary",
        Unit::Bytes,
        gauges(lag),
    );
    r.register_with_unit(
        "host_replay_lag",
        "Replay lag in time (whole seconds)",
        Unit::Seconds,
        gauges(lag_s),
    );
    r.register(
        "host_banned",
        "1 while a host gets no reads after a failure",
        gauges(banned),
    );
    r.register(
        "host_fenced",
        "1 for a host fenced as a stale primary",
        gauges(fenced),
    );
    r.register(
        "primary_known",
        "1 while the database has a known primary",
        gauges(primary),
    );
}
