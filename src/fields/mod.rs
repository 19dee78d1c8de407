//! The CloudTrail field taxonomy: raw JSON path -> Sentinel column, Elastic field, value type.
//!
//! Input: a raw path as written in a rule (`requestParameters.enable`, `resources[0].ARN`).
//! Output: a [`Field`] that each target turns into its own syntax. The table is data
//! (`cloudtrail.tsv`, embedded); a path with no mapping for a target is a diagnostic there.

use std::sync::OnceLock;

/// One segment of a raw path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// An object key.
    Key(String),
    /// An array index (negative counts from the end).
    Index(i64),
}

/// The value type a field carries in raw CloudTrail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text.
    String,
    /// JSON boolean.
    Bool,
    /// The strings "true"/"false".
    BoolString,
    /// JSON number.
    Number,
    /// ISO-8601 text.
    Datetime,
    /// JSON object (any nested path allowed).
    Object,
    /// JSON object whose sub-paths are listed in the taxonomy (others are unknown).
    Record,
    /// JSON array (nested paths allowed).
    Array,
    /// Unknown: a path inside an object.
    Any,
}

/// How a target stores the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapping {
    /// A column / field of its own.
    Column(String),
    /// The rest of the path is read inside a JSON-string column (Sentinel) or a flattened
    /// object field (Elastic).
    Nested {
        /// The column or the flattened field's prefix.
        base: String,
        /// The segments below it.
        rest: Vec<Seg>,
    },
    /// A path inside the element a `some` condition is testing (`var` names the element in
    /// the target's generated code).
    Element {
        /// The element's name (`_e1` for the outermost `some`).
        var: String,
        /// The segments below the element.
        rest: Vec<Seg>,
    },
    /// Computed by an expression (virtual fields).
    Expr(String),
    /// The target has nothing for it.
    None,
    /// A virtual field the target has no data for: why (reported as E402).
    Unavailable(&'static str),
}

/// One row of the taxonomy.
#[derive(Debug, Clone)]
pub struct Row {
    /// Raw path.
    pub path: String,
    /// Value type.
    pub kind: Kind,
    /// Sentinel column or `json:Column`.
    pub sentinel: String,
    /// Elastic field or `flattened:prefix`.
    pub elastic: String,
    /// Elastic field type.
    pub elastic_kind: String,
    /// Does AWS generate the value in a fixed spelling?
    pub case_fixed: bool,
    /// Caveat code, if any.
    pub caveat: Option<String>,
}

/// A resolved field reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The path as written.
    pub path: String,
    /// Parsed segments.
    pub segs: Vec<Seg>,
    /// Value type.
    pub kind: Kind,
    /// Sentinel form.
    pub sentinel: Mapping,
    /// Elastic form.
    pub elastic: Mapping,
    /// Elastic field type (`keyword`, `boolean`, `ip`, `flattened`, ...).
    pub elastic_kind: String,
    /// Panther form: a Python expression over `event` for virtual fields; `None` means the
    /// raw path is read directly.
    pub panther_expr: Option<String>,
    /// The helpers `panther_expr` calls.
    pub panther_helpers: &'static [&'static str],
    /// A virtual field Panther has no data for: why.
    pub panther_unavailable: Option<&'static str>,
    /// The virtual field, if it is one.
    pub virtual_field: Option<&'static Virtual>,
    /// Does AWS generate the value in a fixed spelling?
    pub case_fixed: bool,
    /// Caveat code, if any.
    pub caveat: Option<String>,
    /// `Some(var)`: the path is relative to the element of a `some` condition (named `var` in
    /// generated code), not to the event.
    pub element: Option<String>,
}

/// Where a virtual field's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Computed from the raw event by a fixed rule (every evaluator can compute it).
    Computed,
    /// Looked up by the platform at ingestion (an ASN database, a user-agent parser): not in
    /// the raw event. A test case supplies the value in `enrichment:`; without it the
    /// canonical evaluator cannot decide a condition on the field.
    Enrichment,
}

/// A virtual field: a named value that is not a raw CloudTrail path. Each target either
/// computes it (`Ok`) or has no such data (`Err`, the reason, reported as E402).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Virtual {
    /// `@name`.
    pub name: &'static str,
    /// What it holds (README, "Virtual fields").
    pub meaning: &'static str,
    /// Its value type.
    pub kind: Kind,
    /// Computed or enrichment.
    pub source: Source,
    /// Sentinel: a KQL string expression over `AWSCloudTrail` columns.
    pub sentinel: Result<&'static str, &'static str>,
    /// Elastic: the ECS field and its mapping type.
    pub elastic: Result<(&'static str, &'static str), &'static str>,
    /// Panther: a Python expression over `event` and the helpers it needs.
    pub python: Result<(&'static str, &'static [&'static str]), &'static str>,
    /// A caveat code for the targets that compute it (see [`CAVEATS`]).
    pub caveat: Option<&'static str>,
}

const NO_ASN_SENTINEL: &str = "Sentinel's AWSCloudTrail table has no ASN enrichment of SourceIpAddress";
const NO_ASN_PANTHER: &str = "Panther's rule sees the raw CloudTrail event, which has no ASN data (Panther's optional IPinfo enrichment is another ASN database with other organisation names; rulecast does not substitute it)";

/// The virtual fields.
pub const VIRTUAL: &[Virtual] = &[
    Virtual {
        name: "@actor_user",
        meaning: "the acting user: sessionContext.sessionIssuer.userName if present, else userIdentity.userName",
        kind: Kind::String,
        source: Source::Computed,
        sentinel: Ok("coalesce(SessionIssuerUserName, UserIdentityUserName)"),
        elastic: Ok(("user.name", "keyword")),
        python: Ok((
            "_first(_get(event, (\"userIdentity\", \"sessionContext\", \"sessionIssuer\", \"userName\")), _get(event, (\"userIdentity\", \"userName\")))",
            &["_get", "_first"],
        )),
        caveat: None,
    },
    Virtual {
        name: "@outcome",
        meaning: "`success` or `failure` as Elastic's AWS integration derives event.outcome, after its pipeline drops null, \"\", \"-\", \"none\" and empty objects and lists: for ConsoleLogin, responseElements.ConsoleLogin lower-cased when it is a kept string; otherwise `failure` when errorCode or errorMessage holds a kept value, else `success`",
        kind: Kind::String,
        source: Source::Computed,
        sentinel: Ok("iif(EventName == \"ConsoleLogin\" and isnotempty(tostring(parse_json(ResponseElements).ConsoleLogin)), tolower(tostring(parse_json(ResponseElements).ConsoleLogin)), iif(isnotempty(ErrorCode) or isnotempty(ErrorMessage), \"failure\", \"success\"))"),
        elastic: Ok(("event.outcome", "keyword")),
        python: Ok(("_outcome(event)", &["_outcome"])),
        caveat: Some("outcome_empty"),
    },
    Virtual {
        name: "@source_ip",
        meaning: "sourceIPAddress when it is an IPv4 or IPv6 address, else absent (service principals such as `ec2.amazonaws.com` have none); Elastic's source.ip",
        kind: Kind::String,
        source: Source::Computed,
        sentinel: Ok("iif(coalesce(ipv4_is_in_any_range(SourceIpAddress, dynamic([\"0.0.0.0/0\"])), false) or coalesce(ipv6_is_in_any_range(SourceIpAddress, dynamic([\"::/0\"])), false), SourceIpAddress, \"\")"),
        elastic: Ok(("source.ip", "ip")),
        python: Ok(("_source_ip(event)", &["_source_ip"])),
        caveat: None,
    },
    Virtual {
        name: "@console_login_mfa_used",
        meaning: "for ConsoleLogin events that carry additionalEventData.MFAUsed: `false` when it is `No`, else `true`; absent for other events (Elastic's aws.cloudtrail.console_login.additional_eventdata.mfa_used)",
        kind: Kind::Bool,
        source: Source::Computed,
        sentinel: Ok("iif(EventName == \"ConsoleLogin\" and isnotempty(tostring(parse_json(AdditionalEventData).MFAUsed)), iif(tostring(parse_json(AdditionalEventData).MFAUsed) == \"No\", \"false\", \"true\"), \"\")"),
        elastic: Ok(("aws.cloudtrail.console_login.additional_eventdata.mfa_used", "boolean")),
        python: Ok(("_console_login_mfa_used(event)", &["_console_login_mfa_used"])),
        caveat: Some("mfa_used_absent"),
    },
    Virtual {
        name: "@source_as_org",
        meaning: "the organisation of the autonomous system the source address belongs to, from the platform's ASN database (Elastic: the integration's geoip processor, source.as.organization.name)",
        kind: Kind::String,
        source: Source::Enrichment,
        sentinel: Err(NO_ASN_SENTINEL),
        elastic: Ok(("source.as.organization.name", "keyword")),
        python: Err(NO_ASN_PANTHER),
        caveat: None,
    },
    Virtual {
        name: "@source_as_number",
        meaning: "the number of the autonomous system the source address belongs to, from the platform's ASN database (Elastic: source.as.number)",
        kind: Kind::Number,
        source: Source::Enrichment,
        sentinel: Err(NO_ASN_SENTINEL),
        elastic: Ok(("source.as.number", "long")),
        python: Err(NO_ASN_PANTHER),
        caveat: None,
    },
    Virtual {
        name: "@user_agent_name",
        meaning: "the client family Elastic's user_agent processor parses from userAgent (`Chrome`, `Firefox`, `Boto3`, ...: user_agent.name)",
        kind: Kind::String,
        source: Source::Enrichment,
        sentinel: Err("Sentinel's AWSCloudTrail table keeps UserAgent as text: it has no parsed client name"),
        elastic: Ok(("user_agent.name", "keyword")),
        python: Err("Panther's rule sees the raw userAgent text: it has no parsed client name"),
        caveat: None,
    },
    Virtual {
        name: "@related_entity",
        meaning: "the identifiers (ARNs, ids) Elastic's AWS integration collects in related.entity (a list)",
        kind: Kind::String,
        source: Source::Enrichment,
        sentinel: Err("Sentinel's AWSCloudTrail table has no related-entity list"),
        elastic: Ok(("related.entity", "keyword")),
        python: Err("Panther's rule sees the raw CloudTrail event, which has no related-entity list (Panther's p_any_* fields are other lists)"),
        caveat: None,
    },
];

/// The virtual field of that name.
pub fn virtual_field(name: &str) -> Option<&'static Virtual> {
    VIRTUAL.iter().find(|v| v.name == name)
}

/// Caveats: (code, target, note text).
pub const CAVEATS: &[(&str, &str, &str)] = &[
    (
        "user_name_merged",
        "elastic",
        "the AWS integration writes both userIdentity.userName and sessionContext.sessionIssuer.userName into user.name (the issuer's name only for AssumedRole and FederatedUser identities, where it overrides the user name); the rendering tests that merged value",
    ),
    (
        "newer_integration",
        "elastic",
        "the field is produced only by newer AWS integration versions",
    ),
    (
        "outcome_empty",
        "sentinel",
        "where ErrorCode, ErrorMessage or the ConsoleLogin result is \"-\" or \"none\", the rendering counts it as written, while the AWS integration (and so the canonical outcome) drops those values first",
    ),
    (
        "mfa_used_absent",
        "elastic",
        "the field facts say the AWS integration sets mfa_used for ConsoleLogin only (`MFAUsed == 'No'` -> false, else true); whether it writes `true` for a ConsoleLogin without additionalEventData.MFAUsed was not verified (the canonical field is absent there)",
    ),
];

/// Elastic fields that hold IP-typed copies of a raw path (for `cidr`).
pub const ELASTIC_IP_FIELDS: &[(&str, &str)] = &[("sourceIPAddress", "source.ip"), ("@source_ip", "source.ip")];

fn rows() -> &'static Vec<Row> {
    static ROWS: OnceLock<Vec<Row>> = OnceLock::new();
    ROWS.get_or_init(|| {
        include_str!("cloudtrail.tsv")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("path\t") && !l.trim().is_empty())
            .map(|l| {
                let c: Vec<&str> = l.split('\t').collect();
                let get = |i: usize| c.get(i).copied().unwrap_or("-").to_string();
                Row {
                    path: get(0),
                    kind: match c.get(1).copied().unwrap_or("") {
                        "bool" => Kind::Bool,
                        "boolstring" => Kind::BoolString,
                        "number" => Kind::Number,
                        "datetime" => Kind::Datetime,
                        "object" => Kind::Object,
                        "record" => Kind::Record,
                        "array" => Kind::Array,
                        _ => Kind::String,
                    },
                    sentinel: get(2),
                    elastic: get(3),
                    elastic_kind: get(4),
                    case_fixed: c.get(5) == Some(&"fixed"),
                    caveat: c.get(6).filter(|v| **v != "-").map(|v| v.to_string()),
                }
            })
            .collect()
    })
}

/// Every row of the taxonomy.
pub fn all() -> &'static [Row] {
    rows()
}

/// Why a path could not be resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum PathError {
    /// The path is not well-formed.
    Syntax(String),
    /// No taxonomy row covers it; carries the closest known path.
    Unknown(Option<String>),
}

/// Parse `a.b[0].c` into segments.
pub fn parse_path(path: &str) -> Result<Vec<Seg>, PathError> {
    let mut segs = vec![];
    if path.is_empty() {
        return Err(PathError::Syntax("the path is empty".into()));
    }
    for part in path.split('.') {
        let (name, mut idx) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == ':') {
            return Err(PathError::Syntax(format!(
                "`{part}` is not a path segment (letters, digits, `_`, `-`, `:`, then optional `[N]`)"
            )));
        }
        segs.push(Seg::Key(name.to_string()));
        while !idx.is_empty() {
            let close = idx.find(']').ok_or_else(|| PathError::Syntax(format!("unclosed `[` in `{part}`")))?;
            let n: i64 = idx[1..close]
                .parse()
                .map_err(|_| PathError::Syntax(format!("`{}` is not an array index", &idx[1..close])))?;
            segs.push(Seg::Index(n));
            idx = &idx[close + 1..];
            if !idx.is_empty() && !idx.starts_with('[') {
                return Err(PathError::Syntax(format!("unexpected `{idx}` in `{part}`")));
            }
        }
    }
    Ok(segs)
}

/// Segments back as a path (`a.b[0].c`).
pub fn seg_path(segs: &[Seg]) -> String {
    let mut s = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

fn mapping(spec: &str, rest: &[Seg]) -> Mapping {
    if spec == "-" {
        return Mapping::None;
    }
    if let Some(base) = spec.strip_prefix("json:").or_else(|| spec.strip_prefix("flattened:")) {
        if rest.is_empty() {
            // the whole object: Sentinel's column itself / Elastic's keyword copy
            return Mapping::Column(base.to_string());
        }
        return Mapping::Nested { base: base.to_string(), rest: rest.to_vec() };
    }
    if rest.is_empty() { Mapping::Column(spec.to_string()) } else { Mapping::None }
}

/// Resolve a raw path against the taxonomy.
pub fn resolve(path: &str) -> Result<Field, PathError> {
    if let Some(v) = virtual_field(path) {
        return Ok(Field {
            path: path.to_string(),
            segs: vec![],
            kind: v.kind,
            sentinel: match v.sentinel {
                Ok(e) => Mapping::Expr(e.to_string()),
                Err(why) => Mapping::Unavailable(why),
            },
            elastic: match v.elastic {
                Ok((f, _)) => Mapping::Column(f.to_string()),
                Err(why) => Mapping::Unavailable(why),
            },
            elastic_kind: v.elastic.map_or("keyword", |(_, k)| k).to_string(),
            panther_expr: v.python.ok().map(|(e, _)| e.to_string()),
            panther_helpers: v.python.map_or(&[], |(_, h)| h),
            panther_unavailable: v.python.err(),
            virtual_field: Some(v),
            case_fixed: false,
            caveat: v.caveat.map(str::to_string),
            element: None,
        });
    }
    let segs = parse_path(path)?;
    // longest row that is a prefix of the path
    for n in (1..=segs.len()).rev() {
        let prefix = seg_path(&segs[..n]);
        if let Some(row) = rows().iter().find(|r| r.path == prefix) {
            let rest = &segs[n..];
            if !rest.is_empty() && !matches!(row.kind, Kind::Object | Kind::Array) {
                let known: Vec<&str> = rows().iter().map(|r| r.path.as_str()).collect();
                let best = crate::diag::closest(path, known).unwrap_or(row.path.as_str());
                return Err(PathError::Unknown(Some(best.to_string())));
            }
            let mut sentinel = mapping(&row.sentinel, rest);
            let mut elastic = mapping(&row.elastic, rest);
            // Elastic flattens arrays: an index cannot be addressed there.
            if let Mapping::Nested { rest, .. } = &elastic {
                if rest.iter().any(|s| matches!(s, Seg::Index(_))) {
                    elastic = Mapping::None;
                }
            }
            if row.kind == Kind::Array && rest.is_empty() {
                sentinel = Mapping::Column(row.sentinel.trim_start_matches("json:").to_string());
            }
            return Ok(Field {
                path: path.to_string(),
                segs: segs.clone(),
                kind: if rest.is_empty() { row.kind } else { Kind::Any },
                sentinel,
                elastic,
                elastic_kind: if rest.is_empty() { row.elastic_kind.clone() } else { "flattened".into() },
                panther_expr: None,
                panther_helpers: &[],
                panther_unavailable: None,
                virtual_field: None,
                case_fixed: rest.is_empty() && row.case_fixed,
                caveat: row.caveat.clone(),
                element: None,
            });
        }
    }
    let known: Vec<&str> = rows().iter().map(|r| r.path.as_str()).chain(VIRTUAL.iter().map(|v| v.name)).collect();
    Err(PathError::Unknown(crate::diag::closest(path, known).map(str::to_string)))
}

/// Is `name` a column of Sentinel's `AWSCloudTrail` table (the schema rulecast checks queries
/// against, with the two columns Azure-Sentinel's KQL validation adds)?
pub fn is_sentinel_column(name: &str) -> bool {
    include_str!("../vendors/sentinel/AWSCloudTrail_columns.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("column\t"))
        .filter_map(|l| l.split('\t').next())
        .chain(["UserIdentityStoreArn", "UserIdentityUserId"])
        .any(|c| c == name)
}

/// The name generated code gives the element of the `some` at nesting `depth` (1 outermost).
pub fn element_var(depth: usize) -> String {
    format!("_e{depth}")
}

/// Resolve a path relative to the element of the `some` at nesting `depth`: any well-formed
/// path is allowed (elements are free-form JSON).
pub fn element(path: &str, depth: usize) -> Result<Field, PathError> {
    let segs = parse_path(path)?;
    let var = element_var(depth);
    let mapping = Mapping::Element { var: var.clone(), rest: segs.clone() };
    Ok(Field {
        path: path.to_string(),
        segs,
        kind: Kind::Any,
        sentinel: mapping.clone(),
        elastic: mapping,
        elastic_kind: "flattened".into(),
        panther_expr: None,
        case_fixed: false,
        caveat: None,
        panther_helpers: &[],
        panther_unavailable: None,
        virtual_field: None,
        element: Some(var),
    })
}

/// The note text for a caveat code in a target, if the caveat applies there.
pub fn caveat_note(code: &str, target: &str) -> Option<&'static str> {
    CAVEATS.iter().find(|c| c.0 == code && c.1 == target).map(|c| c.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_columns_and_nested_paths() {
        let f = resolve("eventName").unwrap();
        assert_eq!(f.sentinel, Mapping::Column("EventName".into()));
        assert_eq!(f.elastic, Mapping::Column("event.action".into()));
        assert!(f.case_fixed);
        let f = resolve("requestParameters.enable").unwrap();
        assert_eq!(
            f.sentinel,
            Mapping::Nested { base: "RequestParameters".into(), rest: vec![Seg::Key("enable".into())] }
        );
        assert_eq!(
            f.elastic,
            Mapping::Nested {
                base: "aws.cloudtrail.flattened.request_parameters".into(),
                rest: vec![Seg::Key("enable".into())]
            }
        );
        let f = resolve("resources[0].ARN").unwrap();
        assert_eq!(f.elastic, Mapping::None);
        assert_eq!(f.segs, vec![Seg::Key("resources".into()), Seg::Index(0), Seg::Key("ARN".into())]);
    }

    #[test]
    fn unknown_paths_suggest_the_closest() {
        assert_eq!(resolve("eventNam"), Err(PathError::Unknown(Some("eventName".into()))));
        assert_eq!(resolve("eventName.x"), Err(PathError::Unknown(Some("eventName".into()))));
        assert!(matches!(resolve("a..b"), Err(PathError::Syntax(_))));
        assert!(matches!(resolve("a[x]"), Err(PathError::Syntax(_))));
    }

    #[test]
    fn every_sentinel_column_exists_in_the_table_schema() {
        let schema = include_str!("../vendors/sentinel/AWSCloudTrail_columns.tsv");
        let cols: Vec<&str> = schema
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("column\t"))
            .filter_map(|l| l.split('\t').next())
            .chain(["UserIdentityStoreArn", "UserIdentityUserId"])
            .collect();
        for row in all() {
            let col = row.sentinel.trim_start_matches("json:");
            if col != "-" {
                assert!(cols.contains(&col), "{col} is not an AWSCloudTrail column");
            }
        }
    }
}
