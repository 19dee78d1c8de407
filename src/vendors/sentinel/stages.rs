//! A Sentinel rule's KQL as `rulecast explain` shows it: the pipeline's stages and the columns
//! it outputs.

use crate::coverage::explain::{Pipeline, Stage};

/// The pipeline stages of a Kusto query: `let` statements as parameters, then one stage per run
/// of consecutive steps with the same operator.
pub fn kusto_stages(query: &str) -> Pipeline {
    let mut params = vec![];
    let mut steps: Vec<(String, String)> = vec![];
    let mut depth = 0i32;
    let mut current = String::new();
    let flush = |current: &mut String, steps: &mut Vec<(String, String)>, params: &mut Vec<String>| {
        let t = current.trim().to_string();
        current.clear();
        if t.is_empty() {
            return;
        }
        if t.starts_with("let ") {
            params.push(t);
        } else if let Some(rest) = t.strip_prefix('|') {
            let op = rest.trim_start().split(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_').next().unwrap_or("").to_string();
            steps.push((op, t));
        } else {
            steps.push(("source".into(), t));
        }
    };
    for line in query.lines() {
        let l = line.trim();
        let starts_step = depth == 0 && (l.starts_with('|') || l.starts_with("let "));
        if starts_step {
            flush(&mut current, &mut steps, &mut params);
        }
        current.push_str(line.trim_end());
        current.push('\n');
        for ch in l.chars() {
            match ch {
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => depth -= 1,
                _ => {}
            }
        }
        if depth == 0 && l.starts_with("let ") && l.ends_with(';') {
            flush(&mut current, &mut steps, &mut params);
        }
    }
    flush(&mut current, &mut steps, &mut params);
    let mut stages = vec![];
    if !params.is_empty() {
        stages.push(Stage { name: "parameters".into(), text: params.join("\n") });
    }
    let mut outputs: Vec<(String, String)> = vec![];
    let mut i = 0;
    while i < steps.len() {
        let op = steps[i].0.clone();
        let mut j = i;
        while j < steps.len() && steps[j].0 == op {
            j += 1;
        }
        let n = j - i;
        let name = if n > 1 { format!("{op} ({n} consecutive steps)") } else { op.clone() };
        stages.push(Stage { name, text: steps[i..j].iter().map(|s| s.1.trim_end().to_string()).collect::<Vec<_>>().join("\n") });
        for (_, text) in &steps[i..j] {
            output_columns(&op, text, &mut outputs);
        }
        i = j;
    }
    // the last summarize / project decides what comes out
    (stages, outputs)
}

fn split_top(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth, mut quote) = (vec![], String::new(), 0i32, None::<char>);
    for ch in s.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(ch),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    out.push(cur);
    out.into_iter().map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect()
}

fn column_name(item: &str) -> Option<String> {
    let name = match item.split_once('=') {
        Some((l, r)) if !l.contains('(') && !r.starts_with('=') && !l.ends_with(['!', '<', '>']) => l.trim(),
        _ => item.trim(),
    };
    let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    ok.then(|| name.to_string())
}

fn output_columns(op: &str, text: &str, out: &mut Vec<(String, String)>) {
    let body = text.trim_start_matches('|').trim_start();
    let body = body.strip_prefix(op).unwrap_or(body).trim();
    let mut set = |cols: Vec<String>, replace: bool| {
        if replace {
            out.clear();
        }
        for c in cols {
            out.retain(|(x, _)| *x != c);
            out.push((c, op.to_string()));
        }
    };
    match op {
        "summarize" => {
            let (aggs, by) = match body.find(" by ").or_else(|| body.find("\nby ")) {
                Some(i) => (&body[..i], &body[i + 4..]),
                None => (body, ""),
            };
            let cols: Vec<String> = split_top(aggs).iter().chain(split_top(by).iter()).filter_map(|x| column_name(x)).collect();
            set(cols, true);
        }
        "project" => set(split_top(body).iter().filter_map(|x| column_name(x)).collect(), true),
        "extend" => set(split_top(body).iter().filter_map(|x| x.split_once('=').and_then(|(l, _)| column_name(l))).collect(), false),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kusto_pipeline_stages_and_outputs() {
        let q = "let EventNameList = dynamic([ \"A\", \"B\"]);\nAWSCloudTrail\n| where EventName in~ (EventNameList)\n| extend X = iif(a, b, c)\n| extend Y = tostring(split(X, '/')[-1])\n| summarize EventCount=count(), StartTimeUtc = min(TimeGenerated)\nby EventSource, EventName\n";
        let (stages, outs) = kusto_stages(q);
        let names: Vec<&str> = stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["parameters", "source", "where", "extend (2 consecutive steps)", "summarize"]);
        let cols: Vec<&str> = outs.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(cols, ["EventCount", "StartTimeUtc", "EventSource", "EventName"]);
    }
}
