//! From accept to an authenticated session: TLS (SSLRequest answered `S` when `[tls]` is set,
//! or a direct TLS handshake), GSSENCRequest answered `N`, CancelRequest forwarded,
//! StartupMessage checked, access rules applied, an unlisted user looked up (`auth_query`),
//! the user authenticated, the database found; then the session takes over.

use super::authenticate::{authenticate, AuthFailure};
use super::client_io::{ClientIo, ReadError};
use super::session::Session;
use super::Shared;
use crate::backend::send_cancel;
use crate::config::HbaMethod;
use crate::net::tls::ALPN_POSTGRESQL;
use crate::net::{ClientAddr, ClientTlsConfig, Stream};
use crate::protocol::messages::{self, PgError};
use crate::protocol::startup::StartupPacket;
use crate::protocol::SqlState;
use futures_util::future::{Either, FutureExt};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// Serves one client connection until it ends; never panics on client input.
/// `over_limit`: `max_client_connections` clients are connected already; a login is refused
/// with 53300.
pub fn handle_client(
    shared: Arc<Shared>,
    stream: Stream,
    peer: ClientAddr,
    over_limit: bool,
) -> impl Future<Output = ()> + Send {
    // The login is boxed: what it needs is freed once it is done. The session then moves
    // straight into the future of `run`, which takes the login's place: an `async fn` here
    // would keep a slot for the session beside that future (rustc keeps moved-from locals
    // of an async body), and this task is what every idle client costs.
    Box::pin(open_session(shared, stream, peer, over_limit)).then(|session| match session {
        Some(session) => Either::Left(session.run()),
        None => Either::Right(std::future::ready(())),
    })
}

/// Startup and authentication: the session of a logged-in client, or None once the
/// connection is done.
async fn open_session(
    shared: Arc<Shared>,
    stream: Stream,
    peer: ClientAddr,
    over_limit: bool,
) -> Option<Session> {
    let mut io = ClientIo::new(stream);
    let timeout = shared.config.client_login_timeout();
    // Boxed: the login's state is freed once it is done, so an idle session stays small.
    let login = Box::pin(startup(&shared, &mut io, peer, over_limit));
    let started = tokio::time::timeout(timeout, login).await;
    let (user, database, params) = match started {
        Ok(Some(login)) => login,
        Ok(None) => return None,
        Err(_) => {
            tracing::info!(%peer, "client login timed out");
            io.send_error(&PgError::fatal(
                SqlState::QUERY_CANCELED,
                "canceling authentication due to timeout",
            ))
            .await;
            return None;
        }
    };
    if super::admin::is_console(&shared, &database) {
        super::admin::serve(&shared, io, &user, peer).await;
        return None;
    }
    let Some(cluster) = shared.cluster(&database) else {
        tracing::info!(%peer, %user, %database, "unknown database");
        io.send_error(&PgError::fatal(
            SqlState::INVALID_CATALOG_NAME,
            format!("database \"{database}\" does not exist"),
        ))
        .await;
        return None;
    };
    tracing::info!(%peer, %user, %database, "client logged in");
    Some(Session::new(shared, io, cluster, &user, &params))
}

/// The first byte of a TLS handshake record: a client that starts with it wants TLS at once
/// (PostgreSQL 17's `sslnegotiation=direct`), not after an SSLRequest.
const TLS_HANDSHAKE: u8 = 0x16;

/// Negotiates and authenticates; returns (user, database) or None once the connection is done.
async fn startup(
    shared: &Shared,
    io: &mut ClientIo,
    peer: ClientAddr,
    over_limit: bool,
) -> Option<(String, String, Vec<(String, String)>)> {
    // No TLS over a Unix-domain socket (as PostgreSQL): SSLRequest is answered N there.
    if let Some(tls) = shared.tls.as_ref().filter(|_| !io.stream.is_unix()) {
        if io.stream.peek_byte().await.ok()? == Some(TLS_HANDSHAKE) {
            direct_tls(tls, io, peer).await?;
        }
    }
    let params = loop {
        match io.read_startup().await {
            Ok(StartupPacket::SslRequest) => answer_ssl_request(shared, io, peer).await?,
            Ok(StartupPacket::GssEncRequest) => refuse_encryption_request(io).await?,
            Ok(StartupPacket::Cancel { pid, secret }) => {
                if let Some(target) = shared.clients.target(pid, secret) {
                    send_cancel(&target).await;
                } else {
                    tracing::debug!(%peer, "cancel request for an unknown key ignored");
                }
                return None;
            }
            Ok(StartupPacket::Startup { params }) => break params,
            Err(ReadError::Protocol(e)) => {
                tracing::info!(%peer, error = %e, "bad startup packet");
                io.send_error(&e).await;
                return None;
            }
            Err(_) => return None,
        }
    };
    let (user, database) = match who(shared, io.stream.is_tls() || io.stream.is_unix(), &params) {
        Ok(who) => who,
        Err(e) => {
            tracing::info!(%peer, error = %e, "login refused");
            io.send_error(&e).await;
            return None;
        }
    };
    if over_limit {
        let limit = shared.config.operations.max_client_connections;
        tracing::warn!(%peer, %user, %database, limit, "login refused: max_client_connections reached");
        let e = PgError::fatal(
            SqlState::TOO_MANY_CONNECTIONS,
            format!("too many client connections: max_client_connections = {limit} reached"),
        );
        io.send_error(&e).await;
        return None;
    }
    let method = match access_method(shared, peer, io.stream.is_tls(), &database, &user) {
        Ok(m) => m,
        Err(e) => {
            tracing::info!(%peer, %user, %database, error = %e, "refused by the [[hba]] rules");
            io.send_error(&e).await;
            return None;
        }
    };
    if let Err(e) = super::auth_query::look_up(shared, &database, &user).await {
        tracing::info!(%peer, %user, %database, error = %e, "login failed: user lookup");
        io.send_error(&e).await;
        return None;
    }
    match authenticate(io, shared, &database, &user, method).await {
        Ok(()) => {}
        Err(AuthFailure::Fatal(e)) => {
            // Local (Unix-socket) clients share one entry.
            let ip = peer.ip().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            let delay = shared.login_throttle.failed(ip);
            tracing::info!(%peer, %user, error = %e, delay_ms = delay.as_millis() as u64, "client authentication failed");
            tokio::time::sleep(delay).await;
            io.send_error(&e).await;
            return None;
        }
        Err(AuthFailure::Gone) => return None,
    }
    messages::auth_ok(io.out());
    Some((user, database, params))
}

/// The user and database a startup packet asks for, or why the login is refused: TLS
/// required but not used (`private`: TLS, or a Unix-domain socket, which never leaves the
/// host), a replication connection, no user name.
fn who(
    shared: &Shared,
    private: bool,
    params: &[(String, String)],
) -> Result<(String, String), PgError> {
    if shared.tls.as_ref().is_some_and(|t| t.required) && !private {
        return Err(PgError::fatal(
            SqlState::INVALID_AUTHORIZATION,
            "TLS is required: connect with sslmode=require (or verify-ca / verify-full)",
        ));
    }
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if get("replication").is_some_and(|v| v != "false" && v != "0" && v != "off") {
        return Err(PgError::fatal(
            SqlState::FEATURE_NOT_SUPPORTED,
            "replication connections are not supported through Switchyard",
        ));
    }
    let Some(user) = get("user").filter(|u| !u.is_empty()) else {
        return Err(PgError::fatal(
            SqlState::INVALID_AUTHORIZATION,
            "no PostgreSQL user name specified in startup packet",
        ));
    };
    let database = get("database")
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| user.clone());
    Ok((user, database))
}

/// The method the first matching `[[hba]]` rule gives this connection (None: there are no
/// rules, `auth_method` applies), or why it is refused (28000, as PostgreSQL).
fn access_method(
    shared: &Shared,
    peer: ClientAddr,
    tls: bool,
    database: &str,
    user: &str,
) -> Result<Option<HbaMethod>, PgError> {
    let rules = &shared.config.hba;
    if rules.is_empty() {
        return Ok(None);
    }
    let encryption = if tls { "TLS" } else { "no encryption" };
    let from = match peer.ip() {
        Some(ip) => format!("host \"{ip}\""),
        None => "local".to_string(),
    };
    let who = format!("{from}, user \"{user}\", database \"{database}\", {encryption}");
    match rules
        .iter()
        .find(|r| r.matches(peer.ip(), tls, database, user))
    {
        Some(r) if r.method == HbaMethod::Reject => Err(PgError::fatal(
            SqlState::INVALID_AUTHORIZATION,
            format!("an [[hba]] rule rejects the connection for {who}"),
        )),
        Some(r) => Ok(Some(r.method)),
        None => Err(PgError::fatal(
            SqlState::INVALID_AUTHORIZATION,
            format!("no [[hba]] rule matches {who}"),
        )),
    }
}

/// Bytes sent before our answer to an SSLRequest could be injected by a third party.
async fn refuse_early_bytes(io: &mut ClientIo) -> Option<()> {
    if io.has_buffered() {
        io.send_error(&PgError::fatal(
            SqlState::PROTOCOL_VIOLATION,
            "received unencrypted data after SSL request",
        ))
        .await;
        return None;
    }
    Some(())
}

/// GSSENCRequest (and SSLRequest without TLS configured): answered `N`, the client goes on
/// in plain text.
async fn refuse_encryption_request(io: &mut ClientIo) -> Option<()> {
    refuse_early_bytes(io).await?;
    io.out().extend_from_slice(&[messages::NO_ENCRYPTION]);
    io.flush().await.ok()
}

/// SSLRequest: `S` and the handshake when TLS is configured (and not running already),
/// otherwise `N`.
async fn answer_ssl_request(shared: &Shared, io: &mut ClientIo, peer: ClientAddr) -> Option<()> {
    let Some(tls) = shared
        .tls
        .as_ref()
        .filter(|_| !io.stream.is_tls() && !io.stream.is_unix())
    else {
        return refuse_encryption_request(io).await;
    };
    refuse_early_bytes(io).await?;
    io.out().extend_from_slice(&[messages::TLS_ACCEPTED]);
    io.flush().await.ok()?;
    if let Err(e) = io.stream.accept_tls(&tls.acceptor).await {
        tracing::info!(%peer, error = %e, "TLS handshake with client failed");
        return None;
    }
    Some(())
}

/// A client that opened with a TLS handshake: it must agree on ALPN `postgresql`, as
/// PostgreSQL requires for direct TLS (so a TLS client of another protocol is turned away).
async fn direct_tls(tls: &ClientTlsConfig, io: &mut ClientIo, peer: ClientAddr) -> Option<()> {
    if let Err(e) = io.stream.accept_tls(&tls.acceptor).await {
        tracing::info!(%peer, error = %e, "direct TLS handshake with client failed");
        return None;
    }
    if io.stream.alpn_protocol() != Some(ALPN_POSTGRESQL) {
        tracing::info!(%peer, "direct TLS without ALPN \"postgresql\" refused");
        io.send_error(&PgError::fatal(
            SqlState::PROTOCOL_VIOLATION,
            "received direct SSL connection request without ALPN protocol negotiation extension",
        ))
        .await;
        return None;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An idle client costs its task, and the future of `handle_client` (the session plus
    /// its idle wait) lives in that task for the whole connection: rare paths must stay boxed.
    /// tokio allocates a task as one 128-byte-aligned block of the future plus ~104 bytes of
    /// header, stage tag and trailer; the listener wraps the future in 8 bytes more. Up to 272
    /// bytes here the task is 384 bytes, a size class of jemalloc's that keeps the alignment.
    #[tokio::test]
    async fn a_client_task_stays_small() {
        let text = "listen = \"127.0.0.1:0\"\n[[users]]\nname = \"u\"\npassword = \"p\"\n\
                    [databases.d]\nhosts = [\"127.0.0.1:1\"]\n";
        let config = crate::config::Config::from_toml_str(text).expect("config");
        let app = crate::app::App::new(config).expect("app");
        let listener = crate::net::Listener::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let stream = Stream::connect(&addr.to_string()).await.unwrap();
        let fut = handle_client(app.shared(), stream, addr.into(), false);
        let size = std::mem::size_of_val(&fut);
        // 976 bytes at first; 752 once the idle wait and the error paths were slimmed; 248
        // with the session moved into `run`, one boxed buffer set, boxed statement names and
        // the shutdown waker kept in the cancel registration.
        assert!(size <= 272, "handle_client future is {size} bytes");
    }
}
