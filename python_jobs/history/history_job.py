"""After every run, published, refused or failed: its summary recorded as history rows, the `run_history` marts
rebuilt with their tests (the quality gate's among them), and the morning report rewritten.

`encore-recs run` calls it when its stages end; the DAG's last task (`history`, whatever the stages' outcome)
runs `encore-recs history --run-id ID`. A failure here is a warning: the run's own outcome stands.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from python_jobs.config import Settings
from python_jobs.errors import UserError
from python_jobs.stack import metastore_locks


def build_marts(settings: Settings, target: str) -> int:
    """Register the raw history tables and dbt build the history marts and their tests; the number of nodes."""
    from python_jobs.infra.dbt_runner import run_dbt

    if target == settings.dbt_spark_target and target == "spark":
        from python_jobs.stack.spark import get_spark

        get_spark(settings)  # dbt's session method takes this process's session: ours, with the shared catalog
    # the gate's setting as the env var its test reads, not --vars: dbt parses the whole project again (about 2 s
    # a call) whenever the vars differ from its last parse's, and the marts stage passes none
    gate = {"ENCORE_MAX_QUALITY_DROP": str(settings.max_quality_drop)}
    run_dbt(settings, ["run-operation", "register_history", "--args",
                       json.dumps({"lake_bucket": settings.lake_bucket}), "--target", target], quiet=True, env=gate)
    return len(run_dbt(settings, ["build", "--target", target, "--select", "path:models/history",
                                  "path:tests/dbt/history"], quiet=True, env=gate))


def after_run(settings: Settings, run_id: str | None, log: Callable[[str], None] = print,
              target: str | None = None, build: bool = True) -> dict:
    """Record `run_id` (None: record nothing new), rebuild the marts (unless not `build`), rewrite the report;
    what was done. Runs after publish has moved `latest`, so the app never waits for it; its time is its own
    line, and the run's state keeps it (`history`: seconds, dbt nodes, warnings) beside the stages'."""
    from python_jobs.history import morning_report, run_history
    from python_jobs.runs.run_state import RunState

    done: dict = {"warnings": 0}
    prefix = f"[{run_id}] " if run_id else ""
    began = time.time()
    log(f"{prefix}history: record the run, rebuild the run_history marts, rewrite the morning report ...")

    def warn(what: str, exc: Exception) -> None:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        done["warnings"] += 1
        log(f"{prefix}warning: {what} ({first}); `encore-recs history{f' --run-id {run_id}' if run_id else ''}` "
            "does it again")

    try:
        if run_id is not None:
            done["history_rows"] = run_history.record(settings, RunState.load(settings, run_id, create=False).data)
        done["recorded_late"] = run_history.record_missing(settings)
    except Exception as exc:  # noqa: BLE001 - the store may be what failed the run; the next run records it
        warn("the run's history was not recorded", exc)
        return done
    try:
        if build:
            with metastore_locks.kept(settings, log):
                done["history_nodes"] = build_marts(settings, target or settings.dbt_spark_target)
    except UserError as exc:
        warn("the run_history marts were not rebuilt, or their tests failed", exc)
    except Exception as exc:  # noqa: BLE001 - Spark or the catalog gone with the run
        warn("the run_history marts were not rebuilt", exc)
    try:
        done["report_index"] = str(morning_report.write(settings))
    except Exception as exc:  # noqa: BLE001
        warn("the morning report was not rewritten", exc)
    seconds = time.time() - began
    marts = "rebuilt" if "history_nodes" in done else "not rebuilt" if build else "left for the next run"
    log(f"{prefix}history done in {seconds:.1f}s: recorded, run_history marts {marts}, morning report "
        f"{done.get('report_index', 'not rewritten')}")
    if run_id is not None:
        try:
            state = RunState.load(settings, run_id, create=False)
            state.data["history"] = {"seconds": round(seconds, 1), "dbt_nodes": done.get("history_nodes"),
                                     "warnings": done["warnings"]}
            state.save()
        except Exception as exc:  # noqa: BLE001 - the store again: the history itself is done
            warn("the history step's time was not kept in the run's state", exc)
    return done
