"""Parse EQL queries with Elastic's `eql` library, as detection-rules does for EQL rules
(`elasticsearch_syntax`; functions it does not list are allowed, as detection-rules allows them).

Input: a JSON list of {"name", "query"} on stdin. Output: a JSON list of {"name", "error"}
(error null when the query parses) on stdout.
"""

import json
import sys

import eql
from eql.parser import elasticsearch_syntax, ignore_missing_functions

results = []
for item in json.load(sys.stdin):
    try:
        with elasticsearch_syntax, ignore_missing_functions:
            eql.parse_query(item["query"])
        results.append({"name": item["name"], "error": None})
    except eql.EqlError as e:  # every parse and semantic error of the library
        results.append({"name": item["name"], "error": str(e)})
json.dump(results, sys.stdout)
