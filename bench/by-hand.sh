#!/usr/bin/env bash
# Two restores of a miniature hosted control plane "by hand" with kubectl and etcdutl: the baselines of
# `make bench` beside playbooks/restore.yml and the documented procedure (tests/e2e/documented-procedure.sh).
#
#   by-hand.sh correct   what a careful expert scripts: pause (and wait until the control plane's operator
#                        stops reconciling), stop the API servers and etcd, restore EVERY member from the
#                        snapshot (one helper pod per member volume, all members at once), remove the
#                        helpers, start etcd, wait until its pods are Ready, start the API servers at their
#                        earlier replica counts, `endpoint health`, unpause. No staging, no journal, no
#                        check by data: what the documented procedure would be if it restored every member.
#   by-hand.sh floor     only what cannot be avoided: every member's restore is staged beside the running
#                        etcd BEFORE the outage (not in the API downtime), then stop the API servers, stop
#                        etcd leader last (leadership moved to member 0, scale to 1, then 0: the fastest stop
#                        known here, see hcp.etcd.etcd_move_leader), swap the staged directories in, start
#                        etcd and the API servers at once, unpause. No check of any kind.
#
# Env: CLUSTER_NAME, HOSTED_CLUSTER_NAMESPACE (clusters), SNAPSHOT (a `snapshot save` file), KUBECONFIG
# (default: the local test cluster), HCP_ETCD_KUBECTL. Helper pods run as the etcd pods do (their securityContext),
# so the restored files belong to etcd's user. Prints each step with its time; exits non-zero when a
# step failed (it goes on, as a hand-run script would).
set -uo pipefail
mode=${1:-}
case $mode in correct|floor) ;; *) echo "usage: $0 correct|floor" >&2; exit 2 ;; esac
SNAPSHOT=${SNAPSHOT:?set SNAPSHOT}
SNAPSHOT=$(realpath "$SNAPSHOT")  # before script-env.sh moves to the repository
. "$(dirname "$0")/../tests/e2e/script-env.sh"
CLUSTER_NAME=${CLUSTER_NAME:?set CLUSTER_NAME}
HC_NS=${HOSTED_CLUSTER_NAMESPACE:-clusters}
NS=$HC_NS-$CLUSTER_NAME
[ -s "$SNAPSHOT" ] || { echo "no snapshot at $SNAPSHOT" >&2; exit 2; }
APIS=(kube-apiserver openshift-apiserver openshift-oauth-apiserver)
TLS=(--cacert /etc/etcd/tls/etcd-ca/ca.crt --cert /etc/etcd/tls/client/etcd-client.crt --key /etc/etcd/tls/client/etcd-client.key)
t0=$SECONDS failures=()

oc() { "$KUBECTL" -n "$NS" "$@"; }
step() {  # LABEL COMMAND...: run, print its time, remember a failure and go on
  local label=$1 t=$SECONDS rc; shift
  "$@"; rc=$?
  printf '[by-hand %s] %-34s %3d s%s\n' "$mode" "$label" $((SECONDS - t)) "$([ $rc -eq 0 ] || echo "  FAILED rc $rc")"
  [ $rc -eq 0 ] || failures+=("$label")
  return 0
}
gone() {  # SELECTOR: wait until no pod matches (kubectl wait --for=delete fails when none is left to wait for)
  local until=$((SECONDS + 300))
  while [ -n "$(oc get pod -l "$1" -o name 2>/dev/null)" ]; do [ $SECONDS -lt $until ] || return 1; sleep 0.5; done
}
each_member() {  # FUNCTION: run it for every member at once, fail when one failed
  local pids=() rc=0 i
  for i in $(seq 0 $((REPLICAS - 1))); do "$1" "$i" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  return $rc
}

REPLICAS=$(oc get statefulset etcd -o jsonpath='{.spec.replicas}')
[ "$REPLICAS" -gt 0 ] 2>/dev/null || { echo "StatefulSet etcd has '$REPLICAS' replicas: start it first" >&2; exit 2; }
IMAGE=$(oc get statefulset etcd -o jsonpath='{.spec.template.spec.containers[?(@.name=="etcd")].image}')
SECURITY=$(oc get statefulset etcd -o jsonpath='{.spec.template.spec.securityContext}')
[ -n "$SECURITY" ] || SECURITY='{}'
declare -A API_REPLICAS=()
for d in "${APIS[@]}"; do API_REPLICAS[$d]=$(oc get deployment "$d" -o jsonpath='{.spec.replicas}'); done
initial_cluster=$(for i in $(seq 0 $((REPLICAS - 1))); do printf 'etcd-%d=https://etcd-%d.etcd-discovery.%s.svc:2380,' "$i" "$i" "$NS"; done)
initial_cluster=${initial_cluster%,}

pause() {
  "$KUBECTL" -n "$HC_NS" patch hostedcluster "$CLUSTER_NAME" --type=merge -p '{"spec":{"pausedUntil":"true"}}' >/dev/null &&
    oc wait hostedcontrolplane "$CLUSTER_NAME" --for=condition=ReconciliationActive=False --timeout=120s >/dev/null
}
unpause() { "$KUBECTL" -n "$HC_NS" patch hostedcluster "$CLUSTER_NAME" --type=merge -p '{"spec":{"pausedUntil":null}}' >/dev/null; }
stop_api() {
  oc scale deployment "${APIS[@]}" --replicas=0 >/dev/null && gone "app in ($(IFS=,; echo "${APIS[*]}"))"
}
start_api() {
  local d; for d in "${APIS[@]}"; do oc scale deployment "$d" --replicas="${API_REPLICAS[$d]}" >/dev/null || return 1; done
}
stop_etcd() {
  oc scale statefulset etcd --replicas=0 >/dev/null && gone app=etcd
}
stop_etcd_leader_last() {
  local id; id=$(oc exec -c etcd etcd-0 -- etcdctl "${TLS[@]}" --endpoints=https://localhost:2379 endpoint status -w json 2>/dev/null |
    python3 -c 'import json,sys; print("%x" % json.load(sys.stdin)[0]["Status"]["header"]["member_id"])')
  local eps; eps=$(for i in $(seq 0 $((REPLICAS - 1))); do printf 'https://etcd-%d.etcd-discovery.%s.svc:2379,' "$i" "$NS"; done)
  [ -n "$id" ] && oc exec -c etcd etcd-0 -- etcdctl "${TLS[@]}" --endpoints="${eps%,}" move-leader "$id" >/dev/null 2>&1
  oc scale statefulset etcd --replicas=1 >/dev/null &&
    gone 'app=etcd,statefulset.kubernetes.io/pod-name!=etcd-0' &&
    stop_etcd
}
start_etcd() { oc scale statefulset etcd --replicas="$REPLICAS" >/dev/null; }
wait_etcd_ready() { sleep 2; oc wait pod -l app=etcd --for=condition=Ready --timeout=300s >/dev/null; }
endpoint_health() { oc exec -c etcd etcd-0 -- etcdctl "${TLS[@]}" --endpoints=https://localhost:2379 endpoint health --cluster; }

helper_manifest() {  # INDEX
  cat <<EOF
apiVersion: v1
kind: Pod
metadata: {name: by-hand-$1, labels: {app: by-hand-restore}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 0
  automountServiceAccountToken: false
  securityContext: $SECURITY
  tolerations: [{operator: Exists}]
  containers:
    - name: helper
      image: $IMAGE
      imagePullPolicy: IfNotPresent
      command: [sleep, infinity]
      volumeMounts: [{name: data, mountPath: /var/lib}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: data-etcd-$1}}]
EOF
}
start_helpers() {
  local i; for i in $(seq 0 $((REPLICAS - 1))); do helper_manifest "$i"; echo ---; done | oc apply -f - >/dev/null &&
    oc wait pod -l app=by-hand-restore --for=condition=Ready --timeout=300s >/dev/null
}
remove_helpers() { oc delete pod -l app=by-hand-restore --wait=false >/dev/null; }
restore_member_into() {  # INDEX DIR: copy the snapshot in and restore it into DIR (removed first)
  local i=$1 dir=$2
  oc cp -c helper "$SNAPSHOT" "by-hand-$i:/var/lib/by-hand.snap.db" &&
    oc exec -c helper "by-hand-$i" -- sh -c "rm -rf '$dir' && etcdutl snapshot restore /var/lib/by-hand.snap.db --data-dir '$dir' \
      --name etcd-$i --initial-cluster '$initial_cluster' \
      --initial-advertise-peer-urls https://etcd-$i.etcd-discovery.$NS.svc:2380 >/dev/null 2>&1 && rm -f /var/lib/by-hand.snap.db"
}
restore_in_place() { restore_member_into "$1" /var/lib/data; }
stage() { restore_member_into "$1" /var/lib/by-hand-staged; }
swap() { oc exec -c helper "by-hand-$1" -- sh -c 'rm -rf /var/lib/by-hand-old && mv /var/lib/data /var/lib/by-hand-old && mv /var/lib/by-hand-staged /var/lib/data'; }
drop_old() { oc exec -c helper "by-hand-$1" -- rm -rf /var/lib/by-hand-old; }

if [ "$mode" = correct ]; then
  step "pause, wait for the operator" pause
  step "stop the API servers" stop_api
  step "stop etcd" stop_etcd
  step "start a helper per member volume" start_helpers
  step "restore every member" each_member restore_in_place
  step "remove the helpers" remove_helpers
  step "start etcd" start_etcd
  step "wait until etcd is Ready" wait_etcd_ready
  step "start the API servers" start_api
  step "endpoint health" endpoint_health
  step "unpause" unpause
else
  step "pause, wait for the operator" pause
  step "start a helper per member volume" start_helpers
  step "stage every member (before the outage)" each_member stage
  step "stop the API servers" stop_api
  step "stop etcd, leader last" stop_etcd_leader_last
  step "swap the staged directories in" each_member swap
  step "start etcd" start_etcd
  step "start the API servers" start_api
  step "unpause" unpause
  step "drop the old directories (after)" each_member drop_old
  step "remove the helpers" remove_helpers
fi
echo "by-hand $mode finished in $((SECONDS - t0)) s; failed steps: ${failures[*]:-none}"
[ ${#failures[@]} -eq 0 ]
