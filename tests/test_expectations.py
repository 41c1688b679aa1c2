"""The committed Great Expectations project matches the suites defined in code."""

from pathlib import Path

import great_expectations as gx

from python_jobs.quality.suites import DATASOURCES, checkpoint_name, suite_definitions

ROOT = Path(__file__).parent.parent / "expectations"


def _shape(expectation) -> tuple:
    kwargs = {k: v for k, v in expectation.configuration.kwargs.items() if k not in ("batch_id",)}
    return expectation.expectation_type, repr(sorted(kwargs.items()))


def test_committed_suites_and_checkpoints_match_the_code():
    context = gx.get_context(mode="file", context_root_dir=str(ROOT))
    for name, expectations in suite_definitions().items():
        suite = context.suites.get(name)
        assert sorted(map(_shape, suite.expectations)) == sorted(map(_shape, expectations)), (
            f"{name} differs from python_jobs/quality/suites.py; run `encore-recs expectations`"
        )
        for engine in DATASOURCES:  # one checkpoint per engine, both over the same suite
            checkpoint = context.checkpoints.get(checkpoint_name(name, engine))
            assert [d.suite.name for d in checkpoint.validation_definitions] == [name]
