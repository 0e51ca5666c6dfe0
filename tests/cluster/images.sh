#!/usr/bin/env bash
# Build the container images the miniature hosted control planes use and import them into the test
# cluster's containerd. No registry and no pulls: every image is made here from a debootstrap rootfs.
#
#   localhost/hcp-etcd/pause:3.10   static pause binary (images/pause.c), the pod sandbox image
#   localhost/hcp-etcd/etcd:3.5     bookworm minbase (bash, coreutils, tar, sha256sum) + etcd, etcdctl, etcdutl v3.5.x
#   localhost/hcp-etcd/etcd:3.6     same rootfs + etcd, etcdctl (no snapshot status/restore), etcdutl v3.6.x
#   localhost/hcp-etcd/etcd:3.7     same rootfs + etcd, etcdctl, etcdutl v3.7.x (HCP_ETCD_EXTRA_ETCD="v3.6.x" leaves it out)
#   localhost/hcp-etcd/etcd:3.4     same rootfs + Debian 12's etcd 3.4.23 (etcd, etcdctl; NO etcdutl)
#   localhost/hcp-etcd/cluster-etcd-operator:healthz  static binary of images/healthz/main.go (no base): the etcd pod's
#                                   `healthz` container, `cluster-etcd-operator readyz` serving the probes on 9980
#   localhost/hcp-etcd/kube-apiserver:<KUBERNETES_VERSION>  same rootfs + the cluster's own kube-apiserver binary, the
#                                   hosted API of a control plane made with HCP_API=real (tests/cluster/hcp.sh)
#
# Usage: images.sh [all|build|base|import|list] (default all = build + import; base = the images that need no
#        binary of build-binaries.sh: pause, healthz, the rootfs, etcd 3.4)
# Env:   CONTAINERD_ADDRESS   containerd socket (required for import)
#        CONTAINERD_SNAPSHOTTER  snapshotter to unpack into (default: containerd's default)
#        HCP_ETCD_CACHE       cache root (default ~/.cache/hcp-etcd); tarballs in $HCP_ETCD_CACHE/images
# /bin/sh is bash as in the RHEL-based OpenShift etcd image (dash would stay PID 1 in
# `sh -c '... /usr/bin/etcd'` and swallow SIGTERM; bash execs etcd, which then shuts down cleanly).
# Idempotent: tarballs are cached by version; an image whose manifest digest is already in containerd
# is not imported again. The two etcd images share one base layer (stored once by containerd).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
cache=${HCP_ETCD_CACHE:-$HOME/.cache/hcp-etcd}
imgdir=$cache/images
mkdir -p "$imgdir"
suite=${DEBIAN_SUITE:-bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkimage="python3 $here/images/mkimage.py"
# Bump when the image recipe changes: it is part of every cached tarball name.
RECIPE=r2

log() { printf '[images] %s\n' "$*" >&2; }

# One builder at a time (cluster.sh and a developer may both call us).
exec 9>"$imgdir/.lock"
flock 9

PAUSE_REF=localhost/hcp-etcd/pause:3.10
ETCD34_REF=localhost/hcp-etcd/etcd:3.4
etcd34_version() { apt-cache show --no-all-versions etcd-server 2>/dev/null | awk '/^Version:/{print $2; exit}'; }

# ---- shared rootfs / base layer -------------------------------------------------------------
base_layer=$imgdir/base-$suite-minbase.layer.tar
build_base() {
  [ -f "$base_layer" ] && return
  local start=$SECONDS root=$imgdir/rootfs-$suite.tmp
  log "base: debootstrap --variant=minbase $suite"
  rm -rf "$root"
  debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$imgdir/debootstrap.log" 2>&1 \
    || { tail -20 "$imgdir/debootstrap.log" >&2; exit 1; }
  # Keep it small: no apt lists/caches, docs, man pages, locales, logs, device nodes (runc makes /dev).
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
         "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
         "$root"/usr/share/common-licenses "$root"/var/log/* "$root"/dev/* "$root"/tmp/* "$root"/root/.bash_history
  mkdir -p "$root"/var/lib/data "$root"/etc/etcd
  python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import mkimage; mkimage.dir_to_layer(sys.argv[2], sys.argv[3])' \
    "$here/images" "$root" "$base_layer.partial"
  mv "$base_layer.partial" "$base_layer"
  rm -rf "$root"
  log "base: $(du -h "$base_layer" | cut -f1) layer in $((SECONDS - start)) s"
}

# ---- images ---------------------------------------------------------------------------------
build_pause() {
  local out=$imgdir/pause-3.10.tar
  [ -f "$out" ] && return
  local stage; stage=$(mktemp -d)
  gcc -static -Os -Wall -o "$stage/pause" "$here/images/pause.c"
  strip "$stage/pause"
  $mkimage --name "$PAUSE_REF" --out "$out" --entrypoint /pause "$stage" >"$out.digest"
  rm -rf "$stage"
  log "pause: built $out"
}

# The etcd pod's healthz sidecar: a static Go binary named like the real one's command, cached by the
# sha256 of its source (standard library only, so it builds offline with the local Go toolchain).
HEALTHZ_REF=localhost/hcp-etcd/cluster-etcd-operator:healthz
healthz_tarball() { echo "$imgdir/healthz-$(sha256sum "$here/images/healthz/main.go" | cut -c1-12).tar"; }
build_healthz() {
  local out; out=$(healthz_tarball)
  [ -f "$out" ] && return
  local stage; stage=$(mktemp -d)
  install -d "$stage/usr/bin"
  (cd "$here/images/healthz" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS= \
    go build -trimpath -ldflags='-s -w' -o "$stage/usr/bin/cluster-etcd-operator" main.go)
  $mkimage --name "$HEALTHZ_REF" --out "$out" --entrypoint /usr/bin/cluster-etcd-operator "$stage" >"$out.digest"
  rm -rf "$stage"
  log "healthz: built $out"
}

# The etcd images built from Go (go.etcd.io/etcd at the versions of versions.env): "<major.minor> <version>"
# lines. 3.5 always; 3.6 and 3.7 unless HCP_ETCD_EXTRA_ETCD says otherwise, the same list build-binaries.sh builds.
go_etcds() {
  local v
  for v in "$ETCD_VERSION" ${HCP_ETCD_EXTRA_ETCD-$ETCD36_VERSION $ETCD37_VERSION}; do
    v=${v#v}; echo "${v%.*} $v"
  done
}

# build_etcd_go <major.minor> <version>: bookworm minbase + etcd, etcdctl, etcdutl of that version.
build_etcd_go() {
  local minor=$1 version=$2
  local out=$imgdir/etcd-$version-$RECIPE.tar
  [ -f "$out" ] && return
  local bin=$cache/etcd-v$version/bin
  local waited=0
  until [ -f "$cache/etcd-v$version/.done" ]; do
    if ! pgrep -f build-binaries.sh >/dev/null; then
      log "etcd v$version binaries missing in $bin: run tests/cluster/build-binaries.sh first"; exit 1
    fi
    [ $((waited % 60)) -eq 0 ] && log "waiting for build-binaries.sh to finish etcd v$version ($waited s)"
    sleep 10; waited=$((waited + 10))
    [ "$waited" -lt "${HCP_ETCD_BUILD_WAIT:-3600}" ] || { log "gave up waiting"; exit 1; }
  done
  build_base
  local stage; stage=$(mktemp -d)
  install -d "$stage/usr/bin"
  install -m 0755 "$bin/etcd" "$bin/etcdctl" "$bin/etcdutl" "$stage/usr/bin/"
  ln -s bash "$stage/usr/bin/sh"
  $mkimage --name "localhost/hcp-etcd/etcd:$minor" --out "$out" --cmd /usr/bin/bash "$base_layer" "$stage" >"$out.digest"
  rm -rf "$stage"
  log "etcd:$minor: built $out ($(du -h "$out" | cut -f1))"
}

build_etcd34() {
  local v; v=$(etcd34_version)
  [ -n "$v" ] || { log "apt-cache knows no etcd-server (run apt-get update)"; exit 1; }
  local out=$imgdir/etcd-$v-$RECIPE.tar
  [ -f "$out" ] && return
  build_base
  local stage dl; stage=$(mktemp -d); dl=$(mktemp -d)
  (cd "$dl" && apt-get download -q -o APT::Sandbox::User=root "etcd-server=$v" "etcd-client=$v" >/dev/null)
  local d x; x=$(mktemp -d)
  for d in "$dl"/*.deb; do dpkg -x "$d" "$x"; done
  install -d "$stage/usr/bin"
  install -m 0755 "$x/usr/bin/etcd" "$x/usr/bin/etcdctl" "$stage/usr/bin/"
  ln -s bash "$stage/usr/bin/sh"
  $mkimage --name "$ETCD34_REF" --out "$out" --cmd /usr/bin/bash "$base_layer" "$stage" >"$out.digest"
  rm -rf "$stage" "$dl" "$x"
  log "etcd:3.4: built $out from Debian etcd $v ($(du -h "$out" | cut -f1))"
}

# The hosted kube-apiserver: the binary the cluster itself runs (build-binaries.sh kubernetes, which cluster.sh
# builds before the images step).
KAS_REF=localhost/hcp-etcd/kube-apiserver:$KUBERNETES_VERSION
build_kube_apiserver() {
  local out=$imgdir/kube-apiserver-$KUBERNETES_VERSION-$RECIPE.tar bin=$cache/kubernetes-$KUBERNETES_VERSION/bin/kube-apiserver
  [ -f "$out" ] && return
  [ -x "$bin" ] || { log "$bin missing: run tests/cluster/build-binaries.sh kubernetes first"; exit 1; }
  build_base
  local stage; stage=$(mktemp -d)
  install -d "$stage/usr/bin"
  install -m 0755 "$bin" "$stage/usr/bin/"
  $mkimage --name "$KAS_REF" --out "$out" --entrypoint /usr/bin/kube-apiserver "$base_layer" "$stage" >"$out.digest"
  rm -rf "$stage"
  log "kube-apiserver: built $out ($(du -h "$out" | cut -f1))"
}

tarballs() {
  local minor version
  echo "$PAUSE_REF $imgdir/pause-3.10.tar"
  echo "$HEALTHZ_REF $(healthz_tarball)"
  echo "$KAS_REF $imgdir/kube-apiserver-$KUBERNETES_VERSION-$RECIPE.tar"
  echo "$ETCD34_REF $imgdir/etcd-$(etcd34_version)-$RECIPE.tar"
  while read -r minor version; do echo "localhost/hcp-etcd/etcd:$minor $imgdir/etcd-$version-$RECIPE.tar"; done < <(go_etcds)
}

build_without_binaries() {
  build_pause; build_healthz; build_base; build_etcd34
}

build_all() {
  local s=$SECONDS minor version
  build_without_binaries; build_kube_apiserver
  while read -r minor version; do build_etcd_go "$minor" "$version"; done < <(go_etcds)
  log "build: done in $((SECONDS - s)) s"
}

ctr_() { ctr --address "${CONTAINERD_ADDRESS:?set CONTAINERD_ADDRESS to the cluster containerd socket}" -n k8s.io "$@"; }

import_all() {
  local s=$SECONDS ref tar want have snap=()
  [ -z "${CONTAINERD_SNAPSHOTTER:-}" ] || snap=(--snapshotter "$CONTAINERD_SNAPSHOTTER")
  while read -r ref tar; do
    want=$(cat "$tar.digest")
    have=$(ctr_ images ls "name==$ref" 2>/dev/null | awk -v r="$ref" '$1==r{print $3}')
    if [ "$have" = "$want" ]; then log "$ref: already imported ($want)"; continue; fi
    ctr_ images import "${snap[@]}" "$tar" >/dev/null
    # Pinned: kubelet's image GC must never remove an image no registry can give back.
    ctr_ images label "$ref" io.cri-containerd.pinned=pinned >/dev/null 2>&1 || true
    log "$ref: imported ${want}"
  done < <(tarballs)
  log "import: done in $((SECONDS - s)) s"
}

case "${1:-all}" in
  all) build_all; import_all ;;
  build) build_all ;;
  base) build_without_binaries ;;
  import) import_all ;;
  list) tarballs ;;
  *) echo "usage: $0 [all|build|base|import|list]" >&2; exit 2 ;;
esac
