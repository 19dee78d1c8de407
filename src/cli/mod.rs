//! Command-line interface: clap arguments, one function per subcommand. The only place that
//! uses `anyhow` and prints.
//!
//! Exit codes: 0 clean, 1 the rules have problems, 2 the tool failed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

mod import;
mod pack;
mod test;
use clap::{Parser, Subcommand};
use rulecast::diag::{self, Format};
use rulecast::{Target, Unsupported};

/// Write a detection rule once; compile it into Sentinel, Elastic and Panther rule files.
#[derive(Debug, Parser)]
#[command(name = "rulecast", version, about)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Compile the canonical rules into vendor rule files.
    Build {
        /// Folder of canonical rules.
        #[arg(long, default_value = "canonical-rules")]
        rules: PathBuf,
        /// Output folder; `<out>/<target>/` is replaced as a whole.
        #[arg(long, default_value = "out")]
        out: PathBuf,
        /// Targets to build (repeatable); default all.
        #[arg(long = "target", value_enum)]
        targets: Vec<Target>,
        /// What to do where a target can only approximate a condition.
        #[arg(long, value_enum, default_value = "warn")]
        unsupported: Unsupported,
        /// How diagnostics are printed.
        #[arg(long, value_enum, default_value = "full")]
        format: Format,
    },
    /// Run every rule's test events (and optionally a corpus) through the canonical rule and
    /// all three targets; any undeclared disagreement fails (exit 1).
    Test {
        /// Folder of canonical rules.
        #[arg(long, default_value = "canonical-rules")]
        rules: PathBuf,
        /// Also run every rule over every `Tests` event of the Panther YAMLs in this folder.
        #[arg(long)]
        corpus: Option<PathBuf>,
        /// text (default) or json.
        #[arg(long, value_enum, default_value = "text")]
        format: ReportFormat,
    },
    /// Print events as a target stores them (one JSON object per line).
    Events {
        /// sentinel (an AWSCloudTrail row) or elastic (an AWS integration document).
        #[arg(long, value_enum)]
        target: Target,
        /// A JSON array, JSON lines, or a single event.
        file: PathBuf,
    },
    /// Read vendor rule files (or folders of them) into canonical rules, with a report: each
    /// rule imported fully, with parts kept opaque (named, with the reason), or refused (why,
    /// and where). Exit 1 when a rule was refused or an existing file kept.
    Import {
        /// The vendor format of the inputs.
        #[arg(long, value_enum)]
        from: rulecast::import::Vendor,
        /// Files or folders (folders are read recursively).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Where the canonical rules are written.
        #[arg(long, default_value = "imported")]
        out: PathBuf,
        /// Overwrite canonical files that already exist.
        #[arg(long)]
        force: bool,
        /// text (default) or json.
        #[arg(long = "report", value_enum, default_value = "text")]
        report: ReportFormat,
        /// How located errors are printed in the report.
        #[arg(long, value_enum, default_value = "concise")]
        format: Format,
        /// An author for imported rules whose vendor file names none (repeatable;
        /// detection-rules requires one, and Sentinel and Panther files carry none).
        #[arg(long = "author")]
        authors: Vec<String>,
        /// The creation date (YYYY-MM-DD) for imported rules whose vendor file gives none
        /// (detection-rules requires one).
        #[arg(long)]
        created: Option<String>,
    },
    /// Build the deployable packs: a Sentinel ARM template, the Elastic (Kibana) import ndjson,
    /// the Panther upload zip, one Markdown page per rule with an index by tactic, and release
    /// notes from the lock. Exit 1 when the lock is out of date (nothing written) or a pair could
    /// not be built (listed and left out).
    Pack {
        /// Folder of canonical rules (and its `rulecast.lock`).
        #[arg(long, default_value = "canonical-rules")]
        rules: PathBuf,
        /// Targets to pack (repeatable); default all.
        #[arg(long = "target", value_enum)]
        targets: Vec<Target>,
        /// Output folder, replaced as a whole (it must be empty or a previous pack).
        #[arg(long, default_value = "pack")]
        out: PathBuf,
        /// How diagnostics are printed.
        #[arg(long, value_enum, default_value = "full")]
        format: Format,
    },
    /// Update the version lock (`<rules>/rulecast.lock`): bump the versions of every rule whose
    /// vendor file changed meaning, as each vendor tracks them.
    Lock {
        /// Folder of canonical rules.
        #[arg(long, default_value = "canonical-rules")]
        rules: PathBuf,
        /// The release date written for changed rules (YYYY-MM-DD); default today (UTC).
        #[arg(long)]
        date: Option<String>,
        /// Exit 1 if the lock is out of date; write nothing.
        #[arg(long)]
        check: bool,
        /// How diagnostics are printed.
        #[arg(long, value_enum, default_value = "full")]
        format: Format,
    },
    /// Check the canonical rules (and that they compile) without writing anything.
    Validate {
        /// Folder of canonical rules.
        #[arg(long, default_value = "canonical-rules")]
        rules: PathBuf,
        /// What to do where a target can only approximate a condition.
        #[arg(long, value_enum, default_value = "warn")]
        unsupported: Unsupported,
        /// How diagnostics are printed.
        #[arg(long, value_enum, default_value = "full")]
        format: Format,
    },
}

/// How `rulecast test` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ReportFormat {
    /// A table per rule.
    Text,
    /// A stable JSON array, for CI.
    Json,
}

/// Run and map the outcome to an exit code.
pub fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            if e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("caused by: {cause}");
            }
            ExitCode::from(2)
        }
    }
}

fn print_diags(diags: &[rulecast::Diagnostic], format: Format) {
    let text = diag::render(diags, format, &|f| std::fs::read_to_string(f).ok());
    let _ = std::io::stderr().write_all(text.as_bytes());
}

fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        Command::Build { rules, out, targets, unsupported, format } => build(&rules, Some(&out), &targets, unsupported, format),
        Command::Pack { rules, targets, out, format } => pack::run_pack(&rules, &targets, &out, format),
        Command::Lock { rules, date, check, format } => pack::run_lock(&rules, date.as_deref(), check, format),
        Command::Validate { rules, unsupported, format } => build(&rules, None, &[], unsupported, format),
        Command::Test { rules, corpus, format } => test::run(&rules, corpus.as_deref(), format == ReportFormat::Json),
        Command::Events { target, file } => test::events(target, &file),
        Command::Import { from, paths, out, force, report, format, authors, created } => {
            import::run(from, &paths, &out, force, report == ReportFormat::Json, format, &authors, created.as_deref())
        }
    }
}

fn build(rules_dir: &Path, out: Option<&Path>, targets: &[Target], policy: Unsupported, format: Format) -> Result<ExitCode> {
    if !rules_dir.is_dir() {
        anyhow::bail!("rules folder `{}` does not exist", rules_dir.display());
    }
    let rules = match rulecast::rules_from_dir(rules_dir) {
        Ok(r) => r,
        Err(d) => {
            print_diags(&d.0, format);
            eprintln!("{} error(s); nothing written", d.iter().filter(|x| x.is_error()).count());
            return Ok(ExitCode::from(1));
        }
    };
    let Ok(rules) = pack::with_lock(rules_dir, rules).map_err(|msg| eprintln!("{msg}")) else { return Ok(ExitCode::from(1)) };
    let b = rulecast::build(&rules, targets, policy);
    if policy != Unsupported::Ignore {
        let notes: Vec<rulecast::Diagnostic> = b
            .notes
            .iter()
            .map(|(file, t, d)| {
                let mut d = d.clone();
                d.message = if d.span.is_some() { format!("{t}: {}", d.message) } else { format!("{t}: {file}: {}", d.message) };
                d
            })
            .collect();
        print_diags(&notes, format);
    }
    for (file, t, d) in &b.refused {
        eprintln!("{file}: not built for {t}:");
        print_diags(&d.0, format);
    }
    let ntargets = if targets.is_empty() { 3 } else { targets.len() };
    let mut stdout = std::io::stdout();
    if !b.refused.is_empty() {
        writeln!(stdout, "{} rule(s) × {} target(s): {} pair(s) refused; nothing written", b.rules, ntargets, b.refused.len())?;
        return Ok(ExitCode::from(1));
    }
    if let Some(out) = out {
        write_outputs(out, targets, &b.files)?;
    }
    let verb = if out.is_some() { "built" } else { "validated" };
    let mut line = format!(
        "{verb} {} rule(s) × {} target(s): {} file(s)",
        b.rules,
        ntargets,
        b.files.len()
    );
    if let Some(out) = out {
        line.push_str(&format!(" in {}", out.display()));
    }
    let warnings = b.notes.iter().filter(|(_, _, d)| d.severity == rulecast::diag::Severity::Warning).count();
    line.push_str(&format!(", {} translation note(s)", b.notes.len() - warnings));
    if warnings > 0 {
        line.push_str(&format!(", {warnings} warning(s)"));
    }
    if !b.skipped.is_empty() {
        line.push_str(&format!(", {} pair(s) skipped by the rules", b.skipped.len()));
    }
    writeln!(stdout, "{line}")?;
    for (file, t, why) in &b.skipped {
        writeln!(stdout, "  skipped {t} for {file}: {why}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Replace `<out>/<target>/` for each built target: everything is written into a staging
/// folder first, then swapped in by rename, so a failure leaves the old folder as it was.
fn write_outputs(out: &Path, targets: &[Target], files: &std::collections::BTreeMap<String, String>) -> Result<()> {
    use strum::IntoEnumIterator;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create `{}`", out.display()))?;
    let targets: Vec<Target> = if targets.is_empty() { Target::iter().collect() } else { targets.to_vec() };
    let mut staged = vec![];
    for t in &targets {
        let dir = rulecast::targets::folder(*t);
        let stage = tempfile::Builder::new()
            .prefix(&format!(".rulecast-{dir}-"))
            .tempdir_in(out)
            .with_context(|| format!("cannot create a staging folder in `{}`", out.display()))?;
        for (path, text) in files.iter().filter(|(p, _)| p.starts_with(&format!("{dir}/"))) {
            let name = &path[dir.len() + 1..];
            // names were validated as plain stems; refuse anything else outright
            if name.contains('/') || name.contains('\\') || name.starts_with('.') {
                anyhow::bail!("refusing to write `{path}`: not a plain file name");
            }
            std::fs::write(stage.path().join(name), text).with_context(|| format!("cannot write `{path}`"))?;
        }
        staged.push((dir, stage));
    }
    for (dir, stage) in staged {
        let target_dir = out.join(dir);
        let stage_path = stage.keep();
        if target_dir.exists() {
            let old = tempfile::Builder::new().prefix(&format!(".rulecast-old-{dir}-")).tempdir_in(out)?.keep();
            std::fs::remove_dir(&old)?;
            std::fs::rename(&target_dir, &old).with_context(|| format!("cannot replace `{}`", target_dir.display()))?;
            std::fs::rename(&stage_path, &target_dir)?;
            std::fs::remove_dir_all(&old)?;
        } else {
            std::fs::rename(&stage_path, &target_dir)?;
        }
    }
    Ok(())
}
