#!/usr/bin/env bash
# Load on `encore-recs serve` over the latest published run of the configured state folder:
# wrk (Debian package) from loopback, random uids and user names, closed loop at several connection counts,
# then POST /v1/events in batches of 100 (every event fsynced before the answer) at the same connection counts,
# then the server's peak memory. Publish a 100,000-user run first: make demo USERS=100000
# It creates an API key of its own (read,events) for the run and revokes it at the end; the per-key events rate is
# lifted for its server (ENCORE_EVENTS_RATE_PER_KEY), so the figures are the server's, not the limit's.
# Usage: benchmarks/serve_load.sh [seconds per level, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
command -v wrk >/dev/null || { echo "serve_load: wrk is missing; apt-get install wrk" >&2; exit 2; }
port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
key=$(.venv/bin/encore-recs keys create --scope read,events --name serve-load | tail -1)
export KEY=$key
auth="Authorization: Bearer $key"
ENCORE_EVENTS_RATE_PER_KEY=10000000 ENCORE_EVENTS_BURST_PER_KEY=100000000 \
  .venv/bin/encore-recs serve --port "$port" --poll-seconds 3600 > /tmp/encore-serve-load.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; .venv/bin/encore-recs keys revoke "$(echo "$key" | cut -d_ -f2)" >/dev/null' EXIT
for _ in $(seq 1 600); do
  curl -sf "127.0.0.1:$port/ready" >/dev/null && break
  kill -0 $server 2>/dev/null || { cat /tmp/encore-serve-load.log >&2; exit 2; }
  sleep 0.5
done
users=$(curl -sf -H "$auth" "127.0.0.1:$port/v1/run" | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["users"])')
echo "serving $(curl -sf 127.0.0.1:$port/ready); users=$users; loaded RSS $(ps -o rss= -p $server | awk '{printf "%.0f MB", $1/1024}')"
names=$(.venv/bin/python - "$port" "$users" <<'PY'
import json, os, random, sys, urllib.parse, urllib.request
port, users = sys.argv[1], int(sys.argv[2])
auth = {"Authorization": f"Bearer {os.environ['KEY']}"}
random.seed(42)
names = []
for uid in random.sample(range(1, users + 1), min(users, 500)):
    try:
        url = f"http://127.0.0.1:{port}/v1/users/{uid}/recommendations?n=1"
        with urllib.request.urlopen(urllib.request.Request(url, headers=auth)) as r:
            names.append(urllib.parse.quote(json.load(r)["user_name"]))
    except OSError:
        pass
print(",".join(f'"{n}"' for n in names))
PY
)
script=$(mktemp --suffix=.lua)
cat > "$script" <<LUA
math.randomseed(42)
wrk.headers["Authorization"] = "Bearer $key"
local names = {$names}
request = function()
  if math.random() < 0.5 then
    return wrk.format("GET", "/v1/users/" .. math.random(1, $users) .. "/recommendations")
  end
  return wrk.format("GET", "/v1/users/by-name/" .. names[math.random(1, #names)] .. "/recommendations?n=5")
end
LUA
# levels SCRIPT UNIT PER_REQUEST: wrk at 1, 4 and 16 connections; throughput in UNIT (requests x PER_REQUEST)/s
levels() {
  printf "%-12s %10s %10s %10s %10s %8s\n" connections "$2/s" "p50 ms" "p99 ms" "max ms" non2xx
  for connections in 1 4 16; do
    out=$(wrk -t1 -c"$connections" -d"${seconds}s" --latency -s "$1" "http://127.0.0.1:$port")
    rate=$(echo "$out" | awk -v k="$3" '/Requests\/sec/ {printf "%.0f", $2 * k}')
    p50=$(echo "$out" | awk '$1=="50%" {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    max=$(echo "$out" | awk '/Latency/ && !/Distribution/ {print $4}')
    bad=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
    printf "%-12s %10s %10s %10s %10s %8s\n" "$connections" "$rate" "$p50" "$p99" "$max" "${bad:-0}"
  done
}
levels "$script" req 1
events=$(mktemp --suffix=.lua)
cat > "$events" <<LUA
local sent = 0
local run = tostring(os.time())
request = function()  -- 100 views a batch, ids never repeated, at the server's current time
  local at = os.date("!%Y-%m-%dT%H:%M:%SZ")
  local parts = {}
  for i = 1, 100 do
    sent = sent + 1
    parts[i] = string.format('{"event_id":"load-%s-%d","type":"view","uid":%d,"listing_id":%d,"at":"%s"}',
                             run, sent, math.random(1, $users), math.random(1, 20000), at)
  end
  return wrk.format("POST", "/v1/events", {["Content-Type"] = "application/json", ["Authorization"] = "Bearer $key"},
                    '{"events":[' .. table.concat(parts, ",") .. ']}')
end
LUA
printf "\nPOST /v1/events, 100 events a request\n"
levels "$events" events 100
echo "server peak RSS: $(awk '/VmHWM/ {printf "%.0f MB", $2/1024}' /proc/$server/status)"
