"""The API's door (issue 30): keys created once and kept as hashes, every /v1 call needs one of the right scope,
a revoked key is refused by the running app, and a key's events are limited by a token bucket."""

import hashlib
import json
import stat
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from python_jobs.cli import main
from python_jobs.config import Settings
from python_jobs.events.collector import Collector
from python_jobs.events.spool import Spool
from python_jobs.serving.app import build_app
from python_jobs.serving.keys import KeyFile, KeySecret, KeyStore
from python_jobs.serving.limits import TokenBuckets
from python_jobs.serving.loader import RunHolder, ServedRun

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from api_keys import keyed  # noqa: E402

LINE = json.dumps({"uid": 5, "user_name": "ana5", "source": "als", "recommendations": []}).encode()


def _cli(capsys, *args: str) -> tuple[int, list[str], str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


@pytest.fixture()
def state(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("ENCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("ENCORE_API_KEYS_SECRET_ID", raising=False)
    return tmp_path / "state"


def _app(store: KeyStore, tmp_path: Path, buckets: TokenBuckets | None = None) -> tuple[TestClient, Collector]:
    holder = RunHolder(Settings.from_env())
    holder.current = ServedRun("20300101T000009Z-door00", "2030-01-01T00:00:09Z", {}, {}, {5: LINE}, {"ana5": 5}, {})
    collector = Collector(Spool(tmp_path / "spool", 10**6, 900), sink=None)
    return TestClient(build_app(holder, collector, keys=store, buckets=buckets)), collector


def _events(count: int, tag: str) -> dict:
    at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"events": [{"event_id": f"{tag}-{i}", "type": "view", "uid": 5, "listing_id": 1 + i, "at": at}
                       for i in range(count)]}


def test_a_key_is_printed_once_alone_on_the_last_line_and_only_its_hash_is_kept(state, capsys):
    code, lines, _ = _cli(capsys, "keys", "create", "--scope", "read", "--name", "app-backend")
    key = lines[-1]
    assert code == 0 and key.startswith("encore_") and " " not in key and len(key) > 40
    assert all(key not in line for line in lines[:-1])
    stored = state / "api-keys.json"
    text = stored.read_text()
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600 and stat.S_IMODE(state.stat().st_mode) == 0o711
    assert key not in text and key.split("_", 2)[2] not in text
    assert hashlib.sha256(key.encode()).hexdigest() in text
    code, listed, _ = _cli(capsys, "keys", "list")
    key_id = key.split("_")[1]
    assert code == 0 and len(listed) == 1 and listed[0].split()[:3] == [key_id, "app-backend", "read"]
    assert key not in "\n".join(listed)
    assert KeyStore(KeyFile(stored)).check(key).name == "app-backend"


@pytest.mark.parametrize("args,says", [
    (["keys", "create", "--scope", "write"], "--scope 'write' is not a scope"),
    (["keys", "create", "--scope", "read", "--name", "a b"], "--name 'a b' is not a key name"),
    (["keys", "revoke", "0000ffff"], "no API key has the id '0000ffff'"),
])
def test_bad_key_commands_are_one_line(state, capsys, args, says):
    code, out, err = _cli(capsys, *args)
    assert code == 2 and out == [] and err.count("\n") == 1 and err.startswith("encore-recs: error: ") and says in err


def test_every_v1_call_needs_a_key_of_the_right_scope(tmp_path):
    store, reader = keyed(tmp_path, ("read",), "reader")
    _, poster = keyed(tmp_path, ("events",), "poster")
    _, both = keyed(tmp_path, ("read", "events"), "page")
    client, _ = _app(store, tmp_path)
    calls = [("get", "/v1/users/5/recommendations", "read"), ("get", "/v1/users/by-name/ana5/recommendations", "read"),
             ("get", "/v1/listings/5/similar", "read"), ("get", "/v1/run", "read"), ("post", "/v1/events", "events")]
    for method, url, scope in calls:
        send = lambda headers: getattr(client, method)(url, headers=headers,  # noqa: E731
                                                       **({"json": _events(1, "door")} if method == "post" else {}))
        for headers in ({}, {"Authorization": "Bearer encore_0000ffff_guess"}, {"Authorization": "Bearer junk"},
                        {"Authorization": "Basic dXNlcjpwYXNz"}):
            refused = send(headers)
            assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer", (url, headers)
        wrong = send(poster if scope == "read" else reader)
        assert wrong.status_code == 403 and f"needs scope {scope}" in wrong.json()["detail"], url
        assert send(reader if scope == "read" else poster).status_code in (200, 404), url
        assert send(both).status_code in (200, 404), url
    assert client.get("/v1/users/5/recommendations", headers=reader).json()["user_name"] == "ana5"
    assert client.get("/health").status_code == 200 and client.get("/ready").status_code == 200
    assert client.get("/").status_code == 200  # the page itself asks for a key


def test_a_key_is_checked_before_the_request_is(tmp_path):
    store, _ = keyed(tmp_path)
    client, _ = _app(store, tmp_path)
    assert client.get("/v1/users/-1/recommendations").status_code == 401
    assert client.post("/v1/events", json={"nothing": 1}).status_code == 401


def test_a_revoked_key_is_refused_and_a_new_one_admitted_without_a_restart(state, capsys, tmp_path):
    _, lines, _ = _cli(capsys, "keys", "create", "--scope", "read")
    key = lines[-1]
    store = KeyStore(KeyFile(state / "api-keys.json"))
    client, _ = _app(store, tmp_path)
    assert client.get("/v1/run", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    _, later, _ = _cli(capsys, "keys", "create", "--scope", "read")
    assert client.get("/v1/run", headers={"Authorization": f"Bearer {later[-1]}"}).status_code == 200
    code, out, _ = _cli(capsys, "keys", "revoke", key.split("_")[1])
    assert code == 0 and "revoked" in out[0]
    assert client.get("/v1/run", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    assert client.get("/v1/run", headers={"Authorization": f"Bearer {later[-1]}"}).status_code == 200


def test_the_openapi_document_declares_the_key_and_its_refusals(tmp_path):
    store, _ = keyed(tmp_path)
    document = _app(store, tmp_path)[0].get("/openapi.json").json()
    scheme = document["components"]["securitySchemes"]["ApiKey"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    for path, operations in document["paths"].items():
        for operation in operations.values():
            if path.startswith("/v1/"):
                assert operation["security"] == [{"ApiKey": []}], path
                assert {"401", "403"} <= set(operation["responses"]), path
                assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]
            else:
                assert "security" not in operation, path
    events = document["paths"]["/v1/events"]["post"]["responses"]
    assert "Retry-After" in events["429"]["headers"] and "Retry-After" in events["503"]["headers"]


def test_a_key_past_its_rate_is_told_when_to_retry_and_other_keys_are_not(tmp_path):
    now = [1000.0]
    store, first = keyed(tmp_path, ("events",))
    _, second = keyed(tmp_path, ("events",))
    client, collector = _app(store, tmp_path, TokenBuckets(rate=10, burst=500, clock=lambda: now[0]))
    assert client.post("/v1/events", json=_events(500, "burst"), headers=first).json()["accepted"] == 500
    refused = client.post("/v1/events", json=_events(100, "more"), headers=first)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "10"
    assert "10 events a second" in refused.json()["detail"]
    assert client.post("/v1/events", json=_events(100, "other"), headers=second).json()["accepted"] == 100
    now[0] += 9
    assert client.post("/v1/events", json=_events(100, "more"), headers=first).headers["retry-after"] == "1"
    now[0] += 1
    assert client.post("/v1/events", json=_events(100, "more"), headers=first).json()["accepted"] == 100
    kept = [json.loads(line)["event_id"] for s in collector.spool.pending() for line in s.read_bytes().splitlines()]
    assert len(kept) == 700 and not any(e.startswith("more-") for e in kept[:600])  # a refused batch kept nothing
    collector.spool.close()


def test_the_key_store_can_be_a_secrets_manager_secret(state, capsys, monkeypatch):
    """On AWS (moto stands in): `keys create|revoke` write the secret, serve reads it again once a minute."""
    import boto3
    from moto import mock_aws

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "ENCORE_API_KEYS_SECRET_ID": "encore/api-keys"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        code, _, err = _cli(capsys, "keys", "list")
        assert code == 2 and "ENCORE_API_KEYS_SECRET_ID='encore/api-keys' cannot be read" in err
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        secrets.create_secret(Name="encore/api-keys", SecretString='{"keys": []}')
        _, lines, _ = _cli(capsys, "keys", "create", "--scope", "read", "--name", "app-backend")
        key = lines[-1]
        stored = secrets.get_secret_value(SecretId="encore/api-keys")["SecretString"]
        assert key not in stored and hashlib.sha256(key.encode()).hexdigest() in stored
        assert not (state / "api-keys.json").exists()
        now = [0.0]
        store = KeyStore(KeySecret("encore/api-keys", "us-east-1", clock=lambda: now[0]))
        assert store.check(key).name == "app-backend"
        _cli(capsys, "keys", "revoke", key.split("_")[1])
        assert store.check(key) is not None  # read once a minute, not per call
        now[0] += 60
        assert store.check(key) is None
