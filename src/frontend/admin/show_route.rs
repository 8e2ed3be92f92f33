//! SHOW ROUTE <sql>: where each database would send that SQL now and why, as a client with
//! no earlier writes would see it, and whether its result would be cached (never yet: the
//! result cache does not exist). One row per database.

use super::result_set::{cell, ResultSet, Type};
use super::Snapshot;
use crate::frontend::route_request::{decide, ReadYourWritesState};
use crate::prepared::ClientStatements;
use crate::protocol::messages::write_message;
use crate::router::Target;
use bytes::BytesMut;

pub fn show_route(s: &Snapshot, sql: &str) -> ResultSet {
    use Type::Text;
    let mut rs = ResultSet::new(&[
        ("route", Text),
        ("reason", Text),
        ("cached", Type::Bool),
        ("database", Text),
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
        rs.row(vec![cell(route), cell(d.reason), cell("f"), cell(&db.name)]);
    }
    rs
}
