//! Sigma rules (`logsource: {product: aws, service: cloudtrail}`) → canonical rules.
//!
//! Input: a Sigma YAML file's text. Output: one [`Imported`] per rule. Field names are raw
//! CloudTrail paths already; Sigma compares strings case-insensitively, so every string
//! comparison but `re` gets `case: insensitive`.

use serde_json::{Map, Value};

use crate::import::{Doc, Imported, Node, Part, Pred, add_technique, date, slug_of, span_at};
use crate::model::Case;
use crate::diag::{Code, Diagnostic};

/// Import the rules of one Sigma file. `file` names it in diagnostics and gives the slug.
pub fn parse(file: &str, text: &str) -> Vec<Imported> {
    let slug = slug_of(file);
    // several documents: a Sigma correlation and the rules it names
    if text.starts_with("---\n") && text[4..].contains("\n---") || !text.starts_with("---\n") && text.contains("\n---") {
        if let Ok(docs) = serde_saphyr::from_multiple::<Value>(text) {
            let docs: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
            if docs.len() > 1 {
                if docs.iter().any(|d| d.get("correlation").is_some()) {
                    return correlation_file(file, text, &slug, &docs);
                }
                let at = text.find("\n---").map_or(0, |i| i + 1);
                let d = Diagnostic::error(Code::E502, "the file holds several YAML documents and none is a Sigma correlation")
                    .with_expected("one Sigma rule, or a correlation with the rules it names")
                    .with_span(span_at(file, text, at));
                return vec![Imported::refused(&slug, d)];
            }
        }
    }
    let doc: Value = match serde_saphyr::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            // in rulecast's words, as the canonical loader says it (no library advice)
            let d = crate::load::yaml_error(file, &e);
            let msg = if d.message.starts_with("yaml syntax error") { d.message } else { format!("yaml syntax error: {}", d.message) };
            return vec![Imported::refused(&slug, Diagnostic::error(Code::E501, msg).with_span(d.span.or_else(|| span_at(file, text, 0))))];
        }
    };
    if doc.get("correlation").is_some() {
        return correlation_file(file, text, &slug, std::slice::from_ref(&doc));
    }
    vec![import_one(file, text, &slug, &doc)]
}

/// A Sigma correlation rule with the rules it names (in the same file, by `name` or `id`):
/// `temporal_ordered` as a canonical sequence (each named rule a step, `group-by` the `by`
/// fields, `timespan` the span); `event_count` / `value_count` as an aggregate over the named
/// rules' events (a count threshold, or a distinct minimum), their `timespan` the window each
/// target counts over (its schedule: noted). Refused: `temporal` (unordered: the model has only
/// sequences), conditions other than `gt` / `gte`, a name that no document of the file has. The
/// named rules are imported as rules of their own only with `generate: true`.
fn correlation_file(file: &str, text: &str, slug: &str, docs: &[Value]) -> Vec<Imported> {
    let at = |needle: &str| span_at(file, text, text.find(needle).unwrap_or(0));
    let refuse = |msg: String, needle: &str| vec![Imported::refused(slug, Diagnostic::error(Code::E502, msg).with_span(at(needle)))];
    let Some(cdoc) = docs.iter().find(|d| d.get("correlation").is_some()) else { return vec![] };
    let Some(c) = cdoc.get("correlation").and_then(Value::as_object) else {
        return refuse("`correlation` is not a mapping".into(), "correlation:");
    };
    let kind = s_of(c.get("type")).unwrap_or_default();
    let names = str_list(c.get("rules"));
    let group_by = str_list(c.get("group-by"));
    let timespan = s_of(c.get("timespan")).unwrap_or_default();
    if crate::load::check::duration_secs(&timespan).is_none_or(|s| s == 0) {
        return refuse(format!("correlation timespan `{timespan}` is not a number followed by s, m, h or d"), "timespan");
    }
    for f in group_by.iter().chain(c.get("condition").and_then(|x| x.get("field")).and_then(Value::as_str).map(str::to_string).iter()) {
        if crate::fields::resolve(f).is_err() {
            return vec![Imported::refused(
                slug,
                Diagnostic::error(Code::E301, format!("unknown field `{f}` in the correlation"))
                    .with_expected("a raw CloudTrail JSON path from the field taxonomy")
                    .with_span(at(f)),
            )];
        }
    }
    // the named rules, imported as rules of their own
    let mut steps: Vec<(String, Value, Value)> = vec![];
    let mut own: Vec<Imported> = vec![];
    for n in &names {
        let Some(d) = docs.iter().find(|d| s_of(d.get("name")).as_deref() == Some(n) || s_of(d.get("id")).as_deref() == Some(n)) else {
            return refuse(format!("the correlation names the rule `{n}`, which no document of this file is (rulecast reads a correlation with its rules in one file)"), n);
        };
        let step_slug = format!("{slug}_{}", crate::import::slug_of(n));
        let imported = import_one(file, text, &step_slug, d);
        if imported.yaml.is_empty() {
            return vec![imported];
        }
        let Ok(v) = serde_saphyr::from_str::<Value>(&imported.yaml) else { return refuse(format!("the rule `{n}` did not import"), n) };
        let step_name: String = n.chars().map(|ch| if ch.is_ascii_alphanumeric() { ch.to_ascii_lowercase() } else { '_' }).collect();
        let step_name = if step_name.starts_with(|ch: char| ch.is_ascii_alphabetic()) { step_name } else { format!("step_{step_name}") };
        steps.push((step_name, v.get("detection").cloned().unwrap_or(Value::Null), v.get("logsource").cloned().unwrap_or(Value::Null)));
        own.push(imported);
    }
    if steps.is_empty() {
        return refuse("the correlation names no rules".into(), "correlation:");
    }
    // the correlation's own metadata, with the first named rule's log source and detection
    let mut meta = cdoc.clone();
    if let (Some(m), Some(first)) = (meta.as_object_mut(), docs.iter().find(|d| d.get("logsource").is_some())) {
        m.remove("correlation");
        m.insert("logsource".into(), first.get("logsource").cloned().unwrap_or(Value::Null));
        m.insert("detection".into(), first.get("detection").cloned().unwrap_or(Value::Null));
    }
    let base = import_one(file, text, slug, &meta);
    if base.yaml.is_empty() {
        return vec![base];
    }
    let Ok(Value::Object(mut v)) = serde_saphyr::from_str::<Value>(&base.yaml) else { return refuse("the correlation did not import".into(), "correlation:") };
    let mut parts: Vec<Part> = base.notes.clone();
    let detections: Vec<Value> = steps.iter().map(|(_, d, _)| d.clone()).collect();
    let any = if detections.len() == 1 { detections[0].clone() } else { serde_json::json!({"any": detections}) };
    let mut out = serde_json::Map::new();
    let cond = |ch: &serde_json::Map<String, Value>| -> Result<u64, String> {
        let cnd = ch.get("condition").and_then(Value::as_object).ok_or("a count correlation without `condition`")?;
        if let Some(n) = cnd.get("gte").and_then(Value::as_u64) {
            return Ok(n.saturating_sub(1));
        }
        if let Some(n) = cnd.get("gt").and_then(Value::as_u64) {
            return Ok(n);
        }
        Err(format!("the condition `{}` is not `gt` or `gte` a number: the model's thresholds are minimums", serde_json::to_string(cnd).unwrap_or_default()))
    };
    let mut aggregate = None;
    let mut sequence = None;
    match kind.as_str() {
        "temporal_ordered" => {
            if steps.len() < 2 {
                return refuse("a temporal_ordered correlation of one rule".into(), "correlation:");
            }
            let st: Vec<Value> = steps.iter().map(|(n, d, _)| serde_json::json!({"name": n, "detection": d})).collect();
            parts.push(Part::note("Sigma's temporal_ordered is imported as a canonical sequence: each step strictly later than the one before"));
            sequence = Some(serde_json::json!({"type": "sequence", "by": group_by, "within": timespan, "steps": st}));
        }
        "event_count" => {
            let t = match cond(c) {
                Ok(t) => t,
                Err(e) => return refuse(e, "condition"),
            };
            aggregate = Some(serde_json::json!({"measures": {"Count": "count"}, "by": group_by, "threshold": t}));
        }
        "value_count" => {
            let t = match cond(c) {
                Ok(t) => t,
                Err(e) => return refuse(e, "condition"),
            };
            let Some(field) = c.get("condition").and_then(|x| x.get("field")).and_then(Value::as_str) else {
                return refuse("a value_count correlation without `condition.field`".into(), "condition");
            };
            aggregate = Some(serde_json::json!({"measures": {"Count": "count", "Values": {"distinct": field}}, "by": group_by, "threshold": 0, "min_distinct": {"Values": t + 1}}));
        }
        "temporal" => return refuse("Sigma's temporal correlation (the rules' events in any order) is not in the canonical model, which has ordered sequences only".into(), "temporal"),
        other => return refuse(format!("unknown Sigma correlation type `{other}`"), "type"),
    }
    // the model's key order: the correlation after the detection (which a sequence leaves to its
    // steps), an aggregate in `alert`, the counting window in each target's schedule
    for (k, val) in std::mem::take(&mut v) {
        match k.as_str() {
            "detection" if aggregate.is_some() => {
                out.insert(k, any.clone());
            }
            "detection" => {
                if let Some(cv) = sequence.take() {
                    out.insert("correlation".into(), cv);
                }
            }
            _ => {
                out.insert(k, val);
            }
        }
    }
    if let Some(a) = aggregate {
        let alert = out.entry("alert").or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Some(al) = alert.as_object_mut() {
            al.insert("aggregate".into(), a);
        }
        parts.push(Part::note(format!(
            "the correlation's timespan ({timespan}) is the window each target counts over, written as its schedule settings (`targets.<target>`)"
        )));
        let targets = out.entry("targets").or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Some(t) = targets.as_object_mut() {
            for target in <crate::Target as strum::IntoEnumIterator>::iter() {
                if let Some(settings) = crate::vendors::backend(target).counting_window(&timespan) {
                    t.insert(target.to_string(), settings);
                }
            }
        }
    }
    let v = Value::Object(out);
    if let Some(why) = crate::import::unloadable(&v) {
        return refuse(format!("the imported correlation does not load: {why}"), "correlation:");
    }
    // (as it loads once the import has given it a creation date, when it has none)
    let dated = if v.get("created").is_some() { crate::import::to_yaml(&v) } else { format!("{}created: 2000-01-01\n", crate::import::to_yaml(&v)) };
    if let Err(d) = crate::load::rule_from_str(&format!("{slug}.yaml"), slug, &dated) {
        let first = d.iter().find(|x| x.severity == crate::diag::Severity::Error).map(|x| x.message.clone()).unwrap_or_default();
        return refuse(format!("the imported correlation does not load: {first}"), "correlation:");
    }
    let mut result = vec![Imported::new(slug, crate::import::to_yaml(&v), parts)];
    if c.get("generate").and_then(Value::as_bool) == Some(true) {
        result.extend(own);
    }
    result
}

struct Cx<'a> {
    file: &'a str,
    text: &'a str,
    /// Parts of the detection imported as something other than what they literally say.
    parts: std::cell::RefCell<Vec<Part>>,
}

impl Cx<'_> {
    /// A diagnostic located at the first occurrence of `needle` after `detection:`.
    fn err(&self, msg: impl Into<String>, needle: &str) -> Box<Diagnostic> {
        let start = self.text.find("\ndetection:").unwrap_or(0);
        let off = self
            .text
            .get(start..)
            .and_then(|t| t.find(needle))
            .map_or(start, |i| start + i);
        let off = if needle.is_empty() { start + 1 } else { off };
        Box::new(Diagnostic::error(Code::E301, msg).with_span(span_at(
            self.file,
            self.text,
            off.min(self.text.len()),
        )))
    }
}

fn s_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
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

fn import_one(file: &str, text: &str, slug: &str, doc: &Value) -> Imported {
    let cx = Cx { file, text, parts: Default::default() };
    let Some(m) = doc.as_object() else {
        return Imported::refused(slug, *cx.err("a sigma rule is a mapping", ""));
    };
    let ls = m.get("logsource").and_then(Value::as_object);
    let product = ls.and_then(|l| s_of(l.get("product")));
    let service = ls.and_then(|l| s_of(l.get("service")));
    if product.as_deref() != Some("aws") || service.as_deref() != Some("cloudtrail") {
        let d = Diagnostic::error(
            Code::E103,
            "only logsource product aws, service cloudtrail is imported",
        )
        .with_found(format!(
            "product {:?}, service {:?}",
            product.unwrap_or_default(),
            service.unwrap_or_default()
        ))
        .with_span(span_at(file, text, text.find("logsource").unwrap_or(0)));
        return Imported::refused(slug, d);
    }
    let mut parts: Vec<Part> = vec![];
    if let Some(id) = s_of(m.get("id")) {
        let at = text.find("\nid:").map_or(0, |i| i + 1);
        if let Some(e) = crate::import::bad_id(&id, span_at(file, text, at)) {
            return Imported::refused(slug, e);
        }
    }
    let mut d = Doc {
        id: s_of(m.get("id")).unwrap_or_else(|| slug.to_string()),
        name: s_of(m.get("title")).unwrap_or_else(|| slug.to_string()),
        ..Doc::default()
    };
    d.description = s_of(m.get("description")).unwrap_or_else(|| d.name.clone());
    d.severity = match s_of(m.get("level")).as_deref() {
        Some("informational") => "info",
        Some("low") => "low",
        Some("high") => "high",
        Some("critical") => "critical",
        Some("medium") => "medium",
        other => {
            parts.push(Part::metadata(format!(
                "level {other:?} is not a sigma level (medium assumed)"
            )));
            "medium"
        }
    }
    .to_string();
    d.status = match s_of(m.get("status")).as_deref() {
        Some("stable") => Some("stable".into()),
        Some("experimental") => Some("experimental".into()),
        Some("test") => {
            // Sigma's `test` (tested, not yet stable) has no canonical status of its own
            parts.push(Part::note("Sigma status test has no canonical status of its own (imported as experimental)"));
            Some("experimental".into())
        }
        Some("deprecated") => Some("deprecated".into()),
        Some("unsupported") => {
            parts.push(Part::metadata("status unsupported has no canonical status"));
            None
        }
        _ => None,
    };
    d.authors = s_of(m.get("author"))
        .map(|a| {
            a.split(", ")
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    d.references = str_list(m.get("references"));
    d.false_positives = str_list(m.get("falsepositives"));
    d.license = Some("DRL-1.1".into());
    for tag in str_list(m.get("tags")) {
        let Some(rest) = tag.strip_prefix("attack.") else {
            d.tags.push(tag);
            continue;
        };
        let upper = rest.to_ascii_uppercase();
        if upper.starts_with('T')
            && upper[1..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        {
            if !add_technique(&upper, &mut d.tactics, &mut d.techniques, &mut parts) {
                parts.push(Part::note(format!(
                    "tag {tag}: no ATT&CK v18.1 technique {upper} (kept as a tag)"
                )));
                d.tags.push(tag);
            }
            continue;
        }
        if (upper.starts_with('G') || upper.starts_with('S'))
            && upper[1..].chars().all(|c| c.is_ascii_digit())
        {
            d.tags.push(tag);
            continue;
        }
        let short = rest.replace('_', "-");
        let v19 = crate::attack::tactic_by_shortname(&short).is_none().then(|| crate::attack::tactic_from_v19(&short)).flatten();
        if let Some(t) = v19 {
            parts.push(Part::note(format!(
                "tag {tag} is an ATT&CK v19 tactic; read as v{} {} {}, which v19 split (the version rulecast writes)",
                crate::attack::VERSION,
                t.id,
                t.name
            )));
        }
        match crate::attack::tactic_by_shortname(&short).or(v19) {
            Some(t) => {
                if !d.tactics.contains(&t.id) {
                    d.tactics.push(t.id.clone());
                }
            }
            None => {
                parts.push(Part::note(format!(
                    "tag {tag}: no ATT&CK v18.1 tactic of that name (kept as a tag)"
                )));
                d.tags.push(tag);
            }
        }
    }
    // tactics first listed by a technique may also have been named later; keep the order stable
    d.created = s_of(m.get("date")).and_then(|s| date(&s));
    d.updated = s_of(m.get("modified")).and_then(|s| date(&s));
    if let (Some(c), Some(u)) = (&d.created, &d.updated) {
        if u < c {
            parts.push(Part::metadata(format!(
                "modified {u} is before date {c} (left out)"
            )));
            d.updated = None;
        }
    }
    let Some(det) = m.get("detection").and_then(Value::as_object) else {
        return Imported::refused(slug, *cx.err("the rule has no `detection` mapping", ""));
    };
    match detection(&cx, det) {
        Ok(v) => d.detection = v,
        Err(e) => return Imported::refused(slug, *e),
    }
    parts.extend(cx.parts.take());
    for k in m.keys() {
        if !matches!(
            k.as_str(),
            "title"
                | "id"
                | "name"
                | "description"
                | "level"
                | "status"
                | "author"
                | "references"
                | "falsepositives"
                | "tags"
                | "date"
                | "modified"
                | "logsource"
                | "detection"
                | "license"
                | "fields"
                | "related"
        ) {
            parts.push(Part::metadata(format!("`{k}` has no canonical key")));
        }
    }
    if let Some(r) = m.get("related").and_then(Value::as_array) {
        if !r.is_empty() {
            parts.push(Part::metadata("`related` (rule relations) has no canonical key"));
        }
    }
    let v = d.to_value();
    if let Some(why) = crate::import::unloadable(&v) {
        let mut e = cx.err(why, "condition");
        e.code = Code::E502;
        return Imported::refused(slug, *e);
    }
    Imported::new(slug, crate::import::to_yaml(&v), parts)
}

/// The condition of a `detection:` block.
fn detection(cx: &Cx, det: &Map<String, Value>) -> Result<Node, Box<Diagnostic>> {
    let cond = match det.get("condition") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) if a.len() == 1 => s_of(a.first()).unwrap_or_default(),
        Some(_) => return Err(cx.err("only one condition string is imported", "condition")),
        None => return Err(cx.err("the detection has no `condition`", "")),
    };
    let mut names = vec![];
    for (k, v) in det {
        if k == "condition" || k == "timeframe" {
            continue;
        }
        names.push((k.clone(), selection(cx, k, v)?));
    }
    if det.contains_key("timeframe") {
        return Err(cx.err("`timeframe` (correlation) is not imported", "timeframe"));
    }
    // a condition that does not parse is E501, like the other importers' query syntax errors
    let syntax = |msg: String| {
        let mut e = cx.err(msg, "condition");
        e.code = Code::E501;
        e
    };
    let toks = tokens(&cond).map_err(|e| {
        let mut d = syntax(format!("condition: {e}"));
        if e.starts_with("aggregations") {
            d.code = Code::E502;
        }
        d
    })?;
    let mut p = CondParser {
        toks,
        pos: 0,
        names: &names,
        depth: 0,
    };
    // the condition in messages, shortened when it is long
    let shown: String = if cond.chars().count() > 80 {
        cond.chars().take(77).collect::<String>() + "..."
    } else {
        cond.clone()
    };
    let v = p.or().map_err(|e| syntax(format!("condition `{shown}`: {e}")))?;
    if p.pos != p.toks.len() {
        return Err(syntax(format!("condition `{shown}`: unexpected `{}`", p.toks[p.pos])));
    }
    Ok(v)
}

/// One named selection: a mapping (AND across fields) or a list of mappings (OR).
fn selection(cx: &Cx, name: &str, v: &Value) -> Result<Node, Box<Diagnostic>> {
    match v {
        Value::Object(m) => {
            let mut kids = vec![];
            for (k, val) in m {
                kids.push(field_match(cx, k, val)?);
            }
            if kids.is_empty() {
                return Err(cx.err(format!("selection `{name}` is empty"), name));
            }
            Ok(Node::all(kids))
        }
        Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_object) => {
            let kids = a
                .iter()
                .map(|x| selection(cx, name, x))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Node::any(kids))
        }
        _ => Err(cx.err(
            format!("selection `{name}`: keyword searches (values with no field) are not imported"),
            name,
        )),
    }
}

/// Unescape a Sigma string: `\*`, `\?` and `\\` are literal; returns the text and whether it
/// has unescaped wildcards.
fn sigma_str(s: &str) -> (String, bool, bool) {
    let mut out = String::new();
    let mut wild = false;
    let mut escaped_wild = false;
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\\' if matches!(it.peek(), Some('*' | '?' | '\\')) => {
                let n = it.next().unwrap_or('\\');
                escaped_wild |= n != '\\';
                out.push(n);
            }
            '*' | '?' => {
                wild = true;
                out.push(c);
            }
            c => out.push(c),
        }
    }
    (out, wild, escaped_wild)
}

fn field_match(cx: &Cx, key: &str, val: &Value) -> Result<Node, Box<Diagnostic>> {
    let mut it = key.split('|');
    let field = it.next().unwrap_or("");
    let mods: Vec<&str> = it.collect();
    if field.is_empty() {
        return Err(cx.err(
            "keyword searches (values with no field) are not imported",
            key,
        ));
    }
    if field == "status" && crate::fields::resolve(field).is_err() {
        return status(cx, key, val);
    }
    if let Err(e) = crate::fields::resolve(field) {
        let mut d = cx.err(
            format!("unknown field `{field}` (not in the CloudTrail taxonomy)"),
            key,
        );
        if let crate::fields::PathError::Unknown(Some(best)) = e {
            *d = d.with_hint(format!("did you mean `{best}`?"));
        }
        return Err(d);
    }
    let mut op = "eq";
    let mut and_all = false;
    if mods.contains(&"fieldref") {
        return field_ref(cx, key, field, &mods, val);
    }
    for m in &mods {
        match *m {
            "contains" | "startswith" | "endswith" | "re" | "cidr" | "exists" => op = m,
            "all" => and_all = true,
            "i" | "m" | "s" if op == "re" => {
                return Err(cx.err(format!("regex flag `|{m}` is not imported"), key));
            }
            other => return Err(cx.err(format!("modifier `|{other}` is not imported"), key)),
        }
    }
    let vals: Vec<Value> = match val {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    // `|contains` on a whole object (requestParameters, ...): Sigma's backends search the
    // object's text; the canonical `contains` never matches an object, so it is imported as
    // `mentions` (a key or scalar value containing the text), and said so
    let object = crate::fields::resolve(field).is_ok_and(|f| matches!(f.kind, crate::fields::Kind::Object | crate::fields::Kind::Record));
    if object && op == "contains" {
        op = "mentions";
        cx.parts.borrow_mut().push(Part::detection(format!(
            "`{key}` searches an object's text; imported as `mentions` (a key or value of `{field}` containing the text), which, unlike a search of the JSON text, never matches across keys, values and JSON syntax"
        )));
    }
    if vals.is_empty() {
        return Err(cx.err(format!("`{key}` has an empty value list"), key));
    }
    if op == "exists" {
        let b = match vals.as_slice() {
            [Value::Bool(b)] => *b,
            [Value::String(s)] if s == "true" || s == "false" => s == "true",
            _ => return Err(cx.err("`|exists` takes true or false", key)),
        };
        return Ok(Node::pred(field, "exists", vec![Value::Bool(b)], false));
    }
    // one predicate per value shape: group consecutive values that share an op
    let mut preds: Vec<(String, Vec<Value>, bool)> = vec![];
    for v in vals {
        let (o, v, ci) = match (&v, op) {
            (Value::Null, "eq") => ("empty".to_string(), Value::Null, false),
            (Value::Null, _) => return Err(cx.err(format!("`null` with `|{op}`"), key)),
            (Value::String(s), "re") => ("regex".into(), Value::from(s.as_str()), false),
            (Value::String(s), "cidr") => ("cidr".into(), Value::from(s.as_str()), false),
            (Value::String(s), _) => {
                let (t, wild, escaped) = sigma_str(s);
                if wild && escaped {
                    return Err(
                        cx.err(format!("`{s}` mixes wildcards with escaped wildcards"), key)
                    );
                }
                if wild && op == "mentions" {
                    let mut d = cx.err(
                        format!("`{s}`: wildcards in `|contains` on the object `{field}` search its JSON text, which the canonical model cannot say (`mentions` takes plain text)"),
                        key,
                    );
                    d.code = Code::E502;
                    return Err(d);
                }
                if wild {
                    let g = match op {
                        "contains" => format!("*{t}*"),
                        "startswith" => format!("{t}*"),
                        "endswith" => format!("*{t}"),
                        _ => t,
                    };
                    let mut c = String::new();
                    for ch in g.chars() {
                        if !(ch == '*' && c.ends_with('*')) {
                            c.push(ch);
                        }
                    }
                    ("glob".into(), Value::from(c), true)
                } else {
                    (op.to_string(), Value::from(t), true)
                }
            }
            (Value::Number(_) | Value::Bool(_), "eq") => ("eq".into(), v.clone(), false),
            (Value::Number(n), _) if op != "re" && op != "cidr" => {
                (op.to_string(), Value::from(n.to_string()), true)
            }
            _ => return Err(cx.err(format!("value {v} does not fit `|{op}`"), key)),
        };
        match preds
            .iter_mut()
            .find(|p| p.0 == o && p.2 == ci && o != "empty")
        {
            Some(p) if !and_all => p.1.push(v),
            _ => preds.push((o, vec![v], ci)),
        }
    }
    let kids: Vec<Node> = preds
        .into_iter()
        .map(|(o, vs, ci)| {
            if o == "empty" {
                Node::pred(field, "empty", vec![], false)
            } else {
                Node::pred(field, &o, vs, ci)
            }
        })
        .collect();
    Ok(if and_all { Node::all(kids) } else { Node::any(kids) })
}

/// `field|fieldref: other`: the two fields' values are equal (Sigma matches strings
/// case-insensitively); `|fieldref|contains`, `|fieldref|startswith` and `|fieldref|endswith`:
/// the field's value contains, starts or ends with the other's (pySigma's field reference with
/// wildcards on those sides). Several referenced fields: any of them (`|all`: every one).
fn field_ref(cx: &Cx, key: &str, field: &str, mods: &[&str], val: &Value) -> Result<Node, Box<Diagnostic>> {
    let mut and_all = false;
    let mut op = "eq";
    let mut seen_ref = false;
    for m in mods {
        match *m {
            "fieldref" => seen_ref = true,
            "all" => and_all = true,
            // pySigma turns the value into a field reference first: a wildcard modifier before
            // `|fieldref` gives a value with wildcards, which it rejects
            "contains" | "startswith" | "endswith" if seen_ref && op == "eq" => op = m,
            "contains" | "startswith" | "endswith" => {
                return Err(cx.err(format!("`|{m}` before `|fieldref` (or a second one) is not a field reference Sigma reads: write `|fieldref|{m}`"), key));
            }
            other => return Err(cx.err(format!("modifier `|{other}` with `|fieldref` is not imported"), key)),
        }
    }
    let refs: Vec<&Value> = match val {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    if refs.is_empty() {
        return Err(cx.err(format!("`{key}` has an empty value list"), key));
    }
    let mut kids = vec![];
    for r in refs {
        let Value::String(other) = r else {
            return Err(cx.err(format!("`|fieldref` takes field names; found {r}"), key));
        };
        if let Err(e) = crate::fields::resolve(other) {
            let mut d = cx.err(format!("`|fieldref` names an unknown field `{other}` (not in the CloudTrail taxonomy)"), key);
            if let crate::fields::PathError::Unknown(Some(best)) = e {
                *d = d.with_hint(format!("did you mean `{best}`?"));
            }
            return Err(d);
        }
        kids.push(Node::Pred(Pred {
            field: field.to_string(),
            op: op.into(),
            value: None,
            values: None,
            list: None,
            ref_field: Some(other.clone()),
            case: Some(Case::Insensitive),
        }));
    }
    Ok(if and_all { Node::all(kids) } else { Node::any(kids) })
}

/// `status: success` / `failure`: CloudTrail has no `status` field, so the rule as written
/// never matches. Imported as the request-succeeded predicate the rule means, declared as a
/// part: what the vendor rule literally says is not what rulecast imports.
fn status(cx: &Cx, key: &str, val: &Value) -> Result<Node, Box<Diagnostic>> {
    let want = match val {
        Value::String(s) if s.eq_ignore_ascii_case("success") => true,
        Value::String(s) if s.eq_ignore_ascii_case("failure") => false,
        other => {
            return Err(cx.err(
                format!("unknown field `status` (CloudTrail has no such field; only `status: success` / `failure` are imported, as request_succeeded) with value {other}"),
                key,
            ));
        }
    };
    cx.parts.borrow_mut().push(Part::detection(format!(
        "`{key}: {}` names no CloudTrail field, so the rule as written never matches; imported as `request_succeeded: {want}` (no errorCode and no errorMessage), what it means",
        if want { "success" } else { "failure" }
    )));
    Ok(Node::Succeeded { request_succeeded: want })
}

// ---------------------------------------------------------------------------------------------
// The condition string: `sel and not (a or 1 of filter_*)`.

fn tokens(s: &str) -> Result<Vec<String>, String> {
    let mut out = vec![];
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' | ')' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                out.push(c.to_string());
            }
            '|' => return Err("aggregations (`| count() ...`) are not imported".into()),
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    if out.is_empty() {
        return Err("the condition is empty".into());
    }
    Ok(out)
}

struct CondParser<'a> {
    toks: Vec<String>,
    pos: usize,
    names: &'a [(String, Node)],
    /// Open `(` and `not` (bounded: no stack overflow on hostile input).
    depth: usize,
}

/// The deepest nesting of `(` and `not` a condition may have.
const MAX_DEPTH: usize = 64;

/// Does `pat` (`*` any run of characters) match all of `s`? Iterative: a star backtracks to the
/// last one only, so hostile patterns (`a*a*a*...b`) take O(len(pat) * len(s)).
fn glob_match(pat: &str, s: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pat.chars().collect(), s.chars().collect());
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < t.len() {
        if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if i < p.len() && p[i] == t[j] {
            i += 1;
            j += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

impl CondParser<'_> {
    fn peek(&self) -> Option<&str> {
        self.toks.get(self.pos).map(String::as_str)
    }
    fn is_kw(&self, kw: &str) -> bool {
        self.peek().is_some_and(|t| t.eq_ignore_ascii_case(kw))
    }
    fn or(&mut self) -> Result<Node, String> {
        let mut kids = vec![self.and()?];
        while self.is_kw("or") {
            self.pos += 1;
            kids.push(self.and()?);
        }
        Ok(Node::any(kids))
    }
    fn and(&mut self) -> Result<Node, String> {
        let mut kids = vec![self.not()?];
        while self.is_kw("and") {
            self.pos += 1;
            kids.push(self.not()?);
        }
        Ok(Node::all(kids))
    }
    fn not(&mut self) -> Result<Node, String> {
        if self.is_kw("not") {
            self.pos += 1;
            self.enter()?;
            let v = Node::not(self.not()?);
            self.depth -= 1;
            return Ok(v);
        }
        self.atom()
    }
    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("more than {MAX_DEPTH} levels of `(` and `not`"));
        }
        Ok(())
    }
    fn atom(&mut self) -> Result<Node, String> {
        let Some(t) = self.peek().map(str::to_string) else {
            return Err("unexpected end of the condition".into());
        };
        self.pos += 1;
        if t == "(" {
            self.enter()?;
            let v = self.or()?;
            if self.peek() != Some(")") {
                return Err("expected `)`".into());
            }
            self.pos += 1;
            self.depth -= 1;
            return Ok(v);
        }
        let quant = if t == "1" || t.eq_ignore_ascii_case("any") {
            Some(false)
        } else if t.eq_ignore_ascii_case("all") {
            Some(true)
        } else {
            None
        };
        if let (Some(every), true) = (quant, self.is_kw("of")) {
            self.pos += 1;
            let Some(pat) = self.peek().map(str::to_string) else {
                return Err(format!("`{t} of` needs a selection name or `them`"));
            };
            self.pos += 1;
            let picked: Vec<Node> = self
                .names
                .iter()
                .filter(|(n, _)| {
                    if pat == "them" {
                        !n.starts_with('_')
                    } else {
                        glob_match(&pat, n)
                    }
                })
                .map(|(_, v)| v.clone())
                .collect();
            if picked.is_empty() {
                return Err(format!("`{pat}` names no selection"));
            }
            return Ok(if every { Node::all(picked) } else { Node::any(picked) });
        }
        if matches!(t.to_ascii_lowercase().as_str(), "and" | "or" | ")") {
            return Err(format!("unexpected `{t}`"));
        }
        self.names
            .iter()
            .find(|(n, _)| *n == t)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("unknown selection `{t}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::Outcome;

    #[test]
    fn imports_a_small_rule() {
        let text = "title: T\nid: 4db60cc0-36fb-42b7-9b58-a5b53019fb74\nstatus: test\ndescription: D\nauthor: A, B\ndate: 2020/01/21\ntags:\n  - attack.defense_evasion\n  - attack.t1562.008\nlogsource:\n  product: aws\n  service: cloudtrail\ndetection:\n  sel:\n    eventName:\n      - StopLogging\n      - Delete*\n    userAgent|contains: cli\n  filter:\n    errorCode: null\n  condition: sel and not filter\nlevel: high\n";
        let out = parse("x.yml", text);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].outcome, Outcome::Full, "{}", out[0].yaml);
        let r = crate::load::rule_from_str("x.yaml", "x", &out[0].yaml);
        assert!(r.is_ok(), "{}\n{:?}", out[0].yaml, r.err());
        assert!(
            out[0]
                .yaml
                .contains("{field: eventName, op: glob, value: Delete*, case: insensitive}"),
            "{}",
            out[0].yaml
        );
    }

    #[test]
    fn unknown_field_is_located() {
        let text = "title: T\nid: x\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    nope.field: 1\n  condition: sel\nlevel: low\n";
        let out = parse("x.yml", text);
        let Outcome::Refused(d) = &out[0].outcome else {
            panic!("{:?}", out[0].outcome)
        };
        assert_eq!(d.code, Code::E301);
        assert_eq!(d.span.as_ref().map(|s| (s.line, s.col)), Some((6, 5)));
    }

    #[test]
    fn conditions() {
        let leaf = |i: usize| Node::pred(&format!("f{i}"), "exists", vec![], false);
        let names = vec![
            ("a_1".to_string(), leaf(1)),
            ("a_2".to_string(), leaf(2)),
            ("b".to_string(), leaf(3)),
        ];
        let mut p = CondParser {
            toks: tokens("all of a_* or not (b and 1 of them)").unwrap(),
            pos: 0,
            names: &names,
            depth: 0,
        };
        let v = p.or().unwrap();
        assert_eq!(
            v,
            Node::any(vec![
                Node::all(vec![leaf(1), leaf(2)]),
                Node::not(Node::all(vec![leaf(3), Node::any(vec![leaf(1), leaf(2), leaf(3)])])),
            ])
        );
    }
}
