//! Switchyard's own one-row queries on a server connection (health checks, WAL positions):
//! a simple Query, the text values of the first row, and ReadyForQuery.

use super::io::read_frame;
use crate::protocol::backend_msgs::error_fields;
use crate::protocol::frame::HEADER_LEN;
use crate::protocol::messages::{self, PgError};
use crate::protocol::SqlState;
use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Runs `sql` and returns the first row's columns as text (None for NULL).
pub async fn query_row(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    sql: &str,
) -> Result<Vec<Option<String>>, PgError> {
    let lost = |e: std::io::Error| {
        PgError::error(
            SqlState::CONNECTION_FAILURE,
            format!("server connection failed: {e}"),
        )
    };
    let mut out = BytesMut::new();
    messages::write_message(&mut out, b'Q', |b| {
        b.extend_from_slice(sql.as_bytes());
        b.extend_from_slice(&[0]);
    });
    stream.write_all(&out).await.map_err(lost)?;
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
    if let Some(e) = error {
        return Err(e);
    }
    row.ok_or_else(|| PgError::error(SqlState::PROTOCOL_VIOLATION, "query returned no row"))
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
}
