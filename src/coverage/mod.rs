//! Coverage: rules (canonical, or vendor files imported in memory) → what each detects on each
//! platform, and the matrices, gaps and cross-platform links built from it.
//!
//! Input: loaded canonical [`Rule`]s and/or vendor rule files. Output: a [`Coverage`]: one
//! [`Entry`] per rule × platform (its status there, the API calls it can match — computed from
//! its condition by [`actions::of`] — and its ATT&CK ids), the files that could not be read, and
//! the views ([`Coverage::action_matrix`], [`Coverage::technique_matrix`], [`Matrix::gaps`],
//! [`Coverage::same_action`]). The renderings (text, CSV, Navigator layers, HTML) are in
//! [`render`].

pub mod actions;
pub mod diff;
pub mod explain;
pub mod meta;
pub mod render;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Serialize;

pub use actions::{Action, Actions};

use crate::diag::Diagnostic;
use crate::import::{Outcome, Vendor};
use crate::load::Rule;
use crate::load::files::ReadPolicy;
use crate::targets::{Target, Unsupported};

/// Where a platform's rules come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Canonical rules compiled by rulecast for a target.
    Rules,
    /// Vendor rule files read directly.
    Vendor,
}

/// What happened to a rule on a platform.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Status {
    /// Built (canonical) or imported in full (vendor); the translation notes by code.
    Built {
        /// Note code (`E401`) → how many.
        notes: BTreeMap<String, usize>,
    },
    /// Imported, but parts were not carried over (each named with the reason).
    Partial {
        /// The parts.
        parts: Vec<String>,
    },
    /// Not built: the rule's own reason.
    Skipped {
        /// Why.
        reason: String,
    },
    /// A vendor rule that is there but whose detection rulecast could not import: it counts for
    /// its platform (its ATT&CK ids from its metadata), its actions are unknown.
    Unread {
        /// `E502`.
        code: String,
        /// The message.
        reason: String,
    },
    /// A hunting query (`kind: hunting`): listed, not counted as detection coverage (it raises
    /// no alert); `built`: whether the platform has it (Sentinel writes hunting queries).
    Hunting {
        /// Built for (or read from) the platform.
        built: bool,
    },
    /// Not built (canonical rule): the first error.
    Refused {
        /// `E402`.
        code: String,
        /// The message.
        reason: String,
    },
}

impl Status {
    /// Is the rule on the platform (built, possibly with notes; a vendor rule read, imported or
    /// not)?
    pub fn active(&self) -> bool {
        matches!(self, Status::Built { .. } | Status::Partial { .. } | Status::Unread { .. })
    }
    /// One word: built, notes, partial, skipped, refused.
    pub fn word(&self) -> &'static str {
        match self {
            Status::Built { notes } if notes.is_empty() => "built",
            Status::Built { .. } => "notes",
            Status::Partial { .. } => "partial",
            Status::Unread { .. } => "unread",
            Status::Skipped { .. } => "skipped",
            Status::Hunting { .. } => "hunting",
            Status::Refused { .. } => "refused",
        }
    }
    /// The status in a few words (`built with notes E401×2`).
    pub fn describe(&self) -> String {
        match self {
            Status::Built { notes } if notes.is_empty() => "built".into(),
            Status::Built { notes } => {
                format!("built with notes {}", notes.iter().map(|(c, n)| format!("{c}×{n}")).collect::<Vec<_>>().join(", "))
            }
            Status::Partial { parts } => format!("partial: {}", parts.join("; ")),
            Status::Unread { code, reason } => format!("detection not imported {code}: {reason}"),
            Status::Skipped { reason } => format!("skipped: {reason}"),
            Status::Hunting { built: true } => "a hunting query (not counted as detection coverage)".into(),
            Status::Hunting { built: false } => "a hunting query, which this platform has no file for (not counted)".into(),
            Status::Refused { code, reason } => format!("refused {code}: {reason}"),
        }
    }
}

/// One rule on one platform.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// The platform (`sentinel`, or `rules:sentinel` for canonical rules built for Sentinel).
    pub platform: String,
    /// Where it comes from.
    pub origin: Origin,
    /// The rule id.
    pub id: String,
    /// The rule name.
    pub name: String,
    /// The file it was read from.
    pub file: String,
    /// Severity (canonical vocabulary for loaded rules, the vendor's otherwise).
    pub severity: Option<String>,
    /// Status on the platform.
    pub status: Status,
    /// The API calls it can match.
    pub actions: Actions,
    /// Tactic ids.
    pub tactics: Vec<String>,
    /// Technique and sub-technique ids.
    pub techniques: Vec<String>,
}

/// A file that could not be read or imported, with where.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    /// The platform it was read for.
    pub platform: String,
    /// The file.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub col: Option<usize>,
    /// `E501`.
    pub code: String,
    /// The message.
    pub message: String,
}

impl Problem {
    fn of(platform: &str, file: &str, d: &Diagnostic) -> Problem {
        Problem {
            platform: platform.to_string(),
            file: d.span.as_ref().map_or_else(|| file.to_string(), |s| s.file.clone()),
            line: d.span.as_ref().map(|s| s.line),
            col: d.span.as_ref().map(|s| s.col),
            code: d.code.to_string(),
            message: d.message.clone(),
        }
    }
    /// `file:line:col`.
    pub fn location(&self) -> String {
        match (self.line, self.col) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}", self.file),
            _ => self.file.clone(),
        }
    }
}

/// Everything loaded: the entries, the platforms in order, the files that failed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Coverage {
    /// Platforms in the order they were added.
    pub platforms: Vec<String>,
    /// One entry per rule × platform.
    pub entries: Vec<Entry>,
    /// Files that could not be read or imported.
    pub problems: Vec<Problem>,
    /// Per entry, the loaded rule (None when its detection was not imported).
    #[serde(skip)]
    pub loaded: Vec<Option<std::sync::Arc<Rule>>>,
}

/// The platform name of canonical rules built for a target.
pub fn rules_platform(t: Target) -> String {
    format!("rules:{t}")
}

fn attack_of(rule: &Rule) -> (Vec<String>, Vec<String>) {
    let mut tactics = vec![];
    let mut techniques: Vec<String> = vec![];
    for (ta, ts) in &rule.attack {
        tactics.push(ta.id.clone());
        for t in ts {
            if !techniques.contains(&t.id) {
                techniques.push(t.id.clone());
            }
        }
    }
    (tactics, techniques)
}

fn severity_of(rule: &Rule) -> String {
    format!("{:?}", rule.doc.severity.value).to_lowercase()
}

impl Coverage {
    fn platform(&mut self, p: &str) {
        if !self.platforms.iter().any(|x| x == p) {
            self.platforms.push(p.to_string());
        }
    }

    /// Add canonical rules, one entry per rule × target (each compiled to learn its status).
    pub fn add_rules(&mut self, rules: &[Rule], targets: &[Target], policy: Unsupported) {
        for &t in targets {
            self.platform(&rules_platform(t));
        }
        for rule in rules {
            let shared = std::sync::Arc::new(rule.clone());
            let actions = actions::of(&rule.events_condition());
            let (tactics, techniques) = attack_of(rule);
            for &t in targets {
                let status = if rule.doc.kind == crate::model::RuleKind::Hunting {
                    // a hunting query raises no alert: listed, not counted
                    Status::Hunting { built: crate::targets::skip_reason(rule, t).is_none() && crate::targets::compile(rule, t, policy).is_ok() }
                } else if let Some(reason) = crate::targets::skip_reason(rule, t) {
                    Status::Skipped { reason }
                } else {
                    match crate::targets::compile(rule, t, policy) {
                        Ok(out) => {
                            let mut notes = BTreeMap::new();
                            for n in out.notes.iter() {
                                *notes.entry(n.code.to_string()).or_insert(0) += 1;
                            }
                            Status::Built { notes }
                        }
                        Err(d) => {
                            let first = d.iter().find(|x| x.is_error()).or_else(|| d.iter().next());
                            Status::Refused {
                                code: first.map_or_else(String::new, |x| x.code.to_string()),
                                reason: first.map_or_else(String::new, |x| x.message.clone()),
                            }
                        }
                    }
                };
                self.loaded.push(Some(shared.clone()));
                self.entries.push(Entry {
                    platform: rules_platform(t),
                    origin: Origin::Rules,
                    id: rule.doc.id.value.clone(),
                    name: rule.doc.name.clone(),
                    file: rule.file.clone(),
                    severity: Some(severity_of(rule)),
                    status,
                    actions: actions.clone(),
                    tactics: tactics.clone(),
                    techniques: techniques.clone(),
                });
            }
        }
    }

    /// Add a vendor's rule files (folders read recursively), imported in memory. A file that
    /// cannot be read or imported is a [`Problem`] (and, when it names a rule, an entry with
    /// unknown actions); the others are covered.
    pub fn add_vendor(&mut self, vendor: Vendor, paths: &[PathBuf], policy: ReadPolicy) {
        let platform = vendor.to_string();
        self.platform(&platform);
        let (files, refused) = crate::import::files_with(vendor, paths, policy);
        for d in &refused {
            self.problems.push(Problem::of(&platform, "", d));
        }
        for path in files {
            self.add_vendor_file(vendor, &path, policy);
        }
    }

    fn add_vendor_file(&mut self, vendor: Vendor, path: &Path, policy: ReadPolicy) {
        let platform = vendor.to_string();
        let name = path.display().to_string();
        let text = match crate::load::files::read_text(path, policy) {
            Ok(t) => t,
            Err(d) => {
                self.problems.push(Problem::of(&platform, &name, &d));
                return;
            }
        };
        for imp in crate::vendors::importer(vendor).import(&name, &text, path, policy) {
            let loaded = match &imp.outcome {
                Outcome::Refused(d) => Err(d.clone()),
                Outcome::Full | Outcome::Partial(_) | Outcome::Opaque(_) => crate::load::rule_from_str(&name, &imp.slug, &imp.yaml).map_err(|ds| {
                    ds.iter().find(|d| d.is_error()).cloned().unwrap_or_else(|| Diagnostic::error(crate::diag::Code::E900, "the imported rule does not load"))
                }),
            };
            match loaded {
                Ok(rule) => {
                    let status = match &imp.outcome {
                        _ if rule.doc.kind == crate::model::RuleKind::Hunting => Status::Hunting { built: true },
                        Outcome::Partial(parts) | Outcome::Opaque(parts) => Status::Partial { parts: parts.iter().map(ToString::to_string).collect() },
                        Outcome::Full | Outcome::Refused(_) => Status::Built { notes: BTreeMap::new() },
                    };
                    let (tactics, techniques) = attack_of(&rule);
                    let actions = actions::of(&rule.events_condition());
                    self.entries.push(Entry {
                        platform: platform.clone(),
                        origin: Origin::Vendor,
                        id: rule.doc.id.value.clone(),
                        name: rule.doc.name.clone(),
                        file: name.clone(),
                        severity: Some(severity_of(&rule)),
                        status,
                        actions,
                        tactics,
                        techniques,
                    });
                    self.loaded.push(Some(std::sync::Arc::new(rule)));
                }
                Err(d) => {
                    self.problems.push(Problem::of(&platform, &name, &d));
                    let m = meta::of(vendor, &text);
                    self.entries.push(Entry {
                        platform: platform.clone(),
                        origin: Origin::Vendor,
                        id: m.id.unwrap_or_else(|| imp.slug.clone()),
                        name: m.name.unwrap_or_else(|| imp.slug.clone()),
                        file: name.clone(),
                        severity: m.severity,
                        status: Status::Unread { code: d.code.to_string(), reason: d.message.clone() },
                        actions: Actions::Unknown { reason: format!("the detection was not imported: {}", d.message) },
                        tactics: m.tactics,
                        techniques: m.techniques,
                    });
                    self.loaded.push(None);
                }
            }
        }
    }

    /// The action × platform matrix: every known action of an active entry.
    pub fn action_matrix(&self) -> Matrix {
        let mut m = self.matrix(|e| e.actions.known().iter().map(|a| (a.to_string(), a.to_string())).collect());
        for (p, n) in m.unknown.iter_mut() {
            *n = self.entries.iter().filter(|e| &e.platform == p && e.status.active() && matches!(e.actions, Actions::Unknown { .. })).count();
        }
        m
    }

    /// The technique × platform matrix (techniques and sub-techniques as the rules list them).
    pub fn technique_matrix(&self) -> Matrix {
        self.matrix(|e| {
            e.techniques
                .iter()
                .map(|t| (t.clone(), crate::attack::technique(t).map_or_else(String::new, |x| x.name.clone())))
                .collect()
        })
    }

    fn matrix(&self, keys: impl Fn(&Entry) -> Vec<(String, String)>) -> Matrix {
        let mut rows: BTreeMap<String, Row> = BTreeMap::new();
        for (i, e) in self.entries.iter().enumerate() {
            if !e.status.active() {
                continue;
            }
            for (k, label) in keys(e) {
                let row = rows.entry(k.clone()).or_insert_with(|| Row {
                    key: k.clone(),
                    label,
                    counts: self.platforms.iter().map(|p| (p.clone(), 0)).collect(),
                    rules: self.platforms.iter().map(|p| (p.clone(), vec![])).collect(),
                });
                if let Some(c) = row.counts.get_mut(&e.platform) {
                    *c += 1;
                }
                if let Some(r) = row.rules.get_mut(&e.platform) {
                    r.push(i);
                }
            }
        }
        Matrix {
            platforms: self.platforms.clone(),
            rows: rows.into_values().collect(),
            unknown: self.platforms.iter().map(|p| (p.clone(), 0)).collect(),
        }
    }

    /// For an entry, the active entries on other platforms that can match one of its known
    /// actions, with the actions they share (in entry order).
    pub fn same_action(&self, i: usize) -> Vec<(usize, Vec<Action>)> {
        let Some(me) = self.entries.get(i) else { return vec![] };
        let mine: BTreeSet<&Action> = me.actions.known().iter().collect();
        if mine.is_empty() {
            return vec![];
        }
        self.entries
            .iter()
            .enumerate()
            .filter(|(j, e)| *j != i && e.platform != me.platform && e.status.active())
            .filter_map(|(j, e)| {
                let shared: Vec<Action> = e.actions.known().iter().filter(|a| mine.contains(a)).cloned().collect();
                (!shared.is_empty()).then_some((j, shared))
            })
            .collect()
    }

    /// Per platform: rules, active rules, rules by kind of actions, distinct actions and
    /// techniques covered.
    pub fn summary(&self) -> IndexMap<String, Summary> {
        let am = self.action_matrix();
        let tm = self.technique_matrix();
        self.platforms
            .iter()
            .map(|p| {
                let es: Vec<&Entry> = self.entries.iter().filter(|e| &e.platform == p).collect();
                let active: Vec<&&Entry> = es.iter().filter(|e| e.status.active()).collect();
                let s = Summary {
                    rules: es.len(),
                    active: active.len(),
                    known: active.iter().filter(|e| matches!(e.actions, Actions::Known { .. })).count(),
                    any: active.iter().filter(|e| matches!(e.actions, Actions::Any { .. })).count(),
                    unknown: es.iter().filter(|e| matches!(e.actions, Actions::Unknown { .. })).count(),
                    actions: am.rows.iter().filter(|r| r.counts.get(p).copied().unwrap_or(0) > 0).count(),
                    techniques: tm.rows.iter().filter(|r| r.counts.get(p).copied().unwrap_or(0) > 0).count(),
                };
                (p.clone(), s)
            })
            .collect()
    }
}

/// Figures for one platform.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Rules read.
    pub rules: usize,
    /// Rules built or imported.
    pub active: usize,
    /// Active rules whose actions are known.
    pub known: usize,
    /// Active rules that do not narrow the API call down.
    pub any: usize,
    /// Rules whose actions cannot be known (any status).
    pub unknown: usize,
    /// Distinct actions covered.
    pub actions: usize,
    /// Distinct techniques covered.
    pub techniques: usize,
}

/// Rows × platforms, each cell the number of active rules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Matrix {
    /// Column order.
    pub platforms: Vec<String>,
    /// Rows, sorted by key.
    pub rows: Vec<Row>,
    /// Platform → active rules whose keys are unknown (their actions): an empty cell in such a
    /// column may be covered, so it is not a gap.
    pub unknown: IndexMap<String, usize>,
}

/// One row of a [`Matrix`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// `ec2.amazonaws.com:AuthorizeSecurityGroupIngress` or `T1562.007`.
    pub key: String,
    /// A label (the technique name).
    pub label: String,
    /// Platform → number of active rules.
    pub counts: IndexMap<String, usize>,
    /// Platform → the entries (indices into [`Coverage::entries`]).
    #[serde(skip)]
    pub rules: IndexMap<String, Vec<usize>>,
}

impl Matrix {
    /// Is the cell surely empty (no rule, and no rule there whose keys are unknown)?
    pub fn surely_empty(&self, r: &Row, platform: &str) -> bool {
        r.counts.get(platform).copied().unwrap_or(0) == 0 && self.unknown.get(platform).copied().unwrap_or(0) == 0
    }

    /// The rows covered on some platform and surely not covered on another.
    pub fn gaps(&self) -> Vec<&Row> {
        self.rows.iter().filter(|r| r.counts.values().any(|c| *c > 0) && self.platforms.iter().any(|p| self.surely_empty(r, p))).collect()
    }
}

#[cfg(test)]
mod tests;
