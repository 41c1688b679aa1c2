"""`encore-recs evaluate`: offline evaluation of every model on any interactions file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from python_jobs.errors import UserError


def add_evaluate_parser(sub) -> None:
    ev = sub.add_parser("evaluate", help="offline ranking evaluation on a CSV or Parquet interactions file")
    ev.add_argument("--interactions", required=True, type=Path, help="CSV/TXT file, Parquet file or folder")
    ev.add_argument("--user-col", default="uid")
    ev.add_argument("--item-col", default="listing_id")
    ev.add_argument("--weight-col", default=None, help="numeric interaction strength (default: 1 per row)")
    ev.add_argument("--k", type=int, default=10)
    ev.add_argument("--test-fraction", type=float, default=0.25)
    ev.add_argument("--seed", type=int, default=42)
    ev.add_argument("--sep", default=",", help="field separator for text files, e.g. '::' for MovieLens")
    ev.add_argument("--no-header", action="store_true", help="text file has no header; columns are _c0, _c1, ...")
    ev.add_argument("--json", type=Path, default=None, help="also write the metrics here as JSON")
    ev.set_defaults(fn=cmd_evaluate)


def _check_args(args) -> None:
    if not args.interactions.exists():
        raise UserError(f"{args.interactions}: no such file; pass --interactions PATH to a CSV or Parquet file")
    if args.k < 1:
        raise UserError(f"--k {args.k} is out of range; use at least 1")
    if not 0 < args.test_fraction < 1:
        raise UserError(f"--test-fraction {args.test_fraction} is out of range; use between 0 and 1, e.g. 0.25")


def load_interactions(spark, args):
    """uid, listing_id (dense ints), strength: duplicates summed."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql.utils import AnalysisException

    path = str(args.interactions)
    try:
        if args.interactions.is_dir() or path.endswith(".parquet"):
            df = spark.read.parquet(path)
        else:
            df = spark.read.csv(path, header=not args.no_header, sep=args.sep, inferSchema=False)
    except AnalysisException as exc:
        raise UserError(f"{path}: cannot be read as CSV or Parquet ({str(exc).splitlines()[0][:120]})") from None
    except Exception as exc:
        raise UserError(f"{path}: cannot be read as CSV or Parquet ({type(exc).__name__})") from None
    needed = [c for c in (args.user_col, args.item_col, args.weight_col) if c]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise UserError(f"{path}: no column {', '.join(missing)}; columns are {', '.join(df.columns)}")
    weight = F.lit(1.0) if not args.weight_col else F.col(args.weight_col).cast("double")
    df = df.select(F.col(args.user_col).cast("string").alias("u"), F.col(args.item_col).cast("string").alias("i"),
                   weight.alias("w"), (F.col(args.weight_col) if args.weight_col else F.lit("1")).alias("w_raw"))
    bad = df.where(F.col("w").isNull() & F.col("w_raw").isNotNull()).select("w_raw").first()
    if bad is not None:
        raise UserError(f"{path}: column {args.weight_col} has a non-numeric value {bad[0]!r}; weights must be numbers")
    df = df.where(F.col("u").isNotNull() & F.col("i").isNotNull() & F.col("w").isNotNull())
    grouped = df.groupBy("u", "i").agg(F.sum("w").alias("strength"))
    users = grouped.select("u").distinct().withColumn("uid", F.dense_rank().over(Window.orderBy("u")))
    items = grouped.select("i").distinct().withColumn("listing_id", F.dense_rank().over(Window.orderBy("i")))
    data = grouped.join(users, "u").join(items, "i").select("uid", "listing_id", "strength").cache()
    if data.count() < 2:
        raise UserError(f"{path}: fewer than two usable interactions; nothing to evaluate")
    return data


def popularity_by_users(train):
    """Baseline popularity for files with no categories or times: distinct users per item."""
    from pyspark.sql import functions as F

    counts = train.groupBy("listing_id").agg(F.countDistinct("uid").alias("n"))
    top = counts.agg(F.max("n").alias("top"))
    return counts.crossJoin(top).select("listing_id", (F.col("n") / F.col("top")).alias("popularity"))


def format_table(evaluation) -> str:
    k = evaluation.k
    head = f"{'model':<12}{'precision@' + str(k):>14}{'recall@' + str(k):>12}{'nDCG@' + str(k):>10}{'MAP@' + str(k):>10}{'coverage':>10}"
    lines = [head, "-" * len(head)]
    for model, m in evaluation.metrics.items():
        lines.append(f"{model:<12}{m['precision']:>14.4f}{m['recall']:>12.4f}{m['ndcg']:>10.4f}{m['map']:>10.4f}{m['coverage']:>10.4f}")
    return "\n".join(lines)


def cmd_evaluate(args) -> None:
    from pyspark.sql import functions as F

    from python_jobs.config import Settings
    from python_jobs.evaluate import evaluate_models, per_user_splitter
    from python_jobs.spark import get_spark
    from python_jobs.train import TrainParams

    _check_args(args)
    settings = Settings.from_env()
    spark = get_spark(settings, catalog=False)
    data = load_interactions(spark, args)
    base = TrainParams(seed=args.seed, min_bids_for_als=1)
    items = data.select("listing_id").distinct().select(
        "listing_id", F.lit("all").alias("category"), F.lit(None).cast("string").alias("sub_category")
    )
    evaluation = evaluate_models(
        spark, data.withColumn("_order", F.rand(args.seed)), per_user_splitter("_order", args.test_fraction, items),
        popularity_by_users,
        k=args.k, base=base, grid=settings.tuning_grid, max_users=settings.eval_users,
    )
    print(format_table(evaluation))
    print("ALS parameters chosen on the validation split: "
          + ", ".join(f"{k}={evaluation.params.to_dict()[k]}" for k in ("rank", "reg_param", "alpha", "max_iter")))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(evaluation.to_dict(), indent=1))
        print(f"wrote {args.json}")
