"""Two-tower: a user tower over what the user bid on and answered, a listing tower over the listing's features
only, so a listing nobody has bid on yet is scored from the hour it is listed.

Listing tower: the listing's tokens as `content` makes them (product words,
`category=`, `sub_category=`, `price=` band; TF-IDF weighted) plus its seller
when the data has one, as a weighted bag of token embeddings, then
tanh(. W1) W2, of unit length. User tower: a bag of the embeddings of the
`history` listings the user interacted with most (by strength) and of the
strongest tokens of the user's `content` profile (what they bid on and the
questionnaire), through its own two layers. Score: the dot product.
Trained on every (user, listing) interaction with in-batch negatives: each
pair's listing against the other listings of its batch, softmax at
`temperature`, each logit less log of its listing's share of the pairs (the
logQ correction of Yi et al., RecSys 2019: popular listings are in more
batches, so they are not punished for it); the pair's own listing is taken
out of the user's bag, or the tower would learn to find it there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse

from python_jobs.models.base import SCORE_CELLS
from python_jobs.models.content import Content
from python_jobs.models.data import TrainingSet
from python_jobs.models.gradient import carried, glorot, train
from python_jobs.models.neighbours import normalise_rows, row_top

SELLER_COLUMNS = ("seller_uid", "seller")
KEYED = {"items": ("listing", 0), "tokens": ("token", 0)}  # the weights with a row per listing, per token


def _bag(matrix: sparse.csr_matrix, width: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per row, (indices + offset, weights) of its `width` largest entries; padding has weight 0."""
    cols, weights = row_top(matrix, width)
    return np.where(cols >= 0, cols + offset, 0).astype(np.int32), weights.astype(np.float32)


def _tower(params: dict, side: str, table, index, weight):
    """Unit-length vectors of a tower from bags of rows of `table`: sum of weighted embeddings, two layers."""
    import jax.numpy as jnp

    pooled = jnp.einsum("nw,nwd->nd", weight, table[index])
    out = jnp.tanh(pooled @ params[f"{side}1"] + params[f"{side}_b"]) @ params[f"{side}2"]
    return out / jnp.maximum(jnp.linalg.norm(out, axis=1, keepdims=True), 1e-6)


@dataclass
class TwoTower:
    dim: int = 32
    history: int = 32         # listings of the user's bag
    tokens: int = 32          # profile tokens of the user's bag
    listing_tokens: int = 16  # tokens of a listing's bag
    temperature: float = 0.1
    epochs: int = 10
    min_steps: int = 300      # small data gets more passes: ten batches learn nothing
    batch: int = 512
    lr: float = 3e-3
    seed: int = 42
    warm_epochs: int = 2      # passes when `start` holds an earlier fit's weights (models.warm_start)
    name: str = "two_tower"
    start: dict | None = field(default=None, repr=False, compare=False)

    def fit(self, data: TrainingSet) -> TwoTower:
        import jax
        import jax.numpy as jnp

        began = time.time()
        self.content_ = Content().fit(data)
        words, profiles = self.content_.vectors_, self.content_.profiles_
        self.token_names_ = self.content_.tokens_
        seller = next((c for c in SELLER_COLUMNS if c in data.items), None)
        if seller is not None:  # a seller is a token of its listings, and of its bidders' profiles
            column = data.items[seller]
            if pd.api.types.is_float_dtype(column):  # ids with gaps read as floats: 12.0 and 12 are one seller
                column = column.astype("Int64")
            codes, names = column.factorize()  # a listing with no seller has no seller token
            self.token_names_ = np.concatenate([self.token_names_, [f"seller={name}" for name in names]])
            known = np.flatnonzero(codes >= 0)
            sellers = sparse.csr_matrix((np.full(len(known), 0.5, np.float32), (known, codes[known])),
                                        shape=(data.n_items, len(names)))
            words = sparse.hstack([words, sellers]).tocsr()
            profiles = sparse.hstack([profiles, 0.5 * normalise_rows(data.strength @ sellers)]).tocsr()
        n_tokens = words.shape[1]
        item_bag = _bag(words, self.listing_tokens)
        history = _bag(normalise_rows(data.strength), self.history)
        profile = _bag(profiles, self.tokens, offset=data.n_items)  # user table: listings, then tokens
        user_bag = (np.concatenate([history[0], profile[0]], 1), np.concatenate([history[1], profile[1]], 1))
        pairs = data.strength.tocoo()
        pair_user, pair_item = pairs.row.astype(np.int64), pairs.col.astype(np.int64)
        log_q = np.log(np.maximum(data.bidder_counts, 1) / max(1, len(pair_item))).astype(np.float32)
        keys = jax.random.split(jax.random.PRNGKey(self.seed), 6)
        d = self.dim
        params = {"items": 0.1 * jax.random.normal(keys[0], (data.n_items, d)),
                  "tokens": 0.1 * jax.random.normal(keys[1], (n_tokens, d)),
                  "user1": glorot(keys[2], (d, d)), "user_b": jnp.zeros(d), "user2": glorot(keys[3], (d, d)),
                  "listing1": glorot(keys[4], (d, d)), "listing_b": jnp.zeros(d),
                  "listing2": glorot(keys[5], (d, d))}
        epochs, min_steps = self.epochs, self.min_steps
        if self.start is not None:  # an earlier fit's weights, row by row for the listings and tokens it had
            params = carried(params, self.start["params"], {"listing": data.item_ids, "token": self.token_names_},
                             self.start["keys"], KEYED)
            epochs, min_steps = self.warm_epochs, self.min_steps * self.warm_epochs // max(self.epochs, 1)

        def batch_of(positions):
            real = positions >= 0
            at = np.where(real, positions, 0)
            users, items = pair_user[at], pair_item[at]
            index, weight = user_bag[0][users], user_bag[1][users]
            weight = np.where(index == items[:, None], 0.0, weight)  # the pair's own listing left out
            return (index, weight.astype(np.float32), item_bag[0][items], item_bag[1][items], items,
                    log_q[items], real.astype(np.float32))

        def loss(params, arrays, key, progress):
            u_index, u_weight, i_index, i_weight, items, lq, mask = arrays
            users = _tower(params, "user", jnp.concatenate([params["items"], params["tokens"]]), u_index, u_weight)
            listings = _tower(params, "listing", params["tokens"], i_index, i_weight)
            logits = users @ listings.T / self.temperature - lq[None, :]
            other = (items[:, None] == items[None, :]) & ~jnp.eye(len(items), dtype=bool)
            logits = jnp.where(other | (mask[None, :] == 0), -1e9, logits)
            per_row = jax.nn.logsumexp(logits, axis=1) - jnp.diagonal(logits)
            return jnp.sum(per_row * mask) / jnp.maximum(jnp.sum(mask), 1.0)

        epochs = epochs if len(pair_item) else 0
        self.params_, self.losses_ = train(loss, params, batch_of, len(pair_item), self.batch, epochs, self.lr,
                                           self.seed, min_steps)
        self.epochs_run_, self.item_ids_ = len(self.losses_), data.item_ids
        self.user_vectors_ = self._vectors("user", np.concatenate([self.params_["items"], self.params_["tokens"]]),
                                           *user_bag)
        self.item_vectors_ = self._vectors("listing", self.params_["tokens"], *item_bag)
        self.fit_seconds_ = round(time.time() - began, 2)
        return self

    def keyed_weights(self) -> tuple[dict, dict]:
        """(the fitted weights, the listing id or token of each row of those in KEYED) for the next run's warm
        start."""
        return self.params_, {"listing": self.item_ids_, "token": self.token_names_}

    def _vectors(self, side: str, table: np.ndarray, index: np.ndarray, weight: np.ndarray) -> np.ndarray:
        step = max(1, SCORE_CELLS // max(1, index.shape[1] * self.dim))
        return np.concatenate([np.asarray(_tower(self.params_, side, table, index[s:s + step], weight[s:s + step]))
                               for s in range(0, max(1, len(index)), step)]).astype(np.float32)

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.user_vectors_[users] @ self.item_vectors_[items].T

    def score_pairs(self, users: np.ndarray, cands: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Per pair, the dot product of the user's and the candidate's vectors."""
        return np.einsum("ud,ucd->uc", self.user_vectors_[users], self.item_vectors_[cands])

    def covers(self, users: np.ndarray) -> np.ndarray:
        """Users who bid or answered the questionnaire."""
        return self.content_.covers(users)
