//! Typed translation notes: what a note is about, so that it declares only that.
//!
//! Every translation note a target records carries a [`Concern`]: the conditions (by field, and
//! by the place each was written) whose meaning the target renders only approximately, or the
//! part of the rule it is about when that part is not a condition (the aggregation, the alert's
//! layout, metadata such as severity). [`Concern::kind`] groups them; only a note of
//! [`NoteKind::Matching`] (or a run note about how the runtime reads events) can change whether
//! one event matches, so only such a note can declare a verdict difference in `rulecast test`,
//! and only on an event whose canonical verdict depends on a condition the note names
//! ([`crate::eval::depends_on`]).

use serde::Serialize;

use crate::condition::Cond;
use crate::diag::Span;

/// What kind of difference a note describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, strum::IntoStaticStr, strum::EnumIter)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum NoteKind {
    /// Which events a condition matches (case folding, wildcards, regex flavour, empty values,
    /// JSON text): can change a verdict.
    Matching,
    /// How a runtime presents every event (Panther's case-insensitive keys): can change a verdict.
    Runtime,
    /// Counting over events (estimates, measures not rendered): never one event's verdict.
    Aggregation,
    /// The alert's layout (entities, titles, custom details, columns, derived fields).
    Layout,
    /// Rule metadata (severity, schedule).
    Metadata,
}

impl NoteKind {
    /// Can a note of this kind explain why a target decides one event differently?
    pub fn can_change_verdict(self) -> bool {
        matches!(self, NoteKind::Matching | NoteKind::Runtime)
    }
}

/// What one translation note is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Concern {
    /// Conditions on these fields (canonical paths). With `spans`, only the conditions written
    /// at those places; without, every condition on the fields.
    Matching {
        /// Canonical field paths (as written in the rule, element paths for `some` conditions).
        fields: Vec<String>,
        /// Where the conditions were written (empty: all conditions on `fields`).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        spans: Vec<Span>,
    },
    /// The entries of the named allow-list (its patterns as the target renders them).
    AllowList(String),
    /// Event keys that differ from a rule's field names only in letter case (a runtime that
    /// reads keys case-insensitively).
    KeyCase,
    /// The aggregation.
    Aggregation,
    /// The alert's layout.
    Layout,
    /// Metadata.
    Metadata,
}

impl Concern {
    /// Conditions on one field, written at `span` (every condition on the field when `None`).
    pub fn on(field: &str, span: Option<Span>) -> Self {
        Concern::Matching { fields: vec![field.to_string()], spans: span.into_iter().collect() }
    }
    /// Every condition on these fields.
    pub fn fields<S: AsRef<str>>(fields: impl IntoIterator<Item = S>) -> Self {
        Concern::Matching { fields: fields.into_iter().map(|f| f.as_ref().to_string()).collect(), spans: vec![] }
    }
    /// The kind of note.
    pub fn kind(&self) -> NoteKind {
        match self {
            Concern::Matching { .. } => NoteKind::Matching,
            Concern::AllowList(_) => NoteKind::Matching,
            Concern::KeyCase => NoteKind::Runtime,
            Concern::Aggregation => NoteKind::Aggregation,
            Concern::Layout => NoteKind::Layout,
            Concern::Metadata => NoteKind::Metadata,
        }
    }
    /// One note with the same text recorded twice (two conditions): the union of what each is
    /// about.
    pub fn merge(&mut self, other: &Concern) {
        if let (Concern::Matching { fields, spans }, Concern::Matching { fields: f2, spans: s2 }) = (&mut *self, other) {
            for f in f2 {
                if !fields.contains(f) {
                    fields.push(f.clone());
                }
            }
            if spans.is_empty() || s2.is_empty() {
                spans.clear();
            } else {
                for s in s2 {
                    if !spans.contains(s) {
                        spans.push(s.clone());
                    }
                }
            }
        }
    }
    /// Does this note name the condition node `c` (a node written on one of its fields, at one
    /// of its places)? Only [`Concern::Matching`] names nodes; [`Concern::KeyCase`] is decided
    /// per event (see [`crate::eval::respelled_for`]).
    pub fn names(&self, c: &Cond) -> bool {
        if let (Concern::AllowList(name), Cond::Allowed(n)) = (self, c) {
            return name == n;
        }
        let Concern::Matching { fields, spans } = self else { return false };
        let at = |f: &str, span: &Option<Span>| fields.iter().any(|x| x == f) && (spans.is_empty() || span.as_ref().is_some_and(|s| spans.contains(s)));
        match c {
            Cond::Pred(p) => at(&p.field.path, &p.span),
            Cond::FieldRef(f) => at(&f.field.path, &f.span) || at(&f.other.path, &f.span),
            Cond::Some(q) => at(&q.field.path, &q.span),
            Cond::External(l) => at(&l.field.path, &l.span),
            Cond::Succeeded(_) => spans.is_empty() && fields.iter().any(|f| matches!(f.as_str(), "errorCode" | "errorMessage" | "@outcome")),
            Cond::All(_) | Cond::Any(_) | Cond::Not(_) | Cond::Allowed(_) | Cond::Opaque { .. } => false,
        }
    }
}

/// A translation note as `rulecast test` reads it: its text and what it is about.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Note {
    /// The note's text.
    pub message: String,
    /// What it is about.
    pub concern: Concern,
}
