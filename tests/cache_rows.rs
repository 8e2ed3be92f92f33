//! The result cache invalidated per row: a change to one row of a table with an integer
//! primary key drops the entries that read that row by key and the entries that read the
//! table otherwise (a sum), and leaves the other rows' entries; rows moved to another key,
//! deleted or inserted are seen; writes through Switchyard with binary parameters are read
//! back at once; a table whose changes do not name their rows (replica identity nothing, a
//! text key) is still invalidated whole; two texts of one shape with the key in different
//! parameters each find their own.

mod common;

use common::cache_util::*;
use common::cluster::{PgCluster, APP_DB};
use common::proxy;
use std::time::Duration;
use switchyard::cache::ResultCache;

const SECOND: Duration = Duration::from_secs(1);

/// `sql` comes from the cache on its next run (after it was a hit before).
async fn still_a_hit(cache: &ResultCache, c: &tokio_postgres::Client, sql: &str, want: &str) {
    let before = hits(cache);
    assert_eq!(value(c, sql).await, want, "{sql}");
    assert_eq!(
        hits(cache),
        before + 1,
        "{sql} was dropped by another row's change"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_change_drops_that_row_and_whole_table_reads_only() {
    let cluster = PgCluster::shared();
    table(cluster, "cache_rows_a");
    let server = proxy::start(cluster, "", CACHE_ON).await;
    let cache = serving(&server).await;
    let c = proxy::connect(&server).await;
    let q = |id: i32| format!("SELECT v FROM cache_rows_a WHERE id = {id}");
    let sum = "SELECT sum(v) FROM cache_rows_a";
    for id in [1, 2, 3, 4, 11, 12] {
        let want = if id <= 10 { "0" } else { "" };
        assert_eq!(until_hit(&cache, &c, &q(id)).await, want);
    }
    assert_eq!(until_hit(&cache, &c, sum).await, "0");

    let direct = |sql: &str| cluster.primary.psql_super(APP_DB, sql);
    direct("UPDATE cache_rows_a SET v = 5 WHERE id = 2");
    seen_within(&c, &q(2), "5", SECOND).await;
    seen_within(&c, sum, "5", SECOND).await;
    still_a_hit(&cache, &c, &q(1), "0").await;

    direct("UPDATE cache_rows_a SET id = 11 WHERE id = 3");
    seen_within(&c, &q(3), "", SECOND).await;
    seen_within(&c, &q(11), "0", SECOND).await;
    direct("DELETE FROM cache_rows_a WHERE id = 4");
    seen_within(&c, &q(4), "", SECOND).await;
    direct("INSERT INTO cache_rows_a VALUES (12, 9)");
    seen_within(&c, &q(12), "9", SECOND).await;
    seen_within(&c, sum, "14", SECOND).await;
    still_a_hit(&cache, &c, &q(1), "0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_with_binary_parameters_are_read_back_and_spare_other_rows() {
    let cluster = PgCluster::shared();
    table(cluster, "cache_rows_b");
    let server = proxy::start(cluster, "", CACHE_ON).await;
    let cache = serving(&server).await;
    // The writer's own reads wait for the change stream to pass its writes: another
    // client reads the row nobody writes.
    let c = proxy::connect(&server).await;
    let other = proxy::connect(&server).await;
    let sql = "SELECT v FROM cache_rows_b WHERE id = $1";
    let read = c.prepare(sql).await.expect("prepare");
    let other_read = other.prepare(sql).await.expect("prepare");
    let get = |id: i32| {
        let (c, read) = if id == 5 {
            (&c, &read)
        } else {
            (&other, &other_read)
        };
        async move {
            let row = c.query_one(read, &[&id]).await.expect("read");
            row.get::<_, i32>(0)
        }
    };
    let t0 = hits(&cache);
    for _ in 0..500 {
        assert_eq!(get(6).await, 0);
        if hits(&cache) > t0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(hits(&cache) > t0, "the prepared read never hit");
    let (mut stale, mut spared) = (0, 0);
    for i in 1..=500i32 {
        c.execute("UPDATE cache_rows_b SET v = $1 WHERE id = $2", &[&i, &5i32])
            .await
            .expect("update");
        if get(5).await != i {
            stale += 1;
        }
        let before = hits(&cache);
        assert_eq!(get(6).await, 0);
        spared += hits(&cache) - before;
    }
    assert_eq!(stale, 0, "reads after the client's own writes were stale");
    assert!(spared >= 450, "row 6 was a hit {spared} times of 500");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_whose_changes_do_not_name_rows_are_invalidated_whole() {
    let cluster = PgCluster::shared();
    table(cluster, "cache_rows_n");
    let p = &cluster.primary;
    p.psql_super(APP_DB, "ALTER TABLE cache_rows_n REPLICA IDENTITY NOTHING");
    p.psql_super(APP_DB, "DROP TABLE IF EXISTS cache_rows_t");
    p.psql_super(
        APP_DB,
        "CREATE TABLE cache_rows_t (id text PRIMARY KEY, v int)",
    );
    p.psql_super(APP_DB, "INSERT INTO cache_rows_t VALUES ('1', 0), ('2', 0)");
    cluster.wait_replicas_caught_up();
    let server = proxy::start(cluster, "", CACHE_ON).await;
    let cache = serving(&server).await;
    let c = proxy::connect(&server).await;
    for (t, quote) in [("cache_rows_n", ""), ("cache_rows_t", "'")] {
        let q = |id: i32| format!("SELECT v FROM {t} WHERE id = {quote}{id}{quote}");
        assert_eq!(until_hit(&cache, &c, &q(1)).await, "0");
        assert_eq!(until_hit(&cache, &c, &q(2)).await, "0");
        p.psql_super(
            APP_DB,
            &format!("DELETE FROM {t} WHERE id = {quote}2{quote}"),
        );
        seen_within(&c, &q(2), "", SECOND).await;
        let before = hits(&cache);
        assert_eq!(value(&c, &q(1)).await, "0");
        assert_eq!(
            hits(&cache),
            before,
            "{t}: row 1 was not dropped with the table"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn texts_of_one_shape_find_their_own_key_parameter() {
    let cluster = PgCluster::shared();
    table(cluster, "cache_rows_s");
    let server = proxy::start(cluster, "", CACHE_ON).await;
    let cache = serving(&server).await;
    let c = proxy::connect(&server).await;
    // One fingerprint (parameters are placeholders), the key in a different parameter.
    let a = "SELECT v FROM cache_rows_s WHERE v >= $1 AND id = $2";
    let b = "SELECT v FROM cache_rows_s WHERE v >= $2 AND id = $1";
    let int4 = tokio_postgres::types::Type::INT4;
    let run = |sql: &'static str, p1: i32, p2: i32| {
        let (c, int4) = (&c, int4.clone());
        async move {
            let rows = c
                .query_typed(sql, &[(&p1, int4.clone()), (&p2, int4)])
                .await
                .expect("query");
            rows.first().map(|r| r.get::<_, i32>(0))
        }
    };
    for (sql, p1, p2) in [(a, 0, 1), (b, 2, 0)] {
        let t0 = std::time::Instant::now();
        loop {
            let before = hits(&cache);
            assert_eq!(run(sql, p1, p2).await, Some(0));
            if hits(&cache) > before {
                break;
            }
            let st = &cache.stats.cache;
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "{sql} never hit: misses {}, stores {}",
                st.misses.get(),
                stores(&cache)
            );
        }
    }
    cluster
        .primary
        .psql_super(APP_DB, "UPDATE cache_rows_s SET v = 5 WHERE id = 2");
    let t0 = std::time::Instant::now();
    while run(b, 2, 0).await != Some(5) {
        assert!(
            t0.elapsed() < SECOND,
            "row 2 read by the second text stayed stale"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
