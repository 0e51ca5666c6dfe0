#!/usr/bin/env bash
# The published on-premise etcd backup/restore procedure for hosted control planes (OpenShift docs
# "8.3. Backing up and restoring etcd on a hosted cluster in an on-premise environment", seed text in
# /work/shared/seed/000_76627d8e46f61c97.txt), run LITERALLY against a miniature hosted control plane.
# `oc` is kubectl from the test cache. The ONLY change: the last step uses the undefined
# ${CLUSTER_NAMESPACE}; it is replaced by ${HOSTED_CLUSTER_NAMESPACE}. Everything else is as published,
# including `"pausedUntil":""` (rejected by the real API validation: reported, then we go on),
# `--skip-hash-check`, 3 hard-coded members, and restoring only member 0.
# Waiting where the text says "wait until ..." (`oc get ... -w`) is done with `kubectl wait`.
#
#   documented-procedure.sh snapshot   step 2.2 only: snapshot etcd-0 and copy it to $SNAPSHOT
#   documented-procedure.sh restore    steps 1, 2.1 (use the earlier snapshot $SNAPSHOT), 3, 4
#   documented-procedure.sh all        steps 1, 2.2, 3, 4 (snapshot taken after the API scale-down)
# Env: CLUSTER_NAME (default doc), HOSTED_CLUSTER_NAMESPACE (default clusters),
#      SNAPSHOT (default /tmp/etcd.snapshot.db), KUBECONFIG (default: tests/cluster/cluster.sh kubeconfig)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../cluster/versions.env"
KUBECTL=${KUBECTL:-${HCP_ETCD_CACHE:-$HOME/.cache/hcp-etcd}/kubernetes-$KUBERNETES_VERSION/bin/kubectl}
if [ -z "${KUBECONFIG:-}" ]; then KUBECONFIG=$("$here/../cluster/cluster.sh" kubeconfig); fi
export KUBECONFIG
oc() { "$KUBECTL" "$@"; }
SNAPSHOT=${SNAPSHOT:-/tmp/etcd.snapshot.db}
mode=${1:-all}
failures=()
t0=$SECONDS

# run STEP-LABEL COMMAND...: echo the command as the document shows it, run it, report a failure and go on.
run() {
  local label=$1; shift
  printf '\n### %s\n$ %s\n' "$label" "$*"
  "$@"; local rc=$?
  if [ $rc -ne 0 ]; then echo "!!! step $label FAILED (rc $rc)"; failures+=("$label"); fi
  return 0
}

# 1.1 environment
CLUSTER_NAME=${CLUSTER_NAME:-doc}
HOSTED_CLUSTER_NAMESPACE=${HOSTED_CLUSTER_NAMESPACE:-clusters}
CONTROL_PLANE_NAMESPACE="${HOSTED_CLUSTER_NAMESPACE}-${CLUSTER_NAME}"
echo "CLUSTER_NAME=$CLUSTER_NAME HOSTED_CLUSTER_NAMESPACE=$HOSTED_CLUSTER_NAMESPACE CONTROL_PLANE_NAMESPACE=$CONTROL_PLANE_NAMESPACE SNAPSHOT=$SNAPSHOT"

step1() {
  run 1.2 oc patch -n ${HOSTED_CLUSTER_NAMESPACE} hostedclusters/${CLUSTER_NAME} -p '{"spec":{"pausedUntil":"true"}}' --type=merge
  run 1.3.1 oc scale -n ${CONTROL_PLANE_NAMESPACE} deployment/kube-apiserver --replicas=0
  run 1.3.2 oc scale -n ${CONTROL_PLANE_NAMESPACE} deployment/openshift-apiserver --replicas=0
  run 1.3.3 oc scale -n ${CONTROL_PLANE_NAMESPACE} deployment/openshift-oauth-apiserver --replicas=0
}

step2_snapshot() {
  run 2.2.1 oc get -n ${CONTROL_PLANE_NAMESPACE} pods -l app=etcd
  ETCD_POD=etcd-0
  run 2.2.2 oc exec -n ${CONTROL_PLANE_NAMESPACE} -c etcd -t ${ETCD_POD} -- env ETCDCTL_API=3 /usr/bin/etcdctl \
    --cacert /etc/etcd/tls/etcd-ca/ca.crt \
    --cert /etc/etcd/tls/client/etcd-client.crt \
    --key /etc/etcd/tls/client/etcd-client.key \
    --endpoints=https://localhost:2379 \
    snapshot save /var/lib/snapshot.db
  run 2.2.3 oc exec -n ${CONTROL_PLANE_NAMESPACE} -c etcd -t ${ETCD_POD} -- env ETCDCTL_API=3 /usr/bin/etcdctl -w table snapshot status /var/lib/snapshot.db
  run 2.3 oc cp -c etcd ${CONTROL_PLANE_NAMESPACE}/${ETCD_POD}:/var/lib/snapshot.db "$SNAPSHOT"
  ls -l "$SNAPSHOT" && sha256sum "$SNAPSHOT"
}

step3_restore() {
  run 3 oc scale -n ${CONTROL_PLANE_NAMESPACE} statefulset/etcd --replicas=0
  run 3.1 oc delete -n ${CONTROL_PLANE_NAMESPACE} pvc/data-etcd-1 pvc/data-etcd-2
  ETCD_IMAGE=$(oc get -n ${CONTROL_PLANE_NAMESPACE} statefulset/etcd -o jsonpath='{ .spec.template.spec.containers[0].image }')
  echo "ETCD_IMAGE=$ETCD_IMAGE"
  printf '\n### 3.2.2\n$ cat << EOF | oc apply -n %s -f -   (Deployment etcd-data)\n' "$CONTROL_PLANE_NAMESPACE"
  cat << EOF | oc apply -n ${CONTROL_PLANE_NAMESPACE} -f - || failures+=(3.2.2)
apiVersion: apps/v1
kind: Deployment
metadata:
  name: etcd-data
spec:
  replicas: 1
  selector:
    matchLabels:
      app: etcd-data
  template:
    metadata:
      labels:
        app: etcd-data
    spec:
      containers:
      - name: access
        image: $ETCD_IMAGE
        volumeMounts:
        - name: data
          mountPath: /var/lib
        command:
        - /usr/bin/bash
        args:
        - -c
        - |-
          while true; do
            sleep 1000
          done
      volumes:
      - name: data
        persistentVolumeClaim:
          claimName: data-etcd-0
EOF
  # (No imagePullPolicy in the published manifest: the default IfNotPresent finds the imported image.)
  run 3.2.3 oc wait -n ${CONTROL_PLANE_NAMESPACE} pods -l app=etcd-data --for=condition=Ready --timeout=180s
  run 3.2.3 oc get -n ${CONTROL_PLANE_NAMESPACE} pods -l app=etcd-data
  DATA_POD=$(oc get -n ${CONTROL_PLANE_NAMESPACE} pods --no-headers -l app=etcd-data -o name | cut -d/ -f2)
  echo "DATA_POD=$DATA_POD"
  run 3.3 oc cp "$SNAPSHOT" ${CONTROL_PLANE_NAMESPACE}/${DATA_POD}:/var/lib/restored.snap.db
  run 3.4 oc exec -n ${CONTROL_PLANE_NAMESPACE} ${DATA_POD} -- rm -rf /var/lib/data
  run 3.4 oc exec -n ${CONTROL_PLANE_NAMESPACE} ${DATA_POD} -- mkdir -p /var/lib/data
  run 3.5 oc exec -n ${CONTROL_PLANE_NAMESPACE} ${DATA_POD} -- etcdutl snapshot restore /var/lib/restored.snap.db \
       --data-dir=/var/lib/data --skip-hash-check \
       --name etcd-0 \
       --initial-cluster-token=etcd-cluster \
       --initial-cluster etcd-0=https://etcd-0.etcd-discovery.${CONTROL_PLANE_NAMESPACE}.svc:2380,etcd-1=https://etcd-1.etcd-discovery.${CONTROL_PLANE_NAMESPACE}.svc:2380,etcd-2=https://etcd-2.etcd-discovery.${CONTROL_PLANE_NAMESPACE}.svc:2380 \
       --initial-advertise-peer-urls https://etcd-0.etcd-discovery.${CONTROL_PLANE_NAMESPACE}.svc:2380
  run 3.6 oc exec -n ${CONTROL_PLANE_NAMESPACE} ${DATA_POD} -- rm /var/lib/restored.snap.db
  run 3.7 oc delete -n ${CONTROL_PLANE_NAMESPACE} deployment/etcd-data
  run 3.8 oc scale -n ${CONTROL_PLANE_NAMESPACE} statefulset/etcd --replicas=3
  # 3.9 "wait until the etcd member pods are back and report available" (oc get pods -l app=etcd -w)
  sleep 5
  run 3.9 oc wait -n ${CONTROL_PLANE_NAMESPACE} pods -l app=etcd --for=condition=Ready --timeout=300s
  run 3.9 oc get -n ${CONTROL_PLANE_NAMESPACE} pods -l app=etcd
  run 3.10 oc scale deployment -n ${CONTROL_PLANE_NAMESPACE} --replicas=3 kube-apiserver openshift-apiserver openshift-oauth-apiserver
  # 4: published with the undefined ${CLUSTER_NAMESPACE}; fixed to ${HOSTED_CLUSTER_NAMESPACE}, nothing else.
  run 4 oc patch -n ${HOSTED_CLUSTER_NAMESPACE} hostedclusters/${CLUSTER_NAME} -p '{"spec":{"pausedUntil":""}}' --type=merge
}

case $mode in
  snapshot) step2_snapshot ;;
  restore) [ -s "$SNAPSHOT" ] || { echo "no snapshot at $SNAPSHOT (run: $0 snapshot)"; exit 2; }
           step1; echo; echo "### 2.1 using the earlier snapshot $SNAPSHOT"; step3_restore ;;
  all) step1; step2_snapshot; step3_restore ;;
  *) echo "usage: $0 [snapshot|restore|all]" >&2; exit 2 ;;
esac
echo
echo "documented procedure ($mode) finished in $((SECONDS - t0)) s; failed steps: ${failures[*]:-none}"
echo "HostedCluster spec.pausedUntil now: '$(oc get -n ${HOSTED_CLUSTER_NAMESPACE} hostedclusters/${CLUSTER_NAME} -o jsonpath='{.spec.pausedUntil}')'"
[ ${#failures[@]} -eq 0 ]
