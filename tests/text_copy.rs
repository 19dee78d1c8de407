//! The text copies of whole objects (`@request_parameters_text` and its siblings: Java's map text
//! as Elastic's AWS integration keeps it) computed three ways agree byte for byte on generated
//! records: the canonical definition (`fields::java_text::text_copy`), Elastic's ingest model (the
//! document's `aws.cloudtrail.request_parameters`), and the Python helper the Panther target
//! writes (`rulecast_helpers.text_copy`, run by real Python). The records are built to reach the
//! corners: Java `HashMap` resizes and bucket collisions, UTF-16 hashing of non-BMP keys, dropped
//! values (`null`, `""`, `"-"`, `"none"`, emptied maps and lists), Java's number spellings, and
//! records the integration writes no copy for.

use std::process::{Command, Stdio};

use serde_json::{Map, Value, json};

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const KEYS: &[&str] = &[
    "bucketName", "policyArn", "userName", "roleName", "Aa", "BB", "AaAa", "BBBB", "AaBB", "BBAa", "includeManagementEvents",
    "eventSelectors", "readWriteType", "x", "y", "z", "key", "value", "Expiration", "NoncurrentVersionExpiration", "😀", "𝕏key", "é",
    "a=b", "k, v", "", "principal", "Statement", "Effect", "Action",
];

fn number(r: &mut Rng) -> Value {
    let doubles = [0.5, 1.0e-5, 0.001, 123.456, 1.0e7, 9_999_999.5, 1.0e21, 2.5e-10, 100.0, -3.25, -0.0, 1.0e300, 0.1, 1.0 / 3.0];
    match r.below(4) {
        0 => json!(r.below(1000) as i64 - 500),
        1 => json!(*r.pick(&[i64::MAX, i64::MIN, 0, -1])),
        2 => serde_json::from_str(*r.pick(&["18446744073709551615", "18446744073709551616", "123456789012345678901234567890"])).unwrap(),
        _ => json!(*r.pick(&doubles)),
    }
}

fn value(r: &mut Rng, depth: u32) -> Value {
    match r.below(if depth > 2 { 6 } else { 9 }) {
        0 => Value::Null,
        1 => json!(*r.pick(&["", "-", "none", "None", "a,b", "x=y", "{braces}", "arn:aws:iam::aws:policy/AdministratorAccess", "false", "ümlaut", "tab\there"])),
        2 | 3 => number(r),
        4 => json!(r.below(2) == 0),
        5 => json!(format!("v{}", r.below(50))),
        6 | 7 => object(r, depth + 1),
        _ => Value::Array((0..r.below(4)).map(|_| value(r, depth + 1)).collect()),
    }
}

fn object(r: &mut Rng, depth: u32) -> Value {
    let n = match r.below(5) {
        0 => 0,
        1 => 13 + r.below(40), // past the first resizes
        _ => 1 + r.below(8),
    };
    let mut m = Map::new();
    for i in 0..n {
        let k = if r.below(3) == 0 { format!("{}{i}", r.pick(KEYS)) } else { r.pick(KEYS).to_string() };
        m.insert(k, value(r, depth));
    }
    Value::Object(m)
}

fn record(r: &mut Rng) -> Value {
    let mut rec = Map::new();
    match r.below(8) {
        // no field the integration moves under aws.cloudtrail: no copy
        0 => {}
        // only a session creation date, read by the date processor or not
        1 => {
            let date = *r.pick(&["2024-01-01T00:00:00Z", "2024-13-01T00:00:00Z", "2024-01-01T-1:00", "2024-01-01+0100", "not a date", "2024-01-01T24:00:00Z"]);
            rec.insert("userIdentity".into(), json!({"sessionContext": {"attributes": {"creationDate": date}}}));
        }
        // an identity type that is dropped (`-`), or kept
        2 => {
            rec.insert("userIdentity".into(), json!({"type": *r.pick(&["-", "IAMUser", ""])}));
        }
        _ => {
            rec.insert("eventVersion".into(), json!("1.08"));
        }
    }
    rec.insert("eventName".into(), json!("Call"));
    for key in ["requestParameters", "responseElements", "additionalEventData", "serviceEventDetails"] {
        if r.below(5) > 0 {
            rec.insert(key.into(), if r.below(6) == 0 { value(r, 0) } else { object(r, 0) });
        }
    }
    Value::Object(rec)
}

const COPIES: &[(&str, &str)] = &[
    ("requestParameters", "aws.cloudtrail.request_parameters"),
    ("responseElements", "aws.cloudtrail.response_elements"),
    ("additionalEventData", "aws.cloudtrail.additional_eventdata"),
    ("serviceEventDetails", "aws.cloudtrail.service_event_details"),
];

fn at<'a>(doc: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(doc, |v, k| v.get(k))
}

#[test]
fn canonical_elastic_and_python_text_copies_agree() {
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let records: Vec<Value> = (0..1500).map(|_| record(&mut r)).collect();
    // canonical against Elastic's ingest model
    let mut canonical = vec![];
    let mut written = 0;
    for rec in &records {
        let doc = rulecast::vendors::elastic::ingest::document(rec);
        for (key, copy) in COPIES {
            let mine = rulecast::fields::java_text::text_copy(rec, key);
            let theirs = at(&doc, copy).and_then(Value::as_str).map(str::to_string);
            assert_eq!(mine, theirs, "{key} of {rec}");
            written += usize::from(mine.is_some());
            canonical.push(mine);
        }
    }
    assert!(written > 2500, "only {written} copies written: the generator misses the common case");
    assert!(canonical.iter().filter(|c| c.is_none()).count() > 300, "the generator misses records without a copy");
    // the Python helper, run by real Python
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("rulecast_helpers.py"), rulecast::vendors::panther::target::python::module()).expect("module");
    let lines: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(dir.path().join("records.jsonl"), lines).expect("records");
    let driver = "import json, sys\nfrom rulecast_helpers import text_copy\nfor line in open(sys.argv[1], encoding='utf-8'):\n    rec = json.loads(line)\n    for key in ('requestParameters', 'responseElements', 'additionalEventData', 'serviceEventDetails'):\n        print(json.dumps(text_copy(rec, key)))\n";
    let child = Command::new("python3")
        .args(["-I", "-c", &format!("import sys; sys.path.insert(0, {:?})\n{driver}", dir.path().to_str().unwrap())])
        .arg(dir.path().join("records.jsonl"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    let out = child.wait_with_output().expect("python3 ran");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let python: Vec<Option<String>> = String::from_utf8(out.stdout).expect("utf-8").lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    assert_eq!(python.len(), canonical.len());
    for (i, (p, c)) in python.iter().zip(&canonical).enumerate() {
        assert_eq!(p, c, "record {}: {}", i / 4, records[i / 4]);
    }
}

/// The Python helper's reading of a session creation date (whether the text copy is written when
/// nothing else created `aws.cloudtrail`) accepts exactly the dates rulecast's model of the
/// `date` processor accepts.
#[test]
fn python_reads_dates_as_the_date_processor_model_does() {
    let dates = [
        "2024-01-01", "2024-01-01Z", "2024-01-01T00:00Z", "2024-01-01T00:00:00Z", "2024-01-01T23:59:59.123456789Z", "2024-01-01T23:59:59.1234567891Z",
        "2024-01-01T23:59:59.Z", "2024-01-01T23:59:59,5+01:00", "2024-01-01T24:00:00Z", "2024-01-01T23:60Z", "2024-01-01T-1:00", "2024-01-01T+1:+1",
        "2024-01-01T1:00", "2024-01-01T10:0", "2024-01-01T10:00:0", "2024-01-01T10:00:00+01", "2024-01-01T10:00:00+0130", "2024-01-01T10:00:00+01:30",
        "2024-01-01T10:00:00+1", "2024-01-01T10:00:00+013", "2024-01-01T10:00:00+01:3", "2024-01-01T10:00:00 01:30", "2024-01-01+-1-1", "2024-01-01++1+1",
        "2024-01-01+1\u{e9}5", "2024-00-01", "2024-13-01", "2024-01-00", "2024-01-32", "2024-02-30", "20240101", "2024/01/01", "+024-01-01", "2024-01-01T",
        "2024-01-01Tx", "2024-01-01T10:00:00Zjunk", "2024-01-01T10:00:00.", "\u{e9}024-01-01", "2024-01-01T10\u{e9}00", "",
    ];
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("rulecast_helpers.py"), rulecast::vendors::panther::target::python::module()).expect("module");
    std::fs::write(dir.path().join("dates.json"), serde_json::to_string(&dates[..]).unwrap()).expect("dates");
    let script = format!(
        "import json, sys\nsys.path.insert(0, {:?})\nimport rulecast_helpers\nfor d in json.load(open(sys.argv[1], encoding='utf-8')):\n    print(json.dumps(rulecast_helpers._iso8601(d)))\n",
        dir.path().to_str().unwrap()
    );
    let out = Command::new("python3").args(["-I", "-c", &script]).arg(dir.path().join("dates.json")).output().expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let python: Vec<bool> = String::from_utf8(out.stdout).unwrap().lines().map(|l| l == "true").collect();
    assert_eq!(python.len(), dates.len());
    let mut accepted = 0;
    for (d, p) in dates.iter().zip(&python) {
        let rust = rulecast::fields::es_date::es_date(d).is_some();
        assert_eq!(*p, rust, "{d:?}: Python {p}, rulecast's model {rust}");
        accepted += usize::from(rust);
    }
    assert!(accepted >= 8 && accepted <= dates.len() - 15, "{accepted} of {} accepted: the list misses one side", dates.len());
}
