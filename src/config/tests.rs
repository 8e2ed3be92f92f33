//! Tests of configuration loading: defaults, every key, and the errors that name the key and
//! line.

use super::*;
use std::time::Duration;

const EXAMPLE: &str = include_str!("../../config/switchyard.toml");

pub(super) const HEAD: &str = "listen = \"127.0.0.1:6432\"\n\
                    [[users]]\nname = \"app\"\npassword = \"app_pw\"\n";
// HEAD takes lines 1-4.

pub(super) fn parse(text: &str) -> Config {
    match Config::from_toml_str(text) {
        Ok(config) => config,
        Err(err) => panic!("unexpected error: {err}\n--- config ---\n{text}"),
    }
}

/// Asserts that `text` fails with a message naming `line` and every needle.
pub(super) fn fails(text: &str, line: usize, needles: &[&str]) -> ConfigError {
    let err = match Config::from_toml_str(text) {
        Ok(_) => panic!("expected an error\n--- config ---\n{text}"),
        Err(err) => err,
    };
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("config line {line}: ")),
        "wrong line in {msg:?}, want {line}\n--- config ---\n{text}"
    );
    assert_eq!(err.line(), Some(line), "{msg}");
    for needle in needles {
        assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    }
    assert!(!msg.contains('\n'), "multi-line message {msg:?}");
    err
}

pub(super) fn with_db(db_body: &str) -> String {
    // [databases.app] is line 5, db_body starts at line 6.
    format!("{HEAD}[databases.app]\n{db_body}")
}

#[test]
fn example_file_parses() {
    let config = parse(EXAMPLE);
    assert_eq!(config.listen, "127.0.0.1:6432".parse().unwrap());
    assert_eq!(config.auth_method, AuthMethod::ScramSha256);
    let user = config.user("app").expect("user app");
    assert_eq!(user.password, "app_pw");
    assert_eq!(user.password_kind(), PasswordKind::Plaintext);
    let db = config.database("app").expect("database app");
    assert_eq!(db.name, "app");
    assert_eq!(db.dbname, "app");
    let hosts: Vec<String> = db.hosts.iter().map(ToString::to_string).collect();
    assert_eq!(hosts, ["127.0.0.1:5432", "127.0.0.1:5433"]);
    assert_eq!(db.pool_mode, PoolMode::Transaction);
    assert_eq!(db.pool_size, 20);
    assert_eq!(db.routing, Routing::ReadWrite);
    // The example spells out every default.
    let minimal = parse(&with_db(
        "hosts = [\"127.0.0.1:5432\", \"127.0.0.1:5433\"]\n",
    ));
    assert_eq!(config, minimal);
}

#[test]
fn defaults_applied() {
    let config = parse(&with_db("hosts = [\"127.0.0.1:5432\"]\n"));
    assert_eq!(config.auth_method, AuthMethod::ScramSha256);
    assert_eq!(config.checkout_timeout_ms, 5_000);
    assert_eq!(config.checkout_timeout(), Duration::from_secs(5));
    assert_eq!(config.connect_timeout(), Duration::from_secs(5));
    assert_eq!(config.max_message_size, 268_435_456);
    assert_eq!(config.worker_threads, 0);
    assert!(config.worker_thread_count() >= 1);
    assert_eq!(config.server_idle_timeout(), Duration::from_secs(600));
    assert_eq!(config.server_lifetime(), Duration::from_secs(3600));
    assert_eq!(config.client_login_timeout(), Duration::from_secs(15));
    assert_eq!(config.shutdown_timeout(), Duration::from_secs(30));
    let db = &config.databases["app"];
    assert_eq!(db.dbname, "app");
    assert_eq!(db.pool_mode, PoolMode::Transaction);
    assert_eq!(db.pool_size, 20);
    assert_eq!(db.routing, Routing::ReadWrite);
    assert!(config.user("nobody").is_none());
    assert!(config.database("nope").is_none());
}

#[test]
fn explicit_values_and_zero_means_never() {
    let text = "listen = \"[::1]:7000\"\nauth_method = \"md5\"\ncheckout_timeout_ms = 100\n\
                connect_timeout_ms = 200\nmax_message_size = 1024\nworker_threads = 3\n\
                server_idle_timeout_ms = 0\nserver_lifetime_ms = 0\n\
                client_login_timeout_ms = 300\nshutdown_timeout_ms = 0\n\
                [[users]]\nname = \"u\"\npassword = \"md5e5e28d1fa5ca5a7bbbd6e0e10ffcf9c6\"\n\
                [databases.front]\nhosts = [\"db.internal:5432\", \"localhost:5433\", \"[::1]:5434\"]\n\
                dbname = \"back\"\npool_size = 10000\nrouting = \"primary_only\"\npool_mode = \"session\"\n";
    let config = parse(text);
    assert_eq!(config.listen, "[::1]:7000".parse().unwrap());
    assert_eq!(config.auth_method, AuthMethod::Md5);
    assert_eq!(config.checkout_timeout(), Duration::from_millis(100));
    assert_eq!(config.connect_timeout(), Duration::from_millis(200));
    assert_eq!(config.client_login_timeout(), Duration::from_millis(300));
    assert_eq!(config.shutdown_timeout(), Duration::ZERO);
    assert_eq!(config.max_message_size, 1024);
    assert_eq!(config.worker_thread_count(), 3);
    assert_eq!(config.server_idle_timeout(), Duration::ZERO);
    assert_eq!(config.server_lifetime(), Duration::ZERO);
    assert_eq!(config.users[0].password_kind(), PasswordKind::Md5);
    assert_eq!(
        password_kind("md5E5E28D1FA5CA5A7BBBD6E0E10FFCF9C6"),
        PasswordKind::Md5
    );
    assert_eq!(
        password_kind("md5e5e28d1fa5ca5a7bbbd6e0e10ffcf9c"),
        PasswordKind::Plaintext
    );
    assert_eq!(password_kind("md5"), PasswordKind::Plaintext);
    let db = &config.databases["front"];
    assert_eq!(db.dbname, "back");
    assert_eq!(db.pool_size, 10_000);
    assert_eq!(db.routing, Routing::PrimaryOnly);
    assert_eq!(db.pool_mode, PoolMode::Session);
    assert_eq!(
        db.hosts,
        [
            HostAddr {
                host: "db.internal".into(),
                port: 5432
            },
            HostAddr {
                host: "localhost".into(),
                port: 5433
            },
            HostAddr {
                host: "::1".into(),
                port: 5434
            },
        ]
    );
    assert_eq!(db.hosts[2].to_string(), "[::1]:5434");
}

#[test]
fn listen_port_zero_and_comments_between_tables() {
    let config = parse(
        "listen = \"127.0.0.1:0\"\nauth_method = \"md5\"\n\n[[users]]\nname = \"a\"\n\
         password = \"x\"\n\n[[users]]\nname = \"b\"\npassword = \"y\"\n\n\
         # comment\n[databases.app]\nhosts = [\"127.0.0.1:5432\", \"127.0.0.1:5433\"]\n\
         pool_size = 2\n",
    );
    assert_eq!(config.listen.port(), 0);
    assert_eq!(config.users.len(), 2);
    assert_eq!(config.user("b").map(|u| u.password.as_str()), Some("y"));
    assert_eq!(config.databases["app"].pool_size, 2);
}

#[test]
fn pool_modes_and_routings_parse() {
    for (text, mode) in [
        ("session", PoolMode::Session),
        ("transaction", PoolMode::Transaction),
        ("statement", PoolMode::Statement),
    ] {
        let config = parse(&with_db(&format!(
            "hosts = [\"h:1\"]\npool_mode = \"{text}\"\n"
        )));
        assert_eq!(config.databases["app"].pool_mode, mode);
        assert_eq!(mode.to_string(), text);
    }
    for (text, routing) in [
        ("read_write", Routing::ReadWrite),
        ("primary_only", Routing::PrimaryOnly),
    ] {
        let config = parse(&with_db(&format!(
            "hosts = [\"h:1\"]\nrouting = \"{text}\"\n"
        )));
        assert_eq!(config.databases["app"].routing, routing);
        assert_eq!(routing.to_string(), text);
    }
}

#[test]
fn bad_enum_values_name_the_allowed_ones() {
    fails(
        &with_db("hosts = [\"h:1\"]\npool_mode = \"sesion\"\n"),
        7,
        &[
            "databases.app.pool_mode",
            "sesion",
            "session",
            "transaction",
            "statement",
        ],
    );
    fails(
        &with_db("hosts = [\"h:1\"]\n\nrouting = \"readwrite\"\n"),
        8,
        &["databases.app.routing", "read_write", "primary_only"],
    );
    fails(
        &format!("auth_method = \"trust\"\n{HEAD}[databases.app]\nhosts = [\"h:1\"]\n"),
        1,
        &["auth_method", "scram-sha-256", "md5"],
    );
}

#[test]
fn unknown_keys() {
    let err = fails(
        "listen = \"127.0.0.1:6432\"\n\n lisen = 1\n",
        3,
        &[
            "unknown key `lisen` in the top level",
            "listen",
            "databases",
        ],
    );
    assert!(!err.to_string().contains("move it"));
    assert_eq!(err.key_path(), Some(""));
    match err {
        ConfigError::UnknownKey { expected, .. } => {
            assert_eq!(expected, locate::TOP_LEVEL_KEYS.join(", "));
        }
        other => panic!("not an UnknownKey: {other:?}"),
    }
    let err = fails(
        &with_db("hosts = [\"h:1\"]\nhots = []\n"),
        7,
        &["unknown key `hots` in databases.app", "hosts, dbname"],
    );
    assert_eq!(err.key_path(), Some("databases.app"));
    match err {
        ConfigError::UnknownKey { expected, .. } => {
            assert_eq!(expected, locate::DATABASE_KEYS.join(", "));
        }
        other => panic!("not an UnknownKey: {other:?}"),
    }
    fails(
        "pool_mode = \"session\"\n",
        1,
        &["`pool_mode` belongs in a [databases.<name>] table"],
    );
    fails(
        &with_db("hosts = [\"h:1\"]\npassword = \"x\"\n"),
        7,
        &["`password` belongs in a [[users]] table"],
    );
    let err = fails(
        &format!("{HEAD}[[users]]\nname = \"b\"\npasword = \"x\"\n"),
        7,
        &["unknown key `pasword` in users[1]", "password"],
    );
    match err {
        ConfigError::UnknownKey { expected, hint, .. } => {
            assert_eq!(expected, locate::USER_KEYS.join(", "));
            assert_eq!(hint, "");
        }
        other => panic!("not an UnknownKey: {other:?}"),
    }
    fails(
        &format!("databases = {{ app = {{ hosts = [\"h:1\"], size = 3 }} }}\n{HEAD}"),
        1,
        &["unknown key `size` in databases.app"],
    );
    // A top-level key after a table header belongs to that table.
    fails(
        &format!("{HEAD}worker_threads = 2\n"),
        5,
        &[
            "unknown key `worker_threads` in users[0]",
            "`worker_threads` is a top-level key",
            "before the first [table]",
        ],
    );
}

#[test]
fn wrong_types() {
    fails(
        &with_db("hosts = [\"h:1\"]\npool_size = \"20\"\n"),
        7,
        &["databases.app.pool_size", "invalid type: string \"20\""],
    );
    fails(
        "listen = 6432\n",
        1,
        &["listen", "invalid type: integer `6432`"],
    );
    fails(
        &with_db("hosts = \"127.0.0.1:5432\"\n"),
        6,
        &["databases.app.hosts", "expected an array"],
    );
    fails(
        &with_db("hosts = [\n  \"h:1\",\n  5432,\n]\n"),
        8,
        &["databases.app.hosts[1]", "invalid type: integer"],
    );
    fails(
        &format!("checkout_timeout_ms = -1\n{HEAD}"),
        1,
        &["checkout_timeout_ms", "-1"],
    );
    fails(
        &format!("{HEAD}[databases]\napp = 5\n"),
        6,
        &["databases.app", "expected a [databases.<name>] table"],
    );
    fails(
        "listen = \"127.0.0.1:6432\"\n[users]\nname = \"x\"\n",
        2,
        &["users", "expected an array"],
    );
}

#[test]
fn bad_listen() {
    fails(
        "listen = \"localhost:6432\"\n",
        1,
        &["listen", "\"localhost:6432\" is not an IP:port address"],
    );
    fails(
        &format!("# c\n\nlisten = \"127.0.0.1\"\n{}", &HEAD[26..]),
        3,
        &["listen", "\"127.0.0.1\""],
    );
    let err = match Config::from_toml_str("[[users]]\nname = \"a\"\npassword = \"b\"\n") {
        Ok(_) => panic!("no listen accepted"),
        Err(err) => err.to_string(),
    };
    assert!(err.contains("missing required key `listen`"), "{err}");
}

#[test]
fn bad_hosts() {
    fails(
        &with_db("hosts = [\n  \"127.0.0.1:5432\",\n  \"localhost:abc\",\n]\n"),
        8,
        &["config line 8: databases.app.hosts[1]: \"localhost:abc\" is not a host:port address"],
    );
    for bad in [
        "127.0.0.1",
        ":5432",
        "h:0",
        "h:65536",
        "::1:5432",
        "[::1]5432",
        "bad host:5432",
        "-x:5432",
        "300.1.1.1:5432",
    ] {
        fails(
            &with_db(&format!("hosts = [\"h:1\", \"{bad}\"]\n")),
            6,
            &["databases.app.hosts[1]", "is not a host:port address"],
        );
    }
    fails(
        &with_db("pool_size = 3\nhosts = []\n"),
        7,
        &["databases.app.hosts", "at least one host is required"],
    );
    fails(
        &with_db("hosts = [\"127.0.0.1:5432\",\n \"127.0.0.1:5433\",\n \"127.0.0.1:5432\"]\n"),
        8,
        &[
            "databases.app.hosts[2]",
            "duplicate host 127.0.0.1:5432",
            "hosts[0]",
        ],
    );
    fails(
        &with_db("hosts = [\"DB.internal:5432\", \"db.internal:5432\"]\n"),
        6,
        &["databases.app.hosts[1]", "duplicate host"],
    );
    fails(
        &with_db("dbname = \"x\"\n"),
        5,
        &["databases.app", "missing required key `hosts`"],
    );
}

#[test]
fn bad_users() {
    fails(
        &format!("{HEAD}[[users]]\nname = \"\"\npassword = \"x\"\n"),
        6,
        &["users[1].name", "must not be empty"],
    );
    fails(
        &format!("{HEAD}\n[[users]]\npassword = \"x\"\nname = \"app\"\n"),
        8,
        &["users[1].name", "duplicate user \"app\"", "line 3"],
    );
    fails(
        &format!("{HEAD}[[users]]\nname = \"b\"\npassword = \"\"\n"),
        7,
        &["users[1].password", "must not be empty"],
    );
    fails(
        &format!("{HEAD}[[users]]\nname = \"b\"\n"),
        5,
        &["users[1]", "missing required key `password`"],
    );
    let long = "u".repeat(64);
    fails(
        &format!("{HEAD}[[users]]\nname = \"{long}\"\npassword = \"x\"\n"),
        6,
        &["users[1].name", "64 bytes", "at most 63"],
    );
    fails(
        &format!("{HEAD}[[users]]\nname = \"b\"\npassword = \"SCRAM-SHA-256$4096:c2FsdA==$bad\"\n"),
        7,
        &["users[1].password", "malformed"],
    );
    fails(
        &format!(
            "{HEAD}[[users]]\nname = \"b\"\n\
             password = \"md5e5e28d1fa5ca5a7bbbd6e0e10ffcf9c6\"\n"
        ),
        7,
        &["users[1].password", "md5 hash", "scram-sha-256"],
    );
    let scram = "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$\
                 WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:\
                 MOBl3ha7hf9Ylx/4Dy5Mr4IOnE0QCvSG9gR1/z6Yzd0=";
    let config = parse(&format!(
        "listen = \"127.0.0.1:1\"\n[[users]]\nname = \"s\"\npassword = \"{scram}\"\n\
         [databases.app]\nhosts = [\"h:1\"]\n"
    ));
    assert_eq!(config.users[0].password_kind(), PasswordKind::ScramSha256);
    // With auth_method = "md5", SCRAM-verifier users are asked for SCRAM.
    let config = parse(&format!(
        "listen = \"127.0.0.1:1\"\nauth_method = \"md5\"\n\
         [[users]]\nname = \"s\"\npassword = \"{scram}\"\n\
         [databases.app]\nhosts = [\"h:1\"]\n"
    ));
    assert_eq!(config.auth_method, AuthMethod::Md5);
    // The password never shows in Debug output.
    assert!(!format!("{config:?}").contains("W22ZaJ0SNY7"));
}

#[test]
fn bad_numbers() {
    fails(
        &with_db("hosts = [\"h:1\"]\npool_size = 0\n"),
        7,
        &["databases.app.pool_size", "at least 1"],
    );
    fails(
        &with_db("hosts = [\"h:1\"]\n\npool_size = 10001\n"),
        8,
        &["databases.app.pool_size", "at most 10000"],
    );
    fails(
        &format!("max_message_size = 1000\n{HEAD}"),
        1,
        &["max_message_size", "at least 1024 bytes"],
    );
    fails(
        &format!("checkout_timeout_ms = 0\n{HEAD}"),
        1,
        &["checkout_timeout_ms", "at least 1"],
    );
}

#[test]
fn bad_databases() {
    let err = match Config::from_toml_str(HEAD) {
        Ok(_) => panic!("accepted a config without databases"),
        Err(err) => err.to_string(),
    };
    assert_eq!(
        err,
        "config: no [databases.*] table; at least one database is required"
    );
    fails(
        &with_db("hosts = [\"h:1\"]\ndbname = \"\"\n"),
        7,
        &["databases.app.dbname", "must not be empty"],
    );
    let long = "d".repeat(64);
    fails(
        &format!("{HEAD}\n[databases.{long}]\nhosts = [\"h:1\"]\n"),
        6,
        &[&format!("databases.{long}"), "at most 63"],
    );
    fails(
        &format!("{HEAD}[databases.\"\"]\nhosts = [\"h:1\"]\n"),
        5,
        &["databases.\"\"", "must not be empty"],
    );
}

#[test]
fn syntax_errors_have_lines() {
    fails(
        &format!("{HEAD}[databases.app\nhosts = [\"h:1\"]\n"),
        5,
        &["invalid TOML"],
    );
    fails(
        &format!("{HEAD}[databases.app]\nhosts = [\"h:1\"]\nhosts = [\"h:2\"]\n"),
        7,
        &["invalid TOML", "duplicate key"],
    );
}

#[test]
fn load_names_the_path() {
    let dir = std::env::temp_dir().join(format!("switchyard-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing.toml");
    let err = Config::load(&missing).unwrap_err().to_string();
    assert!(err.contains("missing.toml"), "{err}");

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "listen = \"127.0.0.1:6432\"\nlisen = 1\n").unwrap();
    let err = Config::load(&bad).unwrap_err();
    assert_eq!(err.line(), Some(2));
    let msg = err.to_string();
    assert!(
        msg.contains("bad.toml: config line 2: unknown key `lisen`"),
        "{msg}"
    );

    let good = dir.join("good.toml");
    std::fs::write(&good, EXAMPLE).unwrap();
    assert_eq!(Config::load(&good).unwrap(), parse(EXAMPLE));
    let _ = std::fs::remove_dir_all(&dir);
}
