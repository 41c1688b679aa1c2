"""`make bench USERS=N`: generate N users, run the pipeline, print a table per stage, then Spark ALS beside `implicit`.

Runs on a state folder and ports of its own (ENCORE_STATE_DIR, default /tmp/encore-bench-state) and stops its
stack at the end. `--cluster` runs the stages on the local Spark cluster instead of in process.

Per stage: seconds, the stage's input rows (raw rows for `stage`, rows extracted, bids landed for `marts` and
`validate-inputs`, interactions for `train`, recommendation rows for `validate-outputs`, rows published),
rows per second, and the peak resident memory of every process of the stack (sampled every second).

Then, on the same interactions (the run's marts.fct_user_item_interactions, weighted as training weights
them) and the run's ALS parameters: the pipeline's ALS fit and the top 10 of every user over every listing
on each engine (`local`: implicit in this process; `spark`: Spark MLlib), beside the library `implicit`
called directly, with its own top-N, doing the same work with the same rank, regularisation, alpha and
iterations (lists leave out what each user bid on, in both).

Then every user's lists on each ranking engine from the same fitted models and blend: in process, and on
Spark (`mapInPandas` over blocks of users; local mode, or the cluster's executors with `--cluster`), in
seconds and list rows. `--ranking-only local spark` does only that, on a generated marketplace in this
process, without the pipeline or the stack (`--users 100000 --ranking-only spark`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "python_jobs.cli"]


def _env(state: Path) -> dict[str, str]:
    return {**os.environ, "ENCORE_STATE_DIR": str(state), "ENCORE_PG_PORT": "55701", "ENCORE_S3_PORT": "55702",
            "ENCORE_SPARK_MASTER_PORT": "55703", "ENCORE_SPARK_THRIFT_PORT": "55704"}


def _cli(env, *args, quiet=True):
    done = subprocess.run([*CLI, *args], env=env, cwd=ROOT, text=True, stdin=subprocess.DEVNULL,
                          capture_output=quiet)
    if done.returncode != 0:
        sys.exit(f"bench: `encore-recs {' '.join(args)}` failed: {(done.stderr or '').strip()[-500:]}")
    return done.stdout


def _input_rows(step: dict, summary: dict) -> int | None:
    rows = step.get("rows")
    bids = next((r["clean"] for r in summary.get("reconciliation", []) if r["table"] == "bids"), None)
    by_stage = {
        "stage": lambda: sum(r["raw"] for r in summary["reconciliation"]),
        "extract": lambda: sum(rows.values()),
        "events": lambda: rows.get("lines"),
        "marts": lambda: bids,
        "validate-inputs": lambda: bids,
        "train": lambda: rows.get("interactions"),
        "validate-outputs": lambda: next(s["rows"]["recommendations"] for s in summary["steps"] if s["stage"] == "train"),
        "publish": lambda: sum(v for v in rows.values() if isinstance(v, int)),
    }
    try:
        return by_stage[step["stage"]]()
    except (KeyError, TypeError, AttributeError):
        return None


def stage_table(summary: dict, wall: float) -> list[str]:
    """The run's table: a line per stage, then the history step on its own line (it runs after publish, so the
    app has the run before it starts; its seconds are in the wall time, not in any stage's), then the wall."""
    lines = ["| stage | seconds | input rows | rows/s | Spark jobs | peak RSS MB (python / JVM) |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for step in summary["steps"]:
        rows = _input_rows(step, summary)
        rate = f"{rows / step['seconds']:,.0f}" if rows and step["seconds"] else ""
        memory = step.get("peak_memory", {})
        rss = f"{memory.get('python_mb', 0):,.0f} / {memory.get('jvm_mb', 0):,.0f}" if memory else ""
        lines.append(f"| {step['stage']} | {step['seconds']:.1f} | {f'{rows:,}' if rows else ''} | {rate} | "
                     f"{step.get('spark_jobs', '')} | {rss} |")
    history = summary.get("history") or {}
    if history.get("seconds") is not None:
        lines.append(f"| history (after publish: run_history marts, morning report) | {history['seconds']:.1f} | "
                     f"| | | |")
    lines.append(f"| **wall** | **{wall:.1f}** | | | | |")
    return lines


def _timed_run(env, state: Path) -> tuple[dict, float, dict, str]:
    """One `encore-recs run`: its summary, wall seconds, the stack's peak memory and its run id."""
    sampler = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "peak_rss.py")], stdout=subprocess.PIPE,
                               text=True)
    began = time.time()
    out = _cli(env, "run")
    wall = time.time() - began
    sampler.send_signal(signal.SIGTERM)
    peaks = json.loads(sampler.communicate()[0] or "{}")
    run_id = next(line.split()[0].strip("[]") for line in out.splitlines() if line.startswith("[2"))
    return json.loads((state / "runs" / run_id / "summary.json").read_text()), wall, peaks, run_id


def _print_run(title: str, summary: dict, wall: float, peaks: dict, run_id: str) -> None:
    print(f"\n## {title}: {wall:.1f} s wall (run {run_id})\n")
    print("\n".join(stage_table(summary, wall)))
    engines = summary.get("engine", {})
    print("\nEngines: " + "; ".join(f"{step} {engines[step]} ({engines.get(step + '_reason', '')})"
                                     for step in ("als", "ranking", "tables", "gates", "publish") if step in engines))
    print("\nPeak resident memory, MB: " + ", ".join(f"{kind} {mb:,}" for kind, mb in peaks.items()))


def pipeline(users: int, cluster: bool, state: Path, rerun: bool = True, bids_only: bool = True,
             fresh: bool = True, next_day: bool = True) -> dict:
    """The first run on a generated marketplace (its 14 days of app events included; as of yesterday), then,
    with `rerun`, a run with nothing new (the daily re-run: incremental marts, events already ingested), with
    `next_day` the run of the day after (`generate --next-day`: a day of new users, listings, bids and events),
    then with `bids_only` the first run re-trained without the events. Not `fresh`: the state's marketplace as
    it is (the last `generate` on it, e.g. the in-process run's before the same scale on the cluster)."""
    env = _env(state)
    where = "local cluster" if cluster else "in process"
    _cli(env, "down")
    _cli(env, "up", *(["--cluster"] if cluster else []))
    if fresh:
        began = time.time()
        made = _cli(env, "generate", "--users", str(users), "--days-ago", "1").strip().splitlines()
        print(f"\ngenerate --users {users:,} --days-ago 1: {time.time() - began:.1f} s ({made[-1] if made else ''})")
    summary, wall, peaks, run_id = _timed_run(env, state)
    _print_run(f"encore-recs run, {users:,} users, {where}, first run", summary, wall, peaks, run_id)
    tuning = summary.get("evaluation", {}).get("tuning_source")
    metrics = summary.get("evaluation", {}).get("metrics", {})
    print(f"Tuning: {tuning}. nDCG@10: " + ", ".join(f"{m} {v['ndcg']:.4f}" for m, v in metrics.items()))
    candidates = summary.get("candidates")
    if candidates:
        print(f"Candidates: {json.dumps(candidates)}")
    if rerun:
        _print_run(f"encore-recs run, {users:,} users, {where}, daily re-run with nothing new",
                   *_timed_run(env, state))
    if next_day and fresh:
        began = time.time()
        added = _cli(env, "generate", "--next-day").strip().splitlines()
        print(f"\ngenerate --next-day: {time.time() - began:.1f} s ({added[-1] if added else ''})")
        _print_run(f"encore-recs run, {users:,} users, {where}, the next day (a day of new data)",
                   *_timed_run(env, state))
    if not bids_only:
        return summary
    _cli({**env, "ENCORE_USE_EVENTS": "false"}, "run", "--run-id", run_id, "--from", "train")
    bids_only = json.loads((state / "runs" / run_id / "summary.json").read_text())["evaluation"]["metrics"]
    print("Replay nDCG@10, with the app's events / bids only: " + ", ".join(
        f"{m} {metrics[m]['ndcg']:.4f} / {bids_only[m]['ndcg']:.4f}" for m in metrics if m in bids_only))
    return summary


def als_side_by_side(state: Path, params: dict, n: int = 10) -> None:
    """The pipeline's ALS model on each engine (fit, then the top n of every user over all listings, as the
    pipeline computes them) against the library implicit called directly on the same matrix."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    os.environ.update(_env(state))
    from python_jobs.stack import services
    from python_jobs.config import Settings
    from python_jobs.models import TrainParams
    from python_jobs.models.als import ALSModel
    from python_jobs.models.base import top_n
    from python_jobs.stack.spark import get_spark
    from python_jobs.models.train import load_marts

    settings = Settings.from_env()
    services.ready(settings)  # also exports the local S3 server's credentials to this process
    spark = get_spark(settings)
    train_params = TrainParams(**params)
    data = load_marts(spark, train_params, time.time())[0]
    matrix = data.strength
    everyone, listings = np.arange(data.n_users), np.arange(data.n_items)
    rows = []
    for engine in ("local", "spark"):
        began = time.time()
        model = ALSModel(spark, rank=train_params.rank, reg_param=train_params.reg_param, alpha=train_params.alpha,
                         max_iter=train_params.max_iter, seed=train_params.seed, engine=engine).fit(data)
        fit = time.time() - began
        began = time.time()
        top_n(model, data, everyone, listings, n)
        rows.append((f"pipeline ALS, engine {engine}", fit, time.time() - began))

    from implicit.cpu.als import AlternatingLeastSquares

    confidence = matrix.astype(np.float32, copy=True)
    confidence.data = 1 + train_params.alpha * confidence.data
    with threadpool_limits(1, "blas"):
        library = AlternatingLeastSquares(factors=train_params.rank, regularization=train_params.reg_param,
                                          alpha=1.0, iterations=train_params.max_iter,
                                          random_state=train_params.seed, num_threads=0,
                                          calculate_training_loss=False)
        began = time.time()
        library.fit(confidence, show_progress=False)
        lib_fit = time.time() - began
        began = time.time()
        library.recommend(everyone, confidence, N=n, filter_already_liked_items=True)
        rows.append((f"implicit {_version('implicit')} directly (its own top-N)", lib_fit, time.time() - began))
    spark.stop()

    print(f"\n## ALS side by side: {matrix.nnz:,} interactions, {data.n_users:,} users x {data.n_items:,} listings, "
          f"rank {train_params.rank}, {train_params.max_iter} iterations, top {n} for every user\n")
    print("| | fit s | top-N s | total s | vs implicit |")
    print("| --- | ---: | ---: | ---: | ---: |")
    reference = rows[-1][1] + rows[-1][2]
    for label, fit, top in rows:
        print(f"| {label} | {fit:.2f} | {top:.2f} | {fit + top:.2f} | {(fit + top) / reference:.1f}x |")


def ranking_side_by_side(spark, data, names, params, weights: dict, n: int, engines=("local", "spark")) -> None:
    """Every user's lists from the same fitted models on each ranking engine: in process (`block_lists` over
    everyone) and on Spark (`mapInPandas` over blocks of users, the lists counted on the executors where they
    were ranked, as the train stage writes them from there)."""
    import pickle

    import numpy as np

    from python_jobs import models as registry
    from python_jobs.models.lists import block_lists, make_ranker
    from python_jobs.models.rank_spark import ranked_on_spark, shippable

    components = [m.fit(data) for m in registry.build(names, params, spark)]
    began = time.time()
    ranker = make_ranker(data, components, weights, params.min_bids_for_als, n, params.candidates)
    prepared = time.time() - began
    rows = []
    if "local" in engines:
        began = time.time()
        served, own = block_lists(ranker, np.arange(data.n_users))
        rows.append(("local (in process, one block)", time.time() - began, len(served) + len(own)))
    for when in ("first: the session's Python workers start", "again: a new broadcast, the workers warm"):
        if "spark" not in engines:
            break
        began = time.time()
        with ranked_on_spark(spark, ranker) as lists:
            count = lists.count()
        rows.append((f"spark ({spark.sparkContext.master}, mapInPandas), {when}", time.time() - began, count))
    bundle = len(pickle.dumps(shippable(ranker), protocol=pickle.HIGHEST_PROTOCOL))
    print(f"\n## Ranking every user's lists: {data.n_users:,} users, {len(ranker.open_items):,} open listings, "
          f"{params.candidates} candidates, models {', '.join(names)}; neighbour lists built in {prepared:.1f} s; "
          f"broadcast bundle {bundle / 2**20:,.1f} MiB\n")
    print("| ranking engine | seconds | list rows (served + each model's own) | rows/s |")
    print("| --- | ---: | ---: | ---: |")
    for label, seconds, count in rows:
        print(f"| {label} | {seconds:.1f} | {count:,} | {count / max(seconds, 1e-9):,.0f} |")


def pipeline_ranking(state: Path, summary: dict) -> None:
    """`ranking_side_by_side` on the run's marts (as of now), with the run's parameters, models and blend."""
    os.environ.update(_env(state))
    from python_jobs.stack import services
    from python_jobs.config import Settings
    from python_jobs.models import TrainParams
    from python_jobs.stack.spark import get_spark
    from python_jobs.models.train import load_marts

    settings = Settings.from_env()
    services.ready(settings)
    spark = get_spark(settings)
    evaluation = summary["evaluation"]
    params = TrainParams(**evaluation["params"])
    data = load_marts(spark, params, time.time(), settings.use_events)[0]
    ranking_side_by_side(spark, data, evaluation["models"], params, evaluation["blend"]["weights"], evaluation["k"])
    spark.stop()


def replay_ranking(users: int, seed: int, engines) -> None:
    """`ranking_side_by_side` on a generated marketplace in this process (no stack, Spark in local mode without
    a catalog), with the daily models and equal weights: ranking alone, at scales the pipeline takes minutes
    to reach."""
    from dataclasses import replace

    from python_jobs.config import DAILY_MODELS, Settings
    from python_jobs.ingest.generate import generate
    from python_jobs.models import TrainParams
    from python_jobs.models.data import from_marketplace
    from python_jobs.stack.spark import get_spark

    params = TrainParams(seed=seed)
    began = time.time()
    data = from_marketplace(generate(users, seed), params.count_weight, params.amount_weight, params.half_life_days)[0]
    data = replace(data, items=data.items.assign(is_open=data.items["ends_at"] > data.as_of))
    print(f"generated {users:,} users in {time.time() - began:.1f} s")
    spark = get_spark(Settings.from_env(), catalog=False)
    ranking_side_by_side(spark, data, DAILY_MODELS, params, {}, 10, engines)
    spark.stop()


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[1000])
    parser.add_argument("--cluster", action="store_true", help="run the stages on the local Spark cluster")
    parser.add_argument("--no-als", action="store_true", help="skip the ALS side-by-side comparison")
    parser.add_argument("--no-ranking", action="store_true", help="skip the ranking engines side by side")
    parser.add_argument("--no-rerun", action="store_true", help="skip the daily re-run with nothing new")
    parser.add_argument("--no-next-day", action="store_true", help="skip the run of the day after the first")
    parser.add_argument("--no-bids-only", action="store_true", help="skip re-training the first run without events")
    parser.add_argument("--no-generate", action="store_true",
                        help="run on the state's marketplace as the last generate left it (one scale only)")
    parser.add_argument("--ranking-only", nargs="+", choices=("local", "spark"), metavar="ENGINE",
                        help="only rank a generated marketplace's users on these engines (no pipeline, no stack)")
    args = parser.parse_args()
    if args.ranking_only:
        for users in args.users:
            replay_ranking(users, 3, args.ranking_only)
        return
    state = Path(os.environ.get("ENCORE_STATE_DIR", "/tmp/encore-bench-state"))
    try:
        for users in args.users:
            summary = pipeline(users, args.cluster, state, not args.no_rerun, not args.no_bids_only,
                               not args.no_generate, not args.no_next_day)
            if not args.no_ranking:
                pipeline_ranking(state, summary)
            if not args.no_als:
                als_side_by_side(state, summary["evaluation"]["params"])
    finally:
        subprocess.run([*CLI, "down"], env=_env(state), cwd=ROOT, capture_output=True)


if __name__ == "__main__":
    main()
