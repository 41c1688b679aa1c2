"""ALS on implicit feedback (Hu, Koren and Volinsky), fitted in this process or by Spark MLlib.

Both engines learn from confidence 1 + alpha * strength (Spark computes it;
the local engine hands it to `implicit`'s conjugate-gradient solver, which
reads its matrix as the confidence). `engine` chooses (`models.engine`
decides `auto`): `local` fits with `implicit` on this process's cores, `spark`
distributes the fit, which is what scales out. Either way the factors of users
and listings are small (users x rank floats) and are scored in this process,
one matrix product per block of users.

The engines regularise differently: Spark scales lambda by each user's and
listing's number of interactions, `implicit` does not, so each engine's
regularisation is tuned on its own (the tuning record names the engine).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from python_jobs.models.base import bidders
from python_jobs.models.data import TrainingSet


@dataclass
class ALSModel:
    spark: object
    rank: int = 32
    reg_param: float = 1.0
    alpha: float = 1.0
    max_iter: int = 10
    seed: int = 42
    engine: str = "local"
    name: str = "als"

    def fit(self, data: TrainingSet) -> ALSModel:
        if self.rank < 1 or self.max_iter < 1 or self.reg_param < 0 or self.alpha < 0:
            raise ValueError(f"ALS needs rank >= 1, max_iter >= 1, reg_param >= 0 and alpha >= 0; got rank={self.rank}, "
                             f"max_iter={self.max_iter}, reg_param={self.reg_param}, alpha={self.alpha}")
        if self.engine == "local":
            self.user_factors_, self.item_factors_ = self._fit_local(data)
        else:
            self.user_factors_, self.item_factors_ = self._fit_spark(data)
        norms = np.maximum(np.linalg.norm(self.item_factors_, axis=1, keepdims=True), 1e-12)
        self.unit_items_ = self.item_factors_ / norms
        self.data_ = data
        return self

    def _fit_local(self, data: TrainingSet) -> tuple[np.ndarray, np.ndarray]:
        from implicit.cpu.als import AlternatingLeastSquares

        confidence = data.strength.astype(np.float32, copy=True)
        confidence.data = 1.0 + self.alpha * confidence.data
        # implicit parallelises over users itself; a threaded BLAS inside each solve would fight it for the cores
        with _blas_controller().limit(limits=1, user_api="blas"):
            model = AlternatingLeastSquares(factors=self.rank, regularization=self.reg_param, alpha=1.0,
                                            iterations=self.max_iter, random_state=self.seed, num_threads=0,
                                            calculate_training_loss=False)
            model.fit(confidence, show_progress=False)
        return np.asarray(model.user_factors, np.float32), np.asarray(model.item_factors, np.float32)

    def _fit_spark(self, data: TrainingSet) -> tuple[np.ndarray, np.ndarray]:
        from pyspark.ml.recommendation import ALS

        if self.spark is None:
            raise ValueError("ALS on the spark engine needs a SparkSession")

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
        return _factors(model.userFactors, data.n_users, self.rank), _factors(model.itemFactors, data.n_items,
                                                                               self.rank)

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.user_factors_[users] @ self.item_factors_[items].T

    def score_pairs(self, users: np.ndarray, cands: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.einsum("uf,ucf->uc", self.user_factors_[users], self.item_factors_[cands])

    def covers(self, users: np.ndarray) -> np.ndarray:
        return bidders(self.data_, users)

    def ranked(self, data: TrainingSet, users: np.ndarray, items: np.ndarray, n: int):
        """`base.top_n` for ALS: implicit's blocked, multi-threaded top-k of users' factors against the candidates'
        (about 5x NumPy's full score matrix and partition at 100k users), what each user interacted with left out.
        Scores are continuous, so ties (which this leaves in implicit's order) do not arise in practice."""
        from implicit.cpu.topk import topk

        users, items = np.asarray(users, np.int64), np.asarray(items, np.int64)
        chosen = np.full((len(users), n), -1, np.int64)
        scores = np.full((len(users), n), -np.inf, np.float32)
        keep = min(n, len(items))
        if keep == 0 or len(users) == 0:
            return chosen, scores
        seen = (data.seen[users][:, items] > 0).astype(np.float32).tocsr()
        ids, top = topk(np.ascontiguousarray(self.item_factors_[items]), np.ascontiguousarray(self.user_factors_[users]),
                        keep, filter_query_items=seen, num_threads=0)
        valid = top > -1e38  # filtered (already seen) candidates come back at -FLT_MAX
        chosen[:, :keep] = np.where(valid, items[ids], -1)
        scores[:, :keep] = np.where(valid, top, -np.inf)
        return chosen, scores

    def similar(self, items: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Cosine of listing factors: [len(items), len(candidates)]."""
        return self.unit_items_[items] @ self.unit_items_[candidates].T


@functools.cache
def _blas_controller():
    """threadpoolctl's view of the loaded BLAS libraries, inspected once per process (about 0.1 s each time)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _factors(frame, rows: int, rank: int) -> np.ndarray:
    """Spark's (id, features) as a dense [rows, rank] float32 matrix; ids never seen stay 0."""
    pdf = frame.toPandas()
    out = np.zeros((rows, rank), np.float32)
    if len(pdf):
        out[pdf["id"].to_numpy()] = np.stack(pdf["features"].to_numpy()).astype(np.float32)
    return out
