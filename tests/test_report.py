"""The run report's chart keeps every model visible, even when two score exactly alike, and has axis values."""

import re

from python_jobs.history.report import _plot


def test_identical_curves_stay_distinguishable_with_axis_values():
    same = {"1": 0.1, "5": 0.2, "10": 0.25}
    svg = _plot({"als": same, "popularity": {"1": 0.05, "5": 0.1, "10": 0.2}, "hybrid": dict(same)})
    lines = dict(re.findall(r'<polyline [^>]*data-model="(\w+)" points="([^"]+)"', svg))
    assert set(lines) == {"als", "popularity", "hybrid"}
    assert lines["als"] != lines["hybrid"]
    dashes = re.findall(r'stroke-dasharray="([^"]*)"', svg)
    assert len(set(dashes)) == 3
    markers = len(re.findall(r"<(circle|rect|polygon) ", svg))
    assert markers == 3 * 3 + 3  # one per point per model, one per legend entry
    ticks = re.findall(r'text-anchor="end">([0-9.]+)</text>', svg)
    assert ticks[0] == "0.000" and ticks[-1] == "0.250" and len(ticks) == 5


def test_the_report_says_whether_the_grid_was_searched_or_reused(tmp_path):
    from python_jobs.history.report import write_report

    evaluation = {"k": 10, "params": {"rank": 16}, "metrics": {"als": {"ndcg": 0.1, "users": 3}}, "tuning": [],
                  "ndcg_at": {}, "tuning_source": "reused from run 20261101T000000Z-a (data moved at most 3%)"}
    page = write_report(tmp_path / "report.html", "20261124T000000Z-b", evaluation).read_text()
    assert "This run: reused from run 20261101T000000Z-a (data moved at most 3%)." in page
