//! SHOW STATS (totals and averages per database, PgBouncer 1.18's columns), SHOW
//! STATS_TOTALS and SHOW STATS_AVERAGES (what pgbouncer_exporter reads). Times are in
//! microseconds; averages are over the last complete stats period (see `averages`).

use super::averages::PeriodAverages;
use super::result_set::{cell, ResultSet, Type};
use super::Snapshot;
use crate::stats::TrafficTotals;

const TOTALS: [&str; 7] = [
    "xact_count",
    "query_count",
    "bytes_received",
    "bytes_sent",
    "xact_time",
    "query_time",
    "wait_time",
];

fn totals_cells(t: &TrafficTotals) -> Vec<u64> {
    vec![
        t.xacts,
        t.queries,
        t.bytes_received,
        t.bytes_sent,
        t.xact_us,
        t.query_us,
        t.wait_us,
    ]
}

fn average_cells(a: &PeriodAverages) -> Vec<u64> {
    vec![
        a.xacts_per_s,
        a.queries_per_s,
        a.received_per_s,
        a.sent_per_s,
        a.xact_us,
        a.query_us,
        a.wait_us,
    ]
}

pub fn show_stats(s: &Snapshot) -> ResultSet {
    let names: Vec<&'static str> = [
        "total_xact_count",
        "total_query_count",
        "total_received",
        "total_sent",
        "total_xact_time",
        "total_query_time",
        "total_wait_time",
        "avg_xact_count",
        "avg_query_count",
        "avg_recv",
        "avg_sent",
        "avg_xact_time",
        "avg_query_time",
        "avg_wait_time",
    ]
    .to_vec();
    let mut rs = with_columns(&names);
    for db in &s.databases {
        let mut cells = vec![cell(&db.name)];
        let values = totals_cells(&db.traffic)
            .into_iter()
            .chain(average_cells(&db.averages));
        cells.extend(values.map(cell));
        rs.row(cells);
    }
    rs
}

pub fn show_stats_totals(s: &Snapshot) -> ResultSet {
    let mut rs = with_columns(&TOTALS);
    for db in &s.databases {
        let mut cells = vec![cell(&db.name)];
        cells.extend(totals_cells(&db.traffic).into_iter().map(cell));
        rs.row(cells);
    }
    rs
}

pub fn show_stats_averages(s: &Snapshot) -> ResultSet {
    let mut rs = with_columns(&TOTALS);
    for db in &s.databases {
        let mut cells = vec![cell(&db.name)];
        cells.extend(average_cells(&db.averages).into_iter().map(cell));
        rs.row(cells);
    }
    rs
}

/// `database`, then numeric columns (as PgBouncer types them).
fn with_columns(names: &[&'static str]) -> ResultSet {
    let mut columns = vec![("database", Type::Text)];
    columns.extend(names.iter().map(|n| (*n, Type::Numeric)));
    ResultSet::new(&columns)
}
