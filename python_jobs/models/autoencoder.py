"""Mult-VAE and Mult-DAE (Liang et al., 2018): an autoencoder over each user's interaction vector, the modern form
of DSSTNE's sparse autoencoder.

Input: the user's row of the training set's strength (as every model sees
it), of unit length, with dropout on the input while training. Encoder
tanh(x W0) -> mean (and, for the VAE, log-variance) of a latent vector z;
decoder tanh(z W1) W2 -> one logit per listing. Loss: the multinomial
log-likelihood of the user's strengths under the softmax of the logits;
the VAE adds the KL divergence to a standard normal, its weight annealed from
0 to `beta_max` over training; the DAE samples nothing and has no KL term.
Only the `max_items` listings with the most bidders take part (others score
0), and users are fitted in minibatches, so memory follows batch x listings.
Score: the softmax of the decoder's logits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from python_jobs.models.base import SCORE_CELLS, bidders
from python_jobs.models.data import TrainingSet
from python_jobs.models.gradient import carried, glorot, train
from python_jobs.models.neighbours import normalise_rows


def _decode(params: dict, first, variational: bool, key=None):
    """(logits, KL per row) from the first layer's pre-activation x W0: z sampled when a key is given (training
    the VAE), its mean otherwise."""
    import jax
    import jax.numpy as jnp

    h = jnp.tanh(first + params["b0"])
    mu = h @ params["w_mu"] + params["b_mu"]
    kl = jnp.zeros(mu.shape[0])
    z = mu
    if variational:
        log_var = h @ params["w_var"] + params["b_var"]
        kl = 0.5 * jnp.sum(jnp.exp(log_var) + mu ** 2 - 1.0 - log_var, axis=1)
        if key is not None:
            z = mu + jnp.exp(0.5 * log_var) * jax.random.normal(key, mu.shape)
    return jnp.tanh(z @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"], kl


KEYED = {"w0": ("listing", 0), "w2": ("listing", 1), "b2": ("listing", 0)}  # the weights with a slice per listing


@dataclass
class MultVAE:
    hidden: int = 200
    latent: int = 64
    epochs: int = 10
    min_steps: int = 300      # small data gets more passes (1,000 users are four batches)
    batch: int = 256
    lr: float = 1e-3
    dropout: float = 0.5
    beta_max: float = 0.2
    l2: float = 1e-4
    max_items: int = 5000     # as EASE: the two listing-wide layers' cost per step follows batch x listings
    variational: bool = True
    seed: int = 42
    warm_epochs: int = 2      # passes when `start` holds an earlier fit's weights (models.warm_start)
    name: str = "mult_vae"
    start: dict | None = field(default=None, repr=False, compare=False)

    def fit(self, data: TrainingSet) -> MultVAE:
        import jax
        import jax.numpy as jnp

        began = time.time()
        counts = data.bidder_counts
        active = np.flatnonzero(counts > 0)
        self.kept_ = np.sort(active[np.argsort(-counts[active], kind="stable")[: self.max_items]])
        self.column_ = np.full(data.n_items, -1, np.int64)
        self.column_[self.kept_] = np.arange(len(self.kept_))
        strength = data.strength[:, self.kept_].tocsr()
        self.inputs_ = normalise_rows(strength)
        learners = np.flatnonzero(np.diff(strength.indptr) > 0)
        n, keep, variational = len(self.kept_), 1.0 - self.dropout, self.variational
        keys = jax.random.split(jax.random.PRNGKey(self.seed), 5)
        params = {"w0": glorot(keys[0], (n, self.hidden)), "b0": jnp.zeros(self.hidden),
                  "w_mu": glorot(keys[1], (self.hidden, self.latent)), "b_mu": jnp.zeros(self.latent),
                  "w1": glorot(keys[3], (self.latent, self.hidden)), "b1": jnp.zeros(self.hidden),
                  "w2": glorot(keys[4], (self.hidden, n)), "b2": jnp.zeros(n)}
        if variational:
            params.update(w_var=glorot(keys[2], (self.hidden, self.latent)), b_var=jnp.zeros(self.latent))
        epochs, min_steps, warm = self.epochs, self.min_steps, self.start is not None
        if warm:  # an earlier fit's weights, row by row for the listings it kept; the KL term at its full weight
            params = carried(params, self.start["params"], {"listing": data.item_ids[self.kept_]},
                             self.start["keys"], KEYED)
            epochs, min_steps = self.warm_epochs, self.min_steps * self.warm_epochs // max(self.epochs, 1)

        def batch_of(positions):
            real = positions >= 0
            rows = learners[np.where(real, positions, 0)]
            return (strength[rows].toarray(), self.inputs_[rows].toarray(), real.astype(np.float32))

        def loss(params, arrays, key, progress):
            target, x, mask = arrays
            drop, sample = jax.random.split(key)
            x = x * jax.random.bernoulli(drop, keep, x.shape) / keep
            logits, kl = _decode(params, x @ params["w0"], variational, sample)
            nll = -jnp.sum(jax.nn.log_softmax(logits) * target, axis=1)
            beta = self.beta_max * (1.0 if warm else progress)
            per_row = (nll + beta * kl) * mask
            squares = sum(jnp.sum(params[w] ** 2) for w in ("w0", "w_mu", "w1", "w2"))
            return jnp.sum(per_row) / jnp.maximum(jnp.sum(mask), 1.0) + self.l2 * squares

        epochs = epochs if len(learners) else 0  # no one bid: nothing to learn
        self.params_, self.losses_ = train(loss, params, batch_of, len(learners), self.batch, epochs, self.lr,
                                           self.seed, min_steps)
        self.epochs_run_ = len(self.losses_)
        self.data_ = data
        self.fit_seconds_ = round(time.time() - began, 2)
        return self

    def keyed_weights(self) -> tuple[dict, dict]:
        """(the fitted weights, the listing id of each slice of those in KEYED) for the next run's warm start."""
        return self.params_, {"listing": self.data_.item_ids[self.kept_]}

    def _probabilities(self, users: np.ndarray) -> np.ndarray:
        """float32 [len(users), kept listings]: the softmax of the decoder's logits from each user's history."""
        import jax

        first = np.asarray(self.inputs_[users] @ self.params_["w0"])
        logits, _ = _decode(self.params_, first, self.variational)
        return np.asarray(jax.nn.softmax(logits, axis=1), np.float32)

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        cols = self.column_[items]
        out = np.zeros((len(users), len(items)), np.float32)
        inside = cols >= 0
        if inside.any():
            out[:, inside] = self._probabilities(users)[:, cols[inside]]
        return out

    def score_pairs(self, users: np.ndarray, cands: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Per pair, the user's probability of the candidate: users in blocks of the scoring budget over the
        kept listings."""
        out = np.zeros(cands.shape, np.float32)
        cols = self.column_[cands]
        step = max(1, SCORE_CELLS // max(1, len(self.kept_)))
        for start in range(0, len(users), step):
            probs = self._probabilities(users[start:start + step])
            part = cols[start:start + step]
            out[start:start + step] = np.where(part >= 0, np.take_along_axis(probs, np.maximum(part, 0), 1), 0.0)
        return out

    def covers(self, users: np.ndarray) -> np.ndarray:
        return bidders(self.data_, users)


def mult_dae(seed: int, epochs: int = 10, warm_epochs: int = 2) -> MultVAE:
    """The denoising variant: the same network, z its mean, no KL term."""
    return MultVAE(variational=False, seed=seed, epochs=epochs, warm_epochs=warm_epochs, name="mult_dae")
