//! The build cache: a rebuild whose inputs did not change reuses the previous output instead of
//! parsing and compiling the rules again.
//!
//! What a rule × target pair produces depends only on: the rule file's bytes and the path it is
//! named by, the rulecast binary, `--unsupported`, the read policy (`--follow-symlinks`,
//! `--max-file-size`) and the lock (`rulecast.lock`, as parsed) — rule files read nothing else,
//! and the templates and tables are compiled into the binary. So every rule gets a key, the
//! SHA-256 of all of these (the binary by the SHA-256 of its own bytes), and the folder
//! `.<OUT>.rulecast-cache/` beside the output folder (next to `.<OUT>.rulecast.lock`) holds one
//! file per key, `<key>.json`, saying what each target made of the rule: skipped (with the
//! reason), or built: the paths written with the SHA-256 of their bytes, and the translation
//! notes; with a lock, also the rule's fingerprint (what `rulecast lock` would record, for the
//! stale-lock warning). Its first line is the SHA-256 of the rest. Rules with a refused pair get
//! no file (they are compiled every time). One file per rule, written as the rule is compiled,
//! keeps memory to a batch of rules, as without the cache.
//!
//! A rule whose key has a file is not parsed or compiled: its output files are read back from
//! the current output folder, and each one is used only if its bytes still have the recorded
//! hash; anything else (an output file missing or edited; a cache file whose first line does
//! not vouch for the rest, that does not parse or is missing) is a miss, and the rule is
//! compiled as without a cache. So a stale, foreign or damaged cache costs time, never a wrong
//! byte. The cached files go through the same staged write as compiled ones (the output is still
//! replaced as one step). Once every rule is done, and before the output is swapped in, the
//! files of keys this build did not use are removed. `build --no-cache` neither reads nor
//! writes the cache.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use rulecast::diag::{Code, Diagnostic, Diagnostics, Severity, Span};
use rulecast::lock::{Facets, Fingerprint};
use rulecast::notes::Concern;
use rulecast::{Output, Pair, Target, Unsupported};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use strum::IntoEnumIterator;

/// The cache's format (part of every key: files of another format are never read, and are
/// removed by the next build).
const FORMAT: u32 = 2;

/// The cache of one output folder.
pub struct Cache {
    /// SHA-256 of everything every rule depends on besides its own file.
    global: [u8; 32],
    out: PathBuf,
    /// `.<OUT>.rulecast-cache/`
    dir: PathBuf,
    /// Is there a lock (every entry then carries the rule's fingerprint)?
    locked: bool,
    /// The keys this build used or wrote: the others are removed at the end.
    used: HashSet<String>,
}

/// What the targets made of one rule file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// The rule's id (for the duplicate-id check).
    pub id: String,
    /// Where the id is written.
    id_at: Option<(String, usize, usize)>,
    /// Target name -> what it made.
    pairs: BTreeMap<String, CachedPair>,
    /// With a lock: what the rule means, for the lock's stale check.
    #[serde(default)]
    fingerprint: Option<CachedFingerprint>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CachedFingerprint {
    id: String,
    name: String,
    file: String,
    facets: Facets,
    hashes: BTreeMap<String, String>,
    declared_version: Option<String>,
    declared_updated: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum CachedPair {
    Skipped(String),
    /// (path, SHA-256 of its bytes) and the notes.
    Built { files: Vec<(String, String)>, notes: Vec<Note> },
}

/// A translation note as the cache keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Note {
    code: String,
    severity: String,
    message: String,
    expected: Option<String>,
    found: Option<String>,
    span: Option<(String, usize, usize)>,
    hints: Vec<String>,
    rule: Option<String>,
    target: Option<String>,
    concern: Option<CachedConcern>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum CachedConcern {
    Matching { fields: Vec<String>, spans: Vec<(String, usize, usize)> },
    AllowList(String),
    KeyCase,
    Aggregation,
    Layout,
    Metadata,
}

/// A rule the cache answered for: what [`rulecast::add_pairs`] needs, and the id check.
pub struct Hit {
    pub id: String,
    pub id_span: Option<Span>,
    pub pairs: Vec<Pair>,
    /// With a lock: the rule's fingerprint.
    pub fingerprint: Option<Fingerprint>,
}

/// SHA-256 of the running binary's bytes (read in pieces: the binary is not held in memory).
fn exe_digest() -> Option<[u8; 32]> {
    use std::io::Read;
    let mut f = fs::File::open(std::env::current_exe().ok()?).ok()?;
    let (mut h, mut buf) = (Sha256::new(), vec![0u8; 1 << 16]);
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(h.finalize().into())
}

/// A cache file's first line: this, a space, the SHA-256 of the rest (the JSON), a newline.
const HEADER: &str = "rulecast build cache";

/// The JSON of a cache file whose first line vouches for it; `None` for anything else (a file
/// cut short, or changed since it was written).
fn checked(file: &[u8]) -> Option<&[u8]> {
    let nl = file.iter().position(|&b| b == b'\n')?;
    let (first, body) = (std::str::from_utf8(&file[..nl]).ok()?, &file[nl + 1..]);
    let sum = first.strip_prefix(HEADER)?.strip_prefix(' ')?;
    (sum == hex(&Sha256::digest(body))).then_some(body)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The cache folder of an output folder: `.<name>.rulecast-cache/` beside it.
pub fn cache_dir(out: &Path) -> Option<PathBuf> {
    let name = out.file_name()?.to_str()?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Some(parent.join(format!(".{name}.rulecast-cache")))
}

impl Cache {
    /// The cache of `out` for a build with these options and lock (as JSON, if any). `None`
    /// when the binary cannot be read or the folder cannot be made (no cache: every rule is
    /// compiled).
    pub fn open(out: &Path, policy: Unsupported, read: rulecast::load::files::ReadPolicy, lock: Option<&str>) -> Option<Cache> {
        let dir = cache_dir(out)?;
        let mut h = Sha256::new();
        h.update(format!("rulecast build cache {FORMAT}\0").as_bytes());
        h.update(exe_digest()?);
        h.update(format!("{policy:?}\0{}\0{}\0", read.follow_symlinks, read.max_bytes).as_bytes());
        match lock {
            Some(l) => {
                h.update(b"lock\0");
                h.update(Sha256::digest(l.as_bytes()));
            }
            None => h.update(b"no lock\0"),
        }
        let global: [u8; 32] = h.finalize().into();
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return None,
            Err(_) => fs::create_dir(&dir).ok()?,
        }
        Some(Cache { global, out: out.to_path_buf(), dir, locked: lock.is_some(), used: HashSet::new() })
    }

    /// A rule file's key: its name and bytes, with everything else it depends on.
    pub fn key(&self, file: &str, text: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.global);
        h.update((file.len() as u64).to_le_bytes());
        h.update(file.as_bytes());
        h.update(text.as_bytes());
        hex(&h.finalize())
    }

    /// What the cache says `targets` made of the rule with this key, if it says so for every
    /// one of them and every file it names is still in the output with the recorded bytes.
    pub fn hit(&self, key: &str, targets: &[Target]) -> Option<Hit> {
        let file = fs::read(self.dir.join(format!("{key}.json"))).ok()?;
        let e: Entry = serde_json::from_slice(checked(&file)?).ok()?;
        let fingerprint = match (&e.fingerprint, self.locked) {
            (Some(f), true) => Some(fingerprint_from(f)?),
            (None, true) => return None,
            (_, false) => None,
        };
        let mut pairs = Vec::with_capacity(targets.len());
        for &t in targets {
            let p = e.pairs.get(&t.to_string())?;
            pairs.push(match p {
                CachedPair::Skipped(why) => Pair::Skipped(why.clone()),
                CachedPair::Built { files, notes } => {
                    let mut made = Vec::with_capacity(files.len());
                    for (path, sum) in files {
                        // only plain `<target folder>/<file>` paths are read back
                        let (dir, name) = path.split_once('/')?;
                        if dir != rulecast::targets::folder(t) || name.is_empty() || name.contains('/') || name.contains('\\') || name.starts_with('.') {
                            return None;
                        }
                        let text = fs::read_to_string(self.out.join(path)).ok()?;
                        if hex(&Sha256::digest(text.as_bytes())) != *sum {
                            return None;
                        }
                        made.push((path.clone(), text));
                    }
                    let notes = notes.iter().map(note_from).collect::<Option<Vec<_>>>()?;
                    Pair::Built(Output { target: t, files: made, notes: Diagnostics(notes) })
                }
            });
        }
        Some(Hit { id: e.id.clone(), id_span: e.id_at.clone().map(span_from), pairs, fingerprint })
    }

    /// Write a freshly compiled rule's entry (see [`entry`]). A file that cannot be written
    /// only means a miss next time.
    pub fn write(&self, key: &str, entry: &Entry) {
        if let Ok(body) = serde_json::to_vec(entry) {
            let mut text = format!("{HEADER} {}\n", hex(&Sha256::digest(&body))).into_bytes();
            text.extend_from_slice(&body);
            let _ = fs::write(self.dir.join(format!("{key}.json")), text);
        }
    }

    /// Note that this build used (or wrote) the entry of `key`.
    pub fn used(&mut self, key: String) {
        self.used.insert(key);
    }

    /// Remove the files of the keys this build did not use (rules changed or gone, other
    /// options, an older binary).
    pub fn prune(self) {
        let Ok(rd) = fs::read_dir(&self.dir) else { return };
        for e in rd.flatten() {
            let name = e.file_name();
            let keep = name.to_str().and_then(|n| n.strip_suffix(".json")).is_some_and(|k| self.used.contains(k));
            if !keep {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// The cache entry for a rule compiled for `targets` (with its fingerprint when there is a
/// lock), if it can be kept: not when a pair was refused, nor when a note or the fingerprint
/// would not come back from the cache exactly as it is.
pub fn entry(id: &str, id_span: Option<&Span>, targets: &[Target], pairs: &[Pair], fingerprint: Option<&Fingerprint>) -> Option<Entry> {
    let fingerprint = match fingerprint {
        Some(f) => {
            let c = fingerprint_to(f);
            if fingerprint_from(&c).as_ref() != Some(f) {
                return None;
            }
            Some(c)
        }
        None => None,
    };
    let mut out = BTreeMap::new();
    for (&t, p) in targets.iter().zip(pairs) {
        let c = match p {
            Pair::Refused(_) => return None,
            Pair::Skipped(why) => CachedPair::Skipped(why.clone()),
            Pair::Built(o) => {
                let files = o.files.iter().map(|(p, text)| (p.clone(), hex(&Sha256::digest(text.as_bytes())))).collect();
                let mut notes = Vec::with_capacity(o.notes.len());
                for d in o.notes.iter() {
                    let n = note_to(d);
                    if note_from(&n).as_ref() != Some(d) {
                        return None;
                    }
                    notes.push(n);
                }
                CachedPair::Built { files, notes }
            }
        };
        out.insert(t.to_string(), c);
    }
    Some(Entry { id: id.to_string(), id_at: id_span.map(span_to), pairs: out, fingerprint })
}

fn target_named(name: &str) -> Option<Target> {
    Target::iter().find(|t| t.to_string() == name)
}

fn fingerprint_to(f: &Fingerprint) -> CachedFingerprint {
    CachedFingerprint {
        id: f.id.clone(),
        name: f.name.clone(),
        file: f.file.clone(),
        facets: f.facets.clone(),
        hashes: f.hashes.iter().map(|(t, h)| (t.to_string(), h.clone())).collect(),
        declared_version: f.declared_version.clone(),
        declared_updated: f.declared_updated.clone(),
    }
}

fn fingerprint_from(c: &CachedFingerprint) -> Option<Fingerprint> {
    let mut hashes = BTreeMap::new();
    for (t, h) in &c.hashes {
        hashes.insert(target_named(t)?, h.clone());
    }
    Some(Fingerprint {
        id: c.id.clone(),
        name: c.name.clone(),
        file: c.file.clone(),
        facets: c.facets.clone(),
        hashes,
        declared_version: c.declared_version.clone(),
        declared_updated: c.declared_updated.clone(),
    })
}

fn span_to(s: &Span) -> (String, usize, usize) {
    (s.file.clone(), s.line, s.col)
}

fn span_from((file, line, col): (String, usize, usize)) -> Span {
    Span { file, line, col }
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    }
}

fn note_to(d: &Diagnostic) -> Note {
    Note {
        code: format!("{:?}", d.code),
        severity: severity_name(d.severity).to_string(),
        message: d.message.clone(),
        expected: d.expected.clone(),
        found: d.found.clone(),
        span: d.span.as_ref().map(span_to),
        hints: d.hints.clone(),
        rule: d.rule.clone(),
        target: d.target.clone(),
        concern: d.concern.as_ref().map(|c| match c {
            Concern::Matching { fields, spans } => CachedConcern::Matching { fields: fields.clone(), spans: spans.iter().map(span_to).collect() },
            Concern::AllowList(n) => CachedConcern::AllowList(n.clone()),
            Concern::KeyCase => CachedConcern::KeyCase,
            Concern::Aggregation => CachedConcern::Aggregation,
            Concern::Layout => CachedConcern::Layout,
            Concern::Metadata => CachedConcern::Metadata,
        }),
    }
}

fn note_from(n: &Note) -> Option<Diagnostic> {
    static CODES: std::sync::OnceLock<HashMap<String, Code>> = std::sync::OnceLock::new();
    let code = *CODES.get_or_init(|| Code::iter().map(|c| (format!("{c:?}"), c)).collect()).get(&n.code)?;
    let severity = [Severity::Error, Severity::Warning, Severity::Note].into_iter().find(|s| severity_name(*s) == n.severity)?;
    let mut d = Diagnostic::error(code, n.message.clone());
    d.severity = severity;
    d.expected = n.expected.clone();
    d.found = n.found.clone();
    d.span = n.span.clone().map(span_from);
    d.hints = n.hints.clone();
    d.rule = n.rule.clone();
    d.target = n.target.clone();
    d.concern = n.concern.as_ref().map(|c| match c {
        CachedConcern::Matching { fields, spans } => Concern::Matching { fields: fields.clone(), spans: spans.iter().cloned().map(span_from).collect() },
        CachedConcern::AllowList(n) => Concern::AllowList(n.clone()),
        CachedConcern::KeyCase => Concern::KeyCase,
        CachedConcern::Aggregation => Concern::Aggregation,
        CachedConcern::Layout => Concern::Layout,
        CachedConcern::Metadata => Concern::Metadata,
    });
    Some(d)
}
