//! The build cache: a rebuild whose inputs did not change reuses the previous output instead of
//! parsing and compiling the rules again.
//!
//! What a rule × target pair produces depends only on: the rule file's bytes and the path it is
//! named by, the rulecast binary, `--unsupported`, the read policy (`--follow-symlinks`,
//! `--max-file-size`) and the lock (`rulecast.lock`, as parsed) — rule files read nothing else,
//! and the templates and tables are compiled into the binary. So every rule gets a key, the
//! SHA-256 of all of these (the rule file by the SHA-256 of its bytes, the binary by the SHA-256
//! of its own), and the folder `.<OUT>.rulecast-cache/` beside the output folder (next to
//! `.<OUT>.rulecast.lock`) holds one file per key, `<key>.json`, saying what each target made
//! of the rule: skipped (with the reason), or built: the paths written with the SHA-256 of their
//! bytes, and the translation notes; with a lock, also the rule's fingerprint (what `rulecast
//! lock` would record, for the stale-lock warning). Its first line is the SHA-256 of the rest.
//! Rules with a refused pair get no file (they are compiled every time). One file per rule,
//! written as the rule is compiled, keeps memory to a batch of rules, as without the cache.
//!
//! A rule whose key has a file is not parsed or compiled: each output file it names must still
//! be in the output folder with the recorded bytes; anything else (an output file missing or
//! edited; a cache file whose first line does not vouch for the rest, that does not parse or
//! is missing) is a miss, and the rule is compiled as without a cache. So a stale, foreign or
//! damaged cache costs time, never a wrong byte. The files of a hit are not read into the
//! build: the staged write keeps them from the output folder as it keeps unchanged files (the
//! output is still replaced as one step, and a build that changes nothing leaves it as it is).
//! Once every rule is done, and before the output is swapped in, the files of keys this build
//! did not use are removed. `build --no-cache` neither reads nor writes the cache.
//!
//! **The index: files known by their stat.** Reading back and hashing every rule file, every
//! output file and the binary was most of a rebuild's time. The file `index` in the cache
//! folder records, for files a build read and found to have certain bytes, their `stat` then
//! (device, inode, type and mode, size, modification and change time in nanoseconds) with the
//! SHA-256 of those bytes: rule files by the path the build names them by, output files by
//! their path in the output folder, the running binary (read through `/proc/self/exe`) by its
//! path. A later build that finds a file's
//! stat exactly as recorded takes the recorded SHA-256 without reading the file (a rule file's
//! key is then made without reading it; an output file counts as present with its bytes);
//! any difference, or no record, and the file is read and hashed as before. A file's bytes
//! cannot change without its change time (ctime) changing — no system call sets it; writing,
//! `touch`, `chmod` and linking all move it to the current time (short of setting the clock
//! back) — so the only way to fool a stat
//! comparison is a write in the same time-stamp tick as the stat recorded, after it was taken.
//! That is ruled out as git rules out "racily clean" files, only more strictly: a stat is
//! recorded only when the file's change and modification times are older than the time this
//! build began *on that file system* — the time stamps of a file made there when the build
//! begins (`O_TMPFILE`: it has no name and vanishes when closed; nothing in the folder
//! changes) — and its bytes were verified after the build began (its stat taken before they
//! were read, or the file trusted by a record of an earlier build). A write after the stat was
//! taken then gives the file a change time at least as late as the build's beginning, later
//! than the recorded one. Files changed in the tick the build began or later (every file a
//! build writes, and every file a build that swaps the output links again, which moves its
//! change time) are not recorded: the next build reads them once and records them then. On a
//! file system where no such file can be made (read-only, no `O_TMPFILE`), nothing is
//! recorded and every file is read, as without the index. The index is text, one record a
//! line; its last line is the SHA-256 of everything before it: a damaged index is not read
//! (every file is read). It holds the records the build used or made, and is written (in full
//! beside the old one, then renamed over it) only when it changes, under the output's lock, with the pruning; a failed build leaves it as it was.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use rulecast::diag::{Code, Diagnostic, Diagnostics, Severity, Span};
use rulecast::lock::{Facets, Fingerprint};
use rulecast::notes::Concern;
use rulecast::{Output, Pair, Target, Unsupported};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use strum::IntoEnumIterator;

/// The cache's format (part of every key: files of another format are never read, and are
/// removed by the next build; an index of another format is not read).
const FORMAT: u32 = 3;

/// The index's file name in the cache folder (every other name is an entry, `<key>.json`).
const INDEX: &str = "index";

/// The cache of one output folder.
pub struct Cache {
    /// SHA-256 of everything every rule depends on besides its own file.
    global: [u8; 32],
    /// `.<OUT>.rulecast-cache/`
    dir: PathBuf,
    /// The same, opened.
    dir_fd: fs::File,
    /// Is there a lock (every entry then carries the rule's fingerprint)?
    locked: bool,
    /// Are rule files read through symbolic links (then a rule file's stat is its target's)?
    follow_symlinks: bool,
    /// The keys this build used or wrote: the others are removed at the end.
    used: HashSet<String>,
    /// The index as the previous build left it (per kind of file: name -> record, and whether
    /// this build verified the file by it; empty when the index is missing or damaged).
    index: Index,
    /// The records this build made (files it read): with the records it used, the next index.
    seen: Mutex<Vec<(Kind, String, Record)>>,
    /// Device -> the file system's time when this build began (see [`Cache::recordable`]).
    began: HashMap<u64, Time>,
    /// The output's target folders, opened once (folder name -> descriptor).
    folders: HashMap<&'static str, fs::File>,
}

/// A time stamp of a file: (seconds, nanoseconds).
type Time = (i64, i64);

/// What `stat` says of a file, as far as its bytes go: while all of it stays the same, no one
/// wrote the file (see the module docs for when a record of it is trusted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    dev: u64,
    ino: u64,
    mode: u32,
    size: u64,
    mtime: Time,
    ctime: Time,
}

impl Stat {
    fn of(m: &fs::Metadata) -> Stat {
        Stat { dev: m.dev(), ino: m.ino(), mode: m.mode(), size: m.size(), mtime: (m.mtime(), m.mtime_nsec()), ctime: (m.ctime(), m.ctime_nsec()) }
    }

    fn of_rustix(s: &rustix::fs::Stat) -> Stat {
        Stat {
            dev: s.st_dev,
            ino: s.st_ino,
            mode: s.st_mode,
            size: s.st_size as u64,
            mtime: (s.st_mtime, s.st_mtime_nsec as i64),
            ctime: (s.st_ctime, s.st_ctime_nsec as i64),
        }
    }

    fn is_file(&self) -> bool {
        self.mode & 0o170000 == 0o100000
    }
}

/// A file's stat when its bytes had this SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    stat: Stat,
    sha: [u8; 32],
}

/// The kinds of files the index has records of, each named its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// The rulecast binary, by its path.
    Exe,
    /// A rule file, by its path as the build names it.
    Rule,
    /// An output file, by its path in the output folder.
    Out,
}

const KINDS: [(Kind, &str); 3] = [(Kind::Exe, "exe"), (Kind::Rule, "rule"), (Kind::Out, "out")];

/// The records of the index, per kind: (name, (record, whether this build used it)), sorted
/// by name (a sorted list: no hash table on top of the 134,000 records of 30,000 rules).
#[derive(Default)]
struct Index([Vec<(String, (Record, AtomicBool))>; 3]);

impl Index {
    fn of(&self, kind: Kind) -> &[(String, (Record, AtomicBool))] {
        &self.0[kind as usize]
    }

    fn get(&self, kind: Kind, name: &str) -> Option<&(Record, AtomicBool)> {
        let records = self.of(kind);
        records.binary_search_by(|(n, _)| n.as_str().cmp(name)).ok().map(|i| &records[i].1)
    }

    fn len(&self) -> usize {
        self.0.iter().map(Vec::len).sum()
    }
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

/// A rule the cache answered for: what [`rulecast::add_pairs`] needs, and the id check. The
/// texts of its files are not kept (they are empty): the files are in the output folder with
/// the recorded bytes, and the staged write keeps them from there ([`super::write::Stage::keep`]).
pub struct Hit {
    pub id: String,
    pub id_span: Option<Span>,
    pub pairs: Vec<Pair>,
    /// With a lock: the rule's fingerprint.
    pub fingerprint: Option<Fingerprint>,
}

/// The SHA-256 of everything `f` yields (read in pieces: a large file is not held in memory).
fn digest_of(mut f: impl Read) -> Option<[u8; 32]> {
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

/// Everything a file holds (read until it ends; no `stat` for its size).
fn read_all(f: &impl std::os::fd::AsFd) -> Option<Vec<u8>> {
    let mut bytes = vec![0u8; 8192];
    let mut len = 0;
    loop {
        if len == bytes.len() {
            bytes.resize(len * 2, 0);
        }
        match rustix::io::read(f, &mut bytes[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return None,
        }
    }
    bytes.truncate(len);
    Some(bytes)
}

/// A cache file's first line: this, a space, the SHA-256 of the rest (the JSON), a newline.
const HEADER: &str = "rulecast build cache";

/// The index's first line: this, a space, the format. Its last: `sha256 `, the SHA-256 of
/// everything before it.
const INDEX_HEADER: &str = "rulecast build index";

/// The JSON of a cache file whose first line vouches for it; `None` for anything else (a file
/// cut short, or changed since it was written).
fn checked(file: &[u8]) -> Option<&[u8]> {
    let nl = file.iter().position(|&b| b == b'\n')?;
    let (first, body) = (std::str::from_utf8(&file[..nl]).ok()?, &file[nl + 1..]);
    let sum = first.strip_prefix(HEADER)?.strip_prefix(' ')?;
    (sum == hex(&Sha256::digest(body))).then_some(body)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// The 32 bytes a 64-digit lower-case hex string spells.
fn unhex(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = digit(b[2 * i])? << 4 | digit(b[2 * i + 1])?;
    }
    Some(out)
}

/// The index's records, if its last line vouches for the rest. Read line by line (at 30,000
/// rules the index is about 25 MB: it is not held whole).
fn read_index(mut r: impl std::io::BufRead) -> Option<Index> {
    let mut h = Sha256::new();
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    if line != format!("{INDEX_HEADER} {FORMAT}\n") {
        return None;
    }
    h.update(line.as_bytes());
    let mut index = Index::default();
    loop {
        line.clear();
        if r.read_line(&mut line).ok()? == 0 {
            return None; // cut short: no last line
        }
        if let Some(sum) = line.strip_prefix("sha256 ") {
            let ok = unhex(sum.strip_suffix('\n')?)? == <[u8; 32]>::from(h.finalize());
            // nothing after the last line
            if !ok || r.read_line(&mut line).ok()? != 0 {
                return None;
            }
            for records in index.0.iter_mut() {
                records.sort_by(|a, b| a.0.cmp(&b.0));
                records.dedup_by(|a, b| a.0 == b.0);
            }
            return Some(index);
        }
        h.update(line.as_bytes());
        // <kind> <sha> <dev> <ino> <mode> <size> <mtime s> <mtime ns> <ctime s> <ctime ns> <name>
        let mut f = line.strip_suffix('\n')?.splitn(11, ' ');
        let kind = f.next()?;
        let kind = KINDS.iter().find(|(_, w)| *w == kind)?.0;
        let sha = unhex(f.next()?)?;
        let mut n = || f.next()?.parse::<i64>().ok();
        let (dev, ino, mode, size) = (n()? as u64, n()? as u64, n()? as u32, n()? as u64);
        let (mtime, ctime) = ((n()?, n()?), (n()?, n()?));
        let name = f.next()?;
        index.0[kind as usize].push((name.to_string(), (Record { stat: Stat { dev, ino, mode, size, mtime, ctime }, sha }, AtomicBool::new(false))));
    }
}

/// Write the index of these records: a first line, one line per record, and a last line with
/// the SHA-256 of everything before it (written as it goes: the text is not held whole).
fn write_index(w: &mut impl std::io::Write, records: &[(Kind, &str, &Record)]) -> std::io::Result<()> {
    use std::fmt::Write;
    let mut h = Sha256::new();
    let mut line = format!("{INDEX_HEADER} {FORMAT}\n");
    h.update(line.as_bytes());
    w.write_all(line.as_bytes())?;
    for &(kind, name, Record { stat: s, sha }) in records {
        let kind = KINDS.iter().find(|(k, _)| *k == kind).map_or("", |(_, w)| w);
        line.clear();
        let _ = writeln!(
            line,
            "{kind} {} {} {} {} {} {} {} {} {} {name}",
            hex(sha),
            s.dev as i64,
            s.ino as i64,
            s.mode,
            s.size as i64,
            s.mtime.0,
            s.mtime.1,
            s.ctime.0,
            s.ctime.1
        );
        h.update(line.as_bytes());
        w.write_all(line.as_bytes())?;
    }
    w.write_all(format!("sha256 {}\n", hex(&h.finalize())).as_bytes())
}

/// The file system's time now, on the file system of the folder `dir`, with its device: the
/// time stamps of a file made there (`O_TMPFILE`: the file has no name and is gone when it is
/// closed; nothing in `dir` changes). `None` where that cannot be done (a read-only folder, a
/// file system without `O_TMPFILE`): files there are then always read.
fn fs_now(dir: &Path) -> Option<(u64, Time)> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(dir, OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC, Mode::from_raw_mode(0o600)).ok()?;
    let s = Stat::of_rustix(&rustix::fs::fstat(&fd).ok()?);
    Some((s.dev, s.ctime.min(s.mtime)))
}

/// See [`Cache::recordable`].
fn recordable(began: &HashMap<u64, Time>, s: &Stat) -> bool {
    s.is_file() && began.get(&s.dev).is_some_and(|&t| s.mtime < t && s.ctime < t)
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
    /// The cache of `out` for a build of the rules at `rules` with these options and lock (as
    /// JSON, if any). `None` when the binary cannot be read or the folder cannot be made (no
    /// cache: every rule is compiled).
    pub fn open(out: &Path, rules: &Path, policy: Unsupported, read: rulecast::load::files::ReadPolicy, lock: Option<&str>) -> Option<Cache> {
        let dir = cache_dir(out)?;
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return None,
            Err(_) => fs::create_dir(&dir).ok()?,
        }
        let dir_fd = fs::File::open(&dir).ok()?;
        let index = fs::File::open(dir.join(INDEX)).ok().and_then(|f| read_index(std::io::BufReader::with_capacity(1 << 16, f))).unwrap_or_default();
        // the time this build begins, on each file system it reads files of (before it reads any)
        let exe = std::env::current_exe().ok()?;
        let mut began = HashMap::new();
        let rules_dir = if rules.is_dir() { rules.to_path_buf() } else { rules.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf() };
        for d in [Some(dir.as_path()), Some(rules_dir.as_path()), exe.parent()].into_iter().flatten() {
            if fs::metadata(d).is_ok_and(|m| !began.contains_key(&m.dev())) {
                if let Some((dev, now)) = fs_now(d) {
                    began.entry(dev).or_insert(now);
                }
            }
        }
        let folders = Target::iter()
            .filter_map(|t| {
                let name = rulecast::targets::folder(t);
                let d = fs::File::open(out.join(name)).ok()?;
                d.metadata().ok()?.is_dir().then_some((name, d))
            })
            .collect();
        let mut c = Cache {
            global: [0; 32],
            dir,
            dir_fd,
            locked: lock.is_some(),
            follow_symlinks: read.follow_symlinks,
            used: HashSet::new(),
            index,
            seen: Mutex::new(vec![]),
            began,
            folders,
        };
        // the running binary (its file, even if a newer one took its name since)
        let exe_name = exe.display().to_string();
        let binary = fs::File::open("/proc/self/exe").or_else(|_| fs::File::open(&exe)).ok()?;
        let stat = Stat::of(&binary.metadata().ok()?);
        let exe_sha = match c.known(Kind::Exe, &exe_name, &stat) {
            Some(sha) => sha,
            None => {
                let sha = digest_of(&binary)?;
                c.verified(Kind::Exe, &exe_name, stat, sha);
                sha
            }
        };
        let mut h = Sha256::new();
        h.update(format!("rulecast build cache {FORMAT}\0").as_bytes());
        h.update(exe_sha);
        h.update(format!("{policy:?}\0{}\0{}\0", read.follow_symlinks, read.max_bytes).as_bytes());
        match lock {
            Some(l) => {
                h.update(b"lock\0");
                h.update(Sha256::digest(l.as_bytes()));
            }
            None => h.update(b"no lock\0"),
        }
        c.global = h.finalize().into();
        Some(c)
    }

    /// Can a file with this stat be trusted by it from now on? Only a regular file that nothing
    /// changed since this build began: its modification and change times are older than the
    /// time its file system gave a file made when the build began. A write after the stat was
    /// taken gives the file a change time (which no one can set) at least that late, so the
    /// next build's stat differs; a file written in the same time-stamp tick as the build
    /// began, or later, is read again by the next build instead (as git treats "racily clean"
    /// files).
    fn recordable(&self, s: &Stat) -> bool {
        recordable(&self.began, s)
    }

    /// The recorded SHA-256 of the bytes of the file `name` if the index has a record of it
    /// with this stat (the record then goes into the next index).
    fn known(&self, kind: Kind, name: &str, stat: &Stat) -> Option<[u8; 32]> {
        let (r, used) = self.index.get(kind, name)?;
        if r.stat != *stat {
            return None;
        }
        used.store(true, Ordering::Relaxed);
        Some(r.sha)
    }

    /// Note that the file `name` had `stat` when it was read and found to have these bytes
    /// (the stat taken before its bytes were read): it goes into the next index if the stat
    /// can be trusted.
    fn verified(&self, kind: Kind, name: &str, stat: Stat, sha: [u8; 32]) {
        if self.recordable(&stat) {
            self.seen.lock().expect("not poisoned").push((kind, name.to_string(), Record { stat, sha }));
        }
    }

    /// A rule file's key: its name and the SHA-256 of its bytes, with everything else it
    /// depends on.
    fn key_of(&self, file: &str, sha: &[u8; 32]) -> String {
        let mut h = Sha256::new();
        h.update(self.global);
        h.update((file.len() as u64).to_le_bytes());
        h.update(file.as_bytes());
        h.update(sha);
        hex(&h.finalize())
    }

    /// The stat of the rule file `f` as it is read (through a link with `--follow-symlinks`).
    fn rule_stat(&self, f: &Path) -> Option<Stat> {
        let m = if self.follow_symlinks { fs::metadata(f) } else { fs::symlink_metadata(f) };
        m.ok().map(|m| Stat::of(&m))
    }

    /// A rule file's key without reading it, when the index has a record of it (named `file`)
    /// and its stat is still the recorded one. The caller walked the rules under the read
    /// policy: the file passed its checks (the record is of a regular file within the limit,
    /// read as UTF-8 text).
    pub fn known_key(&self, f: &Path, file: &str) -> Option<String> {
        self.index.get(Kind::Rule, file)?;
        let sha = self.known(Kind::Rule, file, &self.rule_stat(f)?)?;
        Some(self.key_of(file, &sha))
    }

    /// Read a rule file (named `file`) under the read policy: its key and text. Its stat,
    /// taken before it is read, goes into the next index.
    pub fn read_rule(&self, f: &Path, file: &str, read: rulecast::load::files::ReadPolicy) -> Result<(String, String), Diagnostic> {
        let before = self.rule_stat(f);
        let text = rulecast::load::files::read_text(f, read)?;
        let sha: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        if let Some(stat) = before {
            self.verified(Kind::Rule, file, stat, sha);
        }
        Ok((self.key_of(file, &sha), text))
    }

    /// Is the output file `path` (`<target folder>/<file>`) in the output folder with these
    /// bytes? Known from the index when its stat is the recorded one; else read and hashed
    /// (and its stat, taken before, goes into the next index).
    fn output_is(&self, dir: &'static str, name: &str, path: &str, sha: &[u8; 32]) -> bool {
        use rustix::fs::{AtFlags, Mode, OFlags};
        let Some(folder) = self.folders.get(dir) else { return false };
        let Ok(stat) = rustix::fs::statat(folder, name, AtFlags::SYMLINK_NOFOLLOW).map(|s| Stat::of_rustix(&s)) else { return false };
        if self.index.get(Kind::Out, path).is_some_and(|(r, _)| r.sha == *sha) && self.known(Kind::Out, path, &stat).is_some() {
            return true;
        }
        let Ok(fd) = rustix::fs::openat(folder, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) else { return false };
        let file = fs::File::from(fd);
        let Ok(opened) = file.metadata().map(|m| Stat::of(&m)) else { return false };
        if digest_of(&file).as_ref() != Some(sha) {
            return false;
        }
        // (the file opened is the one whose stat was taken: not a link, not replaced since)
        if opened == stat {
            self.verified(Kind::Out, path, stat, *sha);
        }
        true
    }

    /// What the cache says `targets` made of the rule with this key, if it says so for every
    /// one of them and every file it names is still in the output with the recorded bytes.
    pub fn hit(&self, key: &str, targets: &[Target]) -> Option<Hit> {
        let file = {
            use rustix::fs::{Mode, OFlags};
            let f = rustix::fs::openat(&self.dir_fd, format!("{key}.json"), OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
            read_all(&f)?
        };
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
                        let folder = rulecast::targets::folder(t);
                        if dir != folder || name.is_empty() || name.contains('/') || name.contains('\\') || name.starts_with('.') {
                            return None;
                        }
                        if !self.output_is(folder, name, path, &unhex(sum)?) {
                            return None;
                        }
                        made.push((path.clone(), String::new()));
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

    /// At the end of a build that writes its output: remove the files of the keys this build
    /// did not use (rules changed or gone, other options, an older binary), and write the
    /// index of the files this build verified, if it is not the one there already.
    pub fn finish(self) {
        let mut unused = vec![];
        let listed = super::write::each_name(&self.dir, |name| {
            let keep = std::str::from_utf8(name).is_ok_and(|n| n == INDEX || n.strip_suffix(".json").is_some_and(|k| self.used.contains(k)));
            if !keep {
                unused.push(std::ffi::OsStr::from_bytes(name).to_os_string());
            }
        });
        if listed.is_err() {
            return;
        }
        for name in unused {
            let _ = fs::remove_file(self.dir.join(name));
        }
        // the next index: the records this build used and those it made; written when that is
        // not the index there already
        let seen = self.seen.into_inner().expect("not poisoned");
        let mut records: Vec<(Kind, &str, &Record)> = seen.iter().map(|(k, n, r)| (*k, n.as_str(), r)).collect();
        let mut kept = 0;
        for (kind, _) in KINDS {
            for (name, (r, used)) in self.index.of(kind) {
                if used.load(Ordering::Relaxed) {
                    records.push((kind, name, r));
                    kept += 1;
                }
            }
        }
        if !seen.is_empty() || kept != self.index.len() {
            // a name holds no line break (the index has one record a line); a file verified
            // twice (two rules naming one output) is recorded once
            records.retain(|(_, name, _)| !name.contains('\n'));
            records.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
            records.dedup_by(|a, b| (a.0, a.1) == (b.0, b.1));
            // written whole beside the old one, then renamed over it
            let tmp = self.dir.join(format!("{INDEX}.tmp"));
            let written = fs::File::create(&tmp).and_then(|f| {
                let mut w = std::io::BufWriter::with_capacity(1 << 16, f);
                write_index(&mut w, &records)?;
                w.into_inner().map_err(std::io::IntoInnerError::into_error).map(drop)
            });
            if written.is_ok() {
                let _ = fs::rename(&tmp, self.dir.join(INDEX));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(dev: u64, mode: u32, mtime: Time, ctime: Time) -> Stat {
        Stat { dev, ino: 7, mode, size: 10, mtime, ctime }
    }

    #[test]
    fn only_files_older_than_the_build_on_their_file_system_are_recorded() {
        let began: HashMap<u64, Time> = [(1, (100, 500))].into_iter().collect();
        let file = 0o100644;
        assert!(recordable(&began, &stat(1, file, (100, 499), (100, 499))));
        assert!(recordable(&began, &stat(1, file, (99, 999_999_999), (100, 0))));
        // changed in the tick the build began, or later (also: a modification time set ahead)
        assert!(!recordable(&began, &stat(1, file, (100, 499), (100, 500))));
        assert!(!recordable(&began, &stat(1, file, (100, 500), (100, 499))));
        assert!(!recordable(&began, &stat(1, file, (100, 499), (101, 0))));
        assert!(!recordable(&began, &stat(1, file, (200, 0), (100, 0))));
        // a file system without a time of its own for the build; not a regular file
        assert!(!recordable(&began, &stat(2, file, (1, 0), (1, 0))));
        assert!(!recordable(&began, &stat(1, 0o120777, (1, 0), (1, 0))));
        assert!(!recordable(&began, &stat(1, 0o040755, (1, 0), (1, 0))));
    }

    #[test]
    fn the_index_reads_back_what_was_written_and_nothing_damaged() {
        let r = |n: u8| Record { stat: stat(n as u64, 0o100644, (n as i64, 1), (n as i64, 2)), sha: [n; 32] };
        let (a, b, c) = (r(1), r(2), r(3));
        let records = vec![(Kind::Exe, "/bin/rulecast", &a), (Kind::Rule, "rules/a b.yaml", &b), (Kind::Out, "folder/a.yaml", &c)];
        let mut text = vec![];
        write_index(&mut text, &records).expect("written");
        let index = read_index(&text[..]).expect("reads back");
        assert_eq!(index.len(), 3);
        assert_eq!(index.get(Kind::Exe, "/bin/rulecast").expect("a record").0, a);
        assert_eq!(index.get(Kind::Rule, "rules/a b.yaml").expect("a record").0, b);
        assert_eq!(index.get(Kind::Out, "folder/a.yaml").expect("a record").0, c);
        assert!(index.get(Kind::Out, "rules/a b.yaml").is_none());
        for at in [0, text.len() / 2, text.len() - 2] {
            let mut bad = text.clone();
            bad[at] ^= 1;
            assert!(read_index(&bad[..]).is_none(), "a changed byte at {at}");
        }
        assert!(read_index(&text[..text.len() - 1]).is_none());
        assert!(read_index(&b""[..]).is_none());
        let mut longer = text.clone();
        longer.extend_from_slice(b"out 00 1 1 1 1 1 1 1 1 x\n");
        assert!(read_index(&longer[..]).is_none(), "a line after the last");
        let cut = text.len() - 72;
        assert!(read_index(&text[..cut]).is_none(), "without its last line");
    }
}
