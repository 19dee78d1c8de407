//! Panther Python → canonical condition, alert fields and the prelude.
//!
//! Input: a Panther rule module parsed by `rustpython-parser` (a Python 3 AST with byte ranges).
//! Output: a [`Logic`]: the `rule(event)` body as a canonical condition node (JSON in the
//! canonical syntax), allow-lists read by the standard `for entry in ALLOW_LIST` idiom, the
//! alert title / dedup / context where they are simple, and `targets.panther.prelude`: the module
//! code (imports, constants, functions) that the opaque parts and the functions kept verbatim need.
//!
//! How `rule(event)` is read: a statement list is a boolean (falling off the end is `False`);
//! `if T: A else: B` followed by `R` is `(T and A;R) or (not T and B;R)`, simplified when a branch
//! is a constant (the early-`return False` / `return True` chains of real rules become `all` /
//! `any`); local assignments are substituted where the name is used; module helper functions
//! that are one boolean expression are inlined. A sub-expression that cannot be made structured
//! becomes `{opaque: {lang: python, text, reason}}` with its Python text (locals substituted,
//! comments dropped); a body that cannot be read at all becomes one opaque call of the original
//! function, renamed `_panther_rule`, kept in the prelude. Nothing is dropped.
//!
//! A `for` loop over a module constant (`for x in CONST`, `for k, v in CONST.items()`) is
//! unrolled, the loop variables bound to each item. A loop over event data (`for x in
//! event.deep_get(..., default=[])`, `any(P(x) for x in ...)`, a document from `json.loads` in
//! `try: ... except json.JSONDecodeError: return False`) is the element quantifier `some` where
//! its body only returns True under conditions on the element (`continue` and falling off are
//! "the next element"): element fields become paths relative to the element, conditions on
//! the event go next to the `some`, an inner loop over an element field is a nested `some`.
//! What that needs, and why:
//! - `isinstance(x, dict): x = [x]` wraps a lone object as canonical does, but only for plain
//!   values (`json.loads` output): Panther's event objects are Mappings, not dicts (`Mapping`
//!   wraps both). Without it a lone object iterates its keys.
//! - The test must be false on an element without fields (text, a number): Python raises on
//!   `.get` there, or skips it (`if not isinstance(x, Mapping): continue`).
//! - Where Python raises before a match (a null item, an item that is not an object, a lone
//!   object iterated by its keys, `json.loads` of a value that is not text) the rule errors
//!   and alerts nothing, while `some` reads on: each such loop declares that in a
//!   `detection:` part, unless the code guards against it.
//! - `x.get("k") == "v"` / `in (...)` on an element field also excludes a list (`k[0]` absent):
//!   Python compares a list as a list, canonical its elements (`"Resource": ["*"]` is not
//!   `"*"`). A list whose first item is null is the one shape this misses; IAM rejects it.
//! - `"*" in ([a] if isinstance(a, str) else a)` is `eq` (membership; on an object Python tests
//!   its keys, which no valid policy has).
//! - No name the loop sets is read after it; no `break`, no `else`.
//!
//! Otherwise a loop whose body is `if T: return True` is kept as the one Python expression
//! `any(T for x in ...)` (the rest of the rule stays structured), and any other loop keeps the
//! function as Python; both are listed in [`Logic::event_loops`].
//!
//! `A == B` of two fields is the comparison `{field: A, op: eq, ref: B}` where the code has
//! checked a side truthy first (`if not a: return False`, `a and a == b`); elsewhere Python's
//! `None == None` and `"" == ""` are spelled out next to it (`any: [ref, both missing, both
//! ""]`), and `!=` is its negation. A lowered side, a default other than `""`, an object field
//! or a loop element's field keeps the comparison as Python.
//!
//! Semantics worth knowing:
//! - Python's `None != "x"` is true, as canonical `not eq` on a missing field is; a boolean
//!   constant in canonical also matches the strings `"true"`/`"false"`.
//! - Defaults are kept: `P(event.get(k, D))`, `P(deep_get(..., default=D))` and `P(x or D)` become
//!   `P(x)`, or `P(x) or missing` when `P(D)` holds (`missing` is `exists: false`, or `empty` for
//!   `or`); `.get` returns a JSON null as `None`, which canonical reads as missing too.
//! - `"x" in F` is a substring test only where the taxonomy knows F as text; on objects and lists
//!   Python tests keys / elements, so it stays Python.
//! - `x.lower() == "Abc"` never holds; a regex over lowered text with upper-case letters stays
//!   Python.
//! - `event.udm("actor_user")` and `get_actor_user(event)` are Panther's data-model user (by
//!   identity type: SSO session names, the Root account id, `Unknown...` placeholders), not
//!   canonical `@actor_user`: they stay Python. `sessionIssuer.userName or userIdentity.userName`
//!   is `@actor_user`.
//! - `D.get(F)` / `D[F]` of a module dict: `x in D.get(F)` is "for the entry whose key F equals, x
//!   is among its values"; `D.get(F) is None` is "F is not a key".
//! - A Python exception (e.g. `.get` on a null value) means no alert; canonical reads the field as
//!   missing, which differs only under `not`.
//! - Alert texts: a field without a default prints `None` where the canonical text prints `""`
//!   (noted); a field with another default keeps the function as Python.

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use rustpython_parser::ast::{self, Constant, Expr, Ranged, Stmt};
use rustpython_parser::{Mode, StringKind, Tok, lexer};
use serde_json::{Map, Value};
use indexmap::IndexMap;

use super::helpers;
use crate::import::{Node, Part, PartKind, Pred, all, any, not, pred};
use crate::model::OpaqueLang;
use crate::model::doc::{Opaque, SomeNode};

/// A condition while it is built: a constant or a canonical node.
#[derive(Debug, Clone, PartialEq)]
pub enum C {
    /// Always true.
    T,
    /// Always false.
    F,
    /// A canonical condition node.
    N(Value),
}

fn and2(a: C, b: C) -> C {
    match (a, b) {
        (C::F, _) | (_, C::F) => C::F,
        (C::T, x) | (x, C::T) => x,
        (C::N(x), C::N(y)) => C::N(flatten("all", vec![x, y])),
    }
}

fn or2(a: C, b: C) -> C {
    match (a, b) {
        (C::T, _) | (_, C::T) => C::T,
        (C::F, x) | (x, C::F) => x,
        (C::N(x), C::N(y)) => C::N(flatten("any", vec![x, y])),
    }
}

fn neg(a: C) -> C {
    match a {
        C::T => C::F,
        C::F => C::T,
        C::N(v) => match v {
            Value::Object(ref o) if o.len() == 1 && o.contains_key("not") => C::N(o["not"].clone()),
            Value::Object(ref o) if o.len() == 1 && o.contains_key("request_succeeded") => {
                C::N(Node::Succeeded { request_succeeded: !o["request_succeeded"].as_bool().unwrap_or(true) }.to_value())
            }
            other => C::N(not(other)),
        },
    }
}

/// `{all: [...]}` / `{any: [...]}` with nested nodes of the same kind merged.
fn flatten(kind: &str, kids: Vec<Value>) -> Value {
    let mut out = vec![];
    for k in kids {
        match k {
            Value::Object(mut o) if o.len() == 1 && o.contains_key(kind) => {
                if let Some(Value::Array(a)) = o.remove(kind) {
                    out.extend(a);
                }
            }
            other => out.push(other),
        }
    }
    if kind == "all" { all(out) } else { any(out) }
}

/// Why something could not be made structured.
type Why = String;

/// Statements to run in a scope (a continuation of a statement list).
type Frame<'a> = (Vec<&'a Stmt>, Env<'a>);

/// Does a loop body use `break` or `continue` (outside nested loops)?
fn breaks(body: &[Stmt]) -> bool {
    body.iter().any(|st| match st {
        Stmt::Break(_) | Stmt::Continue(_) => true,
        Stmt::If(i) => breaks(&i.body) || breaks(&i.orelse),
        Stmt::Try(t) => breaks(&t.body) || breaks(&t.orelse) || breaks(&t.finalbody),
        Stmt::With(w) => breaks(&w.body),
        _ => false,
    })
}

/// Local names bound to expressions, each with the scope it is read in; generator variables
/// bound to one constant at a time; loop variables bound to the element of a `some`; what the
/// tests read so far guarantee about fields.
#[derive(Clone, Default)]
struct Env<'a> {
    vars: Rc<HashMap<String, (&'a Expr, Env<'a>)>>,
    consts: Rc<HashMap<String, Value>>,
    /// Loop variables over event data: name → the nesting depth of their `some`.
    elems: Rc<HashMap<String, usize>>,
    /// Locals rebound by `if isinstance(x, dict): x = [x]` (a lone object is one element):
    /// name → whether the test was `Mapping` (true for Panther's event objects too) rather
    /// than `dict` (true only for plain values, such as `json.loads` output). Such a local is
    /// read only as the source of a loop's elements.
    wrapped: Rc<HashMap<String, bool>>,
    /// Field paths the code has checked to be truthy (so present, not null, not `""`).
    nonempty: Rc<BTreeSet<String>>,
}

impl<'a> Env<'a> {
    /// `name` no longer names a loop element or a wrapped value.
    #[allow(clippy::type_complexity)]
    fn unbind(&self, name: &str) -> (Rc<HashMap<String, usize>>, Rc<HashMap<String, bool>>) {
        let mut e = (*self.elems).clone();
        e.remove(name);
        let mut w = (*self.wrapped).clone();
        w.remove(name);
        (Rc::new(e), Rc::new(w))
    }
    fn with(&self, name: &str, e: &'a Expr, scope: Env<'a>) -> Env<'a> {
        let mut m = (*self.vars).clone();
        m.insert(name.to_string(), (e, scope));
        let mut c = (*self.consts).clone();
        c.remove(name);
        let (elems, wrapped) = self.unbind(name);
        Env { vars: Rc::new(m), consts: Rc::new(c), elems, wrapped, nonempty: self.nonempty.clone() }
    }
    fn with_const(&self, name: &str, v: Value) -> Env<'a> {
        let mut m = (*self.vars).clone();
        m.remove(name);
        let mut c = (*self.consts).clone();
        c.insert(name.to_string(), v);
        let (elems, wrapped) = self.unbind(name);
        Env { vars: Rc::new(m), consts: Rc::new(c), elems, wrapped, nonempty: self.nonempty.clone() }
    }
    /// `name` is the loop variable of the `some` at `depth`.
    fn with_elem(&self, name: &str, depth: usize) -> Env<'a> {
        let mut m = (*self.vars).clone();
        m.remove(name);
        let mut c = (*self.consts).clone();
        c.remove(name);
        let (elems, wrapped) = self.unbind(name);
        let mut elems = (*elems).clone();
        elems.insert(name.to_string(), depth);
        Env { vars: Rc::new(m), consts: Rc::new(c), elems: Rc::new(elems), wrapped, nonempty: self.nonempty.clone() }
    }
    /// `name` (already bound) now holds its value, with a lone object wrapped in a list.
    fn with_wrapped(&self, name: &str, mapping: bool) -> Env<'a> {
        let mut w = (*self.wrapped).clone();
        w.insert(name.to_string(), mapping);
        Env { wrapped: Rc::new(w), ..self.clone() }
    }
    /// These fields are known truthy from here on.
    fn with_nonempty(&self, paths: &[String]) -> Env<'a> {
        if paths.is_empty() {
            return self.clone();
        }
        let mut n = (*self.nonempty).clone();
        n.extend(paths.iter().cloned());
        Env { nonempty: Rc::new(n), ..self.clone() }
    }
    /// A local's binding (none for a wrapped local: its value is not the expression's).
    fn get(&self, name: &str) -> Option<&(&'a Expr, Env<'a>)> {
        if self.wrapped.contains_key(name) {
            return None;
        }
        self.vars.get(name)
    }
    fn constant(&self, e: &Expr) -> Option<Value> {
        name_of(e).and_then(|n| self.consts.get(n)).cloned().or_else(|| scalar(e))
    }
}

/// A reference to an event field: a canonical path, whether `.lower()` was applied, and the
/// value Python reads instead when the field is missing (`.get(k, D)`, `deep_get(..., default=D)`,
/// `x or D`).
#[derive(Debug, Clone)]
struct FieldRef {
    path: String,
    ci: bool,
    default: Option<(Value, Miss)>,
}

/// When a default replaces the field's value.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Miss {
    /// The field is absent or null (`deep_get(..., default=D)`, `.get(k, D)`).
    Absent,
    /// The field is falsy: absent, null or `""` for text (`x or D`).
    Falsy,
}

impl FieldRef {
    fn plain(path: String) -> FieldRef {
        FieldRef { path, ci: false, default: None }
    }
}

/// Where a top-level name of the module comes from.
#[derive(Debug, Clone)]
enum Def<'a> {
    /// `import m` / `from m import x`: (module, original name, statement index).
    Import(String, String, usize),
    /// `NAME = expr` at module level: (value, statement index).
    Const(&'a Expr, usize),
    /// `def f(...)`: (function, statement index).
    Func(&'a ast::StmtFunctionDef, usize),
    /// `class C: ...`: (statement index); carried into the prelude where kept code uses it.
    Class(usize),
}

/// An allow-list read by `for entry in NAME: if glob(field, entry["k"]) and ...: return False`.
#[derive(Debug, Clone)]
pub struct Allow {
    /// The module constant's name.
    pub name: String,
    /// Entry key → field path.
    pub keys: Vec<(String, String)>,
    /// Shipped entries.
    pub entries: Vec<Value>,
    /// Entry keys whose field Python reads as `""` when it is missing (`x or ""`).
    pub missing_as_empty: Vec<String>,
}

/// What the Python of one rule becomes.
#[derive(Debug, Default)]
pub struct Logic {
    /// `detection:`.
    pub detection: Value,
    /// `lists:` (canonical name → values).
    pub lists: IndexMap<String, Vec<Value>>,
    /// `allowlists:`.
    pub allows: Vec<Allow>,
    /// `alert.title`.
    pub title: Option<String>,
    /// `alert.description`.
    pub description: Option<String>,
    /// `alert.derive` steps read from rulecast's `_derive(event)` (each a map of names to
    /// expressions), before the title's.
    pub derive: Vec<IndexMap<String, Value>>,
    /// `alert.dedup`.
    pub dedup: Vec<String>,
    /// `alert.context`.
    pub context: Vec<String>,
    /// `targets.panther.prelude`.
    pub prelude: Option<String>,
    /// Parts kept opaque or verbatim, or left out (`detection: ...` / `metadata: ...`).
    pub parts: Vec<Part>,
    /// A detection part was read with a difference (not only kept as Python): the vendor's
    /// module then says something the canonical rule does not, and is not kept as its layout.
    pub differs: bool,
    /// Did the detection keep opaque Python?
    pub opaque: bool,
    /// `for` loops over event data kept as Python (the element quantifier cannot say them).
    pub event_loops: Vec<String>,
}

/// The Panther helpers rulecast knows, and how they map (see [`helpers`]).
const SUCCESS: &[&str] = &["aws_cloudtrail_success"];

/// The converter's state for one module.
struct Py<'a> {
    src: &'a str,
    defs: HashMap<String, Def<'a>>,
    /// The rule function's event parameter.
    root: String,
    /// Module names the opaque text and kept functions use.
    used: BTreeSet<String>,
    /// `lists:` collected.
    lists: IndexMap<String, Vec<Value>>,
    /// Inlining depth guard.
    depth: usize,
    /// Set when an alert text reads a field without a default (Python prints `None` for it).
    prints_none: bool,
    /// The loops over event data kept as Python.
    loops: Vec<String>,
    /// The `some` being read: for each nesting depth, whether its elements are plain Python
    /// values (`json.loads` output) rather than Panther's immutable event containers.
    elem_plain: Vec<bool>,
    /// What the loops read as `some` declare (where Python raises and canonical reads on).
    declared: Vec<Part>,
    /// Loops read as `some`.
    somes: usize,
    /// The names rulecast's `_derive(event)` sets (`derived["N"]` in the alert functions).
    derived: Vec<String>,
    /// The element variables of the target's `some` loops being read (`_e1`, ...), innermost last.
    elem_vars: Vec<String>,
}

fn s(e: &Expr) -> Option<&str> {
    match e {
        Expr::Constant(c) => match &c.value {
            Constant::Str(s) => Some(s.as_str()),
            _ => None,
        },
        _ => None,
    }
}

fn scalar(e: &Expr) -> Option<Value> {
    match e {
        Expr::Constant(c) => match &c.value {
            Constant::Str(s) => Some(Value::from(s.as_str())),
            Constant::Bool(b) => Some(Value::Bool(*b)),
            Constant::Int(i) => i.to_string().parse::<i64>().ok().map(Value::from),
            Constant::Float(f) => serde_json::Number::from_f64(*f).map(Value::Number),
            _ => None,
        },
        Expr::UnaryOp(u) if matches!(u.op, ast::UnaryOp::USub) => match scalar(&u.operand)? {
            Value::Number(n) => n.as_i64().map(|i| Value::from(-i)).or_else(|| n.as_f64().map(|f| Value::from(-f))),
            _ => None,
        },
        _ => None,
    }
}

fn is_none(e: &Expr) -> bool {
    matches!(e, Expr::Constant(c) if matches!(c.value, Constant::None))
}

/// `x.split(sep[, n])[i]`: (x, sep, the arguments after sep, i).
fn split_of(e: &Expr) -> Option<(&Expr, String, Vec<i64>, Option<i64>)> {
        // (input, sep, call args after sep, index)
        let Expr::Subscript(sub) = e else { return None };
        let idx = match sub.slice.as_ref() {
            Expr::Constant(c) => match &c.value {
                Constant::Int(i) => i.to_string().parse::<i64>().ok(),
                _ => None,
            },
            Expr::UnaryOp(u) if matches!(u.op, ast::UnaryOp::USub) => num_neg(&u.operand).and_then(|v| v.as_i64()),
            _ => None,
        };
        let Expr::Call(c) = sub.value.as_ref() else { return None };
        let Expr::Attribute(a) = c.func.as_ref() else { return None };
        if a.attr.as_str() != "split" {
            return None;
        }
        let sep = s(c.args.first()?)?.to_string();
        let rest: Vec<i64> = c.args[1..].iter().map(|x| scalar(x).and_then(|v| v.as_i64())).collect::<Option<Vec<_>>>()?;
        Some((a.value.as_ref(), sep, rest, idx))
}

/// Does a derive expression read `name`?
fn refs_name(e: &crate::model::Expr, name: &str) -> bool {
    use crate::model::{Expr as X, ExprTest};
    match e {
        X::Ref(n) => n == name,
        X::Const(_) => false,
        X::Coalesce(items) => items.iter().any(|i| refs_name(i, name)),
        X::Split { of, .. } | X::Before { of, .. } | X::After { of, .. } | X::AfterFirst { of, .. } => refs_name(of, name),
        X::Case { when, otherwise } => {
            refs_name(otherwise, name)
                || when.iter().any(|a| refs_name(&a.then, name) || matches!(&a.test, ExprTest::Eq { of, .. } | ExprTest::Empty(of) if of == name))
        }
    }
}

/// A pattern with the classes case folding writes (`[Pp]`, `[Ss\u017f]`, `[Kk\u212a]`) back as
/// the lower-case letter.
fn unfold_classes(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    let mut rest = p;
    while let Some(i) = rest.find('[') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let b = tail.as_bytes();
        let pair = b.len() >= 4 && b[1].is_ascii_alphabetic() && b[2].is_ascii_alphabetic() && b[1] != b[2] && b[1].eq_ignore_ascii_case(&b[2]);
        let extra = ["\\u017f]", "\\u212a]", "]"].iter().find(|e| pair && tail[3..].starts_with(*e));
        match extra {
            Some(e) => {
                out.push((b[1] as char).to_ascii_lowercase());
                rest = &tail[3 + e.len()..];
            }
            None => {
                out.push('[');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The glob a regex written by `glob_to_regex` came from (`.*` is `*`, `.` is `?`, `\\x` is x).
fn glob_of_regex(re: &str) -> Option<String> {
    let body = re.strip_prefix("(?s)^")?.strip_suffix('$')?;
    let mut out = String::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' if chars.peek() == Some(&'*') => {
                chars.next();
                out.push('*');
            }
            '.' => out.push('?'),
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    Some(out)
}

/// A negated number literal (`-5`).
fn num_neg(e: &Expr) -> Option<Value> {
    match e {
        Expr::Constant(c) => match &c.value {
            Constant::Int(i) => i.to_string().parse::<i64>().ok().map(|n| Value::from(-n)),
            Constant::Float(f) => serde_json::Number::from_f64(-*f).map(Value::Number),
            _ => None,
        },
        _ => None,
    }
}

fn name_of(e: &Expr) -> Option<&str> {
    match e {
        Expr::Name(n) => Some(n.id.as_str()),
        _ => None,
    }
}

/// A default value Python would read: a scalar, `{}` or `[]` (`None` is no default).
fn default_value(e: &Expr) -> Option<Option<Value>> {
    if is_none(e) {
        return Some(None);
    }
    match e {
        Expr::Dict(d) if d.keys.is_empty() => Some(Some(Value::Object(Map::new()))),
        Expr::List(l) if l.elts.is_empty() => Some(Some(Value::Array(vec![]))),
        Expr::Tuple(t) if t.elts.is_empty() => Some(Some(Value::Array(vec![]))),
        other => scalar(other).map(Some),
    }
}

/// A JSON value as a Python literal: the Panther target's, whose strings go through its one
/// escaping function.
fn py_literal(v: &Value) -> String {
    crate::vendors::panther::target::py_literal(v)
}

fn is_falsy(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

fn lower(v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(s.to_lowercase()),
        other => other,
    }
}

/// An element field compared with `==` / `in`: Python compares a list as a list, canonical
/// compares its elements, so a list (one with a first item) is excluded. Event fields keep
/// the model's convention (CloudTrail writes them with one type).
fn not_list(f: &FieldRef) -> C {
    match elem_split(&f.path) {
        Some((_, rel)) if !rel.is_empty() => C::N(pred(&format!("{}[0]", f.path), "exists", vec![Value::Bool(false)], false)),
        _ => C::T,
    }
}

/// Does a canonical predicate hold on a constant (the default Python reads for a missing field)?
fn holds_on(op: &str, vals: &[Value], ci: bool, value: &Value) -> bool {
    let (Ok(field), Ok(op)) = (crate::fields::resolve("eventName"), serde_json::from_value::<crate::model::Op>(Value::from(op))) else {
        return false;
    };
    let p = crate::condition::Pred {
        field,
        op,
        // `x.lower() == "Abc"` never holds
        values: vals.iter().filter(|v| !ci || op == crate::model::Op::Regex || v.as_str().is_none_or(|s| s.to_lowercase() == s)).cloned().collect(),
        list: None,
        case: if ci { crate::model::Case::Insensitive } else { crate::model::Case::Sensitive },
        span: None,
    };
    crate::eval::pred(&p, &Value::Object(Map::from_iter([("eventName".to_string(), value.clone())])))
}

/// Module names as canonical list names: `SECURITY_CONFIG_ACTIONS` → `SecurityConfigActions`.
pub fn list_name(constant: &str) -> String {
    let mut out = String::new();
    for part in constant.split('_').filter(|p| !p.is_empty()) {
        let mut cs = part.chars();
        if let Some(c) = cs.next() {
            out.push(c.to_ascii_uppercase());
            out.extend(cs.map(|c| c.to_ascii_lowercase()));
        }
    }
    if out.is_empty() || !out.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
        format!("List{out}")
    } else {
        out
    }
}

/// Does the canonical taxonomy know this path? (only known fields become predicates) Inside a
/// loop over event data, a path below the loop variable (`$1.Effect`, see [`elem_split`]) is
/// an element field: any well-formed path.
fn known_field(path: &str) -> bool {
    if let Some((_, rel)) = elem_split(path) {
        return rel.is_empty() || crate::fields::parse_path(rel).is_ok();
    }
    !path.starts_with('#') && crate::fields::resolve(path).is_ok()
}

/// While a loop over event data is read, element fields are written `$D.rel` (`$D` the
/// element of the `some` at depth D itself) and fields of a decoded JSON text `#F#.rel`; both
/// markers are rewritten (or refused) before anything leaves this module, and neither can
/// load as a canonical path. `$2.Action` → (2, "Action"); `$1` → (1, "").
fn elem_split(path: &str) -> Option<(usize, &str)> {
    let rest = path.strip_prefix('$')?;
    let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    let depth = rest[..end].parse().ok()?;
    match &rest[end..] {
        "" => Some((depth, "")),
        r => r.strip_prefix('.').map(|rel| (depth, rel)),
    }
}

/// `#requestParameters.policyDocument#.Statement` → ("requestParameters.policyDocument", "Statement").
fn decoded_split(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('#')?;
    let (field, rel) = rest.split_once('#')?;
    match rel {
        "" => Some((field, "")),
        r => r.strip_prefix('.').map(|rel| (field, rel)),
    }
}

/// Panther's data model for CloudTrail (`event.udm(name)`), where it is one field.
/// Only the names the standard data model maps to one path: its `actor_user` depends on the
/// identity type (SSO session names, the Root account id, `Unknown...` placeholders) and its
/// `source_ip` drops values that are not IP addresses, so neither is canonical `@actor_user` /
/// `sourceIPAddress`; they stay Python.
const UDM: &[(&str, &str)] = &[
    ("user_agent", "userAgent"),
    ("user", "responseElements.user.userName"),
    ("user_account_id", "responseElements.user.userId"),
];

fn join_path(base: &str, key: &Value) -> Option<String> {
    match key {
        Value::String(k) if !k.is_empty() && !k.contains(['.', '[', ']', ' ']) => {
            Some(if base.is_empty() { k.clone() } else { format!("{base}.{k}") })
        }
        Value::Number(n) if !base.is_empty() => n.as_i64().map(|i| format!("{base}[{i}]")),
        _ => None,
    }
}

enum Base {
    Root,
    Field(FieldRef),
}

/// Where the elements of a loop over event data come from (see `Py::source`).
struct Source {
    /// The field: an event path, or `$D.rel` below an enclosing element.
    field: String,
    /// JSON text decoded first (`json.loads`).
    decode: bool,
    /// The path inside the decoded document (`Statement`).
    path: String,
    /// A lone object is one element (Python wraps it in a list), as in canonical.
    wrapped: bool,
    /// The elements are plain Python values (`json.loads` output), not Panther's immutable
    /// event containers (for which `isinstance(x, dict)` is false).
    plain: bool,
}

/// The body of a loop over event data.
#[derive(Clone, Copy)]
enum Body<'a> {
    /// `for x in ...:` statements.
    Stmts(&'a [Stmt]),
    /// `any(ELT for x in ... if IF ...)`.
    Gen(&'a Expr, &'a [Expr]),
}

/// How a loop body guards against elements that are not objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Guard {
    /// No guard: a null item or text raises at `.get`.
    None,
    /// Null items skipped (`if x is None: continue`, `if not x: continue`, `x and ...`).
    NotNone,
    /// Only objects tested (`isinstance(x, dict)`; `true`: `Mapping`).
    Object(bool),
}

/// A top-level conjunct of a loop's condition that only guards the element of depth `depth`.
fn guard_of(k: &Value, depth: usize) -> Option<Guard> {
    let o = k.as_object()?;
    if let Some(g) = o.get("$guard") {
        return (g["depth"].as_u64() == Some(depth as u64)).then(|| Guard::Object(g["mapping"].as_bool().unwrap_or(false)));
    }
    if let Some(d) = o.get("$truthy") {
        return (d.as_u64() == Some(depth as u64)).then_some(Guard::NotNone);
    }
    let n = o.get("not")?.as_object()?;
    let is_self = n.get("field").and_then(Value::as_str) == Some(&format!("${depth}"));
    (is_self && n.get("op").and_then(Value::as_str) == Some("exists") && n.get("value") == Some(&Value::Bool(false))).then_some(Guard::NotNone)
}

/// The element depths a condition reads (an enclosing `some`'s field, not its `where`);
/// `bad` when it holds something that cannot move (opaque Python, markers, decoded fields).
fn depths_in(v: &Value, seen: &mut BTreeSet<usize>, bad: &mut bool) {
    let mut path = |p: Option<&Value>| match p.and_then(Value::as_str) {
        Some(p) if decoded_split(p).is_some() => *bad = true,
        Some(p) => {
            if let Some((d, _)) = elem_split(p) {
                seen.insert(d);
            }
        }
        None => {}
    };
    let Some(o) = v.as_object() else {
        *bad = true;
        return;
    };
    if let Some(kids) = o.get("all").or_else(|| o.get("any")).and_then(Value::as_array) {
        kids.iter().for_each(|k| depths_in(k, seen, bad));
    } else if let Some(k) = o.get("not") {
        depths_in(k, seen, bad);
    } else if let Some(q) = o.get("some") {
        path(q.get("field"));
    } else if o.contains_key("field") {
        path(o.get("field"));
        path(o.get("ref"));
    } else if !o.contains_key("request_succeeded") {
        *bad = true;
    }
}

/// A condition on the element of depth `depth` with its fields made relative to it; None if
/// it reads anything else.
fn localise(v: &Value, depth: usize) -> Option<Value> {
    let rel = |p: &Value| -> Option<Value> {
        match elem_split(p.as_str()?) {
            Some((d, rel)) if d == depth && !rel.is_empty() => Some(Value::from(rel)),
            _ => None,
        }
    };
    let o = v.as_object()?;
    for kind in ["all", "any"] {
        if let Some(kids) = o.get(kind) {
            let kids = kids.as_array()?.iter().map(|k| localise(k, depth)).collect::<Option<Vec<_>>>()?;
            return Some(if kind == "all" { Node::All { all: kids.into_iter().map(Node::Json).collect() } } else { Node::Any { any: kids.into_iter().map(Node::Json).collect() } }.to_value());
        }
    }
    if let Some(k) = o.get("not") {
        return Some(not(localise(k, depth)?));
    }
    if let Some(q) = o.get("some") {
        let mut q = q.as_object()?.clone();
        let f = rel(q.get("field")?)?;
        q.insert("field".into(), f);
        return Some(Value::Object(Map::from_iter([("some".to_string(), Value::Object(q))])));
    }
    if o.contains_key("field") {
        let mut m = o.clone();
        m.insert("field".into(), rel(&o["field"])?);
        if let Some(r) = o.get("ref") {
            m.insert("ref".into(), rel(r)?);
        }
        return Some(Value::Object(m));
    }
    None
}

/// Does an element condition hold on an element without fields (text, a number, `{}`)?
/// (None: it cannot be told.)
fn fieldless(v: &Value) -> Option<bool> {
    let o = v.as_object()?;
    if let Some(kids) = o.get("all").and_then(Value::as_array) {
        let r: Vec<Option<bool>> = kids.iter().map(fieldless).collect();
        return if r.contains(&Some(false)) { Some(false) } else if r.contains(&None) { None } else { Some(true) };
    }
    if let Some(kids) = o.get("any").and_then(Value::as_array) {
        let r: Vec<Option<bool>> = kids.iter().map(fieldless).collect();
        return if r.contains(&Some(true)) { Some(true) } else if r.contains(&None) { None } else { Some(false) };
    }
    if let Some(k) = o.get("not") {
        return fieldless(k).map(|b| !b);
    }
    if o.contains_key("some") || o.contains_key("ref") {
        return Some(false);
    }
    let want = o.get("value").and_then(Value::as_bool).unwrap_or(true);
    match o.get("op")?.as_str()? {
        "exists" => Some(!want),
        "empty" => Some(want),
        _ => Some(false),
    }
}

/// Is the condition false whenever `field`'s text is not JSON (it needs a `some` over the
/// decoded document in every way it can hold)?
fn false_without(v: &Value, field: &str) -> bool {
    let Some(o) = v.as_object() else { return false };
    if let Some(q) = o.get("some") {
        return q.get("field").and_then(Value::as_str) == Some(field) && q.get("decode") == Some(&Value::from("json"));
    }
    if let Some(kids) = o.get("all").and_then(Value::as_array) {
        return kids.iter().any(|k| false_without(k, field));
    }
    if let Some(kids) = o.get("any").and_then(Value::as_array) {
        return !kids.is_empty() && kids.iter().all(|k| false_without(k, field));
    }
    false
}

/// Does a loop body `break` (outside nested loops)?
fn has_break(body: &[Stmt]) -> bool {
    body.iter().any(|st| match st {
        Stmt::Break(_) => true,
        Stmt::If(i) => has_break(&i.body) || has_break(&i.orelse),
        Stmt::Try(t) => has_break(&t.body) || has_break(&t.orelse) || has_break(&t.finalbody),
        Stmt::With(w) => has_break(&w.body),
        _ => false,
    })
}

/// The names a statement list assigns (loop variables included), nested blocks too.
fn assigned_in(body: &[Stmt], out: &mut BTreeSet<String>) {
    let target = |t: &Expr, out: &mut BTreeSet<String>| {
        for n in names_in_target(t) {
            out.insert(n);
        }
    };
    for st in body {
        match st {
            Stmt::Assign(a) => a.targets.iter().for_each(|t| target(t, out)),
            Stmt::AnnAssign(a) => target(&a.target, out),
            Stmt::AugAssign(a) => target(&a.target, out),
            Stmt::For(f) => {
                target(&f.target, out);
                assigned_in(&f.body, out);
                assigned_in(&f.orelse, out);
            }
            Stmt::If(i) => {
                assigned_in(&i.body, out);
                assigned_in(&i.orelse, out);
            }
            Stmt::With(w) => assigned_in(&w.body, out),
            Stmt::Try(t) => {
                assigned_in(&t.body, out);
                assigned_in(&t.orelse, out);
                assigned_in(&t.finalbody, out);
            }
            _ => {}
        }
    }
}

fn names_in_target(t: &Expr) -> Vec<String> {
    match t {
        Expr::Name(n) => vec![n.id.to_string()],
        Expr::Tuple(x) => x.elts.iter().flat_map(names_in_target).collect(),
        Expr::List(x) => x.elts.iter().flat_map(names_in_target).collect(),
        _ => vec![],
    }
}

impl<'a> Py<'a> {
    fn text(&self, r: ast::text_size::TextRange) -> &'a str {
        self.src.get(r.start().to_usize()..r.end().to_usize()).unwrap_or("")
    }

    /// The event itself, or a field of it.
    fn base(&self, e: &'a Expr, env: &Env<'a>) -> Option<Base> {
        if let Some(n) = name_of(e) {
            if let Some((x, scope)) = env.get(n) {
                return self.base(x, scope);
            }
            if n == self.root {
                return Some(Base::Root);
            }
            if let Some(d) = env.elems.get(n) {
                return Some(Base::Field(FieldRef::plain(format!("${d}"))));
            }
            return None;
        }
        self.field_raw(e, env).map(Base::Field)
    }

    /// A field read, possibly not in the taxonomy.
    fn field_raw(&self, e: &'a Expr, env: &Env<'a>) -> Option<FieldRef> {
        // a default on a field read below another one is not the final value: only the
        // outermost read may carry one
        // (`{}` is harmless: reading below it finds nothing, as below a missing field)
        let inner = |f: FieldRef| (!f.ci && f.default.as_ref().is_none_or(|(d, _)| d == &Value::Object(Map::new()))).then_some(f);
        // the Panther target's getters (`_get(event, (...))`, a virtual field's expression) and
        // `_str(getter)`, its text with "" for a missing value
        if let Some(path) = self.rulecast_getter(e) {
            return Some(FieldRef::plain(path));
        }
        // `derived["N"]` with `derived = _derive(event)`: the derived name
        if let Expr::Subscript(sub) = e {
            if let (Some(n), Some(key)) = (name_of(&sub.value), s(&sub.slice)) {
                let is_derive_call = |x: &Expr| matches!(x, Expr::Call(c) if name_of(&c.func) == Some("_derive") && c.args.len() == 1 && name_of(&c.args[0]) == Some(self.root.as_str()));
                if env.get(n).is_some_and(|(x, _)| is_derive_call(x)) && self.derived.iter().any(|d| d == key) {
                    // a derived value is always text ("" where its inputs are missing)
                    return Some(FieldRef::plain(key.to_string()));
                }
            }
        }
        if let Expr::Call(c) = e {
            if name_of(&c.func) == Some("field_str") && c.args.len() == 1 && c.keywords.is_empty() && self.rulecast_helper("field_str") {
                if let Some(path) = self.rulecast_getter(&c.args[0]) {
                    return Some(FieldRef { path, ci: false, default: Some((Value::from(""), Miss::Absent)) });
                }
            }
        }
        match e {
            Expr::Name(n) => match env.get(n.id.as_str()) {
                Some((x, scope)) => self.field_raw(x, scope),
                // a loop variable: the element itself
                None => env.elems.get(n.id.as_str()).map(|d| FieldRef::plain(format!("${d}"))),
            },
            // `event.get("x") or ""` reads the field, or the constant when it is falsy
            Expr::BoolOp(b) if matches!(b.op, ast::BoolOp::Or) && b.values.len() >= 2 => {
                if let Some(f) = self.actor_user_coalesce(&b.values, env) {
                    return Some(f);
                }
                if b.values.len() != 2 {
                    return None;
                }
                let f = self.field_raw(&b.values[0], env)?;
                if f.default.is_some() {
                    return None;
                }
                let d = match &b.values[1] {
                    Expr::Dict(d) if d.keys.is_empty() => Value::Object(Map::new()),
                    Expr::List(l) if l.elts.is_empty() => Value::Array(vec![]),
                    other => scalar(other)?,
                };
                // falsy for text is absent, null or "": only text fields say that exactly
                let text = crate::fields::resolve(&f.path).is_ok_and(|x| matches!(x.kind, crate::fields::Kind::String));
                if !text {
                    return None;
                }
                let d = if f.ci { lower(d) } else { d };
                Some(FieldRef { default: Some((d, Miss::Falsy)), ..f })
            }
            Expr::Subscript(sub) => {
                let key = scalar(&sub.slice)?;
                match self.base(&sub.value, env)? {
                    Base::Root => Some(FieldRef::plain(join_path("", &key)?)),
                    Base::Field(f) => Some(FieldRef::plain(join_path(&inner(f)?.path, &key)?)),
                }
            }
            Expr::Call(call) => {
                let kw_ok = call.keywords.iter().all(|k| k.arg.as_ref().is_some_and(|a| a.as_str() == "default"));
                let kw_default = || -> Option<Option<Value>> {
                    match call.keywords.first() {
                        None => Some(None),
                        Some(k) => default_value(&k.value),
                    }
                };
                match call.func.as_ref() {
                    Expr::Attribute(at) => {
                        let attr = at.attr.as_str();
                        match attr {
                            "lower" | "casefold" if call.args.is_empty() => {
                                let f = self.field_raw(&at.value, env)?;
                                let default = f.default.map(|(d, m)| (lower(d), m));
                                Some(FieldRef { path: f.path, ci: true, default })
                            }
                            "get" if call.keywords.is_empty() && !call.args.is_empty() && call.args.len() <= 2 => {
                                let key = scalar(&call.args[0])?;
                                let default = match call.args.get(1) {
                                    None => None,
                                    Some(d) => default_value(d)?,
                                };
                                let path = match self.base(&at.value, env)? {
                                    Base::Root => join_path("", &key)?,
                                    Base::Field(f) => join_path(&inner(f)?.path, &key)?,
                                };
                                Some(FieldRef { path, ci: false, default: default.map(|d| (d, Miss::Absent)) })
                            }
                            "deep_get" if kw_ok && !call.args.is_empty() => {
                                let mut path = match self.base(&at.value, env)? {
                                    Base::Root => String::new(),
                                    Base::Field(f) => inner(f)?.path,
                                };
                                for a in &call.args {
                                    path = join_path(&path, &scalar(a)?)?;
                                }
                                let default = kw_default()?;
                                Some(FieldRef { path, ci: false, default: default.map(|d| (d, Miss::Absent)) })
                            }
                            // `json.loads(F)`: the document F's text holds (read only as the
                            // source of a loop's elements)
                            "loads" if name_of(&at.value) == Some("json") && self.is_module("json") && call.args.len() == 1 && call.keywords.is_empty() => {
                                let f = self.field(&call.args[0], env)?;
                                let default_ok = match &f.default {
                                    None => true,
                                    // the texts whose document has no elements at any path
                                    Some((Value::String(d), Miss::Absent)) => matches!(d.as_str(), "" | "{}" | "[]"),
                                    Some(_) => false,
                                };
                                (default_ok && !f.ci && elem_split(&f.path).is_none()).then(|| FieldRef::plain(format!("#{}#", f.path)))
                            }
                            "udm" if call.args.len() == 1 && call.keywords.is_empty() && matches!(self.base(&at.value, env), Some(Base::Root)) => {
                                let n = s(&call.args[0])?;
                                UDM.iter().find(|u| u.0 == n).map(|u| FieldRef::plain(u.1.to_string()))
                            }
                            _ => None,
                        }
                    }
                    Expr::Name(f) if f.id.as_str() == "deep_get" && kw_ok && call.args.len() >= 2 => {
                        if !self.is_helper(f.id.as_str()) {
                            return None;
                        }
                        let mut path = match self.base(&call.args[0], env)? {
                            Base::Root => String::new(),
                            Base::Field(f) => inner(f)?.path,
                        };
                        for a in &call.args[1..] {
                            path = join_path(&path, &scalar(a)?)?;
                        }
                        let default = kw_default()?;
                        Some(FieldRef { path, ci: false, default: default.map(|d| (d, Miss::Absent)) })
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// `sessionIssuer.userName or userIdentity.userName [or ""]`: the canonical `@actor_user`
    /// (the first non-empty of the two; both are text).
    fn actor_user_coalesce(&self, values: &'a [Expr], env: &Env<'a>) -> Option<FieldRef> {
        let (a, b) = (values.first()?, values.get(1)?);
        let (fa, fb) = (self.field_raw(a, env)?, self.field_raw(b, env)?);
        if fa.ci || fb.ci || fa.default.is_some() || fb.default.is_some() {
            return None;
        }
        if fa.path != "userIdentity.sessionContext.sessionIssuer.userName" || fb.path != "userIdentity.userName" {
            return None;
        }
        match values.get(2..) {
            Some([]) | None => Some(FieldRef::plain("@actor_user".into())),
            Some([d]) => {
                let d = scalar(d).filter(|d| d == &Value::from(""))?;
                Some(FieldRef { default: Some((d, Miss::Falsy)), ..FieldRef::plain("@actor_user".into()) })
            }
            _ => None,
        }
    }

    /// A field read that the canonical taxonomy knows.
    fn field(&self, e: &'a Expr, env: &Env<'a>) -> Option<FieldRef> {
        self.field_raw(e, env).filter(|f| known_field(&f.path) || self.derived.contains(&f.path))
    }

    /// Is `name` one of the Panther target's helpers, imported under its own name from the
    /// global module the target writes (`from rulecast_helpers import name`)? Then calls of it
    /// mean what the target means by them.
    fn rulecast_helper(&self, name: &str) -> bool {
        use crate::vendors::panther::target::python::{HELPERS, MODULE_NAME};
        HELPERS.contains(&name) && matches!(self.defs.get(name), Some(Def::Import(m, orig, _)) if m == MODULE_NAME && orig == name)
    }

    /// rulecast's `_derive(event)` (`derived = {}`, `derived["N"] = <expression>`, ...,
    /// `return derived`) as derive steps: a new step wherever an expression reads a name the
    /// current step sets.
    fn rulecast_derive(&self, f: &ast::StmtFunctionDef) -> Option<Vec<IndexMap<String, Value>>> {
        let [first, assigns @ .., last] = f.body.as_slice() else { return None };
        let is_derived = |e: &Expr| name_of(e) == Some("derived");
        match (first, last) {
            (Stmt::Assign(a), Stmt::Return(r)) if a.targets.len() == 1 && is_derived(&a.targets[0]) && matches!(a.value.as_ref(), Expr::Dict(d) if d.keys.is_empty()) && r.value.as_deref().is_some_and(is_derived) => {}
            _ => return None,
        }
        if f.args.args.len() != 1 || f.args.args[0].def.arg.as_str() != "event" {
            return None;
        }
        let mut steps: Vec<IndexMap<String, Value>> = vec![];
        let mut known: Vec<String> = vec![];
        for st in assigns {
            let Stmt::Assign(a) = st else { return None };
            let [Expr::Subscript(sub)] = a.targets.as_slice() else { return None };
            if !is_derived(&sub.value) {
                return None;
            }
            let name = s(&sub.slice)?.to_string();
            let e = self.rulecast_expr(&a.value, &known)?;
            let reads_current = steps.last().is_some_and(|step| step.keys().any(|k| refs_name(&e, k)));
            if steps.is_empty() || reads_current || steps.last().is_some_and(|st| st.contains_key(&name)) {
                steps.push(IndexMap::new());
            }
            known.push(name.clone());
            steps.last_mut()?.insert(name, serde_json::to_value(&e).ok()?);
        }
        Some(steps)
    }

    /// A derive expression the Panther target wrote (`python::expr`), read back.
    fn rulecast_expr(&self, e: &Expr, known: &[String]) -> Option<crate::model::Expr> {
        use crate::model::{CaseArm, Expr as X, ExprTest};
        // a field or name as text: `derived["N"]` or `_str(getter)`
        let name_ref = |e: &Expr| -> Option<String> {
            match e {
                Expr::Subscript(sub) if name_of(&sub.value) == Some("derived") => s(&sub.slice).filter(|n| known.iter().any(|k| k == n)).map(str::to_string),
                Expr::Call(c) if name_of(&c.func) == Some("field_str") && c.args.len() == 1 && self.rulecast_helper("field_str") => self.rulecast_getter(&c.args[0]),
                _ => None,
            }
        };
        if let Some(n) = name_ref(e) {
            return Some(X::Ref(n));
        }
        // `x.split(sep)[i]`-shaped forms

        match e {
            Expr::Constant(_) => s(e).map(|t| X::Const(t.to_string())),
            Expr::Call(c) if c.keywords.is_empty() => match (name_of(&c.func)?, c.args.as_slice()) {
                ("field_str", [Expr::Call(inner)]) if name_of(&inner.func) == Some("first_set") && self.rulecast_helper("first_set") && self.rulecast_helper("field_str") => {
                    Some(X::Coalesce(inner.args.iter().map(|a| self.rulecast_expr(a, known)).collect::<Option<Vec<_>>>()?))
                }
                ("split_part", [of, sep, idx]) if self.rulecast_helper("split_part") => {
                    Some(X::Split { of: Box::new(self.rulecast_expr(of, known)?), sep: s(sep)?.to_string(), index: scalar(idx).and_then(|v| v.as_i64()).or_else(|| match idx { Expr::UnaryOp(u) => num_neg(&u.operand).and_then(|v| v.as_i64()), _ => None })? })
                }
                _ => None,
            },
            // `x.split(sep, 1)[-1]`
            Expr::Subscript(_) => {
                let (of, sep, rest, idx) = split_of(e)?;
                (rest == [1] && idx == Some(-1)).then_some(())?;
                Some(X::AfterFirst { of: Box::new(self.rulecast_expr(of, known)?), sep })
            }
            // `(x.split(s)[0] if s in x else x)`, `(x.split(s)[1] if s in x else "")`, or a case arm
            Expr::IfExp(ie) => {
                let Expr::Compare(test) = ie.test.as_ref() else { return None };
                if let (Some((of, sep, rest, idx)), [ast::CmpOp::In]) = (split_of(&ie.body), test.ops.as_slice()) {
                    let same = |x: &Expr| same_code(self.text(x.range()), self.text(of.range()));
                    if rest.is_empty() && s(&test.left) == Some(sep.as_str()) && same(&test.comparators[0]) {
                        let of_e = Box::new(self.rulecast_expr(of, known)?);
                        return match (idx, ie.orelse.as_ref()) {
                            (Some(0), x) if same(x) => Some(X::Before { of: of_e, sep }),
                            (Some(1), x) if s(x) == Some("") => Some(X::After { of: of_e, sep }),
                            _ => None,
                        };
                    }
                }
                // `(then if name == "v" else otherwise)`
                if !matches!(test.ops.as_slice(), [ast::CmpOp::Eq]) {
                    return None;
                }
                let of = name_ref(&test.left)?;
                let value = s(&test.comparators[0])?.to_string();
                let arm_test = if value.is_empty() { ExprTest::Empty(of) } else { ExprTest::Eq { of, value } };
                let then = self.rulecast_expr(&ie.body, known)?;
                let otherwise = self.rulecast_expr(&ie.orelse, known)?;
                let mut when = vec![CaseArm { test: arm_test, then }];
                let otherwise = match otherwise {
                    X::Case { when: more, otherwise } => {
                        when.extend(more);
                        *otherwise
                    }
                    other => other,
                };
                Some(X::Case { when, otherwise: Box::new(otherwise) })
            }
            _ => None,
        }
    }

    /// The canonical path a getter the Panther target writes reads: `_get(event, ("a", 0))`, or
    /// a virtual field's expression (`_outcome(event)`).
    fn rulecast_getter(&self, e: &Expr) -> Option<String> {
        if let Expr::Call(c) = e {
            // `event.get("k")`, `event.deep_get("a", "b")`: the target's getters of key paths
            if let Expr::Attribute(a) = c.func.as_ref() {
                let one = a.attr.as_str() == "get" && c.args.len() == 1;
                let deep = a.attr.as_str() == "deep_get" && c.args.len() >= 2;
                if name_of(&a.value) == Some("event") && c.keywords.is_empty() && (one || deep) {
                    let keys: Vec<crate::fields::Seg> = c.args.iter().map(|k| s(k).map(|k| crate::fields::Seg::Key(k.to_string()))).collect::<Option<Vec<_>>>()?;
                    let path = crate::fields::seg_path(&keys);
                    return known_field(&path).then_some(path);
                }
            }
            let on_element = self.elem_vars.last().is_some_and(|v| c.args.first().and_then(name_of) == Some(v.as_str()));
            if name_of(&c.func) == Some("get_path") && c.args.len() == 2 && c.keywords.is_empty() && (name_of(&c.args[0]) == Some("event") || on_element) && self.rulecast_helper("get_path") {
                let Expr::Tuple(t) = &c.args[1] else { return None };
                let mut segs = vec![];
                for x in &t.elts {
                    match x {
                        Expr::Constant(k) => match &k.value {
                            Constant::Str(s) => segs.push(crate::fields::Seg::Key(s.to_string())),
                            Constant::Int(i) => segs.push(crate::fields::Seg::Index(i.to_string().parse().ok()?)),
                            _ => return None,
                        },
                        _ => return None,
                    }
                }
                let path = crate::fields::seg_path(&segs);
                // a path inside the element is relative to it
                return (on_element || known_field(&path)).then_some(path);
            }
        }
        let text = self.text(e.range());
        crate::fields::VIRTUAL.iter().find_map(|v| {
            let f = crate::fields::resolve(v.name).ok()?;
            let expr = f.maps.panther.expr.as_deref()?;
            let helpers_own = f.maps.panther.helpers.iter().all(|h| self.rulecast_helper(h));
            (same_code(expr, text) && helpers_own).then(|| v.name.to_string())
        })
    }

    /// A condition in a form the Panther target writes (`python::pred`): `_any(getter, lambda
    /// text: test)`, `getter in (None, "")`, `getter is not None`, `_mentions(getter, (...), fold)`.
    fn rulecast_form(&mut self, e: &'a Expr) -> Option<C> {
        match e {
            Expr::Call(c) if c.keywords.is_empty() => match (name_of(&c.func)?, c.args.as_slice()) {
                ("any_text", [g, Expr::Lambda(l)]) if self.rulecast_helper("any_text") => {
                    let path = self.rulecast_getter(g)?;
                    let [arg] = l.args.args.as_slice() else { return None };
                    if arg.def.arg.as_str() != "text" || l.args.args.len() != 1 {
                        return None;
                    }
                    self.rulecast_test(&path, &l.body)
                }
                ("aws_cloudtrail_success", [x]) if name_of(x) == Some("event") && self.rulecast_helper("aws_cloudtrail_success") => {
                    Some(C::N(Node::Succeeded { request_succeeded: true }.to_value()))
                }
                // `any(test for _eN in _elements(getter, decode, path))`: the target's `some`
                ("any", [Expr::GeneratorExp(g)]) if g.generators.len() == 1 && self.rulecast_helper("elements") && matches!(&g.generators[0].iter, Expr::Call(c) if name_of(&c.func) == Some("elements")) => self.rulecast_some(g),
                // `any(left == right for left in _texts(A) for right in _texts(B) if left and right)`
                ("any", [Expr::GeneratorExp(g)]) if self.rulecast_helper("all_texts") => self.rulecast_ref(g),
                ("mentions", [g, Expr::Tuple(t), Expr::Constant(fold)]) if self.rulecast_helper("mentions") => {
                    let path = self.rulecast_getter(g)?;
                    let needles: Vec<Value> = t.elts.iter().map(scalar).collect::<Option<Vec<_>>>()?;
                    let ci = matches!(fold.value, Constant::Bool(true));
                    needles.iter().all(Value::is_string).then(|| C::N(pred(&path, "mentions", needles, ci)))
                }
                _ => None,
            },
            Expr::Compare(cmp) if cmp.ops.len() == 1 => {
                let path = self.rulecast_getter(&cmp.left)?;
                match (&cmp.ops[0], &cmp.comparators[0]) {
                    (ast::CmpOp::IsNot, r) if is_none(r) => Some(C::N(pred(&path, "exists", vec![], false))),
                    (ast::CmpOp::Is, r) if is_none(r) => Some(neg(C::N(pred(&path, "exists", vec![], false)))),
                    (op @ (ast::CmpOp::In | ast::CmpOp::NotIn), Expr::Tuple(t)) if t.elts.len() == 2 && is_none(&t.elts[0]) && scalar(&t.elts[1]) == Some(Value::from("")) => {
                        let empty = C::N(pred(&path, "empty", vec![], false));
                        Some(if matches!(op, ast::CmpOp::In) { empty } else { neg(empty) })
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// The target's form of `some`: `any(test for _eN in _elements(getter, decode, ("a", "b")))`,
    /// the test read with `_get(_eN, ...)` as paths inside the element.
    fn rulecast_some(&mut self, g: &'a ast::ExprGeneratorExp) -> Option<C> {
        let generator = &g.generators[0];
        let var = name_of(&generator.target)?.to_string();
        if !generator.ifs.is_empty() || !var.starts_with("_e") {
            return None;
        }
        let Expr::Call(c) = &generator.iter else { return None };
        let [value, Expr::Constant(decode), Expr::Tuple(path)] = c.args.as_slice() else { return None };
        let field = self.rulecast_getter(value)?;
        let decode = match decode.value {
            Constant::Bool(b) => b,
            _ => return None,
        };
        let mut segs = vec![];
        for x in &path.elts {
            match scalar(x)? {
                Value::String(k) => segs.push(crate::fields::Seg::Key(k)),
                _ => return None,
            }
        }
        self.elem_vars.push(var);
        let inner = self.cond_structured(&g.elt, &Env::default());
        self.elem_vars.pop();
        let C::N(cond) = inner.ok()? else { return None };
        if contains_opaque(&C::N(cond.clone())) {
            return None;
        }
        let some = SomeNode {
            field,
            decode: decode.then_some(crate::model::Decode::Json),
            path: (!segs.is_empty()).then(|| crate::fields::seg_path(&segs)),
            cond: Node::Json(cond),
        };
        Some(C::N(Node::Some { some: Box::new(some) }.to_value()))
    }

    /// The target's form of a comparison of two fields (`ref`), `.lower()` on both sides for a
    /// case-insensitive one.
    fn rulecast_ref(&self, g: &ast::ExprGeneratorExp) -> Option<C> {
        let [l, r] = g.generators.as_slice() else { return None };
        let (Some(ln), Some(rn)) = (name_of(&l.target), name_of(&r.target)) else { return None };
        let texts_of = |e: &Expr| -> Option<String> {
            let Expr::Call(c) = e else { return None };
            let [x] = c.args.as_slice() else { return None };
            (name_of(&c.func) == Some("all_texts")).then(|| self.rulecast_getter(x)).flatten()
        };
        let (a, b) = (texts_of(&l.iter)?, texts_of(&r.iter)?);
        // `if left and right`
        let guard = matches!(r.ifs.as_slice(), [Expr::BoolOp(bo)] if matches!(bo.op, ast::BoolOp::And) && bo.values.len() == 2 && name_of(&bo.values[0]) == Some(ln) && name_of(&bo.values[1]) == Some(rn));
        if !l.ifs.is_empty() || !guard {
            return None;
        }
        let side = |e: &Expr, n: &str| -> Option<bool> {
            match e {
                Expr::Name(x) if x.id.as_str() == n => Some(false),
                Expr::Call(c) if c.args.is_empty() => match c.func.as_ref() {
                    Expr::Attribute(at) if at.attr.as_str() == "lower" && name_of(&at.value) == Some(n) => Some(true),
                    _ => None,
                },
                _ => None,
            }
        };
        // `left == right`, `right in left`, `left.startswith(right)`, `left.endswith(right)`
        // (each side `.lower()` case-insensitively), as the target writes them
        let (op, fl, fr) = match g.elt.as_ref() {
            Expr::Compare(cmp) if matches!(cmp.ops.as_slice(), [ast::CmpOp::Eq]) => ("eq", side(&cmp.left, ln)?, side(&cmp.comparators[0], rn)?),
            Expr::Compare(cmp) if matches!(cmp.ops.as_slice(), [ast::CmpOp::In]) => ("contains", side(&cmp.comparators[0], ln)?, side(&cmp.left, rn)?),
            Expr::Call(c) => match (c.func.as_ref(), c.args.as_slice()) {
                (Expr::Attribute(at), [arg]) if c.keywords.is_empty() && matches!(at.attr.as_str(), "startswith" | "endswith") => {
                    (if at.attr.as_str() == "startswith" { "startswith" } else { "endswith" }, side(&at.value, ln)?, side(arg, rn)?)
                }
                _ => return None,
            },
            _ => return None,
        };
        if fl != fr {
            return None;
        }
        Some(C::N(Node::Pred(Pred { ref_field: Some(b), case: fl.then_some(crate::model::Case::Insensitive), ..Pred::new(&a, op) }).to_value()))
    }

    /// The regex a `_REGEX_<n>` constant the target wrote was compiled from: the constant is
    /// `(pattern, case-insensitive, program)`, checked by compiling the pattern again.
    fn rulecast_regex(&self, name: &str) -> Option<(String, bool)> {
        let Some(Def::Const(Expr::Tuple(t), _)) = self.defs.get(name) else { return None };
        let [pattern, Expr::Constant(ci), program] = t.elts.as_slice() else { return None };
        let Constant::Bool(ci) = ci.value else { return None };
        let (pattern, program) = (s(pattern)?, s(program)?);
        let exact = crate::vendors::panther::target::nfa::program(pattern, ci).ok().as_deref() == Some(program);
        exact.then(|| (pattern.to_string(), ci))
    }

    /// `re.<func>(<string>, text[, re.I]) is not None` with `re` the module: the pattern, and
    /// whether `re.I` is given.
    fn re_test(&self, cmp: &ast::ExprCompare, func: &str) -> Option<(String, bool)> {
        if !(matches!(cmp.ops.as_slice(), [ast::CmpOp::IsNot]) && is_none(&cmp.comparators[0])) {
            return None;
        }
        let Expr::Call(c) = cmp.left.as_ref() else { return None };
        let Expr::Attribute(a) = c.func.as_ref() else { return None };
        if a.attr.as_str() != func || name_of(&a.value) != Some("re") || !self.is_module("re") || !c.keywords.is_empty() {
            return None;
        }
        let (pat, ci) = match c.args.as_slice() {
            [p, x] if name_of(x) == Some("text") => (p, false),
            [p, x, Expr::Attribute(f)] if name_of(x) == Some("text") && f.attr.as_str() == "I" && name_of(&f.value) == Some("re") => (p, true),
            _ => return None,
        };
        let Some(Value::String(re)) = scalar(pat) else { return None };
        Some((re, ci))
    }

    /// `re.fullmatch(<glob as regex>, text[, re.I]) is not None`: the glob it was written from,
    /// checked by writing it again.
    fn rulecast_glob(&self, path: &str, cmp: &ast::ExprCompare) -> Option<C> {
        let (re, ci) = self.re_test(cmp, "fullmatch")?;
        let glob = glob_of_regex(&re)?;
        (crate::condition::glob_to_regex(&glob) == re).then(|| C::N(pred(path, "glob", vec![Value::from(glob)], ci)))
    }

    /// `re.search(<pattern>, text) is not None` as the target writes a regex for Python's `re`
    /// (`nfa::python_re`: `$` as `\Z`, a case-insensitive pattern folded into explicit classes):
    /// the regex it came from, rebuilt (`\Z` → `$`, `[Aa]` → `a` with case folding) and checked
    /// by writing it again.
    fn rulecast_re(&self, path: &str, cmp: &ast::ExprCompare) -> Option<C> {
        // the target never gives Python's `re.I` a pattern (it folds case itself)
        let (written, false) = self.re_test(cmp, "search")? else { return None };
        let plain = written.replace(r"\Z", "$");
        let folded = unfold_classes(&plain);
        for (candidate, ci) in [(plain.clone(), false), (folded, true)] {
            if crate::vendors::panther::target::nfa::python_re(&candidate, ci).as_deref() == Some(written.as_str()) {
                return Some(C::N(pred(path, "regex", vec![Value::from(candidate)], ci)));
            }
        }
        None
    }

    /// The test of `_any(getter, lambda text: test)` as the predicate the target wrote it for.
    fn rulecast_test(&mut self, path: &str, t: &'a Expr) -> Option<C> {
        // `text` or `text.lower()`: the subject, and whether it is folded
        let subject = |e: &Expr| -> Option<bool> {
            match e {
                Expr::Name(n) if n.id.as_str() == "text" => Some(false),
                Expr::Call(c) if c.args.is_empty() && c.keywords.is_empty() => match c.func.as_ref() {
                    Expr::Attribute(a) if a.attr.as_str() == "lower" && name_of(&a.value) == Some("text") => Some(true),
                    _ => None,
                },
                _ => None,
            }
        };
        let strs = |e: &Expr| -> Option<Vec<Value>> {
            match e {
                Expr::Constant(_) => scalar(e).filter(Value::is_string).map(|v| vec![v]),
                Expr::Tuple(ast::ExprTuple { elts, .. }) | Expr::Set(ast::ExprSet { elts, .. }) => {
                    elts.iter().map(|x| scalar(x).filter(Value::is_string)).collect()
                }
                _ => None,
            }
        };
        let num = |e: &Expr| -> Option<Value> {
            match e {
                Expr::Constant(c) => match &c.value {
                    Constant::Int(i) => i.to_string().parse::<i64>().ok().map(Value::from),
                    Constant::Float(f) => serde_json::Number::from_f64(*f).map(Value::Number),
                    _ => None,
                },
                Expr::UnaryOp(u) if matches!(u.op, ast::UnaryOp::USub) => match num_neg(&u.operand) {
                    Some(v) => Some(v),
                    None => None,
                },
                _ => None,
            }
        };
        // `_num(text)`
        let is_num_of_text = |e: &Expr| matches!(e, Expr::Call(c) if name_of(&c.func) == Some("as_number") && c.args.len() == 1 && name_of(&c.args[0]) == Some("text"));
        match t {
            Expr::Compare(cmp) if cmp.ops.len() == 1 => {
                let (op, right) = (&cmp.ops[0], &cmp.comparators[0]);
                if let Some(ci) = subject(&cmp.left) {
                    return match (op, right) {
                        (ast::CmpOp::Eq, r) => strs(r).filter(|v| v.len() == 1).map(|v| C::N(pred(path, "eq", v, ci))),
                        (ast::CmpOp::In, Expr::Set(_)) => strs(right).map(|v| C::N(pred(path, "in", v, ci))),
                        (ast::CmpOp::In, Expr::Name(n)) if !ci => {
                            let (vals, list) = self.values(right, &Env::default())?;
                            let list = list.or_else(|| Some(list_name(n.id.as_str())))?;
                            vals.iter().all(Value::is_string).then(|| C::N(Node::Pred(Pred { list: Some(list), ..Pred::new(path, "in") }).to_value()))
                        }
                        // `text.lower() in {item.lower() for item in LIST}`
                        (ast::CmpOp::In, Expr::SetComp(sc)) if ci && sc.generators.len() == 1 => {
                            let g = &sc.generators[0];
                            let lowered = matches!(sc.elt.as_ref(), Expr::Call(c) if c.args.is_empty() && matches!(c.func.as_ref(), Expr::Attribute(a) if a.attr.as_str() == "lower" && name_of(&a.value) == name_of(&g.target)));
                            if !lowered || !g.ifs.is_empty() {
                                return None;
                            }
                            let (vals, list) = self.values(&g.iter, &Env::default())?;
                            let list = list?;
                            vals.iter().all(Value::is_string).then(|| C::N(Node::Pred(Pred { list: Some(list), case: Some(crate::model::Case::Insensitive), ..Pred::new(path, "in") }).to_value()))
                        }
                        _ => None,
                    };
                }
                // `"needle" in text`
                if let (ast::CmpOp::In, Some(v)) = (op, strs(&cmp.left).filter(|v| v.len() == 1)) {
                    let ci = subject(right)?;
                    return Some(C::N(pred(path, "contains", v, ci)));
                }
                // `_num(text) == n`
                if is_num_of_text(&cmp.left) && matches!(op, ast::CmpOp::Eq) {
                    return num(right).map(|n| C::N(pred(path, "eq", vec![n], false)));
                }
                self.rulecast_glob(path, cmp).or_else(|| self.rulecast_re(path, cmp))
            }
            // alternatives the target joins with `or` (several values of one operator)
            Expr::BoolOp(b) if matches!(b.op, ast::BoolOp::Or) => {
                let mut merged: Option<Value> = None;
                for v in &b.values {
                    let C::N(Value::Object(p)) = self.rulecast_test(path, v)? else { return None };
                    if p.contains_key("list") || p.contains_key("ref") {
                        return None;
                    }
                    let vals: Vec<Value> = match (p.get("value"), p.get("values")) {
                        (Some(x), None) => vec![x.clone()],
                        (None, Some(Value::Array(xs))) => xs.clone(),
                        _ => return None,
                    };
                    match &mut merged {
                        None => merged = Some(Value::Object(p)),
                        Some(Value::Object(m)) => {
                            let op = |o: &Map<String, Value>| o.get("op").and_then(Value::as_str).map(|x| if x == "in" { "eq" } else { x }).map(str::to_string);
                            if op(m) != op(&p) || m.get("case") != p.get("case") {
                                return None;
                            }
                            let mut all: Vec<Value> = match (m.remove("value"), m.remove("values")) {
                                (Some(x), _) => vec![x],
                                (_, Some(Value::Array(xs))) => xs,
                                _ => vec![],
                            };
                            all.extend(vals);
                            let ci = m.get("case").is_some();
                            let o = op(m)?;
                            merged = Some(pred(path, &o, all, ci));
                        }
                        Some(_) => return None,
                    }
                }
                merged.map(C::N)
            }
            // `_num(text) is not None and _num(text) > n`
            Expr::BoolOp(b) if matches!(b.op, ast::BoolOp::And) && b.values.len() == 2 => {
                let Expr::Compare(guard) = &b.values[0] else { return None };
                let Expr::Compare(cmp) = &b.values[1] else { return None };
                if !(is_num_of_text(&guard.left) && matches!(guard.ops.as_slice(), [ast::CmpOp::IsNot]) && is_none(&guard.comparators[0])) {
                    return None;
                }
                if !is_num_of_text(&cmp.left) || cmp.ops.len() != 1 {
                    return None;
                }
                let op = match cmp.ops[0] {
                    ast::CmpOp::Lt => "lt",
                    ast::CmpOp::LtE => "le",
                    ast::CmpOp::Gt => "gt",
                    ast::CmpOp::GtE => "ge",
                    _ => return None,
                };
                num(&cmp.comparators[0]).map(|n| C::N(pred(path, op, vec![n], false)))
            }
            Expr::Call(c) if c.keywords.is_empty() => {
                // `text.startswith(...)`, `text.lower().endswith(...)`
                if let Expr::Attribute(a) = c.func.as_ref() {
                    let op = match a.attr.as_str() {
                        "startswith" => "startswith",
                        "endswith" => "endswith",
                        _ => return None,
                    };
                    let ci = subject(&a.value)?;
                    let [arg] = c.args.as_slice() else { return None };
                    return strs(arg).map(|v| C::N(pred(path, op, v, ci)));
                }
                match (name_of(&c.func)?, c.args.as_slice()) {
                    ("in_cidr", [x, Expr::Tuple(t)]) if name_of(x) == Some("text") && self.rulecast_helper("in_cidr") => {
                        let nets: Vec<Value> = t.elts.iter().map(|e| scalar(e).filter(Value::is_string)).collect::<Option<Vec<_>>>()?;
                        Some(C::N(pred(path, "cidr", nets, false)))
                    }
                    ("glob_match", [pat, x]) if name_of(x) == Some("text") && self.rulecast_helper("glob_match") => strs(pat).filter(|v| v.len() == 1).map(|v| C::N(pred(path, "glob", v, false))),
                    // `re.search(<pattern as the target writes it for Python>, text) is not None`
                    // comes under Compare below
                    ("regex_search", [Expr::Name(r), x]) if name_of(x) == Some("text") && self.rulecast_helper("regex_search") => {
                        let (pattern, ci) = self.rulecast_regex(r.id.as_str())?;
                        Some(C::N(pred(path, "regex", vec![Value::from(pattern)], ci)))
                    }
                    _ => None,
                }
            }

            _ => None,
        }
    }

    /// Is `name` a Panther helper imported from a `panther_*` module?
    fn is_helper(&self, name: &str) -> bool {
        matches!(self.defs.get(name), Some(Def::Import(m, orig, _)) if m.starts_with("panther") && orig == name)
    }

    /// Constant values: a literal collection, a string, or a module constant (→ `lists:`).
    fn values(&mut self, e: &'a Expr, env: &Env<'a>) -> Option<(Vec<Value>, Option<String>)> {
        match e {
            Expr::List(ast::ExprList { elts, .. })
            | Expr::Tuple(ast::ExprTuple { elts, .. })
            | Expr::Set(ast::ExprSet { elts, .. }) => Some((elts.iter().map(scalar).collect::<Option<Vec<_>>>()?, None)),
            Expr::Call(c) if matches!(name_of(&c.func), Some("set" | "frozenset" | "tuple" | "list")) && c.args.len() == 1 => {
                self.values(&c.args[0], env)
            }
            // `DICT.keys()`: the keys
            Expr::Call(c) if c.args.is_empty() && matches!(c.func.as_ref(), Expr::Attribute(a) if a.attr.as_str() == "keys") => {
                let Expr::Attribute(a) = c.func.as_ref() else { return None };
                self.values(&a.value, env)
            }
            Expr::Name(n) => {
                match env.consts.get(n.id.as_str()) {
                    Some(Value::Array(a)) if a.iter().all(|v| !v.is_object() && !v.is_array()) => return Some((a.clone(), None)),
                    Some(Value::Object(o)) => return Some((o.keys().map(|k| Value::from(k.as_str())).collect(), None)),
                    Some(_) => return None,
                    None => {}
                }
                if let Some((x, scope)) = env.get(n.id.as_str()) {
                    let (x, scope) = (*x, scope.clone());
                    return self.values(x, &scope).map(|(v, _)| (v, None));
                }
                let Some(Def::Const(x, _)) = self.defs.get(n.id.as_str()) else { return None };
                let x = *x;
                let (vals, _) = self.values(x, &Env::default())?;
                if vals.iter().all(Value::is_string) && vals.len() > 1 {
                    let name = list_name(n.id.as_str());
                    self.lists.insert(name.clone(), vals.clone());
                    Some((vals, Some(name)))
                } else {
                    Some((vals, None))
                }
            }
            Expr::Dict(d) => {
                // `x in DICT` tests the keys
                Some((d.keys.iter().map(|k| k.as_ref().and_then(scalar)).collect::<Option<Vec<_>>>()?, None))
            }
            _ => None,
        }
    }

    /// `D.get(F[, default])` or `D[F]` with D a module dict of scalar keys and F a field: the
    /// entries (key, value expression), the field, and the default expression.
    #[allow(clippy::type_complexity)]
    fn dict_lookup(&self, e: &'a Expr, env: &Env<'a>) -> Option<(Vec<(Value, &'a Expr)>, FieldRef, Option<&'a Expr>)> {
        if let Some(n) = name_of(e) {
            let (x, scope) = env.get(n)?;
            let (x, scope) = (*x, scope.clone());
            return self.dict_lookup(x, &scope);
        }
        let (dict, key, default) = match e {
            Expr::Call(c) if c.keywords.is_empty() && (1..=2).contains(&c.args.len()) => {
                let Expr::Attribute(a) = c.func.as_ref() else { return None };
                if a.attr.as_str() != "get" {
                    return None;
                }
                (a.value.as_ref(), &c.args[0], c.args.get(1).filter(|d| !is_none(d)))
            }
            Expr::Subscript(sub) => (sub.value.as_ref(), sub.slice.as_ref(), None),
            _ => return None,
        };
        let n = name_of(dict)?;
        if env.get(n).is_some() || env.consts.contains_key(n) {
            return None;
        }
        let Some(Def::Const(Expr::Dict(d), _)) = self.defs.get(n) else { return None };
        let f = self.field(key, env)?;
        let mut entries = vec![];
        for (k, v) in d.keys.iter().zip(&d.values) {
            entries.push((k.as_ref().and_then(scalar)?, v));
        }
        Some((entries, f, default))
    }

    /// Strings only (for prefixes, globs, regexes).
    fn strings(&mut self, e: &'a Expr, env: &Env<'a>) -> Option<Vec<String>> {
        if let Some(Value::String(x)) = env.constant(e) {
            return Some(vec![x]);
        }
        if let Some(n) = name_of(e) {
            if let Some((x, scope)) = env.get(n) {
                let (x, scope) = (*x, scope.clone());
                return self.strings(x, &scope);
            }
            if let Some(Def::Const(x, _)) = self.defs.get(n) {
                let x = *x;
                if let Some(v) = s(x) {
                    return Some(vec![v.to_string()]);
                }
            }
        }
        let (v, _) = self.values(e, env)?;
        v.iter().map(|x| x.as_str().map(str::to_string)).collect()
    }

    /// A predicate on a field, respecting `.lower()` and the value read when it is missing.
    fn pred_on(&self, f: &FieldRef, op: &str, vals: Vec<Value>, list: Option<String>) -> C {
        let Some((d, miss)) = &f.default else { return self.pred_plain(f, op, vals, list) };
        // P(value or D): P(D) where the default is read, P(x) elsewhere
        let on_default = holds_on(op, &vals, f.ci, d);
        let bare = FieldRef { default: None, ..f.clone() };
        let p = self.pred_plain(&bare, op, vals.clone(), list);
        let absent = || C::N(pred(&f.path, "exists", vec![Value::Bool(false)], false));
        let empty = || C::N(pred(&f.path, "empty", vec![Value::Bool(true)], false));
        match (miss, on_default) {
            (Miss::Absent, true) => or2(p, absent()),
            (Miss::Absent, false) => p,
            (Miss::Falsy, true) => or2(p, empty()),
            // "" is read as D: where P("") holds canonically, exclude it
            (Miss::Falsy, false) if holds_on(op, &vals, f.ci, &Value::from("")) => and2(p, neg(empty())),
            (Miss::Falsy, false) => p,
        }
    }

    fn pred_plain(&self, f: &FieldRef, op: &str, vals: Vec<Value>, list: Option<String>) -> C {
        if f.ci {
            // `x.lower() == "Abc"` never holds: drop values that are not lower case (a regex
            // comes here already checked, or with `re.I`)
            let vals: Vec<Value> = vals
                .into_iter()
                .filter(|v| op == "regex" || v.as_str().is_none_or(|s| s.to_lowercase() == s))
                .collect();
            if vals.is_empty() {
                return C::F;
            }
            return C::N(pred(&f.path, op, vals, true));
        }
        if let Some(l) = list {
            return C::N(Node::Pred(Pred { list: Some(l.to_string()), ..Pred::new(&f.path, "in") }).to_value());
        }
        if vals.is_empty() {
            return C::F;
        }
        C::N(pred(&f.path, op, vals, false))
    }

    /// A boolean expression → condition; what cannot be structured becomes opaque Python.
    fn cond(&mut self, e: &'a Expr, env: &Env<'a>) -> Result<C, Why> {
        match self.cond_structured(e, env) {
            Ok(c) => Ok(c),
            Err(why) => self.opaque(e, env, &why),
        }
    }

    fn opaque(&mut self, e: &'a Expr, env: &Env<'a>, why: &str) -> Result<C, Why> {
        let text = self.expr_text(e, env)?;
        Ok(C::N(opaque_node(&text, why)))
    }

    fn cond_structured(&mut self, e: &'a Expr, env: &Env<'a>) -> Result<C, Why> {
        // the forms rulecast's Panther target writes, read back exactly
        if let Some(c) = self.rulecast_form(e) {
            return Ok(c);
        }
        match e {
            Expr::BoolOp(b) => {
                let and = matches!(b.op, ast::BoolOp::And);
                let mut acc = if and { C::T } else { C::F };
                // a later operand is evaluated only where the earlier ones are truthy (`and`)
                // or falsy (`or`)
                let mut scope = env.clone();
                for v in &b.values {
                    let c = self.cond(v, &scope)?;
                    acc = if and { and2(acc, c) } else { or2(acc, c) };
                    let facts = if and { self.truthy_fields(v, &scope) } else { self.falsy_fields(v, &scope) };
                    scope = scope.with_nonempty(&facts);
                }
                Ok(merge_any(acc))
            }
            Expr::UnaryOp(u) if matches!(u.op, ast::UnaryOp::Not) => {
                // `not field` is "absent, null or empty" for a field the taxonomy knows as text
                // (for booleans, numbers and free-form paths it stays opaque)
                if let Some(f) = self.field(&u.operand, env) {
                    let text_field = crate::fields::resolve(&f.path)
                        .is_ok_and(|x| matches!(x.kind, crate::fields::Kind::String | crate::fields::Kind::Datetime));
                    // a default that is itself falsy reads as a missing value
                    let falsy_default = f.default.as_ref().is_none_or(|(d, _)| is_falsy(d));
                    if !f.ci && text_field && falsy_default {
                        return Ok(C::N(pred(&f.path, "empty", vec![Value::Bool(true)], false)));
                    }
                }
                Ok(neg(self.cond(&u.operand, env)?))
            }
            Expr::Constant(c) => match &c.value {
                Constant::Bool(true) => Ok(C::T),
                Constant::Bool(false) | Constant::None => Ok(C::F),
                _ => Err("a constant that is not a boolean".into()),
            },
            Expr::Name(n) => match env.get(n.id.as_str()) {
                Some((x, scope)) => {
                    let (x, scope) = (*x, scope.clone());
                    self.cond(x, &scope)
                }
                // a loop element's truthiness: only as a guard (`if not x: continue`)
                None if env.elems.contains_key(n.id.as_str()) => Ok(C::N(Value::Object(Map::from_iter([("$truthy".to_string(), Value::from(env.elems[n.id.as_str()]))])))),
                None => Err(format!("the value of `{}`", n.id)),
            },
            Expr::Compare(cmp) => {
                let mut acc = C::T;
                let mut left: &'a Expr = &cmp.left;
                for (op, right) in cmp.ops.iter().zip(cmp.comparators.iter()) {
                    acc = and2(acc, self.compare(left, *op, right, env)?);
                    left = right;
                }
                Ok(acc)
            }
            // `isinstance(x, dict)` of a loop element: only as a guard
            Expr::Call(_) if self.object_test(e).is_some_and(|(n, _)| env.elems.contains_key(n)) => {
                let (n, mapping) = self.object_test(e).unwrap_or_default();
                let guard = Map::from_iter([("depth".to_string(), Value::from(env.elems[n])), ("mapping".to_string(), Value::from(mapping))]);
                Ok(C::N(Value::Object(Map::from_iter([("$guard".to_string(), Value::Object(guard))]))))
            }
            // a field read used as a condition: its truthiness
            Expr::Call(_) if self.field(e, env).is_some_and(|f| !f.ci) => {
                let f = self.field(e, env).map(|f| f.path).unwrap_or_default();
                let shown = match elem_split(&f) {
                    Some((_, rel)) => format!("`{rel}` (a field of the loop element)"),
                    None => format!("`{f}`"),
                };
                Err(format!("the truthiness of {shown} (false also for 0, false, [] and {{}})"))
            }
            Expr::Call(call) => self.call(call, env),
            _ => {
                if let Some(f) = self.field(e, env) {
                    // truthiness of a field: present and not empty (a boolean field stays opaque)
                    if !f.ci && !matches!(crate::fields::resolve(&f.path).map(|x| x.kind), Ok(crate::fields::Kind::Bool)) {
                        return Err(format!("the truthiness of `{}` (false also for 0, false, [] and {{}})", f.path));
                    }
                }
                Err("an expression rulecast does not read as a condition".into())
            }
        }
    }

    fn compare(&mut self, left: &'a Expr, op: ast::CmpOp, right: &'a Expr, env: &Env<'a>) -> Result<C, Why> {
        use ast::CmpOp as O;
        let lf = self.field(left, env);
        let rf = self.field(right, env);
        let bad = || Err::<C, Why>("a comparison rulecast cannot make structured".into());
        match op {
            O::Eq | O::NotEq | O::Is | O::IsNot => {
                let negated = matches!(op, O::NotEq | O::IsNot);
                // `D.get(F) is None`: F is not one of D's keys (D's values are not None)
                if let (Some((entries, key, None)), true) = (self.dict_lookup(left, env), is_none(right)) {
                    if entries.iter().all(|(_, v)| !is_none(v)) {
                        let keys: Vec<Value> = entries.iter().map(|(k, _)| k.clone()).collect();
                        let keyed = self.pred_on(&key, "in", keys, None);
                        return Ok(if negated { keyed } else { neg(keyed) });
                    }
                }
                let (f, other) = match (&lf, &rf) {
                    (Some(f), None) => (f.clone(), right),
                    (None, Some(f)) => (f.clone(), left),
                    (Some(a), Some(b)) if matches!(op, O::Eq | O::NotEq) => {
                        let c = self.field_eq(a, b, env)?;
                        return Ok(if negated { neg(c) } else { c });
                    }
                    _ => return bad(),
                };
                let c = if is_none(other) {
                    // a field read with a default is never None
                    if f.default.is_some() { C::F } else { C::N(pred(&f.path, "exists", vec![Value::Bool(false)], false)) }
                } else if let Some(v) = env.constant(other).or_else(|| self.strings(other, env).filter(|v| v.len() == 1).map(|v| Value::from(v[0].as_str()))) {
                    if matches!(op, O::Is | O::IsNot) && !v.is_boolean() {
                        return bad();
                    }
                    and2(self.pred_on(&f, "eq", vec![v], None), not_list(&f))
                } else {
                    return bad();
                };
                Ok(if negated { neg(c) } else { c })
            }
            O::In | O::NotIn => {
                if let Some((entries, key, default)) = self.dict_lookup(right, env) {
                    // `x in D.get(F[, default])`: for the entry whose key F equals, x is among its values
                    let Some(f) = lf else { return bad() };
                    let mut member = C::F;
                    for (k, vals) in &entries {
                        let Some((vals, _)) = self.values(vals, env) else { return bad() };
                        member = or2(member, and2(self.pred_on(&key, "eq", vec![k.clone()], None), self.pred_on(&f, "in", vals, None)));
                    }
                    let keys: Vec<Value> = entries.iter().map(|(k, _)| k.clone()).collect();
                    let keyed = self.pred_on(&key, "in", keys, None);
                    let (member, keyed) = match default {
                        // no default: `x in None` raises, which is no match either way
                        None => (member, keyed),
                        Some(d) => {
                            let Some((dvals, _)) = self.values(d, env) else { return bad() };
                            (or2(member, and2(neg(keyed), self.pred_on(&f, "in", dvals, None))), C::T)
                        }
                    };
                    return Ok(if matches!(op, O::NotIn) { and2(keyed, neg(member)) } else { member });
                }
                let c = if let Some(f) = lf {
                    let Some((vals, list)) = self.values(right, env) else { return bad() };
                    let (vals, list) = if f.ci { (vals, None) } else { (vals, list) };
                    and2(self.pred_on(&f, "in", vals, list), not_list(&f))
                } else if let (Some(f), Some(v)) = (self.listed(right, env), env.constant(left)) {
                    // `x in ([v] if isinstance(v, str) else v)`: v is x, or a list holding it
                    if !v.is_string() {
                        return bad();
                    }
                    self.pred_on(&f, "eq", vec![v], None)
                } else if let (Some(f), Some(Value::String(sub))) = (rf, env.constant(left)) {
                    // `"x" in value` is a substring test only on text: on an object it tests the
                    // keys, on a list its elements
                    let text = crate::fields::resolve(&f.path).is_ok_and(|x| matches!(x.kind, crate::fields::Kind::String));
                    if !text {
                        return Err(format!("`in` on `{}`, which may be an object or a list (key / element membership, not a substring)", f.path));
                    }
                    self.pred_on(&f, "contains", vec![Value::from(sub.to_string())], None)
                } else {
                    return bad();
                };
                Ok(if matches!(op, O::NotIn) { neg(c) } else { c })
            }
            O::Lt | O::LtE | O::Gt | O::GtE => {
                let (f, n, flip) = match (&lf, &rf, env.constant(right), env.constant(left)) {
                    (Some(f), None, Some(n), _) if n.is_number() => (f.clone(), n, false),
                    (None, Some(f), _, Some(n)) if n.is_number() => (f.clone(), n, true),
                    _ => return bad(),
                };
                let name = match (op, flip) {
                    (O::Lt, false) | (O::Gt, true) => "lt",
                    (O::LtE, false) | (O::GtE, true) => "le",
                    (O::Gt, false) | (O::Lt, true) => "gt",
                    _ => "ge",
                };
                if f.ci {
                    return bad();
                }
                Ok(self.pred_on(&f, name, vec![n], None))
            }
        }
    }

    /// `A == B` of two fields. Python's `==` also holds when both read `None` (missing, no
    /// default) or both read `""`; the canonical comparison needs both non-empty. So it is
    /// `ref`, or those cases spelled out, except where the code has checked a side truthy (then
    /// neither case can arise).
    fn field_eq(&mut self, a: &FieldRef, b: &FieldRef, env: &Env<'a>) -> Result<C, Why> {
        if a.ci != b.ci {
            return Err("a comparison of a lowered field with one that is not".into());
        }
        for f in [a, b] {
            if elem_split(&f.path).is_some() {
                return Err("a comparison with a loop element's field (Python compares lists as lists; `some.where` sees only the element)".into());
            }
            if crate::fields::resolve(&f.path).is_ok_and(|x| matches!(x.kind, crate::fields::Kind::Object | crate::fields::Kind::Record | crate::fields::Kind::Array)) {
                return Err(format!("a comparison of `{}`, an object or a list", f.path));
            }
            if f.default.as_ref().is_some_and(|(d, _)| d != &Value::from("")) {
                return Err(format!("a comparison of `{}` read with a default other than \"\"", f.path));
            }
        }
        let both = C::N(Node::Pred(Pred { ref_field: Some(b.path.clone()), case: a.ci.then_some(crate::model::Case::Insensitive), ..Pred::new(&a.path, "eq") }).to_value());
        // what Python reads for a side that is missing or empty
        let none = |f: &FieldRef| -> C {
            if env.nonempty.contains(&f.path) || f.default.is_some() || f.ci {
                // checked truthy, or read as "" (a default), or `.lower()` of None raises
                C::F
            } else {
                C::N(pred(&f.path, "exists", vec![Value::Bool(false)], false))
            }
        };
        let empty = |f: &FieldRef| -> C {
            if env.nonempty.contains(&f.path) || (f.ci && f.default.is_none()) {
                C::F
            } else if f.default.is_some() {
                C::N(pred(&f.path, "empty", vec![Value::Bool(true)], false))
            } else {
                and2(C::N(pred(&f.path, "exists", vec![Value::Bool(true)], false)), C::N(pred(&f.path, "empty", vec![Value::Bool(true)], false)))
            }
        };
        Ok(or2(both, or2(and2(none(a), none(b)), and2(empty(a), empty(b)))))
    }

    /// `[v] if isinstance(v, str) else v` (or a local bound to it) with v a field: a list of
    /// values in which `in` tests membership, the text itself counting as a list of one.
    fn listed(&self, e: &'a Expr, env: &Env<'a>) -> Option<FieldRef> {
        if let Some(n) = name_of(e) {
            let (x, scope) = env.get(n)?;
            let (x, scope) = (*x, scope.clone());
            return self.listed(x, &scope);
        }
        let Expr::IfExp(ie) = e else { return None };
        let Expr::Call(c) = ie.test.as_ref() else { return None };
        if name_of(&c.func) != Some("isinstance") || c.args.len() != 2 || name_of(&c.args[1]) != Some("str") || self.defs.contains_key("str") {
            return None;
        }
        let Expr::List(l) = ie.body.as_ref() else { return None };
        let [inner] = l.elts.as_slice() else { return None };
        let same = |x: &Expr| name_of(x).is_some() && name_of(x) == name_of(&c.args[0]);
        if !same(&c.args[0]) || !same(inner) || !same(&ie.orelse) {
            return None;
        }
        // `isinstance(v, str)` is false for a missing value: its default must be a list
        // (`None` raises in `in`, which is no match, as canonical)
        let f = self.field_raw(&c.args[0], env).filter(|f| known_field(&f.path) && !f.ci)?;
        match &f.default {
            None => Some(f),
            Some((d, Miss::Absent)) if d == &Value::Array(vec![]) => Some(FieldRef { default: None, ..f }),
            _ => None,
        }
    }

    fn call(&mut self, call: &'a ast::ExprCall, env: &Env<'a>) -> Result<C, Why> {
        let bad = |w: &str| Err::<C, Why>(w.to_string());
        match call.func.as_ref() {
            Expr::Name(n) => {
                let name = n.id.as_str();
                if SUCCESS.contains(&name) && self.is_helper(name) && call.args.len() == 1 {
                    return Ok(C::N(Node::Succeeded { request_succeeded: true }.to_value()));
                }
                match name {
                    "pattern_match" | "pattern_match_list" | "fnmatch" if call.args.len() == 2 && self.glob_fn(name) => {
                        let Some(f) = self.field(&call.args[0], env) else { return bad("a glob over something not a field") };
                        let Some(pats) = self.strings(&call.args[1], env) else { return bad("glob patterns that are not constants") };
                        self.globs(&f, pats)
                    }
                    "is_ip_in_network" if call.args.len() == 2 && self.is_helper(name) => {
                        let Some(f) = self.field(&call.args[0], env) else { return bad("a network test of something not a field") };
                        let Some(nets) = self.strings(&call.args[1], env) else { return bad("networks that are not constants") };
                        if f.ci {
                            return bad("a network test of lowered text");
                        }
                        Ok(self.pred_on(&f, "cidr", nets.into_iter().map(Value::String).collect(), None))
                    }
                    "any" | "all" if call.args.len() == 1 => self.any_all(name == "any", &call.args[0], env),
                    "bool" if call.args.len() == 1 => self.cond_structured(&call.args[0], env),
                    _ => {
                        if let Some(Def::Func(f, _)) = self.defs.get(name) {
                            let f = *f;
                            return self.inline(f, &call.args, env);
                        }
                        bad(&format!("a call of `{name}`"))
                    }
                }
            }
            Expr::Attribute(at) => {
                let attr = at.attr.as_str();
                match attr {
                    "startswith" | "endswith" if call.args.len() == 1 => {
                        let Some(f) = self.field(&at.value, env) else { return bad("a prefix test of something not a field") };
                        let Some(v) = self.strings(&call.args[0], env) else { return bad("prefixes that are not constants") };
                        Ok(self.pred_on(&f, attr, v.into_iter().map(Value::String).collect(), None))
                    }
                    "search" | "match" | "fullmatch" if name_of(&at.value) == Some("re") && self.is_module("re") => {
                        if call.args.len() < 2 {
                            return bad("re call without a subject");
                        }
                        let ci = match (call.args.get(2), call.keywords.first()) {
                            (None, None) => false,
                            (Some(fl), None) => self.re_ignorecase(fl)?,
                            (None, Some(k)) if k.arg.as_ref().is_some_and(|a| a.as_str() == "flags") => self.re_ignorecase(&k.value)?,
                            _ => return bad("re flags rulecast does not read"),
                        };
                        let Some(p) = self.strings(&call.args[0], env).filter(|v| v.len() == 1) else { return bad("a regex that is not a constant") };
                        self.regex(&call.args[1], &p[0], attr, ci, env)
                    }
                    "search" | "match" | "fullmatch" if call.args.len() == 1 => {
                        // PATTERN.search(x) with PATTERN = re.compile("...", flags?)
                        let Some(Def::Const(Expr::Call(c), _)) = name_of(&at.value).and_then(|n| self.defs.get(n)) else {
                            return bad("a method call rulecast does not read");
                        };
                        let c: &'a ast::ExprCall = c;
                        let is_compile = matches!(c.func.as_ref(), Expr::Attribute(a) if a.attr.as_str() == "compile" && name_of(&a.value) == Some("re"));
                        let Some(p) = c.args.first().and_then(s).filter(|_| is_compile) else { return bad("a compiled pattern rulecast does not read") };
                        let ci = match c.args.get(1) {
                            Some(fl) => self.re_ignorecase(fl)?,
                            None => false,
                        };
                        self.regex(&call.args[0], p, attr, ci, env)
                    }
                    "fnmatch" if name_of(&at.value) == Some("fnmatch") && self.is_module("fnmatch") && call.args.len() == 2 => {
                        let Some(f) = self.field(&call.args[0], env) else { return bad("a glob over something not a field") };
                        let Some(pats) = self.strings(&call.args[1], env) else { return bad("glob patterns that are not constants") };
                        self.globs(&f, pats)
                    }
                    _ => bad(&format!("a call of `.{attr}()`")),
                }
            }
            _ => bad("a call rulecast does not read"),
        }
    }

    fn is_module(&self, name: &str) -> bool {
        matches!(self.defs.get(name), Some(Def::Import(m, o, _)) if m == name && o == name)
    }

    fn glob_fn(&self, name: &str) -> bool {
        match name {
            "fnmatch" => matches!(self.defs.get("fnmatch"), Some(Def::Import(m, o, _)) if m == "fnmatch" && o == "fnmatch"),
            other => self.is_helper(other),
        }
    }

    fn re_ignorecase(&self, e: &Expr) -> Result<bool, Why> {
        match e {
            Expr::Attribute(a) if name_of(&a.value) == Some("re") && matches!(a.attr.as_str(), "I" | "IGNORECASE") => Ok(true),
            _ => Err("re flags rulecast does not read".into()),
        }
    }

    fn regex(&mut self, subject: &'a Expr, pattern: &str, how: &str, ci: bool, env: &Env<'a>) -> Result<C, Why> {
        let Some(f) = self.field(subject, env) else { return Err("a regex over something not a field".into()) };
        let p = match how {
            "match" => format!("^(?:{pattern})"),
            "fullmatch" => format!("^(?:{pattern})$"),
            _ => pattern.to_string(),
        };
        if regex::Regex::new(&p).is_err() {
            return Err("a Python regex outside RE2 syntax".into());
        }
        if f.ci && !ci && pattern.chars().any(|c| c.is_ascii_uppercase()) {
            // a search of lowered text: upper-case letters (and escapes like `\D`) mean what
            // they say, which a case-insensitive regex would not keep
            return Err("a regex with upper-case letters over lowered text".into());
        }
        let f = FieldRef { ci: ci || f.ci, ..f };
        Ok(self.pred_on(&f, "regex", vec![Value::from(p.to_string())], None))
    }

    fn globs(&mut self, f: &FieldRef, pats: Vec<String>) -> Result<C, Why> {
        if pats.iter().any(|p| p.contains(['[', ']'])) {
            return Err("a glob with `[...]` classes (canonical globs know `*` and `?`)".into());
        }
        Ok(self.pred_on(f, "glob", pats.into_iter().map(Value::String).collect(), None))
    }

    /// `any(P(x) for x in CONSTANTS)`: P for each value.
    fn any_all(&mut self, is_any: bool, arg: &'a Expr, env: &Env<'a>) -> Result<C, Why> {
        // `all([A, B, C])`: every item is evaluated first, which matters only where one raises
        // (no alert either way)
        if let Expr::List(ast::ExprList { elts, .. }) | Expr::Tuple(ast::ExprTuple { elts, .. }) = arg {
            let mut acc = if is_any { C::F } else { C::T };
            for x in elts {
                if matches!(x, Expr::Starred(_)) {
                    return Err("any()/all() over a list with `*`".into());
                }
                let c = self.cond(x, env)?;
                acc = if is_any { or2(acc, c) } else { and2(acc, c) };
            }
            return Ok(merge_any(acc));
        }
        let (elt, gens) = match arg {
            Expr::GeneratorExp(g) => (&g.elt, &g.generators),
            Expr::ListComp(g) => (&g.elt, &g.generators),
            _ => return Err("any()/all() over something not a generator".into()),
        };
        let [g] = gens.as_slice() else { return Err("a nested generator".into()) };
        let Some(var) = name_of(&g.target) else { return Err("a generator with a tuple target".into()) };
        let iter: &'a Expr = &g.iter;
        let Some((vals, _)) = self.values(iter, env) else {
            // `any(P(x) for x in <event data>)`: some element satisfies P
            if is_any && !g.is_async {
                return self.loop_some(var, iter, Body::Gen(elt, &g.ifs), env);
            }
            return Err("a generator over something not constant".into());
        };
        if !g.ifs.is_empty() {
            return Err("a generator with `if`".into());
        }
        let mut acc = if is_any { C::F } else { C::T };
        for v in vals {
            let scope = env.with_const(var, v);
            let x = self.cond_structured(elt, &scope)?;
            acc = if is_any { or2(acc, x) } else { and2(acc, x) };
        }
        // the same test over many values of one field: merge into one predicate
        Ok(merge_any(acc))
    }

    /// Where a loop's elements come from: a field read with an empty default (or none), a
    /// local bound to one, `json.loads` of a field followed by `.get`s, possibly wrapped by
    /// `[x] if isinstance(x, dict) else x` / `if isinstance(x, dict): x = [x]`.
    /// `wrap`: the wrapping seen on the way (`Some(true)` for a `Mapping` test).
    fn source(&self, e: &'a Expr, env: &Env<'a>, wrap: Option<bool>) -> Option<Source> {
        // (a wrapped local's binding is read here only: as the source of elements)
        if let Some((n, (x, scope))) = name_of(e).and_then(|n| env.vars.get(n).map(|b| (n, b))) {
            let wrap = wrap.or_else(|| env.wrapped.get(n).copied());
            let (x, scope) = (*x, scope.clone());
            return self.source(x, &scope, wrap);
        }
        if let Expr::IfExp(ie) = e {
            let (n, mapping) = self.object_test(&ie.test)?;
            let Expr::List(l) = ie.body.as_ref() else { return None };
            if l.elts.len() != 1 || name_of(&l.elts[0]) != Some(n) || name_of(&ie.orelse) != Some(n) {
                return None;
            }
            return self.source(&ie.orelse, env, Some(wrap.unwrap_or(false) || mapping));
        }
        let f = self.field_raw(e, env)?;
        if f.ci {
            return None;
        }
        match &f.default {
            None => {}
            Some((d, Miss::Absent)) if d == &Value::Array(vec![]) || d == &Value::Object(Map::new()) || d == &Value::from("") => {}
            Some(_) => return None,
        }
        let (field, decode, path, plain) = if let Some((field, rel)) = decoded_split(&f.path) {
            (field.to_string(), true, rel.to_string(), true)
        } else if let Some((d, rel)) = elem_split(&f.path) {
            if rel.is_empty() {
                return None;
            }
            (f.path.clone(), false, String::new(), *self.elem_plain.get(d.checked_sub(1)?)?)
        } else {
            // a scalar field would iterate characters
            let kind = crate::fields::resolve(&f.path).ok()?.kind;
            if !matches!(kind, crate::fields::Kind::Any | crate::fields::Kind::Array | crate::fields::Kind::Object) {
                return None;
            }
            (f.path.clone(), false, String::new(), false)
        };
        // `isinstance(x, dict)` is false for Panther's event objects (Mappings, not dicts)
        let wrapped = wrap.is_some_and(|mapping| mapping || plain);
        Some(Source { field, decode, path, wrapped, plain })
    }

    /// `isinstance(NAME, dict)` → (NAME, false); `isinstance(NAME, Mapping)` → (NAME, true).
    fn object_test(&self, e: &'a Expr) -> Option<(&'a str, bool)> {
        let Expr::Call(c) = e else { return None };
        if name_of(&c.func) != Some("isinstance") || c.args.len() != 2 || !c.keywords.is_empty() || self.defs.contains_key("isinstance") {
            return None;
        }
        let n = name_of(&c.args[0])?;
        match name_of(&c.args[1])? {
            "dict" if !self.defs.contains_key("dict") => Some((n, false)),
            "Mapping" if matches!(self.defs.get("Mapping"), Some(Def::Import(m, o, _)) if (m == "collections.abc" || m == "typing") && o == "Mapping") => {
                Some((n, true))
            }
            _ => None,
        }
    }

    /// A loop over event data (`for VAR in ITER: BODY`, or `any(ELT for VAR in ITER if ...)`)
    /// as `some`: the body's condition for returning True on one element becomes `where`
    /// (element fields relative to the element); conjuncts on the event go next to the `some`.
    fn loop_some(&mut self, var: &str, iter: &'a Expr, body: Body<'a>, env: &Env<'a>) -> Result<C, Why> {
        let over = self.text(iter.range()).to_string();
        let Some(src) = self.source(iter, env, None) else {
            return Err(format!("a loop over `{over}`, which rulecast does not read as a list of elements"));
        };
        let depth = self.elem_plain.len() + 1;
        let scope = env.with_elem(var, depth);
        self.elem_plain.push(src.plain);
        let read = match body {
            Body::Stmts(stmts) => {
                let stmts: Vec<&'a Stmt> = stmts.iter().collect();
                self.elem_body(&stmts, &scope)
            }
            Body::Gen(elt, ifs) => {
                let mut acc = C::T;
                let mut r = Ok(());
                for x in ifs.iter().chain(std::iter::once(elt)) {
                    match self.cond(x, &scope) {
                        Ok(c) => acc = and2(acc, c),
                        Err(e) => {
                            r = Err(e);
                            break;
                        }
                    }
                }
                r.map(|()| acc)
            }
        };
        self.elem_plain.pop();
        let w = match read? {
            C::N(v) => v,
            C::T | C::F => return Err(format!("a loop over `{over}` whose body does not test the element")),
        };
        if w.to_string().contains("\"opaque\"") {
            let mut why = vec![];
            collect_opaque_reasons(&w, &mut why);
            let first = why.first().map(|w| w.reason.clone()).unwrap_or_default();
            return Err(format!("a loop over `{over}` whose test on the element is not structured ({first})"));
        }
        // guards on the element itself, at the top: `if not isinstance(x, dict): continue`,
        // `if x is None: continue`, `x and ...`
        let mut guard = Guard::None;
        let mut kids: Vec<Value> = match w {
            Value::Object(ref o) if o.len() == 1 && o.contains_key("all") => o["all"].as_array().cloned().unwrap_or_default(),
            other => vec![other],
        };
        kids.retain(|k| match guard_of(k, depth) {
            Some(g) => {
                guard = guard.max(g);
                false
            }
            None => true,
        });
        if guard == Guard::Object(false) && !src.plain {
            return Err("`isinstance(x, dict)` is false for Panther's event objects (they are Mappings): the loop never matches".into());
        }
        // what tests the event (or an enclosing element) goes next to the `some`
        let (mut outer, mut inner) = (vec![], vec![]);
        for k in kids {
            let mut seen = BTreeSet::new();
            let mut bad = false;
            depths_in(&k, &mut seen, &mut bad);
            if !bad && seen.iter().all(|d| *d < depth) {
                outer.push(k);
            } else {
                inner.push(localise(&k, depth).ok_or_else(|| format!("a loop over `{over}` whose test mixes the element with the event or another element"))?);
            }
        }
        if inner.is_empty() {
            return Err(format!("a loop over `{over}` whose body does not test the element"));
        }
        let cond = all(inner);
        // an element that is not an object (text, a number) has no fields: the test must not
        // hold on it (Python raises there, or skips it)
        if fieldless(&cond) != Some(false) {
            return Err(format!("a loop over `{over}` whose test holds on an element without fields"));
        }
        let some = SomeNode {
            field: src.field.clone(),
            decode: src.decode.then_some(crate::model::Decode::Json),
            path: (!src.path.is_empty()).then(|| src.path.clone()),
            cond: Node::Json(cond),
        };
        // where the Python raises (a rule error, no alert) and canonical reads on
        let mut raises = vec![];
        if src.decode {
            raises.push("a value that is not text (`json.loads` raises)".to_string());
        }
        if !src.wrapped {
            raises.push("one object in place of a list (Python iterates its keys)".to_string());
        }
        match guard {
            Guard::Object(_) => {}
            Guard::NotNone => raises.push("an item that is not an object before the first match".into()),
            Guard::None => raises.push("a null item or one that is not an object before the first match".into()),
        }
        if !raises.is_empty() {
            let field = match elem_split(&src.field) {
                Some((_, rel)) => format!("the element's `{rel}`"),
                None => format!("`{}`", src.field),
            };
            let what = if src.decode { format!("{field} (JSON){}", if src.path.is_empty() { String::new() } else { format!(" → {}", src.path) }) } else { field };
            self.declared.push(Part::detection(format!(
                "the loop over `{over}` is read as `some` over {what}; where the Python raises (a rule error, no alert) the canonical `some` still decides: {}",
                raises.join("; ")
            )));
        }
        self.somes += 1;
        outer.push(Node::Some { some: Box::new(some) }.to_value());
        Ok(C::N(flatten("all", outer)))
    }

    /// A loop body as the condition under which it returns True for one element (falling off
    /// the end or `continue`: the next element). Any other `return` makes the first element
    /// that reaches it decide, which `some` cannot say.
    fn elem_body(&mut self, stmts: &[&'a Stmt], env: &Env<'a>) -> Result<C, Why> {
        let Some((first, rest)) = stmts.split_first() else { return Ok(C::F) };
        match first {
            Stmt::Return(r) => match r.value.as_deref() {
                Some(Expr::Constant(c)) if matches!(c.value, Constant::Bool(true)) => Ok(C::T),
                _ => Err("a `return` other than `return True` in a loop over event data (the first element that reaches it decides)".into()),
            },
            Stmt::Continue(_) => Ok(C::F),
            Stmt::Pass(_) => self.elem_body(rest, env),
            Stmt::Expr(x) if matches!(x.value.as_ref(), Expr::Constant(_)) => self.elem_body(rest, env),
            Stmt::Assign(a) if a.targets.len() == 1 => {
                let Some(n) = name_of(&a.targets[0]) else { return Err("an assignment to something not a name".into()) };
                if env.elems.contains_key(n) {
                    return Err("an assignment to a loop variable".into());
                }
                let scope = env.with(n, &a.value, env.clone());
                self.elem_body(rest, &scope)
            }
            Stmt::If(i) => {
                let mut then: Vec<&'a Stmt> = i.body.iter().collect();
                then.extend_from_slice(rest);
                let mut other: Vec<&'a Stmt> = i.orelse.iter().collect();
                other.extend_from_slice(rest);
                let t = self.cond(&i.test, env)?;
                let a = self.elem_body(&then, &env.with_nonempty(&self.truthy_fields(&i.test, env)))?;
                let b = self.elem_body(&other, &env.with_nonempty(&self.falsy_fields(&i.test, env)))?;
                Ok(ite(t, a, b))
            }
            Stmt::For(f) => {
                let var = self.event_loop_var(f, rest, &[])?;
                let s = self.loop_some(var, &f.iter, Body::Stmts(&f.body), env)?;
                Ok(or2(s, self.elem_body(rest, env)?))
            }
            other => Err(format!("the statement `{}` in a loop over event data", self.text(other.range()).lines().next().unwrap_or(""))),
        }
    }

    /// The variable of a `for` loop that can be read as `some` (no `else`, no `break` or
    /// `continue` of its own... `continue` is the next element; no name it sets read after it).
    fn event_loop_var(&self, f: &'a ast::StmtFor, rest: &[&'a Stmt], k: &[Frame<'a>]) -> Result<&'a str, Why> {
        if !f.orelse.is_empty() || f.body.iter().any(|st| matches!(st, Stmt::Break(_))) || has_break(&f.body) {
            return Err("a loop over event data with `break` or `else`".into());
        }
        let Some(var) = name_of(&f.target) else { return Err("a loop over event data with a tuple target".into()) };
        let mut set = BTreeSet::from([var.to_string()]);
        assigned_in(&f.body, &mut set);
        let mut after = BTreeSet::new();
        for st in rest.iter().copied().chain(k.iter().flat_map(|fr| fr.0.iter().copied())) {
            after.extend(names_in(self.text(st.range())));
        }
        if let Some(n) = set.iter().find(|n| after.contains(*n)) {
            return Err(format!("a loop over event data whose `{n}` is read after it"));
        }
        Ok(var)
    }

    /// A loop the model cannot say, kept as one Python expression where its body is
    /// `[assignments] if T: return True`: `any(T for x in ITER)` means the same.
    fn loop_as_any(&mut self, f: &'a ast::StmtFor, env: &Env<'a>, why: &str) -> Result<C, Why> {
        let var = name_of(&f.target).ok_or("a tuple target")?;
        let mut scope = env.with_elem(var, usize::MAX);
        let mut body: &[Stmt] = &f.body;
        while let [Stmt::Assign(a), more @ ..] = body {
            let [t] = a.targets.as_slice() else { return Err("an assignment to several names".into()) };
            let n = name_of(t).filter(|n| *n != var).ok_or("an assignment to something not a name")?;
            scope = scope.with(n, &a.value, scope.clone());
            body = more;
        }
        let [Stmt::If(i)] = body else { return Err("a loop body that is not one `if ...: return True`".into()) };
        let returns_true = matches!(i.body.as_slice(), [Stmt::Return(r)] if matches!(r.value.as_deref(), Some(Expr::Constant(c)) if matches!(c.value, Constant::Bool(true))));
        if !i.orelse.is_empty() || !returns_true {
            return Err("a loop body that is not one `if ...: return True`".into());
        }
        let t = self.expr_text(&i.test, &scope)?;
        let over = self.expr_text(&f.iter, env)?;
        let text = format!("any(({t}) for {var} in ({over}))");
        Ok(C::N(opaque_node(&text, &format!("a loop over event data that the element quantifier cannot say: {why}"))))
    }

    /// Fields that are truthy when `e` is (so present, not null and not `""`).
    fn truthy_fields(&self, e: &'a Expr, env: &Env<'a>) -> Vec<String> {
        match e {
            Expr::BoolOp(b) if matches!(b.op, ast::BoolOp::And) => b.values.iter().flat_map(|v| self.truthy_fields(v, env)).collect(),
            Expr::UnaryOp(u) if matches!(u.op, ast::UnaryOp::Not) => self.falsy_fields(&u.operand, env),
            _ => match self.field(e, env) {
                // a truthy default (or a loop element) says nothing about the field
                Some(f) if f.default.as_ref().is_none_or(|(d, _)| is_falsy(d)) && elem_split(&f.path).is_none() => vec![f.path],
                _ => vec![],
            },
        }
    }

    /// Fields that are truthy when `e` is falsy.
    fn falsy_fields(&self, e: &'a Expr, env: &Env<'a>) -> Vec<String> {
        match e {
            Expr::BoolOp(b) if matches!(b.op, ast::BoolOp::Or) => b.values.iter().flat_map(|v| self.falsy_fields(v, env)).collect(),
            Expr::UnaryOp(u) if matches!(u.op, ast::UnaryOp::Not) => self.truthy_fields(&u.operand, env),
            _ => vec![],
        }
    }

    /// `try: NAME = json.loads(F) except json.JSONDecodeError: return False`, then the rest:
    /// text that is not JSON makes the rule false. Canonical says that where the rest is false
    /// without a decoded document (a `some` over it, in every branch that could hold).
    fn try_decode(&mut self, t: &'a ast::StmtTry, rest: &[&'a Stmt], env: &Env<'a>, top: bool, k: &[Frame<'a>]) -> Result<C, Why> {
        let bad = || Err::<C, Why>("a `try` statement".into());
        if !t.orelse.is_empty() || !t.finalbody.is_empty() {
            return bad();
        }
        let [Stmt::Assign(a)] = t.body.as_slice() else { return bad() };
        let [target] = a.targets.as_slice() else { return bad() };
        let Some(n) = name_of(target) else { return bad() };
        let Some(field) = self.field_raw(&a.value, env).and_then(|f| decoded_split(&f.path).filter(|(_, rel)| rel.is_empty()).map(|(f, _)| f.to_string())) else {
            return bad();
        };
        let [ast::ExceptHandler::ExceptHandler(h)] = t.handlers.as_slice() else { return bad() };
        let catches_decode_error = match h.type_.as_deref() {
            Some(Expr::Attribute(at)) => at.attr.as_str() == "JSONDecodeError" && name_of(&at.value) == Some("json"),
            Some(Expr::Name(x)) => {
                x.id.as_str() == "ValueError" && !self.defs.contains_key("ValueError")
                    || matches!(self.defs.get(x.id.as_str()), Some(Def::Import(m, o, _)) if m == "json" && o == "JSONDecodeError")
            }
            _ => false,
        };
        let returns_false = match h.body.as_slice() {
            [Stmt::Return(r)] => r.value.as_deref().is_none_or(|v| matches!(v, Expr::Constant(c) if matches!(c.value, Constant::Bool(false) | Constant::None))),
            _ => false,
        };
        if h.name.is_some() || !catches_decode_error || !returns_false {
            return bad();
        }
        let scope = env.with(n, &a.value, env.clone());
        let c = self.block_k(rest, &scope, top, k)?;
        let C::N(v) = &c else { return Err("a `try` around `json.loads` whose rest is constant".into()) };
        if !false_without(v, &field) {
            return Err(format!("a `try` around `json.loads` of `{field}` whose rest can hold without the document (canonical cannot say \"the text is JSON\")"));
        }
        Ok(c)
    }

    /// Inline a module function whose body reads as a condition.
    fn inline(&mut self, f: &'a ast::StmtFunctionDef, args: &'a [Expr], env: &Env<'a>) -> Result<C, Why> {
        if self.depth > 8 || f.args.args.len() != args.len() || f.args.vararg.is_some() || !f.args.kwonlyargs.is_empty() {
            return Err(format!("a call of `{}`", f.name));
        }
        let mut scope = Env::default();
        for (p, a) in f.args.args.iter().zip(args) {
            scope = scope.with(p.def.arg.as_str(), a, env.clone());
        }
        self.depth += 1;
        let body: Vec<&'a Stmt> = f.body.iter().collect();
        let declared = self.declared.len();
        let r = self.block(&body, &scope, false);
        self.depth -= 1;
        match r {
            Ok(c) if !contains_opaque(&c) => Ok(c),
            _ => {
                self.declared.truncate(declared);
                Err(format!("a call of the module function `{}`", f.name))
            }
        }
    }

    /// A statement list as a condition (falling off the end returns `None`, i.e. false).
    fn block(&mut self, stmts: &[&'a Stmt], env: &Env<'a>, top: bool) -> Result<C, Why> {
        self.block_k(stmts, env, top, &[])
    }

    /// A statement list followed by the continuation `k` (what runs when it falls off its end:
    /// the next unrolled loop iteration, then the statements after the loop).
    fn block_k(&mut self, stmts: &[&'a Stmt], env: &Env<'a>, top: bool, k: &[Frame<'a>]) -> Result<C, Why> {
        let Some((first, rest)) = stmts.split_first() else {
            return match k.split_first() {
                Some((next, more)) => {
                    let (body, scope) = (next.0.clone(), next.1.clone());
                    self.block_k(&body, &scope, top, more)
                }
                None => Ok(C::F),
            };
        };
        match first {
            Stmt::Return(r) => match &r.value {
                None => Ok(C::F),
                Some(v) => self.cond(v, env),
            },
            Stmt::Pass(_) => self.block_k(rest, env, top, k),
            Stmt::Expr(x) if matches!(x.value.as_ref(), Expr::Constant(_)) => self.block_k(rest, env, top, k),
            Stmt::Assign(a) if a.targets.len() == 1 => {
                let Some(n) = name_of(&a.targets[0]) else { return Err("an assignment to something not a name".into()) };
                let scope = env.with(n, &a.value, env.clone());
                self.block_k(rest, &scope, top, k)
            }
            Stmt::AnnAssign(a) if a.value.is_some() => {
                let (Some(n), Some(v)) = (name_of(&a.target), a.value.as_deref()) else { return Err("an annotated assignment".into()) };
                let scope = env.with(n, v, env.clone());
                self.block_k(rest, &scope, top, k)
            }
            Stmt::If(i) => {
                let mut then: Vec<&'a Stmt> = i.body.iter().collect();
                then.extend_from_slice(rest);
                let mut other: Vec<&'a Stmt> = i.orelse.iter().collect();
                other.extend_from_slice(rest);
                // `if isinstance(x, dict): x = [x]`: a lone object is one element
                if let (Some((n, mapping)), [Stmt::Assign(a)], true) = (self.object_test(&i.test), i.body.as_slice(), i.orelse.is_empty()) {
                    let is_wrap = matches!(a.targets.as_slice(), [t] if name_of(t) == Some(n))
                        && matches!(a.value.as_ref(), Expr::List(l) if l.elts.len() == 1 && name_of(&l.elts[0]) == Some(n));
                    if is_wrap && env.vars.contains_key(n) {
                        return self.block_k(rest, &env.with_wrapped(n, mapping), top, k);
                    }
                }
                let t = self.cond(&i.test, env)?;
                let a = self.block_k(&then, &env.with_nonempty(&self.truthy_fields(&i.test, env)), false, k)?;
                let b = self.block_k(&other, &env.with_nonempty(&self.falsy_fields(&i.test, env)), top && i.orelse.is_empty(), k)?;
                Ok(ite(t, a, b))
            }
            Stmt::For(f) => {
                // a loop over module constants is unrolled; one over event data would need an
                // element quantifier, which the model does not have yet
                let Some(items) = self.loop_items(f, env) else {
                    let over = self.text(f.iter.range()).to_string();
                    if names_in(&over).iter().any(|n| self.defs.contains_key(n) && !matches!(self.defs.get(n), Some(Def::Import(..)))) {
                        return Err(format!("a `for` loop over `{over}` (a constant rulecast cannot unroll)"));
                    }
                    // a loop over event data: `some`, else one Python expression, else the
                    // whole function stays Python
                    let var = match self.event_loop_var(f, rest, k) {
                        Ok(v) => v,
                        Err(why) => {
                            self.loops.push(over.clone());
                            return Err(format!("a `for` loop over `{over}` ({why})"));
                        }
                    };
                    let declared = self.declared.len();
                    let c = match self.loop_some(var, &f.iter, Body::Stmts(&f.body), env) {
                        Ok(c) => c,
                        Err(why) => {
                            self.declared.truncate(declared);
                            match self.loop_as_any(f, env, &why) {
                                Ok(c) => {
                                    self.loops.push(over.clone());
                                    c
                                }
                                Err(_) => {
                                    self.loops.push(over.clone());
                                    return Err(format!("a `for` loop over `{over}` (event data: {why}; the element quantifier cannot say it)"));
                                }
                            }
                        }
                    };
                    return Ok(or2(c, self.block_k(rest, env, top, k)?));
                };
                let body: Vec<&'a Stmt> = f.body.iter().collect();
                let mut frames: Vec<Frame<'a>> = items.iter().skip(1).map(|scope| (body.clone(), scope.clone())).collect();
                frames.push((rest.to_vec(), env.clone()));
                frames.extend_from_slice(k);
                match items.first() {
                    Some(first) => self.block_k(&body, first, top, &frames),
                    None => self.block_k(rest, env, top, k),
                }
            }
            Stmt::Try(t) => self.try_decode(t, rest, env, top, k),
            Stmt::While(_) => Err("a `while` loop".into()),
            Stmt::With(_) => Err("a `with` statement".into()),
            other => Err(format!("the statement `{}`", self.text(other.range()).lines().next().unwrap_or(""))),
        }
    }

    /// The scopes of an unrollable `for` loop: one per constant item, the loop variables bound
    /// to it. None if the loop is over something else, has an `else`, or uses break/continue.
    fn loop_items(&mut self, f: &'a ast::StmtFor, env: &Env<'a>) -> Option<Vec<Env<'a>>> {
        if !f.orelse.is_empty() || breaks(&f.body) {
            return None;
        }
        let targets: Vec<&str> = match f.target.as_ref() {
            Expr::Name(n) => vec![n.id.as_str()],
            Expr::Tuple(t) => t.elts.iter().map(name_of).collect::<Option<Vec<_>>>()?,
            _ => return None,
        };
        // the items: `CONST`, `CONST.keys()`, `CONST.values()`, `CONST.items()`, a literal
        let (iter, method) = match f.iter.as_ref() {
            Expr::Call(c) if c.args.is_empty() && c.keywords.is_empty() => match c.func.as_ref() {
                Expr::Attribute(a) if matches!(a.attr.as_str(), "keys" | "values" | "items") => (a.value.as_ref(), a.attr.as_str()),
                _ => return None,
            },
            other => (other, ""),
        };
        let value = self.const_value(iter, env)?;
        let items: Vec<Value> = match (&value, method) {
            (Value::Array(a), "") => a.clone(),
            (Value::Object(o), "" | "keys") => o.keys().map(|k| Value::from(k.as_str())).collect(),
            (Value::Object(o), "values") => o.values().cloned().collect(),
            (Value::Object(o), "items") => o.iter().map(|(k, v)| Value::Array(vec![Value::from(k.as_str()), v.clone()])).collect(),
            _ => return None,
        };
        let mut out = vec![];
        for item in items {
            let scope = match targets.as_slice() {
                [one] => env.with_const(one, item),
                many => {
                    let Value::Array(parts) = item else { return None };
                    if parts.len() != many.len() {
                        return None;
                    }
                    many.iter().zip(parts).fold(env.clone(), |e, (n, v)| e.with_const(n, v))
                }
            };
            out.push(scope);
        }
        Some(out)
    }

    /// A module constant (or literal) as JSON: lists, tuples, sets, dicts of scalars and of those.
    fn const_value(&self, e: &'a Expr, env: &Env<'a>) -> Option<Value> {
        if let Some(n) = name_of(e) {
            if let Some(v) = env.consts.get(n) {
                return Some(v.clone());
            }
            if env.get(n).is_some() {
                return None;
            }
            let Some(Def::Const(x, _)) = self.defs.get(n) else { return None };
            return self.const_value(x, &Env::default());
        }
        match e {
            Expr::List(ast::ExprList { elts, .. }) | Expr::Tuple(ast::ExprTuple { elts, .. }) | Expr::Set(ast::ExprSet { elts, .. }) => {
                elts.iter().map(|x| self.const_value(x, env)).collect::<Option<Vec<_>>>().map(Value::Array)
            }
            Expr::Dict(d) => {
                let mut m = Map::new();
                for (k, v) in d.keys.iter().zip(&d.values) {
                    let key = k.as_ref().and_then(s)?;
                    m.insert(key.to_string(), self.const_value(v, env)?);
                }
                Some(Value::Object(m))
            }
            Expr::Call(c) if matches!(name_of(&c.func), Some("set" | "frozenset" | "tuple" | "list")) && c.args.len() == 1 => self.const_value(&c.args[0], env),
            other => scalar(other),
        }
    }

    /// The Python text of an expression, self-contained: locals substituted, comments dropped,
    /// white space folded; module names it uses are recorded for the prelude.
    fn expr_text(&mut self, e: &'a Expr, env: &Env<'a>) -> Result<String, Why> {
        let r = e.range();
        let (start, end) = (r.start().to_usize(), r.end().to_usize());
        let text = self.src.get(start..end).ok_or("a range outside the source")?;
        // parenthesise so that the lexer sees one expression even across lines
        let wrapped = format!("({text})");
        let toks: Vec<_> = lexer::lex(&wrapped, Mode::Expression)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| "an expression the lexer cannot read".to_string())?;
        let mut out = String::new();
        let mut prev_end = 0usize;
        let mut prev_tok: Option<&Tok> = None;
        let mut comp_vars: BTreeSet<String> = BTreeSet::new();
        for (i, (tok, range)) in toks.iter().enumerate() {
            let (ts, te) = (range.start().to_usize(), range.end().to_usize());
            if matches!(tok, Tok::Newline | Tok::EndOfFile) {
                continue;
            }
            if i > 0 && ts > prev_end && !out.is_empty() {
                let gap = &wrapped[prev_end..ts];
                if !gap.is_empty() {
                    out.push(' ');
                }
            }
            let piece = &wrapped[ts..te];
            prev_end = te;
            if let Tok::String { value, kind: StringKind::FString | StringKind::RawFString, .. } = tok {
                // names inside an f-string are not substituted: it must not use any
                let inner: BTreeSet<String> = fstring_fields(value).iter().flat_map(|p| names_in(p)).collect();
                if inner.iter().any(|n| env.get(n).is_some() || env.consts.contains_key(n) || (n == &self.root && n != "event")) {
                    return Err("an f-string that reads local names".into());
                }
                for n in inner {
                    if self.defs.contains_key(&n) {
                        self.used.insert(n);
                    }
                }
            }
            let next = toks.get(i + 1).map(|t| &t.0);
            if let Tok::Name { name } = tok {
                let after_dot = matches!(prev_tok, Some(Tok::Dot));
                let is_kw = matches!(next, Some(Tok::Equal));
                if matches!(prev_tok, Some(Tok::For)) {
                    comp_vars.insert(name.clone());
                }
                if !after_dot && !is_kw && !comp_vars.contains(name) {
                    if env.wrapped.contains_key(name.as_str()) {
                        return Err("a local rebound by `isinstance` wrapping".into());
                    }
                    if let Some((x, scope)) = env.get(name) {
                        let (x, scope) = (*x, scope.clone());
                        if name_of(x) == Some(name.as_str()) && scope.get(name).is_none() && name == &self.root {
                            out.push_str("event");
                        } else {
                            let inner = self.expr_text(x, &scope)?;
                            out.push('(');
                            out.push_str(&inner);
                            out.push(')');
                        }
                        prev_tok = Some(tok);
                        continue;
                    }
                    if name == &self.root {
                        out.push_str("event");
                        prev_tok = Some(tok);
                        continue;
                    }
                    if let Some(v) = env.consts.get(name.as_str()) {
                        // an unrolled loop's variable: its value
                        out.push_str(&py_literal(v));
                        prev_tok = Some(tok);
                        continue;
                    }
                    if self.defs.contains_key(name.as_str()) {
                        self.used.insert(name.clone());
                    }
                }
            }
            out.push_str(piece);
            prev_tok = Some(tok);
        }
        // drop the parentheses added above
        let out = out.trim();
        let out = out.strip_prefix('(').and_then(|o| o.strip_suffix(')')).unwrap_or(out).trim().to_string();
        if comp_vars.iter().any(|v| env.get(v).is_some()) {
            return Err("a generator variable that shadows a local".into());
        }
        Ok(out)
    }
}

/// Does a condition still hold a loop marker (`$D...` / `#F#...` paths, `$guard`, `$truthy`)?
fn leaks(v: &Value) -> bool {
    match v {
        Value::Object(o) => o.iter().any(|(k, x)| {
            k.starts_with('$') || (matches!(k.as_str(), "field" | "ref") && x.as_str().is_some_and(|p| p.starts_with(['$', '#']))) || leaks(x)
        }),
        Value::Array(a) => a.iter().any(leaks),
        _ => false,
    }
}

fn contains_opaque(c: &C) -> bool {
    match c {
        C::N(v) => v.to_string().contains("\"opaque\""),
        _ => false,
    }
}

fn ite(t: C, a: C, b: C) -> C {
    match (&a, &b) {
        _ if a == b => a,
        (C::T, C::F) => t,
        (C::F, C::T) => neg(t),
        (C::F, _) => and2(neg(t), b),
        (_, C::F) => and2(t, a),
        (C::T, _) => or2(t, b),
        (_, C::T) => or2(neg(t), a),
        _ => or2(and2(t.clone(), a), and2(neg(t), b)),
    }
}

/// `any` of predicates with one field, op and case → one predicate with their values.
fn merge_any(c: C) -> C {
    let C::N(v) = &c else { return c };
    let Some(kids) = v.get("any").and_then(Value::as_array) else { return c };
    let key = |k: &Value| -> Option<(String, String, Option<String>)> {
        let o = k.as_object()?;
        if o.contains_key("list") {
            return None;
        }
        Some((
            o.get("field")?.as_str()?.to_string(),
            match o.get("op")?.as_str()? {
                "in" => "eq".to_string(),
                other => other.to_string(),
            },
            o.get("case").and_then(Value::as_str).map(str::to_string),
        ))
    };
    let Some(k0) = kids.first().and_then(key) else { return c };
    if !kids.iter().all(|k| key(k).as_ref() == Some(&k0)) {
        return c;
    }
    let mut vals = vec![];
    for k in kids {
        match (k.get("value"), k.get("values").and_then(Value::as_array)) {
            (Some(x), _) => vals.push(x.clone()),
            (_, Some(xs)) => vals.extend(xs.iter().cloned()),
            _ => return c,
        }
    }
    let op = if k0.1 == "eq" { "in" } else { k0.1.as_str() };
    C::N(pred(&k0.0, op, vals, k0.2.is_some()))
}

/// Top-level names each statement defines.
fn defs_of(suite: &[Stmt]) -> HashMap<String, Def<'_>> {
    let mut defs = HashMap::new();
    for (i, st) in suite.iter().enumerate() {
        match st {
            Stmt::Import(im) => {
                for a in &im.names {
                    let full = a.name.as_str();
                    let local = a.asname.as_ref().map_or_else(|| full.split('.').next().unwrap_or(full), |x| x.as_str());
                    defs.insert(local.to_string(), Def::Import(full.to_string(), local.to_string(), i));
                }
            }
            Stmt::ImportFrom(im) => {
                let m = im.module.as_ref().map_or("", |m| m.as_str());
                for a in &im.names {
                    let local = a.asname.as_ref().unwrap_or(&a.name).as_str();
                    defs.insert(local.to_string(), Def::Import(m.to_string(), a.name.to_string(), i));
                }
            }
            Stmt::Assign(a) => {
                for t in &a.targets {
                    if let Some(n) = name_of(t) {
                        defs.insert(n.to_string(), Def::Const(&a.value, i));
                    }
                }
            }
            Stmt::AnnAssign(a) => {
                if let (Some(n), Some(v)) = (name_of(&a.target), a.value.as_deref()) {
                    defs.insert(n.to_string(), Def::Const(v, i));
                }
            }
            Stmt::ClassDef(c) => {
                defs.insert(c.name.to_string(), Def::Class(i));
            }
            Stmt::FunctionDef(f) => {
                defs.insert(f.name.to_string(), Def::Func(f, i));
            }
            _ => {}
        }
    }
    defs
}

/// The alert functions Panther knows besides `rule`.
pub const ALERT_FUNCTIONS: &[&str] =
    &["title", "dedup", "alert_context", "severity", "description", "reference", "runbook", "destinations"];

/// Read one rule module. `Err` is the reason the whole module cannot be imported (no `rule`).
pub fn read(src: &str, suite: &[Stmt]) -> Result<Logic, (String, usize)> {
    let mut defs = defs_of(suite);
    // a module constant the module changes after defining it (`S.add(x)`, `S |= {...}`,
    // `S = S | {...}`, in a loop or not) holds values rulecast cannot read off its definition:
    // it is never inlined, and a rule that reads it is refused (below)
    let changed = changed_constants(suite, &defs);
    for (n, _) in &changed {
        defs.remove(n);
    }
    let Some(Def::Func(rule_fn, _)) = defs.get("rule") else {
        return Err(("the module defines no `rule(event)` function".into(), 0));
    };
    let rule_fn: &ast::StmtFunctionDef = rule_fn;
    if rule_fn.args.args.len() != 1 {
        return Err(("`rule` must take one argument (the event)".into(), rule_fn.range.start().to_usize()));
    }
    let mut py = Py {
        src,
        root: rule_fn.args.args[0].def.arg.to_string(),
        defs: defs.clone(),
        used: BTreeSet::new(),
        lists: IndexMap::new(),
        depth: 0,
        prints_none: false,
        loops: vec![],
        elem_plain: vec![],
        declared: vec![],
        somes: 0,
        derived: vec![],
        elem_vars: vec![],
    };
    let mut logic = Logic::default();
    // allow-lists at the top of the body
    let mut body: Vec<&Stmt> = vec![];
    for st in &rule_fn.body {
        if let Some(a) = rulecast_allow(&py, st) {
            logic.allows.push(a);
            continue;
        }
        if let Some(a) = allow_loop(&mut py, st) {
            for k in &a.missing_as_empty {
                logic.differs = true;
                logic.parts.push(Part::detection(format!(
                    "allow-list {}: Python matches a missing `{k}` as \"\" (an entry pattern like `*` then suppresses); the canonical allow-list does not match a missing field",
                    a.name
                )));
            }
            logic.allows.push(a);
        } else {
            body.push(st);
        }
    }
    // the mock unwrapping that makes PAT's `Mocks` of an allow-list work:
    // `global NAME` and `if callable(NAME): NAME = json.loads(NAME())`
    let allow_names: Vec<String> = logic.allows.iter().map(|a| a.name.clone()).collect();
    body.retain(|st| match st {
        Stmt::Global(g) => !g.names.iter().all(|n| allow_names.iter().any(|a| a == n.as_str())),
        Stmt::If(i) => !mock_unwrap(i).is_some_and(|n| allow_names.contains(&n)),
        _ => true,
    });
    let mut kept: Vec<String> = vec![];
    let env = Env::default();
    let read = py.block(&body, &env, true).and_then(|c| match &c {
        // the loop markers are rewritten before they leave a loop: one left is a bug
        C::N(v) if leaks(v) => Err("a loop rulecast read wrongly (please report)".to_string()),
        _ => Ok(c),
    });
    match read {
        Ok(c) => {
            logic.detection = match c {
                C::N(v) => v,
                C::T => opaque_node("True", "the rule matches every event"),
                C::F => opaque_node("False", "the rule matches no event"),
            };
            logic.opaque = logic.detection.to_string().contains("\"opaque\"");
            if logic.opaque {
                collect_opaque_reasons(&logic.detection, &mut logic.parts);
            }
            logic.differs |= !py.declared.is_empty();
            logic.parts.extend(py.declared.iter().cloned());
        }
        Err(why) => {
            logic.detection = opaque_node("_panther_rule(event)", &format!("rule() uses {why}"));
            logic.opaque = true;
            logic.parts.push(Part::detection(format!("rule() kept as Python (`_panther_rule` in targets.panther.prelude): it uses {why}")));
            py.lists.clear();
            logic.allows.clear();
            kept.push("rule".into());
        }
    }
    logic.lists = py.lists.clone();
    logic.event_loops = py.loops.clone();
    // rulecast's `_derive(event)`: the derive steps the alert functions read
    if let Some(Def::Func(f, _)) = defs.get("_derive") {
        if let Some(steps) = py.rulecast_derive(f) {
            py.derived = steps.iter().flat_map(|s| s.keys().cloned()).collect();
            logic.derive = steps;
        }
    }
    // alert functions
    for name in ALERT_FUNCTIONS {
        let Some(Def::Func(f, _)) = defs.get(*name) else { continue };
        let f: &ast::StmtFunctionDef = f;
        py.prints_none = false;
        let done = match *name {
            "title" => alert_text(&mut py, f).map(|t| logic.title = Some(t)).is_some(),
            "description" => alert_text(&mut py, f).map(|t| logic.description = Some(t)).is_some(),
            "dedup" => alert_dedup(&mut py, f).map(|d| logic.dedup = d).is_some(),
            "alert_context" => match alert_context(&mut py, f) {
                Some((ctx, note)) => {
                    logic.context = ctx;
                    if let Some(n) = note {
                        logic.parts.push(n);
                    }
                    true
                }
                None => false,
            },
            _ => false,
        };
        if done && py.prints_none {
            logic.parts.push(Part::metadata(format!(
                "{name}(): a missing field reads as `None` in Python (printed `None`, or no dedup key) and as an empty text in the canonical alert"
            )));
        }
        if !done {
            kept.push((*name).to_string());
            logic.parts.push(Part::metadata(format!("{name}() kept as Python in targets.panther.prelude")));
        }
    }
    // the prelude: kept functions and what they and the opaque text use, in module order
    for k in &kept {
        py.used.insert(k.clone());
    }
    let (mut prelude_text, mut missing, mut dropped) = prelude(&py, suite);
    // kept code that calls an alert function read into the canonical alert needs the original:
    // keep that one as Python too
    loop {
        let defined = prelude_text.as_deref().map(top_level_functions).and_then(Result::ok).unwrap_or_default();
        let clash: Vec<&str> = ["title", "dedup", "alert_context"]
            .into_iter()
            .filter(|n| defined.iter().any(|d| d == n))
            .filter(|n| match *n {
                "title" => logic.title.is_some(),
                "dedup" => !logic.dedup.is_empty(),
                _ => !logic.context.is_empty(),
            })
            .collect();
        if clash.is_empty() {
            break;
        }
        for n in clash {
            match n {
                "title" => logic.title = None,
                "dedup" => logic.dedup.clear(),
                _ => logic.context.clear(),
            }
            logic.parts.retain(|p| p.kind != PartKind::Metadata || (!p.reason.starts_with(&format!("{n}()")) && !(n == "alert_context" && p.reason.starts_with("alert_context:"))));
            logic.parts.push(Part::metadata(format!("{n}() kept as Python in targets.panther.prelude (kept code calls it)")));
        }
        (prelude_text, missing, dropped) = prelude(&py, suite);
    }
    let prelude = prelude_text;
    if prelude.as_deref().is_some_and(|p| p.contains("def lookup_aws_account_name(")) {
        logic.parts.push(Part::metadata("lookup_aws_account_name() is rulecast's copy of the current helper, which returns the account id (a deployment that still maps ids to names in its helpers shows the id)"));
    }
    for m in missing {
        logic.parts.push(Part::detection(format!(
            "`{m}` comes from a Panther helper module rulecast does not bundle; the prelude imports it (runs only where panther-analysis' global helpers are installed)"
        )));
    }
    for i in dropped {
        let st = &suite[i];
        let line = py.src.get(..st.range().start().to_usize()).map_or(0, |b| b.matches('\n').count()) + 1;
        let text = py.text(st.range());
        let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut text: String = folded.chars().take(80).collect();
        if folded.chars().count() > 80 {
            text.push('…');
        }
        let text = crate::diag::shown(&text);
        logic.parts.push(Part::metadata(format!(
            "module statement at line {line} left out (it runs when the module loads and defines nothing the rule uses): `{text}`"
        )));
    }
    logic.prelude = prelude;
    if let Some((n, at)) = changed.iter().filter(|(n, _)| py.used.contains(n) || names_in(py.text(rule_fn.range())).contains(n)).min_by_key(|(_, at)| *at) {
        let line = src.get(..*at).map_or(0, |b| b.matches('\n').count()) + 1;
        return Err((format!("the rule reads the module constant `{n}`, which the module changes after defining it (line {line}): rulecast cannot say which values it holds"), *at));
    }
    Ok(logic)
}

/// Module constants that module-level code changes after their definition: (name, offset of
/// the first change). A change is a second assignment, an augmented assignment, an assignment
/// or deletion of an item or attribute, or a call of a mutating method (`add`, `update`,
/// `append`, `extend`, ...), at module level or in its loops, conditions and `with`/`try`
/// blocks (function bodies run later, not when the module loads, and are not looked at).
fn changed_constants(suite: &[Stmt], defs: &HashMap<String, Def<'_>>) -> Vec<(String, usize)> {
    const MUTATORS: &[&str] =
        &["add", "update", "append", "extend", "insert", "remove", "discard", "pop", "popitem", "clear", "setdefault", "difference_update", "intersection_update", "symmetric_difference_update", "sort", "reverse"];
    fn base(e: &Expr) -> Option<&str> {
        match e {
            Expr::Name(n) => Some(n.id.as_str()),
            Expr::Subscript(s) => base(&s.value),
            Expr::Attribute(a) => base(&a.value),
            _ => None,
        }
    }
    fn walk(body: &[Stmt], top: bool, assigned: &mut HashMap<String, usize>, out: &mut Vec<(String, usize)>) {
        for st in body {
            let at = st.range().start().to_usize();
            let mut changed = |n: &str| out.push((n.to_string(), at));
            match st {
                Stmt::Assign(a) => {
                    for t in &a.targets {
                        match t {
                            Expr::Name(n) => {
                                let k = assigned.entry(n.id.to_string()).or_insert(0);
                                *k += 1;
                                if *k > 1 || !top {
                                    changed(n.id.as_str());
                                }
                            }
                            other => {
                                if let Some(n) = base(other) {
                                    changed(n);
                                }
                            }
                        }
                    }
                }
                Stmt::AugAssign(a) => {
                    if let Some(n) = base(&a.target) {
                        changed(n);
                    }
                }
                Stmt::Delete(d) => d.targets.iter().filter_map(base).for_each(changed),
                Stmt::Expr(e) => {
                    if let Expr::Call(c) = e.value.as_ref() {
                        if let Expr::Attribute(at) = c.func.as_ref() {
                            if MUTATORS.contains(&at.attr.as_str()) {
                                if let Some(n) = base(&at.value) {
                                    changed(n);
                                }
                            }
                        }
                    }
                }
                Stmt::For(f) => {
                    walk(&f.body, false, assigned, out);
                    walk(&f.orelse, false, assigned, out);
                }
                Stmt::While(w) => {
                    walk(&w.body, false, assigned, out);
                    walk(&w.orelse, false, assigned, out);
                }
                Stmt::If(i) => {
                    walk(&i.body, false, assigned, out);
                    walk(&i.orelse, false, assigned, out);
                }
                Stmt::With(w) => walk(&w.body, false, assigned, out),
                Stmt::Try(t) => {
                    walk(&t.body, false, assigned, out);
                    walk(&t.orelse, false, assigned, out);
                    walk(&t.finalbody, false, assigned, out);
                }
                _ => {}
            }
        }
    }
    let mut assigned = HashMap::new();
    let mut out = vec![];
    walk(suite, true, &mut assigned, &mut out);
    let mut seen = BTreeSet::new();
    out.retain(|(n, _)| matches!(defs.get(n), Some(Def::Const(..))) && seen.insert(n.clone()));
    out
}

fn opaque_node(text: &str, why: &str) -> Value {
    Node::Opaque { opaque: Opaque { lang: OpaqueLang::Python, text: text.to_string(), reason: why.to_string() } }.to_value()
}

fn collect_opaque_reasons(v: &Value, out: &mut Vec<Part>) {
    match v {
        Value::Object(o) => {
            if let Some(op) = o.get("opaque") {
                out.push(Part::detection(format!(
                    "`{}` kept as Python: {}",
                    op["text"].as_str().unwrap_or(""),
                    op["reason"].as_str().unwrap_or("")
                )));
                return;
            }
            for x in o.values() {
                collect_opaque_reasons(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_opaque_reasons(x, out)),
        _ => {}
    }
}

/// `if callable(NAME) [or isinstance(NAME, MagicMock)]: NAME = json.loads(NAME())` → NAME.
fn mock_unwrap(i: &ast::StmtIf) -> Option<String> {
    if !i.orelse.is_empty() {
        return None;
    }
    let name = match i.test.as_ref() {
        Expr::Call(c) if matches!(name_of(&c.func), Some("callable" | "isinstance")) => name_of(c.args.first()?)?,
        _ => return None,
    };
    let [Stmt::Assign(a)] = i.body.as_slice() else { return None };
    (a.targets.len() == 1 && name_of(&a.targets[0]) == Some(name)).then(|| name.to_string())
}

/// `for entry in NAME: if glob(FIELD, entry["k"]) [and ...]: return False` (nested ifs too).
fn allow_loop<'a>(py: &mut Py<'a>, st: &'a Stmt) -> Option<Allow> {
    let Stmt::For(f) = st else { return None };
    let var = name_of(&f.target)?;
    let name = name_of(&f.iter).or_else(|| {
        // `for entry in _allow_list()` where the helper returns the (possibly mocked) constant
        let Expr::Call(c) = f.iter.as_ref() else { return None };
        let fname = name_of(&c.func)?;
        let Some(Def::Func(h, _)) = py.defs.get(fname) else { return None };
        let src = py.text(h.range);
        let consts: Vec<&String> = py.defs.iter().filter(|(_, d)| matches!(d, Def::Const(..))).map(|(k, _)| k).filter(|k| src.contains(k.as_str())).collect();
        if consts.len() == 1 { Some(consts[0].as_str()) } else { None }
    })?;
    let Some(Def::Const(value, _)) = py.defs.get(name) else { return None };
    let value: &Expr = value;
    if !f.orelse.is_empty() {
        return None;
    }
    // the tests: a chain of nested ifs / `and`s, ending in `return False` (after local
    // assignments, which are substituted)
    let mut tests: Vec<&'a Expr> = vec![];
    let mut stmts: &'a [Stmt] = &f.body;
    let mut env = Env::default();
    loop {
        while let [Stmt::Assign(a), rest @ ..] = stmts {
            let [target] = a.targets.as_slice() else { return None };
            let n = name_of(target)?;
            if n == var || names_in(py.text(a.value.range())).contains(var) {
                return None;
            }
            env = env.with(n, &a.value, env.clone());
            stmts = rest;
        }
        let [Stmt::If(i)] = stmts else { return None };
        if !i.orelse.is_empty() {
            return None;
        }
        match i.test.as_ref() {
            Expr::BoolOp(b) if matches!(b.op, ast::BoolOp::And) => tests.extend(b.values.iter()),
            t => tests.push(t),
        }
        match i.body.as_slice() {
            [Stmt::Return(r)] if matches!(r.value.as_deref(), Some(Expr::Constant(c)) if matches!(c.value, Constant::Bool(false))) => break,
            _ => stmts = &i.body,
        }
    }
    let mut keys = vec![];
    let mut missing_as_empty = vec![];
    for t in tests {
        let Expr::Call(c) = t else { return None };
        let fname = match c.func.as_ref() {
            Expr::Name(n) if py.glob_fn(n.id.as_str()) && n.id.as_str() != "pattern_match_list" => n.id.as_str(),
            Expr::Attribute(a) if a.attr.as_str() == "fnmatch" && name_of(&a.value) == Some("fnmatch") => "fnmatch",
            _ => return None,
        };
        let _ = fname;
        let [subject, pat] = c.args.as_slice() else { return None };
        let fr = py.field(subject, &env)?;
        // `x or ""`: a missing value is matched as "" (only a pattern like `*` matches it; noted)
        if fr.ci || fr.default.as_ref().is_some_and(|(d, _)| d != &Value::from("")) {
            return None;
        }
        let Expr::Subscript(sub) = pat else { return None };
        if name_of(&sub.value) != Some(var) {
            return None;
        }
        let key = s(&sub.slice)?.to_string();
        if fr.default.is_some() {
            missing_as_empty.push(key.clone());
        }
        keys.push((key, fr.path));
    }
    let entries = match value {
        Expr::List(ast::ExprList { elts, .. }) | Expr::Tuple(ast::ExprTuple { elts, .. }) => elts
            .iter()
            .map(|e| {
                let Expr::Dict(d) = e else { return None };
                let mut m = Map::new();
                for (k, v) in d.keys.iter().zip(&d.values) {
                    let k = k.as_ref().and_then(s)?;
                    if !keys.iter().any(|(x, _)| x == k) {
                        return None;
                    }
                    m.insert(k.to_string(), Value::from(s(v)?));
                }
                Some(Value::Object(m))
            })
            .collect::<Option<Vec<_>>>()?,
        _ => return None,
    };
    Some(Allow { name: name.to_string(), keys, entries, missing_as_empty })
}

/// Two Python expressions written alike but for black's layout: white space outside string
/// literals and trailing commas before a closing bracket (a magic trailing comma) are ignored.
fn same_code(a: &str, b: &str) -> bool {
    fn squeeze(t: &str) -> String {
        let mut out = String::with_capacity(t.len());
        let mut quote: Option<char> = None;
        let mut chars = t.chars().peekable();
        while let Some(c) = chars.next() {
            match quote {
                Some(q) => {
                    out.push(c);
                    if c == '\\' {
                        if let Some(n) = chars.next() {
                            out.push(n);
                        }
                    } else if c == q {
                        quote = None;
                    }
                }
                None if c == '"' || c == '\'' => {
                    quote = Some(c);
                    out.push(c);
                }
                None if c.is_whitespace() => {}
                None if matches!(c, ')' | ']' | '}') && out.ends_with(',') => {
                    out.pop();
                    out.push(c);
                }
                None => out.push(c),
            }
        }
        out
    }
    squeeze(a) == squeeze(b)
}

/// The Panther target's allow-list test, `if _allowed(NAME, {"key": getter, ...}): return False`
/// with NAME a module list of entries (dicts of globs): the canonical allow-list.
fn rulecast_allow(py: &Py<'_>, st: &Stmt) -> Option<Allow> {
    let Stmt::If(i) = st else { return None };
    let returns_false = matches!(i.body.as_slice(), [Stmt::Return(r)] if matches!(r.value.as_deref(), Some(Expr::Constant(c)) if matches!(c.value, Constant::Bool(false))));
    if !returns_false || !i.orelse.is_empty() || !py.rulecast_helper("allowed") {
        return None;
    }
    let Expr::Call(c) = i.test.as_ref() else { return None };
    let [Expr::Name(n), Expr::Dict(d)] = c.args.as_slice() else { return None };
    if name_of(&c.func) != Some("allowed") || !c.keywords.is_empty() {
        return None;
    }
    let mut keys = vec![];
    for (k, v) in d.keys.iter().zip(&d.values) {
        keys.push((s(k.as_ref()?)?.to_string(), py.rulecast_getter(v)?));
    }
    let Some(Def::Const(Expr::List(list), _)) = py.defs.get(n.id.as_str()) else { return None };
    let entries = list
        .elts
        .iter()
        .map(|e| {
            let Expr::Dict(d) = e else { return None };
            let mut m = Map::new();
            for (k, v) in d.keys.iter().zip(&d.values) {
                let k = k.as_ref().and_then(s)?;
                keys.iter().any(|(x, _)| x == k).then_some(())?;
                m.insert(k.to_string(), Value::from(s(v)?));
            }
            Some(Value::Object(m))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Allow { name: n.id.to_string(), keys, entries, missing_as_empty: vec![] })
}

/// A field read in an alert text: exact when missing reads as `""` (a `""` default) or as
/// `None` (no default; noted, since the canonical text prints `""`); another default is not the
/// canonical text.
fn alert_field<'a>(py: &mut Py<'a>, e: &'a Expr, env: &Env<'a>) -> Option<String> {
    let f = py.field(e, env).filter(|f| !f.ci)?;
    match &f.default {
        // a derived value is never None
        None if py.derived.contains(&f.path) => {}
        None => py.prints_none = true,
        Some((d, _)) if d == &Value::from("") => {}
        Some(_) => return None,
    }
    Some(f.path)
}

/// A string expression → a canonical text with `{field}` placeholders.
fn text_of<'a>(py: &mut Py<'a>, e: &'a Expr, env: &Env<'a>) -> Option<String> {
    let lit = |t: &str| (!t.contains(['{', '}'])).then(|| t.to_string());
    match e {
        Expr::Constant(_) => lit(s(e)?),
        Expr::JoinedStr(j) => {
            let mut out = String::new();
            for v in &j.values {
                match v {
                    Expr::Constant(_) => out.push_str(&lit(s(v)?)?),
                    Expr::FormattedValue(fv) if fv.format_spec.is_none() && fv.conversion == ast::ConversionFlag::None => {
                        let f = alert_field(py, &fv.value, env)?;
                        out.push_str(&format!("{{{f}}}"));
                    }
                    _ => return None,
                }
            }
            Some(out)
        }
        Expr::BinOp(b) if matches!(b.op, ast::Operator::Add) => {
            Some(text_of(py, &b.left, env)? + &text_of(py, &b.right, env)?)
        }
        Expr::Name(n) => {
            let (x, scope) = env.get(n.id.as_str())?.clone();
            text_of(py, x, &scope)
        }
        Expr::Call(c) if matches!(c.func.as_ref(), Expr::Attribute(a) if a.attr.as_str() == "format") && c.keywords.is_empty() => {
            let Expr::Attribute(a) = c.func.as_ref() else { return None };
            let tpl = s(&a.value)?;
            let pieces: Vec<&str> = tpl.split("{}").collect();
            if pieces.len() != c.args.len() + 1 || pieces.iter().any(|p| p.contains(['{', '}'])) {
                return None;
            }
            let mut out = pieces[0].to_string();
            for (arg, piece) in c.args.iter().zip(&pieces[1..]) {
                let f = alert_field(py, arg, env)?;
                out.push_str(&format!("{{{f}}}{piece}"));
            }
            Some(out)
        }
        _ => {
            let f = alert_field(py, e, env)?;
            Some(format!("{{{f}}}"))
        }
    }
}

/// The body of a simple alert function: local assignments, then `return X`.
fn returned<'a>(f: &'a ast::StmtFunctionDef) -> Option<(&'a Expr, Env<'a>)> {
    if f.args.args.len() != 1 {
        return None;
    }
    let mut env = Env::default();
    for st in &f.body {
        match st {
            Stmt::Expr(x) if matches!(x.value.as_ref(), Expr::Constant(_)) => {}
            Stmt::Assign(a) if a.targets.len() == 1 => env = env.with(name_of(&a.targets[0])?, &a.value, env.clone()),
            Stmt::Return(r) => return r.value.as_deref().map(|v| (v, env)),
            _ => return None,
        }
    }
    None
}

fn with_param<'a>(py: &Py<'a>, f: &ast::StmtFunctionDef) -> Option<()> {
    (f.args.args[0].def.arg.as_str() == py.root).then_some(())
}

fn alert_text<'a>(py: &mut Py<'a>, f: &'a ast::StmtFunctionDef) -> Option<String> {
    let (e, env) = returned(f)?;
    with_param(py, f)?;
    text_of(py, e, &env)
}

fn alert_dedup<'a>(py: &mut Py<'a>, f: &'a ast::StmtFunctionDef) -> Option<Vec<String>> {
    let (e, env) = returned(f)?;
    with_param(py, f)?;
    // one field, or `":".join([fields])`
    if py.field(e, &env).is_some() {
        return alert_field(py, e, &env).map(|f| vec![f]);
    }
    let Expr::Call(c) = e else { return None };
    let Expr::Attribute(a) = c.func.as_ref() else { return None };
    if a.attr.as_str() != "join" || s(&a.value) != Some(":") || c.args.len() != 1 {
        return None;
    }
    let (Expr::List(ast::ExprList { elts, .. }) | Expr::Tuple(ast::ExprTuple { elts, .. })) = &c.args[0] else { return None };
    // `":".join` of a None raises: only fields read with a `""` default join as Python does
    elts.iter()
        .map(|x| py.field(x, &env).filter(|y| !y.ci && (y.default.as_ref().is_some_and(|(d, _)| d == &Value::from("")) || (y.default.is_none() && py.derived.contains(&y.path)))).map(|y| y.path))
        .collect()
}

/// The fields of Panther's `aws_rule_context(event)`.
pub const AWS_RULE_CONTEXT: &[&str] =
    &["eventName", "eventSource", "awsRegion", "recipientAccountId", "sourceIPAddress", "userAgent", "userIdentity"];

fn alert_context<'a>(py: &mut Py<'a>, f: &'a ast::StmtFunctionDef) -> Option<(Vec<String>, Option<Part>)> {
    let (e, env) = returned(f)?;
    with_param(py, f)?;
    let mut out = vec![];
    let mut note = None;
    let mut add = |py: &mut Py<'a>, x: &'a Expr, out: &mut Vec<String>| -> Option<()> {
        match x {
            Expr::Call(c) if name_of(&c.func) == Some("aws_rule_context") && py.is_helper("aws_rule_context") => {
                out.extend(AWS_RULE_CONTEXT.iter().map(|s| s.to_string()));
                note = Some(Part::metadata("alert_context: aws_rule_context(event) becomes its seven CloudTrail fields (its placeholders for missing fields and the PantherFlow investigation link are not carried)"));
                Some(())
            }
            Expr::Dict(d) => {
                for (k, v) in d.keys.iter().zip(&d.values) {
                    match k {
                        None => return None,
                        Some(k) => {
                            let key = s(k)?;
                            let fr = py.field(v, &env).filter(|x| !x.ci && x.default.is_none())?;
                            if fr.path.trim_start_matches('@') != key {
                                return None;
                            }
                            out.push(fr.path);
                        }
                    }
                }
                Some(())
            }
            _ => None,
        }
    };
    match e {
        Expr::BinOp(b) if matches!(b.op, ast::Operator::BitOr) => {
            add(py, &b.left, &mut out)?;
            add(py, &b.right, &mut out)?;
        }
        other => add(py, other, &mut out)?,
    }
    let mut seen = BTreeSet::new();
    out.retain(|x| seen.insert(x.clone()));
    Some((out, note))
}

/// The prelude: the module statements that define the used names (and what those use), in
/// module order; Panther helper imports replaced by rulecast's own small equivalents. Returns
/// also the helper names rulecast cannot supply, and the module statements left out that run
/// code when the module loads (see [`runs_code`]), to be reported.
fn prelude(py: &Py<'_>, suite: &[Stmt]) -> (Option<String>, Vec<String>, Vec<usize>) {
    let mut need: BTreeSet<String> = py.used.clone();
    let mut stack: Vec<String> = need.iter().cloned().collect();
    let mut helper_names: BTreeSet<String> = BTreeSet::new();
    let mut missing = vec![];
    while let Some(n) = stack.pop() {
        let Some(d) = py.defs.get(&n) else { continue };
        let idx = match d {
            Def::Import(m, orig, i) => {
                if m.starts_with("panther") {
                    if helpers::source(orig).is_some() {
                        for dep in helpers::closure(orig) {
                            helper_names.insert(dep);
                        }
                    } else {
                        missing.push(format!("{m}.{orig}"));
                    }
                }
                *i
            }
            Def::Const(_, i) | Def::Func(_, i) | Def::Class(i) => *i,
        };
        let text = py.text(suite[idx].range());
        for name in names_in(text) {
            if py.defs.contains_key(&name) && need.insert(name.clone()) {
                stack.push(name);
            }
        }
    }
    let mut dropped = vec![];
    if need.is_empty() {
        dropped.extend(suite.iter().enumerate().filter(|(_, st)| runs_code(st)).map(|(i, _)| i));
        return (None, missing, dropped);
    }
    let mut out: Vec<String> = vec![];
    let mut std_imports: BTreeSet<String> = BTreeSet::new();
    for h in &helper_names {
        for m in helpers::imports(h) {
            std_imports.insert(m.to_string());
        }
    }
    let mut emitted_helpers = false;
    for (i, st) in suite.iter().enumerate() {
        let defines: Vec<&String> = py
            .defs
            .iter()
            .filter(|(k, d)| need.contains(*k) && matches!(d, Def::Import(_, _, j) | Def::Const(_, j) | Def::Func(_, j) if *j == i))
            .map(|(k, _)| k)
            .collect();
        if defines.is_empty() {
            if runs_code(st) {
                dropped.push(i);
            }
            continue;
        }
        match st {
            Stmt::Import(_) | Stmt::ImportFrom(_) => {
                let from_panther = defines.iter().all(|k| matches!(py.defs.get(*k), Some(Def::Import(m, _, _)) if m.starts_with("panther")));
                if from_panther {
                    // keep only what rulecast cannot supply
                    let keep: Vec<String> = defines
                        .iter()
                        .filter_map(|k| match py.defs.get(*k) {
                            Some(Def::Import(m, o, _)) if helpers::source(o).is_none() => Some(format!("from {m} import {o}")),
                            _ => None,
                        })
                        .collect();
                    out.extend(keep);
                } else {
                    let line = py.text(st.range()).to_string();
                    if !std_imports.contains(line.trim()) {
                        out.push(line);
                    }
                }
            }
            Stmt::FunctionDef(f) if f.name.as_str() == "rule" => {
                if !emitted_helpers {
                    out.extend(helper_block(&helper_names, &std_imports));
                    emitted_helpers = true;
                }
                out.push(rename_def(py.text(st.range()), "_panther_rule"));
            }
            _ => {
                if !emitted_helpers && matches!(st, Stmt::FunctionDef(_)) {
                    out.extend(helper_block(&helper_names, &std_imports));
                    emitted_helpers = true;
                }
                out.push(py.text(st.range()).to_string());
            }
        }
    }
    if !emitted_helpers {
        out.extend(helper_block(&helper_names, &std_imports));
    }
    // imports first
    let (imports, rest): (Vec<String>, Vec<String>) = out.into_iter().partition(|l| l.starts_with("import ") || l.starts_with("from "));
    let mut text = String::new();
    let mut imports: Vec<String> = imports.into_iter().chain(std_imports.iter().cloned()).collect();
    imports.sort();
    imports.dedup();
    for i in &imports {
        text.push_str(i);
        text.push('\n');
    }
    for r in rest {
        if !text.is_empty() {
            text.push_str(if r.starts_with("def ") || text.ends_with("\n\n") { "\n\n" } else { "\n" });
        }
        text.push_str(r.trim_end());
        text.push('\n');
    }
    (Some(text), missing, dropped)
}

/// Does a module statement run code when the module loads, beyond defining a function, a
/// class or a constant? (A call, a loop, a branch, `with`, `try`, an assignment that calls
/// something, ...: `os.system(...)` at module level.) A docstring, an import, a `def` and an
/// assignment of a plain value do not.
fn runs_code(st: &Stmt) -> bool {
    match st {
        Stmt::Expr(x) => !matches!(x.value.as_ref(), Expr::Constant(_)),
        Stmt::FunctionDef(_) | Stmt::AsyncFunctionDef(_) | Stmt::Import(_) | Stmt::ImportFrom(_) | Stmt::Pass(_) => false,
        Stmt::ClassDef(c) => !c.decorator_list.is_empty(),
        Stmt::Assign(a) => calls(&a.value),
        Stmt::AnnAssign(a) => a.value.as_deref().is_some_and(calls),
        _ => true,
    }
}

/// Does an expression call something (anywhere inside)?
fn calls(e: &Expr) -> bool {
    let text = format!("{e:?}");
    text.contains("Call(ExprCall") || text.contains("Await(") || text.contains("Yield")
}

fn helper_block(names: &BTreeSet<String>, _imports: &BTreeSet<String>) -> Vec<String> {
    helpers::ORDER
        .iter()
        .filter(|n| names.contains(**n))
        .filter_map(|n| helpers::source(n))
        .map(|s| s.trim_end().to_string())
        .collect()
}

/// Names a piece of Python mentions (from the lexer; attribute names included, harmlessly;
/// the expressions inside f-strings too).
pub fn names_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (t, _) in lexer::lex(text, Mode::Module).map_while(Result::ok) {
        match t {
            Tok::Name { name } => {
                out.insert(name);
            }
            Tok::String { value, kind: StringKind::FString | StringKind::RawFString, .. } => {
                for part in fstring_fields(&value) {
                    out.extend(names_in(&part));
                }
            }
            _ => {}
        }
    }
    out
}

/// The `{...}` replacement fields of an f-string's text (`{{` / `}}` are literal braces).
fn fstring_fields(value: &str) -> Vec<String> {
    let mut out = vec![];
    let cs: Vec<char> = value.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        match cs[i] {
            '{' if cs.get(i + 1) == Some(&'{') => i += 2,
            '{' => {
                let mut depth = 1;
                let mut j = i + 1;
                let mut quote: Option<char> = None;
                while j < cs.len() && depth > 0 {
                    match (quote, cs[j]) {
                        (Some(q), c) if c == q => quote = None,
                        (Some(_), _) => {}
                        (None, '\'' | '"') => quote = Some(cs[j]),
                        (None, '{') => depth += 1,
                        (None, '}') => depth -= 1,
                        _ => {}
                    }
                    j += 1;
                }
                out.push(cs[i + 1..j.saturating_sub(1).max(i + 1)].iter().collect());
                i = j;
            }
            _ => i += 1,
        }
    }
    out
}

/// `def rule(` → `def NEW(` (the first name after `def`).
fn rename_def(text: &str, new: &str) -> String {
    let toks: Vec<_> = lexer::lex(text, Mode::Module).map_while(Result::ok).collect();
    for w in toks.windows(2) {
        if matches!(w[0].0, Tok::Def) && matches!(w[1].0, Tok::Name { .. }) {
            let (a, b) = (w[1].1.start().to_usize(), w[1].1.end().to_usize());
            return format!("{}{new}{}", &text[..a], &text[b..]);
        }
    }
    text.to_string()
}

/// The top-level functions a prelude defines (parsed), or the parser's message.
pub fn top_level_functions(prelude: &str) -> Result<Vec<String>, String> {
    use rustpython_parser::Parse;
    let suite = ast::Suite::parse(prelude, "<prelude>").map_err(|e| e.error.to_string())?;
    Ok(suite
        .iter()
        .filter_map(|s| match s {
            Stmt::FunctionDef(f) => Some(f.name.to_string()),
            Stmt::AsyncFunctionDef(f) => Some(f.name.to_string()),
            _ => None,
        })
        .collect())
}
