//! The build cache (`.<OUT>.rulecast-cache/` beside the output folder, one file per rule): a
//! rebuild takes unchanged rules from it and writes exactly the bytes and diagnostics a build
//! without it writes; a changed rule, lock or option is compiled again; a damaged cache file or
//! an edited output file costs a compile, never a wrong byte; a failed build leaves the output
//! and the cache files it had as they were. (No timings here: speed is shown by `scripts/bench`.)

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::root;

/// A temporary folder with `rules/`: the bundled rules, with their lock when `lock`.
fn setup(lock: bool) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tmp");
    let rules = tmp.path().join("rules");
    std::fs::create_dir(&rules).expect("mkdir");
    for e in std::fs::read_dir(root().join("canonical-rules")).expect("bundled rules") {
        let p = e.expect("entry").path();
        let name = p.file_name().expect("name").to_string_lossy().to_string();
        if name.ends_with(".yaml") || (lock && name == "rulecast.lock") {
            std::fs::copy(&p, rules.join(&name)).expect("copy");
        }
    }
    tmp
}

fn rule_count(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("rules")).expect("rules").filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "yaml"))).count()
}

fn build(dir: &Path, out: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rulecast")).args(["build", "--rules", "rules", "--out", out]).args(extra).current_dir(dir).output().expect("runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// How many rules the build took from the cache (its summary line says so when any).
fn hits(o: &Output) -> usize {
    let out = stdout(o);
    let first = out.lines().next().unwrap_or("");
    match first.find(" rule(s) from the build cache") {
        Some(end) => first[..end].rsplit(' ').next().expect("a number").parse().expect("a number"),
        None => 0,
    }
}

/// The summary line without the output folder's name and what changed in it (which differ
/// between two builds of one output), and the rest of stdout.
fn summary(o: &Output) -> String {
    let out = stdout(o);
    let re = regex::Regex::new(r" in \S+ \(\d+ changed(, \d+ rule\(s\) from the build cache)?\)").expect("regex");
    re.replace(&out, " in OUT").to_string()
}

/// Every file under `dir` (relative path -> bytes; none when there is no `dir`).
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, acc: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(base, &p, acc);
            } else {
                acc.insert(p.strip_prefix(base).expect("inside").display().to_string(), std::fs::read(&p).expect("read"));
            }
        }
    }
    let mut acc = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut acc);
    }
    acc
}

fn cache_dir(dir: &Path, out: &str) -> PathBuf {
    dir.join(format!(".{out}.rulecast-cache"))
}

/// The cache's entries, one per rule (name -> bytes; its index is not one of them).
fn cache_files(dir: &Path, out: &str) -> BTreeMap<String, Vec<u8>> {
    tree(&cache_dir(dir, out)).into_iter().filter(|(name, _)| name.ends_with(".json")).collect()
}

/// The cache's index (`index` in the cache folder), if there is one.
fn index(dir: &Path, out: &str) -> Option<Vec<u8>> {
    std::fs::read(cache_dir(dir, out).join("index")).ok()
}

/// The index's records of one kind (`exe`, `rule`, `out`): name -> (SHA-256 hex, device, inode,
/// size).
fn records(dir: &Path, out: &str, kind: &str) -> BTreeMap<String, (String, u64, u64, u64)> {
    let text = String::from_utf8(index(dir, out).expect("an index")).expect("utf-8");
    let mut lines = text.lines();
    assert!(lines.next().expect("a first line").starts_with("rulecast build index "), "{text}");
    lines
        .filter_map(|l| {
            let f: Vec<&str> = l.splitn(11, ' ').collect();
            (f[0] == kind).then(|| (f[10].to_string(), (f[1].to_string(), f[2].parse().expect("dev"), f[3].parse().expect("ino"), f[5].parse().expect("size"))))
        })
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Wait until the file system of `dir` stamps a new file later than every file under `dirs`
/// changed: a build that starts then may trust what it finds of them by their stat (files
/// changed in the time-stamp tick a build begins are read again by the next build instead).
fn after_last_change(dir: &Path, dirs: &[PathBuf]) {
    use std::os::unix::fs::MetadataExt;
    fn newest(d: &Path, acc: &mut (i64, i64)) {
        for e in std::fs::read_dir(d).expect("read_dir") {
            let m = e.expect("entry").metadata().expect("stat");
            *acc = (*acc).max((m.ctime(), m.ctime_nsec())).max((m.mtime(), m.mtime_nsec()));
        }
    }
    let mut last = (0, 0);
    for d in dirs {
        newest(d, &mut last);
        for e in std::fs::read_dir(d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                newest(&p, &mut last);
            }
        }
    }
    let probe = dir.join("probe");
    for _ in 0..10_000 {
        std::fs::write(&probe, "").expect("probe");
        let m = std::fs::metadata(&probe).expect("stat");
        std::fs::remove_file(&probe).expect("rm probe");
        if (m.ctime(), m.ctime_nsec()) > last {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    panic!("the file system's clock did not move");
}

/// Change one byte of `path` (same size), then give it back its modification time: a hand
/// edit within the same second (or a tool that keeps the time stamp). Its change time moves on.
fn edit_in_place(path: &Path, at: &str) {
    let mtime = std::fs::metadata(path).expect("stat").modified().expect("mtime");
    let mut bytes = std::fs::read(path).expect("read");
    let text = String::from_utf8_lossy(&bytes).to_string();
    let pos = text.find(at).unwrap_or_else(|| panic!("`{at}` in {}", path.display())) + at.len();
    bytes[pos] = if bytes[pos] == b'x' { b'y' } else { b'x' };
    std::fs::write(path, &bytes).expect("edit");
    std::fs::File::options().write(true).open(path).expect("open").set_modified(mtime).expect("set mtime");
    assert_eq!(std::fs::metadata(path).expect("stat").modified().expect("mtime"), mtime);
    assert_eq!(std::fs::read(path).expect("read").len(), bytes.len());
}

/// (inode, change time) of the output folder and of every file under it.
fn identities(dir: &Path) -> BTreeMap<String, (u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let mut acc = BTreeMap::new();
    let m = std::fs::metadata(dir).expect("stat");
    acc.insert(".".to_string(), (m.ino(), m.ctime(), m.ctime_nsec()));
    for name in tree(dir).keys() {
        let m = std::fs::metadata(dir.join(name)).expect("stat");
        acc.insert(name.clone(), (m.ino(), m.ctime(), m.ctime_nsec()));
    }
    acc
}

/// A build of `extra` into a fresh output without the cache: what every cached build must equal.
fn cold(dir: &Path, extra: &[&str]) -> (BTreeMap<String, Vec<u8>>, Output) {
    let _ = std::fs::remove_dir_all(dir.join("cold"));
    let mut args = vec!["--no-cache"];
    args.extend_from_slice(extra);
    let o = build(dir, "cold", &args);
    assert!(!cache_dir(dir, "cold").exists(), "--no-cache wrote a cache");
    (tree(&dir.join("cold")), o)
}

/// `o` (a build into `out`) wrote and printed what a build without the cache does.
fn same_as_cold(dir: &Path, out: &str, o: &Output, extra: &[&str]) {
    let (want, c) = cold(dir, extra);
    assert_eq!(o.status.code(), c.status.code(), "exit code\n{}", stderr(o));
    assert_eq!(stderr(o), stderr(&c), "stderr differs from a build without the cache");
    assert_eq!(summary(o), summary(&c), "stdout differs from a build without the cache");
    // the folders the build owns (with --target, the others are kept as they were)
    let owned: std::collections::BTreeSet<&str> = want.keys().filter_map(|k| k.split('/').next()).collect();
    let got: BTreeMap<String, Vec<u8>> = tree(&dir.join(out)).into_iter().filter(|(k, _)| k.split('/').next().is_some_and(|d| owned.contains(d))).collect();
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "file names differ");
    for (k, v) in &want {
        assert!(got[k] == *v, "{k} differs from a build without the cache");
    }
}

#[test]
fn a_rebuild_takes_every_unchanged_rule_from_the_cache_and_writes_the_same_bytes() {
    for lock in [false, true] {
        let tmp = setup(lock);
        let dir = tmp.path();
        let n = rule_count(dir);
        let first = build(dir, "out", &[]);
        assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
        assert_eq!(hits(&first), 0);
        assert_eq!(cache_files(dir, "out").len(), n, "one cache file per rule beside the output");
        same_as_cold(dir, "out", &first, &[]);
        let second = build(dir, "out", &[]);
        assert_eq!(hits(&second), n, "lock {lock}: {}", stdout(&second));
        same_as_cold(dir, "out", &second, &[]);
        // a build of fewer targets is answered by the entries of all three
        let one = build(dir, "out", &["--target", "sentinel"]);
        assert_eq!(hits(&one), n);
        same_as_cold(dir, "out", &one, &["--target", "sentinel"]);
    }
}

#[test]
fn a_changed_rule_lock_or_option_is_compiled_again() {
    let tmp = setup(true);
    let dir = tmp.path();
    let n = rule_count(dir);
    assert_eq!(build(dir, "out", &[]).status.code(), Some(0));
    // one rule edited (a comment: same meaning, new bytes) and one rule's name changed
    let rules = dir.join("rules");
    let a = rules.join("aws_root_account_usage.yaml");
    let text = std::fs::read_to_string(&a).expect("rule");
    std::fs::write(&a, format!("{text}\n# edited\n")).expect("edit");
    let b = rules.join("aws_api_call_from_offensive_tooling.yaml");
    let text = std::fs::read_to_string(&b).expect("rule");
    let renamed = regex::Regex::new(r"(?m)^name: .*$").expect("regex").replace(&text, "name: Renamed for the cache test").to_string();
    assert_ne!(renamed, text);
    std::fs::write(&b, renamed).expect("edit");
    let o = build(dir, "out", &[]);
    assert_eq!(hits(&o), n - 2, "{}", stdout(&o));
    same_as_cold(dir, "out", &o, &[]);
    assert_eq!(cache_files(dir, "out").len(), n, "the entries of the old texts were removed");
    assert!(stderr(&o).contains("does not describe"), "the stale-lock warning comes from the fingerprints: {}", stderr(&o));
    // another --unsupported: nothing from the cache, then everything
    let o = build(dir, "out", &["--unsupported", "ignore"]);
    assert_eq!(hits(&o), 0);
    same_as_cold(dir, "out", &o, &["--unsupported", "ignore"]);
    let o = build(dir, "out", &["--unsupported", "ignore"]);
    assert_eq!(hits(&o), n);
    // another lock: nothing from the cache (its entries set the versions written)
    let lock = rules.join("rulecast.lock");
    let mut l: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&lock).expect("lock")).expect("json");
    let release = l["release"].as_u64().expect("release");
    l["release"] = serde_json::json!(release + 1);
    std::fs::write(&lock, serde_json::to_string_pretty(&l).expect("json")).expect("write lock");
    let o = build(dir, "out", &[]);
    assert_eq!(hits(&o), 0, "{}", stdout(&o));
    same_as_cold(dir, "out", &o, &[]);
    // no lock at all: nothing from the cache either
    std::fs::remove_file(&lock).expect("rm lock");
    let o = build(dir, "out", &[]);
    assert_eq!(hits(&o), 0);
    same_as_cold(dir, "out", &o, &[]);
}

#[test]
fn a_damaged_cache_file_or_an_edited_output_file_is_compiled_again() {
    let tmp = setup(false);
    let dir = tmp.path();
    let n = rule_count(dir);
    assert_eq!(build(dir, "out", &[]).status.code(), Some(0));
    let files = cache_files(dir, "out");
    // every cache file: not a cache file at all, cut in half, one byte of a note changed (still
    // JSON), empty
    type Damage = fn(&[u8]) -> Vec<u8>;
    let damages: [Damage; 4] = [
        |_| b"not a cache file".to_vec(),
        |good| good[..good.len() / 2].to_vec(),
        |good| {
            let body = String::from_utf8(good.to_vec()).expect("utf-8");
            let mut bytes = good.to_vec();
            if let Some(at) = body.find("\"message\":\"") {
                let pos = at + "\"message\":\"".len();
                bytes[pos] = if bytes[pos] == b'x' { b'y' } else { b'x' };
            } else {
                // a rule without notes: its id instead
                let pos = body.find("\"id\":\"").expect("an id") + "\"id\":\"".len();
                bytes[pos] = if bytes[pos] == b'x' { b'y' } else { b'x' };
            }
            bytes
        },
        |_| vec![],
    ];
    for damage in damages {
        for (name, good) in &files {
            std::fs::write(cache_dir(dir, "out").join(name), damage(good)).expect("damage");
        }
        let o = build(dir, "out", &[]);
        assert_eq!(hits(&o), 0, "a damaged cache file was used: {}", stdout(&o));
        same_as_cold(dir, "out", &o, &[]);
        // the build wrote good ones again
        assert_eq!(cache_files(dir, "out"), files);
        assert_eq!(hits(&build(dir, "out", &[])), n);
    }
    // a cache folder that is a file: no cache, the same output
    std::fs::remove_dir_all(cache_dir(dir, "out")).expect("rm");
    std::fs::write(cache_dir(dir, "out"), "").expect("a file");
    let o = build(dir, "out", &[]);
    assert_eq!(hits(&o), 0);
    same_as_cold(dir, "out", &o, &[]);
    std::fs::remove_file(cache_dir(dir, "out")).expect("rm");
    assert_eq!(build(dir, "out", &[]).status.code(), Some(0));
    // an output file edited by hand: its rule is compiled again and the file written right
    let file = tree(&dir.join("out")).keys().find(|k| k.starts_with("sentinel/")).expect("a sentinel file").clone();
    let path = dir.join("out").join(&file);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes.extend_from_slice(b"\n# hand edit\n");
    std::fs::write(&path, bytes).expect("edit");
    let o = build(dir, "out", &[]);
    assert_eq!(hits(&o), n - 1, "{}", stdout(&o));
    same_as_cold(dir, "out", &o, &[]);
    // a removed output file: the same
    std::fs::remove_file(&path).expect("rm");
    let o = build(dir, "out", &[]);
    assert_eq!(hits(&o), n - 1);
    same_as_cold(dir, "out", &o, &[]);
}

#[test]
fn a_failed_build_leaves_output_and_cache_as_they_were() {
    let tmp = setup(false);
    let dir = tmp.path();
    let n = rule_count(dir);
    assert_eq!(build(dir, "out", &[]).status.code(), Some(0));
    // a second build writes the index (of the files it read back)
    assert_eq!(hits(&build(dir, "out", &[])), n);
    assert!(index(dir, "out").is_some());
    let (before, cache_before) = (tree(&dir.join("out")), tree(&cache_dir(dir, "out")));
    std::fs::write(dir.join("rules/broken.yaml"), "id: [unclosed\n").expect("write");
    let o = build(dir, "out", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(tree(&dir.join("out")), before, "a failed build changed the output");
    let cache_after = tree(&cache_dir(dir, "out"));
    for (name, bytes) in &cache_before {
        assert_eq!(cache_after.get(name), Some(bytes), "a failed build changed or removed the cache file {name}");
    }
    std::fs::remove_file(dir.join("rules/broken.yaml")).expect("rm");
    let o = build(dir, "out", &[]);
    assert_eq!(hits(&o), n);
    same_as_cold(dir, "out", &o, &[]);
}

#[test]
fn two_rules_with_one_id_are_refused_from_the_cache_as_without_it() {
    let tmp = setup(false);
    let dir = tmp.path();
    assert_eq!(build(dir, "out", &[]).status.code(), Some(0));
    // a copy under a name read first: the cached rule is the second with its id
    std::fs::copy(dir.join("rules/aws_root_account_usage.yaml"), dir.join("rules/aa_copy.yaml")).expect("copy");
    let o = build(dir, "out", &[]);
    assert_eq!(o.status.code(), Some(1));
    let (_, c) = cold(dir, &[]);
    assert_eq!(stderr(&o), stderr(&c));
    assert!(stderr(&o).contains("duplicate rule id"), "{}", stderr(&o));
}

#[test]
fn a_rebuild_that_changes_nothing_leaves_the_output_folder_as_it_is() {
    let tmp = setup(false);
    let dir = tmp.path();
    let n = rule_count(dir);
    assert_eq!(build(dir, "out", &[]).status.code(), Some(0));
    assert!(tree(&dir.join("out")).keys().any(|k| k.matches('/').count() > 1), "a target writes a file in a folder of its own (Panther's global module)");
    let before = identities(&dir.join("out"));
    for extra in [&[][..], &["--no-cache"][..], &[][..]] {
        let o = build(dir, "out", extra);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(stdout(&o).contains("(0 changed"), "{}", stdout(&o));
        if extra.is_empty() {
            assert_eq!(hits(&o), n);
        }
        // no file was linked into a new tree and swapped in: the folder and every file keep
        // their inode and change time
        assert_eq!(identities(&dir.join("out")), before, "a build that changed nothing replaced the output ({extra:?})");
        same_as_cold(dir, "out", &o, &[]);
    }
}

#[test]
fn a_rebuild_trusts_files_by_the_stat_it_recorded_and_nothing_else() {
    for lock in [false, true] {
        let tmp = setup(lock);
        let dir = tmp.path();
        let n = rule_count(dir);
        let (out, rules) = (dir.join("out"), dir.join("rules"));
        assert_eq!(build(dir, "out", &[]).status.code(), Some(0));
        // the first rebuild reads every file back (the build before wrote them) and records
        // the stat of each, as it was before the rebuild began
        after_last_change(dir, &[out.clone(), rules.clone()]);
        let o = build(dir, "out", &[]);
        assert_eq!(hits(&o), n, "{}", stdout(&o));
        let outs = records(dir, "out", "out");
        let files = tree(&out);
        assert_eq!(outs.keys().collect::<Vec<_>>(), files.keys().filter(|k| k.matches('/').count() == 1).collect::<Vec<_>>(), "a record of every file a rule wrote");
        for (name, (sha, _, ino, size)) in &outs {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(out.join(name)).expect("stat");
            assert_eq!((sha.clone(), *ino, *size), (sha256_hex(&files[name]), m.ino(), m.len()), "{name}");
        }
        let rule_records = records(dir, "out", "rule");
        assert_eq!(rule_records.len(), n, "a record of every rule file");
        for (name, (sha, ..)) in &rule_records {
            assert_eq!(*sha, sha256_hex(&std::fs::read(dir.join(name)).expect("rule")), "{name}");
        }
        // a rebuild that finds every stat as recorded reads nothing back, so it has nothing to
        // add to the index and leaves it as it is (the same file, not rewritten)
        use std::os::unix::fs::MetadataExt;
        let index_file = cache_dir(dir, "out").join("index");
        let id = |p: &Path| std::fs::metadata(p).map(|m| (m.ino(), m.mtime(), m.mtime_nsec())).expect("stat");
        let (index_before, index_id) = (index(dir, "out"), id(&index_file));
        let o = build(dir, "out", &[]);
        assert_eq!(hits(&o), n);
        same_as_cold(dir, "out", &o, &[]);
        assert_eq!(index(dir, "out"), index_before);
        assert_eq!(id(&index_file), index_id, "the index was written again: a file was read back");

        // an output file edited in place at once, with the same size and its old
        // modification time: its change time gives it away; its rule is compiled again
        let name = outs.keys().find(|k| k.starts_with("sentinel/")).expect("a sentinel file").clone();
        edit_in_place(&out.join(&name), "");
        assert_eq!(std::fs::metadata(out.join(&name)).expect("stat").len(), outs[&name].3);
        let o = build(dir, "out", &[]);
        assert_eq!(hits(&o), n - 1, "{}", stdout(&o));
        same_as_cold(dir, "out", &o, &[]);

        // a rule file edited the same way: read again, compiled again
        let rule = rules.join("aws_root_account_usage.yaml");
        let size = std::fs::metadata(&rule).expect("stat").len();
        edit_in_place(&rule, "name: ");
        assert_eq!(std::fs::metadata(&rule).expect("stat").len(), size);
        let o = build(dir, "out", &[]);
        assert_eq!(hits(&o), n - 1, "{}", stdout(&o));
        same_as_cold(dir, "out", &o, &[]);
        if lock {
            assert!(stderr(&o).contains("does not describe"), "the rule's new meaning reaches the lock's stale check: {}", stderr(&o));
        }
        // and edited back at once, the same way: compiled again (the previous build removed
        // the entry of these bytes)
        edit_in_place(&rule, "name: ");
        let o = build(dir, "out", &[]);
        assert_eq!(hits(&o), n - 1, "{}", stdout(&o));
        same_as_cold(dir, "out", &o, &[]);
    }
}

#[test]
fn a_damaged_index_is_not_used() {
    let tmp = setup(false);
    let dir = tmp.path();
    let n = rule_count(dir);
    let (out, rules) = (dir.join("out"), dir.join("rules"));
    let rule = "rules/aws_root_account_usage.yaml";
    // the index changed to vouch for an edited output file and an edited rule file by their new
    // stat: as it is (its last line's checksum no longer holds), cut in half, empty, without
    // its last line, with a last line that is not a checksum
    type Damage = fn(&str) -> String;
    let without_last = |forged: &str| forged[..forged.trim_end().rfind('\n').expect("lines") + 1].to_string();
    let damages: [Damage; 5] = [
        |forged| forged.to_string(),
        |forged| forged[..forged.len() / 2].to_string(),
        |_| String::new(),
        without_last,
        |forged| format!("{}sha256 not-a-sum\n", &forged[..forged.trim_end().rfind('\n').expect("lines") + 1]),
    ];
    for damage in damages {
        std::fs::remove_dir_all(cache_dir(dir, "out")).ok();
        assert_eq!(build(dir, "out", &[]).status.code(), Some(0));
        after_last_change(dir, &[out.clone(), rules.clone()]);
        assert_eq!(hits(&build(dir, "out", &[])), n);
        let good = String::from_utf8(index(dir, "out").expect("an index")).expect("utf-8");
        let name = records(dir, "out", "out").keys().find(|k| k.starts_with("elastic/")).expect("an elastic file").clone();
        assert!(records(dir, "out", "rule").contains_key(rule));
        edit_in_place(&out.join(&name), "");
        edit_in_place(&dir.join(rule), "name: ");
        let forged: String = good
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.splitn(11, ' ').collect();
                let path = match (f.first(), f.get(10)) {
                    (Some(&"out"), Some(p)) if *p == name => out.join(p),
                    (Some(&"rule"), Some(p)) if *p == rule => dir.join(p),
                    _ => return format!("{l}\n"),
                };
                use std::os::unix::fs::MetadataExt;
                let m = std::fs::metadata(&path).expect("stat");
                format!("{} {} {} {} {} {} {} {} {} {} {}\n", f[0], f[1], m.dev(), m.ino(), m.mode(), m.len(), m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec(), f[10])
            })
            .collect();
        assert_ne!(forged, good);
        std::fs::write(cache_dir(dir, "out").join("index"), damage(&forged)).expect("damage");
        let o = build(dir, "out", &[]);
        // the edited output's rule and the edited rule are compiled again; every other file
        // is read back
        assert_eq!(hits(&o), n - 2, "{}", stdout(&o));
        same_as_cold(dir, "out", &o, &[]);
    }
}
