//! `rulecast sync`: the canonical rules against vendor repository folders.
//!
//! Input: the canonical rules (with their lock) and, per target, a vendor folder (read
//! recursively). Output: a report of every rule × target (`rulecast::sync::State`), text or
//! JSON; exit 0 when all are in sync, 1 otherwise, 2 on error. `--write` regenerates the stale
//! and missing files (and, with `--overwrite-drifted`, the drifted ones), each written
//! atomically, every other file left as it is. `--adopt RULE` imports the hand-edited vendor
//! file of a drifted rule back into its canonical file, keeping what the vendor format cannot
//! carry (the rule's id, `tests:`, authors, ...).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use rulecast::diag::Format;
use rulecast::load::files::ReadPolicy;
use rulecast::sync::{Pair, State};
use rulecast::{Target, Unsupported};
use serde_json::Value;
use strum::IntoEnumIterator;

/// What `rulecast sync` was asked to do.
pub struct Request<'a> {
    /// Canonical rules folder.
    pub rules: &'a Path,
    /// Vendor folders by target.
    pub dirs: Vec<(Target, PathBuf)>,
    /// JSON report.
    pub json: bool,
    /// Regenerate stale and missing files.
    pub write: bool,
    /// With `write`: drifted files too.
    pub overwrite_drifted: bool,
    /// Import a drifted vendor file back into this rule (file stem or id).
    pub adopt: Option<String>,
    /// Which target's file to adopt when several drifted.
    pub adopt_from: Option<Target>,
}

/// A vendor rule found in a folder.
struct Found {
    /// The main file (Sentinel YAML, Elastic TOML, Panther YAML).
    path: PathBuf,
    /// `(name, text)`: the main file, and for Panther its Python.
    files: Vec<(String, String)>,
}

/// One expected pair: the rule and what `build` writes.
struct Expected<'r> {
    rule: &'r rulecast::Rule,
    files: Vec<(String, String)>,
}

/// The extension of the target's main file (the one holding the rule id).
fn main_ext(t: Target) -> &'static str {
    rulecast::vendors::backend(t).main_extension()
}

/// The file name part of a build path (`sentinel/x.yaml` -> `x.yaml`).
fn base(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Run `rulecast sync`.
pub fn run(req: &Request) -> Result<ExitCode> {
    if req.dirs.is_empty() {
        let flags: Vec<String> = Target::iter().map(|t| format!("--{t} DIR")).collect();
        let (last, rest) = flags.split_last().context("no targets")?;
        let list = if rest.is_empty() { last.clone() } else { format!("{} or {last}", rest.join(", ")) };
        bail!("name at least one vendor folder: {list}");
    }
    for (t, d) in &req.dirs {
        if !d.is_dir() {
            bail!("the {t} folder `{}` does not exist or is not a folder", d.display());
        }
    }
    let policy = ReadPolicy::default();
    let rules = match super::load_rules(req.rules, policy, Format::Concise)? {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let Ok(rules) = super::pack::with_lock(req.rules, rules).map_err(|msg| eprintln!("{msg}")) else { return Ok(ExitCode::from(2)) };
    let lock = super::pack::read_lock(req.rules).map_err(|m| anyhow::anyhow!(m))?;

    let mut pairs: Vec<Pair> = vec![];
    let mut refused = 0;
    // (pair index) -> files to write
    let mut plans: BTreeMap<usize, Vec<(PathBuf, String)>> = BTreeMap::new();
    // (pair index) -> vendor main file, for --adopt
    let mut vendor_paths: BTreeMap<usize, PathBuf> = BTreeMap::new();
    for (t, dir) in &req.dirs {
        let t = *t;
        // what build writes, by vendor id
        let mut expected: BTreeMap<String, Expected> = BTreeMap::new();
        for rule in &rules {
            if rulecast::skip_reason(rule, t).is_some() {
                continue;
            }
            match rulecast::compile(rule, t, Unsupported::Warn) {
                Ok(out) => {
                    let Some((_, main)) = out.files.iter().find(|(p, _)| p.ends_with(main_ext(t))) else { continue };
                    let Ok(Some(id)) = rulecast::sync::vendor_id(t, main) else {
                        bail!("internal error: the {t} file built from `{}` has no rule id (please report)", rule.file);
                    };
                    // the main file first, the others in build order (a correlation's signal
                    // rules each with their Python, as the vendor folder's files are gathered)
                    let mut files = out.files.clone();
                    if let Some(i) = files.iter().position(|(p, _)| p.ends_with(main_ext(t))) {
                        let main = files.remove(i);
                        files.insert(0, main);
                    }
                    expected.insert(id, Expected { rule, files });
                }
                Err(d) => {
                    refused += 1;
                    let why = d.iter().find(|x| x.is_error()).map_or_else(String::new, |x| x.message.clone());
                    eprintln!("{}: not built for {t}: {why}", rule.file);
                }
            }
        }
        // what the folder holds, by vendor id
        let (paths, unread) = rulecast::load::files::walk(dir, rulecast::vendors::importer(t.vendor()).extensions(), policy);
        for d in unread {
            eprintln!("{d}");
        }
        let mut found: BTreeMap<String, Found> = BTreeMap::new();
        for p in paths {
            let text = rulecast::load::files::read_text(&p, policy).map_err(|d| anyhow::anyhow!("{d}"))?;
            let id = match rulecast::sync::vendor_id(t, &text) {
                Ok(Some(id)) => id,
                Ok(None) => continue,
                Err(e) => {
                    pairs.push(Pair { state: State::Unreadable, target: t, id: String::new(), rule: None, vendor_file: Some(p.display().to_string()), differences: vec![e] });
                    continue;
                }
            };
            let mut files = vec![(p.display().to_string(), text.clone())];
            for name in rulecast::vendors::backend(t).companions(&text) {
                let path = p.parent().unwrap_or(Path::new(".")).join(&name);
                if let Ok(text) = rulecast::load::files::read_text(&path, policy) {
                    files.push((path.display().to_string(), text));
                }
            }
            if let Some(first) = found.get(&id) {
                pairs.push(Pair {
                    state: State::Orphan,
                    target: t,
                    id: id.clone(),
                    rule: None,
                    vendor_file: Some(p.display().to_string()),
                    differences: vec![format!("a second file with the id of `{}`", first.path.display())],
                });
                continue;
            }
            found.insert(id, Found { path: p, files });
        }
        // a rule made of other vendor rules (a Panther correlation rule and its signal rules):
        // their files are the rule's, in its order, as `build` writes them
        let made_of: Vec<(String, Vec<String>)> =
            found.iter().map(|(id, f)| (id.clone(), rulecast::vendors::backend(t).parts(&f.files[0].1))).filter(|(_, parts)| !parts.is_empty()).collect();
        for (id, parts) in made_of {
            let mut extra = vec![];
            for part in parts {
                if let Some(f) = found.remove(&part) {
                    extra.extend(f.files);
                }
            }
            if let Some(f) = found.get_mut(&id) {
                f.files.extend(extra);
            }
        }
        for (id, exp) in &expected {
            let rule_file = Some(exp.rule.file.clone());
            let Some(f) = found.remove(id) else {
                let i = pairs.len();
                pairs.push(Pair { state: State::Missing, target: t, id: id.clone(), rule: rule_file, vendor_file: None, differences: vec![] });
                plans.insert(i, exp.files.iter().map(|(p, text)| (dir.join(base(p)), text.clone())).collect());
                continue;
            };
            let known: Vec<&str> = lock.as_ref().and_then(|l| l.rules.get(&exp.rule.doc.id.value)).map(|e| rulecast::lock::known_hashes(e, t)).unwrap_or_default();
            let state = rulecast::sync::classify(t, &exp.files, &f.files, &known);
            let mut differences = vec![];
            if state != State::InSync {
                differences = semantic(t, &exp.files, &f)?;
                if state == State::Stale && differences.first().is_some_and(|d| d.starts_with("no difference in meaning")) {
                    differences = vec!["the same meaning; only the version field differs (the lock bumped it)".to_string()];
                }
            }
            let i = pairs.len();
            pairs.push(Pair { state, target: t, id: id.clone(), rule: rule_file, vendor_file: Some(f.path.display().to_string()), differences });
            vendor_paths.insert(i, f.path.clone());
            if state != State::InSync {
                let folder = f.path.parent().unwrap_or(Path::new(".")).to_path_buf();
                plans.insert(
                    i,
                    // the main file (first) where the vendor keeps it, the others beside it
                    exp.files.iter().enumerate().map(|(i, (p, text))| (if i == 0 { f.path.clone() } else { folder.join(base(p)) }, text.clone())).collect(),
                );
            }
        }
        for (id, f) in found {
            pairs.push(Pair { state: State::Orphan, target: t, id, rule: None, vendor_file: Some(f.path.display().to_string()), differences: vec![] });
        }
    }

    if let Some(name) = &req.adopt {
        return adopt(req, &rules, &pairs, &vendor_paths, name);
    }

    let mut written = 0;
    let mut fixed = vec![false; pairs.len()];
    if req.write {
        // stage every file first, then move them into place: a failure while staging writes nothing
        let mut staged = vec![];
        for (i, files) in &plans {
            let p = &pairs[*i];
            let go = matches!(p.state, State::Stale | State::Missing) || (p.state == State::Drifted && req.overwrite_drifted);
            if !go {
                continue;
            }
            for (path, text) in files {
                if std::fs::read(path).is_ok_and(|b| b == text.as_bytes()) {
                    continue;
                }
                let dir = path.parent().unwrap_or(Path::new("."));
                let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("cannot write in `{}`", dir.display()))?;
                tmp.write_all(text.as_bytes())?;
                staged.push((tmp, path.clone()));
            }
            fixed[*i] = true;
        }
        for (tmp, path) in staged {
            tmp.persist(&path).with_context(|| format!("cannot write `{}`", path.display()))?;
            written += 1;
        }
    }

    let count = |s: State| pairs.iter().filter(|p| p.state == s).count();
    let open = pairs.iter().zip(&fixed).filter(|(p, f)| p.state != State::InSync && !**f).count();
    let mut stdout = std::io::stdout().lock();
    if req.json {
        let summary = serde_json::json!({
            "pairs": pairs.len(),
            "in-sync": count(State::InSync),
            "stale": count(State::Stale),
            "drifted": count(State::Drifted),
            "missing": count(State::Missing),
            "orphan": count(State::Orphan),
            "unreadable": count(State::Unreadable),
            "not-built": refused,
            "written": written,
        });
        writeln!(stdout, "{}", serde_json::to_string_pretty(&serde_json::json!({"pairs": pairs, "summary": summary}))?)?;
    } else {
        for (p, f) in pairs.iter().zip(&fixed) {
            if p.state == State::InSync {
                continue;
            }
            let what = p.rule.as_deref().or(p.vendor_file.as_deref()).unwrap_or("");
            let file = match (&p.rule, &p.vendor_file) {
                (Some(_), Some(v)) => format!(" ({v})"),
                _ => String::new(),
            };
            let done = if *f { " -> written" } else { "" };
            writeln!(stdout, "{:<10} {:<8} {what}{file}{done}", p.state.to_string(), p.target.to_string())?;
            for d in &p.differences {
                writeln!(stdout, "           {d}")?;
            }
        }
        writeln!(
            stdout,
            "{} pair(s): {} in sync, {} stale, {} drifted, {} missing, {} orphan{}{}{}",
            pairs.len(),
            count(State::InSync),
            count(State::Stale),
            count(State::Drifted),
            count(State::Missing),
            count(State::Orphan),
            if count(State::Unreadable) > 0 { format!(", {} unreadable", count(State::Unreadable)) } else { String::new() },
            if refused > 0 { format!(", {refused} not built") } else { String::new() },
            if req.write { format!("; {written} file(s) written") } else { String::new() },
        )?;
    }
    Ok(if open == 0 && refused == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The differences by meaning between what `build` writes and the vendor file: both imported by
/// rulecast's importer, the canonical documents compared.
fn semantic(t: Target, built: &[(String, String)], vendor: &Found) -> Result<Vec<String>> {
    let tmp = tempfile::tempdir()?;
    for (p, text) in built {
        std::fs::write(tmp.path().join(base(p)), text)?;
    }
    let built_main = built.iter().find(|(p, _)| p.ends_with(main_ext(t))).map(|(p, _)| tmp.path().join(base(p))).context("no main file")?;
    let a = imported_doc(t, &built_main);
    let b = imported_doc(t, &vendor.path);
    Ok(match (a, b) {
        (Ok(a), Ok(b)) => {
            let d = rulecast::sync::differences(&a, &b);
            if d.is_empty() { vec!["no difference in meaning (formatting, comments or a field rulecast does not read)".to_string()] } else { d }
        }
        (Err(e), _) => vec![format!("the built file does not import back ({e}): no difference by meaning to show")],
        (_, Err(e)) => vec![format!("the vendor file does not import: {e}")],
    })
}

/// A vendor file imported into a canonical document (the first rule in it).
fn imported_doc(t: Target, path: &Path) -> std::result::Result<Value, String> {
    let imp = rulecast::import::import_file(t.vendor(), path).into_iter().next().ok_or("no rule in the file")?;
    if let rulecast::import::Outcome::Refused(d) = &imp.outcome {
        return Err(d.message.clone());
    }
    let mut v: Value = serde_saphyr::from_str(&imp.yaml).map_err(|e| e.to_string())?;
    if let Some(o) = v.as_object_mut() {
        // the canonical id an importer derives from the vendor id: not a difference of meaning
        o.remove("id");
    }
    Ok(v)
}

/// `--adopt RULE`: the drifted vendor file of RULE imported into its canonical file.
fn adopt(req: &Request, rules: &[rulecast::Rule], pairs: &[Pair], vendor_paths: &BTreeMap<usize, PathBuf>, name: &str) -> Result<ExitCode> {
    let Some(rule) = rules.iter().find(|r| r.doc.id.value == name || Path::new(&r.file).file_stem().is_some_and(|s| s == name)) else {
        bail!("no canonical rule has the id or file name `{name}`");
    };
    let drifted: Vec<usize> = pairs
        .iter()
        .enumerate()
        // a stale file is an earlier version of the rule: adopting it would undo the rule's change
        .filter(|(_, p)| p.rule.as_deref() == Some(rule.file.as_str()) && p.state == State::Drifted)
        .filter(|(_, p)| req.adopt_from.is_none_or(|t| t == p.target))
        .map(|(i, _)| i)
        .collect();
    let i = match drifted.as_slice() {
        [] => bail!("`{}` has no drifted vendor file{} to adopt", rule.file, req.adopt_from.map_or_else(String::new, |t| format!(" for {t}"))),
        [i] => *i,
        many => bail!(
            "`{}` drifted in several targets ({}): choose one with --adopt-from",
            rule.file,
            many.iter().map(|i| pairs[*i].target.to_string()).collect::<Vec<_>>().join(", ")
        ),
    };
    let p = &pairs[i];
    let vendor_path = vendor_paths.get(&i).context("the drifted pair has a vendor file")?;
    let built = rulecast::compile(rule, p.target, Unsupported::Warn).map_err(|d| anyhow::anyhow!("`{}` does not build for {}:\n{d}", rule.file, p.target))?;
    let tmp = tempfile::tempdir()?;
    for (f, text) in &built.files {
        std::fs::write(tmp.path().join(base(f)), text)?;
    }
    let built_main = built.files.iter().find(|(f, _)| f.ends_with(main_ext(p.target))).map(|(f, _)| tmp.path().join(base(f))).context("no main file")?;
    let a = imported_doc(p.target, &built_main).map_err(|e| anyhow::anyhow!("the built {} file does not import back ({e}); adopt the edit by hand", p.target))?;
    let b = imported_doc(p.target, vendor_path).map_err(|e| anyhow::anyhow!("`{}` does not import: {e}", vendor_path.display()))?;
    let original = std::fs::read_to_string(&rule.file).with_context(|| format!("cannot read `{}`", rule.file))?;
    let yaml = rulecast::sync::adopted(&original, &a, &b, &p.target.to_string()).map_err(|e| anyhow::anyhow!("cannot merge the import into `{}`: {e}", rule.file))?;
    let stem = Path::new(&rule.file).file_stem().and_then(|s| s.to_str()).unwrap_or("rule").to_string();
    if let Err(d) = rulecast::rule_from_str(&rule.file, &stem, &yaml) {
        bail!("the adopted rule does not load (nothing written):\n{d}");
    }
    let path = Path::new(&rule.file);
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(yaml.as_bytes())?;
    tmp.persist(path).with_context(|| format!("cannot write `{}`", rule.file))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "adopted {} ({}) into {}:", vendor_path.display(), p.target, rule.file)?;
    for d in &p.differences {
        writeln!(stdout, "  {d}")?;
    }
    writeln!(stdout, "run `rulecast lock` to record the change, then `rulecast sync` again")?;
    Ok(ExitCode::SUCCESS)
}
