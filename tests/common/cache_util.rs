//! Helpers for the result cache tests: the database's cache, waiting for it to serve,
//! first values of simple queries, test tables.

#![allow(dead_code)]

use super::cluster::{PgCluster, APP_DB};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchyard::app::Server;
use switchyard::cache::ResultCache;
use tokio_postgres::SimpleQueryMessage;

pub const CACHE_ON: &str = "[databases.app.cache]\nenabled = true\n";

pub fn cache_of(server: &Server) -> Arc<ResultCache> {
    server
        .app
        .cluster(APP_DB)
        .and_then(|c| c.cache.clone())
        .expect("the cache is on")
}

/// Waits until the cache serves (catalog read, stream started).
pub async fn serving(server: &Server) -> Arc<ResultCache> {
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

/// The first column of every row of a simple query, joined with ",".
pub async fn value(c: &tokio_postgres::Client, sql: &str) -> String {
    let rows = c.simple_query(sql).await.expect("query");
    rows.iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("NULL").to_string()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub fn hits(cache: &ResultCache) -> u64 {
    cache.stats.cache.hits.get()
}

pub fn stores(cache: &ResultCache) -> u64 {
    cache.stats.cache.stores.get()
}

/// Runs `sql` until a run is answered from the cache (panics after 5 s); returns the value.
pub async fn until_hit(cache: &ResultCache, c: &tokio_postgres::Client, sql: &str) -> String {
    let t0 = Instant::now();
    loop {
        let before = hits(cache);
        let v = value(c, sql).await;
        if hits(cache) > before {
            return v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "{sql} never came from the cache"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A table `name (id int PRIMARY KEY, v int)` with ids 1..=10 at v = 0, on every node.
pub fn table(cluster: &PgCluster, name: &str) {
    let p = &cluster.primary;
    p.psql_super(APP_DB, &format!("DROP TABLE IF EXISTS {name}"));
    p.psql_super(
        APP_DB,
        &format!("CREATE TABLE {name} (id int PRIMARY KEY, v int)"),
    );
    p.psql_super(
        APP_DB,
        &format!("INSERT INTO {name} SELECT g, 0 FROM generate_series(1, 10) g"),
    );
    cluster.wait_replicas_caught_up();
}

/// Polls `sql` through `c` until it reads `want` (panics after `within`).
pub async fn seen_within(c: &tokio_postgres::Client, sql: &str, want: &str, within: Duration) {
    let t0 = Instant::now();
    loop {
        let got = value(c, sql).await;
        if got == want {
            return;
        }
        assert!(
            t0.elapsed() < within,
            "{sql}: still {got:?}, want {want:?} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
