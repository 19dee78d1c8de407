//! Elasticsearch's `date` processor with format `ISO8601`, as the AWS integration's pipeline
//! applies it (`@timestamp`, the session's creation date): shared by Elastic's ingest model and
//! the text-copy fields ([`super::java_text`]), whose presence depends on it.

/// The `date` processor with format `ISO8601`: the instant in UTC as `yyyy-MM-ddTHH:mm:ss.SSSZ`
/// (`None` when the text is not ISO 8601 extended format, e.g. `20131102T010628Z`).
pub fn es_date(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) && !part.is_empty() { part.parse().ok() } else { None }
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let (mut h, mut mi, mut sec, mut millis) = (0, 0, 0, 0);
    let mut rest = &s[10..];
    if let Some(t) = rest.strip_prefix('T') {
        let tb = t.as_bytes();
        h = t.get(0..2)?.parse().ok()?;
        if tb.get(2) != Some(&b':') {
            return None;
        }
        mi = t.get(3..5)?.parse().ok()?;
        rest = &t[5..];
        if let Some(r) = rest.strip_prefix(':') {
            sec = r.get(0..2)?.parse().ok()?;
            rest = &r[2..];
            if let Some(r) = rest.strip_prefix('.').or_else(|| rest.strip_prefix(',')) {
                let n = r.bytes().take_while(u8::is_ascii_digit).count();
                if n == 0 || n > 9 {
                    return None;
                }
                let frac = &r[..n];
                millis = format!("{:0<3}", &frac[..n.min(3)]).parse().ok()?;
                rest = &r[n..];
            }
        }
        if h > 23 || mi > 59 || sec > 59 {
            return None;
        }
    }
    let offset_min: i64 = match rest {
        "" | "Z" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let o = &rest[1..];
            let (oh, om) = match o.len() {
                2 => (o.parse::<i64>().ok()?, 0),
                // (`get`: a non-ASCII byte there is no number, not a panic)
                4 => (o.get(..2)?.parse().ok()?, o.get(2..)?.parse().ok()?),
                5 if o.as_bytes()[2] == b':' => (o[..2].parse().ok()?, o[3..].parse().ok()?),
                _ => return None,
            };
            sign * (oh * 60 + om)
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    let (days, tod) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let (y, m, d) = civil_from_days(days);
    Some(format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z", tod / 3600, tod % 3600 / 60, tod % 60))
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}
