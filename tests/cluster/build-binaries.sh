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
components=" ${*:-kubernetes etcd coredns crictl minio} "
want() { [[ $components == *" $1 "* ]]; }

mkdir -p "$cache"

# build_module <cache-name> <main-module@version> <replace-lines> <package...>
# A package given as ./cmd/<name> is generated in the work module from $MAIN_<name> (Go source), for
# projects whose main package lives in a module the proxy does not serve (etcd's root module).
build_module() {
  local name=$1 mod=$2 replaces=$3; shift 3
  local out=$cache/$name
  # One build of a component at a time: a second caller (CI's prebuild and the cluster's start) waits
  # for that component only, then finds it cached.
  exec 9>"$cache/.build-$name.lock"
  if ! flock -n 9; then log "$name: another build is running; waiting for it"; flock 9; fi
  if [ -f "$out/.done" ]; then log "$name: cached in $out"; exec 9>&-; return; fi
  local work; work=$(mktemp -d)
  local start=$SECONDS
  log "$name: building ${*##*/} from $mod"
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
    mkdir -p "$out/bin"
    go build -trimpath -ldflags "-s -w $LDFLAGS" -o "$out/bin/" "$@"
  )
  rm -rf "$work"
  touch "$out/.done"
  exec 9>&-
  log "$name: done in $((SECONDS - start)) s"
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

want kubernetes && LDFLAGS="-X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$k8s_minor -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION" \
build_module "kubernetes-$KUBERNETES_VERSION" "k8s.io/kubernetes@$KUBERNETES_VERSION" "$k8s_replaces" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy \
  k8s.io/kubernetes/cmd/kubectl

# etcd 3.5's own main package sits in the root module go.etcd.io/etcd/v3, which the proxy no longer
# serves for recent 3.5 tags; its main.go is just this call into server/v3's etcdmain.
MAIN_etcd='package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }'
want etcd && for v in "$ETCD_VERSION" ${HCP_ETCD_EXTRA_ETCD-$ETCD36_VERSION $ETCD37_VERSION}; do
  LDFLAGS="" build_module "etcd-$v" "go.etcd.io/etcd/server/v3@$v" "" \
    ./cmd/etcd go.etcd.io/etcd/etcdctl/v3 go.etcd.io/etcd/etcdutl/v3
done

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
want coredns && LDFLAGS="" build_module "coredns-$COREDNS_VERSION-min" "github.com/coredns/coredns@$COREDNS_VERSION" "" \
  ./cmd/coredns

# crictl: lets `cluster.sh down` stop and remove pod sandboxes through CRI (CNI DEL, netns removal).
want crictl && LDFLAGS="" build_module "cri-tools-$CRI_TOOLS_VERSION" "sigs.k8s.io/cri-tools@$CRI_TOOLS_VERSION" "" \
  sigs.k8s.io/cri-tools/cmd/crictl

# MinIO: the real S3-compatible server the backup-store tests upload to and restore from (s3.sh).
want minio && LDFLAGS="" build_module "minio-$MINIO_VERSION" "github.com/minio/minio@$MINIO_VERSION" "" \
  github.com/minio/minio
log "built or cached: ${components# }"
