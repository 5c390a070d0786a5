#!/usr/bin/env bash
# Test hosts for many-host tests: N "hosts" on this machine, each a network namespace (and UTS
# namespace: its own host name) with its own dockerd, on one Linux bridge, joined into a Swarm.
#
#   scripts/testhosts.sh up N       N ≥ 1 hosts th1..thN: th1 the Swarm's manager, the others workers;
#                                   base images loaded into each. Cleans leftovers of a killed run first.
#   scripts/testhosts.sh down       stops and deletes everything of ours (idempotent, also after a crash)
#   scripts/testhosts.sh kill I     host I dies: its link is cut and every process of it is killed -9
#                                   (its netns pids and its containers' cgroups: a dockerd kill alone
#                                   leaves the containerd shims serving)
#   scripts/testhosts.sh revive I   host I returns: link up, its dockerd restarted on its old data
#   scripts/testhosts.sh status     one line per host: name address socket dockerd-pid
#   scripts/testhosts.sh plan N     the lines `up N` will print (name address socket), creating nothing:
#                                   a test issues the hosts' engine certificates before `up`
#
# Addresses: bridge berthtb0 10.77.0.1/24 in the root namespace (the control plane reaches every host
# there), host I at 10.77.0.(10+I); Swarm overlays from 10.160.0.0/16 (neither overlaps Berth's app
# network pool 10.208.0.0/12, nor Docker's own defaults). Sockets: /run/berth-testhosts/thI/docker.sock.
# Env: BERTH_TESTHOSTS_SLOT (0-9, default 0): several independent sets of test hosts on one machine
# (slot S: hosts sSh1.., bridge berthtbS, 10.77.S.0/24, its own run directory; slot 0 is the above),
# so parallel work trees can each run their many-host tests. BERTH_TESTHOSTS_IMAGES (default "berth/busybox berth/node:20"), BERTH_TESTHOSTS_DIR
# (/var/lib/berth-testhosts: data roots and the image tar cache), BERTH_TESTHOSTS_RUN (/run/berth-testhosts).
# BERTH_TESTHOSTS_TLS_DIR: where DIR/NAME/{ca,cert,key}.pem exist, host NAME's dockerd also listens on
# tcp://ADDRESS:2376 with --tlsverify (that CA is the only client CA): the control plane's way in, as
# on a real remote host (the unix sockets exist only because the namespaces share one file system).
set -euo pipefail
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
BERTH_LOG_TAG=testhosts

SLOT=${BERTH_TESTHOSTS_SLOT:-0}
[[ $SLOT =~ ^[0-9]$ ]] || die "BERTH_TESTHOSTS_SLOT is one digit 0-9, not '$SLOT'"
BR=berthtb$SLOT
NET=10.77.$SLOT
if ((SLOT == 0)); then PREFIX=th; else PREFIX=s${SLOT}h; fi
POOL=10.160.0.0/16
DIR=${BERTH_TESTHOSTS_DIR:-/var/lib/berth-testhosts}
if ((SLOT == 0)); then RUN=${BERTH_TESTHOSTS_RUN:-/run/berth-testhosts}; else RUN=${BERTH_TESTHOSTS_RUN:-/run/berth-testhosts-$SLOT}; fi
IMAGES=${BERTH_TESTHOSTS_IMAGES:-berth/busybox berth/node:20}
# The storage driver the machine's own engine uses (overlay2, or vfs where overlay mounts do not work).
DRIVER=$(docker info -f '{{.Driver}}' 2>/dev/null || echo overlay2)

sock() { printf '%s/%s%s/docker.sock' "$RUN" "$PREFIX" "$1"; }
dk() { local i=$1; shift; docker -H "unix://$(sock "$i")" "$@"; }
addr() { printf '%s.%s' "$NET" "$((10 + $1))"; }

# Our netns names (th1, th2, ...) that exist now.
our_netns() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${PREFIX}[0-9]+$" || true; }

# Pids of host I: every process in its netns plus every process in its containers' cgroups.
host_pids() {
  local i=$1
  { ip netns pids "$PREFIX$i" 2>/dev/null || true
    find /sys/fs/cgroup -path "*/berth-testhosts-$PREFIX$i*" -name cgroup.procs -exec cat {} + 2>/dev/null || true
  } | sort -un
}

start_dockerd() {
  local i=$1 d="$DIR/$PREFIX$1" r="$RUN/$PREFIX$1" tls="" t="${BERTH_TESTHOSTS_TLS_DIR:-}/$PREFIX$1"
  mkdir -p "$d/data" "$r/exec"
  rm -f "$r/docker.sock" "$r/dockerd.pid"
  if [[ -n ${BERTH_TESTHOSTS_TLS_DIR:-} && -s $t/ca.pem && -s $t/cert.pem && -s $t/key.pem ]]; then
    tls="--tlsverify --tlscacert '$t/ca.pem' --tlscert '$t/cert.pem' --tlskey '$t/key.pem' -H 'tcp://$(addr "$i"):2376'"
  fi
  # nsenter, not `ip netns exec` (which remounts /sys and hides the cgroups dockerd needs);
  # unshare --uts: the host's own name, which Swarm reports as the node's hostname.
  setsid nsenter --net="/var/run/netns/$PREFIX$i" unshare --uts sh -c \
    "hostname $PREFIX$i && exec dockerd --data-root '$d/data' --exec-root '$r/exec' --pidfile '$r/dockerd.pid' \
      -H 'unix://$r/docker.sock' $tls --cgroup-parent 'berth-testhosts-$PREFIX$i' --iptables=true --ip-forward=true \
      --storage-driver $DRIVER" >"$d/dockerd.log" 2>&1 </dev/null &
}

wait_dockerd() {
  local i=$1
  wait_until 60 0.2 dk "$i" info >/dev/null 2>&1 || { tail -20 "$DIR/$PREFIX$i/dockerd.log" >&2; die "dockerd of $PREFIX$i did not answer within 60 s"; }
}

kill_host() {
  local i=$1 pids
  ip link set "${BR}v$i" down 2>/dev/null || true
  for _ in 1 2 3 4 5; do
    pids=$(host_pids "$i")
    [[ -z $pids ]] && return 0
    # shellcheck disable=SC2086
    kill -9 $pids 2>/dev/null || true
    sleep 0.2
  done
  pids=$(host_pids "$i")
  [[ -z $pids ]] || warn "processes of $PREFIX$i survive: $pids"
}

# Unmounts everything under a directory (deepest first).
umount_under() {
  local m
  awk -v p="$1/" 'index($2, p) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

down() {
  local ns i
  # Everything goes (data included), so nothing is stopped gracefully: every process is killed.
  for ns in $(our_netns); do
    i=${ns#"$PREFIX"}
    kill_host "$i"
    ip netns del "$ns" 2>/dev/null || true
  done
  # Containers whose netns was another one: their cgroups name them.
  for i in $(find /sys/fs/cgroup -maxdepth 3 -name "berth-testhosts-$PREFIX*" -printf '%f\n' 2>/dev/null | sed -E "s/^berth-testhosts-$PREFIX([0-9]+).*/\1/" | sort -u); do
    kill_host "$i"
  done
  find /sys/fs/cgroup -depth -path "*/berth-testhosts-$PREFIX*" -type d -exec rmdir {} \; 2>/dev/null || true
  umount_under "$RUN"
  umount_under "$DIR"
  ip link del "$BR" 2>/dev/null || true
  for l in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E "^${BR}v[0-9]+$" || true); do ip link del "$l" 2>/dev/null || true; done
  rm -rf "$RUN"
  find "$DIR" -mindepth 1 -maxdepth 1 -name "$PREFIX*" -exec rm -rf {} + 2>/dev/null || true
}

# The base images as one tar, cached by their ids.
image_tar() {
  local ids key tar
  # shellcheck disable=SC2086
  ids=$(docker image inspect -f '{{.Id}}' $IMAGES) || die "base images missing ($IMAGES): run scripts/images.sh"
  key=$(printf '%s' "$ids $IMAGES" | sha256sum | cut -c1-16)
  tar="$DIR/images-$key.tar"
  # Slots share the cache: one writer at a time.
  exec 9>"$DIR/images.lock"
  flock 9
  if [[ ! -s $tar ]]; then
    find "$DIR" -maxdepth 1 -name 'images-*.tar' -delete
    # shellcheck disable=SC2086
    docker save -o "$tar.$$.tmp" $IMAGES && mv "$tar.$$.tmp" "$tar"
  fi
  exec 9>&-
  printf '%s\n' "$tar"
}

up() {
  local n=$1 i tar t0 token pids=()
  [[ $n =~ ^[0-9]+$ ]] && ((n >= 1 && n <= 9)) || die "up N: N is 1..9, not '$n'"
  require_root
  t0=$(now_ms)
  down
  mkdir -p "$DIR" "$RUN"
  ip link add "$BR" type bridge
  ip addr add "$NET.1/24" dev "$BR"
  ip link set "$BR" up
  for ((i = 1; i <= n; i++)); do
    ip netns add "$PREFIX$i"
    ip link add "${BR}v$i" type veth peer name eth0 netns "$PREFIX$i"
    ip link set "${BR}v$i" master "$BR" up
    ip -n "$PREFIX$i" addr add "$(addr "$i")/24" dev eth0
    ip -n "$PREFIX$i" link set lo up
    ip -n "$PREFIX$i" link set eth0 up
    ip -n "$PREFIX$i" route add default via "$NET.1"
    start_dockerd "$i"
  done
  tar=$(image_tar)
  for ((i = 1; i <= n; i++)); do wait_dockerd "$i"; done
  log "$n dockerds answer ($(elapsed_since "$t0"))"
  for ((i = 1; i <= n; i++)); do dk "$i" load -q -i "$tar" >/dev/null & pids+=($!); done
  dk 1 swarm init --advertise-addr "$(addr 1)" --listen-addr "$(addr 1):2377" --default-addr-pool "$POOL" >/dev/null
  token=$(dk 1 swarm join-token -q worker)
  for ((i = 2; i <= n; i++)); do dk "$i" swarm join --token "$token" --advertise-addr "$(addr "$i")" --listen-addr "$(addr "$i"):2377" "$(addr 1):2377" >/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" || die "loading images failed"; done
  wait_until 30 0.3 bash -c "[[ \$(docker -H unix://$(sock 1) node ls --format '{{.Status}}' | grep -c Ready) -eq $n ]]" || die "not all $n nodes are Ready"
  log "swarm of $n hosts up ($(elapsed_since "$t0"))"
  status
}

status() {
  local ns i
  for ns in $(our_netns); do
    i=${ns#"$PREFIX"}
    printf '%s %s %s %s\n' "$ns" "$(addr "$i")" "$(sock "$i")" "$(cat "$RUN/$ns/dockerd.pid" 2>/dev/null || echo -)"
  done
}

host_arg() {
  [[ ${1:-} =~ ^[1-9]$ ]] && ip netns list | grep -qE "^$PREFIX$1( |$)" || die "no test host $PREFIX${1:-?}"
}

case "${1:-}" in
  up) up "${2:-3}" ;;
  down) require_root; down ;;
  kill) host_arg "${2:-}"; kill_host "$2" ;;
  revive) host_arg "${2:-}"; ip link set "${BR}v$2" up; start_dockerd "$2"; wait_dockerd "$2" ;;
  status) status ;;
  plan)
    [[ ${2:-} =~ ^[1-9]$ ]] || die "plan N: N is 1..9"
    for ((i = 1; i <= $2; i++)); do printf '%s%s %s %s\n' "$PREFIX" "$i" "$(addr "$i")" "$(sock "$i")"; done ;;
  *) die "usage: scripts/testhosts.sh up N | down | kill I | revive I | status | plan N" ;;
esac
