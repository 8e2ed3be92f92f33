//! Criterion micro-benchmarks of query routing: classification through the fingerprint-keyed
//! cache versus a full classification (keyword pre-check + sqlparser) on every call, and the
//! fingerprint scan alone, for pgbench's select, a CTE with a 3-way join, and an ORM-style
//! IN list of 500 parameters.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use switchyard::router::{fingerprint, Classifier};

const PGBENCH: &str = "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;";

const CTE_JOIN: &str = "WITH recent AS (SELECT aid, max(mtime) AS last FROM pgbench_history \
     WHERE mtime > now() - interval '1 day' GROUP BY aid) \
     SELECT a.aid, a.abalance, b.bbalance, t.tbalance, r.last \
     FROM pgbench_accounts a JOIN pgbench_branches b ON b.bid = a.bid \
     JOIN pgbench_tellers t ON t.bid = b.bid JOIN recent r ON r.aid = a.aid \
     WHERE a.abalance > 0 AND t.tid < 100 ORDER BY r.last DESC LIMIT 10";

fn in_list(n: usize) -> String {
    let params: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
    format!(
        "SELECT aid, abalance FROM pgbench_accounts WHERE aid IN ({})",
        params.join(", ")
    )
}

/// pgbench's select with 1024 different literals, as a simple-protocol client sends it.
fn pgbench_variants() -> Vec<String> {
    (0..1024u32)
        .map(|i| PGBENCH.replace("48213", &(i * 97 + 1).to_string()))
        .collect()
}

fn classify(c: &mut Criterion) {
    let in500 = in_list(500);
    let variants = pgbench_variants();
    let classifier = Classifier::new(&[], &[], 10_000, switchyard::router::cluster_stats());
    let mut g = c.benchmark_group("classify");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("pgbench select, cached (varying literal)", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            classifier.classify(black_box(&variants[i]))
        })
    });
    g.bench_function("pgbench select, uncached", |b| {
        b.iter(|| classifier.classify_uncached(black_box(PGBENCH)))
    });
    g.bench_function("CTE + 3-way join, cached", |b| {
        b.iter(|| classifier.classify(black_box(CTE_JOIN)))
    });
    g.bench_function("CTE + 3-way join, uncached", |b| {
        b.iter(|| classifier.classify_uncached(black_box(CTE_JOIN)))
    });
    g.bench_function("IN list of 500 params, cached", |b| {
        b.iter(|| classifier.classify(black_box(&in500)))
    });
    g.bench_function("IN list of 500 params, uncached", |b| {
        b.iter(|| classifier.classify_uncached(black_box(&in500)))
    });
    g.finish();
}

fn fingerprints(c: &mut Criterion) {
    let in500 = in_list(500);
    let mut g = c.benchmark_group("fingerprint");
    for (name, sql) in [
        ("pgbench select", PGBENCH),
        ("CTE + 3-way join", CTE_JOIN),
        ("IN list of 500 params", in500.as_str()),
    ] {
        g.throughput(Throughput::Bytes(sql.len() as u64));
        g.bench_function(name, |b| b.iter(|| fingerprint(black_box(sql))));
    }
    g.finish();
}

criterion_group!(benches, classify, fingerprints);
criterion_main!(benches);
