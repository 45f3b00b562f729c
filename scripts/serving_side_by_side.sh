#!/usr/bin/env bash
# Concurrent users against two versions of the app, side by side in one run, each served by its
# own `python app.py` (its own process, as deployed) and measured by this checkout's
# `python -m demo.bench --url`: throughput and p50/p95 latency of 4-bar /generate calls.
#   [CALLS=3] scripts/serving_side_by_side.sh OTHER_CHECKOUT [USERS...]   (CALLS: calls per visitor)
# e.g. git worktree add /tmp/old-main fb55f76 && scripts/serving_side_by_side.sh /tmp/old-main 1 2 4
set -euo pipefail
other=$(cd "$1" && pwd); shift
users=("${@:-1 2 4}")
here=$(cd "$(dirname "$0")/.." && pwd)
python="$here/.venv/bin/python"
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null' EXIT  # never leave a server behind
for checkout in "$other" "$here"; do
  port=$("$python" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
  tmp=$(mktemp -d)
  (cd "$checkout" && TMPDIR="$tmp" FGG_DB_URL="sqlite:///$tmp/listening.db" exec "$python" app.py --port "$port" >"$tmp/app.log" 2>&1) &
  server=$!
  until curl -sf "http://127.0.0.1:$port/config" >/dev/null; do sleep 1; done
  sleep 60  # the app's start-up work (the listening studies' renders) done before anything is timed
  echo "$checkout ($(git -C "$checkout" rev-parse --short HEAD)):"
  (cd "$here" && "$python" -m demo.bench --url "http://127.0.0.1:$port/" --users ${users[*]} --calls "${CALLS:-3}")
  kill "$server"; wait "$server" || true
  server=
  rm -rf "$tmp"
done
