//! EQL and ES|QL queries → canonical condition nodes.
//!
//! Input: the query text of an `eql` or `esql` rule. Output: a canonical `detection:` node (as
//! JSON) and the parts kept opaque, or a refusal (why, and the byte offset in the query).
//!
//! EQL (Elasticsearch ≥ 7.12): `==`, `!=`, `in`, `like`, `regex` and the string functions compare
//! case-sensitively; `:` and the `~` variants (`in~`, `like~`, `regex~`, `startsWith~`) fold
//! case; `like` and `:` patterns use `*` (any run) and `?` (one character); `regex` is a Lucene
//! regular expression matched against the whole value. `<category> where` filters on
//! `event.category` (or `event_category_override`), which the AWS integration derives itself:
//! it is kept as an opaque kuery condition. `sequence`, `sample` and pipes are refused.
//!
//! ES|QL: `FROM <index> [METADATA ...]`, then `WHERE` stages (each a conjunct) and a final
//! `KEEP` (columns only). `==`, `LIKE`, `RLIKE`, `IN` are case-sensitive; `LIKE` uses `*` / `?`,
//! `RLIKE` matches the whole value. A comparison with a null (missing) field is null, and a
//! `WHERE` drops the row, also under `NOT`: `NOT a == "x"` becomes `a exists and not a == "x"`.
//! One `STATS name = FN(arg), ... BY fields` becomes the canonical aggregate (`COUNT(*)`,
//! `COUNT_DISTINCT`, `MIN`, `MAX` of fields with a raw path; other columns are not carried), and
//! a `WHERE` after it on `count >= n` or a distinct count its threshold or minimum. Every other
//! stage (`EVAL`, `GROK`, `DISSECT`, `SORT`, ...) is refused by name.
//!
//! A comparison whose field has no raw CloudTrail path becomes an opaque node: written as kuery
//! when it has an exact kuery form (so the Elastic target still renders it), else in its own
//! language.

use serde_json::Value;

use super::expr::{Dialect, Expr, Lit, Parser, Span, SyntaxError, Term};
use super::{Target, raw_of, typed};
use crate::fields::Kind;
use crate::import::Node;
use crate::model::OpaqueLang;
use crate::model::doc::Opaque;
use crate::vendors::elastic::kuery;

/// What a query maps to.
#[derive(Debug, Default)]
pub struct Mapped {
    /// The condition.
    pub detection: Vec<Node>,
    /// The data-set field that was dropped (`data_stream.dataset`), if any.
    pub dataset: Option<String>,
    /// Parts kept opaque: (source text, reason).
    pub opaque: Vec<(String, String)>,
    /// ES|QL index pattern(s) from `FROM`.
    pub index: Vec<String>,
    /// ES|QL `KEEP` columns (not carried).
    pub keep: Option<String>,
    /// An EQL `sequence`: the canonical `correlation` (`detection` holds what every step shares).
    pub correlation: Option<Value>,
    /// An ES|QL `STATS ... BY` (and the `WHERE` on its columns after it): the canonical
    /// aggregate.
    pub aggregate: Option<crate::model::doc::Aggregate>,
    /// What the aggregate does not carry (`VALUES(...)` columns and the like), one line each.
    pub aggregate_parts: Vec<String>,
    /// Translation notes on the condition, one line each.
    pub notes: Vec<String>,
}

/// Does a condition hold a comparison of two fields?
fn has_ref(v: &Node) -> bool {
    match v {
        Node::Pred(p) => p.ref_field.is_some(),
        Node::All { all: k } | Node::Any { any: k } => k.iter().any(has_ref),
        Node::Not { not } => has_ref(not),
        Node::Some { some } => has_ref(&some.cond),
        _ => false,
    }
}

/// Why a query is refused.
#[derive(Debug)]
pub enum Refusal {
    /// It does not parse.
    Syntax(SyntaxError),
    /// It parses but uses something the model cannot say (message, byte offset).
    Unsupported(String, usize),
}

impl From<SyntaxError> for Refusal {
    fn from(e: SyntaxError) -> Self {
        Refusal::Syntax(e)
    }
}

/// Map an EQL query; `category_field` is `event_category_override` (default `event.category`).
pub fn eql(q: &str, category_field: &str) -> Result<Mapped, Refusal> {
    let mut p = Parser::new(q, 0, q.len(), Dialect::Eql)?;
    let Some((cat, span)) = p.ident() else {
        return Err(Refusal::Syntax(SyntaxError { offset: p.offset(), expected: "an event category, `sequence` or `sample`".into(), found: "something else".into() }));
    };
    if cat == "sequence" {
        return sequence(q);
    }
    if matches!(cat.as_str(), "sample" | "join") {
        return Err(Refusal::Unsupported(format!("EQL `{cat}` correlates several events; the model describes one event"), span.start));
    }
    if !p.at_kw("where") {
        return Err(Refusal::Syntax(SyntaxError { offset: p.offset(), expected: "`where`".into(), found: "something else".into() }));
    }
    p.ident();
    let e = p.expr()?;
    if p.at_pipe() {
        return Err(Refusal::Unsupported("EQL pipes (`| head`, `| tail`, `| filter`, ...) are not imported".into(), p.offset()));
    }
    p.finish()?;
    let mut m = Mapper { q, dialect: Dialect::Eql, out: Mapped::default() };
    if cat != "any"
        && let Some(Target::Raw(path, _)) = raw_of(category_field)
    {
        // the category is a term on the override field (`event.category` by default), which the
        // integration computes from the action: the by-action virtual field that names it
        m.out.detection.push(Node::pred(&path, "eq", vec![Value::String(cat.clone())], false));
    } else if cat != "any" {
        let text = kuery::to_string(&kuery_is(category_field, std::slice::from_ref(&cat), false));
        m.out.opaque.push((format!("{cat} where"), "the EQL event category".into()));
        m.out.detection.push(opaque_node(OpaqueLang::Kuery, &text, &format!("EQL event category `{cat}`: the AWS integration derives `{category_field}` from the API call; no raw CloudTrail field holds it")));
    }
    m.top(&e)?;
    Ok(m.out)
}

/// Map an EQL `sequence [by k, ...] with maxspan=<span> [any where c1] [any where c2] ...` to a
/// canonical sequence: the join keys to raw paths, the span to `within`, each step's condition
/// mapped as a one-event query is; the conditions every step shares become the rule's
/// `detection` (none when they share none), the rest each step's own. Refused: `until`, `!`
/// (missing events), per-step `by`, a category other than `any`, a join key with no raw path.
fn sequence(q: &str) -> Result<Mapped, Refusal> {
    let parsed = crate::vendors::elastic::eql_eval::parse(q).map_err(|e| Refusal::Unsupported(format!("an EQL sequence rulecast does not read: {e}"), 0))?;
    let crate::vendors::elastic::eql_eval::Query::Sequence { by, maxspan, steps } = parsed else {
        return Err(Refusal::Unsupported("not a sequence".into(), 0));
    };
    let mut keys = vec![];
    for f in &by {
        match raw_of(f) {
            Some(Target::Raw(path, _)) if !path.starts_with('@') => keys.push(path),
            _ => return Err(Refusal::Unsupported(format!("the sequence's join key `{f}` has no raw CloudTrail path"), 0)),
        }
    }
    let mut per_step: Vec<Vec<Node>> = vec![];
    let mut out = Mapped::default();
    for e in &steps {
        let mut m = Mapper { q, dialect: Dialect::Eql, out: Mapped::default() };
        m.top(e)?;
        if m.out.dataset.is_some() {
            out.dataset = m.out.dataset.clone();
        }
        out.opaque.extend(m.out.opaque);
        per_step.push(m.out.detection);
    }
    // what every step shares (in the first step's order) is the rule's detection
    let (shared, own) = crate::import::shared_and_own(&per_step);
    if own.iter().any(Vec::is_empty) {
        return Err(Refusal::Unsupported("an EQL sequence with a step that has no condition of its own (besides what every step shares) is not imported".into(), 0));
    }
    let ticks_per_sec = 10_000_000;
    let secs = maxspan / ticks_per_sec;
    let within = crate::import::duration_text(secs);
    let steps: Vec<Value> = own
        .into_iter()
        .enumerate()
        .map(|(i, nodes)| serde_json::json!({"name": format!("step{}", i + 1), "detection": crate::model::doc::to_value(&Node::all(nodes))}))
        .collect();
    out.detection = shared;
    out.correlation = Some(serde_json::json!({"type": "sequence", "by": keys, "within": within, "steps": steps}));
    Ok(out)
}

/// Map an ES|QL query.
pub fn esql(q: &str) -> Result<Mapped, Refusal> {
    let stages = split_pipes(q);
    let mut m = Mapper { q, dialect: Dialect::Esql, out: Mapped::default() };
    // the `STATS` stage: its measures (with the names the query gives them) and group-by
    let mut stats: Option<Stats> = None;
    for (i, (start, end)) in stages.iter().copied().enumerate() {
        let lead = q[start..end].len() - q[start..end].trim_start().len();
        let cmd: String = q[start + lead..end].chars().take_while(|c| c.is_ascii_alphabetic()).collect();
        if cmd.is_empty() {
            return Err(Refusal::Syntax(SyntaxError { offset: start + lead, expected: "an ES|QL command".into(), found: "something else".into() }));
        }
        let span = Span { start: start + lead, end: start + lead + cmd.len() };
        let lc = cmd.to_ascii_lowercase();
        match lc.as_str() {
            "from" if i == 0 => {
                // FROM idx[, idx] [METADATA _id, ...]: the index patterns are the text up to METADATA
                let rest = q[span.end..end].trim();
                let idx = match rest.to_ascii_lowercase().find("metadata") {
                    Some(k) => &rest[..k],
                    None => rest,
                };
                m.out.index = idx.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
            }
            // (refusals located at the command)
            "stats" if i > 0 && stats.is_none() => {
                stats = Some(parse_stats(&q[span.end..end], span.start)?);
            }
            "where" if i > 0 && stats.is_some() => {
                if let Some(st) = stats.as_mut() {
                    stats_where(&q[span.end..end], span.start, st)?;
                }
            }
            "where" if i > 0 => {
                let mut p = Parser::new(q, span.end, end, Dialect::Esql)?;
                let e = p.expr()?;
                p.finish()?;
                m.top(&e)?;
            }
            "keep" if i > 0 && tail_is(q, &stages[i + 1..], &["sort"]) => {
                m.out.keep = Some(without_comments(&q[span.end..end]).split_whitespace().collect::<Vec<_>>().join(" "));
            }
            // the order of the result rows: which rows there are does not depend on it
            "sort" if i > 0 && tail_is(q, &stages[i + 1..], &["sort", "keep"]) => {
                let by = without_comments(&q[span.end..end]).split_whitespace().collect::<Vec<_>>().join(" ");
                m.out.aggregate_parts.push(format!("ES|QL `SORT {by}` orders the result rows (not carried)"));
            }
            _ => {
                let what = match lc.as_str() {
                    "stats" => "aggregates events",
                    "eval" => "computes new columns",
                    "grok" | "dissect" => "parses a field into new columns",
                    "sort" | "limit" => "orders or limits the result",
                    "keep" | "drop" | "rename" => "reshapes the columns before the end",
                    "from" | "row" | "show" => "is a source command",
                    "where" => "filters before the source",
                    _ => "is not a filter",
                };
                return Err(Refusal::Unsupported(format!("ES|QL `{}` {what}: the model describes a filter on one event", cmd.to_ascii_uppercase()), span.start));
            }
        }
    }
    if let Some(st) = stats {
        let mut measures = indexmap::IndexMap::new();
        for (name, measure, _) in st.measures {
            measures.insert(name, measure);
        }
        m.out.aggregate = Some(crate::model::doc::Aggregate { measures, by: st.by, threshold: st.threshold, derive: vec![], min_distinct: st.min_distinct, bin: None });
        let mut parts = st.parts;
        parts.append(&mut m.out.aggregate_parts);
        m.out.aggregate_parts = parts;
    }
    Ok(m.out)
}

/// Is every stage of `stages` one of the commands `allowed`?
fn tail_is(q: &str, stages: &[(usize, usize)], allowed: &[&str]) -> bool {
    stages.iter().all(|&(start, end)| {
        let cmd: String = q[start..end].trim_start().chars().take_while(|c| c.is_ascii_alphabetic()).collect();
        allowed.contains(&cmd.to_ascii_lowercase().as_str())
    })
}

/// An ES|QL `STATS` read into the model.
struct Stats {
    /// (canonical name, measure, the query's name).
    measures: Vec<(String, crate::model::Measure, String)>,
    /// Group-by raw paths.
    by: Vec<String>,
    /// More events than this (from a `WHERE count >= n` after it).
    threshold: Option<u64>,
    /// Distinct minimums (from a `WHERE count_distinct >= n` after it).
    min_distinct: indexmap::IndexMap<String, u64>,
    /// Columns not carried, with the query's names (so that a `WHERE` on one is refused).
    dropped: Vec<String>,
    /// What is not carried, one line each.
    parts: Vec<String>,
}

/// The text of an ES|QL stage without its comments (`//` to the end of the line, `/* */`),
/// strings left as they are.
fn without_comments(text: &str) -> String {
    let b = text.as_bytes();
    let (mut out, mut i) = (Vec::with_capacity(b.len()), 0);
    while i < b.len() {
        match b[i] {
            b'"' => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(b.len());
                out.extend_from_slice(&b[start..i]);
            }
            b'/' if b[i..].starts_with(b"//") => {
                while i < b.len() && b[i] != b'\n' {
                    out.push(b' ');
                    i += 1;
                }
            }
            b'/' if b[i..].starts_with(b"/*") => {
                let end = b[i + 2..].windows(2).position(|w| w == b"*/").map_or(b.len(), |e| i + 2 + e + 2);
                out.extend(std::iter::repeat_n(b' ', end - i));
                i = end;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_default()
}

/// Split at top-level commas (not inside parentheses or strings).
fn top_level_commas(text: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start, mut in_str) = (vec![], 0i32, 0, false);
    for (i, c) in text.char_indices() {
        match c {
            '"' => in_str = !in_str,
            '(' if !in_str => depth += 1,
            ')' if !in_str => depth -= 1,
            ',' if !in_str && depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out.into_iter().map(str::trim).filter(|p| !p.is_empty()).collect()
}

/// A canonical measure name from the query's (`Esql.invocation_count` → `invocation_count`).
fn measure_name(name: &str) -> String {
    let last = name.rsplit('.').next().unwrap_or(name);
    let mut out: String = last.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic()) {
        out.insert(0, 'm');
    }
    out
}

/// `STATS name = FN(arg), ... BY field, ...` → measures and group-by. `COUNT(*)`,
/// `COUNT_DISTINCT(field)`, `MIN(field)` and `MAX(field)` are the model's measures; `VALUES`,
/// `COUNT(field)` and the rest are columns the model does not carry (a `WHERE` on one is
/// refused).
fn parse_stats(text: &str, offset: usize) -> Result<Stats, Refusal> {
    use crate::model::Measure;
    let clean = without_comments(text);
    let lower = clean.to_ascii_lowercase();
    let by_at = lower.match_indices("by").find(|(i, _)| {
        let before = lower[..*i].chars().next_back();
        let after = lower[i + 2..].chars().next();
        before.is_some_and(char::is_whitespace) && after.is_none_or(char::is_whitespace)
    });
    let (aggs, by_text) = match by_at {
        Some((i, _)) => (&clean[..i], Some(&clean[i + 2..])),
        None => (&clean[..], None),
    };
    let unsupported = |msg: String| Refusal::Unsupported(msg, offset);
    let mut st = Stats { measures: vec![], by: vec![], threshold: None, min_distinct: indexmap::IndexMap::new(), dropped: vec![], parts: vec![] };
    for a in top_level_commas(aggs) {
        let Some((name, call)) = a.split_once('=').map(|(n, c)| (n.trim(), c.trim())) else {
            return Err(unsupported(format!("ES|QL `STATS {a}`: an aggregation without a name is not imported")));
        };
        let Some((func, arg)) = call.strip_suffix(')').and_then(|c| c.split_once('(')).map(|(f, a)| (f.trim().to_ascii_lowercase(), a.trim())) else {
            return Err(unsupported(format!("ES|QL `STATS {a}`: not a function call the model reads")));
        };
        let path = |arg: &str| match raw_of(arg) {
            Some(Target::Raw(p, _)) => Some(p),
            Some(Target::SourceIp) => Some("@source_ip".to_string()),
            Some(Target::Outcome) => Some("@outcome".to_string()),
            _ => None,
        };
        let measure = match (func.as_str(), arg) {
            ("count", "*" | "") => Some(Measure::Count),
            ("count_distinct", f) => path(f).map(Measure::Distinct),
            ("min", f) => path(f).map(Measure::Min),
            ("max", f) => path(f).map(Measure::Max),
            _ => None,
        };
        match measure {
            Some(m) => {
                let mut canonical = measure_name(name);
                while st.measures.iter().any(|(n, _, _)| *n == canonical) {
                    canonical.push('_');
                }
                st.measures.push((canonical, m, name.to_string()));
            }
            None => {
                st.parts.push(format!("ES|QL `STATS {name} = {call}` is not carried (a column of the result; the model's measures are COUNT(*), COUNT_DISTINCT, MIN and MAX of fields with a raw CloudTrail path)"));
                st.dropped.push(name.to_string());
            }
        }
    }
    if st.measures.iter().any(|(_, m, _)| matches!(m, Measure::Distinct(_))) {
        st.parts.push("ES|QL's COUNT_DISTINCT is approximate (HyperLogLog++; near-exact below its precision threshold, 3000 by default); the canonical distinct count is exact".into());
    }
    for f in by_text.map(top_level_commas).unwrap_or_default() {
        match raw_of(f) {
            Some(Target::Raw(p, _)) => st.by.push(p),
            Some(Target::SourceIp) => st.by.push("@source_ip".into()),
            Some(Target::Outcome) => st.by.push("@outcome".into()),
            _ => return Err(unsupported(format!("ES|QL `STATS ... BY {f}`: the group-by field has no raw CloudTrail path"))),
        }
    }
    Ok(st)
}

/// A `WHERE` after `STATS`: a conjunction of `<measure> >= n` / `<measure> > n` on the count
/// (the model's threshold: more than n - 1, or n) or on a distinct count (its minimum).
fn stats_where(text: &str, offset: usize, st: &mut Stats) -> Result<(), Refusal> {
    use crate::model::Measure;
    let clean = without_comments(text);
    let unsupported = |msg: String| Refusal::Unsupported(msg, offset);
    // `AND` between any white space (a line break included)
    let and = regex::Regex::new(r"(?i)\s+and\s+").expect("a valid regex");
    for part in and.split(&clean).map(str::trim) {
        let (name, op, n) = match [">=", ">"].iter().find_map(|op| part.split_once(op).map(|(a, b)| (a.trim(), *op, b.trim()))) {
            Some(x) => x,
            None => return Err(unsupported(format!("ES|QL `WHERE {part}` after `STATS`: only `<measure> >= n` or `> n` on a count is read"))),
        };
        let Ok(n) = n.parse::<u64>() else {
            return Err(unsupported(format!("ES|QL `WHERE {part}` after `STATS`: `{n}` is not a whole number")));
        };
        let Some((canonical, measure, _)) = st.measures.iter().find(|(_, _, q)| q == name) else {
            return Err(unsupported(format!("ES|QL `WHERE {part}` after `STATS`: `{name}` is not a count the model carries")));
        };
        let least = if op == ">=" { n } else { n + 1 };
        match measure {
            Measure::Count if st.threshold.is_none() && least >= 1 => st.threshold = Some(least - 1),
            Measure::Distinct(_) if least >= 1 => {
                st.min_distinct.insert(canonical.clone(), least);
            }
            _ => return Err(unsupported(format!("ES|QL `WHERE {part}` after `STATS`: not a threshold the model carries (one minimum on the count, or on a distinct count)"))),
        }
    }
    Ok(())
}

/// The byte ranges of the `|`-separated stages (pipes inside strings and comments skipped).
fn split_pipes(q: &str) -> Vec<(usize, usize)> {
    let b = q.as_bytes();
    let (mut out, mut start, mut i) = (vec![], 0, 0);
    // `i` walks bytes (it may stop inside a multi-byte character after an escape): compare
    // bytes, never slice the text there
    let find = |from: usize, pat: &[u8]| b[from.min(b.len())..].windows(pat.len()).position(|w| w == pat).map(|e| from + e);
    while i < b.len() {
        if b[i..].starts_with(b"\"\"\"") {
            i = find(i + 3, b"\"\"\"").map_or(b.len(), |e| e + 3);
            continue;
        }
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'/' if b[i..].starts_with(b"//") => i = find(i, b"\n").unwrap_or(b.len()),
            b'/' if b[i..].starts_with(b"/*") => i = find(i + 2, b"*/").map_or(b.len(), |e| e + 2),
            b'|' => {
                out.push((start, i));
                start = i + 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    out.push((start, b.len().max(start)));
    out
}

fn opaque_node(lang: OpaqueLang, text: &str, reason: &str) -> Node {
    Node::Opaque { opaque: Opaque { lang, text: text.to_string(), reason: reason.to_string() } }
}

/// `field:("a" or "b")` as a kuery tree; `wild` values are `*`-patterns.
fn kuery_is(field: &str, values: &[String], wild: bool) -> kuery::Query {
    let one = |v: &str| {
        let kind = if wild {
            let mut pieces = vec![];
            for (i, part) in v.split('*').enumerate() {
                if i > 0 {
                    pieces.push(kuery::Piece::Star);
                }
                if !part.is_empty() {
                    pieces.push(kuery::Piece::Text(part.to_string()));
                }
            }
            kuery::ValueKind::Unquoted(pieces)
        } else {
            kuery::ValueKind::Quoted(v.to_string())
        };
        kuery::ValueList { kind: kuery::ValueListKind::One(kuery::Value { kind, span: kuery::Span::default() }), span: kuery::Span::default() }
    };
    let values = if values.len() == 1 {
        one(&values[0])
    } else {
        kuery::ValueList { kind: kuery::ValueListKind::Or(values.iter().map(|v| one(v)).collect()), span: kuery::Span::default() }
    };
    let f = kuery::Field { name: field.to_string(), quoted: false, span: kuery::Span::default() };
    kuery::Query::new(kuery::QueryKind::Is { field: Some(f), values }, kuery::Span::default())
}

struct Mapper<'a> {
    q: &'a str,
    dialect: Dialect,
    out: Mapped,
}

/// A leaf the model cannot say: the reason.
type Why = String;

impl Mapper<'_> {
    fn src(&self, s: Span) -> String {
        self.q.get(s.start..s.end).unwrap_or("").split_whitespace().collect::<Vec<_>>().join(" ")
    }

    fn lang(&self) -> OpaqueLang {
        match self.dialect {
            Dialect::Eql => OpaqueLang::Eql,
            Dialect::Esql => OpaqueLang::Esql,
        }
    }

    /// A top-level condition: its conjuncts (the data-set filter is dropped there).
    fn top(&mut self, e: &Expr) -> Result<(), Refusal> {
        let kids: Vec<&Expr> = match e {
            Expr::And(k, _) => k.iter().collect(),
            other => vec![other],
        };
        for k in kids {
            if let Some(ds) = self.dataset(k) {
                self.out.dataset = Some(ds);
                continue;
            }
            let v = self.node(k, false);
            self.out.detection.push(v);
        }
        Ok(())
    }

    fn dataset(&self, e: &Expr) -> Option<String> {
        if let Expr::Cmp { lhs: Term::Field(f), op, rhs, .. } = e
            && matches!(raw_of(f), Some(Target::Dataset))
            && matches!(op.as_str(), "==" | ":")
            && rhs == &[Term::Lit(Lit::Str("aws.cloudtrail".into()))]
        {
            return Some(f.clone());
        }
        None
    }

    /// A node; `neg`: the node is negated (ES|QL's null semantics push `NOT` to the leaves).
    fn node(&mut self, e: &Expr, neg: bool) -> Node {
        match e {
            Expr::And(k, _) | Expr::Or(k, _) => {
                let is_and = matches!(e, Expr::And(..));
                let v: Vec<Node> = k.iter().map(|k| self.node(k, neg && self.dialect == Dialect::Esql)).collect();
                let v = if is_and == (neg && self.dialect == Dialect::Esql) { Node::any(v) } else { Node::all(v) };
                if neg && self.dialect == Dialect::Eql { Node::not(v) } else { v }
            }
            Expr::Not(k, _) => {
                if self.dialect == Dialect::Esql {
                    self.node(k, !neg)
                } else {
                    let v = self.node(k, false);
                    if neg {
                        v
                    } else if let Node::Pred(p) = &v
                        && let Some(other) = p.ref_field.clone()
                    {
                        // two fields compared: Elasticsearch runs it as a script, where a
                        // missing side gives null and `not` of null does not match
                        Node::all(vec![Node::pred(&p.field, "exists", vec![], false), Node::pred(&other, "exists", vec![], false), Node::not(v)])
                    } else {
                        if has_ref(&v) {
                            self.out.notes.push(format!(
                                "`{}`: a comparison of two fields inside a negated group is null in EQL where a field is missing, and the group's `not` then does not match; the canonical rule reads the comparison as false there",
                                self.src(e.span())
                            ));
                        }
                        Node::not(v)
                    }
                }
            }
            _ => {
                match self.leaf(e) {
                    Ok((v, field)) => {
                        if let Node::Pred(p) = &v
                            && let Some(other) = &p.ref_field
                        {
                            self.out.notes.push(format!(
                                "`{}`: where `{other}` is the empty text, EQL's function holds (as Java's `contains(\"\")` does); the canonical comparison of two fields never holds for an empty value",
                                self.src(e.span())
                            ));
                        }
                        if !neg {
                            v
                        } else if self.dialect == Dialect::Esql && !matches!(e, Expr::IsNull { .. }) {
                            // ES|QL: NOT of a comparison with a missing field is null: the row is dropped
                            match field {
                                Some(f) => Node::all(vec![Node::pred(&f, "exists", vec![], false), Node::not(v)]),
                                None => Node::not(v),
                            }
                        } else {
                            Node::not(v)
                        }
                    }
                    Err(why) => self.opaque(e, neg, &why),
                }
            }
        }
    }

    /// An opaque node for a leaf: kuery where it has an exact kuery form, else its own language.
    fn opaque(&mut self, e: &Expr, neg: bool, why: &str) -> Node {
        let src = self.src(e.span());
        self.out.opaque.push((src.clone(), why.to_string()));
        if let Some((k, field)) = self.as_kuery(e) {
            let q = match (neg, self.dialect) {
                (false, _) => k,
                (true, Dialect::Eql) => k.not(),
                (true, Dialect::Esql) => kuery::Query::and(vec![kuery_is(&field, &["*".to_string()], true), k.not()]),
            };
            return opaque_node(OpaqueLang::Kuery, &kuery::to_string(&q), why);
        }
        let text = if neg { format!("NOT ({src})") } else { src };
        let text = if self.dialect == Dialect::Eql { text.replace("NOT (", "not (") } else { text };
        opaque_node(self.lang(), &text, why)
    }

    /// The exact kuery form of a case-sensitive leaf over a keyword field, with its field.
    fn as_kuery(&self, e: &Expr) -> Option<(kuery::Query, String)> {
        let strs = |rhs: &[Term]| -> Option<Vec<String>> {
            rhs.iter().map(|t| match t { Term::Lit(Lit::Str(s)) if !s.is_empty() => Some(s.clone()), _ => None }).collect()
        };
        let plain = |s: &String| !s.chars().any(|c| c.is_whitespace() || c == '*' || c == '?' || c == '\\');
        match e {
            Expr::Cmp { lhs: Term::Field(f), op, rhs, .. } if matches!(op.as_str(), "==" | "in") => {
                let v = strs(rhs)?;
                Some((kuery_is(f, &v, false), f.clone()))
            }
            Expr::Term(Term::Call { name, insensitive: false, args }, _) => {
                let [Term::Field(f), rest @ ..] = args.as_slice() else { return None };
                let v = strs(rest)?;
                if !v.iter().all(plain) {
                    return None;
                }
                let pat: Vec<String> = match name.to_ascii_lowercase().as_str() {
                    "stringcontains" => v.iter().map(|s| format!("*{s}*")).collect(),
                    "startswith" | "starts_with" => v.iter().map(|s| format!("{s}*")).collect(),
                    "endswith" | "ends_with" => v.iter().map(|s| format!("*{s}")).collect(),
                    _ => return None,
                };
                Some((kuery_is(f, &pat, true), f.clone()))
            }
            _ => None,
        }
    }

    /// A leaf: the canonical node and the raw field it tests, or why it cannot be said.
    fn leaf(&self, e: &Expr) -> Result<(Node, Option<String>), Why> {
        match e {
            Expr::IsNull { term: Term::Field(f), negated, .. } => {
                let (path, _) = self.raw(f)?;
                let v = Node::pred(&path, "exists", vec![], false);
                Ok((if *negated { v } else { Node::not(v) }, Some(path)))
            }
            Expr::Cmp { lhs: Term::Field(f), op, rhs, .. } => self.cmp(f, op, rhs),
            Expr::Term(Term::Call { name, insensitive, args }, _) => {
                let [Term::Field(f), rest @ ..] = args.as_slice() else {
                    return Err(format!("`{name}` over something other than a field"));
                };
                let op = match name.to_ascii_lowercase().as_str() {
                    "stringcontains" => "contains",
                    "startswith" | "starts_with" => "startswith",
                    "endswith" | "ends_with" => "endswith",
                    _ => return Err(format!("the function `{name}` has no canonical form")),
                };
                // another field as the second argument: the model's `ref` with this comparison
                if let [Term::Field(g)] = rest {
                    let ((a, ka), (b, kb)) = (self.raw(f)?, self.raw(g)?);
                    if ka != Kind::String || kb != Kind::String {
                        return Err(format!("`{name}` of two fields that are not both text (`{f}`, `{g}`)"));
                    }
                    let p = crate::model::doc::Pred {
                        ref_field: Some(b),
                        case: insensitive.then_some(crate::model::Case::Insensitive),
                        ..crate::model::doc::Pred::new(&a, op)
                    };
                    return Ok((Node::Pred(p), Some(a)));
                }
                let vals = self.strings(rest)?;
                // a substring of an object's text copy (Java's map text) with none of its
                // separators in it: `mentions`, exactly
                if op == "contains"
                    && raw_of(f).is_none()
                    && let Some(path) = super::keyword_copy_of(f)
                {
                    if vals.iter().all(|v| !v.is_empty() && !crate::fields::java_text::has_separator(v) && !"null".contains(v.as_str())) {
                        return Ok((Node::pred(&path, "mentions", vals.into_iter().map(Value::String).collect(), *insensitive), Some(path)));
                    }
                    // any other substring: of the text itself (the virtual field naming it)
                    if let Ok(text) = super::text_field(f) {
                        return Ok((Node::pred(text, op, vals.into_iter().map(Value::String).collect(), *insensitive), Some(text.to_string())));
                    }
                    return Err(format!("`{f}` is Java's map text of `{path}` (`{{key=value, ...}}`): a substring with `=`, `,`, spaces, braces or brackets depends on its order and layout"));
                }
                let (path, _) = self.raw(f)?;
                Ok((Node::pred(&path, op, vals.into_iter().map(Value::String).collect(), *insensitive), Some(path)))
            }
            _ => Err("this expression has no canonical form".into()),
        }
    }

    fn strings(&self, rhs: &[Term]) -> Result<Vec<String>, Why> {
        rhs.iter()
            .map(|t| match t {
                Term::Lit(Lit::Str(s)) => Ok(s.clone()),
                Term::Field(f) => Err(format!("a comparison with another field (`{f}`) has no canonical form")),
                _ => Err("a pattern must be a string".into()),
            })
            .collect()
    }

    fn raw(&self, f: &str) -> Result<(String, Kind), Why> {
        match raw_of(f) {
            Some(Target::Raw(p, k)) => Ok((p, k)),
            Some(Target::SourceIp) => Ok(("sourceIPAddress".into(), Kind::String)),
            Some(Target::Outcome) => Ok(("@outcome".into(), Kind::String)),
            Some(Target::Dataset) => Err("the data-set filter is only imported as a top-level `== \"aws.cloudtrail\"`".into()),
            // an object's text copy: the virtual field that is that text
            None => super::text_field(f).map(|t| (t.to_string(), Kind::String)).map_err(|_| format!("`{f}` has no raw CloudTrail path")),
        }
    }

    fn cmp(&self, f: &str, op: &str, rhs: &[Term]) -> Result<(Node, Option<String>), Why> {
        if let Some(Target::Outcome) = raw_of(f)
            && op == "=="
            && let [Term::Lit(Lit::Str(s))] = rhs
            && (s == "success" || s == "failure")
        {
            return Ok((Node::Succeeded { request_succeeded: s == "success" }, None));
        }
        if let Some(Target::SourceIp) = raw_of(f)
            && !matches!(op, "==" | "in")
        {
            return Err("`source.ip` holds sourceIPAddress only when it is an IP address: only `==` / `in` are imported".into());
        }
        let (path, kind) = self.raw(f)?;
        let sensitive = !(op.ends_with('~') || op == ":");
        let ci = !sensitive;
        let node = match op {
            "==" | "!=" | "in" | "in~" => {
                if let [Term::Lit(Lit::Null)] = rhs {
                    let v = Node::pred(&path, "exists", vec![], false);
                    return Ok((if op == "==" { Node::not(v) } else { v }, Some(path)));
                }
                let vals: Vec<Value> = rhs
                    .iter()
                    .map(|t| match t {
                        Term::Lit(Lit::Str(s)) => Ok(typed(s, kind)),
                        Term::Lit(Lit::Num(n)) => Ok(typed(n, Kind::Number)),
                        Term::Lit(Lit::Bool(b)) => Ok(Value::Bool(*b)),
                        Term::Field(g) => Err(format!("a comparison with another field (`{g}`) has no canonical form")),
                        _ => Err("the value has no canonical form".to_string()),
                    })
                    .collect::<Result<_, _>>()?;
                let ci = ci && vals.iter().any(Value::is_string);
                let v = Node::pred(&path, "eq", vals, ci);
                if op == "!=" {
                    if self.dialect == Dialect::Esql {
                        Node::all(vec![Node::pred(&path, "exists", vec![], false), Node::not(v)])
                    } else {
                        Node::not(v)
                    }
                } else {
                    v
                }
            }
            ":" | "like" | "like~" => {
                let pats = self.strings(rhs)?;
                let mut kids = vec![];
                for p in &pats {
                    if self.dialect == Dialect::Esql && p.contains('\\') {
                        return Err("a LIKE pattern with escapes is not imported".into());
                    }
                    if op == ":" && p.contains('?') {
                        return Err("a `:` pattern with `?` is not imported".into());
                    }
                    kids.push(pattern(&path, p, ci));
                }
                super::merge_or(kids)
            }
            "regex" | "regex~" | "rlike" => {
                let pats = self.strings(rhs)?;
                let mut vals = vec![];
                for p in &pats {
                    let Some(p) = crate::vendors::elastic::lucene::to_re2(p) else {
                        return Err("a Lucene regular expression with operators (`@`, `&`, `~`, `<>`, `#`, quoted strings) or nested classes RE2 reads differently".into());
                    };
                    // Lucene's `.` is any character, line breaks too
                    let re = format!("{}^(?:{p})$", if ci { "(?is)" } else { "(?s)" });
                    if regex::Regex::new(&re).is_err() {
                        return Err("the regular expression is not valid RE2".into());
                    }
                    vals.push(Value::String(re));
                }
                Node::pred(&path, "regex", vals, false)
            }
            "<" | "<=" | ">" | ">=" => {
                let [Term::Lit(Lit::Num(n))] = rhs else {
                    return Err("an ordering with something other than a number".into());
                };
                let op = match op {
                    "<" => "lt",
                    "<=" => "le",
                    ">" => "gt",
                    _ => "ge",
                };
                Node::pred(&path, op, vec![typed(n, Kind::Number)], false)
            }
            other => return Err(format!("the operator `{other}` has no canonical form")),
        };
        Ok((node, Some(path)))
    }
}

/// A `*` / `?` pattern as the most specific canonical predicate.
fn pattern(path: &str, p: &str, ci: bool) -> Node {
    let inner = p.trim_matches('*');
    let simple = !inner.contains(['*', '?']) && !inner.is_empty();
    let (lead, trail) = (p.starts_with('*'), p.ends_with('*') && p.len() > 1);
    if !p.contains(['*', '?']) {
        Node::pred(path, "eq", vec![Value::from(p)], ci)
    } else if p == "*" {
        Node::pred(path, "exists", vec![], false)
    } else if simple && lead && trail {
        Node::pred(path, "contains", vec![Value::from(inner)], ci)
    } else if simple && trail && !lead {
        Node::pred(path, "startswith", vec![Value::from(inner)], ci)
    } else if simple && lead && !trail {
        Node::pred(path, "endswith", vec![Value::from(inner)], ci)
    } else {
        Node::pred(path, "glob", vec![Value::from(p)], ci)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esql_stats_maps_to_the_aggregate_or_is_refused_by_name() {
        use crate::model::Measure;
        let q = |stats: &str| format!("FROM logs-aws.cloudtrail-*\n| WHERE event.action == \"GetSecretValue\"\n{stats}");
        let m = esql(&q("| STATS n = COUNT(*), k = COUNT_DISTINCT(aws.cloudtrail.user_identity.arn) BY source.ip // per address\n| WHERE n > 5\n  AND k >= 3")).expect("read");
        assert!(m.aggregate_parts.iter().any(|p| p.contains("COUNT_DISTINCT is approximate")), "{:?}", m.aggregate_parts);
        let a = m.aggregate.expect("an aggregate");
        assert_eq!(a.by, ["@source_ip"]);
        assert_eq!(a.threshold, Some(5), "more than 5");
        assert!(matches!(a.measures.get("k"), Some(Measure::Distinct(p)) if p == "userIdentity.arn"));
        assert_eq!(a.min_distinct.get("k"), Some(&3));
        let m = esql(&q("| STATS Esql.total = count(*) BY cloud.account.id\n| WHERE Esql.total >= 10\n| KEEP cloud.account.id\n| SORT cloud.account.id")).expect("read");
        assert_eq!(m.aggregate.expect("aggregate").threshold, Some(9), "at least 10");
        for (stats, why) in [
            ("| STATS v = VALUES(source.ip) BY cloud.account.id\n| WHERE v > 1", "not a count the model carries"),
            ("| STATS n = COUNT(*) BY source.geo.country_iso_code", "no raw CloudTrail path"),
            ("| STATS n = COUNT(*) BY cloud.account.id\n| WHERE n < 3", "only `<measure> >= n`"),
            ("| STATS n = COUNT(*) BY cloud.account.id\n| LIMIT 10", "LIMIT"),
            ("| STATS COUNT(*) BY cloud.account.id", "without a name"),
        ] {
            match esql(&q(stats)) {
                Err(Refusal::Unsupported(msg, _)) => assert!(msg.contains(why), "{stats}: {msg}"),
                other => panic!("{stats}: {other:?}"),
            }
        }
    }

    #[test]
    fn eql_maps_to_canonical_and_opaque_kuery() {
        let m = eql(
            r#"iam where data_stream.dataset == "aws.cloudtrail" and event.action in ("A", "B") and event.outcome == "success"
               and event.provider : "iam.*" and not stringContains(aws.cloudtrail.request_parameters, "x=1")"#,
            "event.category",
        )
        .unwrap();
        assert_eq!(m.dataset.as_deref(), Some("data_stream.dataset"));
        let s = serde_json::to_string(&m.detection).unwrap();
        // the event category is the by-action field the integration computes
        assert!(s.contains(r#"{"field":"@ecs_category","op":"eq","value":"iam"}"#), "{s}");
        assert!(!s.contains("event.category"), "{s}");
        assert!(s.contains(r#"{"field":"eventName","op":"in","values":["A","B"]}"#), "{s}");
        assert!(s.contains(r#"{"field":"eventSource","op":"startswith","value":"iam.","case":"insensitive"}"#), "{s}");
        // a substring with Java's separators: on the text copy itself
        assert!(s.contains(r#"{"not":{"field":"@request_parameters_text","op":"contains","value":"x=1"}}"#), "{s}");
        // an override field with no canonical form stays opaque kuery
        let m = eql(r#"iam where event.action == "A""#, "custom.category").unwrap();
        let s = serde_json::to_string(&m.detection).unwrap();
        assert!(s.contains(r#"{"opaque":{"lang":"kuery","text":"custom.category:\"iam\"""#), "{s}");
        assert!(matches!(eql("sequence by a [any where true]", "event.category"), Err(Refusal::Unsupported(_, 0))));
        assert!(matches!(eql("any where a == 1 | head 1", "event.category"), Err(Refusal::Unsupported(_, 17))));
    }

    #[test]
    fn eql_string_functions_of_two_fields_are_ref_comparisons() {
        let m = eql(
            r#"any where stringContains(aws.cloudtrail.user_identity.arn, aws.cloudtrail.recipient_account_id)
               and not startsWith~(user_agent.original, user.name)
               and not (endsWith(aws.cloudtrail.user_identity.arn, user.name) or event.action == "X")"#,
            "event.category",
        )
        .unwrap();
        let s = serde_json::to_string(&m.detection).unwrap();
        assert!(s.contains(r#"{"field":"userIdentity.arn","op":"contains","ref":"recipientAccountId"}"#), "{s}");
        // `not` of a script comparison: null (no match) where a side is missing
        assert!(
            s.contains(r#"{"all":[{"field":"userAgent","op":"exists"},{"field":"@actor_user","op":"exists"},{"not":{"field":"userAgent","op":"startswith","ref":"@actor_user","case":"insensitive"}}]}"#),
            "{s}"
        );
        // inside a negated group: read two-valued, declared
        assert_eq!(m.notes.iter().filter(|n| n.contains("inside a negated group")).count(), 1, "{:?}", m.notes);
        assert_eq!(m.notes.iter().filter(|n| n.contains("the empty text")).count(), 3, "{:?}", m.notes);
        assert!(m.opaque.is_empty(), "{:?}", m.opaque);
    }

    #[test]
    fn lucene_regexes_read_as_re2_reads_them() {
        // escapes are literals in Lucene: punctuation stays escaped, a letter is itself
        assert_eq!(crate::vendors::elastic::lucene::to_re2(r#".*\"Effect\": *\"Allow\".*"#).as_deref(), Some(r#".*"Effect": *"Allow".*"#));
        assert_eq!(crate::vendors::elastic::lucene::to_re2(r"a\d\{"), Some(r"ad\{".to_string()));
        // `^` and `$` are literal outside classes in Lucene
        assert_eq!(crate::vendors::elastic::lucene::to_re2("a^b$").as_deref(), Some(r"a\^b\$"));
        assert_eq!(crate::vendors::elastic::lucene::to_re2("[^a-z$]+").as_deref(), Some("[^a-z$]+"));
        for refused in ["a@b", "a&b", "~a", "<1-9>", "#", "\"quoted\"", "[[a]]", "[]a]", "[a", "a\\"] {
            assert_eq!(crate::vendors::elastic::lucene::to_re2(refused), None, "{refused}");
        }
        // `.` crosses line breaks, as Lucene's does
        let m = eql("any where aws.cloudtrail.request_parameters regex \".*a.b.*\"", "event.category").unwrap();
        let s = serde_json::to_string(&m.detection).unwrap();
        assert!(s.contains(r#"{"field":"@request_parameters_text","op":"regex","value":"(?s)^(?:.*a.b.*)$"}"#), "{s}");
    }

    #[test]
    fn esql_null_semantics_and_stages() {
        let m = esql("FROM logs-aws.cloudtrail-* METADATA _id | WHERE event.action IN (\"A\") AND NOT user_agent.original LIKE \"x*\" | KEEP _id").unwrap();
        assert_eq!(m.index, vec!["logs-aws.cloudtrail-*"]);
        let s = serde_json::to_string(&m.detection).unwrap();
        assert!(s.contains(r#"{"all":[{"field":"userAgent","op":"exists"},{"not":{"field":"userAgent","op":"startswith","value":"x"}}]}"#), "{s}");
        let Err(Refusal::Unsupported(msg, at)) = esql("FROM x | WHERE a == 1 | STATS c = COUNT(*) BY b") else { panic!() };
        assert!(msg.contains("STATS"), "{msg}");
        assert_eq!(at, 24);
    }
}
