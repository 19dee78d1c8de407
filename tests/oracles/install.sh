#!/usr/bin/env bash
# Install what rulecast's outside oracles need. Idempotent; run from the repo root:
#   bash tests/oracles/install.sh
# - Panther: panther_analysis_tool (pinned in tests/oracles/panther/requirements.txt) into
#   the Python selected by $PYTHON (default: python3; needs Python >= 3.11).
# - Kusto:   @kusto/language-service-next (pinned by package-lock.json) via `npm ci`
#   into tests/oracles/kusto/node_modules.
set -euo pipefail

if [[ ! -f tests/oracles/panther/requirements.txt || ! -f tests/oracles/kusto/package-lock.json ]]; then
  echo "install.sh: run from the rulecast repo root (tests/oracles/... not found)" >&2
  exit 2
fi

PYTHON="${PYTHON:-python3}"
NPM="${NPM:-npm}"

echo "oracles: pip install -r tests/oracles/panther/requirements.txt" >&2
PIP_ROOT_USER_ACTION=ignore "$PYTHON" -m pip install --quiet --disable-pip-version-check \
  -r tests/oracles/panther/requirements.txt
echo "oracles: pip install -r tests/oracles/duckdb_kql/requirements.txt" >&2
PIP_ROOT_USER_ACTION=ignore "$PYTHON" -m pip install --quiet --disable-pip-version-check \
  -r tests/oracles/duckdb_kql/requirements.txt

# pySigma pins packaging and typing-extensions above what panther_analysis_tool accepts: it gets a
# virtual environment of its own
echo "oracles: pip install -r tests/oracles/sigma/requirements.txt into tests/oracles/sigma/.venv" >&2
if [[ ! -x tests/oracles/sigma/.venv/bin/python ]]; then
  "$PYTHON" -m venv tests/oracles/sigma/.venv
fi
PIP_ROOT_USER_ACTION=ignore tests/oracles/sigma/.venv/bin/python -m pip install --quiet --disable-pip-version-check \
  -r tests/oracles/sigma/requirements.txt
echo "oracles: pip install -r tests/oracles/eql/requirements.txt" >&2
PIP_ROOT_USER_ACTION=ignore "$PYTHON" -m pip install --quiet --disable-pip-version-check \
  -r tests/oracles/eql/requirements.txt

# npm ci always wipes node_modules; skip it when the locked version is already installed.
locked="$(node -e 'console.log(require("./tests/oracles/kusto/package-lock.json").packages["node_modules/@kusto/language-service-next"].version)')"
installed="$(node -e 'try{console.log(require("./tests/oracles/kusto/node_modules/@kusto/language-service-next/package.json").version)}catch(e){console.log("")}')"
if [[ "$installed" == "$locked" ]]; then
  echo "oracles: @kusto/language-service-next $locked already installed" >&2
else
  echo "oracles: npm ci in tests/oracles/kusto (@kusto/language-service-next $locked)" >&2
  (cd tests/oracles/kusto && "$NPM" ci --silent --no-audit --no-fund)
fi

# The coverage page's browser test (tests/coverage_browser.rs): Debian's chromium. Installing it
# needs root; without root, say so and go on (the test skips outside CI, fails in CI).
if ! command -v chromium >/dev/null 2>&1; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "oracles: apt-get install -y chromium" >&2
    { apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; }; } \
      || echo "install.sh: chromium could not be installed; tests/coverage_browser.rs needs it in CI" >&2
  else
    echo "install.sh: chromium is missing and this is not root: apt-get install -y chromium (tests/coverage_browser.rs)" >&2
  fi
fi

# Smoke check both oracles.
pat_version="$("$PYTHON" -m panther_analysis_tool.main --version 2>/dev/null)" \
  || { echo "install.sh: panther_analysis_tool not importable by $PYTHON" >&2; exit 1; }
schema="$(mktemp)"; trap 'rm -f "$schema"' EXIT
printf 'column\ttype\nEventName\tstring\n' >"$schema"
echo '[{"name":"smoke","query":"AWSCloudTrail | where EventName == \"x\""}]' \
  | node tests/oracles/kusto/check.js "$schema" >/dev/null \
  || { echo "install.sh: kusto checker smoke test failed" >&2; exit 1; }
echo "oracles: ready (panther_analysis_tool $pat_version, @kusto/language-service-next $locked)" >&2
