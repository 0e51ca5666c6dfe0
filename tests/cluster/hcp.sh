#!/usr/bin/env bash
# A miniature HyperShift hosted control plane on the test cluster, for the hcp.etcd tests.
#
#   hcp.sh up NAME [HighlyAvailable|SingleReplica] [3.5|3.4|3.6|3.7]   create or converge; waits until ready
#   hcp.sh down NAME                                            delete it, its namespace and PVCs
#   hcp.sh status NAME
#
# What `up` makes (manifests in tests/fixtures/):
#   CRDs hostedclusters/nodepools/hostedcontrolplanes.hypershift.openshift.io (real pausedUntil validation);
#   HostedCluster NAME and NodePool NAME-workers in namespace $HOSTED_CLUSTER_NAMESPACE (default clusters);
#   HostedControlPlane NAME in the control-plane namespace, and the operator stand-in lib/hcp-operator.sh
#   (one per cluster): pause reaches it late, and until then it puts scaled-down API Deployments back;
#   namespace <hc-ns>-NAME with the etcd StatefulSet (3 or 1 members, TLS, reset-member init container,
#   image localhost/hcp-etcd/etcd:<ETCD>, probes through a healthz container on 9980, etcd-defrag when HA), Services etcd-discovery/etcd-client, a per-control-plane CA
#   and certs, and Deployments kube-apiserver, openshift-apiserver, openshift-oauth-apiserver that
#   write to the hosted etcd every 3 s and are Ready only while their writes succeed. With HCP_API=real the
#   kube-apiserver Deployment runs the real kube-apiserver on the hosted etcd (fixtures/hcp/kube-apiserver.yaml.in,
#   Service kube-apiserver:6443, bearer token in Secret kube-apiserver-token, key "token").
# Env: KUBECONFIG (default: tests/cluster/cluster.sh kubeconfig), KUBECTL, HOSTED_CLUSTER_NAMESPACE,
#      HCP_TIMEOUT (seconds to wait, default 600), HCP_DATA_SIZE (PVC size, default 1Gi), HCP_API (writers|real).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
fixtures=$(cd "$here/../fixtures" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
cache=${HCP_ETCD_CACHE:-$HOME/.cache/hcp-etcd}
KUBECTL=${KUBECTL:-$cache/kubernetes-$KUBERNETES_VERSION/bin/kubectl}
if [ -z "${KUBECONFIG:-}" ]; then KUBECONFIG=$("$here/cluster.sh" kubeconfig); fi
export KUBECONFIG
HC_NS=${HOSTED_CLUSTER_NAMESPACE:-clusters}
TIMEOUT=${HCP_TIMEOUT:-600}
API_DEPLOYMENTS=(kube-apiserver openshift-apiserver openshift-oauth-apiserver)

log() { printf '%s [hcp] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
k() { "$KUBECTL" "$@"; }

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

# render FILE KEY=VALUE...: replace @KEY@ placeholders.
render() {
  local file=$1; shift
  local args=() kv
  for kv in "$@"; do args+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
  sed "${args[@]}" "$file"
}

# wait_until DESCRIPTION COMMAND...: poll every 2 s until COMMAND succeeds or TIMEOUT.
wait_until() {
  local what=$1; shift
  local start=$SECONDS
  until "$@"; do
    if [ $((SECONDS - start)) -ge "$TIMEOUT" ]; then
      log "timed out after $TIMEOUT s waiting for $what"; return 1
    fi
    sleep 2
  done
}

sts_ready() {  # NS N
  local got
  got=$(k -n "$1" get statefulset etcd -o jsonpath='{.status.readyReplicas}/{.status.updatedReplicas}/{.status.currentRevision}={.status.updateRevision}' 2>/dev/null) || return 1
  [[ $got =~ ^$2/$2/(.*)=(.*)$ ]] && [ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ]
}

deploy_ready() {  # NS NAME N
  local got
  got=$(k -n "$1" get deployment "$2" -o jsonpath='{.status.readyReplicas}/{.status.updatedReplicas}/{.status.replicas}/{.status.conditions[?(@.type=="Available")].status}' 2>/dev/null) || return 1
  [ "$got" = "$3/$3/$3/True" ]
}

# Per-control-plane CA and certificates (ECDSA P-256), as Secrets/ConfigMap named like HyperShift's.
make_tls() {
  local ns=$1 d
  if k -n "$ns" get configmap etcd-ca >/dev/null 2>&1 && k -n "$ns" get secret etcd-server-tls etcd-peer-tls etcd-client-tls >/dev/null 2>&1; then
    log "tls: already present in $ns"; return
  fi
  d=$(mktemp -d)
  (
    cd "$d"
    key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
    key ca.key
    openssl req -x509 -new -key ca.key -subj "/OU=openshift/CN=etcd-signer-$ns" -days 3650 -out ca.crt \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign,digitalSignature 2>/dev/null
    local sans="DNS:*.etcd-discovery.$ns.svc,DNS:*.etcd-discovery.$ns.svc.cluster.local,DNS:etcd-client,DNS:etcd-client.$ns.svc,DNS:etcd-client.$ns.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:::1"
    cert() {  # name CN EKU [SANs]
      key "$1.key"
      openssl req -new -key "$1.key" -subj "/OU=openshift/CN=$2" -out "$1.csr" 2>/dev/null
      { echo "basicConstraints=critical,CA:FALSE"; echo "keyUsage=critical,digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=$3"; [ -z "${4:-}" ] || echo "subjectAltName=$4"; } > "$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    }
    cert server etcd-server serverAuth,clientAuth "$sans"
    cert peer etcd-peer serverAuth,clientAuth "$sans"
    cert etcd-client etcd-client clientAuth
  )
  k -n "$ns" create configmap etcd-ca --from-file=ca.crt="$d/ca.crt" --dry-run=client -o yaml | k apply -f - >/dev/null
  k -n "$ns" create secret generic etcd-signer --from-file=ca.crt="$d/ca.crt" --from-file=ca.key="$d/ca.key" --dry-run=client -o yaml | k apply -f - >/dev/null
  k -n "$ns" create secret generic etcd-server-tls --from-file=server.crt="$d/server.crt" --from-file=server.key="$d/server.key" --dry-run=client -o yaml | k apply -f - >/dev/null
  k -n "$ns" create secret generic etcd-peer-tls --from-file=peer.crt="$d/peer.crt" --from-file=peer.key="$d/peer.key" --dry-run=client -o yaml | k apply -f - >/dev/null
  k -n "$ns" create secret generic etcd-client-tls --from-file=etcd-client.crt="$d/etcd-client.crt" --from-file=etcd-client.key="$d/etcd-client.key" --dry-run=client -o yaml | k apply -f - >/dev/null
  rm -rf "$d"
  log "tls: CA and server/peer/client certificates created in $ns"
}

# The real hosted kube-apiserver's own secrets: a service-account key pair and a bearer token (token file).
make_api_secrets() {
  local ns=$1 d token
  if k -n "$ns" get secret kube-apiserver-sa kube-apiserver-token >/dev/null 2>&1; then return; fi
  d=$(mktemp -d)
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/sa.key" 2>/dev/null
  openssl pkey -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
  token=$(openssl rand -hex 24)
  printf '%s,hcp-etcd-test-admin,hcp-etcd-test-admin,system:masters\n' "$token" > "$d/tokens.csv"
  k -n "$ns" create secret generic kube-apiserver-sa --from-file=sa.key="$d/sa.key" --from-file=sa.pub="$d/sa.pub" \
    --dry-run=client -o yaml | k apply -f - >/dev/null
  k -n "$ns" create secret generic kube-apiserver-token --from-file=tokens.csv="$d/tokens.csv" --from-literal=token="$token" \
    --dry-run=client -o yaml | k apply -f - >/dev/null
  rm -rf "$d"
}

# etcd_logs NS: why members are not ready (for a failed `up`): each member's reset-member output and the last
# lines of its etcd container, and of the one before when it restarted.
etcd_logs() {
  local p
  for p in $(k -n "$1" get pods -l app=etcd -o jsonpath='{.items[*].metadata.name}' 2>/dev/null); do
    { echo "--- $p reset-member"; k -n "$1" logs "$p" -c reset-member 2>&1 | grep -v 'unrecognized environment variable' | tail -n 15
      echo "--- $p etcd"; k -n "$1" logs "$p" -c etcd --tail=8 2>&1 | cut -c1-400
      echo "--- $p etcd, previous"; k -n "$1" logs "$p" -c etcd --previous --tail=8 2>&1 | cut -c1-400; } >&2
  done
}

set_conditions() {  # NAME NS
  local now; now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  local c='{"type":"%s","status":"%s","reason":"%s","message":"%s","lastTransitionTime":"'$now'"}'
  local conds
  conds=$(printf "[$c,$c,$c,$c,$c]" \
    Available True AsExpected "The hosted control plane is available (miniature)" \
    EtcdAvailable True QuorumAvailable "All etcd members are ready" \
    KubeAPIServerAvailable True AsExpected "Kube APIServer deployment is available" \
    Degraded False AsExpected "The hosted cluster is not degraded" \
    ReconciliationActive True ReconciliationActive "Reconciliation active on resource (see the HostedControlPlane's condition)")
  k -n "$HC_NS" patch hostedcluster "$1" --subresource=status --type=merge -p "{\"status\":{\"conditions\":$conds}}" >/dev/null
}

hcp_reconciling() {  # NS NAME
  [ "$(k -n "$1" get hostedcontrolplane "$2" -o jsonpath='{.status.conditions[?(@.type=="ReconciliationActive")].status}' 2>/dev/null)" = True ]
}

# The operator stand-in (lib/hcp-operator.sh), one per cluster (per KUBECONFIG), started once.
ensure_operator() {
  local dir=${HCP_OPERATOR_DIR:-/var/tmp/hcp-etcd-operator} id pid
  id=$(printf '%s' "$KUBECONFIG" | sha256sum | cut -c1-12)
  mkdir -p "$dir"
  exec 8>"$dir/$id.lock"; flock 8
  pid=$(cat "$dir/$id.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q hcp-operator.sh; then flock -u 8; return; fi
  KUBECTL=$KUBECTL KUBECONFIG=$KUBECONFIG setsid "$here/lib/hcp-operator.sh" </dev/null >>"$dir/$id.log" 2>&1 8>&- 9>&- &
  echo $! > "$dir/$id.pid"
  flock -u 8
  log "operator stand-in started (pid $!, log $dir/$id.log)"
}

shared_setup() {
  local dir=${HCP_OPERATOR_DIR:-/var/tmp/hcp-etcd-operator} id
  id=$(printf '%s' "$KUBECONFIG" | sha256sum | cut -c1-12)
  mkdir -p "$dir"
  exec 9>"$dir/$id.setup.lock"; flock 9
  k apply -f "$fixtures/crds/" >/dev/null
  k wait --for=condition=Established --timeout=60s crd/hostedclusters.hypershift.openshift.io crd/nodepools.hypershift.openshift.io \
    crd/hostedcontrolplanes.hypershift.openshift.io >/dev/null
  k create namespace "$HC_NS" --dry-run=client -o yaml | k apply -f - >/dev/null
  k apply -f - >/dev/null <<EOF
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: hypershift-etcd}
value: 100002000
description: HyperShift's priority class of the hosted etcd (miniature)
EOF
  ensure_operator
  flock -u 9; exec 9>&-
}

cmd_up() {
  local name=${1:?name}; local policy=${2:-HighlyAvailable} etcd=${3:-3.5}
  [[ $name =~ ^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$ ]] || die "bad name $name"
  local ns="$HC_NS-${name//./-}" replicas image start=$SECONDS
  case $policy in HighlyAvailable) replicas=3 ;; SingleReplica) replicas=1 ;; *) die "POLICY must be HighlyAvailable or SingleReplica" ;; esac
  case $etcd in 3.4|3.5|3.6|3.7) image=localhost/hcp-etcd/etcd:$etcd ;; *) die "ETCD must be 3.4, 3.5, 3.6 or 3.7" ;; esac
  log "up: $name ($policy, etcd $etcd) in $ns"

  # What control planes share (CRDs, the HostedCluster namespace, the priority class, the operator stand-in)
  # is made under one lock: two `up`s at once (the fleet) would otherwise both create it, and the second
  # create fails with AlreadyExists.
  shared_setup
  local existing
  existing=$(k -n "$HC_NS" get hostedcluster "$name" -o jsonpath='{.spec.controllerAvailabilityPolicy}' 2>/dev/null || true)
  [ -z "$existing" ] || [ "$existing" = "$policy" ] || die "HostedCluster $name exists with policy $existing (immutable): hcp.sh down $name first"
  k create namespace "$ns" --dry-run=client -o yaml | k apply -f - >/dev/null
  k label namespace "$ns" --overwrite hypershift.openshift.io/hosted-control-plane=true >/dev/null
  render "$fixtures/hcp/hostedcluster.yaml.in" NAME="$name" HC_NS="$HC_NS" NS="$ns" POLICY="$policy" | k apply -f - >/dev/null
  k apply -f - >/dev/null <<EOF
apiVersion: hypershift.openshift.io/v1beta1
kind: HostedControlPlane
metadata:
  name: $name
  namespace: $ns
  annotations: {hypershift.openshift.io/cluster: "$HC_NS/$name"}
spec: {}
EOF
  make_tls "$ns"
  # what HyperShift's etcd pod runs with: service account etcd and priority class hypershift-etcd (shared_setup);
  # HighlyAvailable: service account etcd-defrag-controller and an etcd-defrag container
  local sa=etcd defrag=/dev/null
  if [ "$replicas" -gt 1 ]; then sa=etcd-defrag-controller defrag=$fixtures/hcp/etcd-defrag.yaml.in; fi
  k -n "$ns" create serviceaccount "$sa" --dry-run=client -o yaml | k apply -f - >/dev/null

  local initial="" i
  for ((i = 0; i < replicas; i++)); do initial+="${initial:+,}etcd-$i=https://etcd-$i.etcd-discovery.$ns.svc:2380"; done
  render <(sed -e "/@DEFRAG_CONTAINER@/{r $defrag" -e 'd}' "$fixtures/hcp/etcd.yaml.in") NS="$ns" REPLICAS="$replicas" \
    IMAGE="$image" INITIAL_CLUSTER="$initial" DATA_SIZE="${HCP_DATA_SIZE:-1Gi}" SERVICE_ACCOUNT="$sa" | k apply -f - >/dev/null
  local d
  for d in "${API_DEPLOYMENTS[@]}"; do
    if [ "$d" = kube-apiserver ] && [ "${HCP_API:-writers}" = real ]; then
      make_api_secrets "$ns"
      render "$fixtures/hcp/kube-apiserver.yaml.in" NS="$ns" REPLICAS="$replicas" \
        IMAGE="localhost/hcp-etcd/kube-apiserver:$KUBERNETES_VERSION" | k apply -f - >/dev/null
      continue
    fi
    render "$fixtures/hcp/api-writer.yaml.in" NS="$ns" DEPLOY="$d" REPLICAS="$replicas" IMAGE="$image" | k apply -f - >/dev/null
  done

  wait_until "StatefulSet etcd $replicas/$replicas ready" sts_ready "$ns" "$replicas" || { k -n "$ns" get pods -o wide >&2; etcd_logs "$ns"; exit 1; }
  log "up: StatefulSet etcd $replicas/$replicas ready after $((SECONDS - start)) s"
  for d in "${API_DEPLOYMENTS[@]}"; do
    wait_until "Deployment $d available" deploy_ready "$ns" "$d" "$replicas" || { k -n "$ns" get pods -o wide >&2; exit 1; }
  done
  set_conditions "$name" "$ns"
  wait_until "HostedControlPlane $name reconciling" hcp_reconciling "$ns" "$name" || exit 1
  log "up: $name ready in $((SECONDS - start)) s: etcd $replicas/$replicas ($image), ${API_DEPLOYMENTS[*]} $replicas/$replicas available"
}

cmd_down() {
  local name=${1:?name}; local ns="$HC_NS-${name//./-}" start=$SECONDS
  log "down: $name ($ns)"
  k -n "$HC_NS" delete nodepool "$name-workers" --ignore-not-found --wait=true >/dev/null 2>&1 || true
  k -n "$HC_NS" delete hostedcluster "$name" --ignore-not-found --wait=true >/dev/null 2>&1 || true
  if k get namespace "$ns" >/dev/null 2>&1; then
    k -n "$ns" delete deployment,statefulset --all --wait=false >/dev/null 2>&1 || true
    k -n "$ns" delete pod --all --grace-period=1 --wait=false >/dev/null 2>&1 || true
    k -n "$ns" delete pvc --all --wait=false >/dev/null 2>&1 || true
    k delete namespace "$ns" --wait=true --timeout="${TIMEOUT}s" >/dev/null
  fi
  # The PVs of the deleted claims (reclaim policy Delete) go away shortly after.
  pvs_gone() { [ -z "$(k get pv -o jsonpath="{range .items[?(@.spec.claimRef.namespace==\"$ns\")]}{.metadata.name} {end}" 2>/dev/null)" ]; }
  wait_until "PersistentVolumes of $ns deleted" pvs_gone || log "warning: PVs of $ns still present"
  log "down: $name removed in $((SECONDS - start)) s"
}

cmd_status() {
  local name=${1:?name}; local ns="$HC_NS-${name//./-}"
  k -n "$HC_NS" get hostedcluster,nodepool 2>/dev/null | grep -E "^NAME|$name" || true
  k -n "$ns" get statefulset,deployment,pod,pvc -o wide
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) shift; cmd_down "$@" ;;
  status) shift; cmd_status "$@" ;;
  *) usage ;;
esac
