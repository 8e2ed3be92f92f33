//! Pooling behaviour: many clients over a small transaction pool, logins while every server
//! is busy, session parameters kept per client, locks released when a client vanishes mid-transaction, cancel, pool
//! exhaustion errors, session-mode reset, dead server connections not reused, and shutdown
//! telling idle and busy clients (57P01).

#![allow(clippy::err_expect)]

mod common;

use common::cluster::*;
use common::proxy::{self, sqlstate};
use std::time::{Duration, Instant};

fn ensure_db(cluster: &PgCluster, db: &str) {
    let exists = cluster.primary.psql(&format!(
        "SELECT count(*) FROM pg_database WHERE datname = '{db}'"
    ));
    if exists == "0" {
        cluster
            .primary
            .psql(&format!("CREATE DATABASE {db} OWNER app"));
    }
}

fn db_connections(cluster: &PgCluster, db: &str) -> usize {
    cluster
        .primary
        .psql(&format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' AND backend_type = 'client backend' AND application_name <> 'switchyard-health-check'"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_over_five_connections() {
    let cluster = PgCluster::shared();
    ensure_db(cluster, "many");
    let text = proxy::config_text(cluster, "", "pool_size = 5\ndbname = \"many\"");
    let server = proxy::start_with(&text).await;
    let setup = proxy::connect(&server).await;
    setup
        .batch_execute("DROP TABLE IF EXISTS hits; CREATE TABLE hits (client int, n int)")
        .await
        .unwrap();
    drop(setup);
    let mut tasks = Vec::new();
    for client_id in 0..200i32 {
        let conn = proxy::conn_str(&server, APP_USER, APP_PASSWORD, "app");
        tasks.push(tokio::spawn(async move {
            let c = proxy::connect_str(&conn).await.expect("connect");
            for n in 0..5i32 {
                c.batch_execute(&format!(
                    "BEGIN; INSERT INTO hits VALUES ({client_id}, {n}); COMMIT"
                ))
                .await
                .expect("insert");
                let rows = c
                    .simple_query(&format!(
                        "SELECT count(*) FROM hits WHERE client = {client_id}"
                    ))
                    .await
                    .expect("select");
                let count = rows.iter().find_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                    _ => None,
                });
                assert_eq!(count.as_deref(), Some((n + 1).to_string().as_str()));
            }
        }));
    }
    let watcher = tokio::task::spawn_blocking({
        move || {
            let cluster = PgCluster::shared();
            let mut max = 0;
            for _ in 0..20 {
                max = max.max(db_connections(cluster, "many"));
                std::thread::sleep(Duration::from_millis(100));
            }
            max
        }
    });
    for t in tasks {
        t.await.expect("client task");
    }
    let max_seen = watcher.await.unwrap();
    assert!(
        max_seen <= 5,
        "saw {max_seen} server connections for a pool of 5"
    );
    let c = proxy::connect(&server).await;
    let total: i64 = c
        .query_one("SELECT count(*) FROM hits", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(total, 1000);
    assert!(db_connections(cluster, "many") <= 5);
    server.stop().await;
}

async fn show(c: &tokio_postgres::Client, name: &str) -> String {
    let rows = c.simple_query(&format!("SHOW {name}")).await.unwrap();
    rows.iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap()
}

#[tokio::test]
async fn session_parameters_stay_with_their_client() {
    let cluster = PgCluster::shared();
    let server = proxy::start(cluster, "", "pool_size = 1").await;
    let base = proxy::conn_str(&server, APP_USER, APP_PASSWORD, APP_DB);
    let a = proxy::connect_str(&format!(
        "{base} application_name=alpha options='-c statement_timeout=1234'"
    ))
    .await
    .unwrap();
    let b = proxy::connect_str(&format!("{base} application_name=beta"))
        .await
        .unwrap();
    a.batch_execute("SET TIME ZONE 'UTC'; SET search_path TO a_schema, public")
        .await
        .unwrap();
    b.batch_execute("SET timezone = 'Asia/Tokyo'")
        .await
        .unwrap();
    for _ in 0..3 {
        assert_eq!(show(&a, "application_name").await, "alpha");
        assert_eq!(show(&b, "application_name").await, "beta");
        assert_eq!(show(&a, "timezone").await, "UTC");
        assert_eq!(show(&b, "timezone").await, "Asia/Tokyo");
        assert_eq!(show(&a, "search_path").await, "a_schema, public");
        assert_eq!(show(&b, "search_path").await, "\"$user\", public");
        assert_eq!(show(&a, "statement_timeout").await, "1234ms");
        assert_eq!(show(&b, "statement_timeout").await, "0");
    }
    // A SET inside a rolled-back transaction does not stick; RESET goes back to startup values.
    b.batch_execute("BEGIN; SET search_path TO nowhere; ROLLBACK")
        .await
        .unwrap();
    assert_eq!(show(&a, "search_path").await, "a_schema, public");
    assert_eq!(show(&b, "search_path").await, "\"$user\", public");
    a.batch_execute("RESET ALL").await.unwrap();
    assert_eq!(show(&b, "timezone").await, "Asia/Tokyo");
    assert_eq!(show(&a, "statement_timeout").await, "1234ms");
    assert_eq!(show(&a, "application_name").await, "alpha");
    server.stop().await;
}

#[tokio::test]
async fn client_disconnect_mid_transaction_releases_locks() {
    let cluster = PgCluster::shared();
    let server = proxy::start(cluster, "", "pool_size = 2").await;
    let setup = proxy::connect(&server).await;
    setup
        .batch_execute("DROP TABLE IF EXISTS locked; CREATE TABLE locked (id int)")
        .await
        .unwrap();
    let holder = proxy::connect(&server).await;
    holder
        .batch_execute(
            "BEGIN; LOCK TABLE locked IN ACCESS EXCLUSIVE MODE; INSERT INTO locked VALUES (1)",
        )
        .await
        .unwrap();
    drop(holder); // the socket closes mid-transaction
    let start = Instant::now();
    setup
        .batch_execute("SET lock_timeout = '5s'; LOCK TABLE locked IN ACCESS EXCLUSIVE MODE; RESET lock_timeout")
        .await
        .expect("the lock was released");
    assert!(start.elapsed() < Duration::from_secs(5));
    let n: i64 = setup
        .query_one("SELECT count(*) FROM locked", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "the abandoned insert was rolled back");
    server.stop().await;
}

#[tokio::test]
async fn cancel_reaches_the_running_query() {
    let cluster = PgCluster::shared();
    let server = proxy::start(cluster, "", "pool_size = 3").await;
    let c = proxy::connect(&server).await;
    proxy::sleep_then_cancel(&c, Duration::from_millis(500)).await;
    c.simple_query("SELECT 1")
        .await
        .expect("usable after cancel");
    server.stop().await;
}

#[tokio::test]
async fn pool_exhaustion_is_a_clear_error_not_a_hang_and_logins_go_on() {
    let cluster = PgCluster::shared();
    // Primary only: with routing, the read could use the replica's pool instead.
    let server = proxy::start(
        cluster,
        "checkout_timeout_ms = 500",
        "pool_size = 1\nrouting = \"primary_only\"",
    )
    .await;
    let holder = proxy::connect(&server).await;
    let waiter = proxy::connect(&server).await;
    holder.batch_execute("BEGIN; SELECT 1").await.unwrap();
    // The only server is busy: a login with settings seen before still succeeds at once (a
    // client that connects per transaction must not wait for a server to log in).
    let started = Instant::now();
    let late = proxy::connect(&server).await;
    assert!(started.elapsed() < Duration::from_millis(400));
    let started = Instant::now();
    let e = waiter
        .simple_query("SELECT 1")
        .await
        .err()
        .expect("pool exhausted");
    assert_eq!(sqlstate(&e).as_deref(), Some("53300"), "{e}");
    assert!(proxy::message(&e).contains("pool is exhausted"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(3));
    holder.batch_execute("COMMIT").await.unwrap();
    waiter
        .simple_query("SELECT 1")
        .await
        .expect("works once a connection is free");
    late.simple_query("SELECT 1")
        .await
        .expect("the late login too");
    server.stop().await;
}

#[tokio::test]
async fn waiting_clients_get_returned_and_freed_connections_at_once() {
    let cluster = PgCluster::shared();
    let server = proxy::start(
        cluster,
        "checkout_timeout_ms = 20000",
        "pool_size = 1\nrouting = \"primary_only\"",
    )
    .await;
    let conn = proxy::conn_str(&server, APP_USER, APP_PASSWORD, "app");
    let wait_for_one = |sql: &'static str| {
        let conn = conn.clone();
        tokio::spawn(async move {
            // Timed from the start: the login itself checks out a connection, so the wait
            // may happen there or at the query.
            let started = Instant::now();
            let c = proxy::connect_str(&conn).await.expect("connect");
            c.simple_query(sql).await.expect("served after waiting");
            started.elapsed()
        })
    };
    // Handed over: the holder commits while another client waits for the only connection.
    let holder = proxy::connect(&server).await;
    holder.batch_execute("BEGIN; SELECT 1").await.unwrap();
    let waiter = wait_for_one("SELECT 2");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "the waiter must wait for the holder");
    holder.batch_execute("COMMIT").await.unwrap();
    let waited = waiter.await.unwrap();
    assert!(
        waited >= Duration::from_millis(300),
        "it did wait ({waited:?})"
    );
    assert!(
        waited < Duration::from_secs(5),
        "handed over after {waited:?}"
    );
    // Freed: the holder vanishes mid-transaction, its connection is closed, and the waiter
    // opens a new one instead of waiting out the checkout timeout.
    holder.batch_execute("BEGIN; SELECT 1").await.unwrap();
    let waiter = wait_for_one("SELECT 3");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "the waiter must wait for the holder");
    drop(holder);
    let waited = waiter.await.unwrap();
    assert!(
        waited < Duration::from_secs(5),
        "slot freed after {waited:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn session_mode_resets_connection_between_clients() {
    let cluster = PgCluster::shared();
    let server = proxy::start(cluster, "", "pool_size = 1\npool_mode = \"session\"").await;
    let a = proxy::connect(&server).await;
    a.batch_execute("CREATE TEMP TABLE mine (x int); SET work_mem = '7MB'")
        .await
        .unwrap();
    let pid_a: i32 = a
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    drop(a);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let b = proxy::connect(&server).await;
    let pid_b: i32 = b
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(pid_a, pid_b, "the one server connection was reused");
    assert_eq!(show(&b, "work_mem").await, "4MB");
    let e = b
        .simple_query("SELECT * FROM mine")
        .await
        .err()
        .expect("temp table is gone");
    assert_eq!(sqlstate(&e).as_deref(), Some("42P01"));
    server.stop().await;
}

#[tokio::test]
async fn terminated_server_connection_is_not_reused() {
    let cluster = PgCluster::shared();
    let server = proxy::start(cluster, "", "pool_size = 1\nrouting = \"primary_only\"").await;
    let c = proxy::connect(&server).await;
    let pid: i32 = c
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    cluster
        .primary
        .psql(&format!("SELECT pg_terminate_backend({pid})"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid2: i32 = c
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("fresh connection")
        .get(0);
    assert_ne!(pid, pid2);
    server.stop().await;
}

#[tokio::test]
async fn errors_inside_transactions_behave_like_postgres() {
    let cluster = PgCluster::shared();
    let server = proxy::start(cluster, "", "pool_size = 2").await;
    let c = proxy::connect(&server).await;
    c.batch_execute("BEGIN").await.unwrap();
    let e = c.simple_query("SELECT 1/0").await.err().unwrap();
    assert_eq!(sqlstate(&e).as_deref(), Some("22012"));
    let e = c.simple_query("SELECT 1").await.err().unwrap();
    assert_eq!(sqlstate(&e).as_deref(), Some("25P02"));
    c.batch_execute("ROLLBACK").await.unwrap();
    c.simple_query("SELECT 1").await.unwrap();
    // Multi-statement strings.
    let msgs = c
        .simple_query("SELECT 1; SELECT 2, 3; SELECT 'x'")
        .await
        .unwrap();
    let rows = msgs
        .iter()
        .filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
        .count();
    assert_eq!(rows, 3);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_tells_idle_and_busy_clients_and_ends() {
    shutdown_tells_clients("").await;
}

/// In session mode a client between transactions holds its server connection: it waits in
/// the attached loop, not the idle one, and must be told as well.
#[tokio::test]
async fn shutdown_tells_session_mode_clients_between_transactions() {
    shutdown_tells_clients("pool_mode = \"session\"").await;
}

async fn shutdown_tells_clients(extra_db: &str) {
    let cluster = PgCluster::shared();
    let server = proxy::start(cluster, "", extra_db).await;
    let mut idle = common::raw::Raw::login(server.addr, APP_USER, APP_PASSWORD, APP_DB).await;
    let mut used = common::raw::Raw::login(server.addr, APP_USER, APP_PASSWORD, APP_DB).await;
    used.send(&common::raw::query("SELECT 1")).await;
    assert!(common::raw::tags(&used.until_ready().await).ends_with('Z'));
    tokio::time::timeout(Duration::from_secs(10), server.stop())
        .await
        .expect("shutdown finishes while clients are idle");
    for r in [&mut idle, &mut used] {
        let m = r.recv().await.expect("a message before the close");
        assert_eq!(m.tag, b'E');
        assert_eq!(m.field(b'C').as_deref(), Some("57P01"));
        assert!(r.recv().await.is_none(), "then the connection is closed");
    }
}
