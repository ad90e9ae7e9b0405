"""Writes the step log the C++ writer wrote for the same vectors (tests/python/steplog_compat_test.cc):
python3 write_vectors.py VECTORS.json OUT.zst. Bytes values arrive as {"__bytes_base64__": ...}."""
import base64
import json
import sys

from lockstep.steplog import StepLogWriter


def decode(value):
    if isinstance(value, dict):
        if set(value) == {"__bytes_base64__"}:
            return base64.b64decode(value["__bytes_base64__"])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


vectors = json.load(open(sys.argv[1], encoding="utf-8"))
log = StepLogWriter(sys.argv[2], decode(vectors["header"]), records_per_frame=vectors["records_per_frame"])
for entry in vectors["entries"]:
    if entry["op"] == "step":
        log.append(decode(entry["record"]))
    elif entry["op"] == "event":
        log.append_event(entry["kind"], decode(entry["record"]))
    else:
        log.flush(sync=True)
log.close()
