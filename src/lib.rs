#![doc = include_str!("../ARCHITECTURE.md")]
#![deny(missing_docs)]

pub mod attack;
pub mod condition;
pub mod coverage;
pub mod diag;
pub mod eval;
pub mod fields;
pub mod import;
pub mod layout;
pub mod load;
pub mod lock;
pub mod model;
pub mod notes;
pub mod pack;
pub mod par;
pub mod sync;
pub mod targets;
pub mod vendors;

pub use vendors::{kuery, kusto};

pub use condition::Cond;
pub use diag::{Code, Diagnostic, Diagnostics, Span};
pub use load::{Rule, rule_from_str, rules_from_dir};
pub use targets::{Output, Target, Unsupported, compile, skip_reason};

use strum::IntoEnumIterator;

/// The result of compiling a set of rules for a set of targets.
#[derive(Debug, Default)]
pub struct Build {
    /// Every file, keyed by relative path (sorted).
    pub files: std::collections::BTreeMap<String, String>,
    /// Translation notes per (rule file, target).
    pub notes: Vec<(String, Target, Diagnostic)>,
    /// Pairs that were not built, with why: (rule file, target, diagnostics).
    pub refused: Vec<(String, Target, Diagnostics)>,
    /// Pairs skipped on the rule's own say-so: (rule file, target, reason).
    pub skipped: Vec<(String, Target, String)>,
    /// Number of rules.
    pub rules: usize,
    /// Every path made so far, also those a caller has taken out of `files` (see
    /// [`build_more`]): a second rule writing one of them is refused.
    pub paths: std::collections::HashSet<String>,
    /// The targets whose shared files ([`vendors::Backend::shared_files`]) are made already.
    pub shared: std::collections::BTreeSet<Target>,
}

/// What became of one rule × target pair.
#[derive(Debug, Clone, PartialEq)]
pub enum Pair {
    /// Skipped on the rule's own say-so (`targets.<t>.skip`), with the reason.
    Skipped(String),
    /// Built: the files and translation notes.
    Built(Output),
    /// Not built, with why.
    Refused(Diagnostics),
}

/// Compile every rule for every requested target (pure: no files touched). Rules are compiled
/// in parallel ([`par::map`]); the results are gathered in rule order, so the outcome is the
/// same as a sequential run.
pub fn build(rules: &[Rule], targets: &[Target], policy: Unsupported) -> Build {
    let mut b = Build::default();
    build_more(&mut b, rules, targets, policy);
    b
}

/// [`build`] for one more batch of rules, added to `b`: a caller that writes `b.files` out and
/// empties it between batches holds one batch in memory, not the whole set (`rulecast build`).
pub fn build_more(b: &mut Build, rules: &[Rule], targets: &[Target], policy: Unsupported) {
    let targets: Vec<Target> = if targets.is_empty() { Target::iter().collect() } else { targets.to_vec() };
    let pairs = par::map(rules, |rule| compile_pairs(rule, &targets, policy));
    for (rule, pairs) in rules.iter().zip(pairs) {
        add_pairs(b, &rule.file, &targets, pairs);
    }
}

/// One rule compiled for each of `targets` (in that order): the work of [`build_more`] for one
/// rule, without adding it to a [`Build`].
pub fn compile_pairs(rule: &Rule, targets: &[Target], policy: Unsupported) -> Vec<Pair> {
    targets
        .iter()
        .map(|&t| match skip_reason(rule, t) {
            Some(why) => Pair::Skipped(why),
            None => match compile(rule, t, policy) {
                Ok(out) => Pair::Built(out),
                Err(d) => Pair::Refused(d),
            },
        })
        .collect()
}

/// Add one rule's pairs (from [`compile_pairs`], or a build cache that kept them) to `b`, as
/// [`build_more`] does: a path an earlier rule wrote is refused (E106).
pub fn add_pairs(b: &mut Build, file: &str, targets: &[Target], pairs: Vec<Pair>) {
    b.rules += 1;
    for (&t, pair) in targets.iter().zip(pairs) {
        match pair {
            Pair::Skipped(why) => b.skipped.push((file.to_string(), t, why)),
            Pair::Built(out) => {
                // the target's files every rule shares (once per build, with its first rule)
                if b.shared.insert(t) {
                    for (path, text) in vendors::backend(t).shared_files() {
                        b.paths.insert(path.to_string());
                        b.files.insert(path.to_string(), text.to_string());
                    }
                }
                for (path, text) in out.files {
                    if b.paths.insert(path.clone()) {
                        b.files.insert(path, text);
                    } else {
                        b.refused.push((
                            file.to_string(),
                            t,
                            Diagnostic::error(Code::E106, format!("two rules write `{path}`"))
                                .with_hint("give one of them another `targets.<target>.file`")
                                .into(),
                        ));
                    }
                }
                for n in out.notes.0 {
                    b.notes.push((file.to_string(), t, n));
                }
            }
            Pair::Refused(d) => b.refused.push((file.to_string(), t, d)),
        }
    }
}
