//! How a Panther rule reads each canonical field: raw paths straight from the event, and the
//! virtual fields as Python expressions over `event` (with the helpers they call).

use crate::fields::{Row, Seg, Virtual};

/// How a Panther rule reads a field.
#[derive(Debug, Clone, PartialEq)]
pub struct Map {
    /// A Python expression over `event` for virtual fields; `None`: the raw path is read
    /// directly.
    pub expr: Option<String>,
    /// The helpers `expr` calls.
    pub helpers: &'static [&'static str],
    /// A virtual field Panther has no data for: why.
    pub unavailable: Option<&'static str>,
}

/// A taxonomy row: read from the raw event.
pub fn of_row(_row: &Row, _rest: &[Seg]) -> Map {
    Map { expr: None, helpers: &[], unavailable: None }
}

/// A virtual field: its Python expression, or why Panther has no such data.
pub fn of_virtual(v: &Virtual) -> Map {
    let p = python(v.name);
    Map { expr: p.ok().map(|(e, _)| e.to_string()), helpers: p.map_or(&[], |(_, h)| h), unavailable: p.err() }
}

const NO_ASN: &str = "Panther's rule sees the raw CloudTrail event, which has no ASN data (Panther's optional IPinfo enrichment is another ASN database with other organisation names; rulecast does not substitute it)";

/// Each virtual field as a Python expression over `event` and the helpers it needs, or why
/// Panther has no such data.
pub const VIRTUAL: &[(&str, Result<(&str, &[&str]), &str>)] = &[
    ("@actor_user", Ok((
            "first_set(event.deep_get(\"userIdentity\", \"sessionContext\", \"sessionIssuer\", \"userName\"), event.deep_get(\"userIdentity\", \"userName\"))",
            &["first_set"],
        ))),
    ("@outcome", Ok(("event_outcome(event)", &["event_outcome"]))),
    ("@source_ip", Ok(("source_ip(event)", &["source_ip"]))),
    ("@console_login_mfa_used", Ok(("console_login_mfa_used(event)", &["console_login_mfa_used"]))),
    ("@ecs_category", Err(crate::fields::by_action::BY_ACTION)),
    ("@ecs_type", Err(crate::fields::by_action::BY_ACTION)),
    ("@request_parameters_text", Ok(("text_copy(event, \"requestParameters\")", &["text_copy"]))),
    ("@response_elements_text", Ok(("text_copy(event, \"responseElements\")", &["text_copy"]))),
    ("@additional_eventdata_text", Ok(("text_copy(event, \"additionalEventData\")", &["text_copy"]))),
    ("@service_event_details_text", Ok(("text_copy(event, \"serviceEventDetails\")", &["text_copy"]))),
    ("@source_as_org", Err(NO_ASN)),
    ("@source_as_number", Err(NO_ASN)),
    ("@user_agent_name", Err("Panther's rule sees the raw userAgent text: it has no parsed client name")),
    ("@related_entity", Err("Panther's rule sees the raw CloudTrail event, which has no related-entity list (Panther's p_any_* fields are other lists)")),
];

/// The Python expression of a virtual field (or why there is none).
pub fn python(name: &str) -> Result<(&'static str, &'static [&'static str]), &'static str> {
    VIRTUAL.iter().find(|(n, _)| *n == name).map_or(Err("not a virtual field"), |(_, p)| *p)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_virtual_field_has_an_entry() {
        for v in crate::fields::VIRTUAL {
            assert!(super::VIRTUAL.iter().any(|(n, _)| *n == v.name), "{}", v.name);
        }
    }
}
