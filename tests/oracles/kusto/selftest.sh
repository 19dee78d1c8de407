#!/usr/bin/env bash
# Self-test for the Kusto oracle: it must flag an unknown column, a syntax error and
# a type error, and accept a realistic valid Sentinel query with zero errors.
# Usage (from anywhere): bash tests/oracles/kusto/selftest.sh [SCHEMA_TSV]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
schema="${1:-${RULECAST_AWS_SCHEMA:-/work/shared/data/sentinel_AWSCloudTrail_columns.tsv}}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # check NAME EXPECTED_RC JSON_FILE [JQ-ish python assertion]
  local name="$1" want="$2" file="$3" assertion="$4" rc=0
  node "$here/check.js" "$schema" <"$file" >"$tmp/out.json" 2>"$tmp/err.txt" || rc=$?
  if [[ "$rc" != "$want" ]]; then
    echo "FAIL $name: exit code $rc, expected $want"; cat "$tmp/err.txt" "$tmp/out.json"; fail=1; return
  fi
  if [[ -n "$assertion" ]] && ! python3 -c "import json,sys; r=json.load(open(sys.argv[1])); assert $assertion, r" "$tmp/out.json"; then
    echo "FAIL $name: output assertion failed: $assertion"; fail=1; return
  fi
  echo "ok   $name"
}

valid_query='let EventNameList = dynamic([ "AuthorizeSecurityGroupEgress", "AuthorizeSecurityGroupIngress"]);
AWSCloudTrail
| where EventName in~ (EventNameList)
| where isempty(ErrorCode) and isempty(ErrorMessage)
| extend UserIdentityArn = iif(isempty(UserIdentityArn), tostring(parse_json(Resources)[0].ARN), UserIdentityArn)
| extend UserName = tostring(split(UserIdentityArn, '"'"'/'"'"')[-1])
| extend AccountName = case( UserIdentityPrincipalid == "Anonymous", "Anonymous", isempty(UserIdentityUserName), UserName, UserIdentityUserName)
| where tostring(parse_json(RequestParameters).enable) =~ "false" and SessionMfaAuthenticated == true and UserAgent matches regex @"^a\.b" and not(UserAgent has_cs "x")
| summarize EventCount=count(), StartTimeUtc = min(TimeGenerated), EndTimeUtc = max(TimeGenerated) by EventSource, AccountName'

python3 - "$tmp" "$valid_query" <<'PY'
import json, sys
d, valid = sys.argv[1], sys.argv[2]
cases = {
    "unknown_column": 'AWSCloudTrail | where EventNam == "x"',
    "syntax_error": 'AWSCloudTrail | where (',
    "type_error": 'AWSCloudTrail | where SessionMfaAuthenticated > "abc"',
    "bad_arity": 'AWSCloudTrail | where isempty(EventName, 1)',
    "unknown_table": 'AWSCloudTrai | take 1',
    "valid": valid,
    "extra_columns": 'AWSCloudTrail | where UserIdentityStoreArn != "" or isnotempty(UserIdentityUserId)',
}
for k, q in cases.items():
    json.dump([{"name": k, "query": q}], open(f"{d}/{k}.json", "w"))
json.dump([{"name": k, "query": cases[k]} for k in ("valid", "unknown_column")], open(f"{d}/mixed.json", "w"))
PY

check unknown_column 1 "$tmp/unknown_column.json" \
  "len(r)==1 and r[0]['name']=='unknown_column' and any('EventNam' in e['message'] and e['severity']=='Error' and e['start']==22 and e['length']==8 for e in r[0]['errors'])"
check syntax_error   1 "$tmp/syntax_error.json"   "len(r[0]['errors'])>0"
check type_error     1 "$tmp/type_error.json"     "any('bool' in e['message'] and 'string' in e['message'] for e in r[0]['errors'])"
check bad_arity      1 "$tmp/bad_arity.json"      "len(r[0]['errors'])>0"
check unknown_table  1 "$tmp/unknown_table.json"  "len(r[0]['errors'])>0"
check valid          0 "$tmp/valid.json"          "r==[{'name':'valid','errors':[],'warnings':[]}]"
check extra_columns  0 "$tmp/extra_columns.json"  "r[0]['errors']==[]"
check mixed          1 "$tmp/mixed.json"          "[x['name'] for x in r]==['valid','unknown_column'] and r[0]['errors']==[] and r[1]['errors']"
echo '[]' >"$tmp/empty.json"
check empty_input    0 "$tmp/empty.json"          "r==[]"
echo 'not json' >"$tmp/bad.json"
check bad_stdin      2 "$tmp/bad.json"            ""
rc=0; node "$here/check.js" </dev/null >/dev/null 2>&1 || rc=$?
if [[ "$rc" == 2 ]]; then echo "ok   no_args_usage"; else echo "FAIL no_args_usage: exit $rc, expected 2"; fail=1; fi

if [[ "$fail" != 0 ]]; then echo "kusto oracle self-test FAILED"; exit 1; fi
echo "kusto oracle self-test passed"
