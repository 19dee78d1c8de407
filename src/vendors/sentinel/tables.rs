//! Sentinel's vocabularies, written once and used in both directions (the target writes them,
//! the importer reads them back): entity types and identifiers, and severities.

use crate::model::Severity;

use super::super::Severities;

/// Sentinel entity types and their identifiers: (canonical, Sentinel, [(canonical, Sentinel)]).
/// The importer reads the same rows from right to left.
pub const ENTITIES: &[(&str, &str, &[(&str, &str)])] = &[
    (
        "account",
        "Account",
        &[
            ("name", "Name"),
            ("full_name", "FullName"),
            ("upn_suffix", "UPNSuffix"),
            ("aad_user_id", "AadUserId"),
            ("sid", "Sid"),
            ("object_guid", "ObjectGuid"),
            ("cloud_app_account_id", "CloudAppAccountId"),
            ("nt_domain", "NTDomain"),
            ("dns_domain", "DnsDomain"),
        ],
    ),
    ("ip", "IP", &[("address", "Address")]),
    ("host", "Host", &[("host_name", "HostName"), ("full_name", "FullName"), ("dns_domain", "DnsDomain")]),
    ("url", "URL", &[("url", "Url")]),
    ("cloud_application", "CloudApplication", &[("name", "Name"), ("app_id", "AppId"), ("instance_name", "InstanceName")]),
    ("dns", "DNS", &[("domain_name", "DomainName")]),
    ("file", "File", &[("name", "Name"), ("directory", "Directory")]),
];

/// Sentinel's severities: it has no Critical (written High, with a note; High reads back as
/// High).
pub const SEVERITIES: Severities = Severities(&[
    (Severity::Info, "Informational"),
    (Severity::Low, "Low"),
    (Severity::Medium, "Medium"),
    (Severity::High, "High"),
    (Severity::Critical, "High"),
]);
