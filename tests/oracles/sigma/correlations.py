"""Read Sigma correlation rules with pySigma and print what each says, as JSON.

Input: file paths as arguments. Output: {file name: {type, rules, group_by, seconds, op,
count, field}} on stdout (one entry per correlation rule; the rules it names resolved). Exit
code 2 when pySigma is not installed.
"""

import json
import os
import sys

try:
    from sigma.collection import SigmaCollection
    from sigma.correlations import SigmaCorrelationRule
except ImportError as e:  # the caller reports the missing tool
    print(f"pySigma is not installed: {e}", file=sys.stderr)
    sys.exit(2)

out = {}
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        collection = SigmaCollection.from_yaml(f.read())
    collection.resolve_rule_references()
    for rule in collection:
        if isinstance(rule, SigmaCorrelationRule):
            cond = rule.condition
            out[os.path.basename(path)] = {
                "type": rule.type.name.lower(),
                "rules": [r.rule.name for r in rule.rules],
                "group_by": list(rule.group_by or []),
                "seconds": rule.timespan.seconds,
                "op": cond.op.name.lower() if cond else None,
                "count": cond.count if cond else None,
                "field": cond.fieldref if cond else None,
            }
json.dump(out, sys.stdout, sort_keys=True)
