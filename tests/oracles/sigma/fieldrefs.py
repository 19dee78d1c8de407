"""Read Sigma rules with pySigma and print each field reference it finds, as JSON.

Input: file paths as arguments. Output: {file name: [[field, referenced field, starts_with,
ends_with], ...]} on stdout, or {file name: "error: ..."} where pySigma rejects the rule. Exit
code 2 when pySigma is not installed.
"""

import json
import os
import sys

try:
    from sigma.collection import SigmaCollection
    from sigma.rule import SigmaDetectionItem
    from sigma.types import SigmaFieldReference
except ImportError as e:  # the caller reports the missing tool
    print(f"pySigma is not installed: {e}", file=sys.stderr)
    sys.exit(2)


def items(detection):
    """Every detection item below a detection (detections nest)."""
    for d in detection.detection_items:
        if isinstance(d, SigmaDetectionItem):
            yield d
        else:
            yield from items(d)


out = {}
for path in sys.argv[1:]:
    name = os.path.basename(path)
    try:
        with open(path, encoding="utf-8") as f:
            collection = SigmaCollection.from_yaml(f.read(), collect_errors=False)
        refs = []
        for rule in collection:
            for detection in rule.detection.detections.values():
                for item in items(detection):
                    for v in item.value:
                        if isinstance(v, SigmaFieldReference):
                            refs.append([item.field, v.field, v.starts_with, v.ends_with])
        out[name] = refs
    except Exception as e:  # pySigma's own errors: the rule is not one it reads
        out[name] = f"error: {e}"
print(json.dumps(out, sort_keys=True))
