"""`encore-recs evaluate`: offline evaluation of every model on any interactions file, in one process."""

from __future__ import annotations

import json
import os
from pathlib import Path

from python_jobs.errors import UserError



def add_evaluate_parser(sub) -> None:
    ev = sub.add_parser("evaluate", help="offline ranking evaluation on a CSV or Parquet interactions file")
    ev.add_argument("--interactions", required=True, type=Path, help="CSV/TXT file, Parquet file or folder")
    ev.add_argument("--user-col", default="uid")
    ev.add_argument("--item-col", default="listing_id")
    ev.add_argument("--weight-col", default=None, help="numeric interaction strength (default: 1 per row)")
    ev.add_argument("--time-col", default=None,
                    help="numbers or timestamps: split by time (the last --test-fraction of interactions to begin is "
                         "the test) instead of a random share per user")
    ev.add_argument("--items", type=Path, default=None,
                    help="CSV or Parquet of the items: the item column plus any of the text column, category, "
                         "sub_category, listing_amount, seller (for content, taste and the two-tower's listing "
                         "tower)")
    ev.add_argument("--text-col", default="product", help="the items file's text column (default product)")
    ev.add_argument("--k", type=int, default=10)
    ev.add_argument("--test-fraction", type=float, default=0.25)
    ev.add_argument("--seed", type=int, default=42)
    ev.add_argument("--sep", default=",", help="field separator for text files, e.g. '::' for MovieLens")
    ev.add_argument("--no-header", action="store_true", help="text file has no header; columns are _c0, _c1, ...")
    ev.add_argument("--json", type=Path, default=None, help="also write the metrics here as JSON (checked first: {\"status\": \"evaluating\"} until done)")
    ev.set_defaults(fn=cmd_evaluate)


def _check_args(args) -> None:
    for flag, path in (("--interactions", args.interactions), ("--items", args.items)):
        if path is not None and not path.exists():
            raise UserError(f"{path}: no such file; pass {flag} PATH to a CSV or Parquet file")
    if not 1 <= args.k <= 1000:
        raise UserError(f"--k {args.k} is out of range; use 1 to 1000")
    if not 0 < args.test_fraction < 1:
        raise UserError(f"--test-fraction {args.test_fraction} is out of range; use between 0 and 1, e.g. 0.25")
    if not 0 <= args.seed < 2**32:
        raise UserError(f"--seed {args.seed} is out of range; use 0 to {2**32 - 1}")
    if args.json is not None:
        _write_json(args.json, {"status": "evaluating"})  # a path that cannot take the metrics fails before the work


def _write_json(path: Path, value: dict) -> None:
    if path.is_dir():
        raise UserError(f"--json {path} is a folder; pass a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as out:
            out.write(json.dumps(value, indent=1))
            out.flush()  # a full device says so here, not when the file is closed behind our back
    except OSError as exc:
        raise UserError(f"--json {path}: cannot write ({exc.strerror or type(exc).__name__}); pass a writable file") from None


def read_table(path: Path, sep: str, header: bool):
    """Every column as text; a folder is a Parquet dataset."""
    import pandas as pd

    try:
        if path.is_dir() or path.suffix == ".parquet":
            return pd.read_parquet(path).astype("string")
        frame = pd.read_csv(path, sep=sep, header=0 if header else None, dtype=str, keep_default_na=False,
                            na_values=[""], engine="python" if len(sep) > 1 else "c", encoding="utf-8-sig")
    except (ValueError, OSError, UnicodeDecodeError, ImportError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise UserError(f"{path}: cannot be read as CSV or Parquet ({first})") from None
    if not header:
        frame.columns = [f"_c{i}" for i in range(frame.shape[1])]
    return frame


def _numbers(frame, column: str, path: Path, what: str):
    import pandas as pd

    values = pd.to_numeric(frame[column], errors="coerce")
    bad = frame[column][values.isna() & frame[column].notna()]
    if len(bad):
        raise UserError(f"{path}: column {column} has a non-numeric value {bad.iloc[0]!r}; {what} must be numbers")
    return values


def _times(frame, column: str, path: Path):
    import pandas as pd

    numbers = pd.to_numeric(frame[column], errors="coerce")
    if numbers.notna().sum() >= frame[column].notna().sum():
        return numbers.astype(float)
    stamps = pd.to_datetime(frame[column], errors="coerce", utc=True)
    bad = frame[column][stamps.isna() & frame[column].notna()]
    if len(bad):
        raise UserError(f"{path}: column {column} has {bad.iloc[0]!r}, neither a number nor a timestamp")
    return stamps.astype("int64") / 1e9


def load_interactions(args):
    """uid, listing_id (dense ints), strength (duplicates summed), first_bid_at, last_bid_at (epoch s or 0),
    and the original ids of users and items."""
    import numpy as np
    import pandas as pd

    path = args.interactions
    df = read_table(path, args.sep, not args.no_header)
    needed = [c for c in (args.user_col, args.item_col, args.weight_col, args.time_col) if c]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise UserError(f"{path}: no column {', '.join(missing)}; columns are {', '.join(map(str, df.columns))}")
    weight = _numbers(df, args.weight_col, path, "weights") if args.weight_col else pd.Series(1.0, index=df.index)
    at = _times(df, args.time_col, path) if args.time_col else pd.Series(0.0, index=df.index)
    frame = pd.DataFrame({"u": df[args.user_col], "i": df[args.item_col], "w": weight.astype(float), "t": at})
    frame = frame.dropna()
    grouped = frame.groupby(["u", "i"], sort=False).agg(strength=("w", "sum"), first_bid_at=("t", "min"),
                                                        last_bid_at=("t", "max")).reset_index()
    if len(grouped) < 2:
        raise UserError(f"{path}: fewer than two usable interactions; nothing to evaluate")
    user_names, uid = np.unique(grouped["u"].to_numpy(str), return_inverse=True)
    item_names, iid = np.unique(grouped["i"].to_numpy(str), return_inverse=True)
    data = grouped.assign(uid=uid + 1, listing_id=iid + 1)[["uid", "listing_id", "strength", "first_bid_at",
                                                            "last_bid_at"]]
    return data, user_names, item_names


def load_items(args, item_names):
    """Per item (in `item_names` order): product text, category, sub_category, listing_amount, and seller when
    the file has one."""
    import numpy as np
    import pandas as pd

    items = pd.DataFrame({"listing_id": np.arange(1, len(item_names) + 1), "product": "", "category": "all",
                          "sub_category": "", "listing_amount": 0.0})
    if args.items is None:
        return items
    table = read_table(args.items, args.sep, not args.no_header)
    if args.item_col not in table.columns:
        raise UserError(f"{args.items}: no column {args.item_col}; columns are {', '.join(map(str, table.columns))}")
    table = table.drop_duplicates(args.item_col).set_index(args.item_col).reindex(item_names)
    if args.text_col in table.columns:
        items["product"] = table[args.text_col].fillna("").to_numpy(str)
    if "seller" in table.columns:
        items["seller"] = table["seller"].fillna("").to_numpy(str)
    for column, default in (("category", "all"), ("sub_category", "")):
        if column in table.columns:
            items[column] = table[column].fillna(default).to_numpy(str)
    if "listing_amount" in table.columns:
        items["listing_amount"] = _numbers(table.reset_index(), "listing_amount", args.items, "prices").fillna(0.0).to_numpy()
    return items


def _cell(value: float | None) -> str:
    """A metric right-aligned to four places; n/a where the data could not measure it (diversity with no categories)."""
    return f"{'n/a':>11}" if value is None else f"{value:>11.4f}"


def format_table(evaluation) -> str:
    k = evaluation.k
    columns = [("precision", f"P@{k}"), ("recall", f"R@{k}"), ("ndcg", f"nDCG@{k}"), ("map", f"MAP@{k}"),
               ("coverage", "coverage"), ("novelty", "novelty"), ("diversity", "diversity"), ("long_tail", "tail")]
    head = f"{'model':<18}" + "".join(f"{title:>11}" for _, title in columns) + f"{'fit s':>8}{'lists s':>9}"
    lines = [head, "-" * len(head)]
    for model, m in evaluation.metrics.items():
        cost = evaluation.seconds.get(model, {"fit": 0.0, "score": 0.0})
        lines.append(f"{model:<18}" + "".join(_cell(m.get(name, 0.0)) for name, _ in columns)
                     + f"{cost['fit']:>8.1f}{cost['score']:>9.1f}")
    for segment, weights in evaluation.blend.get("weights", {}).items():
        used = ", ".join(f"{name} {w:g}" for name, w in weights.items() if w) or "none"
        lines.append(f"blend for {segment} users (chosen on validation): {used}")
    return "\n".join(lines)


def cmd_evaluate(args) -> None:
    import numpy as np
    import pandas as pd

    from python_jobs.config import MODELS, Settings
    from python_jobs.models.evaluate import evaluate_models, per_user_splitter, time_splitter
    from python_jobs.models import TrainParams, engine
    from python_jobs.models.data import build

    _check_args(args)
    settings = Settings.from_env()
    data, user_names, item_names = load_interactions(args)
    items = load_items(args, item_names)
    names = settings.models if os.environ.get("ENCORE_MODELS") else MODELS
    as_of = float(data["last_bid_at"].max())
    base = build(data, pd.DataFrame({"uid": np.arange(1, len(user_names) + 1)}), items, None, as_of,
                 TrainParams().half_life_days)
    params = TrainParams(seed=args.seed, **settings.model)
    als_engine, because = engine.for_training(settings.train_engine, base, params, settings.tuning_grid)
    spark = None
    if "als" in names:
        print(f"ALS engine: {als_engine} ({because})")
        if als_engine == "spark":
            from python_jobs.stack.spark import get_spark

            spark = get_spark(settings, catalog=False)
    splitter = time_splitter(args.test_fraction) if args.time_col else per_user_splitter(
        args.test_fraction, args.seed, as_of)
    evaluation = evaluate_models(base, data, splitter, names=names, k=args.k,
                                 params=params.on_engine(als_engine), grid=settings.tuning_grid,
                                 spark=spark, max_users=settings.eval_users)
    print(format_table(evaluation))
    print("ALS parameters chosen on the validation split: "
          + ", ".join(f"{k}={evaluation.params.to_dict()[k]}" for k in ("rank", "reg_param", "alpha", "max_iter")))
    if args.json:
        _write_json(args.json, evaluation.to_dict())
        print(f"wrote {args.json}")
