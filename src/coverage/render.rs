//! Coverage renderings: [`Coverage`] → text table, JSON value, CSV, ATT&CK Navigator layers, one
//! self-contained HTML page. Pure: strings out, the CLI writes them.

use indexmap::IndexMap;
use serde_json::{Value, json};

use super::{Actions, Coverage, Entry, Matrix};

/// The ATT&CK version rulecast ships (`attack` in a layer's `versions`).
pub const ATTACK_VERSION: &str = "18";
/// The Navigator layer format written.
pub const LAYER_VERSION: &str = "4.5";
/// The Navigator version the layers declare (the layer format 4.5 needs at least 4.9.0).
pub const NAVIGATOR_VERSION: &str = "5.2.0";

/// The whole coverage as one JSON document (serde; stable key order).
pub fn to_json(cov: &Coverage) -> Value {
    let am = cov.action_matrix();
    let tm = cov.technique_matrix();
    let cat = super::actions::catalogue();
    let rules: Vec<Value> = cov
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
            let same: Vec<Value> = cov
                .same_action(i)
                .into_iter()
                .map(|(j, shared)| {
                    let o = &cov.entries[j];
                    json!({"platform": o.platform, "id": o.id, "name": o.name, "actions": shared.iter().map(ToString::to_string).collect::<Vec<_>>()})
                })
                .collect();
            if let Value::Object(m) = &mut v {
                m.insert("same_action".into(), Value::Array(same));
            }
            v
        })
        .collect();
    let matrix = |m: &Matrix| json!({"platforms": m.platforms, "unknown": m.unknown, "rows": m.rows});
    json!({
        "catalogue": {"botocore": cat.botocore, "operations": cat.ops.len()},
        "attack": ATTACK_VERSION,
        "platforms": cov.platforms,
        "summary": cov.summary(),
        "actions": matrix(&am),
        "techniques": matrix(&tm),
        "gaps": {
            "actions": am.gaps().iter().map(|r| &r.key).collect::<Vec<_>>(),
            "techniques": tm.gaps().iter().map(|r| &r.key).collect::<Vec<_>>(),
        },
        "rules": rules,
        "problems": cov.problems,
    })
}

fn table(head: &[String], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < w.len() {
                w[i] = w[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            let pad = w[i].saturating_sub(c.chars().count());
            if i == 0 {
                s.push_str(c);
                s.push_str(&" ".repeat(pad));
            } else {
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(head);
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

fn matrix_rows(m: &Matrix, only_gaps: bool) -> Vec<Vec<String>> {
    let rows: Vec<&super::Row> = if only_gaps { m.gaps() } else { m.rows.iter().collect() };
    rows.iter()
        .map(|r| {
            let mut v = vec![if r.label.is_empty() || r.label == r.key { r.key.clone() } else { format!("{} {}", r.key, r.label) }];
            v.extend(m.platforms.iter().map(|p| match r.counts.get(p).copied().unwrap_or(0) {
                0 if m.surely_empty(r, p) => "-".to_string(),
                0 => "?".to_string(),
                n => n.to_string(),
            }));
            v
        })
        .collect()
}

/// The text report: summary per platform, both matrices, gaps, rules whose actions are not
/// known, files that could not be read.
pub fn to_text(cov: &Coverage) -> String {
    let am = cov.action_matrix();
    let tm = cov.technique_matrix();
    let cat = super::actions::catalogue();
    let mut out = String::new();
    out.push_str(&format!(
        "coverage of {} rule(s) on {} platform(s); actions resolved against {} AWS operations (botocore {}), ATT&CK v{}\n\n",
        cov.entries.len(),
        cov.platforms.len(),
        cat.ops.len(),
        cat.botocore,
        ATTACK_VERSION
    ));
    let head: Vec<String> = ["platform", "rules", "active", "known", "any", "unknown", "actions", "techniques"].iter().map(|s| s.to_string()).collect();
    let rows: Vec<Vec<String>> = cov
        .summary()
        .iter()
        .map(|(p, s)| {
            vec![p.clone(), s.rules.to_string(), s.active.to_string(), s.known.to_string(), s.any.to_string(), s.unknown.to_string(), s.actions.to_string(), s.techniques.to_string()]
        })
        .collect();
    out.push_str(&table(&head, &rows));
    let mut head = vec!["action".to_string()];
    head.extend(cov.platforms.iter().cloned());
    out.push_str(&format!("\nactions × platforms ({} actions)\n", am.rows.len()));
    out.push_str(&table(&head, &matrix_rows(&am, false)));
    head[0] = "technique".into();
    out.push_str(&format!("\ntechniques × platforms ({} techniques)\n", tm.rows.len()));
    out.push_str(&table(&head, &matrix_rows(&tm, false)));
    out.push_str(&format!(
        "\ngaps: {} action(s) and {} technique(s) covered somewhere and surely not somewhere else (`?`: the platform has rules whose actions are unknown)\n",
        am.gaps().len(),
        tm.gaps().len()
    ));
    let unknown: Vec<&Entry> = cov.entries.iter().filter(|e| matches!(e.actions, Actions::Unknown { .. })).collect();
    if !unknown.is_empty() {
        out.push_str(&format!("\nrules whose actions are unknown ({})\n", unknown.len()));
        for e in unknown {
            if let Actions::Unknown { reason } = &e.actions {
                out.push_str(&format!("  {}: {} ({}): {reason}\n", e.platform, e.name, e.file));
            }
        }
    }
    if !cov.problems.is_empty() {
        out.push_str(&format!("\nfiles not read or not imported ({})\n", cov.problems.len()));
        for p in &cov.problems {
            out.push_str(&format!("  {}: error[{}] {}\n", p.location(), p.code, p.message));
        }
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// CSV, one row per matrix cell that is not empty: `kind,key,label,platform,rules,rule_names`.
pub fn to_csv(cov: &Coverage) -> String {
    let mut out = String::from("kind,key,label,platform,rules,rule_names\n");
    for (kind, m) in [("action", cov.action_matrix()), ("technique", cov.technique_matrix())] {
        for r in &m.rows {
            for p in &m.platforms {
                let n = r.counts.get(p).copied().unwrap_or(0);
                let names: Vec<&str> = r.rules.get(p).into_iter().flatten().map(|&i| cov.entries[i].name.as_str()).collect();
                let cells = [kind.to_string(), r.key.clone(), r.label.clone(), p.clone(), n.to_string(), names.join("; ")];
                out.push_str(&cells.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(","));
                out.push('\n');
            }
        }
    }
    out
}

fn layer(name: &str, description: &str, techniques: Vec<Value>, max: usize, colors: [&str; 2], legend: Vec<Value>) -> Value {
    json!({
        "name": name,
        "versions": {"attack": ATTACK_VERSION, "navigator": NAVIGATOR_VERSION, "layer": LAYER_VERSION},
        "domain": "enterprise-attack",
        "description": description,
        "filters": {"platforms": ["AWS"]},
        "sorting": 3,
        "layout": {"layout": "side", "showID": true, "showName": true, "showAggregateScores": false, "countUnscored": false, "aggregateFunction": "max", "expandedSubtechniques": "annotated"},
        "hideDisabled": false,
        "techniques": techniques,
        "gradient": {"colors": colors, "minValue": 0, "maxValue": max.max(1)},
        "legendItems": legend,
        "showTacticRowBackground": false,
        "tacticRowBackground": "#dddddd",
        "selectTechniquesAcrossTactics": true,
        "selectSubtechniquesWithParent": false,
        "selectVisibleTechniques": false,
        "metadata": [{"name": "generated by", "value": "rulecast coverage"}],
    })
}

/// ATT&CK Navigator layers (format 4.5): one per platform (score: active rules listing the
/// technique; metadata: every rule with its status) and one difference layer (score: how many
/// platforms cover the technique, comment naming the platforms that do not). File name → layer.
pub fn to_navigator(cov: &Coverage) -> IndexMap<String, Value> {
    let tm = cov.technique_matrix();
    let mut out = IndexMap::new();
    for p in &cov.platforms {
        let mut techniques = vec![];
        let mut max = 0;
        for r in &tm.rows {
            // every entry on this platform naming the technique, whatever its status
            let all: Vec<&Entry> = cov.entries.iter().filter(|e| &e.platform == p && e.techniques.contains(&r.key)).collect();
            let n = r.counts.get(p).copied().unwrap_or(0);
            if all.is_empty() {
                continue;
            }
            max = max.max(n);
            let metadata: Vec<Value> = all.iter().map(|e| json!({"name": e.name, "value": e.status.describe()})).collect();
            techniques.push(json!({
                "techniqueID": r.key,
                "score": n,
                "comment": format!("{n} active rule(s) on {p}"),
                "enabled": true,
                "metadata": metadata,
                "showSubtechniques": false,
            }));
        }
        out.insert(
            format!("{}.json", p.replace(':', "-")),
            layer(&format!("rulecast coverage: {p}"), &format!("ATT&CK techniques named by the {p} rules; score = active rules"), techniques, max, ["#ffffff", "#66b1ff"], vec![]),
        );
    }
    let n = cov.platforms.len();
    let techniques: Vec<Value> = tm
        .rows
        .iter()
        .map(|r| {
            let covered: Vec<&String> = cov.platforms.iter().filter(|p| r.counts.get(*p).copied().unwrap_or(0) > 0).collect();
            let missing: Vec<&String> = cov.platforms.iter().filter(|p| r.counts.get(*p).copied().unwrap_or(0) == 0).collect();
            let metadata: Vec<Value> = cov
                .platforms
                .iter()
                .map(|p| json!({"name": p, "value": r.counts.get(p).copied().unwrap_or(0).to_string()}))
                .collect();
            json!({
                "techniqueID": r.key,
                "score": covered.len(),
                "comment": if missing.is_empty() { format!("covered on all {n} platforms") } else { format!("not covered on {}", missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")) },
                "enabled": true,
                "metadata": metadata,
                "showSubtechniques": false,
            })
        })
        .collect();
    out.insert(
        "difference.json".into(),
        layer(
            "rulecast coverage: difference",
            &format!("score = platforms covering the technique, of {n}; below {n} is a gap"),
            techniques,
            n,
            ["#ff6666", "#8ec843"],
            vec![json!({"label": "every platform", "color": "#8ec843"}), json!({"label": "one platform", "color": "#ff6666"})],
        ),
    );
    out
}

/// Escape text for HTML (element content and quoted attribute values): the one function every
/// string written into the page goes through.
pub fn html_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn html_matrix(id: &str, title: &str, m: &Matrix, cov: &Coverage) -> String {
    let e = html_escape;
    let mut s = format!("<h2>{}</h2>\n<table id=\"{}\" class=\"matrix\"><thead><tr><th data-sort=\"text\">key</th>", e(title), e(id));
    for p in &m.platforms {
        s.push_str(&format!("<th data-sort=\"num\">{}</th>", e(p)));
    }
    s.push_str("</tr></thead><tbody>\n");
    for r in &m.rows {
        let gap = r.counts.values().any(|c| *c > 0) && m.platforms.iter().any(|p| m.surely_empty(r, p));
        s.push_str(&format!("<tr data-key=\"{}\" data-gap=\"{}\"><td>{}", e(&r.key), gap, e(&r.key)));
        if !r.label.is_empty() && r.label != r.key {
            s.push_str(&format!(" <span class=\"label\">{}</span>", e(&r.label)));
        }
        s.push_str("</td>");
        for p in &m.platforms {
            let n = r.counts.get(p).copied().unwrap_or(0);
            let names: Vec<String> = r.rules.get(p).into_iter().flatten().map(|&i| format!("r{i}")).collect();
            let shown = if n == 0 && !m.surely_empty(r, p) { "?".to_string() } else { n.to_string() };
            s.push_str(&format!("<td class=\"c{}\" data-platform=\"{}\" data-count=\"{n}\" data-rules=\"{}\">{}</td>", n.min(3), e(p), e(&names.join(" ")), e(&shown)));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody></table>\n");
    let _ = cov;
    s
}

const CSS: &str = "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:2px 6px;text-align:right}td:first-child,th:first-child{text-align:left}th{background:#eee;cursor:pointer;position:sticky;top:0}.c0{color:#bbb}.c1{background:#d6ecff}.c2{background:#a9d4ff}.c3{background:#66b1ff}tr[data-gap=true] td:first-child{border-left:4px solid #e55}.label{color:#666}#detail{border:1px solid #999;padding:.5em 1em;background:#fafafa;min-height:2em}.hidden{display:none}input{margin:0 1em .5em 0}td[data-count]:not([data-count=\"0\"]){cursor:pointer}.rules td{text-align:left}";

const JS: &str = r#"(function(){
var data=JSON.parse(document.getElementById('rules-data').textContent);
function txt(s){return document.createTextNode(String(s));}
function el(t,kids){var e=document.createElement(t);(kids||[]).forEach(function(k){e.appendChild(typeof k==='string'?txt(k):k);});return e;}
function show(title,ids){var d=document.getElementById('detail');d.textContent='';d.appendChild(el('h3',[title]));var ul=el('ul');ids.forEach(function(i){var r=data[i];var li=el('li',[r.platform+': '+r.name+' ('+r.status+')']);li.title=r.file;var sub=el('div',['actions: '+r.actions+' | techniques: '+(r.techniques.join(', ')||'none')]);li.appendChild(sub);if(r.same.length){li.appendChild(el('div',['same action on: '+r.same.join('; ')]));}ul.appendChild(li);});d.appendChild(ul);}
document.querySelectorAll('table.matrix td[data-count]').forEach(function(td){td.addEventListener('click',function(){var ids=td.getAttribute('data-rules').split(' ').filter(Boolean).map(function(x){return +x.slice(1);});if(ids.length){show(td.parentNode.getAttribute('data-key')+' on '+td.getAttribute('data-platform'),ids);}});});
document.querySelectorAll('table.rules tr[data-rule]').forEach(function(tr){tr.addEventListener('click',function(){show(data[+tr.getAttribute('data-rule')].name,[+tr.getAttribute('data-rule')]);});});
function filter(){var q=document.getElementById('filter').value.toLowerCase();var g=document.getElementById('gaps').checked;document.querySelectorAll('table.matrix tbody tr, table.rules tbody tr').forEach(function(tr){var ok=tr.textContent.toLowerCase().indexOf(q)>=0&&(!g||!tr.hasAttribute('data-gap')||tr.getAttribute('data-gap')==='true');tr.classList.toggle('hidden',!ok);});}
document.getElementById('filter').addEventListener('input',filter);document.getElementById('gaps').addEventListener('change',filter);
document.querySelectorAll('th').forEach(function(th){th.addEventListener('click',function(){var table=th.closest('table');var i=Array.prototype.indexOf.call(th.parentNode.children,th);var num=th.getAttribute('data-sort')==='num';var asc=th.getAttribute('data-asc')!=='1';th.setAttribute('data-asc',asc?'1':'0');var body=table.tBodies[0];var rows=Array.prototype.slice.call(body.rows);rows.sort(function(a,b){var x=a.cells[i].textContent,y=b.cells[i].textContent;var c=num?(+x)-(+y):x.localeCompare(y);return asc?c:-c;});rows.forEach(function(r){body.appendChild(r);});});});
})();"#;

/// One self-contained HTML page (inline CSS and JS, no network): summary, both matrices
/// (sortable, filterable, each cell opening the rules it counts), rules, files not read.
pub fn to_html(cov: &Coverage) -> String {
    let e = html_escape;
    let am = cov.action_matrix();
    let tm = cov.technique_matrix();
    let cat = super::actions::catalogue();
    let mut s = String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>rulecast coverage</title>\n");
    s.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n");
    s.push_str(&format!("<style>{CSS}</style></head><body>\n<h1>rulecast coverage</h1>\n"));
    s.push_str(&format!(
        "<p>{} rule(s) on {} platform(s); actions resolved against {} AWS operations (botocore {}); ATT&amp;CK v{}.</p>\n",
        cov.entries.len(),
        cov.platforms.len(),
        cat.ops.len(),
        e(&cat.botocore),
        ATTACK_VERSION
    ));
    s.push_str("<table id=\"summary\"><thead><tr><th>platform</th><th data-sort=\"num\">rules</th><th data-sort=\"num\">active</th><th data-sort=\"num\">known</th><th data-sort=\"num\">any</th><th data-sort=\"num\">unknown</th><th data-sort=\"num\">actions</th><th data-sort=\"num\">techniques</th></tr></thead><tbody>\n");
    for (p, x) in cov.summary() {
        s.push_str(&format!(
            "<tr data-platform=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"actions\">{}</td><td class=\"techniques\">{}</td></tr>\n",
            e(&p),
            e(&p),
            x.rules,
            x.active,
            x.known,
            x.any,
            x.unknown,
            x.actions,
            x.techniques
        ));
    }
    s.push_str("</tbody></table>\n");
    s.push_str("<p><label>filter <input id=\"filter\" type=\"search\" placeholder=\"action, technique, rule\"></label><label><input id=\"gaps\" type=\"checkbox\"> gaps only</label></p>\n<div id=\"detail\">click a cell or a rule</div>\n");
    s.push_str(&html_matrix("techniques", &format!("techniques × platforms ({})", tm.rows.len()), &tm, cov));
    s.push_str(&html_matrix("actions", &format!("actions × platforms ({})", am.rows.len()), &am, cov));
    s.push_str(&format!("<h2>rules ({})</h2>\n<table id=\"rules\" class=\"rules\"><thead><tr><th>platform</th><th>rule</th><th>status</th><th>actions</th><th>techniques</th></tr></thead><tbody>\n", cov.entries.len()));
    let mut data = vec![];
    for (i, en) in cov.entries.iter().enumerate() {
        let actions = match &en.actions {
            Actions::Known { actions } => actions.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            Actions::Any { count } => format!("any ({count} operations)"),
            Actions::Unknown { reason } => format!("unknown: {reason}"),
        };
        s.push_str(&format!(
            "<tr data-rule=\"{i}\"><td>{}</td><td title=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            e(&en.platform),
            e(&en.file),
            e(&en.name),
            e(&en.status.describe()),
            e(&actions),
            e(&en.techniques.join(", "))
        ));
        let same: Vec<String> = cov.same_action(i).into_iter().map(|(j, _)| format!("{}: {}", cov.entries[j].platform, cov.entries[j].name)).collect();
        data.push(json!({"platform": en.platform, "name": en.name, "file": en.file, "status": en.status.describe(), "actions": actions, "techniques": en.techniques, "same": same}));
    }
    s.push_str("</tbody></table>\n");
    if !cov.problems.is_empty() {
        s.push_str(&format!("<h2>files not read or not imported ({})</h2>\n<ul id=\"problems\">\n", cov.problems.len()));
        for p in &cov.problems {
            s.push_str(&format!("<li><code>{}</code> error[{}] {}</li>\n", e(&p.location()), e(&p.code), e(&p.message)));
        }
        s.push_str("</ul>\n");
    }
    // JSON inside <script>: `<` escaped so no `</script>` can close it early
    let json = serde_json::to_string(&data).unwrap_or_else(|_| "[]".into()).replace('<', "\\u003c");
    s.push_str(&format!("<script type=\"application/json\" id=\"rules-data\">{json}</script>\n<script>{JS}</script>\n</body></html>\n"));
    s
}
