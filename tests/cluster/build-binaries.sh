#!/usr/bin/env bash
# Build the Kubernetes, etcd and CoreDNS binaries the hermetic cluster needs from the Go module proxy,
# once, and cache them under ~/.cache/hcp-etcd/<component>-<version>/bin. Safe to rerun: a finished
# cache directory (marked by .done) is reused as is.
#
#   build-binaries.sh [COMPONENT...]   kubernetes etcd coredns crictl minio (default: all of them);
#                                      the cluster needs the first four, the backup-store tests minio
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
cache=${HCP_ETCD_CACHE:-$HOME/.cache/hcp-etcd}
export GOFLAGS=-buildvcs=false GOTOOLCHAIN=local CGO_ENABLED=0

log() { printf '[build] %s\n' "$*" >&2; }
components=${*:-kubernetes etcd coredns crictl minio}

mkdir -p "$cache"

# The two halves of a component's build, both keyed by <cache-name> and both safe to run twice at once (a
# second caller waits on the component's lock, then finds the work done):
#   fetch_module  the downloads: a work module in $cache/.work/<cache-name> that requires <main-module@version>,
#                 and every module its packages import in Go's module cache. Mostly waiting on the module
#                 proxy (MinIO's 400-odd modules take minutes), so every wanted component fetches at once, in
#                 the background, while the first one compiles.
#   build_module  the compile, in that work module, into $cache/<cache-name>/bin (then .done, work removed).
# Both take: <cache-name> <main-module@version> <replace-lines> <package...>. A package given as ./cmd/<name>
# is generated in the work module from $MAIN_<name> (Go source), for projects whose main package lives in a
# module the proxy does not serve (etcd's root module).

fetched() { [ -f "$cache/$1/.done" ] || [ -f "$cache/.work/$1/.fetched" ]; }  # built, or its sources in

# prepare_work: the downloads, with the component's fetch lock held.
prepare_work() {
  local name=$1 mod=$2 replaces=$3; shift 3
  local work=$cache/.work/$name pkg
  rm -rf "$work"; mkdir -p "$work"
  (
    cd "$work"
    go mod init hcp-etcd-build >/dev/null 2>&1
    [ -z "$replaces" ] || printf '%s\n' "$replaces" >> go.mod
    for pkg in "$@"; do
      case $pkg in ./cmd/*) local var="MAIN_${pkg#./cmd/}"; mkdir -p "$pkg"; printf '%s\n' "${!var}" > "$pkg/main.go";; esac
    done
    go get "$mod" >/dev/null
    [ ! -d cmd ] || go mod tidy >/dev/null 2>&1   # resolve the generated main packages' imports
    for pkg in "$@"; do case $pkg in ./*) ;; *) go get "$pkg@${mod##*@}" >/dev/null 2>&1 || true;; esac; done
    go list -deps "$@" >/dev/null                 # reads, so downloads, the source of every package built
  )
  touch "$work/.fetched"
}

fetch_module() {  # its output goes to $cache/.work/<name>.log, a failure is redone by the build
  local name=$1
  ! fetched "$name" || return 0
  mkdir -p "$cache/.work"
  exec 8>"$cache/.fetch-$name.lock"; flock 8
  local start=$SECONDS
  if fetched "$name"; then :
  elif prepare_work "$@" 2>"$cache/.work/$name.log"; then log "$name: sources downloaded in $((SECONDS - start)) s"
  else log "$name: download failed (its build retries it): $(tail -n 1 "$cache/.work/$name.log")"
  fi
  exec 8>&-
}

build_module() {
  local name=$1 mod=$2 replaces=$3; shift 3
  local out=$cache/$name work=$cache/.work/$name
  # One build of a component at a time: a second caller (CI's prebuild and the cluster's start) waits
  # for that component only, then finds it cached.
  exec 9>"$cache/.build-$name.lock"
  if ! flock -n 9; then log "$name: another build is running; waiting for it"; flock 9; fi
  if [ -f "$out/.done" ]; then log "$name: cached in $out"; exec 9>&-; return; fi
  local start=$SECONDS
  exec 8>"$cache/.fetch-$name.lock"; flock 8      # a download under way in the background: wait for it
  fetched "$name" || prepare_work "$name" "$mod" "$replaces" "$@"
  local fetched=$((SECONDS - start))
  log "$name: building ${*##*/} from $mod (sources ready after ${fetched} s)"
  mkdir -p "$out/bin"
  (cd "$work" && go build -trimpath -ldflags "-s -w $LDFLAGS" -o "$out/bin/" "$@")
  touch "$out/.done"
  rm -rf "$work" "$cache/.work/$name.log"
  exec 8>&- 9>&-
  log "$name: done in $((SECONDS - start)) s (compile $((SECONDS - start - fetched)) s)"
}

k8s_minor=${KUBERNETES_VERSION#v1.}; k8s_minor=${k8s_minor%%.*}
staging_version=v0.${KUBERNETES_VERSION#v1.}
k8s_replaces="replace ("
for m in api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider \
         cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api \
         cri-client csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms \
         kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics \
         mount-utils pod-security-admission sample-apiserver sample-cli-plugin sample-controller; do
  k8s_replaces+=$'\n'"  k8s.io/$m => k8s.io/$m $staging_version"
done
k8s_replaces+=$'\n)'

component_kubernetes() {
  local v=$KUBERNETES_VERSION
  LDFLAGS="-X k8s.io/component-base/version.gitVersion=$v -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$k8s_minor -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$v" \
  "$1" "kubernetes-$v" "k8s.io/kubernetes@$v" "$k8s_replaces" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy \
    k8s.io/kubernetes/cmd/kubectl
}

# etcd 3.5's own main package sits in the root module go.etcd.io/etcd/v3, which the proxy no longer
# serves for recent 3.5 tags; its main.go is just this call into server/v3's etcdmain.
MAIN_etcd='package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }'
component_etcd() {
  local v
  for v in "$ETCD_VERSION" ${HCP_ETCD_EXTRA_ETCD-$ETCD36_VERSION $ETCD37_VERSION}; do
    LDFLAGS="" "$1" "etcd-$v" "go.etcd.io/etcd/server/v3@$v" "" \
      ./cmd/etcd go.etcd.io/etcd/etcdctl/v3 go.etcd.io/etcd/etcdutl/v3
  done
}

# CoreDNS with only the plugins of the cluster's Corefile (cluster.sh step_coredns): the full build
# compiles every cloud provider's SDK (Route 53, Azure, Cloud DNS, Datadog tracing...) for nothing.
# Directives keep CoreDNS's own order (plugin.cfg).
MAIN_coredns='package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"
)

func init() { dnsserver.Directives = []string{"bind", "ready", "errors", "kubernetes", "forward"} }

func main() { coremain.Run() }'
component_coredns() {
  LDFLAGS="" "$1" "coredns-$COREDNS_VERSION-min" "github.com/coredns/coredns@$COREDNS_VERSION" "" ./cmd/coredns
}

# crictl: lets `cluster.sh down` stop and remove pod sandboxes through CRI (CNI DEL, netns removal).
component_crictl() {
  LDFLAGS="" "$1" "cri-tools-$CRI_TOOLS_VERSION" "sigs.k8s.io/cri-tools@$CRI_TOOLS_VERSION" "" sigs.k8s.io/cri-tools/cmd/crictl
}

# MinIO: the real S3-compatible server the backup-store tests upload to and restore from (s3.sh).
component_minio() {
  LDFLAGS="" "$1" "minio-$MINIO_VERSION" "github.com/minio/minio@$MINIO_VERSION" "" github.com/minio/minio
}

for c in $components; do
  declare -F "component_$c" >/dev/null || { log "unknown component $c (kubernetes etcd coredns crictl minio)"; exit 2; }
done
# Every component's downloads at once, in the background (they wait on the module proxy, not on the
# CPU: Kubernetes' took 98 s alone and 89 s beside all the others), then the compiles one after the
# other in the order asked, each as soon as its own sources are in.
fetches=()
for c in $components; do component_$c fetch_module & fetches+=($!); done
for c in $components; do component_$c build_module; done
wait "${fetches[@]}" || true   # a download that failed in the background was redone, loudly, by its build above
log "built or cached: ${components# }"
