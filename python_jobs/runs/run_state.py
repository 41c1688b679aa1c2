"""A run's recorded state: what each stage hands on to the next, kept where every stage job can read it.

Stages run in separate processes (spark-submit, EMR steps), possibly on other
machines, so nothing passes through memory: each stage loads the run's state,
does its work, records its outcome and saves. The state lives on S3 beside
the run (`s3://<lake>/runs/<run_id>/summary.json`) and is mirrored to
`<state>/runs/<run_id>/summary.json` for people and tests.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from python_jobs.config import Settings
from python_jobs.errors import UserError
from python_jobs.runs.run_ids import RUN_ID_FORMAT, check_run_id, new_run_id  # noqa: F401 (re-exported)

def state_key(run_id: str) -> str:
    return f"runs/{run_id}/summary.json"


class RunState:
    """The summary of one run: steps with status and seconds, and what stages recorded for later ones."""

    def __init__(self, settings: Settings, run_id: str, data: dict) -> None:
        self.settings = settings
        self.run_id = run_id
        self.data = data

    @classmethod
    def load(cls, settings: Settings, run_id: str, create: bool = True) -> RunState:
        from python_jobs.infra.s3 import s3_client

        check_run_id(run_id)
        client = s3_client(settings)
        try:
            body = client.get_object(Bucket=settings.lake_bucket, Key=state_key(run_id))["Body"].read()
            return cls(settings, run_id, json.loads(body))
        except client.exceptions.NoSuchKey:
            if not create:
                raise UserError(f"run {run_id} has no recorded state in s3://{settings.lake_bucket}/runs/; "
                                "start it from the first stage") from None
        now = datetime.now(timezone.utc).isoformat()
        return cls(settings, run_id, {"run_id": run_id, "started_at": now, "as_of": settings.as_of or now,
                                      "backfill": settings.as_of is not None, "steps": []})

    @property
    def dir(self) -> Path:
        path = self.settings.runs_dir / self.run_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def as_of(self) -> datetime:
        """The run's clock: fixed at its first stage, so a resumed stage sees the same 'now'."""
        return datetime.fromisoformat(self.data["as_of"])

    def done(self, stage: str) -> bool:
        return any(s["stage"] == stage and s["status"] == "ok" for s in self.data["steps"])

    def forget_from(self, stages: list[str]) -> None:
        """Drop the records of these stages (a resume re-runs them)."""
        self.data["steps"] = [s for s in self.data["steps"] if s["stage"] not in stages]
        self.data.pop("status", None)
        self.data.pop("error", None)

    def record(self, stage: str, step: str, status: str, seconds: float, rows=None, error: str | None = None) -> None:
        self.data["steps"] = [s for s in self.data["steps"] if s["stage"] != stage]
        entry = {"stage": stage, "step": step, "status": status, "seconds": round(seconds, 1), "rows": rows,
                 "finished_at": datetime.now(timezone.utc).isoformat()}
        self.data["steps"].append(entry)
        if error is not None:
            self.data["status"], self.data["error"] = "failed", error

    def save(self) -> Path:
        """Write the state here first (so a failure is on record whatever happens to the store), then to the lake,
        where the other stages' processes read it. Either place failing is one UserError saying where the state
        is and how to resume; the other place is still written."""
        from botocore.exceptions import BotoCoreError, ClientError

        from python_jobs.infra.s3 import s3_client

        body = json.dumps(self.data, indent=1, default=str)
        path = self.settings.runs_dir / self.run_id / "summary.json"
        resume = (f"`encore-recs run --run-id {self.run_id} --from "
                  f"{(self.data.get('steps') or [{}])[-1].get('stage', 'stage')}`")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body)
        except OSError as exc:
            local_error = f"{path.parent}: {exc.strerror or type(exc).__name__}"
        else:
            local_error = None
        try:
            s3_client(self.settings).put_object(Bucket=self.settings.lake_bucket, Key=state_key(self.run_id),
                                                Body=body.encode(), ContentType="application/json")
        except (BotoCoreError, ClientError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            where = f"saved at {path}" if local_error is None else f"not saved here either ({local_error})"
            raise UserError(f"the state of run {self.run_id} is {where} but not in the lake ({first}); "
                            f"run `encore-recs up`, then {resume}") from None
        if local_error is not None:
            raise UserError(f"the state of run {self.run_id} is in the lake but could not be written under the state "
                            f"folder ({local_error}); make it writable, then {resume}")
        return path
