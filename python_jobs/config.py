"""One typed settings object, read from the environment (ENCORE_* variables).

Every knob is listed in docs/operations.md (Settings). Nothing secret has a default: local S3
credentials are generated per state folder, AWS credentials come from the
standard AWS chain (environment or instance role).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from python_jobs.errors import UserError

PROJECT_DIR = Path(__file__).resolve().parent.parent


def _int(name: str, default: int, low: int, high: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise UserError(f"{name}={raw!r} is not an integer; set it to a whole number") from None
    if not low <= value <= high:
        raise UserError(f"{name}={raw!r} is out of range; use a value from {low} to {high}")
    return value


def _number(name: str, raw: str, low: float, high: float = math.inf, low_open: bool = False) -> float:
    """A finite number within [low, high] (or (low, high] when low_open), read from the variable `name`."""
    try:
        value = float(raw)
    except ValueError:
        raise UserError(f"{name}={raw!r} is not a number; set it to e.g. 0.1") from None
    if not math.isfinite(value) or value < low or value > high or (low_open and value == low):
        bounds = f"{'above' if low_open else 'from'} {low:g}" + (f" to {high:g}" if math.isfinite(high) else "")
        raise UserError(f"{name}={raw!r} is out of range; use a finite number {bounds}")
    return value


def _matching(name: str, value: str, pattern: str, what: str) -> str:
    if not re.fullmatch(pattern, value):
        raise UserError(f"{name}={value!r} is not {what}")
    return value


SPARK_MASTER = r"local(\[(\d+|\*)(,\d+)?\])?|spark://[A-Za-z0-9.-]+:\d+(,[A-Za-z0-9.-]+:\d+)*|yarn|k8s://\S+"
JVM_MEMORY = r"[1-9]\d{0,5}[kmgtKMGT]?"
BUCKET = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
ENDPOINT = r"aws|https?://[A-Za-z0-9.\-\[\]:]+(:\d{1,5})?/?"


def check_bucket(name: str, value: str) -> str:
    """One rule for every bucket a setting or flag names (the pipeline's, EMR's, MWAA's)."""
    return _matching(name, value, BUCKET, "an S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)")


def _identifier(name: str, value: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", value):
        raise UserError(f"{name}={value!r} is not a database name; use lowercase letters, digits and _ (at most 63)")
    return value


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise UserError(f"{name}={value!r} is not one of {', '.join(allowed)}")
    return value


DEFAULT_GRID = "rank=16,32;alpha=1,5"
TUNABLE = {"rank": int, "reg_param": float, "alpha": float, "max_iter": int}


TUNABLE_LOW = {"rank": 1, "reg_param": 0, "alpha": 0, "max_iter": 1}


def parse_grid(text: str) -> dict | None:
    """'rank=16,32;alpha=5,20' -> {'rank': [16, 32], 'alpha': [5.0, 20.0]}; '' -> None (no tuning)."""
    if not text.strip():
        return None
    example = "use e.g. rank=16,32;reg_param=0.01,0.1;alpha=5,20"
    grid = {}
    for part in text.split(";"):
        name, _, values = part.partition("=")
        name = name.strip()
        if name not in TUNABLE or not values.strip():
            raise UserError(f"ENCORE_TUNING_GRID={text!r}: part {part!r} is invalid; {example}")
        try:
            grid[name] = [TUNABLE[name](v) for v in values.split(",")]
        except ValueError:
            raise UserError(f"ENCORE_TUNING_GRID={text!r}: values for {name} must be numbers; {example}") from None
        if any(not math.isfinite(v) or v < TUNABLE_LOW[name] for v in grid[name]):
            raise UserError(f"ENCORE_TUNING_GRID={text!r}: {name} must be at least {TUNABLE_LOW[name]}; {example}")
    return grid


EVENTS_PER_BATCH = 500  # events per POST /v1/events, as Firehose's PutRecordBatch


# the recommenders (python_jobs/models), and the ones the daily run fits and blends unless ENCORE_MODELS says
MODELS = ("als", "taste", "item_knn", "user_knn", "ease", "content", "weighted_ratings", "popularity", "mult_vae",
          "mult_dae", "two_tower")
DAILY_MODELS = ("als", "taste", "item_knn", "ease", "content", "popularity")


def _models(value: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    unknown = [n for n in names if n not in MODELS]
    if unknown or not names:
        raise UserError(f"ENCORE_MODELS={value!r}: {'unknown ' + ', '.join(unknown) if unknown else 'empty'}; "
                        f"name some of {', '.join(MODELS)}, comma-separated")
    return names


MODEL_KNOBS = {
    "ENCORE_COUNT_WEIGHT": ("count_weight", float),
    "ENCORE_AMOUNT_WEIGHT": ("amount_weight", float),
    "ENCORE_POPULARITY_HALF_LIFE_DAYS": ("half_life_days", float),
    "ENCORE_MIN_BIDS_FOR_ALS": ("min_bids_for_als", int),
    "ENCORE_CANDIDATES": ("candidates", int),
    "ENCORE_DEEP_EPOCHS": ("deep_epochs", int),
    "ENCORE_DEEP_WARM_EPOCHS": ("deep_warm_epochs", int),
    "ENCORE_DEEP_FULL_EVERY_DAYS": ("deep_full_every_days", float),
}


def _model_settings(env) -> dict:
    """Overrides of the training defaults (python_jobs.models.train.TrainParams) from the environment."""
    values = {}
    for name, (param, kind) in MODEL_KNOBS.items():
        raw = env.get(name)
        if raw:
            value = _number(name, raw, 0, low_open=param == "half_life_days")
            if kind is int and value != int(value):
                raise UserError(f"{name}={raw!r} is not a whole number")
            if param == "candidates" and value < 1:
                raise UserError(f"{name}={raw!r}: ranking needs at least 1 candidate per user (the default is 300)")
            values[param] = kind(value)
    return values


def _as_of(raw: str | None) -> str | None:
    """ENCORE_AS_OF: the time a run is as of (a backfill's day), ISO 8601 in UTC; None means now."""
    if not raw:
        return None
    from datetime import datetime, timezone

    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"ENCORE_AS_OF={raw!r} is not a time; use ISO 8601, e.g. 2026-11-20T00:00:00Z") from None
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    if when > datetime.now(timezone.utc):
        raise UserError(f"ENCORE_AS_OF={raw} is in the future; a run can only be as of now or an earlier time")
    return when.astimezone(timezone.utc).isoformat()


@dataclass(frozen=True)
class Settings:
    """Where the pipeline runs and how it behaves."""

    project_dir: Path = PROJECT_DIR
    state_dir: Path = field(default_factory=lambda: PROJECT_DIR / ".state")
    pg_dsn: str | None = None
    pg_port: int = 54329
    metastore_db: str = "metastore"
    dbt_spark_target: str = "spark"
    spark_master_port: int = 7077
    thrift_port: int = 10000
    s3_endpoint: str | None = None
    s3_port: int = 9079
    region: str = "us-east-1"
    lake_bucket: str = "encore-lake"
    publish_bucket: str = "encore-publish"
    top_n: int = 10
    explore_slots: int = 1  # of each served list, for listings few have seen (models/lists.py)
    promoted_slots: int = 1  # of each served list, for promoted listings that fit the user's taste (models/lists.py)
    url_expiry_seconds: int = 86400
    keep_runs: int = 5
    seed: int = 42
    spark_master: str = "local[2]"
    driver_memory: str = "4g"
    shuffle_partitions: int = 4
    max_reject_rate: float = 0.10
    tuning_grid: dict | None = None
    tune: str = "auto"
    eval_users: int = 10000
    model: dict = field(default_factory=dict)
    models: tuple[str, ...] = DAILY_MODELS
    train_engine: str = "auto"
    frame_engine: str = "auto"
    events_sink: str = "s3"
    use_events: bool = True
    events_buffer_seconds: int = 60
    events_buffer_mb: int = 5
    events_rate_per_key: int = 1000
    events_burst_per_key: int = 5000
    events_spool_max_mb: int = 1024
    api_keys_secret_id: str | None = None
    thrift_secret_id: str | None = None
    max_quality_drop: float = 0.05
    accept_regression: bool = False
    as_of: str | None = None
    take_latest: bool = False
    full_extract: bool = False

    @property
    def local_postgres(self) -> bool:
        return self.pg_dsn is None

    @property
    def local_s3(self) -> bool:
        """True when the project's own S3 server is the store (None means AWS S3)."""
        return self.s3_endpoint == f"http://127.0.0.1:{self.s3_port}"

    @property
    def runs_dir(self) -> Path:
        return self.state_dir / "runs"

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        state = Path(env.get("ENCORE_STATE_DIR") or PROJECT_DIR / ".state").resolve()
        s3_port = _int("ENCORE_S3_PORT", 9079, 1024, 65535)
        endpoint = env.get("ENCORE_S3_ENDPOINT")
        endpoint_value: str | None = endpoint or f"http://127.0.0.1:{s3_port}"
        if endpoint == "aws":
            endpoint_value = None
        expiry = _int("ENCORE_URL_EXPIRY_SECONDS", 86400, 0, 10**9)
        if not 60 <= expiry <= 7 * 24 * 3600:
            raise UserError(
                f"ENCORE_URL_EXPIRY_SECONDS={expiry} is outside what S3 allows; "
                "use 60 (one minute) to 604800 (7 days)"
            )
        max_reject = _number("ENCORE_MAX_REJECT_RATE", env.get("ENCORE_MAX_REJECT_RATE") or "0.10", 0, 1)
        if endpoint:
            _matching("ENCORE_S3_ENDPOINT", endpoint, ENDPOINT, "an S3 endpoint; use aws or http(s)://host:port")
        project = Path(env.get("ENCORE_PROJECT_DIR") or PROJECT_DIR).resolve()
        if not (project / "dbt_project.yml").is_file():
            raise UserError(f"ENCORE_PROJECT_DIR={project} has no dbt_project.yml; point it at the project's folder "
                            "(on EMR the bootstrap action unpacks it to /opt/encore-recs/project)")
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        pg_dsn = env.get("ENCORE_PG_DSN") or None
        if pg_dsn is None and env.get("ENCORE_PG_SECRET_ID"):
            from python_jobs.db_secret import dsn_from_secret

            pg_dsn = dsn_from_secret(env["ENCORE_PG_SECRET_ID"], region)
        return cls(
            project_dir=project,
            state_dir=state,
            pg_dsn=pg_dsn,
            pg_port=_int("ENCORE_PG_PORT", 54329, 1024, 65535),
            spark_master_port=_int("ENCORE_SPARK_MASTER_PORT", 7077, 1024, 65535),
            thrift_port=_int("ENCORE_SPARK_THRIFT_PORT", 10000, 1024, 65535),
            dbt_spark_target=_choice("ENCORE_DBT_SPARK_TARGET", env.get("ENCORE_DBT_SPARK_TARGET") or "spark",
                                     ("spark", "spark_cluster", "emr")),
            metastore_db=_identifier("ENCORE_METASTORE_DB", env.get("ENCORE_METASTORE_DB") or "metastore"),
            s3_endpoint=endpoint_value,
            s3_port=s3_port,
            region=region,
            lake_bucket=check_bucket("ENCORE_LAKE_BUCKET", env.get("ENCORE_LAKE_BUCKET") or "encore-lake"),
            publish_bucket=check_bucket("ENCORE_PUBLISH_BUCKET", env.get("ENCORE_PUBLISH_BUCKET") or "encore-publish"),
            top_n=_int("ENCORE_TOP_N", 10, 1, 1000),
            explore_slots=_int("ENCORE_EXPLORE_SLOTS", 1, 0, 1000),
            promoted_slots=_int("ENCORE_PROMOTED_SLOTS", 1, 0, 1000),
            url_expiry_seconds=expiry,
            keep_runs=_int("ENCORE_KEEP_RUNS", 5, 1, 1000),
            seed=_int("ENCORE_SEED", 42, 0, 2**31 - 1),
            spark_master=_matching("ENCORE_SPARK_MASTER", env.get("ENCORE_SPARK_MASTER") or "local[2]", SPARK_MASTER,
                                   "a Spark master; use local[2], spark://host:port, yarn or k8s://..."),
            driver_memory=_matching("ENCORE_SPARK_DRIVER_MEMORY", env.get("ENCORE_SPARK_DRIVER_MEMORY") or "4g",
                                    JVM_MEMORY, "a JVM memory size such as 4g or 2048m"),
            shuffle_partitions=_int("ENCORE_SHUFFLE_PARTITIONS", 4, 1, 100000),
            max_reject_rate=max_reject,
            eval_users=_int("ENCORE_EVAL_USERS", 10000, 0, 10**9),
            model=_model_settings(env),
            models=_models(env.get("ENCORE_MODELS") or ",".join(DAILY_MODELS)),
            tuning_grid=parse_grid(env.get("ENCORE_TUNING_GRID", DEFAULT_GRID)),
            tune=_choice("ENCORE_TUNE", env.get("ENCORE_TUNE") or "auto", ("auto", "always", "never")),
            train_engine=_choice("ENCORE_TRAIN_ENGINE", env.get("ENCORE_TRAIN_ENGINE") or "auto",
                                 ("auto", "local", "spark")),
            frame_engine=_choice("ENCORE_FRAME_ENGINE", env.get("ENCORE_FRAME_ENGINE") or "auto",
                                 ("auto", "local", "spark")),
            events_sink=_matching("ENCORE_EVENTS_SINK", env.get("ENCORE_EVENTS_SINK") or "s3",
                                  r"s3|firehose:[A-Za-z0-9_.-]{1,64}",
                                  "an events sink; use s3 or firehose:<delivery stream name>"),
            # Firehose's buffering hints allow 0-900 s and 1-128 MiB
            use_events=_choice("ENCORE_USE_EVENTS", env.get("ENCORE_USE_EVENTS") or "true", ("true", "false")) == "true",
            events_buffer_seconds=_int("ENCORE_EVENTS_BUFFER_SECONDS", 60, 0, 900),
            events_buffer_mb=_int("ENCORE_EVENTS_BUFFER_MB", 5, 1, 128),
            # per API key, events a second and the burst a key may send at once (a full batch at least)
            events_rate_per_key=_int("ENCORE_EVENTS_RATE_PER_KEY", 1000, 1, 10**7),
            events_burst_per_key=_int("ENCORE_EVENTS_BURST_PER_KEY", 5000, EVENTS_PER_BATCH, 10**8),
            # the spool's cap: past it POST /v1/events answers 503 (a batch is at most 1 MiB: 2 MB holds one)
            events_spool_max_mb=_int("ENCORE_EVENTS_SPOOL_MAX_MB", 1024, 2, 10**7),
            api_keys_secret_id=_matching("ENCORE_API_KEYS_SECRET_ID", env["ENCORE_API_KEYS_SECRET_ID"],
                                         r"[A-Za-z0-9/_+=.@:-]{1,2048}", "a Secrets Manager secret's name or ARN")
            if env.get("ENCORE_API_KEYS_SECRET_ID") else None,
            # the Thrift server's user and password on EMR: a secret's name, read where the server starts and where
            # dbt's `emr` target connects (locally they are generated into the state folder)
            thrift_secret_id=_matching("ENCORE_SPARK_THRIFT_SECRET_ID", env["ENCORE_SPARK_THRIFT_SECRET_ID"],
                                       r"[A-Za-z0-9/_+=.@:-]{1,2048}", "a Secrets Manager secret's name or ARN")
            if env.get("ENCORE_SPARK_THRIFT_SECRET_ID") else None,
            # the champion-challenger gate: the largest relative drop of the hybrid's nDCG allowed to publish
            max_quality_drop=_number("ENCORE_MAX_QUALITY_DROP", env.get("ENCORE_MAX_QUALITY_DROP") or "0.05", 0, 1),
            accept_regression=_choice("ENCORE_ACCEPT_REGRESSION", env.get("ENCORE_ACCEPT_REGRESSION") or "false",
                                      ("true", "false")) == "true",
            as_of=_as_of(env.get("ENCORE_AS_OF")),
            # a run serves the app (moves `latest`) even when the served run is as of a newer time
            take_latest=_choice("ENCORE_TAKE_LATEST", env.get("ENCORE_TAKE_LATEST") or "false",
                                ("true", "false")) == "true",
            # the extract lands every staged bid, not only those after the lake's watermark
            full_extract=_choice("ENCORE_FULL_EXTRACT", env.get("ENCORE_FULL_EXTRACT") or "false",
                                 ("true", "false")) == "true",
        )
