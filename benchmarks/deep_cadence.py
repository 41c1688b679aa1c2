"""The deep models' cadence (`python_jobs.models.warm_start`): a day's warm start beside a full fit, in seconds
and in quality on the replay.

For each scale: the `make bench-models` marketplace (seed 3) and its replay
(the time split at 80%, 10,000 sampled test users). Yesterday is the
training part as of one day before the cutoff; each deep model is fitted on
it in full, as a weekly run would. Today (the cutoff) each is fitted again
in full, and warm-started from yesterday's weights with `--warm-epochs`
passes, as the days between do. Prints both fits' seconds and nDCG@10 on the
test part, and the share of the generator's truth each reaches.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from models_bench import Truth, marketplace  # noqa: E402

from python_jobs.models import TrainParams, build  # noqa: E402
from python_jobs.models.base import top_n  # noqa: E402
from python_jobs.models.data import DAY  # noqa: E402
from python_jobs.models.evaluate import make_part, time_splitter  # noqa: E402
from python_jobs.models.hybrid import segments  # noqa: E402
from python_jobs.models.metrics import ranking_metrics  # noqa: E402

DEEP = ("mult_vae", "mult_dae", "two_tower")


def day_before(split):
    """`split` with its cutoff a day earlier: what the run of the day before learned from."""
    def shifted(df, n_items):
        train, test, items, cutoff = split(df, n_items)
        return train[train["first_bid_at"] < cutoff - DAY], test, items, cutoff - DAY
    return shifted


def run(users: int, seed: int, names, epochs: int, warm_epochs: int) -> None:
    params = TrainParams(seed=42, deep_epochs=epochs, deep_warm_epochs=warm_epochs)
    market, interactions, listings, data = marketplace(users, seed, params)
    split = time_splitter(0.2, listings["listed_at"].to_numpy(float), listings["ends_at"].to_numpy(float))
    today, _ = make_part(data, interactions, split, params, 10000)
    yesterday, _ = make_part(data, interactions, day_before(split), params, 10000)
    warm_users = segments(today.train, today.users, params.min_bids_for_als) > 0

    def ndcg(model) -> float:
        lists = top_n(model, today.train, today.users, today.items, 10)[0]
        return ranking_metrics(lists[warm_users], today.relevant[warm_users], 10, len(today.items))["ndcg"]

    truth = ndcg(Truth(market, data))
    print(f"\n## {users:,} users: {len(interactions):,} interactions; yesterday "
          f"{yesterday.train.strength.nnz:,} user-listing pairs, today {today.train.strength.nnz:,}\n")
    print(f"| model | yesterday full s ({epochs} passes) | today full s | nDCG full | today warm s "
          f"({warm_epochs} passes) | nDCG warm | warm / full s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in names:
        before = build([name], params)[0].fit(yesterday.train)
        full = build([name], params)[0].fit(today.train)
        warm = build([name], params)[0]
        warm.start = dict(zip(("params", "keys"), before.keyed_weights()))
        began = time.time()
        warm.fit(today.train)
        seconds = time.time() - began
        full_ndcg, warm_ndcg = ndcg(full), ndcg(warm)
        print(f"| {name} | {before.fit_seconds_:.1f} | {full.fit_seconds_:.1f} | {full_ndcg:.4f} "
              f"({full_ndcg / truth:.0%}) | {seconds:.1f} | {warm_ndcg:.4f} ({warm_ndcg / truth:.0%}) | "
              f"{seconds / max(full.fit_seconds_, 1e-9):.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[1000, 100000])
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--models", default=",".join(DEEP))
    parser.add_argument("--epochs", type=int, default=TrainParams.deep_epochs, help="passes of a full fit")
    parser.add_argument("--warm-epochs", type=int, default=TrainParams.deep_warm_epochs,
                        help="passes of a warm start")
    args = parser.parse_args()
    names = [n for n in args.models.split(",") if n]
    unknown = sorted(set(names) - set(DEEP))
    if unknown:
        parser.error(f"not a deep model: {', '.join(unknown)}; choose from {', '.join(DEEP)}")
    for users in args.users:
        began = time.time()
        run(users, args.seed, names, args.epochs, args.warm_epochs)
        print(f"\n{users:,} users in {time.time() - began:.1f} s")


if __name__ == "__main__":
    main()
