"""Time the local publish engine's serialisation (python_jobs/publish/json_lines.py) at N users, on synthetic
lists shaped as train writes them: 10 served items a user with listing details, six models' own lists, 20,000
listings with 10 similar each. Prints CPU seconds per kind of line (CPU, not wall: the machine is shared).

    python benchmarks/publish_lines.py 100000
"""

import json
import sys
import time

import numpy as np
import pandas as pd

from python_jobs.publish import json_lines
from python_jobs.runs.run_tables import DETAILS


def main(users: int, n: int = 10, n_listings: int = 20_000) -> None:
    models = ["als", "content", "ease", "item_knn", "popularity", "taste"]
    rng = np.random.default_rng(3)
    listings = pd.DataFrame({
        "listing_id": np.arange(1, n_listings + 1), "product": [f'Prodüct "{i}"' for i in range(n_listings)],
        "category": "music", "sub_category": "vinyl", "listing_amount": rng.random(n_listings) * 100,
        "ends_at": pd.Timestamp("2026-12-05 10:00") + pd.to_timedelta(rng.integers(0, 10**6, n_listings), "s")})
    rank = np.tile(np.arange(1, n + 1), users)
    served = pd.DataFrame({
        "uid": np.repeat(np.arange(1, users + 1), n), "user_name": np.repeat([f"user {u}" for u in range(users)], n),
        "rank": rank, "listing_id": rng.integers(1, n_listings + 1, len(rank)), "score": 1.0 / rank,
        "source": rng.choice(models, len(rank)), "list_source": "hybrid"}).merge(listings, on="listing_id")
    own = pd.concat([served[["uid", "rank", "listing_id", "score"]].assign(model=m, source=m) for m in models])
    similar = pd.DataFrame({"listing_id": np.repeat(listings["listing_id"], n), "rank": np.tile(np.arange(1, n + 1), n_listings),
                            "similar_listing_id": rng.integers(1, n_listings + 1, n_listings * n),
                            "score": rng.random(n_listings * n)})
    seconds = {}

    def timed(kind, make):
        start = time.process_time()
        out = make()
        seconds[kind] = round(time.process_time() - start, 2)
        return out

    details = timed("listing details", lambda: json_lines.listing_fragments(
        pd.concat([served[["listing_id", *DETAILS]], listings[["listing_id", *DETAILS]]]).drop_duplicates("listing_id")))
    names = timed("names", lambda: json_lines.name_texts(served))
    timed("served lists", lambda: json_lines.user_lines(served, details, names, served=True))
    timed("model lists", lambda: [json_lines.user_lines(rows, details, names, served=False)
                                  for _, rows in own.groupby("model", sort=True)])
    timed("similar", lambda: json_lines.similar_lines(similar))
    timed("listings", lambda: json_lines.listing_lines(listings, details))
    print(json.dumps({**seconds, "total": round(sum(seconds.values()), 2)}))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
