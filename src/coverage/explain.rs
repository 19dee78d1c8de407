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
    /// Stages (a vendor query's pipeline) or the condition tree.
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
        Cond::FieldRef(f) => {
            let kind = format!("{}{} field", if negated { "not " } else { "" }, ref_word(f.op));
            out.push((f.field.path.clone(), kind, vec![f.other.path.clone()]));
        }
        Cond::External(l) => out.push((l.field.path.clone(), if negated { "not in external list".into() } else { "in external list".into() }, vec![l.list.clone()])),
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
        Cond::FieldRef(f) => out.push_str(&format!("{pad}{} {} field {}\n", f.field.path, ref_word(f.op), f.other.path)),
        Cond::Allowed(n) => out.push_str(&format!("{pad}allowed by list {n}\n")),
        Cond::External(l) => out.push_str(&format!("{pad}{} in external list {}\n", l.field.path, l.list)),
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

/// Find an entry by id, name or file stem (case-insensitive), on `platform` when given; the
/// first match.
pub fn find(cov: &Coverage, which: &str, platform: Option<&str>) -> Option<usize> {
    let w = which.to_lowercase();
    let stem = |f: &str| f.rsplit('/').next().unwrap_or(f).rsplit_once('.').map_or(f.to_string(), |(s, _)| s.to_string()).to_lowercase();
    cov.entries
        .iter()
        .position(|e| platform.is_none_or(|p| e.platform == p) && (e.id.to_lowercase() == w || e.name.to_lowercase() == w || stem(&e.file) == w))
}

/// A vendor rule's query read as a pipeline: its stages and the fields it outputs, each with the
/// stage it comes from ([`crate::vendors::Importer::pipeline`]).
pub type Pipeline = (Vec<Stage>, Vec<(String, String)>);

/// The page of entry `i`; `pipeline`: the stages and output fields of a vendor rule whose query
/// is a pipeline (in place of the condition tree and the model's output fields).
pub fn page(cov: &Coverage, i: usize, pipeline: Option<Pipeline>) -> Page {
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
        preds(&r.events_condition(), false, &mut ps);
        for (f, k, v) in ps {
            counts.entry(indicator_key(&f, &k, &v)).or_default().insert(e.id.clone());
        }
    }
    let mut indicators = vec![];
    let mut stages = vec![];
    let mut output_fields = vec![];
    if let Some(r) = rule {
        let mut ps = vec![];
        preds(&r.events_condition(), false, &mut ps);
        for (field, kind, values) in ps {
            let others = counts.get(&indicator_key(&field, &kind, &values)).map_or(0, |ids| ids.iter().filter(|x| **x != me.id).count());
            let ind = Indicator { field, kind, values, corpus: others };
            if !indicators.contains(&ind) {
                indicators.push(ind);
            }
        }
        match &r.correlation {
            None => {
                let mut t = String::new();
                tree(&r.events_condition(), 0, &mut t);
                stages.push(Stage { name: "condition".into(), text: t.trim_end().to_string() });
            }
            Some(seq) => {
                // a sequence: what every event meets, each step's own condition, then the join
                let mut t = String::new();
                tree(&r.condition(), 0, &mut t);
                stages.push(Stage { name: "condition (every step's event)".into(), text: t.trim_end().to_string() });
                for (i, (name, c)) in seq.steps.iter().enumerate() {
                    let mut t = String::new();
                    tree(c, 0, &mut t);
                    stages.push(Stage { name: format!("step {} `{name}`", i + 1), text: t.trim_end().to_string() });
                }
                let by: Vec<&str> = seq.by.iter().map(|f| f.path.as_str()).collect();
                stages.push(Stage {
                    name: "sequence".into(),
                    text: format!("the steps' events in order, each strictly later than the one before, the last within {} of the first{}", seq.within, if by.is_empty() { String::new() } else { format!(", all with the same {}", by.join(", ")) }),
                });
            }
        }
        for c in &r.doc.alert.context {
            output_fields.push((c.value.trim_start_matches('@').to_string(), "alert.context".to_string()));
        }
        for k in r.doc.alert.details.keys() {
            output_fields.push((k.clone(), "alert.details".to_string()));
        }
    }
    if let Some((s, o)) = pipeline {
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

/// How a field-to-field comparison reads: "equals", "contains", "starts with", "ends with".
fn ref_word(op: crate::model::Op) -> &'static str {
    match op {
        crate::model::Op::Contains => "contains",
        crate::model::Op::Startswith => "starts with",
        crate::model::Op::Endswith => "ends with",
        _ => "equals",
    }
}
