//! The untyped first packet of a client connection: SSLRequest, GSSENCRequest, CancelRequest
//! or StartupMessage (protocol 3.0) with its parameters.

use super::frame::read_cstr;

pub const SSL_REQUEST_CODE: u32 = 80877103;
pub const GSSENC_REQUEST_CODE: u32 = 80877104;
pub const CANCEL_REQUEST_CODE: u32 = 80877102;
pub const PROTOCOL_3_0: u32 = 196608;

/// The largest startup packet accepted (Postgres uses 10,000 bytes).
pub const MAX_STARTUP_LEN: usize = 10_000;
/// The most parameters a StartupMessage may carry.
pub const MAX_STARTUP_PARAMS: usize = 64;

#[derive(Debug, PartialEq, Eq)]
pub enum StartupPacket {
    SslRequest,
    GssEncRequest,
    Cancel { pid: i32, secret: i32 },
    Startup { params: Vec<(String, String)> },
}

#[derive(Debug, PartialEq, Eq)]
pub enum StartupError {
    BadLength(u32),
    UnsupportedProtocol(u32),
    Malformed(&'static str),
}

impl std::fmt::Display for StartupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartupError::BadLength(n) => write!(f, "invalid length of startup packet: {n}"),
            StartupError::UnsupportedProtocol(v) => write!(
                f,
                "unsupported frontend protocol {}.{}: server supports 3.0",
                v >> 16,
                v & 0xffff
            ),
            StartupError::Malformed(why) => write!(f, "invalid startup packet layout: {why}"),
        }
    }
}

/// Length of the packet at the front of `buf` once its 4-byte length is there.
pub fn packet_len(buf: &[u8]) -> Result<Option<usize>, StartupError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if !(8..=MAX_STARTUP_LEN as u32).contains(&len) {
        return Err(StartupError::BadLength(len));
    }
    Ok(Some(len as usize))
}

/// Decodes one whole startup-phase packet (length prefix included).
pub fn decode(packet: &[u8]) -> Result<StartupPacket, StartupError> {
    if packet.len() < 8 {
        return Err(StartupError::Malformed("too short"));
    }
    let code = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
    let body = &packet[8..];
    match code {
        SSL_REQUEST_CODE => Ok(StartupPacket::SslRequest),
        GSSENC_REQUEST_CODE => Ok(StartupPacket::GssEncRequest),
        CANCEL_REQUEST_CODE => {
            if body.len() != 8 {
                return Err(StartupError::Malformed("cancel request of wrong size"));
            }
            let pid = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
            let secret = i32::from_be_bytes([body[4], body[5], body[6], body[7]]);
            Ok(StartupPacket::Cancel { pid, secret })
        }
        PROTOCOL_3_0 => decode_params(body).map(|params| StartupPacket::Startup { params }),
        v => Err(StartupError::UnsupportedProtocol(v)),
    }
}

fn decode_params(mut body: &[u8]) -> Result<Vec<(String, String)>, StartupError> {
    let mut params = Vec::new();
    loop {
        let (name, rest) = read_cstr(body).ok_or(StartupError::Malformed("missing terminator"))?;
        if name.is_empty() {
            if !rest.is_empty() {
                return Err(StartupError::Malformed("bytes after the terminator"));
            }
            return Ok(params);
        }
        let (value, rest) = read_cstr(rest).ok_or(StartupError::Malformed("missing value"))?;
        let name = String::from_utf8(name.to_vec())
            .map_err(|_| StartupError::Malformed("parameter name is not UTF-8"))?;
        let value = String::from_utf8(value.to_vec())
            .map_err(|_| StartupError::Malformed("parameter value is not UTF-8"))?;
        if params.len() == MAX_STARTUP_PARAMS {
            return Err(StartupError::Malformed("too many parameters"));
        }
        params.push((name, value));
        body = rest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(code: u32, body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(&code.to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn decodes_startup_params() {
        let p = packet(PROTOCOL_3_0, b"user\0app\0database\0db\0\0");
        assert_eq!(packet_len(&p), Ok(Some(p.len())));
        assert_eq!(
            decode(&p),
            Ok(StartupPacket::Startup {
                params: vec![
                    ("user".into(), "app".into()),
                    ("database".into(), "db".into())
                ]
            })
        );
    }

    #[test]
    fn caps_the_number_of_parameters() {
        let body = |n: usize| {
            let mut b: Vec<u8> = (0..n)
                .flat_map(|i| format!("p{i}\0v\0").into_bytes())
                .collect();
            b.push(0);
            b
        };
        let ok = packet(PROTOCOL_3_0, &body(MAX_STARTUP_PARAMS));
        assert!(
            matches!(decode(&ok), Ok(StartupPacket::Startup { params }) if params.len() == MAX_STARTUP_PARAMS)
        );
        let too_many = packet(PROTOCOL_3_0, &body(MAX_STARTUP_PARAMS + 1));
        assert_eq!(
            decode(&too_many),
            Err(StartupError::Malformed("too many parameters"))
        );
    }

    #[test]
    fn decodes_requests_and_cancel() {
        assert_eq!(
            decode(&packet(SSL_REQUEST_CODE, b"")),
            Ok(StartupPacket::SslRequest)
        );
        assert_eq!(
            decode(&packet(GSSENC_REQUEST_CODE, b"")),
            Ok(StartupPacket::GssEncRequest)
        );
        let mut body = 7i32.to_be_bytes().to_vec();
        body.extend_from_slice(&(-9i32).to_be_bytes());
        assert_eq!(
            decode(&packet(CANCEL_REQUEST_CODE, &body)),
            Ok(StartupPacket::Cancel { pid: 7, secret: -9 })
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(packet_len(&[0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(packet_len(&[0, 0, 0, 2]).is_err());
        assert!(decode(&packet(1234, b"")).is_err());
        assert!(decode(&packet(PROTOCOL_3_0, b"user\0app")).is_err());
        assert!(decode(&packet(PROTOCOL_3_0, b"user\0app\0\0junk")).is_err());
    }
}
