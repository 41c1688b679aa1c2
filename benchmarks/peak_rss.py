"""Peak resident memory (MB) per kind of process of the local stack, sampled every second until SIGTERM.

Prints one JSON object when stopped. Used by benchmarks/bench.py. The PostgreSQL figure is the
postmaster's only (its backends rename themselves and are not matched); executors are summed.
"""

import json
import re
import signal
import subprocess
import sys
import time

KINDS = [
    ("versitygw (S3)", r"versitygw"),
    ("postgres (postmaster)", r"pginstall/bin/postgres"),
    ("spark master", r"deploy\.master\.Master"),
    ("spark worker", r"deploy\.worker\.Worker"),
    ("thrift server driver", r"HiveThriftServer2"),
    ("executors", r"CoarseGrainedExecutorBackend"),
    ("stage driver JVM", r"SparkSubmit.*(stage_job|pyspark-shell)"),
    ("stage python", r"(stage_job\.py|encore-recs|python_jobs\.cli)"),
]
peak: dict[str, int] = {}


def report(*_) -> None:
    print(json.dumps({kind: round(kb / 1024) for kind, kb in peak.items()}), flush=True)
    sys.exit(0)


def sample() -> dict[str, int]:
    out = subprocess.run(["ps", "-eo", "rss=,args="], capture_output=True, text=True).stdout
    now: dict[str, int] = {}
    for line in out.splitlines():
        rss, _, args = line.strip().partition(" ")
        kind = next((k for k, pattern in KINDS if re.search(pattern, args)), None)
        if kind is not None:
            now[kind] = now.get(kind, 0) + int(rss)
    return now


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, report)
    while True:
        for kind, kb in sample().items():
            peak[kind] = max(peak.get(kind, 0), kb)
        time.sleep(1)
