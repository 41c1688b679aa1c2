"""Experiments: definitions checked, assignment stable and proportional, serve answering with the user's variant,
and the generated app's sessions measured in dbt — the better list wins an A/B, an A/A shows no difference."""

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from python_jobs.errors import UserError
from python_jobs.publish import experiments
from python_jobs.publish.experiments import BUCKETS, assign, bucket, load

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from api_keys import keyed  # noqa: E402

HEADER = ",".join(experiments.COLUMNS)
NOW = datetime(2026, 12, 6, 12, tzinfo=timezone.utc)


def _definitions(tmp_path, *rows: str) -> Path:
    path = tmp_path / "experiments.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


def _row(experiment="ab", variant="a", serves="hybrid", control="true", share="0.5", lo="0", hi="10000",
         start="2026-01-01T00:00:00Z", end="2027-01-01T00:00:00Z") -> str:
    return ",".join([experiment, variant, serves, control, share, lo, hi, start, end])


@pytest.mark.parametrize("rows,says", [
    ([_row(), _row(variant="b", control="false", share="0.4")], "add up to 0.9, not 1"),
    ([_row(), _row(variant="b", share="0.5")], "exactly one variant with is_control"),
    ([_row(), _row(variant="b", control="false", serves="deep_magic")], "serves 'deep_magic' is not a list"),
    ([_row(share="1"), _row(experiment="other", share="1", lo="5000")], "same time over the same traffic"),
    ([_row(share="1", start="2026-01-01")], "has no zone"),
    ([_row(share="1", hi="20000")], "must lie within 0..10000"),
    ([_row(share="1", start="2027-01-01T00:00:00Z")], "starts_at must be before ends_at"),
])
def test_a_wrong_definition_names_its_line_and_the_fix(tmp_path, rows, says):
    with pytest.raises(UserError, match=says.replace("(", r"\(").replace(")", r"\)")):
        load(_definitions(tmp_path, *rows))


def test_assignment_is_stable_proportional_and_keeps_experiments_apart(tmp_path):
    definitions = load(_definitions(
        tmp_path, _row(share="0.2"), _row(variant="b", control="false", share="0.8"),
        _row(experiment="later", lo="0", hi="10000", share="1", start="2027-01-01T00:00:00Z",
             end="2028-01-01T00:00:00Z")))
    uids = np.arange(1, 20_001)
    first = [assign(definitions, int(u), NOW)["variant"] for u in uids]
    assert first == [assign(definitions, int(u), NOW + timedelta(hours=5))["variant"] for u in uids]
    share_b = np.mean(np.array(first) == "b")
    assert abs(share_b - 0.8) < 0.02  # 3 standard errors at n = 20,000 is about 0.009
    # a window that has not begun holds nobody; once it has, the earlier one has ended
    assert {assign(definitions, int(u), datetime(2027, 6, 1, tzinfo=timezone.utc))["experiment"]
            for u in uids[:200]} == {"later"}
    assert assign(definitions, 1, datetime(2025, 6, 1, tzinfo=timezone.utc)) is None
    # the traffic and variant hashes are independent: the variant split is the same in both halves of the traffic
    low = np.array([bucket(experiments.TRAFFIC_SALT, int(u)) < BUCKETS // 2 for u in uids])
    assert abs(np.mean(np.array(first)[low] == "b") - np.mean(np.array(first)[~low] == "b")) < 0.03


@pytest.fixture(scope="module")
def experiment(stack, spark, s3, tmp_path_factory):
    """A generated marketplace run, its users' sessions in the app (a second of each user's traffic), and the run
    that ingests them and builds the experiment marts."""
    from orchestration.local_runner import run_pipeline
    from python_jobs.events.landing import clear_landed
    from python_jobs.events.synthetic import land
    from python_jobs.ingest.generate import generate, write_raw
    from python_jobs.publish.publish import read_latest
    from python_jobs.serving.app_sessions import sessions
    from python_jobs.serving.loader import RunHolder, load_run
    from python_jobs.stack import postgres

    market = generate(1000, seed=31)
    write_raw(postgres.pg_dsn(stack), market)
    clear_landed(s3, stack.lake_bucket)
    first = run_pipeline(stack, log=lambda _: None)
    run = load_run(s3, stack.publish_bucket, read_latest(stack)["manifest_key"])
    now = datetime.now(timezone.utc)
    events = sessions(run, market.truth, market.users["uid"].to_numpy(), now, seed=5)
    # two A/A users the app showed the other variant's list (an override), and two whose (older) app sent neither
    # variant nor position
    aa = events[events["variant"] == "hybrid_aa/a"]["uid"].unique()[:4]
    events.loc[events["uid"].isin(aa[:2]) & (events["type"] == "impression"), "variant"] = "hybrid_aa/b"
    events.loc[events["uid"].isin(aa[2:]), ["variant", "position"]] = None
    land(s3, stack.lake_bucket, events, "app5")
    holder = RunHolder(stack)
    holder.refresh()
    store, header = keyed(tmp_path_factory.mktemp("keys"))
    client = TestClient(build_app(holder, keys=store, clock=lambda: now), headers=header)
    second = run_pipeline(stack, log=lambda _: None)
    yield {"first": first, "second": second, "events": events, "client": client, "now": now, "run": run,
           "overridden": set(aa[:2].tolist()), "unlabelled": set(aa[2:].tolist())}
    clear_landed(s3, stack.lake_bucket)


def build_app(*args, **kwargs):
    from python_jobs.serving.app import build_app as build

    return build(*args, **kwargs)


def test_serve_answers_with_the_users_variant_and_its_list(experiment):
    run, client, now = experiment["run"], experiment["client"], experiment["now"]
    assert {row["experiment"] for row in run.experiments} == {"hybrid_vs_popularity", "hybrid_aa"}
    assert experiment["first"]["experiments"]["skipped"] == {}
    seen = set()
    for uid in range(1, 60):
        body = client.get(f"/v1/users/{uid}/recommendations").json()
        assigned = assign(run.experiments, uid, now)
        assert body["variant"] == f"{assigned['experiment']}/{assigned['variant']}"
        asked = client.get(f"/v1/users/{uid}/recommendations", params={"model": body["model"]}).json()
        assert asked["variant"] is None and asked["recommendations"] == body["recommendations"]
        seen.add(body["model"])
    assert seen == {"hybrid", "popularity"}


def test_the_marts_place_every_impression_in_the_variant_that_showed_it(experiment, spark):
    """Each impression counts for the variant it carries (serve's answer, or an override the app applied); one
    without a variant, for the variant the hashes assign its user."""
    rows = spark.table("marts.exp_impressions").select("uid", "experiment", "variant", "assigned_by").distinct().collect()
    impressed = experiment["events"].query("type == 'impression'")
    ours = [r for r in rows if r.uid in set(impressed["uid"])]
    assert {r.uid for r in ours} == set(impressed["uid"])
    when = experiment["now"] - timedelta(minutes=30)
    hashed = {uid: (a["experiment"], a["variant"]) for uid in impressed["uid"].unique()
              if (a := assign(experiment["run"].experiments, int(uid), when))}
    shown = {uid: tuple(v.split("/")) for uid, v in zip(impressed["uid"], impressed["variant"]) if v}
    assert {(r.uid, r.experiment, r.variant) for r in ours} == {
        (uid, *(shown[uid] if uid in shown else hashed[uid])) for uid in impressed["uid"].unique()}
    assert {r.uid for r in ours if r.assigned_by == "hash"} == experiment["unlabelled"]
    for uid in experiment["overridden"]:  # shown b's list though the hashes put them in a
        assert hashed[uid] == ("hybrid_aa", "a") and shown[uid] == ("hybrid_aa", "b")
    # serve's answer is what the app recorded for everyone else
    assert all(shown[uid] == hashed[uid] for uid in shown if uid not in experiment["overridden"])


def test_the_better_list_wins_the_ab_and_the_aa_shows_no_difference(experiment, spark):
    results = {(r.experiment, r.variant): r for r in spark.table("marts.exp_results").collect()}
    hybrid, popular = results[("hybrid_vs_popularity", "hybrid")], results[("hybrid_vs_popularity", "popularity")]
    assert hybrid.ctr > popular.ctr and popular.ctr_significant and popular.ctr_diff_high < 0
    assert results[("hybrid_aa", "b")].ctr_significant is False
    assert not any(r.sample_ratio_mismatch for r in results.values())
    assert sum(r.impressions for r in results.values()) == len(experiment["events"].query("type == 'impression'"))


def test_the_history_and_the_morning_report_carry_the_results(experiment, stack, spark):
    from python_jobs.history import run_history

    run_id = experiment["second"]["run_id"]
    recorded = [r for r in run_history.read_last(stack, 5)["run_experiments"] if r["run_id"] == run_id]
    assert {(r["experiment"], r["variant"]) for r in recorded} == {
        ("hybrid_vs_popularity", "hybrid"), ("hybrid_vs_popularity", "popularity"), ("hybrid_aa", "a"),
        ("hybrid_aa", "b")}
    page = (stack.state_dir / "reports" / "index.html").read_text()
    table = page[page.index("<table id='experiments'>"):]
    table = table[:table.index("</table>")]
    popular = next(row for row in table.split("<tr>") if "<td>hybrid_vs_popularity</td><td>popularity</td>" in row)
    assert "<td>significant</td>" in popular
    same = next(row for row in table.split("<tr>") if "<td>hybrid_aa</td><td>b</td>" in row)
    assert "<td>no significant difference</td>" in same
    assert spark.table("run_history.run_history_experiments").where(f"run_id = '{run_id}'").count() == 4
