//! Condition, derived fields and alert functions -> Python for Panther's `rule(event)`.
//!
//! Input: a [`Rule`]. Output: Python source fragments (expressions and statements) that the
//! template lays out. Every string literal goes through [`py_str`]; the generated module
//! needs only the standard library (its helpers are defined in the file itself).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::condition::{Cond, Pred, glob_to_regex};
use crate::diag::Code;
use crate::fields::{self, Seg};
use crate::load::Rule;
use crate::model::{Case, Expr, ExprTest, Op};
use crate::targets::Cx;
use crate::targets::render::{comment_text, py_str};

use super::nfa;

/// Helper functions the generated module may need: (name, source). Emitted only when used.
pub const HELPERS: &[(&str, &str)] = &[
    (
        "aws_cloudtrail_success",
        "def aws_cloudtrail_success(event):\n    # Panther's helper of the same name: the call failed if errorCode or errorMessage is set\n    return not (event.get(\"errorCode\") or event.get(\"errorMessage\"))\n",
    ),
    (
        "_get",
        "def _get(event, path):\n    # the value at a raw CloudTrail path (keys and list indexes), or None\n    value = event\n    for key in path:\n        if isinstance(key, int):\n            if _is_list(value) and -len(value) <= key < len(value):\n                value = value[key]\n            else:\n                return None\n        elif isinstance(value, Mapping):\n            value = value.get(key)\n        else:\n            return None\n        if value is None:\n            return None\n    return value\n",
    ),
    (
        "_is_list",
        "def _is_list(value):\n    # JSON arrays (Panther's events hold them as immutable sequences)\n    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))\n",
    ),
    (
        "_text",
        "def _text(value):\n    # a scalar as the text JSON writes; None for null, objects and lists\n    if value is True:\n        return \"true\"\n    if value is False:\n        return \"false\"\n    if isinstance(value, (int, float, str)):\n        return value if isinstance(value, str) else json.dumps(value)\n    return None\n",
    ),
    (
        "_any",
        "def _any(value, test):\n    # a list matches if any of its scalar elements does\n    items = value if _is_list(value) else (value,)\n    for item in items:\n        text = _text(item)\n        if text is not None and test(text):\n            return True\n    return False\n",
    ),
    (
        "_texts",
        "def _texts(value):\n    # the scalar texts of a value: itself, or each element of a list\n    items = value if _is_list(value) else (value,)\n    return [text for text in (_text(item) for item in items) if text is not None]\n",
    ),
    (
        "_outcome",
        "def _outcome(event):\n    # success or failure, as Elastic's AWS integration derives event.outcome (its pipeline\n    # first drops null, \"\", \"-\", \"none\" and empty objects and lists)\n    dropped = (None, \"\", \"-\", \"none\", [], {})\n    result = _get(event, (\"responseElements\", \"ConsoleLogin\"))\n    if event.get(\"eventName\") == \"ConsoleLogin\" and isinstance(result, str) and result not in dropped:\n        return result.lower()\n    if any(event.get(key) not in dropped for key in (\"errorCode\", \"errorMessage\")):\n        return \"failure\"\n    return \"success\"\n",
    ),
    (
        "_source_ip",
        "def _source_ip(event):\n    # sourceIPAddress when it is an IP address, else None\n    address = event.get(\"sourceIPAddress\")\n    if not isinstance(address, str):\n        return None\n    try:\n        ipaddress.ip_address(address)\n    except ValueError:\n        return None\n    return address\n",
    ),
    (
        "_console_login_mfa_used",
        "def _console_login_mfa_used(event):\n    # ConsoleLogin only: False when additionalEventData.MFAUsed is \"No\", else True; None without it\n    used = _text(_get(event, (\"additionalEventData\", \"MFAUsed\")))\n    if event.get(\"eventName\") != \"ConsoleLogin\" or used is None:\n        return None\n    return used != \"No\"\n",
    ),
    (
        "_num",
        "def _num(text):\n    # a number from JSON text, or None\n    try:\n        number = float(text)\n    except ValueError:\n        return None\n    return None if math.isnan(number) else number\n",
    ),
    (
        "_in_cidr",
        "def _in_cidr(text, networks):\n    try:\n        address = ipaddress.ip_address(text)\n    except ValueError:\n        return False\n    return any(address in ipaddress.ip_network(net, strict=False) for net in networks)\n",
    ),
    (
        "_str",
        "def _str(value):\n    # a value as text for derived fields: missing is \"\"\n    if value is None:\n        return \"\"\n    text = _text(value)\n    return text if text is not None else json.dumps(_plain(value), separators=(\",\", \":\"))\n",
    ),
    (
        "_plain",
        "def _plain(value):\n    # Panther's immutable containers as plain dicts and lists\n    if isinstance(value, Mapping):\n        return {key: _plain(item) for key, item in value.items()}\n    if _is_list(value):\n        return [_plain(item) for item in value]\n    return value\n",
    ),
    (
        "_first",
        "def _first(*values):\n    # the first non-empty value\n    for value in values:\n        if value not in (None, \"\"):\n            return value\n    return None\n",
    ),
    (
        "_split",
        "def _split(text, sep, index):\n    parts = text.split(sep)\n    return parts[index] if -len(parts) <= index < len(parts) else \"\"\n",
    ),
    (
        "_glob",
        "def _glob(pattern, text, flags=0):\n    # whole-value glob (* any run, ? one character) in linear time, without a backtracking\n    # regex: the parts between stars have a fixed length, so each is placed at its leftmost\n    # match after the one before; the first part starts the text and the last one ends it\n    parts = pattern.split(\"*\")\n    regexes = [re.compile(\"\".join(\".\" if c == \"?\" else re.escape(c) for c in part), re.S | flags) for part in parts]\n    if len(parts) == 1:\n        return regexes[0].fullmatch(text) is not None\n    end = len(text) - len(parts[-1])\n    if end < 0 or regexes[-1].fullmatch(text, end) is None:\n        return False\n    found = regexes[0].match(text, 0, end)\n    for regex in regexes[1:-1]:\n        if found is None:\n            return False\n        found = regex.search(text, found.end(), end)\n    return found is not None\n",
    ),
    (
        "_search",
        "_SEARCHES = {}\n\n\ndef _search(program, text):\n    # an unanchored regex search in linear time: `program` is the regex compiled by rulecast\n    # (with the canonical evaluator's semantics) into a Thompson NFA, whose states are followed\n    # together instead of backtracking; each step (set of states, class of character) is worked\n    # out once and kept\n    machine = _SEARCHES.get(id(program))\n    if machine is None:\n        machine = _SEARCHES[id(program)] = _Search(program)\n    return machine.search(text)\n",
    ),
    (
        "_Search",
        "class _Search:  # pylint: disable=too-many-instance-attributes\n    def __init__(self, program):\n        self.start, self.insts, self.words = program\n        bounds = {10, 11, 48, 58, 65, 91, 95, 96, 97, 123}\n        for inst in self.insts:\n            if inst[0] == 0:\n                bounds.update(inst[2])\n        bounds.update(self.words)\n        self.bounds = sorted(bounds)\n        self.looks = any(inst[0] == 2 for inst in self.insts)\n        self.reset()\n\n    def reset(self):\n        # per state: the next state by character, and by cell (a range of characters every\n        # instruction treats alike)\n        self.states, self.ids, self.rows, self.cells = [], {}, [], []\n        # per state: how often a character left it where it was, then the reader of a run of\n        # such characters (see `run`; False once dropped) and how little it read\n        self.runs, self.visits = [], []\n        # (state, up to eight characters) -> the state after them\n        self.pieces = {}\n        # (state, kind of the next character) -> the instructions to try\n        self.closures = {}\n\n    def state(self, key):\n        found = self.ids.get(key)\n        if found is None:\n            found = self.ids[key] = len(self.states)\n            self.states.append(key)\n            self.rows.append({})\n            self.cells.append({})\n            self.runs.append(None)\n            self.visits.append(0)\n        return found\n\n    def run(self, state):\n        # the characters known (from the cells stepped so far) to leave the machine in `state`,\n        # as the `match` of one class-star regex, which reads a run of them at once and cannot\n        # backtrack; characters of other cells are still stepped one by one\n        ranges = []\n        for cell, nxt in sorted(self.cells[state].items()):\n            low = self.bounds[cell - 1] if cell else 0\n            high = self.bounds[cell] - 1 if cell < len(self.bounds) else 0x10FFFF\n            if nxt is not True and nxt == state and low <= high:\n                ranges.append(f\"\\\\U{low:08x}-\\\\U{high:08x}\")\n        return re.compile(\"[\" + \"\".join(ranges) + \"]*\").match if ranges else None\n\n    def kind(self, cell):\n        # (newline, Unicode word character, ASCII word character) of the characters in a cell\n        code = self.bounds[cell - 1] if cell else 0\n        ascii_word = 48 <= code < 58 or 65 <= code < 91 or code == 95 or 97 <= code < 123\n        return (code == 10, bisect_right(self.words, code) % 2 == 1, ascii_word)\n\n    def holds(self, look, before, after):\n        if look == 0:\n            return before is None\n        if look == 1:\n            return after is None\n        if look == 2:\n            return before is None or before[0]\n        if look == 3:\n            return after is None or after[0]\n        bit = 1 if look < 6 else 2\n        edge = (before is not None and before[bit]) != (after is not None and after[bit])\n        return edge if look in (4, 6) else not edge\n\n    def closure(self, states, before, after):\n        # the instructions reachable without reading a character: character tests and the match\n        seen, stack, out = set(), list(states), []\n        while stack:\n            i = stack.pop()\n            if i in seen:\n                continue\n            seen.add(i)\n            inst = self.insts[i]\n            if inst[0] == 1:\n                stack.append(inst[2])\n                stack.append(inst[1])\n            elif inst[0] == 2:\n                if self.holds(inst[2], before, after):\n                    stack.append(inst[1])\n            else:\n                out.append(inst)\n        return out\n\n    def step(self, state, cell):\n        states, before = self.states[state]\n        after = self.kind(cell)\n        code = self.bounds[cell - 1] if cell else 0\n        key = (state, after if self.looks else None)\n        todo = self.closures.get(key)\n        if todo is None:\n            todo = self.closures[key] = self.closure(states | {self.start}, before, after)\n        nxt = []\n        for inst in todo:\n            if inst[0] == 3:\n                return True\n            if bisect_right(inst[2], code) % 2 == 1:\n                nxt.append(inst[1])\n        return self.state((frozenset(nxt), after if self.looks else None))\n\n    # one loop, kept whole: it runs once per character\n    def search(self, text):  # pylint: disable=too-many-locals,too-many-branches,too-complex\n        if len(self.states) > 2000:\n            self.reset()\n        state = self.state((frozenset(), None))\n        rows, runs, visits, pieces = self.rows, self.runs, self.visits, self.pieces\n        index, end, hits, misses = 0, len(text), 0, 0\n        while index < end:\n            run = runs[state]\n            if run:\n                found = run(text, index).end()\n                # a run reader that reads little costs more than it saves: dropped\n                visits[state] += 1 if found - index < 8 else -1\n                if visits[state] > 64:\n                    runs[state] = False\n                index = found\n                if index == end:\n                    break\n            # eight characters at a time: where the machine goes from `state` on them is\n            # worked out once and kept (repeating text is then read at the speed of a lookup);\n            # while that rarely pays, 256 at a time, kept nowhere\n            keep = misses <= hits + 64\n            piece = text[index:index + 8] if keep else text[index:index + 256]\n            index += len(piece)\n            if keep:\n                found = pieces.get((state, piece))\n                if found is not None:\n                    hits += 1\n                    state = found\n                    continue\n                misses += 1\n            start = state\n            for char in piece:\n                nxt = rows[state].get(char)\n                if nxt is None:\n                    cell = bisect_right(self.bounds, ord(char))\n                    nxt = self.cells[state].get(cell)\n                    if nxt is None:\n                        nxt = self.cells[state][cell] = self.step(state, cell)\n                    if len(rows[state]) < 256:\n                        rows[state][char] = nxt\n                if nxt is True:\n                    return True\n                if nxt == state and runs[state] is None:\n                    # a state that often keeps itself gets a run reader\n                    visits[state] += 1\n                    if visits[state] == 16:\n                        runs[state] = self.run(state)\n                        visits[state] = 0\n                state = nxt\n            if keep:\n                if len(pieces) >= 4096:\n                    pieces.clear()\n                pieces[(start, piece)] = state\n        states, before = self.states[state]\n        return any(inst[0] == 3 for inst in self.closure(states | {self.start}, before, None))\n",
    ),
    (
        "_mentions",
        "def _mentions(value, needles, fold):\n    # some key or scalar value anywhere below `value` contains one of the needles\n    stack = [value]\n    while stack:\n        item = stack.pop()\n        if isinstance(item, Mapping):\n            for key, inner in item.items():\n                stack.append(inner)\n                if _has(str(key), needles, fold):\n                    return True\n        elif _is_list(item):\n            stack.extend(item)\n        else:\n            text = _text(item)\n            if text is not None and _has(text, needles, fold):\n                return True\n    return False\n",
    ),
    (
        "_has",
        "def _has(text, needles, fold):\n    text = text.lower() if fold else text\n    return any(needle in text for needle in needles)\n",
    ),
    (
        "_elements",
        "def _elements(value, decode, path):\n    # the elements a `some` condition tests: JSON text decoded when asked, then the path;\n    # an array's items (nulls skipped), or the value itself\n    if decode and isinstance(value, str):\n        try:\n            value = json.loads(value)\n        except ValueError:\n            pass\n    if path:\n        value = _get(value, path)\n    if value is None:\n        return ()\n    return [item for item in value if item is not None] if _is_list(value) else (value,)\n",
    ),
    (
        "_allowed",
        "def _allowed(entries, values):\n    # an entry allows the event when each of its keys' globs matches the event's value\n    if callable(entries):\n        # Panther's test runner mocks a module constant with MagicMock(return_value=<JSON text>)\n        entries = json.loads(entries())\n    for entry in entries:\n        if all(_any(values.get(key), lambda text, p=pattern: _glob(p, text)) for key, pattern in entry.items()):\n            return True\n    return False\n",
    ),
];

/// Which helpers each helper needs.
const HELPER_DEPS: &[(&str, &[&str])] = &[
    ("_get", &["_is_list"]),
    ("_any", &["_text", "_is_list"]),
    ("_str", &["_text", "_plain"]),
    ("_plain", &["_is_list"]),
    ("_allowed", &["_any", "_glob"]),
    ("_elements", &["_get", "_is_list"]),
    ("_mentions", &["_has", "_is_list", "_text"]),
    ("_texts", &["_text", "_is_list"]),
    ("_search", &["_Search"]),
    ("_outcome", &["_get"]),
    ("_console_login_mfa_used", &["_get", "_text"]),
];

/// Modules each helper (or generated construct) imports.
const HELPER_IMPORTS: &[(&str, &str)] = &[
    ("_is_list", "from collections.abc import Mapping, Sequence"),
    ("_get", "from collections.abc import Mapping, Sequence"),
    ("_plain", "from collections.abc import Mapping, Sequence"),
    ("_allowed", "json"),
    ("_elements", "json"),
    ("_mentions", "from collections.abc import Mapping, Sequence"),
    ("_text", "json"), ("_str", "json"), ("_in_cidr", "ipaddress"), ("_source_ip", "ipaddress"), ("_glob", "re"), ("re", "re"),
    ("_Search", "from bisect import bisect_right"),
    ("_Search", "re"),
    ("_num", "math"),
];

/// Collected state while generating one module.
#[derive(Default)]
pub struct Py {
    /// Helpers used.
    pub helpers: BTreeSet<&'static str>,
    /// Modules to import.
    pub imports: BTreeSet<&'static str>,
    /// Virtual fields read that Panther has no data for: (field, why).
    pub unavailable: Vec<(String, &'static str)>,
    /// Those already reported with the condition's place.
    pub reported: BTreeSet<String>,
    /// Module constants for the regexes (`_REGEX_<n> = <program>` with a comment), in order.
    pub regexes: Vec<String>,
}

/// Report a virtual field Panther has no data for, at the condition that reads it.
fn check_available(f: &fields::Field, span: &Option<crate::diag::Span>, py: &mut Py, cx: &mut Cx) {
    if let Some(why) = f.maps.panther.unavailable {
        if py.reported.insert(f.path.clone()) {
            cx.unsupported(Code::E402, span.clone(), format!("`{}` cannot be rendered for Panther: {why}", f.path));
        }
    }
}

impl Py {
    fn use_helper(&mut self, name: &'static str) {
        if self.helpers.insert(name) {
            for (h, deps) in HELPER_DEPS {
                if *h == name {
                    for d in *deps {
                        self.use_helper(d);
                    }
                }
            }
            for (h, m) in HELPER_IMPORTS {
                if *h == name {
                    self.imports.insert(m);
                }
            }
        }
    }

    /// Helper sources in a stable order.
    pub fn helper_sources(&self) -> Vec<String> {
        HELPERS.iter().filter(|(n, _)| self.helpers.contains(n)).map(|(_, s)| s.to_string()).collect()
    }
}

/// Whether Python's backtracking `re.fullmatch` decides a glob in linear time: `^A.*B$` tries
/// `B` once per position, and stars at the end always match at once (`.*$`), but two stars
/// before the end nest (`^.*a.*a.*b$` is O(n²), and each further star multiplies by n). Other
/// globs go to the `_glob` helper.
pub fn glob_is_linear_in_re(glob: &str) -> bool {
    glob.trim_end_matches('*').matches('*').count() <= 1
}

/// `EventNameList` -> `EVENT_NAME_LIST`.
pub fn constant_name(name: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if c.is_uppercase() && i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit()) {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

fn literal(v: &Value) -> String {
    match v {
        Value::String(s) => py_str(s),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        other => py_str(&other.to_string()),
    }
}

/// A Python expression reading a field's raw value.
pub fn getter(f: &fields::Field, py: &mut Py) -> String {
    if let Some(why) = f.maps.panther.unavailable {
        if !py.unavailable.iter().any(|(p, _)| *p == f.path) {
            py.unavailable.push((f.path.clone(), why));
        }
        return "None".into();
    }
    if let Some(e) = &f.maps.panther.expr {
        for h in f.maps.panther.helpers {
            if let Some((name, _)) = HELPERS.iter().find(|(n, _)| n == h) {
                py.use_helper(name);
            }
        }
        return e.clone();
    }
    py.use_helper("_get");
    format!("_get({}, {})", f.element.as_deref().unwrap_or("event"), seg_tuple(&f.segs))
}

/// Path segments as a Python tuple literal (`("a", 0)`); `()` for none.
fn seg_tuple(segs: &[Seg]) -> String {
    let parts: Vec<String> = segs
        .iter()
        .map(|s| match s {
            Seg::Key(k) => py_str(k),
            Seg::Index(i) => i.to_string(),
        })
        .collect();
    match parts.len() {
        0 => "()".into(),
        1 => format!("({},)", parts[0]),
        _ => format!("({})", parts.join(", ")),
    }
}

/// Render a condition as a Python boolean expression.
pub fn cond(c: &Cond, rule: &Rule, py: &mut Py, cx: &mut Cx) -> String {
    match c {
        Cond::All(k) => format!("({})", k.iter().map(|k| cond(k, rule, py, cx)).collect::<Vec<_>>().join(" and ")),
        Cond::Any(k) => format!("({})", k.iter().map(|k| cond(k, rule, py, cx)).collect::<Vec<_>>().join(" or ")),
        Cond::Not(k) => format!("not {}", paren(&cond(k, rule, py, cx))),
        Cond::Succeeded(ok) => {
            py.use_helper("aws_cloudtrail_success");
            if *ok { "aws_cloudtrail_success(event)".into() } else { "not aws_cloudtrail_success(event)".into() }
        }
        Cond::Pred(p) => {
            check_available(&p.field, &p.span, py, cx);
            pred(p, py, cx)
        }
        Cond::FieldRef(f) => {
            check_available(&f.field, &f.span, py, cx);
            check_available(&f.other, &f.span, py, cx);
            // both non-empty, some scalar text of one equal to some scalar text of the other
            py.use_helper("_texts");
            let (a, b) = (getter(&f.field, py), getter(&f.other, py));
            let fold = if f.case == Case::Insensitive { ".lower()" } else { "" };
            format!("any(left{fold} == right{fold} for left in _texts({a}) for right in _texts({b}) if left and right)")
        }
        Cond::Some(q) => {
            py.use_helper("_elements");
            let var = crate::fields::element_var(q.depth);
            let inner = cond(&q.cond, rule, py, cx);
            format!(
                "any({inner} for {var} in _elements({}, {}, {}))",
                getter(&q.field, py),
                if q.decode { "True" } else { "False" },
                seg_tuple(&q.path)
            )
        }
        Cond::Allowed(name) => {
            py.use_helper("_allowed");
            let mut items = vec![];
            if let Some(al) = rule.allowlists.get(name) {
                for (k, f) in &al.keys {
                    items.push(format!("{}: {}", py_str(k), getter(f, py)));
                }
            } else {
                cx.unsupported(Code::E900, None, format!("allow-list `{name}` vanished; please report"));
            }
            format!("_allowed({name}, {{{}}})", items.join(", "))
        }
        Cond::Opaque { lang, text, reason } => crate::targets::opaque(*lang, text, reason, cx),
    }
}

fn paren(s: &str) -> String {
    if s.starts_with('(') && s.ends_with(')') { s.to_string() } else { format!("({s})") }
}

fn pred(p: &Pred, py: &mut Py, cx: &mut Cx) -> String {
    let get = getter(&p.field, py);
    let ci = p.case == Case::Insensitive;
    let fold = |s: &str| if ci { s.to_lowercase() } else { s.to_string() };
    let subject = if ci { "text.lower()" } else { "text" };
    let strs: Vec<String> = p.values.iter().filter_map(|v| v.as_str()).map(|s| py_str(&fold(s))).collect();
    let test = match p.op {
        Op::Exists => return format!("{get} is not None"),
        Op::Empty => return format!("{get} in (None, \"\")"),
        Op::Eq | Op::In => {
            let mut alts = vec![];
            if !strs.is_empty() {
                match (&p.list, strs.len() == p.values.len()) {
                    (Some(list), true) if !ci => alts.push(format!("text in {}", constant_name(list))),
                    (Some(list), true) => alts.push(format!("text.lower() in {{item.lower() for item in {}}}", constant_name(list))),
                    _ if strs.len() == 1 => alts.push(format!("{subject} == {}", strs[0])),
                    _ => alts.push(format!("{subject} in {{{}}}", strs.join(", "))),
                }
            }
            for v in &p.values {
                match v {
                    Value::Bool(b) => alts.push(format!("text == {}", py_str(&b.to_string()))),
                    Value::Number(n) => {
                        py.use_helper("_num");
                        alts.push(format!("_num(text) == {n}"));
                    }
                    _ => {}
                }
            }
            alts.join(" or ")
        }
        Op::Contains => strs.iter().map(|s| format!("{s} in {subject}")).collect::<Vec<_>>().join(" or "),
        Op::Startswith | Op::Endswith => {
            let method = if p.op == Op::Startswith { "startswith" } else { "endswith" };
            let arg = if strs.len() == 1 { strs[0].clone() } else { format!("({})", strs.join(", ")) };
            format!("{subject}.{method}({arg})")
        }
        Op::Glob => {
            let flags = if ci { ", re.I" } else { "" };
            let mut alts = vec![];
            for s in p.values.iter().filter_map(|v| v.as_str()) {
                if glob_is_linear_in_re(s) {
                    py.imports.insert("re");
                    alts.push(format!("re.fullmatch({}, text{flags}) is not None", py_str(&glob_to_regex(s))));
                } else {
                    py.use_helper("_glob");
                    alts.push(format!("_glob({}, text{flags})", py_str(s)));
                }
            }
            alts.join(" or ")
        }
        Op::Regex => {
            let mut alts = vec![];
            for s in p.values.iter().filter_map(|v| v.as_str()) {
                if let Some(python) = nfa::python_re(s, ci) {
                    py.imports.insert("re");
                    alts.push(format!("re.search({}, text) is not None", py_str(&python)));
                    continue;
                }
                match nfa::program(s, ci) {
                    Ok(program) => {
                        py.use_helper("_search");
                        let name = format!("_REGEX_{}", py.regexes.len() + 1);
                        let case = if ci { " (case-insensitive)" } else { "" };
                        py.regexes.push(format!(
                            "# {}{case}, compiled by rulecast for _search (linear time, no backtracking)\n{name} = {program}",
                            comment_text(&format!("regex `{s}`"))
                        ));
                        alts.push(format!("_search({name}, text)"));
                    }
                    Err(why) => {
                        cx.unsupported(Code::E402, p.span.clone(), format!("the regex `{s}` cannot be rendered for Panther in linear time: {why}"));
                        alts.push("False".into());
                    }
                }
            }
            alts.join(" or ")
        }
        Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            py.use_helper("_num");
            let tok = match p.op {
                Op::Lt => "<",
                Op::Le => "<=",
                Op::Gt => ">",
                _ => ">=",
            };
            let n = p.values.first().map(literal).unwrap_or_default();
            format!("_num(text) is not None and _num(text) {tok} {n}")
        }
        Op::Mentions => {
            py.use_helper("_mentions");
            let fold = if ci { "True" } else { "False" };
            return format!("_mentions({get}, ({},), {fold})", strs.join(", "));
        }
        Op::Cidr => {
            py.use_helper("_in_cidr");
            format!("_in_cidr(text, ({},))", p.values.iter().map(literal).collect::<Vec<_>>().join(", "))
        }
    };
    py.use_helper("_any");
    format!("_any({get}, lambda text: {test})")
}

/// A derived-field expression as Python (a string value).
pub fn expr(e: &Expr, known: &[String], py: &mut Py) -> String {
    match e {
        Expr::Ref(name) => name_ref(name, known, py),
        Expr::Const(s) => py_str(s),
        Expr::Coalesce(items) => {
            py.use_helper("_first");
            py.use_helper("_str");
            format!("_str(_first({}))", items.iter().map(|i| expr(i, known, py)).collect::<Vec<_>>().join(", "))
        }
        Expr::Split { of, sep, index } => {
            py.use_helper("_split");
            format!("_split({}, {}, {index})", expr(of, known, py), py_str(sep))
        }
        Expr::Before { of, sep } => {
            let x = expr(of, known, py);
            format!("({x}.split({s})[0] if {s} in {x} else {x})", s = py_str(sep))
        }
        Expr::After { of, sep } => {
            let x = expr(of, known, py);
            format!("({x}.split({s})[1] if {s} in {x} else \"\")", s = py_str(sep))
        }
        Expr::AfterFirst { of, sep } => format!("{}.split({}, 1)[-1]", expr(of, known, py), py_str(sep)),
        Expr::Case { when, otherwise } => {
            let mut out = expr(otherwise, known, py);
            for arm in when.iter().rev() {
                let test = match &arm.test {
                    ExprTest::Eq { of, value } => format!("{} == {}", name_ref(of, known, py), py_str(value)),
                    ExprTest::Empty(of) => format!("{} == \"\"", name_ref(of, known, py)),
                };
                out = format!("({} if {test} else {out})", expr(&arm.then, known, py));
            }
            out
        }
    }
}

/// A field or derived name as a Python string expression.
pub fn name_ref(name: &str, known: &[String], py: &mut Py) -> String {
    if known.iter().any(|k| k == name) {
        return format!("derived[{}]", py_str(name));
    }
    py.use_helper("_str");
    match fields::resolve(name) {
        Ok(f) => format!("_str({})", getter(&f, py)),
        Err(_) => "\"\"".into(),
    }
}

/// A field or derived name as a raw Python value (for alert_context).
pub fn value_ref(name: &str, known: &[String], py: &mut Py) -> String {
    if known.iter().any(|k| k == name) {
        return format!("derived[{}]", py_str(name));
    }
    match fields::resolve(name) {
        Ok(f) => getter(&f, py),
        Err(_) => "None".into(),
    }
}
