//! Small, self-written equivalents of the panther-analysis global helpers that imported rules
//! call, for `targets.panther.prelude`: the generated module must run on its own (no vendor
//! helper modules). Written from the helpers' documented behaviour (`FORMATS.md`), not copied.
//!
//! Input: a helper name. Output: its Python source, the helpers it needs and its imports.

/// (name, needs, imports, source)
const HELPERS: &[(&str, &[&str], &[&str], &str)] = &[
    (
        "deep_get",
        &[],
        &["from collections.abc import Mapping"],
        "def deep_get(dictionary, *keys, default=None):\n    # the value at a path of keys, or default when a key is missing or the value is None\n    value = dictionary\n    for key in keys:\n        if isinstance(value, Mapping) or hasattr(value, \"get\"):\n            value = value.get(key)\n        else:\n            return default\n        if value is None:\n            return default\n    return value\n",
    ),
    (
        "aws_cloudtrail_success",
        &[],
        &[],
        "def aws_cloudtrail_success(event):\n    # the call failed if errorCode or errorMessage is set\n    return not (event.get(\"errorCode\") or event.get(\"errorMessage\"))\n",
    ),
    (
        "aws_rule_context",
        &[],
        &[],
        "def aws_rule_context(event):\n    # the usual CloudTrail fields of an alert\n    keys = (\"eventName\", \"eventSource\", \"awsRegion\", \"recipientAccountId\", \"sourceIPAddress\", \"userAgent\", \"userIdentity\")\n    return {key: event.get(key) for key in keys}\n",
    ),
    (
        "pattern_match",
        &[],
        &["import fnmatch"],
        "def pattern_match(string_to_match, pattern):\n    # whole-string shell glob\n    return fnmatch.fnmatch(string_to_match, pattern)\n",
    ),
    (
        "pattern_match_list",
        &["pattern_match"],
        &[],
        "def pattern_match_list(string_to_match, patterns):\n    # any of the globs matches\n    return any(pattern_match(string_to_match, p) for p in patterns)\n",
    ),
    (
        "is_ip_in_network",
        &[],
        &["import ipaddress"],
        "def is_ip_in_network(ip_addr, networks):\n    # the address lies in one of the CIDR blocks\n    try:\n        address = ipaddress.ip_address(ip_addr)\n    except ValueError:\n        return False\n    return any(address in ipaddress.ip_network(net, strict=False) for net in networks)\n",
    ),
    (
        "aws_strip_role_session_id",
        &[],
        &[],
        "def aws_strip_role_session_id(user_identity_arn):\n    # arn:aws:sts::123:assumed-role/Role/session -> arn:aws:sts::123:assumed-role/Role\n    parts = user_identity_arn.split(\"/\")\n    return \"/\".join(parts[:2]) if len(parts) > 2 else user_identity_arn\n",
    ),
    (
        "get_actor_user",
        &["deep_get"],
        &[],
        "def get_actor_user(event):\n    # the acting user as Panther's CloudTrail data model names it: by identity type\n    kind = deep_get(event, \"userIdentity\", \"type\")\n    if kind == \"Root\":\n        return deep_get(event, \"userIdentity\", \"userName\", default=deep_get(event, \"userIdentity\", \"accountId\", default=\"UnknownRootUser\"))\n    if kind in (\"IAMUser\", \"Directory\", \"Unknown\", \"SAMLUser\", \"WebIdentityUser\"):\n        return deep_get(event, \"userIdentity\", \"userName\", default=f\"Unknown{kind}\")\n    if kind in (\"AssumedRole\", \"Role\", \"FederatedUser\"):\n        name = deep_get(event, \"userIdentity\", \"sessionContext\", \"sessionIssuer\", \"userName\", default=f\"Unknown{kind}\")\n        if name.startswith(\"AWSReservedSSO_\"):\n            # an SSO session: the person is the session name\n            name = deep_get(event, \"userIdentity\", \"principalId\", default=f\"Unknown{kind}\").split(\":\")[1]\n        return name\n    if kind == \"IdentityCenterUser\":\n        return deep_get(event, \"additionalEventData\", \"UserName\", default=f\"Unknown{kind}\")\n    if kind in (\"AWSService\", \"AWSAccount\"):\n        return event.get(\"sourceIdentity\", f\"Unknown{kind}\")\n    if event.get(\"eventType\") == \"AwsServiceEvent\":\n        return deep_get(event, \"userIdentity\", \"invokedBy\", default=\"UnknownAwsServiceEvent\")\n    return \"UnknownUser\"\n",
    ),
    (
        "lookup_aws_account_name",
        &[],
        &[],
        "def lookup_aws_account_name(account_id):\n    # the current panther-analysis helper returns the id itself (account names are no longer configured there)\n    return account_id\n",
    ),
];

/// The helpers in the order they are written into a prelude.
pub const ORDER: &[&str] = &[
    "deep_get",
    "aws_cloudtrail_success",
    "aws_rule_context",
    "pattern_match",
    "pattern_match_list",
    "is_ip_in_network",
    "aws_strip_role_session_id",
    "get_actor_user",
    "lookup_aws_account_name",
];

/// Does rulecast have an equivalent of `name` imported from the Panther module `module`
/// (panther-analysis' global helpers: `panther_base_helpers`, `panther_aws_helpers`, ...)?
pub fn provided(module: &str, name: &str) -> bool {
    module.starts_with("panther") && source(name).is_some()
}

/// A module holding every equivalent, for `rulecast test` to run a vendor's own module (kept as
/// the rule's layout) where panther-analysis' global helpers are not installed: written under
/// the name of each `panther*` module the vendor module imports from.
pub fn stand_in_module() -> String {
    let mut imports: Vec<&str> = ORDER.iter().flat_map(|n| imports(n).iter().copied()).collect();
    imports.sort_unstable();
    imports.dedup();
    let mut out = String::from("# rulecast's equivalents of panther-analysis' global helpers, for `rulecast test` only
");
    for i in imports {
        out.push_str(i);
        out.push('\n');
    }
    for n in ORDER {
        if let Some(src) = source(n) {
            out.push_str("\n\n");
            out.push_str(src);
        }
    }
    out
}

/// The `panther*` helper modules Python module texts import from (`from panther_x import ...`):
/// the stand-ins [`stand_in_module`] is written under.
pub fn imported_helper_modules<'a>(modules: impl IntoIterator<Item = &'a str>) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for text in modules {
        for line in text.lines() {
            let Some((m, _)) = line.strip_prefix("from ").and_then(|r| r.split_once(" import ")) else { continue };
            let m = m.trim();
            if m.starts_with("panther") && m.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                out.insert(m.to_string());
            }
        }
    }
    out
}

/// A helper's source.
pub fn source(name: &str) -> Option<&'static str> {
    HELPERS.iter().find(|h| h.0 == name).map(|h| h.3)
}

/// A helper and the helpers it needs.
pub fn closure(name: &str) -> Vec<String> {
    let mut out = vec![name.to_string()];
    let mut i = 0;
    while i < out.len() {
        if let Some(h) = HELPERS.iter().find(|h| h.0 == out[i]) {
            for d in h.1 {
                if !out.iter().any(|x| x == d) {
                    out.push(d.to_string());
                }
            }
        }
        i += 1;
    }
    out
}

/// The import lines a helper needs.
pub fn imports(name: &str) -> &'static [&'static str] {
    HELPERS.iter().find(|h| h.0 == name).map_or(&[], |h| h.2)
}
