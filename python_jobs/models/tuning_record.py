"""The last tuning's outcome, kept on S3 so a daily run reuses it instead of searching the grid again.

`s3://<lake>/models/tuning.json`: the chosen parameters, the grid searched, the ALS engine it was searched on,
the data's size when it was searched, the run that searched it. ENCORE_TUNE chooses: `auto` (the default)
searches when there is no record, the grid or the engine changed (the engines regularise differently), or
interactions, users or listings moved by more than `MOVED` since the record;
`always` searches every run; `never` reuses a record when there is one and uses the defaults otherwise.
"""

from __future__ import annotations

import json

from python_jobs.config import Settings

KEY = "models/tuning.json"
MOVED = 0.2


def load(settings: Settings) -> dict | None:
    from python_jobs.infra.s3 import read_json

    return read_json(settings, settings.lake_bucket, KEY)


def save(settings: Settings, record: dict) -> None:
    from python_jobs.infra.s3 import s3_client

    s3_client(settings).put_object(Bucket=settings.lake_bucket, Key=KEY, Body=json.dumps(record, indent=1).encode(),
                                   ContentType="application/json")


def decide(mode: str, record: dict | None, grid: dict | None, size: dict[str, int],
           engine: str = "local") -> tuple[bool, str]:
    """(search the grid?, why) for this run."""
    if not grid:
        return False, "no tuning grid (ENCORE_TUNING_GRID is empty): default parameters"
    if mode == "always":
        return True, "ENCORE_TUNE=always"
    if record is None:
        return mode != "never", "no earlier tuning" + (": default parameters (ENCORE_TUNE=never)" if mode == "never" else "")
    if mode == "never":
        return False, f"reused from run {record['run_id']} (ENCORE_TUNE=never)"
    if record.get("grid") != grid:
        return True, "the tuning grid changed"
    if record.get("engine", "spark") != engine:
        return True, f"the ALS engine changed to {engine}"
    moved = {name: abs(size[name] - old) / max(old, 1) for name, old in record["size"].items() if name in size}
    worst = max(moved, key=moved.get, default=None)
    if worst is not None and moved[worst] > MOVED:
        return True, f"{worst} moved by {moved[worst]:.0%} since run {record['run_id']}"
    shift = f"{moved[worst]:.0%}" if worst else "0%"
    return False, f"reused from run {record['run_id']} (data moved at most {shift})"
