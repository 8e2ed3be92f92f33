//! Opening a server connection: TCP connect, StartupMessage, authentication (trust,
//! cleartext, md5, SCRAM-SHA-256), then ParameterStatus and BackendKeyData up to the first
//! ReadyForQuery.

use super::conn::ServerConn;
use super::server_frames::read_frame;
use crate::auth::ServerSecret;
use crate::net::Stream;
use crate::protocol::backend_msgs::{error_fields, parameter_status};
use crate::protocol::frame::HEADER_LEN;
use crate::protocol::messages::{PgError, Severity};
use crate::protocol::SqlState;
use bytes::{Buf, BytesMut};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use postgres_protocol::message::frontend;
use std::collections::HashMap;
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum BackendError {
    #[error("could not connect to server {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("timed out connecting to server {addr}")]
    Timeout { addr: String },
    #[error("server {addr} refused the login: {error}")]
    Refused { addr: String, error: PgError },
    #[error("server {addr}: {why}")]
    Protocol { addr: String, why: String },
}

impl BackendError {
    /// The error to show a client whose request needed this connection.
    pub fn to_client_error(&self) -> PgError {
        match self {
            BackendError::Refused { error, .. } => error.clone().with_severity(Severity::Error),
            other => PgError::error(SqlState::CONNECTION_FAILURE, other.to_string()),
        }
    }
}

/// Parameters for one login.
pub struct LoginParams<'a> {
    pub addr: &'a str,
    pub user: &'a str,
    pub dbname: &'a str,
    pub secret: &'a ServerSecret,
    pub timeout: Duration,
    /// `application_name` sent at login (pooled connections get the client's by SET).
    pub application_name: Option<&'a str>,
}

/// Connects and logs in, all within `p.timeout`.
pub async fn connect(p: &LoginParams<'_>) -> Result<ServerConn, BackendError> {
    match tokio::time::timeout(p.timeout, connect_inner(p)).await {
        Ok(r) => r,
        Err(_) => Err(BackendError::Timeout {
            addr: p.addr.to_string(),
        }),
    }
}

async fn connect_inner(p: &LoginParams<'_>) -> Result<ServerConn, BackendError> {
    let addr = p.addr.to_string();
    let io_err = |source: std::io::Error| BackendError::Connect {
        addr: addr.clone(),
        source,
    };
    let mut stream = Stream::connect(p.addr).await.map_err(io_err)?;
    let mut out = BytesMut::new();
    let mut params = vec![("user", p.user), ("database", p.dbname)];
    if let Some(name) = p.application_name {
        params.push(("application_name", name));
    }
    frontend::startup_message(params, &mut out).map_err(io_err)?;
    stream.send_all(&out).await.map_err(io_err)?;

    let proto = |why: &str| BackendError::Protocol {
        addr: addr.clone(),
        why: why.to_string(),
    };
    let mut buf = BytesMut::with_capacity(1024);
    let mut scram: Option<ScramSha256> = None;
    let mut reported = HashMap::new();
    let mut key = (0, 0);
    loop {
        let h = read_frame(&mut stream, &mut buf).await.map_err(io_err)?;
        let frame = buf.split_to(h.total_len);
        let body = &frame[HEADER_LEN..];
        match h.tag {
            b'R' => {
                if body.len() < 4 {
                    return Err(proto("short authentication message"));
                }
                let code = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                let data = &body[4..];
                out.clear();
                match code {
                    0 => continue,
                    3 => {
                        let pw = match p.secret {
                            ServerSecret::Password(pw) => pw,
                            _ => return Err(no_password(&addr, p.user, "password")),
                        };
                        frontend::password_message(pw.as_bytes(), &mut out).map_err(io_err)?;
                    }
                    5 => {
                        let salt: [u8; 4] = data
                            .get(..4)
                            .and_then(|s| s.try_into().ok())
                            .ok_or_else(|| proto("short md5 salt"))?;
                        let digest = match p.secret {
                            ServerSecret::Password(pw) => crate::auth::md5::md5_hash(p.user, pw)
                                .trim_start_matches("md5")
                                .to_string(),
                            ServerSecret::Md5Digest(d) => d.clone(),
                            ServerSecret::None => return Err(no_password(&addr, p.user, "md5")),
                        };
                        let answer = crate::auth::md5::md5_response(&digest, salt);
                        frontend::password_message(answer.as_bytes(), &mut out).map_err(io_err)?;
                    }
                    10 => {
                        let pw = match p.secret {
                            ServerSecret::Password(pw) => pw,
                            _ => return Err(no_password(&addr, p.user, "SCRAM-SHA-256")),
                        };
                        let offered = data
                            .split(|&b| b == 0)
                            .any(|m| m == SCRAM_SHA_256.as_bytes());
                        if !offered {
                            return Err(proto("server offers no SASL mechanism we support"));
                        }
                        let s = ScramSha256::new(pw.as_bytes(), ChannelBinding::unsupported());
                        frontend::sasl_initial_response(SCRAM_SHA_256, s.message(), &mut out)
                            .map_err(io_err)?;
                        scram = Some(s);
                    }
                    11 => {
                        let s = scram
                            .as_mut()
                            .ok_or_else(|| proto("unexpected SASL continue"))?;
                        s.update(data).map_err(|e| proto(&e.to_string()))?;
                        frontend::sasl_response(s.message(), &mut out).map_err(io_err)?;
                    }
                    12 => {
                        let s = scram
                            .as_mut()
                            .ok_or_else(|| proto("unexpected SASL final"))?;
                        s.finish(data).map_err(|e| proto(&e.to_string()))?;
                        continue;
                    }
                    other => {
                        return Err(proto(&format!(
                            "unsupported authentication request {other}"
                        )))
                    }
                }
                stream.send_all(&out).await.map_err(io_err)?;
            }
            b'S' => {
                if let Some((n, v)) = parameter_status(&frame) {
                    reported.insert(n.to_string(), v.to_string());
                }
            }
            b'K' => {
                let mut b = body;
                if b.len() < 8 {
                    return Err(proto("short BackendKeyData"));
                }
                key = (b.get_i32(), b.get_i32());
            }
            b'E' => {
                let error = error_fields(&frame).ok_or_else(|| proto("bad ErrorResponse"))?;
                return Err(BackendError::Refused { addr, error });
            }
            b'N' => {}
            b'Z' => {
                let now = crate::util::coarse_clock::now_ms();
                let in_hot_standby = reported.get("in_hot_standby").is_some_and(|v| v == "on");
                let addr: std::sync::Arc<str> = addr.into();
                return Ok(ServerConn {
                    stream,
                    cancel: std::sync::Arc::new(super::cancel::CancelTarget {
                        addr: addr.clone(),
                        pid: key.0,
                        secret: key.1,
                    }),
                    addr,
                    reported,
                    applied: Default::default(),
                    applied_version: 0,
                    prepared: crate::prepared::ServerStatements::new(250),
                    queue: Default::default(),
                    in_hot_standby,
                    broken: false,
                    created_at: now,
                    generation: 0,
                    returned_at: now,
                });
            }
            _ => return Err(proto("unexpected message during login")),
        }
    }
}

fn no_password(addr: &str, user: &str, method: &str) -> BackendError {
    BackendError::Refused {
        addr: addr.to_string(),
        error: PgError::fatal(
            SqlState::INVALID_PASSWORD,
            format!(
                "server asks for {method} authentication of user \"{user}\", but Switchyard \
                 has no password for that user (configure the plaintext password)"
            ),
        ),
    }
}
