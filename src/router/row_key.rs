//! Which rows of one table a statement reads or writes, when a token scan can say so for
//! certain: a single-table `SELECT ... FROM t WHERE ... col = v ...`, `UPDATE t SET ...
//! WHERE ...` or `DELETE FROM t WHERE ...` whose WHERE clause is a plain conjunction with a
//! `col = <integer literal or $n>` term at its top level. The result cache invalidates such
//! reads per row (when `col` is the table's integer primary key) instead of per table.
//!
//! The scan says no whenever it is not sure (OR, BETWEEN or CASE at the top of the WHERE
//! clause, a subquery, a second FROM, a join, a set operation, a CTE, parentheses around
//! the term, an operator or cast next to it): a "no" only makes invalidation coarser.

use super::lexer::{Lexer, Span, Tok};

/// Where a key term's value is in each execution of the statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAt {
    /// The n-th literal of the text (0-based, counting every literal token).
    Literal(usize),
    /// Parameter `$n + 1`.
    Param(usize),
}

/// A statement that touches rows of `table` picked by `column = value` terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowKeyShape {
    /// Bare table name (as the cache compares names).
    pub table: String,
    /// Every top-level `column = value` term of the WHERE clause (bare column names).
    pub terms: Vec<(String, KeyAt)>,
    /// Names written in an UPDATE's SET list (a key it assigns moves the row).
    pub assigned: Vec<String>,
}

impl RowKeyShape {
    /// Where the value of the term on `column` is, if the statement has one.
    pub fn key_at(&self, column: &str) -> Option<KeyAt> {
        if self.assigned.iter().any(|a| a == column) {
            return None;
        }
        self.terms
            .iter()
            .find(|(c, _)| c == column)
            .map(|(_, at)| *at)
    }
}

/// Words that end a WHERE clause at its top level.
const WHERE_ENDS: &[&str] = &[
    "order",
    "limit",
    "offset",
    "fetch",
    "group",
    "having",
    "window",
    "returning",
];

/// Words that make a statement's rows impossible to pin down by a scan.
const UNSURE: &[&str] = &[
    "join",
    "union",
    "intersect",
    "except",
    "lateral",
    "using",
    "only",
    "current",
];

struct Scan<'a> {
    sql: &'a str,
    toks: Vec<Span>,
    /// Parenthesis depth before each token.
    depth: Vec<usize>,
}

impl<'a> Scan<'a> {
    /// One statement's tokens (None if there is more than one statement).
    fn new(sql: &'a str) -> Option<Scan<'a>> {
        let mut toks = Vec::new();
        let mut depth = Vec::new();
        let mut d = 0usize;
        let mut ended = false;
        for t in Lexer::new(sql) {
            let text = sql.get(t.start..t.end)?;
            if ended {
                return None;
            }
            if t.kind == Tok::Punct && text == ";" && d == 0 {
                ended = true;
                continue;
            }
            depth.push(d);
            if t.kind == Tok::Punct {
                match text {
                    "(" => d += 1,
                    ")" => d = d.checked_sub(1)?,
                    _ => {}
                }
            }
            toks.push(t);
        }
        Some(Scan { sql, toks, depth })
    }

    fn text(&self, i: usize) -> &'a str {
        self.toks
            .get(i)
            .and_then(|t| self.sql.get(t.start..t.end))
            .unwrap_or("")
    }

    fn kind(&self, i: usize) -> Option<Tok> {
        self.toks.get(i).map(|t| t.kind)
    }

    fn is_word(&self, i: usize, w: &str) -> bool {
        self.kind(i) == Some(Tok::Word) && self.text(i).eq_ignore_ascii_case(w)
    }

    /// A bare name at `i` (quoted as written, otherwise lower case).
    fn name(&self, i: usize) -> Option<String> {
        let t = self.text(i);
        match self.kind(i)? {
            Tok::Word => Some(t.to_ascii_lowercase()),
            Tok::QuotedIdent => Some(t.get(1..t.len() - 1)?.replace("\"\"", "\"")),
            _ => None,
        }
    }

    /// Index of the top-level word `w`, if it occurs exactly once anywhere.
    fn only_once(&self, w: &str) -> Option<usize> {
        let mut at = (0..self.toks.len()).filter(|&i| self.is_word(i, w));
        let first = at.next()?;
        (at.next().is_none() && self.depth[first] == 0).then_some(first)
    }

    fn any_word(&self, words: &[&str]) -> bool {
        (0..self.toks.len()).any(|i| words.iter().any(|w| self.is_word(i, w)))
    }

    /// `[schema.]table [[AS] alias]` at `i`: (table, alias, index after).
    fn relation(&self, mut i: usize) -> Option<(String, Option<String>, usize)> {
        let mut table = self.name(i)?;
        i += 1;
        while self.text(i) == "." && self.kind(i) == Some(Tok::Punct) {
            table = self.name(i + 1)?;
            i += 2;
        }
        if self.is_word(i, "as") {
            return Some((table, Some(self.name(i + 1)?), i + 2));
        }
        let keyword = ["where", "set"].iter().any(|w| self.is_word(i, w));
        match self.name(i) {
            Some(alias) if !keyword => Some((table, Some(alias), i + 1)),
            _ => Some((table, None, i)),
        }
    }

    /// The `column = value` terms of the WHERE clause starting after `at` (the WHERE).
    fn terms(&self, at: usize, table: &str, alias: Option<&str>) -> Option<Vec<(String, KeyAt)>> {
        let mut terms = Vec::new();
        let mut i = at + 1;
        while i < self.toks.len() {
            if self.depth[i] == 0 {
                if WHERE_ENDS.iter().any(|w| self.is_word(i, w)) {
                    break;
                }
                if ["or", "between", "case"].iter().any(|w| self.is_word(i, w)) {
                    return None;
                }
                let starts = i == at + 1 || self.is_word(i - 1, "and");
                if starts {
                    if let Some((term, next)) = self.term(i, table, alias) {
                        terms.push(term);
                        i = next;
                        continue;
                    }
                }
            }
            i += 1;
        }
        Some(terms)
    }

    /// `[qualifier.]column = value` at `i`, ended by AND, a clause end or the end.
    fn term(
        &self,
        mut i: usize,
        table: &str,
        alias: Option<&str>,
    ) -> Option<((String, KeyAt), usize)> {
        let mut column = self.name(i)?;
        if self.text(i + 1) == "." && self.kind(i + 1) == Some(Tok::Punct) {
            let q = column;
            if q != table && Some(q.as_str()) != alias {
                return None;
            }
            column = self.name(i + 2)?;
            i += 2;
        }
        if self.kind(i + 1) != Some(Tok::Op) || self.text(i + 1) != "=" {
            return None;
        }
        let v = i + 2;
        let at = match self.kind(v)? {
            Tok::Literal if is_unsigned_integer(self.text(v)) => {
                KeyAt::Literal(self.literal_ordinal(v))
            }
            Tok::Param => KeyAt::Param(
                self.text(v)
                    .get(1..)?
                    .parse::<usize>()
                    .ok()?
                    .checked_sub(1)?,
            ),
            _ => return None,
        };
        let next = v + 1;
        let ends = next >= self.toks.len()
            || self.depth[next] == 0
                && (self.is_word(next, "and") || WHERE_ENDS.iter().any(|w| self.is_word(next, w)));
        ends.then_some(((column, at), next))
    }

    fn literal_ordinal(&self, i: usize) -> usize {
        self.toks[..i]
            .iter()
            .filter(|t| t.kind == Tok::Literal)
            .count()
    }
}

fn is_unsigned_integer(t: &str) -> bool {
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())
}

/// The rows a single-table SELECT reads, by its key terms.
pub fn read_row_key(sql: &str) -> Option<RowKeyShape> {
    let s = Scan::new(sql)?;
    if !s.is_word(0, "select") || s.any_word(UNSURE) {
        return None;
    }
    let from = s.only_once("from")?;
    let (table, alias, after) = s.relation(from + 1)?;
    if !s.is_word(after, "where") || s.depth[after] != 0 {
        return None;
    }
    let terms = s.terms(after, &table, alias.as_deref())?;
    (!terms.is_empty()).then_some(RowKeyShape {
        table,
        terms,
        assigned: Vec::new(),
    })
}

/// The rows an `UPDATE t SET ... WHERE ...` or `DELETE FROM t WHERE ...` changes.
pub fn write_row_key(sql: &str) -> Option<RowKeyShape> {
    let s = Scan::new(sql)?;
    if s.any_word(UNSURE) || s.only_once("where").is_none() {
        return None;
    }
    let (table, alias, after, mut assigned) = if s.is_word(0, "update") {
        let (t, a, set) = s.relation(1)?;
        if !s.is_word(set, "set") || s.any_word(&["from", "select"]) {
            return None;
        }
        let mut assigned = Vec::new();
        let mut i = set + 1;
        while i < s.toks.len() && !(s.depth[i] == 0 && s.is_word(i, "where")) {
            assigned.extend(s.name(i));
            i += 1;
        }
        (t, a, i, assigned)
    } else if s.is_word(0, "delete") && s.is_word(1, "from") && s.only_once("from").is_some() {
        let (t, a, w) = s.relation(2)?;
        (t, a, w, Vec::new())
    } else {
        return None;
    };
    if !s.is_word(after, "where") {
        return None;
    }
    let terms = s.terms(after, &table, alias.as_deref())?;
    assigned.sort();
    assigned.dedup();
    (!terms.is_empty()).then_some(RowKeyShape {
        table,
        terms,
        assigned,
    })
}

/// The `n`-th literal token of `sql` (0-based).
pub fn nth_literal(sql: &str, n: usize) -> Option<&str> {
    let t = Lexer::new(sql).filter(|t| t.kind == Tok::Literal).nth(n)?;
    sql.get(t.start..t.end)
}

#[cfg(test)]
#[path = "row_key_tests.rs"]
mod tests;
