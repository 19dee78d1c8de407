#!/usr/bin/env python3
"""Outside oracle: run KQL queries with duckdb-kql (KQL -> DuckDB SQL) and report,
for every input row, whether the query returns at least one row when the table
holds only that row.

    python3 tests/oracles/duckdb_kql/run.py [--per-row] [--timing] < input.json > output.json

stdin:
    {"schema": [[column, kusto_type], ...],
     "queries": [{"name": str, "query": str}, ...],
     "rows": [{column: value, ...}, ...],
     "table": "AWSCloudTrail",            (optional, the default)
     "now": "2024-01-01T00:00:00Z"}       (optional: pins now()/ago())

stdout: [{"name": str, "verdicts": [true|false|null, ...], "error": str|null}, ...]
    One verdict per row, in row order. A query duckdb-kql cannot translate has every
    verdict null and "error" set ("KqlUnsupportedError: ..."). A query that fails at
    run time on some rows only has null verdicts for those rows and "error" naming them.

Exit code: 0 when the input was read (whatever the queries did), 2 on bad input or
when duckdb / duckdb-kql cannot be imported.

Kusto types -> DuckDB column types: string VARCHAR, bool BOOLEAN, datetime TIMESTAMP
(naive UTC, as duckdb-kql expects), long BIGINT, int INTEGER, real DOUBLE,
dynamic JSON, guid UUID, timespan INTERVAL (a KQL timespan string or seconds).
Values: a string column's null/absent value is "" (Kusto strings are never null);
other types' null/absent value, and "" for a datetime, is null.

Evaluation. Every row is loaded once into a hidden table with a "__rowid" column; the
table name is a view over it.
  1. All rows at once, when plan_fast() can prove it equal to per-row evaluation: the
     source is the table itself; operators are where / extend / project-away /
     project-rename / parse / parse-where / mv-expand / sort, plus summarize (with a
     `by`), distinct and project, into which __rowid is added as one more group key /
     column; no take, top, count, join, union, lookup, summarize without `by`, nested
     query (tabular let, in (subquery), toscalar) or row-window function. The view shows
     every row with its __rowid, the rewritten query runs once, and a row's verdict is
     whether its __rowid is in the output. (A summarize by (keys..., __rowid) over all
     rows is exactly the union of the per-row summarize results, each tagged with its
     row; the row-local operators act on each tagged row alone.) The rewrite is done on
     duckdb-kql's IR inside its public to_sql, by wrapping duckdb_kql.lower.lower for
     that one call.
  2. Otherwise, or if step 1 fails at run time, the query as written is translated once
     and its SQL is run once per row against a view holding only that row (chosen with
     a DuckDB variable). Per-row run-time errors give that row a null verdict.
--per-row forces step 2 for every query; selftest.sh checks the two agree.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import sys
import time
from typing import Any

try:
    import duckdb  # noqa: F401
    import duckdb_kql
    from duckdb_kql.errors import KqlError
except ImportError as exc:  # pragma: no cover
    print(
        f"run.py: cannot import duckdb / duckdb_kql ({exc}); install with "
        "pip install -r tests/oracles/duckdb_kql/requirements.txt",
        file=sys.stderr,
    )
    sys.exit(2)

ROWID = "__rowid"
ROWS_TABLE = "__rulecast_oracle_rows"
RID_VAR = "__rulecast_oracle_rid"

DUCK_TYPES = {
    "string": "VARCHAR",
    "bool": "BOOLEAN",
    "boolean": "BOOLEAN",
    "datetime": "TIMESTAMP",
    "date": "TIMESTAMP",
    "long": "BIGINT",
    "int": "INTEGER",
    "real": "DOUBLE",
    "double": "DOUBLE",
    "dynamic": "JSON",
    "guid": "UUID",
    "timespan": "INTERVAL",
}


class InputError(Exception):
    pass


def qident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# ---------------------------------------------------------------- values

_FRACTION = re.compile(r"(\.\d{6})\d+")
_TIMESPAN = re.compile(r"^(-)?(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?$")


def parse_datetime(value: str) -> dt.datetime:
    text = value.strip()
    # Kusto writes 7 fractional digits; Python (and DuckDB TIMESTAMP) keep 6.
    text = _FRACTION.sub(r"\1", text)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return parsed


def convert(column: str, ktype: str, value: Any) -> Any:
    where = f"column {column!r} ({ktype})"
    if ktype == "string":
        if value is None:
            return ""
        if not isinstance(value, str):
            raise InputError(f"{where}: expected a JSON string, got {value!r}")
        return value
    if value is None:
        return None
    if ktype in ("bool", "boolean"):
        if not isinstance(value, bool):
            raise InputError(f"{where}: expected true/false/null, got {value!r}")
        return value
    if ktype in ("datetime", "date"):
        if value == "":
            return None
        if not isinstance(value, str):
            raise InputError(f"{where}: expected an ISO-8601 string, got {value!r}")
        try:
            return parse_datetime(value)
        except ValueError as exc:
            raise InputError(f"{where}: {exc}") from None
    if ktype in ("long", "int"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{where}: expected an integer, got {value!r}")
        return value
    if ktype in ("real", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if ktype == "dynamic":
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if ktype == "guid":
        if value == "":
            return None
        return str(value)
    if ktype == "timespan":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return dt.timedelta(seconds=value)
        m = _TIMESPAN.match(str(value))
        if not m:
            raise InputError(f"{where}: expected d.hh:mm:ss[.fffffff] or seconds, got {value!r}")
        sign, days, h, mi, s, frac = m.groups()
        td = dt.timedelta(days=int(days or 0), hours=int(h), minutes=int(mi), seconds=int(s),
                          microseconds=int((frac or "0").ljust(7, "0")[:6]))
        return -td if sign else td
    raise InputError(f"{where}: unsupported type")


# ---------------------------------------------------------------- row-locality

#: Operators under which a row's fate depends on that row alone, as they are.
ROW_LOCAL_OPERATORS = ("Where", "Extend", "ProjectAway", "ProjectRename", "Parse", "MvExpand", "Sort")
#: Operators made row-local by carrying __rowid through them (see plan_fast).
ROWID_CARRYING_OPERATORS = ("Summarize", "Distinct", "Project")
NON_ROW_LOCAL_FUNCTIONS = {"row_number", "prev", "next", "row_cumsum", "row_rank_dense",
                           "row_rank_min", "row_window_session", "toscalar"}


def _walk(node: Any, seen: set[int]):
    if id(node) in seen:
        return
    seen.add(id(node))
    yield node
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        for f in dataclasses.fields(node):
            yield from _walk(getattr(node, f.name), seen)
    elif isinstance(node, (list, tuple)):
        for item in node:
            yield from _walk(item, seen)
    elif isinstance(node, dict):
        for item in node.values():
            yield from _walk(item, seen)


def plan_fast(query: Any, table: str) -> Any:
    """The query rewritten to evaluate every row at once, or None.

    *query* is duckdb-kql's IR (duckdb_kql.ir.Query). Accepted: source is *table*
    itself; operators are where / extend / project-away / project-rename / parse /
    parse-where / mv-expand / sort, plus summarize-with-by, distinct and project,
    which get __rowid added (a summarize or distinct by (keys..., __rowid) over all
    rows yields exactly the union of the per-row results, each tagged with its row;
    a project keeps __rowid). Refused: anything else (take, top, count, join,
    union, lookup, summarize without by -- which yields a row even on no input),
    any nested query (tabular let, in (subquery), toscalar), row-window functions,
    and any mention of __rowid in the query itself. Conservative: any doubt -> None.
    """
    from duckdb_kql import ir

    src = query.source
    if type(src).__name__ != "TableRef" or src.name != table:
        return None
    if getattr(src, "database", None) or getattr(src, "cluster", None):
        return None
    for _name, value in query.lets:
        if isinstance(value, ir.Query):
            return None
    for node in _walk((query.operators, [v for _n, v in query.lets]), set()):
        if isinstance(node, (ir.Query, ir.ToScalar, ir.RowContext, ir.RenderedAggregate)):
            return None
        if isinstance(node, ir.FunctionCall) and node.name.lower() in NON_ROW_LOCAL_FUNCTIONS:
            return None
        if isinstance(node, ir.ColumnRef) and node.name == ROWID:
            return None
        if isinstance(node, ir.NamedExpr) and node.name == ROWID:
            return None
    carried = ir.NamedExpr(ir.ColumnRef(ROWID), ROWID)
    operators = []
    for op in query.operators:
        kind = type(op).__name__
        if kind == "ProjectAway":
            # `project-away` takes wildcards; one could drop __rowid.
            if any("*" in c or c == ROWID for c in op.columns):
                return None
        elif kind == "ProjectRename":
            if any(ROWID in pair for pair in op.renames):
                return None
        elif kind == "Summarize":
            if not op.by:
                return None
            op = dataclasses.replace(op, by=tuple(op.by) + (carried,))
        elif kind in ("Distinct", "Project"):
            if any(isinstance(e.expr, ir.Wildcard) for e in op.expressions):
                return None
            op = dataclasses.replace(op, expressions=tuple(op.expressions) + (carried,))
        elif kind not in ROW_LOCAL_OPERATORS:
            return None
        operators.append(op)
    return dataclasses.replace(query, operators=operators)


def translate_fast(kql: str, schema: dict, now: Any) -> Any:
    """duckdb_kql.to_sql(kql) with plan_fast applied to its IR, or None.

    to_sql is the public entry point (it handles the clock, parameters and
    qualification); the IR is swapped in by wrapping duckdb_kql.lower.lower, which
    to_sql imports at call time, for this one call only.
    """
    import duckdb_kql.lower as lower_module

    original = lower_module.lower
    state = {"seen": False, "planned": False}

    def lower_and_plan(text: str, *args: Any, **kwargs: Any) -> Any:
        query = original(text, *args, **kwargs)
        if not state["seen"] and text is kql:
            state["seen"] = True
            planned = plan_fast(query, next(iter(schema)))
            if planned is not None:
                state["planned"] = True
                return planned
        return query

    lower_module.lower = lower_and_plan
    try:
        translated = duckdb_kql.to_sql(kql, schema=schema, query_now=now)
    finally:
        lower_module.lower = original
    return translated if state["planned"] else None


# ---------------------------------------------------------------- engine

def error_text(exc: BaseException) -> str:
    msg = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {msg}"


class Oracle:
    def __init__(self, schema: list[tuple[str, str]], rows: list[dict], table: str, now: Any):
        self.schema = schema
        self.columns = [c for c, _ in schema]
        self.table = table
        self.now = now
        self.nrows = len(rows)
        self.con = duckdb_kql.connect()
        defs = ", ".join(f"{qident(c)} {DUCK_TYPES[t]}" for c, t in schema)
        self.con.execute(f"CREATE TABLE {qident(ROWS_TABLE)} ({defs}, {qident(ROWID)} BIGINT)")
        known = set(self.columns)
        values = []
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise InputError(f"row {i}: not a JSON object")
            unknown = sorted(set(row) - known)
            if unknown:
                raise InputError(f"row {i}: columns not in the schema: {unknown}")
            try:
                values.append([convert(c, t, row.get(c)) for c, t in schema] + [i])
            except InputError as exc:
                raise InputError(f"row {i}: {exc}") from None
        if values:
            marks = ", ".join("?" for _ in range(len(schema) + 1))
            self.con.executemany(f"INSERT INTO {qident(ROWS_TABLE)} VALUES ({marks})", values)
        self.mode = None

    def _view(self, mode: str) -> None:
        if self.mode == mode:
            return
        cols = ", ".join(qident(c) for c in self.columns)
        if mode == "all":
            body = f"SELECT {cols}, {qident(ROWID)} FROM {qident(ROWS_TABLE)}"
        else:
            body = (f"SELECT {cols} FROM {qident(ROWS_TABLE)} "
                    f"WHERE {qident(ROWID)} = getvariable('{RID_VAR}')")
        self.con.execute(f"CREATE OR REPLACE VIEW {qident(self.table)} AS {body}")
        self.mode = mode

    def _translate(self, kql: str, with_rowid: bool):
        cols = self.columns + ([ROWID] if with_rowid else [])
        return duckdb_kql.to_sql(kql, schema={self.table: cols}, query_now=self.now)

    def _run(self, translated) -> Any:
        params = translated.parameters
        return self.con.execute(str(translated), params) if params else self.con.execute(str(translated))

    def evaluate(self, kql: str, force_per_row: bool) -> tuple[list[bool | None], str | None, str]:
        # 1. All rows at once, when plan_fast can rewrite the query for it.
        if not force_per_row and self.nrows:
            try:
                fast = translate_fast(kql, {self.table: self.columns + [ROWID]}, self.now)
                if fast is not None and not fast.unbound:
                    self._view("all")
                    cur = self._run(fast)
                    names = [d[0] for d in cur.description]
                    if ROWID in names:
                        k = names.index(ROWID)
                        hit = {r[k] for r in cur.fetchall()}
                        return [i in hit for i in range(self.nrows)], None, "all-rows"
            except Exception:
                pass  # the plain translation below reports a refusal; else per row

        # 2. The query as written. A construct duckdb-kql refuses is the common failure.
        try:
            translated = self._translate(kql, with_rowid=False)
            if translated.unbound:
                raise KqlError(f"declared query parameters without a value: {', '.join(translated.unbound)}")
        except Exception as exc:  # KqlError, or a translator bug
            return [None] * self.nrows, error_text(exc), "untranslated"

        # 3. Once per row, against a view holding that row only.
        self._view("one")
        verdicts: list[bool | None] = []
        failures: list[str] = []
        for i in range(self.nrows):
            try:
                self.con.execute(f"SET VARIABLE {RID_VAR} = {i}")
                verdicts.append(self._run(translated).fetchone() is not None)
            except Exception as exc:
                verdicts.append(None)
                failures.append(f"row {i}: {error_text(exc)}")
        error = None
        if failures:
            error = f"run-time error on {len(failures)} of {self.nrows} row(s); first: {failures[0]}"
        return verdicts, error, "per-row"


def load_input(data: Any) -> tuple[list[tuple[str, str]], list[dict], list[dict], str, Any]:
    if not isinstance(data, dict):
        raise InputError("stdin must be a JSON object with schema, queries and rows")
    schema_in = data.get("schema")
    if not isinstance(schema_in, list) or not schema_in:
        raise InputError("'schema' must be a non-empty list of [column, type]")
    schema: list[tuple[str, str]] = []
    seen = set()
    for entry in schema_in:
        if (not isinstance(entry, (list, tuple)) or len(entry) != 2
                or not all(isinstance(x, str) for x in entry)):
            raise InputError(f"bad schema entry {entry!r}; expected [column, type]")
        col, ktype = entry[0], entry[1].strip().lower()
        if ktype not in DUCK_TYPES:
            raise InputError(f"column {col!r}: unsupported type {entry[1]!r} (known: {sorted(DUCK_TYPES)})")
        if col in seen or col == ROWID:
            raise InputError(f"duplicate or reserved column name {col!r}")
        seen.add(col)
        schema.append((col, ktype))
    queries = data.get("queries")
    if not isinstance(queries, list) or not all(
            isinstance(q, dict) and isinstance(q.get("query"), str) for q in queries):
        raise InputError("'queries' must be a list of {\"name\", \"query\"}")
    rows = data.get("rows", [])
    if not isinstance(rows, list):
        raise InputError("'rows' must be a list of objects")
    table = data.get("table", "AWSCloudTrail")
    if not isinstance(table, str) or not table:
        raise InputError("'table' must be a non-empty string")
    return schema, queries, rows, table, data.get("now")


def main(argv: list[str]) -> int:
    args = set(argv[1:])
    unknown = args - {"--per-row", "--timing"}
    if unknown:
        print(f"usage: run.py [--per-row] [--timing] < input.json (unknown: {sorted(unknown)})",
              file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        data = json.load(sys.stdin)
        schema, queries, rows, table, now = load_input(data)
        oracle = Oracle(schema, rows, table, now)
    except (InputError, json.JSONDecodeError) as exc:
        print(f"run.py: bad input: {exc}", file=sys.stderr)
        return 2
    out = []
    for q in queries:
        t0 = time.perf_counter()
        verdicts, error, mode = oracle.evaluate(q["query"], "--per-row" in args)
        if "--timing" in args:
            print(f"run.py: {q.get('name')}: {mode} {time.perf_counter() - t0:.3f}s",
                  file=sys.stderr)
        out.append({"name": q.get("name"), "verdicts": verdicts, "error": error})
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")
    if "--timing" in args:
        print(f"run.py: {len(queries)} queries x {len(rows)} rows in "
              f"{time.perf_counter() - started:.2f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
