//! Checks of the access settings: the `[tls]` table, a database's `server_tls` /
//! `server_ca`, the `[[hba]]` rules and `[auth_query]`.

use super::super::access::{
    AuthQuery, ClientTls, HbaAddress, HbaMethod, HbaRule, HbaType, ServerTlsMode,
    DEFAULT_AUTH_QUERY, DEFAULT_AUTH_QUERY_LIFETIME_MS,
};
use super::super::types::MAX_DURATION_MS;
use super::super::types::{password_kind, PasswordKind, RawAuthQuery, RawHba, RawTls};
use super::super::ConfigError;
use super::Checker;
use std::path::PathBuf;
use toml::Spanned;

impl Checker<'_> {
    /// `[tls]`: `cert` and `key` are required; file contents are checked when the
    /// certificates are loaded (`--check` does that too).
    pub(super) fn tls(&self, raw: Spanned<RawTls>) -> Result<ClientTls, ConfigError> {
        let span = raw.span();
        let raw = raw.into_inner();
        let path = |v: Spanned<String>, key: &str| self.file_name(v, &format!("tls.{key}"));
        Ok(ClientTls {
            cert: path(self.required(raw.cert, &span, "tls", "cert")?, "cert")?,
            key: path(self.required(raw.key, &span, "tls", "key")?, "key")?,
            ca: raw.ca.map(|v| path(v, "ca")).transpose()?,
            mode: raw.mode.map(Spanned::into_inner).unwrap_or_default(),
        })
    }

    /// The `[[hba]]` rules, in file order.
    pub(super) fn hba(
        &self,
        raw: Vec<Spanned<RawHba>>,
        client_certificates: bool,
    ) -> Result<Vec<HbaRule>, ConfigError> {
        raw.into_iter()
            .enumerate()
            .map(|(i, rule)| self.hba_rule(rule, i, client_certificates))
            .collect()
    }

    /// One `[[hba]]` rule: `type`, `address` (not for `local`) and `method` are required,
    /// `database` and `user` default to "all". `cert` needs TLS (`hostssl`) and client
    /// certificates (`[tls] ca`).
    pub(super) fn hba_rule(
        &self,
        raw: Spanned<RawHba>,
        i: usize,
        client_certificates: bool,
    ) -> Result<HbaRule, ConfigError> {
        let span = raw.span();
        let path = format!("hba[{i}]");
        let raw = raw.into_inner();
        let kind = self.required(raw.kind, &span, &path, "type")?;
        let method = self.required(raw.method, &span, &path, "method")?;
        let address = match (kind.get_ref(), raw.address) {
            (HbaType::Local, None) => HbaAddress::All,
            (HbaType::Local, Some(a)) => {
                return Err(self.invalid(
                    &a.span(),
                    &format!("{path}.address"),
                    "a \"local\" rule (the Unix-domain socket) has no address",
                ))
            }
            (_, address) => {
                let address = self.required(address, &span, &path, "address")?;
                address
                    .get_ref()
                    .parse::<HbaAddress>()
                    .map_err(|why| self.invalid(&address.span(), &format!("{path}.address"), why))?
            }
        };
        if *method.get_ref() == HbaMethod::Cert {
            let why = if *kind.get_ref() != HbaType::Hostssl {
                "\"cert\" needs type = \"hostssl\" (a certificate comes with TLS only)"
            } else if !client_certificates {
                "\"cert\" needs [tls] ca, so that clients are asked for certificates"
            } else {
                ""
            };
            if !why.is_empty() {
                return Err(self.invalid(&method.span(), &format!("{path}.method"), why));
            }
        }
        let name = |v: Option<Spanned<String>>| v.map(Spanned::into_inner).filter(|n| n != "all");
        Ok(HbaRule {
            kind: kind.into_inner(),
            database: name(raw.database),
            user: name(raw.user),
            address,
            method: method.into_inner(),
        })
    }

    /// `[auth_query]`: `user` and `password` are required; the password must be one that
    /// logs in to a server (plaintext, or an md5 hash for md5 servers), and the query must
    /// take the user name as `$1`.
    pub(super) fn auth_query(&self, raw: Spanned<RawAuthQuery>) -> Result<AuthQuery, ConfigError> {
        let span = raw.span();
        let raw = raw.into_inner();
        let user = self.required(raw.user, &span, "auth_query", "user")?;
        self.identifier(&user, "auth_query.user", "user name")?;
        let password = self.required(raw.password, &span, "auth_query", "password")?;
        let password = self.secret(password, "auth_query.password")?;
        let secret = password.get_ref();
        let why = if secret.is_empty() {
            "the password must not be empty"
        } else if secret.contains('\0') {
            "the password must not contain a NUL character"
        } else if password_kind(secret) == PasswordKind::ScramSha256 {
            "a SCRAM verifier cannot log in to a server: give the password (or an md5 hash, \
             for servers that ask for md5)"
        } else {
            ""
        };
        if !why.is_empty() {
            return Err(self.invalid(&password.span(), "auth_query.password", why));
        }
        let query = match raw.query {
            Some(q) if !q.get_ref().contains("$1") => {
                return Err(self.invalid(
                    &q.span(),
                    "auth_query.query",
                    "the query must take the user name as $1 and return (name, secret), e.g. \
                     SELECT usename, passwd FROM pg_shadow WHERE usename = $1",
                ))
            }
            Some(q) => q.into_inner(),
            None => DEFAULT_AUTH_QUERY.to_string(),
        };
        Ok(AuthQuery {
            user: user.into_inner(),
            password: password.into_inner(),
            query,
            cache_lifetime_ms: self.int(
                raw.cache_lifetime_ms,
                "auth_query.cache_lifetime_ms",
                DEFAULT_AUTH_QUERY_LIFETIME_MS,
                0,
                MAX_DURATION_MS,
                "",
            )?,
        })
    }

    /// A file name: not empty.
    pub(super) fn file_name(
        &self,
        value: Spanned<String>,
        path: &str,
    ) -> Result<PathBuf, ConfigError> {
        if value.get_ref().trim().is_empty() {
            return Err(self.invalid(&value.span(), path, "the file name must not be empty"));
        }
        Ok(PathBuf::from(value.into_inner()))
    }

    /// `server_tls` and `server_ca` of a database: the verify modes need a CA.
    pub(super) fn server_tls(
        &self,
        name: &Spanned<String>,
        path: &str,
        mode: Option<Spanned<ServerTlsMode>>,
        ca: Option<Spanned<String>>,
    ) -> Result<(ServerTlsMode, Option<PathBuf>), ConfigError> {
        let mode_span = mode.as_ref().map(|m| m.span());
        let mode = mode.map(Spanned::into_inner).unwrap_or_default();
        let ca = ca
            .map(|c| self.file_name(c, &format!("{path}.server_ca")))
            .transpose()?;
        if matches!(mode, ServerTlsMode::VerifyCa | ServerTlsMode::VerifyFull) && ca.is_none() {
            return Err(self.invalid(
                &mode_span.unwrap_or_else(|| name.span()),
                &format!("{path}.server_tls"),
                format!(
                    "\"{}\" checks the servers' certificates: set server_ca to the CA file",
                    mode.as_str()
                ),
            ));
        }
        Ok((mode, ca))
    }
}
