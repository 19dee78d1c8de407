//! The one place that checks the shapes of values a rule and its settings carry: dates,
//! versions, GUIDs, durations, output file stems. The loader, the vendors' settings and the
//! importers all use these, so a value is judged the same way wherever it is read.

use crate::condition::span_of;
use crate::diag::{Code, Diagnostic};
use crate::model::Spanned;

/// Is this a GUID (8-4-4-4-12 hexadecimal digits)?
pub fn is_guid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::parse_str(s).is_ok()
}

/// Is this a safe output file stem? (no separators, no `..`, no leading dot)
pub fn is_safe_stem(s: &str) -> bool {
    // Spaces and parentheses occur in vendor repositories' own file names (Azure-Sentinel's
    // `AWS_AssumeRoleBruteForce (2).yaml`); they are safe inside a name, not at its end (Windows
    // drops a trailing space or dot).
    !s.is_empty()
        && s.len() <= 128
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "_-. ()".contains(c))
        && !s.ends_with([' ', '.'])
        && !s.contains("..")
}

/// Is this a calendar date `YYYY-MM-DD`?
pub fn is_date(s: &str) -> bool {
    let p: Vec<&str> = s.split('-').collect();
    if p.len() != 3 || p[0].len() != 4 || p[1].len() != 2 || p[2].len() != 2 {
        return false;
    }
    if !p.iter().all(|x| x.chars().all(|c| c.is_ascii_digit())) {
        return false;
    }
    let (Ok(y), Ok(m), Ok(d)) = (p[0].parse::<u32>(), p[1].parse::<u32>(), p[2].parse::<u32>()) else {
        return false;
    };
    (1..=12).contains(&m) && (1..=days_in_month(y, m)).contains(&d)
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Is this a version `X.Y.Z` (three dot-separated numbers)?
pub fn is_version(s: &str) -> bool {
    s.split('.').count() == 3 && s.split('.').all(|p| !p.is_empty() && p.len() <= 6 && p.chars().all(|c| c.is_ascii_digit()))
}

/// Is this a version of one to four dot-separated numbers (`1.0`, `2.0.1`), as vendors write
/// their own versions?
pub fn is_dotted_version(s: &str) -> bool {
    (1..=4).contains(&s.split('.').count()) && s.split('.').all(|p| !p.is_empty() && p.len() <= 6 && p.chars().all(|c| c.is_ascii_digit()))
}

/// Is this a plain name: ASCII letters, digits and `_`, starting with a letter?
pub fn is_identifier(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A located error when `v` is not a dotted version.
pub fn dotted_version(file: &str, what: &str, v: &Spanned<String>) -> Option<Diagnostic> {
    (!is_dotted_version(&v.value)).then(|| {
        Diagnostic::error(Code::E109, format!("{what} `{}` is not a version", v.value))
            .with_expected("one to four dot-separated numbers, like 1.0.5")
            .with_span(span_of(file, v))
    })
}

/// Is this a duration: a number followed by one of `units` (`1h`)?
pub fn is_duration(s: &str, units: &str) -> bool {
    s.len() >= 2
        && s.len() <= 12
        && s[..s.len() - 1].chars().all(|c| c.is_ascii_digit())
        && s.chars().last().is_some_and(|u| units.contains(u))
}

/// A duration (`30s`, `10m`, `1h`, `2d`: a number and one unit) in seconds; `None` when it is
/// not one. The one reader of the model's durations (correlation spans, schedules, counting
/// windows).
pub fn duration_secs(s: &str) -> Option<u64> {
    if !is_duration(s, "smhd") {
        return None;
    }
    let (n, unit) = s.split_at(s.len() - 1);
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => 86_400,
    };
    n.parse::<u64>().ok()?.checked_mul(unit)
}

/// A located error when `v` is not a GUID.
pub fn guid(file: &str, what: &str, v: &Spanned<String>) -> Option<Diagnostic> {
    (!is_guid(&v.value)).then(|| {
        Diagnostic::error(Code::E109, format!("{what} `{}` is not a GUID", v.value))
            .with_expected("8-4-4-4-12 hexadecimal digits")
            .with_span(span_of(file, v))
    })
}

/// A located error when `v` is not a date.
pub fn date(file: &str, v: &Spanned<String>) -> Option<Diagnostic> {
    (!is_date(&v.value)).then(|| {
        Diagnostic::error(Code::E109, format!("`{}` is not a date", v.value))
            .with_expected("YYYY-MM-DD")
            .with_span(span_of(file, v))
    })
}

/// A located error when `v` is not a version.
pub fn version(file: &str, v: &Spanned<String>) -> Option<Diagnostic> {
    (!is_version(&v.value)).then(|| {
        Diagnostic::error(Code::E109, format!("version `{}` is not X.Y.Z", v.value))
            .with_expected("three dot-separated numbers, like 1.0.5")
            .with_span(span_of(file, v))
    })
}

/// A located error when `v` is not a duration in `units`.
pub fn duration(file: &str, what: &str, v: &Spanned<String>, units: &str) -> Option<Diagnostic> {
    (!is_duration(&v.value, units)).then(|| {
        Diagnostic::error(Code::E103, format!("{what} `{}` is not a duration", v.value))
            .with_expected(format!("a number followed by one of `{units}`, like 1h"))
            .with_span(span_of(file, v))
    })
}

/// A located error when `v` is not a plain output file stem.
pub fn file_stem(file: &str, what: &str, v: &Spanned<String>) -> Option<Diagnostic> {
    (!is_safe_stem(&v.value)).then(|| {
        Diagnostic::error(Code::E106, format!("{what} file name `{}` is not allowed", v.value))
            .with_expected("a plain file stem: letters, digits, `_`, `-`, `.`, spaces and parentheses, starting with a letter or digit, not ending with a space or `.`; no `/`, `\\` or `..`")
            .with_hint("rulecast writes every file inside the output folder")
            .with_span(span_of(file, v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_seconds() {
        assert_eq!(duration_secs("30s"), Some(30));
        assert_eq!(duration_secs("90m"), Some(5400));
        assert_eq!(duration_secs("2d"), Some(172_800));
        assert_eq!(duration_secs("1w"), None);
        assert_eq!(duration_secs("h"), None);
    }

    #[test]
    fn dates_are_calendar_dates() {
        assert!(is_date("2024-02-29"));
        assert!(!is_date("2023-02-29"));
        assert!(!is_date("2026-02-31"));
        assert!(!is_date("2026-13-45"));
        assert!(!is_date("2026-04-31"));
        assert!(is_date("2026-12-31"));
        assert!(!is_date("2026-1-01"));
        assert!(!is_date("+026-01-01"));
    }

    #[test]
    fn file_stems_as_vendor_repositories_name_them() {
        for ok in ["AWS_AssumeRoleBruteForce (2)", "AWS Create Policy Version to allow all resources", "a.b-c_d"] {
            assert!(is_safe_stem(ok), "{ok}");
        }
        for bad in ["", " lead", "trail ", "dot.", "../up", "a/b", "a\\b", "(x)", "a..b", "tab\tin", "é", "a:b", "a*b"] {
            assert!(!is_safe_stem(bad), "{bad:?}");
        }
        assert!(!is_safe_stem(&"a".repeat(129)));
    }

    #[test]
    fn versions_durations_guids() {
        assert!(is_version("1.0.5"));
        assert!(!is_version("1.0"));
        assert!(!is_version("1.0.x"));
        assert!(is_duration("5m", "mhd"));
        assert!(!is_duration("5s", "mhd"));
        assert!(!is_duration("m", "mhd"));
        assert!(is_guid("6a5a2c02-7ae5-4a0a-a0d6-9a3a6b4e3b1c"));
        assert!(!is_guid("6a5a2c027ae54a0aa0d69a3a6b4e3b1c"));
    }
}
