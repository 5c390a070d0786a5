#!/usr/bin/env bash
# Test hosts for many-host tests: N "hosts" on this machine, each a network namespace (and UTS
# namespace: its own host name) with its own dockerd, on one Linux bridge, joined into a Swarm.
#
#   scripts/testhosts.sh up N       N ≥ 1 hosts th1..thN: th1 the Swarm's manager, the others workers;
#                                   base images in each (linked from a template, see seed_images). Cleans leftovers of a killed run first.
#   scripts/testhosts.sh down       stops and deletes everything of ours (idempotent, also after a crash)
#   scripts/testhosts.sh kill I     host I dies: its link is cut and every process of it is killed -9
#                                   (its netns pids and its containers' cgroups: a dockerd kill alone
#                                   leaves the containerd shims serving)
#   scripts/testhosts.sh revive I   host I returns: link up, its dockerd restarted on its old data
#   scripts/testhosts.sh status     one line per host: name address socket dockerd-pid
#   scripts/testhosts.sh plan N     the lines `up N` will print (name address socket), creating nothing:
#                                   a test issues the hosts' engine certificates before `up`
#   scripts/testhosts.sh logs       each host's dockerd log, in short: its errors (last 30) and its last
#                                   15 lines (a test prints it when it failed, before `down` deletes it)
#
# Addresses: bridge berthtb0 10.77.0.1/24 in the root namespace (the control plane reaches every host
# there), host I at 10.77.0.(10+I); Swarm overlays from 10.160.0.0/16 (neither overlaps Berth's app
# network pool 10.208.0.0/12, nor Docker's own defaults). Sockets: /run/berth-testhosts/thI/docker.sock.
# Env: BERTH_TESTHOSTS_SLOT (0-9, default 0): several independent sets of test hosts on one machine
# (slot S: hosts sSh1.., bridge berthtbS, 10.77.S.0/24, its own run directory; slot 0 is the above),
# so parallel work trees can each run their many-host tests. BERTH_TESTHOSTS_IMAGES (default "berth/busybox berth/node:20"), BERTH_TESTHOSTS_DIR
# (/var/lib/berth-testhosts: data roots and the base images' template data root), BERTH_TESTHOSTS_RUN (/run/berth-testhosts).
# BERTH_TESTHOSTS_ENGINES=0: `up` makes the hosts (namespaces, addresses, host names: nothing else),
# without dockerds or a Swarm, for tests that run their own processes there (edge hosts).
# BERTH_TESTHOSTS_HEARTBEAT (e.g. 2s): the Swarm's dispatcher heartbeat period (Swarm's default 5 s):
# a dead host is marked down after about three periods (~15 s by default, ~6 s at 2s).
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
ENGINES=${BERTH_TESTHOSTS_ENGINES:-1}
HEARTBEAT=${BERTH_TESTHOSTS_HEARTBEAT:-}
[[ -z $HEARTBEAT || $HEARTBEAT =~ ^[0-9]+s$ ]] || die "BERTH_TESTHOSTS_HEARTBEAT is seconds like 2s, not '$HEARTBEAT'"
[[ $ENGINES == [01] ]] || die "BERTH_TESTHOSTS_ENGINES is 0 or 1, not '$ENGINES'"
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

# dockerd.log is appended to: a revived host's log keeps its first life's, the one a failover test needs.
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
      --storage-driver $DRIVER" >>"$d/dockerd.log" 2>&1 </dev/null &
}

wait_dockerd() {
  local i=$1
  wait_until 60 0.2 dk "$i" info >/dev/null 2>&1 || { tail -20 "$DIR/$PREFIX$i/dockerd.log" >&2; die "dockerd of $PREFIX$i did not answer within 60 s"; }
}

# kill_hosts I... — the hosts die together: links cut, then every process of theirs is killed -9 (one
# pass for all of them: `down` of three hosts took ~0.6 s per host one after another).
kill_hosts() {
  local i pids
  for i in "$@"; do ip link set "${BR}v$i" down 2>/dev/null || true; done
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    pids=$(for i in "$@"; do host_pids "$i"; done | sort -un)
    [[ -z $pids ]] && return 0
    # shellcheck disable=SC2086
    kill -9 $pids 2>/dev/null || true
    sleep 0.1
  done
  pids=$(for i in "$@"; do host_pids "$i"; done | sort -un)
  [[ -z $pids ]] || warn "processes of $PREFIX$* survive: $pids"
}
kill_host() { kill_hosts "$1"; }

# Unmounts everything under a directory (deepest first).
umount_under() {
  local m
  awk -v p="$1/" 'index($2, p) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

down() {
  local ns hosts=() i
  # Everything goes (data included), so nothing is stopped gracefully: every process is killed.
  for ns in $(our_netns); do hosts+=("${ns#"$PREFIX"}"); done
  # Containers whose netns was another one: their cgroups name them.
  for i in $(find /sys/fs/cgroup -maxdepth 3 -name "berth-testhosts-$PREFIX*" -printf '%f\n' 2>/dev/null | sed -E "s/^berth-testhosts-$PREFIX([0-9]+).*/\1/" | sort -u); do
    hosts+=("$i")
  done
  if ((${#hosts[@]} > 0)); then kill_hosts $(printf '%s\n' "${hosts[@]}" | sort -un); fi
  for ns in $(our_netns); do ip netns del "$ns" 2>/dev/null || true; done
  find /sys/fs/cgroup -depth -path "*/berth-testhosts-$PREFIX*" -type d -exec rmdir {} \; 2>/dev/null || true
  umount_under "$RUN"
  umount_under "$DIR"
  ip link del "$BR" 2>/dev/null || true
  for l in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E "^${BR}v[0-9]+$" || true); do ip link del "$l" 2>/dev/null || true; done
  rm -rf "$RUN"
  # The data roots (thousands of image files each) are deleted in the background: renamed first, so
  # the next `up` starts on empty ones at once (deleting took 1-4 s of each many-host file's teardown).
  local trash d
  trash=$(mktemp -d "$DIR/trash-$PREFIX.XXXXXX")
  for d in "$DIR/$PREFIX"*; do [[ -e $d ]] && mv "$d" "$trash/"; done
  # Also what a killed run's background delete left.
  setsid rm -rf "$DIR/trash-$PREFIX".* >/dev/null 2>&1 </dev/null &
}

# seed_images I... — the base images into each host's (empty) data root, before its dockerd starts:
# hard links of a template data root (image/ and overlay2/ of a dockerd that loaded them once per
# machine, cached by the images' ids). `docker load` of the images into three fresh dockerds took
# 6-15 s per `up` (each extracts and hashes every layer); linking takes well under a second. Safe to
# share: Docker never writes into a layer it has committed (containers write to their own upper dirs,
# an image removal unlinks only that host's links), and each host's image metadata is a copy.
seed_images() {
  local ids key tpl tmp sock i
  # shellcheck disable=SC2086
  ids=$(docker image inspect -f '{{.Id}}' $IMAGES) || die "base images missing ($IMAGES): run scripts/images.sh"
  key=$(printf '%s' "$ids $IMAGES $DRIVER" | sha256sum | cut -c1-16)
  tpl="$DIR/template-$key"
  # Slots share the template: one at a time builds it or links from it.
  exec 9>"$DIR/template.lock"
  flock 9
  if [[ ! -d $tpl ]]; then
    find "$DIR" -maxdepth 1 -name 'template-*' -exec rm -rf {} +
    tmp="$DIR/template-$key.$$.tmp"
    sock="$tmp/docker.sock"
    rm -rf "$tmp" && mkdir -p "$tmp/data" "$tmp/exec"
    # A dockerd of its own (no network, no iptables) loads the images, then stops cleanly.
    setsid unshare --net dockerd --data-root "$tmp/data" --exec-root "$tmp/exec" --pidfile "$tmp/dockerd.pid" \
      -H "unix://$sock" --iptables=false --ip6tables=false --bridge=none --storage-driver "$DRIVER" \
      >"$tmp/dockerd.log" 2>&1 </dev/null &
    wait_until 60 0.2 docker -H "unix://$sock" info >/dev/null 2>&1 || { tail -20 "$tmp/dockerd.log" >&2; die "the template's dockerd did not answer"; }
    # shellcheck disable=SC2086
    docker save $IMAGES | docker -H "unix://$sock" load -q >/dev/null || die "loading images into the template failed"
    kill "$(cat "$tmp/dockerd.pid")"
    wait_until 30 0.1 bash -c "[[ ! -e '$tmp/dockerd.pid' ]]" || die "the template's dockerd did not stop"
    mkdir "$tmp/tpl"
    mv "$tmp/data/image" "$tmp/data/overlay2" "$tmp/tpl/"
    mv "$tmp/tpl" "$tpl"
    rm -rf "$tmp"
  fi
  for i in "$@"; do
    mkdir -p "$DIR/$PREFIX$i/data"
    cp -al "$tpl/overlay2" "$DIR/$PREFIX$i/data/" && cp -a "$tpl/image" "$DIR/$PREFIX$i/data/" || die "seeding $PREFIX$i's images failed"
  done
  exec 9>&-
}

up() {
  local n=$1 i t0 token pids=() hosts=()
  [[ $n =~ ^[0-9]+$ ]] && ((n >= 1 && n <= 9)) || die "up N: N is 1..9, not '$n'"
  require_root
  t0=$(now_ms)
  down
  mkdir -p "$DIR" "$RUN"
  for ((i = 1; i <= n; i++)); do hosts+=("$i"); done
  [[ $ENGINES == 1 ]] && seed_images "${hosts[@]}"
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
    if [[ $ENGINES == 1 ]]; then start_dockerd "$i"; fi
  done
  if [[ $ENGINES == 0 ]]; then
    touch "$RUN/bare"
    log "$n hosts without engines up ($(elapsed_since "$t0"))"
    status
    return 0
  fi
  for ((i = 1; i <= n; i++)); do wait_dockerd "$i"; done
  log "$n dockerds answer ($(elapsed_since "$t0"))"
  # shellcheck disable=SC2046
  dk 1 swarm init --advertise-addr "$(addr 1)" --listen-addr "$(addr 1):2377" --default-addr-pool "$POOL" \
    $([[ -n $HEARTBEAT ]] && printf -- '--dispatcher-heartbeat %s' "$HEARTBEAT") >/dev/null
  token=$(dk 1 swarm join-token -q worker)
  # The workers join side by side (one after another took ~2 s each).
  for ((i = 2; i <= n; i++)); do
    dk "$i" swarm join --token "$token" --advertise-addr "$(addr "$i")" --listen-addr "$(addr "$i"):2377" "$(addr 1):2377" >/dev/null &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || die "a host did not join the Swarm"; done
  # shellcheck disable=SC2086
  for ((i = 1; i <= n; i++)); do dk "$i" image inspect $IMAGES >/dev/null || die "$PREFIX$i lacks the base images"; done
  wait_until 30 0.2 bash -c "[[ \$(docker -H unix://$(sock 1) node ls --format '{{.Status}}' | grep -c Ready) -eq $n ]]" || die "not all $n nodes are Ready"
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

logs() {
  local d f
  for d in "$DIR/$PREFIX"[0-9]*; do
    f=$d/dockerd.log
    [[ -f $f ]] || continue
    printf '=== %s dockerd: errors (last 30) ===\n' "${d##*/}"
    # Not the errors every start logs in a namespace (kernel parameters it cannot read, the bridge's vlan).
    grep -aE 'level=(error|fatal|panic)|^panic:|^fatal error:' "$f" | grep -avE 'kernel parameter|default vlan' | tail -30 | cut -c1-400 || true
    printf '=== %s dockerd: last 15 lines (the same left out) ===\n' "${d##*/}"
    grep -avE 'kernel parameter|default vlan' "$f" | tail -15 | cut -c1-400 || true
  done
}

host_arg() {
  [[ ${1:-} =~ ^[1-9]$ ]] && ip netns list | grep -qE "^$PREFIX$1( |$)" || die "no test host $PREFIX${1:-?}"
}

case "${1:-}" in
  up) up "${2:-3}" ;;
  down) require_root; down ;;
  kill) host_arg "${2:-}"; kill_host "$2" ;;
  revive) host_arg "${2:-}"; ip link set "${BR}v$2" up; if [[ ! -e $RUN/bare ]]; then start_dockerd "$2"; wait_dockerd "$2"; fi ;;
  status) status ;;
  logs) logs ;;
  plan)
    [[ ${2:-} =~ ^[1-9]$ ]] || die "plan N: N is 1..9"
    for ((i = 1; i <= $2; i++)); do printf '%s%s %s %s\n' "$PREFIX" "$i" "$(addr "$i")" "$(sock "$i")"; done ;;
  *) die "usage: scripts/testhosts.sh up N | down | kill I | revive I | status | plan N | logs" ;;
esac
