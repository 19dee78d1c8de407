//! Import: vendor rule text → canonical rule YAML.
//!
//! Input: one vendor file's text (Sigma YAML, Elastic detection-rules TOML). Output: one
//! [`Imported`] per rule in it: a slug, the canonical YAML text (which `load::rule_from_str`
//! reads back) and an [`Outcome`] saying whether everything was carried over.
//!
//! The canonical document is built as typed values ([`Doc`], [`Node`]: `model::doc`, the model's
//! schema as serde types), serialised in the model's key order ([`Doc::to_value`]) and written by
//! a small YAML emitter ([`to_yaml`]); every string goes through
//! [`crate::targets::render::yaml_str`].

pub mod source;

pub use source::{Vendor, files, files_with, import_file, import_file_with};

use serde_json::{Map, Value};

pub use crate::model::doc::{Doc, Node, Pred};

use crate::diag::{Diagnostic, Span};
use crate::targets::render::{yaml_double, yaml_str};

/// What an import part is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartKind {
    /// Part of the detection, kept opaque (vendor text) or read with a difference: which events
    /// match may differ from the vendor rule.
    Detection,
    /// Metadata or alert content left out or changed; which events match is unchanged.
    Metadata,
    /// Kept in another form, nothing lost (e.g. an ATT&CK id newer than rulecast's data kept as
    /// a plain tag). Never makes an import partial.
    Note,
}

impl PartKind {
    /// The word the report writes before the reason.
    pub fn label(self) -> &'static str {
        match self {
            PartKind::Detection => "detection",
            PartKind::Metadata => "metadata",
            PartKind::Note => "note",
        }
    }
}

/// One part of a vendor rule that was not carried over exactly: what it is about, why, and
/// where (when the importer knows).
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// Detection, metadata or note.
    pub kind: PartKind,
    /// What was kept opaque, left out or kept in another form, and why.
    pub reason: String,
    /// Where in the vendor file.
    pub span: Option<Span>,
}

impl Part {
    /// A part of the detection.
    pub fn detection(reason: impl Into<String>) -> Self {
        Part { kind: PartKind::Detection, reason: reason.into(), span: None }
    }

    /// A metadata or alert part.
    pub fn metadata(reason: impl Into<String>) -> Self {
        Part { kind: PartKind::Metadata, reason: reason.into(), span: None }
    }

    /// A note (nothing lost).
    pub fn note(reason: impl Into<String>) -> Self {
        Part { kind: PartKind::Note, reason: reason.into(), span: None }
    }

    /// The part, located.
    pub fn with_span(mut self, span: Option<Span>) -> Self {
        self.span = span;
        self
    }

    /// Is it only a note?
    pub fn is_note(&self) -> bool {
        self.kind == PartKind::Note
    }
}

/// `detection: <reason>`, `metadata: <reason>`, `note: <reason>` (the report's words).
impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.label(), self.reason)
    }
}

/// Written as its report text (`detection: ...`) in JSON reports.
impl serde::Serialize for Part {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// How completely a vendor rule was carried over.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Everything maps (notes, if any, are in [`Imported::notes`]).
    Full,
    /// The rule was imported with its whole detection, but these metadata or alert parts were
    /// not carried over exactly (each with its reason).
    Partial(Vec<Part>),
    /// The rule was imported, but part of its detection was kept opaque (vendor text) or read
    /// with a difference: these parts (at least one of [`PartKind::Detection`]).
    Opaque(Vec<Part>),
    /// The rule was not imported: why, and where.
    Refused(Diagnostic),
}

impl Outcome {
    /// Full, Partial or Opaque with the given parts (Full when there are none). Notes are not
    /// parts: use [`Imported::new`], which keeps them apart.
    pub fn from_parts(parts: Vec<Part>) -> Self {
        let parts: Vec<Part> = parts.into_iter().filter(|p| !p.is_note()).collect();
        if parts.is_empty() {
            Outcome::Full
        } else if parts.iter().any(|p| p.kind == PartKind::Detection) {
            Outcome::Opaque(parts)
        } else {
            Outcome::Partial(parts)
        }
    }

    /// Is everything carried over?
    pub fn is_full(&self) -> bool {
        matches!(self, Outcome::Full)
    }

    /// Does the outcome leave out or keep opaque part of the detection (not only metadata)?
    pub fn drops_detection(&self) -> bool {
        matches!(self, Outcome::Opaque(_))
    }

    /// The parts not carried over exactly (none when full or refused).
    pub fn parts(&self) -> &[Part] {
        match self {
            Outcome::Partial(p) | Outcome::Opaque(p) => p,
            Outcome::Full | Outcome::Refused(_) => &[],
        }
    }
}

/// One imported rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// The canonical file stem (snake_case).
    pub slug: String,
    /// The canonical YAML text (empty when refused).
    pub yaml: String,
    /// How completely it was carried over.
    pub outcome: Outcome,
    /// Things kept in another form, nothing lost ([`PartKind::Note`]), e.g. an ATT&CK tag newer
    /// than rulecast's ATT&CK data kept as a plain tag. They never make an import partial.
    pub notes: Vec<Part>,
}

impl Imported {
    /// An imported rule: `parts` are what was not carried over exactly, notes among them are
    /// kept apart in [`Imported::notes`].
    pub fn new(slug: &str, yaml: String, parts: Vec<Part>) -> Self {
        let (notes, parts): (Vec<Part>, Vec<Part>) = parts.into_iter().partition(Part::is_note);
        Imported { slug: slug.to_string(), yaml, outcome: Outcome::from_parts(parts), notes }
    }

    /// A refused import.
    pub fn refused(slug: &str, d: Diagnostic) -> Self {
        Imported {
            slug: slug.to_string(),
            yaml: String::new(),
            outcome: Outcome::Refused(d),
            notes: vec![],
        }
    }
}

/// Why part of a vendor query was not structured, and where: the reason and the byte offset in
/// the query text (the importer turns it into a located part, or a located refusal).
#[derive(Debug, Clone, PartialEq)]
pub struct Unsaid {
    /// Why.
    pub reason: String,
    /// The byte offset in the query text.
    pub at: usize,
}

impl Unsaid {
    /// A reason at a byte offset.
    pub fn new(reason: impl Into<String>, at: usize) -> Self {
        Unsaid { reason: reason.into(), at }
    }
}

/// A correlation's steps read one by one: the conditions every step shares (in the first step's
/// order), which become the rule's detection, and each step's own (the rest).
pub fn shared_and_own(per_step: &[Vec<crate::model::doc::Node>]) -> (Vec<crate::model::doc::Node>, Vec<Vec<crate::model::doc::Node>>) {
    let Some(first) = per_step.first() else { return (vec![], vec![]) };
    let shared: Vec<_> = first.iter().filter(|n| per_step.iter().all(|s| s.contains(n))).cloned().collect();
    let own = per_step.iter().map(|s| s.iter().filter(|n| !shared.contains(n)).cloned().collect()).collect();
    (shared, own)
}

/// A number of seconds as the model writes a window (`within`): in the largest unit that divides
/// it (`1h`, `90m`, `45s`).
pub fn duration_text(secs: i64) -> String {
    [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")]
        .iter()
        .find(|(u, _)| secs % u == 0)
        .map(|(u, n)| format!("{}{n}", secs / u))
        .unwrap_or_else(|| format!("{secs}s"))
}

/// The canonical file stem for a vendor file name: its stem, lower-cased, with every run of
/// other characters replaced by `_` (and a leading `rule_` when it does not start with a letter).
pub fn slug_of(file: &str) -> String {
    let name = file.rsplit(['/', '\\']).next().unwrap_or(file);
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    let mut out = String::new();
    for c in stem.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_matches('_').to_string();
    if out.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
        out
    } else {
        format!("rule_{out}")
    }
}

/// A 1-based line and column for a byte offset in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    // the line break `\r\n` is one position: the end of its line (so is a `\r` that ends the
    // text, the line break of a file cut short)
    if text[..offset].ends_with('\r') && (text[offset..].starts_with('\n') || offset == text.len()) {
        offset -= 1;
    }
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// A span for a byte offset in a file's text.
pub fn span_at(file: &str, text: &str, offset: usize) -> Option<Span> {
    let (line, col) = line_col(text, offset);
    Some(Span {
        file: file.to_string(),
        line,
        col,
    })
}

/// The deepest nesting of mappings and sequences the canonical loader reads (serde-saphyr's
/// default budget, which [`crate::load::rule_from_str`] uses; a unit test below holds the two
/// together). An `all` / `any` level of a condition is two (the mapping and its list), a `not`
/// one.
pub const LOADER_MAX_DEPTH: usize = 64;

/// The most nodes (mappings, sequences and scalars) the canonical loader reads in one document.
pub const LOADER_MAX_NODES: usize = 250_000;

/// The longest mapping key YAML allows (an implicit key is at most 1024 characters).
pub const YAML_MAX_KEY: usize = 1024;

/// Why the canonical loader would not read a document back, if it would not: an importer refuses
/// such a rule (located at its condition) instead of writing one that does not load. The vendor
/// parsers bound their own nesting, so this recursion is bounded too.
pub fn unloadable(doc: &Value) -> Option<String> {
    fn walk<'v>(v: &'v Value, depth: usize, deepest: &mut usize, nodes: &mut usize, long_key: &mut Option<&'v str>) {
        *nodes += 1;
        let kids: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(a) => Box::new(a.iter()),
            Value::Object(o) => {
                if let Some(k) = o.keys().find(|k| k.chars().count() > YAML_MAX_KEY) {
                    long_key.get_or_insert(k);
                }
                Box::new(o.values())
            }
            _ => return,
        };
        *deepest = (*deepest).max(depth);
        if depth > LOADER_MAX_DEPTH || *nodes > LOADER_MAX_NODES {
            return;
        }
        for k in kids {
            walk(k, depth + 1, deepest, nodes, long_key);
        }
    }
    let (mut deepest, mut nodes, mut long_key) = (0, 0, None);
    walk(doc, 1, &mut deepest, &mut nodes, &mut long_key);
    if let Some(k) = long_key {
        let head: String = k.chars().take(20).collect();
        Some(format!("the name `{head}...` is longer than the {YAML_MAX_KEY} characters a YAML key can have"))
    } else if deepest > LOADER_MAX_DEPTH {
        Some(format!(
            "the condition nests too deeply for a canonical rule: rulecast reads at most {LOADER_MAX_DEPTH} levels of YAML nesting (an `all` or `any` is two, a `not` one)"
        ))
    } else if nodes > LOADER_MAX_NODES {
        Some(format!("the rule is too big for a canonical rule: rulecast reads at most {LOADER_MAX_NODES} YAML nodes"))
    } else {
        None
    }
}

/// A vendor rule id the canonical model cannot carry (it needs letters, digits, `.`, `_`, `-`):
/// the importers refuse the rule with this diagnostic, located at the id.
pub fn bad_id(id: &str, span: Option<Span>) -> Option<Diagnostic> {
    (!crate::load::is_rule_id(id)).then(|| {
        Diagnostic::error(crate::diag::Code::E502, format!("rule id `{id}` cannot be a canonical rule id"))
            .with_expected("letters, digits, `.`, `_`, `-` (a GUID or a dotted name)")
            .with_span(span)
    })
}

/// Fill what an imported rule's vendor file did not say but a target needs (detection-rules
/// requires an author and a creation date; Sentinel and Panther files carry neither): `authors`
/// and `created` are added only where the rule has none. The YAML is the importer's own.
pub fn fill_missing(yaml: &str, authors: &[String], created: Option<&str>) -> Result<String, String> {
    let v: Value = serde_saphyr::from_str(yaml).map_err(|e| e.to_string())?;
    let Value::Object(m) = v else { return Err("not a mapping".into()) };
    let has = |k: &str| m.get(k).is_some_and(|x| !x.is_null() && x != &Value::Array(vec![]));
    let mut out = Map::new();
    let (add_authors, add_created) = (!authors.is_empty() && !has("authors"), created.is_some() && !has("created"));
    let after = ["id", "name", "description", "severity", "risk_score"];
    let mut placed = false;
    let keys: Vec<String> = m.keys().cloned().collect();
    for (i, (k, x)) in m.into_iter().enumerate() {
        out.insert(k.clone(), x);
        let next_is_after = keys.get(i + 1).is_some_and(|n| after.contains(&n.as_str()));
        if !placed && after.contains(&k.as_str()) && !next_is_after {
            if add_authors {
                out.insert("authors".into(), Value::from(authors.to_vec()));
            }
            if let (true, Some(c)) = (add_created, created) {
                out.insert("created".into(), Value::from(c));
            }
            placed = true;
        }
    }
    Ok(to_yaml(&Value::Object(out)))
}

/// Declare targets an imported rule cannot be built for: `targets.<t>.skip: <reason>` for each
/// `(target, reason)`, merged into the rule's `targets:` (added last, in the model's order, when
/// the rule has none). A target that already says `skip` keeps its reason. The YAML is the
/// importer's own.
pub fn add_skips(yaml: &str, skips: &[(String, String)]) -> Result<String, String> {
    if skips.is_empty() {
        return Ok(yaml.to_string());
    }
    let v: Value = serde_saphyr::from_str(yaml).map_err(|e| e.to_string())?;
    let Value::Object(mut m) = v else { return Err("not a mapping".into()) };
    let targets = m.entry("targets").or_insert_with(|| Value::Object(Map::new()));
    if targets.is_null() {
        *targets = Value::Object(Map::new());
    }
    let Value::Object(targets) = targets else { return Err("`targets` is not a mapping".into()) };
    for (t, why) in skips {
        let entry = targets.entry(t.clone()).or_insert_with(|| Value::Object(Map::new()));
        if entry.is_null() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(e) = entry else { return Err(format!("`targets.{t}` is not a mapping")) };
        e.entry("skip").or_insert_with(|| Value::from(why.as_str()));
    }
    Ok(to_yaml(&Value::Object(m)))
}

/// A fully imported rule keeps its query text (`targets.<t>.query`) with the fingerprint of what
/// was read from it (`query_of`, as `fingerprint` computes it from the loaded rule): the build
/// writes the text as it is while that is unchanged. Nothing is kept when the rule does not load.
pub fn keep_query_text(slug: &str, v: &mut Value, target: crate::Target, query: &str, fingerprint: fn(&crate::load::Rule) -> String) {
    let Ok(rule) = crate::load::rule_from_str(&format!("{slug}.yaml"), slug, &to_yaml(v)) else { return };
    let of = fingerprint(&rule);
    let Some(m) = v.as_object_mut() else { return };
    let targets = m.entry("targets").or_insert_with(|| Value::Object(Map::new()));
    let Some(t) = targets.as_object_mut() else { return };
    let settings = t.entry(target.to_string()).or_insert_with(|| Value::Object(Map::new()));
    let Some(settings) = settings.as_object_mut() else { return };
    settings.insert("query".into(), Value::from(query));
    settings.insert("query_of".into(), Value::from(of));
}

/// Keep the vendor file(s) a rule was imported from as `targets.<t>.layout` (see
/// [`crate::layout`]): `files` are `(extension, text)`, e.g. `("yml", ..), ("py", ..)`. A file
/// that is not YAML or TOML is kept under the fingerprint of the text the rule generates for it
/// now (`<extension>_of`), so it is written again only while that text is unchanged. Nothing is
/// kept when the rule does not build for the target, nor a non-structured file `accept`
/// (given the generated text and the vendor's) turns down.
pub fn keep_layout(slug: &str, v: &mut Value, target: crate::Target, files: &[(&str, &str)], accept: fn(&str, &str) -> bool) {
    let Ok(rule) = crate::load::rule_from_str(&format!("{slug}.yaml"), slug, &to_yaml(v)) else { return };
    let Ok(out) = crate::targets::compile(&rule, target, crate::targets::Unsupported::Warn) else { return };
    let mut layout = Map::new();
    for (ext, text) in files {
        layout.insert((*ext).to_string(), Value::from(*text));
        if !matches!(*ext, "yaml" | "yml" | "toml") {
            let Some((_, generated)) = out.files.iter().find(|(p, _)| p.ends_with(&format!(".{ext}"))) else { continue };
            if !accept(generated, text) {
                layout.shift_remove(*ext);
                continue;
            }
            layout.insert(format!("{ext}_of"), Value::from(crate::layout::fingerprint(generated, text)));
        }
    }
    let Some(m) = v.as_object_mut() else { return };
    let targets = m.entry("targets").or_insert_with(|| Value::Object(Map::new()));
    let Some(t) = targets.as_object_mut() else { return };
    let settings = t.entry(target.to_string()).or_insert_with(|| Value::Object(Map::new()));
    let Some(settings) = settings.as_object_mut() else { return };
    settings.insert("layout".into(), Value::Object(layout));
}

/// Write a JSON value (a mapping at the top) as block-style YAML. Condition predicates and
/// other small mappings of scalars are written in flow style (`{field: x, op: eq, value: y}`),
/// short lists of scalars as `[a, b]`.
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(o) if !o.is_empty() => write_map(o, 0, false, &mut out),
        other => {
            out.push_str(&scalar(other, 0));
            out.push('\n');
        }
    }
    out
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

fn multiline(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\n'),
        Value::Array(a) => a.iter().any(multiline),
        Value::Object(o) => o.values().any(multiline),
        _ => false,
    }
}

/// Can this value be written on one line in flow style?
fn flowable(v: &Value) -> bool {
    match v {
        Value::Array(a) => a.iter().all(is_scalar) && !multiline(v) && flow(v).len() <= 100,
        Value::Object(o) => {
            (o.contains_key("field") || (o.len() == 1 && o.contains_key("request_succeeded")))
                && o.values().all(|x| {
                    is_scalar(x) || matches!(x, Value::Array(a) if a.iter().all(is_scalar))
                })
                && !multiline(v)
        }
        _ => true,
    }
}

fn key(k: &str) -> String {
    yaml_str(k, "auto", 0)
}

fn scalar(v: &Value, indent: usize) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => yaml_str(s, "auto", indent),
        Value::Array(_) | Value::Object(_) => flow(v),
    }
}

fn flow_str(s: &str) -> String {
    if s.contains([',', '[', ']', '{', '}']) || s.contains('\n') {
        yaml_double(s)
    } else {
        yaml_str(s, "auto", 0)
    }
}

fn flow(v: &Value) -> String {
    match v {
        Value::String(s) => flow_str(s),
        Value::Array(a) => format!("[{}]", a.iter().map(flow).collect::<Vec<_>>().join(", ")),
        Value::Object(o) => {
            let kv: Vec<String> = o
                .iter()
                .map(|(k, x)| format!("{}: {}", flow_str(k), flow(x)))
                .collect();
            format!("{{{}}}", kv.join(", "))
        }
        other => scalar(other, 0),
    }
}

/// Write `key: value` lines of a mapping at `indent`; with `inline_first`, the first key
/// continues the current line (after `- `).
fn write_map(o: &Map<String, Value>, indent: usize, inline_first: bool, out: &mut String) {
    let pad = " ".repeat(indent);
    for (i, (k, v)) in o.iter().enumerate() {
        if !(i == 0 && inline_first) {
            out.push_str(&pad);
        }
        out.push_str(&key(k));
        out.push(':');
        write_after_key(v, indent, out);
    }
}

fn write_after_key(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Array(a) if a.is_empty() => out.push_str(" []\n"),
        Value::Object(o) if o.is_empty() => out.push_str(" {}\n"),
        Value::Array(_) | Value::Object(_) if flowable(v) => {
            out.push(' ');
            out.push_str(&flow(v));
            out.push('\n');
        }
        Value::Array(a) => {
            out.push('\n');
            write_seq(a, indent + 2, out);
        }
        Value::Object(o) => {
            out.push('\n');
            write_map(o, indent + 2, false, out);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other, indent + 2));
            out.push('\n');
        }
    }
}

fn write_seq(a: &[Value], indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for x in a {
        out.push_str(&pad);
        out.push('-');
        match x {
            Value::Array(b) if b.is_empty() => out.push_str(" []\n"),
            Value::Object(o) if o.is_empty() => out.push_str(" {}\n"),
            Value::Array(_) | Value::Object(_) if flowable(x) => {
                out.push(' ');
                out.push_str(&flow(x));
                out.push('\n');
            }
            Value::Array(b) => {
                out.push('\n');
                write_seq(b, indent + 2, out);
            }
            Value::Object(o) => {
                out.push(' ');
                write_map(o, indent + 2, true, out);
            }
            other => {
                out.push(' ');
                out.push_str(&scalar(other, indent + 2));
                out.push('\n');
            }
        }
    }
}

/// A predicate node as a JSON value (see [`Node::pred`]), for the importers that still build
/// their condition trees as JSON.
pub fn pred(field: &str, op: &str, values: Vec<Value>, insensitive: bool) -> Value {
    Node::pred(field, op, values, insensitive).to_value()
}

/// `{all: [...]}` as a JSON value (see [`Node::all`]).
pub fn all(kids: Vec<Value>) -> Value {
    Node::all(kids.into_iter().map(Node::Json).collect()).to_value()
}

/// `{any: [...]}` as a JSON value (see [`Node::any`]).
pub fn any(kids: Vec<Value>) -> Value {
    Node::any(kids.into_iter().map(Node::Json).collect()).to_value()
}

/// `{not: node}` as a JSON value (see [`Node::not`]).
pub fn not(kid: Value) -> Value {
    Node::not(Node::Json(kid)).to_value()
}

/// `YYYY/MM/DD` or `YYYY-MM-DD` → `YYYY-MM-DD` (None if it is neither, or not a day that
/// exists): the loader's one date check.
pub fn date(s: &str) -> Option<String> {
    let d = s.trim().replace('/', "-");
    crate::load::check::is_date(&d).then_some(d)
}

/// Add an ATT&CK technique and make sure one of its tactics is listed (the first of the
/// technique's tactics is added when none is). Returns false for an unknown id.
pub fn add_technique(id: &str, tactics: &mut Vec<String>, techniques: &mut Vec<String>, parts: &mut Vec<Part>) -> bool {
    let t = match crate::attack::technique(id) {
        Some(t) => t,
        None => match crate::attack::from_v19(id) {
            Some(t) => {
                parts.push(Part::note(format!(
                    "technique {id} is an ATT&CK v19 id; read as v{} {} {} (the version rulecast writes)",
                    crate::attack::VERSION,
                    t.id,
                    t.name
                )));
                t
            }
            None => return false,
        },
    };
    let id = t.id.as_str();
    let listed = t
        .tactics
        .iter()
        .filter_map(|s| crate::attack::tactic_by_shortname(s))
        .any(|ta| tactics.contains(&ta.id));
    if !listed {
        if let Some(ta) = t
            .tactics
            .first()
            .and_then(|s| crate::attack::tactic_by_shortname(s))
        {
            tactics.push(ta.id.clone());
        }
    }
    if !techniques.iter().any(|x| x == id) {
        techniques.push(id.to_string());
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_yaml_that_loads() {
        let doc = Doc {
            id: "4db60cc0-36fb-42b7-9b58-a5b53019fb74".into(),
            name: "A: test, rule".into(),
            description: "line one\nline two\n".into(),
            severity: "medium".into(),
            authors: vec!["a, b".into(), "@x".into()],
            tags: vec!["yes".into(), "{x}".into()],
            tactics: vec!["TA0005".into()],
            techniques: vec!["T1562.008".into()],
            created: Some("2020-01-21".into()),
            status: Some("experimental".into()),
            detection: Node::all(vec![
                Node::pred("eventName", "eq", vec![Value::from("StopLogging"), Value::from("Delete, Trail")], true),
                Node::not(Node::Succeeded { request_succeeded: false }),
                Node::any(vec![
                    Node::pred("userAgent", "contains", vec![Value::from("[x]")], false),
                    Node::pred("readOnly", "eq", vec![Value::Bool(true)], false),
                ]),
            ]),
            ..Doc::default()
        };
        let y = to_yaml(&doc.to_value());
        let rule = crate::load::rule_from_str("t.yaml", "t", &y);
        assert!(rule.is_ok(), "{y}\n{:?}", rule.err());
        let rule = rule.unwrap();
        assert_eq!(rule.doc.description, "line one\nline two\n");
        assert_eq!(rule.doc.authors, vec!["a, b", "@x"]);
        assert!(y.contains("- {field: eventName, op: in, values: [StopLogging, \"Delete, Trail\"], case: insensitive}"), "{y}");
    }

    /// [`LOADER_MAX_DEPTH`] is the loader's: the deepest document `unloadable` accepts loads,
    /// one level deeper neither loads nor is accepted.
    #[test]
    fn unloadable_agrees_with_the_loader() {
        let doc = |nots: usize| {
            let mut det = Node::pred("eventName", "eq", vec![Value::from("x")], false);
            for _ in 0..nots {
                det = Node::not(det);
            }
            Doc {
                id: "deep.rule".into(),
                name: "Deep".into(),
                description: "Deep.".into(),
                severity: "low".into(),
                detection: det,
                ..Doc::default()
            }
            .to_value()
        };
        // the root mapping, `detection:`'s `not` mappings, the predicate's mapping
        let deepest = LOADER_MAX_DEPTH - 2;
        let ok = doc(deepest);
        assert_eq!(unloadable(&ok), None);
        // a big stack: the loader's derived deserializers use a lot of it in debug builds
        let loads = |v: Value| {
            std::thread::Builder::new()
                .stack_size(64 << 20)
                .spawn(move || crate::load::rule_from_str("t.yaml", "t", &to_yaml(&v)).map(|_| ()).map_err(|d| d.to_string()))
                .unwrap()
                .join()
                .unwrap()
        };
        assert!(loads(ok).is_ok());
        let deep = doc(deepest + 1);
        assert!(unloadable(&deep).is_some());
        let err = loads(deep).unwrap_err();
        assert!(err.contains("E101"), "{err}");
    }

    #[test]
    fn slugs_and_dates() {
        assert_eq!(
            slug_of("x/aws-CloudTrail Disable.yml"),
            "aws_cloudtrail_disable"
        );
        assert_eq!(slug_of("1x.toml"), "rule_1x");
        assert_eq!(date("2020/01/21").as_deref(), Some("2020-01-21"));
        assert_eq!(date("2020-1-21"), None);
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab\r\ncd", 3), (1, 3));
        assert_eq!(line_col("ab\r\ncd", 4), (2, 1));
        assert_eq!(line_col("é\n", 1), (1, 1));
        // a text cut short after a carriage return: the end of its last line
        assert_eq!(line_col("ab\r\ncd\r", 7), (2, 3));
    }
}
