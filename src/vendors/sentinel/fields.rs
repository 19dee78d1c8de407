//! How Sentinel's `AWSCloudTrail` table holds each canonical field: the taxonomy's `sentinel`
//! column (a column, or `json:Column` for a JSON-string column read with `parse_json`), the
//! virtual fields as KQL expressions, the caveats that apply here, and the table's schema.

use crate::fields::{Kind, Mapping, Row, Seg, Virtual, mapping};

/// How Sentinel holds a field.
pub type Map = Mapping;

/// A taxonomy row (and the path below it).
pub fn of_row(row: &Row, rest: &[Seg]) -> Map {
    let spec = row.col("sentinel");
    if row.kind == Kind::Array && rest.is_empty() {
        return Mapping::Column(spec.trim_start_matches("json:").to_string());
    }
    mapping(spec, rest)
}

/// A virtual field: its KQL expression, or why Sentinel has no such data.
pub fn of_virtual(v: &Virtual) -> Map {
    match expr(v.name) {
        Ok(e) => Mapping::Expr(e.to_string()),
        Err(why) => Mapping::Unavailable(why),
    }
}

const NO_ASN: &str = "Sentinel's AWSCloudTrail table has no ASN enrichment of SourceIpAddress";

/// Each virtual field as a KQL string expression over `AWSCloudTrail` columns, or why Sentinel
/// has no such data.
pub const VIRTUAL: &[(&str, Result<&str, &str>)] = &[
    ("@actor_user", Ok("coalesce(SessionIssuerUserName, UserIdentityUserName)")),
    ("@outcome", Ok("iif(EventName == \"ConsoleLogin\" and isnotempty(tostring(parse_json(ResponseElements).ConsoleLogin)), tolower(tostring(parse_json(ResponseElements).ConsoleLogin)), iif(isnotempty(ErrorCode) or isnotempty(ErrorMessage), \"failure\", \"success\"))")),
    ("@source_ip", Ok("iif(coalesce(ipv4_is_in_any_range(SourceIpAddress, dynamic([\"0.0.0.0/0\"])), false) or coalesce(ipv6_is_in_any_range(SourceIpAddress, dynamic([\"::/0\"])), false), SourceIpAddress, \"\")")),
    ("@console_login_mfa_used", Ok("iif(EventName == \"ConsoleLogin\" and isnotempty(tostring(parse_json(AdditionalEventData).MFAUsed)), iif(tostring(parse_json(AdditionalEventData).MFAUsed) == \"No\", \"false\", \"true\"), \"\")")),
    ("@ecs_category", Err(crate::fields::by_action::BY_ACTION)),
    ("@ecs_type", Err(crate::fields::by_action::BY_ACTION)),
    ("@request_parameters_text", Ok(r#"replace_regex(replace_string(replace_regex(RequestParameters, "\"((?:[^\"\\\\]|\\\\.)*)\"\\s*:\\s*", "\\1="), "\"", ""), ",\\s*", ", ")"#)),
    ("@response_elements_text", Ok(r#"replace_regex(replace_string(replace_regex(ResponseElements, "\"((?:[^\"\\\\]|\\\\.)*)\"\\s*:\\s*", "\\1="), "\"", ""), ",\\s*", ", ")"#)),
    ("@additional_eventdata_text", Ok(r#"replace_regex(replace_string(replace_regex(AdditionalEventData, "\"((?:[^\"\\\\]|\\\\.)*)\"\\s*:\\s*", "\\1="), "\"", ""), ",\\s*", ", ")"#)),
    ("@service_event_details_text", Ok(r#"replace_regex(replace_string(replace_regex(ServiceEventDetails, "\"((?:[^\"\\\\]|\\\\.)*)\"\\s*:\\s*", "\\1="), "\"", ""), ",\\s*", ", ")"#)),
    ("@source_as_org", Err(NO_ASN)),
    ("@source_as_number", Err(NO_ASN)),
    ("@user_agent_name", Err("Sentinel's AWSCloudTrail table keeps UserAgent as text: it has no parsed client name")),
    ("@related_entity", Err("Sentinel's AWSCloudTrail table has no related-entity list")),
];

/// The KQL expression of a virtual field (or why there is none).
pub fn expr(name: &str) -> Result<&'static str, &'static str> {
    VIRTUAL.iter().find(|(n, _)| *n == name).map_or(Err("not a virtual field"), |(_, e)| *e)
}

/// Caveats that apply to this target: (code, note text).
pub const CAVEATS: &[(&str, &str)] = &[
    ("text_copy", "Sentinel keeps the object as JSON text, which the rendering turns toward Java's map text (`\"key\":` to `key=`, quotes removed, `, ` between members) but with JSON's key order (the integration's copy has Java HashMap order), with the null, \"\", \"-\" and \"none\" members the integration drops, JSON's spelling of numbers (Java writes 1.0E10, 100.0) and its escapes, and with a space after every comma inside a text"),
    ("outcome_empty", "where ErrorCode, ErrorMessage or the ConsoleLogin result is \"-\" or \"none\", the rendering counts it as written, while the AWS integration (and so the canonical outcome) drops those values first"),
];

/// The note text for a caveat code, if the caveat applies to this target.
pub fn caveat_note(code: &str) -> Option<&'static str> {
    CAVEATS.iter().find(|c| c.0 == code).map(|c| c.1)
}

/// Is `name` a column of Sentinel's `AWSCloudTrail` table (the schema rulecast checks queries
/// against, with the two columns Azure-Sentinel's KQL validation adds)?
pub fn is_column(name: &str) -> bool {
    include_str!("AWSCloudTrail_columns.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("column\t"))
        .filter_map(|l| l.split('\t').next())
        .chain(["UserIdentityStoreArn", "UserIdentityUserId"])
        .any(|c| c == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::{all, resolve};

    #[test]
    fn resolves_columns_and_nested_paths() {
        assert_eq!(resolve("eventName").unwrap().maps.sentinel, Mapping::Column("EventName".into()));
        assert_eq!(
            resolve("requestParameters.enable").unwrap().maps.sentinel,
            Mapping::Nested { base: "RequestParameters".into(), rest: vec![Seg::Key("enable".into())] }
        );
    }

    #[test]
    fn every_column_exists_in_the_table_schema() {
        for row in all() {
            let col = row.col("sentinel").trim_start_matches("json:");
            if col != "-" {
                assert!(is_column(col), "{col} is not an AWSCloudTrail column");
            }
        }
    }

    #[test]
    fn every_virtual_field_has_an_entry() {
        for v in crate::fields::VIRTUAL {
            assert!(VIRTUAL.iter().any(|(n, _)| *n == v.name), "{}", v.name);
        }
    }
}
