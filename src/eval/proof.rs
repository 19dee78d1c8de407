//! The proof `rulecast test` gives: every target's decision on every event, held to the
//! canonical verdict, with each difference either declared by a translation note that is about
//! it or counted as a failure.
//!
//! Input: the cases (rule × event, with the expected verdict when a rule test gives one) and
//! each target's [`Decided`] run over them. Output: one [`Row`] per case.
//!
//! A difference is declared only by a note whose kind can change a verdict
//! ([`NoteKind::can_change_verdict`]) and whose conditions the event's canonical verdict
//! depends on ([`eval::depends_on`]): inverting one of them, or all of them, changes the verdict.
//! Notes about the alert's layout, the aggregation or metadata never declare one.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::eval::{self, Entries, Enrichment};
use crate::load::Rule;
use crate::notes::{Concern, Note, NoteKind};
use crate::vendors::{Decided, Decision, Job, Target, backend};

/// One rule × event to prove.
#[derive(Debug, Clone)]
pub struct Case<'a> {
    /// The rule.
    pub rule: &'a Rule,
    /// Test name, or corpus event reference.
    pub name: String,
    /// The test's expected verdict (none for corpus events).
    pub expected: Option<bool>,
    /// The raw event.
    pub event: serde_json::Value,
    /// Allow-list entries in place of the shipped ones.
    pub allowlists: Entries,
    /// Enrichment values the test gives (none: nothing is looked up).
    pub enrichment: Option<Enrichment>,
}

impl Case<'_> {
    /// The job a target decides.
    pub fn job(&self) -> Job<'_> {
        Job { rule: self.rule, event: &self.event, allowlists: &self.allowlists, enrichment: self.enrichment.as_ref() }
    }
}

/// How a row came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Status {
    /// Every target agrees with the canonical verdict (and it with the expectation).
    Pass,
    /// A target differs, and a note about a condition this event's verdict depends on says why.
    Declared,
    /// An expectation not met, a target error, or an undeclared difference.
    Fail,
}

/// A difference between a target and the canonical verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    /// The target.
    pub target: Target,
    /// The notes that declare it (empty: undeclared, a failure).
    pub declared_by: Vec<Note>,
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
    /// What each target decides.
    #[serde(flatten)]
    pub targets: BTreeMap<Target, Decision>,
    /// pass | declared | fail
    pub status: Status,
    /// Where a target differs from the canonical verdict.
    pub differences: Vec<Difference>,
}

/// The translation notes of a rule × target that can change a verdict, as `rulecast test`
/// weighs them (the target's own list: [`crate::vendors::Backend::verdict_notes`]).
pub fn verdict_notes(rule: &Rule, target: Target) -> Vec<Note> {
    typed(&backend(target).verdict_notes(rule))
}

/// The typed notes among diagnostics that can change a verdict.
pub fn typed(diags: &[crate::Diagnostic]) -> Vec<Note> {
    diags
        .iter()
        .filter_map(|d| d.concern.clone().map(|concern| Note { message: d.message.clone(), concern }))
        .filter(|n| n.concern.kind().can_change_verdict())
        .collect()
}

/// Does this note declare a difference on this case? Its kind can change a verdict, and the
/// canonical verdict depends on a condition it names.
pub fn declares(note: &Note, case: &Case) -> bool {
    if !note.concern.kind().can_change_verdict() {
        return false;
    }
    let (lists, enrichment) = (&case.allowlists, case.enrichment.as_ref());
    match &note.concern {
        // a runtime that reads keys case-insensitively decides differently on this event
        Concern::KeyCase => {
            let respelled = eval::respelled_for(case.rule, &case.event);
            respelled != case.event
                && eval::evaluate_with(case.rule, &respelled, lists, enrichment).matched
                    != eval::evaluate_with(case.rule, &case.event, lists, enrichment).matched
        }
        other => eval::depends_on(case.rule, &case.event, lists, enrichment, &|c| other.names(c)),
    }
}

/// Hold every target's decisions to the canonical verdict. `notes` gives a rule × target's
/// notes (called once per pair that differs somewhere).
pub fn prove(cases: &[Case], decided: &BTreeMap<Target, Decided>, notes: &dyn Fn(&Rule, Target) -> Vec<Note>) -> Vec<Row> {
    let mut cache: HashMap<(String, Target), Vec<Note>> = HashMap::new();
    let mut rows = Vec::with_capacity(cases.len());
    for (i, case) in cases.iter().enumerate() {
        let canonical = eval::evaluate_with(case.rule, &case.event, &case.allowlists, case.enrichment.as_ref()).matched;
        let mut differences = vec![];
        let mut failed = case.expected.zip(canonical).is_some_and(|(e, c)| e != c);
        // what the targets are held to: the canonical verdict, or (opaque logic) the expectation
        let reference = canonical.or(case.expected);
        let mut targets = BTreeMap::new();
        for (&t, d) in decided {
            let v = d.decisions[i].clone();
            if let Decision::Error(_) = v {
                failed = true;
                differences.push(Difference { target: t, declared_by: vec![] });
            } else if v.as_bool().zip(reference).is_some_and(|(b, r)| b != r) {
                let pair = cache.entry((case.rule.file.clone(), t)).or_insert_with(|| notes(case.rule, t));
                let declared_by: Vec<Note> =
                    pair.iter().chain(d.run_notes.iter()).filter(|n| declares(n, case)).cloned().collect();
                if declared_by.is_empty() {
                    failed = true;
                }
                differences.push(Difference { target: t, declared_by });
            }
            targets.insert(t, v);
        }
        let status = if failed {
            Status::Fail
        } else if differences.is_empty() {
            Status::Pass
        } else {
            Status::Declared
        };
        rows.push(Row { rule: case.rule.file.clone(), event: case.name.clone(), expected: case.expected, canonical, targets, status, differences });
    }
    rows
}

/// How many rows declare a difference with a note of each kind (a row counts once per kind).
pub fn declared_by_kind(rows: &[Row]) -> BTreeMap<NoteKind, usize> {
    let mut out = BTreeMap::new();
    for r in rows {
        let mut kinds: Vec<NoteKind> = r.differences.iter().flat_map(|d| d.declared_by.iter().map(|n| n.concern.kind())).collect();
        kinds.sort();
        kinds.dedup();
        for k in kinds {
            *out.entry(k).or_insert(0) += 1;
        }
    }
    out
}
