//! The result cache kept coherent: hits need no server, writes through Switchyard are read
//! back (10,000 times, never stale), writes made directly on the primary or through a
//! second instance are seen within a second (wal mode, test_decoding and pgoutput), local
//! mode sees them after ttl_ms, and the extended protocol is cached like the simple one.

mod common;

use common::cache_util::*;
use common::cluster::{PgCluster, APP_DB};
use common::proxy;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_writes_are_seen_within_a_second_and_hits_need_no_free_server() {
    let cluster = PgCluster::shared();
    table(cluster, "cache_direct");
    let server = proxy::start(
        cluster,
        "checkout_timeout_ms = 3000",
        &format!("pool_size = 1\n{CACHE_ON}"),
    )
    .await;
    let cache = serving(&server).await;
    assert!(
        cache.is_wal_mode(),
        "app is a superuser and wal_level is logical"
    );
    let c = proxy::connect(&server).await;
    let q = "SELECT v FROM cache_direct WHERE id = 1";
    assert_eq!(until_hit(&cache, &c, q).await, "0");
    cluster
        .primary
        .psql_super(APP_DB, "UPDATE cache_direct SET v = 7 WHERE id = 1");
    seen_within(&c, q, "7", Duration::from_secs(1)).await;
    assert!(cache.stats.cache.invalidations_wal.get() > 0);
    assert_eq!(until_hit(&cache, &c, q).await, "7");

    // Every server of the pool busy (pool_size = 1 on each host): a hit still answers.
    let busy_primary = proxy::connect(&server).await;
    let busy_replica = proxy::connect(&server).await;
    busy_primary.simple_query("BEGIN").await.expect("begin");
    busy_replica
        .simple_query("BEGIN READ ONLY")
        .await
        .expect("begin");
    busy_primary
        .simple_query("SELECT 1")
        .await
        .expect("in transaction");
    busy_replica
        .simple_query("SELECT 1")
        .await
        .expect("in transaction");
    let before = hits(&cache);
    assert_eq!(value(&c, q).await, "7");
    assert_eq!(hits(&cache), before + 1, "answered from the cache");
    busy_primary.simple_query("COMMIT").await.expect("commit");
    busy_replica.simple_query("COMMIT").await.expect("commit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_switchyard_are_read_back_ten_thousand_times() {
    let cluster = PgCluster::shared();
    table(cluster, "cache_ryw");
    table(cluster, "cache_ryw_other");
    let server = proxy::start(cluster, "", CACHE_ON).await;
    let cache = serving(&server).await;
    let c = proxy::connect(&server).await;
    let (mut stale, hits_before) = (0, hits(&cache));
    for i in 1..=10_000 {
        let v = value(
            &c,
            &format!("UPDATE cache_ryw SET v = {i} WHERE id = 1 RETURNING v"),
        )
        .await;
        assert_eq!(v, i.to_string());
        for _ in 0..2 {
            if value(&c, "SELECT v FROM cache_ryw WHERE id = 1").await != i.to_string() {
                stale += 1;
            }
        }
        // A table nobody writes comes from the cache meanwhile.
        assert_eq!(
            value(&c, "SELECT v FROM cache_ryw_other WHERE id = 2").await,
            "0"
        );
    }
    assert_eq!(stale, 0, "reads after the client's own writes were stale");
    assert!(hits(&cache) > hits_before, "the loop never hit the cache");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_and_pgoutput_keep_the_first_coherent() {
    let cluster = PgCluster::shared();
    table(cluster, "cache_pair");
    cluster
        .primary
        .psql_super(APP_DB, "DROP PUBLICATION IF EXISTS cache_pub");
    cluster
        .primary
        .psql_super(APP_DB, "CREATE PUBLICATION cache_pub FOR TABLE cache_pair");
    let first = proxy::start(cluster, "", CACHE_ON).await;
    let second = proxy::start(
        cluster,
        "",
        &format!("{CACHE_ON}publication = \"cache_pub\"\n"),
    )
    .await;
    let (c1, c2) = (proxy::connect(&first).await, proxy::connect(&second).await);
    let (cache1, cache2) = (serving(&first).await, serving(&second).await);
    let q = "SELECT v FROM cache_pair WHERE id = 3";
    until_hit(&cache1, &c1, q).await;
    until_hit(&cache2, &c2, q).await;
    value(&c2, "UPDATE cache_pair SET v = 42 WHERE id = 3").await;
    seen_within(&c1, q, "42", Duration::from_secs(1)).await;
    // And the other way: the pgoutput instance sees a write through the first.
    value(&c1, "UPDATE cache_pair SET v = 43 WHERE id = 3").await;
    seen_within(&c2, q, "43", Duration::from_secs(1)).await;
    cluster.primary.psql_super(APP_DB, "TRUNCATE cache_pair");
    seen_within(&c2, q, "", Duration::from_secs(1)).await;
    seen_within(&c1, q, "", Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_mode_sees_direct_writes_after_ttl_and_its_own_at_once() {
    let cluster = PgCluster::shared();
    table(cluster, "cache_local");
    let extra = format!("{CACHE_ON}invalidation = \"local\"\nttl_ms = 1500\n");
    let server = proxy::start(cluster, "", &extra).await;
    let cache = serving(&server).await;
    assert!(!cache.is_wal_mode());
    let c = proxy::connect(&server).await;
    let q = "SELECT v FROM cache_local WHERE id = 4";
    until_hit(&cache, &c, q).await;
    cluster
        .primary
        .psql_super(APP_DB, "UPDATE cache_local SET v = 5 WHERE id = 4");
    let written = Instant::now();
    seen_within(&c, q, "5", Duration::from_secs(4)).await;
    assert!(
        written.elapsed() >= Duration::from_millis(500),
        "local mode cannot see a direct write this soon: was it cached?"
    );
    value(&c, "UPDATE cache_local SET v = 6 WHERE id = 4").await;
    assert_eq!(
        value(&c, q).await,
        "6",
        "a write through this instance is seen at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_extended_protocol_is_cached_with_named_and_unnamed_statements() {
    let cluster = PgCluster::shared();
    table(cluster, "cache_ext");
    cluster
        .primary
        .psql_super(APP_DB, "UPDATE cache_ext SET v = id * 10");
    cluster.wait_replicas_caught_up();
    let server = proxy::start(cluster, "", CACHE_ON).await;
    let cache = serving(&server).await;
    let c = proxy::connect(&server).await;
    let named = c
        .prepare("SELECT v FROM cache_ext WHERE id = $1")
        .await
        .expect("prepare");
    let unnamed = "SELECT v, id FROM cache_ext WHERE id = $1";
    let t0 = Instant::now();
    let before = hits(&cache);
    while hits(&cache) < before + 4 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "extended executions never hit"
        );
        for id in [1i32, 2] {
            let row = c.query_one(&named, &[&id]).await.expect("named");
            assert_eq!(row.get::<_, i32>(0), id * 10, "named, id {id}");
            let ty = [tokio_postgres::types::Type::INT4];
            let row = c
                .query_typed(unnamed, &[(&id, ty[0].clone())])
                .await
                .expect("unnamed");
            assert_eq!(
                (row[0].get::<_, i32>(0), row[0].get::<_, i32>(1)),
                (id * 10, id)
            );
        }
    }
    c.execute("UPDATE cache_ext SET v = 0 WHERE id = $1", &[&1i32])
        .await
        .expect("update");
    assert_eq!(
        c.query_one(&named, &[&1i32])
            .await
            .expect("named")
            .get::<_, i32>(0),
        0
    );
}
