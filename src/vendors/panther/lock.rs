//! Panther in the version lock: the hash of the rule YAML parsed and the Python module without
//! comments (panther-analysis' `.versions.yml` keeps a SHA-256 of both files and an integer
//! version per RuleID), and the integer version (a Panther rule file has no field for it, so it
//! lives in the lock and the pack's release notes).

use crate::lock::{canonical_json, history};

/// Panther's entry: the hash of the YAML and the Python module, and the version integer.
pub type Entry = crate::lock::Versioned<u32>;

/// What the hash covers: the YAML parsed and the Python without comments. A correlation rule
/// (several YAML files: the correlation rule and its signal rules) covers every file, in order.
pub fn meaning_text(files: &[(String, String)]) -> Result<String, String> {
    let yaml = |path: &str, text: &str| -> Result<String, String> {
        let v: serde_json::Value = serde_saphyr::from_str(text).map_err(|e| format!("{path}: {e}"))?;
        Ok(canonical_json(&v))
    };
    if files.iter().filter(|(p, _)| p.ends_with(".yml")).count() > 1 {
        let parts = files
            .iter()
            .map(|(p, t)| if p.ends_with(".py") { Ok(python_without_comments(t)) } else { yaml(p, t) })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(parts.join("\n"));
    }
    let (path, yml) = files.iter().find(|(p, _)| p.ends_with(".yml")).ok_or("no Panther YAML")?;
    let py = files.iter().find(|(p, _)| p.ends_with(".py")).map(|(_, t)| python_without_comments(t)).unwrap_or_default();
    Ok(format!("{}\n{py}", yaml(path, yml)?))
}

/// The next entry for the files hashed `h`.
pub fn next(locked: Option<&Entry>, h: &str) -> Entry {
    match locked {
        None => Entry { sha256: h.to_string(), version: 1, previous: vec![] },
        Some(l) if l.sha256 == h => l.clone(),
        Some(l) => Entry { sha256: h.to_string(), version: l.version + 1, previous: history(Some((&l.sha256, &l.previous)), h) },
    }
}

/// Python source without its comments and blank lines. The lexer (which drops comments) finds
/// every token; a comment is what starts with `#` in the text between two tokens, so a `#`
/// inside a string stays.
pub fn python_without_comments(src: &str) -> String {
    use rustpython_parser::{Mode, lexer::lex};
    let mut tokens: Vec<(usize, usize)> =
        lex(src, Mode::Module).filter_map(|t| t.ok()).map(|(_, r)| (usize::from(r.start()), usize::from(r.end()))).collect();
    tokens.sort();
    let mut out = String::new();
    let mut pos = 0;
    let gap = |text: &str, out: &mut String| {
        let mut in_comment = false;
        for c in text.chars() {
            match c {
                '#' => in_comment = true,
                '\n' => {
                    in_comment = false;
                    out.push(c);
                }
                _ if !in_comment => out.push(c),
                _ => {}
            }
        }
    };
    for (a, b) in tokens {
        if a < pos || b > src.len() {
            continue;
        }
        gap(&src[pos..a], &mut out);
        out.push_str(&src[a..b]);
        pos = b;
    }
    gap(&src[pos..], &mut out);
    out.lines().map(str::trim_end).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_not_hashed_but_hashes_in_strings_are() {
        let a = "# note: x\ndef rule(event):\n    return event.get('a') == '#b'  # trailing\n";
        let b = "def rule(event):\n    return event.get('a') == '#b'\n";
        assert_eq!(python_without_comments(a), python_without_comments(b));
        assert!(python_without_comments(a).contains("'#b'"));
    }
}
