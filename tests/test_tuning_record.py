"""When a run searches the tuning grid and when it reuses the last chosen parameters."""

from python_jobs.models.tuning_record import decide, keeps_blend, reuse_blend

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


SETUP = {"models": ["als", "taste"], "params": {"rank": 16, "engine": "local"}}
BLEND = {"weights": {"heavy": {"als": 1.0, "taste": 0.5}}, "validation_ndcg": {"heavy": 0.2}, "cutoff": 1.7e9,
         "setup": SETUP, "size": {**SIZE, "event_rows": 0}, "run_id": "20261101T000000Z-b"}


def test_the_blend_is_reused_while_the_models_and_data_hold_and_chosen_again_when_they_move():
    assert reuse_blend("auto", None, SETUP, SIZE) == (None, "no earlier blend")
    kept, why = reuse_blend("auto", BLEND, SETUP, {**SIZE, "event_rows": 0, "listings": 55})
    assert kept is BLEND and "20261101T000000Z-b" in why and "10%" in why
    assert reuse_blend("auto", BLEND, SETUP, {**SIZE, "interactions": 1300}) == (
        None, "interactions moved by 30% since run 20261101T000000Z-b")
    assert reuse_blend("auto", BLEND, SETUP, {**SIZE, "event_rows": 500})[0] is None  # the app's events came in
    for other in ({**SETUP, "models": ["als"]}, {**SETUP, "params": {"rank": 32, "engine": "local"}}):
        assert reuse_blend("auto", BLEND, other, SIZE) == (None, "the models or their parameters changed")


def test_the_blend_always_never():
    assert reuse_blend("always", BLEND, SETUP, SIZE) == (None, "ENCORE_TUNE=always")
    assert reuse_blend("never", BLEND, SETUP, {**SIZE, "users": 1000})[0] is BLEND
    assert reuse_blend("never", None, SETUP, SIZE)[0] is None


def test_a_run_keeps_its_blend_unless_it_reused_one_was_refused_or_is_a_backfill():
    chosen = {"weights": {}, "chosen": "on validation", "cutoff": 1.8e9}
    assert keeps_blend(None, chosen, "no champion") and keeps_blend(BLEND, chosen, "pass")
    assert not keeps_blend(BLEND, {**chosen, "chosen": "on validation by run 20261101T000000Z-b"}, "pass")
    assert not keeps_blend(BLEND, chosen, "regression")  # the next run chooses again
    assert not keeps_blend(BLEND, {**chosen, "cutoff": 1.6e9}, "pass")  # an earlier as-of keeps the newer choice
