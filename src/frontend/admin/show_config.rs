//! SHOW CONFIG: the top-level settings in effect (key, value, default, changeable), never a
//! secret. `max_client_conn` and `max_user_connections` are there under PgBouncer's names
//! too, for pgbouncer_exporter. `changeable` says whether RELOAD applies a change (the
//! `RESTART_KEYS` need a restart).

use super::result_set::{cell, ResultSet, Type};
use crate::config::{self, AuthMethod, Config, LogFormat};

fn auth_method(m: AuthMethod) -> &'static str {
    match m {
        AuthMethod::ScramSha256 => "scram-sha-256",
        AuthMethod::Md5 => "md5",
    }
}

type Row = (&'static str, String, String);

/// The limits and timeouts, as `(key, value, default)`.
fn limits(c: &Config) -> Vec<Row> {
    let row = |k, v: u64, d: u64| (k, v.to_string(), d.to_string());
    let size = |k, v: usize, d: usize| (k, v.to_string(), d.to_string());
    vec![
        row(
            "checkout_timeout_ms",
            c.checkout_timeout_ms,
            config::DEFAULT_CHECKOUT_TIMEOUT_MS,
        ),
        row(
            "connect_timeout_ms",
            c.connect_timeout_ms,
            config::DEFAULT_CONNECT_TIMEOUT_MS,
        ),
        row(
            "server_idle_timeout_ms",
            c.server_idle_timeout_ms,
            config::DEFAULT_SERVER_IDLE_TIMEOUT_MS,
        ),
        row(
            "server_lifetime_ms",
            c.server_lifetime_ms,
            config::DEFAULT_SERVER_LIFETIME_MS,
        ),
        row(
            "client_login_timeout_ms",
            c.client_login_timeout_ms,
            config::DEFAULT_CLIENT_LOGIN_TIMEOUT_MS,
        ),
        row(
            "shutdown_timeout_ms",
            c.shutdown_timeout_ms,
            config::DEFAULT_SHUTDOWN_TIMEOUT_MS,
        ),
        size(
            "max_message_size",
            c.max_message_size,
            config::DEFAULT_MAX_MESSAGE_SIZE,
        ),
        size(
            "worker_threads",
            c.worker_threads,
            config::DEFAULT_WORKER_THREADS,
        ),
        size(
            "prepared_statements_per_connection",
            c.prepared_statements_per_connection,
            250,
        ),
        size("max_prepared_statements", c.max_prepared_statements, 10_000),
    ]
}

/// The rest, as `(key, value, default)`; PgBouncer's names last.
fn settings(c: &Config) -> Vec<Row> {
    let ops = &c.operations;
    let max = ops.max_client_connections.to_string();
    let max_default = config::DEFAULT_MAX_CLIENT_CONNECTIONS.to_string();
    let log = if ops.log_format == LogFormat::Json {
        "json"
    } else {
        "text"
    };
    let metrics = ops
        .metrics_listen
        .map(|a| a.to_string())
        .unwrap_or_default();
    let tls = c.tls.as_ref().map(|t| t.cert.display().to_string());
    vec![
        ("listen", c.listen.to_string(), String::new()),
        (
            "auth_method",
            auth_method(c.auth_method).into(),
            "scram-sha-256".into(),
        ),
        ("admin_users", ops.admin_users.join(","), String::new()),
        ("stats_users", ops.stats_users.join(","), String::new()),
        ("metrics_listen", metrics, String::new()),
        ("log_format", log.into(), "text".into()),
        ("max_client_connections", max.clone(), max_default.clone()),
        ("so_reuseport", ops.so_reuseport.to_string(), "false".into()),
        ("tls", tls.unwrap_or_default(), String::new()),
        ("max_client_conn", max, max_default),
        ("max_user_connections", "0".into(), "0".into()),
    ]
}

pub fn show_config(c: &Config) -> ResultSet {
    let mut rs = ResultSet::new(&[
        ("key", Type::Text),
        ("value", Type::Text),
        ("default", Type::Text),
        ("changeable", Type::Text),
    ]);
    for (key, value, default) in limits(c).into_iter().chain(settings(c)) {
        let changeable = if config::RESTART_KEYS.contains(&key) {
            "no"
        } else {
            "yes"
        };
        rs.row(vec![
            cell(key),
            cell(value),
            cell(default),
            cell(changeable),
        ]);
    }
    rs
}
