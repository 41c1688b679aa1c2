"""The morning report: the last 30 runs side by side, from the run history (python_jobs/history/run_history.py).

Status and the quality gate's figures, duration per stage (a stacked bar), rejects by reason, checkpoint outcomes
with each run's Data Docs, the nDCG trend per model, list-source shares and coverage. Written to
`<state>/reports/index.html` (links relative to the state folder) and to `s3://<publish>/reports/index.html`
(links presigned), which each manifest links to; every run's own report links back.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from python_jobs.config import Settings
from python_jobs.history.charts import Segment, line_chart, stacked_bars

LAST = 30
INDEX_KEY = "reports/index.html"
RUN_PAGES = {"report": "report.html", "data_docs": "data_docs/index.html"}  # under runs/<run_id>/, here and in the lake
STAGE_COLOURS = {"stage": "#4e79a7", "extract": "#a0cbe8", "events": "#f28e2b", "marts": "#ffbe7d",
                 "validate-inputs": "#59a14f", "train": "#e15759", "validate-outputs": "#8cd17d", "publish": "#b07aa1"}
STATUS_COLOURS = {"published": "#2e7d32", "refused": "#ef6c00", "failed": "#c62828", "incomplete": "#757575"}


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _stacked_bars(runs: list[dict], stages: dict[str, list[dict]]) -> str:
    """One bar per run (newest on top), a segment per stage as long as its seconds, a failed stage outlined."""
    bars = [(run["run_id"], [Segment(step["stage"], step["seconds"] or 0,
                                     f'{step["stage"]}: {step["seconds"]} s ({step["status"]})',
                                     {"data-run": run["run_id"], "data-stage": step["stage"]},
                                     flagged=step["status"] == "failed")
                             for step in stages.get(run["run_id"], [])]) for run in runs]
    return stacked_bars(bars, STAGE_COLOURS, "durations", "seconds", "s")


def _shares(list_sources: str | None) -> str:
    counts = json.loads(list_sources or "{}")
    total = sum(counts.values()) or 1
    return ", ".join(f"{_e(k)} {v / total:.0%}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


def _rate(value, low=None, high=None) -> str:
    if value is None:
        return ""
    return f"{value:.2%}" + (f" [{low:.2%}, {high:.2%}]" if low is not None and high is not None else "")


def _experiments(rows: list[dict]) -> str:
    """The newest measuring run's experiment marts: per variant the click-through with its interval, the difference
    from the control with its interval, and whether the users split as the shares say."""
    if not rows:
        return "<p id='experiments'>No experiment has impressions yet.</p>"
    newest = max(row["run_id"] for row in rows)
    body = []
    for row in sorted((r for r in rows if r["run_id"] == newest), key=lambda r: (r["experiment"], not r["is_control"])):
        verdict = "control" if row["is_control"] else (
            "significant" if row.get("ctr_significant") else "no significant difference")
        body.append(
            f'<tr><td>{_e(row["experiment"])}</td><td>{_e(row["variant"])}</td><td>{_e(row["serves"])}</td>'
            f'<td>{row.get("users") or 0}</td><td>{row.get("impressions") or 0}</td>'
            f'<td>{_rate(row.get("ctr"), row.get("ctr_low"), row.get("ctr_high"))}</td>'
            f'<td>{_rate(row.get("ctr_diff"), row.get("ctr_diff_low"), row.get("ctr_diff_high"))}</td>'
            f'<td>{verdict}</td><td>{_rate(row.get("btr"))}</td>'
            f'<td>{"MISMATCH" if row.get("sample_ratio_mismatch") else "ok"}</td></tr>')
    return (f"<p>As measured by run {_e(newest)} (dbt marts.exp_results; 95% intervals).</p>"
            "<table id='experiments'><tr><th>experiment</th><th>variant</th><th>serves</th><th>users</th>"
            "<th>impressions</th><th>click-through</th><th>difference from control</th><th>verdict</th>"
            "<th>bid-through</th><th>sample ratio</th></tr>" + "".join(body) + "</table>")


def render(history: dict[str, list[dict]], link: Callable[[str, str], str | None], served: dict | None = None) -> str:
    """The page; link(run_id, 'report' | 'data_docs') -> a URL or None; served: `latest.json`, the run the app is
    served (not always the newest: a backfill leaves it)."""
    runs = sorted(history["runs"], key=lambda r: r["run_id"], reverse=True)[:LAST]
    by_run = {kind: {} for kind in ("run_stages", "run_rejects", "run_checkpoints", "run_metrics")}
    for kind, grouped in by_run.items():
        for row in history.get(kind, []):
            grouped.setdefault(row["run_id"], []).append(row)
    stages = by_run["run_stages"]

    def anchor(run_id: str, kind: str, text: str) -> str:
        url = link(run_id, kind)
        return f'<a href="{_e(url)}">{_e(text)}</a>' if url else _e(text)

    rows = []
    for run in runs:
        checks = by_run["run_checkpoints"].get(run["run_id"], [])
        passed = sum(1 for c in checks if c["success"])
        rejected = sum(r["rejected_rows"] for r in by_run["run_rejects"].get(run["run_id"], []))
        gate = run.get("gate_outcome") or ""
        if run.get("champion_ndcg") is not None:
            gate += f" ({run['challenger_ndcg']:.4f} vs {run['champion_ndcg']:.4f}, drop {run['quality_drop']:.1%})"
        if run.get("accepted_by"):
            gate += f", accepted by {run['accepted_by']}"
        status = run["status"] + (f" in {run['failed_stage']}" if run.get("failed_stage") else "")
        ndcg = "" if run.get("hybrid_ndcg") is None else f"{run['hybrid_ndcg']:.4f}"
        coverage = "" if run.get("catalog_coverage") is None else f"{run['catalog_coverage']:.0%}"
        reason = run.get("refused") or run.get("error") or ""
        is_served = served is not None and served["run_id"] == run["run_id"]
        rows.append(
            f'<tr data-run="{_e(run["run_id"])}"><td>{anchor(run["run_id"], "report", run["run_id"])}'
            f'{" <b>(served)</b>" if is_served else ""}</td>'
            f'<td>{_e((run.get("as_of") or "")[:16])}{" (backfill)" if run.get("backfill") else ""}</td>'
            f'<td class="status" style="color:{STATUS_COLOURS.get(run["status"], "#333")}" title="{_e(reason)}">'
            f'{_e(status)}</td><td>{_e(gate)}</td>'
            f'<td>{ndcg}</td><td>{coverage}</td>'
            f'<td>{(run.get("total_seconds") or 0):.0f} s</td><td>{rejected}</td>'
            f'<td>{anchor(run["run_id"], "data_docs", f"{passed}/{len(checks)} passed") if checks else ""}</td>'
            f'<td>{_e(run.get("events_ingested"))} / {_e(run.get("events_quarantined"))}</td>'
            f'<td>{_shares(run.get("list_sources"))}</td></tr>')
    reject_rows = [
        f'<tr><td>{_e(run["run_id"])}</td><td>{_e(r["table_name"])}</td><td>{_e(r["reason"])}</td>'
        f'<td>{r["rejected_rows"]}</td></tr>'
        for run in runs[:10] for r in sorted(by_run["run_rejects"].get(run["run_id"], []),
                                             key=lambda r: -r["rejected_rows"]) if r["rejected_rows"]]
    failed_checks = [
        f'<tr><td>{_e(run["run_id"])}</td><td>{anchor(run["run_id"], "data_docs", c["checkpoint"])}</td>'
        f'<td>{c["failed_expectations"]} of {c["evaluated"]}</td></tr>'
        for run in runs for c in by_run["run_checkpoints"].get(run["run_id"], []) if not c["success"]]
    oldest_first = list(reversed(runs))
    curves: dict[str, dict[int, float]] = {}
    for i, run in enumerate(oldest_first, start=1):
        for m in by_run["run_metrics"].get(run["run_id"], []):
            if m["segment"] == "all" and m["metric"] == "ndcg":
                curves.setdefault(m["model"], {})[i] = m["value"]
    curves = {m: curves[m] for m in sorted(curves, key=lambda m: (m != "hybrid", m))}  # the hybrid's first
    experiments = _experiments(history.get("run_experiments", []))
    latest = runs[0] if runs else None
    headline = (f"Latest run {_e(latest['run_id'])}: <b>{_e(latest['status'])}</b>"
                + (f" in {_e(latest['failed_stage'])}" if latest.get("failed_stage") else "")
                + (f" ({_e(latest.get('refused') or latest.get('error'))})"
                   if latest.get("refused") or latest.get("error") else "") if latest else "No runs yet.")
    serving = (f"The app is served run <b>{_e(served['run_id'])}</b>, as of "
               f"{_e(served.get('as_of') or served['published_at'])}." if served else "The app is served no run yet.")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Encore recommendations — the morning report</title>
<style>body{{font-family:sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:13px}}th{{background:#f4f4f4}}</style>
</head><body>
<h1>The morning report</h1>
<p id="headline">{headline}</p>
<p id="served">{serving}</p>
<p>The last {len(runs)} runs, newest first; generated {datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}.
The gate compares today's hybrid with the published run's configuration on today's replay.</p>
<table id="runs"><tr><th>run</th><th>as of</th><th>status</th><th>quality gate</th><th>hybrid nDCG</th>
<th>coverage</th><th>duration</th><th>rejected rows</th><th>checkpoints</th><th>events in / quarantined</th>
<th>lists served by</th></tr>{"".join(rows)}</table>
<h2>Duration per stage</h2>{_stacked_bars(runs, stages)}
<h2>nDCG per model, run by run (oldest = 1)</h2>
{line_chart(curves, "ndcg-by-run", "run (oldest = 1)", "nDCG (users with history)") if curves else "<p>No metrics yet.</p>"}
<h2>Experiments</h2>{experiments}
<h2>Rejected rows by reason (last 10 runs)</h2>
{"<table id='rejects'><tr><th>run</th><th>table</th><th>reason</th><th>rows</th></tr>" + "".join(reject_rows)
 + "</table>" if reject_rows else "<p id='rejects'>No rows rejected.</p>"}
<h2>Checkpoints that failed</h2>
{"<table id='checkpoints'><tr><th>run</th><th>checkpoint</th><th>expectations failed</th></tr>" + "".join(failed_checks)
 + "</table>" if failed_checks else "<p id='checkpoints'>Every checkpoint passed.</p>"}
</body></html>"""


def write(settings: Settings) -> Path:
    """Both copies of the page; the local path."""
    from python_jobs.history import run_history
    from python_jobs.infra.s3 import s3_client
    from python_jobs.publish.publish import read_latest

    history, served = run_history.read_last(settings, LAST), read_latest(settings)
    local = settings.state_dir / "reports" / "index.html"
    local.parent.mkdir(parents=True, exist_ok=True)

    def relative(run_id: str, kind: str) -> str | None:
        exists = (settings.runs_dir / run_id / RUN_PAGES[kind]).exists()
        return f"../runs/{run_id}/{RUN_PAGES[kind]}" if exists else None

    local.write_text(render(history, relative, served))
    client = s3_client(settings)

    def presigned(run_id: str, kind: str) -> str | None:
        return client.generate_presigned_url("get_object", Params={"Bucket": settings.lake_bucket,
                                                                   "Key": f"runs/{run_id}/{RUN_PAGES[kind]}"},
                                              ExpiresIn=settings.url_expiry_seconds)

    client.put_object(Bucket=settings.publish_bucket, Key=INDEX_KEY, Body=render(history, presigned, served).encode(),
                      ContentType="text/html; charset=utf-8")
    return local
