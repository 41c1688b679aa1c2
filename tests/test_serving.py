"""The read-only API over published runs: lookups, errors, the swap to a newer run, refusal of a corrupt one."""

import json
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from python_jobs.publish.publish import run_prefix
from python_jobs.serving.app import build_app
from python_jobs.serving.loader import RunHolder

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from api_keys import keyed  # noqa: E402
from publish_run import main as publish_synthetic  # noqa: E402

USERS = 40


@pytest.fixture(scope="module")
def holder(stack, spark):
    return RunHolder(stack)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """A key store holding a key of both scopes (what the page is given), and the header that sends it."""
    return keyed(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def client(holder, keys):
    store, header = keys
    return TestClient(build_app(holder, keys=store), headers=header)


def test_nothing_is_served_before_a_run_is_loaded(client):
    assert client.get("/health", headers={"Authorization": ""}).json() == {"status": "alive"}
    assert client.get("/ready", headers={"Authorization": ""}).status_code == 503
    assert client.get("/v1/users/1/recommendations", headers={"Authorization": ""}).status_code == 401
    response = client.get("/v1/users/1/recommendations")
    assert response.status_code == 503 and "no published run" in response.json()["detail"]


def test_a_published_run_is_loaded_and_looked_up(holder, client):
    publish_synthetic("20300101T000000Z-servea", USERS)
    assert holder.refresh() is True
    assert client.get("/ready").json() == {"status": "ready", "run_id": "20300101T000000Z-servea"}
    body = client.get("/v1/users/7/recommendations").json()
    assert body["uid"] == 7 and body["user_name"] == "user7" and body["run_id"] == "20300101T000000Z-servea"
    assert [item["rank"] for item in body["recommendations"]] == list(range(1, 11))
    assert body["recommendations"][0]["listing_id"] == 7 * 100 + 1
    assert client.get("/v1/users/by-name/user7/recommendations?n=3").json()["recommendations"] == \
        body["recommendations"][:3]
    similar = client.get("/v1/listings/701/similar?n=1").json()
    assert similar["similar"] == [{"rank": 1, "similar_listing_id": 702, "score": 1.0}]
    run = client.get("/v1/run").json()
    assert run["users"] == USERS and run["run_id"] == "20300101T000000Z-servea"
    assert run["metrics"]["hybrid"] == {"ndcg": 0.41725, "coverage": 1.0, "diversity": None, "users": USERS}
    assert run["models"] == ["hybrid", "als", "popularity"]


def test_every_models_list_is_served_for_comparison(holder, client):
    popular = client.get("/v1/users/7/recommendations?model=popularity&n=4").json()
    assert popular["model"] == "popularity" and popular["source"] == "popularity"
    assert [item["source"] for item in popular["recommendations"]] == ["popularity"] * 4
    # the model lists are published as ids and scores; the run's listings file gives every item its details
    assert popular["recommendations"][0] == {**client.get("/v1/users/7/recommendations?n=1").json()[
        "recommendations"][0], "source": "popularity"}
    assert client.get("/v1/users/by-name/user8/recommendations?model=als").json()["model"] == "als"
    missing = client.get("/v1/users/7/recommendations?model=als")
    assert missing.status_code == 404 and "no als list" in missing.json()["detail"]


@pytest.mark.parametrize("url,status,says", [
    ("/v1/users/999999/recommendations", 404, "user 999999 has no recommendations"),
    ("/v1/users/by-name/nobody/recommendations", 404, "no user named 'nobody'"),
    ("/v1/listings/5/similar", 404, "listing 5 has no similar listings"),
    ("/v1/users/abc/recommendations", 422, None),
    ("/v1/users/-1/recommendations", 422, None),
    ("/v1/users/1/recommendations?n=0", 422, None),
    ("/v1/users/1/recommendations?n=101", 422, None),
    ("/v1/users/1/recommendations?model=unknown", 422, None),
])
def test_unknown_ids_are_404_and_invalid_input_422(client, url, status, says):
    response = client.get(url)
    assert response.status_code == status, response.text
    if says:
        assert says in response.json()["detail"]


def test_a_newer_run_is_swapped_in_and_a_corrupt_one_refused(holder, client, s3, stack):
    publish_synthetic("20300101T000001Z-serveb", USERS + 5)
    assert holder.refresh() is True
    assert client.get("/v1/run").json()["run_id"] == "20300101T000001Z-serveb"
    assert client.get(f"/v1/users/{USERS + 3}/recommendations").status_code == 200

    publish_synthetic("20300101T000002Z-servec", USERS)
    page = s3.list_objects_v2(Bucket=stack.publish_bucket, Prefix=run_prefix("20300101T000002Z-servec") + "user_index/")
    key = next(o["Key"] for o in page["Contents"] if o["Key"].endswith(".json"))
    s3.put_object(Bucket=stack.publish_bucket, Key=key, Body=b'{"user_name": "mallory", "uid": 1, "bucket": 0}\n')
    assert holder.refresh() is False
    assert client.get("/v1/run").json()["run_id"] == "20300101T000001Z-serveb"
    assert "checksum" in holder.rejected["20300101T000002Z-servec"]


def test_the_openapi_document_declares_every_route(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/users/{uid}/recommendations", "/v1/users/by-name/{user_name}/recommendations",
            "/v1/listings/{listing_id}/similar", "/v1/run", "/v1/events", "/health", "/ready"} <= set(paths)


def test_the_web_page_shows_the_users_cards_in_headless_chromium(holder, client, keys, stack, chromium, tmp_path):
    import socket
    import threading

    import uvicorn

    from python_jobs.events.collector import Collector
    from python_jobs.events.spool import Spool
    from python_jobs.serving.fresh import FreshEvents

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    fresh = FreshEvents()
    collector = Collector(Spool(tmp_path / "spool", 10**6, 900), sink=None, on_event=fresh.add)
    store, header = keys
    server = uvicorn.Server(uvicorn.Config(build_app(holder, collector, fresh, keys=store), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    expected = client.get("/v1/users/by-name/user12/recommendations").json()["recommendations"]
    screenshot = stack.state_dir / "serve-page.png"
    try:
        page = chromium.new_page(viewport={"width": 390, "height": 844})  # a phone
        page.goto(f"http://127.0.0.1:{port}/")
        asked = page.inner_text("#run")
        page.fill("#key", header["Authorization"].removeprefix("Bearer "))  # a key of both scopes
        page.click("#keyform button")
        page.locator("#run").filter(has_text="run 2030").wait_for(timeout=10000)
        page.fill("#user", "user12")
        page.click("#lookup button")
        page.locator(".card").first.wait_for(timeout=10000)
        shown = [int(card.get_attribute("data-listing-id")) for card in page.locator(".card").all()]
        titles = page.locator(".card h3").all_inner_texts()
        page.locator(".card button").first.click()
        page.locator(".card .similar").first.filter(has_text="similar:").wait_for(timeout=10000)
        assert "run 20300101T000001Z-serveb" in page.inner_text("#run")
        metric_rows = [row.split("\t") for row in page.inner_text("#metrics").splitlines()]
        page.locator(".card").nth(4).click()  # viewing listing 1205: its neighbour 1206 leads the next list
        page.locator(".card.fresh").first.wait_for(timeout=10000)
        after_view = [int(card.get_attribute("data-listing-id")) for card in page.locator(".card").all()]
        page.screenshot(path=str(screenshot), full_page=True)
        page.fill("#user", "nobody")
        page.click("#lookup button")
        page.locator("#message").filter(has_text="no user named").wait_for(timeout=10000)
        kept = page.evaluate("[sessionStorage.getItem('encore-api-key'), localStorage.length, document.cookie]")
        page.close()
        _, read_only = store.create(("read",), "page-read")  # lists shown, clicks not recorded
        page = chromium.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        page.fill("#key", read_only)
        page.click("#keyform button")
        page.fill("#user", "user12")
        page.click("#lookup button")
        page.locator(".card").first.click()
        page.locator("#message").filter(has_text="no events scope").wait_for(timeout=10000)
        page.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert "an API key is needed" in asked
    assert kept == [header["Authorization"].removeprefix("Bearer "), 0, ""]  # for the tab only
    assert shown == [item["listing_id"] for item in expected]
    assert after_view[0] == 1206 and after_view[1:] == [i for i in shown if i != 1206][:9]
    assert collector.spool.pending()  # the page's view went through the events API
    assert titles[0] == f"1. {expected[0]['product']}"
    # counts print as integers beside the rates; a metric the run could not measure prints as n/a
    assert metric_rows == [["model", "ndcg", "coverage", "diversity", "users"],
                           ["hybrid", "0.4173", "1.0000", "n/a", str(USERS + 5)],
                           ["popularity", "0.2000", "1.0000", "n/a", str(USERS + 5)]]
    assert screenshot.stat().st_size > 10_000


@pytest.fixture()
def events_client(holder, keys, tmp_path):
    """An app with an events collector (spooled only) and a clock the test moves."""
    from datetime import datetime, timezone

    from python_jobs.events.collector import Collector
    from python_jobs.events.spool import Spool
    from python_jobs.serving.fresh import FreshEvents

    clock = [datetime.now(timezone.utc)]
    fresh = FreshEvents()
    collector = Collector(Spool(tmp_path / "spool", 10**6, 900), sink=None, on_event=fresh.add)
    store, header = keys
    yield TestClient(build_app(holder, collector, fresh, clock=lambda: clock[0], keys=store), headers=header), clock
    collector.spool.close()


def _view(uid: int, listing_id: int, kind: str = "view") -> dict:
    from datetime import datetime, timezone

    return {"event_id": f"t-{uid}-{listing_id}-{kind}-{time.time_ns()}", "type": kind, "uid": uid,
            "listing_id": listing_id, "at": datetime.now(timezone.utc).isoformat()}


def test_todays_events_move_similar_listings_up_at_once(events_client):
    client, _ = events_client
    before = client.get("/v1/users/9/recommendations").json()["recommendations"]
    assert client.post("/v1/events", json={"events": [_view(9, 905)]}).json()["accepted"] == 1
    after = client.get("/v1/users/9/recommendations").json()["recommendations"]
    # 906 is 905's nearest listing in the run: it leads now, marked fresh; the published rest follows in order
    assert after[0]["listing_id"] == 906 and after[0]["source"] == "fresh"
    assert [i["listing_id"] for i in after[1:]] == [i["listing_id"] for i in before if i["listing_id"] != 906][:9]
    assert [i["rank"] for i in after] == list(range(1, 11))
    assert client.get("/v1/users/9/recommendations?model=popularity").json()["recommendations"][0]["source"] == \
        "popularity"  # a model's own list is what the run computed


def test_a_user_new_since_the_run_gets_a_list_from_one_event(events_client):
    client, _ = events_client
    assert client.get("/v1/users/77777/recommendations").status_code == 404
    client.post("/v1/events", json={"events": [_view(77777, 1201, "like")]})
    body = client.get("/v1/users/77777/recommendations").json()
    assert body["source"] == "fresh" and [i["listing_id"] for i in body["recommendations"]] == [1202]


def test_an_auction_that_ends_while_serving_is_never_returned(events_client):
    from datetime import timedelta

    client, clock = events_client
    served = client.get("/v1/users/11/recommendations").json()["recommendations"]
    assert [i["listing_id"] for i in served][:2] == [1101, 1102]
    clock[0] += timedelta(days=1, hours=1)  # past the end of the rank-1 listings' auctions
    later = client.get("/v1/users/11/recommendations").json()["recommendations"]
    assert [i["listing_id"] for i in later] == [i["listing_id"] for i in served[1:]]
    assert 1101 not in [i["listing_id"] for i in client.get("/v1/users/11/recommendations?model=popularity").json()[
        "recommendations"]]
    assert client.get("/v1/listings/1101/similar").json()["similar"][0]["similar_listing_id"] == 1102
    clock[0] += timedelta(days=1)  # now the rank-2 listings have ended too: 1101's only neighbour, 1102
    assert client.get("/v1/listings/1101/similar").json()["similar"] == []
    client.post("/v1/events", json={"events": [_view(11, 1101)]})  # nor does 1102 come back as a fresh item
    assert 1102 not in [i["listing_id"] for i in client.get("/v1/users/11/recommendations").json()["recommendations"]]


def test_a_user_name_holding_a_slash_is_found_by_name(stack, keys):
    from python_jobs.serving.loader import ServedRun

    line = json.dumps({"uid": 5, "user_name": "a/b", "source": "als", "recommendations": []}).encode()
    holder = RunHolder(stack)
    holder.current = ServedRun("20300101T000009Z-slash0", "2030-01-01T00:00:09Z", {}, {}, {5: line}, {"a/b": 5}, {})
    client = TestClient(build_app(holder, keys=keys[0]), headers=keys[1])
    body = client.get("/v1/users/by-name/a%2Fb/recommendations").json()
    assert body["uid"] == 5 and body["user_name"] == "a/b"
    missing = client.get("/v1/users/by-name/a%2Fc/recommendations")
    assert missing.status_code == 404 and "no user named 'a/c'" in missing.json()["detail"]


def test_a_promoted_item_keeps_its_rank_when_todays_events_bring_fresh_items_in():
    """Fresh items go first and push the published list down, but a promoted slot stays where it was sold."""
    from types import SimpleNamespace

    from python_jobs.serving.fresh import rerank

    ends = "2099-01-01T00:00:00Z"
    similar = {"similar": [{"similar_listing_id": 50 + k, "score": 1.0 - k / 10} for k in range(3)]}
    run = SimpleNamespace(listings={i: {"ends_at": ends, "seller_uid": 1000 + i} for i in range(1, 60)},
                          similar={7: json.dumps(similar)})
    published = [{"rank": r, "listing_id": 10 + r, "ends_at": ends, "score": 1.0 / r,
                  "source": "promoted" if r == 3 else "taste"} for r in range(1, 11)]
    answer = rerank(run, published, [(7, "like", 0.0)], 10)
    assert [item["source"] for item in answer[:4]] == ["fresh", "fresh", "promoted", "fresh"]
    assert answer[2]["listing_id"] == 13 and [item["rank"] for item in answer] == list(range(1, 11))
    assert [item["listing_id"] for item in answer[4:]] == [11, 12, 14, 15, 16, 17]
