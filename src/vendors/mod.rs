//! The vendor registry: the only place that lists the vendors.
//!
//! Each vendor lives in its own folder (`vendors/<vendor>/`) with everything rulecast knows
//! about it: its target (compile + template glue), its importer, its tables (written once and
//! used in both directions), its settings, its query language and its evaluator glue. This file
//! names them once: [`Target`] (the vendors rulecast writes), [`Vendor`] (the formats it reads),
//! and the `match`es that map them to their implementation ([`backend`], [`importer`]).
//! Everything else reaches a vendor through the [`Backend`], [`Importer`] and [`Settings`]
//! traits; `tests/registry.rs` fails when a vendor is named anywhere else in `src/`.
//!
//! Adding a fourth target: one folder under `vendors/`, one entry here (a variant, its arms in
//! the `match`es, its member in [`TargetSettings`], [`FieldMaps`], [`TargetLocks`] and the CLI's
//! vendor flags), one template folder under `templates/`; ARCHITECTURE.md lists every file.

pub mod elastic;
pub mod panther;
pub mod sentinel;
pub mod sigma;

/// A vendor's severity words, written once and read both ways: (canonical severity, the
/// vendor's word). Several severities may share a word (Sentinel writes Critical as High); the
/// first entry with a word is the severity it reads back as.
pub struct Severities(pub &'static [(crate::model::Severity, &'static str)]);

impl Severities {
    /// The vendor's word for a canonical severity.
    pub fn word(&self, s: crate::model::Severity) -> &'static str {
        self.0.iter().find(|(x, _)| *x == s).map_or("", |(_, w)| w)
    }

    /// The canonical severity a vendor's word reads as (ASCII case ignored).
    pub fn severity(&self, word: &str) -> Option<crate::model::Severity> {
        self.0.iter().find(|(_, w)| w.eq_ignore_ascii_case(word)).map(|(s, _)| *s)
    }
}

pub use elastic::kuery;
pub use sentinel::kusto;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::coverage::meta::Meta;
use crate::diag::{Diagnostic, Diagnostics};
use crate::eval::{Entries, Enrichment};
use crate::fields::{Mapping, Row, Seg, Virtual};
use crate::import::Imported;
use crate::load::Rule;
use crate::load::files::ReadPolicy;
use crate::lock::{Fingerprint, Lock};
use crate::pack::{Bundle, DocFacts, PackRule};
use crate::model::{OpaqueLang, Spanned};
use crate::targets::Cx;

/// A compilation target: a vendor rulecast writes rule files for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum, strum::EnumIter, strum::Display, strum::IntoStaticStr, Serialize)]
#[strum(serialize_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Microsoft Sentinel analytic rule (YAML + KQL).
    Sentinel,
    /// Elastic Security detection rule (TOML + kuery).
    Elastic,
    /// Panther rule (YAML + Python).
    Panther,
}

impl Target {
    /// The format the target's files are read back with.
    pub fn vendor(self) -> Vendor {
        match self {
            Target::Sentinel => Vendor::Sentinel,
            Target::Elastic => Vendor::Elastic,
            Target::Panther => Vendor::Panther,
        }
    }
}

/// A vendor format rulecast reads (`rulecast import --from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum, Serialize, strum::EnumIter, strum::Display, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Vendor {
    /// Microsoft Sentinel analytic-rule YAML (KQL).
    Sentinel,
    /// Elastic detection-rules TOML (kuery, EQL, ES|QL).
    Elastic,
    /// Panther rule YAML with its Python file (`Filename:`, next to the YAML).
    Panther,
    /// Sigma YAML (logsource aws/cloudtrail).
    Sigma,
}

/// The implementation of a target.
pub fn backend(t: Target) -> &'static dyn Backend {
    match t {
        Target::Sentinel => &sentinel::Sentinel,
        Target::Elastic => &elastic::Elastic,
        Target::Panther => &panther::Panther,
    }
}

/// The implementation of an import format.
pub fn importer(v: Vendor) -> &'static dyn Importer {
    match v {
        Vendor::Sentinel => &sentinel::Sentinel,
        Vendor::Elastic => &elastic::Elastic,
        Vendor::Panther => &panther::Panther,
        Vendor::Sigma => &sigma::Sigma,
    }
}

/// `rulecast coverage`'s and `rulecast explain`'s vendor inputs: files or folders per vendor
/// format.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct VendorInputs {
    /// Microsoft Sentinel rule files or folders (repeatable).
    #[arg(long)]
    pub sentinel: Vec<PathBuf>,
    /// Elastic detection-rules TOML files or folders (repeatable).
    #[arg(long)]
    pub elastic: Vec<PathBuf>,
    /// Panther rule YAMLs (with their Python) or folders (repeatable).
    #[arg(long)]
    pub panther: Vec<PathBuf>,
    /// Sigma rule files or folders (repeatable).
    #[arg(long)]
    pub sigma: Vec<PathBuf>,
}

impl VendorInputs {
    /// The inputs by vendor, in registry order.
    pub fn by_vendor(&self) -> Vec<(Vendor, &[PathBuf])> {
        vec![(Vendor::Sentinel, &self.sentinel[..]), (Vendor::Elastic, &self.elastic[..]), (Vendor::Panther, &self.panther[..]), (Vendor::Sigma, &self.sigma[..])]
    }
}

/// `rulecast sync`'s vendor repository folders, one per target.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SyncFolders {
    /// An Azure-Sentinel-style folder of analytic rules.
    #[arg(long, value_name = "DIR")]
    pub sentinel: Option<PathBuf>,
    /// A detection-rules `rules/` tree.
    #[arg(long, value_name = "DIR")]
    pub elastic: Option<PathBuf>,
    /// A panther-analysis rules tree.
    #[arg(long, value_name = "DIR")]
    pub panther: Option<PathBuf>,
}

impl SyncFolders {
    /// The folders given, by target, in registry order.
    pub fn by_target(&self) -> Vec<(Target, PathBuf)> {
        [(Target::Sentinel, &self.sentinel), (Target::Elastic, &self.elastic), (Target::Panther, &self.panther)]
            .into_iter()
            .filter_map(|(t, d)| d.clone().map(|d| (t, d)))
            .collect()
    }
}

/// How each target holds one canonical field: one member per target, each made by its vendor's
/// `fields.rs` from the taxonomy row (its own columns), the virtual-field table or a `some`
/// element path.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldMaps {
    /// Microsoft Sentinel.
    pub sentinel: sentinel::fields::Map,
    /// Elastic Security.
    pub elastic: elastic::fields::Map,
    /// Panther.
    pub panther: panther::fields::Map,
}

impl FieldMaps {
    /// A taxonomy row, with the path below it.
    pub fn of_row(row: &Row, rest: &[Seg]) -> Self {
        FieldMaps { sentinel: sentinel::fields::of_row(row, rest), elastic: elastic::fields::of_row(row, rest), panther: panther::fields::of_row(row, rest) }
    }
    /// A virtual field.
    pub fn of_virtual(v: &Virtual) -> Self {
        FieldMaps { sentinel: sentinel::fields::of_virtual(v), elastic: elastic::fields::of_virtual(v), panther: panther::fields::of_virtual(v) }
    }
    /// Why `target` has no form of its own for the field, if it has none.
    pub fn unavailable(&self, target: Target) -> Option<&'static str> {
        match target {
            Target::Sentinel => match self.sentinel {
                Mapping::Unavailable(why) => Some(why),
                _ => None,
            },
            Target::Elastic => match self.elastic.mapping {
                Mapping::Unavailable(why) => Some(why),
                _ => None,
            },
            Target::Panther => self.panther.unavailable,
        }
    }
    /// A path inside a `some` element (every target reads it from the element).
    pub fn element(m: Mapping) -> Self {
        FieldMaps { sentinel: m.clone(), elastic: elastic::fields::element(m), panther: panther::fields::Map { expr: None, helpers: &[], unavailable: None } }
    }
}

/// What every target's lock entry holds.
pub trait Locked {
    /// The hash of what the target's files mean.
    fn sha256(&self) -> &str;
    /// The hashes earlier versions of the rule produced, oldest first.
    fn previous(&self) -> &[String];
    /// The version, as release notes show it.
    fn version(&self) -> String;
}

/// One rule's lock entries, one member per target (the JSON keys of `rulecast.lock`), each kept
/// by its vendor's `lock.rs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetLocks {
    /// Microsoft Sentinel, when the rule is built for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentinel: Option<sentinel::lock::Entry>,
    /// Elastic Security, when the rule is built for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elastic: Option<elastic::lock::Entry>,
    /// Panther, when the rule is built for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub panther: Option<panther::lock::Entry>,
}

impl TargetLocks {
    /// The entry of one target.
    pub fn get(&self, t: Target) -> Option<&dyn Locked> {
        match t {
            Target::Sentinel => self.sentinel.as_ref().map(|e| e as &dyn Locked),
            Target::Elastic => self.elastic.as_ref().map(|e| e as &dyn Locked),
            Target::Panther => self.panther.as_ref().map(|e| e as &dyn Locked),
        }
    }
    /// The next entries: one per target the fingerprint has a hash for, each bumped by its
    /// vendor's rules where the hash changed.
    pub fn next(prev: Option<&TargetLocks>, fp: &Fingerprint, logic_changed: bool, date: &str) -> Self {
        let prev = prev.cloned().unwrap_or_default();
        TargetLocks {
            sentinel: fp.hashes.get(&Target::Sentinel).map(|h| sentinel::lock::next(prev.sentinel.as_ref(), h, fp, logic_changed)),
            elastic: fp.hashes.get(&Target::Elastic).map(|h| elastic::lock::next(prev.elastic.as_ref(), h, fp, date)),
            panther: fp.hashes.get(&Target::Panther).map(|h| panther::lock::next(prev.panther.as_ref(), h)),
        }
    }
    /// Why the entries do not describe the rule (declared versions or dates ahead of them).
    pub fn stale(&self, fp: &Fingerprint) -> Vec<String> {
        [self.sentinel.as_ref().and_then(|e| sentinel::lock::stale(e, fp)), self.elastic.as_ref().and_then(|e| elastic::lock::stale(e, fp))].into_iter().flatten().collect()
    }
    /// Set the vendor tracking fields the entries hold on the rule.
    pub fn apply(&self, rule: &mut Rule) {
        if let Some(e) = &self.sentinel {
            sentinel::lock::apply(e, rule);
        }
        if let Some(e) = &self.elastic {
            elastic::lock::apply(e, rule);
        }
    }
}

/// Per-vendor settings in a canonical rule (`targets:`): one key per target.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSettings {
    /// Microsoft Sentinel.
    #[serde(default)]
    pub sentinel: sentinel::Settings,
    /// Elastic Security.
    #[serde(default)]
    pub elastic: elastic::Settings,
    /// Panther.
    #[serde(default)]
    pub panther: panther::Settings,
}

impl TargetSettings {
    /// The settings of one target.
    pub fn of(&self, t: Target) -> &dyn Settings {
        match t {
            Target::Sentinel => &self.sentinel,
            Target::Elastic => &self.elastic,
            Target::Panther => &self.panther,
        }
    }
}

/// What every target's settings carry.
pub trait Settings {
    /// Do not build the rule for this target; the reason.
    fn skip(&self) -> Option<&str>;
    /// What these settings make this target's rule alert on beyond the canonical condition
    /// (a condition only this target says: Elastic's new terms, Panther's `Threshold`), in
    /// words, or `None`. The other targets skip such a rule: built from the canonical rule
    /// alone, they would alert where this target's rule does not.
    fn narrows(&self) -> Option<String> {
        None
    }
    /// The output file stem, when the rule overrides it.
    fn file(&self) -> Option<&Spanned<String>>;
    /// The target's own rule id, when the rule gives one.
    fn id(&self) -> Option<&Spanned<String>>;
    /// The schedule settings `rulecast diff` compares, as `(key, value)` (`None`: the default).
    fn schedule(&self) -> Vec<(&'static str, Option<String>)>;
    /// The version the rule declares for this target's files, when the target versions them
    /// so (`targets.<t>.version`).
    fn version(&self) -> Option<&Spanned<String>> {
        None
    }
    /// The vendor file the rule was imported from, kept for its layout (`targets.<t>.layout`).
    fn layout(&self) -> Option<&crate::layout::Layout>;
    /// Check the settings (ids, file names, durations, enums) against the vendor's rules; push
    /// located diagnostics for `file` into `d`.
    fn validate(&self, file: &str, d: &mut Diagnostics);
}

/// One event a rule is decided on (`rulecast test`).
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    /// The rule.
    pub rule: &'a Rule,
    /// The raw CloudTrail event.
    pub event: &'a Value,
    /// Allow-list entries in place of the rule's shipped ones.
    pub allowlists: &'a Entries,
    /// The test's enrichment values (None: nothing is looked up).
    pub enrichment: Option<&'a Enrichment>,
}

/// What a target decides on one event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The target's rendering matches the event.
    Match,
    /// It does not.
    NoMatch,
    /// The rule is not built for the target (the rule's own reason).
    Skipped(String),
    /// The rendering could not be evaluated (the reason).
    Error(String),
}

impl Decision {
    /// The verdict, when there is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Decision::Match => Some(true),
            Decision::NoMatch => Some(false),
            Decision::Skipped(_) | Decision::Error(_) => None,
        }
    }
    /// A match or not.
    pub fn of(b: bool) -> Self {
        if b { Decision::Match } else { Decision::NoMatch }
    }
}

/// A target's decisions on a run of jobs.
#[derive(Debug, Clone, Default)]
pub struct Decided {
    /// One decision per job, in order.
    pub decisions: Vec<Decision>,
    /// Notes about the whole run that may declare differences (how the runtime presents
    /// events, say).
    pub run_notes: Vec<crate::notes::Note>,
}

/// What a target vendor provides.
pub trait Backend: Sync {
    /// The per-target settings (`targets.<t>`) that make the target count an aggregate over the
    /// last `window` (`10m`, `1h`: a number and s, m, h or d), as its schedule says it; none when
    /// it cannot. An importer writes them for a window the vendor rule states (a Sigma
    /// correlation's `timespan`).
    fn counting_window(&self, window: &str) -> Option<Value> {
        let _ = window;
        None
    }
    /// Which target this is.
    fn target(&self) -> Target;
    /// The language opaque conditions for this target are written in.
    fn opaque_lang(&self) -> OpaqueLang;
    /// Compile one rule into `(path relative to the target folder's parent, text)` pairs.
    fn compile(&self, rule: &Rule, cx: &mut Cx) -> Result<Vec<(String, String)>, Diagnostics>;
    /// Decide every job as the target would (rulecast's own evaluators of the target's query
    /// language, or the target's real runtime). One decision per job, in order. `Err`: the
    /// evaluator itself could not run (not one rule's problem).
    fn decide(&self, jobs: &[Job]) -> Result<Decided, String>;
    /// The translation notes that may declare a verdict difference for this rule.
    fn verdict_notes(&self, rule: &Rule) -> Vec<Diagnostic>;
    /// A raw CloudTrail event as the target stores it (`rulecast events`).
    fn stored_event(&self, raw: &Value) -> Value;
    /// The problem with an opaque condition's text in [`Backend::opaque_lang`] (`Err`: why it is
    /// not one expression), when rulecast has a parser for that language; `None` when it has
    /// none (the condition module then checks the brackets).
    fn check_opaque(&self, text: &str) -> Option<Result<(), String>> {
        let _ = text;
        None
    }
    /// A line of the target's files that only tracks the version the lock sets (`sync` tells a
    /// stale file from a hand-edited one by them).
    fn tracking_line(&self, line: &str) -> bool {
        let _ = line;
        false
    }
    /// Files the target writes once per build, shared by its rules (`(path relative to the target
    /// folder's parent, text)`): Panther's global helper module. Written when a rule is built
    /// for the target, packed with the rules, present when `rulecast test` runs them.
    fn shared_files(&self) -> Vec<(&'static str, &'static str)> {
        vec![]
    }
    /// Does the target write hunting queries (`kind: hunting`)? Others skip such rules.
    fn hunting(&self) -> bool {
        false
    }
    /// Whether two texts at a key path of the target's file are the same to the vendor's tools
    /// (a kept layout is written while the generated file equals it so; see `crate::layout`).
    fn same_text(&self) -> crate::layout::Same {
        crate::layout::exact
    }
    /// What the lock hashes for the target's files: their meaning as text (parsed, without the
    /// version fields the lock itself sets).
    fn meaning_text(&self, files: &[(String, String)]) -> Result<String, String>;
    /// The product's name in pack documents (`docs/index.md`, each rule's page).
    fn title(&self) -> &'static str;
    /// The target's templates, embedded: `(name, source)`, each name `<target>/<file>` (the
    /// files under `templates/<target>/`).
    fn templates(&self) -> &'static [(&'static str, &'static str)];
    /// Filters the target's templates use beyond the shared ones (`targets::render`), each
    /// rendering values through the target's escaping function.
    fn add_filters(&self, env: &mut minijinja::Environment<'static>) {
        let _ = env;
    }
    /// What the vendor deploys, built from each rule's rendered files (`rulecast pack`): files
    /// under the target's folder, and the rules it leaves out with why.
    fn pack(&self, rules: &[PackRule], lock: Option<&Lock>) -> Result<Bundle, String>;
    /// The extension of the target's main file (`.yaml`): the one that holds the rule id; the
    /// others are its companions.
    fn main_extension(&self) -> &'static str;
    /// The vendor's rule id in a main file's text (`rulecast sync` matches files by it).
    /// `Ok(None)`: the file parses but is not a rule of this format; `Err`: it does not parse.
    fn vendor_id(&self, text: &str) -> Result<Option<String>, String>;
    /// The files a main file names that belong to the rule (relative to its folder).
    fn companions(&self, main: &str) -> Vec<String> {
        let _ = main;
        vec![]
    }
    /// The vendor ids of the rules a main file's rule is made of, in order (Panther: a
    /// correlation rule's signal rules): `rulecast sync` counts their files as the rule's.
    fn parts(&self, main: &str) -> Vec<String> {
        let _ = main;
        vec![]
    }
    /// What the target adds to one rule's documentation page (its version, its query, header
    /// values), from the files it renders for the rule.
    fn doc(&self, rule: &Rule, files: &[(String, String)], lock: Option<&Lock>) -> Result<DocFacts, String>;
}

/// What a vendor format reader provides.
pub trait Importer: Sync {
    /// The file extensions a folder walk picks up.
    fn extensions(&self) -> &'static [&'static str];
    /// Import one file (`name` is how diagnostics name it; `path` is where it is, for
    /// importers that read a companion file under `policy`).
    fn import(&self, name: &str, text: &str, path: &Path, policy: ReadPolicy) -> Vec<Imported>;
    /// What names a rule (id, name, severity, ATT&CK ids) in a file the importer could not
    /// import, so coverage can still list it; nothing when the text does not parse.
    fn meta(&self, text: &str) -> Meta;
    /// A rule file's query read as a pipeline (`rulecast explain` shows its stages and output
    /// columns); `None` for formats whose queries are not pipelines.
    fn pipeline(&self, text: &str) -> Option<crate::coverage::explain::Pipeline> {
        let _ = text;
        None
    }
}
