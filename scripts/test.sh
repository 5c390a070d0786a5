#!/usr/bin/env bash
# `npm test`: the whole suite, stage by stage; stops at the first failing stage.
#
#   1. install      scripts/install.sh (apt packages, npm dependencies)
#   2. docker       scripts/dockerd.sh start
#   3. images       scripts/images.sh, scripts/debian-services.sh (PostgreSQL and
#                   Redis from Debian packages for the three-tier test; built once per
#                   machine, cached by input hash)
#   4. typecheck    tsc --noEmit -p tsconfig.json
#   5. lint         eslint src test bench
#   6. unit         node --test on src/**/*.test.ts and web/src/**/*.test.ts, two files at a time
#                   (BERTH_UNIT_CONCURRENCY, default 2: node's own default is one fewer than the
#                   CPUs, i.e. one at a time on CI's 2 cores, and the unit files are independent:
#                   temp dirs of their own, no fixed ports); a file that hangs fails after 300 s.
#   7. integration  node --test --test-concurrency=1 on test/**/*.test.ts, in two lanes side by
#                   side: the many-host files (test/cluster-*.test.ts, on their own set of test
#                   hosts, BERTH_TESTHOSTS_SLOT=9) mostly wait on Swarm heartbeats, so the second
#                   lane also takes the files listed in SECOND_LANE (about as long together as the
#                   rest); each lane one file at a time. BERTH_TEST_LANES=1 runs them all in one lane.
#                   Files in different lanes run at the same time: their port ranges are disjoint
#                   (test/port-ranges.test.ts) and each server has its own data dir and cluster id.
#                   Files in ALONE (they restart the machine's Docker Engine, which every other
#                   file uses for builds and containers) run by themselves after both lanes.
#
# Stages with nothing to run are skipped. Each node --test run ends with node's
# own summary lines (tests/pass/fail/...), which is how runs are counted.
# Env: BERTH_TEST_ONLY="unit integration" runs only the named stages.
set -euo pipefail
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
BERTH_LOG_TAG=test
cd "$BERTH_ROOT"

T_START=$(now_ms)
SUMMARY=()

want() {
  [[ -z ${BERTH_TEST_ONLY:-} ]] && return 0
  [[ " $BERTH_TEST_ONLY " == *" $1 "* ]]
}

# run_stage NAME CMD... — header, run, timing; exit on failure.
run_stage() {
  local name=$1
  shift
  if ! want "$name"; then return 0; fi
  stage "$name"
  local t0 rc=0
  t0=$(now_ms)
  "$@" || rc=$?
  if ((rc != 0)); then
    SUMMARY+=("$name: FAILED (exit $rc, $(elapsed_since "$t0"))")
    print_summary
    node scripts/tap-failures.mjs "$TAP_DIR"/run.* || true
    printf '\n%s stage "%s" FAILED (exit %d)\n' "$(__berth_tag)" "$name" "$rc" >&2
    exit "$rc"
  fi
  SUMMARY+=("$name: ok ($(elapsed_since "$t0"))")
}

skip_stage() {
  if ! want "$1"; then return 0; fi
  stage "$1"
  log "skipped: $2"
  SUMMARY+=("$1: skipped ($2)")
}

print_summary() {
  printf '\n==================== summary ====================\n' >&2
  local line
  for line in "${SUMMARY[@]}"; do printf '  %s\n' "$line" >&2; done
  printf '  total: %s\n' "$(elapsed_since "$T_START")" >&2
}

# find_tests DIR — sorted *.test.ts files under DIR (none if DIR is missing).
find_tests() {
  [[ -d $1 ]] || return 0
  find "$1" -name '*.test.ts' -not -path '*/node_modules/*' | LC_ALL=C sort
}

lint() {
  local dirs=() d
  for d in src test bench web; do [[ -d $d ]] && dirs+=("$d"); done
  if ((${#dirs[@]} == 0)); then return 0; fi
  # An empty folder (bench/ early on) is not an error.
  npx --no-install eslint --no-error-on-unmatched-pattern "${dirs[@]}"
}

# Every node --test run's TAP output is also kept in TAP_DIR: when a stage fails, the failures are
# printed again at the very end (scripts/tap-failures.mjs), where a truncated CI log still shows them.
TAP_DIR=$(mktemp -d /tmp/berth-tap.XXXXXX)
trap 'rm -rf "$TAP_DIR"' EXIT
node_tap() {
  node --import tsx --test "$@" | tee "$(mktemp "$TAP_DIR/run.XXXXXX")"
  return "${PIPESTATUS[0]}"
}
node_test() { node_tap --test-concurrency=1 --test-timeout=300000 "$@"; }

# Single-host files that run in the cluster lane, chosen by their duration on a 2-core machine so the
# two lanes end at about the same time. Full check of 2026-12-01 15:14 (both lanes side by side):
# main lane 1,590 s, cluster lane 1,283 s with portal ~209 s, releases ~166 s, app-network ~121 s,
# cli ~107 s; purge (~129 s) moved over after it.
SECOND_LANE=(test/portal.test.ts test/cli.test.ts test/releases.test.ts test/app-network.test.ts test/purge.test.ts)

# Files that must run with nothing beside them: docker-restart stops and starts the machine's Docker
# Engine (a build or deploy of the other lane at that moment fails: cluster-edge did, 2026-12-01).
ALONE=(test/docker-restart.test.ts)

runs_alone() {
  local f
  for f in "${ALONE[@]}"; do [[ $1 == "$f" ]] && return 0; done
  return 1
}

in_second_lane() {
  local f
  [[ $1 == test/cluster-*.test.ts ]] && return 0
  for f in "${SECOND_LANE[@]}"; do [[ $1 == "$f" ]] && return 0; done
  return 1
}

# integration FILE... — the two lanes (see the header); the cluster lane's output follows the other's.
integration() {
  local f cluster=() rest=() alone=()
  for f in "$@"; do
    if runs_alone "$f"; then alone+=("$f"); elif in_second_lane "$f"; then cluster+=("$f"); else rest+=("$f"); fi
  done
  if [[ ${BERTH_TEST_LANES:-2} == 1 || ${#cluster[@]} -eq 0 || ${#rest[@]} -eq 0 ]]; then
    node_test "$@"
    return
  fi
  local arc=0
  two_lanes "${#cluster[@]}" "${cluster[@]}" "${rest[@]}" || arc=$?
  if ((${#alone[@]} > 0)); then
    log "files that run alone: ${alone[*]}"
    local rc=0
    node_test "${alone[@]}" || rc=$?
    ((arc != 0)) || arc=$rc
  fi
  return "$arc"
}

# two_lanes N FILE... — the first N files in the cluster lane, the rest in the main lane, side by side.
two_lanes() {
  local n=$1
  shift
  local cluster=("${@:1:n}") rest=("${@:n+1}")
  local out pid rc=0 crc=0 t0
  out=$(mktemp /tmp/berth-cluster-lane.XXXXXX)
  t0=$(now_ms)
  BERTH_TESTHOSTS_SLOT=${BERTH_TEST_CLUSTER_SLOT:-9} node_test "${cluster[@]}" >"$out" 2>&1 &
  pid=$!
  log "cluster lane (${#cluster[@]} files, test hosts slot ${BERTH_TEST_CLUSTER_SLOT:-9}) runs beside the rest; its output follows"
  node_test "${rest[@]}" || rc=$?
  log "main lane done ($(elapsed_since "$t0")); waiting for the cluster lane"
  wait "$pid" || crc=$?
  printf '\n==================== cluster lane (%s) ====================\n' "${cluster[*]}"
  cat "$out"
  rm -f "$out"
  log "cluster lane: exit $crc, both lanes done in $(elapsed_since "$t0")"
  ((rc == 0)) || return "$rc"
  return "$crc"
}

main() {
  run_stage install bash scripts/install.sh
  run_stage docker bash scripts/dockerd.sh start
  run_stage images bash -c 'bash scripts/images.sh && bash scripts/debian-services.sh'
  run_stage typecheck npx --no-install tsc --noEmit -p tsconfig.json
  run_stage lint lint

  local unit=() integ=()
  mapfile -t unit < <(find_tests src; find_tests web/src)
  mapfile -t integ < <(find_tests test)

  if ((${#unit[@]} > 0)); then
    run_stage unit node_tap --test-concurrency="${BERTH_UNIT_CONCURRENCY:-2}" --test-timeout=300000 "${unit[@]}"
  else
    skip_stage unit "no src/**/*.test.ts files"
  fi

  if ((${#integ[@]} > 0)); then
    run_stage integration integration "${integ[@]}"
  else
    skip_stage integration "no test/**/*.test.ts files"
  fi

  print_summary
  printf '\n%s all stages passed\n' "$(__berth_tag)" >&2
}

main "$@"
