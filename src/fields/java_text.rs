//! Java's map text: how Elastic's AWS integration keeps a whole CloudTrail object
//! (`requestParameters`, `responseElements`, `additionalEventData`, `serviceEventDetails`) as one
//! keyword, `aws.cloudtrail.request_parameters` and its siblings. The definition of the virtual
//! fields `@request_parameters_text` and the others ([`text_copy`]); Elastic's ingest model
//! (`vendors/elastic/ingest.rs`) writes its documents with it.
//!
//! The pipeline's `json` processor reads the record into Java `HashMap`s, a script drops every
//! `null`, `""`, `"-"` and `"none"` and every map or list left empty, and the copy is the parsed
//! value's `toString()`: `{key=value, list=[a, b], map={k=v}}`, keys in `HashMap` iteration order,
//! strings unquoted, numbers as Java prints them. The copy is written only when the record
//! already has a field the pipeline moved under `aws.cloudtrail` ([`MOVED_BEFORE_COPIES`]).

use serde_json::{Number, Value};

/// The raw paths the pipeline moves under `aws.cloudtrail` before the script that writes the
/// text copies, which fails (ignored) when `aws.cloudtrail` does not exist yet.
pub const MOVED_BEFORE_COPIES: &[&str] = &[
    "eventVersion",
    "userIdentity.type",
    "userIdentity.arn",
    "userIdentity.accessKeyId",
    "userIdentity.sessionContext.attributes.mfaAuthenticated",
    "userIdentity.sessionContext.sessionIssuer.type",
    "userIdentity.sessionContext.sessionIssuer.principalId",
    "userIdentity.sessionContext.sessionIssuer.arn",
    "userIdentity.sessionContext.sessionIssuer.accountId",
    "sessionCredentialFromConsole",
    "userIdentity.invokedBy",
    "eventCategory",
    "errorCode",
    "errorMessage",
];

/// Does the text hold a separator of Java's map text (`=`, `,`, braces, brackets, white space)?
/// A substring with one can match across keys and values of a copy, so it says nothing exact
/// about one member.
pub fn has_separator(text: &str) -> bool {
    text.chars().any(|c| matches!(c, '=' | ',' | '{' | '}' | '[' | ']') || c.is_whitespace())
}

/// The integration's text copy of the raw object `key` of a CloudTrail record (`None` when it
/// writes none: the object is absent or dropped, or the record has none of
/// [`MOVED_BEFORE_COPIES`], or a session creation date the `date` processor reads).
pub fn text_copy(raw: &Value, key: &str) -> Option<String> {
    let record = parse(raw)?;
    let at = |path: &str| path.split('.').try_fold(&record, |v, k| v.get(k));
    let moved = MOVED_BEFORE_COPIES.iter().any(|p| at(p).is_some())
        || at("userIdentity.sessionContext.attributes.creationDate").and_then(Value::as_str).and_then(super::es_date::es_date).is_some();
    if !moved {
        return None;
    }
    record.get(key).map(java_text)
}

/// The `json` processor and the first null-dropping pass: objects in Java `HashMap` iteration
/// order, `null`, `""`, `"-"`, `"none"` and emptied maps and lists removed.
pub fn parse(raw: &Value) -> Option<Value> {
    let mut v = raw.clone();
    hashmap_reorder(&mut v);
    if drop_empty(&mut v, true) { None } else { Some(v) }
}

/// Reorder every object's keys as a Java `HashMap` filled in document order iterates them.
fn hashmap_reorder(v: &mut Value) {
    match v {
        Value::Object(m) => {
            let entries: Vec<(String, Value)> = std::mem::take(m).into_iter().collect();
            let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
            let order = hashmap_order(&keys);
            let mut slots: Vec<Option<(String, Value)>> = entries.into_iter().map(Some).collect();
            for i in order {
                if let Some((k, mut child)) = slots[i].take() {
                    hashmap_reorder(&mut child);
                    m.insert(k, child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(hashmap_reorder),
        _ => {}
    }
}

/// Remove dropped values below `v`; true when `v` itself is to be dropped. `dash_none`: the
/// first pass also drops the strings `"-"` and `"none"`.
pub fn drop_empty(v: &mut Value, dash_none: bool) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty() || (dash_none && (s == "-" || s == "none")),
        Value::Object(m) => {
            m.retain(|_, child| !drop_empty(child, dash_none));
            m.is_empty()
        }
        Value::Array(items) => {
            items.retain_mut(|child| !drop_empty(child, dash_none));
            items.is_empty()
        }
        _ => false,
    }
}

/// Java's `String.hashCode` spread as `HashMap.hash` does.
fn java_hash(s: &str) -> u32 {
    let mut h: i32 = 0;
    for u in s.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(i32::from(u));
    }
    let h = h as u32;
    h ^ (h >> 16)
}

/// The order in which a `java.util.HashMap` (default capacity 16, load factor 0.75) filled with
/// `keys` in this order iterates them: by bucket, then by insertion within a bucket. The table
/// doubles when the size passes three quarters of it, and also when a bucket would reach 9
/// entries while the table is smaller than 64 (treeifyBin resizes instead of building a tree).
pub fn hashmap_order(keys: &[&str]) -> Vec<usize> {
    let hashes: Vec<u32> = keys.iter().map(|k| java_hash(k)).collect();
    let mut cap = 16usize;
    let mut counts = vec![0usize; cap];
    let recount = |cap: usize, upto: usize| {
        let mut c = vec![0usize; cap];
        for h in &hashes[..upto] {
            c[*h as usize & (cap - 1)] += 1;
        }
        c
    };
    for (i, h) in hashes.iter().enumerate() {
        let idx = *h as usize & (cap - 1);
        let before = counts[idx];
        counts[idx] += 1;
        if before >= 8 && cap < 64 {
            cap *= 2;
            counts = recount(cap, i + 1);
        }
        if i + 1 > cap / 4 * 3 {
            cap *= 2;
            counts = recount(cap, i + 1);
        }
    }
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_key(|&i| hashes[i] as usize & (cap - 1));
    order
}

/// A parsed value's Java `toString()`: strings as they are, numbers as Java prints an
/// `Integer`/`Long`/`Double`, `[a, b]` for lists, `{k=v, k2=v2}` for maps (in the map's order:
/// [`parse`] keeps Java's `HashMap` order), `null` for null.
pub fn java_text(v: &Value) -> String {
    let mut out = String::new();
    write_java(v, &mut out);
    out
}

fn write_java(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&java_number(n)),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_java(item, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push('=');
                write_java(item, out);
            }
            out.push('}');
        }
    }
}

/// A JSON number as Jackson reads it and Java prints it: integers as `Integer`/`Long`, others as
/// `Double` (`Double.toString`: shortest digits; plain from 10^-3 to 10^7, else `1.0E10`).
pub fn java_number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let d = n.as_f64().unwrap_or(0.0);
    if d == 0.0 {
        return if d.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    let sign = if d < 0.0 { "-" } else { "" };
    let a = d.abs();
    let sci = format!("{a:e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    if (1e-3..1e7).contains(&a) {
        let point = exp + 1;
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
        };
        format!("{sign}{body}")
    } else {
        let frac = if digits.len() > 1 { &digits[1..] } else { "0" };
        format!("{sign}{}.{frac}E{exp}", &digits[..1])
    }
}

