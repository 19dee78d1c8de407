//! Which importer reads which file: the vendor formats, how a folder is walked, and one entry
//! point per file.
//!
//! Input: a [`Vendor`] and files or folders. Output: the files to read, and per file the
//! [`Imported`] rules (never an error: a file that cannot be read is a refused import).

use std::path::{Path, PathBuf};

use super::Imported;
use crate::diag::{Code, Diagnostic};

pub use crate::vendors::Vendor;
use crate::vendors::importer;

/// Every file under the paths with one of the vendor's extensions (folders recursively, each
/// folder sorted; hidden entries skipped). A path that is neither file nor folder is an error.
pub fn files(vendor: Vendor, paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    fn walk(dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>) -> Result<(), String> {
        let rd = std::fs::read_dir(dir).map_err(|e| format!("cannot read folder `{}`: {e}", dir.display()))?;
        let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for p in entries {
            if p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.')) {
                continue;
            }
            if p.is_dir() {
                walk(&p, exts, out)?;
            } else if p.extension().and_then(|e| e.to_str()).is_some_and(|e| exts.contains(&e)) {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = vec![];
    for p in paths {
        if p.is_dir() {
            walk(p, importer(vendor).extensions(), &mut out)?;
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(format!("`{}` is neither a file nor a folder", p.display()));
        }
    }
    Ok(out)
}

/// Import one vendor file.
pub fn import_file(vendor: Vendor, path: &Path) -> Vec<Imported> {
    let name = path.display().to_string();
    let slug = super::slug_of(&name);
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            let d = Diagnostic::error(Code::E100, format!("cannot read `{name}`: {e}"));
            return vec![Imported::refused(&slug, d)];
        }
    };
    importer(vendor).import(&name, &text, path)
}
