//! Following the cluster: a primary killed and a replica promoted while clients keep writing
//! and reading, replicas banned and unbanned, a lagging replica taken out of the read set,
//! and an old primary that comes back fenced. Each test builds its own cluster and they run
//! one at a time (they stop and promote servers).

#![allow(clippy::err_expect)]

mod common;

use common::cluster::*;
use common::proxy;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchyard::app::Server;
use switchyard::topology::{Exclusion, Role, Snapshot};
use tokio::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

const FAST: &str = "health_check_interval_ms = 100\nban_time_ms = 500";

async fn start(cluster: &PgCluster, extra: &str) -> Server {
    let wait = if extra.contains("primary_wait_timeout_ms") {
        ""
    } else {
        "primary_wait_timeout_ms = 10000"
    };
    let server = proxy::start(cluster, "", &format!("{FAST}\n{wait}\n{extra}")).await;
    wait_topology(&server, "roles discovered", |s| {
        s.primary() == Some(0) && s.hosts[1..].iter().all(|h| h.role == Role::Replica)
    })
    .await;
    server
}

fn snapshot(server: &Server) -> Arc<Snapshot> {
    server
        .app
        .cluster("app")
        .expect("cluster")
        .topology
        .snapshot()
}

async fn wait_topology(server: &Server, what: &str, f: impl Fn(&Snapshot) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = snapshot(server);
        if f(&s) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {s:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The port of the server that answered one simple-protocol read. (An extended-protocol
/// query would be two requests, prepare and execute, and with balancing that alternates
/// between two replicas the execute would always land on the same one.)
async fn port_of(c: &tokio_postgres::Client) -> u16 {
    let rows = c.simple_query("SELECT inet_server_port()").await.unwrap();
    rows.iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).and_then(|v| v.parse().ok()),
            _ => None,
        })
        .expect("a port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotion_drill_no_acknowledged_write_lost() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = PgCluster::start(2);
    cluster
        .primary
        .psql("CREATE TABLE drill (n int PRIMARY KEY)");
    cluster
        .primary
        .psql("ALTER SYSTEM SET synchronous_standby_names = 'replica1'");
    cluster
        .primary
        .psql("ALTER SYSTEM SET synchronous_commit = 'remote_apply'");
    cluster.primary.psql("SELECT pg_reload_conf()");
    cluster.wait_replicas_caught_up();
    let server = start(&cluster, "").await;
    let writer = proxy::connect(&server).await;
    let reader = proxy::connect(&server).await;
    let t0 = Instant::now();

    let write_task = tokio::spawn(async move {
        let mut acked = BTreeSet::new();
        let mut ok_times = Vec::new();
        for n in 0..400i32 {
            match writer.execute("INSERT INTO drill VALUES ($1)", &[&n]).await {
                Ok(_) => {
                    acked.insert(n);
                    ok_times.push(Instant::now());
                }
                Err(e) => {
                    let code = e.as_db_error().map(|d| d.code().code().to_string());
                    assert!(
                        matches!(
                            code.as_deref(),
                            Some("08006") | Some("57P01") | Some("25P02") | Some("40001")
                        ),
                        "unexpected write error: {e:?}"
                    );
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            if Instant::now() - t0 > Duration::from_secs(12) {
                break;
            }
        }
        (acked, ok_times)
    });
    let read_task = tokio::spawn(async move {
        let mut longest = Duration::ZERO;
        let mut failing_since: Option<Instant> = None;
        let mut reads = 0;
        while Instant::now() - t0 < Duration::from_secs(8) {
            match reader.query_one("SELECT count(*) FROM drill", &[]).await {
                Ok(_) => {
                    reads += 1;
                    if let Some(s) = failing_since.take() {
                        longest = longest.max(s.elapsed());
                    }
                }
                Err(_) => {
                    failing_since.get_or_insert_with(Instant::now);
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Some(s) = failing_since {
            longest = longest.max(s.elapsed());
        }
        (longest, reads)
    });

    tokio::time::sleep(Duration::from_secs(2)).await;
    let killed_at = Instant::now();
    tokio::task::block_in_place(|| cluster.primary.kill());
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::task::block_in_place(|| cluster.replicas[0].promote());
    let promoted_at = Instant::now();

    let (acked, ok_times) = write_task.await.unwrap();
    let (read_outage, reads) = read_task.await.unwrap();
    let first_ok_after = ok_times
        .iter()
        .find(|t| **t > promoted_at)
        .expect("writes resumed");
    let write_recovery = first_ok_after.duration_since(promoted_at);
    let write_outage = first_ok_after.duration_since(killed_at);
    eprintln!(
        "drill: write outage {} ms (recovered {} ms after promotion), longest read outage {} ms, {} reads, {} acknowledged writes",
        write_outage.as_millis(),
        write_recovery.as_millis(),
        read_outage.as_millis(),
        reads,
        acked.len()
    );
    assert!(
        write_recovery < Duration::from_secs(3),
        "writes took {write_recovery:?} after promotion"
    );
    assert!(
        read_outage <= Duration::from_millis(100),
        "reads failed for {read_outage:?}"
    );
    let s = snapshot(&server);
    assert_eq!(s.primary(), Some(1), "{s:#?}");
    // Every acknowledged write is on the new primary.
    let on_new: BTreeSet<i32> = cluster.replicas[0]
        .psql("SELECT string_agg(n::text, ',') FROM drill")
        .split(',')
        .filter_map(|v| v.parse().ok())
        .collect();
    let lost: Vec<_> = acked.difference(&on_new).collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_replica_is_banned_then_unbanned() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = PgCluster::start(2);
    let server = start(&cluster, "").await;
    let c = proxy::connect(&server).await;
    tokio::task::block_in_place(|| cluster.replicas[1].stop());
    wait_topology(&server, "replica2 out", |s| {
        s.replicas_at(0).collect::<Vec<_>>() == vec![1]
    })
    .await;
    for _ in 0..20 {
        assert_eq!(
            port_of(&c).await,
            cluster.replicas[0].port,
            "reads only on the live replica"
        );
    }
    tokio::task::block_in_place(|| cluster.replicas[1].start());
    wait_topology(&server, "replica2 back", |s| s.replicas_at(0).count() == 2).await;
    let mut seen = BTreeSet::new();
    for _ in 0..30 {
        seen.insert(port_of(&c).await);
    }
    assert!(
        seen.contains(&cluster.replicas[1].port),
        "replica2 serves reads again: {seen:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_replica_leaves_the_read_set_and_returns() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = PgCluster::start(2);
    cluster.primary.psql("CREATE TABLE filler (x text)");
    let server = start(&cluster, "max_replica_lag_bytes = 65536").await;
    let c = proxy::connect(&server).await;
    cluster.replicas[0].psql("SELECT pg_wal_replay_pause()");
    cluster
        .primary
        .psql("INSERT INTO filler SELECT repeat('x', 100) FROM generate_series(1, 5000)");
    wait_topology(&server, "replica1 lagging, replica2 caught up", |s| {
        s.hosts[1].excluded == Some(Exclusion::Lagging) && s.hosts[2].excluded.is_none()
    })
    .await;
    for _ in 0..20 {
        assert_eq!(port_of(&c).await, cluster.replicas[1].port);
    }
    cluster.replicas[0].psql("SELECT pg_wal_replay_resume()");
    wait_topology(&server, "replica1 caught up", |s| {
        s.hosts[1].excluded.is_none() && s.hosts[1].role == Role::Replica
    })
    .await;
    let mut seen = BTreeSet::new();
    for _ in 0..30 {
        seen.insert(port_of(&c).await);
    }
    assert!(seen.contains(&cluster.replicas[0].port), "{seen:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_primary_coming_back_is_fenced() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = PgCluster::start(2);
    cluster.primary.psql("CREATE TABLE marks (who text)");
    cluster.wait_replicas_caught_up();
    let server = start(&cluster, "").await;
    let c = proxy::connect(&server).await;
    tokio::task::block_in_place(|| {
        cluster.primary.stop();
        cluster.replicas[0].promote();
    });
    wait_topology(&server, "new primary", |s| s.primary() == Some(1)).await;
    tokio::task::block_in_place(|| cluster.primary.start());
    wait_topology(&server, "old primary fenced", |s| {
        s.hosts[0].role == Role::Fenced
    })
    .await;
    let cl = server.app.cluster("app").unwrap();
    assert!(cl.stats.hosts_fenced.get() >= 1);
    for i in 0..10 {
        c.execute("INSERT INTO marks VALUES ($1)", &[&format!("w{i}")])
            .await
            .unwrap();
        assert_ne!(
            port_of(&c).await,
            cluster.primary.port,
            "no reads on the fenced host"
        );
    }
    let on_old = cluster.primary.psql("SELECT count(*) FROM marks");
    assert_eq!(on_old, "0", "no writes on the fenced host");
    let on_new = cluster.replicas[0].psql("SELECT count(*) FROM marks");
    assert_eq!(on_new, "10");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_primary_reads_work_and_writes_fail_clearly() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = PgCluster::start(1);
    cluster.primary.psql("CREATE TABLE w (x int)");
    cluster.wait_replicas_caught_up();
    let server = start(&cluster, "primary_wait_timeout_ms = 800").await;
    tokio::task::block_in_place(|| cluster.primary.kill());
    wait_topology(&server, "primary down", |s| s.primary().is_none()).await;
    // A client connecting now can log in and read from the replica.
    let c = proxy::connect(&server).await;
    assert_eq!(port_of(&c).await, cluster.replicas[0].port);
    let n: i64 = c
        .query_one("SELECT count(*) FROM w", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    // A write waits for a primary, then fails with a connection-failure SQLSTATE.
    let started = Instant::now();
    let e = c
        .execute("INSERT INTO w VALUES (1)", &[])
        .await
        .expect_err("no primary");
    assert_eq!(proxy::sqlstate(&e).as_deref(), Some("08006"), "{e:?}");
    assert!(
        proxy::message(&e).contains("no primary"),
        "{}",
        proxy::message(&e)
    );
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "it waited for a primary"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // The session is still usable.
    assert_eq!(port_of(&c).await, cluster.replicas[0].port);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_leaving_while_waiting_for_a_primary_is_let_go() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = PgCluster::start(1);
    let server = start(&cluster, "primary_wait_timeout_ms = 30000").await;
    tokio::task::block_in_place(|| cluster.primary.kill());
    wait_topology(&server, "primary down", |s| s.primary().is_none()).await;
    let mut r = common::raw::Raw::login(server.addr, APP_USER, APP_PASSWORD, APP_DB).await;
    r.send(&common::raw::query("CREATE TABLE never (x int)"))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(r);
    // The session notices at once; shutdown does not wait out primary_wait_timeout_ms.
    let started = Instant::now();
    server.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stop took {:?}",
        started.elapsed()
    );
}

/// A planned switchover: PAUSE under pgbench, the primary stopped and the replica promoted,
/// RESUME once Switchyard sees the new primary. pgbench sees no error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planned_switchover_with_pause_fails_no_transaction() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = PgCluster::start(1);
    proxy::pgbench(cluster.primary.port, &["-i", "-s", "1", "-q"]).await;
    tokio::task::block_in_place(|| cluster.wait_replicas_caught_up());
    let server = proxy::start(
        &cluster,
        "admin_users = [\"app\"]",
        &format!("{FAST}\nprimary_wait_timeout_ms = 10000"),
    )
    .await;
    wait_topology(&server, "roles discovered", |s| s.primary() == Some(0)).await;
    let console = proxy::connect_as(&server, APP_USER, APP_PASSWORD, "switchyard")
        .await
        .expect("console");
    let port = server.addr.port();
    let bench = tokio::spawn(async move {
        proxy::pgbench(port, &["-n", "-c", "4", "-j", "2", "-T", "8"]).await
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    console.simple_query("PAUSE").await.expect("pause");
    tokio::task::block_in_place(|| {
        cluster.primary.stop();
        cluster.replicas[0].promote();
    });
    wait_topology(&server, "the promoted replica as primary", |s| {
        s.primary() == Some(1)
    })
    .await;
    console.simple_query("RESUME").await.expect("resume");
    let out = bench.await.expect("pgbench task");
    assert!(out.contains("number of failed transactions: 0"), "{out}");
    let tx: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("number of transactions actually processed: "))
        .and_then(|v| v.split('/').next())
        .and_then(|v| v.trim().parse().ok())
        .expect("a transaction count");
    assert!(tx > 0, "{out}");
    server.stop().await;
}
