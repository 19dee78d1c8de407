//! The version lock across the vendors: each target's entry bumps by its vendor's rules
//! (moved from `src/lock.rs`'s unit tests when the entries moved to `src/vendors/<v>/lock.rs`),
//! and the lock file reads and writes as before.

use rulecast::Target;
use rulecast::lock::{Bump, Facets, Fingerprint, Lock, Named, from_str, stale, to_string, update};

mod common;

fn fp(logic: &str, hashes: &[(Target, &str)]) -> Fingerprint {
    Fingerprint {
        id: "r1".into(),
        name: "Rule one".into(),
        file: "r1.yaml".into(),
        facets: Facets { severity: "low".into(), logic: logic.into(), ..Facets::default() },
        hashes: hashes.iter().map(|(t, h)| (*t, h.to_string())).collect(),
        declared_version: None,
        declared_updated: Some("2024-01-01".into()),
    }
}

#[test]
fn bumps_follow_each_vendor() {
    let l1 = update(&Lock::default(), &[fp("L1", &[(Target::Sentinel, "s1"), (Target::Elastic, "e1"), (Target::Panther, "p1")])], "2025-01-01");
    let e = &l1.rules["r1"];
    assert_eq!((e.targets.sentinel.as_ref().unwrap().version.as_str(), e.targets.elastic.as_ref().unwrap().version), ("1.0.0", 1));
    assert_eq!(e.targets.elastic.as_ref().unwrap().updated, "2024-01-01");
    assert_eq!(l1.release, 1);
    assert_eq!(l1.changes.added.len(), 1);
    // nothing changed: the same lock, no new release
    let again = update(&l1, &[fp("L1", &[(Target::Sentinel, "s1"), (Target::Elastic, "e1"), (Target::Panther, "p1")])], "2025-02-02");
    assert_eq!(again, l1);
    // the logic changed: Sentinel minor, Elastic +1 with the lock date, Panther +1
    let l2 = update(&l1, &[fp("L2", &[(Target::Sentinel, "s2"), (Target::Elastic, "e2"), (Target::Panther, "p2")])], "2025-03-03");
    let e = &l2.rules["r1"];
    assert_eq!(e.targets.sentinel.as_ref().unwrap().version, "1.1.0");
    assert_eq!((e.targets.elastic.as_ref().unwrap().version, e.targets.elastic.as_ref().unwrap().updated.as_str()), (2, "2025-03-03"));
    assert_eq!(e.targets.panther.as_ref().unwrap().version, 2);
    assert_eq!(l2.changes.changed[0].summary, "detection logic changed");
    assert_eq!(l2.changes.changed[0].bumps.len(), 3);
    // only the Sentinel file changed (not the logic): a patch bump, the others keep theirs
    let l3 = update(&l2, &[fp("L2", &[(Target::Sentinel, "s3"), (Target::Elastic, "e2"), (Target::Panther, "p2")])], "2025-04-04");
    let e = &l3.rules["r1"];
    assert_eq!(e.targets.sentinel.as_ref().unwrap().version, "1.1.1");
    assert_eq!(e.targets.elastic.as_ref().unwrap().version, 2);
    assert_eq!(l3.changes.changed[0].bumps, vec![Bump { target: "sentinel".into(), from: "1.1.0".into(), to: "1.1.1".into() }]);
    // gone
    let l4 = update(&l3, &[], "2025-05-05");
    assert_eq!(l4.changes.removed, vec![Named { id: "r1".into(), name: "Rule one".into() }]);
    assert!(l4.rules.is_empty());
}

#[test]
fn a_hand_bump_is_taken_over_never_lowered() {
    let mut f = fp("L1", &[(Target::Sentinel, "s1")]);
    f.declared_version = Some("1.0.5".into());
    let l1 = update(&Lock::default(), std::slice::from_ref(&f), "2025-01-01");
    assert_eq!(l1.rules["r1"].targets.sentinel.as_ref().unwrap().version, "1.0.5");
    f.declared_version = Some("2.0.0".into());
    assert!(stale(&l1, std::slice::from_ref(&f)).iter().any(|s| s.contains("ahead of the lock")));
    let l2 = update(&l1, std::slice::from_ref(&f), "2025-01-02");
    assert_eq!(l2.rules["r1"].targets.sentinel.as_ref().unwrap().version, "2.0.0");
    f.declared_version = Some("1.0.0".into());
    let l3 = update(&l2, &[f], "2025-01-03");
    assert_eq!(l3.rules["r1"].targets.sentinel.as_ref().unwrap().version, "2.0.0");
}

#[test]
fn the_file_text_round_trips() {
    let l = update(&Lock::default(), &[fp("L1", &[(Target::Elastic, "e1")])], "2025-01-01");
    let text = to_string(&l);
    assert_eq!(from_str(&text).unwrap(), l);
    assert!(from_str(&text.replace("\"lock_version\": 1", "\"lock_version\": 9")).is_err());
    assert!(from_str("{").unwrap_err().starts_with("line 1"));
}

#[test]
fn the_bundled_lock_reads_and_writes_back_byte_for_byte() {
    let text = std::fs::read_to_string(common::root().join("canonical-rules/rulecast.lock")).unwrap();
    let lock = from_str(&text).unwrap();
    assert!(lock.rules.values().any(|e| e.targets.sentinel.is_some() && e.targets.elastic.is_some() && e.targets.panther.is_some()));
    assert_eq!(to_string(&lock), text);
}

#[test]
fn unknown_keys_in_an_entry_are_refused() {
    let l = update(&Lock::default(), &[fp("L1", &[(Target::Elastic, "e1")])], "2025-01-01");
    let text = to_string(&l);
    assert!(from_str(&text).is_ok());
    let bad = text.replace("\"elastic\": {", "\"splunk\": {\"x\": 1},\n      \"elastic\": {");
    assert_ne!(bad, text);
    assert!(from_str(&bad).is_err(), "an unknown target key");
    let bad = text.replace("\"sha256\": \"e1\"", "\"sha256\": \"e1\", \"extra\": 1");
    assert_ne!(bad, text);
    assert!(from_str(&bad).is_err(), "an unknown key in a target's entry");
}
