//! Client authentication through Switchyard: SCRAM (default) and md5, wrong passwords,
//! unknown users and databases, and the listener serving others after each failure.

#![allow(clippy::err_expect)]

mod common;

use common::cluster::*;
use common::proxy::{self, sqlstate};
use common::raw::Raw;

#[tokio::test]
async fn scram_login_and_failures() {
    let cluster = PgCluster::shared();
    let server = proxy::start(cluster, "", "").await;

    let c = proxy::connect(&server).await;
    let row = c
        .query_one("SELECT current_user::text, 1 + 1", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "app");
    assert_eq!(row.get::<_, i32>(1), 2);

    let e = proxy::connect_as(&server, APP_USER, "wrong", APP_DB)
        .await
        .err()
        .expect("wrong password fails");
    assert_eq!(sqlstate(&e).as_deref(), Some("28P01"), "{e}");
    assert!(
        proxy::message(&e).contains("password authentication failed for user \"app\""),
        "{e}"
    );

    let e = proxy::connect_as(&server, "nobody", "x", APP_DB)
        .await
        .err()
        .expect("unknown user fails");
    assert_eq!(sqlstate(&e).as_deref(), Some("28P01"), "{e}");

    let e = proxy::connect_as(&server, APP_USER, APP_PASSWORD, "nodb")
        .await
        .err()
        .expect("unknown db fails");
    assert_eq!(sqlstate(&e).as_deref(), Some("3D000"), "{e}");
    assert!(
        proxy::message(&e).contains("database \"nodb\" does not exist"),
        "{e}"
    );

    // Still serving.
    let c2 = proxy::connect(&server).await;
    c2.simple_query("SELECT 1").await.unwrap();
    drop(c);
    server.stop().await;
}

#[tokio::test]
async fn md5_method_and_server_side_md5_and_trust() {
    let cluster = PgCluster::shared();
    let server = proxy::start(cluster, "auth_method = \"md5\"", "").await;
    // md5user: client md5 to Switchyard, md5 to the server.
    let c = proxy::connect_as(&server, MD5_USER, MD5_PASSWORD, APP_DB)
        .await
        .unwrap();
    let u: String = c
        .query_one("SELECT current_user::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(u, MD5_USER);
    let e = proxy::connect_as(&server, MD5_USER, "nope", APP_DB)
        .await
        .err()
        .unwrap();
    assert_eq!(sqlstate(&e).as_deref(), Some("28P01"));
    // app: md5 to Switchyard, SCRAM to the server.
    let c = proxy::connect_as(&server, APP_USER, APP_PASSWORD, APP_DB)
        .await
        .unwrap();
    c.simple_query("SELECT 1").await.unwrap();
    // trustuser: the server trusts it.
    let c = proxy::connect_as(&server, TRUST_USER, "unused_by_trust", APP_DB)
        .await
        .unwrap();
    let u: String = c
        .query_one("SELECT current_user::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(u, TRUST_USER);
    server.stop().await;
}

#[tokio::test]
async fn scram_verifier_in_config_authenticates_clients() {
    let cluster = PgCluster::shared();
    let verifier = cluster
        .primary
        .psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'app'");
    assert!(verifier.starts_with("SCRAM-SHA-256$"));
    // A SCRAM verifier lets clients in; the server login needs a password it does not have,
    // so use the trust user's database access to show the client side alone.
    let text = proxy::config_text(cluster, "", "").replace(
        &format!("name = \"{TRUST_USER}\"\npassword = \"unused_by_trust\""),
        &format!("name = \"{TRUST_USER}\"\npassword = \"{verifier}\""),
    );
    let server = proxy::start_with(&text).await;
    let c = proxy::connect_as(&server, TRUST_USER, APP_PASSWORD, APP_DB)
        .await
        .unwrap();
    c.simple_query("SELECT 1").await.unwrap();
    let e = proxy::connect_as(&server, TRUST_USER, "bad", APP_DB)
        .await
        .err()
        .unwrap();
    assert_eq!(sqlstate(&e).as_deref(), Some("28P01"));
    server.stop().await;
}

#[tokio::test]
async fn ssl_and_gss_requests_are_refused_with_n() {
    let cluster = PgCluster::shared();
    let server = proxy::start(cluster, "", "").await;
    for code in [80877103u32, 80877104] {
        let mut r = Raw::connect(server.addr).await;
        let mut p = 8u32.to_be_bytes().to_vec();
        p.extend_from_slice(&code.to_be_bytes());
        r.send(&p).await;
        let mut b = [0u8; 1];
        use tokio::io::AsyncReadExt;
        r.stream.read_exact(&mut b).await.unwrap();
        assert_eq!(b[0], b'N');
    }
    // sslmode=prefer falls back to plaintext.
    let s = format!(
        "{} sslmode=prefer",
        proxy::conn_str(&server, APP_USER, APP_PASSWORD, APP_DB)
    );
    let c = proxy::connect_str(&s).await.unwrap();
    c.simple_query("SELECT 1").await.unwrap();
    server.stop().await;
}
