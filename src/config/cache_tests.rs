//! Cases for `[databases.<name>.cache]`.

use super::tests::{fails, with_db};
use super::*;

fn cache_of(body: &str) -> CacheConfig {
    let text = with_db(&format!("hosts = [\"h:1\"]\n[databases.app.cache]\n{body}"));
    let config = Config::from_toml_str(&text).expect("valid");
    config.databases["app"].cache.clone()
}

#[test]
fn defaults_and_values() {
    let off = Config::from_toml_str(&with_db("hosts = [\"h:1\"]\n")).expect("valid");
    let c = &off.databases["app"].cache;
    assert!(!c.enabled);
    assert_eq!(
        (c.max_bytes, c.max_result_bytes, c.ttl_ms),
        (268_435_456, 1_048_576, 300_000)
    );
    assert_eq!(c.invalidation, Invalidation::Auto);
    assert_eq!(
        c.user.as_deref(),
        Some("app"),
        "the first user that can log in"
    );
    let c = cache_of(
        "enabled = true\nmax_bytes = 1000000\nmax_result_bytes = 5000\nttl_ms = 0\n\
         invalidation = \"local\"\ntables = [\"public.Accounts\", '\"Odd\"']\n\
         exclude_tables = [\"audit\"]\npublication = \"pub1\"\nimmutable_functions = [\"My_Fn\"]\n",
    );
    assert!(c.enabled);
    assert_eq!(
        (c.max_bytes, c.max_result_bytes, c.ttl_ms),
        (1_000_000, 5000, 0)
    );
    assert_eq!(c.invalidation, Invalidation::Local);
    assert_eq!(c.tables, vec!["accounts", "Odd"]);
    assert_eq!(c.exclude_tables, vec!["audit"]);
    assert_eq!(c.publication, "pub1");
    assert_eq!(c.immutable_functions, vec!["my_fn"]);
}

#[test]
fn errors_name_key_and_line() {
    let at = |body: &str| with_db(&format!("hosts = [\"h:1\"]\n[databases.app.cache]\n{body}"));
    fails(
        &at("max_bytes = 10000\nmax_result_bytes = 20000\n"),
        9,
        &[
            "databases.app.cache.max_result_bytes",
            "more than max_bytes",
        ],
    );
    fails(
        &at("user = \"nobody\"\n"),
        8,
        &["databases.app.cache.user", "not a [[users]] entry"],
    );
    fails(&at("invalidation = \"sometimes\"\n"), 8, &["invalidation"]);
    let err = fails(&at("enabeld = true\n"), 8, &["unknown key `enabeld`"]);
    match err {
        ConfigError::UnknownKey { expected, .. } => {
            assert_eq!(expected, locate::CACHE_KEYS.join(", "));
        }
        other => panic!("not an UnknownKey: {other:?}"),
    }
}
