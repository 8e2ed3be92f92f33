//! Criterion micro-benchmarks of the hot path's framing: splitting a buffer of DataRows into
//! frames, and scanning SQL for session-level SET statements.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use switchyard::params::scan_changes;
use switchyard::protocol::frame::Frames;

fn data_rows(n: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..n {
        let body = format!("row {i:>8} xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        v.push(b'D');
        v.extend_from_slice(&((body.len() + 4 + 6) as u32).to_be_bytes());
        v.extend_from_slice(&1u16.to_be_bytes());
        v.extend_from_slice(&(body.len() as u32).to_be_bytes());
        v.extend_from_slice(body.as_bytes());
    }
    v
}

fn framing(c: &mut Criterion) {
    let buf = data_rows(1000);
    let mut g = c.benchmark_group("framing");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("split 1000 DataRows", |b| {
        b.iter(|| {
            let mut n = 0;
            for f in Frames::new(black_box(&buf), 1 << 30) {
                n += f.map(|(h, _)| h.total_len).unwrap_or(0);
            }
            n
        })
    });
    g.finish();
}

fn set_scan(c: &mut Criterion) {
    let mut g = c.benchmark_group("set_scan");
    let mut out = Vec::new();
    g.bench_function("pgbench select (no SET)", |b| {
        b.iter(|| {
            out.clear();
            scan_changes(
                black_box("SELECT abalance FROM pgbench_accounts WHERE aid = 48213;"),
                &mut out,
            );
        })
    });
    g.bench_function("SET search_path", |b| {
        b.iter(|| {
            out.clear();
            scan_changes(black_box("SET search_path TO app, public"), &mut out);
        })
    });
    g.finish();
}

criterion_group!(benches, framing, set_scan);
criterion_main!(benches);
