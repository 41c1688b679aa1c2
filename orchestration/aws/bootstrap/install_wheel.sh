#!/bin/bash
# EMR bootstrap action (every node, as user hadoop, before Spark starts): install the encore-recs wheel and the dbt
# project, without PySpark: EMR brings its own Spark, and the wheel does not require pyspark (only `.[local]` does).
#   install_wheel.sh s3://.../encore_recs-X-py3-none-any.whl s3://.../project.tar.gz s3://.../requirements.lock
# The lock is used as pip constraints: the same versions as every test run, nothing it does not need.
# Uploaded by `encore-recs deploy`; ENCORE_BOOTSTRAP_PYTHON / ENCORE_BOOTSTRAP_ROOT exist for a dry run elsewhere.
set -euo pipefail
if [ $# -ne 3 ]; then
  echo "usage: $0 WHEEL_S3_URI PROJECT_S3_URI CONSTRAINTS_S3_URI" >&2
  exit 2
fi
wheel_uri=$1 project_uri=$2 constraints_uri=$3
python=${ENCORE_BOOTSTRAP_PYTHON:-python3.11}
root=${ENCORE_BOOTSTRAP_ROOT:-/opt/encore-recs}
sudo=sudo
if [ "$(id -u)" = 0 ] || [ -n "${ENCORE_BOOTSTRAP_PYTHON:-}" ]; then sudo=""; fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
aws s3 cp --only-show-errors "$wheel_uri" "$work/"
aws s3 cp --only-show-errors "$project_uri" "$work/project.tar.gz"
aws s3 cp --only-show-errors "$constraints_uri" "$work/constraints.txt"

if ! command -v "$python" >/dev/null; then
  $sudo dnf install -y -q python3.11 python3.11-pip  # Amazon Linux 2023, EMR 7
fi
$sudo "$python" -m pip install --quiet --disable-pip-version-check -c "$work/constraints.txt" "$work"/*.whl
$sudo mkdir -p "$root/project"
$sudo tar -xzf "$work/project.tar.gz" -C "$root/project"
"$python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('pyspark') is not None and 'pyspark came in')" \
  || { echo "pyspark was installed beside EMR's Spark; check the wheel's requirements" >&2; exit 1; }
"$python" -c "import python_jobs.cli, orchestration.stages" && echo "encore-recs installed into $python, project in $root/project"
