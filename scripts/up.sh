#!/usr/bin/env bash
# Quick start: from a fresh Debian 12 machine to the example app behind Berth.
#
#   bash scripts/up.sh
#
#   1. scripts/install.sh   apt packages + npm dependencies (skips what is there)
#   2. scripts/dockerd.sh   start the Docker Engine unless one answers
#   3. scripts/images.sh    local base images berth/busybox, berth/node:20
#   4. berth server         started in the background unless it already answers
#                           (log, pid, URL and token in $BERTH_DATA_DIR)
#   5. berth deploy -f examples/hello/compose.yaml
#
# Idempotent: a second run finds everything up and only re-applies the deploy.
# Env: BERTH_DATA_DIR (default /var/lib/berth), BERTH_SERVER_START_TIMEOUT (60),
#      BERTH_ALLOWED_BIND_ROOTS for a server it starts (default: this checkout's examples/),
#      BERTH_UP_SKIP_DEPLOY=1 to stop after step 4.
set -euo pipefail
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
BERTH_LOG_TAG=up

SERVER_JSON="$BERTH_DATA_DIR/server.json"
TOKEN_FILE="$BERTH_DATA_DIR/admin.token"
SERVER_LOG="$BERTH_DATA_DIR/server.log"
SERVER_PID="$BERTH_DATA_DIR/server.pid"
SERVER_START_TIMEOUT=${BERTH_SERVER_START_TIMEOUT:-60}
BERTH="$BERTH_ROOT/bin/berth"
APP_URL="http://127.0.0.1:8080/"

# server_url — the URL the running server wrote to server.json ("" if none).
server_url() {
  [[ -r $SERVER_JSON ]] || return 1
  node -e '
    const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const u = j.url || j.baseUrl || j.address || "";
    if (!u) process.exit(1);
    process.stdout.write(String(u).replace(/\/+$/, ""));
  ' "$SERVER_JSON" 2>/dev/null
}

# server_answers — GET /v1/ping with the admin token succeeds.
server_answers() {
  local url token
  url=$(server_url) || return 1
  [[ -r $TOKEN_FILE ]] || return 1
  token=$(tr -d '[:space:]' <"$TOKEN_FILE")
  curl -fsS -m 3 -o /dev/null -H "Authorization: Bearer $token" "$url/v1/ping" 2>/dev/null
}

# start_server — launch `berth server` detached (own session, nohup) so it
# outlives this script; the server itself writes server.json and admin.token.
start_server() {
  [[ -f $BERTH_ROOT/src/cli/main.ts ]] ||
    die "src/cli/main.ts is missing: this checkout has no Berth server yet"
  mkdir -p "$BERTH_DATA_DIR"
  # server.json from a dead server would point us at a stale URL.
  rm -f "$SERVER_JSON"
  printf '\n==== %s up.sh: starting berth server\n' "$(date -Is)" >>"$SERVER_LOG"
  (
    cd "$BERTH_ROOT"
    # The server builds and bind-mounts only under its allowed directories: the examples here.
    BERTH_DATA_DIR="$BERTH_DATA_DIR" BERTH_ALLOWED_BIND_ROOTS="${BERTH_ALLOWED_BIND_ROOTS:-$BERTH_ROOT/examples}" \
      nohup setsid "$BERTH" server </dev/null >>"$SERVER_LOG" 2>&1 &
    echo $! >"$SERVER_PID"
  )
  log "berth server started (pid $(cat "$SERVER_PID")), log: $SERVER_LOG"
}

ensure_server() {
  if server_answers; then
    log "berth server already answers at $(server_url)"
    return 0
  fi
  local pid
  if pid=$(read_pidfile "$SERVER_PID"); then
    log "berth server (pid $pid) is running but not answering yet; waiting"
  else
    start_server
    pid=$(cat "$SERVER_PID")
  fi
  local deadline=$((SECONDS + SERVER_START_TIMEOUT))
  until server_answers; do
    if ! pid_alive "$pid"; then
      tail -n 30 "$SERVER_LOG" >&2 || true
      die "berth server exited during startup; see $SERVER_LOG"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 30 "$SERVER_LOG" >&2 || true
      die "berth server did not answer GET /v1/ping within ${SERVER_START_TIMEOUT}s; see $SERVER_LOG"
    fi
    sleep 0.25
  done
  log "berth server ready at $(server_url)"
}

main() {
  require_root
  local t0
  t0=$(now_ms)
  stage "1/5 install"
  bash "$BERTH_ROOT/scripts/install.sh"
  stage "2/5 docker engine"
  bash "$BERTH_ROOT/scripts/dockerd.sh" start
  stage "3/5 base images"
  bash "$BERTH_ROOT/scripts/images.sh"
  stage "4/5 berth server"
  ensure_server
  export BERTH_DATA_DIR
  BERTH_URL=$(server_url)
  BERTH_TOKEN=$(tr -d '[:space:]' <"$TOKEN_FILE")
  export BERTH_URL BERTH_TOKEN
  if [[ ${BERTH_UP_SKIP_DEPLOY:-0} == 1 ]]; then
    log "BERTH_UP_SKIP_DEPLOY=1: not deploying the example"
    return 0
  fi
  stage "5/5 deploy examples/hello"
  (cd "$BERTH_ROOT" && "$BERTH" deploy -f examples/hello/compose.yaml)

  local code
  code=$(curl -s -m 3 -o /dev/null -w '%{http_code}' "$APP_URL" 2>/dev/null || true)
  [[ $code == 000 ]] && code=""
  log "done in $(elapsed_since "$t0") (GET $APP_URL -> ${code:-no answer})"
  cat <<EOF

  Berth is up. The example app "hello" (2 replicas) is served at:

      $APP_URL

  Next steps:
      curl ${APP_URL}api/whoami            # repeat: the replicas answer in turn
      ./bin/berth status hello
      ./bin/berth deploy -f examples/hello/compose.yaml   # after editing it

  Server: $BERTH_URL (log $SERVER_LOG, token $TOKEN_FILE)
EOF
}

main "$@"
