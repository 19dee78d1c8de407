//! Elastic hunting queries: a canonical `kind: hunting` rule → a hunt of detection-rules' hunting
//! library (`hunting/<integration>/queries/*.toml`, its `Hunt` dataclass in
//! `hunting/definitions.py`): `[hunt]` with `author`, `description`, `integration`, `uuid`,
//! `name`, `language`, `license`, `mitre` (technique ids), `references` and `query` (a list).
//!
//! The query is the rule's EQL rendering (`any where …`), language `["EQL"]`: a hunt lists the
//! events it finds, with no schedule and no alert, as the Sentinel hunting query does. What a
//! hunt has no place for is declared: the alert's result columns (EQL returns whole events), an
//! aggregation (EQL lists events, not groups), entities and details. What EQL cannot say is
//! refused as it is for an EQL rule.

use serde::Serialize;

use crate::diag::{Code, Diagnostics};
use crate::load::Rule;
use crate::targets::{Concern, Cx, Target, derived_uuid, render};

/// The template.
pub const TEMPLATE: &str = "elastic/hunt.toml.j2";

/// What the template sees.
#[derive(Debug, Serialize)]
struct View {
    author: String,
    description: String,
    integration: Vec<String>,
    uuid: String,
    name: String,
    license: String,
    mitre: Vec<String>,
    references: Vec<String>,
    query: String,
}

/// Compile a hunting query into a detection-rules hunt.
pub fn compile(rule: &Rule, cx: &mut Cx) -> Result<Vec<(String, String)>, Diagnostics> {
    let d = &rule.doc;
    let e = &d.targets.elastic;
    let query = super::eql::query(rule, cx);
    if !d.alert.columns.is_empty() {
        cx.approximate(Concern::Layout, None, "an EQL hunt returns whole events: the alert's result columns are not rendered");
    }
    if d.alert.aggregate.is_some() {
        cx.approximate(Concern::Aggregation, None, "an EQL hunt lists the events it finds: the aggregation (group-by and measures) is not rendered");
    }
    if !d.alert.entities.is_empty() || !d.alert.details.is_empty() {
        cx.approximate(Concern::Layout, None, "a hunt has no entities or custom details: they are not rendered (their fields are in the events)");
    }
    if rule.new_terms.is_some() {
        cx.unsupported(Code::E402, None, "a hunt lists events: it has no history to find new terms in");
    }
    if d.license.is_none() {
        cx.unsupported(Code::E402, None, "detection-rules' hunt requires a licence: set `license`");
    }
    let authors = e.authors.clone().unwrap_or_else(|| d.authors.clone());
    if authors.is_empty() {
        cx.unsupported(Code::E402, None, "detection-rules' hunt requires an author: set `authors`");
    }
    if cx.diags.has_errors() {
        return Err(Diagnostics::new());
    }
    let mut mitre = vec![];
    for (_, techs) in &rule.attack {
        for t in techs {
            if !mitre.contains(&t.id) {
                mitre.push(t.id.clone());
            }
        }
    }
    let view = View {
        author: authors.join(", "),
        description: e.description.clone().unwrap_or_else(|| d.description.clone()),
        integration: vec!["aws.cloudtrail".into()],
        uuid: e.id.as_ref().map(|i| i.value.clone()).unwrap_or_else(|| derived_uuid(&d.id.value, Target::Elastic)),
        name: e.name.clone().unwrap_or_else(|| d.name.clone()),
        license: d.license.clone().unwrap_or_default(),
        mitre,
        references: d.references.clone(),
        query,
    };
    let file = e.file.as_ref().map(|f| f.value.clone()).unwrap_or_else(|| rule.slug.clone());
    Ok(vec![(format!("elastic/{file}.toml"), render::render(TEMPLATE, &view)?)])
}
