//! Reading input files safely: the one place rulecast opens a rule or vendor file.
//!
//! Input: a path (a file, or a folder to walk) and a [`ReadPolicy`]. Output: the UTF-8 text of
//! regular files within the size limit, or a diagnostic that names the path and says why it was
//! not read — without quoting anything from it. Symbolic links are read only when the policy
//! allows it, and then only when they lead to regular files; folder walks detect loops. A FIFO,
//! a device (`/dev/zero`), `/proc` pseudo-files and oversized files are refused before anything
//! is read.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::diag::{Code, Diagnostic};

/// How input files are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadPolicy {
    /// Follow symbolic links (to regular files and folders only).
    pub follow_symlinks: bool,
    /// The largest file read, in bytes.
    pub max_bytes: u64,
}

/// The default size limit: 1 MiB (the largest bundled rule is 20 KiB; the largest vendor file
/// in the corpus 28 KiB).
pub const DEFAULT_MAX_BYTES: u64 = 1 << 20;

impl Default for ReadPolicy {
    fn default() -> Self {
        ReadPolicy { follow_symlinks: false, max_bytes: DEFAULT_MAX_BYTES }
    }
}

fn refuse(path: &Path, why: impl std::fmt::Display) -> Diagnostic {
    Diagnostic::error(Code::E100, format!("`{}` was not read: {why}", path.display()))
}

/// Folders whose files are the kernel's, not rules (their sizes and contents are not files').
const PSEUDO: &[&str] = &["/proc", "/sys", "/dev"];

/// What kind of file system entry this is, in words.
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// Check that `path` may be read under `policy` (without reading it): a regular file (or, with
/// `follow_symlinks`, a link to one) within the size limit.
pub fn check(path: &Path, policy: ReadPolicy) -> Result<(), Diagnostic> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| refuse(path, e))?;
    if let Some(real) = real_path(path, &meta) {
        if PSEUDO.iter().any(|p| real.starts_with(p)) {
            return Err(refuse(path, format!("it is a pseudo-file of the operating system (`{}`), not a rule file", real.display())));
        }
    }
    if meta.file_type().is_symlink() {
        if !policy.follow_symlinks {
            return Err(refuse(path, "it is a symbolic link; rulecast reads only regular files")
                .with_hint("pass --follow-symlinks to read links that lead to rule files"));
        }
        let target = std::fs::metadata(path).map_err(|e| refuse(path, format!("the link cannot be followed: {e}")))?;
        if !target.is_file() {
            return Err(refuse(path, format!("the link leads to {}, not a regular file", kind_of(&target))));
        }
        return size_ok(path, &target, policy);
    }
    if !meta.is_file() {
        return Err(refuse(path, format!("it is {}, not a regular file", kind_of(&meta))));
    }
    size_ok(path, &meta, policy)
}

/// `path`'s real path (`realpath`), or `None` where it has none. For an entry that is not a
/// symbolic link it is its folder's real path and its name; folders' real paths are memoised for
/// the process, since `realpath` reads every component of the path (a rule folder's thousands of
/// files share one folder).
fn real_path(path: &Path, meta: &std::fs::Metadata) -> Option<PathBuf> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static FOLDERS: OnceLock<Mutex<HashMap<PathBuf, Option<PathBuf>>>> = OnceLock::new();
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else { return path.canonicalize().ok() };
    if meta.file_type().is_symlink() || name == ".." || name == "." {
        return path.canonicalize().ok();
    }
    let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
    let folders = FOLDERS.get_or_init(Default::default);
    let known = folders.lock().expect("not poisoned").get(parent).cloned();
    let real = match known {
        Some(real) => real,
        None => {
            let real = parent.canonicalize().ok();
            folders.lock().expect("not poisoned").insert(parent.to_path_buf(), real.clone());
            real
        }
    };
    real.map(|r| r.join(name))
}

fn size_ok(path: &Path, meta: &std::fs::Metadata, policy: ReadPolicy) -> Result<(), Diagnostic> {
    if meta.len() > policy.max_bytes {
        return Err(refuse(path, format!("it is {} bytes, more than the limit of {} bytes", meta.len(), policy.max_bytes))
            .with_hint("pass --max-file-size BYTES to raise the limit"));
    }
    Ok(())
}

/// Read a file's text under `policy`. The size is checked again while reading (a file that
/// grows, or a pseudo-file that reports size 0, is cut off at the limit and refused).
pub fn read_text(path: &Path, policy: ReadPolicy) -> Result<String, Diagnostic> {
    check(path, policy)?;
    let f = std::fs::File::open(path).map_err(|e| refuse(path, e))?;
    let meta = f.metadata().map_err(|e| refuse(path, e))?;
    if !meta.is_file() {
        return Err(refuse(path, format!("it is {}, not a regular file", kind_of(&meta))));
    }
    let mut bytes = Vec::with_capacity(meta.len().min(policy.max_bytes) as usize);
    f.take(policy.max_bytes + 1).read_to_end(&mut bytes).map_err(|e| refuse(path, e))?;
    if bytes.len() as u64 > policy.max_bytes {
        return Err(refuse(path, format!("it is larger than the limit of {} bytes", policy.max_bytes))
            .with_hint("pass --max-file-size BYTES to raise the limit"));
    }
    String::from_utf8(bytes).map_err(|e| refuse(path, format!("it is not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to())))
}

/// The files under `root` whose extension is one of `exts` (folders recursively, each folder
/// sorted, hidden entries skipped), or `root` itself when it is a file. Entries that cannot be
/// read under `policy` (links without `follow_symlinks`, FIFOs, devices, link loops) are
/// reported, never followed.
pub fn walk(root: &Path, exts: &[&str], policy: ReadPolicy) -> (Vec<PathBuf>, Vec<Diagnostic>) {
    let mut files = vec![];
    let mut diags = vec![];
    let mut seen = HashSet::new();
    match std::fs::symlink_metadata(root) {
        Err(e) => diags.push(Diagnostic::error(Code::E100, format!("`{}` cannot be read: {e}", root.display()))),
        Ok(m) if m.is_dir() || (m.file_type().is_symlink() && policy.follow_symlinks && root.is_dir()) => {
            walk_dir(root, exts, policy, &mut seen, &mut files, &mut diags)
        }
        Ok(_) => match check(root, policy) {
            Ok(()) => files.push(root.to_path_buf()),
            Err(d) => diags.push(d),
        },
    }
    (files, diags)
}

fn walk_dir(dir: &Path, exts: &[&str], policy: ReadPolicy, seen: &mut HashSet<(u64, u64)>, files: &mut Vec<PathBuf>, diags: &mut Vec<Diagnostic>) {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(dir) else { return };
    if !seen.insert((meta.dev(), meta.ino())) {
        diags.push(Diagnostic::error(Code::E100, format!("`{}` was not read: the folder was already walked (a link loop)", dir.display())));
        return;
    }
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            diags.push(Diagnostic::error(Code::E100, format!("cannot read folder `{}`: {e}", dir.display())));
            return;
        }
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.')) {
            continue;
        }
        let Ok(m) = std::fs::symlink_metadata(&p) else { continue };
        let wanted = p.extension().and_then(|e| e.to_str()).is_some_and(|e| exts.contains(&e));
        if m.file_type().is_symlink() {
            if !policy.follow_symlinks {
                if wanted || p.is_dir() {
                    diags.push(
                        refuse(&p, "it is a symbolic link; rulecast reads only regular files")
                            .with_hint("pass --follow-symlinks to read links that lead to rule files"),
                    );
                }
                continue;
            }
            if p.is_dir() {
                walk_dir(&p, exts, policy, seen, files, diags);
                continue;
            }
        } else if m.is_dir() {
            walk_dir(&p, exts, policy, seen, files, diags);
            continue;
        }
        if wanted {
            match check(&p, policy) {
                Ok(()) => files.push(p),
                Err(d) => diags.push(d),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_limit_are_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::write(d.join("a.yaml"), "id: a\n").expect("write");
        std::fs::write(d.join("big.yaml"), "x".repeat(100)).expect("write");
        std::os::unix::fs::symlink("/proc/self/environ", d.join("env.yaml")).expect("link");
        std::os::unix::fs::symlink("/dev/zero", d.join("zero.yaml")).expect("link");
        std::os::unix::fs::symlink(d, d.join("loop")).expect("link");
        let small = ReadPolicy { follow_symlinks: false, max_bytes: 50 };
        let (files, diags) = walk(d, &["yaml"], small);
        assert_eq!(files, vec![d.join("a.yaml")]);
        let text: Vec<String> = diags.iter().map(|x| x.to_string()).collect();
        assert_eq!(diags.len(), 4, "{text:?}");
        assert!(text.iter().any(|t| t.contains("big.yaml") && t.contains("more than the limit of 50 bytes")), "{text:?}");
        assert!(text.iter().all(|t| !t.contains("PATH=")), "{text:?}");
        // following links: the loop is walked once, the device and pseudo-file are refused
        let follow = ReadPolicy { follow_symlinks: true, max_bytes: 50 };
        let (files, diags) = walk(d, &["yaml"], follow);
        assert_eq!(files, vec![d.join("a.yaml")]);
        let text: Vec<String> = diags.iter().map(|x| x.to_string()).collect();
        assert!(text.iter().any(|t| t.contains("zero.yaml") && t.contains("pseudo-file")), "{text:?}");
        assert!(text.iter().any(|t| t.contains("env.yaml") && t.contains("pseudo-file")), "{text:?}");
        assert!(text.iter().any(|t| t.contains("link loop")), "{text:?}");
        assert!(read_text(Path::new("/dev/zero"), follow).is_err());
        assert!(read_text(&d.join("a.yaml"), small).is_ok());
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("r.yaml");
        // mkfifo(1) keeps the crate free of libc
        let ok = std::process::Command::new("mkfifo").arg(&fifo).status().map(|s| s.success()).unwrap_or(false);
        assert!(ok, "mkfifo");
        let e = read_text(&fifo, ReadPolicy::default()).expect_err("fifo");
        assert!(e.to_string().contains("a FIFO"), "{e}");
    }
}
