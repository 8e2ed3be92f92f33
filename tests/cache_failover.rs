//! The result cache across a failover: the primary is killed and the replica promoted; the
//! cache drops every entry, its change stream restarts on the new primary, and it refills.

mod common;

use common::cache_util::*;
use common::cluster::{PgCluster, APP_DB};
use common::proxy;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_flushes_the_cache_and_it_refills_from_the_new_primary() {
    let cluster = PgCluster::start(1);
    table(&cluster, "cache_fo");
    let extra = format!("health_check_interval_ms = 100\nban_time_ms = 500\nprimary_wait_timeout_ms = 10000\n{CACHE_ON}");
    let server = proxy::start(&cluster, "", &extra).await;
    let cache = serving(&server).await;
    let c = proxy::connect(&server).await;
    let q = "SELECT v FROM cache_fo WHERE id = 1";
    assert_eq!(until_hit(&cache, &c, q).await, "0");
    let flushes = cache.stats.cache.flushes.get();

    tokio::task::block_in_place(|| cluster.primary.kill());
    tokio::task::block_in_place(|| cluster.replicas[0].promote());
    let t0 = Instant::now();
    while cache.stats.cache.flushes.get() == flushes {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the cache was not flushed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t0 = Instant::now();
    loop {
        if let Ok(rows) = c
            .simple_query("UPDATE cache_fo SET v = 9 WHERE id = 1")
            .await
        {
            if !rows.is_empty() && cache.is_serving() {
                break;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "writes did not resume"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        until_hit(&cache, &c, q).await,
        "9",
        "refilled from the new primary"
    );
    let new_primary = &cluster.replicas[0];
    assert_eq!(
        new_primary.psql_super(APP_DB, "SELECT v FROM cache_fo WHERE id = 1"),
        "9"
    );
}
