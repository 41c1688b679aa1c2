"""Which engine fits the data: this process (`local`) or Spark (`spark`).

Each step that has both: ALS's fit and the ranking of every user's lists
(`ENCORE_TRAIN_ENGINE`; each decided on its own footprint: every model is
fitted in the driver's process on the `TrainingSet`, ALS's fit excepted, and
ranking on Spark runs the same model code in tasks over blocks of users), and the Great
Expectations gates and the publish stage's serialisation (`ENCORE_FRAME_ENGINE`:
pandas frames in process, or Spark frames and Spark's writers). `local`
and `spark` force one; `auto` (the default) works in process when what the
step holds there takes at most `LOCAL_SHARE` of this machine's memory, and
hands the work to Spark beyond that (on a cluster, the executors hold the data
instead of the driver).
"""

from __future__ import annotations

import os

LOCAL_SHARE = 0.25
FRAME_CELL_BYTES = 24  # a pandas cell, with the copies a validation makes of a column


def machine_memory() -> int:
    """Physical memory of this machine (bytes); the driver's on a cluster."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def als_footprint(interactions: int, users: int, items: int, rank: int) -> int:
    """Bytes the in-process fit holds: the matrix both ways (index, value and confidence) and the factors with
    their solver's work space."""
    return interactions * 2 * (4 + 4 + 4) + (users + items) * rank * 4 * 3


def ranking_footprint(users: int, models: int, n: int, candidates: int, users_at_once: int = 20_000) -> int:
    """Bytes ranking every user in process holds beyond the training set: the pool of one part of the users
    (each model's raw and scaled float32 score of every candidate) and every user's lists as pandas rows (the
    served list and each model's own, 7 columns)."""
    pool = min(users, users_at_once) * candidates * (models + 1) * 4 * 2
    return pool + users * n * (models + 1) * 7 * FRAME_CELL_BYTES


def choose(setting: str, variable: str, need: int, what: str, memory: int | None = None) -> tuple[str, str]:
    """(engine, why) for a step whose in-process form holds `need` bytes (`what` says of what)."""
    if setting in ("local", "spark"):
        return setting, f"{variable}={setting}"
    memory = memory or machine_memory()
    fits = need <= LOCAL_SHARE * memory
    return ("local" if fits else "spark"), (
        f"{what} need {need / 2**20:,.0f} MiB, {'within' if fits else 'over'} {LOCAL_SHARE:.0%} of the driver's "
        f"{memory / 2**30:.0f} GiB")


def for_training(setting: str, data, params, grid: dict | None, memory: int | None = None) -> tuple[str, str]:
    """(engine, why) for the ALS fits of a run on `data` (a TrainingSet), at the largest rank it may try."""
    rank = max([params.rank, *((grid or {}).get("rank") or [])])
    need = als_footprint(data.strength.nnz, data.n_users, data.n_items, rank)
    return choose(setting, "ENCORE_TRAIN_ENGINE", need, f"{data.strength.nnz:,} interactions at rank {rank}", memory)


def for_frames(setting: str, rows: int, columns: int, memory: int | None = None) -> tuple[str, str]:
    """(engine, why) for handling frames of at most `rows` x `columns` in pandas."""
    return choose(setting, "ENCORE_FRAME_ENGINE", rows * columns * FRAME_CELL_BYTES,
                  f"frames of up to {rows:,} rows x {columns} columns", memory)


def for_ranking(setting: str, users: int, models: int, n: int, candidates: int,
                memory: int | None = None) -> tuple[str, str]:
    """(engine, why) for ranking `users`' lists of `n` by `models` models over `candidates` each."""
    return choose(setting, "ENCORE_TRAIN_ENGINE", ranking_footprint(users, models, n, candidates),
                  f"lists of {users:,} users by {models} models", memory)
