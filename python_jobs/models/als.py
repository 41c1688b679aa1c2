"""ALS on implicit feedback (Hu, Koren and Volinsky), fitted by Spark MLlib; factors scored in this process.

Spark's ALS turns strength into confidence 1 + alpha * strength. The fit is
distributed (it is what scales out); the factors of users and listings are
small (users x rank floats) and come back to the driver, where scoring is one
matrix product per block of users.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from python_jobs.models.base import bidders
from python_jobs.models.data import TrainingSet


@dataclass
class ALSModel:
    spark: object
    rank: int = 32
    reg_param: float = 0.01
    alpha: float = 1.0
    max_iter: int = 10
    seed: int = 42
    name: str = "als"

    def fit(self, data: TrainingSet) -> ALSModel:
        from pyspark.ml.recommendation import ALS

        coo = data.strength.tocoo()
        frame = pd.DataFrame({"user": coo.row.astype(np.int32), "item": coo.col.astype(np.int32),
                              "strength": coo.data.astype(np.float64)})
        ratings = self.spark.createDataFrame(frame, "user int, item int, strength double")
        # one block per core: ALS's default of 10 blocks is 10 tasks per stage, mostly overhead at this size
        blocks = max(1, self.spark.sparkContext.defaultParallelism)
        als = ALS(userCol="user", itemCol="item", ratingCol="strength", implicitPrefs=True, rank=self.rank,
                  regParam=self.reg_param, alpha=self.alpha, maxIter=self.max_iter, seed=self.seed,
                  nonnegative=False, numUserBlocks=blocks, numItemBlocks=blocks,
                  checkpointInterval=10 if self.max_iter > 20 else -1)
        model = als.fit(ratings)
        self.user_factors_ = _factors(model.userFactors, data.n_users, self.rank)
        self.item_factors_ = _factors(model.itemFactors, data.n_items, self.rank)
        norms = np.maximum(np.linalg.norm(self.item_factors_, axis=1, keepdims=True), 1e-12)
        self.unit_items_ = self.item_factors_ / norms
        self.data_ = data
        return self

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.user_factors_[users] @ self.item_factors_[items].T

    def covers(self, users: np.ndarray) -> np.ndarray:
        return bidders(self.data_, users)

    def similar(self, items: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Cosine of listing factors: [len(items), len(candidates)]."""
        return self.unit_items_[items] @ self.unit_items_[candidates].T


def _factors(frame, rows: int, rank: int) -> np.ndarray:
    """Spark's (id, features) as a dense [rows, rank] float32 matrix; ids never seen stay 0."""
    pdf = frame.toPandas()
    out = np.zeros((rows, rank), np.float32)
    if len(pdf):
        out[pdf["id"].to_numpy()] = np.stack(pdf["features"].to_numpy()).astype(np.float32)
    return out
