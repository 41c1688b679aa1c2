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
