"""Offline evaluation in one process: splits, ALS tuning and the blend's weights on validation, every model
scored on the test part.

The test part is never seen by tuning: the same splitter applied to the
training part gives the validation split, on which ALS's grid is searched and
the hybrid's weights per segment are chosen. Splitters, on a frame of
uid, listing_id, strength, first_bid_at, last_bid_at (epoch seconds):

- `time_splitter` (every pipeline run): a replay. The cutoff is the time before
  which (1 - fraction) of the user-listing interactions began; models learn
  from what came before, as of the cutoff, and are scored on what users bid on
  after, choosing among the listings open at the cutoff (or every listing when
  no auction windows are known), as the live system would have.
- `per_user_splitter` (`encore-recs evaluate` without a time column): per user,
  a seeded random `fraction` of their interactions is held out.

Headline metrics are over test users with training history (`light` and
`heavy`); `segments` adds `new` users, whose first bid came after the cutoff,
and `new_listings`: each model's lists judged on the test bids on listings
nobody had interacted with before the cutoff only (for the users who made
such bids), which models that learn from bids alone cannot find.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse

from python_jobs import models as registry
from python_jobs.models.metrics import ItemStats, hits_of, ranking_metrics_at
from python_jobs.models.base import top_n
from python_jobs.models.data import TrainingSet
from python_jobs.models.hybrid import SEGMENTS, Hybrid, choose_weights, segments
from python_jobs.models.retrieve import recall
from python_jobs.models.warm_start import WarmStarts


def time_splitter(fraction: float, listed_at: np.ndarray | None = None, ends_at: np.ndarray | None = None,
                  time_col: str = "first_bid_at"):
    """listed_at / ends_at: per item position (epoch s); without them every listing is a candidate."""

    def split(df: pd.DataFrame, n_items: int):
        started = df[time_col].to_numpy(np.float64)
        bid = df["is_bid"].to_numpy(bool) if "is_bid" in df else np.ones(len(df), bool)
        cutoff = float(np.quantile(started[bid], 1.0 - fraction, method="higher")) if bid.any() else 0.0
        # what is judged is the bids after the cutoff; what teaches is what was over before it: bids that began
        # before, and a day of events only when its last event was (a day spanning the cutoff would leak)
        known = np.where(bid, started, df["last_bid_at"].to_numpy(np.float64)) if "last_bid_at" in df else started
        train, test = df[known < cutoff], df[(started >= cutoff) & bid]
        if listed_at is None:
            items = np.arange(n_items)
        else:
            items = np.flatnonzero((listed_at <= cutoff) & (ends_at > cutoff))
        return train, test, items, cutoff

    return split


def per_user_splitter(fraction: float, seed: int, as_of: float):
    """Per user, a seeded random `fraction` held out (at least one row kept for training, none held out of a user
    with one row); every listing is a candidate."""

    def split(df: pd.DataFrame, n_items: int):
        rng = np.random.default_rng(seed)
        shuffled = df.assign(_r=rng.random(len(df))).sort_values(["uid", "_r"], kind="stable")
        pos = shuffled.groupby("uid").cumcount().to_numpy()
        n = shuffled.groupby("uid")["uid"].transform("size").to_numpy()
        n_test = np.where(n < 2, 0, np.minimum(np.maximum(np.round(n * fraction), 1), n - 1))
        is_test = pos >= n - n_test
        frame = shuffled.drop(columns="_r")
        return frame[~is_test], frame[is_test], np.arange(n_items), as_of

    return split


def sample_users(uids: np.ndarray, max_users: int | None, seed: int) -> np.ndarray:
    """At most `max_users` of `uids`, chosen by a seeded hash (the same users every run)."""
    uids = np.unique(uids)
    if not max_users or len(uids) <= max_users:
        return uids
    return np.sort(uids[np.argsort(_mix(uids, seed), kind="stable")[:max_users]])


def _mix(values: np.ndarray, seed: int) -> np.ndarray:
    """A seeded 64-bit hash of each value (splitmix64's finaliser): the same values and seed, the same order."""
    x = values.astype(np.uint64) + np.full(1, seed % 2**64, np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@dataclass
class Part:
    """One side of a split: what models learn from, whom they are scored for, on what, against what."""
    train: TrainingSet
    users: np.ndarray          # user positions scored
    items: np.ndarray          # candidate item positions
    relevant: sparse.csr_matrix  # [len(users), n_items]: what each went on to interact with


def make_part(base: TrainingSet, df: pd.DataFrame, splitter, params: registry.TrainParams,
              max_users: int | None) -> tuple[Part, pd.DataFrame]:
    train_df, test_df, items, cutoff = splitter(df, base.n_items)
    train = base.with_interactions(train_df, cutoff, params.half_life_days)
    test_df = test_df[np.isin(test_df["listing_id"].to_numpy(), base.item_ids[items])]
    uids = sample_users(test_df["uid"].to_numpy(), max_users, params.seed)
    test_df = test_df[np.isin(test_df["uid"].to_numpy(), uids)]
    users = base.user_positions(uids)
    rows = np.searchsorted(uids, test_df["uid"].to_numpy())
    relevant = sparse.csr_matrix((np.ones(len(test_df), np.float32),
                                  (rows, base.item_positions(test_df["listing_id"].to_numpy()))),
                                 shape=(len(uids), base.n_items))
    return Part(train, users, items, relevant), train_df


@dataclass
class Evaluation:
    k: int
    params: registry.TrainParams
    metrics: dict[str, dict[str, float]]
    segments: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    tuning: list[dict] = field(default_factory=list)
    ndcg_at: dict[str, dict[int, float]] = field(default_factory=dict)
    blend: dict = field(default_factory=dict)
    seconds: dict[str, dict[str, float]] = field(default_factory=dict)
    champion: dict | None = None
    candidates: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"k": self.k, "params": self.params.to_dict(), "metrics": self.metrics, "segments": self.segments,
                "tuning": self.tuning, "ndcg_at": self.ndcg_at, "blend": self.blend, "seconds": self.seconds,
                "champion": self.champion, "candidates": self.candidates}


def new_listing_bids(part: Part) -> tuple[np.ndarray, sparse.csr_matrix]:
    """(which of the part's users bid on a listing nobody had interacted with in its training data, their
    relevant rows with only those listings): the `new_listings` segment."""
    fresh = (part.relevant @ sparse.diags((part.train.bidder_counts == 0).astype(np.float32))).tocsr()
    fresh.eliminate_zeros()
    rows = np.diff(fresh.indptr) > 0
    return rows, fresh[rows]


def _lists(model, part: Part, k: int) -> np.ndarray:
    return top_n(model, part.train, part.users, part.items, k)[0]


def tune_als(part: Part, base: registry.TrainParams, grid: dict, k: int, spark):
    """Grid search of ALS on the validation part; best by nDCG@k. Returns its parameters, every grid point's
    metrics and the best model (fitted on the validation part, for the blend to reuse)."""
    results, models, keys = [], [], list(grid)
    warm = part.train.bid_counts()[part.users] > 0
    for values in itertools.product(*(grid[key] for key in keys)):
        params = base.with_values(**dict(zip(keys, values)))
        model = registry.build(["als"], params, spark)[0].fit(part.train)
        lists = _lists(model, part, k)[warm]
        scores = ranking_metrics_at(lists, part.relevant[warm], [k], len(part.items))[k]
        results.append({**dict(zip(keys, values)), **{m: round(v, 5) for m, v in scores.items()}})
        models.append(model)
    best = max(range(len(results)), key=lambda i: results[i]["ndcg"])
    return base.with_values(**{key: results[best][key] for key in keys}), results, models[best]


def fit_blend(components: list, part: Part, params: registry.TrainParams, k: int, fitted=(),
              starts: WarmStarts | None = None) -> dict:
    """Fit the components on the validation part (but those in `fitted`, already fitted on it; deep models warm
    or full as `starts` says) and choose the hybrid's weights per segment."""
    starts = starts or WarmStarts()
    for model in components:
        if not any(model is done for done in fitted):
            starts.fit(model, part.train, "validation")
    pool = Hybrid(components, heavy_from=params.min_bids_for_als, candidates=params.candidates).pool(
        part.train, part.users, part.items)
    weights, scores = choose_weights(pool, hits_of(pool.items, part.relevant), np.diff(part.relevant.indptr),
                                     [m.name for m in components], k)
    return {"weights": weights, "validation_ndcg": scores}


def champion_params(config: dict, today: registry.TrainParams) -> registry.TrainParams:
    """The champion's model parameters on today's ALS engine (its tuned lambda when it ran on the same engine;
    that engine's default when not, as lambda means different things on the two)."""
    known = {key: value for key, value in config["params"].items() if key in today.to_dict()}
    params = today.with_values(**known)
    return params if params.engine == today.engine else params.on_engine(today.engine)


def score_champion(config: dict, part: Part, params: registry.TrainParams, names, components, k: int, warm,
                   spark=None, today: tuple[dict, float] | None = None) -> dict:
    """The champion's configuration (the last published run's model parameters, models and blend weights) scored
    on today's test part: fitted again on today's training part unless its parameters and models are today's,
    whose fitted components it then shares. today: (today's blend weights, today's hybrid nDCG@k on this part),
    which is the champion's score when its weights are today's too (a day whose data did not move the blend)."""
    champion = champion_params(config, params)
    same = champion == params and list(config["models"]) == list(names)
    if same and today is not None and config["weights"] == today[0]:
        return {"run_id": config["run_id"], "ndcg": today[1], "params": champion.to_dict(), "refitted": False}
    models = components if same else registry.build(config["models"], champion, spark)
    if not same:
        for model in models:
            model.fit(part.train)
    hybrid = Hybrid(models, config["weights"], heavy_from=champion.min_bids_for_als, candidates=champion.candidates)
    at = ranking_metrics_at(_lists(hybrid, part, k)[warm], part.relevant[warm], [k], len(part.items))[k]
    return {"run_id": config["run_id"], "ndcg": at["ndcg"], "params": champion.to_dict(), "refitted": not same}


def choose_on_validation(train: TrainingSet, train_df: pd.DataFrame, splitter, names, k: int,
                         params: registry.TrainParams, grid: dict | None, spark, max_users: int | None, log,
                         starts: WarmStarts) -> tuple[registry.TrainParams, list[dict], dict]:
    """(params with ALS tuned when `grid`, the grid's results, the blend) on the validation part: the test
    part's training data split again."""
    valid_part, _ = make_part(train, train_df, splitter, params, max_users)
    tuning, tuned = [], []
    if grid:
        params, tuning, best = tune_als(valid_part, params, grid, k, spark)
        tuned = [best]
        log(f"ALS tuned on validation: {', '.join(f'{key}={getattr(params, key)}' for key in grid)}")
    validation_models = [tuned[0] if tuned and name == "als" else model
                         for name, model in zip(names, registry.build(names, params, spark))]
    return params, tuning, fit_blend(validation_models, valid_part, params, k, fitted=tuned, starts=starts)


def evaluate_models(base: TrainingSet, interactions: pd.DataFrame, splitter, *, names, k: int,
                    params: registry.TrainParams, grid: dict | None, spark=None, max_users: int | None = None,
                    log=lambda _: None, champion: dict | None = None,
                    starts: WarmStarts | None = None, recorded_blend: dict | None = None) -> Evaluation:
    """Split; on validation tune ALS and choose the blend; fit every model on the training part and score each,
    and the hybrid, on the test part. interactions: uid, listing_id, strength, first_bid_at, last_bid_at.
    champion: the published configuration ({run_id, params, models, weights}), scored on the same test part.
    starts: how deep models are fitted (warm from the last run's weights or in full; default: in full).
    recorded_blend: weights an earlier run chose on validation (`tuning_record.reuse_blend`), taken instead of
    fitting every model on the validation part when no grid is searched and they were chosen on bids before this
    replay's cutoff. The returned blend's `chosen` says which, its `cutoff` where its validation data ended."""
    starts = starts or WarmStarts()
    test_part, train_df = make_part(base, interactions, splitter, params, max_users)
    cutoff = float(test_part.train.as_of)
    searching = bool(grid) and "als" in names
    if recorded_blend is not None and not searching and recorded_blend["cutoff"] <= cutoff:
        tuning = []
        blend = {key: recorded_blend[key] for key in ("weights", "validation_ndcg", "cutoff")}
        blend["chosen"] = f"on validation by run {recorded_blend['run_id']}"
    else:
        if recorded_blend is not None and not searching:
            log(f"blend: run {recorded_blend['run_id']} chose it on bids after this replay's cutoff: chosen again")
        params, tuning, blend = choose_on_validation(test_part.train, train_df, splitter, names, k, params,
                                                     grid if searching else None, spark, max_users, log, starts)
        blend = {**blend, "chosen": "on validation", "cutoff": cutoff}
    log(f"blend weights ({blend['chosen']}): " + "; ".join(
        f"{seg} " + ", ".join(f"{m}={w:g}" for m, w in ws.items() if w) for seg, ws in blend["weights"].items()))

    components = registry.build(names, params, spark)
    hybrid = Hybrid(components, blend["weights"], heavy_from=params.min_bids_for_als, candidates=params.candidates)
    stats = ItemStats(test_part.train.binary, base.sub_of_item)
    segment = segments(test_part.train, test_part.users, params.min_bids_for_als)
    warm = segment > 0
    bid_fresh, fresh = new_listing_bids(test_part)
    cutoffs = sorted({c for c in (1, 2, 3, 5, 10, 20, k) if c <= k})
    metrics, per_segment, curves, seconds = {}, {}, {}, {}
    for model in [*components, hybrid]:
        began = time.time()
        if model is not hybrid:
            starts.fit(model, test_part.train, "test")
        fitted = time.time()
        lists = _lists(model, test_part, k)
        seconds[model.name] = {"fit": round(fitted - began, 2), "score": round(time.time() - fitted, 2)}
        at = ranking_metrics_at(lists[warm], test_part.relevant[warm], cutoffs, len(test_part.items), stats)
        metrics[model.name] = at[k]
        curves[model.name] = {c: round(at[c]["ndcg"], 5) for c in cutoffs}
        per_segment[model.name] = {
            seg: ranking_metrics_at(lists[segment == s], test_part.relevant[segment == s], [k],
                                    len(test_part.items), stats)[k]
            for s, seg in enumerate(SEGMENTS) if (segment == s).any()}
        if bid_fresh.any():
            per_segment[model.name]["new_listings"] = ranking_metrics_at(
                lists[bid_fresh], fresh, [k], len(test_part.items), stats)[k]
        log(f"{model.name:>16}: nDCG@{k} {at[k]['ndcg']:.4f} (fit {seconds[model.name]['fit']:.1f}s, "
            f"lists {seconds[model.name]['score']:.1f}s)")
    candidates = candidate_recall(hybrid, test_part)
    log(f"candidates: {params.candidates} per user at most, recall {candidates['recall']:.3f} of the test bids "
        f"({candidates['seconds']:.1f}s)")
    scored = None
    if champion is not None:
        scored = score_champion(champion, test_part, params, names, components, k, warm, spark,
                                (blend["weights"], metrics["hybrid"]["ndcg"]))
        log(f"champion (run {scored['run_id']}) on the same replay: nDCG@{k} {scored['ndcg']:.4f}"
            + (" (refitted with its parameters)" if scored["refitted"] else ""))
    return Evaluation(k, params, metrics, per_segment, tuning, curves, blend, seconds, scored, candidates)


def candidate_recall(hybrid: Hybrid, part: Part) -> dict:
    """The hybrid's candidate stage on the test part (its components fitted on it): how many candidates each
    retriever gave per user, and the share of the test bids among the candidates (the most the ranking can
    find)."""
    began = time.time()
    found = hybrid.retrieve(part.train, part.users, part.items)
    return {"size": hybrid.candidates, "per_user": found.counts(), **recall(found, part.relevant),
            "seconds": round(time.time() - began, 2)}
