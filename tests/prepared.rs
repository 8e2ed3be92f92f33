//! Prepared statements under transaction pooling: many clients with many distinct named
//! statements over a small pool (checking values), the awkward message orderings drivers
//! produce, Close/DEALLOCATE/DISCARD, SQL-level PREPARE, and DDL between executions.

#![allow(clippy::err_expect)]

mod common;

use common::cluster::*;
use common::proxy::{self, sqlstate};
use common::raw::{self, Raw};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_clients_with_named_statements_over_five_connections() {
    let cluster = PgCluster::shared();
    let server = proxy::start(cluster, "", "pool_size = 5").await;
    let mut tasks = Vec::new();
    for client_id in 0..100i32 {
        let conn = proxy::conn_str(&server, APP_USER, APP_PASSWORD, APP_DB);
        tasks.push(tokio::spawn(async move {
            let c = proxy::connect_str(&conn).await.expect("connect");
            // Ten distinct statements per client, some shared by all clients.
            let mut stmts = Vec::new();
            for k in 0..10i32 {
                let sql = if k < 5 {
                    format!("SELECT $1::int * {k} + 0 * {client_id} AS v")
                } else {
                    format!("SELECT $1::int * {k} AS v")
                };
                stmts.push((k, c.prepare(&sql).await.expect("prepare")));
            }
            for round in 0..5i32 {
                for (k, st) in &stmts {
                    let row = c
                        .query_one(st, &[&(client_id + round)])
                        .await
                        .expect("execute");
                    let v: i32 = row.get(0);
                    assert_eq!(v, (client_id + round) * k);
                }
                // A transaction with a prepared statement inside.
                let tx_val: i32 = {
                    c.batch_execute("BEGIN").await.unwrap();
                    let r = c.query_one(&stmts[3].1, &[&7]).await.unwrap().get(0);
                    c.batch_execute("COMMIT").await.unwrap();
                    r
                };
                assert_eq!(tx_val, 21);
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    let registry = server.app.statements().len();
    assert!(
        registry >= 55,
        "shared statements are registered once: {registry}"
    );
    server.stop().await;
}

async fn stmt_on_fresh_connection(server: &switchyard::app::Server) -> Raw {
    Raw::login(server.addr, APP_USER, APP_PASSWORD, APP_DB).await
}

#[tokio::test]
async fn awkward_orderings() {
    let cluster = PgCluster::shared();
    let server = proxy::start(cluster, "", "pool_size = 3").await;
    let mut a = stmt_on_fresh_connection(&server).await;
    let mut b = stmt_on_fresh_connection(&server).await;

    // Parse + Describe(S) + Sync, then in a later transaction: Describe(S) alone (pgJDBC's
    // getMetaData), Bind/Execute without Parse, and a Flush-driven Parse.
    a.send(&raw::batch(&[
        raw::parse("q1", "SELECT $1::int + 1 AS n"),
        describe_stmt("q1"),
        raw::sync(),
    ]))
    .await;
    assert_eq!(raw::tags(&a.until_ready().await), "1tTZ");
    // Keep another client busy on connections so `a` moves around.
    b.send(&raw::query("BEGIN")).await;
    b.until_ready().await;
    a.send(&raw::batch(&[describe_stmt("q1"), raw::sync()]))
        .await;
    assert_eq!(raw::tags(&a.until_ready().await), "tTZ");
    a.send(&raw::batch(&[
        raw::bind("", "q1", &[Some("41")]),
        raw::execute(""),
        raw::sync(),
    ]))
    .await;
    let msgs = a.until_ready().await;
    assert_eq!(raw::tags(&msgs), "2DCZ");
    assert_eq!(&msgs[1].body[6..], b"42");
    // Parse with Flush, answer read before Sync.
    a.send(&raw::batch(&[raw::parse("q2", "SELECT 'two'"), flush()]))
        .await;
    assert_eq!(a.recv().await.unwrap().tag, b'1');
    a.send(&raw::batch(&[
        raw::bind("", "q2", &[]),
        raw::execute(""),
        raw::sync(),
    ]))
    .await;
    assert_eq!(raw::tags(&a.until_ready().await), "2DCZ");
    // Pipelined: two executions of two statements and a re-Parse of a known text.
    a.send(&raw::batch(&[
        raw::bind("", "q1", &[Some("1")]),
        raw::execute(""),
        raw::sync(),
        raw::parse("q3", "SELECT $1::int + 1 AS n"),
        raw::bind("", "q3", &[Some("2")]),
        raw::execute(""),
        raw::sync(),
    ]))
    .await;
    assert_eq!(raw::tags(&a.until_ready().await), "2DCZ");
    let msgs = a.until_ready().await;
    assert_eq!(raw::tags(&msgs), "12DCZ");
    assert_eq!(&msgs[2].body[6..], b"3");
    // Close of a client statement: CloseComplete, and the name is gone for this client.
    a.send(&raw::batch(&[close_stmt("q2"), raw::sync()])).await;
    assert_eq!(raw::tags(&a.until_ready().await), "3Z");
    a.send(&raw::batch(&[
        raw::bind("", "q2", &[]),
        raw::execute(""),
        raw::sync(),
    ]))
    .await;
    let msgs = a.until_ready().await;
    assert_eq!(raw::tags(&msgs), "EZ");
    assert_eq!(msgs[0].field(b'C').as_deref(), Some("26000"));
    // An error in the middle of a pipeline skips to Sync; the next Sync works.
    a.send(&raw::batch(&[
        raw::bind("", "q1", &[Some("x")]),
        raw::execute(""),
        raw::parse("q4", "SELECT 4"),
        raw::sync(),
        raw::bind("", "q1", &[Some("5")]),
        raw::execute(""),
        raw::sync(),
    ]))
    .await;
    let msgs = a.until_ready().await;
    assert_eq!(
        raw::tags(&msgs),
        "EZ",
        "the made-up ParseComplete after the error is dropped too"
    );
    assert_eq!(msgs[0].field(b'C').as_deref(), Some("22P02"));
    assert_eq!(raw::tags(&a.until_ready().await), "2DCZ");
    // DEALLOCATE ALL forgets the client's names; DISCARD ALL too.
    a.send(&raw::query("DEALLOCATE ALL")).await;
    a.until_ready().await;
    a.send(&raw::batch(&[
        raw::bind("", "q1", &[Some("5")]),
        raw::execute(""),
        raw::sync(),
    ]))
    .await;
    assert_eq!(raw::tags(&a.until_ready().await), "EZ");
    b.send(&raw::query("COMMIT")).await;
    b.until_ready().await;
    server.stop().await;
}

fn describe_stmt(name: &str) -> bytes::BytesMut {
    let mut b = bytes::BytesMut::new();
    postgres_protocol::message::frontend::describe(b'S', name, &mut b).unwrap();
    b
}

fn close_stmt(name: &str) -> bytes::BytesMut {
    let mut b = bytes::BytesMut::new();
    postgres_protocol::message::frontend::close(b'S', name, &mut b).unwrap();
    b
}

fn flush() -> bytes::BytesMut {
    let mut b = bytes::BytesMut::new();
    postgres_protocol::message::frontend::flush(&mut b);
    b
}

#[tokio::test]
async fn sql_level_prepare_is_a_clear_error_and_deallocate_works() {
    let cluster = PgCluster::shared();
    let server = proxy::start(cluster, "", "pool_size = 2").await;
    let c = proxy::connect(&server).await;
    let e = c
        .simple_query("PREPARE p AS SELECT 1")
        .await
        .expect_err("refused");
    assert_eq!(sqlstate(&e).as_deref(), Some("0A000"));
    assert!(
        proxy::message(&e).contains("not supported with pool_mode = transaction"),
        "{e:?}"
    );
    // Inside a transaction the error aborts it, as a real error would.
    c.batch_execute("BEGIN").await.unwrap();
    assert!(c.simple_query("EXECUTE p").await.is_err());
    let e = c.simple_query("SELECT 1").await.expect_err("aborted");
    assert_eq!(sqlstate(&e).as_deref(), Some("25P02"));
    c.batch_execute("ROLLBACK").await.unwrap();
    // DEALLOCATE of a protocol-level statement.
    let mut r = Raw::login(server.addr, APP_USER, APP_PASSWORD, APP_DB).await;
    r.send(&raw::batch(&[raw::parse("myst", "SELECT 10"), raw::sync()]))
        .await;
    assert_eq!(raw::tags(&r.until_ready().await), "1Z");
    r.send(&raw::query("DEALLOCATE myst")).await;
    let msgs = r.until_ready().await;
    assert_eq!(raw::tags(&msgs), "CZ", "{:?}", msgs[0].field(b'M'));
    r.send(&raw::batch(&[
        raw::bind("", "myst", &[]),
        raw::execute(""),
        raw::sync(),
    ]))
    .await;
    let msgs = r.until_ready().await;
    assert_eq!(raw::tags(&msgs), "EZ");
    assert_eq!(msgs[0].field(b'C').as_deref(), Some("26000"));
    server.stop().await;
}

#[tokio::test]
async fn ddl_between_executions_does_not_break_the_statement_forever() {
    let cluster = PgCluster::shared();
    let server = proxy::start(cluster, "", "pool_size = 1").await;
    let c = proxy::connect(&server).await;
    c.batch_execute(
        "DROP TABLE IF EXISTS shape; CREATE TABLE shape (a int); INSERT INTO shape VALUES (1)",
    )
    .await
    .unwrap();
    let st = c.prepare("SELECT * FROM shape").await.unwrap();
    assert_eq!(c.query(&st, &[]).await.unwrap().len(), 1);
    c.batch_execute("ALTER TABLE shape ADD COLUMN b int")
        .await
        .unwrap();
    // Postgres reports the stale plan once ...
    let e = c.query(&st, &[]).await.expect_err("stale plan");
    assert_eq!(sqlstate(&e).as_deref(), Some("0A000"), "{e:?}");
    // ... and the next use works on a freshly prepared statement.
    for _ in 0..3 {
        let rows = c.simple_query("SELECT 1").await.unwrap();
        assert!(!rows.is_empty());
        match c.query(&st, &[]).await {
            Ok(rows) => assert_eq!(rows.len(), 1),
            Err(e) => {
                // tokio-postgres keeps the old column list: a result-shape error from the
                // driver is fine, a server error is not.
                assert!(e.as_db_error().is_none(), "server still refuses: {e:?}");
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_prepared_with_more_clients_per_thread_than_connections() {
    // pgbench prepares each command synchronously (Parse + Sync) the first time a client
    // runs it; with one thread and more clients than server connections this used to wait
    // for a connection held by a client of the same thread.
    let cluster = PgCluster::shared();
    proxy::pgbench(cluster.primary.port, &["-i", "-s", "1", "-q"]).await;
    let server = proxy::start(
        cluster,
        "checkout_timeout_ms = 2000",
        "pool_size = 3\nrouting = \"primary_only\"",
    )
    .await;
    let text = proxy::pgbench(
        server.addr.port(),
        &["-M", "prepared", "-n", "-c", "8", "-j", "1", "-T", "4"],
    )
    .await;
    assert!(text.contains("number of failed transactions: 0"), "{text}");
    server.stop().await;
}
