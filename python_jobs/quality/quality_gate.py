"""The champion-challenger gate before publish.

The champion is the configuration behind `latest` (the last published run's model parameters, models and
blend weights per segment); the challenger is today's. Train scores both on today's replay, the same split and
users, so the figures compare; publish refuses a challenger whose hybrid nDCG@k is below the champion's by more
than ENCORE_MAX_QUALITY_DROP (relative), unless the run is told to accept it (`--accept-regression`, recorded
with who ran it). A first run, or a champion whose state is gone, has nothing to compare with and passes.
"""

from __future__ import annotations

import getpass
import os

from python_jobs.config import Settings
from python_jobs.errors import GateFailed


def champion_config(settings: Settings) -> dict | None:
    """{run_id, params, models, weights} of the published run; None when nothing is published or its recorded
    state no longer says how it was made."""
    from python_jobs.publish.publish import read_latest
    from python_jobs.runs.run_state import RunState

    latest = read_latest(settings)
    if latest is None:
        return None
    try:
        evaluation = RunState.load(settings, latest["run_id"], create=False).data.get("evaluation") or {}
    except Exception:  # noqa: BLE001 - a pruned or unreadable state: no champion to compare with
        return None
    weights = (evaluation.get("blend") or {}).get("weights")
    if not (weights and evaluation.get("params") and evaluation.get("models")):
        return None
    return {"run_id": latest["run_id"], "params": evaluation["params"], "models": evaluation["models"],
            "weights": weights}


def judge(evaluation, max_drop: float) -> dict:
    """The gate's record for the summary: both figures, the relative drop and the outcome (pass, regression,
    or no champion)."""
    challenger = evaluation.metrics["hybrid"]["ndcg"]
    record = {"metric": f"ndcg@{evaluation.k}", "challenger_ndcg": round(challenger, 5), "max_drop": max_drop}
    if evaluation.champion is None:
        return {**record, "outcome": "no champion"}
    champion = evaluation.champion["ndcg"]
    drop = (champion - challenger) / champion if champion > 0 else 0.0
    return {**record, "champion_run": evaluation.champion["run_id"], "champion_ndcg": round(champion, 5),
            "champion_refitted": evaluation.champion["refitted"], "drop": round(drop, 5),
            "outcome": "regression" if drop > max_drop else "pass"}


def operator() -> str:
    """Who accepted a regression: ENCORE_OPERATOR (the scheduler's or CI's name for a person), else the OS user."""
    if os.environ.get("ENCORE_OPERATOR"):
        return os.environ["ENCORE_OPERATOR"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def enforce(settings: Settings, run_id: str, summary: dict) -> None:
    """Before publish writes anything: refuse a regression beyond the limit (one line naming both figures), or
    record who accepted it."""
    gate = summary.get("quality_gate") or {}
    if gate.get("outcome") != "regression":
        return
    figures = (f"today's hybrid {gate['metric']} {gate['challenger_ndcg']:.4f} is {gate['drop']:.1%} below the "
               f"champion's {gate['champion_ndcg']:.4f} (run {gate['champion_run']}) on the same replay")
    if settings.accept_regression:
        gate.update(accepted_by=operator(), outcome="regression accepted")
        summary.pop("refused", None)  # refused before, published now
        return
    summary["published"] = False
    summary["refused"] = f"{figures}; the limit is {gate['max_drop']:.0%}"
    raise GateFailed(f"publish refused: {figures}, more than ENCORE_MAX_QUALITY_DROP={gate['max_drop']:g}; latest "
                     f"stays on {gate['champion_run']}. To publish it anyway: encore-recs run --run-id {run_id} "
                     "--from publish --accept-regression")
