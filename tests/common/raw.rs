//! Raw protocol helpers: hand-built frontend messages and a reader for backend frames, for
//! tests of orderings and malformed input that drivers never produce.

use bytes::{BufMut, BytesMut};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use postgres_protocol::message::frontend;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One backend message: type byte and body.
#[derive(Debug, Clone)]
pub struct Msg {
    pub tag: u8,
    pub body: Vec<u8>,
}

impl Msg {
    /// The SQLSTATE of an ErrorResponse / NoticeResponse.
    pub fn field(&self, f: u8) -> Option<String> {
        let mut b = &self.body[..];
        while let Some((&t, rest)) = b.split_first() {
            if t == 0 {
                return None;
            }
            let end = rest.iter().position(|&c| c == 0)?;
            if t == f {
                return Some(String::from_utf8_lossy(&rest[..end]).into_owned());
            }
            b = &rest[end + 1..];
        }
        None
    }
}

pub struct Raw {
    pub stream: TcpStream,
    buf: BytesMut,
}

impl Raw {
    pub async fn connect(addr: std::net::SocketAddr) -> Raw {
        Raw {
            stream: TcpStream::connect(addr).await.expect("tcp connect"),
            buf: BytesMut::new(),
        }
    }

    /// Connects and logs in with SCRAM as user/password to db; returns after ReadyForQuery.
    pub async fn login(addr: std::net::SocketAddr, user: &str, password: &str, db: &str) -> Raw {
        let mut r = Raw::connect(addr).await;
        let mut out = BytesMut::new();
        frontend::startup_message([("user", user), ("database", db)], &mut out).unwrap();
        r.send(&out).await;
        let mut scram = None;
        loop {
            let m = r.recv().await.expect("login message");
            match m.tag {
                b'R' => {
                    let code = u32::from_be_bytes(m.body[..4].try_into().unwrap());
                    let mut out = BytesMut::new();
                    match code {
                        0 => continue,
                        10 => {
                            let s = ScramSha256::new(
                                password.as_bytes(),
                                ChannelBinding::unsupported(),
                            );
                            frontend::sasl_initial_response(SCRAM_SHA_256, s.message(), &mut out)
                                .unwrap();
                            scram = Some(s);
                        }
                        11 => {
                            let s = scram.as_mut().unwrap();
                            s.update(&m.body[4..]).unwrap();
                            frontend::sasl_response(s.message(), &mut out).unwrap();
                        }
                        12 => {
                            scram.as_mut().unwrap().finish(&m.body[4..]).unwrap();
                            continue;
                        }
                        c => panic!("unexpected auth code {c}"),
                    }
                    r.send(&out).await;
                }
                b'E' => panic!("login failed: {:?}", m.field(b'M')),
                b'Z' => return r,
                _ => {}
            }
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("send");
    }

    /// Next backend message, or None if the connection closed (10 s timeout panics).
    pub async fn recv(&mut self) -> Option<Msg> {
        tokio::time::timeout(Duration::from_secs(10), self.recv_inner())
            .await
            .expect("no backend message within 10 s")
    }

    async fn recv_inner(&mut self) -> Option<Msg> {
        loop {
            if self.buf.len() >= 5 {
                let len = u32::from_be_bytes(self.buf[1..5].try_into().unwrap()) as usize;
                if self.buf.len() > len {
                    let frame = self.buf.split_to(len + 1);
                    return Some(Msg {
                        tag: frame[0],
                        body: frame[5..].to_vec(),
                    });
                }
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Messages up to and including the next ReadyForQuery.
    pub async fn until_ready(&mut self) -> Vec<Msg> {
        let mut v = Vec::new();
        loop {
            let m = self
                .recv()
                .await
                .expect("connection closed before ReadyForQuery");
            let done = m.tag == b'Z';
            v.push(m);
            if done {
                return v;
            }
        }
    }
}

/// Builders for frontend messages.
pub fn query(sql: &str) -> BytesMut {
    let mut b = BytesMut::new();
    frontend::query(sql, &mut b).unwrap();
    b
}

pub fn parse(name: &str, sql: &str) -> BytesMut {
    let mut b = BytesMut::new();
    frontend::parse(name, sql, std::iter::empty(), &mut b).unwrap();
    b
}

pub fn bind(portal: &str, stmt: &str, params: &[Option<&str>]) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_u8(b'B');
    let at = b.len();
    b.put_u32(0);
    b.put_slice(portal.as_bytes());
    b.put_u8(0);
    b.put_slice(stmt.as_bytes());
    b.put_u8(0);
    b.put_u16(0);
    b.put_u16(params.len() as u16);
    for p in params {
        match p {
            Some(v) => {
                b.put_i32(v.len() as i32);
                b.put_slice(v.as_bytes());
            }
            None => b.put_i32(-1),
        }
    }
    b.put_u16(0);
    let len = (b.len() - at) as u32;
    b[at..at + 4].copy_from_slice(&len.to_be_bytes());
    b
}

pub fn describe_portal(name: &str) -> BytesMut {
    let mut b = BytesMut::new();
    frontend::describe(b'P', name, &mut b).unwrap();
    b
}

pub fn execute(portal: &str) -> BytesMut {
    let mut b = BytesMut::new();
    frontend::execute(portal, 0, &mut b).unwrap();
    b
}

pub fn sync() -> BytesMut {
    let mut b = BytesMut::new();
    frontend::sync(&mut b);
    b
}

pub fn terminate() -> BytesMut {
    let mut b = BytesMut::new();
    frontend::terminate(&mut b);
    b
}

/// Concatenates messages into one write.
pub fn batch(parts: &[BytesMut]) -> Vec<u8> {
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

pub fn tags(msgs: &[Msg]) -> String {
    msgs.iter().map(|m| m.tag as char).collect()
}
