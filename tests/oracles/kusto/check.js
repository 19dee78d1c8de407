#!/usr/bin/env node
// Kusto (KQL) oracle for the rulecast test suite.
//
// Usage: node tests/oracles/kusto/check.js SCHEMA_TSV < queries.json
//
//   SCHEMA_TSV   '#' comment lines, then a header line "column<TAB>type", then one
//                column per line (e.g. /work/shared/data/sentinel_AWSCloudTrail_columns.tsv).
//   stdin        JSON array of {"name": "...", "query": "..."}.
//   stdout       JSON array of {"name", "errors": [diag...], "warnings": [diag...]},
//                diag = {"message", "start", "length", "severity", "code"}.
//   exit code    0 = no query has an Error-severity diagnostic,
//                1 = at least one query has an error,
//                2 = usage / input error.
//
// Each query is parsed and semantically analyzed by Microsoft's Kusto.Language
// library (the Bridge.NET JavaScript build shipped in the npm package
// @kusto/language-service-next) against a database that contains the table
// AWSCloudTrail with the columns of SCHEMA_TSV plus the two extra string columns
// that Azure-Sentinel's own KQL validation adds (UserIdentityStoreArn,
// UserIdentityUserId).
"use strict";

const fs = require("fs");
const path = require("path");

const TABLE_NAME = "AWSCloudTrail";
const EXTRA_COLUMNS = [
  ["UserIdentityStoreArn", "string"],
  ["UserIdentityUserId", "string"],
];

function usage(msg) {
  if (msg) process.stderr.write(`check.js: ${msg}\n`);
  process.stderr.write("usage: node check.js SCHEMA_TSV < queries.json\n");
  process.exit(2);
}

function loadKusto() {
  // The package is a Bridge.NET translation of the .NET Kusto.Language library.
  // bridge.js installs the Bridge runtime as the global `Bridge`; then
  // Kusto.Language.Bridge.js registers the `Kusto` namespace on the global object.
  const pkgDir = path.dirname(require.resolve("@kusto/language-service-next/package.json"));
  require(path.join(pkgDir, "bridge.min.js"));
  require(path.join(pkgDir, "Kusto.Language.Bridge.min.js"));
  if (typeof global.Kusto === "undefined" || !global.Kusto.Language) {
    throw new Error("Kusto.Language did not load from @kusto/language-service-next");
  }
  return global.Kusto;
}

function parseSchema(file) {
  let text;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    usage(`cannot read schema ${file}: ${e.message}`);
  }
  const cols = [];
  let sawHeader = false;
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === "" || line.startsWith("#")) return;
    const parts = line.split("\t");
    if (parts.length !== 2) usage(`${file}:${i + 1}: expected "column<TAB>type"`);
    const [name, type] = parts.map((s) => s.trim());
    if (!sawHeader) {
      sawHeader = true;
      if (name === "column" && type === "type") return;
      usage(`${file}:${i + 1}: expected header "column<TAB>type"`);
    }
    cols.push([name, type]);
  });
  if (cols.length === 0) usage(`${file}: no columns`);
  return cols;
}

function buildGlobals(K, columns) {
  const S = K.Language.Symbols;
  const seen = new Set();
  const symbols = [];
  for (const [name, typeName] of columns.concat(EXTRA_COLUMNS)) {
    if (seen.has(name)) continue;
    seen.add(name);
    const type = S.ScalarTypes.GetSymbol(typeName);
    if (!type) usage(`unknown Kusto scalar type '${typeName}' for column ${name}`);
    symbols.push(new S.ColumnSymbol(name, type, null, null, null, null));
  }
  const table = new S.TableSymbol.$ctor4(TABLE_NAME, symbols);
  const db = new S.DatabaseSymbol.$ctor1("db", [table], false);
  return K.Language.GlobalState.Default.WithDatabase(db);
}

function toArray(list) {
  // System.Collections.Generic.IReadOnlyList<T> from Bridge: use its enumerator.
  const out = [];
  if (!list) return out;
  const count = System.Array.getCount(list, Kusto.Language.Diagnostic);
  for (let i = 0; i < count; i++) out.push(System.Array.getItem(list, i, Kusto.Language.Diagnostic));
  return out;
}

function diagToJson(d) {
  return {
    message: d.Message,
    start: d.Start,
    length: d.Length,
    severity: d.Severity,
    code: d.Code,
  };
}

function main() {
  const args = process.argv.slice(2);
  if (args.length !== 1 || args[0] === "-h" || args[0] === "--help") usage();
  const columns = parseSchema(args[0]);

  let input;
  try {
    input = JSON.parse(fs.readFileSync(0, "utf8"));
  } catch (e) {
    usage(`stdin is not valid JSON: ${e.message}`);
  }
  if (!Array.isArray(input)) usage("stdin must be a JSON array");
  input.forEach((q, i) => {
    if (!q || typeof q.query !== "string") usage(`item ${i}: missing string field "query"`);
  });

  const K = loadKusto();
  const globals = buildGlobals(K, columns);

  let anyError = false;
  const results = input.map((q, i) => {
    const code = K.Language.KustoCode.ParseAndAnalyze(q.query, globals);
    const diags = toArray(code.GetDiagnostics());
    const errors = [];
    const warnings = [];
    for (const d of diags) {
      if (d.Severity === "Error") errors.push(diagToJson(d));
      else warnings.push(diagToJson(d));
    }
    if (errors.length) anyError = true;
    return { name: q.name === undefined ? `#${i}` : q.name, errors, warnings };
  });

  process.stdout.write(JSON.stringify(results, null, 2) + "\n");
  process.exitCode = anyError ? 1 : 0;
}

main();
