# shellcheck shell=bash
# Shared helpers for Berth's scripts. Source it; safe under `set -euo pipefail`.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Defines: BERTH_ROOT (repo root), BERTH_DATA_DIR (default /var/lib/berth),
# logging (log/warn/die/stage), timing, and a few small utilities.

if [[ -n "${__BERTH_LIB_SOURCED:-}" ]]; then
  return 0
fi
__BERTH_LIB_SOURCED=1

# dockerd, ldconfig, ip live in sbin dirs that a non-login root shell may lack.
case ":$PATH:" in
  *:/usr/sbin:*) ;;
  *) PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" ;;
esac
export PATH

BERTH_ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
export BERTH_ROOT
export BERTH_DATA_DIR="${BERTH_DATA_DIR:-/var/lib/berth}"

# Paths used by scripts/dockerd.sh.
BERTH_DOCKERD_PIDFILE="${BERTH_DOCKERD_PIDFILE:-/run/berth-dockerd.pid}"
BERTH_DOCKERD_LOG="${BERTH_DOCKERD_LOG:-/var/log/berth-dockerd.log}"
BERTH_DOCKER_SOCK="${BERTH_DOCKER_SOCK:-/var/run/docker.sock}"
# The scripts manage the local Engine: point every docker CLI call at it.
export DOCKER_HOST="unix://$BERTH_DOCKER_SOCK"

# ---------------------------------------------------------------- logging
# Everything human-facing goes to stderr so stdout stays usable for values.
__berth_tag() { printf '[%s %s]' "$(date +%H:%M:%S)" "${BERTH_LOG_TAG:-$(basename "$0" .sh)}"; }
log()  { printf '%s %s\n' "$(__berth_tag)" "$*" >&2; }
warn() { printf '%s WARN: %s\n' "$(__berth_tag)" "$*" >&2; }
die()  { printf '%s ERROR: %s\n' "$(__berth_tag)" "$*" >&2; exit 1; }

# stage "Title" — a visible header for multi-step scripts.
stage() {
  printf '\n==================== %s ====================\n' "$*" >&2
}

# now_ms — milliseconds since the epoch.
now_ms() { date +%s%3N; }

# elapsed_since START_MS — "12.3s"
elapsed_since() {
  local start=$1 end
  end=$(now_ms)
  awk -v d="$((end - start))" 'BEGIN { printf "%.1fs", d / 1000 }'
}

have() { command -v "$1" >/dev/null 2>&1; }

require_root() {
  [[ $(id -u) -eq 0 ]] || die "must run as root (uses apt-get, dockerd, docker)"
}

# pkg_installed NAME — true when dpkg has the package fully installed
# (plain `dpkg -s` also succeeds for removed-but-not-purged packages).
pkg_installed() {
  local status
  status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
  [[ $status == "install ok installed" ]]
}

# wait_until TIMEOUT_S INTERVAL_S CMD... — poll CMD until it succeeds.
# Returns 1 on timeout.
wait_until() {
  local timeout=$1 interval=$2
  shift 2
  local deadline=$((SECONDS + timeout))
  while true; do
    if "$@"; then return 0; fi
    ((SECONDS >= deadline)) && return 1
    sleep "$interval"
  done
}

# pid_alive PID — process exists (and is not a zombie).
pid_alive() {
  local pid=$1 state
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -d /proc/$pid ]] || return 1
  state=$(awk '/^State:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
  [[ -n $state && $state != Z ]]
}

# pid_comm PID — the process' command name ("" if gone).
pid_comm() { cat "/proc/$1/comm" 2>/dev/null || true; }

# read_pidfile FILE — prints the pid if FILE holds a live pid.
read_pidfile() {
  local f=$1 pid
  [[ -r $f ]] || return 1
  pid=$(tr -dc '0-9' <"$f")
  pid_alive "$pid" || return 1
  printf '%s\n' "$pid"
}

# docker_ok [TIMEOUT_S] — a Docker Engine answers on the socket.
docker_ok() {
  local t=${1:-5}
  [[ -S $BERTH_DOCKER_SOCK ]] || return 1
  timeout "$t" docker -H "unix://$BERTH_DOCKER_SOCK" info >/dev/null 2>&1
}

# image_label IMAGE LABEL — prints a label's value ("" if unset); fails if no image.
image_label() {
  docker image inspect -f "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null
}

# file_newer A B — A exists and is newer than B (or B is missing).
file_newer() {
  [[ -e $1 ]] || return 1
  [[ ! -e $2 ]] && return 0
  [[ $1 -nt $2 ]]
}

# with_lock NAME — take an exclusive lock (fd 9) for the rest of the script,
# so concurrent runs (npm test while up.sh runs) do not race.
with_lock() {
  local f="/run/berth-$1.lock"
  mkdir -p /run
  exec 9>"$f"
  if ! flock -n 9; then
    log "waiting for another $1 run (lock $f)"
    flock -w "${2:-300}" 9 || die "timed out waiting for lock $f"
  fi
}
