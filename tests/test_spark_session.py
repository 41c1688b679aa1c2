"""The session's Python workers run the project's interpreter (its pandas and pyarrow), not the first python3 on PATH."""

import sys


def test_python_workers_run_this_interpreter(spark):
    worker = spark.sparkContext.parallelize([0], 1).map(lambda _: __import__("sys").executable).collect()[0]
    assert worker == sys.executable
