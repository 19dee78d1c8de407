//! `rulecast test` and `rulecast events`: prove that every rendering means the same thing.
//!
//! For every rule, every test event and every target: the expected verdict, the canonical
//! evaluator's, and what Sentinel (rulecast's Kusto evaluator on the normalized row), Elastic
//! (rulecast's kuery evaluator on the normalized document) and Panther (real Python, one
//! process for the whole run) decide. A disagreement fails the run (exit 1) unless the rule's
//! translation notes for that target declare it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use rulecast::eval::Entries;
use rulecast::eval::proof::{self, Case, Status};
use rulecast::vendors::{Decided, Decision, Job, backend};
use rulecast::Target;
use strum::IntoEnumIterator;
use serde_json::Value;

/// How a decision is shown in the text report.
fn short(d: &Decision) -> &'static str {
    match d {
        Decision::Match => "match",
        Decision::NoMatch => "-",
        Decision::Skipped(_) => "skip",
        Decision::Error(_) => "ERROR",
    }
}

/// Corpus events: every `Tests[].Log` of every Panther YAML in `dir`.
fn corpus_events(dir: &Path) -> Result<Vec<(String, Value)>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read corpus folder `{}`", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    let mut out = vec![];
    for f in files {
        let text = std::fs::read_to_string(&f)?;
        let Ok(doc) = serde_saphyr::from_str::<Value>(&text) else { continue };
        for t in doc.get("Tests").and_then(Value::as_array).into_iter().flatten() {
            if let Some(log) = t.get("Log").filter(|l| l.is_object()) {
                let name = t.get("Name").and_then(Value::as_str).unwrap_or("?");
                out.push((format!("{}#{}", f.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default(), name), log.clone()));
            }
        }
    }
    Ok(out)
}

/// `rulecast test`.
pub fn run(rules_dir: &Path, read: rulecast::load::files::ReadPolicy, only: &[String], corpus: Option<&Path>, json: bool) -> Result<ExitCode> {
    let mut rules = match super::load_rules(rules_dir, read, rulecast::diag::Format::Full)? {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    if !only.is_empty() {
        for name in only {
            if !rules.iter().any(|r| r.slug == *name || r.doc.id.value == *name) {
                anyhow::bail!("no rule named `{name}` in `{}` (give a file stem or a rule id)", rules_dir.display());
            }
        }
        rules.retain(|r| only.iter().any(|n| r.slug == *n || r.doc.id.value == *n));
    }
    let mut cases: Vec<Case> = vec![];
    for r in &rules {
        for t in &r.doc.tests {
            cases.push(Case {
                rule: r,
                name: t.value.name.clone(),
                expected: Some(t.value.expect),
                event: t.value.event.clone(),
                allowlists: r.test_entries(&t.value),
                enrichment: Some(t.value.enrichment.clone()),
            });
        }
    }
    let ntests = cases.len();
    let corpus_events = match corpus {
        Some(dir) => corpus_events(dir)?,
        None => vec![],
    };
    for r in &rules {
        for (name, ev) in &corpus_events {
            cases.push(Case { rule: r, name: format!("corpus:{name}"), expected: None, event: ev.clone(), allowlists: Entries::new(), enrichment: None });
        }
    }
    let jobs: Vec<Job> = cases.iter().map(Case::job).collect();
    let mut decided: BTreeMap<Target, Decided> = BTreeMap::new();
    for t in Target::iter() {
        decided.insert(t, backend(t).decide(&jobs).map_err(|e| anyhow::anyhow!("{t}: {e}"))?);
    }
    let rows = proof::prove(&cases, &decided, &proof::verdict_notes);
    let fails = rows.iter().filter(|r| r.status == Status::Fail).count();
    let declared = rows.iter().filter(|r| r.status == Status::Declared).count();
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
    } else {
        let mut last = String::new();
        for r in rows.iter().filter(|r| r.expected.is_some() || r.status != Status::Pass) {
            if r.rule != last {
                writeln!(out, "{}", r.rule)?;
                last = r.rule.clone();
            }
            let exp = r.expected.map(|e| if e { "match" } else { "-" }).unwrap_or("n/a");
            let mut line = format!(
                "  {:<8} expected {:<5} canonical {:<5}",
                <&str>::from(r.status).to_uppercase(),
                exp,
                match r.canonical {
                    Some(true) => "match",
                    Some(false) => "-",
                    None => "undec",
                },
            );
            for (t, d) in &r.targets {
                line.push_str(&format!(" {t} {:<5}", short(d)));
            }
            writeln!(out, "{line}  {}", r.event)?;
            for d in &r.differences {
                if d.declared_by.is_empty() {
                    let detail = match &r.targets[&d.target] {
                        Decision::Error(e) => e.clone(),
                        _ => "differs from the canonical verdict, and no translation note declares it".into(),
                    };
                    writeln!(out, "      {}: {detail}", d.target)?;
                } else {
                    let why: Vec<String> = d.declared_by.iter().map(|n| format!("[{}] {}", <&str>::from(n.concern.kind()), n.message)).collect();
                    writeln!(out, "      {} differs, declared: {}", d.target, rulecast::targets::render::comment_text(&why.join("; ")))?;
                }
            }
        }
        writeln!(
            out,
            "{} rule(s), {ntests} test event(s){}: {} row(s) pass, {declared} declared difference(s), {fails} failure(s)",
            rules.len(),
            if corpus.is_some() { format!(" + {} corpus event(s)", corpus_events.len()) } else { String::new() },
            rows.iter().filter(|r| r.status == Status::Pass).count(),
        )?;
    }
    Ok(if fails > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Read events from a file: a JSON array, JSON lines, or one event.
pub fn read_events(path: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let v: Vec<Value> = serde_json::from_str(&text).with_context(|| format!("`{}` is not a JSON array of events", path.display()))?;
        return Ok(v);
    }
    if let Ok(v) = serde_json::from_str::<Value>(&text) {
        return Ok(vec![v]);
    }
    let mut out = vec![];
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        out.push(serde_json::from_str(line).with_context(|| format!("{}:{}: not a JSON event", path.display(), i + 1))?);
    }
    Ok(out)
}

/// `rulecast events --target sentinel|elastic FILE`.
pub fn events(target: Target, file: &Path) -> Result<ExitCode> {
    let events = read_events(file)?;
    let mut out = std::io::stdout().lock();
    for e in &events {
        let v = backend(target).stored_event(e);
        writeln!(out, "{}", serde_json::to_string(&v)?)?;
    }
    Ok(ExitCode::SUCCESS)
}
