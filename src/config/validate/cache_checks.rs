//! Checks of `[databases.<name>.cache]`: sizes, table lists (names as the cache compares
//! them), and the change stream's user, which must be a `[[users]]` entry able to log in
//! to a server.

use super::super::cache::{
    CacheConfig, RawCache, DEFAULT_CACHE_MAX_BYTES, DEFAULT_CACHE_MAX_RESULT_BYTES,
    DEFAULT_CACHE_TTL_MS,
};
use super::super::types::{password_kind, PasswordKind, User, MAX_DURATION_MS};
use super::super::ConfigError;
use super::Checker;
use toml::Spanned;

/// A table name as the cache compares it: the relation name without its schema, lower case
/// unless it was written in double quotes.
pub fn cache_table_name(name: &str) -> String {
    let mut last = String::new();
    let mut chars = name.trim().chars().peekable();
    while chars.peek().is_some() {
        last.clear();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                if c == '"' {
                    if chars.peek() != Some(&'"') {
                        break;
                    }
                    chars.next();
                }
                last.push(c);
            }
            chars.next_if_eq(&'.');
        } else {
            for c in chars.by_ref() {
                if c == '.' {
                    break;
                }
                last.push(c.to_ascii_lowercase());
            }
        }
    }
    last
}

/// Whether a user's password can log in to a server (a SCRAM verifier cannot).
fn can_log_in(u: &User) -> bool {
    password_kind(&u.password) != PasswordKind::ScramSha256
}

impl Checker<'_> {
    /// `[databases.<name>.cache]` (absent: off, with the defaults).
    pub(super) fn cache(
        &self,
        raw: Option<Spanned<RawCache>>,
        path: &str,
        users: &[User],
    ) -> Result<CacheConfig, ConfigError> {
        let Some(raw) = raw else {
            return Ok(CacheConfig {
                user: users.iter().find(|u| can_log_in(u)).map(|u| u.name.clone()),
                ..CacheConfig::default()
            });
        };
        let span = raw.span();
        let raw = raw.into_inner();
        let path = format!("{path}.cache");
        let at = |key: &str| format!("{path}.{key}");
        let max_bytes = self.int(
            raw.max_bytes,
            &at("max_bytes"),
            DEFAULT_CACHE_MAX_BYTES,
            4096,
            u64::MAX / 2,
            " bytes",
        )?;
        let result_span = raw.max_result_bytes.as_ref().map(|v| v.span());
        let max_result_bytes = self.int(
            raw.max_result_bytes,
            &at("max_result_bytes"),
            DEFAULT_CACHE_MAX_RESULT_BYTES.min(max_bytes),
            64,
            u64::MAX / 2,
            " bytes",
        )?;
        if max_result_bytes > max_bytes {
            return Err(self.invalid(
                &result_span.unwrap_or(span),
                &at("max_result_bytes"),
                format!("{max_result_bytes} is more than max_bytes ({max_bytes})"),
            ));
        }
        let user = self.cache_user(raw.user, &at("user"), users)?;
        let publication = match raw.publication {
            Some(p) if !p.get_ref().is_empty() => {
                self.identifier(&p, &at("publication"), "publication name")?;
                p.into_inner()
            }
            _ => String::new(),
        };
        Ok(CacheConfig {
            enabled: raw.enabled.is_some_and(Spanned::into_inner),
            max_bytes,
            max_result_bytes,
            ttl_ms: self.int(
                raw.ttl_ms,
                &at("ttl_ms"),
                DEFAULT_CACHE_TTL_MS,
                0,
                MAX_DURATION_MS,
                " ms",
            )?,
            invalidation: raw
                .invalidation
                .map(Spanned::into_inner)
                .unwrap_or_default(),
            tables: self.table_list(raw.tables, &at("tables"))?,
            exclude_tables: self.table_list(raw.exclude_tables, &at("exclude_tables"))?,
            user,
            publication,
            immutable_functions: self.function_list(
                raw.immutable_functions,
                &path,
                "immutable_functions",
            )?,
        })
    }

    /// The change stream's login: `user`, which must be a `[[users]]` entry that can log in
    /// to a server, or by default the first entry that can.
    fn cache_user(
        &self,
        user: Option<Spanned<String>>,
        key: &str,
        users: &[User],
    ) -> Result<Option<String>, ConfigError> {
        let Some(u) = user else {
            return Ok(users.iter().find(|u| can_log_in(u)).map(|u| u.name.clone()));
        };
        self.identifier(&u, key, "user name")?;
        let why = match users.iter().find(|x| &x.name == u.get_ref()) {
            None => "is not a [[users]] entry",
            Some(x) if !can_log_in(x) => {
                "has a SCRAM verifier as its password, which cannot log in to a server"
            }
            Some(_) => return Ok(Some(u.into_inner())),
        };
        let message = format!("{:?} {why}", u.get_ref());
        Err(self.invalid(&u.span(), key, message))
    }

    /// A list of table names, each as the cache compares it; none may be empty.
    fn table_list(
        &self,
        list: Option<Spanned<Vec<Spanned<String>>>>,
        path: &str,
    ) -> Result<Vec<String>, ConfigError> {
        let mut out = Vec::new();
        for (i, t) in list
            .map(Spanned::into_inner)
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let name = cache_table_name(t.get_ref());
            if name.is_empty() {
                return Err(self.invalid(&t.span(), &format!("{path}[{i}]"), "empty table name"));
            }
            out.push(name);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::cache_table_name;

    #[test]
    fn table_names_as_compared() {
        assert_eq!(cache_table_name("Accounts"), "accounts");
        assert_eq!(cache_table_name("public.Accounts"), "accounts");
        assert_eq!(cache_table_name("public.\"My.Table\""), "My.Table");
        assert_eq!(cache_table_name("\"a\"\"b\""), "a\"b");
    }
}
