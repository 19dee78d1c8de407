#!/usr/bin/env bash
# Self-test for the Panther oracle: checks that the installed panther_analysis_tool behaves
# as recorded in FINDINGS.md (exit codes, Mocks semantics, accepted YAML keys).
# Usage (from anywhere): bash tests/oracles/panther/selftest.sh
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PAT="${PAT:-panther_analysis_tool}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
# Run from an empty directory: PAT reads ./.panther_settings.yml and ./global_helpers from the CWD.
cd "$tmp"
export PYTHONDONTWRITEBYTECODE=1
unset PANTHER_API_TOKEN PANTHER_API_HOST
fail=0
run() { # run NAME FIXTURE EXPECTED_RC STDOUT_REGEX STDERR_REGEX
  local name="$1" dir="$here/fixtures/$2" want="$3" out_re="$4" err_re="$5" rc=0
  "$PAT" --skip-version-check test --path "$dir" >"$tmp/out" 2>"$tmp/err" || rc=$?
  sed -i 's/\x1b\[[0-9;]*m//g' "$tmp/out" "$tmp/err"
  if [[ "$rc" != "$want" ]]; then echo "FAIL $name: exit $rc, expected $want"; cat "$tmp/out" "$tmp/err"; fail=1; return; fi
  if [[ -n "$out_re" ]] && ! grep -Eq "$out_re" "$tmp/out"; then echo "FAIL $name: stdout lacks /$out_re/"; cat "$tmp/out"; fail=1; return; fi
  if [[ -n "$err_re" ]] && ! grep -Eq "$err_re" "$tmp/err"; then echo "FAIL $name: stderr lacks /$err_re/"; cat "$tmp/err"; fail=1; return; fi
  echo "ok   $name"
}
"$PAT" --version | grep -qx "1.11.1" || echo "note: panther_analysis_tool $("$PAT" --version) (FINDINGS.md was written for 1.11.1)"
run all_pass pass    0 $'^\tPassed: 1$' ""
run mock_fail fail   1 $'^\t\\[FAIL\\] allow-listed via mocked constant$' ""
run bad_key  invalid 1 "" "'Runbok' not in list of valid keys"
if [[ "$fail" != 0 ]]; then echo "panther oracle self-test FAILED"; exit 1; fi
echo "panther oracle self-test passed"
