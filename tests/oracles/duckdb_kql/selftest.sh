#!/usr/bin/env bash
# Self-test for the duckdb-kql oracle (run.py). Installs nothing: needs the packages of
# requirements.txt already importable by $PYTHON (default python3).
#
# Usage (from anywhere):
#   bash tests/oracles/duckdb_kql/selftest.sh [SENTINEL_OUT_DIR]
#
# 1. fixture.json (AWSCloudTrail schema + 4 rows) with its queries and the query of
#    tests/fixtures/reference/sentinel/AWS_IngressEgressSecurityGroupChange.yaml:
#    expected verdicts, or the expected refusal for constructs duckdb-kql lacks; in both
#    evaluation modes (all rows at once, and --per-row).
# 2. bad input exits 2.
# 3. 100 synthetic rows (rows100.py) x every fixture and crosscheck query: the all-rows
#    evaluation must agree with --per-row; prints the timing.
# 4. With SENTINEL_OUT_DIR (e.g. after `cargo run -q -- build --out /tmp/dk_out`, pass
#    /tmp/dk_out/sentinel): runs the `query:` of every *.yaml there on the 100 rows,
#    prints which ones duckdb-kql runs and which it refuses (a refusal is reported, not a
#    failure), and requires the two modes to agree on those too.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
PYTHON="${PYTHON:-python3}"
generated="${1:-}"
if [[ -n "$generated" && ! -d "$generated" ]]; then
  echo "selftest.sh: $generated is not a directory" >&2; exit 2
fi

"$PYTHON" - "$here" "$repo/tests/fixtures/reference/sentinel/AWS_IngressEgressSecurityGroupChange.yaml" "$generated" <<'PY'
import glob, json, os, re, subprocess, sys, time

here, reference, generated = sys.argv[1], sys.argv[2], sys.argv[3]
sys.dont_write_bytecode = True  # leave no __pycache__ in the repo
sys.path.insert(0, here)
import rows100  # noqa: E402

failures = 0


def fail(msg):
    global failures
    failures += 1
    print("FAIL " + msg)


def yaml_query(path):
    """The `query` of a Sentinel rule YAML (PyYAML if present, else the `query: |` block)."""
    text = open(path, encoding="utf-8").read()
    try:
        import yaml
        return yaml.safe_load(text)["query"]
    except ImportError:
        m = re.search(r"^query: *\|[-+]?\n((?:(?:  .*)?\n)*)", text, re.M)
        if not m:
            raise SystemExit(f"selftest.sh: no `query: |` block in {path} (install PyYAML)")
        return "".join(l[2:] if l.startswith("  ") else l for l in m.group(1).splitlines(True))


def run(payload, *flags):
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, os.path.join(here, "run.py"), *flags],
                       input=json.dumps(payload), capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"selftest.sh: run.py {' '.join(flags)} exited {p.returncode}: {p.stderr}")
    return json.loads(p.stdout), elapsed


fx = json.load(open(os.path.join(here, "fixture.json"), encoding="utf-8"))
queries = list(fx["queries"]) + [{
    "name": "reference_AWS_IngressEgressSecurityGroupChange",
    "query": yaml_query(reference),
    "expect_error": "split",
}]

# 1. expected verdicts, both modes ------------------------------------------------
payload = {"schema": fx["schema"], "rows": fx["rows"],
           "queries": [{"name": q["name"], "query": q["query"]} for q in queries]}
for flags in ((), ("--per-row",)):
    mode = "per-row" if flags else "default"
    out, _ = run(payload, *flags)
    for q, o in zip(queries, out):
        label = f"{q['name']} [{mode}]"
        if "expect_error" in q:
            if o["error"] and q["expect_error"] in o["error"] and all(v is None for v in o["verdicts"]):
                print(f"ok   {label}: refused as expected ({o['error'][:110]})")
            else:
                fail(f"{label}: expected a refusal mentioning {q['expect_error']!r}, got {o}")
        elif o["error"] is None and o["verdicts"] == q["expect"]:
            print(f"ok   {label}: {o['verdicts']}")
        else:
            fail(f"{label}: expected {q['expect']}, got {o['verdicts']} error={o['error']}")

# 2. bad input ------------------------------------------------------------------------
for name, bad in [("unknown type", {"schema": [["A", "blob"]], "queries": [], "rows": []}),
                  ("string column given a number",
                   {"schema": [["A", "string"]], "queries": [], "rows": [{"A": 1}]}),
                  ("not JSON", None)]:
    p = subprocess.run([sys.executable, os.path.join(here, "run.py")],
                       input="{" if bad is None else json.dumps(bad), capture_output=True, text=True)
    if p.returncode == 2:
        print(f"ok   bad input ({name}) -> exit 2")
    else:
        fail(f"bad input ({name}): exit {p.returncode}, expected 2")


# 3./4. 100 rows, all-rows vs per-row --------------------------------------------------
rows = rows100.make(fx["rows"], fx["schema"], 100)


def crosscheck(title, qs):
    payload = {"schema": fx["schema"], "rows": rows, "queries": qs}
    fast, t_fast = run(payload)
    slow, t_slow = run(payload, "--per-row")
    print(f"---- {title}: {len(qs)} queries x {len(rows)} rows: {t_fast:.2f}s "
          f"(per-row everywhere: {t_slow:.2f}s), process start included")
    for f, s in zip(fast, slow):
        if f != s:
            fail(f"{title}: {f['name']}: all-rows and per-row evaluations differ:\n  {f}\n  {s}")
    return fast


crosscheck("fixture + crosscheck queries",
           [{"name": q["name"], "query": q["query"]} for q in queries + fx["crosscheck"]])

if generated:
    files = sorted(glob.glob(os.path.join(generated, "*.yaml")))
    if not files:
        fail(f"no *.yaml in {generated}")
    else:
        qs = [{"name": os.path.basename(f)[:-5], "query": yaml_query(f)} for f in files]
        out = crosscheck(f"generated rules in {generated}", qs)
        ran = [o for o in out if o["error"] is None]
        for o in out:
            if o["error"] is None:
                print(f"runs    {o['name']}: true on {sum(1 for v in o['verdicts'] if v)}/{len(rows)} rows")
            else:
                print(f"REFUSED {o['name']}: {o['error']}")
        print(f"---- duckdb-kql runs {len(ran)} of {len(out)} generated queries")

if failures:
    print(f"duckdb-kql oracle self-test FAILED ({failures} failure(s))")
    sys.exit(1)
print("duckdb-kql oracle self-test passed")
PY
