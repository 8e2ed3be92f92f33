//! The SQL that brings a server connection's applied settings in line with what a client
//! wants: SET for every differing value, RESET for what an earlier client left behind.

use super::{ParamMap, ParamValue};

/// SQL that makes a server connection whose applied settings are `applied` match `wanted`:
/// SET for every differing value, RESET for what a previous client left behind.
pub fn sync_sql(wanted: &ParamMap, applied: &ParamMap) -> Option<String> {
    let mut sql = String::new();
    for (name, value) in wanted.iter() {
        if applied.get(name) != Some(value) {
            push_set(&mut sql, name, value);
        }
    }
    for name in applied.keys().filter(|k| !wanted.contains_key(k)) {
        push_reset(&mut sql, name);
    }
    (!sql.is_empty()).then_some(sql)
}

fn push_set(sql: &mut String, name: &str, value: &ParamValue) {
    let value_sql = match value {
        ParamValue::Literal(v) => quote_literal(v),
        ParamValue::Raw(v) => v.clone(),
    };
    match name {
        "role" => sql.push_str("SET ROLE "),
        "session_authorization" => sql.push_str("SET SESSION AUTHORIZATION "),
        _ => {
            sql.push_str("SET ");
            sql.push_str(&quote_name(name));
            sql.push_str(" TO ");
        }
    }
    sql.push_str(&value_sql);
    sql.push_str(";\n");
}

fn push_reset(sql: &mut String, name: &str) {
    match name {
        "role" => sql.push_str("RESET ROLE;\n"),
        "session_authorization" => sql.push_str("RESET SESSION AUTHORIZATION;\n"),
        _ => {
            sql.push_str("RESET ");
            sql.push_str(&quote_name(name));
            sql.push_str(";\n");
        }
    }
}

fn quote_literal(v: &str) -> String {
    let escaped = v.replace('\'', "''");
    if v.contains('\\') {
        format!("E'{}'", escaped.replace('\\', "\\\\"))
    } else {
        format!("'{escaped}'")
    }
}

fn quote_name(name: &str) -> String {
    let plain = name.split('.').all(|part| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    });
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_sql_sets_and_resets() {
        let mut wanted = ParamMap::new();
        wanted.insert(
            "application_name".into(),
            ParamValue::Literal("it's".into()),
        );
        wanted.insert("search_path".into(), ParamValue::Raw("a, b".into()));
        let mut applied = ParamMap::new();
        applied.insert("search_path".into(), ParamValue::Raw("a, b".into()));
        applied.insert("timezone".into(), ParamValue::Literal("UTC".into()));
        assert_eq!(
            sync_sql(&wanted, &applied).unwrap(),
            "SET application_name TO 'it''s';\nRESET timezone;\n"
        );
        assert_eq!(sync_sql(&applied, &applied), None);
        let mut w = ParamMap::new();
        w.insert("DateStyle".into(), ParamValue::Literal("a\\b".into()));
        assert_eq!(
            sync_sql(&w, &ParamMap::new()).unwrap(),
            "SET \"DateStyle\" TO E'a\\\\b';\n"
        );
    }
}
