"""What spark-submit runs: `spark-submit ... python_jobs/stage_job.py STAGE --run-id ID` = `encore-recs step STAGE ...`."""

import sys

from python_jobs.cli import main

if __name__ == "__main__":
    sys.exit(main(["step", *sys.argv[1:]]))
