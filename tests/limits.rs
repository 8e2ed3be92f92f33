//! Limits and timeouts, and running several instances: `max_client_connections` (53300),
//! `query_timeout_ms` (57014, the client keeps its connection), `idle_transaction_timeout_ms`
//! (25P03, the server connection rolled back and reused), `client_idle_timeout_ms` (57P05),
//! a listen port shared with `so_reuseport`, and JSON logs.

#![allow(clippy::err_expect)]

mod common;

use common::cluster::*;
use common::proxy::{self, sqlstate};
use std::time::Duration;
use switchyard::app::Server;
use tokio_postgres::{Client, SimpleQueryMessage};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_beyond_max_client_connections_are_refused_with_53300() {
    let cluster = PgCluster::shared();
    let server = proxy::start(cluster, "max_client_connections = 2", "").await;
    let a = proxy::connect(&server).await;
    let b = proxy::connect(&server).await;
    let e = proxy::connect_as(&server, APP_USER, APP_PASSWORD, APP_DB)
        .await
        .err()
        .expect("a third client is one too many");
    assert_eq!(sqlstate(&e).as_deref(), Some("53300"), "{e}");
    assert!(
        proxy::message(&e).contains("max_client_connections = 2"),
        "{e}"
    );
    // The others are served, and a place freed is taken again.
    a.simple_query("SELECT 1").await.unwrap();
    drop(b);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let c = proxy::connect(&server).await;
    c.simple_query("SELECT 1").await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_a_port_with_so_reuseport() {
    let cluster = PgCluster::shared();
    let text = proxy::config_text(cluster, "so_reuseport = true", "");
    let first = proxy::start_with(&text).await;
    // The second binds the very port the first was given.
    let port = first.addr.port();
    let second =
        proxy::start_with(&text.replace("127.0.0.1:0", &format!("127.0.0.1:{port}"))).await;
    assert_eq!(second.addr.port(), port);
    // The old one leaves (a rolling upgrade): new clients keep logging in on the port.
    first.stop().await;
    for _ in 0..20 {
        let c = proxy::connect_as(&second, APP_USER, APP_PASSWORD, APP_DB)
            .await
            .expect("served by the instance that stays");
        c.simple_query("SELECT 1").await.unwrap();
    }
    second.stop().await;
    // Without so_reuseport the port cannot be bound twice.
    let alone = proxy::start_with(&proxy::config_text(cluster, "", "")).await;
    let config = switchyard::config::Config::from_toml_str(&proxy::config_text(cluster, "", ""))
        .expect("config");
    let app = switchyard::app::App::new(config).expect("app");
    assert!(switchyard::app::Server::start(app, alone.addr)
        .await
        .is_err());
    alone.stop().await;
}

#[test]
fn log_format_json_writes_one_object_per_line() {
    let cluster = PgCluster::shared();
    let dir = std::env::temp_dir().join(format!("sy-json-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("switchyard.toml");
    std::fs::write(
        &config,
        proxy::config_text(cluster, "log_format = \"json\"", ""),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run switchyard");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let mut seen = Vec::new();
    while let Some(Ok(line)) = lines.next() {
        let value: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        seen.push(value);
        if line.contains("listening") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let last = seen.last().expect("a log line");
    assert_eq!(last["fields"]["message"], "listening", "{last}");
    assert!(
        last["level"].is_string() && last["timestamp"].is_string(),
        "{last}"
    );
}

/// Connects as app and keeps the connection task's result (what ended it).
async fn connect_watched(
    server: &Server,
) -> (
    Client,
    tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
) {
    let s = proxy::conn_str(server, APP_USER, APP_PASSWORD, APP_DB);
    let (client, conn) = tokio_postgres::connect(&s, tokio_postgres::NoTls)
        .await
        .expect("connect");
    (client, tokio::spawn(conn))
}

/// The SQLSTATE that ended a watched connection.
async fn ended_with(conn: tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>) -> String {
    let ended = tokio::time::timeout(Duration::from_secs(5), conn)
        .await
        .expect("the connection ends")
        .expect("task");
    let e = ended.err().expect("ended by an error");
    sqlstate(&e).unwrap_or_else(|| panic!("no SQLSTATE: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_timeout_cancels_the_statement_and_keeps_the_client() {
    let cluster = PgCluster::shared();
    let server = proxy::start(
        cluster,
        "",
        "query_timeout_ms = 300\nrouting = \"primary_only\"",
    )
    .await;
    let c = proxy::connect(&server).await;
    let started = std::time::Instant::now();
    let e = c
        .simple_query("SELECT pg_sleep(5)")
        .await
        .err()
        .expect("cancelled");
    assert_eq!(sqlstate(&e).as_deref(), Some("57014"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    // The client keeps its connection, and a statement within the limit runs.
    c.simple_query("SELECT pg_sleep(0.1)").await.unwrap();
    let left = cluster.primary.psql(
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(5)%' AND state = 'active'",
    );
    assert_eq!(left, "0", "the server statement is gone");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_transaction_timeout_disconnects_and_rolls_back() {
    let cluster = PgCluster::shared();
    cluster
        .primary
        .psql("CREATE TABLE IF NOT EXISTS idle_tx (x int)");
    let server = proxy::start(
        cluster,
        "",
        "idle_transaction_timeout_ms = 300\nrouting = \"primary_only\"",
    )
    .await;
    let (c, conn) = connect_watched(&server).await;
    c.batch_execute("BEGIN; LOCK TABLE idle_tx").await.unwrap();
    let rows = c.simple_query("SELECT pg_backend_pid()").await.unwrap();
    let pid = rows
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .expect("a pid");
    assert_eq!(ended_with(conn).await, "25P03");
    // The lock is gone, and the server connection was rolled back and kept.
    let other = proxy::connect(&server).await;
    tokio::time::timeout(
        Duration::from_secs(2),
        other.batch_execute("BEGIN; LOCK TABLE idle_tx; COMMIT"),
    )
    .await
    .expect("the lock was released")
    .unwrap();
    let state = cluster.primary.psql(&format!(
        "SELECT state FROM pg_stat_activity WHERE pid = {pid}"
    ));
    assert_eq!(
        state, "idle",
        "server connection {pid} is reused, not closed"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_idle_timeout_disconnects_idle_clients_in_both_pool_modes() {
    let cluster = PgCluster::shared();
    for mode in ["transaction", "session"] {
        let db = format!("client_idle_timeout_ms = 300\npool_mode = \"{mode}\"");
        let server = proxy::start(cluster, "", &db).await;
        let (c, conn) = connect_watched(&server).await;
        c.simple_query("SELECT 1").await.unwrap();
        assert_eq!(ended_with(conn).await, "57P05", "{mode}");
        // Counted with the errors Switchyard sends (SHOW STATS, switchyard_errors_total).
        let cl = server.app.cluster(APP_DB).expect("cluster");
        let errors = cl.stats.traffic.errors();
        assert!(
            errors.iter().any(|(class, n)| class == "57" && *n >= 1),
            "{errors:?}"
        );
        // A client that keeps busy is not disconnected.
        let busy = proxy::connect(&server).await;
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            busy.simple_query("SELECT 1")
                .await
                .expect("busy client served");
        }
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_pool_size_keeps_connections_open() {
    let cluster = PgCluster::shared();
    tokio::task::block_in_place(|| {
        let _ = cluster
            .primary
            .psql("CREATE ROLE warm_user LOGIN PASSWORD 'warm_pw'");
    });
    let text = proxy::config_text(cluster, "", "min_pool_size = 3\nrouting = \"primary_only\"")
        .replace(
            "[databases.",
            "[[users]]\nname = \"warm_user\"\npassword = \"warm_pw\"\n\n[databases.",
        );
    let server = proxy::start_with(&text).await;
    let c = proxy::connect_as(&server, "warm_user", "warm_pw", APP_DB)
        .await
        .expect("warm_user");
    c.simple_query("SELECT 1").await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let n = tokio::task::block_in_place(|| proxy::server_connections(cluster, "warm_user"));
        if n >= 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{n} connections after 5 s, want 3"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_wait_opens_a_reserve_connection() {
    let cluster = PgCluster::shared();
    let db = "pool_size = 1\nreserve_pool_size = 1\nreserve_pool_timeout_ms = 200\nrouting = \"primary_only\"";
    let server = proxy::start(cluster, "", db).await;
    let a = proxy::connect(&server).await;
    let b = proxy::connect(&server).await;
    a.batch_execute("BEGIN; SELECT 1").await.unwrap();
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(3), b.simple_query("SELECT 1"))
        .await
        .expect("served from the reserve while the pool is held")
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "no wait: {:?}",
        started.elapsed()
    );
    a.batch_execute("COMMIT").await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_db_connections_caps_a_database_across_users() {
    let cluster = PgCluster::shared();
    let db = "pool_size = 5\nmax_db_connections = 2\nrouting = \"primary_only\"";
    let server = proxy::start(cluster, "", db).await;
    let c = proxy::connect_as(&server, TRUST_USER, "unused_by_trust", APP_DB)
        .await
        .expect("trustuser");
    let a = proxy::connect(&server).await;
    let b = proxy::connect(&server).await;
    // The second takes the place of trustuser's idle connection.
    a.batch_execute("BEGIN; SELECT 1").await.unwrap();
    b.batch_execute("BEGIN; SELECT 1").await.unwrap();
    // Another user: the database's two connections are both busy, so it waits.
    let other = tokio::spawn(async move { c.simple_query("SELECT 1").await.map(|_| c) });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        !other.is_finished(),
        "a third connection was opened past the cap"
    );
    // Once one is idle, it is closed to make room for the other user.
    a.batch_execute("COMMIT").await.unwrap();
    tokio::time::timeout(Duration::from_secs(3), other)
        .await
        .expect("served once a connection was freed")
        .unwrap()
        .expect("query");
    b.batch_execute("COMMIT").await.unwrap();
    // At the cap with nothing to close, the wait ends with 53300 naming the cap.
    let (x, y) = (proxy::connect(&server).await, proxy::connect(&server).await);
    x.batch_execute("BEGIN; SELECT 1").await.unwrap();
    y.batch_execute("BEGIN; SELECT 1").await.unwrap();
    // (Its login needs no server: what the server reported to its first login is known.)
    let t = proxy::connect_as(&server, TRUST_USER, "unused_by_trust", APP_DB)
        .await
        .expect("trustuser logs in again");
    let e = t
        .simple_query("SELECT 1")
        .await
        .err()
        .expect("no room within the checkout timeout");
    assert_eq!(sqlstate(&e).as_deref(), Some("53300"), "{e}");
    assert!(proxy::message(&e).contains("max_db_connections"), "{e}");
    x.batch_execute("COMMIT").await.unwrap();
    y.batch_execute("COMMIT").await.unwrap();
    server.stop().await;
}
