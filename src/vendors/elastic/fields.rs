//! How Elastic's AWS integration holds each canonical field: the taxonomy's `elastic` and
//! `elastic_kind` columns (an ECS field, or `flattened:prefix` for the flattened copies of
//! free-form objects), the virtual fields as ECS fields, the caveats that apply here, and the
//! IP-typed copies `cidr` reads.

use crate::fields::{Mapping, Row, Seg, Virtual, mapping};

/// How Elastic holds a field.
#[derive(Debug, Clone, PartialEq)]
pub struct Map {
    /// The field or flattened prefix.
    pub mapping: Mapping,
    /// Its field type (`keyword`, `boolean`, `ip`, `flattened`, ...).
    pub kind: String,
}

/// A taxonomy row (and the path below it).
pub fn of_row(row: &Row, rest: &[Seg]) -> Map {
    let mut m = mapping(row.col("elastic"), rest);
    // Elastic flattens arrays: an index cannot be addressed there.
    if let Mapping::Nested { rest, .. } = &m {
        if rest.iter().any(|s| matches!(s, Seg::Index(_))) {
            m = Mapping::None;
        }
    }
    Map { mapping: m, kind: if rest.is_empty() { row.col("elastic_kind").to_string() } else { "flattened".into() } }
}

/// A virtual field: its ECS field, or why Elastic has no such data.
pub fn of_virtual(v: &Virtual) -> Map {
    let f = field(v.name);
    Map {
        mapping: match f {
            Ok((f, _)) => Mapping::Column(f.to_string()),
            Err(why) => Mapping::Unavailable(why),
        },
        kind: f.map_or("keyword", |(_, k)| k).to_string(),
    }
}

/// A path inside a `some` element.
pub fn element(m: Mapping) -> Map {
    Map { mapping: m, kind: "flattened".into() }
}

/// Each virtual field as the ECS field (and its type) the integration writes, or why Elastic
/// has no such data.
pub const VIRTUAL: &[(&str, Result<(&str, &str), &str>)] = &[
    ("@actor_user", Ok(("user.name", "keyword"))),
    ("@outcome", Ok(("event.outcome", "keyword"))),
    ("@source_ip", Ok(("source.ip", "ip"))),
    ("@console_login_mfa_used", Ok(("aws.cloudtrail.console_login.additional_eventdata.mfa_used", "boolean"))),
    ("@ecs_category", Ok(("event.category", "keyword"))),
    ("@ecs_type", Ok(("event.type", "keyword"))),
    ("@request_parameters_text", Ok(("aws.cloudtrail.request_parameters", "keyword"))),
    ("@response_elements_text", Ok(("aws.cloudtrail.response_elements", "keyword"))),
    ("@additional_eventdata_text", Ok(("aws.cloudtrail.additional_eventdata", "keyword"))),
    ("@service_event_details_text", Ok(("aws.cloudtrail.service_event_details", "keyword"))),
    ("@source_as_org", Ok(("source.as.organization.name", "keyword"))),
    ("@source_as_number", Ok(("source.as.number", "long"))),
    ("@user_agent_name", Ok(("user_agent.name", "keyword"))),
    ("@related_entity", Ok(("related.entity", "keyword"))),
];

/// The ECS field and type of a virtual field (or why there is none).
pub fn field(name: &str) -> Result<(&'static str, &'static str), &'static str> {
    VIRTUAL.iter().find(|(n, _)| *n == name).map_or(Err("not a virtual field"), |(_, f)| *f)
}

/// Caveats that apply to this target: (code, note text).
pub const CAVEATS: &[(&str, &str)] = &[
    ("user_name_merged", "the AWS integration writes both userIdentity.userName and sessionContext.sessionIssuer.userName into user.name (the issuer's name only for AssumedRole and FederatedUser identities, where it overrides the user name); the rendering tests that merged value"),
    ("newer_integration", "the field is produced only by newer AWS integration versions"),
    ("text_copy", "Elastic does not index a text copy longer than its field's ignore_above (8191 characters for request_parameters and response_elements, 1024 for additional_eventdata and service_event_details): no condition on it matches such an event"),
    ("mfa_used_absent", "the field facts say the AWS integration sets mfa_used for ConsoleLogin only (`MFAUsed == 'No'` -> false, else true); whether it writes `true` for a ConsoleLogin without additionalEventData.MFAUsed was not verified (the canonical field is absent there)"),
];

/// The note text for a caveat code, if the caveat applies to this target.
pub fn caveat_note(code: &str) -> Option<&'static str> {
    CAVEATS.iter().find(|c| c.0 == code).map(|c| c.1)
}

/// Elastic fields that hold IP-typed copies of a raw path (for `cidr`).
pub const IP_FIELDS: &[(&str, &str)] = &[("sourceIPAddress", "source.ip"), ("@source_ip", "source.ip")];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::resolve;

    #[test]
    fn resolves_columns_and_nested_paths() {
        assert_eq!(resolve("eventName").unwrap().maps.elastic.mapping, Mapping::Column("event.action".into()));
        assert_eq!(
            resolve("requestParameters.enable").unwrap().maps.elastic.mapping,
            Mapping::Nested {
                base: "aws.cloudtrail.flattened.request_parameters".into(),
                rest: vec![Seg::Key("enable".into())]
            }
        );
        assert_eq!(resolve("resources[0].ARN").unwrap().maps.elastic.mapping, Mapping::None);
    }

    #[test]
    fn every_virtual_field_has_an_entry() {
        for v in crate::fields::VIRTUAL {
            assert!(VIRTUAL.iter().any(|(n, _)| *n == v.name), "{}", v.name);
        }
    }
}
