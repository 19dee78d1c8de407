//! The catalog page of one rule: a [`Coverage`] entry (and, for a Sentinel rule, its query
//! text) → [`Page`], rendered as Markdown or JSON. Sections as the catalog's pages have them:
//! ATT&CK table, rules detecting the same action, stages and predicates, indicators (with how
//! many other loaded rules test the same combination) and output fields.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use super::{Actions, Coverage};
use crate::condition::Cond;
use crate::load::Rule;

/// One rule's page.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    /// The rule name.
    pub name: String,
    /// Its id.
    pub id: String,
    /// Platforms it is on (one, or a canonical rule's targets).
    pub platforms: Vec<String>,
    /// Its file.
    pub file: String,
    /// Its description, when loaded.
    pub description: String,
    /// The API calls it can match.
    pub actions: Actions,
    /// ATT&CK rows: (tactic id, tactic name, techniques as `T1562.007 Parent: Name`).
    pub attack: Vec<AttackRow>,
    /// Other rules (any platform) that can match one of its actions: `Name (platform)`, sorted.
    pub same_action: Vec<String>,
    /// Stages (a Sentinel query's pipeline) or the condition tree.
    pub stages: Vec<Stage>,
    /// The predicates it tests.
    pub indicators: Vec<Indicator>,
    /// Fields the rule emits, with the stage (or model part) they come from.
    pub output_fields: Vec<(String, String)>,
}

/// One row of the ATT&CK table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttackRow {
    /// `TA0005`.
    pub tactic: String,
    /// Its name in rulecast's ATT&CK data.
    pub tactic_name: String,
    /// `T1562.007 Impair Defenses: Disable or Modify Cloud Firewall`.
    pub techniques: Vec<String>,
}

/// A stage of the rule's logic.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    /// `source`, `where`, `extend (4 consecutive steps)`, `parameters`, `condition`.
    pub name: String,
    /// Its text.
    pub text: String,
}

/// One predicate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Indicator {
    /// The field as the rule names it.
    pub field: String,
    /// The operator (`in`, `eq`, `not startswith`, ...).
    pub kind: String,
    /// The values.
    pub values: Vec<String>,
    /// Other loaded rules (distinct ids) testing the same field, kind and values.
    pub corpus: usize,
}

fn technique_label(id: &str) -> String {
    match crate::attack::technique(id) {
        Some(t) if t.is_sub() => {
            let parent = crate::attack::technique(t.parent_id()).map_or("", |p| p.name.as_str());
            format!("{id} {parent}: {}", t.name)
        }
        Some(t) => format!("{id} {}", t.name),
        None => id.to_string(),
    }
}

fn attack_rows(tactics: &[String], techniques: &[String]) -> Vec<AttackRow> {
    let mut rows: Vec<AttackRow> = vec![];
    // the rule's tactics in its order, also those it names no technique under
    for id in tactics {
        if let Some(ta) = crate::attack::tactic(id) {
            rows.push(AttackRow { tactic: ta.id.clone(), tactic_name: ta.name.clone(), techniques: vec![] });
        }
    }
    for t in techniques {
        let shorts: Vec<String> = crate::attack::technique(t).map(|x| x.tactics.clone()).unwrap_or_default();
        // the rule's own tactics the technique belongs to; else the technique's first tactic
        let mut tas: Vec<&crate::attack::Tactic> = tactics.iter().filter_map(|id| crate::attack::tactic(id)).filter(|ta| shorts.contains(&ta.shortname)).collect();
        if tas.is_empty() {
            tas.extend(shorts.first().and_then(|s| crate::attack::tactic_by_shortname(s)));
        }
        for ta in tas {
            match rows.iter_mut().find(|r| r.tactic == ta.id) {
                Some(r) => r.techniques.push(technique_label(t)),
                None => rows.push(AttackRow { tactic: ta.id.clone(), tactic_name: ta.name.clone(), techniques: vec![technique_label(t)] }),
            }
        }
    }
    rows
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn preds(c: &Cond, negated: bool, out: &mut Vec<(String, String, Vec<String>)>) {
    match c {
        Cond::All(k) | Cond::Any(k) => k.iter().for_each(|k| preds(k, negated, out)),
        Cond::Not(k) => preds(k, !negated, out),
        Cond::Pred(p) => {
            // `in` was normalised to `eq` with several values: the catalog calls it `in`
            let op: &str = if p.op == crate::model::Op::Eq && p.values.len() > 1 { "in" } else { p.op.into() };
            let kind = if negated { format!("not {op}") } else { op.to_string() };
            out.push((p.field.path.clone(), kind, p.values.iter().map(value_text).collect()));
        }
        Cond::Succeeded(b) => out.push(("errorCode".into(), if *b != negated { "is_null".into() } else { "not is_null".into() }, vec![])),
        Cond::FieldRef(f) => out.push((f.field.path.clone(), if negated { "not equals field".into() } else { "equals field".into() }, vec![f.other.path.clone()])),
        Cond::Allowed(_) | Cond::Some(_) | Cond::Opaque { .. } => {}
    }
}

fn indicator_key(field: &str, kind: &str, values: &[String]) -> (String, String, BTreeSet<String>) {
    (field.to_lowercase(), kind.to_string(), values.iter().map(|v| v.to_lowercase()).collect())
}

/// The condition as an indented tree, one node a line.
pub fn tree(c: &Cond, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    match c {
        Cond::All(k) => {
            out.push_str(&format!("{pad}all:\n"));
            k.iter().for_each(|k| tree(k, depth + 1, out));
        }
        Cond::Any(k) => {
            out.push_str(&format!("{pad}any:\n"));
            k.iter().for_each(|k| tree(k, depth + 1, out));
        }
        Cond::Not(k) => {
            out.push_str(&format!("{pad}not:\n"));
            tree(k, depth + 1, out);
        }
        Cond::Succeeded(b) => out.push_str(&format!("{pad}request_succeeded: {b}\n")),
        Cond::Pred(p) => {
            let op: &str = p.op.into();
            let vals: Vec<String> = p.values.iter().map(value_text).collect();
            out.push_str(&format!("{pad}{} {op} [{}]\n", p.field.path, vals.join(", ")));
        }
        Cond::FieldRef(f) => out.push_str(&format!("{pad}{} equals field {}\n", f.field.path, f.other.path)),
        Cond::Allowed(n) => out.push_str(&format!("{pad}allowed by list {n}\n")),
        Cond::Some(q) => {
            out.push_str(&format!("{pad}some element of {}:\n", q.describe()));
            tree(&q.cond, depth + 1, out);
        }
        Cond::Opaque { lang, text, .. } => {
            let l: &str = (*lang).into();
            out.push_str(&format!("{pad}opaque {l}: {}\n", text.replace('\n', " ")));
        }
    }
}

/// The pipeline stages of a Kusto query: `let` statements as parameters, then one stage per run
/// of consecutive steps with the same operator.
pub fn kusto_stages(query: &str) -> (Vec<Stage>, Vec<(String, String)>) {
    let mut params = vec![];
    let mut steps: Vec<(String, String)> = vec![];
    let mut depth = 0i32;
    let mut current = String::new();
    let flush = |current: &mut String, steps: &mut Vec<(String, String)>, params: &mut Vec<String>| {
        let t = current.trim().to_string();
        current.clear();
        if t.is_empty() {
            return;
        }
        if t.starts_with("let ") {
            params.push(t);
        } else if let Some(rest) = t.strip_prefix('|') {
            let op = rest.trim_start().split(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_').next().unwrap_or("").to_string();
            steps.push((op, t));
        } else {
            steps.push(("source".into(), t));
        }
    };
    for line in query.lines() {
        let l = line.trim();
        let starts_step = depth == 0 && (l.starts_with('|') || l.starts_with("let "));
        if starts_step {
            flush(&mut current, &mut steps, &mut params);
        }
        current.push_str(line.trim_end());
        current.push('\n');
        for ch in l.chars() {
            match ch {
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => depth -= 1,
                _ => {}
            }
        }
        if depth == 0 && l.starts_with("let ") && l.ends_with(';') {
            flush(&mut current, &mut steps, &mut params);
        }
    }
    flush(&mut current, &mut steps, &mut params);
    let mut stages = vec![];
    if !params.is_empty() {
        stages.push(Stage { name: "parameters".into(), text: params.join("\n") });
    }
    let mut outputs: Vec<(String, String)> = vec![];
    let mut i = 0;
    while i < steps.len() {
        let op = steps[i].0.clone();
        let mut j = i;
        while j < steps.len() && steps[j].0 == op {
            j += 1;
        }
        let n = j - i;
        let name = if n > 1 { format!("{op} ({n} consecutive steps)") } else { op.clone() };
        stages.push(Stage { name, text: steps[i..j].iter().map(|s| s.1.trim_end().to_string()).collect::<Vec<_>>().join("\n") });
        for (_, text) in &steps[i..j] {
            output_columns(&op, text, &mut outputs);
        }
        i = j;
    }
    // the last summarize / project decides what comes out
    (stages, outputs)
}

fn split_top(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth, mut quote) = (vec![], String::new(), 0i32, None::<char>);
    for ch in s.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(ch),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    out.push(cur);
    out.into_iter().map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect()
}

fn column_name(item: &str) -> Option<String> {
    let name = match item.split_once('=') {
        Some((l, r)) if !l.contains('(') && !r.starts_with('=') && !l.ends_with(['!', '<', '>']) => l.trim(),
        _ => item.trim(),
    };
    let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    ok.then(|| name.to_string())
}

fn output_columns(op: &str, text: &str, out: &mut Vec<(String, String)>) {
    let body = text.trim_start_matches('|').trim_start();
    let body = body.strip_prefix(op).unwrap_or(body).trim();
    let mut set = |cols: Vec<String>, replace: bool| {
        if replace {
            out.clear();
        }
        for c in cols {
            out.retain(|(x, _)| *x != c);
            out.push((c, op.to_string()));
        }
    };
    match op {
        "summarize" => {
            let (aggs, by) = match body.find(" by ").or_else(|| body.find("\nby ")) {
                Some(i) => (&body[..i], &body[i + 4..]),
                None => (body, ""),
            };
            let cols: Vec<String> = split_top(aggs).iter().chain(split_top(by).iter()).filter_map(|x| column_name(x)).collect();
            set(cols, true);
        }
        "project" => set(split_top(body).iter().filter_map(|x| column_name(x)).collect(), true),
        "extend" => set(split_top(body).iter().filter_map(|x| x.split_once('=').and_then(|(l, _)| column_name(l))).collect(), false),
        _ => {}
    }
}

/// Find an entry by id, name or file stem (case-insensitive), on `platform` when given; the
/// first match.
pub fn find(cov: &Coverage, which: &str, platform: Option<&str>) -> Option<usize> {
    let w = which.to_lowercase();
    let stem = |f: &str| f.rsplit('/').next().unwrap_or(f).rsplit_once('.').map_or(f.to_string(), |(s, _)| s.to_string()).to_lowercase();
    cov.entries
        .iter()
        .position(|e| platform.is_none_or(|p| e.platform == p) && (e.id.to_lowercase() == w || e.name.to_lowercase() == w || stem(&e.file) == w))
}

/// The page of entry `i`; `query` is a Sentinel rule's query text (its stages and output fields).
pub fn page(cov: &Coverage, i: usize, query: Option<&str>) -> Page {
    let me = &cov.entries[i];
    let rule: Option<&Rule> = cov.loaded.get(i).and_then(|r| r.as_deref());
    let platforms: Vec<String> = cov.entries.iter().filter(|e| e.id == me.id && e.file == me.file).map(|e| e.platform.clone()).collect();
    // rules detecting the same action: any platform, any other rule
    let mine: BTreeSet<&super::Action> = me.actions.known().iter().collect();
    let mut same: BTreeSet<String> = BTreeSet::new();
    if !mine.is_empty() {
        for e in &cov.entries {
            if e.id == me.id || !e.status.active() {
                continue;
            }
            if e.actions.known().iter().any(|a| mine.contains(a)) {
                same.insert(format!("{} ({})", e.name, e.platform));
            }
        }
    }
    // indicators, counted over the other loaded rules (one per id)
    let mut counts: BTreeMap<(String, String, BTreeSet<String>), BTreeSet<String>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for (e, r) in cov.entries.iter().zip(&cov.loaded) {
        let Some(r) = r else { continue };
        if !seen.insert((e.id.clone(), e.file.clone())) {
            continue;
        }
        let mut ps = vec![];
        preds(&r.condition(), false, &mut ps);
        for (f, k, v) in ps {
            counts.entry(indicator_key(&f, &k, &v)).or_default().insert(e.id.clone());
        }
    }
    let mut indicators = vec![];
    let mut stages = vec![];
    let mut output_fields = vec![];
    if let Some(r) = rule {
        let mut ps = vec![];
        preds(&r.condition(), false, &mut ps);
        for (field, kind, values) in ps {
            let others = counts.get(&indicator_key(&field, &kind, &values)).map_or(0, |ids| ids.iter().filter(|x| **x != me.id).count());
            let ind = Indicator { field, kind, values, corpus: others };
            if !indicators.contains(&ind) {
                indicators.push(ind);
            }
        }
        let mut t = String::new();
        tree(&r.condition(), 0, &mut t);
        stages.push(Stage { name: "condition".into(), text: t.trim_end().to_string() });
        for c in &r.doc.alert.context {
            output_fields.push((c.value.trim_start_matches('@').to_string(), "alert.context".to_string()));
        }
        for k in r.doc.alert.details.keys() {
            output_fields.push((k.clone(), "alert.details".to_string()));
        }
    }
    if let Some(q) = query {
        let (s, o) = kusto_stages(q);
        stages = s;
        output_fields = o;
    }
    Page {
        name: me.name.clone(),
        id: me.id.clone(),
        platforms,
        file: me.file.clone(),
        description: rule.map_or_else(String::new, |r| r.doc.description.trim().to_string()),
        actions: me.actions.clone(),
        attack: attack_rows(&me.tactics, &me.techniques),
        same_action: same.into_iter().collect(),
        stages,
        indicators,
        output_fields,
    }
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The page as Markdown.
pub fn to_markdown(p: &Page) -> String {
    let mut o = format!("# {}\n\n", md_cell(&p.name));
    o.push_str(&format!("`{}` · {} · `{}`\n\n", p.id, p.platforms.join(", "), p.file));
    if !p.description.is_empty() {
        o.push_str(&format!("{}\n\n", p.description));
    }
    o.push_str("## MITRE ATT&CK coverage\n\n| Tactic | Techniques |\n|---|---|\n");
    for r in &p.attack {
        o.push_str(&format!("| {} {} | {} |\n", r.tactic, md_cell(&r.tactic_name), md_cell(&r.techniques.join(", "))));
    }
    o.push_str("\n## Rules detecting the same action\n\n");
    match &p.actions {
        Actions::Known { actions } => {
            o.push_str(&format!("Actions: {}\n\n", actions.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")));
            if p.same_action.is_empty() {
                o.push_str("No other loaded rule can match these calls.\n");
            }
            for s in &p.same_action {
                o.push_str(&format!("- {s}\n"));
            }
        }
        Actions::Any { count } => o.push_str(&format!("The rule does not narrow the API call down (it can match {count} operations).\n")),
        Actions::Unknown { reason } => o.push_str(&format!("Actions unknown: {reason}.\n")),
    }
    o.push_str("\n## Stages and Predicates\n\n");
    let mut n = 0;
    for s in &p.stages {
        if s.name == "parameters" {
            o.push_str(&format!("Parameters\n\n```\n{}\n```\n\n", s.text));
        } else {
            n += 1;
            o.push_str(&format!("Stage {n}: {}\n\n```\n{}\n```\n\n", s.name, s.text));
        }
    }
    o.push_str("## Indicators\n\n| Field | Kind | Values | Corpus |\n|---|---|---|---|\n");
    for i in &p.indicators {
        o.push_str(&format!("| {} | {} | {} | {} |\n", md_cell(&i.field), md_cell(&i.kind), md_cell(&i.values.join(", ")), i.corpus));
    }
    o.push_str("\n## Output fields\n\n| Field | Source |\n|---|---|\n");
    for (f, s) in &p.output_fields {
        o.push_str(&format!("| {} | {} |\n", md_cell(f), md_cell(s)));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kusto_pipeline_stages_and_outputs() {
        let q = "let EventNameList = dynamic([ \"A\", \"B\"]);\nAWSCloudTrail\n| where EventName in~ (EventNameList)\n| extend X = iif(a, b, c)\n| extend Y = tostring(split(X, '/')[-1])\n| summarize EventCount=count(), StartTimeUtc = min(TimeGenerated)\nby EventSource, EventName\n";
        let (stages, outs) = kusto_stages(q);
        let names: Vec<&str> = stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["parameters", "source", "where", "extend (2 consecutive steps)", "summarize"]);
        let cols: Vec<&str> = outs.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(cols, ["EventCount", "StartTimeUtc", "EventSource", "EventName"]);
    }
}
