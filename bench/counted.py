"""Runs a server module with a count of the `message.created` frames it serializes.

    python -m bench.counted MODULE [ARGS...]     # e.g. im_api.cli serve --port 8000

The design says a message frame is serialized once per message per process, however many
sockets get it. Counting is the check that does not depend on reading the hub's code:
every JSON serialization in Python's `json` module goes through `json.JSONEncoder.encode`
(`json.dumps` with or without options, Starlette's `send_json`), so that method is wrapped
here, before the server's modules are imported, to count the objects it encodes whose
`type` is `message.created`. A thread writes the count to `$BENCH_COUNTER_FILE` (JSON,
replaced atomically) every 0.1 s; the bench reads it before and after each round.

Only the bench starts servers this way; both servers of a fan-out run are, so both pay the
wrapper's few hundred nanoseconds per serialization.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import threading
import time

COUNTS = {"message.created": 0, "encodes": 0}
_encode = json.JSONEncoder.encode


def _counting_encode(self, o):
    COUNTS["encodes"] += 1
    if type(o) is dict and o.get("type") == "message.created":
        COUNTS["message.created"] += 1
    return _encode(self, o)


def _write_counts(path: str) -> None:
    while True:
        temporary = f"{path}.tmp"
        with open(temporary, "w") as out:
            json.dump(COUNTS, out)  # json.dump goes through iterencode: not counted
        os.replace(temporary, path)
        time.sleep(0.1)


def main() -> None:
    json.JSONEncoder.encode = _counting_encode
    path = os.environ.get("BENCH_COUNTER_FILE")
    if path:
        threading.Thread(target=_write_counts, args=(path,), daemon=True).start()
    module, sys.argv = sys.argv[1], sys.argv[1:]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
