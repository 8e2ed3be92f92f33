//! Opening a server connection: TCP or Unix-domain connect, StartupMessage, authentication (trust,
//! cleartext, md5, SCRAM-SHA-256), then ParameterStatus and BackendKeyData up to the first
//! ReadyForQuery.

use super::cancel::CancelTarget;
use super::conn::ServerConn;
use super::server_frames::read_frame;
use super::server_scram::{ScramLoginError, ServerScram};
use crate::auth::ServerSecret;
use crate::config::ServerTlsMode;
use crate::net::tls::{end_point_hash, server_name};
use crate::net::{ServerTlsConfig, Stream};
use crate::prepared::ServerStatements;
use crate::protocol::backend_msgs::{error_fields, parameter_status};
use crate::protocol::frame::HEADER_LEN;
use crate::protocol::messages::{PgError, Severity};
use crate::protocol::SqlState;
use bytes::{Buf, BytesMut};
use postgres_protocol::message::frontend;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::io::AsyncReadExt;

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
    #[error("server {addr}: TLS: {why}")]
    Tls { addr: String, why: String },
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
#[derive(Clone, Copy)]
pub struct LoginParams<'a> {
    pub addr: &'a str,
    pub user: &'a str,
    pub dbname: &'a str,
    pub secret: &'a ServerSecret,
    pub timeout: Duration,
    /// `application_name` sent at login (pooled connections get the client's by SET).
    pub application_name: Option<&'a str>,
    /// Prepared statements the connection keeps (least recently used ones are closed).
    pub statements_per_connection: usize,
    /// Whether and how to use TLS (`server_tls`).
    pub tls: &'a ServerTlsConfig,
    /// A logical replication connection (`replication=database`), for the cache's change
    /// stream.
    pub replication: bool,
}

/// Connects and logs in, all within `p.timeout`.
pub async fn connect(p: &LoginParams<'_>) -> Result<ServerConn, BackendError> {
    // A secret fetched by auth_query is read as it is now.
    let secret = p.secret.current();
    let p = &LoginParams {
        secret: &secret,
        ..*p
    };
    match tokio::time::timeout(p.timeout, connect_inner(p)).await {
        Ok(r) => r,
        Err(_) => Err(BackendError::Timeout {
            addr: p.addr.to_string(),
        }),
    }
}

/// SSLRequest's code (1234 5679).
const SSL_REQUEST_CODE: u32 = 80_877_103;

/// Asks the server for TLS as `server_tls` says, and upgrades the stream if it agrees. Over
/// a Unix-domain socket TLS is never asked for (as libpq): "prefer" goes on in the clear,
/// a mode that insists is an error.
async fn negotiate_tls(stream: &mut Stream, p: &LoginParams<'_>) -> Result<(), BackendError> {
    let Some(connector) = p.tls.connector() else {
        return Ok(());
    };
    let tls_err = |why: String| BackendError::Tls {
        addr: p.addr.to_string(),
        why,
    };
    if stream.is_unix() {
        return match p.tls.mode {
            ServerTlsMode::Prefer | ServerTlsMode::Disable => Ok(()),
            mode => Err(tls_err(format!(
                "TLS is not used over a Unix-domain socket, but server_tls = \"{}\"",
                mode.as_str()
            ))),
        };
    }
    let mut request = [0u8; 8];
    request[..4].copy_from_slice(&8u32.to_be_bytes());
    request[4..].copy_from_slice(&SSL_REQUEST_CODE.to_be_bytes());
    let mut answer = [0u8; 1];
    let exchange = async {
        stream.send_all(&request).await?;
        stream.read_exact(&mut answer).await
    };
    exchange.await.map_err(|source| BackendError::Connect {
        addr: p.addr.to_string(),
        source,
    })?;
    match answer[0] {
        b'S' => {
            let name = server_name(p.addr).map_err(tls_err)?;
            stream
                .connect_tls(connector, name)
                .await
                .map_err(|e| tls_err(e.to_string()))
        }
        b'N' if p.tls.mode == ServerTlsMode::Prefer => Ok(()),
        b'N' => Err(tls_err(format!(
            "the server does not accept TLS, but server_tls = \"{}\"",
            p.tls.mode.as_str()
        ))),
        other => Err(protocol_error(
            p.addr,
            &format!("unexpected answer {other} to SSLRequest"),
        )),
    }
}

/// What the login has learnt so far, up to the first ReadyForQuery.
struct Login<'p, 'a> {
    p: &'p LoginParams<'a>,
    scram: Option<ServerScram>,
    /// Over TLS: the server certificate's channel-binding hash.
    tls_hash: Option<Vec<u8>>,
    reported: HashMap<String, String>,
    key: (i32, i32),
}

async fn connect_inner(p: &LoginParams<'_>) -> Result<ServerConn, BackendError> {
    let io_err = |source: std::io::Error| BackendError::Connect {
        addr: p.addr.to_string(),
        source,
    };
    let mut stream = Stream::connect(p.addr).await.map_err(io_err)?;
    negotiate_tls(&mut stream, p).await?;
    let mut out = BytesMut::new();
    let mut params = vec![("user", p.user), ("database", p.dbname)];
    if let Some(name) = p.application_name {
        params.push(("application_name", name));
    }
    if p.replication {
        params.push(("replication", "database"));
    }
    frontend::startup_message(params, &mut out).map_err(io_err)?;
    stream.send_all(&out).await.map_err(io_err)?;

    let mut buf = BytesMut::with_capacity(1024);
    let mut login = Login {
        p,
        scram: None,
        tls_hash: stream.server_certificate().map(end_point_hash),
        reported: HashMap::new(),
        key: (0, 0),
    };
    loop {
        let h = read_frame(&mut stream, &mut buf).await.map_err(io_err)?;
        let frame = buf.split_to(h.total_len);
        let body = &frame[HEADER_LEN..];
        match h.tag {
            b'R' => {
                out.clear();
                login.authentication(body, &mut out)?;
                if !out.is_empty() {
                    stream.send_all(&out).await.map_err(io_err)?;
                }
            }
            b'S' => {
                if let Some((n, v)) = parameter_status(&frame) {
                    login.reported.insert(n.to_string(), v.to_string());
                }
            }
            b'K' => {
                let mut b = body;
                if b.len() < 8 {
                    return Err(login.protocol("short BackendKeyData"));
                }
                login.key = (b.get_i32(), b.get_i32());
            }
            b'E' => {
                let error =
                    error_fields(&frame).ok_or_else(|| login.protocol("bad ErrorResponse"))?;
                return Err(BackendError::Refused {
                    addr: p.addr.to_string(),
                    error,
                });
            }
            b'N' => {}
            b'Z' => return Ok(login.into_connection(stream)),
            _ => return Err(login.protocol("unexpected message during login")),
        }
    }
}

impl Login<'_, '_> {
    fn protocol(&self, why: &str) -> BackendError {
        protocol_error(self.p.addr, why)
    }

    fn password(&self, method: &str) -> Result<&str, BackendError> {
        match self.p.secret {
            ServerSecret::Password(pw) => Ok(pw),
            _ => Err(no_password(self.p.addr, self.p.user, method)),
        }
    }

    /// Answers one authentication request into `out` (nothing to send: left empty).
    fn authentication(&mut self, body: &[u8], out: &mut BytesMut) -> Result<(), BackendError> {
        let code = body
            .get(..4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .ok_or_else(|| self.protocol("short authentication message"))?;
        let data = &body[4..];
        let addr = self.p.addr;
        let proto = |why: &str| protocol_error(addr, why);
        let encode = |e: std::io::Error| proto(&e.to_string());
        match code {
            0 => Ok(()),
            3 => frontend::password_message(self.password("password")?.as_bytes(), out)
                .map_err(encode),
            5 => {
                let salt: [u8; 4] = data
                    .get(..4)
                    .and_then(|s| s.try_into().ok())
                    .ok_or_else(|| self.protocol("short md5 salt"))?;
                let digest = match self.p.secret {
                    ServerSecret::Password(pw) => crate::auth::md5::md5_hash(self.p.user, pw)
                        .trim_start_matches("md5")
                        .to_string(),
                    ServerSecret::Md5Digest(d) => d.clone(),
                    _ => return Err(no_password(self.p.addr, self.p.user, "md5")),
                };
                let answer = crate::auth::md5::md5_response(&digest, salt);
                frontend::password_message(answer.as_bytes(), out).map_err(encode)
            }
            10 => self.scram_start(data, out),
            11 => {
                let s = self
                    .scram
                    .as_mut()
                    .ok_or_else(|| proto("unexpected SASL continue"))?;
                let answer = s.answer(data).map_err(|e| self.scram_error(e))?;
                frontend::sasl_response(&answer, out).map_err(encode)
            }
            12 => {
                let s = self
                    .scram
                    .as_mut()
                    .ok_or_else(|| proto("unexpected SASL final"))?;
                s.finish(data).map_err(|e| self.scram_error(e))
            }
            other => Err(self.protocol(&format!("unsupported authentication request {other}"))),
        }
    }

    fn scram_start(&mut self, mechanisms: &[u8], out: &mut BytesMut) -> Result<(), BackendError> {
        let tls_hash = self.tls_hash.clone();
        let (s, mechanism, first) =
            ServerScram::start(self.p.secret, self.p.user, mechanisms, tls_hash)
                .map_err(|e| self.scram_error(e))?;
        frontend::sasl_initial_response(mechanism, &first, out)
            .map_err(|e| self.protocol(&e.to_string()))?;
        self.scram = Some(s);
        Ok(())
    }

    fn scram_error(&self, e: ScramLoginError) -> BackendError {
        match e {
            ScramLoginError::Protocol(why) => self.protocol(&why),
            ScramLoginError::NoSecret(why) => BackendError::Refused {
                addr: self.p.addr.to_string(),
                error: PgError::fatal(SqlState::INVALID_PASSWORD, why),
            },
        }
    }

    /// The logged-in connection, at its first ReadyForQuery.
    fn into_connection(self, stream: Stream) -> ServerConn {
        let now = crate::util::coarse_clock::now_ms();
        let in_hot_standby = self
            .reported
            .get("in_hot_standby")
            .is_some_and(|v| v == "on");
        let addr: Arc<str> = self.p.addr.into();
        ServerConn {
            stream,
            cancel: Arc::new(CancelTarget {
                addr: addr.clone(),
                pid: self.key.0,
                secret: self.key.1,
            }),
            addr,
            reported: self.reported,
            applied: Default::default(),
            applied_version: 0,
            prepared: ServerStatements::new(self.p.statements_per_connection),
            queue: Default::default(),
            in_hot_standby,
            broken: false,
            created_at: now,
            generation: 0,
            returned_at: now,
        }
    }
}

fn protocol_error(addr: &str, why: &str) -> BackendError {
    BackendError::Protocol {
        addr: addr.to_string(),
        why: why.to_string(),
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
