//! Kusto (KQL): a parser with positions, a printer and an evaluator for the subset rulecast emits
//! and Microsoft Sentinel's AWS analytic rules use.
//!
//! - [`parse`] reads a query (`let` statements, then a tabular expression) into a [`Query`] whose
//!   every node carries its byte [`Span`]; errors are a [`ParseError`] (offset, line, column,
//!   expected, found, hint).
//! - [`to_string`] prints a tree back as KQL: `parse(&to_string(&q)) == Ok(q)` (spans and styles
//!   never take part in equality). It is the one KQL printer: the Sentinel target builds its
//!   queries as trees ([`Expr::call`], [`Expr::binary`], ...) and prints them with it, the
//!   importer prints opaque conditions with it, and [`string_literal`] is its one string writer.
//! - [`run`] evaluates a query over the rows of one table and returns the result rows; it is how
//!   rulecast proves that a generated Sentinel query matches the same events as the canonical rule.
//!
//! # Semantics of the evaluator
//!
//! Values are Kusto's: `bool`, `long`, `real`, `string`, `datetime`, `timespan`, `dynamic` (JSON)
//! and null. Input rows are typed Sentinel rows: JSON strings for string columns (`""` when absent),
//! JSON booleans or `null` for bool columns, ISO 8601 strings for datetime columns (compared with
//! datetimes by parsing them), and the JSON text of `RequestParameters` & co. as a string that
//! `parse_json` parses.
//!
//! - Strings are never null (`tostring(null) == ""`). `==`, `!=`, `in`, `!in`, `has_cs`,
//!   `contains_cs`, `startswith_cs`, `endswith_cs` are case-sensitive; `=~`, `!~`, `in~`, `!in~`,
//!   `has`, `contains`, `startswith`, `endswith`, `has_any`, `has_all` are not (Unicode lowercase).
//! - `has` matches whole terms: the needle must occur where the text has a term boundary on each
//!   side (start/end of text or a character that is not a Unicode letter or digit; `_` separates
//!   terms, as Kusto's documentation defines them), unless the needle itself begins
//!   (ends) with a non-alphanumeric character. `"North America" has "america"` is true,
//!   `"AmericaNorth" has "america"` is false, `"iam:PassRole" has "iam:"` is true.
//!   `hasprefix`/`hassuffix` check one side only.
//! - Comparisons (`==` `<` ...) and arithmetic with a null operand give null; `and`/`or` use
//!   three-valued logic (`null and false` = false, `null or true` = true, otherwise null);
//!   `not(null)` = null; `where` keeps the rows whose predicate is true; `iif`/`case` take the
//!   else branch on null. String operators (`contains`, `has`, `startswith`, `matches regex` ...)
//!   read their operands with `tostring`, so a null operand is `""` (`null !contains "x"` is true).
//!   `in`/`!in` never give null: a null value is in no list.
//! - A dynamic operand of `==` is compared by its JSON value: a JSON string with a string, a JSON
//!   number with a number; a JSON array or object compared with a string is compared by its JSON
//!   text (`dynamic(["all"]) == '["all"]'`). Comparing a non-dynamic string with a number is a
//!   type error (Kusto rejects the query).
//! - Member access (`d.a`, `d["a"]`, `d[0]`, `d[-1]`) on a missing key, an out-of-range index or a
//!   non-object gives null. `parse_json` of text that is not JSON gives the text as a dynamic string.
//! - `extend a = e1, b = e2`: each assignment sees the columns of the ones before it (so `b` sees
//!   the new `a`); a column that already exists is removed and appended with its new value.
//!   `project` expressions all read the input row.
//! - `matches regex`, `extract`, `trim`, `replace_regex`, `indexof_regex` take RE2 syntax and run
//!   on the `regex` crate, after a rewrite that gives `\d \w \s \b` (and their negations) RE2's
//!   ASCII meaning and keeps `[` and doubled `&& -- ~~` literal inside classes, as RE2 does. What
//!   remains different: RE2's `\C` and `\Q...\E` are errors here; `\S \W \D` inside a class
//!   become POSIX classes (`\S` then also excludes `\v`); an invalid pattern is an [`EvalError`].
//! - Datetime columns hold ISO strings: comparisons and arithmetic with a datetime or timespan
//!   parse them, but `min`/`max`/`sort` over the raw column order them as text (the same order for
//!   the uniform `...Z` strings CloudTrail writes).
//! - `summarize` groups by value (type and value), in order of first appearance; by columns come
//!   first, then the aggregates (`count()` is named `count_`, `make_set(x)` `set_x`, ...). `min`,
//!   `max`, `dcount`, `make_set`, `make_list` skip nulls.
//! - A name that is neither a column of the row nor a `let` is an error, as it is in Kusto.
//!
//! Not supported (parsed where noted, an [`EvalError`] when run): `externaldata` (parsed), `guid`
//! literals, user-defined functions (`let f = (x:string) {...}`), `union`, `parse`, `lookup`,
//! `make-series`, `evaluate`, `mv-apply`, `as`, `invoke`, `search`, `find`, and functions not listed
//! in [`FUNCTIONS`].

mod eval;
mod lexer;
mod parser;
pub(crate) use parser::parse_datetime;
pub(crate) use printer::iso_datetime;
mod printer;
mod syntax;
#[cfg(test)]
mod tests;

use std::fmt;

use indexmap::IndexMap;
use serde_json::Value;

pub use eval::{AGGREGATES, Aggregate, FUNCTIONS, ScalarFn};
pub use syntax::*;

/// A syntax error: where it is, what was expected there and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset in the query text.
    pub offset: usize,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// What the parser expected (`` `)` closing `(` ``, `an expression`, ...).
    pub expected: String,
    /// What it found (`` `or` ``, `end of input`, ...).
    pub found: String,
    /// A suggestion (`` did you mean `contains`? ``).
    pub hint: Option<String>,
    /// The text is KQL, but nested deeper than rulecast reads (a limit of rulecast's, not an
    /// error in the query).
    pub limit: bool,
}

impl ParseError {
    pub(crate) fn new(
        src: &str,
        offset: usize,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> ParseError {
        let (line, col) = line_col(src, offset);
        ParseError {
            offset,
            line,
            col,
            expected: expected.into(),
            found: found.into(),
            hint: None,
            limit: false,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: expected {}, found {}",
            self.line, self.col, self.expected, self.found
        )?;
        if let Some(h) = &self.hint {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseError {}

/// An evaluation error: an unknown name, a type error, an unsupported construct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError {
    /// What went wrong.
    pub message: String,
    /// The expression or operator it happened in.
    pub span: Span,
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bytes {}..{}: {}",
            self.span.start, self.span.end, self.message
        )
    }
}

impl std::error::Error for EvalError {}

/// 1-based (line, column in characters) of a byte offset.
pub(crate) fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = src.get(..offset).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Parses a query: `let` statements, then one tabular expression.
pub fn parse(src: &str) -> Result<Query, ParseError> {
    parser::parse_query(src)
}

/// Parses one expression (scalar or tabular), e.g. a `where` predicate.
pub fn parse_expr(src: &str) -> Result<Expr, ParseError> {
    parser::parse_expr(src)
}

/// Prints a query as KQL: `let` statements on their lines, one tabular operator per line.
pub fn to_string(q: &Query) -> String {
    printer::query(q)
}

/// Prints an expression as KQL, on one line, with the parentheses precedence needs and those
/// its [`Style`] asks for.
pub fn expr_to_string(e: &Expr) -> String {
    printer::expr(e)
}

/// Can `key` be written as `.key` after a dynamic value? (Otherwise it is written `["key"]`.)
/// The one rule for bare property names, as the printer applies it.
pub fn is_member_name(key: &str) -> bool {
    printer::member(key)
}

/// The KQL string-literal writer: `s` as a literal in `quote` (`"` or `'`) that reads back as
/// `s`. The printer writes every string literal and bracketed name with it.
pub fn string_literal(s: &str, quote: char) -> String {
    printer::string(s, quote)
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_string(self))
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&expr_to_string(self))
    }
}

/// Runs `q` over `rows`, the rows of the table named `table`; `now()` and `ago()` read the clock.
pub fn run(
    q: &Query,
    table: &str,
    rows: &[IndexMap<String, Value>],
) -> Result<Vec<IndexMap<String, Value>>, EvalError> {
    run_at(q, table, rows, std::time::SystemTime::now())
}

/// [`run`] with a fixed `now()`.
pub fn run_at(
    q: &Query,
    table: &str,
    rows: &[IndexMap<String, Value>],
    now: std::time::SystemTime,
) -> Result<Vec<IndexMap<String, Value>>, EvalError> {
    eval::run(q, table, rows, now, &[], &Default::default())
}

/// [`run_typed_at`] where `externaldata` reads stand-ins: URI -> the values of its one column
/// (a test's assumed contents of the storage; any other URI is an error).
pub fn run_with_external(
    q: &Query,
    table: &str,
    rows: &[IndexMap<String, Value>],
    datetime_columns: &[&str],
    now: std::time::SystemTime,
    external: &std::collections::HashMap<String, Vec<String>>,
) -> Result<Vec<IndexMap<String, Value>>, EvalError> {
    eval::run(q, table, rows, now, datetime_columns, external)
}

/// [`run_typed`] with a fixed `now()`.
pub fn run_typed_at(
    q: &Query,
    table: &str,
    rows: &[IndexMap<String, Value>],
    datetime_columns: &[&str],
    now: std::time::SystemTime,
) -> Result<Vec<IndexMap<String, Value>>, EvalError> {
    eval::run(q, table, rows, now, datetime_columns, &Default::default())
}

/// [`run`] where the named columns of the input rows are `datetime` (given as ISO 8601 text, as
/// a table's schema types them; text that does not read as a date is null).
pub fn run_typed(
    q: &Query,
    table: &str,
    rows: &[IndexMap<String, Value>],
    datetime_columns: &[&str],
) -> Result<Vec<IndexMap<String, Value>>, EvalError> {
    eval::run(q, table, rows, std::time::SystemTime::now(), datetime_columns, &Default::default())
}
