//! Panther rules (rule YAML + its Python module) → canonical rules.
//!
//! Input: a Panther rule YAML's text and, when at hand, the text of the Python module its
//! `Filename:` names ([`parse`]; [`parse_file`] finds the module next to the YAML). Output: one
//! [`Imported`]: metadata from the YAML (RuleID, DisplayName, Description, Severity, Reports'
//! `MITRE ATT&CK`, Reference, Runbook, Tags, Enabled, DedupPeriodMinutes, Threshold,
//! SummaryAttributes → `targets.panther.*`), `Tests` → `tests` (allow-list mocks → the test's
//! `allowlists`), and the detection read from `rule(event)` by [`logic`] (structured where it
//! can be, opaque Python otherwise, with the module code it needs in `targets.panther.prelude`).
//!
//! A YAML or Python syntax error is `E501`; a file rulecast cannot import (no Python, no
//! `rule`, not a CloudTrail rule) is refused with `E502`. Both are located `file:line:col`.

pub mod helpers;
pub mod logic;

use std::path::Path;

use rustpython_parser::Parse;
use rustpython_parser::ast::{self, Fold};
use serde_json::{Map, Value};

use crate::import::{Doc, Imported, Node, Part, add_technique, slug_of, span_at};
use crate::model::Expr;
use crate::model::doc::{Allowlist, TestCase, to_value};
use indexmap::IndexMap;
use crate::vendors::panther::target::{MITRE, is_mitre_pair};
use crate::diag::{Code, Diagnostic, Span};

/// Import a Panther rule YAML file, reading the Python module its `Filename:` names from the
/// same folder (a missing module is reported by [`parse`]).
pub fn parse_file(path: &Path) -> Vec<Imported> {
    parse_file_with(path, crate::load::files::ReadPolicy::default())
}

/// [`parse_file`], reading both files under `policy` (a Python module that is a link, a device
/// or too large is refused without being read).
pub fn parse_file_with(path: &Path, policy: crate::load::files::ReadPolicy) -> Vec<Imported> {
    let file = path.display().to_string();
    let yaml = match crate::load::files::read_text(path, policy) {
        Ok(t) => t,
        Err(d) => return vec![Imported::refused(&slug_of(&file), d)],
    };
    let py_path = python_path(path, &yaml);
    if let Some(p) = py_path.as_ref().filter(|p| std::fs::symlink_metadata(p).is_ok()) {
        if let Err(d) = crate::load::files::check(p, policy) {
            return vec![Imported::refused(&slug_of(&file), d)];
        }
    }
    let py = match py_path {
        Some(p) if p.is_file() => match std::fs::read(&p).map(String::from_utf8) {
            Ok(Ok(t)) => Some(t),
            Ok(Err(e)) => {
                // the byte offset of the first invalid byte, as a line and column
                let valid = e.utf8_error().valid_up_to();
                let bytes = e.as_bytes();
                let text = String::from_utf8_lossy(&bytes[..valid]).to_string();
                let py_file = p.display().to_string();
                return vec![Imported::refused(
                    &slug_of(&file),
                    Diagnostic::error(Code::E501, "the rule's Python is not UTF-8 text".to_string())
                        .with_span(span_at(&py_file, &text, text.len())),
                )];
            }
            Err(e) => {
                return vec![Imported::refused(
                    &slug_of(&file),
                    Diagnostic::error(Code::E502, format!("cannot read the rule's Python `{}`: {e}", p.display()))
                        .with_span(Some(Span { file: p.display().to_string(), line: 1, col: 1 })),
                )];
            }
        },
        _ => None,
    };
    parse(&file, &yaml, py.as_deref())
}

/// The Python module a rule YAML names (`Filename:`), next to it.
pub fn python_path(yaml_path: &Path, yaml_text: &str) -> Option<std::path::PathBuf> {
    let v: Value = serde_saphyr::from_str(yaml_text).ok()?;
    let name = v.get("Filename")?.as_str()?;
    if name.contains(['/', '\\']) || name.contains("..") {
        return None;
    }
    Some(yaml_path.with_file_name(name))
}

/// The offset of the first line starting with `key:` (for locating diagnostics).
fn key_offset(text: &str, key: &str) -> usize {
    let mut off = 0;
    for line in text.split_inclusive('\n') {
        if line.starts_with(&format!("{key}:")) {
            return off;
        }
        off += line.len();
    }
    0
}

fn str_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(|x| str_of(Some(x))).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => vec![],
    }
}

/// The `MITRE ATT&CK` pairs the Panther target derives from the canonical `attack` (each
/// technique under the first listed tactic it belongs to, as the loader groups them).
fn derived_pairs(tactics: &[String], techniques: &[String]) -> Vec<String> {
    let tacs: Vec<_> = tactics.iter().filter_map(|t| crate::attack::tactic(t)).collect();
    let techs: Vec<_> = techniques.iter().filter_map(|t| crate::attack::technique(t)).collect();
    let mut out = vec![];
    for (i, tac) in tacs.iter().enumerate() {
        for tech in &techs {
            if tacs.iter().position(|ta| tech.tactics.contains(&ta.shortname)) == Some(i) {
                out.push(format!("{}:{}", tac.id, tech.id));
            }
        }
    }
    out
}

/// Keys the importer carries; others are named as parts left out.
const KNOWN_KEYS: &[&str] = &[
    "AnalysisType", "Filename", "RuleID", "DisplayName", "Enabled", "LogTypes", "Severity", "Reports", "Description",
    "Reference", "Runbook", "Tags", "DedupPeriodMinutes", "Threshold", "SummaryAttributes", "Tests", "Status",
    "CreateAlert",
];

/// Import one Panther rule. `file` is the YAML's path (it names it in diagnostics, gives the
/// slug and locates the Python); `py_text` is the module's text, if at hand.
pub fn parse(file: &str, yaml_text: &str, py_text: Option<&str>) -> Vec<Imported> {
    let slug = slug_of(file);
    let refuse = |code: Code, msg: String, span: Option<Span>| vec![Imported::refused(&slug, Diagnostic::error(code, msg).with_span(span))];
    let doc: Value = match serde_saphyr::from_str(yaml_text) {
        Ok(v) => v,
        Err(e) => {
            // in rulecast's words, as the canonical loader says it (no library advice)
            let d = crate::load::yaml_error(file, &e);
            let msg = if d.message.starts_with("yaml syntax error") { d.message } else { format!("yaml syntax error: {}", d.message) };
            return refuse(Code::E501, msg, d.span.or_else(|| span_at(file, yaml_text, 0)));
        }
    };
    let at = |key: &str| span_at(file, yaml_text, key_offset(yaml_text, key));
    let Some(m) = doc.as_object() else {
        return refuse(Code::E502, "a Panther rule file is a mapping".into(), span_at(file, yaml_text, 0));
    };
    let kind = str_of(m.get("AnalysisType")).unwrap_or_default();
    // rulecast's own global helper module, written with the rules: not a rule, nothing to
    // import, as long as it is the module rulecast writes (the rules' helper calls are read as
    // calls of rulecast's helpers)
    let ours = crate::vendors::panther::target::python::MODULE_NAME;
    if kind == "global" && str_of(m.get("GlobalID")).as_deref() == Some(ours) {
        if py_text.is_some_and(|t| t != crate::vendors::panther::target::python::module()) {
            return refuse(
                Code::E502,
                format!("`{ours}` is rulecast's helper module, edited here: the rules that import it are read as calling rulecast's own helpers; restore it with `rulecast build`"),
                at("GlobalID"),
            );
        }
        return vec![];
    }
    if kind == "correlation_rule" {
        return refuse(
            Code::E502,
            "a Panther correlation rule (`AnalysisType: correlation_rule`): rulecast writes them from canonical correlations but does not import them yet".into(),
            at("AnalysisType"),
        );
    }
    if kind != "rule" {
        return refuse(Code::E502, format!("only `AnalysisType: rule` is imported, found `{kind}`"), at("AnalysisType"));
    }
    // a signal rule rulecast wrote for a correlation rule: a part of that rule, not a rule of
    // its own (imported alone it would lose its correlation)
    let key_function = crate::vendors::panther::target::correlation::KEY_FUNCTION;
    if m.get("CreateAlert") == Some(&Value::Bool(false)) && py_text.is_some_and(|t| t.contains(&format!("\ndef {key_function}(event):"))) {
        return refuse(
            Code::E502,
            format!("a signal rule rulecast wrote for a Panther correlation rule (it defines `{key_function}`): a part of that correlation, which rulecast does not import yet"),
            at("CreateAlert"),
        );
    }
    // a new-terms rule rulecast wrote: its tests hold each event's history only as the cache's
    // mocked answer, which a rule read back would lose
    if py_text.is_some_and(|t| t.contains("\ndef _new_terms_key(event):") && t.contains("\nNEW_TERMS_CACHE_PREFIX = ")) {
        return refuse(
            Code::E502,
            "a new-terms rule rulecast wrote over Panther's cache (it defines `_new_terms_key`): its tests give each event's history only as the cache's mocked answer; rulecast does not import it yet".into(),
            at("Filename"),
        );
    }
    if py_text.is_some_and(|t| t.contains("\ndef _distinct_count(name, group, texts, event):") && t.contains("\nDISTINCT_CACHE_PREFIX = ")) {
        return refuse(
            Code::E502,
            "a distinct-count rule rulecast wrote over Panther's cache (it defines `_distinct_count`): its tests give the group's count only as a mocked answer; rulecast does not import it yet".into(),
            at("Filename"),
        );
    }
    let logs = str_list(m.get("LogTypes"));
    if !logs.iter().any(|l| l == "AWS.CloudTrail") {
        return refuse(Code::E502, format!("not a CloudTrail rule (LogTypes: {})", logs.join(", ")), at("LogTypes"));
    }
    let Some(rule_id) = str_of(m.get("RuleID")) else {
        return refuse(Code::E502, "the rule has no `RuleID`".into(), span_at(file, yaml_text, 0));
    };
    if let Some(e) = crate::import::bad_id(&rule_id, at("RuleID")) {
        return vec![Imported::refused(&slug, e)];
    }
    let Some(py_name) = str_of(m.get("Filename")) else {
        return refuse(
            Code::E502,
            "the rule has no `Filename:` (a YAML `Detection:` rule is not imported)".into(),
            at(if m.contains_key("Detection") { "Detection" } else { "RuleID" }),
        );
    };
    let py_file = Path::new(file).with_file_name(&py_name).display().to_string();
    let Some(py_text) = py_text else {
        return refuse(
            Code::E502,
            format!("the rule's Python `{py_name}` is not at hand: its detection cannot be imported"),
            at("Filename"),
        );
    };
    if let Some((code, msg, off)) = python_limits(py_text) {
        return refuse(code, msg, span_at(&py_file, py_text, off));
    }
    let suite = match ast::Suite::parse(py_text, &py_file) {
        Ok(s) => s,
        Err(e) => {
            return refuse(
                Code::E501,
                format!("python syntax error: {}", e.error),
                span_at(&py_file, py_text, e.offset.to_usize()),
            );
        }
    };
    let suite = match (Depth { depth: 0 }).fold(suite) {
        Ok(s) => s,
        Err(off) => {
            return refuse(
                Code::E502,
                format!("the Python nests more than {MAX_PYTHON_DEPTH} statements and expressions deep here: rulecast reads at most that"),
                span_at(&py_file, py_text, off),
            );
        }
    };
    let logic = match logic::read(py_text, &suite) {
        Ok(l) => l,
        Err((msg, off)) => return refuse(Code::E502, msg, span_at(&py_file, py_text, off)),
    };
    let mut parts = logic.parts.clone();

    let mut d = Doc {
        id: rule_id.clone(),
        name: str_of(m.get("DisplayName")).unwrap_or_else(|| rule_id.clone()),
        ..Doc::default()
    };
    d.description = str_of(m.get("Description")).unwrap_or_else(|| d.name.clone());
    let sev = str_of(m.get("Severity")).unwrap_or_default();
    d.severity = match super::SEVERITIES.severity(&sev).filter(|s| super::SEVERITIES.word(*s) == sev) {
        Some(s) => s.name().to_string(),
        None => return refuse(Code::E502, format!("unknown Severity `{sev}` (Info, Low, Medium, High or Critical)"), at("Severity")),
    };
    d.tags = str_list(m.get("Tags"));
    if let Some(r) = str_of(m.get("Reference")) {
        d.references.push(r);
    }
    if let Some(st) = str_of(m.get("Status"))
        .map(|s| s.to_lowercase())
        .filter(|st| ["stable", "experimental", "development", "deprecated"].contains(&st.as_str()))
    {
        d.status = Some(st);
    }
    let mut panther = Map::new();
    panther.insert("id".into(), Value::from(rule_id.clone()));
    match Path::new(&py_name).file_stem().and_then(|s| s.to_str()) {
        Some(stem) if crate::load::is_safe_stem(stem) => {
            panther.insert("file".into(), Value::from(stem));
        }
        _ => parts.push(Part::metadata(format!("Filename `{py_name}` is not a file name rulecast writes (left out)"))),
    }
    let mut reports = Map::new();
    let mut vendor_pairs: Option<Vec<String>> = None;
    if let Some(Value::Object(r)) = m.get("Reports") {
        for (k, v) in r {
            let entries = str_list(Some(v));
            if k == MITRE {
                // the pairs as written, to keep when `attack` would not give them back
                vendor_pairs = Some(entries.iter().filter(|e| is_mitre_pair(e)).cloned().collect());
                reports.insert(k.clone(), Value::Null);
                for e in entries {
                    let (tac, tech) = e.split_once(':').map_or((e.as_str(), None), |(a, b)| (a, Some(b)));
                    let tac_ok = crate::attack::tactic(tac).is_some();
                    if tac_ok && !d.tactics.iter().any(|t| t == tac) {
                        d.tactics.push(tac.to_string());
                    }
                    if let Some(t) = tech {
                        if !tac_ok || !add_technique(t, &mut d.tactics, &mut d.techniques, &mut parts) {
                            parts.push(Part::metadata(format!("MITRE ATT&CK `{e}` is not an ATT&CK v18.1 id")));
                        }
                    } else if !tac_ok {
                        parts.push(Part::metadata(format!("MITRE ATT&CK `{e}` is not an ATT&CK v18.1 tactic")));
                    }
                }
            } else {
                reports.insert(k.clone(), Value::from(entries));
            }
        }
    }
    // `MITRE ATT&CK`: kept in `targets.panther.reports` (its place among the reports) only when
    // the canonical `attack` would render other pairs or another order
    match vendor_pairs {
        Some(pairs) if !pairs.is_empty() && pairs != derived_pairs(&d.tactics, &d.techniques) => {
            reports.insert(MITRE.into(), Value::from(pairs));
        }
        _ => {
            reports = reports.into_iter().filter(|(k, _)| k != MITRE).collect();
        }
    }
    if let Some(t) = str_of(m.get("Runbook")) {
        panther.insert("runbook".into(), Value::from(t));
    }
    if let Some(Value::Bool(b)) = m.get("Enabled") {
        panther.insert("enabled".into(), Value::Bool(*b));
    }
    match m.get("CreateAlert") {
        Some(Value::Bool(b)) => {
            panther.insert("create_alert".into(), Value::Bool(*b));
        }
        Some(other) => parts.push(Part::metadata(format!("CreateAlert `{other}` is not a boolean (left out)"))),
        None => {}
    }
    if let Some(st) = str_of(m.get("Status")) {
        panther.insert("status".into(), Value::from(st));
    }
    if !reports.is_empty() {
        panther.insert("reports".into(), Value::Object(reports));
    }
    let summary = str_list(m.get("SummaryAttributes"));
    if !summary.is_empty() {
        panther.insert("summary_attributes".into(), Value::from(summary));
    }
    for (key, name) in [("DedupPeriodMinutes", "dedup_period_minutes"), ("Threshold", "threshold")] {
        if let Some(n) = m.get(key).and_then(Value::as_u64) {
            panther.insert(name.into(), Value::from(n));
        }
    }
    for k in m.keys() {
        if !KNOWN_KEYS.contains(&k.as_str()) {
            parts.push(Part::metadata(format!("`{k}` is not carried")));
        }
    }

    // detection and what the Python gave
    d.detection = Node::Json(logic.detection.clone());
    d.lists = logic.lists.clone();
    let allow_names: Vec<&str> = logic.allows.iter().map(|a| a.name.as_str()).collect();

    // tests
    let mut log_type = false;
    for (i, t) in m.get("Tests").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let name = str_of(t.get("Name")).unwrap_or_else(|| format!("test {}", i + 1));
        let (Some(expect), Some(event)) = (t.get("ExpectedResult").and_then(Value::as_bool), t.get("Log").filter(|l| l.is_object())) else {
            parts.push(Part::metadata(format!("test `{name}` has no ExpectedResult or Log object")));
            continue;
        };
        log_type |= t.get("LogType").is_some();
        let mut allow = IndexMap::new();
        for mock in t.get("Mocks").and_then(Value::as_array).into_iter().flatten() {
            let obj = str_of(mock.get("objectName")).unwrap_or_default();
            let entries = str_of(mock.get("returnValue")).and_then(|r| serde_json::from_str::<Value>(&r).ok());
            match entries {
                Some(Value::Array(a)) if allow_names.contains(&obj.as_str()) && a.iter().all(Value::is_object) => {
                    allow.insert(obj, Value::Array(a));
                }
                _ => parts.push(Part::metadata(format!("test `{name}`: the mock of `{obj}` is not carried"))),
            }
        }
        d.tests.push(TestCase { name, expect, allowlists: allow, event: event.clone() });
    }
    if log_type {
        panther.insert("test_log_type".into(), Value::Bool(true));
    }
    if let Some(p) = &logic.prelude {
        panther.insert("prelude".into(), Value::from(p.as_str()));
    }
    d.targets.insert("panther".into(), Value::Object(panther));

    // allow-lists and alert
    for a in &logic.allows {
        let keys = a.keys.iter().cloned().collect();
        d.allowlists.insert(a.name.clone(), Allowlist { keys, entries: a.entries.clone() });
    }
    // the steps of rulecast's own `_derive(event)`, then the names the title and description
    // need: nested paths become derived names (Sentinel's alert title needs column names)
    let mut steps: Vec<IndexMap<String, Value>> = logic.derive.clone();
    let mut placeholders: IndexMap<String, Value> = IndexMap::new();
    let mut texts: Vec<(&str, String)> = vec![];
    for (key, text) in [("title", &logic.title), ("description", &logic.description)] {
        let Some(t) = text else { continue };
        let (t, derived) = derive_placeholders(t);
        for (n, p) in derived {
            if !steps.iter().any(|st| st.contains_key(&n)) {
                placeholders.insert(n, to_value(&Expr::Ref(p)));
            }
        }
        texts.push((key, t));
    }
    if !placeholders.is_empty() {
        steps.push(placeholders);
    }
    if !steps.is_empty() {
        d.alert.insert("derive".into(), to_value(&steps));
    }
    for (key, t) in texts {
        d.alert.insert(key.into(), Value::from(t));
    }
    if !logic.dedup.is_empty() {
        d.alert.insert("dedup".into(), Value::from(logic.dedup.clone()));
    }
    if !logic.context.is_empty() {
        d.alert.insert("context".into(), Value::from(logic.context.clone()));
    }
    let mut v = d.to_value();
    if let Some(why) = crate::import::unloadable(&v) {
        let off = py_text.find("def rule").unwrap_or(0);
        return refuse(Code::E502, why, span_at(&py_file, py_text, off));
    }
    // the vendor's module is kept while it means what the canonical rule says: not when a part of
    // its detection was read with a difference
    let kept: &[(&str, &str)] = if logic.differs { &[("yml", yaml_text)] } else { &[("yml", yaml_text), ("py", py_text)] };
    crate::import::keep_layout(&slug, &mut v, crate::Target::Panther, kept, imports_within);
    vec![Imported::new(&slug, crate::import::to_yaml(&v), parts)]
}

/// Does the vendor's module import only what the generated one does, the standard library, or
/// panther-analysis' global helpers rulecast has equivalents of (which `rulecast test` stands in
/// for)? Otherwise it needs
/// modules rulecast cannot run, and the generated module is written instead.
fn imports_within(generated: &str, vendor: &str) -> bool {
    fn imports(src: &str) -> Option<std::collections::BTreeSet<String>> {
        let suite = ast::Suite::parse(src, "<module>").ok()?;
        let mut out = std::collections::BTreeSet::new();
        for st in &suite {
            match st {
                ast::Stmt::Import(i) => out.extend(i.names.iter().map(|a| a.name.to_string())),
                ast::Stmt::ImportFrom(f) => {
                    let m = f.module.as_ref().map_or(String::new(), |m| m.to_string());
                    out.extend(f.names.iter().map(|a| format!("{m}.{}", a.name)));
                }
                _ => {}
            }
        }
        Some(out)
    }
    let provided = |i: &String| i.split_once('.').is_some_and(|(m, n)| helpers::provided(m, n));
    // the standard library modules Panther's runtime has
    let stdlib = |i: &String| super::pack::STDLIB.contains(&i.split('.').next().unwrap_or(""));
    matches!((imports(generated), imports(vendor)), (Some(g), Some(v)) if v.iter().all(|i| g.contains(i) || provided(i) || stdlib(i)))
}

/// CPython's tokenizer limits, which rustpython-parser does not have: at most 200 nested
/// brackets and 100 levels of indentation (CPython's `MAXLEVEL` and `MAXINDENT`, with its
/// messages); and a bound on how tall the syntax tree can grow, checked on the tokens before the
/// tree is built (a tree tens of thousands of levels deep overflows the stack when it is merely
/// dropped): [`MAX_PYTHON_CHAIN`] prefix and infix operators, attribute accesses, calls and
/// brackets along one path of an expression (`and`, `or` and comparisons make flat nodes and
/// are not counted). Returns the diagnostic's code and message and the offset of the first token
/// past a limit; a text that does not lex is left to the parser, which reports it.
fn python_limits(src: &str) -> Option<(Code, String, usize)> {
    use rustpython_parser::{Mode, StringKind, Tok, lexer};
    // operators counted in the current element (since its bracket or `,`) at each open bracket;
    // [0] is the logical line
    let mut ops: Vec<usize> = vec![0];
    // the sum of (ops + 1) over the open levels: a bound on the tree's height there
    let mut tall = 1usize;
    let mut indent = 0usize;
    for t in lexer::lex(src, Mode::Module) {
        let Ok((tok, range)) = t else { return None };
        let at = range.start().to_usize();
        let mut grow = 0;
        match &tok {
            Tok::Lpar | Tok::Lsqb | Tok::Lbrace => {
                if ops.len() > 200 {
                    return Some((Code::E501, "python syntax error: too many nested parentheses".into(), at));
                }
                grow = 1;
            }
            Tok::Rpar | Tok::Rsqb | Tok::Rbrace if ops.len() > 1 => {
                let o = ops.pop().unwrap_or(0);
                tall -= o + 1;
            }
            Tok::Comma => {
                let last = ops.last_mut().map_or(0, std::mem::take);
                tall -= last;
            }
            Tok::Newline | Tok::Semi if ops.len() == 1 => {
                tall -= std::mem::take(&mut ops[0]);
            }
            Tok::Indent => {
                indent += 1;
                if indent >= 100 {
                    return Some((Code::E501, "python syntax error: too many levels of indentation".into(), at));
                }
            }
            Tok::Dedent => indent = indent.saturating_sub(1),
            Tok::Not | Tok::Plus | Tok::Minus | Tok::Star | Tok::Slash | Tok::DoubleSlash | Tok::Percent | Tok::At
            | Tok::DoubleStar | Tok::LeftShift | Tok::RightShift | Tok::Amper | Tok::Vbar | Tok::CircumFlex | Tok::Tilde
            | Tok::Dot | Tok::Lambda | Tok::Await | Tok::If | Tok::Yield | Tok::ColonEqual => grow = 1,
            // the expressions inside an f-string's braces are parsed from the string's text
            Tok::String { value, kind: StringKind::FString | StringKind::RawFString, .. } => {
                let mut braces = 0usize;
                for c in value.chars() {
                    match c {
                        '{' => braces += 1,
                        '}' => braces = braces.saturating_sub(1),
                        '(' | '[' | '.' | '-' | '+' | '~' | '*' | '/' | '%' | '@' | '&' | '|' | '^' | '<' | '>' | '!' | 'n'
                            if braces > 0 =>
                        {
                            grow += 1
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        if grow > 0 {
            if let Some(last) = ops.last_mut() {
                *last += grow;
            }
            tall += grow;
            if matches!(tok, Tok::Lpar | Tok::Lsqb | Tok::Lbrace) {
                ops.push(0);
                tall += 1;
            }
            if tall > MAX_PYTHON_CHAIN {
                return Some((
                    Code::E502,
                    format!("the expression chains more than {MAX_PYTHON_CHAIN} operators, calls and brackets: rulecast reads at most that"),
                    at,
                ));
            }
        }
    }
    None
}

/// See [`python_limits`]: a bound on the tree's height that over-counts flat chains (a
/// 1,500-term `and` of `event.get(...) == ...` reaches it), far above what rules write and far
/// below what overflows the stack.
const MAX_PYTHON_CHAIN: usize = 4000;

/// How deep statements and expressions may nest in an imported module. The importer reads the
/// tree recursively (and inlines helper functions into `rule`), so it must be bounded; real rules
/// stay far below (CPython's own compiler stops near 2,000).
const MAX_PYTHON_DEPTH: usize = 100;

/// A pass over the module that gives it back unchanged, or the offset of the first statement
/// or expression nested more than [`MAX_PYTHON_DEPTH`] deep. Its own recursion stops there.
struct Depth {
    depth: usize,
}

impl Depth {
    fn enter(&mut self, at: ast::text_size::TextSize) -> Result<(), usize> {
        self.depth += 1;
        if self.depth > MAX_PYTHON_DEPTH { Err(at.to_usize()) } else { Ok(()) }
    }
}

impl ast::Fold<ast::text_size::TextRange> for Depth {
    type TargetU = ast::text_size::TextRange;
    type Error = usize;
    type UserContext = ();

    fn will_map_user(&mut self, _: &ast::text_size::TextRange) {}

    fn map_user(&mut self, user: ast::text_size::TextRange, _: ()) -> Result<ast::text_size::TextRange, usize> {
        Ok(user)
    }

    fn fold_stmt(&mut self, node: ast::Stmt) -> Result<ast::Stmt, usize> {
        self.enter(ast::Ranged::start(&node))?;
        let r = ast::fold::fold_stmt(self, node);
        self.depth -= 1;
        r
    }

    fn fold_expr(&mut self, node: ast::Expr) -> Result<ast::Expr, usize> {
        self.enter(ast::Ranged::start(&node))?;
        let r = ast::fold::fold_expr(self, node);
        self.depth -= 1;
        r
    }
}

/// `{requestParameters.name}` → `{RequestParametersName}` with a derived name for it; top-level
/// fields and `@` names stay as they are.
fn derive_placeholders(text: &str) -> (String, Vec<(String, String)>) {
    let mut out = String::new();
    let mut derived: Vec<(String, String)> = vec![];
    let mut rest = text;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find('}') else { break };
        let path = &rest[i + 1..i + j];
        if path.contains(['.', '[']) || path.starts_with('@') {
            let name: String = path
                .split(['.', '[', ']', '@', '_'])
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let mut cs = p.chars();
                    cs.next().map(|c| c.to_ascii_uppercase().to_string() + cs.as_str()).unwrap_or_default()
                })
                .collect();
            if !derived.iter().any(|(n, _)| n == &name) {
                derived.push((name.clone(), path.to_string()));
            }
            out.push_str(&format!("{{{name}}}"));
        } else {
            out.push_str(&rest[i..=i + j]);
        }
        rest = &rest[i + j + 1..];
    }
    out.push_str(rest);
    (out, derived)
}
