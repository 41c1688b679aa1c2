"""The local cluster mirrors EMR: each stage its own spark-submit / process, dbt over thrift, one shared catalog."""

import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request

import pytest

from orchestration.stages import NAMES
from python_jobs.stack import cluster, postgres
from python_jobs.ingest.generate import generate, write_raw
from python_jobs.publish.publish import read_latest

USERS = 150


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


@pytest.fixture(scope="module")
def spark_cluster(stack):
    cluster.up(stack, log=lambda line: None)
    yield stack
    assert set(cluster.down(stack)) == {"spark master", "spark worker", "spark thrift"}
    assert not cluster.running(stack)


# a part as spark-class starts it: its command line names the main class, then for a moment does not (the launcher
# execs Java), then does again, and it listens; or it exits at once, saying why in its log
LAUNCHER = """
import os, socket, sys, time
phase, port = sys.argv[1], int(sys.argv[2])
def become(*args):
    os.execv(sys.executable, [sys.executable, __file__, *args])
if phase == "launch":
    become("exec", str(port))
elif phase == "exec":
    time.sleep(2)
    become("java", str(port), os.environ["MAIN_CLASS"])
elif phase == "java":
    server = socket.socket()
    server.bind(("127.0.0.1", port))
    server.listen()
    time.sleep(300)
else:
    print("no Java here", flush=True)
    sys.exit(3)
"""


def _launch(local, part: str, phase: str, port: int, launcher) -> subprocess.Popen:
    env = {**os.environ, "MAIN_CLASS": cluster.MAIN_CLASS[part]}
    return cluster._start(local, part, [sys.executable, str(launcher), phase, str(port), cluster.MAIN_CLASS[part]],
                          env)


def test_the_start_check_knows_an_exit_from_the_child_not_from_its_command_line(settings, tmp_path):
    """A part whose command line is for a moment not Java's is still starting (the check used to read the command
    line and say "exited while starting"); a part that exits is reported at once, with its status and log."""
    from functools import partial

    from python_jobs.errors import UserError
    from python_jobs.stack.processes import port_open

    local = dataclasses.replace(settings, state_dir=tmp_path)
    launcher = tmp_path / "launcher.py"
    launcher.write_text(LAUNCHER)
    port = _free_port()
    proc = _launch(local, "master", "launch", port, launcher)
    try:
        cluster._wait_until(local, "master", proc, partial(port_open, port), 60, "did not listen")
        assert cluster._pid(local, "master") == proc.pid  # the pid file names it, as `down` reads it
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    proc = _launch(local, "worker", "fail", port, launcher)
    with pytest.raises(UserError) as refused:
        cluster._wait_until(local, "worker", proc, lambda: False, 60, "did not register")
    log = tmp_path / "cluster" / "worker.log"
    assert str(refused.value) == f"the Spark worker exited while starting (status 3); see {log}"
    assert "no Java here" in log.read_text()


def test_the_cluster_starts_and_stops_again_and_again(stack):
    """`up --cluster` right after `down`, a few times in a row: every start check holds (one in seven used to say
    a part exited while it was exec'ing Java) and every stop leaves nothing running."""
    assert not cluster.running(stack), "a cluster of this state folder is already up"
    for _ in range(3):
        cluster.up(stack, log=lambda line: None)
        assert cluster.running(stack)
        assert set(cluster.down(stack)) == {"spark master", "spark worker", "spark thrift"}
        assert not cluster.running(stack)


SPARK_ENGINES = {"ENCORE_TRAIN_ENGINE": "spark", "ENCORE_FRAME_ENGINE": "spark"}


@pytest.fixture(scope="module")
def cluster_run(spark_cluster):
    """A run on the cluster with every step on its Spark engine: the path data beyond the driver takes (the
    local run tests the in-process engines)."""
    from orchestration.local_runner import run_pipeline

    write_raw(postgres.pg_dsn(spark_cluster), generate(USERS, seed=31))
    lines = []
    before = {name: os.environ.get(name) for name in SPARK_ENGINES}
    os.environ.update(SPARK_ENGINES)
    try:
        summary = run_pipeline(spark_cluster, log=lines.append)
    finally:
        for name, value in before.items():
            os.environ.pop(name) if value is None else os.environ.update({name: value})
    return summary, lines


def test_the_cluster_run_took_every_steps_spark_engine(cluster_run):
    summary, _ = cluster_run
    engines = summary["engine"]
    steps = ("als", "ranking", "tables", "gates", "publish")
    assert {step: engines[step] for step in steps} == dict.fromkeys(steps, "spark")
    assert engines["als_reason"] == engines["ranking_reason"] == "ENCORE_TRAIN_ENGINE=spark"
    assert {c["engine"] for c in summary["checkpoints"]} == {"spark"}


def test_every_stage_ran_in_its_own_process_on_the_cluster(cluster_run):
    summary, lines = cluster_run
    assert summary["status"] == "ok", summary.get("error")
    assert any("on the local cluster spark://127.0.0.1:" in line for line in lines)
    pids = [step["pid"] for step in summary["steps"]]
    assert len(set(pids)) == len(pids) == len(NAMES) and os.getpid() not in pids


def test_cluster_run_publishes_what_the_local_run_would(cluster_run, spark_cluster):
    summary, _ = cluster_run
    assert read_latest(spark_cluster)["run_id"] == summary["run_id"]
    manifest = json.loads(_get(summary["manifest_url"]))
    users = {}
    for entry in manifest["files"]:
        body = _get(entry["url"])
        assert hashlib.sha256(body).hexdigest() == entry["sha256"] and body.count(b"\n") == entry["rows"]
        if entry["kind"] == "recommendations":
            users.update({row["uid"]: row for row in map(json.loads, body.decode().splitlines())})
    assert len(users) == USERS
    for row in users.values():
        assert len({item["listing_id"] for item in row["recommendations"]}) == spark_cluster.top_n
    assert all(c["success"] for c in manifest["checkpoints"])
    # ranked by the cluster's executors (mapInPandas over blocks of users), every row written by Spark and counted
    train = next(step for step in summary["steps"] if step["stage"] == "train")
    assert train["rows"]["recommendations"] == USERS * spark_cluster.top_n
    assert sum(train["rows"]["list_sources"].values()) == USERS


def _dbt_over_thrift(settings, args: list[str]) -> subprocess.CompletedProcess:
    env = {**cluster.stage_environment(settings), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    project = str(settings.project_dir)
    return subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "dbt"), *args, "--target", "spark_cluster",
         "--project-dir", project, "--profiles-dir", project, "--target-path", str(settings.state_dir / "dbt-thrift")],
        capture_output=True, text=True, env=env, timeout=900, stdin=subprocess.DEVNULL,
    )


def test_thrift_dbt_spark_submit_and_a_local_session_share_the_catalog_at_once(cluster_run, spark_cluster, spark):
    run_id = cluster_run[0]["run_id"]
    results = {}

    def dbt_build():
        results["dbt"] = _dbt_over_thrift(spark_cluster, ["build", "--select", "path:models/marts"])

    def submitted_job():  # re-publishes the run: reads recs.*, which the dbt build does not rewrite
        results["spark-submit"] = subprocess.run(
            cluster.submit_command(spark_cluster, "publish", run_id), capture_output=True, text=True,
            env=cluster.stage_environment(spark_cluster), timeout=900, stdin=subprocess.DEVNULL,
        )

    threads = [threading.Thread(target=dbt_build), threading.Thread(target=submitted_job)]
    for thread in threads:
        thread.start()
    spark.sql(f"create database if not exists shared_check location 's3a://{spark_cluster.lake_bucket}/warehouse/shared_check.db'")
    spark.table("staging.stg_raw__users").write.mode("overwrite").saveAsTable("shared_check.users_copy")
    local_rows = spark.table("shared_check.users_copy").count()
    for thread in threads:
        thread.join()
    assert results["dbt"].returncode == 0, results["dbt"].stdout[-3000:]
    assert results["spark-submit"].returncode == 0, results["spark-submit"].stderr[-3000:]
    assert local_rows == USERS
    assert read_latest(spark_cluster)["run_id"] == run_id
    seen = _dbt_over_thrift(spark_cluster, ["show", "--inline", "select count(*) as n from shared_check.users_copy"])
    assert seen.returncode == 0 and str(USERS) in seen.stdout, seen.stdout[-2000:]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rendered_parents(page, base: str, href: str) -> set[str]:
    """The links a reader sees under a node's 'Depends On', every tab of it clicked."""
    page.goto(base + href)
    section = page.locator("section:has(#depends_on)")
    section.locator("a[href^='#!/']").first.wait_for(timeout=20000)
    tabs = section.locator("ul.nav-tabs li a")
    found = set()
    for index in range(max(tabs.count(), 1)):
        if tabs.count():
            tabs.nth(index).click()
        found |= {a.get_attribute("href") for a in section.locator("ul.list-unstyled a[href^='#!/']").all()}
    return found


def test_docs_site_shows_lineage_from_the_published_json_back_to_raw_bids(cluster_run, spark_cluster, chromium):
    """dbt docs over thrift, served as the data team serves it, read in headless Chromium page by page."""
    generated = _dbt_over_thrift(spark_cluster, ["docs", "generate"])
    assert generated.returncode == 0, generated.stdout[-3000:]
    port = _free_port()
    env = {**cluster.stage_environment(spark_cluster), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    project = str(spark_cluster.project_dir)
    server = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "dbt"), "docs", "serve", "--no-browser", "--host", "127.0.0.1",
         "--port", str(port), "--project-dir", project, "--profiles-dir", project,
         "--target-path", str(spark_cluster.state_dir / "dbt-thrift")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/index.html"
    try:
        _wait_http(base)
        page = chromium.new_page()
        seen, todo = set(), ["#!/exposure/exposure.encore.published_recommendations"]
        while todo and "#!/source/source.encore.raw.bids" not in seen:
            href = todo.pop(0)
            seen.add(href)
            if href.startswith(("#!/model/", "#!/exposure/")):
                todo += sorted(_rendered_parents(page, base, href) - seen - set(todo))
        page.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "#!/source/source.encore.raw.bids" in seen, sorted(seen)
    assert {"#!/model/model.encore.dim_listings", "#!/model/model.encore.stg_raw__bids"} <= seen


def _wait_http(url: str, seconds: float = 60) -> None:
    import time

    deadline = time.time() + seconds
    while True:
        try:
            _get(url)
            return
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.5)


def _stack_pids(settings, spark) -> list[int]:
    """The stack's processes: the cluster's parts, the S3 server, PostgreSQL and this session's own Spark JVM."""
    from python_jobs.stack.processes import running_pid

    pids = [cluster._pid(settings, part) for part in cluster.PARTS]
    pids.append(running_pid(settings.state_dir / "s3" / "server.pid", "versitygw"))
    pids.append(int((settings.state_dir / "postgres" / "data" / "postmaster.pid").read_text().split()[0]))
    pids.append(spark.sparkContext._gateway.proc.pid)
    assert None not in pids, pids
    return pids


def test_every_port_of_the_stack_listens_on_loopback_only(spark_cluster, spark):
    """With `up --cluster` the master's and worker's web UIs listened on every interface and the Thrift server's
    driver and block manager on the machine's address (issue 30)."""
    from helpers.listening import listening

    ports = listening(_stack_pids(spark_cluster, spark))
    ours = {f"127.0.0.1:{port}" for port in (spark_cluster.pg_port, spark_cluster.s3_port,
                                            spark_cluster.spark_master_port, spark_cluster.thrift_port)}
    assert ours <= set(ports), ports  # the walk found the stack's processes
    assert len(ports) > len(ours)  # and the ports Spark picks itself (RPC, block managers, UIs)
    outside = {address: who for address, who in ports.items() if address.rsplit(":", 1)[0] not in ("127.0.0.1", "::1")}
    assert not outside, outside


NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def _needs_root() -> None:
    import shutil

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root to act as another user")


PROBE_APP = """
from pyspark.sql import SparkSession
spark = SparkSession.builder.getOrCreate()
print("RAN", spark.range(10).selectExpr("sum(id)").collect(), flush=True)
"""


def test_an_unprivileged_user_cannot_submit_an_application_to_the_master(spark_cluster):
    """The master ran whatever any local user submitted, as the user who started the cluster (issue 30)."""
    import tempfile

    import pyspark

    _needs_root()
    if not os.path.exists("/usr/bin/python3"):
        pytest.skip("nobody runs the system's Python (Java may not exec this one for another user)")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SPARK_", "ENCORE_", "_SPARK"))}
    env.update(HOME="/tmp", PYTHONPATH=os.path.dirname(os.path.dirname(pyspark.__file__)))
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:  # pytest's own tmp_path is root's alone
        os.chmod(folder, 0o755)
        probe = os.path.join(folder, "probe.py")
        with open(probe, "w") as out:
            out.write(PROBE_APP)
        os.chmod(probe, 0o644)
        result = subprocess.run(
            [*NOBODY, str(cluster.spark_home() / "bin" / "spark-submit"),
             "--master", cluster.master_url(spark_cluster), "--conf", "spark.cores.max=1",
             "--conf", "spark.executor.memory=512m", "--conf", "spark.pyspark.python=/usr/bin/python3", probe],
            capture_output=True, text=True, env=env, cwd="/tmp", timeout=600, stdin=subprocess.DEVNULL,
        )
    assert result.returncode != 0 and "RAN [Row" not in result.stdout, result.stdout[-2000:] + result.stderr[-3000:]
    # refused by the master (it drops a connection that does not prove the secret), not by a file's permissions
    assert "All masters are unresponsive" in result.stderr and "Permission denied" not in result.stderr, \
        result.stderr[-3000:]


THRIFT_PROBE = """
import sys
from pyhive import hive
user, password = sys.argv[3:5] if len(sys.argv) > 4 else (sys.argv[3], None)
try:
    conn = hive.connect(host="127.0.0.1", port=int(sys.argv[1]), username=user, password=password,
                        auth=sys.argv[2])
    cursor = conn.cursor()
    cursor.execute("show databases")
    print("ROWS", cursor.fetchall(), flush=True)
except Exception as exc:
    sys.exit(f"refused: {type(exc).__name__}: {exc}")
"""


def test_an_unprivileged_user_cannot_query_through_thrift_and_ours_can(spark_cluster):
    """Behind the Thrift server are the staging tables with users' emails; it answered any local user (issue 30)."""
    _needs_root()
    probe = [sys.executable, "-c", THRIFT_PROBE, str(spark_cluster.thrift_port)]
    env = {key: value for key, value in os.environ.items() if not key.startswith("ENCORE_")}
    for attempt in (["NONE", "nobody"], ["CUSTOM", "encore", "guess"], ["NOSASL", "nobody"]):
        result = subprocess.run([*NOBODY, *probe, *attempt], capture_output=True, text=True, env=env, cwd="/tmp",
                                timeout=300, stdin=subprocess.DEVNULL)
        assert result.returncode != 0 and "ROWS" not in result.stdout, (attempt, result.stdout)
        assert "refused" in result.stderr, (attempt, result.stderr[-2000:])
    creds = cluster.stage_environment(spark_cluster)
    ours = subprocess.run([*probe, "CUSTOM", creds["ENCORE_SPARK_THRIFT_USER"], creds["ENCORE_SPARK_THRIFT_PASSWORD"]],
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert ours.returncode == 0 and "ROWS" in ours.stdout, ours.stderr[-2000:]


def test_an_unprivileged_user_cannot_read_the_clusters_secrets_nor_see_them_in_ps(spark_cluster, spark):
    _needs_root()
    # the metastore's password too: the first session's builder put it on spark-submit's command line
    secrets = {"spark-secret": "", "spark-thrift-password": "", "postgres-password": ""}
    for name in secrets:
        path = spark_cluster.state_dir / name
        secrets[name] = path.read_text().strip()
        assert path.stat().st_mode & 0o777 == 0o600 and len(secrets[name]) >= 32
    for path in [spark_cluster.state_dir / name for name in secrets] + [
            spark_cluster.state_dir / "spark-conf" / "spark-defaults.conf"]:
        result = subprocess.run([*NOBODY, "cat", str(path)], capture_output=True, text=True)
        assert result.returncode != 0 and "Permission denied" in result.stderr, (path, result.stdout)
    from helpers.listening import descendants
    from python_jobs.stack.processes import command_line

    for pid in descendants(_stack_pids(spark_cluster, spark)):
        line = command_line(pid)
        assert not any(secret in line for secret in secrets.values()), line[:300]
