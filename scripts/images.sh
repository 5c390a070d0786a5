#!/usr/bin/env bash
# Build Berth's local base images with `docker import` (no registry needed).
#
#   berth/busybox:latest  static busybox + applet symlinks, /etc/passwd, /tmp.
#   berth/node:20         the host's node binary + the libraries ldd lists
#                         (and the dynamic loader), static busybox for sh and
#                         common tools, CA certificates, and the host's npm
#                         (so `RUN npm install --offline` / `npm ci --offline`
#                         works for vendored or file: dependencies).
#
# Idempotent: each image carries a label `berth.input` = hash of its inputs
# (recipe version, busybox and node binaries); an image whose label matches is
# skipped. BERTH_IMAGES_FORCE=1 rebuilds anyway.
set -euo pipefail
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
BERTH_LOG_TAG=images

# Bump when the recipe below changes so existing images are rebuilt.
RECIPE_VERSION=3

BUSYBOX_IMAGE=berth/busybox:latest
NODE_IMAGE=berth/node:20

BUSYBOX_BIN=/bin/busybox
NODE_BIN=$(readlink -f "$(command -v node)")
# The host's npm package (Debian's nodejs, or NodeSource's, puts it here).
NPM_DIR=""
for d in /usr/lib/node_modules/npm /usr/local/lib/node_modules/npm /usr/share/nodejs/npm; do
  [[ -f $d/package.json ]] && { NPM_DIR=$d; break; }
done

WORK=$(mktemp -d /tmp/berth-images.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

hash_inputs() {
  { echo "recipe=$RECIPE_VERSION image=$1"; shift; sha256sum "$@"; } | sha256sum | cut -c1-16
}

# up_to_date IMAGE HASH
up_to_date() {
  [[ ${BERTH_IMAGES_FORCE:-0} == 1 ]] && return 1
  local have
  have=$(image_label "$1" berth.input) || return 1
  [[ $have == "$2" ]]
}

# base_fs DIR — directory skeleton, users, groups, busybox with applet links.
base_fs() {
  local r=$1
  mkdir -p "$r"/{bin,sbin,etc,dev,proc,sys,root,home,tmp,var/tmp,run,usr/bin,usr/sbin,usr/local/bin,usr/lib,usr/lib64}
  # Merged /usr like Debian 12: libraries copied to /lib/... and /usr/lib/... end up in one place.
  ln -s usr/lib "$r/lib"
  ln -s usr/lib64 "$r/lib64"
  chmod 1777 "$r/tmp" "$r/var/tmp"
  chmod 700 "$r/root"
  cat >"$r/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
  cat >"$r/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
nobody:x:65534:
EOF
  printf 'hosts: files dns\npasswd: files\ngroup: files\n' >"$r/etc/nsswitch.conf"
  # Docker bind-mounts over these at run time; present for plain `docker build` steps.
  : >"$r/etc/hosts"
  : >"$r/etc/resolv.conf"
  echo berth >"$r/etc/hostname"

  cp "$BUSYBOX_BIN" "$r/bin/busybox"
  chmod 755 "$r/bin/busybox"
  local applet
  while read -r applet; do
    [[ -z $applet || $applet == busybox || $applet == */* ]] && continue
    [[ -e $r/bin/$applet || -L $r/bin/$applet ]] && continue
    ln -s busybox "$r/bin/$applet"
  done < <("$BUSYBOX_BIN" --list)
  # Common absolute paths scripts hard-code.
  ln -sf ../../bin/env "$r/usr/bin/env"
}

# import DIR IMAGE HASH CHANGE...
import_rootfs() {
  local dir=$1 image=$2 hash=$3
  shift 3
  local changes=(--change "LABEL berth.input=$hash" --change "LABEL berth.base=1")
  local c
  for c in "$@"; do changes+=(--change "$c"); done
  local old_id new_id
  old_id=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
  tar -C "$dir" --numeric-owner --owner=0 --group=0 -c . |
    docker import "${changes[@]}" --message "berth base image ($hash)" - "$image" >/dev/null
  new_id=$(docker image inspect -f '{{.Id}}' "$image")
  # Drop the superseded image unless something still uses it.
  if [[ -n $old_id && $old_id != "$new_id" ]]; then
    docker image rm "$old_id" >/dev/null 2>&1 || true
  fi
}

build_busybox() {
  local hash t0
  hash=$(hash_inputs "$BUSYBOX_IMAGE" "$BUSYBOX_BIN")
  if up_to_date "$BUSYBOX_IMAGE" "$hash"; then
    log "$BUSYBOX_IMAGE up to date ($hash)"
    return 0
  fi
  t0=$(now_ms)
  local r=$WORK/busybox
  base_fs "$r"
  import_rootfs "$r" "$BUSYBOX_IMAGE" "$hash" \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    'CMD ["/bin/sh"]'
  log "$BUSYBOX_IMAGE built in $(elapsed_since "$t0") ($hash)"
}

# copy_path PATH ROOT — copy a file (dereferenced) to the same path inside ROOT.
copy_path() {
  local src=$1 r=$2
  mkdir -p "$r$(dirname "$src")"
  cp -L "$src" "$r$src"
}

build_node() {
  local hash t0
  hash=$(hash_inputs "$NODE_IMAGE" "$BUSYBOX_BIN" "$NODE_BIN" ${NPM_DIR:+"$NPM_DIR/package.json"})
  if up_to_date "$NODE_IMAGE" "$hash"; then
    log "$NODE_IMAGE up to date ($hash)"
    return 0
  fi
  t0=$(now_ms)
  local r=$WORK/node
  base_fs "$r"

  cp "$NODE_BIN" "$r/usr/bin/node"
  chmod 755 "$r/usr/bin/node"
  ln -s ../../bin/node "$r/usr/local/bin/node"

  # Shared libraries and the loader, at the paths ldd reports.
  local libs lib
  libs=$(ldd "$NODE_BIN" | awk '
    /=>/ { if ($3 ~ /^\//) print $3; next }
    $1 ~ /^\// { print $1 }')
  [[ -n $libs ]] || warn "ldd lists no libraries for $NODE_BIN (static binary?)"
  for lib in $libs; do
    copy_path "$lib" "$r"
  done
  # Loader cache for the copied libraries (harmless if ldconfig is absent).
  if have ldconfig; then ldconfig -r "$r" 2>/dev/null || true; fi

  # npm (and npx), as the host has it: node apps with dependencies build with `RUN npm ci --offline`.
  if [[ -n $NPM_DIR ]]; then
    mkdir -p "$r/usr/lib/node_modules"
    cp -a "$NPM_DIR" "$r/usr/lib/node_modules/npm"
    ln -s ../lib/node_modules/npm/bin/npm-cli.js "$r/usr/bin/npm"
    ln -s ../lib/node_modules/npm/bin/npx-cli.js "$r/usr/bin/npx"
  else
    warn "npm not found on the host: $NODE_IMAGE is built without it"
  fi

  # CA bundle so https works from inside the image.
  if [[ -r /etc/ssl/certs/ca-certificates.crt ]]; then
    mkdir -p "$r/etc/ssl/certs"
    cp -L /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/ca-certificates.crt"
  fi

  import_rootfs "$r" "$NODE_IMAGE" "$hash" \
    'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    'ENV NODE_VERSION='"$("$NODE_BIN" --version | tr -d v)" \
    'CMD ["node"]'

  local v
  v=$(docker run --rm --network host "$NODE_IMAGE" node -e 'console.log(process.version)' 2>&1) ||
    die "$NODE_IMAGE does not run node: $v"
  if [[ -n $NPM_DIR ]]; then
    local n
    n=$(docker run --rm --network none "$NODE_IMAGE" npm --version 2>&1) || die "$NODE_IMAGE does not run npm: $n"
    v="$v, npm $n"
  fi
  log "$NODE_IMAGE built in $(elapsed_since "$t0") (node $v, $hash)"
}

require_root
have docker || die "docker CLI not found: run scripts/install.sh"
[[ -x $BUSYBOX_BIN ]] || die "$BUSYBOX_BIN missing: install busybox-static"
file "$BUSYBOX_BIN" 2>/dev/null | grep -q 'statically linked' || ldd "$BUSYBOX_BIN" 2>&1 | grep -q 'not a dynamic' ||
  die "$BUSYBOX_BIN is not static (install busybox-static)"
[[ -x $NODE_BIN ]] || die "node not found"
docker_ok 10 || die "Docker Engine not answering: run scripts/dockerd.sh start"

with_lock images
build_busybox
build_node
