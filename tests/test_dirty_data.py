"""Generated faults are each rejected under their reason; stray case and whitespace are repaired."""

import psycopg2

from python_jobs.stack import postgres
from python_jobs.infra.dbt_runner import run_dbt
from python_jobs.ingest.faults import inject
from python_jobs.ingest.generate import generate, write_raw
from python_jobs.ingest.reconcile import reconcile


def test_dirty_rate_faults_reconcile_exactly(stack):
    dsn = postgres.pg_dsn(stack)
    market = generate(400, seed=3)
    dirty, expected, normalised = inject(market, 0.05, 3, market.as_of)
    assert sum(sum(r.values()) for r in expected.values()) > 0
    write_raw(dsn, dirty)
    run_dbt(stack, ["build", "--target", "pg", "--select", "path:seeds", "path:models/staging", "path:tests/dbt/staging"])
    rows = {r["table"]: r for r in reconcile(dsn)}
    for table, row in rows.items():
        assert row["raw"] == len(dirty.tables()[table])
        assert row["raw"] == row["clean"] + row["rejected"]
        assert row["reasons"] == expected.get(table, {}), table
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from staging.stg_raw__listings where category <> lower(trim(category))")
        assert cur.fetchone()[0] == 0
        cur.execute("select count(*) from raw.listings where category <> lower(trim(category))")
        assert cur.fetchone()[0] == normalised["listings"]


def test_generator_is_deterministic_for_a_seed():
    a, b = generate(200, seed=5, as_of=None), generate(200, seed=5, as_of=None)
    for name in a.tables():
        assert a.tables()[name].equals(b.tables()[name]), name
    c = generate(200, seed=6)
    assert not a.bids.equals(c.bids)
