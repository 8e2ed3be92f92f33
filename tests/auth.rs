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

/// Config with `app` configured by `app_secret`; health checks run as `md5user`.
fn config_with_app_secret(cluster: &PgCluster, app_secret: &str) -> String {
    let hosts: Vec<String> = cluster
        .nodes()
        .map(|n| format!("\"{}\"", n.addr()))
        .collect();
    format!(
        "listen = \"127.0.0.1:0\"\n[[users]]\nname = \"{APP_USER}\"\npassword = \"{app_secret}\"\n\
         [[users]]\nname = \"{MD5_USER}\"\npassword = \"{MD5_PASSWORD}\"\n\
         [databases.{APP_DB}]\nhosts = [{}]\nhealth_check_user = \"{MD5_USER}\"\n\
         primary_wait_timeout_ms = 300\n",
        hosts.join(", ")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_with_only_the_servers_scram_verifier_logs_in_to_scram_servers() {
    let cluster = PgCluster::shared();
    let verifier = tokio::task::block_in_place(|| {
        cluster.primary.psql_super(
            "postgres",
            &format!("SELECT rolpassword FROM pg_authid WHERE rolname = '{APP_USER}'"),
        )
    });
    assert!(verifier.starts_with("SCRAM-SHA-256$"), "{verifier}");
    let server = proxy::start_with(&config_with_app_secret(cluster, &verifier)).await;
    // The client's proof gives Switchyard the key that logs in to the servers.
    let c = proxy::connect(&server).await;
    let row = c.query_one("SELECT current_user::text", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), APP_USER);
    // A second client reuses what the first taught it; writes and reads both work.
    let c2 = proxy::connect(&server).await;
    c2.batch_execute("CREATE TEMP TABLE t (x int); INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    server.stop().await;

    // A verifier of the same password with another salt: the client still proves its
    // password to Switchyard, but the servers hold another verifier; the error says so.
    let other = switchyard::auth::ScramVerifier::generate(APP_PASSWORD).to_verifier_string();
    let server = proxy::start_with(&config_with_app_secret(cluster, &other)).await;
    let e = proxy::connect_str(&proxy::conn_str(&server, APP_USER, APP_PASSWORD, APP_DB))
        .await
        .err()
        .expect("the servers hold another verifier");
    assert_eq!(sqlstate(&e).as_deref(), Some("28P01"), "{e}");
    assert!(proxy::message(&e).contains("pg_authid"), "{e}");
    server.stop().await;
}

#[tokio::test]
async fn repeated_failed_logins_from_one_address_are_slowed_down() {
    let cluster = PgCluster::shared();
    let server = proxy::start(cluster, "", "").await;
    let wrong = proxy::conn_str(&server, APP_USER, "wrong", APP_DB);
    // Failures 1 to 3 wait 0, 200 and 400 ms; the fourth waits 600 ms.
    for _ in 0..3 {
        assert!(proxy::connect_str(&wrong).await.is_err());
    }
    let started = std::time::Instant::now();
    let e = proxy::connect_str(&wrong)
        .await
        .err()
        .expect("wrong password");
    assert_eq!(sqlstate(&e).as_deref(), Some("28P01"));
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(550),
        "the fourth failure came after {:?}",
        started.elapsed()
    );
    // The right password still logs in.
    let c = proxy::connect(&server).await;
    c.simple_query("SELECT 1").await.unwrap();
    server.stop().await;
}

/// The first message Switchyard answers a startup packet with.
async fn first_answer(server: &switchyard::app::Server, user: &str) -> common::raw::Msg {
    let mut r = Raw::connect(server.addr).await;
    let mut out = bytes::BytesMut::new();
    postgres_protocol::message::frontend::startup_message(
        [("user", user), ("database", APP_DB)],
        &mut out,
    )
    .unwrap();
    r.send(&out).await;
    r.recv().await.expect("an answer")
}

#[tokio::test]
async fn hba_rules_decide_who_logs_in_and_how() {
    let cluster = PgCluster::shared();
    let rules = "[[hba]]\ntype = \"host\"\nuser = \"md5user\"\naddress = \"127.0.0.1/32\"\nmethod = \"reject\"\n\
                 [[hba]]\ntype = \"host\"\nuser = \"app\"\naddress = \"10.0.0.0/8\"\nmethod = \"scram-sha-256\"\n\
                 [[hba]]\ntype = \"hostssl\"\nuser = \"all\"\naddress = \"all\"\nmethod = \"scram-sha-256\"\n\
                 [[hba]]\ntype = \"hostnossl\"\ndatabase = \"app\"\nuser = \"app\"\naddress = \"127.0.0.0/8\"\nmethod = \"md5\"\n";
    let server = proxy::start(cluster, rules, "").await;
    // app over plain TCP from 127.0.0.1: the fourth rule, md5 (code 5).
    let m = first_answer(&server, APP_USER).await;
    assert_eq!(m.tag, b'R');
    assert_eq!(
        u32::from_be_bytes(m.body[..4].try_into().unwrap()),
        5,
        "md5 asked for"
    );
    let c = proxy::connect(&server).await;
    c.simple_query("SELECT 1").await.unwrap();
    // md5user: rejected by the first rule.
    let m = first_answer(&server, MD5_USER).await;
    assert_eq!(m.field(b'C').as_deref(), Some("28000"));
    assert!(m.field(b'M').unwrap().contains("rejects"), "{m:?}");
    // trustuser: no rule matches a plain connection from here.
    let m = first_answer(&server, TRUST_USER).await;
    assert_eq!(m.field(b'C').as_deref(), Some("28000"));
    assert!(
        m.field(b'M').unwrap().contains("no [[hba]] rule matches"),
        "{m:?}"
    );
    // A wrong md5 password is still a wrong password.
    let e = proxy::connect_str(&proxy::conn_str(&server, APP_USER, "nope", APP_DB))
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

/// `[auth_query]` as PgBouncer users set it up: a SECURITY DEFINER function over pg_shadow,
/// executable by a lookup role that is not a superuser.
const LOOKUP_SETUP: &str = "\
    SET password_encryption = 'scram-sha-256';
    CREATE ROLE aq_lookup LOGIN PASSWORD 'lookup_pw';
    CREATE ROLE aq_user LOGIN PASSWORD 'aq_pw';
    CREATE FUNCTION public.sy_lookup(name text, OUT usename name, OUT passwd text)
        RETURNS record LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
        AS $$ SELECT usename, passwd FROM pg_shadow WHERE usename = name $$;
    REVOKE ALL ON FUNCTION public.sy_lookup(text) FROM public;
    GRANT EXECUTE ON FUNCTION public.sy_lookup(text) TO aq_lookup;";

fn auth_query_table(lookup_password: &str) -> String {
    format!(
        "[auth_query]\nuser = \"aq_lookup\"\npassword = \"{lookup_password}\"\n\
         query = \"SELECT * FROM public.sy_lookup($1)\"\ncache_lifetime_ms = 200\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_query_logs_in_users_that_are_not_listed() {
    let cluster = PgCluster::shared();
    tokio::task::block_in_place(|| cluster.primary.psql_super(APP_DB, LOOKUP_SETUP));
    let server = proxy::start(cluster, &auth_query_table("lookup_pw"), "").await;
    let as_user = |password: &str| proxy::conn_str(&server, "aq_user", password, APP_DB);

    // The verifier fetched from pg_shadow checks the client, and the client's proof logs in
    // to the servers (no password of aq_user is configured anywhere).
    let c = proxy::connect_str(&as_user("aq_pw"))
        .await
        .expect("aq_user");
    let row = c.query_one("SELECT current_user::text", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "aq_user");
    c.batch_execute("CREATE TEMP TABLE t (x int); INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let e = proxy::connect_str(&as_user("wrong"))
        .await
        .err()
        .expect("wrong");
    assert_eq!(sqlstate(&e).as_deref(), Some("28P01"), "{e}");
    let e = proxy::connect_as(&server, "aq_nobody", "x", APP_DB)
        .await
        .err()
        .expect("unknown user");
    assert_eq!(sqlstate(&e).as_deref(), Some("28P01"), "{e}");
    // Listed users are not looked up.
    proxy::connect(&server)
        .await
        .simple_query("SELECT 1")
        .await
        .unwrap();

    // A changed password is seen once the answer's lifetime (200 ms) is over, by the client
    // check and by the server logins of the pools.
    tokio::task::block_in_place(|| {
        cluster
            .primary
            .psql_super(APP_DB, "ALTER ROLE aq_user PASSWORD 'aq_pw2'")
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let e = proxy::connect_str(&as_user("aq_pw"))
        .await
        .err()
        .expect("old");
    assert_eq!(sqlstate(&e).as_deref(), Some("28P01"), "{e}");
    let c2 = proxy::connect_str(&as_user("aq_pw2"))
        .await
        .expect("new password");
    // Two clients at once need a second server connection, logged in with the new secret.
    let (a, b) = tokio::join!(
        c.simple_query("SELECT pg_sleep(0.2)"),
        c2.simple_query("SELECT pg_sleep(0.2)")
    );
    a.unwrap();
    b.unwrap();
    server.stop().await;

    // A lookup that cannot run: the client is told why, with the server's SQLSTATE.
    let server = proxy::start(cluster, &auth_query_table("not_it"), "").await;
    let e = proxy::connect_as(&server, "aq_user", "aq_pw2", APP_DB)
        .await
        .err()
        .expect("lookup fails");
    assert_eq!(sqlstate(&e).as_deref(), Some("28P01"), "{e}");
    assert!(proxy::message(&e).contains("auth_query"), "{e}");
    proxy::connect(&server)
        .await
        .simple_query("SELECT 1")
        .await
        .unwrap();
    server.stop().await;
}
