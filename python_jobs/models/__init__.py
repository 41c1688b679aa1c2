"""The recommenders, one module each, behind one contract (`base.Model`); `build` makes the configured ones.

Hyper-parameters shared by the run live in `TrainParams` (ALS's are the
tuned ones; the grid that found them is `ENCORE_TUNING_GRID`); each model's
own defaults are its dataclass fields.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from python_jobs.config import MODELS
from python_jobs.models.retrieve import CANDIDATES


DEFAULT_REG = {"local": 1.0, "spark": 0.01}


@dataclass(frozen=True)
class TrainParams:
    rank: int = 32
    reg_param: float = DEFAULT_REG["local"]
    alpha: float = 1.0
    max_iter: int = 10
    count_weight: float = 1.0
    amount_weight: float = 0.2
    half_life_days: float = 14.0
    min_bids_for_als: int = 3  # a user with at least this many listings bid on is a heavy user
    candidates: int = CANDIDATES  # listings retrieved per user and ranked (models.retrieve)
    seed: int = 42
    deep_epochs: int = 10  # passes over the data of mult_vae, mult_dae and two_tower (models.gradient)
    deep_warm_epochs: int = 2  # their passes when warm-started from the last run's fit (models.warm_start)
    deep_full_every_days: float = 7.0  # a full fit at least this often (in days of data); warm starts between
    engine: str = "local"  # where ALS is fitted (models.engine): local or spark

    def to_dict(self) -> dict:
        return asdict(self)

    def with_values(self, **values) -> TrainParams:
        return replace(self, **values)

    def on_engine(self, engine: str) -> TrainParams:
        """These parameters with ALS on `engine` and that engine's default regularisation (a tuned value
        replaces it): Spark scales lambda by each user's and listing's interactions, implicit does not, so the
        same lambda means much less there (1.0 in process is about 0.01 on Spark on our replay)."""
        return replace(self, engine=engine, reg_param=DEFAULT_REG[engine])


def build(names, params: TrainParams, spark=None) -> list:
    """Unfitted models, in the order of `names`; ALS on the spark engine needs the SparkSession that fits it."""
    from python_jobs.models.als import ALSModel
    from python_jobs.models.autoencoder import MultVAE, mult_dae
    from python_jobs.models.content import Content
    from python_jobs.models.ease import EASE
    from python_jobs.models.item_knn import ItemKNN
    from python_jobs.models.popularity import Popularity
    from python_jobs.models.taste import Taste
    from python_jobs.models.two_tower import TwoTower
    from python_jobs.models.user_knn import UserKNN
    from python_jobs.models.weighted_ratings import WeightedRatings

    makers = {
        "als": lambda: ALSModel(spark, rank=params.rank, reg_param=params.reg_param, alpha=params.alpha,
                                max_iter=params.max_iter, seed=params.seed, engine=params.engine),
        "taste": Taste, "item_knn": ItemKNN, "user_knn": UserKNN, "ease": EASE, "content": Content,
        "weighted_ratings": WeightedRatings, "popularity": Popularity,
        "mult_vae": lambda: MultVAE(seed=params.seed, epochs=params.deep_epochs, warm_epochs=params.deep_warm_epochs),
        "mult_dae": lambda: mult_dae(params.seed, params.deep_epochs, params.deep_warm_epochs),
        "two_tower": lambda: TwoTower(seed=params.seed, epochs=params.deep_epochs, warm_epochs=params.deep_warm_epochs),
    }
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise ValueError(f"unknown model {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    return [makers[n]() for n in names]
