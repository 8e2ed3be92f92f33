//! Criterion benchmarks of the prepared-statement rewriter against plain forwarding: the
//! per-request cost of mapping a named Bind/Execute/Sync (statement already on the
//! connection) and of following the server's replies, next to copying the same frames.

use bytes::{BufMut, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use switchyard::prepared::rewrite::Rewriter;
use switchyard::prepared::{ClientStatements, ExpectQueue, Registry, ServerStatements};
use switchyard::protocol::frame::Frames;
use switchyard::protocol::messages::write_message;

fn request() -> Vec<u8> {
    let mut b = BytesMut::new();
    write_message(&mut b, b'B', |b| {
        b.put_slice(b"\0stmt_1\0");
        b.put_u16(0);
        b.put_u16(1);
        b.put_i32(5);
        b.put_slice(b"48213");
        b.put_u16(0);
    });
    write_message(&mut b, b'E', |b| {
        b.put_u8(0);
        b.put_i32(0);
    });
    write_message(&mut b, b'S', |_| {});
    b.to_vec()
}

fn replies() -> Vec<(u8, usize)> {
    vec![(b'2', 5), (b'D', 20), (b'C', 13), (b'Z', 6)]
}

fn rewriting(c: &mut Criterion) {
    let req = request();
    let registry = Registry::new(1000);
    let mut client = ClientStatements::default();
    let mut held = ServerStatements::new(250);
    let info =
        registry.get_or_insert(b"SELECT abalance FROM pgbench_accounts WHERE aid = $1\0\0\0");
    client.insert("stmt_1", info.clone());
    held.insert(&info.server_name);
    let mut queue = ExpectQueue::default();
    let mut out = BytesMut::with_capacity(4096);

    let mut g = c.benchmark_group("prepared");
    g.throughput(Throughput::Elements(3));
    g.bench_function("plain forwarding of Bind/Execute/Sync", |b| {
        b.iter(|| {
            out.clear();
            let mut end = 0;
            for (h, _) in Frames::new(black_box(&req), 1 << 20).flatten() {
                end += h.total_len;
            }
            out.extend_from_slice(&req[..end]);
            black_box(out.len())
        })
    });
    g.bench_function("rewrite of Bind/Execute/Sync + replies", |b| {
        b.iter(|| {
            out.clear();
            let mut rw = Rewriter {
                registry: &registry,
                client: &mut client,
                held: &mut held,
                queue: &mut queue,
                map_names: true,
                heads: None,
            };
            for (h, frame) in Frames::new(black_box(&req), 1 << 20).flatten() {
                let _ = rw.frame(h.tag, frame, &mut out);
            }
            for (tag, _) in replies() {
                let _ = queue.on_frame(tag, &mut held);
            }
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, rewriting);
criterion_main!(benches);
