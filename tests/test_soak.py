"""The soak's machinery (issue 30, benchmarks/soak.py) on the session's stack for under a minute of load: every
event the server acknowledged landed once and was ingested once, through an S3 outage and the server's stop; no
5xx. A behaviour test: the figures it prints are the soak's business, not asserted here."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from benchmark_script import BENCHMARKS, load  # noqa: E402


@pytest.mark.slow  # four and a half minutes: with the long tests (make test-faults), as `make soak` is its own
def test_every_acknowledged_event_lands_and_is_ingested_once_and_nothing_answers_5xx(stack, no_events_left):
    module = load("soak")
    env = {**os.environ, "PYTHONPATH": str(BENCHMARKS.parent)}
    result = module.soak(stack, env, minutes=0.75, users=200, swap_minutes=60, outage_seconds=10,
                         reads_per_second=30, batches_per_second=2)
    print("\n".join(result.report()))
    tally = result.tally
    assert tally.acknowledged > 1000 and tally.duplicates > 0 and tally.rejected > 0
    assert result.landed == (tally.acknowledged, tally.acknowledged)
    assert result.ingested == (tally.acknowledged, tally.acknowledged)
    assert tally.server_errors() == 0 and sum(tally.errors.values()) == 0
    assert tally.statuses["GET unknown uid (404)"].keys() == {404}
    assert sum(tally.statuses["GET /v1/users/{uid}/recommendations"].values()) > 100
