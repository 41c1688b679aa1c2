"""The run report's chart keeps every model visible, even when two score exactly alike, has axis values, and draws
each value where it is."""

import re

from python_jobs.history.charts import line_chart


def _drawn(svg: str, chart_id: str) -> dict[str, dict]:
    """Each model's line as matplotlib drew it: its points (SVG units, y downwards), dash and marker shape."""
    lines = {}
    for model, group in re.findall(rf'<g id="{chart_id}-(\w+)">(.*?)\n   </g>', svg, re.S):
        path = re.search(r'<path d="([^"]+)"[^>]*style="([^"]+)"', group)
        marker = re.search(r'<path id="m\w+" d="([^"]+)"', group)
        lines[model] = {"points": [(float(x), float(y)) for x, y in re.findall(r"[ML] ([-\d.]+) ([-\d.]+)", path[1])],
                        "dash": re.search(r"stroke-dasharray: ([^;]+)", path[2]), "marker": marker[1]}
        lines[model]["dash"] = lines[model]["dash"] and lines[model]["dash"][1]
    return lines


def test_identical_curves_stay_distinguishable_with_axis_values():
    same = {"1": 0.1, "5": 0.2, "10": 0.25}
    svg = line_chart({"als": same, "popularity": {"1": 0.05, "5": 0.1, "10": 0.2}, "hybrid": dict(same)}, "c", "k",
                     "nDCG@k")
    lines = _drawn(svg, "c")
    assert set(lines) == {"als", "popularity", "hybrid"}
    assert lines["als"]["points"] == lines["hybrid"]["points"]  # drawn where they are: on top of each other
    assert len({line["dash"] for line in lines.values()}) == 3  # solid (None) and two dash patterns
    assert len({line["marker"] for line in lines.values()}) == 3
    assert len(re.findall(r"<use [^>]*fill-opacity: 0", svg)) == 3 * 3 + 3  # a hollow marker a point, a legend entry
    texts = re.findall(r"<text [^>]*>([^<]+)</text>", svg)
    assert [t for t in texts if re.fullmatch(r"[0-9.]+", t)][:3] == ["1", "5", "10"]  # the k axis
    assert {"0.00", "0.25", "k", "nDCG@k", "als", "popularity", "hybrid"} <= set(texts)  # values, labels, legend
    assert svg == line_chart({"als": same, "popularity": {"1": 0.05, "5": 0.1, "10": 0.2}, "hybrid": dict(same)},
                             "c", "k", "nDCG@k")  # the same page for the same run


def test_the_report_says_whether_the_grid_was_searched_or_reused(tmp_path):
    from python_jobs.history.report import write_report

    evaluation = {"k": 10, "params": {"rank": 16}, "metrics": {"als": {"ndcg": 0.1, "users": 3}}, "tuning": [],
                  "ndcg_at": {}, "tuning_source": "reused from run 20261101T000000Z-a (data moved at most 3%)"}
    page = write_report(tmp_path / "report.html", "20261124T000000Z-b", evaluation).read_text()
    assert "This run: reused from run 20261101T000000Z-a (data moved at most 3%)." in page


def test_the_ndcg_chart_orders_the_models_as_the_runs_ndcg_at(tmp_path):
    """A 1,000-user run's curves: the hybrid ahead of taste at every k by about 0.01 (issue 26, defect 7)."""
    from python_jobs.history.report import write_report

    ndcg_at = {"als": {"1": 0.30, "5": 0.36, "10": 0.400}, "popularity": {"1": 0.10, "5": 0.14, "10": 0.170},
               "taste": {"1": 0.33, "5": 0.38, "10": 0.408}, "item_knn": {"1": 0.20, "5": 0.24, "10": 0.260},
               "hybrid": {"1": 0.34, "5": 0.39, "10": 0.417}}
    evaluation = {"k": 10, "params": {"rank": 16}, "metrics": {"hybrid": {"ndcg": 0.417, "users": 1000}},
                  "ndcg_at": ndcg_at}
    page = write_report(tmp_path / "report.html", "20261206T000000Z-a", evaluation).read_text()
    plotted = {model: [y for _, y in line["points"]] for model, line in _drawn(page, "ndcg-at-k").items()}
    assert set(plotted) == set(ndcg_at)
    for i, k in enumerate(["1", "5", "10"]):
        by_value = sorted(ndcg_at, key=lambda model: -ndcg_at[model][k])
        by_height = sorted(plotted, key=lambda model: plotted[model][i])
        assert by_height == by_value, f"at k = {k}"


def _run_rows(run_id: str, hybrid: float, failed: str | None = None) -> dict[str, list[dict]]:
    stages = [{"run_id": run_id, "stage": stage, "seconds": seconds, "status": "failed" if stage == failed else "ok"}
              for stage, seconds in (("stage", 12.0), ("train", 40.5), ("publish", 6.0))]
    metrics = [{"run_id": run_id, "model": model, "segment": "all", "metric": "ndcg", "value": value}
               for model, value in (("hybrid", hybrid), ("als", hybrid - 0.01), ("popularity", 0.17))]
    run = {"run_id": run_id, "status": "failed" if failed else "published", "failed_stage": failed,
           "hybrid_ndcg": hybrid, "total_seconds": 58.5}
    return {"runs": [run], "run_stages": stages, "run_metrics": metrics}


def test_the_browser_shows_both_reports_charts_as_drawn_from_their_data(chromium, tmp_path):
    """The run report's lines stand in the order of the run's nDCG@k, their legend names the models; the morning
    report has a bar segment per stage of each run, a failed one said so, and a line per model."""
    from python_jobs.history import morning_report
    from python_jobs.history.report import write_report

    ndcg_at = {"taste": {"1": 0.33, "5": 0.38, "10": 0.408}, "popularity": {"1": 0.10, "5": 0.14, "10": 0.170},
               "hybrid": {"1": 0.34, "5": 0.39, "10": 0.417}}
    evaluation = {"k": 10, "params": {"rank": 16}, "metrics": {"hybrid": {"ndcg": 0.417, "users": 1000}},
                  "ndcg_at": ndcg_at}
    report = write_report(tmp_path / "report.html", "20261206T000000Z-a", evaluation)
    days = [_run_rows(f"2026120{day}T000000Z-r", 0.40 + day / 100, "train" if day == 3 else None) for day in (1, 2, 3)]
    history = {kind: [row for day in days for row in day[kind]] for kind in days[0]}
    morning = tmp_path / "index.html"
    morning.write_text(morning_report.render(history, lambda run_id, kind: None))

    page = chromium.new_page(viewport={"width": 1200, "height": 900})
    page.goto(report.as_uri())
    # each marker's height on screen, per line: a smaller top is drawn higher
    tops = page.eval_on_selector_all("#ndcg-at-k g[id^='ndcg-at-k-']", """groups => Object.fromEntries(groups.map(
        g => [g.id.slice('ndcg-at-k-'.length), [...g.querySelectorAll('use')].map(u => u.getBoundingClientRect().top)]))""")
    labels = page.eval_on_selector_all("#ndcg-at-k text", "texts => texts.map(t => t.textContent)")
    page.goto(morning.as_uri())
    segments = page.eval_on_selector_all("#durations g[data-run]", """groups => groups.map(
        g => [g.dataset.run, g.dataset.stage, g.querySelector('title').textContent])""")
    duration_labels = page.eval_on_selector_all("#durations text", "texts => texts.map(t => t.textContent.trim())")
    by_run_labels = page.eval_on_selector_all("#ndcg-by-run text", "texts => texts.map(t => t.textContent)")
    by_run_lines = page.eval_on_selector_all("#ndcg-by-run g[id^='ndcg-by-run-']", "groups => groups.map(g => g.id)")
    page.close()

    assert set(tops) == set(ndcg_at) and {"k", "nDCG@k", *ndcg_at} <= set(labels)
    for i, k in enumerate(["1", "5", "10"]):
        assert sorted(tops, key=lambda model: tops[model][i]) == sorted(ndcg_at, key=lambda m: -ndcg_at[m][k])
    assert [(run, stage) for run, stage, _ in segments] == [
        (s["run_id"], s["stage"]) for day in reversed(days) for s in day["run_stages"]]  # newest on top
    assert "train: 40.5 s (failed)" in [title for *_, title in segments]
    assert by_run_lines == ["ndcg-by-run-hybrid", "ndcg-by-run-als", "ndcg-by-run-popularity"]  # the hybrid first
    assert {"stage", "train", "publish", "validate-inputs", "seconds", "58 s"} <= set(duration_labels)  # legend, axis
    assert {"run (oldest = 1)", "nDCG (users with history)", "hybrid", "als", "popularity"} <= set(by_run_labels)
