"""`make bench-models`: every model on the replay at several scales, beside the generator's own truth.

For each scale: generate the marketplace in process (seed 3), shape the
interactions as the marts do (one row per user and listing: strength from
bid count and amount, first and last bid), and run the train stage's own
evaluation (`python_jobs.models.evaluate.evaluate_models`, the time split at 80%,
10,000 sampled test users, the blend chosen on validation). Prints per model
nDCG@10, P@10, coverage, fit and list seconds and nDCG@10 per segment, and
the share of the truth's nDCG@10 that each reaches, and nDCG@10 on the test bids on new listings
(nobody's interaction before the cutoff).

The truth is a reference, not a model: it scores each open listing by the
probability the generator draws it for the user, (1 - explore) x the user's
taste for the listing's pair + explore x the pair's demand, times the
listing's share of its pair's popularity. No model sees it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from python_jobs.models.evaluate import evaluate_models, make_part, new_listing_bids, time_splitter  # noqa: E402
from python_jobs.ingest.generate import generate  # noqa: E402
from python_jobs.models.metrics import ranking_metrics  # noqa: E402
from python_jobs.models import TrainParams  # noqa: E402
from python_jobs.models.base import top_n  # noqa: E402
from python_jobs.models.data import from_marketplace  # noqa: E402
from python_jobs.models.hybrid import segments  # noqa: E402


class Truth:
    """The generator's bid probability per (user, listing); `fit` does nothing."""
    name = "truth (generator)"

    def __init__(self, market, data):
        t = market.truth
        pair, pop = t["listing_pair"], t["popularity"]
        share = pop / np.bincount(pair, weights=pop)[pair]
        self.taste = (1 - t["explore"]) * t["prefs"] + t["explore"] * t["demand"]
        self.pair = pair[data.item_ids - 1]
        self.share = share[data.item_ids - 1]
        self.row = data.user_ids - 1

    def fit(self, data):
        return self

    def score(self, users, items):
        return (self.taste[self.row[users]][:, self.pair[items]] * self.share[items]).astype(np.float32)

    def covers(self, users):
        return np.ones(len(users), bool)


def marketplace(users: int, seed: int, params: TrainParams):
    market = generate(users, seed)
    data, interactions, listings = from_marketplace(market, params.count_weight, params.amount_weight,
                                                    params.half_life_days)
    return market, interactions, listings, data


def run(users: int, seed: int, names, spark, engine: str, deep_epochs: int = TrainParams.deep_epochs) -> None:
    params = TrainParams(seed=42, deep_epochs=deep_epochs).on_engine(engine)
    began = time.time()
    market, interactions, listings, data = marketplace(users, seed, params)
    splitter = time_splitter(0.2, listings["listed_at"].to_numpy(float), listings["ends_at"].to_numpy(float))
    print(f"\n## {users:,} users: {len(interactions):,} interactions, {data.n_items:,} listings "
          f"(generated and shaped in {time.time() - began:.1f} s)\n")
    evaluation = evaluate_models(data, interactions, splitter, names=names, k=10, params=params, grid=None,
                                 spark=spark, max_users=10000)
    part, _ = make_part(data, interactions, splitter, params, 10000)
    segment = segments(part.train, part.users, params.min_bids_for_als)
    truth_lists = top_n(Truth(market, data), part.train, part.users, part.items, 10)[0]
    warm = segment > 0
    truth = ranking_metrics(truth_lists[warm], part.relevant[warm], 10, len(part.items))
    bid_fresh, fresh = new_listing_bids(part)
    truth_fresh = ranking_metrics(truth_lists[bid_fresh], fresh, 10, len(part.items))
    print("| method | nDCG@10 | share of truth | P@10 | coverage | fit s | lists s | nDCG new / light / heavy "
          "| nDCG new listings |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
    for name, m in evaluation.metrics.items():
        cost = evaluation.seconds[name]
        by = evaluation.segments[name]
        per = " / ".join(f"{by[s]['ndcg']:.3f}" if s in by else "-" for s in ("new", "light", "heavy"))
        fresh_ndcg = f"{by['new_listings']['ndcg']:.4f}" if "new_listings" in by else "-"
        print(f"| {name} | {m['ndcg']:.4f} | {m['ndcg'] / truth['ndcg']:.0%} | {m['precision']:.4f} | "
              f"{m['coverage']:.3f} | {cost['fit']:.1f} | {cost['score']:.1f} | {per} | {fresh_ndcg} |")
    print(f"| {Truth.name} | {truth['ndcg']:.4f} | 100% | {truth['precision']:.4f} | {truth['coverage']:.3f} | | | "
          f"| {truth_fresh['ndcg']:.4f} |")
    weights = "; ".join(f"{seg}: " + ", ".join(f"{m} {w:g}" for m, w in ws.items() if w)
                        for seg, ws in evaluation.blend["weights"].items())
    print(f"\nBlend chosen on validation: {weights}. Test users: {int(warm.sum()):,} with history, "
          f"{int((~warm).sum()):,} new. Total {time.time() - began:.1f} s.")
    found = evaluation.candidates
    print(f"Candidates (models.retrieve): at most {found['size']} per user among {len(part.items):,} open listings, "
          f"recall {found['recall']:.3f} of the test bids in {found['seconds']:.1f} s; per user "
          + ", ".join(f"{name} {count:g}" for name, count in found["per_user"].items())
          + "; recall by retriever " + ", ".join(f"{n} {r:.3f}" for n, r in found["recall_by_retriever"].items()))


def main() -> None:
    from python_jobs.config import MODELS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[1000, 100000])
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--engine", choices=("local", "spark"), default="local", help="where ALS is fitted")
    parser.add_argument("--deep-epochs", type=int, default=TrainParams.deep_epochs,
                        help="passes of mult_vae, mult_dae and two_tower over the data (fewer: a quicker, rougher fit)")
    args = parser.parse_args()
    names = [n for n in args.models.split(",") if n]
    spark = None
    if "als" in names and args.engine == "spark":
        from python_jobs.config import Settings
        from python_jobs.stack.spark import get_spark

        spark = get_spark(Settings.from_env(), catalog=False)
    for users in args.users:
        run(users, args.seed, names, spark, args.engine, args.deep_epochs)


if __name__ == "__main__":
    main()
