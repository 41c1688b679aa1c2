"""Settings refuse bad values with one clear message."""

import pytest

from python_jobs.config import Settings, parse_grid
from python_jobs.errors import UserError


def test_url_expiry_outside_s3_limits_is_refused(monkeypatch):
    monkeypatch.setenv("ENCORE_URL_EXPIRY_SECONDS", str(8 * 24 * 3600))
    with pytest.raises(UserError, match="60 .* 604800"):
        Settings.from_env()
    monkeypatch.setenv("ENCORE_URL_EXPIRY_SECONDS", "30")
    with pytest.raises(UserError):
        Settings.from_env()
    monkeypatch.setenv("ENCORE_URL_EXPIRY_SECONDS", "3600")
    assert Settings.from_env().url_expiry_seconds == 3600


def test_non_integer_setting_is_refused(monkeypatch):
    monkeypatch.setenv("ENCORE_TOP_N", "ten")
    with pytest.raises(UserError, match="ENCORE_TOP_N='ten' is not an integer"):
        Settings.from_env()


def test_aws_endpoint_means_no_local_s3(monkeypatch):
    monkeypatch.setenv("ENCORE_S3_ENDPOINT", "aws")
    settings = Settings.from_env()
    assert settings.s3_endpoint is None and not settings.local_s3


def test_tuning_grid_parsing():
    assert parse_grid("rank=8,16;alpha=5") == {"rank": [8, 16], "alpha": [5.0]}
    assert parse_grid("") is None
    with pytest.raises(UserError):
        parse_grid("depth=3")


@pytest.mark.parametrize("name,value,says", [
    ("ENCORE_EVENTS_BURST_PER_KEY", "499", "use a value from 500"),  # a full batch could never pass
    ("ENCORE_EVENTS_RATE_PER_KEY", "0", "use a value from 1"),
    ("ENCORE_EVENTS_SPOOL_MAX_MB", "1", "use a value from 2"),  # a 1 MiB batch must fit
    ("ENCORE_API_KEYS_SECRET_ID", "two words", "is not a Secrets Manager secret's name or ARN"),
])
def test_the_api_doors_settings_are_checked(monkeypatch, name, value, says):
    monkeypatch.setenv(name, value)
    with pytest.raises(UserError, match=says):
        Settings.from_env()


def test_candidates_per_user_are_at_least_one(monkeypatch):
    monkeypatch.setenv("ENCORE_CANDIDATES", "0")
    with pytest.raises(UserError, match="ENCORE_CANDIDATES='0'.*at least 1"):
        Settings.from_env()
    monkeypatch.setenv("ENCORE_CANDIDATES", "120")
    assert Settings.from_env().model["candidates"] == 120
