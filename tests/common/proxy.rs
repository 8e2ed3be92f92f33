//! Runs Switchyard in-process in front of a test cluster and connects real clients to it.

use super::cluster::{
    PgCluster, APP_DB, APP_PASSWORD, APP_USER, MD5_PASSWORD, MD5_USER, TRUST_USER,
};
use std::net::SocketAddr;
use switchyard::app::App;
use switchyard::app::Server;
use switchyard::config::Config;
use tokio_postgres::{Client, NoTls};

/// Config text for `cluster`: users app (SCRAM), md5user, trustuser; database `app` over
/// every node; `extra_db` lines are appended to `[databases.app]`, `extra_top` to the top.
pub fn config_text(cluster: &PgCluster, extra_top: &str, extra_db: &str) -> String {
    let hosts: Vec<String> = cluster
        .nodes()
        .map(|n| format!("\"{}\"", n.addr()))
        .collect();
    format!(
        r#"listen = "127.0.0.1:0"
{extra_top}

[[users]]
name = "{APP_USER}"
password = "{APP_PASSWORD}"

[[users]]
name = "{MD5_USER}"
password = "{MD5_PASSWORD}"

[[users]]
name = "{TRUST_USER}"
password = "unused_by_trust"

[databases.{APP_DB}]
hosts = [{hosts}]
{extra_db}
"#,
        hosts = hosts.join(", ")
    )
}

/// Starts Switchyard for `cluster` with the given config additions.
pub async fn start(cluster: &PgCluster, extra_top: &str, extra_db: &str) -> Server {
    start_with(&config_text(cluster, extra_top, extra_db)).await
}

pub async fn start_with(text: &str) -> Server {
    // RUST_LOG=switchyard=debug shows Switchyard's logs in failing tests.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let config = Config::from_toml_str(text).expect("test config is valid");
    let listen: SocketAddr = config.listen;
    let app = App::new(config).expect("app builds");
    Server::start(app, listen)
        .await
        .expect("switchyard listens")
}

/// A libpq-style connection string to Switchyard.
pub fn conn_str(server: &Server, user: &str, password: &str, db: &str) -> String {
    format!(
        "host=127.0.0.1 port={} user={user} password={password} dbname={db} connect_timeout=10",
        server.addr.port()
    )
}

/// Connects tokio-postgres to Switchyard as `app` and drives the connection in a task.
pub async fn connect(server: &Server) -> Client {
    connect_as(server, APP_USER, APP_PASSWORD, APP_DB)
        .await
        .expect("connect through switchyard")
}

pub async fn connect_as(
    server: &Server,
    user: &str,
    password: &str,
    db: &str,
) -> Result<Client, tokio_postgres::Error> {
    connect_str(&conn_str(server, user, password, db)).await
}

pub async fn connect_str(s: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(s, NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// Runs `SELECT pg_sleep(30)` on `c` and cancels it after `after` with the client's cancel
/// token, as the driver sends it (over TCP or the Unix socket it connected through); checks
/// that the query ended with 57014 well before its sleep would have.
pub async fn sleep_then_cancel(c: &Client, after: std::time::Duration) {
    let token = c.cancel_token();
    let started = std::time::Instant::now();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(after).await;
        token.cancel_query(NoTls).await.expect("cancel sent");
    });
    let e = c
        .simple_query("SELECT pg_sleep(30)")
        .await
        .expect_err("cancelled");
    assert_eq!(sqlstate(&e).as_deref(), Some("57014"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    canceller.await.expect("canceller finished");
}

/// SQLSTATE of a tokio-postgres error, if the server (or Switchyard) sent one.
pub fn sqlstate(e: &tokio_postgres::Error) -> Option<String> {
    e.as_db_error().map(|d| d.code().code().to_string())
}

/// Number of server connections of `user` on the primary right now.
pub fn server_connections(cluster: &PgCluster, user: &str) -> usize {
    cluster
        .primary
        .psql(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = '{user}' AND pid <> pg_backend_pid()"
        ))
        .parse()
        .unwrap_or(0)
}

/// The message text of a tokio-postgres error (the database error's, when there is one).
pub fn message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => d.message().to_string(),
        None => e.to_string(),
    }
}

/// Runs the installed pgbench as `app` against 127.0.0.1:`port` (off the async runtime)
/// and returns its stdout; panics with its output if it fails.
pub async fn pgbench(port: u16, args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(super::cluster::pg_bin().join("pgbench"))
            .args(&args)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                APP_USER,
                APP_DB,
            ])
            .env("PGPASSWORD", APP_PASSWORD)
            .output()
            .expect("pgbench runs")
    })
    .await
    .expect("pgbench task");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
