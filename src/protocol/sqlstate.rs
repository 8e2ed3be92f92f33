//! SQLSTATE codes, typed: every error Switchyard emits carries one, and a code relayed from a
//! server is kept as the five characters it is, without an allocation.

use std::fmt;

/// A five-character SQLSTATE (ASCII digits and upper-case letters).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SqlState([u8; 5]);

impl SqlState {
    pub const PROTOCOL_VIOLATION: SqlState = SqlState::of("08P01");
    pub const CONNECTION_FAILURE: SqlState = SqlState::of("08006");
    pub const INVALID_PASSWORD: SqlState = SqlState::of("28P01");
    pub const INVALID_AUTHORIZATION: SqlState = SqlState::of("28000");
    pub const INVALID_CATALOG_NAME: SqlState = SqlState::of("3D000");
    pub const TOO_MANY_CONNECTIONS: SqlState = SqlState::of("53300");
    pub const FEATURE_NOT_SUPPORTED: SqlState = SqlState::of("0A000");
    pub const IN_FAILED_TRANSACTION: SqlState = SqlState::of("25P02");
    pub const ADMIN_SHUTDOWN: SqlState = SqlState::of("57P01");
    /// Also what PostgreSQL says when authentication takes too long.
    pub const QUERY_CANCELED: SqlState = SqlState::of("57014");
    pub const INTERNAL_ERROR: SqlState = SqlState::of("XX000");
    pub const CONFIGURATION_LIMIT: SqlState = SqlState::of("53400");
    pub const DATATYPE_MISMATCH: SqlState = SqlState::of("42804");
    pub const SYNTAX_ERROR: SqlState = SqlState::of("42601");
    pub const UNDEFINED_OBJECT: SqlState = SqlState::of("42704");
    pub const INSUFFICIENT_PRIVILEGE: SqlState = SqlState::of("42501");
    pub const IDLE_IN_TRANSACTION_TIMEOUT: SqlState = SqlState::of("25P03");
    pub const IDLE_SESSION_TIMEOUT: SqlState = SqlState::of("57P05");
    pub const CONFIG_FILE_ERROR: SqlState = SqlState::of("F0000");

    /// A code known when compiling; anything but five valid characters fails the build.
    const fn of(code: &str) -> SqlState {
        let b = code.as_bytes();
        assert!(b.len() == 5, "a SQLSTATE has five characters");
        let mut i = 0;
        while i < 5 {
            assert!(valid(b[i]), "a SQLSTATE is digits and upper-case letters");
            i += 1;
        }
        SqlState([b[0], b[1], b[2], b[3], b[4]])
    }

    /// A code as received (e.g. from a server's ErrorResponse); None unless it is five
    /// digits or upper-case letters.
    pub fn parse(code: &str) -> Option<SqlState> {
        let b: [u8; 5] = code.as_bytes().try_into().ok()?;
        b.iter().all(|&c| valid(c)).then_some(SqlState(b))
    }

    /// The five characters.
    pub fn bytes(&self) -> [u8; 5] {
        self.0
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored.
        std::str::from_utf8(&self.0).unwrap_or("XX000")
    }

    /// The class: the first two characters (`08` connection exception, `57` operator
    /// intervention, ...).
    pub fn class(&self) -> &str {
        &self.as_str()[..2]
    }
}

const fn valid(c: u8) -> bool {
    c.is_ascii_digit() || c.is_ascii_uppercase()
}

impl fmt::Display for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SqlState({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_well_formed_codes() {
        assert_eq!(SqlState::parse("57014"), Some(SqlState::QUERY_CANCELED));
        assert_eq!(
            SqlState::parse("08P01").map(|s| s.class().to_string()),
            Some("08".into())
        );
        for bad in ["", "5701", "570144", "08p01", "08 01", "é0000"] {
            assert_eq!(SqlState::parse(bad), None, "{bad:?}");
        }
        assert_eq!(SqlState::ADMIN_SHUTDOWN.to_string(), "57P01");
    }
}
