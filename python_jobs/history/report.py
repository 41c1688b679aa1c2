"""The per-run HTML report: metric table, nDCG@k against k per model (a chart, python_jobs/history/charts.py),
tuning results."""

from __future__ import annotations

import html
from pathlib import Path

from python_jobs.history.charts import line_chart


def _table(rows: list[dict], empty: str = "<p>Nothing to show.</p>") -> str:
    if not rows:
        return empty
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{r[c]:.4f}</td>" if isinstance(r[c], float) else f"<td>{'n/a' if r[c] is None else r[c]}</td>"
                         for c in cols) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def write_report(path: Path, run_id: str, evaluation: dict) -> Path:
    k = evaluation["k"]
    metric_rows = [{"model": m, **{f"{n}@{k}" if n != "coverage" and n != "users" else n: v for n, v in s.items()}}
                   for m, s in evaluation["metrics"].items()]
    chosen = ", ".join(f"{key}={value}" for key, value in evaluation["params"].items())
    segment_rows = [{"model": m, "segment": seg, **{f"{n}@{k}" if n in ("precision", "recall", "ndcg", "map") else n: v
                                                     for n, v in s.items()}}
                    for m, by in evaluation.get("segments", {}).items() for seg, s in by.items()]
    blend = evaluation.get("blend", {})
    weight_rows = [{"segment": seg, **ws, "validation nDCG": blend.get("validation_ndcg", {}).get(seg, 0.0)}
                   for seg, ws in blend.get("weights", {}).items()]
    cost_rows = [{"model": m, "fit s": t["fit"], "lists s": t["score"]} for m, t in evaluation.get("seconds", {}).items()]
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Encore recommendations — run {html.escape(run_id)}</title>
<style>body{{font-family:sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}th{{background:#f4f4f4}}</style></head><body>
<p><a href="../../reports/index.html">All runs: the morning report</a></p>
<h1>Run {html.escape(run_id)}</h1>
<h2>Offline evaluation (k = {k})</h2>{_table(metric_rows)}
<p>Users with training history; novelty is the mean self-information of listed items (bits), diversity the share of
distinct sub-categories in a list, long_tail the share of listed items outside the head of the catalogue.</p>
<h2>By user segment (new: no bids before the cutoff; light: fewer than the heavy threshold; heavy)</h2>{_table(segment_rows)}
<h2>The blend: weights per segment chosen on the validation split</h2>
<p>This run: {html.escape(blend.get("chosen", "on validation"))}.</p>{_table(weight_rows)}
<h2>nDCG@k by model</h2>{line_chart(evaluation.get("ndcg_at", {}), "ndcg-at-k", "k", "nDCG@k")}
<h2>Cost of each model (training part, test users)</h2>{_table(cost_rows)}
<h2>ALS tuning (validation split of the training part)</h2>
<p>This run: {html.escape(evaluation.get("tuning_source", "searched the grid"))}.</p>{_table(evaluation.get("tuning", []), "<p>No tuning grid was searched.</p>")}
<p>Chosen parameters: {html.escape(chosen)}</p></body></html>"""
    path.write_text(page)
    return path
