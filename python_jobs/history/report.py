"""The per-run HTML report: metric table, nDCG@k against k per model (inline SVG), tuning results."""

from __future__ import annotations

import html
from pathlib import Path

COLOURS = {"als": "#1f77b4", "popularity": "#ff7f0e", "hybrid": "#2ca02c", "taste": "#d62728", "item_knn": "#9467bd",
           "user_knn": "#8c564b", "ease": "#e377c2", "content": "#17becf", "weighted_ratings": "#7f7f7f"}
# models often score alike (the hybrid is mostly ALS): each gets its own dash, marker and a small offset
DASHES = ("", "6,3", "2,3", "8,3,2,3")
MARKERS = ("circle", "square", "triangle", "diamond")
OFFSET_PX = 2.5


def _marker(shape: str, cx: float, cy: float, colour: str) -> str:
    r = 3.5
    if shape == "circle":
        return f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r}" fill="{colour}"/>'
    if shape == "square":
        return f'<rect x="{cx - r:.1f}" y="{cy - r:.1f}" width="{2 * r}" height="{2 * r}" fill="{colour}"/>'
    points = ((0, -r - 1), (r + 1, r), (-r - 1, r)) if shape == "triangle" else ((0, -r - 1), (r + 1, 0), (0, r + 1), (-r - 1, 0))
    return f'<polygon points="{" ".join(f"{cx + dx:.1f},{cy + dy:.1f}" for dx, dy in points)}" fill="{colour}"/>'


def _plot(curves: dict[str, dict], width: int = 620, height: int = 300, pad: int = 48, legend: int = 110,
          x_label: str = "k", y_label: str = "nDCG@k") -> str:
    """One line per model over integer x values (k here; a run's position in the morning report)."""
    ks = sorted({int(k) for curve in curves.values() for k in curve})
    top = max((v for curve in curves.values() for v in curve.values()), default=0) or 1.0
    if not ks:
        return ""

    def x(k: int) -> float:
        return pad + (ks.index(k) / max(1, len(ks) - 1)) * (width - legend - 2 * pad)

    def y(v: float) -> float:
        return height - pad - v / top * (height - 2 * pad)

    parts = [f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" font-size="11">',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - legend - pad}" y2="{height - pad}" stroke="#333"/>',
             f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#333"/>',
             f'<text x="{(width - legend) / 2}" y="{height - 8}" text-anchor="middle">{html.escape(x_label)}</text>',
             f'<text x="4" y="{pad - 16}">{html.escape(y_label)}</text>']
    for k in ks:
        parts.append(f'<text x="{x(k)}" y="{height - pad + 14}" text-anchor="middle">{k}</text>')
    for tick in range(5):
        value = top * tick / 4
        parts.append(f'<line x1="{pad - 4}" y1="{y(value):.1f}" x2="{pad}" y2="{y(value):.1f}" stroke="#333"/>'
                     f'<text x="{pad - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{value:.3f}</text>')
    for i, (model, curve) in enumerate(curves.items()):
        shift = (i - (len(curves) - 1) / 2) * OFFSET_PX
        xy = [(x(int(k)) + shift, y(v) + shift) for k, v in sorted(curve.items(), key=lambda kv: int(kv[0]))]
        colour, dash, shape = COLOURS.get(model, "#555"), DASHES[i % len(DASHES)], MARKERS[i % len(MARKERS)]
        points = " ".join(f"{px:.1f},{py:.1f}" for px, py in xy)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}" '
                     f'data-model="{html.escape(model)}" points="{points}"/>')
        parts += [_marker(shape, px, py, colour) for px, py in xy]
        legend_y = pad + 16 * i
        parts.append(_marker(shape, width - legend + 10, legend_y - 4, colour))
        parts.append(f'<text x="{width - legend + 20}" y="{legend_y}" fill="{colour}">{html.escape(model)}</text>')
    parts.append("</svg>")
    return "".join(parts)


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
<h2>The blend: weights per segment chosen on the validation split</h2>{_table(weight_rows)}
<h2>nDCG@k by model</h2>{_plot(evaluation.get("ndcg_at", {}))}
<h2>Cost of each model (training part, test users)</h2>{_table(cost_rows)}
<h2>ALS tuning (validation split of the training part)</h2>
<p>This run: {html.escape(evaluation.get("tuning_source", "searched the grid"))}.</p>{_table(evaluation.get("tuning", []), "<p>No tuning grid was searched.</p>")}
<p>Chosen parameters: {html.escape(chosen)}</p></body></html>"""
    path.write_text(page)
    return path
