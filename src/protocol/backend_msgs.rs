//! Peeks into the few server messages Switchyard inspects: ReadyForQuery status,
//! ParameterStatus, CommandComplete tags and ErrorResponse fields. Each takes one whole frame
//! (header included) and never reads past it.

use super::frame::{read_cstr, HEADER_LEN};
use super::messages::{PgError, Severity, TxStatus};
use super::SqlState;

/// Status byte of a ReadyForQuery frame.
pub fn ready_status(frame: &[u8]) -> Option<TxStatus> {
    frame.get(HEADER_LEN).and_then(|&b| TxStatus::from_byte(b))
}

/// Name and value of a ParameterStatus frame.
pub fn parameter_status(frame: &[u8]) -> Option<(&str, &str)> {
    let body = frame.get(HEADER_LEN..)?;
    let (name, rest) = read_cstr(body)?;
    let (value, _) = read_cstr(rest)?;
    Some((
        std::str::from_utf8(name).ok()?,
        std::str::from_utf8(value).ok()?,
    ))
}

/// Tag of a CommandComplete frame, e.g. `SELECT 1` or `COMMIT`.
pub fn command_tag(frame: &[u8]) -> Option<&[u8]> {
    let body = frame.get(HEADER_LEN..)?;
    read_cstr(body).map(|(tag, _)| tag)
}

/// Whether a CommandComplete frame's tag is `tag` (a tag without a row count, such as
/// ROLLBACK): a comparison, without searching for the terminator.
pub fn command_tag_is(frame: &[u8], tag: &[u8]) -> bool {
    frame.get(HEADER_LEN..).is_some_and(|body| {
        body.len() == tag.len() + 1 && body.starts_with(tag) && body[tag.len()] == 0
    })
}

/// Decodes an ErrorResponse or NoticeResponse frame into its main fields.
pub fn error_fields(frame: &[u8]) -> Option<PgError> {
    let mut body = frame.get(HEADER_LEN..)?;
    let mut err = PgError {
        severity: Severity::Error,
        // A server that sends no code (or a malformed one) gets PostgreSQL's catch-all.
        code: SqlState::INTERNAL_ERROR,
        message: String::new(),
        detail: None,
        hint: None,
    };
    while let Some((&field, rest)) = body.split_first() {
        if field == 0 {
            break;
        }
        let (value, rest) = read_cstr(rest)?;
        let value = String::from_utf8_lossy(value).into_owned();
        match field {
            b'V' if value == "FATAL" || value == "PANIC" => err.severity = Severity::Fatal,
            b'C' => err.code = SqlState::parse(&value).unwrap_or(SqlState::INTERNAL_ERROR),
            b'M' => err.message = value,
            b'D' => err.detail = Some(value),
            b'H' => err.hint = Some(value),
            _ => {}
        }
        body = rest;
    }
    Some(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::{command_complete, parameter_status as ps, ready_for_query};
    use crate::protocol::SqlState;
    use bytes::BytesMut;

    #[test]
    fn round_trips_own_builders() {
        let mut b = BytesMut::new();
        ready_for_query(&mut b, TxStatus::InTransaction);
        assert_eq!(ready_status(&b), Some(TxStatus::InTransaction));
        let mut b = BytesMut::new();
        ps(&mut b, "TimeZone", "UTC");
        assert_eq!(parameter_status(&b), Some(("TimeZone", "UTC")));
        let mut b = BytesMut::new();
        command_complete(&mut b, "SELECT 3");
        assert_eq!(command_tag(&b), Some(&b"SELECT 3"[..]));
        assert!(command_tag_is(&b, b"SELECT 3"));
        assert!(!command_tag_is(&b, b"SELECT") && !command_tag_is(&b, b"ROLLBACK"));
        assert!(
            !command_tag_is(&b[..b.len() - 1], b"SELECT 3"),
            "no terminator"
        );
        let mut b = BytesMut::new();
        PgError::fatal(SqlState::ADMIN_SHUTDOWN, "bye").write(&mut b);
        let e = error_fields(&b).unwrap();
        assert_eq!(
            (e.severity, e.code.as_str(), e.message.as_str()),
            (Severity::Fatal, "57P01", "bye")
        );
    }

    #[test]
    fn truncated_frames_give_none() {
        assert_eq!(ready_status(b"Z\0\0\0\x05"), None);
        assert_eq!(parameter_status(b"S\0\0\0\x08ab"), None);
        assert_eq!(error_fields(b"E\0\0\0\x08Cab"), None);
    }
}
