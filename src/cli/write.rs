//! Writing an output folder as one step.
//!
//! `rulecast build` (and every command that writes a folder of generated files) replaces the
//! parts of `OUT` it owns (`OUT/<target>/`) and keeps everything else in `OUT`, so that all of
//! them change at once or none does:
//!
//! 1. an exclusive lock on `.<OUT>.rulecast.lock` beside `OUT` (a second build waits);
//! 2. staging folders that an interrupted build left beside `OUT` are removed, and an `OUT` that
//!    an interrupted swap left missing is put back;
//! 3. a new tree is staged beside `OUT`: every entry of `OUT` that the build does not own is
//!    hard-linked into it, and every generated file is written — or hard-linked from `OUT`
//!    when its bytes did not change, so unchanged files keep their inode and modification time
//!    (files the build cache found in `OUT` with their bytes are kept so without being read;
//!    while no file changed, unchanged ones are only noted: when none changes and `OUT` holds
//!    no other file in the owned folders or in folders of their own, such as Panther's
//!    `global_helpers/`, step 4 is skipped and `OUT` is left as it is);
//! 4. the staged tree and `OUT` are exchanged by one `renameat2(RENAME_EXCHANGE)` (where the
//!    file system cannot exchange, by two renames that step 2 repairs if interrupted), and the
//!    old tree is removed.
//!
//! A build killed at any point leaves either the old `OUT` or the new one, never a mix.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// What a write changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Files whose bytes are new or changed.
    pub changed: usize,
    /// Files kept as they were (hard-linked from the previous output).
    pub unchanged: usize,
}

/// Replace the folders `owned` (relative names) of `out` with `files` (relative path → text;
/// every path starts with one of the owned folder names), atomically.
pub fn replace(out: &Path, owned: &[&str], files: &BTreeMap<String, String>) -> Result<Written> {
    let mut stage = Stage::begin(out, owned)?;
    let entries: Vec<(&String, &String)> = files.iter().collect();
    stage.put(&entries)?;
    stage.commit()
}

/// A replacement of `out`'s owned folders in progress: files are added to the staged tree as
/// they are made ([`Stage::put`]), and [`Stage::commit`] swaps it in. Dropped without a commit,
/// the staged tree is removed and `out` stays as it was.
pub struct Stage {
    out: PathBuf,
    owned: Vec<String>,
    stage: tempfile::TempDir,
    written: Written,
    /// Files whose bytes are those of `out`, not yet linked into the staged tree: while no file
    /// changed, none is (a build that changes nothing leaves `out` as it is, see `commit`).
    pending: Vec<String>,
    // held until the swap is done
    _lock: fs::File,
}

impl Stage {
    /// Steps 1–3 of the module docs, without the generated files: the lock, the repair of an
    /// interrupted write, and the staged tree with everything of `out` the build does not own.
    pub fn begin(out: &Path, owned: &[&str]) -> Result<Stage> {
        let name = out.file_name().and_then(|n| n.to_str()).filter(|n| !n.is_empty() && *n != "." && *n != "..");
        let Some(name) = name else { bail!("the output folder `{}` must be named (not `.`, `..` or `/`)", out.display()) };
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).with_context(|| format!("cannot create `{}`", parent.display()))?;
        if let Ok(m) = fs::symlink_metadata(out) {
            if !m.is_dir() {
                bail!("the output `{}` exists and is not a folder; rulecast will not replace it", out.display());
            }
        }
        // 1. the lock
        let lock_path = parent.join(format!(".{name}.rulecast.lock"));
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot create the lock file `{}`", lock_path.display()))?;
        if rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
            eprintln!("waiting for another rulecast writing `{}` ...", out.display());
            rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).with_context(|| format!("cannot lock `{}`", lock_path.display()))?;
        }
        // 2. what an interrupted write left
        recover(&parent, name, out)?;
        // 3. the staged tree
        let stage = tempfile::Builder::new()
            .prefix(&format!(".{name}.rulecast-stage-"))
            .tempdir_in(&parent)
            .with_context(|| format!("cannot create a staging folder in `{}`", parent.display()))?;
        if out.is_dir() {
            for entry in fs::read_dir(out).with_context(|| format!("cannot read `{}`", out.display()))? {
                let entry = entry?;
                let n = entry.file_name();
                if owned.iter().any(|o| n.to_str() == Some(o)) {
                    continue;
                }
                link_tree(&entry.path(), &stage.path().join(&n))?;
            }
        }
        for o in owned {
            fs::create_dir_all(stage.path().join(o))?;
        }
        Ok(Stage { out: out.to_path_buf(), owned: owned.iter().map(|o| o.to_string()).collect(), stage, written: Written::default(), pending: vec![], _lock: lock })
    }

    /// Add generated files (relative path → text) to the staged tree: each is written, or
    /// hard-linked from `out` when its bytes did not change (so unchanged files keep their inode
    /// and modification time). Paths were validated as plain stems; anything else is refused.
    pub fn put(&mut self, files: &[(&String, &String)]) -> Result<()> {
        self.check_paths(files.iter().map(|(path, _)| *path))?;
        // the files are compared and written in parallel (the kernel's work, mostly); the first
        // error in path order is reported
        let (stage, out) = (self.stage.path(), &self.out);
        let linking = self.written.changed > 0;
        // Some(true): written; Some(false): linked; None: the same bytes, left pending
        let results = rulecast::par::map(files, |&(path, text)| -> Result<Option<bool>> {
            let dest = stage.join(path);
            let old = out.join(path);
            let same = fs::symlink_metadata(&old).is_ok_and(|m| m.is_file() && m.len() == text.len() as u64)
                && fs::read(&old).is_ok_and(|b| b == text.as_bytes());
            if same && !linking {
                return Ok(None);
            }
            if same && fs::hard_link(&old, &dest).is_ok() {
                return Ok(Some(false));
            }
            fs::write(&dest, text).with_context(|| format!("cannot write `{path}`"))?;
            Ok(Some(true))
        });
        let mut changed = false;
        for (&(path, _), r) in files.iter().zip(results) {
            match r? {
                Some(true) => {
                    self.written.changed += 1;
                    changed = true;
                }
                Some(false) => self.written.unchanged += 1,
                None => {
                    // (the text is not kept: a pending file is linked, or copied, from `out`,
                    // which no other rulecast changes while the lock is held)
                    self.written.unchanged += 1;
                    self.pending.push(path.clone());
                }
            }
        }
        if changed {
            self.link_pending()?;
        }
        Ok(())
    }

    /// Add files that are in `out` with the bytes the build made (the build cache found them
    /// there, under this stage's lock): they are kept from `out` as unchanged files are —
    /// noted while no file changed, else hard-linked (or copied) into the staged tree.
    pub fn keep(&mut self, paths: &[&String]) -> Result<()> {
        self.check_paths(paths.iter().copied())?;
        self.written.unchanged += paths.len();
        self.pending.extend(paths.iter().map(|p| (*p).clone()));
        if self.written.changed > 0 {
            self.link_pending()?;
        }
        Ok(())
    }

    /// Refuse paths outside the owned folders; make the folders of a target's shared files.
    fn check_paths<'a>(&self, paths: impl Iterator<Item = &'a String>) -> Result<()> {
        for path in paths {
            let Some((dir, file)) = path.split_once('/') else { bail!("refusing to write `{path}`: not inside a target folder") };
            if !self.owned.iter().any(|o| o == dir) {
                bail!("refusing to write `{path}`: not in a folder this command owns");
            }
            // a target's shared files (Panther's global helper module) have fixed paths of
            // their own; every other file is a plain file name
            if shared_path(path) {
                if let Some(sub) = Path::new(path.as_str()).parent() {
                    fs::create_dir_all(self.stage.path().join(sub))?;
                }
            } else if file.is_empty() || file.contains('/') || file.contains('\\') || file.starts_with('.') {
                bail!("refusing to write `{path}`: not a plain file name in a folder this command owns");
            }
        }
        Ok(())
    }

    /// Link the pending files into the staged tree (a file changed: the tree is swapped in).
    fn link_pending(&mut self) -> Result<()> {
        let (stage, out) = (self.stage.path(), &self.out);
        let pending = std::mem::take(&mut self.pending);
        let results = rulecast::par::map(&pending, |path| -> Result<()> {
            let (old, dest) = (out.join(path), stage.join(path));
            if fs::hard_link(&old, &dest).is_err() {
                fs::copy(&old, &dest).with_context(|| format!("cannot keep `{path}`"))?;
            }
            Ok(())
        });
        results.into_iter().collect()
    }

    /// Does `out` hold exactly the pending files in its owned folders, and did nothing change?
    /// Then swapping in the staged tree would change nothing. Every folder on the way to a
    /// pending file (the owned folders, and the folders of a target's shared files, such as
    /// Panther's `global_helpers/`) must be a folder holding exactly the pending files and
    /// folders below it: the pending files are there with their bytes (they were compared),
    /// so equal counts mean nothing else is.
    fn unchanged(&self) -> bool {
        if self.written.changed > 0 {
            return false;
        }
        let mut children: BTreeMap<String, std::collections::BTreeSet<&str>> = self.owned.iter().map(|o| (o.clone(), Default::default())).collect();
        for p in &self.pending {
            let mut dir = 0;
            while let Some(i) = p[dir..].find('/') {
                let (parent, rest) = (&p[..dir + i], &p[dir + i + 1..]);
                let child = rest.split('/').next().unwrap_or(rest);
                children.entry(parent.to_string()).or_default().insert(child);
                dir += i + 1;
            }
        }
        children.iter().all(|(dir, names)| {
            let d = self.out.join(dir);
            let mut count = 0;
            fs::symlink_metadata(&d).is_ok_and(|m| m.is_dir()) && each_name(&d, |_| count += 1).is_ok() && count == names.len()
        })
    }

    /// Step 4: swap the staged tree in, remove the old one, release the lock. When every file
    /// has the bytes it has in `out` and `out` holds no other file in the owned folders, there
    /// is nothing to swap: `out` is left as it is (the staged tree is dropped).
    pub fn commit(mut self) -> Result<Written> {
        if self.unchanged() {
            return Ok(self.written);
        }
        self.link_pending()?;
        let Stage { out, stage, written, _lock, .. } = self;
        let out = out.as_path();
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = out.file_name().and_then(|n| n.to_str()).unwrap_or("out");
        let staged = stage.keep();
        if !out.exists() {
            fs::rename(&staged, out).with_context(|| format!("cannot move the new output into `{}`", out.display()))?;
        } else {
            match rustix::fs::renameat_with(rustix::fs::CWD, &staged, rustix::fs::CWD, out, rustix::fs::RenameFlags::EXCHANGE) {
                Ok(()) => {}
                Err(_) => {
                    // no exchange on this file system: two renames, which `recover` repairs
                    let old = parent.join(format!(".{name}.rulecast-old-{}", std::process::id()));
                    fs::rename(out, &old).with_context(|| format!("cannot move `{}` aside", out.display()))?;
                    fs::rename(&staged, out).with_context(|| format!("cannot move the new output into `{}`", out.display()))?;
                    fs::rename(&old, &staged)?;
                }
            }
            fs::remove_dir_all(&staged).with_context(|| format!("cannot remove the previous output (now at `{}`)", staged.display()))?;
        }
        drop(_lock);
        Ok(written)
    }
}

/// The names in the folder `dir` (without `.` and `..`), each given to `f` (read in large
/// pieces, nothing kept).
pub fn each_name(dir: &Path, mut f: impl FnMut(&[u8])) -> std::io::Result<()> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
    let mut buf = Vec::with_capacity(1 << 16);
    let mut entries = rustix::fs::RawDir::new(&fd, buf.spare_capacity_mut());
    while let Some(e) = entries.next() {
        let e = e?;
        let name = e.file_name().to_bytes();
        if name != b"." && name != b".." {
            f(name);
        }
    }
    Ok(())
}

/// Is `path` one of the fixed paths of a target's shared files?
fn shared_path(path: &str) -> bool {
    use strum::IntoEnumIterator;
    rulecast::Target::iter().any(|t| rulecast::vendors::backend(t).shared_files().iter().any(|(p, _)| *p == path))
}

/// Remove staging folders an interrupted write left beside `out`; put back an `out` that an
/// interrupted two-rename swap left missing. The caller holds the lock.
fn recover(parent: &Path, name: &str, out: &Path) -> Result<()> {
    let stage_prefix = format!(".{name}.rulecast-stage-");
    let old_prefix = format!(".{name}.rulecast-old-");
    let mut olds = vec![];
    for entry in fs::read_dir(parent).with_context(|| format!("cannot read `{}`", parent.display()))? {
        let entry = entry?;
        let Some(n) = entry.file_name().to_str().map(str::to_string) else { continue };
        if n.starts_with(&stage_prefix) {
            fs::remove_dir_all(entry.path()).with_context(|| format!("cannot remove the stale staging folder `{}`", entry.path().display()))?;
        } else if n.starts_with(&old_prefix) {
            olds.push(entry.path());
        }
    }
    for old in olds {
        if !out.exists() {
            fs::rename(&old, out).with_context(|| format!("cannot put back `{}`", out.display()))?;
        } else {
            fs::remove_dir_all(&old)?;
        }
    }
    // staging folders of rulecast versions that staged inside `out`
    if out.is_dir() {
        for entry in fs::read_dir(out)? {
            let entry = entry?;
            if entry.file_name().to_str().is_some_and(|n| n.starts_with(".rulecast-")) && entry.path().is_dir() {
                fs::remove_dir_all(entry.path())?;
            }
        }
    }
    Ok(())
}

/// Recreate `from` at `to`: folders as folders, files as hard links (copies where links are not
/// possible), symbolic links as links.
fn link_tree(from: &Path, to: &Path) -> Result<()> {
    let m = fs::symlink_metadata(from)?;
    if m.file_type().is_symlink() {
        let target = fs::read_link(from)?;
        std::os::unix::fs::symlink(target, to)?;
    } else if m.is_dir() {
        fs::create_dir(to)?;
        for entry in fs::read_dir(from)? {
            let entry = entry?;
            link_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
    } else if fs::hard_link(from, to).is_err() {
        fs::copy(from, to).with_context(|| format!("cannot keep `{}`", from.display()))?;
    }
    Ok(())
}
