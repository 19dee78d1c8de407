//! `rulecast pack` and `rulecast lock`.
//!
//! `lock`: the canonical rules -> `<rules>/rulecast.lock`, versions bumped where a target's file
//! changed meaning (`--check`: exit 1 when it would change, writing nothing).
//! `pack`: the canonical rules and their lock -> `<out>/` with the vendor packs, docs and release
//! notes, written atomically (a staging folder swapped in by rename). Exit 1 when the lock does not
//! describe the rules (nothing written), or when a rule × target pair could not be built and the
//! rule does not `skip` it (the rest is written, the pair listed).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use rulecast::diag::Format;
use rulecast::lock::{self, Lock};
use rulecast::{Rule, Target};

/// The marker file that says a folder is a pack `rulecast pack` may replace.
const MARKER: &str = ".rulecast-pack";

fn load(rules_dir: &Path, format: Format) -> Result<Option<Vec<Rule>>> {
    if !rules_dir.is_dir() {
        anyhow::bail!("rules folder `{}` does not exist", rules_dir.display());
    }
    match rulecast::rules_from_dir(rules_dir) {
        Ok(r) => Ok(Some(r)),
        Err(d) => {
            super::print_diags(&d.0, format, rulecast::load::files::ReadPolicy::default());
            eprintln!("{} error(s); nothing written", d.iter().filter(|x| x.is_error()).count());
            Ok(None)
        }
    }
}

/// The lock beside the rules: `Ok(None)` when there is none, `Err` with a located message when
/// it does not parse.
pub fn read_lock(rules_dir: &Path) -> std::result::Result<Option<Lock>, String> {
    // a single rule file: the lock beside it
    let dir = if rules_dir.is_file() { rules_dir.parent().unwrap_or(Path::new(".")) } else { rules_dir };
    let path = dir.join(lock::FILE_NAME);
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(None);
    }
    let text = rulecast::load::files::read_text(&path, rulecast::load::files::ReadPolicy::default()).map_err(|d| d.to_string())?;
    lock::from_str(&text).map(Some).map_err(|e| {
        // serde_json says "line L, column C: …": make it file:line:col
        let located = regex::Regex::new(r"^line (\d+), column (\d+): (.*)$")
            .ok()
            .and_then(|re| re.captures(&e).map(|c| format!("{}:{}:{}: error: {}", path.display(), &c[1], &c[2], &c[3])));
        located.unwrap_or_else(|| format!("{}: error: {e}", path.display()))
    })
}

/// Hook for `rulecast build`: the rules with the lock's tracking fields applied (a warning when
/// the lock does not describe them any more). `Err`: the lock does not parse (exit 1).
pub fn with_lock(rules_dir: &Path, mut rules: Vec<Rule>) -> std::result::Result<Vec<Rule>, String> {
    let Some(l) = read_lock(rules_dir)? else { return Ok(rules) };
    if let Ok(fps) = fingerprints(&rules) {
        let stale = lock::stale(&l, &fps);
        if !stale.is_empty() {
            eprintln!("warning: {} does not describe {} change(s); run `rulecast lock` before packing", lock::FILE_NAME, stale.len());
        }
    }
    rules.iter_mut().for_each(|r| lock::apply(r, &l));
    Ok(rules)
}

pub fn fingerprints<'a>(rules: impl IntoIterator<Item = &'a Rule>) -> Result<Vec<lock::Fingerprint>> {
    rules
        .into_iter()
        .map(|r| {
            let text = std::fs::read_to_string(&r.file).with_context(|| format!("cannot read `{}`", r.file))?;
            lock::fingerprint(r, &text).map_err(|e| anyhow::anyhow!(e))
        })
        .collect()
}

/// `rulecast lock`.
pub fn run_lock(rules_dir: &Path, date: Option<&str>, check: bool, format: Format) -> Result<ExitCode> {
    let Some(rules) = load(rules_dir, format)? else { return Ok(ExitCode::from(1)) };
    let old = match read_lock(rules_dir) {
        Ok(l) => l,
        Err(msg) => {
            eprintln!("{msg}");
            return Ok(ExitCode::from(1));
        }
    };
    let date = match date {
        Some(d) => {
            if !regex::Regex::new(r"^\d{4}-\d{2}-\d{2}$").expect("regex").is_match(d) {
                anyhow::bail!("--date `{d}`: expected YYYY-MM-DD");
            }
            d.to_string()
        }
        None => lock::today(),
    };
    let fps = fingerprints(&rules)?;
    let base = old.clone().unwrap_or_default();
    let stale = lock::stale(&base, &fps);
    let next = lock::update(&base, &fps, &date);
    let path = rules_dir.join(lock::FILE_NAME);
    let mut stdout = std::io::stdout();
    if check {
        if stale.is_empty() && old.is_some() {
            writeln!(stdout, "{} is up to date (release {})", path.display(), base.release)?;
            return Ok(ExitCode::SUCCESS);
        }
        for s in &stale {
            writeln!(stdout, "  {s}")?;
        }
        writeln!(stdout, "{} is out of date: run `rulecast lock`", path.display())?;
        return Ok(ExitCode::from(1));
    }
    if old.as_ref() == Some(&next) {
        writeln!(stdout, "{} is up to date (release {})", path.display(), next.release)?;
        return Ok(ExitCode::SUCCESS);
    }
    write_atomically(&path, lock::to_string(&next).as_bytes())?;
    let c = &next.changes;
    writeln!(
        stdout,
        "{}: release {} ({}): {} added, {} changed, {} removed",
        path.display(),
        next.release,
        date,
        c.added.len(),
        c.changed.len(),
        c.removed.len()
    )?;
    for ch in &c.changed {
        let bumps: Vec<String> = ch.bumps.iter().map(|b| format!("{} {} → {}", b.target, b.from, b.to)).collect();
        writeln!(stdout, "  changed {}: {}{}{}", ch.name, ch.summary, if bumps.is_empty() { "" } else { "; " }, bumps.join(", "))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("cannot write in `{}`", dir.display()))?;
    tmp.write_all(bytes)?;
    tmp.persist(path).with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(())
}

/// `rulecast pack`.
pub fn run_pack(rules_dir: &Path, targets: &[Target], out: &Path, format: Format) -> Result<ExitCode> {
    let Some(rules) = load(rules_dir, format)? else { return Ok(ExitCode::from(1)) };
    let lock = match read_lock(rules_dir) {
        Ok(l) => l,
        Err(msg) => {
            eprintln!("{msg}");
            return Ok(ExitCode::from(1));
        }
    };
    if let Some(l) = &lock {
        let stale = lock::stale(l, &fingerprints(&rules)?);
        if !stale.is_empty() {
            for s in &stale {
                eprintln!("{s}");
            }
            eprintln!("{} does not describe the rules: run `rulecast lock`; nothing written", rules_dir.join(lock::FILE_NAME).display());
            return Ok(ExitCode::from(1));
        }
    }
    let pack = rulecast::pack::pack(&rules, targets, lock.as_ref()).map_err(|e| anyhow::anyhow!(e))?;
    write_pack(out, &pack.files)?;
    let mut stdout = std::io::stdout();
    let refused = pack.left_out.iter().filter(|l| !l.skipped).count();
    writeln!(
        stdout,
        "packed {} rule(s) into {}: {} file(s){}",
        rules.len(),
        out.display(),
        pack.files.len(),
        if lock.is_none() { format!(" (no {}: default versions)", lock::FILE_NAME) } else { String::new() }
    )?;
    for l in &pack.left_out {
        let what = if l.skipped { "skipped" } else { "left out" };
        writeln!(stdout, "  {what} {} for {}: {}", l.target, l.file, l.reason)?;
    }
    Ok(if refused > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Replace `out` as a whole: everything is written into a staging folder beside it, which then
/// takes its place by rename. An existing `out` must be empty or a previous pack (it has the
/// marker file), so that a mistyped `--out` never deletes anything else.
fn write_pack(out: &Path, files: &std::collections::BTreeMap<String, Vec<u8>>) -> Result<()> {
    if out.exists() {
        let empty = std::fs::read_dir(out).with_context(|| format!("cannot read `{}`", out.display()))?.next().is_none();
        if !empty && !out.join(MARKER).exists() {
            anyhow::bail!("`{}` exists and is not a pack written by rulecast: choose another --out", out.display());
        }
    }
    let parent: PathBuf = out.parent().filter(|p| !p.as_os_str().is_empty()).map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&parent).with_context(|| format!("cannot create `{}`", parent.display()))?;
    let stage = tempfile::Builder::new().prefix(".rulecast-pack-").tempdir_in(&parent).with_context(|| format!("cannot stage in `{}`", parent.display()))?;
    for (path, bytes) in files {
        if path.split('/').any(|c| c.is_empty() || c == ".." || c.starts_with('.')) {
            anyhow::bail!("refusing to write `{path}`: not a plain relative path");
        }
        let p = stage.path().join(path);
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&p, bytes).with_context(|| format!("cannot write `{path}`"))?;
    }
    std::fs::write(stage.path().join(MARKER), "written by `rulecast pack`; the whole folder is replaced by the next pack\n")?;
    let stage_path = stage.keep();
    if out.exists() {
        let old = tempfile::Builder::new().prefix(".rulecast-old-pack-").tempdir_in(&parent)?.keep();
        std::fs::remove_dir(&old)?;
        std::fs::rename(out, &old).with_context(|| format!("cannot replace `{}`", out.display()))?;
        std::fs::rename(&stage_path, out)?;
        std::fs::remove_dir_all(&old)?;
    } else {
        std::fs::rename(&stage_path, out).with_context(|| format!("cannot write `{}`", out.display()))?;
    }
    Ok(())
}
