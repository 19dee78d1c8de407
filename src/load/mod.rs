//! Load canonical rules: YAML text -> [`RuleDoc`] (with spans) -> validated [`Rule`].
//!
//! Input: files (only this module and `cli` touch the file system). Output: rules ready to
//! compile, or diagnostics with `file:line:col`, what was expected and what was found.

pub mod check;
pub mod files;

use std::collections::HashMap;
use std::path::Path;

use indexmap::IndexMap;
use serde_json::Value;

use crate::attack::{self, Tactic, Technique};
use crate::condition::{self, Cond, Scope, span_of};
use crate::diag::{Code, Diagnostic, Diagnostics, Span};
use crate::fields;
use crate::model::{Expr, ExprTest, Op, RuleDoc, Severity, Spanned};

/// A validated rule, ready for the targets.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The file it came from, as named.
    pub file: String,
    /// File stem: the rule's slug, default output file stem and snapshot suffix.
    pub slug: String,
    /// The document as written.
    pub doc: RuleDoc,
    /// Named lists, plain.
    pub lists: IndexMap<String, Vec<Value>>,
    /// External lists (read from a URL when the rule runs), validated.
    pub external_lists: IndexMap<String, ExternalListDef>,
    /// The detection condition, normalised (allow-lists not included).
    pub detection: Cond,
    /// The correlation, when the rule has one.
    pub correlation: Option<Sequence>,
    /// New terms, when the rule alerts only on them.
    pub new_terms: Option<NewTerms>,
    /// Allow-list name -> (entry key -> field), with the shipped entries.
    pub allowlists: IndexMap<String, AllowlistDef>,
    /// ATT&CK: tactics with the techniques listed under each (in rule order).
    pub attack: Vec<(&'static Tactic, Vec<&'static Technique>)>,
    /// Names defined by `alert.derive`, in order.
    pub derived: Vec<String>,
}

/// A validated external list (`external_lists:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalListDef {
    /// The URL the list is read from.
    pub url: String,
    /// The column holding the values.
    pub column: String,
    /// The first record is a header.
    pub header: bool,
    /// Kusto's format name, when given.
    pub format: Option<String>,
}

/// Formats Kusto's `externaldata` reads a one-column list from (Kusto's data formats).
pub const EXTERNAL_FORMATS: &[&str] = &["csv", "tsv", "tsve", "psv", "scsv", "sohsv", "txt", "raw", "json", "multijson"];

/// A validated allow-list.
#[derive(Debug, Clone)]
pub struct AllowlistDef {
    /// Entry key -> field.
    pub keys: IndexMap<String, fields::Field>,
    /// Entries shipped with the rule.
    pub entries: Vec<IndexMap<String, String>>,
}

/// A sequence of events (`correlation: {type: sequence}`), resolved.
#[derive(Debug, Clone)]
pub struct Sequence {
    /// The fields every step's event shares.
    pub by: Vec<fields::Field>,
    /// The longest span from the first event to the last, in seconds.
    pub within_secs: u64,
    /// The span as written (`1h`).
    pub within: String,
    /// (name, condition besides the rule's detection), in order.
    pub steps: Vec<(String, Cond)>,
}

/// New terms (`new_terms`), resolved.
#[derive(Debug, Clone)]
pub struct NewTerms {
    /// The fields whose combination of values must be new.
    pub by: Vec<fields::Field>,
    /// How far back an earlier event makes them known, in seconds.
    pub history_secs: u64,
    /// The history as written (`10d`).
    pub history: String,
}

impl Rule {
    /// The rule without its new terms: what decides a single event.
    pub fn without_new_terms(&self) -> Rule {
        Rule { new_terms: None, ..self.clone() }
    }

    /// The full condition an event must meet: the detection, and no allow-list entry matching.
    pub fn condition(&self) -> Cond {
        let mut all = vec![self.detection.clone()];
        for name in self.allowlists.keys() {
            all.push(Cond::Not(Box::new(Cond::Allowed(name.clone()))));
        }
        condition::normalise(Cond::All(all))
    }

    /// The condition an event taking part in a detection meets: [`Rule::condition`], and for a
    /// correlation also one of its steps' conditions (what coverage counts as detected).
    pub fn events_condition(&self) -> Cond {
        match &self.correlation {
            None => self.condition(),
            Some(seq) => condition::normalise(Cond::All(vec![self.condition(), Cond::Any(seq.steps.iter().map(|(_, c)| c.clone()).collect())])),
        }
    }

    /// The top-level conjuncts of [`Rule::condition`]. With `inline_allowlists`, allow-lists
    /// that ship no entries are left out (targets that inline the entries have nothing to
    /// test); without it they stay (Panther reads them at run time).
    pub fn conjuncts(&self, inline_allowlists: bool) -> Vec<Cond> {
        let parts = match self.condition() {
            Cond::All(k) => k,
            other => vec![other],
        };
        parts
            .into_iter()
            .filter(|c| {
                !inline_allowlists
                    || !matches!(c, Cond::Not(inner) if matches!(inner.as_ref(), Cond::Allowed(name) if self.allowlists.get(name).is_some_and(|a| a.entries.is_empty())))
            })
            .collect()
    }

    /// The same rule with some allow-lists' entries replaced (a test's `allowlists:`).
    pub fn with_entries(&self, entries: &IndexMap<String, Vec<IndexMap<String, String>>>) -> Rule {
        let mut r = self.clone();
        for (name, e) in entries {
            if let Some(al) = r.allowlists.get_mut(name) {
                al.entries = e.clone();
            }
        }
        r
    }

    /// What a test gives for the rule's deployment data, as one map: its allow-list entries,
    /// and each external list's contents as rows of the list's one column.
    pub fn test_entries(&self, t: &crate::model::TestCase) -> crate::eval::Entries {
        let mut out = t.allowlists.clone();
        for (name, values) in &t.lists {
            let column = self.external_lists.get(name).map_or("value", |e| e.column.as_str());
            out.insert(name.clone(), values.iter().map(|v| IndexMap::from([(column.to_string(), v.clone())])).collect());
        }
        out
    }

    /// The risk score: given, or the top of the severity's band.
    pub fn risk_score(&self) -> u32 {
        self.doc.risk_score.as_ref().map(|r| r.value).unwrap_or(match self.doc.severity.value {
            Severity::Info => 0,
            Severity::Low => 21,
            Severity::Medium => 47,
            Severity::High => 73,
            Severity::Critical => 99,
        })
    }
}

/// The risk-score band detection-rules enforces per severity.
pub fn risk_band(sev: Severity) -> (u32, u32) {
    match sev {
        Severity::Info | Severity::Low => (0, 21),
        Severity::Medium => (22, 47),
        Severity::High => (48, 73),
        Severity::Critical => (74, 100),
    }
}

/// Turn a YAML deserialisation error into a located diagnostic in rulecast's words (the
/// importers use it too, so that the YAML library's advice never reaches a user).
pub fn yaml_error(file: &str, e: &serde_saphyr::Error) -> Diagnostic {
    let span = e.location().filter(|l| l.line() > 0).map(|l| Span {
        file: file.to_string(),
        line: l.line() as usize,
        col: l.column() as usize,
    });
    let text = e.without_snippet().to_string();
    let first = text.lines().next().unwrap_or("").to_string();
    // strip the "error: line N column M: " prefix the crate adds
    let msg = match first.find(": ") {
        Some(i) if first.starts_with("error: line ") => {
            let rest = &first[i + 2..];
            match rest.find(": ") {
                Some(j) if rest.starts_with("line ") || rest.contains(" column ") && j < 20 => rest[j + 2..].to_string(),
                _ => rest.to_string(),
            }
        }
        _ => first.trim_start_matches("error: ").to_string(),
    };
    let mut msg = msg.trim().to_string();
    // the crate repeats the place at the end of some messages
    if let Some(i) = msg.rfind(" at line ") {
        if msg[i..].contains(", column ") {
            msg.truncate(i);
        }
    }
    if let Some(kind) = msg.strip_prefix("invalid ") {
        if matches!(kind, "u8" | "u16" | "u32" | "u64" | "i32" | "i64") {
            msg = "expected a whole number".to_string();
        }
    }
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let (name, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let expected = expected.trim_start_matches(", ").trim_start_matches("expected ").to_string();
        let cands: Vec<&str> = expected.trim_start_matches("one of ").split(", ").collect();
        return Diagnostic::error(Code::E102, format!("unknown key `{name}`"))
            .with_expected(expected.clone())
            .with_suggestion(name, cands)
            .with_span(span);
    }
    if let Some(rest) = msg.strip_prefix("unknown variant `") {
        let (name, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let expected = expected.trim_start_matches(", ").trim_start_matches("expected ").to_string();
        let cands: Vec<&str> = expected.trim_start_matches("one of ").split(", ").collect();
        let is_op = cands.contains(&"startswith");
        let (code, what) = if is_op { (Code::E203, "operator") } else { (Code::E103, "value") };
        return Diagnostic::error(code, format!("unknown {what} `{name}`"))
            .with_expected(expected.clone())
            .with_suggestion(name, cands)
            .with_span(span);
    }
    // the YAML library's own words, said in rulecast's
    if let Some(rest) = msg.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(", set ").next().unwrap_or(rest);
        return Diagnostic::error(Code::E103, format!("duplicate key `{key}`"))
            .with_expected("each key once in a mapping")
            .with_span(span);
    }
    if let Some(rest) = msg.strip_prefix("cannot deserialize null into ") {
        let kind = rest.split(';').next().unwrap_or(rest).trim();
        let kind = match kind {
            "string" => "a text",
            k if k.starts_with('u') || k.starts_with('i') => "a whole number",
            "bool" => "true or false",
            "sequence" | "seq" => "a list",
            "map" => "a mapping",
            _ => "a value",
        };
        return Diagnostic::error(Code::E103, "a value is missing")
            .with_expected(kind)
            .with_found("null (nothing after the key)")
            .with_span(span);
    }
    if let Some(rest) = msg.strip_prefix("budget breached: ") {
        let what = rest.split(' ').next().unwrap_or(rest).to_lowercase();
        let limit: String = rest.chars().filter(char::is_ascii_digit).collect();
        let limit = limit.parse::<u64>().map(|n| n.saturating_sub(1).to_string()).unwrap_or(limit);
        return Diagnostic::error(Code::E101, format!("the YAML document is too large: more than {limit} {what}"))
            .with_expected("a rule file within rulecast's reading limits")
            .with_span(span);
    }
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        return Diagnostic::error(Code::E104, format!("missing key `{name}`")).with_span(span);
    }
    let code = if msg.starts_with("invalid")
        || msg.starts_with("expected")
        || msg.starts_with("invalid")
        || msg.contains("invalid type")
        || msg.contains("duplicate mapping key")
    {
        Code::E103
    } else {
        Code::E101
    };
    let d = Diagnostic::error(code, if code == Code::E101 { format!("yaml syntax error: {msg}") } else { msg });
    d.with_span(span)
}

/// Parse one rule file's text. `file` is used in spans; `slug` is the file stem.
pub fn rule_from_str(file: &str, slug: &str, text: &str) -> Result<Rule, Diagnostics> {
    let doc: RuleDoc = serde_saphyr::from_str(text).map_err(|e| Diagnostics::from(yaml_error(file, &e)))?;
    validate(file, slug, doc)
}

fn sp<T>(file: &str, s: &Spanned<T>) -> Option<Span> {
    span_of(file, s)
}

pub use check::is_safe_stem;

/// Is this a rule id the loader accepts (letters, digits, `.`, `_`, `-`)?
pub fn is_rule_id(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn validate(file: &str, slug: &str, doc: RuleDoc) -> Result<Rule, Diagnostics> {
    let mut d = Diagnostics::new();
    let id = &doc.id;
    if !is_rule_id(&id.value) {
        d.push(
            Diagnostic::error(Code::E103, format!("invalid rule id `{}`", id.value))
                .with_expected("letters, digits, `.`, `_`, `-` (a GUID or a dotted name)")
                .with_span(sp(file, id)),
        );
    }
    if !slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        || !slug.chars().next().is_some_and(|c| c.is_ascii_lowercase())
    {
        d.push(
            Diagnostic::error(Code::E106, format!("rule file name `{slug}` is not a slug"))
                .with_expected("snake_case: lowercase letters, digits and `_`, starting with a letter")
                .with_span(Some(Span { file: file.into(), line: 1, col: 1 })),
        );
    }
    // per-target ids, file names and settings
    for t in <crate::vendors::Target as strum::IntoEnumIterator>::iter() {
        doc.targets.of(t).validate(file, &mut d);
    }
    if let Some(r) = &doc.risk_score {
        let (lo, hi) = risk_band(doc.severity.value);
        if r.value < lo || r.value > hi {
            d.push(
                Diagnostic::error(Code::E103, format!("risk_score {} is outside the band for this severity", r.value))
                    .with_expected(format!("{lo}..={hi} (detection-rules' severity bands)"))
                    .with_span(sp(file, r)),
            );
        }
    }
    if doc.logsource.value != "aws.cloudtrail" {
        d.push(
            Diagnostic::error(Code::E103, format!("unknown log source `{}`", doc.logsource.value))
                .with_expected("aws.cloudtrail")
                .with_span(sp(file, &doc.logsource)),
        );
    }
    for date in [&doc.created, &doc.updated].into_iter().flatten() {
        d.extend(check::date(file, date));
    }
    if let (Some(c), Some(u)) = (&doc.created, &doc.updated) {
        if u.value < c.value {
            d.push(Diagnostic::error(Code::E109, "`updated` is before `created`").with_span(sp(file, u)));
        }
    }
    if let Some(v) = &doc.version {
        d.extend(check::version(file, v));
    }

    // ATT&CK
    let mut attack_out: Vec<(&'static Tactic, Vec<&'static Technique>)> = vec![];
    for t in &doc.attack.tactics {
        match attack::tactic(&t.value) {
            Some(tac) => attack_out.push((tac, vec![])),
            None => d.push(
                Diagnostic::error(Code::E107, format!("unknown ATT&CK tactic `{}`", t.value))
                    .with_expected("a tactic id of ATT&CK v18.1, like TA0005")
                    .with_suggestion(&t.value, attack::tactic_ids())
                    .with_span(sp(file, t)),
            ),
        }
    }
    for t in &doc.attack.techniques {
        match attack::technique(&t.value) {
            None => d.push(
                Diagnostic::error(Code::E107, format!("unknown ATT&CK technique `{}`", t.value))
                    .with_expected("a technique or sub-technique id of ATT&CK v18.1, like T1562.007")
                    .with_suggestion(&t.value, attack::technique_ids())
                    .with_span(sp(file, t)),
            ),
            Some(tech) => {
                let slot = attack_out.iter_mut().find(|(tac, _)| tech.tactics.contains(&tac.shortname));
                match slot {
                    Some((_, list)) => list.push(tech),
                    None => d.push(
                        Diagnostic::error(Code::E107, format!("technique `{}` belongs to no tactic listed in `attack.tactics`", t.value))
                            .with_expected(format!("one of its tactics: {}", tech.tactics.join(", ")))
                            .with_span(sp(file, t)),
                    ),
                }
            }
        }
    }

    // lists
    let mut lists = IndexMap::new();
    for (name, vals) in &doc.lists {
        if !is_identifier(name) {
            d.push(
                Diagnostic::error(Code::E103, format!("list name `{name}` is not an identifier"))
                    .with_expected("letters, digits and `_`, starting with a letter")
                    .with_span(sp(file, vals)),
            );
        }
        for v in &vals.value {
            if !matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
                d.push(
                    Diagnostic::error(Code::E103, format!("list `{name}` holds a non-scalar value `{v}`"))
                        .with_expected("strings, numbers or booleans")
                        .with_span(sp(file, vals)),
                );
            }
        }
        lists.insert(name.clone(), vals.value.clone());
    }

    let mut external_lists = IndexMap::new();
    for (name, el) in &doc.external_lists {
        let at = sp(file, el);
        if !is_identifier(name) {
            d.push(
                Diagnostic::error(Code::E103, format!("external list name `{name}` is not an identifier"))
                    .with_expected("letters, digits and `_`, starting with a letter")
                    .with_span(at.clone()),
            );
        }
        if lists.contains_key(name) || doc.allowlists.contains_key(name) {
            d.push(
                Diagnostic::error(Code::E105, format!("`{name}` names an external list and a list or allow-list"))
                    .with_expected("one name per list")
                    .with_span(at.clone()),
            );
        }
        let e = &el.value;
        let url = e.url.value.trim();
        let scheme_ok = url.strip_prefix("https://").is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
        if !scheme_ok || url != e.url.value || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
            d.push(
                Diagnostic::error(Code::E103, format!("external list `{name}`: `{}` is not a URL rulecast writes", e.url.value))
                    .with_expected("an https:// URL without spaces or control characters")
                    .with_span(sp(file, &e.url)),
            );
        }
        if !is_identifier(&e.column.value) {
            d.push(
                Diagnostic::error(Code::E103, format!("external list `{name}`: column `{}` is not an identifier", e.column.value))
                    .with_expected("letters, digits and `_`, starting with a letter")
                    .with_span(sp(file, &e.column)),
            );
        }
        if let Some(f) = &e.format
            && !EXTERNAL_FORMATS.contains(&f.value.as_str())
        {
            d.push(
                Diagnostic::error(Code::E103, format!("external list `{name}`: unknown format `{}`", f.value))
                    .with_expected(format!("one of {}", EXTERNAL_FORMATS.join(", ")))
                    .with_suggestion(&f.value, EXTERNAL_FORMATS.iter().copied())
                    .with_span(sp(file, f)),
            );
        }
        external_lists.insert(
            name.clone(),
            ExternalListDef { url: e.url.value.clone(), column: e.column.value.clone(), header: e.header, format: e.format.as_ref().map(|f| f.value.clone()) },
        );
    }
    let external_names: Vec<String> = external_lists.keys().cloned().collect();
    let scope = Scope { file, lists: &lists, external: &external_names, depth: 0 };
    let detection = match &doc.detection {
        Some(det) => condition::parse(det, &scope, &mut d).map(condition::normalise),
        // a correlation's steps may hold every condition: the rule's own is then "every event"
        None if doc.correlation.is_some() => Some(Cond::All(vec![])),
        None => {
            d.push(
                Diagnostic::error(Code::E104, "the rule has no `detection`")
                    .with_expected("a condition tree under `detection:` (or a `correlation:` whose steps hold the conditions)")
                    .with_span(Some(Span { file: file.to_string(), line: 1, col: 1 })),
            );
            None
        }
    };
    let correlation = doc.correlation.as_ref().and_then(|c| sequence(file, c, &scope, &mut d));
    let new_terms = doc.new_terms.as_ref().and_then(|n| new_terms(file, n, &doc, &scope, &mut d));

    // allow-lists
    let mut allowlists = IndexMap::new();
    for (name, al) in &doc.allowlists {
        if !is_identifier(name) {
            d.push(Diagnostic::error(Code::E103, format!("allow-list name `{name}` is not an identifier")).with_span(sp(file, al)));
        }
        let mut keys = IndexMap::new();
        for (k, f) in &al.value.keys {
            match fields::resolve(&f.value) {
                Ok(field) => {
                    keys.insert(k.clone(), field);
                }
                Err(_) => d.push(
                    Diagnostic::error(Code::E301, format!("unknown field `{}` in allow-list `{name}`", f.value)).with_span(sp(file, f)),
                ),
            }
        }
        for e in &al.value.entries {
            for k in e.keys() {
                if !al.value.keys.contains_key(k) {
                    d.push(Diagnostic::error(Code::E102, format!("allow-list `{name}` has no key `{k}`")).with_span(sp(file, al)));
                }
            }
        }
        allowlists.insert(name.clone(), AllowlistDef { keys, entries: al.value.entries.clone() });
    }

    // alert: derived names and references
    let mut known: Vec<String> = vec![];
    let check_ref = |name: &str, known: &[String], span: Option<Span>, d: &mut Diagnostics| {
        if known.iter().any(|k| k == name) || fields::resolve(name).is_ok() {
            return;
        }
        d.push(
            Diagnostic::error(Code::E303, format!("`{name}` is neither a field nor a derived name"))
                .with_suggestion(name, known.iter().map(String::as_str))
                .with_span(span),
        );
    };
    check_steps(file, &doc.alert.derive, &mut known, &mut d, &mut |r, known, span, d| check_ref(r, known, span, d));
    if let Some(agg) = &doc.alert.aggregate {
        for b in &agg.by {
            check_ref(&b.value, &known, sp(file, b), &mut d);
        }
        for m in agg.measures.values() {
            match m {
                crate::model::Measure::Min(f)
                | crate::model::Measure::Max(f)
                | crate::model::Measure::Distinct(f)
                | crate::model::Measure::Latest(f)
                | crate::model::Measure::Earliest(f)
                | crate::model::Measure::Values(f) => {
                    check_ref(f, &known, None, &mut d);
                }
                crate::model::Measure::Count => {}
            }
        }
        let rows = agg.measures.values().filter(|m| m.is_row()).count();
        if rows > 1 {
            d.push(
                Diagnostic::error(Code::E104, format!("an aggregate has {rows} `latest`/`earliest` measures"))
                    .with_expected("at most one: a group's row carries one event's fields")
                    .with_span(agg.by.first().and_then(|b| sp(file, b))),
            );
        }
        // with a `latest`/`earliest` measure the row also carries that event's fields and the
        // names derived before the aggregation
        let row_names: Vec<String> = if rows > 0 { known.clone() } else { vec![] };
        // steps on the aggregated rows see the group-by fields, the measures and each other
        let mut after: Vec<String> = agg.by.iter().map(|b| b.value.clone()).chain(agg.measures.keys().cloned()).collect();
        after.extend(known.iter().filter(|k| agg.by.iter().any(|b| &b.value == *k)).cloned());
        let before = after.len();
        check_steps(file, &agg.derive, &mut after, &mut d, &mut |r, after, span, d| {
            let on_row = rows > 0 && (row_names.iter().any(|k| k == r) || fields::resolve(r).is_ok());
            if !after.iter().any(|a| a == r) && !on_row {
                d.push(
                    Diagnostic::error(Code::E303, format!("`{r}` is not a group-by field, a measure or an earlier name of `aggregate.derive`"))
                        .with_expected(format!("one of: {}", after.join(", ")))
                        .with_suggestion(r, after.iter().map(String::as_str))
                        .with_span(span),
                );
            }
        });
        for n in after.drain(before..) {
            if !known.contains(&n) {
                known.push(n);
            }
        }
        for (name, min) in &agg.min_distinct {
            let span = sp(file, min);
            if !matches!(agg.measures.get(name), Some(crate::model::Measure::Distinct(_))) {
                let distinct: Vec<&str> = agg
                    .measures
                    .iter()
                    .filter(|(_, m)| matches!(m, crate::model::Measure::Distinct(_)))
                    .map(|(n, _)| n.as_str())
                    .collect();
                d.push(
                    Diagnostic::error(Code::E303, format!("`min_distinct` names `{name}`, which is not a `distinct` measure"))
                        .with_expected("the name of a `{distinct: field}` measure")
                        .with_suggestion(name, distinct)
                        .with_span(span.clone()),
                );
            }
            if min.value == 0 {
                d.push(Diagnostic::error(Code::E103, "a distinct-count minimum must be at least 1").with_span(span));
            }
        }
        if let Some(bin) = &agg.bin {
            if let Some(e) = check::duration(file, "aggregate `bin`", bin, "mhd") {
                d.push(e);
            } else if check::duration_secs(&bin.value) == Some(0) {
                d.push(Diagnostic::error(Code::E103, "aggregate `bin` is zero").with_expected("a positive duration").with_span(sp(file, bin)));
            }
        }
        if let (Some((_, first)), None) = (agg.min_distinct.first(), agg.threshold) {
            d.push(
                Diagnostic::error(Code::E104, "`min_distinct` needs a `threshold`")
                    .with_hint("`threshold: 0` alerts on every group that reaches the distinct minimum")
                    .with_span(sp(file, first)),
            );
        }
    }
    for e in &doc.alert.entities {
        for f in e.fields.values() {
            check_ref(&f.value, &known, sp(file, f), &mut d);
        }
    }
    for v in doc.alert.details.values().chain(doc.alert.dedup.iter()).chain(doc.alert.context.iter()) {
        check_ref(&v.value, &known, sp(file, v), &mut d);
    }
    {
        let mut with_measures = known.clone();
        if let Some(agg) = &doc.alert.aggregate {
            with_measures.extend(agg.measures.keys().cloned());
        }
        for c in &doc.alert.columns {
            check_ref(&c.value, &with_measures, sp(file, c), &mut d);
        }
        if let Some(dist) = doc.alert.distinct.as_ref().filter(|x| x.value && doc.alert.columns.is_empty()) {
            d.push(
                Diagnostic::error(Code::E104, "`alert.distinct` needs `alert.columns`")
                    .with_expected("the columns whose distinct combinations make the result rows")
                    .with_span(sp(file, dist)),
            );
        }
    }
    for t in [&doc.alert.title, &doc.alert.description].into_iter().flatten() {
        for name in placeholders(&t.value) {
            check_ref(&name, &known, sp(file, t), &mut d);
        }
    }

    // tests
    for t in &doc.tests {
        if doc.new_terms.is_some() {
            // one event, or the events before it (oldest first) and then the one decided
            let events = t.value.event.as_array().cloned().unwrap_or_else(|| vec![t.value.event.clone()]);
            let times: Vec<Option<i64>> = events.iter().map(crate::eval::event_ticks).collect();
            if events.is_empty() || !events.iter().all(Value::is_object) {
                d.push(
                    Diagnostic::error(Code::E108, format!("test `{}`: a rule with `new_terms` is tested on an event, or a list of events", t.value.name))
                        .with_expected("`event:` a mapping, or `events:` the earlier events oldest first and the event decided last")
                        .with_span(sp(file, t)),
                );
            } else if !(times.iter().all(Option::is_some) && times.windows(2).all(|w| w[0] < w[1])) {
                d.push(
                    Diagnostic::error(Code::E108, format!("test `{}`: the events of a new-terms test need `eventTime`s, each later than the one before", t.value.name))
                        .with_expected("strictly increasing `eventTime`s (an equal time leaves open which event was first)")
                        .with_span(sp(file, t)),
                );
            }
        } else if doc.correlation.is_some() {
            if !t.value.event.as_array().is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_object)) {
                d.push(
                    Diagnostic::error(Code::E108, format!("test `{}`: a rule with `correlation` is tested on several events", t.value.name))
                        .with_expected("`events:` a list of event mappings, in the order they happened")
                        .with_span(sp(file, t)),
                );
            }
        } else if !t.value.event.is_object() {
            d.push(Diagnostic::error(Code::E108, format!("test `{}`: `event` must be a mapping", t.value.name)).with_span(sp(file, t)));
        }
        for (name, v) in &t.value.enrichment {
            let is_enrichment = fields::virtual_field(name).is_some_and(|f| f.source == fields::Source::Enrichment);
            if !is_enrichment {
                let names: Vec<&str> = fields::VIRTUAL.iter().filter(|f| f.source == fields::Source::Enrichment).map(|f| f.name).collect();
                d.push(
                    Diagnostic::error(Code::E108, format!("test `{}` gives an enrichment value for `{name}`, which is not an enrichment field", t.value.name))
                        .with_expected(format!("one of {}", names.join(", ")))
                        .with_suggestion(name, names.clone())
                        .with_span(sp(file, t)),
                );
            } else if matches!(v, Value::Object(_)) {
                d.push(
                    Diagnostic::error(Code::E108, format!("test `{}`: the enrichment value of `{name}` must be a scalar, a list of scalars or null", t.value.name))
                        .with_span(sp(file, t)),
                );
            }
        }
        for name in t.value.lists.keys() {
            if !external_lists.contains_key(name) {
                d.push(
                    Diagnostic::error(Code::E202, format!("test `{}` fills unknown external list `{name}`", t.value.name))
                        .with_expected("a name defined under `external_lists:`")
                        .with_suggestion(name, external_lists.keys().map(String::as_str))
                        .with_span(sp(file, t)),
                );
            }
        }
        for name in t.value.allowlists.keys() {
            if !allowlists.contains_key(name) {
                d.push(
                    Diagnostic::error(Code::E202, format!("test `{}` fills unknown allow-list `{name}`", t.value.name))
                        .with_suggestion(name, allowlists.keys().map(String::as_str))
                        .with_span(sp(file, t)),
                );
            }
        }
    }

    match detection {
        Some(detection) if !d.has_errors() => Ok(Rule {
            file: file.to_string(),
            slug: slug.to_string(),
            doc,
            lists,
            external_lists,
            detection,
            correlation,
            new_terms,
            allowlists,
            attack: attack_out,
            derived: known,
        }),
        _ => Err(d),
    }
}

/// Resolve `new_terms`: one or more CloudTrail fields and a positive history; not with a
/// correlation or an aggregation (each alert is one event). Errors go to `d`.
fn new_terms(file: &str, n: &Spanned<crate::model::NewTerms>, doc: &RuleDoc, scope: &Scope, d: &mut Diagnostics) -> Option<NewTerms> {
    let span = sp(file, n);
    let mut ok = true;
    let mut clash = |what: &str| {
        d.push(
            Diagnostic::error(Code::E104, format!("`new_terms` with {what}"))
                .with_expected("new terms alert on single events: no correlation or aggregation")
                .with_span(span.clone()),
        );
    };
    if doc.correlation.is_some() {
        clash("`correlation`");
        ok = false;
    }
    if doc.alert.aggregate.is_some() {
        clash("`alert.aggregate`");
        ok = false;
    }
    let n = &n.value;
    if n.by.is_empty() {
        d.push(Diagnostic::error(Code::E104, "`new_terms` has no `by` field").with_expected("one or more CloudTrail fields").with_span(span.clone()));
        ok = false;
    }
    let mut by = vec![];
    for b in &n.by {
        match condition::resolve_field(&b.value, scope, sp(file, b), d) {
            // a CloudTrail field, or a virtual field computed from the event (`@actor_user`)
            Some(f) if f.virtual_field.is_none_or(|v| v.source == fields::Source::Computed) => {
                if by.iter().any(|x: &fields::Field| x.path == f.path) {
                    d.push(Diagnostic::error(Code::E104, format!("`new_terms` names `{}` twice", b.value)).with_span(sp(file, b)));
                    ok = false;
                }
                by.push(f);
            }
            Some(_) => {
                d.push(
                    Diagnostic::error(Code::E301, format!("new_terms `by` field `{}` is looked up by the platform, not computed from the event", b.value))
                        .with_expected("a CloudTrail field or a computed virtual field")
                        .with_span(sp(file, b)),
                );
                ok = false;
            }
            None => ok = false,
        }
    }
    if let Some(e) = check::duration(file, "new_terms `history`", &n.history, "mhd") {
        d.push(e);
        ok = false;
    }
    let secs = check::duration_secs(&n.history.value).unwrap_or(0);
    if secs == 0 && ok {
        d.push(Diagnostic::error(Code::E103, "new_terms `history` is zero").with_expected("a positive duration").with_span(sp(file, &n.history)));
        ok = false;
    }
    ok.then(|| NewTerms { by, history_secs: secs, history: n.history.value.clone() })
}

/// Resolve a `correlation`: at least two steps with distinct identifier names, each condition
/// parsed like `detection`, `by` fields resolved, `within` a duration. Errors go to `d`.
fn sequence(file: &str, c: &Spanned<crate::model::Correlation>, scope: &Scope, d: &mut Diagnostics) -> Option<Sequence> {
    let c_span = sp(file, c);
    let c = &c.value;
    let mut ok = true;
    if c.steps.len() < 2 {
        d.push(
            Diagnostic::error(Code::E104, format!("a correlation has {} step(s)", c.steps.len()))
                .with_expected("at least two steps")
                .with_span(c_span.clone()),
        );
        ok = false;
    }
    let mut by = vec![];
    for b in &c.by {
        match condition::resolve_field(&b.value, scope, sp(file, b), d) {
            Some(f) if f.virtual_field.is_none() => by.push(f),
            Some(_) => {
                d.push(Diagnostic::error(Code::E301, format!("correlation `by` field `{}` is a virtual field", b.value)).with_expected("a CloudTrail field").with_span(sp(file, b)));
                ok = false;
            }
            None => ok = false,
        }
    }
    if let Some(e) = check::duration(file, "correlation `within`", &c.within, "smhd") {
        d.push(e);
        ok = false;
    }
    let within = &c.within.value;
    let secs = check::duration_secs(within).unwrap_or(0);
    if secs == 0 && ok {
        d.push(Diagnostic::error(Code::E103, "correlation `within` is zero").with_expected("a positive duration").with_span(sp(file, &c.within)));
        ok = false;
    }
    let mut steps: Vec<(String, Cond)> = vec![];
    for s in &c.steps {
        let name = &s.value.name;
        if !is_identifier(&name.value) {
            d.push(Diagnostic::error(Code::E103, format!("step name `{}` is not an identifier", name.value)).with_span(sp(file, name)));
            ok = false;
        } else if steps.iter().any(|(n, _)| *n == name.value) {
            d.push(Diagnostic::error(Code::E104, format!("two steps are named `{}`", name.value)).with_span(sp(file, name)));
            ok = false;
        }
        match condition::parse(&s.value.detection, scope, d).map(condition::normalise) {
            Some(cond) => steps.push((name.value.clone(), cond)),
            None => ok = false,
        }
    }
    ok.then(|| Sequence { by, within_secs: secs, within: within.clone(), steps })
}

/// Check derive steps in order: each name is an identifier, and each expression's references
/// pass `check` against the names known so far; a step's names are known to the steps after it
/// (they are appended to `names`).
fn check_steps(
    file: &str,
    steps: &[IndexMap<String, Spanned<crate::model::Expr>>],
    names: &mut Vec<String>,
    d: &mut Diagnostics,
    check: &mut dyn FnMut(&str, &[String], Option<Span>, &mut Diagnostics),
) {
    for step in steps {
        let mut new = vec![];
        for (name, e) in step {
            if !is_identifier(name) {
                d.push(Diagnostic::error(Code::E103, format!("derived name `{name}` is not an identifier")).with_span(sp(file, e)));
            }
            let mut refs = vec![];
            expr_refs(&e.value, &mut refs);
            for r in refs {
                check(&r, names, sp(file, e), d);
            }
            new.push(name.clone());
        }
        for n in new {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
}

/// Is `s` a plain identifier (`[A-Za-z][A-Za-z0-9_]*`)?
pub use check::is_identifier;

/// `{name}` placeholders in an alert text.
pub fn placeholders(s: &str) -> Vec<String> {
    let mut out = vec![];
    let mut rest = s;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        match after.find('}') {
            Some(j) => {
                out.push(after[..j].to_string());
                rest = &after[j + 1..];
            }
            None => break,
        }
    }
    out
}

/// Names an expression reads.
pub fn expr_refs(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::Ref(r) => out.push(r.clone()),
        Expr::Const(_) => {}
        Expr::Coalesce(items) => items.iter().for_each(|i| expr_refs(i, out)),
        Expr::Split { of, .. } | Expr::Before { of, .. } | Expr::After { of, .. } | Expr::AfterFirst { of, .. } => expr_refs(of, out),
        Expr::Case { when, otherwise } => {
            for arm in when {
                match &arm.test {
                    ExprTest::Eq { of, .. } => out.push(of.clone()),
                    ExprTest::Empty(of) => out.push(of.clone()),
                }
                expr_refs(&arm.then, out);
            }
            expr_refs(otherwise, out);
        }
    }
}

/// Load every `*.yaml` rule below `dir` (sorted by path), checking ids are unique.
pub fn rules_from_dir(dir: &Path) -> Result<Vec<Rule>, Diagnostics> {
    rules_from_path(dir, files::ReadPolicy::default())
}

/// Load every rule under `path` (a folder, walked recursively for `*.yaml`/`*.yml`, or one
/// rule file), reading files under `policy`; every error of every file is collected.
pub fn rules_from_path(path: &Path, policy: files::ReadPolicy) -> Result<Vec<Rule>, Diagnostics> {
    let (files, refused) = files::walk(path, &["yaml", "yml"], policy);
    let mut rules = vec![];
    let mut diags = Diagnostics::new();
    diags.extend(refused);
    // files are read and parsed in parallel; results are taken in path order
    for r in crate::par::map(&files, |f| rule_from_file_with(f, policy)) {
        match r {
            Ok(r) => rules.push(r),
            Err(e) => diags.extend(e),
        }
    }
    let mut seen: HashMap<String, String> = HashMap::new();
    for r in &rules {
        if let Some(first) = seen.get(&r.doc.id.value) {
            diags.push(duplicate_id(r, first));
        } else {
            seen.insert(r.doc.id.value.clone(), r.file.clone());
        }
    }
    if diags.has_errors() { Err(diags) } else { Ok(rules) }
}

/// The error for a rule whose id the rule in `first` (a file) already has.
pub fn duplicate_id(r: &Rule, first: &str) -> Diagnostic {
    duplicate_id_at(&r.doc.id.value, id_span(r), first)
}

/// Where a rule's `id` is written (what [`duplicate_id`] points at).
pub fn id_span(r: &Rule) -> Option<Span> {
    sp(&r.file, &r.doc.id)
}

/// [`duplicate_id`] from the id and where it is written (a build cache keeps these, not the rule).
pub fn duplicate_id_at(id: &str, span: Option<Span>, first: &str) -> Diagnostic {
    Diagnostic::error(Code::E105, format!("duplicate rule id `{id}`"))
        .with_found(format!("also in {first}"))
        .with_expected("every rule id to be unique")
        .with_span(span)
}

/// Load one rule file.
pub fn rule_from_file(path: &Path) -> Result<Rule, Diagnostics> {
    rule_from_file_with(path, files::ReadPolicy::default())
}

/// Load one rule file, read under `policy`.
pub fn rule_from_file_with(path: &Path, policy: files::ReadPolicy) -> Result<Rule, Diagnostics> {
    let text = files::read_text(path, policy)?;
    rule_from_text(path, &text)
}

/// Load one rule from its file's text, already read (with [`files::read_text`]): named and
/// slugged after `path` as [`rule_from_file_with`] does.
pub fn rule_from_text(path: &Path, text: &str) -> Result<Rule, Diagnostics> {
    let file = path.display().to_string();
    let slug = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    rule_from_str(&file, &slug, text)
}

/// Which ops exist (for messages).
pub fn op_names() -> Vec<&'static str> {
    use strum::IntoEnumIterator;
    Op::iter().map(<&str>::from).collect()
}
