//! `rulecast coverage`: what the canonical rules (built per target) and vendor rule trees (read
//! directly, imported in memory) each detect, as a text table, JSON, CSV, ATT&CK Navigator layers
//! or one HTML page. Nothing is written unless `--out` says where.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use rulecast::coverage::{Coverage, render};
use rulecast::import::Vendor;
use rulecast::load::files::ReadPolicy;
use rulecast::{Target, Unsupported};
use strum::IntoEnumIterator;

/// How `rulecast coverage` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CoverageFormat {
    /// Summary, matrices, gaps and problems as text tables.
    Text,
    /// Everything as one JSON document.
    Json,
    /// One row per matrix cell.
    Csv,
    /// ATT&CK Navigator layers (format 4.5): one per platform and a difference layer, written
    /// into `<out>/navigator/`.
    Navigator,
    /// One self-contained HTML page.
    Html,
}

/// What to read.
pub struct Inputs<'a> {
    /// Canonical rules.
    pub rules: Option<&'a Path>,
    /// Targets the canonical rules are built for (all when empty).
    pub targets: &'a [Target],
    /// Vendor trees, per vendor.
    pub vendors: Vec<(Vendor, &'a [PathBuf])>,
    /// How files are read.
    pub read: ReadPolicy,
}

/// Load everything into a [`Coverage`].
pub fn gather(inputs: &Inputs) -> Result<Coverage> {
    let mut cov = Coverage::default();
    if let Some(dir) = inputs.rules {
        if !dir.exists() {
            bail!("the rules path `{}` does not exist", dir.display());
        }
        let rules = match rulecast::load::rules_from_path(dir, inputs.read) {
            Ok(r) => r,
            Err(d) => bail!("the canonical rules have problems (run `rulecast validate --rules {}`):\n{d}", dir.display()),
        };
        let targets: Vec<Target> = if inputs.targets.is_empty() { Target::iter().collect() } else { inputs.targets.to_vec() };
        cov.add_rules(&rules, &targets, Unsupported::Warn);
    }
    for (vendor, paths) in &inputs.vendors {
        if paths.is_empty() {
            continue;
        }
        for p in paths.iter() {
            if !p.exists() {
                bail!("the {vendor} path `{}` does not exist", p.display());
            }
        }
        cov.add_vendor(*vendor, paths, inputs.read);
    }
    if cov.platforms.is_empty() {
        let flags: Vec<String> = Vendor::iter().map(|v| format!("--{v}")).collect();
        bail!("nothing to cover: give --rules and/or {}", flags.join(", "));
    }
    Ok(cov)
}

/// Write a file in one step (a temporary file beside it, renamed over it).
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("cannot write in `{}`", dir.display()))?;
    tmp.write_all(bytes)?;
    tmp.persist(path).with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(())
}

/// `rulecast coverage`. Exit 1 with `--check` when there are gaps (covered somewhere, not
/// everywhere) or files that could not be read.
pub fn run(inputs: &Inputs, format: CoverageFormat, out: Option<&Path>, check: bool) -> Result<ExitCode> {
    let cov = gather(inputs)?;
    let text = match format {
        CoverageFormat::Text => render::to_text(&cov),
        CoverageFormat::Json => serde_json::to_string_pretty(&render::to_json(&cov))? + "\n",
        CoverageFormat::Csv => render::to_csv(&cov),
        CoverageFormat::Html => render::to_html(&cov),
        CoverageFormat::Navigator => {
            let Some(out) = out else { bail!("--format navigator writes several layers: give --out FOLDER (they go to FOLDER/navigator/)") };
            let mut files = std::collections::BTreeMap::new();
            for (name, layer) in render::to_navigator(&cov) {
                files.insert(format!("navigator/{name}"), serde_json::to_string_pretty(&layer)? + "\n");
            }
            let n = files.len();
            super::write::replace(out, &["navigator"], &files)?;
            writeln!(std::io::stdout(), "{n} layer(s) in {}", out.join("navigator").display())?;
            String::new()
        }
    };
    if format != CoverageFormat::Navigator {
        match out {
            Some(path) => write_atomically(path, text.as_bytes())?,
            None => std::io::stdout().write_all(text.as_bytes())?,
        }
    }
    for p in &cov.problems {
        eprintln!("{}: error[{}] {}", p.location(), p.code, p.message);
    }
    let gaps = cov.action_matrix().gaps().len() + cov.technique_matrix().gaps().len();
    Ok(if check && (gaps > 0 || !cov.problems.is_empty()) { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// How `rulecast explain` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExplainFormat {
    /// A Markdown page.
    Markdown,
    /// The page as JSON.
    Json,
}

/// `rulecast explain RULE`: the catalog page of one rule (found by id, name or file stem among
/// everything loaded). Exit 1 when no loaded rule has that name.
pub fn explain(inputs: &Inputs, which: &str, platform: Option<&str>, format: ExplainFormat) -> Result<ExitCode> {
    let cov = gather(inputs)?;
    let Some(i) = rulecast::coverage::explain::find(&cov, which, platform) else {
        eprintln!("error: no loaded rule has the id, name or file stem `{which}`");
        return Ok(ExitCode::from(1));
    };
    let e = &cov.entries[i];
    // the stages of a vendor rule whose query is a pipeline (Sentinel's KQL) come from its text
    let pipeline = match Vendor::iter().find(|v| v.to_string() == e.platform) {
        Some(v) => rulecast::load::files::read_text(Path::new(&e.file), inputs.read).ok().and_then(|t| rulecast::vendors::importer(v).pipeline(&t)),
        None => None,
    };
    let page = rulecast::coverage::explain::page(&cov, i, pipeline);
    let text = match format {
        ExplainFormat::Markdown => rulecast::coverage::explain::to_markdown(&page),
        ExplainFormat::Json => serde_json::to_string_pretty(&page)? + "\n",
    };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// A rule set for `rulecast diff`: a folder (or file) that exists, else a git revision of the
/// rules folder, whose `*.yaml`/`*.yml` files are written into `tmp`.
fn rule_set(spec: &str, rules: &Path, tmp: &Path) -> Result<PathBuf> {
    let p = Path::new(spec);
    if p.exists() {
        return Ok(p.to_path_buf());
    }
    let git = |args: &[&str], dir: &Path| -> Result<Vec<u8>> {
        let o = std::process::Command::new("git").arg("-C").arg(dir).args(args).output().context("cannot run git")?;
        if !o.status.success() {
            bail!("`{spec}` is neither a path nor a git revision of `{}`: git {}: {}", rules.display(), args.join(" "), String::from_utf8_lossy(&o.stderr).trim());
        }
        Ok(o.stdout)
    };
    let top = String::from_utf8(git(&["rev-parse", "--show-toplevel"], rules)?)?.trim().to_string();
    let prefix = String::from_utf8(git(&["rev-parse", "--show-prefix"], rules)?)?.trim().to_string();
    let list = String::from_utf8(git(&["ls-tree", "-r", "--name-only", spec, "--", &prefix], Path::new(&top))?)?;
    let dest = tmp.join(spec.replace(['/', ':', '~', '^'], "_"));
    let mut n = 0;
    for f in list.lines().filter(|f| f.ends_with(".yaml") || f.ends_with(".yml")) {
        let text = git(&["show", &format!("{spec}:{f}")], Path::new(&top))?;
        let rel = f.strip_prefix(&prefix).unwrap_or(f);
        let out = dest.join(rel);
        std::fs::create_dir_all(out.parent().unwrap_or(&dest))?;
        std::fs::write(&out, text)?;
        n += 1;
    }
    if n == 0 {
        bail!("no rule files under `{prefix}` at revision `{spec}`");
    }
    Ok(dest)
}

/// `rulecast diff A B`: what changed in what the rules detect between two rule sets.
pub fn diff(a: &str, b: &str, rules: &Path, read: ReadPolicy, json: bool) -> Result<ExitCode> {
    let tmp = tempfile::tempdir()?;
    let mut sets = vec![];
    for spec in [a, b] {
        let dir = rule_set(spec, rules, tmp.path())?;
        sets.push(gather(&Inputs { rules: Some(&dir), targets: &[], vendors: vec![], read })?);
    }
    let d = rulecast::coverage::diff::diff(&sets[0], &sets[1]);
    let text = if json { serde_json::to_string_pretty(&d)? + "\n" } else { rulecast::coverage::diff::to_text(&d) };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
