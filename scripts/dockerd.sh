#!/usr/bin/env bash
# Manage the Docker Engine Berth runs on.
#
#   scripts/dockerd.sh start|stop|restart|status
#
# start    If an Engine already answers on /var/run/docker.sock and we did not
#          start it, do nothing. Otherwise launch
#            dockerd --bridge=none --iptables=false --ip6tables=false --ip-forward=false
#                    -p /run/berth-dockerd.pid [--storage-driver=...]
#          and turn IPv4 forwarding off (net.ipv4.ip_forward=0): containers of
#          two app networks (apps, environments, Compose networks) then cannot
#          reach each other — nothing routes between the bridges — while the
#          host still reaches every container and docker-proxy publishes ports.
#          in the background (nohup, own session), log to
#          /var/log/berth-dockerd.log, and wait (60 s) until `docker info` answers.
# stop     SIGTERM to the pid in /run/berth-dockerd.pid only; wait until it exits.
#          (dockerd stops its containers first, then its managed containerd.)
#          Refuses to stop an Engine we did not start.
# restart  stop + start. For an Engine we did not start: `systemctl restart
#          docker` when systemd manages it, else an error.
# status   Prints one line; exit 0 if an Engine answers, 3 if not.
#
# Env: BERTH_DOCKER_SOCK (/var/run/docker.sock), BERTH_DOCKERD_PIDFILE
#      (/run/berth-dockerd.pid), BERTH_DOCKERD_LOG (/var/log/berth-dockerd.log),
#      BERTH_DOCKER_DATA_ROOT (/var/lib/docker), BERTH_DOCKER_EXEC_ROOT (/var/run/docker),
#      BERTH_DOCKER_STORAGE_DRIVER (overlay2|vfs|...; default: overlay2 if an
#      overlay mount works on the data root's filesystem, else vfs),
#      BERTH_DOCKERD_START_TIMEOUT (60), BERTH_DOCKERD_STOP_TIMEOUT (60),
#      BERTH_DOCKERD_EXTRA_ARGS (appended to the dockerd command line).
set -euo pipefail
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
BERTH_LOG_TAG=dockerd

DATA_ROOT=${BERTH_DOCKER_DATA_ROOT:-/var/lib/docker}
EXEC_ROOT=${BERTH_DOCKER_EXEC_ROOT:-/var/run/docker}
START_TIMEOUT=${BERTH_DOCKERD_START_TIMEOUT:-60}
STOP_TIMEOUT=${BERTH_DOCKERD_STOP_TIMEOUT:-60}

# Our dockerd's pid, if it is alive and really is a dockerd.
our_pid() {
  local pid
  pid=$(read_pidfile "$BERTH_DOCKERD_PIDFILE") || return 1
  [[ $(pid_comm "$pid") == dockerd ]] || return 1
  printf '%s\n' "$pid"
}

# dockerd needs cgroup controllers; on a bare VM nothing may be mounted.
ensure_cgroups() {
  if [[ -e /sys/fs/cgroup/cgroup.controllers ]] || compgen -G '/sys/fs/cgroup/*/tasks' >/dev/null \
    || compgen -G '/sys/fs/cgroup/*/cgroup.procs' >/dev/null; then
    return 0
  fi
  mkdir -p /sys/fs/cgroup
  if have cgroupfs-mount; then
    warn "no cgroup hierarchy under /sys/fs/cgroup; running cgroupfs-mount"
    cgroupfs-mount || warn "cgroupfs-mount failed; dockerd may refuse to start"
  else
    warn "no cgroup hierarchy under /sys/fs/cgroup; mounting cgroup2"
    mount -t cgroup2 none /sys/fs/cgroup || warn "mounting cgroup2 failed; dockerd may refuse to start"
  fi
}

# Can we mount overlayfs on the filesystem that holds the data root?
overlay_works() {
  grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || return 1
  grep -qw overlay /proc/filesystems || return 1
  mkdir -p "$DATA_ROOT"
  local d
  d=$(mktemp -d "$DATA_ROOT/.berth-overlay-test.XXXXXX") || return 1
  mkdir -p "$d/l" "$d/u" "$d/w" "$d/m"
  echo x >"$d/l/f"
  local ok=1
  if mount -t overlay overlay -o "lowerdir=$d/l,upperdir=$d/u,workdir=$d/w" "$d/m" 2>/dev/null; then
    # A write through the mount must land in upperdir.
    if echo y >"$d/m/g" 2>/dev/null && [[ -e $d/u/g ]]; then ok=0; fi
    umount "$d/m" 2>/dev/null || umount -l "$d/m" 2>/dev/null || true
  fi
  rm -rf "$d"
  return $ok
}

pick_storage_driver() {
  if [[ -n ${BERTH_DOCKER_STORAGE_DRIVER:-} ]]; then
    printf '%s\n' "$BERTH_DOCKER_STORAGE_DRIVER"
    return
  fi
  # Keep whatever driver already holds images in the data root.
  if [[ -d $DATA_ROOT/overlay2 && -n $(ls -A "$DATA_ROOT/overlay2" 2>/dev/null) ]] && overlay_works; then
    echo overlay2
  elif [[ -d $DATA_ROOT/vfs && -n $(ls -A "$DATA_ROOT/vfs/dir" 2>/dev/null) ]]; then
    echo vfs
  elif overlay_works; then
    echo overlay2
  else
    echo vfs
  fi
}

launch() {
  local driver=$1
  local args=(--bridge=none --iptables=false --ip6tables=false --ip-forward=false
    -p "$BERTH_DOCKERD_PIDFILE" --data-root "$DATA_ROOT" --exec-root "$EXEC_ROOT"
    -H "unix://$BERTH_DOCKER_SOCK" --storage-driver="$driver")
  if [[ -n ${BERTH_DOCKERD_EXTRA_ARGS:-} ]]; then
    # shellcheck disable=SC2206
    args+=($BERTH_DOCKERD_EXTRA_ARGS)
  fi
  mkdir -p "$(dirname "$BERTH_DOCKERD_LOG")" "$(dirname "$BERTH_DOCKERD_PIDFILE")"
  printf '\n==== %s berth: starting dockerd %s\n' "$(date -Is)" "${args[*]}" >>"$BERTH_DOCKERD_LOG"
  # Own session + nohup so it outlives this script and its terminal; stdin
  # from /dev/null so it never holds a caller's pipe open.
  # fd 9 is our lock (scripts/lib.sh with_lock): dockerd must not inherit it.
  nohup setsid dockerd "${args[@]}" </dev/null >>"$BERTH_DOCKERD_LOG" 2>&1 9>&- &
  LAUNCHED_PID=$!
  log "dockerd launched (pid $LAUNCHED_PID, storage driver $driver), log: $BERTH_DOCKERD_LOG"
}

# Wait until `docker info` answers; fail early if the daemon died.
wait_ready() {
  local pid=$1 deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if docker_ok 5; then return 0; fi
    if ! pid_alive "$pid"; then
      return 2
    fi
    sleep 0.2
  done
  return 1
}

# App networks are isolated by the host not forwarding between its bridges (no iptables here).
isolate_networks() {
  if [[ $(cat /proc/sys/net/ipv4/ip_forward 2>/dev/null) != 0 ]]; then
    sysctl -qw net.ipv4.ip_forward=0 || warn "could not turn IPv4 forwarding off: app networks would reach each other"
    log "IPv4 forwarding off: app networks are isolated from each other"
  fi
}

cmd_start() {
  require_root
  isolate_networks
  local pid
  if pid=$(our_pid); then
    if docker_ok 5; then
      log "dockerd already running (pid $pid, started by berth)"
      return 0
    fi
    log "dockerd (pid $pid) is starting; waiting"
    wait_ready "$pid" && { log "dockerd ready"; return 0; }
    die "dockerd pid $pid is not answering after ${START_TIMEOUT}s; see $BERTH_DOCKERD_LOG"
  fi
  if docker_ok 5; then
    log "a Docker Engine not started by berth already answers on $BERTH_DOCKER_SOCK; leaving it alone"
    return 0
  fi
  have dockerd || die "dockerd not found: run scripts/install.sh"
  ensure_cgroups
  # A stale pidfile (dockerd killed hard) would make dockerd refuse to start.
  rm -f "$BERTH_DOCKERD_PIDFILE"
  local driver t0 rc
  driver=$(pick_storage_driver)
  t0=$(now_ms)
  launch "$driver"
  rc=0
  wait_ready "$LAUNCHED_PID" || rc=$?
  if ((rc == 2)) && [[ $driver != vfs && -z ${BERTH_DOCKER_STORAGE_DRIVER:-} ]]; then
    warn "dockerd exited during startup with storage driver $driver; retrying with vfs"
    tail -n 5 "$BERTH_DOCKERD_LOG" >&2 || true
    rm -f "$BERTH_DOCKERD_PIDFILE"
    launch vfs
    rc=0
    wait_ready "$LAUNCHED_PID" || rc=$?
  fi
  case $rc in
    0) log "dockerd ready in $(elapsed_since "$t0")" ;;
    2)
      tail -n 20 "$BERTH_DOCKERD_LOG" >&2 || true
      die "dockerd exited during startup; see $BERTH_DOCKERD_LOG"
      ;;
    *)
      tail -n 20 "$BERTH_DOCKERD_LOG" >&2 || true
      die "dockerd (pid $LAUNCHED_PID) did not answer within ${START_TIMEOUT}s; see $BERTH_DOCKERD_LOG"
      ;;
  esac
}

cmd_stop() {
  require_root
  local pid
  if ! pid=$(our_pid); then
    if docker_ok 3; then
      warn "the running Docker Engine was not started by berth; not stopping it"
      return 0
    fi
    rm -f "$BERTH_DOCKERD_PIDFILE"
    log "dockerd not running"
    return 0
  fi
  local t0
  t0=$(now_ms)
  log "stopping dockerd (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_until "$STOP_TIMEOUT" 0.1 eval '! pid_alive '"$pid"; then
    die "dockerd (pid $pid) still running after ${STOP_TIMEOUT}s"
  fi
  rm -f "$BERTH_DOCKERD_PIDFILE"
  log "dockerd stopped in $(elapsed_since "$t0")"
}

cmd_restart() {
  require_root
  if ! our_pid >/dev/null && docker_ok 3; then
    if have systemctl && systemctl is-active --quiet docker 2>/dev/null; then
      log "restarting the system's docker.service"
      systemctl restart docker
      wait_until "$START_TIMEOUT" 0.2 docker_ok 5 || die "docker.service did not come back"
      return 0
    fi
    die "the running Docker Engine was not started by berth and is not a systemd service; cannot restart it"
  fi
  cmd_stop
  cmd_start
}

cmd_status() {
  local pid owner="not started by berth"
  if pid=$(our_pid); then owner="started by berth, pid $pid"; fi
  if docker_ok 5; then
    local v d
    v=$(docker -H "unix://$BERTH_DOCKER_SOCK" version -f '{{.Server.Version}}' 2>/dev/null || echo '?')
    d=$(docker -H "unix://$BERTH_DOCKER_SOCK" info -f '{{.Driver}}' 2>/dev/null || echo '?')
    echo "running: Docker Engine $v, storage driver $d ($owner)"
    return 0
  fi
  if [[ -n ${pid:-} ]]; then
    echo "starting or hung: dockerd pid $pid does not answer"
  else
    echo "stopped"
  fi
  return 3
}

case ${1:-} in
  start | stop | restart) with_lock dockerd ;;
esac
case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart) cmd_restart ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 start|stop|restart|status" >&2
    exit 2
    ;;
esac
