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


def test_every_dbt_test_the_run_skips_is_one_the_input_gate_repeats():
    """The marts stage leaves out the dbt tests tagged repeated_by_input_gate (validate-inputs checks the same on
    the same marts next): each such test's key or accepted values is in that mart's input suite."""
    import yaml

    doc = yaml.safe_load((Path(__file__).parents[1] / "models" / "marts" / "_marts__models.yml").read_text())
    suites = {name: [(type(e).__name__, e.dict()) for e in expectations]
              for name, expectations in suite_definitions().items()}
    skipped = 0
    for model in doc["models"]:
        checks = [(None, test) for test in model.get("data_tests", [])]
        checks += [(column["name"], test) for column in model.get("columns", []) for test in column.get("data_tests", [])]
        for column, test in checks:
            if not isinstance(test, dict):
                continue
            (kind, body), = test.items()
            if "repeated_by_input_gate" not in body.get("config", {}).get("tags", []):
                continue
            skipped += 1
            suite = suites[f"inputs__{model['name']}"]
            have = {(name, repr(args.get("column") or args.get("column_list")), repr(args.get("value_set")))
                    for name, args in suite}
            if kind == "primary_key":
                columns = body["arguments"]["columns"]
                unique = (("ExpectColumnValuesToBeUnique", repr(columns[0]), "None") if len(columns) == 1 else
                          ("ExpectCompoundColumnsToBeUnique", repr(columns), "None"))
                assert unique in have, (model["name"], columns)
                for name in columns:
                    assert ("ExpectColumnValuesToNotBeNull", repr(name), "None") in have, (model["name"], name)
            else:
                assert kind == "accepted_values", kind
                assert ("ExpectColumnValuesToBeInSet", repr(column), repr(body["arguments"]["values"])) in have
    assert skipped == 4
