//! Operating Switchyard: the admin console (virtual database `switchyard`, alias
//! `pgbouncer`) with each SHOW checked by its rows under known traffic, its errors and who
//! may log in; and `/metrics`, `/healthz`, `/readyz` on `metrics_listen`.

#![allow(clippy::err_expect)]

mod common;

use common::cluster::*;
use common::proxy::{self, sqlstate};
use std::collections::HashMap;
use std::time::Duration;
use switchyard::app::Server;
use tokio_postgres::{Client, SimpleQueryMessage};

/// Console users: `app` may do everything, `trustuser` SHOW only.
const CONSOLE: &str = "admin_users = [\"app\"]\nstats_users = [\"trustuser\"]\n";

async fn console(server: &Server, db: &str) -> Client {
    proxy::connect_as(server, APP_USER, APP_PASSWORD, db)
        .await
        .expect("console login")
}

/// The rows of a console command, each as column name -> value.
async fn rows(c: &Client, sql: &str) -> Vec<HashMap<String, Option<String>>> {
    let msgs = c
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    msgs.into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                r.columns()
                    .iter()
                    .enumerate()
                    .map(|(i, col)| (col.name().to_string(), r.get(i).map(str::to_string)))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

fn num(row: &HashMap<String, Option<String>>, col: &str) -> i64 {
    row.get(col)
        .cloned()
        .flatten()
        .unwrap_or_else(|| panic!("no {col} in {row:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("{col} is not a number in {row:?}"))
}

fn text<'a>(row: &'a HashMap<String, Option<String>>, col: &str) -> &'a str {
    row.get(col)
        .and_then(|v| v.as_deref())
        .unwrap_or_else(|| panic!("no {col} in {row:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_commands_report_known_traffic() {
    let cluster = PgCluster::shared();
    let server = proxy::start(
        cluster,
        CONSOLE,
        "pool_size = 1\nhealth_check_interval_ms = 100",
    )
    .await;
    let a = proxy::connect(&server).await;
    let b = proxy::connect(&server).await;
    for i in 0..10 {
        a.simple_query(&format!("SELECT {i}")).await.unwrap();
    }
    // `a` holds the primary's one connection in a transaction; `b`'s write waits for it.
    a.batch_execute("BEGIN; SELECT 1").await.unwrap();
    let waiting = tokio::spawn(async move {
        b.batch_execute("CREATE TEMP TABLE IF NOT EXISTS w (x int)")
            .await
            .map(|_| b)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let c = console(&server, "switchyard").await;
    let pools = rows(&c, "SHOW POOLS").await;
    let app = pools
        .iter()
        .find(|r| text(r, "database") == APP_DB && text(r, "user") == APP_USER)
        .expect("a pool row for app/app");
    assert_eq!(num(app, "cl_active"), 1, "{app:?}");
    assert_eq!(num(app, "cl_waiting"), 1, "{app:?}");
    assert!(num(app, "sv_active") >= 1, "{app:?}");
    assert!(
        num(app, "maxwait_us") > 0 || num(app, "maxwait") > 0,
        "{app:?}"
    );
    assert_eq!(text(app, "pool_mode"), "transaction");
    let names: Vec<&str> = vec![
        "database",
        "user",
        "cl_active",
        "cl_waiting",
        "cl_active_cancel_req",
        "cl_waiting_cancel_req",
        "sv_active",
        "sv_active_cancel",
        "sv_being_canceled",
        "sv_idle",
        "sv_used",
        "sv_tested",
        "sv_login",
        "maxwait",
        "maxwait_us",
        "pool_mode",
    ];
    assert_eq!(app.len(), names.len());

    let clients = rows(&c, "SHOW CLIENTS").await;
    assert_eq!(clients.len(), 2, "{clients:?}");
    assert!(clients.iter().any(|r| text(r, "state") == "waiting"));
    let holder = clients
        .iter()
        .find(|r| r.get("link").cloned().flatten().is_some())
        .expect("the client in a transaction is linked to its server");
    let servers = rows(&c, "SHOW SERVERS").await;
    let linked = servers
        .iter()
        .find(|r| r.get("link").cloned().flatten().as_deref() == Some(text(holder, "ptr")))
        .expect("its server links back to it");
    assert_eq!(text(linked, "state"), "active");
    assert_eq!(text(linked, "role"), "primary");
    assert_eq!(text(linked, "user"), APP_USER);

    a.batch_execute("COMMIT").await.unwrap();
    let b = waiting.await.unwrap().expect("the waiting write ran");
    b.simple_query("SELECT 1").await.unwrap();

    let stats = rows(&c, "SHOW STATS").await;
    let s = stats
        .iter()
        .find(|r| text(r, "database") == APP_DB)
        .expect("stats row");
    assert!(num(s, "total_xact_count") >= 12, "{s:?}");
    assert!(num(s, "total_query_count") >= 13, "{s:?}");
    assert!(
        num(s, "total_received") > 0 && num(s, "total_sent") > 0,
        "{s:?}"
    );
    assert!(
        num(s, "total_xact_time") > 0 && num(s, "total_query_time") > 0,
        "{s:?}"
    );
    assert!(
        num(s, "total_wait_time") >= 200_000,
        "b waited ~300 ms: {s:?}"
    );
    let totals = rows(&c, "SHOW STATS_TOTALS").await;
    let t = totals
        .iter()
        .find(|r| text(r, "database") == APP_DB)
        .expect("totals");
    assert!(num(t, "xact_count") >= num(s, "total_xact_count"));

    let hosts = rows(&c, "SHOW HOSTS").await;
    assert_eq!(hosts.len(), 2, "{hosts:?}");
    let primary = hosts
        .iter()
        .find(|r| text(r, "role") == "primary")
        .expect("primary");
    assert_eq!(num(primary, "port"), i64::from(cluster.primary.port));
    assert_eq!(text(primary, "fenced"), "f");
    assert!(
        hosts.iter().any(|r| text(r, "role") == "replica"),
        "{hosts:?}"
    );

    let dbs = rows(&c, "SHOW DATABASES").await;
    let d = dbs
        .iter()
        .find(|r| text(r, "name") == APP_DB)
        .expect("db row");
    assert_eq!(
        num(d, "port"),
        i64::from(cluster.primary.port),
        "host/port name the primary"
    );
    assert_eq!(num(d, "pool_size"), 1);

    let route = rows(&c, "SHOW ROUTE SELECT * FROM pg_class").await;
    assert_eq!(text(&route[0], "route"), "replica", "{route:?}");
    let route = rows(&c, "SHOW ROUTE INSERT INTO t VALUES (1)").await;
    assert_eq!(text(&route[0], "route"), "primary", "{route:?}");
    assert_eq!(text(&route[0], "cached"), "f");

    let config = rows(&c, "SHOW CONFIG").await;
    let key = |k: &str| {
        config
            .iter()
            .find(|r| text(r, "key") == k)
            .map(|r| text(r, "value").to_string())
    };
    assert_eq!(key("max_client_conn").as_deref(), Some("10000"));
    assert_eq!(key("admin_users").as_deref(), Some("app"));
    let changeable = |k: &str| {
        config
            .iter()
            .find(|r| text(r, "key") == k)
            .map(|r| text(r, "changeable").to_string())
    };
    assert_eq!(changeable("listen").as_deref(), Some("no"));
    assert_eq!(changeable("checkout_timeout_ms").as_deref(), Some("yes"));
    assert!(
        !format!("{config:?}").contains(APP_PASSWORD),
        "no secret in SHOW CONFIG"
    );
    let lists = rows(&c, "SHOW LISTS").await;
    assert_eq!(lists.len(), 12);
    let users = rows(&c, "show users;").await;
    assert_eq!(users.len(), 3);
    let version = rows(&c, "SHOW VERSION").await;
    assert!(text(&version[0], "version").starts_with("Switchyard "));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_errors_and_who_may_log_in() {
    let cluster = PgCluster::shared();
    let server = proxy::start(cluster, CONSOLE, "").await;
    let c = console(&server, "pgbouncer").await;
    let e = c
        .simple_query("SHOW nonsense")
        .await
        .err()
        .expect("unknown SHOW");
    assert_eq!(sqlstate(&e).as_deref(), Some("42704"), "{e}");
    let e = c
        .simple_query("DROP TABLE x")
        .await
        .err()
        .expect("unknown command");
    assert_eq!(sqlstate(&e).as_deref(), Some("42601"), "{e}");
    // The console goes on after an error.
    assert_eq!(rows(&c, "SHOW VERSION").await.len(), 1);
    // Extended protocol: refused with 0A000.
    let e = c
        .query("SHOW VERSION", &[])
        .await
        .err()
        .expect("extended protocol");
    assert_eq!(sqlstate(&e).as_deref(), Some("0A000"), "{e}");

    // A stats user may SHOW; a user in neither list may not log in.
    let s = proxy::connect_as(&server, TRUST_USER, "unused_by_trust", "switchyard")
        .await
        .expect("stats user");
    assert_eq!(rows(&s, "SHOW LISTS").await.len(), 12);
    server.stop().await;
    // A user in neither list may not log in to the console.
    let plain = proxy::start(cluster, "", "").await;
    let e = proxy::connect_as(&plain, APP_USER, APP_PASSWORD, "switchyard")
        .await
        .err()
        .expect("not a console user");
    assert_eq!(sqlstate(&e).as_deref(), Some("42501"), "{e}");
    assert!(proxy::message(&e).contains("admin_users"), "{e}");
    plain.stop().await;
}

/// GET `path` from the metrics listener: (status code, body).
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("metrics listener");
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    (status, body.to_string())
}

/// The value of `name` with the given labels in a scrape.
fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let s = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .unwrap_or_else(|| panic!("no sample {name} {labels:?}"));
    match s.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => v,
        ref other => panic!("{name}: unexpected {other:?}"),
    }
}

async fn scrape(addr: std::net::SocketAddr) -> prometheus_parse::Scrape {
    let (status, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    let lines = body.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines).expect("Prometheus text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_with_traffic_and_health_endpoints_answer() {
    let cluster = PgCluster::shared();
    let server = proxy::start(
        cluster,
        "metrics_listen = \"127.0.0.1:0\"",
        "health_check_interval_ms = 100",
    )
    .await;
    let at = server.metrics_addr.expect("metrics listener");
    assert_eq!(http_get(at, "/healthz").await.0, 200);
    let cl = server.app.cluster(APP_DB).expect("cluster");
    while cl.topology.snapshot().primary().is_none() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(http_get(at, "/readyz").await.0, 200);
    assert_eq!(http_get(at, "/nope").await.0, 404);

    let c = proxy::connect(&server).await;
    c.simple_query("SELECT 1").await.unwrap();
    let before = scrape(at).await;
    let db = [("database", APP_DB)];
    let tx0 = sample(&before, "switchyard_transactions_total", &db);
    for i in 0..20 {
        c.simple_query(&format!("SELECT {i}")).await.unwrap();
    }
    assert!(c.simple_query("SELECT 1/0").await.is_err());
    // A session adds its counts right after its reply is written: wait a moment for the last.
    let mut after = scrape(at).await;
    for _ in 0..40 {
        if sample(&after, "switchyard_transactions_total", &db) - tx0 >= 21.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        after = scrape(at).await;
    }
    let tx1 = sample(&after, "switchyard_transactions_total", &db);
    assert!(tx1 - tx0 >= 21.0, "transactions went {tx0} -> {tx1}");
    assert!(sample(&after, "switchyard_sent_bytes_total", &db) > 0.0);
    assert!(
        sample(
            &after,
            "switchyard_errors_total",
            &[("database", APP_DB), ("class", "22")]
        ) >= 1.0
    );
    assert_eq!(
        sample(
            &after,
            "switchyard_client_connections",
            &[("database", APP_DB), ("state", "idle")]
        ),
        1.0
    );
    assert!(
        sample(
            &after,
            "switchyard_routed_total",
            &[("database", APP_DB), ("target", "replica")]
        ) >= 20.0
    );
    let port = cluster.primary.port.to_string();
    let primary = after
        .samples
        .iter()
        .find(|s| s.metric == "switchyard_host_role" && s.labels.get("role") == Some("primary"))
        .expect("a primary host");
    assert!(primary
        .labels
        .get("host")
        .is_some_and(|h| h.ends_with(&port)));
    let hist = after
        .samples
        .iter()
        .find(|s| s.metric == "switchyard_query_duration_seconds")
        .expect("query duration histogram");
    match &hist.value {
        prometheus_parse::Value::Histogram(buckets) => {
            let total = buckets.last().map_or(0.0, |b| b.count);
            assert!(total >= 21.0, "{buckets:?}");
        }
        other => panic!("not a histogram: {other:?}"),
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_cache_show_route_and_metrics_report_the_result_cache() {
    let cluster = PgCluster::shared();
    cluster
        .primary
        .psql_super(APP_DB, "DROP TABLE IF EXISTS admin_cached");
    cluster
        .primary
        .psql_super(APP_DB, "CREATE TABLE admin_cached (id int PRIMARY KEY)");
    cluster.wait_replicas_caught_up();
    let top = format!("{CONSOLE}metrics_listen = \"127.0.0.1:0\"");
    let server = proxy::start(cluster, &top, "[databases.app.cache]\nenabled = true\n").await;
    let c = console(&server, "switchyard").await;
    let app = proxy::connect(&server).await;
    let t0 = std::time::Instant::now();
    loop {
        app.simple_query("SELECT id FROM admin_cached")
            .await
            .expect("read");
        let row = rows(&c, "SHOW CACHE").await.remove(0);
        if num(&row, "hits") > 0 {
            assert_eq!(text(&row, "database"), "app");
            assert_eq!(text(&row, "invalidation"), "wal");
            assert!(
                num(&row, "entries") >= 1 && num(&row, "stores") >= 1,
                "{row:?}"
            );
            break;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(10),
            "no hit: {row:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let route = rows(&c, "SHOW ROUTE SELECT id FROM admin_cached").await;
    assert_eq!(
        (text(&route[0], "cached"), text(&route[0], "cache_reason")),
        ("t", "cacheable")
    );
    let route = rows(&c, "SHOW ROUTE SELECT now() FROM admin_cached").await;
    assert_eq!(
        (text(&route[0], "cached"), text(&route[0], "cache_reason")),
        ("f", "function")
    );
    app.simple_query("SELECT random() FROM admin_cached")
        .await
        .expect("read");
    let m = scrape(server.metrics_addr.expect("metrics")).await;
    assert!(sample(&m, "switchyard_cache_hits_total", &[("database", "app")]) >= 1.0);
    assert_eq!(
        sample(&m, "switchyard_cache_serving", &[("database", "app")]),
        1.0
    );
    let rejected = [("database", "app"), ("reason", "function")];
    assert!(sample(&m, "switchyard_cache_rejects_total", &rejected) >= 1.0);
}
