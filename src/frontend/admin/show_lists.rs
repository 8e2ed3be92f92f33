//! SHOW DATABASES, SHOW USERS, SHOW LISTS and SHOW VERSION: the configuration's lists and
//! how many of each thing exist, with PgBouncer 1.18's columns (its DNS lists are zero).

use super::result_set::{cell, ResultSet, Type};
use super::show_connections::split_host;
use super::show_pools::pool_mode_name;
use super::Snapshot;
use crate::frontend::Shared;

/// One row per database; `host`/`port` name the current primary (NULL while none is known).
/// Switchyard's own columns after PgBouncer's: `hosts`, the servers it knows.
pub fn show_databases(s: &Snapshot) -> ResultSet {
    use Type::{Int4, Text};
    let mut rs = ResultSet::new(&[
        ("name", Text),
        ("host", Text),
        ("port", Int4),
        ("database", Text),
        ("force_user", Text),
        ("pool_size", Int4),
        ("min_pool_size", Int4),
        ("reserve_pool", Int4),
        ("pool_mode", Text),
        ("max_connections", Int4),
        ("current_connections", Int4),
        ("paused", Int4),
        ("disabled", Int4),
        ("hosts", Text),
    ]);
    for db in &s.databases {
        let cluster = &db.cluster;
        let snap = cluster.topology.snapshot();
        let primary = snap.primary().map(|i| split_host(&snap.hosts[i].addr));
        let connections: usize = s
            .pools
            .iter()
            .filter(|p| p.database == db.name)
            .map(|p| p.total.members.len() + p.total.opening)
            .sum();
        rs.row(vec![
            cell(&db.name),
            primary.as_ref().map(|(h, _)| h.clone()),
            primary.map(|(_, p)| p),
            cell(&cluster.db.dbname),
            None,
            cell(cluster.db.pool_size),
            cell(cluster.db.pool_limits.min_pool_size),
            cell(cluster.db.pool_limits.reserve_pool_size),
            cell(pool_mode_name(cluster.db.pool_mode)),
            cell(cluster.db.pool_limits.max_db_connections),
            cell(connections),
            cell(i32::from(cluster.is_paused())),
            cell(0),
            cell(
                cluster
                    .db
                    .hosts
                    .iter()
                    .map(|h| h.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ]);
    }
    rs
}

/// One row per `[[users]]` entry (users found by auth_query are not listed).
pub fn show_users(shared: &Shared) -> ResultSet {
    let mut rs = ResultSet::new(&[("name", Type::Text), ("pool_mode", Type::Text)]);
    for u in &shared.config.users {
        rs.row(vec![cell(&u.name), None]);
    }
    rs
}

pub fn show_lists(shared: &Shared, s: &Snapshot) -> ResultSet {
    let mut rs = ResultSet::new(&[("list", Type::Text), ("items", Type::Int4)]);
    let servers = |idle: bool| -> usize {
        s.pools
            .iter()
            .flat_map(|p| p.hosts.iter())
            .flat_map(|h| h.report.members.iter())
            .filter(|m| m.2 == idle)
            .count()
    };
    let counts = [
        ("databases", s.databases.len()),
        ("users", shared.config.users.len()),
        ("pools", s.pools.len()),
        ("free_clients", 0),
        ("used_clients", s.clients.len()),
        (
            "login_clients",
            shared.clients.len().saturating_sub(s.clients.len()),
        ),
        ("free_servers", 0),
        ("used_servers", servers(true) + servers(false)),
        ("dns_names", 0),
        ("dns_zones", 0),
        ("dns_queries", 0),
        ("dns_pending", 0),
    ];
    for (list, n) in counts {
        rs.row(vec![cell(list), cell(n)]);
    }
    rs
}

pub fn show_version() -> ResultSet {
    let mut rs = ResultSet::new(&[("version", Type::Text)]);
    rs.row(vec![cell(format!(
        "Switchyard {}",
        env!("CARGO_PKG_VERSION")
    ))]);
    rs
}
