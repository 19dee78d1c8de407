//! Which importer reads which file: the vendor formats, how a folder is walked, and one entry
//! point per file.
//!
//! Input: a [`Vendor`] and files or folders. Output: the files to read, and per file the
//! [`Imported`] rules (never an error: a file that cannot be read is a refused import).

use std::path::{Path, PathBuf};

use super::Imported;
use crate::diag::Diagnostic;
use crate::load::files::ReadPolicy;

pub use crate::vendors::Vendor;
use crate::vendors::importer;

/// Every file under the paths with one of the vendor's extensions (folders recursively, each
/// folder sorted; hidden entries skipped), read under the default [`ReadPolicy`]. A path that
/// cannot be read is an error.
pub fn files(vendor: Vendor, paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let (files, refused) = files_with(vendor, paths, ReadPolicy::default());
    match refused.first() {
        Some(d) => Err(d.to_string()),
        None => Ok(files),
    }
}

/// [`files`] under `policy`: the files to import, and the paths refused (links, devices, loops,
/// oversized files), each with its reason.
pub fn files_with(vendor: Vendor, paths: &[PathBuf], policy: ReadPolicy) -> (Vec<PathBuf>, Vec<Diagnostic>) {
    let mut out = vec![];
    let mut refused = vec![];
    for p in paths {
        let (f, d) = crate::load::files::walk(p, importer(vendor).extensions(), policy);
        out.extend(f);
        refused.extend(d);
    }
    (out, refused)
}

/// Import one vendor file.
pub fn import_file(vendor: Vendor, path: &Path) -> Vec<Imported> {
    import_file_with(vendor, path, ReadPolicy::default())
}

/// Import one vendor file, read under `policy` (a file that may not be read is a refused
/// import, never an error).
pub fn import_file_with(vendor: Vendor, path: &Path, policy: ReadPolicy) -> Vec<Imported> {
    let name = path.display().to_string();
    let slug = super::slug_of(&name);
    let text = match crate::load::files::read_text(path, policy) {
        Ok(t) => t,
        Err(d) => return vec![Imported::refused(&slug, d)],
    };
    importer(vendor).import(&name, &text, path, policy)
}
