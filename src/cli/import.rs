//! `rulecast import`: vendor rule files → canonical rule files, with a report.
//!
//! Input: `--from VENDOR` and files or folders. Output: one canonical YAML per imported rule in
//! `--out` (each written atomically; an existing file is kept unless `--force`), and a report:
//! per rule, imported fully, imported with opaque parts (named, with the reason) or refused
//! (with the reason and `file:line:col`). Every written rule has been loaded back by rulecast's
//! own loader first; the report also says which targets it builds for.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use rulecast::diag::Format;
use rulecast::import::{Outcome, Part, PartKind, Vendor, import_file_with};
use rulecast::{Target, Unsupported};
use serde::Serialize;
use strum::IntoEnumIterator;

/// One line of the report.
#[derive(Debug, Serialize)]
pub struct Entry {
    /// The vendor file.
    pub source: String,
    /// The canonical file written (or that would have been).
    pub output: Option<String>,
    /// full | partial (metadata or alert parts left out) | opaque (part of the detection kept
    /// opaque or declared) | refused | exists
    pub status: &'static str,
    /// Opaque or left-out parts, each with its reason (status `opaque`).
    pub parts: Vec<Part>,
    /// Things kept in another form (nothing lost), e.g. an unknown ATT&CK tag kept as a tag.
    pub notes: Vec<Part>,
    /// Why it was refused, located (status `refused`).
    pub error: Option<String>,
    /// Target -> "builds" or why not.
    pub targets: BTreeMap<String, String>,
}

/// Which targets a loaded rule builds for, or why not.
fn target_status(rule: &rulecast::Rule) -> BTreeMap<String, String> {
    Target::iter()
        .map(|t| {
            let status = if let Some(why) = rulecast::skip_reason(rule, t) {
                format!("not built: {why}")
            } else {
                match rulecast::compile(rule, t, Unsupported::Warn) {
                    Ok(out) => {
                        let notes = out.notes.iter().filter(|d| d.severity == rulecast::diag::Severity::Note).count();
                        if notes == 0 { "builds".to_string() } else { format!("builds, {notes} translation note(s)") }
                    }
                    Err(d) => format!("not built: {}", d.iter().find(|x| x.is_error()).map_or_else(String::new, |x| x.message.clone())),
                }
            };
            (t.to_string(), status)
        })
        .collect()
}

/// The author written into an imported rule whose vendor file names none (and no `--author`
/// was given).
pub fn default_author(vendor: Vendor) -> String {
    format!("unknown ({vendor} import)")
}

/// The targets a loaded rule is not skipped for but cannot be built for, each with the reason
/// (the first error), as `targets.<t>.skip` declares it.
fn refused_targets(rule: &rulecast::Rule) -> Vec<(String, String)> {
    Target::iter()
        .filter(|&t| rulecast::skip_reason(rule, t).is_none())
        .filter_map(|t| match rulecast::compile(rule, t, Unsupported::Warn) {
            Ok(_) => None,
            Err(d) => {
                let why = d.iter().find(|x| x.is_error()).map_or_else(|| "does not build".to_string(), |x| x.message.clone());
                Some((t.to_string(), format!("rulecast import: {why}")))
            }
        })
        .collect()
}

/// Write a file atomically (a temporary file in the same folder, renamed into place).
fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("cannot write in `{}`", dir.display()))?;
    tmp.write_all(text.as_bytes())?;
    tmp.persist(path).with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(())
}

/// Run `rulecast import`.
#[allow(clippy::too_many_arguments)]
pub fn run(vendor: Vendor, paths: &[PathBuf], read: rulecast::load::files::ReadPolicy, out: &Path, force: bool, json: bool, format: Format, authors: &[String], created: Option<&str>) -> Result<ExitCode> {
    if let Some(c) = created
        && !rulecast::load::check::is_date(c)
    {
        anyhow::bail!("--created takes a date YYYY-MM-DD (a day that exists), found `{c}`");
    }
    let (files, unread) = rulecast::import::files_with(vendor, paths, read);
    if files.is_empty() && !unread.is_empty() {
        anyhow::bail!("{}", unread.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"));
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create `{}`", out.display()))?;
    let mut entries = vec![];
    let mut used: BTreeMap<String, usize> = BTreeMap::new();
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    for d in &unread {
        let source = d.message.split('`').nth(1).unwrap_or_default().to_string();
        entries.push(Entry { source, output: None, status: "refused", parts: vec![], notes: vec![], error: Some(d.to_string()), targets: BTreeMap::new() });
    }
    for f in &files {
        for imp in import_file_with(vendor, f, read) {
            let source = f.display().to_string();
            let mut entry = Entry { source, output: None, status: "refused", parts: vec![], notes: vec![], error: None, targets: BTreeMap::new() };
            let parts = match &imp.outcome {
                Outcome::Refused(d) => {
                    entry.error = Some(rulecast::diag::render(std::slice::from_ref(d), format, &|f| rulecast::load::files::read_text(Path::new(f), read).ok()).trim_end().to_string());
                    entries.push(entry);
                    continue;
                }
                Outcome::Full => vec![],
                Outcome::Partial(p) | Outcome::Opaque(p) => p.clone(),
            };
            entry.notes = imp.notes.clone();
            // one file per rule: a second rule with the same slug gets a numbered name
            let n = used.entry(imp.slug.clone()).or_insert(0);
            *n += 1;
            let stem = if *n == 1 { imp.slug.clone() } else { format!("{}_{}", imp.slug, n) };
            let file_name = format!("{stem}.yaml");
            let path = out.join(&file_name);
            let mut imp = imp;
            if !authors.is_empty() || created.is_some() {
                match rulecast::import::fill_missing(&imp.yaml, authors, created) {
                    Ok(y) => imp.yaml = y,
                    Err(e) => {
                        entry.error = Some(format!("internal error: the imported rule is not a mapping (please report): {e}"));
                        entries.push(entry);
                        continue;
                    }
                }
            }
            entry.output = Some(path.display().to_string());
            // the importer's output must load: if it does not, that is rulecast's bug, reported
            let rule = match rulecast::rule_from_str(&file_name, &stem, &imp.yaml) {
                Ok(r) => r,
                Err(d) => {
                    entry.error = Some(format!("internal error: the imported rule does not load (please report):\n{d}"));
                    entries.push(entry);
                    continue;
                }
            };
            if let Some(first) = ids.insert(rule.doc.id.value.clone(), source_of(&entry)) {
                entry.error = Some(format!("error[E105]: rule id `{}` was already imported from {first}", rule.doc.id.value));
                entries.push(entry);
                continue;
            }
            // what every target needs: an author (detection-rules requires one; Sentinel and
            // Panther files name none), declared in the report
            let mut rule = rule;
            let need_author = authors.is_empty() && rule.doc.authors.is_empty();
            let need_created = created.is_none() && rule.doc.created.is_none();
            if need_author || need_created {
                let default = default_author(vendor);
                let today = rulecast::lock::today();
                let a = if need_author { vec![default.clone()] } else { vec![] };
                let c = need_created.then_some(today.as_str());
                match rulecast::import::fill_missing(&imp.yaml, &a, c).map_err(|e| e.to_string()).and_then(|y| {
                    rulecast::rule_from_str(&file_name, &stem, &y).map(|r| (y, r)).map_err(|d| d.to_string())
                }) {
                    Ok((y, r)) => {
                        imp.yaml = y;
                        rule = r;
                        if need_author {
                            entry.notes.push(Part::note(format!("the vendor file names no author: `authors: [{default}]` written (name one with --author)")));
                        }
                        if need_created {
                            entry.notes.push(Part::note(format!("the vendor file gives no creation date: `created: {today}` (the import date) written (set one with --created)")));
                        }
                    }
                    Err(e) => {
                        entry.error = Some(format!("internal error: the imported rule does not load with a default author or date (please report):\n{e}"));
                        entries.push(entry);
                        continue;
                    }
                }
            }
            // a target the rule cannot be built for is declared in the rule (`targets.<t>.skip`),
            // so that `rulecast build` writes the others
            let refusals = refused_targets(&rule);
            if !refusals.is_empty() {
                match rulecast::import::add_skips(&imp.yaml, &refusals).map_err(|e| e.to_string()).and_then(|y| {
                    rulecast::rule_from_str(&file_name, &stem, &y).map(|r| (y, r)).map_err(|d| d.to_string())
                }) {
                    Ok((y, r)) => {
                        imp.yaml = y;
                        rule = r;
                    }
                    Err(e) => {
                        entry.error = Some(format!("internal error: the imported rule does not load with `targets.<t>.skip` (please report):\n{e}"));
                        entries.push(entry);
                        continue;
                    }
                }
            }
            entry.targets = target_status(&rule);
            if entry.targets.values().all(|s| !s.starts_with("builds")) {
                // a rule that builds for no target is not an import: say why per target
                let why: Vec<String> = entry.targets.iter().map(|(t, s)| format!("{t}: {}", s.trim_start_matches("not built: "))).collect();
                entry.error = Some(format!("error[E502] builds for no target; not written\n{}", why.join("\n")));
                entry.parts = parts;
                entries.push(entry);
                continue;
            }
            if path.exists() && !force {
                entry.status = "exists";
                entry.parts = parts;
                entries.push(entry);
                continue;
            }
            write_atomic(&path, &imp.yaml)?;
            entry.status = if parts.is_empty() {
                "full"
            } else if imp.outcome.drops_detection() {
                "opaque"
            } else {
                "partial"
            };
            entry.parts = parts;
            entries.push(entry);
        }
    }
    let count = |s: &str| entries.iter().filter(|e| e.status == s).count();
    let (full, partial, opaque, refused, exists) = (count("full"), count("partial"), count("opaque"), count("refused"), count("exists"));
    let mut stdout = std::io::stdout().lock();
    if json {
        writeln!(stdout, "{}", serde_json::to_string_pretty(&entries)?)?;
    } else {
        for e in &entries {
            let label = match e.status {
                "full" => "FULL   ",
                "partial" => "PARTIAL",
                "opaque" => "OPAQUE ",
                "exists" => "EXISTS ",
                _ => "REFUSED",
            };
            writeln!(stdout, "{label} {}{}", e.source, e.output.as_ref().map_or_else(String::new, |o| format!(" -> {o}")))?;
            for p in &e.parts {
                let p = if p.kind == PartKind::Detection { p.to_string() } else { p.reason.clone() };
                writeln!(stdout, "          left out or kept opaque: {p}")?;
            }
            for n in &e.notes {
                writeln!(stdout, "          {n}")?;
            }
            if let Some(err) = &e.error {
                for line in err.lines() {
                    writeln!(stdout, "          {line}")?;
                }
            }
            if e.status == "exists" {
                writeln!(stdout, "          not overwritten (use --force)")?;
            }
            for (t, s) in e.targets.iter().filter(|(_, s)| !s.starts_with("builds")) {
                writeln!(stdout, "          {t}: {s}")?;
            }
        }
        writeln!(
            stdout,
            "{} file(s), {} rule(s): {full} imported fully, {partial} with metadata or alert parts left out, {opaque} with opaque detection parts, {refused} refused{} -> {}",
            files.len(),
            entries.len(),
            if exists > 0 { format!(", {exists} not overwritten") } else { String::new() },
            out.display()
        )?;
    }
    Ok(if refused > 0 || exists > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn source_of(e: &Entry) -> String {
    e.source.clone()
}
