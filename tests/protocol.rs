//! Protocol paths through Switchyard: extended protocol with unnamed statements, COPY both
//! ways, a 1,000,000-row result, notices, and malformed input (garbage bytes, oversized
//! length prefixes) answered with an error and a closed socket while others keep working.

#![allow(clippy::err_expect)]

mod common;

use bytes::Bytes;
use common::cluster::*;
use common::proxy;
use common::raw::{self, Raw};
use futures_util::{SinkExt, StreamExt, TryStreamExt};
use tokio_postgres::types::Type;

#[tokio::test]
async fn extended_protocol_unnamed_statements() {
    let cluster = PgCluster::shared();
    let server = proxy::start(cluster, "", "pool_size = 2").await;
    let c = proxy::connect(&server).await;
    for i in 0..20i32 {
        let rows = c
            .query_typed(
                "SELECT $1::int4 + 1, $2::text",
                &[(&i, Type::INT4), (&"v", Type::TEXT)],
            )
            .await
            .unwrap();
        assert_eq!(rows[0].get::<_, i32>(0), i + 1);
        assert_eq!(rows[0].get::<_, &str>(1), "v");
    }
    // Raw: Parse/Bind/Describe/Execute/Sync in one write, twice pipelined.
    let mut r = Raw::login(server.addr, APP_USER, APP_PASSWORD, APP_DB).await;
    let one = [
        raw::parse("", "SELECT $1::int * 2"),
        raw::bind("", "", &[Some("21")]),
        raw::describe_portal(""),
        raw::execute(""),
        raw::sync(),
    ];
    let mut both = raw::batch(&one);
    both.extend(raw::batch(&one));
    r.send(&both).await;
    for _ in 0..2 {
        let msgs = r.until_ready().await;
        assert_eq!(raw::tags(&msgs), "12TDCZ");
        assert_eq!(&msgs[3].body[6..], b"42");
    }
    // An error in the extended protocol skips to Sync and the session goes on.
    r.send(&raw::batch(&[
        raw::parse("", "SELECT 1/0"),
        raw::bind("", "", &[]),
        raw::execute(""),
        raw::sync(),
    ]))
    .await;
    let msgs = r.until_ready().await;
    assert_eq!(
        raw::tags(&msgs),
        "1EZ",
        "the error comes at Bind, as from Postgres"
    );
    assert_eq!(msgs[1].field(b'C').as_deref(), Some("22012"));
    server.stop().await;
}

#[tokio::test]
async fn copy_in_and_out() {
    let cluster = PgCluster::shared();
    let server = proxy::start(cluster, "", "pool_size = 2").await;
    let c = proxy::connect(&server).await;
    c.batch_execute("DROP TABLE IF EXISTS copied; CREATE TABLE copied (id int, name text)")
        .await
        .unwrap();
    let sink = c.copy_in("COPY copied FROM STDIN").await.unwrap();
    futures_util::pin_mut!(sink);
    for chunk in 0..100 {
        let mut data = String::new();
        for i in 0..1000 {
            let id = chunk * 1000 + i;
            data.push_str(&format!("{id}\tname {id}\n"));
        }
        sink.send(Bytes::from(data)).await.unwrap();
    }
    let n = sink.finish().await.unwrap();
    assert_eq!(n, 100_000);
    let out = c
        .copy_out("COPY (SELECT * FROM copied ORDER BY id) TO STDOUT")
        .await
        .unwrap();
    let chunks: Vec<Bytes> = out.try_collect().await.unwrap();
    let text: Vec<u8> = chunks.concat();
    let lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len(), 100_000);
    assert_eq!(lines[99_999], b"99999\tname 99999");
    // A failed COPY leaves the session usable.
    let sink = c
        .copy_in::<_, Bytes>("COPY copied FROM STDIN")
        .await
        .unwrap();
    futures_util::pin_mut!(sink);
    sink.send(Bytes::from_static(b"not-a-number\tx\n"))
        .await
        .unwrap();
    assert!(sink.finish().await.is_err());
    c.simple_query("SELECT 1").await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn million_row_result_streams() {
    let cluster = PgCluster::shared();
    let server = proxy::start(cluster, "", "pool_size = 2").await;
    let c = proxy::connect(&server).await;
    let stream = c
        .query_raw(
            "SELECT g, repeat('x', 20) FROM generate_series(1, 1000000) g",
            std::iter::empty::<i32>(),
        )
        .await
        .unwrap();
    futures_util::pin_mut!(stream);
    let mut n = 0u64;
    let mut sum = 0i64;
    while let Some(row) = stream.next().await {
        let row = row.unwrap();
        sum += row.get::<_, i32>(0) as i64;
        n += 1;
    }
    assert_eq!(n, 1_000_000);
    assert_eq!(sum, 500_000_500_000);
    server.stop().await;
}

#[tokio::test]
async fn notices_reach_the_client() {
    let cluster = PgCluster::shared();
    let server = proxy::start(cluster, "", "").await;
    let mut r = Raw::login(server.addr, APP_USER, APP_PASSWORD, APP_DB).await;
    r.send(&raw::query(
        "DO $$BEGIN RAISE NOTICE 'hello from plpgsql'; END$$",
    ))
    .await;
    let msgs = r.until_ready().await;
    let notice = msgs
        .iter()
        .find(|m| m.tag == b'N')
        .expect("a NoticeResponse");
    assert_eq!(notice.field(b'M').as_deref(), Some("hello from plpgsql"));
    server.stop().await;
}

async fn expect_error_then_close(r: &mut Raw, code: &str) {
    let m = r.recv().await.expect("an ErrorResponse");
    assert_eq!(m.tag, b'E', "got {:?}", m.tag as char);
    assert_eq!(m.field(b'C').as_deref(), Some(code), "{:?}", m.field(b'M'));
    assert_eq!(m.field(b'S').as_deref(), Some("FATAL"));
    assert!(r.recv().await.is_none(), "socket closed after the error");
}

#[tokio::test]
async fn a_login_that_takes_too_long_is_cancelled_as_postgres_does() {
    let cluster = PgCluster::shared();
    let server = proxy::start(cluster, "client_login_timeout_ms = 300", "").await;
    // Half a startup packet, then nothing.
    let mut r = Raw::connect(server.addr).await;
    r.send(&[0, 0, 0, 40, 0, 3]).await;
    let started = std::time::Instant::now();
    expect_error_then_close(&mut r, "57014").await;
    assert!(started.elapsed() >= std::time::Duration::from_millis(250));
    // Others still log in.
    let c = proxy::connect(&server).await;
    c.simple_query("SELECT 1").await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn malformed_input_gets_an_error_and_a_closed_socket() {
    let cluster = PgCluster::shared();
    let server = proxy::start(cluster, "max_message_size = 1048576", "").await;
    let bystander = proxy::connect(&server).await;

    // Garbage instead of a startup packet.
    let mut r = Raw::connect(server.addr).await;
    r.send(&[0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8])
        .await;
    expect_error_then_close(&mut r, "08P01").await;

    // Garbage after login: an unknown message type.
    let mut r = Raw::login(server.addr, APP_USER, APP_PASSWORD, APP_DB).await;
    r.send(&[b'!', 0, 0, 0, 8, 1, 2, 3, 4]).await;
    expect_error_then_close(&mut r, "08P01").await;

    // An oversized length prefix, with or without a server attached.
    let mut r = Raw::login(server.addr, APP_USER, APP_PASSWORD, APP_DB).await;
    r.send(&[b'Q', 0x7f, 0xff, 0xff, 0xff, b'S']).await;
    expect_error_then_close(&mut r, "08P01").await;
    let mut r = Raw::login(server.addr, APP_USER, APP_PASSWORD, APP_DB).await;
    r.send(&raw::query("BEGIN")).await;
    r.until_ready().await;
    r.send(&[b'Q', 0x00, 0x20, 0x00, 0x00]).await;
    expect_error_then_close(&mut r, "08P01").await;

    // A length below 4.
    let mut r = Raw::login(server.addr, APP_USER, APP_PASSWORD, APP_DB).await;
    r.send(&[b'Q', 0, 0, 0, 2]).await;
    expect_error_then_close(&mut r, "08P01").await;

    // Random bytes, many times.
    for seed in 0..20u64 {
        let mut r = Raw::login(server.addr, APP_USER, APP_PASSWORD, APP_DB).await;
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let bytes: Vec<u8> = (0..64)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 56) as u8
            })
            .collect();
        r.send(&bytes).await;
        // Either an error then close, or (if the bytes happen to be valid) answers; never a hang.
        while let Some(m) = r.recv().await {
            if m.tag == b'E' && m.field(b'S').as_deref() == Some("FATAL") {
                assert!(r.recv().await.is_none());
                break;
            }
        }
    }

    // The bystander never noticed.
    let n: i32 = bystander.query_one("SELECT 7", &[]).await.unwrap().get(0);
    assert_eq!(n, 7);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_statements_in_a_loop_never_hang() {
    // Regression: a readiness shortcut once lost a wake-up between an ErrorResponse and the
    // next request, leaving a connection without an answer.
    let cluster = PgCluster::shared();
    let server = proxy::start(cluster, "", "pool_size = 3").await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let conn = proxy::conn_str(&server, APP_USER, APP_PASSWORD, APP_DB);
        tasks.push(tokio::spawn(async move {
            let c = proxy::connect_str(&conn).await.unwrap();
            for _ in 0..300 {
                let e = c
                    .query_typed("SELECT 1/0", &[])
                    .await
                    .expect_err("division by zero");
                assert_eq!(proxy::sqlstate(&e).as_deref(), Some("22012"));
            }
        }));
    }
    let all = async {
        for t in tasks {
            t.await.unwrap();
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), all)
        .await
        .expect("no connection stopped getting answers");
    server.stop().await;
}
