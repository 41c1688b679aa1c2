"""The benchmark's table counts the history step as its own line (issue 26, defect 6): it runs after publish and
its seconds were in the wall time but in no line."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from benchmark_script import load  # noqa: E402


def _bench():
    return load("bench")


def test_the_history_step_is_its_own_line_after_publish_and_before_the_wall():
    summary = {"run_id": "20261206T080000Z-abc", "reconciliation": [], "history": {"seconds": 10.1},
               "steps": [{"stage": "train", "seconds": 20.0, "rows": {"interactions": 4000}},
                         {"stage": "publish", "seconds": 3.0, "rows": {"recommendations": 100}}]}
    lines = _bench().stage_table(summary, 36.0)
    stages = [line.split("|")[1].strip() for line in lines[2:]]
    assert stages == ["train", "publish", "history (after publish: run_history marts, morning report)", "**wall**"]
    assert lines[4].split("|")[2].strip() == "10.1"
