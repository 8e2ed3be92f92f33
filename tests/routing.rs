//! Read/write routing against a primary and two streaming replicas: reads spread over the
//! replicas, writes and everything that may write land on the primary, read-only
//! transactions may use a replica, a client always reads its own writes, and pgbench -S
//! runs entirely on the replicas.

#![allow(clippy::err_expect)]

mod common;

use common::cluster::*;
use common::proxy;
use std::collections::HashSet;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use switchyard::app::Server;
use tokio_postgres::SimpleQueryMessage;

fn cluster() -> &'static PgCluster {
    static C: OnceLock<PgCluster> = OnceLock::new();
    C.get_or_init(|| {
        let c = PgCluster::start(2);
        c.primary.psql(
            "CREATE TABLE IF NOT EXISTS items (id serial PRIMARY KEY, v int);
             CREATE SEQUENCE IF NOT EXISTS seq;
             CREATE OR REPLACE FUNCTION bump() RETURNS int LANGUAGE sql AS 'SELECT 1';
             INSERT INTO items (v) VALUES (1);",
        );
        // Asynchronous commits (a_client_reads_its_own_asynchronous_commits) then stay in the
        // primary's WAL buffers, unsent, for up to seconds, while every full WAL page before
        // them is flushed (and sent) at once.
        c.primary
            .psql_super("postgres", "ALTER SYSTEM SET wal_writer_delay = '10s'");
        c.primary
            .psql_super("postgres", "ALTER SYSTEM SET wal_writer_flush_after = 0");
        c.primary.psql_super("postgres", "SELECT pg_reload_conf()");
        c.wait_replicas_caught_up();
        c
    })
}

async fn start(extra_db: &str) -> Server {
    let c = cluster();
    let server = proxy::start(
        c,
        "",
        &format!("health_check_interval_ms = 100\nwrite_functions = [\"bump\"]\n{extra_db}"),
    )
    .await;
    let cl = server.app.cluster("app").expect("cluster");
    let deadline = Instant::now() + Duration::from_secs(10);
    while cl.topology.snapshot().replicas_at(0).count() < 2 {
        assert!(
            Instant::now() < deadline,
            "replicas not discovered: {:?}",
            cl.topology.snapshot()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server
}

async fn port_of(c: &tokio_postgres::Client, sql: &str) -> u16 {
    let msgs = c
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    let mut port = None;
    for m in msgs {
        if let SimpleQueryMessage::Row(r) = m {
            for i in 0..r.len() {
                if let Some(v) = r.get(i) {
                    if let Ok(p) = v.parse::<u16>() {
                        if p > 1000 {
                            port = Some(p);
                        }
                    }
                }
            }
        }
    }
    port.unwrap_or_else(|| panic!("no port in the result of {sql}"))
}

/// Whether a `SELECT count(*) ...` answered 1.
fn counted_one(msgs: &[SimpleQueryMessage]) -> bool {
    msgs.iter()
        .any(|m| matches!(m, SimpleQueryMessage::Row(r) if r.get(0) == Some("1")))
}

fn replica_ports() -> HashSet<u16> {
    cluster().replicas.iter().map(|r| r.port).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_spread_over_replicas() {
    let server = start("").await;
    let c = proxy::connect(&server).await;
    let mut seen = HashSet::new();
    for _ in 0..40 {
        let p = port_of(&c, "SELECT inet_server_port()").await;
        assert!(replica_ports().contains(&p), "read went to {p}");
        seen.insert(p);
    }
    assert_eq!(seen, replica_ports(), "both replicas served reads");
    // Extended protocol (unnamed statement) is routed the same way.
    for _ in 0..10 {
        let row = c
            .query_typed("SELECT inet_server_port()", &[])
            .await
            .unwrap();
        let p: i32 = row[0].get(0);
        assert!(replica_ports().contains(&(p as u16)));
    }
    let stats = switchyard::router::route_counts(&server.app.cluster("app").unwrap().stats.routes);
    assert!(
        stats
            .iter()
            .any(|(t, r, n)| format!("{t:?}") == "Replica" && r == "read-only select" && *n >= 40),
        "{stats:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_and_side_effects_go_to_the_primary() {
    let server = start("read_your_writes = \"off\"").await;
    let primary = cluster().primary.port;
    let c = proxy::connect(&server).await;
    for sql in [
        "SELECT nextval('seq'), inet_server_port()",
        "SELECT inet_server_port() FROM items WHERE id = 1 FOR UPDATE",
        "SELECT inet_server_port() FROM items WHERE id = 1 FOR NO KEY UPDATE",
        "WITH x AS (UPDATE items SET v = v WHERE id = 1 RETURNING *) SELECT inet_server_port() FROM x",
        "SELECT bump(), inet_server_port()",
        "SELECT public.BUMP(), inet_server_port()",
        "/* switchyard: primary */ SELECT inet_server_port()",
        "SELECT pg_advisory_unlock_all(), inet_server_port()",
    ] {
        assert_eq!(port_of(&c, sql).await, primary, "{sql}");
    }
    c.batch_execute("INSERT INTO items (v) VALUES (2); UPDATE items SET v = 3 WHERE v = 2; CREATE TABLE IF NOT EXISTS ddl_t (a int)").await.unwrap();
    // Every statement of a read-write transaction stays on the primary.
    c.batch_execute("BEGIN").await.unwrap();
    for _ in 0..3 {
        assert_eq!(port_of(&c, "SELECT inet_server_port()").await, primary);
    }
    c.batch_execute("COMMIT").await.unwrap();
    // A read-only transaction may use a replica.
    c.batch_execute("BEGIN READ ONLY").await.unwrap();
    let p = port_of(&c, "SELECT inet_server_port()").await;
    assert!(replica_ports().contains(&p), "read-only transaction on {p}");
    assert_eq!(
        port_of(&c, "SELECT inet_server_port()").await,
        p,
        "the whole transaction on one server"
    );
    c.batch_execute("COMMIT").await.unwrap();
    // A replica hint overrides.
    let p = port_of(&c, "SELECT inet_server_port() /* switchyard: replica */").await;
    assert!(replica_ports().contains(&p));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_only_routing_keeps_reads_on_the_primary() {
    let server = start("routing = \"primary_only\"").await;
    let c = proxy::connect(&server).await;
    for _ in 0..10 {
        assert_eq!(
            port_of(&c, "SELECT inet_server_port()").await,
            cluster().primary.port
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_always_reads_its_own_writes() {
    let server = start("read_your_writes = \"lsn\"").await;
    let c = proxy::connect(&server).await;
    c.batch_execute("CREATE TABLE IF NOT EXISTS ryw (id int PRIMARY KEY)")
        .await
        .unwrap();
    let mut misses = 0;
    for i in 0..1000 {
        c.batch_execute(&format!("INSERT INTO ryw VALUES ({i})"))
            .await
            .unwrap();
        let msgs = c
            .simple_query(&format!("SELECT count(*) FROM ryw WHERE id = {i}"))
            .await
            .unwrap();
        if !counted_one(&msgs) {
            misses += 1;
        }
    }
    assert_eq!(misses, 0);
    // Once the replicas have caught up, reads go back to them.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let p = port_of(&c, "SELECT inet_server_port()").await;
    assert!(
        replica_ports().contains(&p),
        "reads returned to replicas, got {p}"
    );
    server.stop().await;
}

/// With `synchronous_commit = off` the commit record can sit in the primary's WAL buffers past
/// the WAL write position (`pg_current_wal_lsn()`): the WAL writer writes and flushes the full
/// pages of a transaction's rows but not the page its commit is on. A replica that has
/// replayed up to the write position then lacks the commit: read-your-writes must wait for
/// the insert position.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reads_its_own_asynchronous_commits() {
    let server = start("read_your_writes = \"lsn\"").await;
    let c = proxy::connect(&server).await;
    c.batch_execute(
        "SET synchronous_commit = off; CREATE TABLE IF NOT EXISTS ryw_async (id int PRIMARY KEY)",
    )
    .await
    .unwrap();
    let replicas = replica_ports();
    let (mut misses, mut replica_reads) = (0, 0);
    for i in 0..20 {
        // 300 rows: more than a WAL page, so a page boundary lies before the commit record.
        c.batch_execute(&format!(
            "INSERT INTO ryw_async SELECT {i} * 1000 + g FROM generate_series(1, 300) g"
        ))
        .await
        .unwrap();
        // Time for health checks (every 100 ms) to see the replicas at the position the
        // write was recorded at.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let msgs = c
            .simple_query(&format!(
                "SELECT count(*), inet_server_port() FROM ryw_async WHERE id = {i} * 1000 + 1"
            ))
            .await
            .unwrap();
        if !counted_one(&msgs) {
            misses += 1;
        }
        let on_replica = msgs.iter().any(|m| {
            matches!(m, SimpleQueryMessage::Row(r)
                if r.get(1).and_then(|p| p.parse().ok()).is_some_and(|p| replicas.contains(&p)))
        });
        replica_reads += usize::from(on_replica);
    }
    eprintln!("{replica_reads} of 20 reads on a replica, {misses} missed");
    assert_eq!(misses, 0, "reads that missed the client's own commit");
    server.stop().await;
}

fn idx_scans(node: &PgNode) -> i64 {
    node.psql("SELECT coalesce(sum(idx_scan), 0) FROM pg_stat_user_tables WHERE relname = 'pgbench_accounts'")
        .parse()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_select_only_runs_on_the_replicas() {
    let c = cluster();
    proxy::pgbench(c.primary.port, &["-i", "-s", "1", "-q"]).await;
    c.wait_replicas_caught_up();
    let server = start("").await;
    // Stats are per node and updated asynchronously; take a baseline after a pause.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let before: Vec<i64> = c.nodes().map(idx_scans).collect();
    let text = proxy::pgbench(server.addr.port(), &["-S", "-c", "4", "-j", "2", "-T", "3"]).await;
    assert!(text.contains("number of failed transactions: 0"), "{text}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after: Vec<i64> = c.nodes().map(idx_scans).collect();
    let delta: Vec<i64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    assert_eq!(delta[0], 0, "no pgbench reads on the primary: {delta:?}");
    assert!(
        delta[1] > 100 && delta[2] > 100,
        "both replicas served pgbench reads: {delta:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_after_a_read_prepare_or_in_a_read_pipeline_reaches_the_primary() {
    use common::raw::{self, Raw};
    let server = start("").await;
    let c = cluster();
    c.primary.psql("CREATE TABLE IF NOT EXISTS piped (x int)");
    c.wait_replicas_caught_up();
    let mut r = Raw::login(server.addr, APP_USER, APP_PASSWORD, APP_DB).await;
    // asyncpg's prepare: Parse/Describe/Flush, answers read before any Sync; then a write.
    let mut describe = bytes::BytesMut::new();
    postgres_protocol::message::frontend::describe(b'S', "rd", &mut describe).unwrap();
    let mut flush = bytes::BytesMut::new();
    postgres_protocol::message::frontend::flush(&mut flush);
    r.send(&raw::batch(&[
        raw::parse("rd", "SELECT count(*) FROM piped"),
        describe,
        flush,
    ]))
    .await;
    assert_eq!(r.recv().await.unwrap().tag, b'1');
    assert_eq!(r.recv().await.unwrap().tag, b't');
    assert_eq!(r.recv().await.unwrap().tag, b'T');
    r.send(&raw::query("INSERT INTO piped VALUES (1)")).await;
    let msgs = r.until_ready().await;
    assert_eq!(
        raw::tags(&msgs),
        "CZ",
        "{:?}",
        msgs.iter().find_map(|m| m.field(b'M'))
    );
    // A pipeline (one Sync) that reads first and then writes.
    r.send(&raw::batch(&[
        raw::parse("", "SELECT 1"),
        raw::bind("", "", &[]),
        raw::execute(""),
        raw::parse("", "INSERT INTO piped VALUES (2)"),
        raw::bind("", "", &[]),
        raw::execute(""),
        raw::sync(),
    ]))
    .await;
    let msgs = r.until_ready().await;
    assert_eq!(
        raw::tags(&msgs),
        "12DC12CZ",
        "{:?}",
        msgs.iter().find_map(|m| m.field(b'M'))
    );
    // A write pipelined right behind a read that went to a replica waits for it, then goes
    // to the primary.
    let mut both = raw::query("SELECT inet_server_port()").to_vec();
    both.extend(raw::query("INSERT INTO piped VALUES (3) RETURNING inet_server_port()").to_vec());
    r.send(&both).await;
    let first = r.until_ready().await;
    let second = r.until_ready().await;
    assert_eq!(raw::tags(&first), "TDCZ");
    assert_eq!(
        raw::tags(&second),
        "TDCZ",
        "{:?}",
        second.iter().find_map(|m| m.field(b'M'))
    );
    let port: u16 = String::from_utf8_lossy(&second[1].body[6..])
        .parse()
        .unwrap();
    assert_eq!(port, c.primary.port);
    assert_eq!(c.primary.psql("SELECT count(*) FROM piped"), "3");
    server.stop().await;
}
