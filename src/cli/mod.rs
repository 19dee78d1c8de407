//! Command-line interface: clap arguments, one function per subcommand. The only place that
//! uses `anyhow` and prints.
//!
//! Exit codes: 0 clean, 1 the rules have problems, 2 the tool failed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

mod cache;
mod coverage;
mod import;
mod pack;
mod sync;
mod test;
mod write;
use clap::{Parser, Subcommand};
use rulecast::diag::{self, Format};
use rulecast::{Target, Unsupported};
use strum::IntoEnumIterator;

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
        /// Canonical rules: a folder (read recursively) or one rule file.
        #[arg(long, default_value = "canonical-rules")]
        rules: PathBuf,
        #[command(flatten)]
        read: ReadArgs,
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
        /// Write every rule × target pair that builds, list the refused ones and exit 1 (by
        /// default one refused pair means nothing is written). The output is still replaced as
        /// one step.
        #[arg(long)]
        keep_going: bool,
        /// Parse and compile every rule; neither read nor write the build cache
        /// (`.<OUT>.rulecast-cache/` beside the output folder, see the README).
        #[arg(long)]
        no_cache: bool,
    },
    /// Run every rule's test events (and optionally a corpus) through the canonical rule and
    /// all three targets; any undeclared disagreement fails (exit 1).
    Test {
        /// Canonical rules: a folder (read recursively) or one rule file.
        #[arg(long, default_value = "canonical-rules")]
        rules: PathBuf,
        /// Only the rules with this file stem or id (repeatable).
        #[arg(long = "rule", value_name = "NAME")]
        only: Vec<String>,
        #[command(flatten)]
        read: ReadArgs,
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
        #[command(flatten)]
        read: ReadArgs,
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
    /// Compare what rules detect across platforms: canonical rules as built for each target
    /// and/or vendor rule trees read directly (imported in memory, nothing written). Exit 1 with
    /// --check when something is covered somewhere but not everywhere, or a file was not read.
    Coverage {
        /// Canonical rules: a folder (read recursively) or one rule file.
        #[arg(long)]
        rules: Option<PathBuf>,
        /// Targets the canonical rules are built for (repeatable); default all.
        #[arg(long = "target", value_enum)]
        targets: Vec<Target>,
        #[command(flatten)]
        vendors: rulecast::vendors::VendorInputs,
        #[command(flatten)]
        read: ReadArgs,
        /// text, json, csv, navigator (layers into <out>/navigator/) or html.
        #[arg(long, value_enum, default_value = "text")]
        format: coverage::CoverageFormat,
        /// Write here instead of stdout (a file; a folder for navigator).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Exit 1 on gaps or unreadable files.
        #[arg(long)]
        check: bool,
    },
    /// The catalog page of one rule (by id, name or file stem) among the rules loaded as for
    /// `coverage`: ATT&CK table, rules detecting the same action, stages and predicates,
    /// indicators with corpus counts, output fields.
    Explain {
        /// The rule: its id, name or file stem.
        rule: String,
        /// Only a rule on this platform (`sentinel`, `rules:panther`, ...).
        #[arg(long)]
        platform: Option<String>,
        /// Canonical rules: a folder (read recursively) or one rule file.
        #[arg(long)]
        rules: Option<PathBuf>,
        #[command(flatten)]
        vendors: rulecast::vendors::VendorInputs,
        #[command(flatten)]
        read: ReadArgs,
        /// markdown or json.
        #[arg(long, value_enum, default_value = "markdown")]
        format: coverage::ExplainFormat,
    },
    /// What changed in what the rules detect between two rule sets (folders, or git revisions
    /// of the rules folder): actions and techniques gained or lost per platform, conditions,
    /// severity and schedule changes.
    Diff {
        /// Before: a folder of canonical rules or a git revision (`HEAD~1`).
        a: String,
        /// After: a folder of canonical rules or a git revision.
        b: String,
        /// The rules folder a git revision is read from.
        #[arg(long, default_value = "canonical-rules")]
        rules: PathBuf,
        #[command(flatten)]
        read: ReadArgs,
        /// text (default) or json.
        #[arg(long, value_enum, default_value = "text")]
        format: ReportFormat,
    },
    /// Compare the canonical rules with vendor repository folders (matched by the vendor's rule
    /// id): in-sync, stale (an earlier version of the rule wrote it), drifted (edited by hand,
    /// shown by meaning), missing, orphan. Exit 0 when all are in sync, 1 otherwise.
    Sync(SyncArgs),
    /// Check the canonical rules (and that they compile) without writing anything.
    Validate {
        /// Canonical rules: a folder (read recursively) or one rule file.
        #[arg(long, default_value = "canonical-rules")]
        rules: PathBuf,
        #[command(flatten)]
        read: ReadArgs,
        /// What to do where a target can only approximate a condition.
        #[arg(long, value_enum, default_value = "warn")]
        unsupported: Unsupported,
        /// How diagnostics are printed.
        #[arg(long, value_enum, default_value = "full")]
        format: Format,
    },
}

/// `rulecast sync`.
#[derive(Debug, clap::Args)]
struct SyncArgs {
    /// Folder of canonical rules (and its `rulecast.lock`).
    #[arg(long, default_value = "canonical-rules")]
    rules: PathBuf,
    #[command(flatten)]
    folders: rulecast::vendors::SyncFolders,
    /// text (default) or json.
    #[arg(long, value_enum, default_value = "text")]
    format: ReportFormat,
    /// Regenerate the stale and missing vendor files (each written atomically; others untouched).
    #[arg(long)]
    write: bool,
    /// With --write: overwrite drifted (hand-edited) files too.
    #[arg(long, requires = "write")]
    overwrite_drifted: bool,
    /// Import the drifted vendor file of this rule (file stem or id) into its canonical file,
    /// keeping its id and tests.
    #[arg(long, value_name = "RULE", conflicts_with = "write")]
    adopt: Option<String>,
    /// With --adopt: the target whose file is adopted, when several drifted.
    #[arg(long, value_enum, requires = "adopt")]
    adopt_from: Option<Target>,
}

/// How input files are read (every command that reads rules or vendor files).
#[derive(Debug, Clone, Copy, clap::Args)]
struct ReadArgs {
    /// Follow symbolic links (only to regular files and folders; loops are detected).
    #[arg(long)]
    follow_symlinks: bool,
    /// The largest input file read, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = rulecast::load::files::DEFAULT_MAX_BYTES)]
    max_file_size: u64,
}

impl ReadArgs {
    fn policy(self) -> rulecast::load::files::ReadPolicy {
        rulecast::load::files::ReadPolicy { follow_symlinks: self.follow_symlinks, max_bytes: self.max_file_size }
    }
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

/// Print diagnostics; source snippets come only from files that may be read under `read` (a
/// diagnostic never quotes a file that is not a rule file).
fn print_diags(diags: &[rulecast::Diagnostic], format: Format, read: rulecast::load::files::ReadPolicy) {
    let text = diag::render(diags, format, &|f| rulecast::load::files::read_text(Path::new(f), read).ok());
    let _ = std::io::stderr().write_all(text.as_bytes());
}

fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        Command::Build { rules, read, out, targets, unsupported, format, keep_going, no_cache } => {
            build(&rules, read.policy(), Some(&out), &targets, unsupported, format, keep_going, !no_cache)
        }
        Command::Validate { rules, read, unsupported, format } => build(&rules, read.policy(), None, &[], unsupported, format, false, false),
        Command::Test { rules, only, read, corpus, format } => test::run(&rules, read.policy(), &only, corpus.as_deref(), format == ReportFormat::Json),
        Command::Pack { rules, targets, out, format } => pack::run_pack(&rules, &targets, &out, format),
        Command::Lock { rules, date, check, format } => pack::run_lock(&rules, date.as_deref(), check, format),
        Command::Coverage { rules, targets, vendors, read, format, out, check } => {
            let vendors = vendors.by_vendor();
            let inputs = coverage::Inputs { rules: rules.as_deref(), targets: &targets, vendors, read: read.policy() };
            coverage::run(&inputs, format, out.as_deref(), check)
        }
        Command::Explain { rule, platform, rules, vendors, read, format } => {
            let vendors = vendors.by_vendor();
            let inputs = coverage::Inputs { rules: rules.as_deref(), targets: &[], vendors, read: read.policy() };
            coverage::explain(&inputs, &rule, platform.as_deref(), format)
        }
        Command::Diff { a, b, rules, read, format } => coverage::diff(&a, &b, &rules, read.policy(), format == ReportFormat::Json),
        Command::Sync(a) => {
            let dirs = a.folders.by_target();
            sync::run(&sync::Request { rules: &a.rules, dirs, json: a.format == ReportFormat::Json, write: a.write, overwrite_drifted: a.overwrite_drifted, adopt: a.adopt, adopt_from: a.adopt_from })
        }
        Command::Events { target, file } => test::events(target, &file),
        Command::Import { from, paths, read, out, force, report, format, authors, created } => {
            import::run(from, &paths, read.policy(), &out, force, report == ReportFormat::Json, format, &authors, created.as_deref())
        }
    }
}

/// Rules loaded, compiled and written per batch by `rulecast build`.
const BATCH: usize = 128;

/// A rule file of a build: answered by the build cache (file, key, what it made) or loaded
/// (its cache key, if there is a cache, and the rule).
enum Loaded {
    Hit(String, String, Box<cache::Hit>),
    Rule(Option<String>, Box<rulecast::Rule>),
}

/// Files to write: (relative path, text).
type Files<'a> = Vec<(&'a String, &'a String)>;

#[allow(clippy::too_many_arguments)]
fn build(rules_dir: &Path, read: rulecast::load::files::ReadPolicy, out: Option<&Path>, targets: &[Target], policy: Unsupported, format: Format, keep_going: bool, use_cache: bool) -> Result<ExitCode> {
    let mut targets: Vec<Target> = targets.to_vec();
    targets.sort();
    targets.dedup();
    let targets = &targets[..];
    if let Some(out) = out {
        if inside(out, rules_dir) {
            anyhow::bail!(
                "the output folder `{}` is inside the rules folder `{}`: the next build would read the outputs as rules; choose another --out",
                out.display(),
                rules_dir.display()
            );
        }
    }
    if !rules_dir.exists() && std::fs::symlink_metadata(rules_dir).is_err() {
        anyhow::bail!("the rules path `{}` does not exist", rules_dir.display());
    }
    let lock = match pack::read_lock(rules_dir) {
        Ok(l) => l,
        Err(msg) => {
            eprintln!("{msg}");
            return Ok(ExitCode::from(1));
        }
    };
    // The rules go through load → lock → compile → staged write in batches, so that memory
    // holds one batch, not the whole set; the staged output is swapped in only when every
    // batch is done and nothing stops the build (dropped otherwise: nothing written).
    let all: Vec<Target> = if targets.is_empty() { Target::iter().collect() } else { targets.to_vec() };
    let owned: Vec<&str> = all.iter().map(|t| rulecast::targets::folder(*t)).collect();
    let (files, unread) = rulecast::load::files::walk(rules_dir, &["yaml", "yml"], read);
    if files.is_empty() && unread.is_empty() {
        anyhow::bail!("no rule files (*.yaml, *.yml) in `{}`; nothing written", rules_dir.display());
    }
    let mut load_diags = rulecast::Diagnostics(unread);
    let mut stage = match out {
        Some(out) if !load_diags.has_errors() => Some(write::Stage::begin(out, &owned)?),
        _ => None,
    };
    let mut ids: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut fingerprints = vec![];
    let mut b = rulecast::Build::default();
    let (mut notes, mut warnings, mut kept_notes) = (0, 0, vec![]);
    // the build cache (see cache.rs): only for a build that writes
    let lock_json = lock.as_ref().map(|l| serde_json::to_string(l).expect("a lock serialises"));
    let mut cache = match out {
        Some(out) if use_cache => cache::Cache::open(out, rules_dir, policy, read, lock_json.as_deref()),
        _ => None,
    };
    let (mut hits, mut from_cache) = (0usize, std::collections::HashSet::new());
    for batch in files.chunks(BATCH) {
        // each file: answered by the cache, or loaded (with its cache key when there is a cache)
        let loaded = rulecast::par::map(batch, |f| -> Result<Loaded, rulecast::Diagnostics> {
            let Some(c) = &cache else { return rulecast::load::rule_from_file_with(f, read).map(|r| Loaded::Rule(None, Box::new(r))) };
            let file = f.display().to_string();
            // the key: from the cache's index while the file's stat is the one it recorded,
            // else from the file's bytes
            let (key, text) = match c.known_key(f, &file) {
                Some(key) => (key, None),
                None => c.read_rule(f, &file, read).map(|(key, text)| (key, Some(text)))?,
            };
            match c.hit(&key, &all) {
                Some(hit) => Ok(Loaded::Hit(file, key, Box::new(hit))),
                None => {
                    let (key, text) = match text {
                        Some(text) => (key, text),
                        None => c.read_rule(f, &file, read)?,
                    };
                    rulecast::load::rule_from_text(f, &text).map(|r| Loaded::Rule(Some(key), Box::new(r)))
                }
            }
        });
        let mut items = vec![];
        for r in loaded {
            match r {
                Ok(r) => items.push(r),
                Err(e) => load_diags.extend(e),
            }
        }
        for item in &items {
            let (id, file) = match item {
                Loaded::Rule(_, r) => (&r.doc.id.value, &r.file),
                Loaded::Hit(file, _, hit) => (&hit.id, file),
            };
            match ids.get(id) {
                Some(first) => load_diags.push(match item {
                    Loaded::Rule(_, r) => rulecast::load::duplicate_id(r, first),
                    Loaded::Hit(_, _, hit) => rulecast::load::duplicate_id_at(&hit.id, hit.id_span.clone(), first),
                }),
                None => {
                    ids.insert(id.clone(), file.clone());
                }
            }
        }
        if load_diags.has_errors() {
            // every file is still read, so that every error is reported; nothing is built
            stage = None;
            continue;
        }
        // only rules the cache did not answer for are worth other threads: a batch of hits is
        // gone through on this one
        let compiling = items.iter().any(|i| matches!(i, Loaded::Rule(..)));
        // with a lock: each rule's fingerprint (what it means, for the stale check; kept by the
        // cache), taken before the lock's fields are applied; a batch with one that cannot be
        // taken adds none
        let mut fps: Vec<Option<rulecast::lock::Fingerprint>> = vec![];
        if let Some(l) = &lock {
            let fingerprint = |i: &Loaded| match i {
                Loaded::Rule(_, r) => pack::fingerprints(std::iter::once(&**r)).ok().and_then(|mut v| v.pop()),
                Loaded::Hit(_, _, hit) => hit.fingerprint.clone(),
            };
            let made: Vec<_> = if compiling { rulecast::par::map(&items, fingerprint) } else { items.iter().map(fingerprint).collect() };
            if made.iter().all(Option::is_some) {
                fingerprints.extend(made.iter().flatten().cloned());
            }
            fps = made;
            for item in items.iter_mut() {
                if let Loaded::Rule(_, r) = item {
                    rulecast::lock::apply(r, l);
                }
            }
        }
        // compile what the cache did not answer for, in parallel; add every rule in file order
        let indexed: Vec<(usize, &Loaded)> = items.iter().enumerate().collect();
        let compile = |&(i, item): &(usize, &Loaded)| match item {
            Loaded::Rule(key, r) => {
                let pairs = rulecast::compile_pairs(r, &all, policy);
                let fp = fps.get(i).and_then(Option::as_ref);
                // the cache entry is written here, in parallel, as the rule is compiled
                let kept = match (key, &cache, &lock, fp) {
                    (Some(key), Some(c), None, _) | (Some(key), Some(c), Some(_), Some(_)) => {
                        cache::entry(&r.doc.id.value, rulecast::load::id_span(r).as_ref(), &all, &pairs, fp).map(|e| c.write(key, &e)).is_some()
                    }
                    _ => false,
                };
                Some((pairs, kept))
            }
            Loaded::Hit(..) => None,
        };
        let compiled: Vec<_> = if compiling { rulecast::par::map(&indexed, compile) } else { indexed.iter().map(|_| None).collect() };
        for (item, made) in items.into_iter().zip(compiled) {
            match (item, made) {
                (Loaded::Rule(key, r), Some((pairs, kept))) => {
                    if let (Some(c), Some(key), true) = (cache.as_mut(), key, kept) {
                        c.used(key);
                    }
                    rulecast::add_pairs(&mut b, &r.file, &all, pairs);
                }
                (Loaded::Hit(file, key, hit), _) => {
                    if let Some(c) = cache.as_mut() {
                        c.used(key);
                    }
                    hits += 1;
                    // the files this rule adds (not those an earlier rule wrote) were found in
                    // the output with their bytes under the stage's lock: the staged write keeps
                    // them from there (their texts were not kept)
                    for p in &hit.pairs {
                        if let rulecast::Pair::Built(o) = p {
                            from_cache.extend(o.files.iter().map(|(path, _)| path).filter(|path| !b.paths.contains(*path)).cloned());
                        }
                    }
                    rulecast::add_pairs(&mut b, &file, &all, hit.pairs);
                }
                (Loaded::Rule(..), None) => unreachable!("every loaded rule is compiled"),
            }
        }
        // notes that will not be printed are only counted
        for (_, _, d) in &b.notes {
            if d.severity == rulecast::diag::Severity::Warning {
                warnings += 1;
            } else {
                notes += 1;
            }
        }
        if policy == Unsupported::Ignore {
            b.notes.clear();
        } else {
            kept_notes.append(&mut b.notes);
        }
        if !b.refused.is_empty() && !keep_going {
            stage = None;
        }
        let made = std::mem::take(&mut b.files);
        if let Some(s) = stage.as_mut() {
            let (same, entries): (Files, Files) = made.iter().partition(|(path, _)| from_cache.contains(*path));
            s.keep(&same.iter().map(|(path, _)| *path).collect::<Vec<_>>())?;
            s.put(&entries)?;
        }
        from_cache.clear();
    }
    if load_diags.has_errors() {
        print_diags(&load_diags.0, format, read);
        eprintln!("{} error(s); nothing written", load_diags.iter().filter(|x| x.is_error()).count());
        return Ok(ExitCode::from(1));
    }
    if b.rules == 0 {
        anyhow::bail!("no rule files (*.yaml, *.yml) in `{}`; nothing written", rules_dir.display());
    }
    if let Some(l) = &lock {
        let stale = rulecast::lock::stale(l, &fingerprints);
        if !stale.is_empty() {
            eprintln!("warning: {} does not describe {} change(s); run `rulecast lock` before packing", rulecast::lock::FILE_NAME, stale.len());
        }
    }
    // the output is swapped in (or dropped) before anything is printed, so that the lock on it
    // is never held while a full pipe stalls this process (a second build waits for the lock)
    let clash = b.refused.iter().any(|(_, _, d)| d.iter().any(|x| x.code == rulecast::diag::Code::E106));
    let nothing = !b.refused.is_empty() && (!keep_going || clash || out.is_none());
    let written = match stage {
        Some(s) if !nothing => {
            // the cache forgets what this build did not use and writes its index, under the
            // output's lock
            if let Some(c) = cache {
                c.finish();
            }
            Some(s.commit()?)
        }
        _ => None,
    };
    if policy != Unsupported::Ignore {
        let notes: Vec<rulecast::Diagnostic> = kept_notes
            .iter()
            .map(|(file, t, d)| {
                let mut d = d.clone().about(file, t);
                d.message = if d.span.is_some() { format!("{t}: {}", d.message) } else { format!("{t}: {file}: {}", d.message) };
                d
            })
            .collect();
        print_diags(&notes, format, read);
    }
    for (file, t, d) in &b.refused {
        eprintln!("{file}: not built for {t}:");
        let named: Vec<rulecast::Diagnostic> = d.iter().map(|x| x.clone().about(file, t)).collect();
        print_diags(&named, format, read);
    }
    let ntargets = if targets.is_empty() { Target::iter().count() } else { targets.len() };
    let mut stdout = std::io::stdout();
    // two rules writing one path is a naming error in the rules, not a pair that cannot be
    // built: --keep-going does not pick one of them
    if nothing {
        writeln!(stdout, "{} rule(s) × {} target(s): {} pair(s) refused; nothing written", b.rules, ntargets, b.refused.len())?;
        return Ok(ExitCode::from(1));
    }
    let verb = if out.is_some() { "built" } else { "validated" };
    let mut line = format!(
        "{verb} {} rule(s) × {} target(s): {} file(s)",
        b.rules,
        ntargets,
        b.paths.len()
    );
    if let (Some(out), Some(w)) = (out, written) {
        line.push_str(&format!(" in {} ({} changed", out.display(), w.changed));
        if hits > 0 {
            line.push_str(&format!(", {hits} rule(s) from the build cache"));
        }
        line.push(')');
    }
    line.push_str(&format!(", {notes} translation note(s)"));
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
    if !b.refused.is_empty() {
        writeln!(stdout, "{} pair(s) refused (--keep-going: the others written):", b.refused.len())?;
        for (file, t, d) in &b.refused {
            let why = d.iter().find(|x| x.is_error()).map_or_else(String::new, |x| x.message.clone());
            writeln!(stdout, "  refused {t} for {file}: {why}")?;
        }
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Is `inner` the same folder as `outer` or inside it (both resolved as far as they exist)?
fn inside(inner: &Path, outer: &Path) -> bool {
    let resolve = |p: &Path| -> PathBuf {
        let abs = if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_path_buf()) };
        // resolve the longest existing prefix; keep the rest as written
        let mut existing = abs.clone();
        let mut rest = vec![];
        while !existing.exists() {
            match (existing.file_name().map(|n| n.to_os_string()), existing.parent()) {
                (Some(n), Some(parent)) => {
                    rest.push(n);
                    existing = parent.to_path_buf();
                }
                _ => break,
            }
        }
        let mut p = existing.canonicalize().unwrap_or(existing);
        for n in rest.into_iter().rev() {
            p.push(n);
        }
        p
    };
    outer.is_dir() && resolve(inner).starts_with(resolve(outer))
}

/// Load the rules under `path` (a folder or one file). `Err(exit code)` when they have
/// problems (printed) or there are none.
fn load_rules(path: &Path, read: rulecast::load::files::ReadPolicy, format: Format) -> Result<std::result::Result<Vec<rulecast::Rule>, ExitCode>> {
    if !path.exists() && std::fs::symlink_metadata(path).is_err() {
        anyhow::bail!("the rules path `{}` does not exist", path.display());
    }
    let rules = match rulecast::load::rules_from_path(path, read) {
        Ok(r) => r,
        Err(d) => {
            print_diags(&d.0, format, read);
            eprintln!("{} error(s); nothing written", d.iter().filter(|x| x.is_error()).count());
            return Ok(Err(ExitCode::from(1)));
        }
    };
    if rules.is_empty() {
        anyhow::bail!("no rule files (*.yaml, *.yml) in `{}`; nothing written", path.display());
    }
    Ok(Ok(rules))
}
