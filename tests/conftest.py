"""One local stack and one SparkSession for the whole test session, on their own ports and state folder."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_STATE = Path(tempfile.mkdtemp(prefix="encore-test-state-"))
os.environ.update(
    {
        "ENCORE_STATE_DIR": str(_STATE),
        "ENCORE_PG_PORT": str(_free_port()),
        "ENCORE_S3_PORT": str(_free_port()),
        "ENCORE_SPARK_MASTER_PORT": str(_free_port()),
        "ENCORE_SPARK_THRIFT_PORT": str(_free_port()),
        "ENCORE_SHUFFLE_PARTITIONS": "2",
        "ENCORE_TUNING_GRID": "rank=8,16",
        "ENCORE_SPARK_DRIVER_MEMORY": "2g",
        # the quality gate compares each run with the last published one, and the test modules publish runs of
        # different settings in any order: off for them, on (5%) where tests/test_history.py means it
        "ENCORE_MAX_QUALITY_DROP": "1",
    }
)
os.environ.pop("ENCORE_PG_DSN", None)
for _name in ("ENCORE_S3_ENDPOINT", "ENCORE_METASTORE_DB", "ENCORE_DBT_SPARK_TARGET", "ENCORE_SPARK_MASTER"):
    os.environ.pop(_name, None)


@pytest.fixture(scope="session")
def settings():
    from python_jobs.config import Settings

    return Settings.from_env()


@pytest.fixture(scope="session")
def stack(settings):
    from python_jobs.stack import services
    from python_jobs.infra.s3 import ensure_buckets

    services.up(settings)
    ensure_buckets(settings)
    yield settings
    services.down(settings)


@pytest.fixture(scope="session")
def spark(stack):
    from python_jobs.stack.spark import get_spark

    session = get_spark(stack)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def s3(stack):
    from python_jobs.infra.s3 import s3_client

    return s3_client(stack)


@pytest.fixture
def no_events_left(stack, s3):
    """For a test that lands the app's events in the session's lake (`generate` through the CLI): none are left
    landed for the modules after it, whose runs would ingest them."""
    from python_jobs.events.landing import clear_landed

    yield
    clear_landed(s3, stack.lake_bucket)


@pytest.fixture(scope="session")
def chromium():
    """Debian's headless Chromium driven by Playwright (no browser download), flags for a closed network."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as play:
        browser = play.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield browser
        browser.close()


def pytest_addoption(parser):
    parser.addoption("--all-faults", action="store_true",
                     help="run the long tests too: every kind of the fault-injection suite and the soak's "
                          "accounting (make test-faults)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--all-faults"):
        return
    skip = pytest.mark.skip(reason="a long test (a kind of fault, the soak's accounting): run with --all-faults "
                                   "(make test-faults)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
