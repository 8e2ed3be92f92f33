//! Builders for the backend messages Switchyard itself sends to clients (authentication,
//! ParameterStatus, BackendKeyData, ReadyForQuery, CommandComplete, ErrorResponse), written
//! straight into an output buffer.

use super::sqlstate::SqlState;
use bytes::{BufMut, BytesMut};

/// Transaction status carried by ReadyForQuery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStatus {
    Idle,
    InTransaction,
    Failed,
}

impl TxStatus {
    pub fn from_byte(b: u8) -> Option<TxStatus> {
        match b {
            b'I' => Some(TxStatus::Idle),
            b'T' => Some(TxStatus::InTransaction),
            b'E' => Some(TxStatus::Failed),
            _ => None,
        }
    }

    pub fn byte(self) -> u8 {
        match self {
            TxStatus::Idle => b'I',
            TxStatus::InTransaction => b'T',
            TxStatus::Failed => b'E',
        }
    }
}

/// Severity of an ErrorResponse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Fatal,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
        }
    }
}

/// An error Switchyard reports to a client, or one received from a server and relayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgError {
    pub severity: Severity,
    pub code: SqlState,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl PgError {
    pub fn new(severity: Severity, code: SqlState, message: impl Into<String>) -> Self {
        PgError {
            severity,
            code,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    pub fn error(code: SqlState, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, code, message)
    }

    pub fn fatal(code: SqlState, message: impl Into<String>) -> Self {
        Self::new(Severity::Fatal, code, message)
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The same error with another severity (a server's FATAL at login becomes the
    /// client's ERROR when the client session itself survives).
    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    pub fn write(&self, out: &mut BytesMut) {
        write_message(out, b'E', |b| {
            let sev = self.severity.as_str();
            put_field(b, b'S', sev);
            put_field(b, b'V', sev);
            put_field(b, b'C', self.code.as_str());
            put_field(b, b'M', &self.message);
            if let Some(d) = &self.detail {
                put_field(b, b'D', d);
            }
            if let Some(h) = &self.hint {
                put_field(b, b'H', h);
            }
            b.put_u8(0);
        });
    }
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.severity.as_str(),
            self.code,
            self.message
        )
    }
}

fn put_field(b: &mut BytesMut, field: u8, value: &str) {
    b.put_u8(field);
    // A NUL inside a field would end it early; Switchyard's own texts never hold one.
    b.put_slice(value.replace('\0', " ").as_bytes());
    b.put_u8(0);
}

/// Writes a message with the given tag, filling the body with `body` and patching the length.
pub fn write_message(out: &mut BytesMut, tag: u8, body: impl FnOnce(&mut BytesMut)) {
    out.put_u8(tag);
    let len_at = out.len();
    out.put_u32(0);
    body(out);
    let len = (out.len() - len_at) as u32;
    out[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
}

pub fn ready_for_query(out: &mut BytesMut, status: TxStatus) {
    out.put_slice(&[b'Z', 0, 0, 0, 5, status.byte()]);
}

pub fn auth_ok(out: &mut BytesMut) {
    out.put_slice(&[b'R', 0, 0, 0, 8, 0, 0, 0, 0]);
}

pub fn auth_md5(out: &mut BytesMut, salt: [u8; 4]) {
    write_message(out, b'R', |b| {
        b.put_u32(5);
        b.put_slice(&salt);
    });
}

pub fn auth_sasl(out: &mut BytesMut, mechanisms: &[&str]) {
    write_message(out, b'R', |b| {
        b.put_u32(10);
        for m in mechanisms {
            b.put_slice(m.as_bytes());
            b.put_u8(0);
        }
        b.put_u8(0);
    });
}

pub fn auth_sasl_continue(out: &mut BytesMut, data: &[u8]) {
    write_message(out, b'R', |b| {
        b.put_u32(11);
        b.put_slice(data);
    });
}

pub fn auth_sasl_final(out: &mut BytesMut, data: &[u8]) {
    write_message(out, b'R', |b| {
        b.put_u32(12);
        b.put_slice(data);
    });
}

pub fn parameter_status(out: &mut BytesMut, name: &str, value: &str) {
    write_message(out, b'S', |b| {
        b.put_slice(name.as_bytes());
        b.put_u8(0);
        b.put_slice(value.as_bytes());
        b.put_u8(0);
    });
}

pub fn backend_key_data(out: &mut BytesMut, pid: i32, secret: i32) {
    write_message(out, b'K', |b| {
        b.put_i32(pid);
        b.put_i32(secret);
    });
}

pub fn command_complete(out: &mut BytesMut, tag: &str) {
    write_message(out, b'C', |b| {
        b.put_slice(tag.as_bytes());
        b.put_u8(0);
    });
}

/// The one-byte answer to SSLRequest / GSSENCRequest when encryption is not offered.
pub const NO_ENCRYPTION: u8 = b'N';
/// The one-byte answer to SSLRequest when the TLS handshake follows.
pub const TLS_ACCEPTED: u8 = b'S';

#[cfg(test)]
mod tests {
    use super::*;
    use postgres_protocol::message::backend::Message;

    #[test]
    fn error_response_decodes_with_postgres_protocol() {
        let mut out = BytesMut::new();
        PgError::error(SqlState::TOO_MANY_CONNECTIONS, "pool exhausted")
            .with_detail("waited 5 s")
            .write(&mut out);
        ready_for_query(&mut out, TxStatus::Failed);
        match Message::parse(&mut out).unwrap() {
            Some(Message::ErrorResponse(body)) => {
                use fallible_iterator::FallibleIterator;
                let fields: Vec<(u8, String)> = body
                    .fields()
                    .map(|f| Ok((f.type_(), String::from_utf8_lossy(f.value_bytes()).into())))
                    .collect()
                    .unwrap();
                assert!(fields.contains(&(b'C', "53300".into())));
                assert!(fields.contains(&(b'M', "pool exhausted".into())));
                assert!(fields.contains(&(b'S', "ERROR".into())));
                assert!(fields.contains(&(b'D', "waited 5 s".into())));
            }
            _ => panic!("not an ErrorResponse"),
        }
        match Message::parse(&mut out).unwrap() {
            Some(Message::ReadyForQuery(b)) => assert_eq!(b.status(), b'E'),
            _ => panic!("not ReadyForQuery"),
        }
    }
}
