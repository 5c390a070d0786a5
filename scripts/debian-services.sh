#!/usr/bin/env bash
# Build berth/debian-services:bookworm: Debian 12 (debootstrap --variant=minbase) with
# redis-server and postgresql, imported with `docker import` (no registry is reachable).
# The end-to-end test of a three-tier app (web, worker, PostgreSQL, Redis on app networks) runs it.
#
# Idempotent and cached: the image carries `berth.input` = hash of this recipe and the
# mirror; an image whose label matches is kept. It costs ~2-4 minutes and ~400 MB once
# per machine (debootstrap downloads ~90 MB of packages). BERTH_IMAGES_FORCE=1 rebuilds.
# Env: BERTH_DEBIAN_MIRROR (the mirror the machine's apt sources name, else deb.debian.org).
set -euo pipefail
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
BERTH_LOG_TAG=debian-services

RECIPE_VERSION=1
IMAGE=berth/debian-services:bookworm
PACKAGES=redis-server,postgresql

mirror() {
  if [[ -n ${BERTH_DEBIAN_MIRROR:-} ]]; then echo "$BERTH_DEBIAN_MIRROR"; return; fi
  local m
  m=$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
    | grep -oE 'https?://[^ ]+' | head -n1 || true)
  echo "${m:-http://deb.debian.org/debian}"
}

require_root
MIRROR=$(mirror)
HASH=$(printf 'recipe=%s packages=%s mirror=%s\n' "$RECIPE_VERSION" "$PACKAGES" "$MIRROR" | sha256sum | cut -c1-16)
if [[ ${BERTH_IMAGES_FORCE:-0} != 1 ]] && [[ $(image_label "$IMAGE" berth.input 2>/dev/null || true) == "$HASH" ]]; then
  log "$IMAGE up to date"
  exit 0
fi
have debootstrap || { log "installing debootstrap"; apt-get install -y -q debootstrap >/dev/null; }
WORK=$(mktemp -d /tmp/berth-debian.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
t0=$(now_ms)
log "debootstrap bookworm ($PACKAGES) from $MIRROR"
debootstrap --variant=minbase --include="$PACKAGES" bookworm "$WORK/root" "$MIRROR" >"$WORK/log" 2>&1 \
  || { tail -n 30 "$WORK/log" >&2; die "debootstrap failed; see above"; }
# The package scripts started nothing (no init), and the default cluster is not used: a
# container makes its own data directory (initdb) as the postgres user.
rm -rf "$WORK/root/var/lib/postgresql/15/main" "$WORK/root/var/cache/apt/archives"/*.deb
tar -C "$WORK/root" -c . | docker import \
  --change "LABEL berth.input=$HASH" --change "LABEL berth.base=1" \
  --change 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' - "$IMAGE" >/dev/null
log "$IMAGE built in $(elapsed_since "$t0")"
