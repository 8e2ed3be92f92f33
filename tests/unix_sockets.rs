//! Unix-domain sockets on both sides: clients through `listen_unix_dir` (tokio-postgres with
//! a socket directory, and psql -h DIR), servers given as socket directories in `hosts`. The
//! health checks find the primary and the replica over sockets, reads go to the replica and
//! writes to the primary, a cancel travels over sockets both ways, and `[[hba]]` rules of
//! type "local" apply to socket clients only.

#![allow(clippy::err_expect)]

mod common;

use common::cache_util::value;
use common::cluster::*;
use common::proxy::{self, sqlstate};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use switchyard::app::Server;
use tokio_postgres::{Client, SimpleQueryMessage};

fn cluster() -> &'static PgCluster {
    static C: OnceLock<PgCluster> = OnceLock::new();
    C.get_or_init(|| {
        let c = PgCluster::start(1);
        c.primary
            .psql("CREATE TABLE IF NOT EXISTS over_sockets (id serial PRIMARY KEY, v int)");
        c.wait_replicas_caught_up();
        c
    })
}

/// A fresh directory for Switchyard's socket (short: a socket path has at most 107 bytes).
fn socket_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sy-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("socket dir");
    dir
}

/// Switchyard on TCP and in `dir`, reaching every server through its socket directory.
async fn start(dir: &std::path::Path, extra_top: &str) -> Server {
    let c = cluster();
    let hosts: Vec<String> = c
        .nodes()
        .map(|n| format!("\"{}:{}\"", n.socket_dir().display(), n.port))
        .collect();
    let text = format!(
        r#"listen = "127.0.0.1:0"
listen_unix_dir = "{dir}"
{extra_top}

[[users]]
name = "{APP_USER}"
password = "{APP_PASSWORD}"

[databases.{APP_DB}]
hosts = [{hosts}]
health_check_interval_ms = 100
"#,
        dir = dir.display(),
        hosts = hosts.join(", ")
    );
    let server = proxy::start_with(&text).await;
    let cl = server.app.cluster(APP_DB).expect("cluster");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let snap = cl.topology.snapshot();
        if snap.primary().is_some() && snap.replicas_at(0).count() == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not discovered over sockets: {snap:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server
}

async fn connect_unix(
    dir: &std::path::Path,
    server: &Server,
) -> Result<Client, tokio_postgres::Error> {
    proxy::connect_str(&format!(
        "host={} port={} user={APP_USER} password={APP_PASSWORD} dbname={APP_DB}",
        dir.display(),
        server.addr.port()
    ))
    .await
}

#[tokio::test]
async fn clients_and_servers_over_unix_sockets() {
    let dir = socket_dir("both");
    let server = start(&dir, "admin_users = [\"app\"]").await;
    let socket = server.unix_socket.clone().expect("unix socket bound");
    assert_eq!(socket, dir.join(format!(".s.PGSQL.{}", server.addr.port())));

    let c = connect_unix(&dir, &server)
        .await
        .expect("login over the socket");
    // Server ports, read on the servers: over their sockets inet_server_port() is NULL.
    let replica_port = cluster().replicas[0].port.to_string();
    assert_eq!(
        value(&c, "SELECT current_setting('port')").await,
        replica_port,
        "a read"
    );
    assert_eq!(
        value(&c, "SELECT inet_server_port() IS NULL").await,
        "t",
        "server over a socket"
    );
    c.simple_query("INSERT INTO over_sockets (v) VALUES (1)")
        .await
        .expect("a write");
    c.simple_query("BEGIN").await.unwrap();
    c.simple_query("INSERT INTO over_sockets (v) VALUES (2)")
        .await
        .unwrap();
    let port = value(&c, "SELECT current_setting('port')").await;
    assert_eq!(
        port,
        cluster().primary.port.to_string(),
        "a write transaction"
    );
    c.simple_query("COMMIT").await.unwrap();

    // A cancel: the client's CancelRequest over Switchyard's socket, then the server's.
    proxy::sleep_then_cancel(&c, Duration::from_millis(300)).await;

    // psql, as a user would type it (off the runtime, which serves it); TCP still serves.
    let (host, port) = (dir.display().to_string(), server.addr.port().to_string());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(pg_bin().join("psql"))
            .args(["-h", &host, "-p", &port, "-U", APP_USER, "-d", APP_DB])
            .args(["-Atc", "SELECT 40 + 2"])
            .env("PGPASSWORD", APP_PASSWORD)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("psql runs")
    })
    .await
    .expect("psql task");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42", "{out:?}");
    let tcp = proxy::connect(&server).await;
    assert_eq!(value(&tcp, "SELECT 1").await, "1");

    // The console over the socket: socket clients are "unix" (as PgBouncer shows them).
    let console = proxy::connect_str(&format!(
        "host={} port={} user={APP_USER} password={APP_PASSWORD} dbname=switchyard",
        dir.display(),
        server.addr.port()
    ))
    .await
    .expect("console over the socket");
    let rows = console
        .simple_query("SHOW CLIENTS")
        .await
        .expect("SHOW CLIENTS");
    let addrs: Vec<String> = rows
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get("addr").map(str::to_string),
            _ => None,
        })
        .collect();
    assert!(addrs.iter().any(|a| a == "unix"), "{addrs:?}");
    assert!(addrs.iter().any(|a| a == "127.0.0.1"), "{addrs:?}");

    server.stop().await;
    assert!(!socket.exists(), "the socket file is removed at shutdown");
}

#[tokio::test]
async fn local_rules_apply_to_socket_clients_only() {
    let dir = socket_dir("hba");
    let rules = r#"
[[hba]]
type = "local"
user = "app"
method = "reject"

[[hba]]
type = "host"
address = "127.0.0.1/32"
method = "scram-sha-256"
"#;
    let server = start(&dir, rules).await;
    let e = connect_unix(&dir, &server)
        .await
        .err()
        .expect("refused over the socket");
    assert_eq!(sqlstate(&e).as_deref(), Some("28000"), "{e}");
    assert!(proxy::message(&e).contains("local"), "{e}");
    let tcp = proxy::connect(&server).await;
    assert_eq!(
        value(&tcp, "SELECT 1").await,
        "1",
        "TCP matches the host rule"
    );
    server.stop().await;
}
