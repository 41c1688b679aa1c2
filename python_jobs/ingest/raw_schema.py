"""The raw (OLTP export) tables: one definition for the DDL, the generator and the CSV loader."""

from __future__ import annotations

RAW_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "users": [("uid", "integer"), ("user_name", "text"), ("email", "text"), ("signup_at", "timestamptz")],
    "listings": [
        ("listing_id", "integer"), ("product", "text"), ("category", "text"), ("sub_category", "text"),
        ("listing_amount", "numeric(12, 2)"), ("start_price", "numeric(12, 2)"), ("seller_uid", "integer"),
        ("listed_at", "timestamptz"), ("ends_at", "timestamptz"), ("status", "text"),
    ],
    "bids": [
        ("bid_id", "bigint"), ("uid", "integer"), ("listing_id", "integer"), ("bid_amount", "numeric(12, 2)"),
        ("bid_at", "timestamptz"),
    ],
    "user_interests": [("uid", "integer"), ("category", "text"), ("sub_category", "text"), ("answered_at", "timestamptz")],
    # a seller's paid promotion of a listing for a time window (promoted slots in the served lists)
    "promotions": [("promotion_id", "bigint"), ("listing_id", "integer"), ("starts_at", "timestamptz"),
                   ("ends_at", "timestamptz")],
}
RAW_TABLES = tuple(RAW_COLUMNS)


def raw_ddl() -> str:
    statements = ["create schema if not exists raw;"]
    for table, columns in RAW_COLUMNS.items():
        cols = ", ".join(f"{name} {kind}" for name, kind in columns)
        statements.append(f"create table if not exists raw.{table} ({cols});")
    return "\n".join(statements)


def ensure_raw_tables(dsn: str) -> None:
    """Create the raw tables that are missing, empty: an export made before a table existed (promotions) has none
    of its rows, which is not an error."""
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(raw_ddl())
    finally:
        conn.close()
