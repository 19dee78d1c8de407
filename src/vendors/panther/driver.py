# rulecast's Panther runner: one process evaluates every generated rule module on every event.
# stdin: one JSON object per line: {"id": N, "module": "<file stem>", "event": {...},
#        "allowlists": {"NAME": [entries]}}
# argv[1]: the folder holding the generated .py modules; argv[2]: the seconds one event may take
#          (loading its module included) before it is stopped and reported as an error.
#        (a correlation's signal rule also names its alert-context key: "key": "<name>")
# stdout: one JSON object per line: {"id": N, "matched": bool} (with "key": value when the job
#         names one and the rule matched) or {"id": N, "error": "..."}
#        (a new-terms rule's job gives "events": [...] instead, oldest first: the rule runs on
#        each in turn against one cache, and the verdict is that of the last; "mocks": {"name":
#        value} makes the module's function `name` answer `value`, as panther_analysis_tool's
#        Mocks do)
# Events are wrapped in Panther's own PantherEvent (case-insensitive keys, immutable
# containers) when panther_core is installed, as panther_analysis_tool does.
# Panther's cache (panther_detection_helpers.caching, DynamoDB on a Panther backend) is stood in
# for by an in-memory store whose clock is the time of the event being decided.
import importlib.util
import json
import signal
import sys
import time
import traceback
import types
from datetime import datetime

try:
    from panther_core.enriched_event import PantherEvent
except ImportError:  # plain dicts: keys compare case-sensitively
    PantherEvent = None


class Event(dict):
    # without panther_core: a plain dict with PantherEvent's deep_get, which generated rules call
    def deep_get(self, *keys, default=None):
        value = self
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
            if value is None:
                return default
        return value


class Cache:
    # the string sets of panther_detection_helpers.caching, in memory; `now` is the decided
    # event's time (Panther's own cache expires keys by its clock as the rule runs)
    def __init__(self):
        self.items = {}
        self.now = time.time()

    def get_string_set(self, key, force_ttl_check=False):
        values, expires = self.items.get(key, (set(), None))
        if force_ttl_check and expires is not None and expires <= self.now:
            return set()
        return set(values)

    def put_string_set(self, key, val, epoch_seconds=None):
        if epoch_seconds is None:
            epoch_seconds = self.now + 90 * 86400
        elif epoch_seconds < 1000000000:
            epoch_seconds = self.now + epoch_seconds
        if val:
            self.items[key] = (set(val), int(epoch_seconds))
        else:
            self.items.pop(key, None)


cache = Cache()
caching = types.ModuleType("panther_detection_helpers.caching")
caching.get_string_set = cache.get_string_set
caching.put_string_set = cache.put_string_set
helpers = types.ModuleType("panther_detection_helpers")
helpers.caching = caching
sys.modules["panther_detection_helpers"] = helpers
sys.modules["panther_detection_helpers.caching"] = caching


def epoch(raw):
    try:
        return datetime.fromisoformat(raw.get("eventTime").replace("Z", "+00:00")).timestamp()
    except (AttributeError, TypeError, ValueError):
        return time.time()


folder = sys.argv[1]
limit = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
# started with -I (isolated): the script's folder is not on sys.path; the rules' folder is, as
# before, so that a module importing another generated one still finds it
sys.path.insert(0, folder)
# the global helper module the generated rules import (global_helpers/rulecast_helpers.py)
sys.path.insert(0, folder + "/global_helpers")
modules = {}


class Runaway(BaseException):
    # a BaseException, so that a rule's `except Exception` does not swallow it
    pass


def stop(signum, frame):
    raise Runaway()


signal.signal(signal.SIGALRM, stop)


def load(name):
    if name not in modules:
        spec = importlib.util.spec_from_file_location("rulecast_" + name, f"{folder}/{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        modules[name] = module
    return modules[name]


print(json.dumps({"panther_event": PantherEvent is not None}), flush=True)
for line in sys.stdin:
    job = json.loads(line)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        module = load(job["module"])
        saved = {}
        for name, entries in job.get("allowlists", {}).items():
            saved[name] = getattr(module, name)
            setattr(module, name, entries)
        for name, value in job.get("mocks", {}).items():
            saved[name] = getattr(module, name)
            setattr(module, name, lambda *args, answer=value, **kwargs: answer)
        try:
            if "events" in job:
                # a new-terms rule: each event in turn against one fresh cache, the last decides
                cache.items = {}
                matched = False
                for raw in job["events"]:
                    cache.now = epoch(raw)
                    matched = bool(module.rule(PantherEvent(raw, None) if PantherEvent else Event(raw)))
                result = {"id": job["id"], "matched": matched}
                print(json.dumps(result), flush=True)
                continue
            event = PantherEvent(job["event"], None) if PantherEvent else Event(job["event"])
            result = {"id": job["id"], "matched": bool(module.rule(event))}
            # a correlation's signal rule: the key its alert context gives the correlation rule
            if result["matched"] and "key" in job:
                result["key"] = module.alert_context(event).get(job["key"])
        finally:
            for name, value in saved.items():
                setattr(module, name, value)
    except Runaway:
        modules.pop(job["module"], None)
        result = {"id": job["id"], "timeout": limit}
    except Exception as exc:  # reported per event, never fatal
        result = {"id": job["id"], "error": "".join(traceback.format_exception_only(type(exc), exc)).strip()}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    print(json.dumps(result), flush=True)
