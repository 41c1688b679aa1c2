"""The last tuning's outcome, kept on S3 so a daily run reuses it instead of searching the grid again.

`s3://<lake>/models/tuning.json`: the chosen parameters, the grid searched, the ALS engine it was searched on,
the data's size when it was searched, the run that searched it. ENCORE_TUNE chooses: `auto` (the default)
searches when there is no record, the grid or the engine changed (the engines regularise differently), or
interactions, users or listings moved by more than `MOVED` since the record;
`always` searches every run; `never` reuses a record when there is one and uses the defaults otherwise.

The hybrid's weights per segment, chosen on the same validation part, are kept the same way at
`s3://<lake>/models/blend.json` with the models and parameters they were chosen for, the data's size and the
cutoff of the replay that chose them (`reuse_blend`): a run whose grid is not searched reuses them, and skips
fitting every model on the validation part, unless the models or their parameters changed, the data moved by
more than `MOVED` (`auto`), or ENCORE_TUNE=always; the replay itself refuses weights chosen on bids after its own
cutoff (`evaluate.evaluate_models`).
"""

from __future__ import annotations

import json

from python_jobs.config import Settings

KEY = "models/tuning.json"
BLEND_KEY = "models/blend.json"
MOVED = 0.2


def load(settings: Settings, key: str = KEY) -> dict | None:
    from python_jobs.infra.s3 import read_json

    return read_json(settings, settings.lake_bucket, key)


def save(settings: Settings, record: dict, key: str = KEY) -> None:
    from python_jobs.infra.s3 import s3_client

    s3_client(settings).put_object(Bucket=settings.lake_bucket, Key=key, Body=json.dumps(record, indent=1).encode(),
                                   ContentType="application/json")


def _moved(recorded: dict[str, int], size: dict[str, int]) -> tuple[str | None, float]:
    """(the measure that moved most since `recorded`, by what share)."""
    moved = {name: abs(size[name] - old) / max(old, 1) for name, old in recorded.items() if name in size}
    worst = max(moved, key=moved.get, default=None)
    return worst, (moved[worst] if worst is not None else 0.0)


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
    worst, share = _moved(record["size"], size)
    if share > MOVED:
        return True, f"{worst} moved by {share:.0%} since run {record['run_id']}"
    return False, f"reused from run {record['run_id']} (data moved at most {share:.0%})"


def reuse_blend(mode: str, record: dict | None, setup: dict, size: dict[str, int]) -> tuple[dict | None, str]:
    """(the recorded blend to reuse, or None to choose the weights on validation; why) for this run. setup: the
    models and their parameters (after tuning) the weights are for."""
    if mode == "always":
        return None, "ENCORE_TUNE=always"
    if record is None:
        return None, "no earlier blend"
    if record["setup"] != setup:
        return None, "the models or their parameters changed"
    worst, share = _moved(record["size"], size)
    if mode != "never" and share > MOVED:
        return None, f"{worst} moved by {share:.0%} since run {record['run_id']}"
    return record, f"reused from run {record['run_id']} (data moved at most {share:.0%})"


def keeps_blend(stored: dict | None, blend: dict, gate_outcome: str) -> bool:
    """Whether this run's blend replaces the stored one: chosen on validation by this run, passed by the quality
    gate (a refused run's weights are not the next run's), and chosen on data up to a cutoff no earlier than the
    stored one's (a backfill keeps the newer choice)."""
    return (blend["chosen"] == "on validation" and gate_outcome != "regression"
            and (stored is None or stored["cutoff"] <= blend["cutoff"]))
