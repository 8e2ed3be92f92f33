//! Tests of the access settings: `[tls]`, `server_tls` / `server_ca`, and `[[hba]]` rules
//! with their address matching.

use super::tests::{fails, parse, with_db, HEAD};
use super::*;

#[test]
fn tls_tables() {
    let text = format!(
        "{HEAD}[tls]\ncert = \"a.crt\"\nkey = \"a.key\"\nmode = \"require\"\n\
         [databases.app]\nhosts = [\"h:1\"]\nserver_tls = \"verify-full\"\nserver_ca = \"ca.crt\"\n"
    );
    let mut config = parse(&text);
    let tls = config.tls.clone().expect("[tls]");
    assert_eq!(tls.mode, ClientTlsMode::Require);
    assert_eq!(tls.ca, None);
    let db = config.database("app").unwrap();
    assert_eq!(db.server_tls, ServerTlsMode::VerifyFull);
    config.resolve_paths(std::path::Path::new("/etc/sy"));
    assert_eq!(
        config.tls.as_ref().unwrap().cert,
        std::path::Path::new("/etc/sy/a.crt")
    );
    let db = config.database("app").unwrap();
    assert_eq!(
        db.server_ca.as_deref(),
        Some(std::path::Path::new("/etc/sy/ca.crt"))
    );

    let default = parse(&with_db("hosts = [\"h:1\"]\n"));
    assert_eq!(default.tls, None);
    assert_eq!(default.databases["app"].server_tls, ServerTlsMode::Prefer);

    fails(
        &format!("{HEAD}[tls]\ncert = \"a.crt\"\n"),
        5,
        &["tls: missing required key `key`"],
    );
    let err = fails(
        &format!("{HEAD}[tls]\ncert = \"a.crt\"\nkey = \"k\"\ncrt = 1\n"),
        8,
        &["unknown key `crt` in tls"],
    );
    match err {
        ConfigError::UnknownKey { expected, .. } => {
            assert_eq!(expected, locate::TLS_KEYS.join(", "));
        }
        other => panic!("not an UnknownKey: {other:?}"),
    }
    fails(
        &format!("{HEAD}[tls]\ncert = \"a.crt\"\nkey = \"k\"\nmode = \"always\"\n"),
        8,
        &["tls.mode", "prefer", "require"],
    );
    fails(
        &with_db("hosts = [\"h:1\"]\nserver_tls = \"verify-ca\"\n"),
        7,
        &["databases.app.server_tls", "set server_ca"],
    );
    fails(
        &with_db("hosts = [\"h:1\"]\nserver_tls = \"allow\"\n"),
        7,
        &["databases.app.server_tls", "verify-full"],
    );
}

#[test]
fn hba_rules() {
    let text = format!(
        "{HEAD}[[hba]]\ntype = \"hostssl\"\ndatabase = \"app\"\naddress = \"10.0.0.0/8\"\n\
         method = \"md5\"\n[[hba]]\ntype = \"host\"\naddress = \"all\"\nmethod = \"reject\"\n\
         [databases.app]\nhosts = [\"h:1\"]\n"
    );
    let config = parse(&text);
    let r = &config.hba[0];
    assert_eq!((r.kind, r.method), (HbaType::Hostssl, HbaMethod::Md5));
    assert_eq!(
        (r.database.as_deref(), r.user.as_deref()),
        (Some("app"), None)
    );
    let ip = |s: &str| Some(s.parse::<std::net::IpAddr>().unwrap());
    assert!(r.matches(ip("10.1.2.3"), true, "app", "anyone"));
    assert!(
        !r.matches(None, true, "app", "anyone"),
        "a host rule is TCP only"
    );
    assert!(
        !r.matches(ip("10.1.2.3"), false, "app", "anyone"),
        "hostssl needs TLS"
    );
    assert!(!r.matches(ip("11.0.0.1"), true, "app", "anyone"));
    assert!(!r.matches(ip("10.1.2.3"), true, "other", "anyone"));
    assert!(
        r.matches(ip("::ffff:10.9.9.9"), true, "app", "x"),
        "IPv4-mapped IPv6"
    );
    assert_eq!(config.hba[1].address, HbaAddress::All);

    let net = |s: &str| s.parse::<HbaAddress>().unwrap();
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    assert!(net("::1/128").contains(ip("::1")));
    assert!(!net("::1/128").contains(ip("::2")));
    assert!(net("fd00::/8").contains(ip("fd12::1")));
    assert!(net("0.0.0.0/0").contains(ip("8.8.8.8")));
    assert!(net("192.168.1.7").contains(ip("192.168.1.7")));
    assert!(!net("192.168.1.7").contains(ip("192.168.1.8")));
    assert!(!net("10.0.0.0/8").contains(ip("fd00::1")));

    fails(
        &format!("{HEAD}[[hba]]\ntype = \"host\"\naddress = \"10.0.0.0/33\"\nmethod = \"md5\"\n"),
        7,
        &["hba[0].address", "0 to 32"],
    );
    fails(
        &format!("{HEAD}[[hba]]\ntype = \"host\"\naddress = \"all\"\nmethod = \"cert\"\n"),
        8,
        &["hba[0].method", "hostssl"],
    );
    fails(
        &format!("{HEAD}[[hba]]\ntype = \"hostssl\"\naddress = \"all\"\nmethod = \"cert\"\n"),
        8,
        &["hba[0].method", "[tls] ca"],
    );
    fails(
        &format!("{HEAD}[[hba]]\ntype = \"host\"\nmethod = \"md5\"\n"),
        5,
        &["hba[0]: missing required key `address`"],
    );
    let err = fails(
        &format!("{HEAD}[[hba]]\ntype = \"remote\"\naddress = \"all\"\nmethod = \"md5\"\n"),
        6,
        &["hba[0].type"],
    );
    assert!(err.to_string().contains("hostssl"), "{err}");
    let err = fails(
        &format!("{HEAD}[[hba]]\ntype = \"host\"\naddres = \"all\"\n"),
        7,
        &["unknown key `addres`"],
    );
    match err {
        ConfigError::UnknownKey { expected, .. } => {
            assert_eq!(expected, locate::HBA_KEYS.join(", "));
        }
        other => panic!("not an UnknownKey: {other:?}"),
    }
}

#[test]
fn auth_query_table() {
    let db = "[databases.app]\nhosts = [\"h:1\"]\n";
    let config = parse(&format!(
        "{HEAD}[auth_query]\nuser = \"lookup\"\npassword = \"s3cret\"\n{db}"
    ));
    let aq = config.auth_query.clone().expect("[auth_query]");
    assert_eq!(aq.user, "lookup");
    assert_eq!(aq.query, DEFAULT_AUTH_QUERY);
    assert_eq!(aq.cache_lifetime_ms, DEFAULT_AUTH_QUERY_LIFETIME_MS);
    assert!(
        !format!("{config:?}").contains("s3cret"),
        "Debug shows the password"
    );
    let custom = parse(&format!(
        "{HEAD}[auth_query]\nuser = \"l\"\npassword = \"p\"\n\
         query = \"SELECT n, s FROM my_users WHERE n = $1\"\ncache_lifetime_ms = 0\n{db}"
    ));
    let aq = custom.auth_query.expect("[auth_query]");
    assert_eq!(aq.query, "SELECT n, s FROM my_users WHERE n = $1");
    assert_eq!(aq.cache_lifetime_ms, 0);
    assert_eq!(parse(&with_db("hosts = [\"h:1\"]\n")).auth_query, None);

    fails(
        &format!("{HEAD}[auth_query]\nuser = \"l\"\n{db}"),
        5,
        &["auth_query: missing required key `password`"],
    );
    fails(
        &format!("{HEAD}[auth_query]\nuser = \"l\"\npassword = \"p\"\nquery = \"SELECT 1\"\n{db}"),
        8,
        &["auth_query.query", "$1"],
    );
    let verifier = "SCRAM-SHA-256$4096:c2FsdA==$\
        AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let err = fails(
        &format!("{HEAD}[auth_query]\nuser = \"l\"\npassword = \"{verifier}\"\n{db}"),
        7,
        &["auth_query.password", "cannot log in to a server"],
    );
    assert!(!err.to_string().contains("AAAA"), "{err}");
    let err = fails(
        &format!("{HEAD}[auth_query]\nuser = \"l\"\npasword = \"p\"\n{db}"),
        7,
        &["unknown key `pasword`"],
    );
    match err {
        ConfigError::UnknownKey { expected, .. } => {
            assert_eq!(expected, locate::AUTH_QUERY_KEYS.join(", "));
        }
        other => panic!("not an UnknownKey: {other:?}"),
    }
}

#[test]
fn unix_sockets_on_both_sides() {
    // A local rule: Unix-socket clients only, and no address.
    let text = format!(
        "{HEAD}[[hba]]\ntype = \"local\"\nmethod = \"md5\"\n[databases.app]\nhosts = [\"h:1\"]\n"
    );
    let rule = &parse(&text).hba[0];
    assert!(rule.matches(None, false, "app", "u"));
    assert!(!rule.matches(Some([127, 0, 0, 1].into()), false, "app", "u"));
    let text = format!(
        "{HEAD}[[hba]]\ntype = \"local\"\naddress = \"all\"\nmethod = \"md5\"\n\
         [databases.app]\nhosts = [\"h:1\"]\n"
    );
    fails(&text, 7, &["hba[0].address", "has no address"]);

    // listen_unix_dir, and a server given as its socket directory.
    let config = parse(&format!(
        "listen_unix_dir = \"/var/run/switchyard\"\n{HEAD}[databases.app]\n\
         hosts = [\"/var/run/postgresql:5432\", \"/tmp/pg/:5433\"]\n"
    ));
    assert_eq!(
        config.operations.listen_unix_dir.as_deref(),
        Some(std::path::Path::new("/var/run/switchyard"))
    );
    let hosts = &config.databases["app"].hosts;
    assert!(hosts[0].is_socket_dir() && hosts[0].ip().is_none());
    assert_eq!(hosts[0].to_string(), "/var/run/postgresql:5432");
    assert_eq!(hosts[1].normalized(), ("/tmp/pg".to_string(), 5433));
    let long = "/d".repeat(50);
    fails(
        &format!("listen_unix_dir = \"{long}\"\n{HEAD}[databases.app]\nhosts = [\"h:1\"]\n"),
        1,
        &["listen_unix_dir", "too long"],
    );
    fails(
        &with_db(&format!("hosts = [\"{long}:5432\"]\n")),
        6,
        &["too long for a socket path"],
    );
}
