"""The deep models' own cadence: a full fit every `deep_full_every_days`, a warm start on the days between.

A deep model (one with `keyed_weights`) fitted by a run leaves its weights in
the lake, per part of the run (`validation`, `test`: the replay's two fits;
`final`: the fit on everything), at `s3://<lake>/models/deep/<part>/<name>.npz`
with what they were fitted on. The next run's fit of the same part starts
from them and trains `deep_warm_epochs` passes instead of `deep_epochs` when
`decide` allows it:

- the saved fit's settings are the model's (layer sizes, listings kept, seed);
- it saw no data after this fit's cutoff (`as_of`): a replay part warm-started
  from a fit on later data would be judged on bids it had learned from;
- its chain of warm starts began with a full fit less than
  `deep_full_every_days` of data time ago.

Listings and tokens the saved fit had keep their learned rows; new ones start
fresh (`gradient.carried`). What each fit did is the summary's `deep_fits`.
Every other model is fitted as it is.
"""

from __future__ import annotations

import io
import json
from dataclasses import fields

import numpy as np

from python_jobs.models.data import DAY

KEY = "models/deep/{part}/{name}.npz"
NOT_SETTINGS = ("epochs", "warm_epochs", "min_steps", "name", "start")


def settings_of(model) -> str:
    """The model's settings that shape its weights or their meaning (not how long it trains), as one string."""
    return json.dumps({f.name: getattr(model, f.name) for f in fields(model) if f.name not in NOT_SETTINGS},
                      sort_keys=True)


def decide(saved: dict | None, settings: str, as_of: float, full_every_days: float) -> tuple[bool, str]:
    """(start from the saved fit?, why) for a fit of data as of `as_of` (epoch seconds)."""
    if saved is None:
        return False, "no earlier fit"
    if saved["settings"] != settings:
        return False, "the model's settings changed"
    if saved["as_of"] > as_of:
        return False, "the saved fit saw data after this fit's cutoff"
    age = (as_of - saved["full_as_of"]) / DAY
    if age >= full_every_days:
        return False, f"the last full fit is {age:.1f} days old (a full fit every {full_every_days:g})"
    return True, f"from run {saved['run_id']}, {age:.1f} days after its full fit"


def to_bytes(params: dict, keys: dict, meta: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps(meta)), **{f"param.{k}": v for k, v in params.items()},
             **{f"key.{k}": np.asarray(v) for k, v in keys.items()})
    return buffer.getvalue()


def from_bytes(body: bytes) -> dict:
    """{"params", "keys", **meta} of `to_bytes`' output (no pickles)."""
    with np.load(io.BytesIO(body), allow_pickle=False) as saved:
        out = json.loads(str(saved["meta"]))
        out["params"] = {k.split(".", 1)[1]: saved[k] for k in saved.files if k.startswith("param.")}
        out["keys"] = {k.split(".", 1)[1]: saved[k] for k in saved.files if k.startswith("key.")}
    return out


class WarmStarts:
    """Fits a run's models: deep ones warm or full as `decide` says, their weights kept for the next run when
    there is a lake (`settings`; None: every fit full, nothing kept, as in `encore-recs evaluate`)."""

    def __init__(self, settings=None, run_id: str = "", full_every_days: float = 7.0):
        self.settings, self.run_id, self.full_every_days = settings, run_id, full_every_days
        self.fits: dict[str, dict] = {}

    def fit(self, model, data, part: str):
        if not hasattr(model, "keyed_weights"):
            return model.fit(data)
        saved = self._load(part, model.name)
        warm, why = decide(saved, settings_of(model), data.as_of, self.full_every_days)
        model.start = saved if warm else None
        model.fit(data)
        model.start = None
        params, keys = model.keyed_weights()
        meta = {"run_id": self.run_id, "as_of": data.as_of, "settings": settings_of(model),
                "full_as_of": saved["full_as_of"] if warm else data.as_of}
        if self.settings is not None and (saved is None or saved["as_of"] <= data.as_of):  # a backfill keeps
            self._save(part, model.name, to_bytes(params, keys, meta))                   # the newer fit
        self.fits[f"{part}/{model.name}"] = {"mode": "warm" if warm else "full", "why": why,
                                             "epochs": model.epochs_run_, "seconds": model.fit_seconds_}
        return model

    def _load(self, part: str, name: str) -> dict | None:
        if self.settings is None:
            return None
        from python_jobs.infra.s3 import read_bytes

        body = read_bytes(self.settings, self.settings.lake_bucket, KEY.format(part=part, name=name))
        return None if body is None else from_bytes(body)

    def _save(self, part: str, name: str, body: bytes) -> None:
        from python_jobs.infra.s3 import s3_client

        s3_client(self.settings).put_object(Bucket=self.settings.lake_bucket, Key=KEY.format(part=part, name=name),
                                            Body=body)
