"""`encore-recs evaluate` on a ratings file it has never seen: every model scored, the grid searched."""

import json
from pathlib import Path

import pyspark

from python_jobs.cli import main
from python_jobs.config import MODELS

MOVIELENS = Path(pyspark.__file__).parent / "data" / "mllib" / "als" / "sample_movielens_ratings.txt"


def test_evaluate_scores_als_popularity_and_hybrid_on_movielens(spark, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ENCORE_TUNING_GRID", "rank=5,10;max_iter=15")
    out = tmp_path / "metrics.json"
    code = main(["evaluate", "--interactions", str(MOVIELENS), "--sep", "::", "--no-header", "--user-col", "_c0",
                 "--item-col", "_c1", "--weight-col", "_c2", "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    result = json.loads(out.read_text())
    assert set(result["metrics"]) == {*MODELS, "hybrid"}
    for scores in result["metrics"].values():
        assert 0 <= scores["ndcg"] <= 1 and scores["users"] > 0
    assert [row["rank"] for row in result["tuning"]] == [5, 10]
    assert result["metrics"]["als"]["ndcg"] > 0  # 30 users, half of all pairs rated: ALS finds some


def test_time_split_and_item_features_let_taste_beat_popularity(tmp_path, monkeypatch, capsys):
    """Two tastes (music, home), each user bids only in theirs; the last quarter by time is the test."""
    import numpy as np

    monkeypatch.setenv("ENCORE_MODELS", "taste,content,popularity")
    rng = np.random.default_rng(5)
    picks = {user: rng.choice(range(1, 11) if user % 2 else range(11, 21), 6, replace=False) for user in range(1, 61)}
    rows = [f"u{user},i{picks[user][k]},{k * 100 + user}" for k in range(6) for user in picks]  # in rounds
    (tmp_path / "bids.csv").write_text("user,item,when\n" + "\n".join(rows) + "\n")
    (tmp_path / "items.csv").write_text("item,title,category\n" + "\n".join(
        f"i{i},{'vinyl record' if i <= 10 else 'desk lamp'} {i},{'music' if i <= 10 else 'home'}" for i in range(1, 21)))
    out = tmp_path / "m.json"
    code = main(["evaluate", "--interactions", str(tmp_path / "bids.csv"), "--user-col", "user", "--item-col", "item",
                 "--time-col", "when", "--items", str(tmp_path / "items.csv"), "--text-col", "title",
                 "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    metrics = json.loads(out.read_text())["metrics"]
    assert set(metrics) == {"taste", "content", "popularity", "hybrid"}
    assert metrics["taste"]["ndcg"] > metrics["popularity"]["ndcg"] + 0.1
    assert metrics["content"]["ndcg"] > metrics["popularity"]["ndcg"] + 0.1
    assert 0 < metrics["taste"]["diversity"] <= 1  # two categories: measured


def test_diversity_is_not_available_without_categories(tmp_path, monkeypatch, capsys):
    """Without --items every listing is in one sub-category, where diversity would be 1/k for any list: n/a."""
    import numpy as np

    monkeypatch.setenv("ENCORE_MODELS", "taste,popularity")
    rng = np.random.default_rng(7)
    rows = [f"u{user},i{item}" for user in range(1, 41) for item in rng.choice(30, 6, replace=False)]
    (tmp_path / "bids.csv").write_text("user,item\n" + "\n".join(rows) + "\n")
    out = tmp_path / "m.json"
    code = main(["evaluate", "--interactions", str(tmp_path / "bids.csv"), "--user-col", "user", "--item-col", "item",
                 "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    metrics = json.loads(out.read_text())["metrics"]
    assert [scores["diversity"] for scores in metrics.values()] == [None] * 3
    assert all(isinstance(scores["novelty"], float) for scores in metrics.values())
    rows = {line.split()[0]: line.split() for line in printed.splitlines() if line.split()[:1] in (["taste"], ["hybrid"])}
    header = next(line.split() for line in printed.splitlines() if line.startswith("model"))
    assert {row[header.index("diversity")] for row in rows.values()} == {"n/a"}
