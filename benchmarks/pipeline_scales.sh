#!/usr/bin/env bash
# Per-stage wall time and peak memory of every process of the stack, for `encore-recs run` at several scales,
# in process (local) and on the local cluster. Uses its own state folder and ports; stops its stack at the end.
# Usage: benchmarks/pipeline_scales.sh [USERS ...]     (default: 1000 100000)
set -uo pipefail
cd "$(dirname "$0")/.."
export ENCORE_STATE_DIR=${ENCORE_STATE_DIR:-/tmp/encore-bench-state}
export ENCORE_PG_PORT=55701 ENCORE_S3_PORT=55702 ENCORE_SPARK_MASTER_PORT=55703 ENCORE_SPARK_THRIFT_PORT=55704
cli=.venv/bin/encore-recs
scales=("${@:-1000 100000}")
for mode in local cluster; do
  for users in ${scales[@]}; do
    echo "=== $mode, $users users"
    $cli down > /dev/null
    if [ "$mode" = cluster ]; then $cli up --cluster | grep '^spark'; else $cli up > /dev/null; fi
    $cli generate --users "$users" | tail -1
    .venv/bin/python benchmarks/peak_rss.py > "$ENCORE_STATE_DIR/peak-rss-$mode-$users.json" & sampler=$!
    /usr/bin/time -f "wall %e s" $cli run 2>&1 | grep -E "done in|^wall|error" | sed -E 's/ rows=.*//'
    kill $sampler; wait $sampler 2>/dev/null
    echo "peak RSS MB: $(cat "$ENCORE_STATE_DIR/peak-rss-$mode-$users.json")"
  done
done
$cli down
