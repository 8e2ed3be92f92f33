//! Changing a running Switchyard from its console: RELOAD of the config file (a database
//! added and a pool resized under pgbench with no failed transaction; an invalid file
//! changing nothing), PAUSE and RESUME, RECONNECT, KILL, and who may run them.

#![allow(clippy::err_expect)]

mod common;

use common::cluster::*;
use common::proxy::{self, sqlstate};
use std::path::PathBuf;
use std::time::Duration;
use switchyard::app::{App, Server};
use switchyard::config::Config;
use tokio_postgres::{Client, SimpleQueryMessage};

const CONSOLE: &str = "admin_users = [\"app\"]\nstats_users = [\"trustuser\"]";

/// Writes the config for `cluster` to a file (mode 600) and starts Switchyard from it.
async fn start_from_file(dir: &std::path::Path, text: &str) -> (Server, PathBuf) {
    let path = dir.join("switchyard.toml");
    write_config(&path, text);
    let config = Config::load(&path).expect("config");
    let app = App::new(config).expect("app");
    app.set_config_path(path.clone());
    let server = Server::start(app, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("listens");
    (server, path)
}

fn write_config(path: &std::path::Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sy-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The value of `col` in the row of SHOW DATABASES named `name`.
async fn database_field(c: &Client, name: &str, col: &str) -> Option<String> {
    let msgs = c.simple_query("SHOW DATABASES").await.unwrap();
    msgs.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) if r.get("name") == Some(name) => r.get(col).map(str::to_string),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_adds_a_database_and_resizes_a_pool_under_pgbench() {
    let cluster = PgCluster::shared();
    tokio::task::block_in_place(|| {
        let _ = cluster.primary.psql("SELECT 1");
    });
    proxy::pgbench(cluster.primary.port, &["-i", "-s", "1", "-q"]).await;
    let dir = temp_dir("reload");
    let base = proxy::config_text(cluster, CONSOLE, "pool_size = 2");
    let (server, path) = start_from_file(&dir, &base).await;
    let console = proxy::connect_as(&server, APP_USER, APP_PASSWORD, "switchyard")
        .await
        .expect("console");
    let port = server.addr.port();
    let bench = tokio::spawn(async move {
        proxy::pgbench(port, &["-n", "-S", "-c", "4", "-j", "2", "-T", "4"]).await
    });
    tokio::time::sleep(Duration::from_millis(1000)).await;

    // Valid: app's pool grows to 4, app2 appears.
    let resized = base.replace("pool_size = 2", "pool_size = 4");
    write_config(
        &path,
        &format!(
            "{resized}\n[databases.app2]\nhosts = [\"{}\"]\ndbname = \"app\"\n",
            cluster.primary.addr()
        ),
    );
    console.simple_query("RELOAD").await.expect("reload");
    assert_eq!(
        database_field(&console, "app", "pool_size")
            .await
            .as_deref(),
        Some("4")
    );
    assert!(database_field(&console, "app2", "name").await.is_some());
    let c2 = proxy::connect_as(&server, APP_USER, APP_PASSWORD, "app2")
        .await
        .expect("app2");
    c2.simple_query("SELECT 1").await.unwrap();

    // Invalid: nothing applied, the error names the line.
    write_config(&path, &format!("{resized}\npool_sise = 3\n"));
    let e = console
        .simple_query("RELOAD")
        .await
        .err()
        .expect("invalid file");
    assert_eq!(sqlstate(&e).as_deref(), Some("F0000"), "{e}");
    assert!(proxy::message(&e).contains("line"), "{e}");
    assert!(
        database_field(&console, "app2", "name").await.is_some(),
        "app2 stays"
    );
    assert_eq!(
        database_field(&console, "app", "pool_size")
            .await
            .as_deref(),
        Some("4")
    );

    let out = bench.await.expect("pgbench task");
    assert!(out.contains("number of failed transactions: 0"), "{out}");
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_new_transactions_until_resume_and_kill_disconnects() {
    let cluster = PgCluster::shared();
    let server = proxy::start(cluster, CONSOLE, "routing = \"primary_only\"").await;
    let console = proxy::connect_as(&server, APP_USER, APP_PASSWORD, "switchyard")
        .await
        .expect("console");
    let a = proxy::connect(&server).await;
    // PAUSE waits for the transaction in flight.
    a.batch_execute("BEGIN; SELECT 1").await.unwrap();
    let pause = tokio::spawn(async move {
        console.simple_query("PAUSE app").await.expect("pause");
        console
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !pause.is_finished(),
        "PAUSE returned with a transaction in flight"
    );
    a.batch_execute("COMMIT").await.unwrap();
    let console = tokio::time::timeout(Duration::from_secs(5), pause)
        .await
        .expect("PAUSE returns once the transaction ended")
        .unwrap();
    // New transactions wait.
    let held = tokio::spawn(async move { a.simple_query("SELECT 1").await.map(|_| a) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!held.is_finished(), "a transaction ran while paused");
    console.simple_query("RESUME app").await.expect("resume");
    let a = tokio::time::timeout(Duration::from_secs(5), held)
        .await
        .expect("runs after RESUME")
        .unwrap()
        .unwrap();
    console.simple_query("RECONNECT").await.expect("reconnect");
    a.simple_query("SELECT 1")
        .await
        .expect("served after RECONNECT");

    // A stats user may not; KILL disconnects the database's clients and pauses it.
    let s = proxy::connect_as(&server, TRUST_USER, "unused_by_trust", "switchyard")
        .await
        .expect("stats user");
    let e = s
        .simple_query("PAUSE")
        .await
        .err()
        .expect("not for stats users");
    assert_eq!(sqlstate(&e).as_deref(), Some("42501"), "{e}");
    let e = console
        .simple_query("PAUSE nodb")
        .await
        .err()
        .expect("unknown db");
    assert_eq!(sqlstate(&e).as_deref(), Some("3D000"), "{e}");
    console.simple_query("KILL app").await.expect("kill");
    // The idle client is let go at once, not when it next speaks: KILL wakes its session.
    let woken = tokio::time::timeout(Duration::from_secs(5), async {
        while !a.is_closed() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    assert!(woken.await.is_ok(), "an idle killed client is disconnected");
    let e = tokio::time::timeout(Duration::from_secs(5), a.simple_query("SELECT 1"))
        .await
        .expect("the killed client is told")
        .err()
        .expect("killed");
    assert!(
        e.is_closed() || sqlstate(&e).as_deref() == Some("57P01"),
        "{e}"
    );
    console.simple_query("RESUME app").await.expect("resume");
    let b = proxy::connect(&server).await;
    b.simple_query("SELECT 1")
        .await
        .expect("served after RESUME");
    server.stop().await;
}
