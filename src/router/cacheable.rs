//! What the result cache needs to know about a query text, found by one token scan of the
//! router's lexer (no parse, so no deep recursion): whether a read may be cached (no
//! function outside the immutable list, no SQL value function such as `current_user`, no
//! system catalog, temporary table or `TABLESAMPLE`, one statement) and the relations it
//! reads; and which tables a write changes (INSERT/UPDATE/DELETE/MERGE/TRUNCATE/COPY FROM
//! targets), or that it may change anything (DDL, GRANT, DO, CALL, anything unknown).
//!
//! Table names are compared bare (no schema), lower case unless quoted: a write to
//! `public.t` invalidates reads of `t` in every schema, which can only drop too much.
//! A name in a FROM list that is not a table (a view, a set-returning function) is listed
//! too: the cache checks the names against the database's catalog before storing.

use super::statement_text::{statements, tokens, Token};

/// Why a read is not cacheable (the cache layer counts them by [`CacheReject::slot`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheReject {
    /// Not a single SELECT / VALUES / TABLE statement.
    NotASelect,
    /// Calls a function that is not known to be immutable.
    Function,
    /// `current_user`, `current_timestamp` and the other SQL value functions.
    ValueFunction,
    /// Reads a system catalog (`pg_*`, `information_schema`).
    SystemCatalog,
    /// Names a temporary schema (`pg_temp`).
    TempTable,
    TableSample,
    /// A locking clause (`FOR UPDATE/SHARE`).
    Locking,
    /// `/* switchyard: no-cache */`.
    NoCacheHint,
    /// More nesting than the scan follows.
    TooComplex,
}

impl CacheReject {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheReject::NotASelect => "not_a_select",
            CacheReject::Function => "function",
            CacheReject::ValueFunction => "value_function",
            CacheReject::SystemCatalog => "system_catalog",
            CacheReject::TempTable => "temp_table",
            CacheReject::TableSample => "tablesample",
            CacheReject::Locking => "locking",
            CacheReject::NoCacheHint => "no_cache_hint",
            CacheReject::TooComplex => "too_complex",
        }
    }
}

/// The read side of a query text, for the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadShape {
    /// Cacheable if these relations (bare names) are plain tables.
    Cacheable { relations: Vec<String> },
    /// Never cached, and why (with a function's name where there is one).
    Rejected(CacheReject, String),
}

/// What a statement text may change, for invalidation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteTargets {
    /// Nothing a cached read depends on (reads, transaction control, SET, ...).
    Nothing,
    /// Rows of these tables (bare names).
    Tables(Vec<String>),
    /// Possibly anything: DDL, GRANT/REVOKE, ALTER ROLE, DO, CALL, unknown statements.
    Everything,
}

/// Functions known to be immutable (plus aggregates and window functions over their
/// arguments): a cached query may call these and the configured ones only.
#[rustfmt::skip]
const IMMUTABLE_FUNCTIONS: &[&str] = &[
    "abs", "ceil", "ceiling", "floor", "round", "trunc", "sign", "sqrt", "cbrt", "power", "pow",
    "mod", "ln", "log", "log10", "exp", "div", "degrees", "radians", "pi", "width_bucket",
    "lower", "upper", "length", "char_length", "character_length", "octet_length",
    "bit_length", "substr", "strpos", "btrim", "ltrim", "rtrim", "lpad", "rpad", "replace",
    "translate", "concat", "concat_ws", "left", "right", "reverse", "initcap", "repeat",
    "split_part", "starts_with", "md5", "sha224", "sha256", "sha384", "sha512", "encode",
    "decode", "ascii", "chr", "quote_ident", "quote_literal", "quote_nullable",
    "regexp_replace", "regexp_match", "regexp_matches", "regexp_split_to_array",
    "string_to_array", "array_to_string", "array_length", "array_upper", "array_lower",
    "array_ndims", "array_dims", "cardinality", "array_position", "array_positions",
    "array_append", "array_prepend", "array_cat", "array_remove", "array_replace", "unnest",
    "generate_series", "generate_subscripts", "count", "sum", "avg", "min", "max", "bool_and",
    "bool_or", "every", "array_agg", "string_agg", "json_agg", "jsonb_agg", "json_object_agg",
    "jsonb_object_agg", "stddev", "stddev_pop", "stddev_samp", "variance", "var_pop",
    "var_samp", "bit_and", "bit_or", "corr", "percentile_cont", "percentile_disc", "mode",
    "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead",
    "first_value", "last_value", "nth_value", "json_build_object", "jsonb_build_object",
    "json_build_array", "jsonb_build_array", "to_json", "to_jsonb", "row_to_json",
    "array_to_json", "json_object", "jsonb_object", "jsonb_extract_path",
    "jsonb_extract_path_text", "json_extract_path", "json_extract_path_text",
    "json_array_length", "jsonb_array_length", "json_typeof", "jsonb_typeof", "jsonb_set",
    "jsonb_insert", "jsonb_strip_nulls", "json_strip_nulls", "jsonb_pretty",
    "jsonb_array_elements", "jsonb_array_elements_text", "json_array_elements",
    "json_array_elements_text", "jsonb_each", "jsonb_each_text", "json_each",
    "json_each_text", "jsonb_object_keys", "json_object_keys", "jsonb_path_query",
    "jsonb_path_exists", "date_trunc", "date_part", "make_date", "make_time",
    "make_timestamp", "make_interval", "justify_days", "justify_hours", "justify_interval",
    "isfinite", "num_nulls", "num_nonnulls", "int4", "int8", "int2", "float8", "float4",
    "numeric", "text", "varchar", "bool", "date", "upper_inf", "lower_inf", "isempty",
    "range_merge", "int4range", "int8range", "numrange", "daterange", "host", "masklen",
    "family", "network", "netmask", "broadcast", "abbrev", "inet_same_family", "gcd", "lcm",
    "factorial", "scale", "min_scale", "trim_scale", "to_hex", "to_ascii", "bit_count",
    "get_bit", "get_byte", "set_bit", "set_byte", "overlay", "format",
];

/// Words that may stand before `(` without being a function call.
#[rustfmt::skip]
const KEYWORDS_BEFORE_PAREN: &[&str] = &[
    "in", "exists", "any", "some", "all", "from", "join", "as", "values", "select", "where",
    "and", "or", "not", "on", "using", "over", "filter", "within", "group", "by", "when",
    "then", "else", "case", "row", "array", "lateral", "cast", "extract", "substring",
    "position", "overlay", "trim", "coalesce", "nullif", "greatest", "least", "is",
    "distinct", "union", "except", "intersect", "with", "having", "limit", "offset", "like",
    "ilike", "similar", "between", "partition", "order", "only", "recursive", "materialized",
    "grouping", "sets", "cube", "rollup", "to", "escape", "collate", "table", "end",
    "interval", "numeric", "decimal", "char", "character", "varchar", "varying", "bit",
    "time", "timestamp", "float", "precision", "returning", "ordinality", "tablesample",
    "fetch", "first", "next", "rows", "range", "groups", "preceding", "following", "unbounded",
    "current", "exclude", "ties", "others", "no", "window", "asc", "desc", "nulls", "last",
    "for", "of", "at", "zone", "any_value",
];

/// SQL value functions: called without parentheses, never immutable.
#[rustfmt::skip]
const VALUE_FUNCTIONS: &[&str] = &[
    "current_date", "current_time", "current_timestamp", "localtime", "localtimestamp",
    "current_user", "session_user", "user", "current_role", "current_catalog",
    "current_schema",
];

/// Most parenthesis nesting the scan follows.
const MAX_DEPTH: usize = 64;

/// A bare relation or function name: quoted as written (quotes removed, `""` unescaped),
/// otherwise lower case.
fn bare(t: Token<'_>) -> Option<String> {
    match t {
        Token::Word(w) => Some(w.to_ascii_lowercase()),
        Token::QuotedIdent(q) => {
            let inner = q.strip_prefix('"')?.strip_suffix('"')?;
            Some(inner.replace("\"\"", "\""))
        }
        _ => None,
    }
}

fn is_word(t: Option<&Token<'_>>, w: &str) -> bool {
    matches!(t, Some(Token::Word(x)) if x.eq_ignore_ascii_case(w))
}

/// A qualified name starting at `toks[i]`: its parts, and the index after it.
fn qualified(toks: &[Token<'_>], mut i: usize) -> (Vec<String>, usize) {
    let mut parts = Vec::new();
    while let Some(p) = toks.get(i).copied().and_then(bare) {
        parts.push(p);
        i += 1;
        if toks.get(i) == Some(&Token::Punct(b'.')) {
            i += 1;
        } else {
            break;
        }
    }
    (parts, i)
}

/// The read side of `sql` with the configured immutable functions `extra` (lower case).
/// `hint` is the query's cache hint: `no-cache` (false) rejects it, `cache` (true) vouches
/// for its functions (the other rules still hold).
pub fn read_shape(sql: &str, hint: Option<bool>, extra: &[String]) -> ReadShape {
    let reject = |r: CacheReject, what: &str| ReadShape::Rejected(r, what.to_string());
    let trust_functions = hint == Some(true);
    if hint == Some(false) {
        return reject(CacheReject::NoCacheHint, "");
    }
    let stmts = statements(sql);
    let [stmt] = stmts.as_slice() else {
        return reject(CacheReject::NotASelect, "");
    };
    let toks: Vec<Token<'_>> = tokens(stmt).collect();
    let first = toks.first().copied().and_then(bare).unwrap_or_default();
    if !matches!(first.as_str(), "select" | "values" | "table" | "with")
        && toks.first() != Some(&Token::Punct(b'('))
    {
        return reject(CacheReject::NotASelect, "");
    }
    let mut scan = ReadScan {
        toks: &toks,
        extra,
        trust_functions,
        relations: Vec::new(),
        ctes: Vec::new(),
        depth: 0,
        from_depth: None,
    };
    for i in 0..toks.len() {
        if let Err(r) = scan.token(i) {
            return r;
        }
    }
    let ReadScan {
        mut relations,
        ctes,
        ..
    } = scan;
    relations.retain(|r| !ctes.contains(r));
    relations.sort();
    relations.dedup();
    ReadShape::Cacheable { relations }
}

/// The state of [`read_shape`]'s scan.
struct ReadScan<'t, 'a> {
    toks: &'t [Token<'a>],
    extra: &'t [String],
    trust_functions: bool,
    relations: Vec<String>,
    ctes: Vec<String>,
    depth: usize,
    /// Depth of the FROM list being read (a `,` there starts another relation).
    from_depth: Option<usize>,
}

impl ReadScan<'_, '_> {
    /// Takes token `i`: nesting, relations, and what makes a read not cacheable.
    fn token(&mut self, i: usize) -> Result<(), ReadShape> {
        let reject = |r: CacheReject, what: &str| Err(ReadShape::Rejected(r, what.to_string()));
        let toks = self.toks;
        let t = toks[i];
        match t {
            Token::Punct(b'(') => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return reject(CacheReject::TooComplex, "");
                }
            }
            Token::Punct(b')') => {
                self.depth = self.depth.saturating_sub(1);
                if self.from_depth.is_some_and(|d| d > self.depth) {
                    self.from_depth = None;
                }
            }
            Token::Punct(b',') if self.from_depth == Some(self.depth) => {
                take_relation(toks, i + 1, &mut self.relations)?;
            }
            Token::Word(w) => {
                let lw = w.to_ascii_lowercase();
                match lw.as_str() {
                    "from" | "join" => {
                        self.from_depth = Some(self.depth);
                        take_relation(toks, i + 1, &mut self.relations)?;
                    }
                    "table" if i == 0 => take_relation(toks, i + 1, &mut self.relations)?,
                    "where" | "group" | "having" | "order" | "limit" | "offset" | "union"
                    | "except" | "intersect" | "window" | "fetch"
                        if self.from_depth == Some(self.depth) =>
                    {
                        self.from_depth = None;
                    }
                    "tablesample" => return reject(CacheReject::TableSample, ""),
                    "for" if is_lock_strength(toks.get(i + 1)) => {
                        return reject(CacheReject::Locking, "")
                    }
                    _ if !self.trust_functions
                        && VALUE_FUNCTIONS.contains(&lw.as_str())
                        && !after_dot(toks, i) =>
                    {
                        return reject(CacheReject::ValueFunction, &lw);
                    }
                    _ => {}
                }
                self.call_or_cte(i, lw)?;
            }
            Token::QuotedIdent(_) => {
                if let Some(name) = bare(t) {
                    self.call_or_cte(i, name)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A name at `i` (`name` as compared): a call of a function outside the immutable list
    /// rejects the read; a CTE's name is remembered (it is not a relation).
    fn call_or_cte(&mut self, i: usize, name: String) -> Result<(), ReadShape> {
        let toks = self.toks;
        if let Some(called) = call_name(toks, i).filter(|_| !self.trust_functions) {
            if !is_immutable(&called, self.extra) {
                return Err(ReadShape::Rejected(CacheReject::Function, called));
            }
        }
        if is_word(toks.get(i + 1), "as") && cte_body_follows(toks, i + 2) {
            self.ctes.push(name);
        }
        Ok(())
    }
}

/// `UPDATE`, `SHARE`, `NO KEY UPDATE`, `KEY SHARE` after FOR.
fn is_lock_strength(t: Option<&Token<'_>>) -> bool {
    ["update", "share", "no", "key"]
        .iter()
        .any(|w| is_word(t, w))
}

fn after_dot(toks: &[Token<'_>], i: usize) -> bool {
    i > 0 && toks[i - 1] == Token::Punct(b'.')
}

/// `AS (`, `AS MATERIALIZED (`, `AS NOT MATERIALIZED (` (a CTE's body).
fn cte_body_follows(toks: &[Token<'_>], mut i: usize) -> bool {
    if is_word(toks.get(i), "not") {
        i += 1;
    }
    if is_word(toks.get(i), "materialized") {
        i += 1;
    }
    toks.get(i) == Some(&Token::Punct(b'('))
}

/// If `toks[i]` names a function being called (`name(` or `schema.name(`, not a keyword,
/// an alias's column list or a type modifier), that name.
fn call_name(toks: &[Token<'_>], i: usize) -> Option<String> {
    if toks.get(i + 1) != Some(&Token::Punct(b'(')) {
        return None;
    }
    let name = bare(toks[i])?;
    let prev = i.checked_sub(1).map(|p| toks[p]);
    let quoted = matches!(toks[i], Token::QuotedIdent(_));
    if !quoted && KEYWORDS_BEFORE_PAREN.contains(&name.as_str()) {
        return None;
    }
    match prev {
        // `x AS t(a, b)`: column names of an alias; `::numeric(10, 2)`: a type modifier.
        Some(Token::Word(w)) if w.eq_ignore_ascii_case("as") => None,
        Some(Token::Punct(b':')) => None,
        _ => Some(name),
    }
}

fn is_immutable(name: &str, extra: &[String]) -> bool {
    IMMUTABLE_FUNCTIONS.contains(&name)
        || extra
            .iter()
            .any(|e| e == name || e.ends_with(&format!(".{name}")))
}

/// Reads the relation named at `toks[i]` (after FROM, JOIN or a FROM-list comma) into
/// `out`; a subquery or a function call adds nothing (the scan sees their insides).
fn take_relation(toks: &[Token<'_>], mut i: usize, out: &mut Vec<String>) -> Result<(), ReadShape> {
    while is_word(toks.get(i), "only") || is_word(toks.get(i), "lateral") {
        i += 1;
    }
    let (parts, next) = qualified(toks, i);
    let Some(name) = parts.last() else {
        return Ok(());
    };
    if toks.get(next) == Some(&Token::Punct(b'(')) {
        return Ok(());
    }
    let schema = parts.len().checked_sub(2).map(|k| parts[k].as_str());
    let reject = |r| Err(ReadShape::Rejected(r, name.clone()));
    match schema {
        Some("pg_catalog" | "information_schema") => return reject(CacheReject::SystemCatalog),
        Some(s) if s.starts_with("pg_temp") => return reject(CacheReject::TempTable),
        Some(s) if s.starts_with("pg_") => return reject(CacheReject::SystemCatalog),
        _ => {}
    }
    if name.starts_with("pg_") {
        return reject(CacheReject::SystemCatalog);
    }
    out.push(name.clone());
    Ok(())
}

/// The tables `sql` may change, for invalidation.
pub fn write_targets(sql: &str) -> WriteTargets {
    let mut tables = Vec::new();
    for stmt in statements(sql) {
        let toks: Vec<Token<'_>> = tokens(stmt).collect();
        let first = toks.first().copied().and_then(bare).unwrap_or_default();
        match first.as_str() {
            "select" | "values" | "table" | "with" | "insert" | "update" | "delete" | "merge"
            | "truncate" | "copy" | "explain" | "(" => {
                if !dml_targets(&toks, &mut tables) {
                    return WriteTargets::Everything;
                }
            }
            "show" | "set" | "reset" | "begin" | "start" | "commit" | "end" | "rollback"
            | "abort" | "savepoint" | "release" | "prepare" | "listen" | "notify" | "unlisten"
            | "discard" | "deallocate" | "fetch" | "move" | "close" | "declare" | "lock"
            | "vacuum" | "analyze" | "analyse" | "checkpoint" | "load" | "execute" => {}
            _ if toks.first() == Some(&Token::Punct(b'(')) => {
                if !dml_targets(&toks, &mut tables) {
                    return WriteTargets::Everything;
                }
            }
            _ => return WriteTargets::Everything,
        }
    }
    tables.sort();
    tables.dedup();
    if tables.is_empty() {
        WriteTargets::Nothing
    } else {
        WriteTargets::Tables(tables)
    }
}

/// The targets of INSERT INTO, UPDATE, DELETE FROM, MERGE INTO, TRUNCATE and COPY ... FROM
/// anywhere in a statement (data-modifying CTEs included); false if one cannot be read.
fn dml_targets(toks: &[Token<'_>], out: &mut Vec<String>) -> bool {
    let mut i = 0;
    while i < toks.len() {
        let word = match toks[i] {
            Token::Word(w) => w.to_ascii_lowercase(),
            _ => {
                i += 1;
                continue;
            }
        };
        let prev_for =
            i > 0 && (is_word(toks.get(i - 1), "for") || is_word(toks.get(i - 1), "key"));
        let target_at = match word.as_str() {
            "insert" | "merge" if is_word(toks.get(i + 1), "into") => Some(i + 2),
            "delete" if is_word(toks.get(i + 1), "from") => Some(i + 2),
            // `FOR UPDATE` / `FOR NO KEY UPDATE` is a locking clause, not a write.
            "update"
                if !prev_for
                    && !is_word(toks.get(i + 1), "of")
                    && !is_word(toks.get(i + 1), "set") =>
            {
                Some(i + 1)
            }
            "truncate" => {
                let mut k = i + 1;
                if is_word(toks.get(k), "table") {
                    k += 1;
                }
                loop {
                    while is_word(toks.get(k), "only") {
                        k += 1;
                    }
                    let (parts, next) = qualified(toks, k);
                    let Some(name) = parts.last() else {
                        return false;
                    };
                    out.push(name.clone());
                    k = next;
                    if toks.get(k) == Some(&Token::Punct(b'*')) {
                        k += 1;
                    }
                    if toks.get(k) != Some(&Token::Punct(b',')) {
                        break;
                    }
                    k += 1;
                }
                i = k;
                continue;
            }
            "copy" if i == 0 => {
                let (parts, next) = qualified(toks, i + 1);
                let from = toks[next.min(toks.len())..]
                    .iter()
                    .any(|t| is_word(Some(t), "from"));
                match parts.last() {
                    Some(name) if from => out.push(name.clone()),
                    None if toks.get(i + 1) != Some(&Token::Punct(b'(')) => return false,
                    _ => {}
                }
                None
            }
            _ => None,
        };
        if let Some(mut k) = target_at {
            while is_word(toks.get(k), "only") {
                k += 1;
            }
            let (parts, _) = qualified(toks, k);
            match parts.last() {
                Some(name) => out.push(name.clone()),
                None => return false,
            }
        }
        i += 1;
    }
    true
}
