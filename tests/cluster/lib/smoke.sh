# shellcheck shell=bash
# `cluster.sh smoke`: the cluster's acceptance check, in a throwaway namespace. Checks what the hcp.etcd
# tests rely on: imported images run without pulls, default-StorageClass PVCs bind and are writable,
# a deleted and recreated PVC is a fresh empty volume, StatefulSet members resolve as
# <pod>.<headless-svc>.<ns>.svc even when not ready, a ClusterIP Service is reachable by its short name,
# kubectl exec and kubectl cp work.

SMOKE_NS=hcp-etcd-smoke

smoke_manifest() {
  cat <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: $SMOKE_NS}
---
apiVersion: v1
kind: Service
metadata: {name: etcd-discovery, namespace: $SMOKE_NS}
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  selector: {app: etcd}
  ports: [{name: peer, port: 2380}, {name: etcd-client, port: 2379}]
---
apiVersion: v1
kind: Service
metadata: {name: etcd-client, namespace: $SMOKE_NS}
spec:
  selector: {app: etcd}
  ports: [{name: etcd-client, port: 2379}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: etcd, namespace: $SMOKE_NS}
spec:
  serviceName: etcd-discovery
  podManagementPolicy: Parallel
  replicas: 2
  selector: {matchLabels: {app: etcd}}
  template:
    metadata: {labels: {app: etcd}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: etcd
        image: localhost/hcp-etcd/etcd:3.5
        imagePullPolicy: Never
        command: [/bin/sh, -c, 'exec etcd --name \$(HOSTNAME) --data-dir /var/lib/data --listen-client-urls http://0.0.0.0:2379 --advertise-client-urls http://\$(HOSTNAME).etcd-discovery.$SMOKE_NS.svc:2379']
        env: [{name: HOSTNAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
        volumeMounts: [{name: data, mountPath: /var/lib}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: v1
kind: Pod
metadata: {name: pause, namespace: $SMOKE_NS}
spec:
  terminationGracePeriodSeconds: 1
  containers: [{name: pause, image: localhost/hcp-etcd/pause:3.10, imagePullPolicy: IfNotPresent}]
EOF
}

cmd_smoke() {
  local start=$SECONDS n=(-n "$SMOKE_NS") tmp
  check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then log "smoke: ok   $what"; else log "smoke: FAIL $what"; return 1; fi; }
  k delete namespace "$SMOKE_NS" --ignore-not-found --wait >/dev/null
  smoke_manifest | k apply -f - >/dev/null
  wait_for - 120 "smoke pods Ready" k "${n[@]}" wait --for=condition=Ready pod/pause pod/etcd-0 pod/etcd-1 --timeout=5s
  check "PVCs bound by default StorageClass" k "${n[@]}" wait --for=jsonpath='{.status.phase}'=Bound pvc/data-etcd-0 pvc/data-etcd-1 --timeout=5s
  check "member DNS <pod>.<svc>.<ns>.svc" k "${n[@]}" exec etcd-0 -- getent hosts "etcd-1.etcd-discovery.$SMOKE_NS.svc"
  check "ClusterIP Service by short name" k "${n[@]}" exec etcd-0 -- etcdctl --endpoints http://etcd-client:2379 --dial-timeout 3s put smoke ok
  check "kubernetes Service from a pod" k "${n[@]}" exec etcd-0 -- bash -c 'exec 3<>/dev/tcp/kubernetes.default/443'
  check "write to PVC" k "${n[@]}" exec etcd-0 -- bash -c 'echo x > /var/lib/smoke-marker'
  # the volume is the claim's size (its own filesystem, not the host disk), and it can be filled
  check "volume has the claim's capacity" k "${n[@]}" exec etcd-0 -- bash -c \
    'size=$(df -B1 --output=size /var/lib | tail -1); [ "$size" -gt $((900 << 20)) ] && [ "$size" -le $((1 << 30)) ]'
  check "a full volume refuses writes" k "${n[@]}" exec etcd-0 -- bash -c \
    '! dd if=/dev/zero of=/var/lib/fill bs=1M count=1100 status=none && rm -f /var/lib/fill'
  tmp=$(mktemp); echo "smoke $$" > "$tmp"
  check "kubectl cp to and from a pod" bash -c "'$KUBECTL' --kubeconfig '$KUBECONFIG_ADMIN' ${n[*]} cp '$tmp' etcd-0:/tmp/smoke -c etcd &&
    '$KUBECTL' --kubeconfig '$KUBECONFIG_ADMIN' ${n[*]} cp etcd-0:/tmp/smoke '$tmp.back' -c etcd && cmp '$tmp' '$tmp.back'"
  rm -f "$tmp" "$tmp.back"
  # not-ready members must still resolve (publishNotReadyAddresses)
  k "${n[@]}" patch sts etcd --type json -p '[{"op":"add","path":"/spec/template/spec/containers/0/readinessProbe","value":{"exec":{"command":["false"]},"periodSeconds":1}}]' >/dev/null
  # delete + recreate the PVC of etcd-0: a fresh, empty volume
  k "${n[@]}" scale sts etcd --replicas 0 >/dev/null
  k "${n[@]}" wait --for=delete pod/etcd-0 pod/etcd-1 --timeout=60s >/dev/null
  k "${n[@]}" delete pvc data-etcd-0 --wait >/dev/null
  k "${n[@]}" scale sts etcd --replicas 2 >/dev/null
  wait_for - 60 "etcd-0 running again" bash -c "'$KUBECTL' --kubeconfig '$KUBECONFIG_ADMIN' ${n[*]} get pod etcd-0 -o jsonpath='{.status.phase}' | grep -q Running"
  check "recreated PVC is empty" k "${n[@]}" exec etcd-0 -- bash -c '! test -e /var/lib/smoke-marker'
  check "not-ready member still resolves" k "${n[@]}" exec etcd-0 -- getent hosts "etcd-0.etcd-discovery.$SMOKE_NS.svc"
  k delete namespace "$SMOKE_NS" --wait >/dev/null
  log "smoke: passed in $((SECONDS - start)) s"
}
