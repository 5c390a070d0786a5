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
#                   The files are first bundled by scripts/build-unit.mjs (esbuild, as tsx transforms
#                   them; a few seconds) and run by plain node: each file is its own process, and tsx's
#                   loader cost ~1 s of CPU per process, a third of the stage. BERTH_UNIT_TSX=1 runs
#                   the .ts files through tsx as before (and as a single file is run by hand).
#   7. integration  node --test --test-concurrency=1 on test/**/*.test.ts, in two lanes side by
#                   side, each one file at a time: the main lane, and the cluster lane (the
#                   many-host files test/cluster-*.test.ts on their own test hosts,
#                   BERTH_TESTHOSTS_SLOT=9, which mostly wait on Swarm heartbeats, plus SECOND_LANE),
#                   chosen by measured durations so both end at about the same time.
#                   BERTH_TEST_LANES=1 runs everything in one lane.
#                   Files in different lanes run at the same time: their port ranges are disjoint
#                   (test/port-ranges.test.ts), their servers' own ports come from a block per slot
#                   (test/helpers/harness.ts freePort) and each server has its own data dir and
#                   cluster id. Files in ALONE run by themselves after the lanes.
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
UNIT_BUILD=
trap 'rm -rf "$TAP_DIR" ${UNIT_BUILD:+"$UNIT_BUILD"}' EXIT
node_tap() {
  node --import tsx --test "$@" | tee "$(mktemp "$TAP_DIR/run.XXXXXX")"
  return "${PIPESTATUS[0]}"
}
# --test-timeout bounds each file as a whole too (node 20): portal.test.ts took > 300 s with three
# lanes beside each other and was cancelled; 900 s still ends a hung file well inside CI's limit.
node_test() { node_tap --test-concurrency=1 --test-timeout=900000 "$@"; }

# Single-host files that run in the cluster lane, chosen by their
# duration on a 2-core machine so the two lanes end at about the same time. Full check of
# 2026-12-01 17:22 (two lanes): main lane 1,467 s, cluster lane 1,372 s — with install and unit the
# run was ~1,850 s, past CI's 30 minutes. Durations then: portal 208 s, app-network 172, https 120,
# releases 107, cli 93, purge 83, deploy-build 76, registry-pull 69, git-push 68, pools 68,
# compose-model 66 (cluster-* ~670 s together).
# A third lane gave no gain on 2 cores (the suite is CPU-bound: with it the main lane's files ran past
# 1,500 s, and four files failed under that load), so there are two: the cluster lane takes
# SECOND_LANE (portal, app-network, releases, cli, purge, config: ~1,420 s with the cluster files),
# the main lane the rest (~1,420 s).
# 2026-12-02 00:00 (after the session's cuts: test-host setup, stop grace periods, shorter bounds in
# tests): main lane 1,426 s, the cluster lane's tests ~115 s fewer than the main lane's; image-gc
# (57 s) moved over.
SECOND_LANE=(test/portal.test.ts test/cli.test.ts test/releases.test.ts test/app-network.test.ts test/purge.test.ts
  test/config.test.ts test/image-gc.test.ts)

# Files that must run with nothing beside them: docker-restart stops and starts the machine's Docker
# Engine (a build or deploy of the other lane at that moment fails: cluster-edge did, 2026-12-01);
# log-collection's retention test needs its 100 ms retention timer to keep up with a 60,000-line
# burst (with three lanes beside it, a starved timer let one partition outgrow the bound and the
# whole partition went: 0 lines kept — a known limit of partition-wise retention, see the note).
ALONE=(test/docker-restart.test.ts test/log-collection.test.ts)

listed() {
  local f=$1
  shift
  local g
  for g in "$@"; do [[ $f == "$g" ]] && return 0; done
  return 1
}

# integration FILE... — the lanes (see the header); the cluster lane's output follows the main lane's.
# BERTH_TEST_LANES=1 runs everything in one lane.
integration() {
  local f cluster=() rest=() alone=()
  if [[ ${BERTH_TEST_LANES:-2} == 1 ]]; then
    node_test "$@"
    return
  fi
  for f in "$@"; do
    if listed "$f" "${ALONE[@]}"; then alone+=("$f")
    elif [[ $f == test/cluster-*.test.ts ]] || listed "$f" "${SECOND_LANE[@]}"; then cluster+=("$f")
    else rest+=("$f"); fi
  done
  local arc=0 t0 pids=() outs=() names=() i rc
  t0=$(now_ms)
  side_lane() { # NAME SLOT FILE...
    local name=$1 slot=$2 out
    shift 2
    (($# > 0)) || return 0
    out=$(mktemp /tmp/berth-lane.XXXXXX)
    BERTH_TESTHOSTS_SLOT=$slot node_test "$@" >"$out" 2>&1 &
    pids+=($!)
    outs+=("$out")
    names+=("$name")
    log "$name lane ($# files, test hosts slot $slot) runs beside the main lane; its output follows"
  }
  side_lane cluster "${BERTH_TEST_CLUSTER_SLOT:-9}" "${cluster[@]}"
  if ((${#rest[@]} > 0)); then node_test "${rest[@]}" || arc=$?; fi
  log "main lane done ($(elapsed_since "$t0")); waiting for the others"
  for i in "${!pids[@]}"; do
    rc=0
    wait "${pids[$i]}" || rc=$?
    printf '\n==================== %s lane ====================\n' "${names[$i]}"
    cat "${outs[$i]}"
    rm -f "${outs[$i]}"
    log "${names[$i]} lane: exit $rc, done by $(elapsed_since "$t0")"
    ((arc != 0)) || arc=$rc
  done
  if ((${#alone[@]} > 0)); then
    log "files that run alone: ${alone[*]}"
    rc=0
    node_test "${alone[@]}" || rc=$?
    ((arc != 0)) || arc=$rc
  fi
  return "$arc"
}

# unit_tests FILE... — see the header (6.). The bundles go to a directory of this run inside the
# repository (packages are resolved from node_modules), removed when the stage ends (or at exit).
unit_tests() {
  local opts=(--test-concurrency="${BERTH_UNIT_CONCURRENCY:-2}" --test-timeout=300000)
  if [[ ${BERTH_UNIT_TSX:-} == 1 ]]; then
    node_tap "${opts[@]}" "$@"
    return
  fi
  UNIT_BUILD=$(mktemp -d "$BERTH_ROOT/.unit-build.XXXXXX")
  local f bundles=() rc=0
  node scripts/build-unit.mjs "$UNIT_BUILD" "$@" || return
  for f in "$@"; do bundles+=("${UNIT_BUILD#"$BERTH_ROOT"/}/${f%.ts}.mjs"); done
  # (pipefail: the status is node's)
  if node --enable-source-maps --test "${opts[@]}" "${bundles[@]}" | tee "$(mktemp "$TAP_DIR/run.XXXXXX")"; then rc=0; else rc=$?; fi
  rm -rf "$UNIT_BUILD"
  return "$rc"
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
    run_stage unit unit_tests "${unit[@]}"
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
