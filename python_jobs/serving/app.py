"""The API: typed routes over the run a RunHolder serves, and the app's events in; the OpenAPI document is the
contract.

Invalid input is refused by the declared types (422) before our code runs;
an unknown user or listing is a 404 that says which; no run loaded yet is a
503 on every data route and on /ready (while /health says the process lives).
Events are checked one by one (each refused event gets its reason) and
acknowledged only once fsynced in the spool; a user's events since the run
re-rank their list at once (`serving.fresh`). Every /v1 call needs an API key
of the right scope (`serving.keys`): 401 without one, 403 with the wrong
scope; /health and /ready stay open. The events door is bounded per key (a
token bucket: 429) and by the spool's cap (503), both with Retry-After.
"""

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Path as PathParam, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from python_jobs.config import EVENTS_PER_BATCH, MODELS
from python_jobs.events.schema import parse_time
from python_jobs.events.spool import SpoolFull
from python_jobs.models.rules import ListRules, WatchedRules
from python_jobs.publish.experiments import assign
from python_jobs.serving.fresh import FreshEvents, rerank, still_open
from python_jobs.serving.keys import ApiKey, KeyStore
from python_jobs.serving.limits import TokenBuckets
from python_jobs.serving.loader import RunHolder, ServedRun

PAGE = Path(__file__).with_name("page.html")
MAX_N = 100
Uid = Annotated[int, PathParam(ge=0, le=2**31 - 1, description="the user's id")]
ListingId = Annotated[int, PathParam(ge=0, le=2**31 - 1, description="the listing's id")]
N = Annotated[int, Query(ge=1, le=MAX_N, description="how many to return, best first")]
Model = Annotated[Literal[("hybrid", *MODELS)] | None,
                  Query(description="the model whose list to return; without it, the list of the user's variant in "
                                    "a running experiment (seeds/experiments.csv), else the hybrid")]


class Item(BaseModel):
    rank: int
    listing_id: int
    product: str
    category: str
    sub_category: str
    listing_amount: float
    ends_at: str
    score: float
    source: str


class UserRecommendations(BaseModel):
    uid: int
    user_name: str
    source: str
    model: str
    run_id: str
    variant: str | None = Field(None, description=(
        "experiment/variant the user was served as (None: no experiment, or a model asked for by name); the app "
        "sends it back on the impressions of this list"))
    recommendations: list[Item]


class SimilarItem(BaseModel):
    rank: int
    similar_listing_id: int
    score: float


class SimilarListings(BaseModel):
    listing_id: int
    run_id: str
    similar: list[SimilarItem]


class RunInfo(BaseModel):
    run_id: str
    published_at: str
    users: int
    listings_with_similar: int
    models: list[str]
    metrics: dict[str, dict[str, int | float | None]] = Field(description=(
        "per model: rates as decimals, counts (users) as integers, null where the run could not measure one"))
    model_params: dict[str, float | int | str]


class Problem(BaseModel):
    detail: str


MAX_BODY = 1_048_576
SPOOL_FULL_RETRY_SECONDS = 30  # the spool drains as fast as the store takes it; a full one waited for a store


class EventBatch(BaseModel):
    events: list[Any] = Field(min_length=1, max_length=EVENTS_PER_BATCH, description=(
        "events {event_id, type: view|watch|like|share|bid|impression, uid, listing_id, at (ISO 8601 with a zone), "
        "session_id?, watch_seconds? (watch only), variant? and position? (impression only: the experiment/variant "
        "this API answered and the listing's place in that list, from 1)}; each is checked on its own"))


class RejectedEvent(BaseModel):
    index: int
    event_id: str | None = None
    reason: str


class EventsAnswer(BaseModel):
    accepted: int
    duplicates: int
    rejected: list[RejectedEvent]


RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before sending again", "schema": {"type": "integer"}}}
AUTH = {401: {"model": Problem, "description": "no API key, or one unknown or revoked",
              "headers": {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}}},
        403: {"model": Problem, "description": "the key has not the scope this call needs"}}
NOT_FOUND = {**AUTH, 404: {"model": Problem}, 503: {"model": Problem}}
bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey", bearerFormat="encore_<id>_<secret>", description=(
    "an API key from `encore-recs keys create --scope read|events`, as `Authorization: Bearer <key>`"))


def require(scope: str):
    """A dependency: the calling key when it is stored and holds `scope` (401 otherwise, 403 with the wrong
    scope)."""
    def caller(request: Request,
               credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> ApiKey:
        key = request.app.state.keys.check(credentials.credentials) if credentials else None
        if key is None:
            why = "this API key is unknown or revoked" if credentials else "an API key is needed"
            raise HTTPException(401, f"{why}: send `Authorization: Bearer <key>` with a key from `encore-recs keys "
                                     f"create --scope {scope}`", headers={"WWW-Authenticate": "Bearer"})
        if scope not in key.scopes:
            raise HTTPException(403, f"key {key.id} ({key.name}) has scope {','.join(key.scopes)}; this call "
                                     f"needs scope {scope}")
        return key
    return caller


READER = [Depends(require("read"))]
EventsKey = Annotated[ApiKey, Depends(require("events"))]


def served(request: Request) -> ServedRun:
    """The run being served, from the app's RunHolder; 503 until one is loaded."""
    run = request.app.state.holder.current
    if run is None:
        raise HTTPException(503, "no published run is loaded yet; retry shortly")
    return run


Served = Annotated[ServedRun, Depends(served)]



def served_list(run: ServedRun, uid: int, n: int, model: str | None, events: list, now: datetime,
                rules: ListRules | None = None) -> dict:
    """The list the app shows `uid`: `model`'s, or without one the list of the user's variant in a running
    experiment (`variant` says which; a variant whose model has no list for the user shows the hybrid), else the
    hybrid; re-ranked by the user's `events` since the run, under `rules` (default: the run's). LookupError when
    there is none."""
    rules = rules if rules is not None else run.rules
    if model is not None:
        return {**model_list(run, uid, n, model, events, now, rules), "variant": None}
    assigned = assign(run.experiments, uid, now)
    variant = f"{assigned['experiment']}/{assigned['variant']}" if assigned else None
    serves = assigned["serves"] if assigned else "hybrid"
    if serves != "hybrid" and uid not in run.models.get(serves, {}):
        serves = "hybrid"
    return {**model_list(run, uid, n, serves, events, now, rules), "variant": variant}


def model_list(run: ServedRun, uid: int, n: int, model: str, events: list, now: datetime, rules: ListRules) -> dict:
    """`model`'s list for `uid` (the hybrid's re-ranked by the user's events since the run), under `rules`;
    LookupError if none."""
    line = run.users.get(uid)
    events = events if model == "hybrid" else []
    if line is None and events:  # new since the run: a list from today's events alone
        items = rerank(run, [], events, n, now, rules, uid)
        if items:
            return {"uid": uid, "user_name": "", "source": "fresh", "model": model, "run_id": run.run_id,
                    "recommendations": items}
    if line is None:
        raise LookupError(f"user {uid} has no recommendations in run {run.run_id}")
    row = json.loads(line)
    if model != "hybrid":
        model_line = run.models.get(model, {}).get(uid)
        if model_line is None:
            why = "" if model in run.models else " (the run did not fit it)"
            if model in ("als", "item_knn", "user_knn", "ease") and model in run.models:
                why = f" ({model} lists only users who have bid)"
            raise LookupError(f"user {uid} has no {model} list in run {run.run_id}{why}")
        listed = json.loads(model_line)  # ids and scores; the details are the run's listings file
        items = [{"rank": i["rank"], "listing_id": i["listing_id"], **run.listings.get(i["listing_id"], {}),
                  "score": i["score"], "source": i["source"]} for i in listed["recommendations"]]
        items = [{k: v for k, v in item.items() if k != "seller_uid"} for item in items]
        row = {**row, "source": model, "recommendations": items}
    items = rerank(run, row["recommendations"], events, n, now, rules, uid)
    return {**row, "model": model, "run_id": run.run_id, "recommendations": items}


def build_app(holder: RunHolder, collector=None, fresh: FreshEvents | None = None, clock=None, *, keys: KeyStore,
              buckets: TokenBuckets | None = None, rules: WatchedRules | None = None) -> FastAPI:
    """collector: the events API's `events.collector.Collector` (POST /v1/events answers 503 without one);
    fresh: the users' events since the run; clock: now, for the end of auctions (tests move it); keys: who may
    call /v1; buckets: each key's events a second (`serve` always sets them; None: no per-key limit); rules: the
    rules file applied at request time (None: the rules each run was published with)."""
    app = FastAPI(title="Encore recommendations", version="1",
                  description="Recommendations of the latest published and validated run, re-ranked by the app's "
                              "events since it; the app's events in.")
    app.state.holder = holder
    app.state.keys = keys
    fresh = fresh if fresh is not None else FreshEvents()
    holder.on_swap.append(lambda run: fresh.forget_before(parse_time(run.published_at).timestamp()))
    clock = clock or (lambda: datetime.now(timezone.utc))

    def user_list(run: ServedRun, uid: int, n: int, model: str | None) -> dict:
        try:
            in_force = rules.current(run.rules) if rules is not None else run.rules
            return served_list(run, uid, n, model, fresh.of(uid), clock(), in_force)
        except LookupError as exc:
            raise HTTPException(404, str(exc.args[0])) from None

    @app.get("/v1/users/{uid}/recommendations", response_model=UserRecommendations, responses=NOT_FOUND,
             dependencies=READER)
    def recommendations_by_uid(run: Served, uid: Uid, n: N = 10, model: Model = None) -> dict:
        """A user's list, best first, looked up by uid."""
        return user_list(run, uid, n, model)

    # `:path` so that a name holding "/" (sent as %2F, which the router sees decoded) is still one name
    @app.get("/v1/users/by-name/{user_name:path}/recommendations", response_model=UserRecommendations,
             responses=NOT_FOUND, dependencies=READER)
    def recommendations_by_name(run: Served, user_name: Annotated[str, PathParam(min_length=1, max_length=200)],
                                n: N = 10, model: Model = None) -> dict:
        """A user's list, best first, looked up by user name."""
        uid = run.by_name.get(user_name)
        if uid is None:
            raise HTTPException(404, f"no user named {user_name!r} in run {run.run_id}")
        return user_list(run, uid, n, model)

    @app.get("/v1/listings/{listing_id}/similar", response_model=SimilarListings, responses=NOT_FOUND,
             dependencies=READER)
    def similar_listings(run: Served, listing_id: ListingId, n: N = 10) -> dict:
        """Open listings closest to this one in the ALS item-factor space."""
        line = run.similar.get(listing_id)
        if line is None:
            raise HTTPException(404, f"listing {listing_id} has no similar listings in run {run.run_id}")
        now = clock()
        open_ones = [s for s in json.loads(line)["similar"]
                     if still_open(run.listings.get(s["similar_listing_id"], {}).get("ends_at"), now)]
        return {"listing_id": listing_id, "run_id": run.run_id,
                "similar": [{**s, "rank": rank} for rank, s in enumerate(open_ones[:n], start=1)]}

    @app.get("/v1/run", response_model=RunInfo, responses={**AUTH, 503: {"model": Problem}}, dependencies=READER)
    def run_info(run: Served) -> dict:
        """The run being served: id, publish time, offline metrics, model parameters."""
        return {"run_id": run.run_id, "published_at": run.published_at, "users": len(run.users),
                "listings_with_similar": len(run.similar), "models": ["hybrid", *sorted(run.models)],
                "metrics": run.metrics, "model_params": run.model_params}

    @app.post("/v1/events", response_model=EventsAnswer, responses={
        **AUTH, 400: {"model": Problem, "description": "a body that is not text (FastAPI cannot decode it)"},
        413: {"model": Problem},
        429: {"model": Problem, "description": "this key sent more events than its rate", "headers": RETRY_AFTER},
        503: {"model": Problem, "description": "not collecting, or the spool is at its cap: nothing of this batch "
                                               "was kept; send it again after Retry-After", "headers": RETRY_AFTER}})
    def post_events(batch: EventBatch, key: EventsKey) -> dict:
        """The app's events, up to 500 a call: each is checked on its own (the answer lists every refused one with
        its reason); accepted ones are on disk when this answers and land on S3 within the buffer interval; a
        resent event_id is acknowledged and kept once."""
        if collector is None:
            raise HTTPException(503, "this process does not collect events; start it with `encore-recs serve`")
        wait = buckets.take(key.id, len(batch.events)) if buckets is not None else 0
        if wait:
            raise HTTPException(429, f"key {key.id} sent more than its {buckets.rate:g} events a second (burst "
                                     f"{buckets.burst}); send again in {wait} s", headers={"Retry-After": str(wait)})
        try:
            return collector.accept(batch.events)
        except SpoolFull:
            raise HTTPException(503, "events are not being landed fast enough (the spool is at its cap); nothing of "
                                     "this batch was kept: send it again later",
                                headers={"Retry-After": str(SPOOL_FULL_RETRY_SECONDS)}) from None

    @app.middleware("http")
    async def refuse_oversize(request: Request, call_next):  # before the body is read, not after
        length = request.headers.get("content-length") or ""
        if request.method == "POST" and (not length.isdigit() or int(length) > MAX_BODY):
            return JSONResponse({"detail": f"a batch is at most {MAX_BODY} bytes with a Content-Length; send fewer "
                                           "events per call"}, status_code=413)
        return await call_next(request)

    @app.get("/health")
    def health() -> dict:
        """The process is alive (it may not serve data yet: see /ready)."""
        return {"status": "alive"}

    @app.get("/ready", responses={503: {"model": Problem}})
    def ready(request: Request) -> JSONResponse:
        """Ready when a checked run is loaded."""
        run = request.app.state.holder.current
        if run is None:
            return JSONResponse({"status": "loading", "detail": "no published run is loaded yet"}, status_code=503)
        return JSONResponse({"status": "ready", "run_id": run.run_id})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return PAGE.read_text()

    return app
