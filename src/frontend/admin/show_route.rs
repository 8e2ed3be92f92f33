//! SHOW ROUTE <sql>: where each database would send that SQL now and why, as a client with
//! no earlier writes would see it, and whether its result would be cached (and if not,
//! why). One row per database.

use super::result_set::{bool_cell, cell, ResultSet, Type};
use super::Snapshot;
use crate::cache::Reject;
use crate::frontend::route_request::{decide, ReadYourWritesState};
use crate::prepared::ClientStatements;
use crate::protocol::messages::write_message;
use crate::router::fingerprint;
use crate::router::Target;
use bytes::BytesMut;

/// Whether the cache would store this query's result, and the reason if not.
fn would_cache(cluster: &crate::topology::Cluster, sql: &str) -> (bool, &'static str) {
    let Some(cache) = cluster.cache.as_deref() else {
        return (false, "cache off");
    };
    let fp = fingerprint(sql);
    match cache.shape(sql, &fp).rejected() {
        Some(r) => (false, r.as_str()),
        None if fp.time_word => (false, Reject::TimeWord.as_str()),
        None => (true, "cacheable"),
    }
}

pub fn show_route(s: &Snapshot, sql: &str) -> ResultSet {
    use Type::Text;
    let mut rs = ResultSet::new(&[
        ("route", Text),
        ("reason", Text),
        ("cached", Type::Bool),
        ("database", Text),
        ("cache_reason", Text),
    ]);
    let mut query = BytesMut::new();
    write_message(&mut query, b'Q', |b| {
        b.extend_from_slice(sql.as_bytes());
        b.extend_from_slice(&[0]);
    });
    for db in &s.databases {
        let cluster = &db.cluster;
        let d = decide(
            &cluster.db,
            &cluster.classifier,
            &ReadYourWritesState::default(),
            &ClientStatements::default(),
            || cluster.db.primary_reads || cluster.topology.snapshot().has_replicas(),
            &query,
            usize::MAX,
        );
        let route = match d.target {
            Target::Primary => "primary",
            Target::Replica => "replica",
        };
        let (cached, why) = would_cache(cluster, sql);
        rs.row(vec![
            cell(route),
            cell(d.reason),
            bool_cell(cached),
            cell(&db.name),
            cell(why),
        ]);
    }
    rs
}
