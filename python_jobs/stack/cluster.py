"""The local Spark cluster that mirrors EMR on one machine: a standalone master and worker and the Thrift server.

Every port of all three, and of the executors, is on loopback (SPARK_LOCAL_IP
binds the master's and worker's web UIs, which cannot be turned off; the
drivers' addresses are in the shared conf); they admit only processes holding
the state folder's Spark secret (`spark.authenticate`, from the shared conf),
and the Thrift server asks for a password (python_jobs.stack.thrift_auth).
They run from the PySpark wheel's own `spark-class` / `spark-submit`, share
the catalog (the Postgres metastore) and the S3 settings through
SPARK_CONF_DIR, and keep pid files and logs under `<state>/cluster/`. Every
application sets `spark.cores.max`: without it the first one (the Thrift
server) would hold every core and stage jobs would wait forever.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from python_jobs.config import Settings
from python_jobs.errors import UserError
from python_jobs.stack.jars import spark_home
from python_jobs.stack.spark import spark_conf, write_spark_defaults
from python_jobs.stack.thrift_auth import hiveconf, provider_jar, thrift_env
from python_jobs.stack.metastore import check_schema
from python_jobs.stack.processes import command_line, port_open, running_pid, stop_pid_file

PARTS = ("master", "worker", "thrift")
WORKER_CORES, WORKER_MEMORY = 4, "10g"
THRIFT_CORES, THRIFT_EXECUTOR_MEMORY, THRIFT_DRIVER_MEMORY = 1, "2g", "1g"
JOB_CORES, JOB_EXECUTOR_MEMORY = 2, "4g"
THRIFT_START_SECONDS = 240


def _dir(settings: Settings) -> Path:
    path = settings.state_dir / "cluster"
    path.mkdir(parents=True, exist_ok=True)
    return path


def master_url(settings: Settings) -> str:
    return f"spark://127.0.0.1:{settings.spark_master_port}"


MAIN_CLASS = {"master": "org.apache.spark.deploy.master.Master", "worker": "org.apache.spark.deploy.worker.Worker",
              "thrift": "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"}


def _pid(settings: Settings, part: str) -> int | None:
    """The part's pid while a process of that part runs under it (not whatever reused a stale pid)."""
    return running_pid(_dir(settings) / f"{part}.pid", MAIN_CLASS[part])


def running(settings: Settings) -> bool:
    """True when the master, the worker and the Thrift server this state folder started are all alive."""
    return all(_pid(settings, part) is not None for part in PARTS)


def environment(settings: Settings) -> dict[str, str]:
    """What every cluster process needs: the shared Spark conf, this Python, the stack's credentials."""
    return {
        **os.environ,
        "SPARK_HOME": str(spark_home()),
        "SPARK_CONF_DIR": str(write_spark_defaults(settings)),
        "SPARK_LOG_DIR": str(_dir(settings)),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    }


def stage_environment(settings: Settings) -> dict[str, str]:
    """A stage job's environment on the cluster: its driver joins the master, dbt goes over thrift."""
    return {
        **environment(settings),
        "ENCORE_SPARK_MASTER": master_url(settings),
        "ENCORE_DBT_SPARK_TARGET": "spark_cluster",
        "ENCORE_SPARK_THRIFT_PORT": str(settings.thrift_port),
        "ENCORE_SPARK_THRIFT_HOST": "127.0.0.1",
        **thrift_env(settings),
    }


def submit_command(settings: Settings, stage: str, run_id: str) -> list[str]:
    """spark-submit of one stage job to the local master (client mode: the driver runs here)."""
    return [
        str(spark_home() / "bin" / "spark-submit"), "--master", master_url(settings),
        "--name", f"encore-{stage}-{run_id}",
        "--conf", f"spark.cores.max={JOB_CORES}", "--conf", f"spark.executor.memory={JOB_EXECUTOR_MEMORY}",
        # the driver (here, in client mode) reads the marts train fits on: ENCORE_SPARK_DRIVER_MEMORY, as in process
        "--driver-memory", settings.driver_memory,
        str(Path(__file__).parent.parent / "stage_job.py"), stage, "--run-id", run_id,
    ]


def _commands(settings: Settings) -> dict[str, list[str]]:
    home, work = spark_home(), _dir(settings)
    return {
        "master": [str(home / "bin" / "spark-class"), MAIN_CLASS["master"],
                   "--host", "127.0.0.1", "--port", str(settings.spark_master_port), "--webui-port", "0"],
        "worker": [str(home / "bin" / "spark-class"), MAIN_CLASS["worker"],
                   "--host", "127.0.0.1", "--cores", str(WORKER_CORES), "--memory", WORKER_MEMORY,
                   "--webui-port", "0", "--work-dir", str(work / "work"), master_url(settings)],
        "thrift": [str(home / "bin" / "spark-submit"), "--master", master_url(settings),
                   "--class", MAIN_CLASS["thrift"], "--name", "encore-thrift",
                   "--conf", f"spark.cores.max={THRIFT_CORES}", "--conf", f"spark.executor.memory={THRIFT_EXECUTOR_MEMORY}",
                   "--driver-memory", THRIFT_DRIVER_MEMORY,
                   # the password check on the driver's class path, beside what every driver has there
                   "--conf", f"spark.driver.extraClassPath={spark_conf(settings)['spark.driver.extraClassPath']}:"
                             f"{provider_jar()}",
                   "spark-internal",
                   "--hiveconf", f"hive.server2.thrift.port={settings.thrift_port}",
                   "--hiveconf", "hive.server2.thrift.bind.host=127.0.0.1", *hiveconf()],
    }


def _start(settings: Settings, part: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
    work = _dir(settings)
    with open(work / f"{part}.log", "ab") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=work, start_new_session=True)
    deadline = time.time() + 10  # until the child has exec'd: before that its command line is still ours
    while MAIN_CLASS[part] not in command_line(proc.pid) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    (work / f"{part}.pid").write_text(str(proc.pid))
    return proc


def _wait_until(settings: Settings, part: str, proc: subprocess.Popen, ready: Callable[[], bool], seconds: float,
                not_ready: str) -> None:
    """Until `ready()`. Whether the part exited meanwhile is the child's own status (ours: `poll`), never a read of
    its command line, which for an instant is empty or the launcher's while spark-class execs Java."""
    log = _dir(settings) / f"{part}.log"
    deadline = time.time() + seconds
    while time.time() < deadline:
        if ready():
            return
        if proc.poll() is not None:
            raise UserError(f"the Spark {part} exited while starting (status {proc.returncode}); see {log}")
        time.sleep(0.5)
    raise UserError(f"the Spark {part} {not_ready} within {seconds:.0f}s; see {log}")


def _registered(settings: Settings) -> bool:
    log = _dir(settings) / "worker.log"
    return log.exists() and "Successfully registered with master" in log.read_text(errors="ignore")


def up(settings: Settings, log=print) -> None:
    """Start whichever of master, worker and Thrift server is not running (the local stack must be up)."""

    check_schema(settings)
    env, commands = environment(settings), _commands(settings)
    ports = {"master": settings.spark_master_port, "thrift": settings.thrift_port}
    for part in PARTS:
        if _pid(settings, part) is not None:
            continue
        port = ports.get(part)
        if port is not None and port_open(port):
            variable = "ENCORE_SPARK_MASTER_PORT" if part == "master" else "ENCORE_SPARK_THRIFT_PORT"
            raise UserError(f"127.0.0.1:{port} is in use by another process; stop it or set {variable} to a free port")
        began = time.time()
        proc = _start(settings, part, commands[part], {**env, **thrift_env(settings)} if part == "thrift" else env)
        if part == "worker":
            _wait_until(settings, part, proc, partial(_registered, settings), 60,
                        f"did not register with {master_url(settings)}")
        else:
            seconds = THRIFT_START_SECONDS if part == "thrift" else 60
            _wait_until(settings, part, proc, partial(port_open, port), seconds, f"did not listen on 127.0.0.1:{port}")
        log(f"spark {part}: up in {time.time() - began:.1f}s")


def down(settings: Settings) -> list[str]:
    """Stop the Thrift server, the worker (and its executors) and the master; return what was stopped."""
    running_parts = [part for part in reversed(PARTS) if _pid(settings, part) is not None]
    for part in reversed(PARTS):
        stop_pid_file(_dir(settings) / f"{part}.pid", MAIN_CLASS[part])
    return [f"spark {part}" for part in running_parts]
