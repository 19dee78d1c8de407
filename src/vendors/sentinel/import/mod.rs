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
//!   columns) and named in [`crate::import::Outcome::Partial`] as `detection: <text>: <reason>`.
//! - Stages the model cannot say (`project`, `distinct`, `sort`, an `extend` the derive
//!   expressions cannot say ...) are named as `metadata:` parts when they do not change which
//!   events match; stages that do (`join`, `mv-expand` followed by `where`, a `where` over an
//!   aggregation other than a count threshold) refuse the rule with E502, located in the file.

use indexmap::IndexMap;
use serde_json::{Map, Value, json};

use crate::import::{Doc, Imported, add_technique, all, any, line_col, not, pred, slug_of};
use crate::diag::{Code, Diagnostic, Span};
use crate::fields::{self, Kind, Mapping, Seg};
use crate::vendors::sentinel::kusto::{self, Assign, BinOp, Expr, ExprKind, ListOp, Literal, Operator, OperatorKind};

/// The only table a canonical rule reads.
const TABLE: &str = "AWSCloudTrail";

/// Sentinel severities and their canonical names.
const SEVERITIES: &[(&str, &str)] = &[
    ("Informational", "info"),
    ("Low", "low"),
    ("Medium", "medium"),
    ("High", "high"),
];

/// (Sentinel entity type, canonical type, [(Sentinel identifier, canonical identifier)]).
type EntityRow = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// Sentinel entity types and identifiers → canonical (the inverse of the Sentinel target's table).
const ENTITIES: &[EntityRow] = &[
    (
        "Account",
        "account",
        &[
            ("Name", "name"),
            ("FullName", "full_name"),
            ("UPNSuffix", "upn_suffix"),
            ("AadUserId", "aad_user_id"),
            ("Sid", "sid"),
            ("ObjectGuid", "object_guid"),
            ("CloudAppAccountId", "cloud_app_account_id"),
            ("NTDomain", "nt_domain"),
            ("DnsDomain", "dns_domain"),
        ],
    ),
    ("IP", "ip", &[("Address", "address")]),
    (
        "Host",
        "host",
        &[
            ("HostName", "host_name"),
            ("FullName", "full_name"),
            ("DnsDomain", "dns_domain"),
        ],
    ),
    ("URL", "url", &[("Url", "url")]),
    (
        "CloudApplication",
        "cloud_application",
        &[
            ("Name", "name"),
            ("AppId", "app_id"),
            ("InstanceName", "instance_name"),
        ],
    ),
    ("DNS", "dns", &[("DomainName", "domain_name")]),
    (
        "File",
        "file",
        &[("Name", "name"), ("Directory", "directory")],
    ),
];

/// Top-level keys this importer reads.
const KNOWN_KEYS: &[&str] = &[
    "id",
    "name",
    "description",
    "severity",
    "requiredDataConnectors",
    "queryFrequency",
    "queryPeriod",
    "triggerOperator",
    "triggerThreshold",
    "tactics",
    "relevantTechniques",
    "query",
    "entityMappings",
    "customDetails",
    "alertDetailsOverride",
    "version",
    "kind",
    "status",
    "tags",
];

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

/// `1h`, `PT1H`, `P1D`, `PT5M`, `01:00:00` → the canonical `<n>m|h|d`.
pub fn duration(s: &str) -> Option<String> {
    let s = s.trim();
    let num_unit = |n: &str, u: char| -> Option<String> {
        let n: u64 = n.parse().ok()?;
        Some(format!("{n}{u}"))
    };
    if let Some(u) = s.chars().last().filter(|c| matches!(c, 'm' | 'h' | 'd'))
        && let Some(n) = s.strip_suffix(u)
        && !n.is_empty()
        && n.chars().all(|c| c.is_ascii_digit())
    {
        return num_unit(n, u);
    }
    let up = s.to_ascii_uppercase();
    if let Some(rest) = up.strip_prefix("PT") {
        let u = rest.chars().last()?;
        let n = rest.strip_suffix(u)?;
        return match u {
            'M' => num_unit(n, 'm'),
            'H' => num_unit(n, 'h'),
            _ => None,
        };
    }
    if let Some(n) = up.strip_prefix('P').and_then(|r| r.strip_suffix('D')) {
        return num_unit(n, 'd');
    }
    // .NET TimeSpan hh:mm:ss / d.hh:mm:ss
    let (days, hms) = match s.split_once('.') {
        Some((d, r)) if r.contains(':') => (d.parse::<u64>().ok()?, r),
        _ => (0, s),
    };
    let parts: Vec<u64> = hms
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, sec] = parts.as_slice() else {
        return None;
    };
    if *sec != 0 {
        return None;
    }
    let mins = days * 1440 + h * 60 + m;
    Some(if mins % 1440 == 0 {
        format!("{}d", mins / 1440)
    } else if mins % 60 == 0 {
        format!("{}h", mins / 60)
    } else {
        format!("{mins}m")
    })
}

fn import_one(file: &str, text: &str, slug: &str, v: &Value) -> Imported {
    let Some(m) = v.as_object() else {
        let d = Diagnostic::error(Code::E501, "an analytic rule is a mapping")
            .with_found(match v {
                Value::Null => "an empty document",
                Value::Array(_) => "a sequence",
                _ => "a scalar",
            })
            .with_span(at(file, 1, 1));
        return Imported::refused(slug, d);
    };
    let mut parts: Vec<String> = vec![];
    let mut d = Doc::default();
    let mut sentinel = Map::new();
    let stem = file.rsplit(['/', '\\']).next().unwrap_or(file);
    let stem = stem.rsplit_once('.').map_or(stem, |(s, _)| s);
    if !stem.is_empty() && !stem.contains("..") {
        sentinel.insert("file".into(), json!(stem));
    }

    // id, name, description
    let Some(id) = s_of(m.get("id")).filter(|s| !s.trim().is_empty()) else {
        let d = Diagnostic::error(Code::E104, "missing key `id`").with_span(at(file, 1, 1));
        return Imported::refused(slug, d);
    };
    if let Some(dg) = crate::import::bad_id(&id, key_span(file, text, "id")) {
        return Imported::refused(slug, dg);
    }
    d.id = id.clone();
    if uuid::Uuid::parse_str(&id).is_err() || id.len() != 36 {
        // Sentinel's id is a GUID: the target derives one from the canonical id
        parts.push(format!("metadata: id {id} is not a GUID (Sentinel's id is derived from it when built)"));
    } else if crate::targets::derived_uuid(&id, crate::Target::Sentinel) != id {
        sentinel.insert("id".into(), json!(id));
    }
    d.name = s_of(m.get("name")).unwrap_or_else(|| slug.to_string());
    d.description = s_of(m.get("description")).unwrap_or_else(|| d.name.clone());
    let sev = s_of(m.get("severity")).unwrap_or_default();
    d.severity = match SEVERITIES
        .iter()
        .find(|(s, _)| s.eq_ignore_ascii_case(&sev))
    {
        Some((_, c)) => c.to_string(),
        None => {
            parts.push(format!(
                "metadata: severity {sev:?} is not a Sentinel severity (medium assumed)"
            ));
            "medium".into()
        }
    };

    // ATT&CK
    for t in str_list(m.get("tactics")) {
        let found = crate::attack::tactic_ids()
            .filter_map(crate::attack::tactic)
            .find(|ta| super::tactics::name(&ta.id) == Some(t.as_str()));
        match found {
            Some(ta) if !d.tactics.contains(&ta.id) => d.tactics.push(ta.id.clone()),
            Some(_) => {}
            None => parts.push(format!(
                "metadata: tactic {t} is not an ATT&CK v18.1 tactic (left out)"
            )),
        }
    }
    for t in str_list(m.get("relevantTechniques")) {
        let Some(tech) = crate::attack::technique(&t) else {
            parts.push(format!(
                "metadata: technique {t} is not in ATT&CK v18.1 (kept as a tag)"
            ));
            d.tags.push(t);
            continue;
        };
        let listed = tech
            .tactics
            .iter()
            .filter_map(|s| crate::attack::tactic_by_shortname(s))
            .any(|ta| d.tactics.contains(&ta.id));
        if !listed {
            parts.push(format!(
                "metadata: technique {t} belongs to no listed tactic (its tactic {} was added)",
                tech.tactics.first().map_or("", String::as_str)
            ));
        }
        add_technique(&t, &mut d.tactics, &mut d.techniques, &mut parts);
    }
    d.tags.extend(str_list(m.get("tags")));

    // version, kind, status
    if let Some(ver) = s_of(m.get("version")) {
        let ok = ver.split('.').count() == 3
            && ver
                .split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        if ok {
            d.version = Some(ver);
        } else if crate::load::check::is_dotted_version(&ver) {
            sentinel.insert("version".into(), json!(ver));
        } else {
            parts.push(format!("metadata: version {ver} is not a version (left out)"));
        }
    }
    let kind = s_of(m.get("kind")).unwrap_or_else(|| "Scheduled".into());
    match kind.as_str() {
        "Scheduled" => {}
        "NRT" => {
            sentinel.insert("kind".into(), json!(kind));
        }
        other => {
            let d = Diagnostic::error(Code::E502, format!("rule kind {other} is not imported"))
                .with_expected("Scheduled or NRT")
                .with_span(key_span(file, text, "kind"));
            return Imported::refused(slug, d);
        }
    }
    match s_of(m.get("status")) {
        Some(s) if s == "Available" => {}
        Some(s) => {
            sentinel.insert("status".into(), json!(s));
        }
        None => parts.push("metadata: the rule has no status (rendered back as Available)".into()),
    }

    // connectors
    if let Some(Value::Array(cs)) = m.get("requiredDataConnectors") {
        let conns: Vec<Value> = cs
            .iter()
            .map(|c| json!({"id": s_of(c.get("connectorId")).unwrap_or_default(), "data_types": str_list(c.get("dataTypes"))}))
            .collect();
        let default = json!([
            {"id": "AWS", "data_types": ["AWSCloudTrail"]},
            {"id": "AWSS3", "data_types": ["AWSCloudTrail"]}
        ]);
        let named = |v: &Value| v.as_str().is_some_and(crate::load::check::is_identifier);
        let valid = conns.iter().all(|c| named(&c["id"]) && c["data_types"].as_array().is_some_and(|t| t.iter().all(named)));
        if !valid {
            parts.push("metadata: requiredDataConnectors holds a connector id or data type that is not a name (left out; the default AWS connectors are written)".into());
        } else if Value::Array(conns.clone()) != default {
            sentinel.insert("connectors".into(), Value::Array(conns));
        }
    }
    // schedule
    if kind == "Scheduled" {
        let freq = s_of(m.get("queryFrequency"));
        let period = s_of(m.get("queryPeriod"));
        let fq = freq.as_deref().map(|f| (f, duration(f)));
        let pd = period.as_deref().map(|p| (p, duration(p)));
        let fq_c = match fq {
            Some((_, Some(c))) => Some(c),
            Some((raw, None)) => {
                parts.push(format!(
                    "metadata: queryFrequency {raw} is not a duration rulecast writes (1h assumed)"
                ));
                None
            }
            None => None,
        };
        if let Some(f) = fq_c.as_ref().filter(|f| *f != "1h") {
            sentinel.insert("query_frequency".into(), json!(f));
        }
        match pd {
            Some((_, Some(p))) if Some(&p) != fq_c.as_ref() && !(fq_c.is_none() && p == "1h") => {
                sentinel.insert("query_period".into(), json!(p));
            }
            Some((_, Some(_))) => {}
            Some((raw, None)) => parts.push(format!(
                "metadata: queryPeriod {raw} is not a duration rulecast writes (left out)"
            )),
            None => {}
        }
        match s_of(m.get("triggerOperator")).as_deref() {
            None | Some("gt") => {}
            Some(op @ ("lt" | "eq" | "ne")) => {
                sentinel.insert("trigger_operator".into(), json!(op));
            }
            Some(op) => {
                let short = match op {
                    "GreaterThan" => Some("gt"),
                    "LessThan" => Some("lt"),
                    "Equal" => Some("eq"),
                    "NotEqual" => Some("ne"),
                    _ => None,
                };
                match short {
                    Some("gt") => {}
                    Some(s) => {
                        sentinel.insert("trigger_operator".into(), json!(s));
                    }
                    None => parts.push(format!(
                        "metadata: triggerOperator {op} is unknown (gt assumed)"
                    )),
                }
            }
        }
        match m.get("triggerThreshold").and_then(Value::as_u64) {
            None | Some(0) => {}
            Some(n) => {
                sentinel.insert("trigger_threshold".into(), json!(n));
            }
        }
    }
    for k in m.keys() {
        if !KNOWN_KEYS.contains(&k.as_str()) {
            parts.push(format!("metadata: {k} has no canonical key (left out)"));
        }
    }

    // the query
    let Some(q) = s_of(m.get("query")).filter(|q| !q.trim().is_empty()) else {
        let d = Diagnostic::error(Code::E104, "missing key `query`")
            .with_expected("a KQL query over AWSCloudTrail")
            .with_span(if m.contains_key("query") {
                key_span(file, text, "query")
            } else {
                at(file, 1, 1)
            });
        return Imported::refused(slug, d);
    };
    let loc = QueryLoc::find(text);
    let ast = match kusto::parse(&q) {
        Ok(a) => a,
        Err(e) => {
            // a query nested deeper than rulecast reads is KQL all the same: not importable
            let (code, what) = if e.limit { (Code::E502, "kql nested deeper than rulecast reads") } else { (Code::E501, "kql syntax error") };
            let mut dg = Diagnostic::error(code, format!("{what}: expected {}", e.expected))
            .with_found(e.found.clone())
            .with_span(loc.span(file, &q, e.offset));
            if let Some(h) = e.hint {
                dg = dg.with_hint(h);
            }
            return Imported::refused(slug, dg);
        }
    };
    let mut st = St {
        q: &q,
        file,
        loc: &loc,
        lets: IndexMap::new(),
        env: IndexMap::new(),
        used_lists: vec![],
        parts: vec![],
        elems: vec![],
        period: if kind == "Scheduled" { s_of(m.get("queryPeriod")).and_then(|p| timespan(&p)) } else { None },
        project_away: vec![],
        field_notes: Default::default(),
    };
    let res = st.query(&ast);
    let (detection, alert) = match res {
        Ok(x) => x,
        Err(dg) => return Imported::refused(slug, *dg),
    };
    parts.append(&mut st.parts);
    parts.append(&mut st.field_notes.borrow_mut());
    // comparisons on values inside JSON-string columns: Kusto compares a JSON array as a whole
    // (its text, or by type), the canonical comparison tests each element
    let mut inside = vec![];
    json_paths(&detection, false, &mut inside);
    inside.sort();
    inside.dedup();
    if !inside.is_empty() {
        parts.push(format!(
            "note: {} compared where Kusto reads a JSON value: where one holds a JSON array, the vendor query compares the array as a whole, while the canonical rule (and its Sentinel rendering's note) tests each element",
            inside.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")
        ));
    }
    d.detection = detection;
    for name in &st.used_lists {
        if let Some(Let::List(vals)) = st.lets.get(name) {
            d.lists.insert(name.clone(), Value::Array(vals.clone()));
        }
    }
    let mut alert = alert;
    st.alert_fields(m, &mut alert, &mut parts);
    d.alert = alert;
    if !st.project_away.is_empty() {
        sentinel.insert("project_away".into(), json!(st.project_away));
    }
    if !sentinel.is_empty() {
        d.targets.insert("sentinel".into(), Value::Object(sentinel));
    }
    let mut v = d.to_value();
    if let Some(why) = crate::import::unloadable(&v) {
        return Imported::refused(slug, Diagnostic::error(Code::E502, why).with_span(loc.span(file, &q, 0)));
    }
    if parts.iter().all(|p| crate::import::is_note(p)) {
        keep_query_text(slug, &mut v, &q);
    }
    Imported::new(slug, crate::import::to_yaml(&v), parts)
}

/// A fully imported rule keeps its query text (`targets.sentinel.query`), with the fingerprint
/// of the query rulecast generates from what was read (`query_of`): the build writes the text as
/// it is while that is unchanged. Nothing is kept when the rule does not load.
fn keep_query_text(slug: &str, v: &mut Value, query: &str) {
    let Ok(rule) = crate::load::rule_from_str(&format!("{slug}.yaml"), slug, &crate::import::to_yaml(v)) else { return };
    let of = crate::vendors::sentinel::target::query_fingerprint(&rule);
    let Some(m) = v.as_object_mut() else { return };
    let targets = m.entry("targets").or_insert_with(|| json!({}));
    let Some(t) = targets.as_object_mut() else { return };
    let st = t.entry("sentinel").or_insert_with(|| json!({}));
    let Some(st) = st.as_object_mut() else { return };
    st.insert("query".into(), json!(query));
    st.insert("query_of".into(), json!(of));
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
type Why = (String, usize);

struct St<'a> {
    q: &'a str,
    file: &'a str,
    loc: &'a QueryLoc,
    lets: IndexMap<String, Let>,
    env: IndexMap<String, Bound>,
    used_lists: Vec<String>,
    parts: Vec<String>,
    /// Values `mv-expand`ed before a `where`: the rows are then (event, element) pairs.
    elems: Vec<Elem>,
    /// The rule's query period (a Kusto timespan), for `TimeGenerated >= ago(...)`.
    period: Option<i64>,
    /// `project-away` columns (`targets.sentinel.project_away`).
    project_away: Vec<String>,
    /// Notes found while reading field expressions (which borrow the state immutably).
    field_notes: std::cell::RefCell<Vec<String>>,
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

/// The fields of a condition node read inside JSON values (below a JSON-string column, or inside
/// a `some` element), for the note on arrays.
fn json_paths(v: &Value, in_some: bool, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let (Some(Value::String(f)), Some(op)) = (o.get("field"), o.get("op").and_then(Value::as_str))
                && !matches!(op, "exists" | "empty")
            {
                let nested = fields::resolve(f).is_ok_and(|x| matches!(x.maps.sentinel, Mapping::Nested { .. }));
                if in_some || nested {
                    out.push(f.clone());
                }
            }
            for (k, x) in o {
                match k.as_str() {
                    "some" => {
                        if let Some(w) = x.get("where") {
                            json_paths(w, true, out);
                        }
                    }
                    "field" => {}
                    _ => json_paths(x, in_some, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| json_paths(x, in_some, out)),
        _ => {}
    }
}

/// The names a derive expression (canonical JSON) reads (`ref`s and `case` tests).
fn derive_refs(v: &Value) -> Vec<String> {
    let mut out = vec![];
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                for (k, x) in o {
                    match (k.as_str(), x) {
                        ("ref" | "empty" | "of", Value::String(s)) => out.push(s.clone()),
                        _ => walk(x, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(v, &mut out);
    out
}

/// The elements (`@N:` marks) a condition node reads; a `some` node reads only its `field`.
fn elem_refs(v: &Value, out: &mut std::collections::BTreeSet<usize>) {
    let mut f = vec![];
    collect_fields(v, &mut f);
    out.extend(f.iter().filter_map(|p| split_elem(p).map(|(i, _)| i)));
}

/// Every `field` of a condition node (a `some` node's own field, not those in its `where`).
fn collect_fields(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(f)) = o.get("field") {
                out.push(f.clone());
            }
            for (k, x) in o {
                if k == "some" {
                    if let Some(Value::String(f)) = x.get("field") {
                        out.push(f.clone());
                    }
                } else if k != "field" {
                    collect_fields(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_fields(x, out)),
        _ => {}
    }
}

/// Rename every `field` (not inside nested `some.where`).
fn rename_fields(v: &mut Value, f: &dyn Fn(&str) -> Option<String>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(p)) = o.get("field")
                && let Some(n) = f(p)
            {
                o.insert("field".into(), json!(n));
            }
            for (k, x) in o.iter_mut() {
                if k == "some" {
                    if let Some(Value::String(p)) = x.get("field")
                        && let Some(n) = f(p)
                        && let Value::Object(s) = x
                    {
                        s.insert("field".into(), json!(n));
                    }
                } else if k != "field" {
                    rename_fields(x, f);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rename_fields(x, f)),
        _ => {}
    }
}

/// Does a node test the event itself (request outcome, opaque logic) outside nested `some`s?
fn has_event_level(v: &Value) -> bool {
    match v {
        Value::Object(o) => o.iter().any(|(k, x)| matches!(k.as_str(), "request_succeeded" | "opaque") || (k != "some" && has_event_level(x))),
        Value::Array(a) => a.iter().any(has_event_level),
        _ => false,
    }
}

/// Does a node hold a negation (`not`, `empty`, `exists: false`) outside nested `some`s?
fn has_negation(v: &Value) -> bool {
    match v {
        Value::Object(o) => {
            o.contains_key("not")
                || o.get("op").and_then(Value::as_str) == Some("empty")
                || (o.get("op").and_then(Value::as_str) == Some("exists") && o.get("value") == Some(&json!(false)))
                || o.iter().any(|(k, x)| k != "some" && has_negation(x))
        }
        Value::Array(a) => a.iter().any(has_negation),
        _ => false,
    }
}

/// A duration as a Kusto timespan (`14d`, `1h`), or `None`.
fn timespan(s: &str) -> Option<i64> {
    match kusto::parse_expr(s.trim()).ok()?.kind {
        ExprKind::Literal(Literal::Timespan(t)) => Some(t),
        _ => None,
    }
}

/// Could a JSON number, boolean or null be written as this text? (Then comparing a dynamic
/// value with it by type differs from comparing texts.)
fn scalar_text(t: &str) -> bool {
    matches!(t, "true" | "false" | "null") || t.trim().parse::<f64>().is_ok()
}

fn string_lit(e: &Expr) -> Option<&str> {
    match &e.kind {
        ExprKind::Literal(Literal::String(s)) => Some(s),
        _ => None,
    }
}

fn scalar_json(l: &Literal) -> Option<Value> {
    match l {
        Literal::String(s) => Some(json!(s)),
        Literal::Long(n) => Some(json!(n)),
        Literal::Real(f) => serde_json::Number::from_f64(*f).map(Value::Number),
        Literal::Bool(b) => Some(json!(b)),
        _ => None,
    }
}

/// The AWSCloudTrail columns (the table schema).
fn is_table_column(name: &str) -> bool {
    super::fields::is_column(name)
}

/// The taxonomy row for a Sentinel column: (raw path, kind, is a JSON-string column).
fn column_row(col: &str) -> Option<(String, Kind, bool)> {
    fields::all().iter().find_map(|r| {
        if let Some(c) = r.col("sentinel").strip_prefix("json:") {
            (c == col).then(|| (r.path.clone(), r.kind, true))
        } else {
            (r.col("sentinel") == col).then(|| (r.path.clone(), r.kind, false))
        }
    })
}

/// How a field expression reads its value.
#[derive(Debug, Clone, PartialEq)]
enum Form {
    /// A typed column, as it is (string columns read as text).
    Column(Kind),
    /// A value inside a JSON-string column, still dynamic.
    Dynamic,
    /// `tostring(...)` of a field.
    Text,
}

/// A raw CloudTrail path read from KQL (or a path in an `mv-expand`ed element, marked
/// [`elem_path`]).
#[derive(Debug, Clone)]
struct FieldRef {
    path: String,
    form: Form,
}

impl FieldRef {
    /// Does the expression read the value as the canonical text comparison does?
    fn textual(&self) -> bool {
        matches!(self.form, Form::Text | Form::Column(Kind::String))
    }
}

fn path_of(base: &str, segs: &[Seg]) -> String {
    let mut p = base.to_string();
    for s in segs {
        match s {
            Seg::Key(k) => {
                p.push('.');
                p.push_str(k);
            }
            Seg::Index(i) => p.push_str(&format!("[{i}]")),
        }
    }
    p
}

/// The term-boundary regex for a `has`-family needle: `(^|[^\p{L}\p{N}])` before it unless it
/// starts with a non-alphanumeric character (and likewise after it).
fn term_regex(needle: &str, left: bool, right: bool) -> String {
    let alnum = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let mut re = String::new();
    if left && alnum(needle.chars().next()) {
        re.push_str(r"(^|[^\p{L}\p{N}])");
    }
    re.push_str(&regex::escape(needle));
    if right && alnum(needle.chars().last()) {
        re.push_str(r"($|[^\p{L}\p{N}])");
    }
    re
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

    /// The whole query → (detection, alert).
    fn query(
        &mut self,
        ast: &kusto::Query,
    ) -> Result<(Value, Map<String, Value>), Box<Diagnostic>> {
        for l in &ast.lets {
            let v = match &l.value.kind {
                ExprKind::Literal(Literal::Dynamic(Value::Array(a)))
                    if a.iter().all(|x| !x.is_object() && !x.is_array()) =>
                {
                    Let::List(a.clone())
                }
                ExprKind::Call { name, args }
                    if name.name == "pack_array" || name.name == "dynamic" =>
                {
                    let vals: Option<Vec<Value>> = args
                        .iter()
                        .map(|a| match &a.kind {
                            ExprKind::Literal(l) => scalar_json(l),
                            _ => None,
                        })
                        .collect();
                    match vals {
                        Some(v) => Let::List(v),
                        None => Let::Scalar(l.value.clone()),
                    }
                }
                ExprKind::DataTable { columns, values } if columns.len() == 1 => {
                    let vals: Option<Vec<Value>> = values
                        .iter()
                        .map(|a| match &a.kind {
                            ExprKind::Literal(l) => scalar_json(l),
                            _ => None,
                        })
                        .collect();
                    vals.map_or(Let::Table(None), Let::List)
                }
                ExprKind::Literal(_) => Let::Scalar(l.value.clone()),
                _ => Let::Table(Some(Box::new(l.value.clone()))),
            };
            self.lets.insert(l.name.name.clone(), v);
        }
        // flatten the pipe, reading through tabular lets (`let X = AWSCloudTrail | ...; X | ...`)
        // and materialize(): their operators come first (the lets' text is in the query, so
        // spans still point into it)
        let mut owned: Vec<Operator> = vec![];
        let mut cur: Expr = ast.body.clone();
        let mut through: Vec<String> = vec![];
        loop {
            while let ExprKind::Pipe { input, op } = cur.kind {
                owned.push(*op);
                cur = *input;
            }
            if let ExprKind::Call { name, args } = &cur.kind
                && name.name == "materialize"
                && let [inner] = args.as_slice()
            {
                cur = inner.clone();
                continue;
            }
            let next = match &cur.kind {
                ExprKind::Name(n) if n != TABLE && !through.contains(n) => match self.lets.get(n) {
                    Some(Let::Table(Some(e))) => {
                        through.push(n.clone());
                        Some((**e).clone())
                    }
                    _ => None,
                },
                _ => None,
            };
            match next {
                Some(e) => cur = e,
                None => break,
            }
        }
        let root = &cur;
        let mut ops: Vec<&Operator> = owned.iter().collect();
        ops.reverse();
        match &root.kind {
            ExprKind::Name(n) if n == TABLE => {}
            ExprKind::Name(n) if matches!(self.lets.get(n), Some(Let::Table(_))) => {
                return Err(self.refuse(
                    format!("the query reads `{n}`, a tabular `let` rulecast cannot read through (not a query of the AWSCloudTrail table)"),
                    root.span.start,
                ));
            }
            ExprKind::Name(n) => {
                return Err(Box::new(
                    Diagnostic::error(Code::E502, format!("table `{n}` is not imported"))
                        .with_expected(TABLE)
                        .with_found(n.clone())
                        .with_span(self.span(root.span.start)),
                ));
            }
            _ => {
                return Err(self.refuse(
                    format!(
                        "the query starts with `{}`, not the AWSCloudTrail table",
                        self.src(root)
                    ),
                    root.span.start,
                ));
            }
        }
        let mut conds: Vec<Value> = vec![];
        // `where` conditions on (event, element) rows after an mv-expand
        let mut elem_conds: Vec<Value> = vec![];
        let mut elem_bound: Vec<String> = vec![];
        let mut derive: Vec<Value> = vec![];
        // `project` / `distinct`: the result columns
        let mut columns: Option<Vec<String>> = None;
        let mut distinct = false;
        // extends after the summarize
        let mut post_derive: Vec<Value> = vec![];
        let mut aggregate: Option<Map<String, Value>> = None;
        let mut count_name: Option<String> = None;
        // after a stage whose rows are no longer events (summarize left out, mv-expand ...)
        let mut reshaped: Option<(String, usize)> = None;
        for (i, op) in ops.iter().enumerate() {
            let op_src = self
                .q
                .get(op.span.start..op.span.end)
                .unwrap_or("")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            let later_where = ops
                .iter()
                .skip(i + 1)
                .any(|o| matches!(o.kind, OperatorKind::Where(_)));
            match &op.kind {
                OperatorKind::Where(e) => {
                    if let Some((what, _)) = &reshaped {
                        return Err(self.refuse(
                            format!("this `where` filters the rows of {what}, which the model cannot say"),
                            op.span.start,
                        ));
                    }
                    if aggregate.is_some() {
                        // `where Count > N` → threshold
                        match self.threshold(e, count_name.as_deref()) {
                            Some(n) => {
                                if let Some(a) = aggregate.as_mut() {
                                    if a.contains_key("threshold") {
                                        return Err(self.refuse("a second threshold after the summarize", op.span.start));
                                    }
                                    a.insert("threshold".into(), json!(n));
                                }
                            }
                            None => {
                                return Err(self.refuse(
                                    "this `where` after the summarize is not a count threshold (`where Count > N`); the model cannot say it",
                                    op.span.start,
                                ))
                            }
                        }
                        continue;
                    }
                    let Some(e) = self.strip_window(e) else { continue };
                    let e = &e;
                    let c = self.cond(e, false)?;
                    if self.elems.is_empty() {
                        conds.push(c);
                    } else {
                        // the rows are (event, element) pairs: the `where`s after an
                        // mv-expand together test one element (grouped at the end)
                        elem_conds.push(c);
                    }
                }
                OperatorKind::Extend(assigns) if !self.elems.is_empty() && assigns.iter().any(|a| self.refs_elem(&self.subst(&a.value))) => {
                    // per-element values: names the later `where` reads, not alert fields
                    for a in assigns {
                        let Some(n) = &a.name else {
                            return Err(self.refuse("an unnamed column computed from an expanded element", op.span.start));
                        };
                        let expr = self.subst(&a.value);
                        self.env.insert(n.name.clone(), Bound { expr, derived: false });
                        if self.refs_elem(&self.subst(&a.value)) {
                            elem_bound.push(n.name.clone());
                        }
                    }
                }
                OperatorKind::Extend(assigns) if reshaped.is_none() && aggregate.is_some() => {
                    // steps on the aggregated rows: they may read the group-by fields and measures
                    let agg = aggregate.as_ref().cloned().unwrap_or_default();
                    let mut allowed: Vec<String> = agg.get("by").and_then(Value::as_array).map(|b| b.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()).unwrap_or_default();
                    if let Some(Value::Object(ms)) = agg.get("measures") {
                        allowed.extend(ms.keys().cloned());
                    }
                    for v in &post_derive {
                        if let Value::Object(o) = v {
                            allowed.extend(o.keys().cloned());
                        }
                    }
                    let mut step = Map::new();
                    for a in assigns {
                        let Some(name) = &a.name else {
                            self.parts.push(format!("metadata: an unnamed column in `{op_src}` is not carried"));
                            continue;
                        };
                        let d = self.derive_expr(&a.value).filter(|_| crate::load::is_identifier(&name.name));
                        let reads: Vec<String> = d.as_ref().map(derive_refs).unwrap_or_default();
                        match d {
                            Some(v) if reads.iter().all(|r| allowed.contains(r)) && !step.contains_key(&name.name) => {
                                step.insert(name.name.clone(), v);
                                self.env.insert(name.name.clone(), Bound { expr: self.subst(&a.value), derived: true });
                            }
                            _ => {
                                self.parts.push(format!(
                                    "metadata: `{} = {}` after the aggregation reads more than the group-by fields and measures, or has no derive expression (left out)",
                                    name.name,
                                    self.src(&a.value)
                                ));
                                self.env.insert(name.name.clone(), Bound { expr: self.subst(&a.value), derived: false });
                            }
                        }
                    }
                    if let Some(cols) = columns.as_mut() {
                        for k in step.keys() {
                            if !cols.contains(k) {
                                cols.push(k.clone());
                            }
                        }
                    }
                    if !step.is_empty() {
                        post_derive.push(Value::Object(step));
                    }
                }
                OperatorKind::Extend(assigns) => {
                    if aggregate.is_some() || reshaped.is_some() {
                        self.parts.push(format!(
                            "metadata: `{op_src}` after the aggregation is not carried (derive steps come before it)"
                        ));
                        for a in assigns {
                            if let Some(n) = &a.name {
                                self.env.insert(
                                    n.name.clone(),
                                    Bound {
                                        expr: a.value.clone(),
                                        derived: false,
                                    },
                                );
                            }
                        }
                        continue;
                    }
                    let step = self.extend(assigns, &op_src);
                    if let Some(cols) = columns.as_mut() {
                        // names added after a `project` are result columns too; a name that
                        // replaces a table column (`extend UserIdentityUserName = ...`) takes its place
                        for k in step.keys() {
                            let shadowed = column_row(k).map(|(path, _, _)| path);
                            if let Some(at) = cols.iter().position(|c| Some(c) == shadowed.as_ref()) {
                                cols[at] = k.clone();
                            } else if !cols.contains(k) {
                                cols.push(k.clone());
                            }
                        }
                    }
                    if !step.is_empty() {
                        derive.push(Value::Object(step));
                    }
                }
                OperatorKind::Summarize { aggregates, by } => {
                    if aggregate.is_some() || reshaped.is_some() {
                        if later_where {
                            return Err(self.refuse(
                                "a second aggregation followed by `where`: the model cannot say it",
                                op.span.start,
                            ));
                        }
                        self.parts.push(format!(
                            "metadata: `{op_src}`: a second aggregation is not carried"
                        ));
                        continue;
                    }
                    match self.summarize(aggregates, by) {
                        Ok((agg, cn)) => {
                            // the measures are names the later stages read
                            if let Some(Value::Object(ms)) = agg.get("measures") {
                                for m in ms.keys() {
                                    self.env.insert(m.clone(), Bound { expr: Expr::new(ExprKind::Name(m.clone()), op.span), derived: true });
                                }
                            }
                            aggregate = Some(agg);
                            count_name = cn;
                        }
                        Err((why, off)) => {
                            if later_where {
                                return Err(self.refuse(
                                    format!("the summarize cannot be said in the model ({why}) and a `where` filters its rows"),
                                    off,
                                ));
                            }
                            self.parts.push(format!(
                                "metadata: `{op_src}`: {why} (the aggregation is left out)"
                            ));
                            reshaped =
                                Some(("an aggregation that was left out".into(), op.span.start));
                        }
                    }
                }
                OperatorKind::MvApply { .. } => {
                    return Err(self.refuse(
                        "`mv-apply` is not imported yet",
                        op.span.start,
                    ));
                }
                OperatorKind::Join { params, right, .. } if params.iter().any(|(k, v)| k.name == "kind" && v.name == "leftouter") => {
                    // every row of the left side stays: the join adds columns, it filters nothing
                    self.parts.push(format!(
                        "metadata: `join kind=leftouter ({})` adds columns from another query to the alert rows; it removes none (not carried)",
                        self.src(right).chars().take(80).collect::<String>()
                    ));
                    reshaped = Some(("a join".into(), op.span.start));
                }
                OperatorKind::Join { .. } => {
                    return Err(self.refuse(
                        "`join` combines events from two queries; the model cannot say it",
                        op.span.start,
                    ));
                }
                OperatorKind::MvExpand { params, items, limit } if later_where => {
                    if aggregate.is_some() || reshaped.is_some() || limit.is_some() || !params.is_empty() {
                        return Err(self.refuse(
                            "this `mv-expand` (with parameters or a limit, or after a reshaping stage) is followed by a `where`; the model cannot say it",
                            op.span.start,
                        ));
                    }
                    let [item] = items.as_slice() else {
                        return Err(self.refuse(
                            "an `mv-expand` of several arrays at once pairs their elements by position; the model cannot say it",
                            op.span.start,
                        ));
                    };
                    let name = match (&item.name, &item.value.kind) {
                        (Some(n), _) => n.name.clone(),
                        (None, ExprKind::Name(n)) => n.clone(),
                        (None, ExprKind::Call { args, .. }) if args.len() == 1 && matches!(&args[0].kind, ExprKind::Name(_)) => match &args[0].kind {
                            ExprKind::Name(n) => n.clone(),
                            _ => String::new(),
                        },
                        _ => {
                            return Err(self.refuse("an `mv-expand` of an unnamed expression", op.span.start));
                        }
                    };
                    let inl = self.subst(&item.value);
                    let Some((field, decode, path)) = self.elem_source(&inl) else {
                        return Err(self.refuse(
                            format!("`mv-expand {}` does not expand a CloudTrail field (or JSON text in one) that rulecast can follow", self.src(&item.value)),
                            item.value.span.start,
                        ));
                    };
                    self.env.shift_remove(&name);
                    // the extend that named the array is the expansion's input, not an alert field
                    let lead = format!("metadata: `{name} = ");
                    self.parts.retain(|p| !p.starts_with(&lead));
                    self.elems.push(Elem { name, field, decode, path });
                }
                OperatorKind::MvExpand { .. } => {
                    self.parts.push(format!(
                        "metadata: `{op_src}` is not carried (one alert row per element)"
                    ));
                    reshaped = Some(("an mv-expand".into(), op.span.start));
                }
                OperatorKind::Project(assigns) if aggregate.is_none() && reshaped.is_none() => {
                    let mut cols = vec![];
                    for a in assigns {
                        match (&a.name, &a.value.kind) {
                            (None, ExprKind::Name(n)) => match self.alert_ref(n) {
                                Some(c) => cols.push(c),
                                None => self.parts.push(format!("metadata: column `{n}` of `{op_src}` is not a field or derived name (left out)")),
                            },
                            (Some(n), _) if crate::load::is_identifier(&n.name) => {
                                let step = self.extend(std::slice::from_ref(a), &op_src);
                                if step.is_empty() {
                                    continue;
                                }
                                derive.push(Value::Object(step));
                                cols.push(n.name.clone());
                            }
                            _ => self.parts.push(format!("metadata: an unnamed computed column in `{op_src}` is not carried")),
                        }
                    }
                    columns = Some(cols);
                }
                OperatorKind::Distinct(exprs) if aggregate.is_none() && reshaped.is_none() && !matches!(exprs.first().map(|e| &e.kind), Some(ExprKind::Star)) => {
                    let mut cols = vec![];
                    for x in exprs {
                        match &x.kind {
                            ExprKind::Name(n) => match self.alert_ref(n) {
                                Some(c) => cols.push(c),
                                None => self.parts.push(format!("metadata: column `{n}` of `{op_src}` is not a field or derived name (left out)")),
                            },
                            _ => self.parts.push(format!("metadata: a computed column in `{op_src}` is not carried")),
                        }
                    }
                    columns = Some(cols);
                    distinct = true;
                }
                OperatorKind::Project(assigns) => {
                    for a in assigns {
                        if let (Some(n), false) = (
                            &a.name,
                            matches!(&a.value.kind, ExprKind::Name(x) if a.name.as_ref().is_some_and(|n| &n.name == x)),
                        ) {
                            self.env.insert(
                                n.name.clone(),
                                Bound {
                                    expr: self.subst(&a.value),
                                    derived: false,
                                },
                            );
                        }
                    }
                    self.parts.push(format!(
                        "metadata: `{op_src}` after the aggregation: the model's result columns come from `alert.columns` (not carried)"
                    ));
                }
                OperatorKind::ProjectRename(pairs) if aggregate.is_none() && reshaped.is_none() && columns.is_some() => {
                    // with result columns: the new name is a derived copy that takes the old
                    // column's place
                    let mut step = Map::new();
                    for (new, old) in pairs {
                        let e = Expr::new(ExprKind::Name(old.name.clone()), old.span);
                        match self.derive_expr(&e).filter(|_| crate::load::is_identifier(&new.name)) {
                            Some(v) => {
                                let was = match &v {
                                    Value::Object(o) => o.get("ref").and_then(Value::as_str).map(str::to_string),
                                    _ => None,
                                };
                                step.insert(new.name.clone(), v);
                                self.env.insert(new.name.clone(), Bound { expr: self.subst(&e), derived: true });
                                if let (Some(cols), Some(was)) = (columns.as_mut(), was) {
                                    match cols.iter().position(|c| *c == was) {
                                        Some(at) => cols[at] = new.name.clone(),
                                        None => cols.push(new.name.clone()),
                                    }
                                }
                            }
                            None => self.parts.push(format!("metadata: `{op_src}`: `{}` is not a field or derived name (not carried)", old.name)),
                        }
                    }
                    if !step.is_empty() {
                        derive.push(Value::Object(step));
                    }
                }
                OperatorKind::ProjectRename(pairs) => {
                    for (new, old) in pairs {
                        let e = Expr::new(ExprKind::Name(old.name.clone()), old.span);
                        self.env.insert(
                            new.name.clone(),
                            Bound {
                                expr: self.subst(&e),
                                derived: false,
                            },
                        );
                    }
                    self.parts.push(format!(
                        "metadata: `{op_src}`: renamed output columns are not carried"
                    ));
                }
                OperatorKind::ProjectAway(pats) if aggregate.is_none() && reshaped.is_none() && columns.is_none() => {
                    // later names may not be dropped by it; only plain column names
                    for p in pats {
                        let n = &p.name;
                        if n.ends_with('*') && crate::load::is_identifier(n.trim_end_matches('*')) || is_table_column(n) {
                            self.project_away.push(n.clone());
                        } else {
                            self.parts.push(format!("metadata: `project-away {n}`: `{n}` is not a column of the AWSCloudTrail schema rulecast checks queries against (left out)"));
                        }
                    }
                }
                OperatorKind::ProjectAway(_) | OperatorKind::ProjectKeep(_) => {
                    self.parts.push(format!(
                        "metadata: `{op_src}`: the model has no output column list (not carried)"
                    ));
                }
                OperatorKind::Distinct(_) => {
                    self.parts.push(format!(
                        "metadata: `{op_src}`: duplicate alert rows are not removed (not carried)"
                    ));
                }
                OperatorKind::Sort(_) => {
                    // the order of result rows changes no alert
                    self.parts.push(format!(
                        "note: `{op_src}`: the order of the result rows is not carried (it changes no alert)"
                    ));
                }
                OperatorKind::Unsupported { name, text } => {
                    let shown: String = format!("{name} {text}").chars().take(60).collect();
                    return Err(self.refuse(format!("`{}` is Kusto that rulecast reads but cannot import (no canonical form for `{name}` here)", shown.trim_end()), op.span.start));
                }
                OperatorKind::Take(_) | OperatorKind::Top { .. } | OperatorKind::Count => {
                    if later_where {
                        return Err(self.refuse("this stage changes the rows a later `where` filters; the model cannot say it", op.span.start));
                    }
                    self.parts.push(format!(
                        "metadata: `{op_src}` limits the alert rows (not carried)"
                    ));
                    reshaped = Some((format!("`{op_src}`"), op.span.start));
                }
            }
        }
        if !elem_conds.is_empty() {
            let mut c = all(elem_conds);
            for i in (0..self.elems.len()).rev() {
                c = self.lift(c, i).map_err(|why| self.refuse(why, root.span.start))?;
            }
            let mut left = std::collections::BTreeSet::new();
            elem_refs(&c, &mut left);
            if !left.is_empty() {
                return Err(self.refuse("a condition compares values of two expanded arrays; the model cannot say it", root.span.start));
            }
            conds.push(c);
        }
        let _ = elem_bound;
        if conds.is_empty() {
            return Err(self.refuse(
                "the query has no `where` on AWSCloudTrail: there is no detection to import",
                root.span.start,
            ));
        }
        let mut flat = vec![];
        for c in conds {
            match c {
                Value::Object(o) if o.len() == 1 && o.contains_key("all") => {
                    if let Some(Value::Array(a)) = o.get("all") {
                        flat.extend(a.iter().cloned());
                    }
                }
                other => flat.push(other),
            }
        }
        let detection = succeeded(all(flat));
        let mut alert = Map::new();
        if !derive.is_empty() {
            alert.insert("derive".into(), Value::Array(derive));
        }
        if let Some(mut a) = aggregate {
            if !post_derive.is_empty() {
                a.insert("derive".into(), Value::Array(post_derive));
            }
            alert.insert("aggregate".into(), Value::Object(a));
        }
        if let Some(cols) = columns.filter(|c| !c.is_empty()) {
            alert.insert("columns".into(), json!(cols));
            if distinct {
                alert.insert("distinct".into(), json!(true));
            }
        }
        Ok((detection, alert))
    }

    /// A `where` without its top-level `TimeGenerated >= ago(d)` conjuncts where `d` is at least
    /// the query period (Sentinel only reads that far back, so they test nothing); `None` when
    /// nothing is left.
    fn strip_window(&mut self, e: &Expr) -> Option<Expr> {
        fn conjuncts<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
            match &e.kind {
                ExprKind::Binary { op: BinOp::And, lhs, rhs } => {
                    conjuncts(lhs, out);
                    conjuncts(rhs, out);
                }
                _ => out.push(e),
            }
        }
        let mut cs = vec![];
        conjuncts(e, &mut cs);
        let mut kept: Vec<Expr> = vec![];
        for c in cs {
            let window = match &c.kind {
                ExprKind::Binary { op: BinOp::Ge | BinOp::Gt, lhs, rhs } if matches!(&lhs.kind, ExprKind::Name(n) if n == "TimeGenerated" && !self.env.contains_key(n)) => match &self.subst(rhs).kind {
                    ExprKind::Call { name, args } if name.name == "ago" && args.len() == 1 => match &args[0].kind {
                        ExprKind::Literal(Literal::Timespan(t)) => Some(*t),
                        _ => None,
                    },
                    _ => None,
                },
                _ => None,
            };
            match (window, self.period) {
                (Some(d), Some(p)) if d >= p => {
                    let note = format!("note: `{}` reaches back at least the query period: it tests nothing (left out)", self.src(c));
                    if !self.parts.contains(&note) {
                        self.parts.push(note);
                    }
                }
                _ => kept.push(c.clone()),
            }
        }
        let mut it = kept.into_iter();
        let first = it.next()?;
        Some(it.fold(first, |acc, x| {
            let span = acc.span.to(x.span);
            Expr::new(ExprKind::Binary { op: BinOp::And, lhs: Box::new(acc), rhs: Box::new(x) }, span)
        }))
    }

    /// A comparison of a chosen value (`iff(isnotempty(x), x, y)`, `iff(isempty(x), y, x)`,
    /// `coalesce(x, y)`) with constants, said per branch: `(isnotempty(x) and x OP v) or
    /// (isempty(x) and y OP v)`, the same test.
    fn split_choice(&self, e: &Expr) -> Option<Expr> {
        let (lhs, rebuild): (&Expr, Box<dyn Fn(Expr) -> Expr>) = match &e.kind {
            ExprKind::Binary { op, lhs, rhs } if !matches!(op, BinOp::And | BinOp::Or) => {
                let (op, rhs) = (*op, rhs.clone());
                (lhs, Box::new(move |l| Expr::new(ExprKind::Binary { op, lhs: Box::new(l), rhs: rhs.clone() }, e.span)))
            }
            ExprKind::InList { op, lhs, list } => {
                let (op, list) = (*op, list.clone());
                (lhs, Box::new(move |l| Expr::new(ExprKind::InList { op, lhs: Box::new(l), list: list.clone() }, e.span)))
            }
            _ => return None,
        };
        let inl = self.subst(lhs);
        let same = |a: &Expr, b: &Expr| kusto::expr_to_string(a) == kusto::expr_to_string(b);
        let (x, y) = match &inl.kind {
            ExprKind::Call { name, args } if matches!(name.name.as_str(), "iff" | "iif") && args.len() == 3 => match &args[0].kind {
                ExprKind::Call { name: t, args: a } if t.name == "isnotempty" && a.len() == 1 && same(&a[0], &args[1]) => (args[1].clone(), args[2].clone()),
                ExprKind::Call { name: t, args: a } if t.name == "isempty" && a.len() == 1 && same(&a[0], &args[2]) => (args[2].clone(), args[1].clone()),
                _ => return None,
            },
            ExprKind::Call { name, args } if name.name == "coalesce" && args.len() == 2 => (args[0].clone(), args[1].clone()),
            _ => return None,
        };
        // string values only: coalesce of strings skips empty ones, of other types only nulls
        self.field_in(&x, false).filter(FieldRef::textual)?;
        let call = |f: &str, a: Expr| Expr::new(ExprKind::Call { name: kusto::Ident { name: f.into(), span: e.span }, args: vec![a] }, e.span);
        let and = |a: Expr, b: Expr| Expr::new(ExprKind::Binary { op: BinOp::And, lhs: Box::new(a), rhs: Box::new(b) }, e.span);
        let left = and(call("isnotempty", x.clone()), rebuild(x.clone()));
        let right = and(call("isempty", x), rebuild(y));
        Some(Expr::new(ExprKind::Binary { op: BinOp::Or, lhs: Box::new(left), rhs: Box::new(right) }, e.span))
    }

    /// Does an inlined expression read an `mv-expand`ed element?
    fn refs_elem(&self, e: &Expr) -> bool {
        let mut found = false;
        fn walk(e: &Expr, names: &[String], found: &mut bool) {
            match &e.kind {
                ExprKind::Name(n) => *found |= names.contains(n),
                ExprKind::Call { args, .. } => args.iter().for_each(|a| walk(a, names, found)),
                ExprKind::Member { target, .. } => walk(target, names, found),
                ExprKind::Index { target, index } => {
                    walk(target, names, found);
                    walk(index, names, found);
                }
                ExprKind::Unary { operand, .. } => walk(operand, names, found),
                ExprKind::Binary { lhs, rhs, .. } => {
                    walk(lhs, names, found);
                    walk(rhs, names, found);
                }
                ExprKind::InList { lhs, list, .. } => {
                    walk(lhs, names, found);
                    list.iter().for_each(|a| walk(a, names, found));
                }
                ExprKind::Between { lhs, low, high, .. } => {
                    walk(lhs, names, found);
                    walk(low, names, found);
                    walk(high, names, found);
                }
                _ => {}
            }
        }
        let names: Vec<String> = self.elems.iter().map(|x| x.name.clone()).collect();
        walk(e, &names, &mut found);
        found
    }

    /// What an `mv-expand` expands (inlined): a field (raw path or inside an element), or
    /// `parse_json(tostring(field))` (JSON text decoded) followed by members → (field, decode,
    /// path).
    fn elem_source(&self, e: &Expr) -> Option<(String, bool, Vec<Seg>)> {
        let mut path = vec![];
        let mut cur = e;
        loop {
            match &cur.kind {
                ExprKind::Member { target, name } => {
                    path.push(Seg::Key(name.name.clone()));
                    cur = target;
                }
                ExprKind::Index { target, index } => {
                    match &index.kind {
                        ExprKind::Literal(Literal::String(k)) => path.push(Seg::Key(k.clone())),
                        ExprKind::Literal(Literal::Long(i)) => path.push(Seg::Index(*i)),
                        _ => break,
                    }
                    cur = target;
                }
                _ => break,
            }
        }
        path.reverse();
        if let ExprKind::Call { name, args } = &cur.kind
            && matches!(name.name.as_str(), "parse_json" | "todynamic")
            && let [a] = args.as_slice()
            && let ExprKind::Call { name: t, args: targs } = &a.kind
            && t.name == "tostring"
            && let [x] = targs.as_slice()
        {
            let f = self.field_in(x, false)?;
            if !matches!(f.form, Form::Dynamic | Form::Text | Form::Column(Kind::String)) {
                return None;
            }
            if path.iter().any(|s| matches!(s, Seg::Key(k) if fields::parse_path(k).is_err())) {
                return None;
            }
            return Some((f.path, true, path));
        }
        let f = self.field_in(e, false)?;
        (f.form == Form::Dynamic).then_some((f.path, false, vec![]))
    }

    /// `exists element i: c` said with `some` nodes: conjuncts that do not read the element
    /// move out, `or` distributes, the rest becomes `some` over the element.
    fn lift(&mut self, c: Value, i: usize) -> Result<Value, String> {
        let mut r = std::collections::BTreeSet::new();
        elem_refs(&c, &mut r);
        if !r.contains(&i) {
            return Ok(c);
        }
        if let Value::Object(o) = &c
            && o.len() == 1
        {
            if let Some(Value::Array(kids)) = o.get("all") {
                let (mut inside, mut outside) = (vec![], vec![]);
                for k in kids {
                    let mut r = std::collections::BTreeSet::new();
                    elem_refs(k, &mut r);
                    if r.contains(&i) { inside.push(k.clone()) } else { outside.push(k.clone()) }
                }
                outside.push(self.some_node(i, all(inside))?);
                return Ok(all(outside));
            }
            if let Some(Value::Array(kids)) = o.get("any") {
                let mut out = vec![];
                for k in kids {
                    let mut r = std::collections::BTreeSet::new();
                    elem_refs(k, &mut r);
                    if !r.contains(&i) {
                        let name = &self.elems[i].name;
                        let note = format!("note: a condition next to the `mv-expand {name}` tests also hold where `{name}` is an empty array; Kusto gives no row for an empty array, so the vendor rule then does not match");
                        if !self.parts.contains(&note) {
                            self.parts.push(note);
                        }
                    }
                    out.push(self.lift(k.clone(), i)?);
                }
                return Ok(any(out));
            }
        }
        self.some_node(i, c)
    }

    /// `some` over element `i` with condition `c` (every field in `c` must be in element `i`).
    fn some_node(&mut self, i: usize, mut c: Value) -> Result<Value, String> {
        let el = self.elems[i].clone();
        let mut fields_seen = vec![];
        collect_fields(&c, &mut fields_seen);
        for f in &fields_seen {
            match split_elem(f) {
                Some((j, _)) if j == i => {}
                _ => {
                    return Err(format!(
                        "a condition on the elements of `{}` also reads `{}` under `not`; the model cannot say it",
                        el.name,
                        split_elem(f).map_or(f.clone(), |(j, r)| format!("{}.{r}", self.elems[j].name))
                    ));
                }
            }
        }
        if has_event_level(&c) {
            return Err(format!("a condition on the elements of `{}` also tests the request's outcome under `not`; the model cannot say it", el.name));
        }
        let selfish = fields_seen.iter().any(|f| split_elem(f).is_some_and(|(_, r)| r.is_empty()));
        if selfish {
            // the elements are scalars compared as they are: `mv-expand Action | where Action == "*"`
            // is the model's array semantics on the field itself, when the test is positive
            if el.decode || !el.path.is_empty() || fields_seen.iter().any(|f| split_elem(f).is_some_and(|(_, r)| !r.is_empty())) {
                return Err(format!("the expanded elements of `{}` are tested both as values and by their fields; the model cannot say it", el.name));
            }
            if has_negation(&c) {
                return Err(format!("a negated test on the expanded values of `{}` (no element may match) cannot be said as a field test", el.name));
            }
            rename_fields(&mut c, &|_| Some(el.field.clone()));
            return Ok(c);
        }
        rename_fields(&mut c, &|f| split_elem(f).map(|(_, r)| r.to_string()));
        let note = format!("note: where `{}` is one object rather than an array (AWS accepts both for a policy's Statement), Kusto's mv-expand splits it into its properties, so the vendor rule never tests it as one element; the canonical `some` does", el.name);
        if !self.parts.contains(&note) {
            self.parts.push(note);
        }
        if has_negation(&c) {
            let note = format!("note: where `{}` is absent, Kusto's mv-expand gives one row with a null element, on which a negated test holds; the canonical `some` has no element there", el.name);
            if !self.parts.contains(&note) {
                self.parts.push(note);
            }
        }
        let mut m = Map::new();
        m.insert("field".into(), json!(el.field));
        if el.decode {
            m.insert("decode".into(), json!("json"));
        }
        if !el.path.is_empty() {
            m.insert("path".into(), json!(fields::seg_path(&el.path)));
        }
        m.insert("where".into(), c);
        Ok(json!({ "some": m }))
    }

    /// Inline bound names, scalar lets and lists: the expression then reads only table columns.
    fn subst(&self, e: &Expr) -> Expr {
        let b = |x: &Expr| Box::new(self.subst(x));
        let kind = match &e.kind {
            ExprKind::Name(n) => {
                if let Some(bd) = self.env.get(n) {
                    return bd.expr.clone();
                }
                match self.lets.get(n) {
                    Some(Let::List(v)) => {
                        ExprKind::Literal(Literal::Dynamic(Value::Array(v.clone())))
                    }
                    Some(Let::Scalar(x)) => return x.clone(),
                    _ => ExprKind::Name(n.clone()),
                }
            }
            ExprKind::Call { name, args } => ExprKind::Call {
                name: name.clone(),
                args: args.iter().map(|a| self.subst(a)).collect(),
            },
            ExprKind::Member { target, name } => ExprKind::Member {
                target: b(target),
                name: name.clone(),
            },
            ExprKind::Index { target, index } => ExprKind::Index {
                target: b(target),
                index: b(index),
            },
            ExprKind::Unary { op, operand } => ExprKind::Unary {
                op: *op,
                operand: b(operand),
            },
            ExprKind::Binary { op, lhs, rhs } => ExprKind::Binary {
                op: *op,
                lhs: b(lhs),
                rhs: b(rhs),
            },
            ExprKind::InList { op, lhs, list } => ExprKind::InList {
                op: *op,
                lhs: b(lhs),
                list: list.iter().map(|a| self.subst(a)).collect(),
            },
            ExprKind::Between {
                negated,
                lhs,
                low,
                high,
            } => ExprKind::Between {
                negated: *negated,
                lhs: b(lhs),
                low: b(low),
                high: b(high),
            },
            other => other.clone(),
        };
        Expr::new(kind, e.span)
    }

    /// The first name in an inlined expression that is not a table column.
    fn foreign_name(e: &Expr) -> Option<(String, usize)> {
        let mut out = None;
        fn walk(e: &Expr, out: &mut Option<(String, usize)>) {
            if out.is_some() {
                return;
            }
            match &e.kind {
                ExprKind::Name(n) => {
                    if !is_table_column(n) {
                        *out = Some((n.clone(), e.span.start));
                    }
                }
                ExprKind::Call { args, .. } => args.iter().for_each(|a| walk(a, out)),
                ExprKind::Member { target, .. } => walk(target, out),
                ExprKind::Index { target, index } => {
                    walk(target, out);
                    walk(index, out);
                }
                ExprKind::Unary { operand, .. } => walk(operand, out),
                ExprKind::Binary { lhs, rhs, .. } => {
                    walk(lhs, out);
                    walk(rhs, out);
                }
                ExprKind::InList { lhs, list, .. } => {
                    walk(lhs, out);
                    list.iter().for_each(|a| walk(a, out));
                }
                ExprKind::Between { lhs, low, high, .. } => {
                    walk(lhs, out);
                    walk(low, out);
                    walk(high, out);
                }
                ExprKind::Pipe { .. }
                | ExprKind::Print(_)
                | ExprKind::DataTable { .. }
                | ExprKind::ExternalData { .. }
                | ExprKind::Unsupported { .. } => {
                    *out = Some(("a tabular expression".into(), e.span.start));
                }
                ExprKind::Literal(_) | ExprKind::Star => {}
            }
        }
        walk(e, &mut out);
        out
    }

    /// Keep a predicate as opaque KQL (inlined so it reads only table columns), or refuse.
    fn opaque(&mut self, e: &Expr, reason: &str) -> Result<Value, Box<Diagnostic>> {
        let inl = self.subst(e);
        if let Some((n, _)) = Self::foreign_name(&inl) {
            return Err(self.refuse(
                format!("`{}` cannot be structured ({reason}) and reads `{n}`, which is not an AWSCloudTrail column, so it cannot be kept as opaque KQL either", self.src(e)),
                e.span.start,
            ));
        }
        let text = kusto::expr_to_string(&inl);
        self.parts.push(format!("detection: {text}: {reason}"));
        Ok(json!({"opaque": {"lang": "kql", "text": text, "reason": reason}}))
    }

    /// A `where` predicate → a condition node. `neg`: under an odd number of `not`s.
    fn cond(&mut self, e: &Expr, neg: bool) -> Result<Value, Box<Diagnostic>> {
        match &e.kind {
            ExprKind::Binary {
                op: BinOp::And,
                lhs,
                rhs,
            } => {
                let mut kids = vec![];
                for k in [lhs, rhs] {
                    match self.cond(k, neg)? {
                        Value::Object(o) if o.len() == 1 && o.contains_key("all") => {
                            if let Some(Value::Array(a)) = o.get("all") {
                                kids.extend(a.iter().cloned());
                            }
                        }
                        v => kids.push(v),
                    }
                }
                Ok(all(kids))
            }
            ExprKind::Binary {
                op: BinOp::Or,
                lhs,
                rhs,
            } => {
                let mut kids = vec![];
                for k in [lhs, rhs] {
                    match self.cond(k, neg)? {
                        Value::Object(o) if o.len() == 1 && o.contains_key("any") => {
                            if let Some(Value::Array(a)) = o.get("any") {
                                kids.extend(a.iter().cloned());
                            }
                        }
                        v => kids.push(v),
                    }
                }
                Ok(any(kids))
            }
            ExprKind::Call { name, args } if name.name == "not" && args.len() == 1 => {
                let Some(a) = args.first() else {
                    return self.opaque(e, "not() without an argument");
                };
                Ok(not(self.cond(a, !neg)?))
            }
            _ => {
                if let Some(split) = self.split_choice(e) {
                    return self.cond(&split, neg);
                }
                match self.leaf(e, neg) {
                    Ok(v) => Ok(v),
                    Err((why, _)) => self.opaque(e, &why),
                }
            }
        }
    }

    /// A field expression as written (bound names followed) → its raw path and how it is read.
    fn field(&self, e: &Expr) -> Option<FieldRef> {
        self.field_in(e, true)
    }

    /// [`St::field`]; `env: false` for inlined expressions, whose names are table columns.
    fn field_in(&self, e: &Expr, env: bool) -> Option<FieldRef> {
        match &e.kind {
            ExprKind::Name(n) if self.elems.iter().any(|x| &x.name == n) && !(env && self.env.contains_key(n)) => {
                let i = self.elems.iter().rposition(|x| &x.name == n)?;
                Some(FieldRef {
                    path: elem_path(i, ""),
                    form: Form::Dynamic,
                })
            }
            ExprKind::Name(n) => {
                if let Some(b) = self.env.get(n).filter(|_| env) {
                    return self.field_in(&b.expr, false);
                }
                let (path, kind, _) = column_row(n)?;
                fields::resolve(&path).ok()?;
                Some(FieldRef {
                    path,
                    form: Form::Column(kind),
                })
            }
            ExprKind::Call { name, args } if args.len() == 1 => {
                let a = args.first()?;
                match name.name.as_str() {
                    "tostring" => {
                        let f = self.field_in(a, env)?;
                        Some(FieldRef {
                            path: f.path,
                            form: Form::Text,
                        })
                    }
                    "parse_json" | "todynamic" => {
                        // parse_json of a JSON-string column, or of a value already dynamic
                        let f = self.field_in(a, env)?;
                        match f.form {
                            Form::Dynamic => Some(f),
                            Form::Column(_) => {
                                let col = match &a.kind {
                                    ExprKind::Name(n) if !(env && self.env.contains_key(n)) => {
                                        n.clone()
                                    }
                                    _ => return None,
                                };
                                let (_, _, json_col) = column_row(&col)?;
                                json_col.then_some(FieldRef {
                                    path: f.path,
                                    form: Form::Dynamic,
                                })
                            }
                            // parse_json(tostring(parse_json(RequestParameters))): the text of a
                            // whole JSON column parsed back, the same object
                            Form::Text if fields::all().iter().any(|r| r.path == f.path && r.col("sentinel").starts_with("json:")) => Some(FieldRef {
                                path: f.path,
                                form: Form::Dynamic,
                            }),
                            // parse_json(tostring(x)) of a value inside a JSON column: the same
                            // object where x is one (as CloudTrail writes these parameters)
                            Form::Text if fields::resolve(&f.path).is_ok_and(|r| matches!(r.maps.sentinel, Mapping::Nested { .. })) => {
                                let note = format!("note: `parse_json(tostring(...))` of `{}` reads the fields of the object it holds; where it holds JSON text instead, Kusto decodes it and the canonical path does not", f.path);
                                let mut notes = self.field_notes.borrow_mut();
                                if !notes.contains(&note) {
                                    notes.push(note);
                                }
                                Some(FieldRef { path: f.path, form: Form::Dynamic })
                            }
                            Form::Text => None,
                        }
                    }
                    _ => None,
                }
            }
            ExprKind::Member { target, name } => {
                let f = self.field_in(target, env)?;
                (f.form == Form::Dynamic).then_some(())?;
                self.sub(f.path, Seg::Key(name.name.clone()))
            }
            ExprKind::Index { target, index } => {
                let f = self.field_in(target, env)?;
                (f.form == Form::Dynamic).then_some(())?;
                match &index.kind {
                    ExprKind::Literal(Literal::Long(i)) => self.sub(f.path, Seg::Index(*i)),
                    ExprKind::Literal(Literal::String(s)) => self.sub(f.path, Seg::Key(s.clone())),
                    ExprKind::Unary {
                        op: kusto::UnaryOp::Neg,
                        operand,
                    } => match &operand.kind {
                        ExprKind::Literal(Literal::Long(i)) => self.sub(f.path, Seg::Index(-*i)),
                        _ => None,
                    },
                    _ => None,
                }
            }
            _ => None,
        }
    }

    fn sub(&self, base: String, seg: Seg) -> Option<FieldRef> {
        if let Some((i, rel)) = split_elem(&base) {
            // inside an element: any path (elements are free-form JSON)
            let rel = if rel.is_empty() {
                match &seg {
                    Seg::Key(k) => k.clone(),
                    Seg::Index(_) => return None,
                }
            } else {
                path_of(rel, std::slice::from_ref(&seg))
            };
            fields::parse_path(&rel).ok()?;
            return Some(FieldRef {
                path: elem_path(i, &rel),
                form: Form::Dynamic,
            });
        }
        let path = path_of(&base, std::slice::from_ref(&seg));
        let f = fields::resolve(&path).ok()?;
        matches!(f.maps.sentinel, Mapping::Nested { .. }).then_some(FieldRef {
            path,
            form: Form::Dynamic,
        })
    }

    /// Values of an `in` list: literals, `let` lists (→ `list: NAME` when it is the only item).
    fn list_values(&mut self, list: &[Expr]) -> Result<(Vec<Value>, Option<String>), Why> {
        if let [one] = list
            && let ExprKind::Name(n) = &one.kind
            && let Some(Let::List(v)) = self.lets.get(n)
            && v.iter().all(Value::is_string)
        {
            return Ok((v.clone(), Some(n.clone())));
        }
        let mut out = vec![];
        for x in list {
            match &x.kind {
                ExprKind::Literal(Literal::Dynamic(Value::Array(a))) => {
                    out.extend(a.iter().cloned())
                }
                ExprKind::Literal(l) => out.push(
                    scalar_json(l).ok_or(("a non-scalar list item".to_string(), x.span.start))?,
                ),
                ExprKind::Name(n) => match self.lets.get(n) {
                    Some(Let::List(v)) => out.extend(v.iter().cloned()),
                    Some(Let::Scalar(Expr {
                        kind: ExprKind::Literal(l),
                        ..
                    })) => out.push(
                        scalar_json(l)
                            .ok_or(("a non-scalar list item".to_string(), x.span.start))?,
                    ),
                    _ => return Err((format!("`{n}` is not a list of values"), x.span.start)),
                },
                _ => return Err(("a computed list item".into(), x.span.start)),
            }
        }
        if out.iter().any(|v| !v.is_string()) {
            return Err((
                "a list with non-string items".into(),
                list.first().map_or(0, |x| x.span.start),
            ));
        }
        Ok((out, None))
    }

    fn literal(&self, e: &Expr) -> Option<Value> {
        match &e.kind {
            ExprKind::Literal(l) => scalar_json(l),
            ExprKind::Name(n) => match self.lets.get(n) {
                Some(Let::Scalar(Expr {
                    kind: ExprKind::Literal(l),
                    ..
                })) => scalar_json(l),
                _ => None,
            },
            ExprKind::Unary {
                op: kusto::UnaryOp::Neg,
                operand,
            } => match &operand.kind {
                ExprKind::Literal(Literal::Long(n)) => Some(json!(-n)),
                ExprKind::Literal(Literal::Real(f)) => {
                    serde_json::Number::from_f64(-f).map(Value::Number)
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// One comparison → a predicate (or why it cannot be one exactly).
    fn leaf(&mut self, e: &Expr, neg: bool) -> Result<Value, Why> {
        let at = e.span.start;
        let no = |why: &str| -> Why { (why.to_string(), at) };
        match &e.kind {
            ExprKind::Binary {
                op: op @ (BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge),
                lhs,
                rhs,
            } => {
                if neg {
                    return Err(no(
                        "a numeric comparison under `not` (Kusto's null differs from the model's false)",
                    ));
                }
                let n = self
                    .literal(rhs)
                    .filter(Value::is_number)
                    .ok_or_else(|| no("the right side is not a number"))?;
                let inl = self.subst(lhs);
                let (inner, truncates) = match &inl.kind {
                    ExprKind::Call { name, args } if name.name == "toreal" || name.name == "todouble" => {
                        (args.first().and_then(|a| self.field_in(a, false)), false)
                    }
                    ExprKind::Call { name, args } if (name.name == "toint" || name.name == "tolong") && n.is_i64() => {
                        (args.first().and_then(|a| self.field_in(a, false)), true)
                    }
                    _ => return Err(no("a numeric comparison without toreal(), toint() or tolong() (dynamic and string values compare by type)")),
                };
                let inner = inner.ok_or_else(|| no("the compared value is not a field"))?;
                if !truncates {
                    let o = match op {
                        BinOp::Lt => "lt",
                        BinOp::Le => "le",
                        BinOp::Gt => "gt",
                        _ => "ge",
                    };
                    return Ok(pred(&inner.path, o, vec![n], false));
                }
                // toint/tolong truncate toward zero: trunc(x) > n is x >= n + 1 for n >= 0 and
                // x > n below (and likewise for the other operators), exactly
                let k = n.as_i64().unwrap_or_default();
                let (o, m) = match op {
                    BinOp::Gt if k >= 0 => ("ge", k + 1),
                    BinOp::Gt => ("gt", k),
                    BinOp::Ge if k > 0 => ("ge", k),
                    BinOp::Ge => ("gt", k - 1),
                    BinOp::Lt if k > 0 => ("lt", k),
                    BinOp::Lt => ("le", k - 1),
                    BinOp::Le if k >= 0 => ("lt", k + 1),
                    _ => ("le", k),
                };
                self.parts.push(format!("note: `{}`: a JSON number is truncated toward zero, said exactly here; text that is not an integer (\"1.5\") or a number beyond the type's range gives null in Kusto, where the canonical comparison still compares the number", self.src(e)));
                Ok(pred(&inner.path, o, vec![json!(m)], false))
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let f = self.field(lhs).ok_or_else(|| {
                    no("the left side is not a CloudTrail field the taxonomy knows")
                })?;
                use BinOp as B;
                let string_op: Option<(&str, bool, bool)> = match op {
                    B::Contains => Some(("contains", true, false)),
                    B::NotContains => Some(("contains", true, true)),
                    B::ContainsCs => Some(("contains", false, false)),
                    B::NotContainsCs => Some(("contains", false, true)),
                    B::StartsWith => Some(("startswith", true, false)),
                    B::NotStartsWith => Some(("startswith", true, true)),
                    B::StartsWithCs => Some(("startswith", false, false)),
                    B::NotStartsWithCs => Some(("startswith", false, true)),
                    B::EndsWith => Some(("endswith", true, false)),
                    B::NotEndsWith => Some(("endswith", true, true)),
                    B::EndsWithCs => Some(("endswith", false, false)),
                    B::NotEndsWithCs => Some(("endswith", false, true)),
                    _ => None,
                };
                if let Some((cop, ci, negate)) = string_op {
                    let v = string_lit(rhs).map(str::to_string).or_else(|| {
                        self.literal(rhs)
                            .and_then(|v| v.as_str().map(str::to_string))
                    });
                    let v = v.ok_or_else(|| no("the right side is not a string"))?;
                    if !matches!(
                        f.form,
                        Form::Text | Form::Dynamic | Form::Column(Kind::String)
                    ) {
                        return Err(no("a string operator on a non-string column"));
                    }
                    let p = pred(&f.path, cop, vec![json!(v)], ci);
                    return Ok(if negate { not(p) } else { p });
                }
                let term: Option<(bool, bool, bool, bool)> = match op {
                    // (insensitive, left boundary, right boundary, negated)
                    B::Has => Some((true, true, true, false)),
                    B::NotHas => Some((true, true, true, true)),
                    B::HasCs => Some((false, true, true, false)),
                    B::NotHasCs => Some((false, true, true, true)),
                    B::HasPrefix => Some((true, true, false, false)),
                    B::NotHasPrefix => Some((true, true, false, true)),
                    B::HasPrefixCs => Some((false, true, false, false)),
                    B::NotHasPrefixCs => Some((false, true, false, true)),
                    B::HasSuffix => Some((true, false, true, false)),
                    B::NotHasSuffix => Some((true, false, true, true)),
                    B::HasSuffixCs => Some((false, false, true, false)),
                    B::NotHasSuffixCs => Some((false, false, true, true)),
                    _ => None,
                };
                if let Some((ci, l, r, negate)) = term {
                    let v =
                        string_lit(rhs).ok_or_else(|| no("the term is not a string literal"))?;
                    if v.is_empty() || !v.chars().any(char::is_alphanumeric) {
                        return Err(no("a term match on a needle with no letters or digits"));
                    }
                    if !matches!(
                        f.form,
                        Form::Text | Form::Dynamic | Form::Column(Kind::String)
                    ) {
                        return Err(no("a term match on a non-string column"));
                    }
                    let p = pred(&f.path, "regex", vec![json!(term_regex(v, l, r))], ci);
                    return Ok(if negate { not(p) } else { p });
                }
                match op {
                    B::Eq | B::Ne | B::EqCi | B::NeCi => {
                        let ci = matches!(op, B::EqCi | B::NeCi);
                        let negate = matches!(op, B::Ne | B::NeCi);
                        let v = self
                            .literal(rhs)
                            .ok_or_else(|| no("the right side is not a constant"))?;
                        let p = match (&v, &f.form) {
                            (Value::String(s), _) if s.is_empty() && f.textual() => {
                                pred(&f.path, "empty", vec![], false)
                            }
                            (Value::String(_), _) if f.textual() => {
                                pred(&f.path, "eq", vec![v.clone()], ci)
                            }
                            // a dynamic value compared with text that no number, boolean or
                            // null is written as: Kusto's typed comparison is the text one
                            (Value::String(t), Form::Dynamic) if !scalar_text(t) => {
                                pred(&f.path, "eq", vec![v.clone()], ci)
                            }
                            // text a number or boolean is written as: the same where the value
                            // is a JSON string (how CloudTrail writes such parameters)
                            (Value::String(t), Form::Dynamic) => {
                                self.parts.push(format!("note: `{}` compares a JSON value with the text \"{t}\" by type in Kusto (a JSON number or boolean written so does not match); the canonical comparison is on the text, so it also matches those", self.src(e)));
                                pred(&f.path, "eq", vec![v.clone()], ci)
                            }
                            (Value::Bool(b), Form::Dynamic) if !ci => {
                                self.parts.push(format!("note: `{}` matches a JSON boolean {b}; the canonical comparison also matches the string \"{b}\"", self.src(e)));
                                pred(&f.path, "eq", vec![v.clone()], false)
                            }
                            (Value::String(_), _) => {
                                return Err(no(
                                    "compares a non-text value with a string (Kusto's typed comparison differs from the model's text comparison)",
                                ));
                            }
                            _ => return Err(no("compares with a non-string constant")),
                        };
                        Ok(if negate { not(p) } else { p })
                    }
                    B::MatchesRegex => {
                        let v = string_lit(rhs)
                            .ok_or_else(|| no("the pattern is not a string literal"))?;
                        if !matches!(
                            f.form,
                            Form::Text | Form::Dynamic | Form::Column(Kind::String)
                        ) {
                            return Err(no("a regex on a non-string column"));
                        }
                        if regex::Regex::new(v).is_err() {
                            return Err(no(
                                "the pattern does not compile as a regular expression here",
                            ));
                        }
                        Ok(pred(&f.path, "regex", vec![json!(v)], false))
                    }
                    _ => Err(no("an operator the model has no predicate for")),
                }
            }
            ExprKind::InList { op, lhs, list } => {
                let f = self.field(lhs).ok_or_else(|| {
                    no("the left side is not a CloudTrail field the taxonomy knows")
                })?;
                let (vals, name) = self.list_values(list)?;
                match op {
                    ListOp::In | ListOp::NotIn | ListOp::InCi | ListOp::NotInCi => {
                        if !f.textual() && !(f.form == Form::Dynamic && vals.iter().all(|v| v.as_str().is_some_and(|t| !scalar_text(t)))) {
                            return Err(no("`in` on a non-text value (Kusto compares by type)"));
                        }
                        let ci = matches!(op, ListOp::InCi | ListOp::NotInCi);
                        let mut p = pred(&f.path, "in", vec![], ci);
                        if let (Some(n), Value::Object(o)) = (&name, &mut p) {
                            o.shift_remove("case");
                            o.insert("list".into(), json!(n));
                            if ci {
                                o.insert("case".into(), json!("insensitive"));
                            }
                            self.used_lists.push(n.clone());
                        } else if let Value::Object(o) = &mut p {
                            o.shift_remove("case");
                            o.insert("values".into(), Value::Array(vals));
                            if ci {
                                o.insert("case".into(), json!("insensitive"));
                            }
                        }
                        Ok(if matches!(op, ListOp::NotIn | ListOp::NotInCi) {
                            not(p)
                        } else {
                            p
                        })
                    }
                    ListOp::HasAny | ListOp::HasAll => {
                        if !matches!(
                            f.form,
                            Form::Text | Form::Dynamic | Form::Column(Kind::String)
                        ) {
                            return Err(no("a term match on a non-string column"));
                        }
                        let mut preds = vec![];
                        for v in &vals {
                            let s = v.as_str().unwrap_or_default();
                            if s.is_empty() || !s.chars().any(char::is_alphanumeric) {
                                return Err(no(
                                    "a term match on a needle with no letters or digits",
                                ));
                            }
                            preds.push(json!(term_regex(s, true, true)));
                        }
                        if preds.is_empty() {
                            return Err(no("an empty term list"));
                        }
                        if *op == ListOp::HasAny {
                            Ok(pred(&f.path, "regex", preds, true))
                        } else {
                            Ok(all(preds
                                .into_iter()
                                .map(|r| pred(&f.path, "regex", vec![r], true))
                                .collect()))
                        }
                    }
                }
            }
            ExprKind::Call { name, args } => {
                let fname = name.name.as_str();
                let arg = args.first().ok_or_else(|| no("a call without arguments"))?;
                match fname {
                    "isempty" | "isnotempty" => {
                        let f = self.field(arg).ok_or_else(|| {
                            no("the argument is not a CloudTrail field the taxonomy knows")
                        })?;
                        if matches!(f.form, Form::Column(k) if k != Kind::String) {
                            return Err(no("isempty of a typed (non-string) column"));
                        }
                        Ok(pred(
                            &f.path,
                            "empty",
                            if fname == "isempty" {
                                vec![]
                            } else {
                                vec![json!(false)]
                            },
                            false,
                        ))
                    }
                    "isnull" | "isnotnull" => {
                        let f = self.field(arg).ok_or_else(|| {
                            no("the argument is not a CloudTrail field the taxonomy knows")
                        })?;
                        if f.form != Form::Dynamic {
                            return Err(no("isnull of a column (string columns are never null)"));
                        }
                        Ok(pred(
                            &f.path,
                            "exists",
                            if fname == "isnotnull" {
                                vec![]
                            } else {
                                vec![json!(false)]
                            },
                            false,
                        ))
                    }
                    "ipv4_is_in_range" | "ipv4_is_in_any_range" => {
                        if neg {
                            return Err(no(
                                "an IP range test under `not` (Kusto's null for a non-address differs from the model's false)",
                            ));
                        }
                        let f = self.field(arg).ok_or_else(|| {
                            no("the address is not a CloudTrail field the taxonomy knows")
                        })?;
                        if !f.textual() {
                            return Err(no("an IP range test on a non-text value"));
                        }
                        let rest: Vec<Expr> = args.iter().skip(1).cloned().collect();
                        let (vals, _) = self.list_values(&rest)?;
                        if vals.is_empty()
                            || vals.iter().any(|v| {
                                v.as_str()
                                    .is_none_or(|s| s.contains(':') || !s.contains('/'))
                            })
                        {
                            return Err(no("the ranges are not IPv4 CIDR blocks"));
                        }
                        Ok(pred(&f.path, "cidr", vals, false))
                    }
                    _ => Err(no(&format!("`{fname}()` has no predicate in the model"))),
                }
            }
            _ => Err(no("not a comparison the model can say")),
        }
    }

    /// `where Count > N` / `Count >= N` after the summarize → N (more than N events).
    fn threshold(&self, e: &Expr, count: Option<&str>) -> Option<u64> {
        let ExprKind::Binary { op, lhs, rhs } = &e.kind else {
            return None;
        };
        let ExprKind::Name(n) = &lhs.kind else {
            return None;
        };
        if Some(n.as_str()) != count {
            return None;
        }
        let v = self.literal(rhs)?.as_u64()?;
        match op {
            BinOp::Gt => Some(v),
            BinOp::Ge if v >= 1 => Some(v - 1),
            _ => None,
        }
    }

    /// A name as the alert sees it at the end: a derived name, or a column's raw path.
    fn alert_ref(&self, col: &str) -> Option<String> {
        match self.env.get(col) {
            Some(b) if b.derived => Some(col.to_string()),
            Some(_) => None,
            None => {
                let (path, _, _) = column_row(col)?;
                Some(path)
            }
        }
    }

    /// A derived-field expression (canonical), or why not.
    fn derive_expr(&self, e: &Expr) -> Option<Value> {
        match &e.kind {
            ExprKind::Literal(Literal::String(s)) => Some(json!({"const": s})),
            ExprKind::Name(n) => match self.env.get(n) {
                Some(b) if b.derived => Some(json!({"ref": n})),
                Some(_) => None,
                None => self.field(e).map(|f| json!({"ref": f.path})),
            },
            ExprKind::Call { name, args } => {
                let f = name.name.as_str();
                match (f, args.as_slice()) {
                    ("tostring", [a]) => {
                        if let Some(x) = self.split_expr(a) {
                            return Some(x);
                        }
                        match &a.kind {
                            ExprKind::Name(_) => self.derive_expr(a),
                            _ => self.field(e).map(|f| json!({"ref": f.path})),
                        }
                    }
                    ("iif" | "iff", [c, t, el]) => self.iif(c, t, el),
                    // a number read from a JSON value: the same text unless it has a fraction
                    ("toint" | "tolong" | "toreal" | "todouble", [a]) => self.field(a).filter(|f| f.form == Form::Dynamic).map(|f| json!({"ref": f.path})),
                    // substring(x, indexof(x, ":") + 1): after the first ":" (all of x without one)
                    ("substring", [x, start]) => {
                        let ExprKind::Binary { op: BinOp::Add, lhs, rhs } = &start.kind else { return None };
                        if !matches!(rhs.kind, ExprKind::Literal(Literal::Long(1))) {
                            return None;
                        }
                        let ExprKind::Call { name: f2, args: a2 } = &lhs.kind else { return None };
                        let [x2, sep] = a2.as_slice() else { return None };
                        let sep = string_lit(sep)?;
                        let one_char = sep.chars().count() == 1;
                        let literal = match f2.name.as_str() {
                            "indexof" => true,
                            "indexof_regex" => regex::escape(sep) == sep,
                            _ => false,
                        };
                        if !one_char || !literal || kusto::expr_to_string(x) != kusto::expr_to_string(x2) {
                            return None;
                        }
                        Some(json!({"after_first": {"of": self.derive_expr(x)?, "sep": sep}}))
                    }
                    ("case", _) if args.len() >= 3 && args.len() % 2 == 1 => {
                        let mut when = vec![];
                        let mut i = 0;
                        while i + 1 < args.len() {
                            let (c, t) = (args.get(i)?, args.get(i + 1)?);
                            let test = match &c.kind {
                                ExprKind::Binary {
                                    op: BinOp::Eq,
                                    lhs,
                                    rhs,
                                } => {
                                    json!({"eq": {"of": self.ref_name(lhs)?, "value": string_lit(rhs)?}})
                                }
                                ExprKind::Call { name, args }
                                    if name.name == "isempty" && args.len() == 1 =>
                                {
                                    json!({"empty": self.ref_name(args.first()?)?})
                                }
                                _ => return None,
                            };
                            when.push(json!({"if": test, "then": self.derive_expr(t)?}));
                            i += 2;
                        }
                        let el = self.derive_expr(args.last()?)?;
                        Some(json!({"case": {"when": when, "else": el}}))
                    }
                    ("coalesce", _) if args.len() >= 2 => {
                        let items: Option<Vec<Value>> =
                            args.iter().map(|a| self.derive_expr(a)).collect();
                        Some(json!({"coalesce": items?}))
                    }
                    _ => self.field(e).map(|f| json!({"ref": f.path})),
                }
            }
            ExprKind::Index { .. } => self
                .split_expr(e)
                .or_else(|| self.field(e).map(|f| json!({"ref": f.path}))),
            _ => self.field(e).map(|f| json!({"ref": f.path})),
        }
    }

    /// A field path or derived name for `case` tests.
    fn ref_name(&self, e: &Expr) -> Option<String> {
        match self.derive_expr(e)? {
            Value::Object(o) => o.get("ref").and_then(Value::as_str).map(str::to_string),
            _ => None,
        }
    }

    /// `split(x, "sep")[i]` → `{split: {of, sep, index}}`.
    fn split_expr(&self, e: &Expr) -> Option<Value> {
        let ExprKind::Index { target, index } = &e.kind else {
            return None;
        };
        let ExprKind::Call { name, args } = &target.kind else {
            return None;
        };
        if name.name != "split" || args.len() != 2 {
            return None;
        }
        let i = match &index.kind {
            ExprKind::Literal(Literal::Long(i)) => *i,
            ExprKind::Unary {
                op: kusto::UnaryOp::Neg,
                operand,
            } => match &operand.kind {
                ExprKind::Literal(Literal::Long(i)) => -*i,
                _ => return None,
            },
            _ => return None,
        };
        let of = self.derive_expr(args.first()?)?;
        let sep = string_lit(args.get(1)?)?;
        Some(json!({"split": {"of": of, "sep": sep, "index": i}}))
    }

    /// `iif(...)` shapes the renderer writes: coalesce, before, after.
    fn iif(&self, c: &Expr, t: &Expr, el: &Expr) -> Option<Value> {
        let same = |a: &Expr, b: &Expr| kusto::expr_to_string(a) == kusto::expr_to_string(b);
        match &c.kind {
            // iif(isempty(x), y, x) / iff(isnotempty(x), x, y) → coalesce [x, y]
            ExprKind::Call { name, args } if args.len() == 1 => {
                let x = args.first()?;
                let (first, second) = match name.name.as_str() {
                    "isempty" if same(x, el) => (el, t),
                    "isnotempty" if same(x, t) => (t, el),
                    _ => return None,
                };
                let a = self.derive_expr(first)?;
                let b = self.derive_expr(second)?;
                let mut items = vec![a];
                match b {
                    Value::Object(o) if o.contains_key("coalesce") => {
                        if let Some(Value::Array(more)) = o.get("coalesce") {
                            items.extend(more.iter().cloned());
                        }
                    }
                    other => items.push(other),
                }
                Some(json!({"coalesce": items}))
            }
            // iif(x contains "@", tostring(split(x, '@', 0)[0]), x) → before
            // iif(x contains "@", tostring(split(x, '@', 1)[0]), "") → after
            ExprKind::Binary {
                op: BinOp::Contains,
                lhs,
                rhs,
            } => {
                let sep = string_lit(rhs)?;
                let ExprKind::Call { name, args } = &t.kind else {
                    return None;
                };
                if name.name != "tostring" || args.len() != 1 {
                    return None;
                }
                let ExprKind::Index { target, index } = &args.first()?.kind else {
                    return None;
                };
                if !matches!(index.kind, ExprKind::Literal(Literal::Long(0))) {
                    return None;
                }
                let ExprKind::Call { name, args } = &target.kind else {
                    return None;
                };
                if name.name != "split" || args.len() != 3 {
                    return None;
                }
                let (x, s, k) = (args.first()?, args.get(1)?, args.get(2)?);
                if !same(x, lhs) || string_lit(s)? != sep {
                    return None;
                }
                let of = self.derive_expr(x)?;
                match (&k.kind, &el.kind) {
                    (ExprKind::Literal(Literal::Long(0)), _) if same(el, x) => {
                        Some(json!({"before": {"of": of, "sep": sep}}))
                    }
                    (
                        ExprKind::Literal(Literal::Long(1)),
                        ExprKind::Literal(Literal::String(e)),
                    ) if e.is_empty() => Some(json!({"after": {"of": of, "sep": sep}})),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// One `extend` → one derive step; assignments the model cannot say are named and left out.
    fn extend(&mut self, assigns: &[Assign], op_src: &str) -> Map<String, Value> {
        let mut step = Map::new();
        for a in assigns {
            let Some(name) = &a.name else {
                self.parts.push(format!(
                    "metadata: an unnamed column in `{op_src}` is not carried"
                ));
                continue;
            };
            let d = if crate::load::is_identifier(&name.name) {
                self.derive_expr(&a.value)
            } else {
                None
            };
            let inl = self.subst(&a.value);
            if d.is_some()
                && let ExprKind::Call { name: f, .. } = &a.value.kind
                && matches!(f.name.as_str(), "toint" | "tolong" | "toreal" | "todouble")
            {
                self.parts.push(format!(
                    "note: `{} = {}` is imported as the field's text: a number with a fraction keeps it (toint would cut it), and an absent value reads as \"\" (an alert field only)",
                    name.name,
                    self.src(&a.value)
                ));
            }
            match d {
                Some(v) if !step.contains_key(&name.name) => {
                    step.insert(name.name.clone(), v);
                    self.env.insert(
                        name.name.clone(),
                        Bound {
                            expr: inl,
                            derived: true,
                        },
                    );
                }
                _ => {
                    self.parts.push(format!(
                        "metadata: `{} = {}` has no derive expression in the model (left out)",
                        name.name,
                        self.src(&a.value)
                    ));
                    self.env.insert(
                        name.name.clone(),
                        Bound {
                            expr: inl,
                            derived: false,
                        },
                    );
                }
            }
        }
        step
    }

    /// `summarize count(), min(x), max(x) by a, b` → `aggregate` and the count's column name.
    fn summarize(
        &self,
        aggregates: &[Assign],
        by: &[Assign],
    ) -> Result<(Map<String, Value>, Option<String>), Why> {
        let mut measures = Map::new();
        let mut count = None;
        for a in aggregates {
            let at = a.value.span.start;
            let ExprKind::Call { name, args } = &a.value.kind else {
                return Err((
                    format!("`{}` is not an aggregate the model has", self.src(&a.value)),
                    at,
                ));
            };
            let (m, default) = match (name.name.as_str(), args.as_slice()) {
                ("count", []) => (json!("count"), "count_".to_string()),
                ("min" | "max", [x]) => {
                    let r = match &x.kind {
                        ExprKind::Name(n) => self.alert_ref(n),
                        _ => None,
                    }
                    .ok_or_else(|| {
                        (
                            format!("`{}` is not a field or derived name", self.src(x)),
                            x.span.start,
                        )
                    })?;
                    (
                        json!({ name.name.clone(): r }),
                        format!("{}_{}", name.name, self.src(x)),
                    )
                }
                (other, _) => {
                    return Err((
                        format!("`{other}()` is not an aggregate the model has (count, min, max)"),
                        at,
                    ));
                }
            };
            let out = a.name.as_ref().map_or(default, |n| n.name.clone());
            if m == json!("count") {
                count = Some(out.clone());
            }
            if !crate::load::is_identifier(&out) || measures.contains_key(&out) {
                return Err((format!("the aggregate name `{out}` cannot be carried"), at));
            }
            measures.insert(out, m);
        }
        let mut bys = vec![];
        for b in by {
            if b.name.is_some() {
                return Err(("a named `by` expression".into(), b.value.span.start));
            }
            let r = match &b.value.kind {
                ExprKind::Name(n) => self.alert_ref(n),
                _ => None,
            }
            .ok_or_else(|| (format!("`by {}` is not a field or derived name (time bins and expressions are not in the model)", self.src(&b.value)), b.value.span.start))?;
            bys.push(json!(r));
        }
        let mut agg = Map::new();
        agg.insert("measures".into(), Value::Object(measures));
        agg.insert("by".into(), Value::Array(bys));
        Ok((agg, count))
    }

    /// entityMappings, customDetails, alertDetailsOverride → `alert.entities/details/title/description`.
    fn alert_fields(
        &self,
        m: &Map<String, Value>,
        alert: &mut Map<String, Value>,
        parts: &mut Vec<String>,
    ) {
        let resolve = |col: &str| self.alert_ref(col);
        let mut entities = vec![];
        if let Some(Value::Array(es)) = m.get("entityMappings") {
            for e in es {
                let et = s_of(e.get("entityType")).unwrap_or_default();
                let Some((_, ckind, idents)) = ENTITIES.iter().find(|(s, _, _)| *s == et) else {
                    parts.push(format!(
                        "metadata: entity type {et} has no canonical name (left out)"
                    ));
                    continue;
                };
                let mut fm = Map::new();
                if let Some(Value::Array(fs)) = e.get("fieldMappings") {
                    for f in fs {
                        let id = s_of(f.get("identifier")).unwrap_or_default();
                        let col = s_of(f.get("columnName")).unwrap_or_default();
                        let Some((_, cid)) = idents.iter().find(|(s, _)| *s == id) else {
                            parts.push(format!("metadata: entity {et} identifier {id} has no canonical name (left out)"));
                            continue;
                        };
                        match resolve(&col) {
                            Some(r) => {
                                fm.insert(cid.to_string(), json!(r));
                            }
                            None => parts.push(format!("metadata: entity {et} {id} reads column {col}, which the imported rule does not produce (left out)")),
                        }
                    }
                }
                if !fm.is_empty() {
                    entities.push(json!({"type": ckind, "fields": fm}));
                }
            }
        }
        if !entities.is_empty() {
            alert.insert("entities".into(), Value::Array(entities));
        }
        let mut details = Map::new();
        if let Some(Value::Object(cd)) = m.get("customDetails") {
            for (k, v) in cd {
                let col = s_of(Some(v)).unwrap_or_default();
                match resolve(&col) {
                    Some(r) => {
                        details.insert(k.clone(), json!(r));
                    }
                    None => parts.push(format!("metadata: custom detail {k} reads column {col}, which the imported rule does not produce (left out)")),
                }
            }
        }
        if !details.is_empty() {
            alert.insert("details".into(), Value::Object(details));
        }
        if let Some(Value::Object(o)) = m.get("alertDetailsOverride") {
            for (k, v) in o {
                let key = match k.as_str() {
                    "alertDisplayNameFormat" => "title",
                    "alertDescriptionFormat" => "description",
                    other => {
                        parts.push(format!(
                            "metadata: alertDetailsOverride.{other} has no canonical key (left out)"
                        ));
                        continue;
                    }
                };
                let Some(t) = s_of(Some(v)) else { continue };
                if t.matches("{{").count() > 3 {
                    parts.push(format!("metadata: alertDetailsOverride.{k} has more than the 3 placeholders Sentinel allows (left out)"));
                    continue;
                }
                match placeholders(&t, &resolve) {
                    Ok(s) => {
                        alert.insert(key.into(), json!(s));
                    }
                    Err(col) => parts.push(format!("metadata: alertDetailsOverride.{k} reads column {col}, which the imported rule does not produce (left out)")),
                }
            }
        }
    }
}

/// `{{Column}}` → `{name}`; a literal `{` or `}` cannot be written in the model's text.
fn placeholders(t: &str, resolve: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = t;
    while let Some(i) = rest.find("{{") {
        let literal = rest.get(..i).unwrap_or("");
        if literal.contains(['{', '}']) {
            return Err(literal.to_string());
        }
        out.push_str(literal);
        let after = rest.get(i + 2..).unwrap_or("");
        let Some(j) = after.find("}}") else {
            return Err(rest.to_string());
        };
        let col = after.get(..j).unwrap_or("").trim();
        out.push('{');
        out.push_str(&resolve(col).ok_or_else(|| col.to_string())?);
        out.push('}');
        rest = after.get(j + 2..).unwrap_or("");
    }
    if rest.contains(['{', '}']) {
        return Err(rest.to_string());
    }
    out.push_str(rest);
    Ok(out)
}

/// In every `all`, `empty errorCode` and `empty errorMessage` together become
/// `request_succeeded: true` (what the Sentinel target renders it as).
fn succeeded(v: Value) -> Value {
    match v {
        Value::Object(mut o) => {
            if let Some(Value::Array(kids)) = o.get("all").cloned() {
                let kids: Vec<Value> = kids.into_iter().map(succeeded).collect();
                let is = |k: &Value, f: &str| k == &json!({"field": f, "op": "empty"});
                let ec = kids.iter().position(|k| is(k, "errorCode"));
                let em = kids.iter().position(|k| is(k, "errorMessage"));
                if let (Some(a), Some(b)) = (ec, em) {
                    let first = a.min(b);
                    let mut out = vec![];
                    for (i, k) in kids.into_iter().enumerate() {
                        if i == first {
                            out.push(json!({"request_succeeded": true}));
                        } else if i != a && i != b {
                            out.push(k);
                        }
                    }
                    return all(out);
                }
                o.insert("all".into(), Value::Array(kids));
                return Value::Object(o);
            }
            if let Some(Value::Array(kids)) = o.get("any").cloned() {
                o.insert(
                    "any".into(),
                    Value::Array(kids.into_iter().map(succeeded).collect()),
                );
                return Value::Object(o);
            }
            if let Some(k) = o.get("not").cloned() {
                o.insert("not".into(), succeeded(k));
            }
            Value::Object(o)
        }
        other => other,
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
