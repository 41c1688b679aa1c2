"""When a run searches the tuning grid and when it reuses the last chosen parameters."""

from python_jobs.models.tuning_record import decide

GRID = {"rank": [8, 16]}
SIZE = {"interactions": 1000, "users": 100, "listings": 50}
RECORD = {"params": {"rank": 16}, "grid": GRID, "engine": "local", "size": SIZE, "run_id": "20261101T000000Z-a"}


def test_the_first_run_searches_and_later_runs_reuse_while_the_data_holds():
    assert decide("auto", None, GRID, SIZE)[0] is True
    search, why = decide("auto", RECORD, GRID, {**SIZE, "interactions": 1150})
    assert search is False and "20261101T000000Z-a" in why and "15%" in why


def test_moved_data_or_a_new_grid_searches_again():
    search, why = decide("auto", RECORD, GRID, {**SIZE, "users": 130})
    assert search is True and "users moved by 30%" in why
    assert decide("auto", RECORD, {"rank": [8, 32]}, SIZE) == (True, "the tuning grid changed")


def test_another_als_engine_searches_again_since_the_engines_regularise_differently():
    assert decide("auto", RECORD, GRID, SIZE, "spark") == (True, "the ALS engine changed to spark")
    older = {k: v for k, v in RECORD.items() if k != "engine"}  # records from before the engines: Spark's
    assert decide("auto", older, GRID, SIZE, "spark")[0] is False
    assert decide("auto", older, GRID, SIZE, "local")[0] is True


def test_always_never_and_no_grid():
    assert decide("always", RECORD, GRID, SIZE)[0] is True
    assert decide("never", RECORD, GRID, {**SIZE, "users": 1000})[0] is False
    assert decide("never", None, GRID, SIZE)[0] is False
    assert decide("auto", RECORD, None, SIZE)[0] is False
