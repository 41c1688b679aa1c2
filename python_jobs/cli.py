"""`encore-recs`: the one command-line entry point.

Errors a user can cause end as one line on stderr and a non-zero exit.
In local mode every command starts the local stack when it is not running and
leaves it up for the next; `encore-recs down` stops it.
"""

from __future__ import annotations

import argparse
import json
import re
import os
import sys
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

from python_jobs.errors import UserError, unreachable_service
from python_jobs.ingest.raw_schema import RAW_TABLES

MAX_USERS = 10_000_000
TAKE_LATEST_HELP = ("serve this run (move `latest` to it) even when the served run is as of a newer time, as a "
                    "backfill's is not by default; = ENCORE_TAKE_LATEST=true")


def _settings():
    from python_jobs.config import Settings

    return Settings.from_env()


def cmd_up(args) -> None:
    from python_jobs.stack import cluster, postgres, services

    settings = _settings()
    services.ready(settings)
    dsn = re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", postgres.pg_dsn(settings))  # `encore-recs env` has it
    print(f"postgres: {dsn} (Hive metastore: database {settings.metastore_db})")
    print(f"s3: {settings.s3_endpoint or 'AWS'} (buckets {settings.lake_bucket}, {settings.publish_bucket})")
    if args.cluster:
        cluster.up(settings)
        print(f"spark master: {cluster.master_url(settings)}; thrift: 127.0.0.1:{settings.thrift_port} "
              "(dbt --target spark_cluster, its password in `encore-recs env`); "
              "`encore-recs run` now submits each stage to the cluster")


def cmd_down(args) -> None:
    from python_jobs.stack import services

    stopped = services.down(_settings())
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


def cmd_env(args) -> None:
    """Print export lines so that dbt, boto3 and Spark reach the local stack from a shell."""
    from python_jobs.stack import postgres, services, thrift_auth
    from python_jobs.stack.spark import write_spark_defaults

    settings = _settings()
    services.apply_environment(settings)
    names = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", *postgres.pg_env(settings),
             *thrift_auth.thrift_env(settings)]
    for name in names:
        if name in os.environ:
            print(f"export {name}={json.dumps(os.environ[name])}")
    print(f"export SPARK_CONF_DIR={json.dumps(str(write_spark_defaults(settings)))}")
    print(f"export ENCORE_SPARK_THRIFT_HOST=127.0.0.1 ENCORE_SPARK_THRIFT_PORT={settings.thrift_port}")


GENERATED = "generated.json"  # in the state folder: the last generate's users, seed and as-of time


def cmd_generate(args) -> None:
    import time

    from python_jobs.stack import postgres, services
    from python_jobs.ingest.faults import inject
    from python_jobs.ingest.generate import generate, write_raw

    if args.next_day:
        return _next_day(args)
    if not 10 <= args.users <= MAX_USERS:
        raise UserError(f"--users {args.users} is out of range; use 10 to {MAX_USERS:,}")
    if not 0 <= args.days_ago <= 365:
        raise UserError(f"--days-ago {args.days_ago} is out of range; use 0 to 365 (days before today)")
    if not 0 <= args.dirty_rate <= 0.9:
        raise UserError(f"--dirty-rate {args.dirty_rate} is out of range; use 0 to 0.9, e.g. 0.05")
    if not 0 <= args.seed < 2**32:
        raise UserError(f"--seed {args.seed} is out of range; use 0 to {2**32 - 1}")
    settings = _settings()
    (services.ready if args.events else services.up)(settings)  # the lake unreachable stops it before Postgres
    started = time.time()
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    market = generate(args.users, args.seed, today - timedelta(days=args.days_ago))
    # the faults are the export's, not the app's: its events come from the marketplace itself, so they name only
    # users and listings that cleaning keeps (a fault's out-of-range uid has no taste to browse by)
    exported, rejected, normalised = inject(market, args.dirty_rate, args.seed, market.as_of)
    built = time.time() - started
    counts = write_raw(postgres.pg_dsn(settings), exported)
    if args.events:
        counts["events"], objects = _land_events(settings, market, args.seed)
    # what the app's sessions (encore-recs app-sessions) need to draw the same users' taste again
    (settings.state_dir / GENERATED).write_text(json.dumps({"users": args.users, "seed": args.seed,
                                                            "as_of": market.as_of, "day": 0,
                                                            "dirty_rate": args.dirty_rate}))
    total = time.time() - started
    rows = sum(counts.values())
    print("generated " + ", ".join(f"{name}={n}" for name, n in counts.items()))
    print(f"{rows} rows: built in {built:.1f}s, written to Postgres in {total - built:.1f}s; "
          f"{rows / total:,.0f} rows/s end to end")
    if rejected:
        print("injected faults (expected rejections): " + json.dumps(rejected))
        print("injected stray case/whitespace (expected repaired): " + json.dumps(normalised))


def _next_day(args) -> None:
    """`generate --next-day`: the generated marketplace's next day appended to the raw tables, and its app events
    landed; the marketplace is the one the state folder's record names."""
    import time

    from python_jobs.events.synthetic import app_events, land
    from python_jobs.infra.s3 import s3_client
    from python_jobs.ingest.next_day import grown, next_day, write_day
    from python_jobs.stack import postgres, services

    settings = _settings()
    record = settings.state_dir / GENERATED
    if not record.is_file():
        raise UserError("no generated marketplace to continue: run `encore-recs generate --days-ago 3` first")
    made = json.loads(record.read_text())
    if made.get("dirty_rate"):  # the export's injected rows hold the ids a new day would take
        raise UserError(f"--next-day continues a clean marketplace; this one was generated with --dirty-rate "
                        f"{made['dirty_rate']}: generate it again without")
    day = made.get("day", 0) + 1
    ends = made["as_of"] + day * 86400
    when = f"{datetime.fromtimestamp(ends, timezone.utc):%Y-%m-%d %H:%M} UTC"
    if ends > time.time():
        raise UserError(f"day {day} of this marketplace ends {when}, which has not come yet; generate it further "
                        "back (`encore-recs generate --days-ago N`) to have N days to add")
    (services.ready if args.events else services.up)(settings)
    started = time.time()
    market = grown(made["users"], made["seed"], made["as_of"], day - 1)
    later, change = next_day(market, made["seed"], day, made["users"])
    counts = write_day(postgres.pg_dsn(settings), change)
    if args.events:
        events = app_events(later, made["seed"] * 10_000 + day, days=1.0, prefix=f"gen{made['seed']}-day{day}")
        counts["events"] = len(events)
        land(s3_client(settings), settings.lake_bucket, events, f"gen{made['seed']}-day{day}")
    record.write_text(json.dumps({**made, "day": day}))
    print(f"day {day} (to {when}) added: "
          + ", ".join(f"{name}={n}" for name, n in counts.items()) + f" in {time.time() - started:.1f}s")


def _land_events(settings, market, seed: int) -> tuple[int, int]:
    """The generated app events, landed as the collector lands them; the lake's earlier events (and the ingest
    checkpoint) go, as generate replaces the raw tables. (events, objects)."""
    from python_jobs.events.landing import clear_landed
    from python_jobs.events.synthetic import app_events, land
    from python_jobs.infra.s3 import s3_client

    client = s3_client(settings)
    clear_landed(client, settings.lake_bucket)
    events = app_events(market, seed)
    return len(events), land(client, settings.lake_bucket, events, f"gen{seed}")


def cmd_app_sessions(args) -> None:
    import numpy as np

    from python_jobs.events.synthetic import land
    from python_jobs.infra.s3 import s3_client
    from python_jobs.ingest.next_day import grown
    from python_jobs.publish.publish import read_latest
    from python_jobs.serving.app_sessions import sessions
    from python_jobs.serving.loader import load_run
    from python_jobs.stack import services

    if not 0 < args.share <= 1:
        raise UserError(f"--share {args.share} is out of range; use a share of the users above 0, up to 1")
    settings = _settings()
    record = settings.state_dir / GENERATED
    if not record.is_file():
        raise UserError("the app's users are a generated marketplace's: run `encore-recs generate` first")
    made = json.loads(record.read_text())
    services.ready(settings)
    latest = read_latest(settings)
    if latest is None:
        raise UserError("nothing is published yet: run `encore-recs run` first, then open the app")
    client = s3_client(settings)
    run = load_run(client, settings.publish_bucket, latest["manifest_key"])
    market = grown(made["users"], made["seed"], made["as_of"], made.get("day", 0))  # with its days since
    everyone = market.users["uid"].to_numpy()
    rng = np.random.default_rng(args.seed)
    uids = np.sort(rng.choice(everyone, round(len(everyone) * args.share), replace=False))
    events = sessions(run, market.truth, uids, datetime.now(timezone.utc), args.seed)
    objects = land(client, settings.lake_bucket, events, f"app{args.seed}")
    counts = events["type"].value_counts()
    print(f"{events['session_id'].nunique()} sessions on run {run.run_id}: " + ", ".join(
        f"{kind}={int(counts.get(kind, 0))}" for kind in ("impression", "view", "watch", "bid"))
        + f"; landed in {objects} objects, ingested by the next run (experiments in models/experiments)")


def cmd_load(args) -> None:
    from python_jobs.stack import postgres, services
    from python_jobs.ingest.load import load_csv

    settings = _settings()
    if not args.csv.is_file():
        raise UserError(f"{args.csv}: no such file; pass --csv PATH to a CSV export")
    services.up(settings)
    table = "user_interests" if args.table == "interests" else args.table
    rows = load_csv(postgres.pg_dsn(settings), table, args.csv, replace=args.replace)
    print(f"loaded {rows} rows from {args.csv} into raw.{table}")


def cmd_run(args) -> None:
    from orchestration.local_runner import run_pipeline

    from python_jobs.jobs import served_line
    from python_jobs.runs.run_ids import check_run_id

    if args.run_id is not None:
        check_run_id(args.run_id)
    if args.start and not args.run_id:
        raise UserError("--from resumes a run: give its id with --run-id (see the runs under .state/runs/)")
    if args.accept_regression:
        os.environ["ENCORE_ACCEPT_REGRESSION"] = "true"  # read by the publish stage, in whichever process it runs
    if args.as_of:
        os.environ["ENCORE_AS_OF"] = args.as_of
    if args.full_extract:
        os.environ["ENCORE_FULL_EXTRACT"] = "true"  # read by the extract stage, in whichever process it runs
    _take_latest(args)
    summary = run_pipeline(_settings(), run_id=args.run_id, start=args.start)
    print(f"summary: {summary['summary_path']}")
    print(f"report:  {summary['report']}")
    metrics, k = summary["evaluation"]["metrics"], summary["evaluation"]["k"]
    print("replay (each model on what users bid on after the cutoff; the hybrid is what is published):")
    width = max(map(len, metrics))
    for model, scores in metrics.items():
        print(f"  {model:>{width}}: nDCG@{k}={scores['ndcg']:.4f} precision={scores['precision']:.4f}")
    print("manifest URL (valid until it expires):")
    print(summary["manifest_url"])
    print(served_line(summary))


def _take_latest(args) -> None:
    if args.take_latest:
        os.environ["ENCORE_TAKE_LATEST"] = "true"  # read by the publish stage, in whichever process it runs


def cmd_step(args) -> None:
    """One stage as its own job, for one run id (what spark-submit and EMR steps run)."""
    from orchestration.local_runner import prepare
    from python_jobs.stack import services
    from python_jobs.jobs import StageContext, run_stage
    from python_jobs.runs.run_ids import check_run_id

    check_run_id(args.run_id)
    if args.take_latest and args.stage != "publish":
        raise UserError(f"--take-latest moves `latest` when a run is published: use it with `step publish`, "
                        f"not `step {args.stage}`")
    _take_latest(args)
    settings = _settings()
    services.ready(settings)
    state, todo = prepare(settings, args.run_id, args.stage)
    try:
        run_stage(StageContext(settings, state), todo[0].name, todo[0].title)
    except UserError:
        raise
    except Exception as exc:
        from orchestration.local_runner import failure_line

        raise UserError(failure_line(settings, args.run_id, exc)) from exc


def cmd_history(args) -> None:
    """Record a run in the history (again), rebuild the run_history marts with their tests, rewrite the morning
    report: what every run does when it ends, for the DAG's last task and for the data team."""
    from python_jobs.history import history_job
    from python_jobs.runs.run_ids import check_run_id
    from python_jobs.stack import services

    if args.run_id is not None:
        check_run_id(args.run_id)
    settings = _settings()
    services.ready(settings)
    done = history_job.after_run(settings, args.run_id)
    if done["warnings"]:
        raise UserError("the history is not complete; see the warning above")
    print(f"history: {done.get('history_rows', 0)} rows recorded, {done.get('history_nodes', 0)} dbt nodes built")


def cmd_maintain(args) -> None:
    """Iceberg upkeep of the lake's tables: expire old untagged snapshots, compact small files, weekly remove
    orphan files; what each cost, per table, printed and kept in the state folder."""
    from python_jobs.runs.maintenance import maintain
    from python_jobs.stack import metastore_locks, services
    from python_jobs.stack.spark import get_spark

    if not 1 <= args.expire_days <= 3650:
        raise UserError(f"--expire-days {args.expire_days} is out of range; use 1 to 3650")
    if not 1 <= args.retain_last <= 1000:
        raise UserError(f"--retain-last {args.retain_last} is out of range; use 1 to 1000")
    settings = _settings()
    services.ready(settings)
    with metastore_locks.kept(settings):  # its commits may follow a run killed inside one
        report = maintain(get_spark(settings), settings.state_dir / "maintenance.json",
                          expire_days=args.expire_days, retain_last=args.retain_last,
                          orphans=True if args.orphans else None)
    for table, steps in report["tables"].items():
        expire, compact = steps["expire"], steps["compact"]
        line = (f"{table}: expire {expire['seconds']:.1f}s ({expire.get('deleted_manifest_lists_count', 0)} "
                f"snapshots, {expire.get('deleted_data_files_count', 0)} data files); compact "
                f"{compact['seconds']:.1f}s ({compact.get('rewritten_data_files_count', 0)} files into "
                f"{compact.get('added_data_files_count', 0)})")
        if "orphans" in steps:
            line += f"; orphans {steps['orphans']['seconds']:.1f}s ({steps['orphans']['rows']} files removed)"
        print(line)
    print(f"maintain: {len(report['tables'])} tables in {report['seconds']:.1f}s; orphan files "
          f"{'removed' if report['orphans_ran'] else 'not due (weekly; --orphans forces)'}")


def cmd_serve(args) -> None:
    """The API and web page over the latest published run (polled; swapped only when checked), and the app's
    events in (spooled, then landed on S3 in the background)."""
    import logging
    import signal
    import threading

    import uvicorn

    from python_jobs.stack import services
    from python_jobs.events.collector import Collector
    from python_jobs.events.landing import make_sink
    from python_jobs.events.spool import Spool
    from python_jobs.serving.app import build_app
    from python_jobs.serving.fresh import FreshEvents
    from python_jobs.serving.keys import key_store
    from python_jobs.serving.limits import TokenBuckets
    from python_jobs.models.rules import RULES, WatchedRules, load_rules
    from python_jobs.serving.loader import RunHolder

    if not 1 <= args.port <= 65535:
        raise UserError(f"--port {args.port} is out of range; use 1 to 65535")
    if not 1 <= args.poll_seconds <= 86400:
        raise UserError(f"--poll-seconds {args.poll_seconds} is out of range; use 1 to 86400")
    settings = _settings()
    services.ready(settings)  # the publish bucket to read, the lake bucket the events land in
    logging.basicConfig(level=logging.INFO, format="encore-recs serve: %(message)s")
    keys = key_store(settings)
    if not keys.count():
        print(f"encore-recs serve: no API keys yet ({keys.backend}): every /v1 call is refused until one is "
              "created: encore-recs keys create --scope read,events", file=sys.stderr)
    rules_file = args.rules or RULES
    if rules_file.exists():
        load_rules(rules_file)  # a wrong file is one line now, not an error log at every request
    holder = RunHolder(settings)
    holder.check()
    fresh = FreshEvents()
    spool = Spool(settings.state_dir / "events" / "spool", settings.events_buffer_mb * 1024 * 1024,
                  settings.events_buffer_seconds, max_total=settings.events_spool_max_mb * 1024 * 1024)
    buckets = TokenBuckets(settings.events_rate_per_key, settings.events_burst_per_key)
    collector = Collector(spool, make_sink(settings), on_event=fresh.add)
    stop = threading.Event()
    threading.Thread(target=holder.poll, args=(args.poll_seconds, stop), daemon=True).start()
    delivery = threading.Thread(target=collector.run, args=(stop,), name="events-delivery", daemon=True)
    delivery.start()
    print(f"serving http://{args.host}:{args.port}/ (API under /v1 with `Authorization: Bearer <key>`, OpenAPI at "
          f"/openapi.json; events in at POST /v1/events, landed every {settings.events_buffer_seconds} s); Ctrl-C or "
          "SIGTERM stops")
    # uvicorn stops gracefully on SIGINT and SIGTERM, then raises the signal again under the handler it found:
    # Python's for SIGINT (KeyboardInterrupt, so the `finally` below lands the buffer), the default for SIGTERM
    # (the process ends at once, acknowledged events left in the spool). SIGTERM is what kill, systemd,
    # Kubernetes and ECS send: it takes Ctrl-C's path.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        uvicorn.run(build_app(holder, collector, fresh, keys=keys, buckets=buckets, rules=WatchedRules(rules_file)),
                    host=args.host, port=args.port,
                    log_level="warning", access_log=False)
    finally:
        stop.set()
        delivery.join(timeout=30)  # the buffered events land now, or stay spooled for the next start
        signal.signal(signal.SIGTERM, previous)
        spool.close()


def cmd_keys(args) -> None:
    """The API's keys: create (the key printed once, alone on the last line), list, revoke."""
    from python_jobs.serving.keys import KeyFile, key_store, parse_scopes
    from python_jobs.stack.state_folder import make_private

    settings = _settings()
    store = key_store(settings)
    if isinstance(store.backend, KeyFile):
        make_private(settings.state_dir)
    if args.action == "create":
        entry, key = store.create(parse_scopes(args.scope), args.name)
        print(f"created API key {entry.id} ({entry.name}, scope {','.join(entry.scopes)}) in {store.backend}, which "
              "keeps only its hash: copy the key now, it is not shown again; send it as `Authorization: Bearer <key>`")
        print(key)
    elif args.action == "list":
        keys = store.list()
        if not keys:
            print(f"no API keys in {store.backend}; create one: encore-recs keys create --scope read")
        for entry in keys:
            print(f"{entry.id}  {entry.name:<24} {','.join(entry.scopes):<12} created {entry.created}")
    else:
        entry = store.revoke(args.id)
        print(f"revoked API key {entry.id} ({entry.name}): a running serve refuses it from its next call")


def cmd_expectations(args) -> None:
    from python_jobs.quality.suites import write_project

    settings = _settings()
    names = write_project(settings.project_dir / "expectations")
    print("wrote suites and checkpoints: " + ", ".join(names))


def cmd_dbt(args) -> None:
    """dbt with the local stack's environment, in-process (so `--target spark` gets the configured session)."""
    from python_jobs.stack import services
    from python_jobs.infra.dbt_runner import run_dbt
    from python_jobs.stack.spark import get_spark

    settings = _settings()
    services.up(settings)
    dbt_args = [a for a in args.dbt_args if a != "--"]
    if "spark" in dbt_args:
        get_spark(settings)
    run_dbt(settings, dbt_args)


def cmd_deploy(args) -> None:
    """Build the wheel; upload it, the dbt project, the bootstrap script and the DAG for EMR and MWAA."""
    import os
    import re

    from orchestration.deploy import deploy
    from orchestration.emr import EmrSettings
    from python_jobs.stack import services
    from python_jobs.config import check_bucket
    from python_jobs.infra.s3 import s3_client

    overrides = {"ENCORE_EMR_ARTIFACT_BUCKET": args.artifact_bucket, "ENCORE_EMR_LOG_BUCKET": args.log_bucket}
    emr = EmrSettings.from_env({**os.environ, **{k: v for k, v in overrides.items() if v is not None}})
    check_bucket("--dags-bucket", args.dags_bucket)
    if not re.fullmatch(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*/?", args.dags_prefix) or ".." in args.dags_prefix:
        raise UserError(f"--dags-prefix={args.dags_prefix!r} is not a folder in a bucket; use e.g. dags")
    settings = _settings()
    if settings.local_s3:
        services.ready(settings)
    where = settings.s3_endpoint or "AWS S3"
    for upload in deploy(s3_client(settings), emr, args.dags_bucket, args.dags_prefix):
        print(f"uploaded {upload.uri} ({len(upload.body):,} bytes)")
    print(f"to {where}; MWAA reads s3://{args.dags_bucket}/{args.dags_prefix.strip('/')}/ and "
          f"s3://{args.dags_bucket}/requirements.txt; EMR's bootstrap reads s3://{emr.artifact_bucket}/{emr.bootstrap_key}")


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are the CLI's one line, not a usage block and a second error line."""

    argv: list[str] = []

    def error(self, message: str):
        if "required" in message:  # argparse reports a missing argument before an unknown flag: name the flag first
            known = self._option_string_actions
            unknown = [a for a in _Parser.argv if a.startswith("--") and not any(
                option.startswith(a.split("=", 1)[0]) for option in known)]
            if unknown:
                message = f"unrecognized arguments: {' '.join(unknown)}"
        print(f"encore-recs: error: {message}; see `{self.prog} --help`", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    from orchestration.stages import NAMES
    from python_jobs.runs.run_ids import RUN_ID_FORMAT

    parser = _Parser(prog="encore-recs", description="Encore recommendations pipeline")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the local stack (Postgres with the Hive metastore, S3)")
    up.add_argument("--cluster", action="store_true",
                    help="also a Spark standalone master and worker and the Thrift server on loopback")
    up.set_defaults(fn=cmd_up)
    sub.add_parser("down", help="stop the local stack").set_defaults(fn=cmd_down)
    sub.add_parser("env", help="print export lines for dbt/boto3/Spark in a shell").set_defaults(fn=cmd_env)
    gen = sub.add_parser("generate", help="synthetic marketplace data into the raw Postgres tables")
    gen.add_argument("--users", type=int, default=1000)
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument("--dirty-rate", type=float, default=0.0, help="share of faulty rows to mix in, e.g. 0.05")
    gen.add_argument("--no-events", dest="events", action="store_false",
                     help="no app events (views, watches, likes, shares) landed in the lake beside the bids")
    gen.add_argument("--days-ago", type=int, default=0,
                     help="the marketplace as of this many days before today, leaving days for --next-day")
    gen.add_argument("--next-day", action="store_true",
                     help="append the generated marketplace's next day (users, listings, bids, ended auctions, "
                          "events) to what is there")
    gen.set_defaults(fn=cmd_generate)
    sessions = sub.add_parser("app-sessions", help="the generated users open the app: impressions of what serve "
                              "shows them (their experiment variant's list) and their responses, landed as events")
    sessions.add_argument("--share", type=float, default=1.0, help="share of the generated users who open it")
    sessions.add_argument("--seed", type=int, default=1, help="seeds the sessions (a new seed, new sessions)")
    sessions.set_defaults(fn=cmd_app_sessions)
    load = sub.add_parser("load", help="load a CSV export into a raw Postgres table (all or nothing)")
    load.add_argument("--table", required=True, choices=[*RAW_TABLES, "interests"])
    load.add_argument("--csv", required=True, type=Path)
    load.add_argument("--replace", action="store_true", help="empty the table first (same transaction)")
    load.set_defaults(fn=cmd_load)
    run = sub.add_parser("run", help="the whole pipeline on the configured environment")
    run.add_argument("--run-id", default=None, help=f"reuse a run id (re-publishing is idempotent); {RUN_ID_FORMAT}")
    run.add_argument("--from", dest="start", choices=NAMES, default=None,
                     help="resume the run (with --run-id) from this stage; the stages before it are not run again")
    run.add_argument("--accept-regression", action="store_true",
                     help="publish even when today's replay is worse than the published run's beyond "
                          "ENCORE_MAX_QUALITY_DROP (recorded in the summary with who ran it: ENCORE_OPERATOR or the "
                          "OS user)")
    run.add_argument("--as-of", default=None, metavar="TIME",
                     help="a backfill: the run is as of this time (ISO 8601, UTC), popularity, recency and the "
                          "replay with it; = ENCORE_AS_OF. A resumed run keeps the time it started with")
    run.add_argument("--take-latest", action="store_true", help=TAKE_LATEST_HELP)
    run.add_argument("--full-extract", action="store_true",
                     help="land every staged bid on S3 again and replace the lake's copy, not only the bids after "
                          "its watermark; = ENCORE_FULL_EXTRACT=true")
    run.set_defaults(fn=cmd_run)
    history = sub.add_parser("history", help="record a run in the history, rebuild the run_history marts "
                                             "(and their tests) and the morning report")
    history.add_argument("--run-id", default=None, help=f"the run to record; without it, only rebuild. {RUN_ID_FORMAT}")
    history.set_defaults(fn=cmd_history)
    maintain = sub.add_parser("maintain", help="Iceberg upkeep: expire old snapshots (never a published run's "
                                               "tag), compact small files, weekly remove orphan files")
    maintain.add_argument("--expire-days", type=int, default=7, help="expire untagged snapshots older than this")
    maintain.add_argument("--retain-last", type=int, default=3, help="keep at least this many snapshots a table")
    maintain.add_argument("--orphans", action="store_true", help="remove orphan files now, not only when a week "
                                                                 "has passed since the last removal")
    maintain.set_defaults(fn=cmd_maintain)
    step = sub.add_parser("step", help="one stage as its own job: " + ", ".join(NAMES))
    step.add_argument("stage", choices=NAMES)
    step.add_argument("--run-id", required=True, help=RUN_ID_FORMAT)
    step.add_argument("--take-latest", action="store_true", help="with `publish`: " + TAKE_LATEST_HELP)
    step.set_defaults(fn=cmd_step)
    serve = sub.add_parser("serve", help="API and web page over the latest published run; the app's events in")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--poll-seconds", type=float, default=30.0, help="how often to look for a newer run")
    serve.add_argument("--rules", type=Path, default=None, help=(
        "the list rules applied at every request, read again when the file changes (default: the dbt seed "
        "seeds/list_rules.csv; without the file, the rules each run was published with)"))
    serve.set_defaults(fn=cmd_serve)
    keys = sub.add_parser("keys", help="the API's keys: create (printed once), list, revoke")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="a new key, printed once on the last line; only its hash is kept")
    create.add_argument("--scope", required=True, help="read (the lists and the run), events (POST /v1/events) or "
                                                       "read,events (the web page, which records clicks)")
    create.add_argument("--name", default="unnamed", help="who holds it, e.g. app-backend")
    actions.add_parser("list", help="every key: id, name, scopes, created (never the key)")
    revoke = actions.add_parser("revoke", help="refuse a key from now on, without restarting serve")
    revoke.add_argument("id", help="the key's id, as `keys list` shows it")
    keys.set_defaults(fn=cmd_keys)
    dep = sub.add_parser("deploy", help="build the wheel and upload it, the dbt project and the DAG for EMR and MWAA "
                         "(to ENCORE_S3_ENDPOINT; `aws` for AWS)")
    dep.add_argument("--artifact-bucket", help="the bucket EMR's bootstrap reads (default ENCORE_EMR_ARTIFACT_BUCKET)")
    dep.add_argument("--log-bucket", help="EMR's log bucket (default ENCORE_EMR_LOG_BUCKET)")
    dep.add_argument("--dags-bucket", required=True, help="the MWAA environment's bucket")
    dep.add_argument("--dags-prefix", default="dags", help="the MWAA DAG folder in that bucket (default dags)")
    dep.set_defaults(fn=cmd_deploy)
    sub.add_parser("expectations", help="rewrite the Great Expectations project under expectations/").set_defaults(
        fn=cmd_expectations
    )
    dbt = sub.add_parser("dbt", help="run dbt against the local stack, e.g. encore-recs dbt -- build --target pg")
    dbt.add_argument("dbt_args", nargs=argparse.REMAINDER)
    dbt.set_defaults(fn=cmd_dbt)
    from python_jobs.evaluate_cli import add_evaluate_parser

    add_evaluate_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    _Parser.argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        args.fn(args)
    except UserError as exc:
        print(f"encore-recs: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("encore-recs: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        line = unreachable_service(exc)
        if line is None:
            raise
        print(f"encore-recs: error: {line}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
