"""`encore-recs load`: stream a CSV export into a raw Postgres table, or refuse it whole.

The file is checked end to end first (UTF-8, header = the table's columns,
every field parses as its column's type; empty fields are nulls for the
cleaning to judge), then streamed with COPY inside one transaction. Any
problem names the file, line and column and leaves the database untouched.
Timestamps without an offset are read as UTC.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from python_jobs.errors import UserError
from python_jobs.ingest.raw_schema import RAW_COLUMNS, raw_ddl


def _check_int(value: str) -> bool:
    return value.lstrip("-").isdigit()


def _check_number(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def _check_timestamp(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


CHECKS = {"integer": (_check_int, "a whole number"), "bigint": (_check_int, "a whole number"),
          "numeric": (_check_number, "a number"), "timestamptz": (_check_timestamp, "an ISO 8601 timestamp")}


def _lines(path: Path) -> Iterator[str]:
    """Decoded lines; a leading UTF-8 byte-order mark (spreadsheets write one) is encoding, not data."""
    with open(path, "rb") as raw:
        for number, line in enumerate(raw, start=1):
            try:
                yield line.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                raise UserError(f"{path}:{number}: not UTF-8 text; re-export the file as UTF-8") from None


def check_csv(path: Path, table: str) -> int:
    """Validate the whole file; return its data rows."""
    if table not in RAW_COLUMNS:
        raise UserError(f"unknown table {table!r}; use one of {', '.join(RAW_COLUMNS)}")
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    columns = RAW_COLUMNS[table]
    reader = csv.reader(_lines(path))
    try:
        header = next(reader)
    except StopIteration:
        raise UserError(f"{path}: the file is empty; expected a header line {','.join(c for c, _ in columns)}") from None
    except csv.Error as exc:
        raise UserError(f"{path}:1: malformed CSV ({exc})") from None
    expected = [name for name, _ in columns]
    header = [h.strip() for h in header]
    if header != expected:
        missing = [c for c in expected if c not in header]
        extra = [repr(c[:40]) for c in header if c not in expected]  # repr: invisible characters show
        if len(extra) > 5:  # one line stays readable whatever the header (a 100,000-column one made 989 KB)
            extra = [*extra[:5], f"and {len(extra) - 5:,} more"]
        detail = "; ".join(
            part for part in (f"missing {', '.join(missing)}" if missing else "", f"extra {', '.join(extra)}" if extra else "")
            if part
        ) or "columns out of order"
        raise UserError(f"{path}:1: header does not match raw.{table} ({detail}); expected {','.join(expected)}")
    checks = [CHECKS.get(kind.split("(")[0]) for _, kind in columns]
    rows = 0
    try:
        for record in reader:
            line = reader.line_num
            if len(record) != len(columns):
                raise UserError(f"{path}:{line}: {len(record)} fields, expected {len(columns)} ({','.join(expected)})")
            for (name, _), check, value in zip(columns, checks, record):
                if check and value != "" and not check[0](value):
                    raise UserError(f"{path}:{line}: column {name}: {value[:40]!r} is not {check[1]}")
            rows += 1
    except csv.Error as exc:
        raise UserError(f"{path}:{reader.line_num}: malformed CSV ({exc})") from None
    if rows == 0:
        raise UserError(f"{path}: no data rows after the header")
    return rows


def _where(path: Path, exc) -> str:
    """`path:line: column c` from PostgreSQL's COPY context (`COPY bids, line 2, column uid: "..."`), else path."""
    import re

    context = getattr(getattr(exc, "diag", None), "context", None) or ""
    found = re.search(r"COPY \w+, line (\d+)(?:, column (\w+))?", context)
    if not found:
        return str(path)
    return f"{path}:{found.group(1)}" + (f": column {found.group(2)}" if found.group(2) else "")


def load_csv(dsn: str, table: str, path: Path, replace: bool = False) -> int:
    """Check, then COPY the file into raw.<table> in one transaction; return rows loaded."""
    import psycopg2

    rows = check_csv(path, table)
    columns = ", ".join(name for name, _ in RAW_COLUMNS[table])
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("set local timezone = 'UTC'")
            cur.execute(raw_ddl())
            if replace:
                cur.execute(f"truncate raw.{table}")
            with open(path, encoding="utf-8-sig", newline="") as data:
                cur.copy_expert(f"copy raw.{table} ({columns}) from stdin with (format csv, header true)", data)
    except psycopg2.Error as exc:
        raise UserError(f"{_where(path, exc)}: PostgreSQL refused the file ({str(exc).strip().splitlines()[0][:200]}); "
                        "nothing was loaded") from None
    finally:
        conn.close()
    return rows
