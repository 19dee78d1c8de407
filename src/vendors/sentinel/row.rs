//! What Sentinel's AWS connector makes of a raw CloudTrail event: an `AWSCloudTrail` row.
//!
//! Input: a raw CloudTrail event (JSON). Output: every column of the table, typed (JSON-string
//! columns for nested objects), driven by the field taxonomy and the table's column types
//! (`AWSCloudTrail_columns.tsv`, from the Azure Monitor table reference).

use indexmap::IndexMap;
use serde_json::Value;

use crate::eval::{get, text};
use crate::fields::{self, Seg};

/// The Sentinel column types (from the AWSCloudTrail table schema).
fn sentinel_types() -> IndexMap<&'static str, &'static str> {
    include_str!("AWSCloudTrail_columns.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("column\t") && !l.trim().is_empty())
        .filter_map(|l| l.split_once('\t'))
        .collect()
}

/// The columns the table types `datetime` (`TimeGenerated`, ...).
pub fn datetime_columns() -> Vec<&'static str> {
    sentinel_types().into_iter().filter(|(_, t)| *t == "datetime").map(|(c, _)| c).collect()
}

fn path_segs(path: &str) -> Vec<Seg> {
    fields::parse_path(path).unwrap_or_default()
}

/// A raw CloudTrail event -> an `AWSCloudTrail` row: every column of the table, typed
/// (absent strings are "", absent bools and datetimes are null; nested objects and arrays are
/// their JSON text).
pub fn to_sentinel_row(event: &Value) -> IndexMap<String, Value> {
    let types = sentinel_types();
    let mut row: IndexMap<String, Value> = types
        .iter()
        .map(|(c, t)| (c.to_string(), if *t == "string" { Value::from("") } else { Value::Null }))
        .collect();
    row.insert("UserIdentityStoreArn".into(), Value::from(""));
    row.insert("UserIdentityUserId".into(), Value::from(""));
    for r in fields::all() {
        let col = r.col("sentinel").trim_start_matches("json:");
        if col == "-" || !row.contains_key(col) {
            continue;
        }
        let Some(v) = get(event, &path_segs(&r.path)) else { continue };
        let typ = types.get(col).copied().unwrap_or("string");
        let cell = match (typ, v) {
            ("bool", Value::Bool(b)) => Value::Bool(*b),
            ("bool", Value::String(s)) => match s.to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => Value::Null,
            },
            ("bool", _) => Value::Null,
            (_, Value::Object(_) | Value::Array(_)) => Value::from(serde_json::to_string(v).unwrap_or_default()),
            (_, other) => Value::from(text(other).unwrap_or_default()),
        };
        row.insert(col.to_string(), cell);
    }
    row.insert("Type".into(), Value::from("AWSCloudTrail"));
    row
}


#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_datetime_columns_come_from_the_schema() {
        assert_eq!(datetime_columns(), ["SessionCreationDate", "TimeGenerated"]);
    }

    #[test]
    fn sentinel_row_types() {
        let e = json!({"eventName": "X", "readOnly": true, "requestParameters": {"enable": false},
            "userIdentity": {"sessionContext": {"attributes": {"mfaAuthenticated": "true"}}}});
        let row = to_sentinel_row(&e);
        assert_eq!(row["EventName"], "X");
        assert_eq!(row["ReadOnly"], true);
        assert_eq!(row["SessionMfaAuthenticated"], true);
        assert_eq!(row["RequestParameters"], r#"{"enable":false}"#);
        assert_eq!(row["ErrorCode"], "");
        assert_eq!(row["ManagementEvent"], Value::Null);
    }
}
