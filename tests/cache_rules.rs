//! What the result cache never does: cache volatile results, mix users under row-level
//! security or sessions with different search paths, store results over max_result_bytes
//! or grow past max_bytes, or change which writes the database accepts.

mod common;

use common::cache_util::*;
use common::cluster::{PgCluster, APP_DB};
use common::proxy;
use switchyard::cache::{Reject, ResultCache};

fn rejects(cache: &ResultCache, why: Reject) -> u64 {
    cache.stats.cache.rejects[why.slot()].get()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volatile_functions_are_never_cached() {
    let cluster = PgCluster::shared();
    cluster
        .primary
        .psql_super(APP_DB, "CREATE SEQUENCE IF NOT EXISTS cache_seq");
    cluster.wait_replicas_caught_up();
    let server = proxy::start(cluster, "", CACHE_ON).await;
    let cache = serving(&server).await;
    let c = proxy::connect(&server).await;
    let stored = stores(&cache);
    for sql in [
        "SELECT now()::text",
        "SELECT random()",
        "SELECT clock_timestamp()",
        "SELECT nextval('cache_seq')",
        "SELECT txid_current()",
        "SELECT 'now'::timestamptz",
    ] {
        let first = value(&c, sql).await;
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        let second = value(&c, sql).await;
        assert_ne!(first, second, "{sql} answered twice alike");
    }
    for sql in [
        "SELECT current_user",
        "SELECT current_setting('search_path')",
    ] {
        value(&c, sql).await;
        value(&c, sql).await;
    }
    assert_eq!(stores(&cache), stored, "nothing volatile was stored");
    assert!(rejects(&cache, Reject::TimeWord) > 0);
    assert_eq!(hits(&cache), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_level_security_and_search_path_keep_entries_apart() {
    let cluster = PgCluster::shared();
    let p = &cluster.primary;
    for sql in [
        "DROP TABLE IF EXISTS cache_rls",
        "CREATE TABLE cache_rls (owner text, secret text)",
        "INSERT INTO cache_rls VALUES ('cache_u1', 'one'), ('cache_u2', 'two')",
        "ALTER TABLE cache_rls ENABLE ROW LEVEL SECURITY",
        "CREATE POLICY mine ON cache_rls USING (owner = current_user)",
        "DO $$ BEGIN CREATE ROLE cache_u1 LOGIN PASSWORD 'u1_pw'; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
        "DO $$ BEGIN CREATE ROLE cache_u2 LOGIN PASSWORD 'u2_pw'; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
        "GRANT SELECT ON cache_rls TO cache_u1, cache_u2",
        "GRANT cache_u2 TO cache_u1",
        "DROP SCHEMA IF EXISTS cache_s1 CASCADE",
        "DROP SCHEMA IF EXISTS cache_s2 CASCADE",
        "CREATE SCHEMA cache_s1",
        "CREATE SCHEMA cache_s2",
        "CREATE TABLE cache_s1.cache_sp AS SELECT 's1' AS v",
        "CREATE TABLE cache_s2.cache_sp AS SELECT 's2' AS v",
    ] {
        p.psql_super(APP_DB, sql);
    }
    cluster.wait_replicas_caught_up();
    let users = "[[users]]\nname = \"cache_u1\"\npassword = \"u1_pw\"\n\n[[users]]\nname = \"cache_u2\"\npassword = \"u2_pw\"\n";
    let server = proxy::start(cluster, users, CACHE_ON).await;
    let cache = serving(&server).await;
    let u1 = proxy::connect_as(&server, "cache_u1", "u1_pw", APP_DB)
        .await
        .expect("u1");
    let u2 = proxy::connect_as(&server, "cache_u2", "u2_pw", APP_DB)
        .await
        .expect("u2");
    let q = "SELECT secret FROM cache_rls";
    assert_eq!(until_hit(&cache, &u1, q).await, "one");
    assert_eq!(value(&u2, q).await, "two");
    assert_eq!(until_hit(&cache, &u2, q).await, "two");
    assert_eq!(value(&u1, q).await, "one");
    // SET ROLE changes whose rows the same login sees.
    value(&u1, "SET ROLE cache_u2").await;
    assert_eq!(value(&u1, q).await, "two");
    value(&u1, "RESET ROLE").await;
    assert_eq!(value(&u1, q).await, "one");

    let c = proxy::connect(&server).await;
    let q = "SELECT v FROM cache_sp";
    value(&c, "SET search_path = cache_s1").await;
    assert_eq!(until_hit(&cache, &c, q).await, "s1");
    value(&c, "SET search_path = cache_s2").await;
    assert_eq!(value(&c, q).await, "s2");
    assert_eq!(until_hit(&cache, &c, q).await, "s2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sizes_are_kept_and_tables_without_keys_still_take_writes() {
    let cluster = PgCluster::shared();
    let p = &cluster.primary;
    for sql in [
        "DROP TABLE IF EXISTS cache_big",
        "CREATE TABLE cache_big AS SELECT g AS id, repeat('x', 100) AS pad FROM generate_series(1, 2000) g",
        "DROP TABLE IF EXISTS cache_nokey",
        "CREATE TABLE cache_nokey (a int, b text)",
        "INSERT INTO cache_nokey VALUES (1, 'x'), (2, 'y')",
    ] {
        p.psql_super(APP_DB, sql);
    }
    cluster.wait_replicas_caught_up();
    let extra = format!("{CACHE_ON}max_bytes = 65536\nmax_result_bytes = 4096\n");
    let server = proxy::start(cluster, "", &extra).await;
    let cache = serving(&server).await;
    let c = proxy::connect(&server).await;
    // Over max_result_bytes: streamed through whole, never stored.
    let all = value(&c, "SELECT pad FROM cache_big").await;
    assert_eq!(all.split(',').count(), 2000);
    value(&c, "SELECT pad FROM cache_big").await;
    assert!(rejects(&cache, Reject::TooLarge) >= 2);
    // A flood of distinct queries stays within max_bytes.
    for id in 1..=2000 {
        value(&c, &format!("SELECT pad FROM cache_big WHERE id = {id}")).await;
    }
    let (bytes, entries) = cache.usage();
    assert!(bytes <= 65536, "{bytes} bytes held");
    assert!(
        entries > 10 && cache.stats.cache.evictions.get() > 0,
        "{entries} entries"
    );
    // UPDATE and DELETE on a table without a primary key or replica identity.
    value(&c, "UPDATE cache_nokey SET b = 'z' WHERE a = 1").await;
    value(&c, "DELETE FROM cache_nokey WHERE a = 2").await;
    assert_eq!(value(&c, "SELECT b FROM cache_nokey ORDER BY a").await, "z");
}
