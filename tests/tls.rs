//! TLS on both sides, with certificates made by the test (rcgen): psql in every sslmode,
//! `mode = "require"`, client certificates, PostgreSQL 17's direct TLS (ALPN), and every
//! `server_tls` mode against a PostgreSQL started with `ssl = on`, including `verify-full`
//! refusing a server whose certificate names another host while other databases are served.

mod common;

use common::cluster::*;
use common::proxy::{self, sqlstate};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use switchyard::app::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_postgres::NoTls;

/// A certificate authority that signs leaf certificates.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A leaf certificate and its key, PEM.
struct Leaf {
    cert: String,
    key: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        Ca {
            issuer: CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    fn server(&self, names: &[&str]) -> Leaf {
        self.leaf(names, "server", ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate whose common name is `user`.
    fn client(&self, user: &str) -> Leaf {
        self.leaf(&[], user, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn leaf(&self, names: &[&str], cn: &str, usage: ExtendedKeyUsagePurpose) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut p = CertificateParams::new(names).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![usage];
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

/// Writes `text` to `dir/name` (mode 0600: libpq refuses a key others can read).
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "switchyard-tls-{tag}-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(7);
    h.finish()
}

/// psql with a libpq connection string; trimmed stdout, or stderr as the error.
fn psql(conninfo: &str, sql: &str) -> Result<String, String> {
    let mut c = Command::new(pg_bin().join("psql"));
    for (k, _) in std::env::vars() {
        if k.starts_with("PG") {
            c.env_remove(k);
        }
    }
    let out = c
        .args([
            "-X",
            "-A",
            "-t",
            "-w",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            conninfo,
            "-c",
            sql,
        ])
        .env("PGPASSWORD", APP_PASSWORD)
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("spawn psql: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// libpq options that present `leaf` as the client certificate (files written to `dir`).
fn cert_args(dir: &Path, leaf: &Leaf, tag: &str) -> String {
    let c = write(dir, &format!("{tag}.crt"), &leaf.cert);
    let k = write(dir, &format!("{tag}.key"), &leaf.key);
    format!(
        "sslmode=require sslcert={} sslkey={}",
        c.display(),
        k.display()
    )
}

fn conninfo(server: &Server, extra: &str) -> String {
    format!(
        "host=127.0.0.1 port={} user={APP_USER} dbname={APP_DB} {extra}",
        server.addr.port()
    )
}

/// Switchyard in front of the shared cluster with `[tls]` set as given.
async fn start_with_tls(dir: &Path, ca: &Ca, tls_extra: &str) -> Server {
    let leaf = ca.server(&["localhost", "127.0.0.1"]);
    let cert = write(dir, "switchyard.crt", &leaf.cert);
    let key = write(dir, "switchyard.key", &leaf.key);
    let top = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n{tls_extra}\n",
        cert.display(),
        key.display()
    );
    proxy::start(PgCluster::shared(), &top, "").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_in_every_sslmode() {
    let dir = temp_dir("modes");
    let ca = Ca::new("switchyard test ca");
    let ca_file = write(&dir, "ca.crt", &ca.pem());
    let server = start_with_tls(&dir, &ca, "").await;
    let root = format!("sslrootcert={}", ca_file.display());
    for (mode, encrypted) in [
        ("disable", false),
        ("prefer", true),
        ("require", true),
        ("verify-ca", true),
        ("verify-full", true),
    ] {
        let info = conninfo(&server, &format!("sslmode={mode} {root}"));
        let out = tokio::task::block_in_place(|| psql(&info, "\\conninfo"))
            .unwrap_or_else(|e| panic!("sslmode={mode}: {e}"));
        assert_eq!(
            out.contains("SSL connection"),
            encrypted,
            "sslmode={mode}: {out}"
        );
        let one = tokio::task::block_in_place(|| psql(&info, "SELECT 40 + 2")).unwrap();
        assert_eq!(one, "42", "sslmode={mode}");
    }
    // SCRAM-SHA-256-PLUS: libpq's channel_binding=require needs it (and TLS).
    let bound = conninfo(
        &server,
        &format!("sslmode=verify-full {root} channel_binding=require"),
    );
    assert_eq!(
        tokio::task::block_in_place(|| psql(&bound, "SELECT 7")).unwrap(),
        "7"
    );
    let unbound = conninfo(&server, "sslmode=disable channel_binding=require");
    assert!(tokio::task::block_in_place(|| psql(&unbound, "SELECT 7")).is_err());
    // verify-full checks the name: "localhost" is in the certificate, a wrong CA is not.
    let other_ca = write(&dir, "other.crt", &Ca::new("someone else").pem());
    let info = format!(
        "host=localhost port={} user={APP_USER} dbname={APP_DB} sslmode=verify-full {root}",
        server.addr.port()
    );
    tokio::task::block_in_place(|| psql(&info, "SELECT 1")).expect("localhost is named");
    let wrong = conninfo(
        &server,
        &format!("sslmode=verify-ca sslrootcert={}", other_ca.display()),
    );
    let err = tokio::task::block_in_place(|| psql(&wrong, "SELECT 1")).unwrap_err();
    assert!(err.contains("certificate verify failed"), "{err}");
    // Plain clients still work with mode = "prefer".
    let c = proxy::connect(&server).await;
    c.simple_query("SELECT 1").await.unwrap();
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_mode_refuses_plaintext_logins() {
    let dir = temp_dir("require");
    let ca = Ca::new("switchyard test ca");
    let server = start_with_tls(&dir, &ca, "mode = \"require\"").await;
    let plain = proxy::connect_str(&proxy::conn_str(&server, APP_USER, APP_PASSWORD, APP_DB))
        .await
        .map(|_| ())
        .expect_err("plaintext refused");
    assert_eq!(sqlstate(&plain).as_deref(), Some("28000"), "{plain}");
    assert!(
        proxy::message(&plain).contains("TLS is required"),
        "{plain}"
    );
    let info = conninfo(&server, "sslmode=disable");
    let err = tokio::task::block_in_place(|| psql(&info, "SELECT 1")).unwrap_err();
    assert!(err.contains("TLS is required"), "{err}");
    let info = conninfo(&server, "sslmode=require");
    let one = tokio::task::block_in_place(|| psql(&info, "SELECT 1")).unwrap();
    assert_eq!(one, "1");
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_checked_when_a_ca_is_set() {
    let dir = temp_dir("clientcert");
    let ca = Ca::new("switchyard test ca");
    let clients = Ca::new("client ca");
    let clients_file = write(&dir, "clients.crt", &clients.pem());
    let server = start_with_tls(&dir, &ca, &format!("ca = \"{}\"", clients_file.display())).await;
    let good = clients.client(APP_USER);
    let bad = Ca::new("not the client ca").client(APP_USER);
    let files = |leaf: &Leaf, tag: &str| cert_args(&dir, leaf, tag);
    let with_good = conninfo(&server, &files(&good, "good"));
    let with_bad = conninfo(&server, &files(&bad, "bad"));
    let without = conninfo(&server, "sslmode=require");
    assert_eq!(
        tokio::task::block_in_place(|| psql(&with_good, "SELECT 1")).unwrap(),
        "1"
    );
    // libpq reports the failed handshake in words that vary with the TLS version.
    let refused = tokio::task::block_in_place(|| psql(&with_bad, "SELECT 1"));
    assert!(
        refused.is_err(),
        "a certificate from another CA: {refused:?}"
    );
    assert_eq!(
        tokio::task::block_in_place(|| psql(&without, "SELECT 1")).unwrap(),
        "1",
        "no certificate: still logs in with its password"
    );
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cert_method_logs_in_by_the_certificates_common_name() {
    let dir = temp_dir("certmethod");
    let ca = Ca::new("switchyard test ca");
    let clients = Ca::new("client ca");
    let clients_file = write(&dir, "clients.crt", &clients.pem());
    let extra = format!(
        "ca = \"{}\"\n[[hba]]\ntype = \"hostssl\"\nuser = \"{APP_USER}\"\naddress = \"127.0.0.1/32\"\n\
         method = \"cert\"\n",
        clients_file.display()
    );
    let server = start_with_tls(&dir, &ca, &extra).await;
    let files = |leaf: &Leaf, tag: &str| cert_args(&dir, leaf, tag);
    let mine = conninfo(&server, &files(&clients.client(APP_USER), "mine"));
    let theirs = conninfo(&server, &files(&clients.client("somebody"), "theirs"));
    let none = conninfo(&server, "sslmode=require");
    // No password is asked: psql runs with a wrong one in PGPASSWORD and still logs in.
    let out = tokio::task::block_in_place(|| {
        psql(&format!("{mine} password=wrong"), "SELECT current_user")
    });
    assert_eq!(out.unwrap(), APP_USER);
    let err = tokio::task::block_in_place(|| psql(&theirs, "SELECT 1")).unwrap_err();
    assert!(err.contains("certificate authentication failed"), "{err}");
    let err = tokio::task::block_in_place(|| psql(&none, "SELECT 1")).unwrap_err();
    assert!(err.contains("no client certificate"), "{err}");
    // Without TLS no rule matches.
    let err =
        tokio::task::block_in_place(|| psql(&conninfo(&server, "sslmode=disable"), "SELECT 1"))
            .unwrap_err();
    assert!(err.contains("no [[hba]] rule"), "{err}");
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A raw TLS client (as PostgreSQL 17's `sslnegotiation=direct`): TLS from the first byte.
async fn direct_tls(
    server: &Server,
    ca_pem: &str,
    alpn: Option<&[u8]>,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.into_iter().map(|a| a.to_vec()).collect();
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake")
}

fn startup_message() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&196_608u32.to_be_bytes());
    for (k, v) in [("user", APP_USER), ("database", APP_DB)] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    msg
}

#[tokio::test]
async fn direct_tls_needs_alpn_postgresql() {
    let dir = temp_dir("direct");
    let ca = Ca::new("switchyard test ca");
    let server = start_with_tls(&dir, &ca, "").await;

    let mut s = direct_tls(&server, &ca.pem(), Some(b"postgresql")).await;
    s.write_all(&startup_message()).await.unwrap();
    let mut tag = [0u8; 1];
    s.read_exact(&mut tag).await.unwrap();
    assert_eq!(
        tag[0], b'R',
        "an authentication request follows the direct handshake"
    );

    let mut s = direct_tls(&server, &ca.pem(), None).await;
    let mut reply = Vec::new();
    let _ =
        tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut reply)).await;
    assert_eq!(reply.first(), Some(&b'E'), "{reply:?}");
    assert!(
        String::from_utf8_lossy(&reply).contains("ALPN"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    // Others are still served.
    let c = proxy::connect(&server).await;
    c.simple_query("SELECT 1").await.unwrap();
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether the server connection behind `db` uses TLS, as the server sees it.
async fn server_side_ssl(server: &Server, db: &str) -> Result<String, tokio_postgres::Error> {
    let (c, conn) =
        tokio_postgres::connect(&proxy::conn_str(server, APP_USER, APP_PASSWORD, db), NoTls)
            .await?;
    tokio::spawn(conn);
    let row = c
        .query_one(
            "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls_modes_against_a_tls_postgres() {
    let dir = temp_dir("server");
    let cluster = PgCluster::start(0);
    let db_ca = Ca::new("database ca");
    // The server's certificate names "localhost" and a name that is not ours, not 127.0.0.1.
    let leaf = db_ca.server(&["localhost", "db.invalid"]);
    cluster.primary.enable_ssl(&leaf.cert, &leaf.key);
    let ca_file = write(&dir, "db-ca.crt", &db_ca.pem());
    let port = cluster.primary.port;
    let db = |name: &str, host: &str, mode: &str| {
        format!(
            "[databases.{name}]\nhosts = [\"{host}:{port}\"]\ndbname = \"{APP_DB}\"\n\
             server_tls = \"{mode}\"\nserver_ca = \"{}\"\nprimary_wait_timeout_ms = 300\n\
             health_check_interval_ms = 200\n",
            ca_file.display()
        )
    };
    let text = format!(
        "listen = \"127.0.0.1:0\"\n[[users]]\nname = \"{APP_USER}\"\npassword = \"{APP_PASSWORD}\"\n\
         {}{}{}{}{}{}",
        db("off", "127.0.0.1", "disable"),
        db("pref", "127.0.0.1", "prefer"),
        db("req", "127.0.0.1", "require"),
        db("ca", "127.0.0.1", "verify-ca"),
        db("full", "localhost", "verify-full"),
        db("wrongname", "127.0.0.1", "verify-full"),
    );
    let server = proxy::start_with(&text).await;
    for (name, want) in [
        ("off", "false"),
        ("pref", "true"),
        ("req", "true"),
        ("ca", "true"),
        ("full", "true"),
    ] {
        let ssl = server_side_ssl(&server, name)
            .await
            .unwrap_or_else(|e| panic!("database {name}: {e}"));
        assert_eq!(ssl, want, "database {name}");
    }
    // The certificate does not name 127.0.0.1: that database is not served, with 08006.
    let err = server_side_ssl(&server, "wrongname").await.unwrap_err();
    assert_eq!(sqlstate(&err).as_deref(), Some("08006"), "{err}");
    let msg = proxy::message(&err);
    assert!(msg.contains("TLS") && msg.contains("certificate"), "{msg}");
    // ... while the others still are.
    assert_eq!(server_side_ssl(&server, "full").await.unwrap(), "true");
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn server_tls_require_fails_against_a_plaintext_server() {
    let cluster = PgCluster::shared();
    let server = proxy::start(
        cluster,
        "",
        "server_tls = \"require\"\nprimary_wait_timeout_ms = 300",
    )
    .await;
    let err = proxy::connect_str(&proxy::conn_str(&server, APP_USER, APP_PASSWORD, APP_DB))
        .await
        .map(|_| ())
        .expect_err("no TLS on the server");
    assert_eq!(sqlstate(&err).as_deref(), Some("08006"), "{err}");
    assert!(
        proxy::message(&err).contains("does not accept TLS"),
        "{err}"
    );
    server.stop().await;
}
