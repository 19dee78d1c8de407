//! Microsoft Sentinel analytic-rule YAML (Azure-Sentinel format, KQL over `AWSCloudTrail`) →
//! canonical rules: the inverse of `targets::sentinel`.
//!
//! Input: one analytic-rule YAML file's text. Output: one [`Imported`]. The YAML is read with
//! serde-saphyr, the query with rulecast's own Kusto parser ([`crate::vendors::sentinel::kusto::parse`]); every
//! `where` predicate becomes a condition node with its case semantics kept (`==`, `in`,
//! `contains_cs` ... sensitive; `=~`, `in~`, `contains`, `has` ... `case: insensitive`), columns
//! and `parse_json(Column).path` become raw CloudTrail paths through the field taxonomy, and
//! `extend` / `summarize` / entity mappings / custom details / alert overrides become `alert:`.
//!
//! - `has`-family term matches become `regex` predicates with explicit term boundaries (a
//!   boundary is the start or end of the text or a character that is not a letter or digit, as
//!   Kusto defines terms), never `contains` (which would broaden the match).
//! - A `where` sub-expression that cannot be structured exactly is kept as an `opaque` KQL
//!   condition (names bound by `extend` and `let` are inlined, so the text reads only table
//!   columns) and named in [`crate::import::Outcome::Opaque`] as a detection part `<text>: <reason>`.
//! - Stages the model cannot say (`project`, `distinct`, `sort`, an `extend` the derive
//!   expressions cannot say ...) are named as `metadata:` parts when they do not change which
//!   events match; stages that do (`join`, `mv-expand` followed by `where`, a `where` over an
//!   aggregation other than a count threshold) refuse the rule with E502, located in the file.

use indexmap::IndexMap;
use serde_json::Value;

use crate::import::{Doc, Imported, Node, Part, PartKind, add_technique, line_col, slug_of};
use crate::diag::{Code, Diagnostic, Span};
use crate::fields::{self, Kind, Mapping, Seg};
use crate::vendors::sentinel::kusto::{self, Assign, BinOp, Expr, ExprKind, ListOp, Literal, Operator, OperatorKind};

mod alert;
mod metadata;
mod pipeline;
mod predicate;

use alert::*;
use metadata::*;
use predicate::*;
pub use metadata::duration;

/// The only table a canonical rule reads.
const TABLE: &str = "AWSCloudTrail";

/// Import the rule of one Sentinel analytic-rule YAML file. `file` names it in diagnostics and
/// gives the slug and `targets.sentinel.file`.
pub fn parse(file: &str, text: &str) -> Vec<Imported> {
    let slug = slug_of(file);
    let doc: Value = match serde_saphyr::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            // in rulecast's words, as the canonical loader says it (no library advice)
            let d = crate::load::yaml_error(file, &e);
            let msg = if d.message.starts_with("yaml syntax error") { d.message } else { format!("yaml syntax error: {}", d.message) };
            let d = Diagnostic::error(Code::E501, msg).with_span(d.span.or_else(|| at(file, 1, 1)));
            return vec![Imported::refused(&slug, d)];
        }
    };
    vec![import_one(file, text, &slug, &doc)]
}

fn at(file: &str, line: usize, col: usize) -> Option<Span> {
    Some(Span {
        file: file.to_string(),
        line,
        col,
    })
}

/// Where a top-level key starts (line 1, column 1 when it is not found).
fn key_span(file: &str, text: &str, key: &str) -> Option<Span> {
    let pat = format!("{key}:");
    let mut off = 0;
    for line in text.split_inclusive('\n') {
        if line.starts_with(&pat) {
            let (l, c) = line_col(text, off);
            return at(file, l, c);
        }
        off += line.len();
    }
    at(file, 1, 1)
}

/// Where the query text sits in the file: the line of `query:` and, for a block scalar, the
/// indentation of its content (query line n, column c ↦ file line `key_line + n`, column
/// `indent + c`).
struct QueryLoc {
    key_line: usize,
    key_col: usize,
    indent: Option<usize>,
    /// The length of each line of the file, in characters (a span never points past one).
    lens: Vec<usize>,
}

impl QueryLoc {
    fn find(text: &str) -> QueryLoc {
        let lines: Vec<&str> = text.lines().collect();
        let lens = lines.iter().map(|l| l.chars().count()).collect();
        let Some(i) = lines.iter().position(|l| l.starts_with("query:")) else {
            return QueryLoc {
                key_line: 1,
                key_col: 1,
                indent: None,
                lens,
            };
        };
        let head = lines.get(i).map_or("", |l| l["query:".len()..].trim());
        // a literal block keeps the file's lines (a folded `>` joins them: located at the key)
        let block = head.starts_with('|');
        let indent = if block {
            lines
                .iter()
                .skip(i + 1)
                .find(|l| !l.trim().is_empty())
                .map(|l| l.len() - l.trim_start().len())
        } else {
            None
        };
        QueryLoc {
            key_line: i + 1,
            key_col: 1,
            indent,
            lens,
        }
    }

    /// The file span of a byte offset in the query.
    fn span(&self, file: &str, query: &str, offset: usize) -> Option<Span> {
        let (l, c) = line_col(query, offset);
        let (line, col) = match self.indent {
            Some(ind) => (self.key_line + l, ind + c),
            None => (self.key_line, self.key_col),
        };
        // past the last line (the end of the query) or past the end of a line: the end of the
        // last line there is
        let last = self.lens.len().max(1);
        let (line, col) = if line > last { (last, usize::MAX) } else { (line.max(1), col) };
        let col = col.min(self.lens.get(line - 1).map_or(0, |n| n + 1)).max(1);
        at(file, line, col)
    }
}

fn s_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(|x| s_of(Some(x))).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => vec![],
    }
}

/// What a `let` name stands for.
#[derive(Debug, Clone)]
enum Let {
    /// A list of scalars (`dynamic([...])`, `pack_array(...)`, a one-column `datatable`).
    List(Vec<Value>),
    /// A scalar (`let threshold = 50;`).
    Scalar(Expr),
    /// A tabular expression (another query, `externaldata`, `materialize(...)`), when it is one
    /// the query can be read through.
    Table(Option<Box<Expr>>),
    /// `externaldata (c:string) ["https://..."] with (ignoreFirstRecord=..., format=...)`: an
    /// external list (`{url, column, header, format}` as the model writes it).
    External(Value),
}

/// A name bound by `extend`.
#[derive(Debug, Clone)]
struct Bound {
    /// Its expression with every bound name inlined: it reads only table columns.
    expr: Expr,
    /// Is it an `alert.derive` name (false: the extend was left out).
    derived: bool,
}

/// Why a part was not structured: a reason, and the byte offset in the query.
type Why = crate::import::Unsaid;

struct St<'a> {
    q: &'a str,
    file: &'a str,
    loc: &'a QueryLoc,
    lets: IndexMap<String, Let>,
    env: IndexMap<String, Bound>,
    used_lists: Vec<String>,
    /// External lists the detection compares with.
    used_external: Vec<String>,
    parts: Vec<Part>,
    /// Values `mv-expand`ed before a `where`: the rows are then (event, element) pairs.
    elems: Vec<Elem>,
    /// The rule's query period (a Kusto timespan), for `TimeGenerated >= ago(...)`.
    period: Option<i64>,
    /// The rule's query frequency (a Kusto timespan; `1h` when the file gives none).
    frequency: Option<i64>,
    /// New terms read from the query's tail: the `by` fields and the history (a timespan).
    new_terms: Option<(Vec<String>, i64)>,
    /// A hunting query: its time filters are the hunt's time range, set where it runs.
    hunting: bool,
    /// The flags of the Sentinel target's `some` loops (`_some1` → its `some` node), and the
    /// helper columns those loops use (`_v1`, `_some1`), which `project-away` then drops.
    somes: IndexMap<String, Node>,
    helper_columns: Vec<String>,
    /// `project-away` columns (`targets.sentinel.project_away`).
    project_away: Vec<String>,
    /// Notes found while reading field expressions (which borrow the state immutably).
    field_notes: std::cell::RefCell<Vec<Part>>,
    /// A correlation read from the query's steps and their join (`{type, by, within, steps}`).
    correlation: Option<Value>,
}

/// An `mv-expand`ed value: the elements of `field` (a raw path, or a path in the element
/// `parent` when it is marked `@N:`), decoded from JSON text when `decode`, then along `path`.
#[derive(Debug, Clone)]
struct Elem {
    /// The column name the element has in the query.
    name: String,
    /// Where the elements are (a raw path, or `@N:rel` inside element N).
    field: String,
    /// `parse_json(tostring(field))`: JSON text decoded.
    decode: bool,
    /// Members after the decoding.
    path: Vec<Seg>,
}

/// A field path inside element `i`, as the importer marks it until the `where` conditions are
/// grouped into `some` nodes: `@i:rel` (`@i:` is the element itself).
fn elem_path(i: usize, rel: &str) -> String {
    format!("@{i}:{rel}")
}

/// The element a marked path is in, and the path inside it.
fn split_elem(path: &str) -> Option<(usize, &str)> {
    let rest = path.strip_prefix('@')?;
    let (n, rel) = rest.split_once(':')?;
    Some((n.parse().ok()?, rel))
}

impl St<'_> {
    fn span(&self, off: usize) -> Option<Span> {
        self.loc.span(self.file, self.q, off)
    }

    fn src(&self, e: &Expr) -> String {
        self.q
            .get(e.span.start..e.span.end)
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn refuse(&self, msg: impl Into<String>, off: usize) -> Box<Diagnostic> {
        Box::new(Diagnostic::error(Code::E502, msg).with_span(self.span(off)))
    }

}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("1h").as_deref(), Some("1h"));
        assert_eq!(duration("PT1H").as_deref(), Some("1h"));
        assert_eq!(duration("P1D").as_deref(), Some("1d"));
        assert_eq!(duration("PT5M").as_deref(), Some("5m"));
        assert_eq!(duration("01:00:00").as_deref(), Some("1h"));
        assert_eq!(duration("1.00:00:00").as_deref(), Some("1d"));
        assert_eq!(duration("x"), None);
    }

    #[test]
    fn term_regexes_have_boundaries() {
        assert_eq!(
            term_regex("iam", true, true),
            r"(^|[^\p{L}\p{N}])iam($|[^\p{L}\p{N}])"
        );
        assert_eq!(term_regex("iam:", true, true), r"(^|[^\p{L}\p{N}])iam:");
        let re = regex::Regex::new(&format!("(?i){}", term_regex("america", true, true))).unwrap();
        assert!(re.is_match("North America"));
        assert!(!re.is_match("AmericaNorth"));
        assert!(re.is_match("x_america"));
    }
}

/// The top-level `and` operands of a KQL predicate, in order.
pub(super) fn conjuncts<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match &e.kind {
        ExprKind::Binary { op: BinOp::And, lhs, rhs } => {
            conjuncts(lhs, out);
            conjuncts(rhs, out);
        }
        _ => out.push(e),
    }
}
