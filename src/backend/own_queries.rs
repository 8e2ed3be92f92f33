//! Switchyard's own queries on a server connection: one-row queries (health checks, WAL
//! positions, the `auth_query` lookup with its parameter) that return the first row's text
//! values, and setup statements (session parameter sync, DISCARD ALL) whose ParameterStatus
//! reports are kept.

use super::conn::ServerConn;
use super::server_frames::read_frame;
use crate::net::Stream;
use crate::protocol::backend_msgs::{error_fields, parameter_status};
use crate::protocol::frame::HEADER_LEN;
use crate::protocol::messages::{self, PgError};
use crate::protocol::SqlState;
use bytes::BytesMut;
use postgres_protocol::message::frontend;

/// Runs `sql` and returns the first row's columns as text (None for NULL).
pub async fn query_row(
    stream: &mut Stream,
    buf: &mut BytesMut,
    sql: &str,
) -> Result<Vec<Option<String>>, PgError> {
    send_query(stream, sql).await?;
    read_first_row(stream, buf)
        .await?
        .ok_or_else(|| PgError::error(SqlState::PROTOCOL_VIOLATION, "query returned no row"))
}

/// Runs `sql` with `param` as its one text parameter (`$1`, extended protocol, unnamed
/// statement) and returns the first row's columns as text; None when there is no row.
pub async fn query_row_with(
    stream: &mut Stream,
    buf: &mut BytesMut,
    sql: &str,
    param: &str,
) -> Result<Option<Vec<Option<String>>>, PgError> {
    let mut out = BytesMut::new();
    let encode = |e: std::io::Error| PgError::error(SqlState::PROTOCOL_VIOLATION, e.to_string());
    frontend::parse("", sql, std::iter::empty(), &mut out).map_err(encode)?;
    frontend::bind(
        "",
        "",
        std::iter::empty(),
        [param],
        |p, out| {
            out.extend_from_slice(p.as_bytes());
            Ok(postgres_protocol::IsNull::No)
        },
        Some(0),
        &mut out,
    )
    .map_err(|e| match e {
        frontend::BindError::Conversion(e) => {
            PgError::error(SqlState::PROTOCOL_VIOLATION, e.to_string())
        }
        frontend::BindError::Serialization(e) => encode(e),
    })?;
    frontend::execute("", 0, &mut out).map_err(encode)?;
    frontend::sync(&mut out);
    stream.send_all(&out).await.map_err(lost)?;
    read_first_row(stream, buf).await
}

/// Runs `sql` and returns every row's columns as text (None for NULL).
pub async fn query_rows(
    stream: &mut Stream,
    buf: &mut BytesMut,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, PgError> {
    send_query(stream, sql).await?;
    let mut rows = Vec::new();
    let mut error = None;
    loop {
        let h = read_frame(stream, buf).await.map_err(lost)?;
        let frame = buf.split_to(h.total_len);
        match h.tag {
            b'D' => rows.extend(decode_row(&frame[HEADER_LEN..])),
            b'E' => error = error_fields(&frame),
            b'Z' => break,
            _ => {}
        }
    }
    match error {
        Some(e) => Err(e),
        None => Ok(rows),
    }
}

/// Reads the replies to one query up to ReadyForQuery: its first row, or its error.
async fn read_first_row(
    stream: &mut Stream,
    buf: &mut BytesMut,
) -> Result<Option<Vec<Option<String>>>, PgError> {
    let mut row = None;
    let mut error = None;
    loop {
        let h = read_frame(stream, buf).await.map_err(lost)?;
        let frame = buf.split_to(h.total_len);
        match h.tag {
            b'D' if row.is_none() => row = decode_row(&frame[HEADER_LEN..]),
            b'E' => error = error_fields(&frame),
            b'Z' => break,
            _ => {}
        }
    }
    match error {
        Some(e) => Err(e),
        None => Ok(row),
    }
}

/// Runs a setup statement (`SET ...`, `DISCARD ALL`) and reads to ReadyForQuery, keeping
/// ParameterStatus values and swallowing the rest. Fails if the server reports an error.
pub async fn run_setup(
    conn: &mut ServerConn,
    sql: &str,
    buf: &mut BytesMut,
) -> Result<(), PgError> {
    send_query(&mut conn.stream, sql).await?;
    let mut error = None;
    loop {
        let h = read_frame(&mut conn.stream, buf).await.map_err(lost)?;
        let frame = buf.split_to(h.total_len);
        match h.tag {
            b'S' => {
                if let Some((n, v)) = parameter_status(&frame) {
                    conn.note_parameter(n, v);
                }
            }
            b'E' => error = error_fields(&frame),
            b'Z' => break,
            _ => {}
        }
    }
    match error {
        Some(e) => {
            tracing::warn!(server = %conn.addr, error = %e, sql, "setup query failed");
            Err(e)
        }
        None => Ok(()),
    }
}

fn lost(e: std::io::Error) -> PgError {
    PgError::error(
        SqlState::CONNECTION_FAILURE,
        format!("server connection failed: {e}"),
    )
}

/// Sends `sql` as one simple Query.
pub async fn send_query(stream: &mut Stream, sql: &str) -> Result<(), PgError> {
    let mut out = BytesMut::new();
    messages::write_message(&mut out, b'Q', |b| {
        b.extend_from_slice(sql.as_bytes());
        b.extend_from_slice(&[0]);
    });
    stream.send_all(&out).await.map_err(lost)
}

fn decode_row(body: &[u8]) -> Option<Vec<Option<String>>> {
    let n = u16::from_be_bytes([*body.first()?, *body.get(1)?]) as usize;
    let mut rest = &body[2..];
    let mut cols = Vec::with_capacity(n);
    for _ in 0..n {
        let len = i32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
        rest = &rest[4..];
        if len < 0 {
            cols.push(None);
        } else {
            let len = len as usize;
            cols.push(Some(String::from_utf8_lossy(rest.get(..len)?).into_owned()));
            rest = &rest[len..];
        }
    }
    Some(cols)
}

/// Parses a `pg_lsn` text value like `16/B374D848`.
pub fn parse_lsn(s: &str) -> Option<u64> {
    let (hi, lo) = s.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

/// WAL page size (PostgreSQL's default `XLOG_BLCKSZ`).
const WAL_PAGE: u64 = 8192;
/// The longest WAL page header (the first page of a segment); a short one is 24 bytes.
const WAL_LONG_PAGE_HEADER: u64 = 40;

/// `pg_current_wal_insert_lsn()` as a position a replica's replay can reach. When the last
/// record ends exactly at a page boundary, the insert position is past the next page's
/// header, where no record ends; replay positions are record ends, so the replica would
/// never seem caught up until more WAL comes. A position within the first 40 bytes of a
/// page is therefore taken back to the boundary. That is sound: a record ending inside that
/// span crossed the boundary (a new record cannot end within a page header's length of the
/// page start), so no record ends at the boundary itself, and a replay at or past the
/// boundary is past that record.
pub fn insert_position_as_record_end(lsn: u64) -> u64 {
    let in_page = lsn % WAL_PAGE;
    if in_page != 0 && in_page <= WAL_LONG_PAGE_HEADER {
        lsn - in_page
    } else {
        lsn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_and_rows() {
        assert_eq!(parse_lsn("16/B374D848"), Some((0x16 << 32) | 0xB374D848));
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn("x"), None);
        let mut body = vec![0, 2];
        body.extend_from_slice(&1i32.to_be_bytes());
        body.push(b't');
        body.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(decode_row(&body), Some(vec![Some("t".into()), None]));
        assert_eq!(decode_row(&[0, 1, 0, 0, 0, 9, b'x']), None);
    }

    #[test]
    fn insert_positions_just_past_a_page_header_become_the_boundary() {
        assert_eq!(insert_position_as_record_end(0x4006018), 0x4006000);
        assert_eq!(insert_position_as_record_end(0x4000028), 0x4000000);
        assert_eq!(insert_position_as_record_end(0x4006000), 0x4006000);
        assert_eq!(insert_position_as_record_end(0x4007928), 0x4007928);
        assert_eq!(insert_position_as_record_end(0x4006030), 0x4006030);
    }
}
