//! The result cache against real servers: hits without a server, invalidation by writes
//! through Switchyard, by writes made directly on the primary (wal mode) and by a second
//! instance, what is never cached, keys that keep users and settings apart, the size
//! limits, and the flush on failover.

mod common;

use common::cluster::{PgCluster, APP_DB};
use common::proxy;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchyard::app::Server;
use switchyard::cache::ResultCache;
use tokio_postgres::SimpleQueryMessage;

const CACHE_ON: &str = "[databases.app.cache]\nenabled = true\n";

fn cache_of(server: &Server) -> Arc<ResultCache> {
    server
        .app
        .cluster(APP_DB)
        .and_then(|c| c.cache.clone())
        .expect("the cache is on")
}

/// Waits until the cache serves (catalog read, stream started).
async fn serving(server: &Server) -> Arc<ResultCache> {
    let cache = cache_of(server);
    let t0 = Instant::now();
    while !cache.is_serving() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the cache never started serving"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cache
}

/// The first column of the first row of a simple query.
async fn value(c: &tokio_postgres::Client, sql: &str) -> String {
    let rows = c.simple_query(sql).await.expect("query");
    rows.iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("NULL").to_string()),
            _ => None,
        })
        .unwrap_or_default()
}

fn hits(cache: &ResultCache) -> u64 {
    cache.stats.cache.hits.get()
}

fn setup(cluster: &PgCluster, table: &str) {
    let p = &cluster.primary;
    p.psql_super(APP_DB, &format!("DROP TABLE IF EXISTS {table}"));
    p.psql_super(
        APP_DB,
        &format!("CREATE TABLE {table} (id int PRIMARY KEY, v int)"),
    );
    p.psql_super(
        APP_DB,
        &format!("INSERT INTO {table} SELECT g, 0 FROM generate_series(1, 10) g"),
    );
    cluster.wait_replicas_caught_up();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_need_no_server_and_direct_writes_invalidate_through_the_wal() {
    let cluster = PgCluster::shared();
    setup(cluster, "cache_basic");
    let server = proxy::start(cluster, "", CACHE_ON).await;
    let cache = serving(&server).await;
    assert!(
        cache.is_wal_mode(),
        "app is a superuser and wal_level is logical"
    );
    let c = proxy::connect(&server).await;
    let q = "SELECT v FROM cache_basic WHERE id = 1";
    assert_eq!(value(&c, q).await, "0");
    let t0 = Instant::now();
    while hits(&cache) == 0 {
        assert!(t0.elapsed() < Duration::from_secs(5), "never a hit");
        assert_eq!(value(&c, q).await, "0");
    }
    // A write made directly on the primary is seen through the cache within 1 s.
    cluster
        .primary
        .psql_super(APP_DB, "UPDATE cache_basic SET v = 7 WHERE id = 1");
    let t0 = Instant::now();
    loop {
        if value(&c, q).await == "7" {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "a direct write was not seen within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(cache.stats.cache.invalidations_wal.get() > 0);
}
