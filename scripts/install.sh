#!/usr/bin/env bash
# Idempotent setup: Debian packages Berth needs, then npm dependencies.
#   - apt: installs only what is missing (one `apt-get update`, only if needed).
#     Services are NOT started by package installation (a temporary
#     policy-rc.d denies it): scripts/dockerd.sh starts Docker itself; slapd
#     (LDAP, for test/sso.test.ts) never runs as a system service: the test
#     starts its own with its own config and port, and stops it.
#   - npm: `npm ci` (or `npm install` without a lock) only when node_modules is
#     missing or package-lock.json is newer than node_modules/.package-lock.json.
#   - web: `npm run build:web` (web/dist), only when its inputs changed.
# Env: BERTH_SKIP_APT=1, BERTH_SKIP_NPM=1, BERTH_SKIP_WEB=1 to skip a part.
set -euo pipefail
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
BERTH_LOG_TAG=install

APT_PACKAGES=(docker.io nginx-light libnginx-mod-http-lua lua-resty-core git dnsutils wrk hey busybox-static curl iproute2 procps dnsmasq-base dnsperf prometheus docker-registry pebble chromium slapd ldap-utils)

install_apt() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    pkg_installed "$p" || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    log "apt packages: all present"
    return 0
  fi
  require_root
  log "apt packages missing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
  # Keep package post-install scripts from starting daemons (dockerd, nginx):
  # Berth starts what it needs itself, with its own flags.
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made_policy=1
  fi
  local rc=0
  {
    apt-get update -q &&
      apt-get install -y -q "${missing[@]}"
  } >&2 || rc=$?
  ((made_policy)) && rm -f "$policy"
  ((rc == 0)) || die "apt-get failed (rc=$rc)"
  log "apt packages installed: ${missing[*]}"
}

install_npm() {
  cd "$BERTH_ROOT"
  local marker=node_modules/.package-lock.json
  if [[ -d node_modules && -e $marker ]]; then
    if [[ ! -e package-lock.json ]] || ! file_newer package-lock.json "$marker"; then
      log "npm dependencies: up to date"
      return 0
    fi
  fi
  have npm || die "npm not found (Node 20 with npm is required)"
  local t0
  t0=$(now_ms)
  if [[ -e package-lock.json ]]; then
    log "npm ci (better-sqlite3 may compile from source: ~2 min) ..."
    npm ci --no-audit --no-fund >&2
  else
    log "npm install (no package-lock.json) ..."
    npm install --no-audit --no-fund >&2
  fi
  # npm ci recreates node_modules; make sure the marker is newer than the lock
  # so the next run is a no-op even with coarse mtimes.
  [[ -e $marker ]] && touch "$marker"
  log "npm dependencies installed in $(elapsed_since "$t0")"
}

# The web portal's bundle (web/dist, served by `berth server` at /): rebuilt only when its inputs changed.
build_web() {
  cd "$BERTH_ROOT"
  node scripts/build-web.mjs
}

[[ ${BERTH_SKIP_APT:-0} == 1 ]] || install_apt
[[ ${BERTH_SKIP_NPM:-0} == 1 ]] || install_npm
[[ ${BERTH_SKIP_WEB:-0} == 1 ]] || build_web
