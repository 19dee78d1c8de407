//! `rulecast test` and `rulecast events`: prove that every rendering means the same thing.
//!
//! For every rule, every test event and every target: the expected verdict, the canonical
//! evaluator's, and what Sentinel (rulecast's Kusto evaluator on the normalized row), Elastic
//! (rulecast's kuery evaluator on the normalized document) and Panther (real Python, one
//! process for the whole run) decide. A disagreement fails the run (exit 1) unless the rule's
//! translation notes for that target declare it.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result, bail};
use indexmap::IndexMap;
use rulecast::eval::{self, Entries, targets as tv};
use rulecast::{Rule, Target};
use serde::Serialize;
use serde_json::Value;

/// The Python driver, embedded.
const DRIVER: &str = include_str!("panther_driver.py");

/// One verdict of one target.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum TargetVerdict {
    /// The target's rendering matches the event.
    Match,
    /// It does not.
    NoMatch,
    /// The rule is not built for the target (the reason).
    Skipped(String),
    /// The rendering could not be evaluated (the reason).
    Error(String),
}

impl TargetVerdict {
    fn from(r: Result<bool, String>) -> Self {
        match r {
            Ok(true) => TargetVerdict::Match,
            Ok(false) => TargetVerdict::NoMatch,
            Err(e) if e.starts_with("skipped by the rule") => TargetVerdict::Skipped(e),
            Err(e) => TargetVerdict::Error(e),
        }
    }
    fn as_bool(&self) -> Option<bool> {
        match self {
            TargetVerdict::Match => Some(true),
            TargetVerdict::NoMatch => Some(false),
            _ => None,
        }
    }
    fn short(&self) -> &'static str {
        match self {
            TargetVerdict::Match => "match",
            TargetVerdict::NoMatch => "-",
            TargetVerdict::Skipped(_) => "skip",
            TargetVerdict::Error(_) => "ERROR",
        }
    }
}

/// A difference between a target and the canonical verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    /// The target.
    pub target: Target,
    /// The translation notes that declare it (empty: undeclared, a failure).
    pub declared_by: Vec<String>,
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Rule file.
    pub rule: String,
    /// Test name, or corpus event reference.
    pub event: String,
    /// Expected verdict (rule tests only).
    pub expected: Option<bool>,
    /// The canonical evaluator's verdict (`null`: decided by an opaque condition only).
    pub canonical: Option<bool>,
    /// Per target.
    pub sentinel: TargetVerdict,
    /// Per target.
    pub elastic: TargetVerdict,
    /// Per target.
    pub panther: TargetVerdict,
    /// pass | declared | fail
    pub status: &'static str,
    /// Where a target differs from the canonical verdict.
    pub differences: Vec<Difference>,
}

struct Job<'a> {
    rule: &'a Rule,
    name: String,
    expected: Option<bool>,
    event: Value,
    allowlists: Entries,
    /// The test's enrichment values (None for corpus events: nothing is looked up).
    enrichment: Option<eval::Enrichment>,
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

/// Run the Panther verdicts of all jobs in one python3 process.
fn panther_verdicts(rules: &[Rule], jobs: &[Job]) -> Result<(Vec<TargetVerdict>, bool)> {
    let dir = tempfile::tempdir()?;
    let mut built = std::collections::HashMap::new();
    for r in rules {
        if let Some(why) = rulecast::skip_reason(r, Target::Panther) {
            built.insert(r.file.clone(), Err(format!("skipped by the rule: {why}")));
            continue;
        }
        match rulecast::compile(r, Target::Panther, rulecast::Unsupported::Warn) {
            Ok(out) => {
                for (path, text) in &out.files {
                    if path.ends_with(".py") {
                        let stem = Path::new(path).file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
                        std::fs::write(dir.path().join(format!("{stem}.py")), text)?;
                        built.insert(r.file.clone(), Ok(stem));
                    }
                }
            }
            Err(d) => {
                built.insert(r.file.clone(), Err(d.to_string()));
            }
        }
    }
    let driver = dir.path().join("rulecast_driver.py");
    std::fs::write(&driver, DRIVER)?;
    let mut child = Command::new("python3")
        .arg(&driver)
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start python3 (needed for the Panther verdicts)")?;
    let mut stdin = child.stdin.take().context("python3 stdin")?;
    let lines: Vec<String> = jobs
        .iter()
        .enumerate()
        .filter_map(|(i, j)| match built.get(&j.rule.file) {
            Some(Ok(stem)) => Some(serde_json::json!({"id": i, "module": stem, "event": j.event, "allowlists": j.allowlists}).to_string()),
            _ => None,
        })
        .collect();
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        for l in lines {
            writeln!(stdin, "{l}")?;
        }
        Ok(())
    });
    let mut results: IndexMap<usize, TargetVerdict> = IndexMap::new();
    let mut panther_event = false;
    let stdout = child.stdout.take().context("python3 stdout")?;
    for (n, line) in BufReader::new(stdout).lines().enumerate() {
        let v: Value = serde_json::from_str(&line?).context("the Panther driver printed something that is not JSON")?;
        if n == 0 {
            panther_event = v["panther_event"].as_bool().unwrap_or(false);
            continue;
        }
        let id = v["id"].as_u64().unwrap_or(u64::MAX) as usize;
        let verdict = match (v.get("matched").and_then(Value::as_bool), v.get("error").and_then(Value::as_str)) {
            (Some(b), _) => TargetVerdict::from(Ok(b)),
            (None, Some(e)) => TargetVerdict::Error(format!("python: {e}")),
            _ => TargetVerdict::Error("python: no verdict".into()),
        };
        results.insert(id, verdict);
    }
    writer.join().map_err(|_| anyhow::anyhow!("writer thread"))??;
    let status = child.wait()?;
    if !status.success() {
        bail!("the Panther driver (python3) failed");
    }
    let out = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| match built.get(&j.rule.file) {
            Some(Err(e)) => TargetVerdict::from(Err(e.clone())),
            _ => results.get(&i).cloned().unwrap_or(TargetVerdict::Error("python: no verdict".into())),
        })
        .collect();
    Ok((out, panther_event))
}

/// `rulecast test`.
pub fn run(rules_dir: &Path, corpus: Option<&Path>, json: bool) -> Result<ExitCode> {
    let rules = match rulecast::rules_from_dir(rules_dir) {
        Ok(r) => r,
        Err(d) => {
            eprintln!("{d}");
            return Ok(ExitCode::from(1));
        }
    };
    let mut jobs: Vec<Job> = vec![];
    for r in &rules {
        for t in &r.doc.tests {
            jobs.push(Job {
                rule: r,
                name: t.value.name.clone(),
                expected: Some(t.value.expect),
                event: t.value.event.clone(),
                allowlists: t.value.allowlists.clone(),
                enrichment: Some(t.value.enrichment.clone()),
            });
        }
    }
    let ntests = jobs.len();
    let corpus_events = match corpus {
        Some(dir) => corpus_events(dir)?,
        None => vec![],
    };
    for r in &rules {
        for (name, ev) in &corpus_events {
            jobs.push(Job { rule: r, name: format!("corpus:{name}"), expected: None, event: ev.clone(), allowlists: Entries::new(), enrichment: None });
        }
    }
    let (panther, panther_event) = panther_verdicts(&rules, &jobs)?;
    // prepared queries per rule and allow-list variant
    let mut prepared: IndexMap<(String, String), tv::Prepared> = IndexMap::new();
    let mut rows = vec![];
    for (job, pv) in jobs.iter().zip(panther) {
        let key = (job.rule.file.clone(), serde_json::to_string(&job.allowlists).unwrap_or_default());
        let p = prepared.entry(key).or_insert_with(|| {
            if job.allowlists.is_empty() { tv::prepare(job.rule) } else { tv::prepare(&job.rule.with_entries(&job.allowlists)) }
        });
        let canonical = eval::evaluate_with(job.rule, &job.event, &job.allowlists, job.enrichment.as_ref()).matched;
        let sentinel = TargetVerdict::from(tv::sentinel_verdict(p, &job.event));
        let elastic = TargetVerdict::from(tv::elastic_verdict_enriched(p, &job.event, job.enrichment.as_ref()));
        let mut differences = vec![];
        let mut failed = job.expected.zip(canonical).is_some_and(|(e, c)| e != c);
        // what the targets are held to: the canonical verdict, or (opaque logic) the expectation
        let reference = canonical.or(job.expected);
        for (t, v) in [(Target::Sentinel, &sentinel), (Target::Elastic, &elastic), (Target::Panther, &pv)] {
            if let TargetVerdict::Error(_) = v {
                failed = true;
                differences.push(Difference { target: t, declared_by: vec![] });
                continue;
            }
            if v.as_bool().zip(reference).is_some_and(|(b, r)| b != r) {
                let mut declared_by: Vec<String> = p.notes.iter().filter(|(nt, _)| *nt == t).map(|(_, d)| d.message.clone()).collect();
                if t == Target::Panther && panther_event {
                    declared_by.push("Panther events have case-insensitive keys (PantherEvent)".into());
                }
                if declared_by.is_empty() {
                    failed = true;
                }
                differences.push(Difference { target: t, declared_by });
            }
        }
        let status = if failed {
            "fail"
        } else if differences.is_empty() {
            "pass"
        } else {
            "declared"
        };
        rows.push(Row {
            rule: job.rule.file.clone(),
            event: job.name.clone(),
            expected: job.expected,
            canonical,
            sentinel,
            elastic,
            panther: pv,
            status,
            differences,
        });
    }
    let fails = rows.iter().filter(|r| r.status == "fail").count();
    let declared = rows.iter().filter(|r| r.status == "declared").count();
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
    } else {
        let mut last = String::new();
        for r in rows.iter().filter(|r| r.expected.is_some() || r.status != "pass") {
            if r.rule != last {
                writeln!(out, "{}", r.rule)?;
                last = r.rule.clone();
            }
            let exp = r.expected.map(|e| if e { "match" } else { "-" }).unwrap_or("n/a");
            writeln!(
                out,
                "  {:<8} expected {:<5} canonical {:<5} sentinel {:<5} elastic {:<5} panther {:<5}  {}",
                r.status.to_uppercase(),
                exp,
                match r.canonical {
                    Some(true) => "match",
                    Some(false) => "-",
                    None => "undec",
                },
                r.sentinel.short(),
                r.elastic.short(),
                r.panther.short(),
                r.event
            )?;
            for d in &r.differences {
                if d.declared_by.is_empty() {
                    let why = match d.target {
                        Target::Sentinel => &r.sentinel,
                        Target::Elastic => &r.elastic,
                        Target::Panther => &r.panther,
                    };
                    let detail = match why {
                        TargetVerdict::Error(e) => e.clone(),
                        _ => "differs from the canonical verdict, and no translation note declares it".into(),
                    };
                    writeln!(out, "      {}: {detail}", d.target)?;
                } else {
                    writeln!(out, "      {} differs, declared: {}", d.target, rulecast::targets::render::comment_text(&d.declared_by.join("; ")))?;
                }
            }
        }
        writeln!(
            out,
            "{} rule(s), {ntests} test event(s){}: {} row(s) pass, {declared} declared difference(s), {fails} failure(s)",
            rules.len(),
            if corpus.is_some() { format!(" + {} corpus event(s)", corpus_events.len()) } else { String::new() },
            rows.iter().filter(|r| r.status == "pass").count(),
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
        let v = match target {
            Target::Sentinel => serde_json::to_value(eval::normalize::to_sentinel_row(e))?,
            Target::Elastic => eval::normalize::to_elastic_doc(e),
            Target::Panther => e.clone(),
        };
        writeln!(out, "{}", serde_json::to_string(&v)?)?;
    }
    Ok(ExitCode::SUCCESS)
}
