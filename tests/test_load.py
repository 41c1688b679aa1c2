"""CSV exports load whole or not at all, with one line naming file, line and column."""

import subprocess
import sys

import psycopg2
import pytest

from python_jobs.stack import postgres
from python_jobs.errors import UserError
from python_jobs.ingest.load import load_csv

GOOD = "bid_id,uid,listing_id,bid_amount,bid_at\n1,1,1,10.5,2026-10-01T10:00:00Z\n2,2,1,,2026-10-01 11:00:00+02:00\n"


def _count(dsn):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("create schema if not exists raw")
        cur.execute("select to_regclass('raw.bids') is not null")
        if not cur.fetchone()[0]:
            return 0
        cur.execute("select count(*) from raw.bids")
        return cur.fetchone()[0]


@pytest.fixture
def dsn(stack):
    return postgres.pg_dsn(stack)


def test_good_file_loads_and_replace_empties_first(dsn, tmp_path):
    path = tmp_path / "bids.csv"
    path.write_text(GOOD)
    assert load_csv(dsn, "bids", path, replace=True) == 2
    assert _count(dsn) == 2
    load_csv(dsn, "bids", path)
    assert _count(dsn) == 4


@pytest.mark.parametrize(
    "content, message",
    [
        ("bid_id,uid,listing_id,bid_amount\n1,1,1,10\n", ":1: header does not match raw.bids (missing bid_at)"),
        ("bid_id,uid,listing_id,bid_amount,bid_at,note\n", ":1: header does not match raw.bids (extra 'note')"),
        (GOOD + "3,1,1,ten,2026-10-01T10:00:00Z\n", ":4: column bid_amount: 'ten' is not a number"),
        (GOOD + "3,1,1,1,yesterday\n", ":4: column bid_at: 'yesterday' is not an ISO 8601 timestamp"),
        (GOOD + "3.5,1,1,1,2026-10-01T10:00:00Z\n", ":4: column bid_id: '3.5' is not a whole number"),
        (GOOD + "3,1,1\n", ":4: 3 fields, expected 5"),
        ("", ": the file is empty"),
        ("bid_id,uid,listing_id,bid_amount,bid_at\n", ": no data rows after the header"),
        # what only PostgreSQL catches still names the line and column (issue 21 D7)
        (GOOD + "3,99999999999,1,1,2026-10-01T10:00:00Z\n", ":4: column uid: PostgreSQL refused the file (value "),
        (GOOD + "3,1,1,1000000000000000000,2026-10-01T10:00:00Z\n", ":4: column bid_amount: PostgreSQL refused"),
        (",".join(f"c{i}" for i in range(100_000)) + "\n", "and 99,995 more); expected"),
    ],
)
def test_malformed_files_are_refused_whole(dsn, tmp_path, content, message):
    path = tmp_path / "bids.csv"
    path.write_text(content)
    before = _count(dsn)
    with pytest.raises(UserError) as info:
        load_csv(dsn, "bids", path)
    assert str(info.value).startswith(str(path))
    assert message in str(info.value)
    assert _count(dsn) == before


def test_wrong_encoding_is_refused(dsn, tmp_path):
    path = tmp_path / "bids.csv"
    path.write_bytes(GOOD.encode() + "3,1,1,1,2026-10-01T10:00:00Z,caf\xe9\n".encode("latin-1"))
    before = _count(dsn)
    with pytest.raises(UserError, match=r":4: not UTF-8 text"):
        load_csv(dsn, "bids", path)
    assert _count(dsn) == before


def test_cli_missing_file_one_line_and_exit_code(stack, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "python_jobs.cli", "load", "--table", "bids", "--csv", str(tmp_path / "none.csv")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"encore-recs: error: {tmp_path / 'none.csv'}: no such file; pass --csv PATH to a CSV export"


def test_spreadsheet_export_with_byte_order_mark_and_crlf_loads(dsn, tmp_path):
    path = tmp_path / "bids.csv"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.replace("\n", "\r\n").encode())
    assert load_csv(dsn, "bids", path, replace=True) == 2
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("select bid_id, bid_amount from raw.bids order by bid_id")
        assert cur.fetchall() == [(1, 10.5), (2, None)]


def test_a_refused_header_shows_invisible_characters(dsn, tmp_path):
    path = tmp_path / "bids.csv"
    path.write_text(GOOD.replace("bid_id", "bid_id\u200b", 1))
    with pytest.raises(UserError, match=r"missing bid_id; extra 'bid_id\\u200b'"):
        load_csv(dsn, "bids", path)
