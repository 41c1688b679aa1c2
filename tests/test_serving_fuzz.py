"""Property-based fuzz of the API from its own OpenAPI document (schemathesis): no 500, every response conforms."""

import sys
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import settings

from python_jobs.config import Settings
from python_jobs.events.collector import Collector
from python_jobs.events.spool import Spool
from python_jobs.serving.app import build_app
from python_jobs.serving.loader import RunHolder

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from api_keys import keyed  # noqa: E402
from publish_run import main as publish_synthetic  # noqa: E402

HOLDER = RunHolder(Settings.from_env())  # conftest has pointed the environment at the test stack
COLLECTOR = Collector(Spool(Path(tempfile.mkdtemp(prefix="encore-fuzz-spool-")), 10**6, 900), sink=None)
KEYS, HEADER = keyed(Path(tempfile.mkdtemp(prefix="encore-fuzz-keys-")))  # a key of both scopes
schema = schemathesis.openapi.from_asgi("/openapi.json", build_app(HOLDER, COLLECTOR, keys=KEYS))


@pytest.fixture(scope="module", autouse=True)
def loaded_run(stack, spark):
    publish_synthetic("20300101T000003Z-fuzz", 30)
    assert HOLDER.refresh() is True
    return HOLDER.current


@schema.parametrize()
@settings(max_examples=40, deadline=None)
def test_every_operation_conforms_to_its_schema(case):
    """With our key (schemathesis also sends each call without it, expecting it refused: `ignored_auth`)."""
    case.call_and_validate(headers=HEADER)
